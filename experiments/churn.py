"""Negative stimuli (RFC 7654 section 5.5): a churn of short-lived TCP connections.

    python -m experiments.churn HOST --port 8080 --rate 50 --duration 20 [--out churn.json]

Opens ``rate`` new TCP connections a second to an experiments.traffic file server (serve a
small file for this, e.g. ``traffic serve --size 1k``): each connects, sends
``GET /file HTTP/1.0``, reads to EOF and closes.  Through a NAT every one needs a new mapping,
so an upgrade that stalls or forgets the NAT's state shows up as failed connections.

Attempt k is due at start + k/rate (an absolute schedule: no drift) and runs in its own
thread, at most ``workers`` at once, so a slow connection never delays the next one; an
attempt that finds every worker busy fails at once as "busy" instead of waiting.  Each
connection must end within ``timeout`` s.  Failure kinds: refused (RST to the SYN), reset
(RST later, broken pipe), timeout, eof_early (closed before the head or before
Content-Length bytes), busy, other (anything else, or an HTTP status other than 200).
The result is the ISSU benchmark's churn.json.
"""

import argparse
import json
import math
import os
import socket
import statistics
import sys
import threading
import time
from collections import Counter

from experiments.traffic import _Failed, _parse_head, _read_head

__all__ = ["churn", "KINDS"]

KINDS = ("refused", "reset", "timeout", "eof_early", "busy", "other")
MAX_WORKERS = 256               # threads are cheap but not free; beyond this, attempts are busy
RECV = 1 << 16


def _remaining(deadline):
    left = deadline - time.monotonic()
    if left <= 0:
        raise socket.timeout("connection did not finish in time")
    return left


def fetch(host, port, path="/file", timeout=2.0):
    """One short-lived connection: GET ``path``, read to EOF, close.  Returns the seconds it
    took; raises the error that ended it (``classify`` names its kind)."""
    start = time.monotonic()
    deadline = start + timeout
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.settimeout(_remaining(deadline))
        s.sendall(("GET %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: clickup-churn\r\n\r\n"
                   % (path, host)).encode("latin-1"))
        head, rest = _read_head(s)
        status, headers = _parse_head(head)
        if status != 200:
            raise _Failed("other", "HTTP status %d" % status)
        got = len(rest)
        buf = bytearray(RECV)
        while True:
            s.settimeout(_remaining(deadline))
            n = s.recv_into(buf)
            if n == 0:
                break
            got += n
        length = headers.get("content-length", "")
        if length.isdigit() and got < int(length):
            raise _Failed("eof_early", "closed at byte %d of %s" % (got, length))
    return time.monotonic() - start


def classify(exc):
    """The failure kind (one of KINDS) of an exception ``fetch`` raised."""
    if isinstance(exc, _Failed):
        return exc.kind if exc.kind in KINDS else "other"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)):
        return "reset"
    if isinstance(exc, TimeoutError):            # socket.timeout is TimeoutError
        return "timeout"
    if isinstance(exc, EOFError):                # closed before the end of the HTTP head
        return "eof_early"
    return "other"


class _Tally:
    """Outcomes, shared by the worker threads.  After ``close`` late workers are ignored:
    the ones still running were counted as timeouts."""

    def __init__(self):
        self.lock = threading.Lock()
        self.errors = Counter()
        self.latencies = []
        self.running = 0
        self.closed = False

    def begin(self):
        with self.lock:
            self.running += 1

    def end(self, latency=None, kind=None):
        with self.lock:
            if self.closed:
                return
            self.running -= 1
            if kind is None:
                self.latencies.append(latency)
            else:
                self.errors[kind] += 1

    def fail(self, kind):
        with self.lock:
            self.errors[kind] += 1

    def close(self):
        with self.lock:
            if self.running:
                self.errors["timeout"] += self.running
            self.running, self.closed = 0, True


def _worker(tally, slots, host, port, path, timeout):
    try:
        tally.end(latency=fetch(host, port, path, timeout))
    except Exception as e:                       # every failure is a result, never a crash
        tally.end(kind=classify(e))
    finally:
        slots.release()


def _check(port, rate, duration, timeout, path, workers):
    if not 0 < port < 65536:
        raise ValueError("--port must be 1-65535 (the file server's port), got %r" % port)
    if rate <= 0 or duration <= 0:
        raise ValueError("--rate (connections per second) and --duration (seconds) must be "
                         "positive, got %r and %r" % (rate, duration))
    if timeout <= 0:
        raise ValueError("--timeout must be positive seconds, got %r" % timeout)
    if not path.startswith("/") or any(c.isspace() for c in path):
        raise ValueError("--path must start with / and contain no spaces, got %r" % path)
    if workers is not None and workers < 1:
        raise ValueError("--workers must be at least 1, got %r" % workers)


def default_workers(rate, timeout):
    """Enough threads for every connection of a ``timeout``-long window to run at once."""
    return max(4, min(MAX_WORKERS, math.ceil(rate * timeout) + 4))


def churn(host, port, rate, duration, timeout=2.0, path="/file", workers=None):
    """Open ``rate`` connections a second for ``duration`` s; return the churn.json dict."""
    _check(port, rate, duration, timeout, path, workers)
    workers = workers or default_workers(rate, timeout)
    total = int(rate * duration + 1e-9)          # 0.29 * 100 is 28.999...
    slots = threading.BoundedSemaphore(workers)
    tally = _Tally()
    start = time.monotonic()
    for k in range(total):
        late = start + k / rate - time.monotonic()
        if late > 0:
            time.sleep(late)
        if not slots.acquire(blocking=False):
            tally.fail("busy")
            continue
        tally.begin()
        try:
            threading.Thread(target=_worker, args=(tally, slots, host, port, path, timeout),
                             name="churn-%d" % k, daemon=True).start()
        except RuntimeError:                     # the system has no thread left to give
            tally.end(kind="busy")
            slots.release()
    _drain(slots, workers, timeout)
    tally.close()
    return _result(rate, duration, total, tally)


def _drain(slots, workers, timeout):
    """Wait for the running connections; each ends within ``timeout`` s, but a grace bound
    keeps a stuck one (a slow name lookup) from hanging the caller."""
    deadline = time.monotonic() + timeout + 1.0
    for _ in range(workers):
        if not slots.acquire(timeout=max(0.0, deadline - time.monotonic())):
            return


def _result(rate, duration, attempted, tally):
    lat = tally.latencies
    failed = sum(tally.errors.values())
    return {"rate": rate, "duration_s": duration, "attempted": attempted,
            "completed": len(lat), "failed": failed, "errors": dict(tally.errors),
            "latency_ms": {"median": round(statistics.median(lat) * 1000, 3) if lat else None,
                           "max": round(max(lat) * 1000, 3) if lat else None}}


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m experiments.churn",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("host", help="the file server's address")
    p.add_argument("--port", type=int, required=True, help="the file server's port")
    p.add_argument("--rate", type=float, required=True, help="new connections per second")
    p.add_argument("--duration", type=float, required=True, help="seconds of churn")
    p.add_argument("--timeout", type=float, default=2.0,
                   help="a connection must end within this many seconds (default 2)")
    p.add_argument("--path", default="/file", help="the path to GET (default /file)")
    p.add_argument("--workers", type=int, default=None,
                   help="connections at once, at most (default: rate x timeout + 4, "
                        "capped at %d)" % MAX_WORKERS)
    p.add_argument("--out", metavar="FILE", help="also write the result JSON to FILE")
    a = p.parse_args(argv)
    try:
        _check(a.port, a.rate, a.duration, a.timeout, a.path, a.workers)
    except ValueError as e:
        p.error(str(e))
    if a.out and not os.path.isdir(os.path.dirname(os.path.abspath(a.out))):
        p.error("--out %s: its directory does not exist; create it first" % a.out)
    rate = int(a.rate) if a.rate.is_integer() else a.rate
    out = churn(a.host, a.port, rate, a.duration, a.timeout, a.path, a.workers)
    if a.out:
        with open(a.out, "w") as f:
            json.dump(out, f)
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

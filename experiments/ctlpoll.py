"""The control-plane poll of RFC 7654's NMS: does the NF keep answering while it upgrades?

    python -m experiments.ctlpoll SOCKET --duration 20 --out control.jsonl \\
        [--handler upgrade_status] [--interval 0.01]

A Poller thread reads one handler every ``interval`` s over one persistent control
connection (nf.control.ControlClient) and appends one JSON line per poll:

    {"t": 1234.56, "ok": true, "latency_ms": 0.31, "value": "staging"}
    {"t": 1234.57, "ok": false, "error": "no control socket at ..."}

t is time.monotonic() when the answer (or the error) came, so the longest interval between
two consecutive ok lines is the control plane's longest gap, a late answer included.  After
any error the connection is dropped and the next poll opens a new one (restart strategies
replace the NF process and its socket).  Connects and reads time out after a few intervals,
so a hung NF costs each poll a few intervals, never a hang.  Poll k is due at
start + k * interval (no drift); after a stall the schedule skips the polls it missed instead
of firing them in a burst.
"""

import argparse
import json
import math
import os
import sys
import threading
import time

from experiments.traffic import _stop_on_sigterm
from nf.control import ControlClient, ControlError

__all__ = ["Poller", "next_slot", "describe"]

TIMEOUT_INTERVALS = 5           # a connect or read may take this many intervals ...
MIN_TIMEOUT = 0.05              # ... but at least this long (a busy loop answers in ms)


def next_slot(start, interval, k, now):
    """The slot of the poll after poll ``k``: k + 1, or, if ``now`` is already past it (a
    stall), the first slot still ahead, so that missed polls are skipped, not bunched."""
    return max(k + 1, math.floor((now - start) / interval) + 1)


def describe(exc):
    """One line saying why a poll failed."""
    if isinstance(exc, ControlError):
        return exc.message if exc.code == 0 else str(exc)
    if isinstance(exc, TimeoutError):
        return "timed out: no answer within the poll timeout"
    return "%s: %s" % (type(exc).__name__, exc)


class Poller:
    """Poll ``handler`` at ``path`` every ``interval`` s in a thread; lines go to ``out``.

    ``Poller(...).start()`` returns the poller; ``stop()`` ends the thread and closes the
    file; ``with Poller(...) as p:`` does both.  ``samples`` counts polls, ``ok_samples``
    the answered ones.
    """

    def __init__(self, path, handler="upgrade_status", interval=0.01, out=None, timeout=None):
        """``path``: a control socket, or a list of them -- the members of an NF pair: the
        poll stays on one while it answers and moves to the next after an error, so it
        follows the management plane of whichever NF is up (the record names it)."""
        if interval <= 0:
            raise ValueError("--interval must be positive seconds, got %r" % interval)
        if timeout is not None and timeout <= 0:
            raise ValueError("timeout must be positive seconds, got %r" % timeout)
        self.paths = [path] if isinstance(path, str) else list(path)
        if not self.paths:
            raise ValueError("give at least one control socket path")
        self.path, self.handler, self.interval, self.out = self.paths[0], handler, interval, out
        self.timeout = timeout or max(MIN_TIMEOUT, TIMEOUT_INTERVALS * interval)
        self.samples = self.ok_samples = 0
        self._stopping = threading.Event()
        self._thread = self._client = self._file = None

    def start(self):
        """Start polling (again: no-op, so ``with Poller(...).start():`` works); -> self."""
        if self._stopping.is_set():
            raise RuntimeError("this Poller was stopped and its file closed; make a new one")
        if self._thread is not None:
            return self
        # Line buffered: a driver may read the file while the poll runs.
        self._file = open(self.out, "w", buffering=1) if self.out else None
        self._thread = threading.Thread(target=self._run, name="ctlpoll", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
        self._disconnect()
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def poll(self):
        """Read the handler once (connecting first if need be); return the line's record."""
        try:
            if self._client is None:
                self._client = ControlClient(self.path, timeout=self.timeout)
            sent = time.monotonic()
            value = self._client.read(self.handler)
            t = time.monotonic()
            rec = {"t": t, "ok": True, "latency_ms": round((t - sent) * 1000, 3),
                   "value": value}
        except Exception as e:          # any error: record it, start over on a new connection
            self._disconnect()
            rec = {"t": time.monotonic(), "ok": False, "error": describe(e)}
        if len(self.paths) > 1:
            rec["path"] = self.path
            if not rec["ok"]:           # the next poll tries the pair's other member
                self.path = self.paths[(self.paths.index(self.path) + 1) % len(self.paths)]
        return rec

    def _disconnect(self):
        c, self._client = self._client, None
        if c is not None:
            try:
                c.close()
            except OSError:
                pass

    def _record(self, rec):
        self.samples += 1
        self.ok_samples += rec["ok"]
        if self._file is not None:
            self._file.write(json.dumps(rec) + "\n")

    def _run(self):
        start = time.monotonic()
        k = 0
        while not self._stopping.is_set():
            self._record(self.poll())
            k = next_slot(start, self.interval, k, time.monotonic())
            self._stopping.wait(start + k * self.interval - time.monotonic())


def _wait(duration):
    """Sleep ``duration`` s, or (0) until a signal ends the process."""
    if duration:
        time.sleep(duration)
        return
    while True:
        time.sleep(3600)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m experiments.ctlpoll",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("socket", help="the NF's control socket (its --control path)")
    p.add_argument("--duration", type=float, required=True,
                   help="seconds to poll (0: until SIGTERM or Ctrl-C)")
    p.add_argument("--out", required=True, metavar="FILE", help="JSON lines to write")
    p.add_argument("--handler", default="upgrade_status", help="read handler to poll")
    p.add_argument("--interval", type=float, default=0.01, help="seconds between polls")
    a = p.parse_args(argv)
    if a.duration < 0:
        p.error("--duration must be >= 0 seconds (0: until stopped), got %g" % a.duration)
    if a.interval <= 0:
        p.error("--interval must be positive seconds, got %g" % a.interval)
    if not os.path.isdir(os.path.dirname(os.path.abspath(a.out))):
        p.error("--out %s: its directory does not exist; create it first" % a.out)
    _stop_on_sigterm()
    poller = Poller(a.socket, a.handler, a.interval, a.out).start()
    try:
        _wait(a.duration)
    except KeyboardInterrupt:
        pass
    finally:
        poller.stop()
    print(json.dumps({"samples": poller.samples, "ok": poller.ok_samples, "out": a.out}),
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

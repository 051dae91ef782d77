"""File transfers that start over when the connection breaks, as wget or curl do without resume.

    python -m experiments.traffic serve --port 8080 --size 250M [--rate BYTES_PER_S]
    python -m experiments.traffic get http://10.0.0.2:8080/file --out trace.jsonl
    python -m experiments.traffic put http://10.0.0.2:8080/file --size 250M --out trace.jsonl
    python -m experiments.traffic tool wget http://10.0.0.2:8080/file --out trace.jsonl

The server speaks just enough HTTP/1.0 for real wget and curl: ``GET /file`` (or ``/file/NAME``)
answers 200 with a Content-Length and the body, then closes.  The body is a pseudo-random block
of PERIOD bytes drawn from a seed and repeated; it is generated once, so the server needs no
disk and a client that knows the seed (header X-Clickup-Seed) can check every byte it gets.
PERIOD is not a power of two, so a shifted or repeated segment does not line up with it.  The
server ignores Range: wget, which resumes within one run by default, must start again from byte
0 like every client here.  Fault modes for tests break the first connections after some bytes
with an RST, a stall or an early EOF.

The client (``download``) fetches the file; when the connection fails (RST, EOF before
Content-Length, no byte for ``idle_timeout`` seconds) it opens a new connection and starts again
from byte 0, until the file is complete or it gives up.  It writes a JSONL trace: one line per
event and a progress sample every ``tick`` seconds, each with monotonic and wall times.

``upload`` is the same transfer the other way: ``PUT /file`` sends SIZE bytes of the seeded
content, the server checks every byte and answers 200 with what it received.  Here the client's
own TCP holds the unacknowledged data, so when a path breaks it is the client's kernel that
retransmits, with its exponential back-off, and the first retransmission that gets through
decides what happens next (a NAT that lost its mapping gives it a new outside port; the server,
which knows no such connection, answers RST).  Its progress is the bytes the server has
acknowledged (sent minus the socket's unacknowledged queue, TIOCOUTQ), and its idle timeout is
long (UPLOAD_IDLE) so that TCP's back-off, not the client, decides when a stall ends.
``run_tool`` runs real wget or curl instead and derives the same summary from their output.
"""

import argparse
import fcntl
import functools
import json
import os
import random
import re
import signal
import socket
import socketserver
import struct
import subprocess
import sys
import termios
import threading
import time
from urllib.parse import urlsplit

__all__ = ["FileServer", "serve", "download", "upload", "run_tool", "raw_log_path", "expected_body",
           "parse_bytes"]

PERIOD = (1 << 20) + 4099       # content period, deliberately not a power of two
CHUNK = 1 << 16                 # server send size
RECV = 1 << 18                  # client receive buffer; also the body's wrap-around tail
SEED_HEADER = "X-Clickup-Seed"
FAULT_MODES = ("reset", "stall", "eof")
MAX_HEAD = 16384
STALL_MAX = 3600.0              # a stalled connection is released at the latest after this
UPLOAD_IDLE = 120.0             # an upload's idle timeout: longer than TCP's back-off steps
                                # up to 15 s of outage (retries at ~0.2, 0.6, 1.4, ... 25.4 s)


# ----------------------------------------------------------------------------- content

class Body:
    """The deterministic content for one seed: byte i of the file is block[i % PERIOD].

    ``data`` is the block followed by its first RECV bytes again, so any slice of up to RECV
    bytes starting anywhere in the period is contiguous (no copy to serve or to check it).
    """

    def __init__(self, seed):
        block = random.Random(seed).randbytes(PERIOD)
        self.data = block + block[:RECV]
        self.view = memoryview(self.data)

    def chunk(self, pos, n):
        off = pos % PERIOD
        return self.view[off:off + n]

    def matches(self, pos, received):
        """True if ``received`` (at most RECV bytes) is the content at file offset ``pos``."""
        return self.data.startswith(received, pos % PERIOD)

    def first_difference(self, pos, received):
        """File offset of the first byte of ``received`` that differs from the content."""
        want = self.chunk(pos, len(received))
        return pos + next(i for i in range(len(received)) if received[i] != want[i])


@functools.lru_cache(maxsize=8)
def body_for(seed):
    return Body(seed)


def expected_body(seed, size):
    """The whole file as bytes (for tests and small checks; the server never builds it)."""
    b = body_for(seed)
    reps = size // PERIOD + 1
    return (b.data[:PERIOD] * reps)[:size]


def parse_bytes(text):
    """'1200000', '1.2M', '250M', '2G', '64k' -> bytes (decimal SI suffixes)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgG]?)\s*", str(text))
    if not m:
        raise ValueError("expected a byte count like 1200000, 1.2M or 2G, got %r" % text)
    scale = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9}[m.group(2).lower()]
    return int(float(m.group(1)) * scale)


# ----------------------------------------------------------------------------- server

class _Handler(socketserver.BaseRequestHandler):
    """One connection: read the request head, answer, send the body (paced, maybe faulted)."""

    def handle(self):
        srv, sock = self.server, self.request
        srv.track(sock, True)
        try:
            self._serve(srv, sock)
        except OSError:
            pass                        # the client went away; nothing to answer
        finally:
            srv.track(sock, False)

    def _serve(self, srv, sock):
        sock.settimeout(10.0)
        head, rest = _read_head(sock)
        method, path = _request_line(head)
        if method not in ("GET", "HEAD", "PUT"):
            sock.sendall(_response(405, "Method Not Allowed"))
            return
        if not (path == "/file" or path.startswith("/file/")):
            sock.sendall(_response(404, "Not Found"))
            return
        if method == "PUT":
            self._receive_body(srv, sock, _headers(head), rest)
            return
        sock.sendall(_response(200, "OK", srv.size, srv.seed))
        if method == "GET":
            fault = srv.fault_for_next_connection()
            self._send_body(srv, sock, fault)

    def _receive_body(self, srv, sock, headers, rest):
        """PUT: take Content-Length bytes, check them against the seed, answer 200 with
        X-Clickup-Received and X-Clickup-Verified.  A faulted connection breaks after
        ``fail_after`` bytes, as a GET would."""
        length = headers.get("content-length", "")
        seed = headers.get(SEED_HEADER.lower(), "")
        if not length.isdigit() or not seed.lstrip("-").isdigit():
            sock.sendall(_response(400, "Bad Request (PUT needs Content-Length and %s)"
                                   % SEED_HEADER))
            return
        size, body = int(length), body_for(int(seed))
        fault = srv.fault_for_next_connection()
        limit = size if fault is None else min(size, srv.fail_after)
        got, ok = 0, True
        data = memoryview(rest)
        buf = bytearray(RECV)
        sock.settimeout(STALL_MAX)      # a client that vanished (its NAT forgot it) says nothing
        try:
            while True:
                if len(data) > limit - got:
                    data = data[:limit - got]
                ok = ok and body.matches(got, data)
                got += len(data)
                if got >= limit or srv.stopping.is_set():
                    break
                n = sock.recv_into(buf, min(RECV, limit - got))
                if n == 0:
                    break
                data = memoryview(buf)[:n]
        finally:
            srv.record_upload(got, ok and got == size, fault)
        if got < size:
            if fault is not None:
                _break(sock, fault, srv.stopping)
            return
        sock.sendall(_response(200, "OK", extra={"X-Clickup-Received": got,
                                                 "X-Clickup-Verified": "yes" if ok else "no"}))

    def _send_body(self, srv, sock, fault):
        limit = srv.size if fault is None else min(srv.size, srv.fail_after)
        body, rate = body_for(srv.seed), srv.rate
        step = CHUNK if not rate else max(1024, min(CHUNK, int(rate / 100)))
        sent, start = 0, time.monotonic()
        sock.settimeout(None)
        try:
            while sent < limit and not srv.stopping.is_set():
                if rate:
                    late = start + sent / rate - time.monotonic()
                    if late > 0:
                        time.sleep(late)
                n = min(step, limit - sent)
                sock.sendall(body.chunk(sent, n))
                sent += n
        finally:
            srv.record(sent, fault)
        if fault is not None and sent < srv.size:
            _break(sock, fault, srv.stopping)


def _break(sock, mode, stopping):
    """End a faulted connection: RST (SO_LINGER 0), a stall until the server stops, or EOF."""
    if mode == "stall":
        stopping.wait(STALL_MAX)
    elif mode == "reset":
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()                    # closing with linger 0 sends RST, drops unsent data


def _read_head(sock, leftover=b""):
    """Read up to the blank line ending an HTTP head; return (head text, bytes after it)."""
    data = bytearray(leftover)
    while b"\r\n\r\n" not in data:
        if len(data) > MAX_HEAD:
            raise OSError("HTTP head longer than %d bytes" % MAX_HEAD)
        more = sock.recv(4096)
        if not more:
            raise EOFError("connection closed before the end of the HTTP head")
        data += more
    head, _, rest = bytes(data).partition(b"\r\n\r\n")
    return head.decode("latin-1"), rest


def _request_line(head):
    parts = head.split("\r\n", 1)[0].split()
    if len(parts) < 2:
        return "", ""
    return parts[0].upper(), parts[1].split("?", 1)[0]


def _response(code, reason, length=0, seed=None, extra=None):
    lines = ["HTTP/1.0 %d %s" % (code, reason), "Server: clickup-traffic",
             "Content-Type: application/octet-stream", "Content-Length: %d" % length,
             "Connection: close"]
    if seed is not None:
        lines.append("%s: %d" % (SEED_HEADER, seed))
    lines += ["%s: %s" % kv for kv in (extra or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class FileServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    """A threaded HTTP/1.0 file server for one deterministic file of ``size`` bytes.

    ``rate`` paces each connection (bytes/s; None = as fast as TCP goes).  ``fail_after``
    breaks the first ``fail_count`` GET or PUT connections after that many body bytes, the
    way ``fail_mode`` says: "reset" (RST), "stall" (stop sending or reading, keep the
    connection open) or "eof" (close early).  ``connections`` lists (bytes sent, fault) per
    finished GET; ``uploads`` lists (bytes received, verified, fault) per finished PUT.
    """

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, size, port=0, host="0.0.0.0", rate=None, seed=0, fail_after=None,
                 fail_mode="reset", fail_count=1):
        if size < 0:
            raise ValueError("size must be >= 0 bytes, got %r" % size)
        if rate is not None and rate <= 0:
            raise ValueError("rate must be positive (bytes/s), got %r" % rate)
        if fail_mode not in FAULT_MODES:
            raise ValueError("fail_mode must be one of %s, got %r" % (", ".join(FAULT_MODES),
                                                                      fail_mode))
        self.size, self.rate, self.seed = size, rate, seed
        self.fail_after, self.fail_mode, self.fail_count = fail_after, fail_mode, fail_count
        self.stopping = threading.Event()
        self.connections = []
        self.uploads = []
        self._lock = threading.Lock()
        self._gets = 0
        self._open = set()
        self._thread = None
        body_for(seed)                  # build the content before the first client waits
        super().__init__((host, port), _Handler)

    @property
    def port(self):
        return self.server_address[1]

    def fault_for_next_connection(self):
        with self._lock:
            n, self._gets = self._gets, self._gets + 1
        if self.fail_after is not None and n < self.fail_count:
            return self.fail_mode
        return None

    def record(self, sent, fault):
        with self._lock:
            self.connections.append((sent, fault))

    def record_upload(self, received, verified, fault):
        with self._lock:
            self.uploads.append((received, verified, fault))

    def track(self, sock, opened):
        with self._lock:
            (self._open.add if opened else self._open.discard)(sock)

    def start(self):
        """Serve from a background thread; returns self."""
        # Poll for shutdown every 0.1 s rather than 0.5 s, so that close() is quick.
        self._thread = threading.Thread(target=self.serve_forever, args=(0.1,),
                                        name="traffic-server", daemon=True)
        self._thread.start()
        return self

    def close(self):
        """Stop accepting, release stalled connections, cut running transfers, free the port."""
        self.stopping.set()
        if self._thread is not None:
            self.shutdown()
            self._thread.join()
        with self._lock:
            socks = list(self._open)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def serve(size, port=0, host="0.0.0.0", **kw):
    """Start a FileServer in a background thread and return it (``.port``, ``.close()``)."""
    return FileServer(size, port, host, **kw).start()


# ----------------------------------------------------------------------------- client

class Trace:
    """JSONL writer shared by the receive loop and the sampler thread."""

    def __init__(self, path):
        self._f = open(path, "w") if path else None
        self._lock = threading.Lock()

    def write(self, rec):
        if self._f is None:
            return
        line = json.dumps(rec) + "\n"
        with self._lock:
            self._f.write(line)
            self._f.flush()             # a driver may tail the trace while we run

    def close(self):
        if self._f is not None:
            self._f.close()


class _Failed(Exception):
    """An attempt ended without the whole file: ``kind`` is the trace event name."""

    def __init__(self, kind, detail=""):
        super().__init__(kind, detail)
        self.kind, self.detail = kind, detail


class _GiveUp(Exception):
    pass


class _Download:
    """State of one download across its attempts; see ``download`` for the parameters."""

    def __init__(self, url, trace, tick, idle_timeout, connect_timeout, give_up, max_restarts,
                 retry_wait, announce):
        u = urlsplit(url)
        if u.scheme != "http" or not u.hostname:
            raise ValueError("expected an http://HOST[:PORT]/PATH URL, got %r" % url)
        self.url, self.host, self.port = url, u.hostname, u.port or 80
        self.path = (u.path or "/") + ("?" + u.query if u.query else "")
        self.trace, self.tick = trace, tick
        self.idle, self.connect_timeout = idle_timeout, connect_timeout
        self.max_restarts, self.retry_wait = max_restarts, retry_wait
        self.pending = sorted(announce)
        self.attempt = self.got = self.total = self.restarts = self.connect_errors = 0
        self.size = self.seed = None
        self.verified = True
        self.start = time.monotonic()
        self.start_wall = time.time()
        self.deadline = self.start + give_up if give_up else float("inf")
        self.last_byte = None

    def event(self, ev, **extra):
        rec = {"ev": ev, "t": time.monotonic(), "wall": time.time(), "attempt": self.attempt,
               "bytes": self.got, "total": self.total}
        rec.update(extra)
        self.trace.write(rec)

    def sampler(self, stop):
        while not stop.wait(self.tick):
            self.event("sample")

    def run(self):
        reason = None
        while True:
            self.attempt += 1
            self.got = 0
            try:
                self._attempt()
                break
            except _Failed as f:
                self.event(f.kind, detail=f.detail)
                reason = self._after_failure(f)
                if reason:
                    break
            except _GiveUp:
                reason = "give_up"
                break
        if reason:
            self.event("give_up", reason=reason)
        return reason

    def _after_failure(self, f):
        """Decide what follows a failed attempt: None to try again, else why we stop."""
        if f.kind == "http_error":
            return "http_error"
        if time.monotonic() >= self.deadline:
            return "give_up"
        if f.kind == "connect_error":
            self.connect_errors += 1
            time.sleep(max(0.0, min(self.retry_wait, self.deadline - time.monotonic())))
            return None
        if self.max_restarts is not None and self.restarts >= self.max_restarts:
            return "max_restarts"
        self.restarts += 1
        self.event("restart", restarts=self.restarts)
        return None

    def _remaining(self, limit):
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise _GiveUp()
        return min(limit, left)

    def _attempt(self):
        sock = self._connect()
        try:
            self.event("connect", local_port=sock.getsockname()[1])
            sock.sendall(("GET %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: clickup-traffic\r\n"
                          "Accept: */*\r\n\r\n" % (self.path, self.host)).encode("latin-1"))
            rest = self._head(sock)
            self._body(sock, rest)
        finally:
            sock.close()

    def _connect(self):
        try:
            return socket.create_connection((self.host, self.port),
                                            timeout=self._remaining(self.connect_timeout))
        except socket.timeout:
            if time.monotonic() >= self.deadline:
                raise _GiveUp() from None
            raise _Failed("connect_error", "timed out") from None
        except OSError as e:
            raise _Failed("connect_error", e.strerror or str(e)) from None

    def _guard(self, fn, *args):
        """Run a socket read, turning its failures into the trace's event kinds."""
        try:
            return fn(*args)
        except socket.timeout:
            if time.monotonic() >= self.deadline:
                raise _GiveUp() from None
            raise _Failed("timeout", "no byte for %g s" % self.idle) from None
        except ConnectionResetError as e:
            raise _Failed("reset", e.strerror or str(e)) from None
        except EOFError as e:
            raise _Failed("eof_early", str(e)) from None
        except OSError as e:
            raise _Failed("reset", e.strerror or str(e)) from None

    def _head(self, sock):
        sock.settimeout(self._remaining(self.idle))
        head, rest = self._guard(_read_head, sock)
        status, headers = _parse_head(head)
        if status != 200:
            kind = "reset" if 500 <= status < 600 else "http_error"   # 5xx: try again
            raise _Failed(kind, "HTTP status %d" % status)
        size = headers.get("content-length")
        self.size = int(size) if size and size.isdigit() else None
        seed = headers.get(SEED_HEADER.lower())
        self.seed = int(seed) if seed and seed.lstrip("-").isdigit() else None
        return rest

    def _body(self, sock, rest):
        body = body_for(self.seed) if self.seed is not None else None
        if rest:
            self._take(memoryview(rest), body)
        buf = bytearray(RECV)
        view = memoryview(buf)
        while self.size is None or self.got < self.size:
            sock.settimeout(self._remaining(self.idle))
            n = self._guard(sock.recv_into, buf)
            if n == 0:
                if self.size is None:
                    break
                raise _Failed("eof_early", "closed at byte %d of %d" % (self.got, self.size))
            self._take(view[:n], body)
        self.event("done", size=self.got)

    def _take(self, data, body):
        if self.got == 0:
            self.event("first_byte")
        if body is None or (self.size is not None and self.got + len(data) > self.size):
            self.verified = False       # nothing to check against, or more than announced
        elif self.verified and not body.matches(self.got, data):
            self.verified = False
            self.event("mismatch", offset=body.first_difference(self.got, data))
        self._advance(self.got + len(data))

    def _advance(self, got):
        """The running attempt has ``got`` bytes across: count them, announce points."""
        self.total += got - self.got
        self.got = got
        self.last_byte = time.monotonic()
        while self.pending and self.size and self.got >= self.pending[0] / 100.0 * self.size:
            self._announce(self.pending.pop(0))

    def _announce(self, pct):
        self.event("reached", pct=pct)
        print(json.dumps({"reached": pct, "t": time.monotonic(), "bytes": self.got}),
              flush=True)

    def summary(self, reason):
        ok = reason is None
        end = self.last_byte if ok and self.last_byte else time.monotonic()
        return {"url": self.url, "ok": ok, "verified": ok and self.verified,
                "transfer_s": round(end - self.start, 6), "restarts": self.restarts,
                "bytes": self.got, "size": self.size, "received_total": self.total,
                "attempts": self.attempt, "connect_errors": self.connect_errors,
                "reason": reason, "start_wall": self.start_wall}


def _headers(head):
    """An HTTP head's header fields, names in lower case (the first line is skipped)."""
    headers = {}
    for line in head.split("\r\n")[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return headers


class _Upload(_Download):
    """An upload (PUT) of ``size`` bytes of seed ``seed``'s content, across its attempts."""

    def __init__(self, url, size, seed, *args):
        super().__init__(url, *args)
        self.size, self.seed = size, seed

    def _attempt(self):
        sock = self._connect()
        try:
            self.event("connect", local_port=sock.getsockname()[1])
            head = ("PUT %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: clickup-traffic\r\n"
                    "Content-Length: %d\r\n%s: %d\r\n\r\n"
                    % (self.path, self.host, self.size, SEED_HEADER, self.seed))
            sock.settimeout(self._remaining(self.idle))
            self._guard(sock.sendall, head.encode("latin-1"))
            self._send_body(sock)
            sock.settimeout(self._remaining(self.idle))
            status, headers = _parse_head(self._guard(_read_head, sock)[0])
        finally:
            sock.close()
        if status != 200:
            raise _Failed("reset" if 500 <= status < 600 else "http_error",
                          "HTTP status %d" % status)
        received = headers.get("x-clickup-received", "")
        self.verified = (headers.get("x-clickup-verified") == "yes"
                         and received == str(self.size))
        self._advance(self.size)        # the server has every byte: the transfer ends here
        self.event("done", size=self.got, server_received=received)

    def _send_body(self, sock):
        body, sent = body_for(self.seed), 0
        outq = bytearray(4)
        while sent < self.size:
            sock.settimeout(self._remaining(self.idle))
            sent += self._guard(sock.send, body.chunk(sent, min(RECV, self.size - sent)))
            # Progress is what the server acknowledged: sent minus the unacknowledged queue.
            fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, outq)
            acked = sent - struct.unpack("i", outq)[0]
            if acked > self.got:
                if self.got == 0:
                    self.event("first_byte")
                self._advance(acked)


def _parse_head(head):
    parts = head.split("\r\n", 1)[0].split()
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise _Failed("http_error", "not an HTTP response: %r" % head[:80])
    return int(parts[1]), _headers(head)


def download(url, out=None, tick=0.1, idle_timeout=3.0, connect_timeout=30.0, give_up=600.0,
             max_restarts=None, retry_wait=0.5, announce=()):
    """Fetch ``url`` like wget/curl without resume; return the summary dict.

    A failure of an established connection (RST, EOF before Content-Length, ``idle_timeout``
    s without a byte, a 5xx status) counts as a restart: a new connection, from byte 0.  A
    connection that cannot be opened (refused, unreachable, no SYN-ACK within
    ``connect_timeout``) is retried after ``retry_wait`` s and counted in ``connect_errors``,
    not in ``restarts``.  The download stops at ``give_up`` s after the first request (None:
    never) or at the restart after ``max_restarts``.  ``announce`` lists percentages of the
    file: when the running attempt first reaches each, a JSON line ``{"reached": pct, ...}``
    goes to stdout, for drivers that act at a point of the transfer.

    Summary keys: ok, verified (every byte matched the seeded content), transfer_s (first
    request to last byte; to the give-up when not ok), restarts, bytes (of the last attempt),
    size, received_total (all attempts), attempts, connect_errors, reason (None when ok).
    """
    return _run(_Download(url, Trace(out), tick, idle_timeout, connect_timeout, give_up,
                          max_restarts, retry_wait, announce))


def upload(url, size, out=None, seed=0, tick=0.1, idle_timeout=UPLOAD_IDLE,
           connect_timeout=30.0, give_up=600.0, max_restarts=None, retry_wait=0.5,
           announce=()):
    """Send ``size`` bytes of seed ``seed``'s content to ``url`` with PUT, starting over from
    byte 0 when the connection fails; return the summary dict (as ``download``'s).

    Progress (trace "bytes", ``announce``) counts the bytes the server acknowledged.  A
    failure is an RST or broken pipe, an answer other than 200, or ``idle_timeout`` s in
    which no send progressed (long by default: see UPLOAD_IDLE).  verified: the server
    received exactly ``size`` bytes and every one matched the seeded content.
    transfer_s: first request to the server's answer.
    """
    return _run(_Upload(url, size, seed, Trace(out), tick, idle_timeout, connect_timeout,
                        give_up, max_restarts, retry_wait, announce))


def _run(d):
    """Run a transfer with its progress sampler; trace and return its summary."""
    trace = d.trace
    stop = threading.Event()
    sampler = threading.Thread(target=d.sampler, args=(stop,), daemon=True)
    sampler.start()
    try:
        reason = d.run()
    finally:
        stop.set()
        sampler.join()
    summary = d.summary(reason)
    trace.write(dict(summary, ev="summary", t=time.monotonic(), wall=time.time()))
    trace.close()
    return summary


# ----------------------------------------------------------------------------- wget and curl

# How each tool's lines map to trace events: the first matching pattern names the event, so
# connect failures come before the read timeouts they resemble.  wget (verbose, the default)
# ends every retried failure with "Retrying."; curl (--no-progress-meter keeps its warnings)
# says "Will retry".  Both run with LC_ALL=C so the messages are the English ones.
_TOOL_EVENTS = {
    "wget": [("connect_error", re.compile(r"failed: ")),
             ("reset", re.compile(r"Connection reset by peer")),
             ("timeout", re.compile(r"timed out", re.I)),
             ("eof_early", re.compile(r"Connection closed at byte")),
             ("reset", re.compile(r"Read error")),
             ("connect", re.compile(r"\.\.\. connected\.")),
             ("done", re.compile(r"saved \[(\d+)(?:/(\d+))?\]")),
             ("give_up", re.compile(r"Giving up"))],
    "curl": [("connect_error",
              re.compile(r"Failed to connect|\(7\)|Connection timed out after")),
             ("timeout", re.compile(r"too slow|Operation timed out")),
             ("reset", re.compile(r"Connection reset by peer|Recv failure")),
             ("eof_early", re.compile(r"transfer closed with|\(18\)"))],
}
_RESTART = {"wget": re.compile(r"Retrying\.\s*$"), "curl": re.compile(r"Will retry in")}
_CURL_DONE = re.compile(r"^clickup-curl code=(\d+) size=(\d+) exit=(\d+)$")


def _tool_command(tool, url, tries, idle_timeout, connect_timeout):
    if tool == "wget":
        # No -c; the server ignores Range, so a retry within the run starts from byte 0.
        return ["wget", "-O", "/dev/null", "--tries=%d" % tries, "--waitretry=0",
                "--retry-connrefused", "--read-timeout=%g" % idle_timeout,
                "--connect-timeout=%g" % connect_timeout, "--progress=dot:mega", url]
    if tool == "curl":
        # The body goes to stdout, which run_tool points at /dev/null: with -o /dev/null a
        # retry fails ("Failed to truncate file"), as curl truncates a named output before it
        # starts again; a stream it just starts again.  No -C, so a retry begins at byte 0.
        # The shortest retry delay is 1 s (0 means curl's own back-off); the stall limit is
        # in whole seconds.  -w reports the last transfer on stderr.
        return ["curl", "--no-progress-meter", "--retry", str(tries - 1), "--retry-all-errors",
                "--retry-delay", "1", "--speed-limit", "1",
                "--speed-time", str(max(1, round(idle_timeout))),
                "--connect-timeout", "%g" % connect_timeout,
                "-w", "%{stderr}\\nclickup-curl code=%{http_code} size=%{size_download} "
                "exit=%{exitcode}\\n", url]
    raise ValueError("tool must be 'wget' or 'curl', got %r" % tool)


def raw_log_path(out_trace, tool):
    """Where run_tool keeps the tool's raw output: TRACE.jsonl -> TRACE.<tool>.log."""
    base = out_trace[:-len(".jsonl")] if out_trace.endswith(".jsonl") else out_trace
    return "%s.%s.log" % (base, tool)


def _classify(tool, line):
    for ev, pat in _TOOL_EVENTS[tool]:
        m = pat.search(line)
        if m:
            return ev, m
    return None, None


def run_tool(tool, url, out_trace, tries=20, idle_timeout=3.0, connect_timeout=30.0,
             give_up=600.0, popen=subprocess.Popen):
    """Download ``url`` with real wget or curl (body to /dev/null); return a summary.

    The tool's messages (stderr) are read line by line, each line kept in the raw log
    (``raw_log_path``) and, when it names an event, written to the trace with the time it
    arrived.  restarts = the tool's "Retrying." (wget) / "Will retry" (curl) lines that follow
    a failure of an established connection (after a failed connect they count in
    connect_errors, as in ``download``).  ok = exit
    status 0 and, for wget, a "saved [N/N]" line with N equal; for curl, HTTP 200 from -w.
    bytes = wget's saved count or curl's size_download.  transfer_s = process start to exit
    on our monotonic clock (the tools print no sub-second start time; spawning costs ms).
    The run is killed after ``give_up`` s.  ``popen`` lets a driver run it in a Mininet host
    (``host.popen``).  verified is None: the body goes to /dev/null.

    Stalls: wget's --read-timeout fires ``idle_timeout`` s after the last byte.  curl has no
    read timeout; its --speed-limit/--speed-time check averages over its last few seconds of
    progress, so after a fast burst it notices a stall several seconds late (about 7 s on
    loopback with a 1 s limit).
    """
    cmd = _tool_command(tool, url, tries, idle_timeout, connect_timeout)
    trace = Trace(out_trace)
    state = {"restarts": 0, "connect_errors": 0, "bytes": 0, "saved_ok": False, "code": None}
    trace.write({"ev": "spawn", "t": time.monotonic(), "wall": time.time(), "cmd": cmd})
    start = time.monotonic()
    proc = popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                 errors="replace", env=dict(os.environ, LC_ALL="C"))
    killer = threading.Timer(give_up, proc.kill) if give_up else None
    if killer:
        killer.start()
    try:
        with open(raw_log_path(out_trace, tool), "w") as raw:
            for line in proc.stderr:
                raw.write(line)
                _tool_line(tool, line.rstrip("\n"), state, trace)
        rc = proc.wait()
    finally:
        if killer:
            killer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    end = time.monotonic()
    ok = rc == 0 and (state["saved_ok"] if tool == "wget" else state["code"] == 200)
    summary = {"url": url, "tool": tool, "ok": ok, "verified": None,
               "transfer_s": round(end - start, 6), "restarts": state["restarts"],
               "connect_errors": state["connect_errors"], "bytes": state["bytes"], "exit": rc,
               "raw": raw_log_path(out_trace, tool), "reason": None if ok else
               ("give_up" if rc < 0 and give_up and end - start >= give_up else
                "exit %d" % rc)}
    trace.write(dict(summary, ev="summary", t=end, wall=time.time()))
    trace.close()
    return summary


def _tool_line(tool, line, state, trace):
    """Update ``state`` from one output line and trace what it says happened."""
    now = {"t": time.monotonic(), "wall": time.time()}
    m = _CURL_DONE.match(line) if tool == "curl" else None
    if m:
        state["code"], state["bytes"] = int(m.group(1)), int(m.group(2))
        if state["code"]:                       # 0: no response; the failure is traced
            trace.write(dict(now, ev="done" if state["code"] == 200 else "http_error",
                             bytes=state["bytes"], line=line))
        return
    ev, m = _classify(tool, line)
    if ev == "done":
        state["bytes"] = int(m.group(1))
        state["saved_ok"] = m.group(2) is None or m.group(1) == m.group(2)
    if ev:
        state["last"] = ev
        trace.write(dict(now, ev=ev, line=line))
    if _RESTART[tool].search(line):
        # As in download(): a retry after a failed connect is not a restart of the transfer.
        key = "connect_errors" if state.get("last") == "connect_error" else "restarts"
        state[key] += 1
        trace.write(dict(now, ev="restart" if key == "restarts" else "retry_connect",
                         restarts=state["restarts"]))


# ----------------------------------------------------------------------------- command line

def _stop_on_sigterm():
    def handler(signum, frame):
        raise SystemExit(0)             # unwinds to the finally that closes the server
    signal.signal(signal.SIGTERM, handler)


def _cmd_serve(a):
    _stop_on_sigterm()
    srv = serve(a.size, a.port, a.host, rate=a.rate, seed=a.seed, fail_after=a.fail_after,
                fail_mode=a.fail_mode, fail_count=a.fail_count)
    try:
        print(json.dumps({"ready": True, "port": srv.port, "size": a.size, "seed": a.seed,
                          "rate": a.rate, "path": "/file", "pid": os.getpid()}), flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        srv.close()
    return 0


def _cmd_get(a):
    out = download(a.url, a.out, tick=a.tick, idle_timeout=a.idle_timeout,
                   connect_timeout=a.connect_timeout, give_up=a.give_up or None,
                   max_restarts=a.max_restarts, announce=a.announce)
    print(json.dumps(out), flush=True)
    return 0 if out["ok"] else 1


def _cmd_put(a):
    out = upload(a.url, a.size, a.out, seed=a.seed, tick=a.tick, idle_timeout=a.idle_timeout,
                 connect_timeout=a.connect_timeout, give_up=a.give_up or None,
                 max_restarts=a.max_restarts, announce=a.announce)
    print(json.dumps(out), flush=True)
    return 0 if out["ok"] else 1


def _cmd_tool(a):
    out = run_tool(a.tool, a.url, a.out, tries=a.tries, idle_timeout=a.idle_timeout,
                   connect_timeout=a.connect_timeout, give_up=a.give_up or None)
    print(json.dumps(out), flush=True)
    return 0 if out["ok"] else 1


def _percentages(text):
    try:
        vals = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        vals = None
    if not vals or not all(0 <= v <= 100 for v in vals):
        raise argparse.ArgumentTypeError("expected percentages 0-100 separated by commas, "
                                         "got %r" % text)
    return vals


def _byte_count(text):
    try:
        return parse_bytes(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _client_options(p, idle=3.0):
    p.add_argument("url", help="http://HOST:PORT/file")
    p.add_argument("--out", required=True, help="JSONL trace to write")
    p.add_argument("--idle-timeout", type=float, default=idle,
                   help="seconds without progress before the connection counts as failed "
                        "(default %g)" % idle)
    p.add_argument("--connect-timeout", type=float, default=30.0)
    p.add_argument("--give-up", type=float, default=600.0,
                   help="stop after this many seconds (0: never)")


def _attempt_options(p):
    p.add_argument("--tick", type=float, default=0.1, help="progress sample interval, s")
    p.add_argument("--max-restarts", type=int, default=None)
    p.add_argument("--announce", type=_percentages, default=(),
                   help="print a line when the transfer reaches these %% of the file")


def build_parser():
    p = argparse.ArgumentParser(prog="python -m experiments.traffic",
                                description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve", help="serve one deterministic file over HTTP/1.0")
    s.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    s.add_argument("--host", default="0.0.0.0")
    s.add_argument("--size", type=_byte_count, required=True, help="file size, e.g. 1.2M")
    s.add_argument("--rate", type=_byte_count, default=None, help="pace each connection, B/s")
    s.add_argument("--seed", type=int, default=0, help="content seed")
    s.add_argument("--fail-after", type=_byte_count, default=None,
                   help="test fixture: break the first connection(s) after this many bytes")
    s.add_argument("--fail-mode", choices=FAULT_MODES, default="reset")
    s.add_argument("--fail-count", type=int, default=1, help="how many connections to break")
    s.set_defaults(func=_cmd_serve)
    g = sub.add_parser("get", help="download, starting over from byte 0 on failure")
    _client_options(g)
    _attempt_options(g)
    g.set_defaults(func=_cmd_get)
    u = sub.add_parser("put", help="upload, starting over from byte 0 on failure")
    _client_options(u, idle=UPLOAD_IDLE)
    _attempt_options(u)
    u.add_argument("--size", type=_byte_count, required=True, help="bytes to send, e.g. 250M")
    u.add_argument("--seed", type=int, default=0, help="content seed")
    u.set_defaults(func=_cmd_put)
    t = sub.add_parser("tool", help="download with real wget or curl")
    t.add_argument("tool", choices=("wget", "curl"))
    _client_options(t)
    t.add_argument("--tries", type=int, default=20, help="attempts in all")
    t.set_defaults(func=_cmd_tool)
    return p


def main(argv=None):
    a = build_parser().parse_args(argv)
    return a.func(a)


if __name__ == "__main__":
    sys.exit(main())

"""The replication channel's wire: frames, their incremental encoding, socket paths.

A frame is a 4-byte big-endian length and one JSON object (nf/state/replica.py
says what the objects are).  Big messages (a snapshot of a large table) are
encoded a slice at a time (``_Job.step`` with a deadline), so that the sender
spreads the work over loop turns; ``FrameReader`` reassembles frames from a
byte stream.  The path checks say, before an NF starts, why it could not
listen at or send to a Unix socket path.
"""

import json
import os
import socket
import stat
import struct
import time

__all__ = ["HEADER", "MAX_FRAME", "SLICE", "SOCKET_PATH_MAX", "frame", "FrameReader",
           "listen_path_problem", "peer_path_problem"]

HEADER = struct.Struct(">I")
MAX_FRAME = 1 << 30           # bytes: a longer frame is a broken peer
SLICE = 128                   # list items (or dict keys) per C-encoder call
SOCKET_PATH_MAX = 107         # bytes of a Unix socket path (sun_path is 108 with the NUL)

_enc = json.JSONEncoder(separators=(",", ":")).encode


# -- paths ---------------------------------------------------------------------------------

def _path_length_problem(path, what):
    n = len(os.fsencode(path))
    if n > SOCKET_PATH_MAX:
        return "%s %s: a Unix socket path has at most %d bytes, this one %d" % (
            what, path, SOCKET_PATH_MAX, n)
    return None


def _dir_problem(path, what):
    d = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(d):
        return "%s %s: no directory %s" % (what, path, d)
    return None


def _someone_listens(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.setblocking(False)
    try:
        s.connect(path)
        return True
    except BlockingIOError:            # the backlog is full: it listens
        return True
    except OSError:
        return False
    finally:
        s.close()


def listen_path_problem(path, what="--replica-listen"):
    """What keeps this process from listening at ``path`` (None if nothing): a
    missing directory, a path too long for a socket, a file that is not a socket,
    another process listening there.  A stale socket file is no problem (it is
    replaced)."""
    problem = _path_length_problem(path, what) or _dir_problem(path, what)
    if problem:
        return problem
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as e:
        return "%s %s: %s" % (what, path, e.strerror)
    if not stat.S_ISSOCK(st.st_mode):
        return "%s %s exists and is not a socket; choose another path" % (what, path)
    if _someone_listens(path):
        return "%s %s: another process listens there" % (what, path)
    return None


def peer_path_problem(path, what="--replicate-to"):
    """What is wrong with the peer's path (None if nothing).  The peer need not be
    listening yet; its directory must exist."""
    return _path_length_problem(path, what) or _dir_problem(path, what)


# -- framing and encoding ------------------------------------------------------------------

def _key(k):
    """A dict key as the encoder writes it (non-string keys become strings)."""
    return _enc({k: 0})[1:-3]


def _json_pieces(obj):
    """``obj`` as JSON text in pieces: containers with more than SLICE items are
    cut into slices of SLICE, each encoded by one C-encoder call; dicts are
    walked key by key (a state's few top-level keys), small values encoded
    whole.  ``"".join(_json_pieces(x))`` is valid JSON equal in value to x."""
    if isinstance(obj, dict):
        if not obj:
            yield "{}"
            return
        if len(obj) > SLICE:
            items = list(obj.items())
            yield "{"
            for i in range(0, len(items), SLICE):
                text = _enc(dict(items[i:i + SLICE]))
                yield ("," if i else "") + text[1:-1]
            yield "}"
            return
        first = True
        for k, v in obj.items():
            yield ("{" if first else ",") + _key(k) + ":"
            first = False
            yield from _json_pieces(v)
        yield "}"
    elif isinstance(obj, (list, tuple)) and len(obj) > SLICE:
        yield "["
        for i in range(0, len(obj), SLICE):
            text = _enc(list(obj[i:i + SLICE]))
            yield ("," if i else "") + text[1:-1]
        yield "]"
    else:
        yield _enc(obj)


def frame(msg):
    """One message as a frame (length + JSON), encoded at once."""
    body = _enc(msg).encode()
    return HEADER.pack(len(body)) + body


class FrameReader:
    """Reassembles frames from a byte stream: ``feed(data)`` returns the complete
    frames' bodies; ValueError for a length past MAX_FRAME."""

    def __init__(self):
        self.buf = bytearray()
        self.want = None            # the length of the frame being received

    def feed(self, data):
        buf = self.buf
        buf += data
        out = []
        start = 0
        while True:
            if self.want is None:
                if len(buf) - start < 4:
                    break
                n = HEADER.unpack_from(buf, start)[0]
                if n > MAX_FRAME:
                    raise ValueError("frame of %d bytes (at most %d)" % (n, MAX_FRAME))
                self.want = n
                start += 4
            if len(buf) - start < self.want:
                break
            out.append(bytes(buf[start:start + self.want]))
            start += self.want
            self.want = None
        if start:
            del buf[:start]
        return out


class _Job:
    """One outgoing message being encoded, a piece at a time."""

    __slots__ = ("seq", "kind", "gen", "pieces", "size", "events", "turns", "busy")

    def __init__(self, seq, kind, msg, events=0):
        self.seq, self.kind, self.events = seq, kind, events
        self.gen = _json_pieces(msg)
        self.pieces, self.size = [], 0
        self.turns = 0              # step() calls
        self.busy = 0.0             # seconds spent encoding

    def step(self, deadline):
        """Encode until done (True) or past ``deadline`` (False)."""
        t = time.perf_counter()
        self.turns += 1
        for piece in self.gen:
            b = piece.encode()
            self.pieces.append(b)
            self.size += len(b)
            now = time.perf_counter()
            if now >= deadline:
                self.busy += now - t
                return False
        self.busy += time.perf_counter() - t
        return True

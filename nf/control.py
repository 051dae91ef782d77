"""The control socket: Click's ControlSocket protocol over a Unix socket.

The server lives inside the router's event loop, so every handler runs
between two batches.  The protocol is Click's, line based, CRLF-terminated:

    server: Click::ControlSocket/1.3
    client: READ elem.handler            -> 200 Read handler 'elem.handler' OK
                                            DATA <n>
                                            <n bytes>
    client: WRITE elem.handler value     -> 200 Write handler 'elem.handler' OK
    client: WRITEDATA elem.handler <n>   (then n bytes of value)
    client: CHECKREAD h / CHECKWRITE h   -> 200 if the handler exists, else 511
    client: QUIT

Error codes: 500 syntax error, 501 unknown command, 510 no such element,
511 no such handler, 520 handler failed.  Handlers without a dot belong to the
router: ``version``, ``list``, ``classes``, ``config``, ``flatconfig`` (read)
and ``stop`` (write), plus the router's ``global_handlers``: its own ``hold``
(read/write: packet sources stopped, their frames queued), the upgrade
machinery's ``upgrade``, ``upgrade_status``, ``upgrade_report``, and
replication's ``replication``, ``replication_role``.  The socket file is created with mode 0600.
"""

import os
import socket
import stat

from . import __version__
from .errors import HandlerError

__all__ = ["ControlServer", "ControlClient", "ControlError", "GREETING"]

GREETING = "Click::ControlSocket/1.3"


class ControlError(Exception):
    def __init__(self, code, message):
        super().__init__("%d %s" % (code, message))
        self.code, self.message = code, message


class _Conn:
    __slots__ = ("sock", "inbuf", "want")

    def __init__(self, sock):
        self.sock, self.inbuf, self.want = sock, b"", None


class ControlServer:
    """Serves a router's handlers on a Unix socket at ``path``."""

    def __init__(self, router, path):
        self.router, self.path = router, path
        if os.path.exists(path):
            if not stat.S_ISSOCK(os.stat(path).st_mode):
                raise OSError("%s exists and is not a socket; choose another --control path"
                              % path)
            os.unlink(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)         # the socket is created 0600: handlers can upgrade the NF
        try:
            self.sock.bind(path)
        finally:
            os.umask(old)
        os.chmod(path, 0o600)
        self.sock.listen(16)
        self.sock.setblocking(False)
        self.conns = {}
        router.add_reader(self.sock.fileno(), self._accept)
        router.add_cleanup(self.close)

    def _accept(self):
        try:
            s, _ = self.sock.accept()
        except BlockingIOError:
            return
        s.setblocking(False)
        c = _Conn(s)
        self.conns[s.fileno()] = c
        self.router.add_reader(s.fileno(), lambda: self._readable(c))
        self._send(c, GREETING + "\r\n")

    def _send(self, c, text):
        data = text.encode() if isinstance(text, str) else text
        c.sock.setblocking(True)       # replies are small; a slow client only delays itself
        try:
            c.sock.sendall(data)
        except OSError:
            self._close(c)
        else:
            c.sock.setblocking(False)

    def _close(self, c):
        fd = c.sock.fileno()
        if fd >= 0:
            self.router.remove_reader(fd)
            self.conns.pop(fd, None)
        c.sock.close()

    def _readable(self, c):
        try:
            data = c.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._close(c)
            return
        c.inbuf += data
        while c.sock.fileno() >= 0:
            if c.want is not None:          # WRITEDATA body
                handler, n = c.want
                if len(c.inbuf) < n:
                    return
                value, c.inbuf = c.inbuf[:n], c.inbuf[n:]
                c.want = None
                self._send(c, self._write(handler, value.decode(errors="replace")))
                continue
            line, sep, rest = c.inbuf.partition(b"\n")
            if not sep:
                return
            c.inbuf = rest
            self._command(c, line.decode(errors="replace").strip())

    def _command(self, c, line):
        if not line:
            return
        verb, _, arg = line.partition(" ")
        verb = verb.upper()
        arg = arg.strip()
        if verb == "QUIT":
            self._send(c, "200 Goodbye!\r\n")
            self._close(c)
        elif verb == "READ":
            handler = arg.split(" ", 1)[0]
            self._send(c, self._read(handler))
        elif verb == "WRITE":
            handler, _, value = arg.partition(" ")
            self._send(c, self._write(handler, value))
        elif verb == "WRITEDATA":
            handler, _, n = arg.partition(" ")
            try:
                c.want = (handler, int(n))
            except ValueError:
                self._send(c, "500 Syntax error: WRITEDATA expects a handler and a byte "
                              "count\r\n")
        elif verb in ("CHECKREAD", "CHECKWRITE"):
            self._send(c, self._check(arg, "r" if verb == "CHECKREAD" else "w"))
        else:
            self._send(c, "501 Unimplemented command '%s'\r\n" % verb)

    # -- handler dispatch ------------------------------------------------------------------
    def _global_read(self, name):
        r = self.router
        if name == "version":
            return __version__
        if name == "list":
            return "%d\n%s" % (len(r.elements), "\n".join(r.elements))
        if name == "classes":
            from .element import ELEMENTS
            return "\n".join(sorted(ELEMENTS))
        if name in ("config", "flatconfig"):
            from .config import render
            return render(r.graph)
        raise KeyError(name)

    def _resolve(self, handler, mode):
        """-> (callable, None) or (None, error reply)."""
        r = self.router
        name, dot, h = handler.rpartition(".")
        if not dot:
            rd, wr = r.global_handlers.get(h, (None, None))
            if mode == "r" and rd is not None:
                return (lambda *_: rd()), None
            if mode == "w" and wr is not None:
                return wr, None
            if mode == "r" and h in ("version", "list", "classes", "config", "flatconfig"):
                return (lambda *_: self._global_read(h)), None
            if mode == "w" and h == "stop":
                return (lambda *_: r.please_stop()), None
            return None, "511 No global handler '%s'\r\n" % h
        e = r.elements.get(name)
        if e is None:
            return None, "510 No element named '%s'\r\n" % name
        table = e._read_handlers if mode == "r" else e._write_handlers
        if h not in table:
            return None, "511 No %s handler '%s'\r\n" % ("read" if mode == "r" else "write",
                                                         handler)
        return ((lambda *_: e.read(h)) if mode == "r" else (lambda v: e.write(h, v))), None

    def _read(self, handler):
        fn, err = self._resolve(handler, "r")
        if err:
            return err
        try:
            data = str(fn()).encode()
        except HandlerError as ex:
            return "520 %s\r\n" % str(ex).replace("\n", " ")
        return ("200 Read handler '%s' OK\r\nDATA %d\r\n" % (handler, len(data))).encode() + data

    def _write(self, handler, value):
        fn, err = self._resolve(handler, "w")
        if err:
            return err
        try:
            fn(value)
        except HandlerError as ex:
            return "520 %s\r\n" % str(ex).replace("\n", " ")
        return "200 Write handler '%s' OK\r\n" % handler

    def _check(self, handler, mode):
        _, err = self._resolve(handler, mode)
        return err or "200 %s handler '%s' OK\r\n" % ("Read" if mode == "r" else "Write", handler)

    def close(self):
        for c in list(self.conns.values()):
            self._close(c)
        self.router.remove_reader(self.sock.fileno())
        self.sock.close()
        try:
            os.unlink(self.path)
        except OSError:
            pass


class ControlClient:
    """A small blocking client: ``ControlClient(path).read("rw.table_size")``."""

    def __init__(self, path, timeout=10.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(path)
        except FileNotFoundError:
            raise ControlError(0, "no control socket at %s (is the NF running with "
                                  "--control %s?)" % (path, path)) from None
        self.f = self.sock.makefile("rb")
        greeting = self._line()
        if not greeting.startswith("Click::ControlSocket/"):
            raise ControlError(0, "unexpected greeting %r from %s" % (greeting, path))

    def _line(self):
        line = self.f.readline()
        if not line:
            raise ControlError(0, "control socket closed the connection")
        return line.decode().rstrip("\r\n")

    def _status(self):
        line = self._line()
        try:
            code = int(line[:3])
        except ValueError:
            raise ControlError(0, "bad reply %r" % line) from None
        if code >= 300:
            raise ControlError(code, line[4:])
        return code, line[4:]

    def read(self, handler):
        self.sock.sendall(("READ %s\r\n" % handler).encode())
        self._status()
        line = self._line()
        if not line.startswith("DATA "):
            raise ControlError(0, "expected DATA line, got %r" % line)
        n = int(line[5:])
        return self.f.read(n).decode()

    def write(self, handler, value=""):
        data = value.encode()
        if b"\n" in data or b"\r" in data:
            self.sock.sendall(("WRITEDATA %s %d\r\n" % (handler, len(data))).encode() + data)
        else:
            self.sock.sendall(("WRITE %s %s\r\n" % (handler, value)).encode())
        return self._status()[1]

    def check(self, handler, mode="r"):
        self.sock.sendall(("CHECK%s %s\r\n" % ("READ" if mode == "r" else "WRITE",
                                               handler)).encode())
        try:
            self._status()
            return True
        except ControlError as e:
            if e.code in (510, 511):
                return False
            raise

    def close(self):
        try:
            self.sock.sendall(b"QUIT\r\n")
        except OSError:
            pass
        self.f.close()
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

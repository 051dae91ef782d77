"""Root test: a NAT killed with SIGKILL in the middle of a TCP download and
restarted with --recover keeps the download going, with no RST.

The client (inside) downloads 30 MB from a server (outside) that paces it over
about 4 s.  The NF runs configs/nat.click with --store; once the store holds the
connection's mapping, the NF is killed with SIGKILL and started again at once
with --recover on the same store.  The client must receive every byte, intact
(sha256 against the server's), without ConnectionResetError or an early end.
Without the store, the restarted NAT would give the connection a new random
outside port and the server would answer the next segment with RST.
"""

import json
import os
import re
import signal
import sys
import time

import pytest

pytestmark = pytest.mark.root

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZE = 30 * 1000 * 1000
CHUNK = 64 * 1024

SERVER = r"""
import hashlib, json, os, socket, sys, time
size, chunk, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 5001)); s.listen(1)
print("ready", flush=True)
c, _ = s.accept()
h, sent, t0 = hashlib.sha256(), 0, time.monotonic()
period = seconds * chunk / size
try:
    while sent < size:
        d = os.urandom(min(chunk, size - sent))
        c.sendall(d); h.update(d); sent += len(d)
        delay = t0 + period * (sent // chunk) - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    c.shutdown(socket.SHUT_WR)
    c.recv(1)
    print(json.dumps({"sent": sent, "sha256": h.hexdigest()}), flush=True)
except OSError as e:
    print(json.dumps({"sent": sent, "error": str(e)}), flush=True)
"""

CLIENT = r"""
import hashlib, json, socket, sys, threading
# argv: server [tick seconds]; with a tick, an application keepalive byte goes to the
# server that often, so a NAT that forgot the connection draws an RST the client sees.
c = socket.create_connection((sys.argv[1], 5001), timeout=10)   # idle 10 s: give up
tick = float(sys.argv[2]) if len(sys.argv) > 2 else 0
stop = threading.Event()
def ticker():
    while not stop.wait(tick):
        try:
            c.send(b".")
        except OSError:
            return
if tick:
    threading.Thread(target=ticker, daemon=True).start()
h, got, reset, error, first = hashlib.sha256(), 0, False, None, True
try:
    while True:
        d = c.recv(65536)
        if not d:
            break
        h.update(d); got += len(d)
        if first:
            print("started", flush=True)
            first = False
except ConnectionResetError as e:
    reset, error = True, str(e)
except OSError as e:
    error = str(e)
stop.set()
c.close()
print(json.dumps({"bytes": got, "sha256": h.hexdigest(), "reset": reset, "error": error}),
      flush=True)
"""


def _nf(t, store, sock, recover=False):
    """The NAT with a store; with ``recover``, do not wait for its socket (the test
    reads its recovery summary first)."""
    return t.start_nf(os.path.join(ROOT, "configs", "nat.click"),
                      None if recover else sock,
                      ["--store", store, "--sync-interval", "0.2"]
                      + (["--control", sock, "--recover"] if recover else []))


def _wait_for(cond, what, timeout=10.0, proc=None):
    deadline = time.monotonic() + timeout
    while not cond():
        if proc is not None and proc.poll() is not None:
            pytest.fail("%s: the NF exited: %s" % (what, proc.stderr.read()))
        assert time.monotonic() < deadline, "timed out waiting for " + what
        time.sleep(0.02)


def _store_has_mapping(store):
    from nf.state import StoreError, load
    try:
        rec = load(store).get("rw")
    except StoreError:
        return False
    return rec is not None and bool(rec.data["mappings"] or rec.events)


def test_download_survives_sigkill_and_recover(tmp_path):
    from topologies.netns import SERVER_IP, ThreeNode
    store, sock = str(tmp_path / "nat.store"), str(tmp_path / "nat.sock")
    with ThreeNode(mode="nf") as t:
        nf = _nf(t, store, sock)
        srv = t.popen("s", [sys.executable, "-c", SERVER, SIZE, CHUNK, 4.0], text=True)
        assert srv.stdout.readline().strip() == "ready"
        cl = t.popen("c", [sys.executable, "-c", CLIENT, SERVER_IP], text=True)
        assert cl.stdout.readline().strip() == "started", cl.stderr.read()
        _wait_for(lambda: _store_has_mapping(store), "the mapping in the store", proc=nf)
        time.sleep(0.5)                          # well into the download

        os.kill(nf.pid, signal.SIGKILL)
        nf.wait(5)
        assert cl.poll() is None, "the download was still running when the NF died"
        killed_at = time.monotonic()
        nf2 = _nf(t, store, sock, recover=True)
        summary = nf2.stderr.readline()
        restart = time.monotonic() - killed_at
        restored = re.search(r"\brw (\d+) entries", summary)
        assert restored and int(restored.group(1)) >= 1, summary
        assert nf2.poll() is None, nf2.stderr.read()

        got = json.loads(cl.stdout.readline())   # the client gives up after 10 s idle
        assert not got["reset"] and got["error"] is None, (got, summary)
        assert got["bytes"] == SIZE, (got, summary)
        sent = json.loads(srv.stdout.readline())
        assert sent["sent"] == SIZE and got["sha256"] == sent["sha256"], \
            "the bytes arrived intact: %s %s" % (got, sent)
        assert restart < 5.0, "restarted and recovered within seconds (%.1f s)" % restart
        t.kill(nf2)
        assert nf2.returncode == 0, nf2.stderr.read()

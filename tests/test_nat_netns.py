"""Root test: two namespaces joined through the NF running configs/nat.click in a third."""

import os
import sys
import time

import pytest

from nf.control import ControlClient

pytestmark = pytest.mark.root

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SERVER = r"""
import hashlib, socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 5001)); s.listen(1)
print("ready", flush=True)
c, peer = s.accept()
h = hashlib.sha256(); n = 0
while True:
    d = c.recv(65536)
    if not d: break
    h.update(d); n += len(d)
c.sendall(b"ok"); c.close()
print(peer[0], n, h.hexdigest(), flush=True)
"""

CLIENT = r"""
import os, socket, sys, hashlib
data = os.urandom(int(sys.argv[2]))
c = socket.create_connection((sys.argv[1], 5001), timeout=20)
c.sendall(data); c.shutdown(socket.SHUT_WR)
assert c.recv(2) == b"ok"
print(hashlib.sha256(data).hexdigest())
"""


@pytest.fixture
def nat(tmp_path):
    from topologies.netns import ThreeNode
    with ThreeNode(mode="nf") as t:
        sock = str(tmp_path / "nat.sock")
        p = t.start_nf(os.path.join(ROOT, "configs", "nat.click"), sock)
        yield t, sock, p
        t.kill(p)
        assert p.returncode == 0, "SIGTERM stops the NF cleanly: %s" % p.stderr.read()


def test_ping_and_tcp_transfer_through_nat(nat):
    from topologies.netns import NF_OUT_IP, SERVER_IP
    t, sock, _ = nat
    r = t.run("c", ["ping", "-c", "3", "-i", "0.2", "-W", "2", SERVER_IP])
    assert r.returncode == 0, r.stdout + r.stderr
    assert " 0% packet loss" in r.stdout

    srv = t.popen("s", [sys.executable, "-c", SERVER], text=True)
    assert srv.stdout.readline().strip() == "ready"
    size = 5 * 1000 * 1000
    cl = t.run("c", [sys.executable, "-c", CLIENT, SERVER_IP, size], timeout=60, check=True)
    peer, n, digest = srv.stdout.readline().split()
    assert peer == NF_OUT_IP, "the server sees the NAT's outside address"
    assert int(n) == size
    assert digest == cl.stdout.strip(), "bytes arrive intact"
    with ControlClient(sock) as c:
        assert int(c.read("rw.table_size")) >= 1
        assert "10.0.0.1" in c.read("rw.mappings")


def test_a_short_pause_of_the_nf_loses_no_datagram(nat):
    """The NF's large receive buffers absorb a 300 ms stop of its process."""
    import signal
    t, _, nfproc = nat

    def pause():
        os.kill(nfproc.pid, signal.SIGSTOP)
        time.sleep(0.3)
        os.kill(nfproc.pid, signal.SIGCONT)
    sent, got, _ = t.probe_stream(4000, 2, pause)
    assert got["complete"] and got["sent"] == sent["sent"] == 8000
    assert got["lost"] == 0, got
    assert got["longest_gap_ms"] >= 200, "the pause was seen by the receiver: %s" % got

"""Root test: configs/firewall.click as a bump in the wire between two namespaces."""

import os
import sys

import pytest

from nf.control import ControlClient

pytestmark = pytest.mark.root

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

LISTEN = r"""
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 5002)); s.listen(1)
print("ready", flush=True)
c, _ = s.accept()
n = 0
while True:
    d = c.recv(65536)
    if not d: break
    n += len(d)
print(n, flush=True)
"""

CONNECT = r"""
import socket, sys
try:
    c = socket.create_connection((sys.argv[1], 5002), timeout=float(sys.argv[2]))
    c.sendall(b"x" * 100000); c.close(); print("connected")
except OSError as e:
    print("refused", e)
"""


@pytest.fixture
def firewall(tmp_path):
    from topologies.netns import ThreeNode
    with ThreeNode(mode="wire") as t:
        sock = str(tmp_path / "fw.sock")
        t.start_nf(os.path.join(ROOT, "configs", "firewall.click"), sock)
        yield t, sock


def test_inside_sessions_pass_outside_initiated_do_not(firewall):
    from topologies.netns import CLIENT_IP, SERVER_IP
    t, sock = firewall
    r = t.run("c", ["ping", "-c", "2", "-i", "0.2", "-W", "2", SERVER_IP])
    assert r.returncode == 0, r.stdout

    srv = t.popen("s", [sys.executable, "-c", LISTEN], text=True)
    assert srv.stdout.readline().strip() == "ready"
    out = t.run("c", [sys.executable, "-c", CONNECT, SERVER_IP, "5"]).stdout
    assert out.startswith("connected")
    assert srv.stdout.readline().strip() == "100000"

    lst = t.popen("c", [sys.executable, "-c", LISTEN], text=True)
    assert lst.stdout.readline().strip() == "ready"
    out = t.run("s", [sys.executable, "-c", CONNECT, CLIENT_IP, "2"]).stdout
    assert out.startswith("refused"), "an outside host must not open a session"
    with ControlClient(sock) as c:
        reasons = dict(line.split() for line in c.read("fw.drop_reasons").splitlines())
    assert int(reasons["unsolicited"]) > 0, "(the NF's counter, for information)"

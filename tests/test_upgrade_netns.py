"""Root tests: upgrades of a NAT under live traffic, judged from the end hosts.

* A constant-rate UDP stream with sequence numbers crosses a ``clickup``
  upgrade (to upgrades/nat-v2, which migrates the NAT's state from v1 to v2)
  and the receiver counts no lost datagram.
* A TCP download survives ``clickup`` and ``clickup-restart``, and is reset by
  ``native`` and ``hotswap``, which lose the NAT's mappings.  The download
  client sends a one-byte tick every 100 ms (an application keepalive): after a
  NAT forgets the mapping, the next tick leaves from a new random outside port,
  the server's kernel answers with RST, and the client sees it.  (A client that
  only receives would stall instead: the server's retransmissions to the old
  port are dropped by the NAT.)
"""

import json
import os
import sys
import time

import pytest

from nf.upgrade.client import request_upgrade

pytestmark = pytest.mark.root

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
V2 = os.path.join(ROOT, "upgrades", "nat-v2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_recover_netns import CHUNK, CLIENT, SERVER  # noqa: E402

SIZE = 20 * 1000 * 1000


@pytest.fixture
def nat(tmp_path):
    from topologies.netns import ThreeNode
    with ThreeNode(mode="nf") as t:
        sock = str(tmp_path / "nat.sock")
        p = t.start_nf(os.path.join(ROOT, "configs", "nat.click"), sock,
                       ["--store", str(tmp_path / "nat.store"), "--sync-interval", "0.2"])
        yield t, sock
        t.kill(p)


def _upgrade(sock, strategy):
    return request_upgrade(sock, {"to": os.path.join(V2, "nat.click"),
                                  "elements": os.path.join(V2, "elements"),
                                  "strategy": strategy}, timeout=60)


def test_udp_stream_loses_nothing_across_clickup(nat):
    t, sock = nat
    sent, got, rec = t.probe_stream(4000, 3, lambda: _upgrade(sock, "clickup"), after=1.0)
    assert rec["outcome"] == "done", rec
    assert rec["entries_migrated"] >= 1, ("the NAT's v1 state was migrated to v2", rec)
    assert got["complete"] and got["sent"] == sent["sent"] == 12000
    assert got["lost"] == 0, (got, rec)


@pytest.mark.parametrize("strategy,survives", [("clickup", True), ("clickup-restart", True),
                                               ("native", False), ("hotswap", False)])
def test_tcp_download_across_upgrade(nat, strategy, survives):
    from topologies.netns import SERVER_IP
    t, sock = nat
    srv = t.popen("s", [sys.executable, "-c", SERVER, SIZE, CHUNK, 3.0], text=True)
    assert srv.stdout.readline().strip() == "ready"
    cl = t.popen("c", [sys.executable, "-c", CLIENT, SERVER_IP, 0.1], text=True)
    assert cl.stdout.readline().strip() == "started", cl.stderr.read()
    time.sleep(0.7)
    rec = _upgrade(sock, strategy)
    assert rec["outcome"] == "done", rec
    got = json.loads(cl.stdout.readline())
    if survives:
        assert not got["reset"] and got["error"] is None, (got, rec)
        sent = json.loads(srv.stdout.readline())
        assert got["bytes"] == SIZE == sent["sent"] and got["sha256"] == sent["sha256"]
    else:
        assert got["reset"], "the client saw no RST: %s" % got
        assert got["bytes"] < SIZE


def test_clickup_restart_without_a_store_keeps_state_and_leaves_no_file(tmp_path):
    """Without --store, clickup-restart hands the state over in a one-off snapshot; the
    next version takes it over (also through a second restart) and deletes it on exit."""
    import tempfile
    from nf.control import ControlClient
    from topologies.netns import ThreeNode
    with ThreeNode(mode="nf") as t:
        sock = str(tmp_path / "nat.sock")
        p = t.start_nf(os.path.join(ROOT, "configs", "nat.click"), sock)
        store = os.path.join(tempfile.gettempdir(), "clickup-state-%d.db" % p.pid)

        def mappings():
            with ControlClient(sock) as c:
                return int(c.read("rw.table_size"))
        t.probe_stream(500, 1, lambda: None, after=0.5)
        assert mappings() >= 1
        for _ in range(2):
            rec = _upgrade(sock, "clickup-restart")
            assert rec["outcome"] == "done", rec
            assert mappings() >= 1, "the restarted NAT recovered its mappings"
            assert os.path.exists(store), "the running NF keeps its store"
        t.kill(p)
    assert not os.path.exists(store), "the one-off snapshot went with the NF"

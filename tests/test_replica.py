"""Live state replication between an active and a standby NF (nf.state.replica).

No root: two routers in one process, each running its loop in a thread with a
control socket in tmp_path, NAT and firewall elements fed in-memory packets
built with nf.headers (pushed on the router's own loop thread, where element
state lives); and two ``clickup nf run`` processes fed by FastUDPFlows."""

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from experiments.cli import main as clickup
from nf import headers as H
from nf.config import parse_string
from nf.control import ControlClient, ControlError
from nf.packet import Packet
from nf.testing import load_module_file
from nf.router import Router
from nf.control import ControlServer
from nf.state.replica import Replication
from nf.state.wire import FrameReader, _json_pieces, frame
from nf.state.sync import attach, journal_reader
from nf.state.store import load

ROOT = Path(__file__).resolve().parents[1]
IN, OUT = 0, 1
A, A2 = "10.0.0.2", "10.0.0.3"
NAT = "192.0.2.1"
R = "198.51.100.7"
SYNACK = H.TCP_SYN | H.TCP_ACK

CONFIG = """
rw :: IPRewriter(pattern %s 1024-65535 - - 0 1, drop);
InfiniteSource(ACTIVE false) -> [0]rw;
InfiniteSource(ACTIVE false) -> [1]rw;
rw[0] -> Discard;
rw[1] -> Discard;
fw :: StatefulFirewall;
InfiniteSource(ACTIVE false) -> [0]fw;
InfiniteSource(ACTIVE false) -> [1]fw;
fw[0] -> Discard;
fw[1] -> Discard;
""" % NAT


def load_nat_v2():
    """The IPRewriter (state version 2) of upgrades/nat-v2, compiled from its source."""
    path = ROOT / "upgrades" / "nat-v2" / "elements" / "rewriter_v2.py"
    return load_module_file(path, "nat_v2_rewriter_for_replica")[0]["IPRewriter"]


def wait(pred, timeout=10.0, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError("timed out waiting for %s" % what)


class Node:
    """One NF: a router with a control socket and a Replication, its loop in a thread.
    ``call(fn)`` runs fn on the loop thread (where element state may be touched)."""

    def __init__(self, tmp, name, peer, role, config=CONFIG, classes=None, **kw):
        self.name = name
        self.router = Router(parse_string(config), classes=classes)
        self.ctl = str(tmp / ("%s.sock" % name))
        ControlServer(self.router, self.ctl)
        self.listen = str(tmp / ("%s.replica" % name))
        self.rep = Replication(self.router, listen=self.listen,
                               peer=str(tmp / ("%s.replica" % peer)), role=role, node=name,
                               **kw)
        self.router.initialize()
        self._calls = queue.Queue()
        self.router.add_task(self._run_calls)
        self.thread = threading.Thread(target=self.router.run,
                                       kwargs={"install_signals": False}, daemon=True)
        self.thread.start()

    def _run_calls(self):
        while True:
            try:
                fn, box = self._calls.get_nowait()
            except queue.Empty:
                return False
            try:
                box.put((True, fn()))
            except Exception as e:          # handed to the caller
                box.put((False, e))

    def call(self, fn, *args, block=True):
        box = queue.Queue()
        self._calls.put((lambda: fn(*args), box))
        if not block:
            return box
        ok, value = box.get(timeout=30)
        if not ok:
            raise value
        return value

    def status(self):
        with ControlClient(self.ctl) as c:
            return json.loads(c.read("replication"))

    def write(self, handler, value=""):
        with ControlClient(self.ctl) as c:
            return c.write(handler, value)

    def read(self, handler):
        with ControlClient(self.ctl) as c:
            return c.read(handler)

    # -- traffic, pushed on the loop thread ----------------------------------------------
    def push(self, element, port, frame_bytes):
        def go():
            p = Packet(bytearray(frame_bytes))
            p.nh = 0
            self.router.elements[element].push(port, [p])
        self.call(go)

    def mappings(self):
        """{(proto, inside ip, inside port): (outside port, {remote: state})} of rw."""
        def get():
            out = {}
            for m in self.router.elements["rw"].export_state()["mappings"]:
                out[(m["proto"],) + tuple(m["inside"])] = (
                    m["outside"][1], {tuple(s["remote"]): s["state"] for s in m["sessions"]})
            return out
        return self.call(get)

    def sessions(self):
        """{(proto, inside, remote): state} of fw."""
        def get():
            return {(s["proto"], tuple(s["inside"]), tuple(s["remote"])): s["state"]
                    for s in self.router.elements["fw"].export_state()["sessions"]}
        return self.call(get)

    def stop(self):
        self.router.please_stop()
        self.thread.join(10)


@pytest.fixture
def nodes(tmp_path):
    """``start(name, peer, role, **kw)`` -> a running Node; all stopped at the end."""
    made = []

    def start(name, peer, role, **kw):
        n = Node(tmp_path, name, peer, role, **kw)
        made.append(n)
        return n
    yield start
    for n in made:
        if n.thread.is_alive():
            n.stop()


def in_sync(node):
    return node.status()["in_sync"]


def synced(active, standby, timeout=10.0):
    """Wait until the active reports in_sync (every message applied and acked)."""
    wait(lambda: in_sync(active) and in_sync(standby), timeout, "%s in sync with %s"
         % (active.name, standby.name))


def udp_out(node, src=A, sport=5000, dst=R, dport=53):
    node.push("rw", IN, H.udp(src, dst, sport, dport))
    return node.mappings()[("udp", src, sport)][0]


def tcp_out(node, src=A, sport=40000, dst=R, dport=80, flags=H.TCP_SYN):
    node.push("rw", IN, H.tcp(src, dst, sport, dport, flags=flags))
    return node.mappings()[("tcp", src, sport)][0]


def shift_clock(node, element, seconds):
    """Move an element's clock ``seconds`` ahead of the monotonic clock."""
    def go():
        e = node.router.elements[element]
        e.clock = lambda: time.monotonic() + seconds
    node.call(go)


# -- created, updated and removed entries ----------------------------------------------------

def test_created_updated_and_removed_nat_entries_replicate(nodes):
    standby = nodes("nf2", "nf1", "standby")
    active = nodes("nf1", "nf2", "active")
    synced(active, standby)
    uport = udp_out(active)
    tport = tcp_out(active)
    wait(lambda: standby.mappings().get(("tcp", A, 40000)), what="the TCP mapping")
    copy = standby.mappings()
    assert copy[("udp", A, 5000)] == (uport, {(R, 53): None}), "same outside port"
    assert copy[("tcp", A, 40000)] == (tport, {(R, 80): "syn"})

    active.push("rw", OUT, H.tcp(R, NAT, 80, tport, flags=SYNACK))      # the reply
    assert active.mappings()[("tcp", A, 40000)][1] == {(R, 80): "established"}
    wait(lambda: standby.mappings()[("tcp", A, 40000)][1] == {(R, 80): "established"},
         what="the TCP state change")

    active.push("rw", IN, H.udp(A, "203.0.113.5", 5000, 53))   # a second session
    wait(lambda: len(standby.mappings()[("udp", A, 5000)][1]) == 2, what="the new session")
    assert standby.mappings()[("udp", A, 5000)][0] == uport

    # the active expires the UDP mapping (its clock jumps past UDP_TIMEOUT; TCP stays)
    shift_clock(active, "rw", 400)
    assert active.call(active.router.elements["rw"].expire) == 2
    wait(lambda: ("udp", A, 5000) not in standby.mappings(), what="the expiry")
    assert list(standby.mappings()) == [("tcp", A, 40000)]

    active.write("rw.clear")
    wait(lambda: standby.mappings() == {}, what="the clear")
    synced(active, standby)
    st = standby.status()
    assert st["events_applied"] >= 6 and st["skipped"] == 0
    assert st["peer_node"] == "nf1" and st["peer_graph_version"]


def test_firewall_sessions_replicate(nodes):
    standby = nodes("nf2", "nf1", "standby")
    active = nodes("nf1", "nf2", "active")
    synced(active, standby)
    key = (6, (A, 40000), (R, 80))
    active.push("fw", IN, H.tcp(A, R, 40000, 80, seq=100, flags=H.TCP_SYN))
    wait(lambda: standby.sessions().get(key) == "SYN_SENT", what="the firewall session")
    active.push("fw", OUT, H.tcp(R, A, 80, 40000, seq=500, ack=101, flags=SYNACK))
    active.push("fw", IN, H.tcp(A, R, 40000, 80, seq=101, ack=501, flags=H.TCP_ACK))
    assert active.sessions()[key] == "ESTABLISHED"
    wait(lambda: standby.sessions().get(key) == "ESTABLISHED", what="the handshake")
    active.write("fw.clear")
    wait(lambda: standby.sessions() == {}, what="the clear")


def test_the_standby_does_not_expire_and_a_promotion_restarts_idle_times(nodes):
    standby = nodes("nf2", "nf1", "standby")
    active = nodes("nf1", "nf2", "active")
    synced(active, standby)
    udp_out(active)
    active.push("fw", IN, H.tcp(A, R, 40000, 80, seq=100, flags=H.TCP_SYN))
    wait(lambda: standby.mappings() and standby.sessions(), what="the entries")
    # a day later on the standby's clocks: its timers expire nothing
    for name in ("rw", "fw"):
        shift_clock(standby, name, 86400)
        standby.call(standby.router.elements[name].expire)
    assert list(standby.mappings()) == [("udp", A, 5000)] and len(standby.sessions()) == 1
    assert "idle 86400s" in standby.read("rw.mappings")

    standby.write("replication_role", "active")
    assert standby.status()["role"] == "active"
    idle = standby.call(lambda: [s["idle"] for name in ("rw", "fw") for s in _sessions(
        standby.router.elements[name].export_state())])
    assert len(idle) == 2 and max(idle) < 5, "idle times restart at the promotion"
    for name in ("rw", "fw"):
        standby.call(standby.router.elements[name].expire)
    assert list(standby.mappings()) == [("udp", A, 5000)] and len(standby.sessions()) == 1
    # now active, it expires what stays idle past the timeout
    shift_clock(standby, "rw", 86400 + 400)
    assert standby.call(standby.router.elements["rw"].expire) == 1
    assert standby.mappings() == {}


def _sessions(state):
    """Every session of an IPRewriter's or a StatefulFirewall's exported state."""
    if "mappings" in state:
        return [s for m in state["mappings"] for s in m["sessions"]]
    return state["sessions"]


# -- full resyncs ------------------------------------------------------------------------------

def test_full_resync_when_the_standby_joins_late(nodes):
    active = nodes("nf1", "nf2", "active")
    ports = {sport: udp_out(active, sport=sport) for sport in range(5000, 5020)}
    time.sleep(0.3)                                   # it retries every 0.1 s meanwhile
    st = active.status()
    assert not st["connected"] and not st["in_sync"] and st["resyncs"] == 0
    assert "connect" in st["last_error"]
    standby = nodes("nf2", "nf1", "standby")
    synced(active, standby)
    copy = standby.mappings()
    assert {k[2]: v[0] for k, v in copy.items()} == ports
    st = active.status()
    assert st["resyncs"] == 1 and st["snapshot_entries"] == 20
    assert standby.status()["snapshot_entries"] == 20


def test_full_resync_when_the_standby_rejoins_after_a_restart(nodes):
    standby = nodes("nf2", "nf1", "standby")
    active = nodes("nf1", "nf2", "active")
    synced(active, standby)
    first = udp_out(active, sport=5000)
    wait(lambda: standby.mappings(), what="the first mapping")
    standby.stop()
    assert not os.path.exists(standby.listen), "the listener's socket file goes with it"
    wait(lambda: not active.status()["connected"], what="the active to see the loss")
    second = udp_out(active, sport=5001)             # made while no standby listens
    again = nodes("nf2", "nf1", "standby")           # a new receiver on the same path
    synced(active, again)
    assert {k[2]: v[0] for k, v in again.mappings().items()} == {5000: first, 5001: second}
    assert active.status()["resyncs"] == 2
    third = udp_out(active, sport=5002)
    wait(lambda: ("udp", A, 5002) in again.mappings(), what="events after the resync")
    assert again.mappings()[("udp", A, 5002)][0] == third


def test_a_newer_standby_receives_the_v1_state_migrated(nodes):
    v2 = load_nat_v2()
    assert v2.STATE_VERSION == 2
    standby = nodes("nf2", "nf1", "standby", classes={"IPRewriter": v2})
    active = nodes("nf1", "nf2", "active")
    before = udp_out(active, sport=5000)              # in the snapshot (version 1)
    synced(active, standby)
    tport = tcp_out(active)                           # events at version 1
    active.push("rw", OUT, H.tcp(R, NAT, 80, tport, flags=SYNACK))
    wait(lambda: standby.mappings().get(("tcp", A, 40000), (0, {}))[1] == {
        (R, 80): "established"}, what="the migrated events")
    assert type(standby.router.elements["rw"]) is v2
    copy = standby.mappings()
    assert copy[("udp", A, 5000)][0] == before and copy[("tcp", A, 40000)][0] == tport
    text = standby.read("rw.mappings")                 # v2's mapping lines: counters
    assert "packets 0 bytes 0" in text and text.count("\n") == 1
    assert standby.status()["skipped"] == 0


def test_elements_the_standby_lacks_or_runs_as_another_class_are_skipped(nodes):
    other = """
rw :: IPRewriter(pattern %s 1024-65535 - - 0 1, drop);
InfiniteSource(ACTIVE false) -> [0]rw;
InfiniteSource(ACTIVE false) -> [1]rw;
rw[0] -> Discard;
rw[1] -> Discard;
InfiniteSource(ACTIVE false) -> fw :: Counter -> Discard;
""" % NAT
    standby = nodes("nf2", "nf1", "standby", config=other)
    active = nodes("nf1", "nf2", "active")
    synced(active, standby)
    active.push("fw", IN, H.tcp(A, R, 40000, 80, seq=100, flags=H.TCP_SYN))
    udp_out(active)
    wait(lambda: standby.mappings(), what="the NAT's entry")
    synced(active, standby)
    st = standby.status()
    assert st["skipped"] >= 2 and "class differs" in st["skip_reasons"]["fw"]


# -- roles -------------------------------------------------------------------------------------

def test_a_promoted_standby_sends_to_its_peer(nodes):
    nf2 = nodes("nf2", "nf1", "standby")
    nf1 = nodes("nf1", "nf2", "active")
    synced(nf1, nf2)
    port = udp_out(nf1, sport=5000)
    wait(lambda: nf2.mappings(), what="the mapping")
    assert nf2.status()["listening"] and not nf1.status()["listening"]

    with pytest.raises(ControlError, match="expected active or standby"):
        nf2.write("replication_role", "leader")
    nf2.write("replication_role", "active")           # the switchover's T2
    st = nf2.status()
    assert st["role"] == "active" and st["promotions"] == 1 and not st["listening"]
    assert not os.path.exists(nf2.listen)
    time.sleep(0.3)                                    # nf1 is active: it does not listen
    assert not nf2.status()["connected"] and not nf1.status()["connected"]
    assert nf2.mappings()[("udp", A, 5000)][0] == port
    later = udp_out(nf2, sport=5001)                  # traffic on the new active

    nf1.stop()                                         # the old NF restarts as standby
    nf1 = nodes("nf1", "nf2", "standby")
    synced(nf2, nf1)
    assert {k[2]: v[0] for k, v in nf1.mappings().items()} == {5000: port, 5001: later}
    assert nf1.status()["peer_node"] == "nf2"


def test_demotion_through_the_control_socket(nodes):
    nf2 = nodes("nf2", "nf1", "standby")
    nf1 = nodes("nf1", "nf2", "active")
    synced(nf1, nf2)
    udp_out(nf1, sport=5000)
    nf2.write("replication_role", "active")
    later = udp_out(nf2, sport=5001)
    nf1.rep.options = {"role": "active"}              # what a restart upgrade reuses
    nf1.write("replication_role", "standby")
    assert nf1.status()["role"] == "standby" and nf1.status()["listening"]
    assert nf1.rep.options["role"] == "standby"
    synced(nf2, nf1)
    assert nf1.mappings()[("udp", A, 5001)][0] == later
    nf1.write("replication_role", "standby")            # the same role: no change
    assert nf1.status()["in_sync"]


GENERATOR = CONFIG + """
gen :: RatedSource(RATE 2000) -> Discard;
"""


def test_a_standby_holds_its_packet_sources_until_it_is_promoted(nodes):
    """What reaches a standby waits (Router.hold) until it has the active's state."""
    nf2 = nodes("nf2", "nf1", "standby", config=GENERATOR)
    nf1 = nodes("nf1", "nf2", "active", config=GENERATOR)
    synced(nf1, nf2)
    count = lambda n: int(n.read("gen.count"))       # packets generated
    wait(lambda: count(nf1) > 100, what="the active's generator")
    time.sleep(0.2)
    st = nf2.status()
    assert count(nf2) == 0 and st["holding"] and st["rx_frames"] == 0
    assert not nf1.status()["holding"] and nf1.status()["rx_frames"] > 100
    assert nf2.read("hold") == "true" and nf1.read("hold") == "false"
    nf2.write("replication_role", "active")
    wait(lambda: count(nf2) > 100, what="the promoted NF's generator")
    assert not nf2.status()["holding"]
    nf1.write("replication_role", "standby")           # a demoted NF holds again
    assert nf1.status()["holding"]
    before = count(nf1)
    time.sleep(0.2)
    assert count(nf1) == before


def test_an_element_replaced_in_place_is_resynced(nodes):
    standby = nodes("nf2", "nf1", "standby")
    active = nodes("nf1", "nf2", "active")
    synced(active, standby)
    first = udp_out(active, sport=5000)

    def replace():                    # what an in-place upgrade's swap does to rw
        r = active.router
        old = r.elements["rw"]
        new = type(old)("rw", old.config, router=r)
        new.adopt_state(old)
        elements = dict(r.elements)
        elements["rw"] = new
        r.swap(r.graph, elements)
    active.call(replace)
    wait(lambda: active.status()["resyncs"] == 2, what="a resync")
    synced(active, standby)
    later = udp_out(active, sport=5001)                # journaled by the new element
    wait(lambda: ("udp", A, 5001) in standby.mappings(), what="the new element's events")
    assert {k[2]: v[0] for k, v in standby.mappings().items()} == {5000: first, 5001: later}
    assert active.status()["connections"] == 1, "on the same connection"


def test_a_peer_path_where_something_else_listens_is_retried_with_a_back_off(nodes):
    nf2 = nodes("nf2", "nf0", "active")        # its control socket is no replica receiver
    nf1 = nodes("nf1", "nf2", "active")
    nf1.rep.peer = nf2.ctl
    time.sleep(1.6)
    st = nf1.status()
    assert "bad message from the standby" in st["last_error"]
    assert 2 <= st["connections"] <= 5, "0.2, 0.4, 0.8 s apart, not every 0.1 s"


def test_a_standby_without_a_listen_path_is_refused(tmp_path):
    r = Router(parse_string(CONFIG))
    with pytest.raises(ValueError, match="needs a listen path"):
        Replication(r, peer=str(tmp_path / "x"), role="standby")
    rep = Replication(r, peer=str(tmp_path / "x"))
    assert rep.role == "active"
    with pytest.raises(ValueError, match="no listen path"):
        rep.set_role("standby")
    with pytest.raises(ValueError, match="already replicates"):
        Replication(r, peer=str(tmp_path / "y"))
    r.cleanup()


# -- the replication handler ---------------------------------------------------------------------

def test_the_handler_reports_sequence_numbers_and_in_sync(nodes):
    standby = nodes("nf2", "nf1", "standby")
    active = nodes("nf1", "nf2", "active", interval=3600)   # ticks driven by hand
    st = active.status()
    for key in ("role", "listen", "peer", "connected", "seq_sent", "seq_acked",
                "pending_events", "in_sync", "resyncs", "snapshot_entries", "events_applied",
                "skipped", "last_ack_mono"):
        assert key in st
    assert st["role"] == "active" and not st["connected"] and not st["in_sync"]
    assert st["seq_sent"] == st["seq_acked"] == 0 and st["last_ack_mono"] is None
    tick = active.rep._tick
    active.call(tick)                                          # connect and resync
    wait(lambda: active.status()["seq_acked"] == 1, what="the snapshot's ack")
    st = active.status()
    assert st["connected"] and st["in_sync"] and st["seq_sent"] == 1
    assert st["last_ack_mono"] <= time.monotonic()

    active.push("rw", IN, H.udp(A, R, 5000, 53))
    st = active.status()
    assert st["pending_events"] == 1 and not st["in_sync"], "a journaled event waits"
    active.call(tick)
    wait(lambda: active.status()["seq_acked"] == 2, what="the events' ack")
    st = active.status()
    assert st["in_sync"] and st["pending_events"] == 0 and st["seq_sent"] == 2

    stalled = standby.call(time.sleep, 0.6, block=False)      # the standby's loop stops
    time.sleep(0.05)
    active.push("rw", IN, H.udp(A, R, 5001, 53))
    active.call(tick)
    wait(lambda: active.status()["seq_sent"] == 3, what="the events to leave")
    st = active.status()
    assert st["seq_acked"] == 2 and not st["in_sync"], "sent, not yet acked"
    stalled.get(timeout=5)
    wait(lambda: active.status()["in_sync"], what="the late ack")
    sb = standby.status()
    assert sb["role"] == "standby" and sb["in_sync"] and sb["seq_sent"] == 3
    assert sb["seq_acked"] == 3 and sb["events_applied"] == 2


def test_the_store_and_the_replica_both_see_every_event(nodes, tmp_path):
    standby = nodes("nf2", "nf1", "standby")
    active = nodes("nf1", "nf2", "active")
    path = str(tmp_path / "nf1.store")
    syncer = active.call(attach, active.router, path, 3600)   # syncs by hand
    synced(active, standby)
    for sport in range(5000, 5010):
        udp_out(active, sport=sport)
    wait(lambda: len(standby.mappings()) == 10, what="the replica")
    active.call(syncer.sync)
    assert len(load(path)["rw"].events) == 10, "the store got every event too"
    active.call(syncer.close)
    assert active.call(lambda: active.router.elements["rw"]._journal is not None), \
        "the replica still reads the journal"
    udp_out(active, sport=5010)
    wait(lambda: len(standby.mappings()) == 11, what="events after the store closed")


def test_journal_readers_each_see_every_event_once():
    from nf.testing import make
    e = make("IPRewriter", "pattern %s 1024-65535 - - 0 1, drop" % NAT)
    assert e._journal is None
    a, b = journal_reader(e), journal_reader(e)

    def send(sport):
        p = Packet(bytearray(H.udp(A, R, sport, 53)))
        p.nh = 0
        e.push(IN, [p])

    send(1)
    send(2)
    assert [k[2] for _, k, _ in a.drain()] == [1, 2]
    send(3)
    assert a.pending() == 1 and b.pending() == 3
    assert [k[2] for _, k, _ in b.drain()] == [1, 2, 3]
    assert [k[2] for _, k, _ in a.drain()] == [3]
    assert a.drain() == [] and b.drain() == [] and e._journal == []
    a.close()
    assert e._journal is not None, "b still reads"
    b.close()
    assert e._journal is None, "the last reader turned it off"


# -- the snapshot's cost on the loop -----------------------------------------------------------

def _table(n):
    return {"mappings": [{
        "proto": "udp", "inside": ["10.%d.%d.%d" % (i >> 16, (i >> 8) & 255, i & 255), 5000],
        "outside": [NAT, 1024 + i], "input": 0, "foutput": 0, "routput": 1, "keeps_dst": True,
        "sessions": [{"remote": [R, 53], "rewritten": [R, 53], "foutput": 0, "routput": 1,
                      "state": None, "idle": 1.0}]} for i in range(n)],
            "mapping_failures": 0, "bad_packets": 0}


def test_a_snapshot_of_10000_mappings_is_spread_over_loop_turns(nodes):
    active = nodes("nf1", "nf2", "active")
    active.call(active.router.elements["rw"].import_state, _table(10000), 1)
    standby = nodes("nf2", "nf1", "standby")
    synced(active, standby, timeout=60)
    assert standby.read("rw.table_size") == "10000"
    t = active.status()["timing"]
    s = standby.status()["timing"]
    print("\n10,000 mappings, %d bytes: active export %.1f ms (one turn), encoding %.1f ms "
          "in %d turns, longest encode/send turn %.1f ms; standby decode %.1f ms, import "
          "%.1f ms" % (t["snapshot_bytes"], t["export_ms"], t["encode_ms"], t["encode_turns"],
                       t["max_pump_ms"], s["decode_ms"], s["import_ms"]))
    assert t["snapshot_bytes"] > 2000000
    # Behaviour, not speed (the turn lengths are printed, and measured by the docstring's
    # numbers): the encoding is cut into several loop turns.
    assert t["encode_turns"] >= 5, "the encoding is spread over loop turns"


# -- framing -------------------------------------------------------------------------------------

def test_pieces_are_valid_json_and_frames_reassemble():
    obj = {"type": "snapshot", "seq": 7, "states": {
        "rw": {"class": "IPRewriter", "version": 1, "data": _table(300)},
        "t": {"class": "X", "version": 1, "data": {str(i): [i] for i in range(300)}},
        1: [], "e": {}}}
    text = "".join(_json_pieces(obj))
    assert json.loads(text) == json.loads(json.dumps(obj))
    assert len(list(_json_pieces(obj))) > 6, "big lists and dicts come in slices"
    stream = frame({"type": "ack", "seq": 1}) + frame(obj) + frame({"type": "ack", "seq": 2})
    r = FrameReader()
    got = []
    for i in range(0, len(stream), 1000):
        got += [json.loads(b) for b in r.feed(stream[i:i + 1000])]
    assert [m.get("seq") for m in got] == [1, 7, 2] and not r.buf
    with pytest.raises(ValueError, match="frame of"):
        FrameReader().feed(b"\xff\xff\xff\xff")


# -- the command line ----------------------------------------------------------------------------

def _cfg(tmp_path):
    cfg = tmp_path / "nat.click"
    cfg.write_text("""
define($active true);
src :: FastUDPFlows(RATE 500, LIMIT -1, LENGTH 60, SRCETH 02:00:00:00:00:01,
                    SRCIP %s, DSTETH 02:00:00:00:00:02, DSTIP %s, FLOWS 40, FLOWSIZE 1,
                    ACTIVE $active);
rw :: IPRewriter(pattern %s 1024-65535 - - 0 1, drop);
src -> [0]rw;
InfiniteSource(ACTIVE false) -> [1]rw;
rw[0] -> Discard;
rw[1] -> Discard;
""" % (A, R, NAT))
    return str(cfg)


@pytest.mark.parametrize("extra, message", [
    (["--role", "standby"], "--role needs --replicate-to PATH and/or --replica-listen PATH"),
    (["--replica-interval", "0.01"], "--replica-interval needs --replicate-to"),
    (["--replicate-to", "{d}/b", "--role", "standby"],
     "--role standby needs --replica-listen PATH"),
    (["--replica-listen", "{d}/a", "--role", "active"], "--role active needs --replicate-to"),
    (["--replica-listen", "{d}/a", "--replicate-to", "{d}/a"], "are the same path"),
    (["--replicate-to", "{d}/b", "--replica-interval", "0"],
     "--replica-interval: expected a positive number of seconds, got 0.0"),
    (["--replicate-to", "{d}/b", "--replica-interval", "-1"],
     "--replica-interval: expected a positive number of seconds"),
    (["--replicate-to", "{d}/nowhere/b"], "--replicate-to {d}/nowhere/b: no directory"),
    (["--replica-listen", "{d}/nowhere/a"], "--replica-listen {d}/nowhere/a: no directory"),
    (["--replica-listen", "{d}/file"], "exists and is not a socket"),
    (["--replica-listen", "{d}/" + "x" * 120], "a Unix socket path has at most 107 bytes"),
    (["--replica-listen", "{d}/c.sock", "--control", "{d}/c.sock"],
     "--replica-listen and --control are the same path"),
])
def test_bad_replication_options_are_clear_errors(tmp_path, capsys, extra, message):
    (tmp_path / "file").write_text("not a socket")
    argv = ["nf", "run", _cfg(tmp_path)] + [x.format(d=tmp_path) for x in extra]
    assert clickup(argv) == 1
    err = capsys.readouterr().err
    assert message.format(d=tmp_path) in err, err


def test_bad_role_and_interval_values_are_refused_by_the_parser(tmp_path, capsys):
    for extra, message in ((["--role", "leader"], "invalid choice: 'leader'"),
                           (["--replica-interval", "soon"], "invalid float value: 'soon'")):
        with pytest.raises(SystemExit) as e:
            clickup(["nf", "run", _cfg(tmp_path), "--replicate-to", str(tmp_path / "b")]
                    + extra)
        assert e.value.code == 2 and message in capsys.readouterr().err


def test_listening_where_another_nf_listens_is_an_error_and_cuts_no_link(nodes, tmp_path,
                                                                         capsys):
    standby = nodes("nf2", "nf1", "standby")
    active = nodes("nf1", "nf2", "active")
    synced(active, standby)
    assert clickup(["nf", "run", _cfg(tmp_path), "--replica-listen",
                    str(tmp_path / "nf2.replica")]) == 1
    assert "another process listens there" in capsys.readouterr().err
    # a connection that does not start with hello is closed; the live link stays
    import socket
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(standby.listen)
    s.sendall(frame({"type": "events", "seq": 99, "events": {}}))
    s.settimeout(5)
    assert s.recv(100) == b"", "closed without an ack"
    s.close()
    udp_out(active)
    wait(lambda: standby.mappings(), what="the link still replicating")
    synced(active, standby)
    assert active.status()["resyncs"] == 1 and standby.status()["connections"] == 1
    assert standby.status()["seq_acked"] == active.status()["seq_acked"] == 2


def _nf(*args):
    return subprocess.Popen([sys.executable, "-m", "experiments.cli", "nf", "run"]
                            + list(args), stderr=subprocess.PIPE, text=True)


def _read(sock, handler):
    with ControlClient(sock) as c:
        return c.read(handler)


def test_two_nf_processes_replicate_and_switch_roles(tmp_path):
    cfg = _cfg(tmp_path)
    a, b = str(tmp_path / "nf1.replica"), str(tmp_path / "nf2.replica")
    c1, c2 = str(tmp_path / "nf1.sock"), str(tmp_path / "nf2.sock")
    nf2 = _nf(cfg, "-d", "active=false", "--control", c2, "--replica-listen", b,
              "--replicate-to", a, "--role", "standby")
    nf1 = _nf(cfg, "--control", c1, "--replica-listen", a, "--replicate-to", b,
              "--replica-interval", "0.01")
    procs = [nf1, nf2]
    try:
        wait(lambda: os.path.exists(c1) and os.path.exists(c2), 20, "the control sockets")
        wait(lambda: _read(c2, "rw.table_size") == "40", 20, "40 mappings on the standby")
        wait(lambda: json.loads(_read(c1, "replication"))["in_sync"], 20, "in_sync")
        st1 = json.loads(_read(c1, "replication"))
        st2 = json.loads(_read(c2, "replication"))
        assert st1["role"] == "active" and st2["role"] == "standby"
        assert st2["peer_node"] == "nf1" and st1["interval"] == 0.01

        def pairs(sock):
            return sorted(line.split(" idle")[0] for line in _read(sock, "rw.mappings")
                          .splitlines())
        assert pairs(c1) == pairs(c2), "the same outside ports"
        # the switchover: nf2 takes the active role, nf1 steps down to standby
        with ControlClient(c2) as c:
            c.write("replication_role", "active")
        with ControlClient(c1) as c:
            c.write("replication_role", "standby")
        wait(lambda: json.loads(_read(c2, "replication"))["in_sync"], 20, "nf2 in_sync")
        assert json.loads(_read(c1, "replication"))["role"] == "standby"
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(10)
    assert nf1.returncode == 0 and nf2.returncode == 0, nf1.stderr.read() + nf2.stderr.read()
    assert not os.path.exists(a) and not os.path.exists(b)

"""The upgrade package upgrades/nat-v2: IPRewriter version 2 (per-mapping counters,
creation times), its migration from state version 1, its config and its manifest.

The v2 class is loaded from the package file the way an upgrade loader does it --
compiled from source inside nf.element.registering_into -- and must leave the
library's IPRewriter (version 1) in place for everyone else."""

import json
import shutil
from pathlib import Path

import pytest

from nf import headers as H
from nf.config import build_elements, check, parse_file, render
from nf.element import ELEMENTS, lookup
from nf.elements import rewriter as library
from nf.packet import Packet
from nf.testing import load_module_file
from nf.testing import attach
from nf.upgrade.manifest import verify_manifest
from tests import checksum_ref

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "upgrades" / "nat-v2"
MODULE = PKG / "elements" / "rewriter_v2.py"

IN, OUT = 0, 1
A, A2 = "10.0.0.2", "10.0.0.3"
NAT = "192.0.2.1"
R, R2 = "198.51.100.7", "203.0.113.5"
SPEC = "pattern %s 1024-65535 - - 0 1, drop, FILTER endpoint" % NAT
SYNACK, FINACK = H.TCP_SYN | H.TCP_ACK, H.TCP_FIN | H.TCP_ACK


def load_package_module():
    """(classes the module defined, module), compiled from the package's source."""
    return load_module_file(MODULE, "nat_v2_rewriter_under_test")


CLASSES, V2MOD = load_package_module()
V2 = CLASSES["IPRewriter"]


class Clock:
    def __init__(self, t=1000.0):
        self.t = t

    def __call__(self):
        return self.t


def nat(cls, config=SPEC, t=1000.0):
    e = attach(cls(cls.__name__.lower(), config))
    e.initialize()
    e.clock = Clock(t)
    return e


def send(e, port, frame):
    before = [len(s.packets) for s in e.sinks]
    p = Packet(bytearray(frame))
    p.nh = 0
    e.push(port, [p])
    return [[q.data for q in s.packets[n:]] for s, n in zip(e.sinks, before)]


def only(outs, port):
    assert [len(o) for o in outs] == [1 if i == port else 0 for i in range(len(outs))], outs
    frame = outs[port][0]
    assert H.verify(frame, 0) == []
    assert checksum_ref.ip_ok(frame, 0) and checksum_ref.l4_ok(frame, 0)
    return frame


def out_port(e, frame):
    return H.parse(only(send(e, IN, frame), 0), 0)["sport"]


def busy_v1_table():
    """A v1 NAT holding TCP sessions in every state, UDP with two sessions (one of
    them inbound) and an ICMP echo mapping, at different idle ages."""
    e = nat(library.IPRewriter)
    ports = {}
    ports["est"] = out_port(e, H.tcp(A, R, 40000, 80, flags=H.TCP_SYN))
    send(e, OUT, H.tcp(R, NAT, 80, ports["est"], flags=SYNACK))
    ports["syn"] = out_port(e, H.tcp(A, R, 40001, 80, flags=H.TCP_SYN))
    ports["fin"] = out_port(e, H.tcp(A, R, 40002, 80, flags=H.TCP_SYN))
    send(e, OUT, H.tcp(R, NAT, 80, ports["fin"], flags=SYNACK))
    send(e, IN, H.tcp(A, R, 40002, 80, flags=FINACK))
    ports["closed"] = out_port(e, H.tcp(A, R, 40003, 80, flags=H.TCP_SYN))
    send(e, OUT, H.tcp(R, NAT, 80, ports["closed"], flags=H.TCP_RST))
    e.clock.t += 40
    ports["udp"] = out_port(e, H.udp(A2, R, 5000, 53))
    e.clock.t += 20
    send(e, OUT, H.udp(R2, NAT, 53, ports["udp"]))          # inbound session, idle 0
    ports["ping"] = H.parse(only(send(e, IN, H.icmp_echo(A, R, 7, 1)), 0), 0)["id"]
    e.clock.t += 5
    return e, ports


def sessions_by_mapping(state):
    """{(proto, inside): (outside, {remote: (state, rewritten)})} of exported data."""
    return {(m["proto"], tuple(m["inside"])): (
        tuple(m["outside"]),
        {tuple(s["remote"]): (s["state"], tuple(s["rewritten"])) for s in m["sessions"]})
        for m in state["mappings"]}


# -- loading -------------------------------------------------------------------------------

def test_loading_the_package_leaves_the_library_registry_alone():
    assert set(CLASSES) == {"IPRewriter"}
    assert V2 is not library.IPRewriter and issubclass(V2, library.IPRewriter)
    assert ELEMENTS["IPRewriter"] is library.IPRewriter
    assert lookup("IPRewriter") is library.IPRewriter
    assert (V2.CODE_VERSION, V2.STATE_VERSION) == (2, 2)
    assert V2.MIGRATIONS == {1: V2MOD.migrate_v1_to_v2}
    assert library.IPRewriter.COUNT_TRAFFIC is False and V2.COUNT_TRAFFIC is True
    # the documentation's fixed form, as tests/test_library.py checks for the library
    assert V2.signature().startswith("IPRewriter(") and V2.summary()
    assert all(doc for _, doc in list(V2._read_handlers.values()) +
               list(V2._write_handlers.values()))
    assert "top" in V2.doc() and "State: version 2" in V2.doc()


def test_package_config_is_configs_nat_click_and_resolves_to_v2():
    shipped = parse_file(str(PKG / "nat.click"))
    assert render(shipped) == render(parse_file(str(ROOT / "configs" / "nat.click")))
    elements, errors = build_elements(shipped, classes=CLASSES)
    assert errors == [] and check(shipped, elements) == []
    assert type(elements["rw"]) is V2


# -- migration -----------------------------------------------------------------------------

def test_migration_lifts_v1_data_into_the_v2_layout():
    v1 = {"mapping_failures": 3, "bad_packets": 1, "mappings": [
        {"proto": "udp", "inside": [A, 5000], "outside": [NAT, 7000], "input": 0,
         "foutput": 0, "routput": 1, "keeps_dst": True,
         "sessions": [{"remote": [R, 53], "rewritten": [R, 53], "foutput": 0, "routput": 1,
                       "state": None, "idle": 12.5},
                      {"remote": [R2, 53], "rewritten": [R2, 53], "foutput": 0,
                       "routput": 1, "state": None, "idle": 30}]},
        {"proto": "tcp", "inside": [A, 1], "outside": [NAT, 7001], "input": 0,
         "foutput": 0, "routput": 1, "keeps_dst": True, "sessions": []}]}
    original = json.loads(json.dumps(v1))
    v2 = V2MOD.migrate_v1_to_v2(v1)
    assert v1 == original                                  # the input is left alone
    expected = json.loads(json.dumps(v1))
    expected["mappings"][0].update(packets=0, bytes=0, age=30.0)
    expected["mappings"][1].update(packets=0, bytes=0, age=0.0)
    assert v2 == expected


def test_v1_export_migrated_into_v2_keeps_every_port_and_tcp_state():
    v1, ports = busy_v1_table()
    data = json.loads(json.dumps(v1.export_state()))
    e = nat(V2, t=5.0)                                     # another process, another clock
    e.import_state(data, 1)
    lifted = e.export_state()
    assert sessions_by_mapping(lifted) == sessions_by_mapping(data)
    states = {m["inside"][1]: m["sessions"][0]["state"] for m in lifted["mappings"]
              if m["proto"] == "tcp"}
    assert states == {40000: "established", 40001: "syn", 40002: "fin-out", 40003: "closed"}
    by_inside = {(m["proto"], m["inside"][1]): m for m in lifted["mappings"]}
    assert all((m["packets"], m["bytes"]) == (0, 0) for m in lifted["mappings"])
    assert by_inside[("tcp", 40000)]["age"] == 65.0        # oldest session's idle time
    assert by_inside[("udp", 5000)]["age"] == 25.0         # the older of its two sessions
    assert lifted["mapping_failures"] == 0 and lifted["bad_packets"] == 0
    # and it translates with the migrated ports: replies get in, flows go out
    assert only(send(e, OUT, H.tcp(R, NAT, 80, ports["est"], b"r")), 1) == \
        H.tcp(R, A, 80, 40000, b"r")
    assert only(send(e, IN, H.udp(A2, R2, 5000, 53, b"q")), 0) == \
        H.udp(NAT, R2, ports["udp"], 53, b"q")
    assert only(send(e, OUT, H.icmp_echo(R, NAT, ports["ping"], 1, reply=True)), 1) == \
        H.icmp_echo(R, A, 7, 1, reply=True)
    assert e.read("table_size") == v1.read("table_size") == "6"


@pytest.mark.parametrize("data, where", [
    ([], "a dict with a 'mappings' list"),
    ({"mappings": {}}, "a dict with a 'mappings' list"),
    ({"mappings": ["tcp"]}, "mapping 0: expected a dict"),
    ({"mappings": [{"proto": "tcp"}]}, "mapping 0: expected a 'sessions' list"),
    ({"mappings": [{"sessions": [{"idle": -1}]}]}, "mapping 0, session 0"),
    ({"mappings": [{"sessions": [{"idle": "3"}]}]}, "non-negative number 'idle'"),
    ({"mappings": [{"sessions": [{"idle": True}]}]}, "session 0"),
    ({"mappings": [{"sessions": [{"idle": float("nan")}]}]}, "session 0"),
    ({"mappings": [{"sessions": [{}]}]}, "session 0"),
])
def test_malformed_v1_data_is_refused_with_a_clear_error(data, where):
    with pytest.raises(ValueError, match="IPRewriter state version 1.*" + where):
        V2.migrate_state(data, 1)
    e = nat(V2)
    port = out_port(e, H.udp(A, R, 1, 53))
    with pytest.raises(ValueError, match="state version 1"):
        e.import_state(data, 1)
    assert e.read("table_size") == "1"                     # the running table is kept
    assert only(send(e, OUT, H.udp(R, NAT, 53, port)), 1) == H.udp(R, A, 53, 1)


def test_v2_import_checks_its_own_fields():
    e = nat(V2)
    out_port(e, H.udp(A, R, 1, 53))
    good = e.export_state()
    for field, value in (("packets", -1), ("bytes", 1.5), ("age", "old"), ("packets", True)):
        bad = json.loads(json.dumps(good))
        bad["mappings"][0][field] = value
        with pytest.raises(ValueError, match="mapping 0: %s" % field):
            e.import_state(bad, 2)
    with pytest.raises(ValueError, match="version 2"):      # v1 cannot take v2 state back
        nat(library.IPRewriter).import_state(good, 2)


# -- counting on the packet path ---------------------------------------------------------

def test_v2_counts_packets_and_bytes_and_translates_like_v1():
    v1, v2 = nat(library.IPRewriter), nat(V2)
    frames = [H.tcp(A, R, 40000, 80, flags=H.TCP_SYN)] + \
        [H.tcp(A, R, 40000, 80, b"x" * n) for n in (10, 100, 1000)]
    sizes = [len(f) for f in frames]
    port = out_port(v2, frames[0])
    assert out_port(v1, frames[0]) != 0
    for f in frames[1:]:                                   # the fast path: plain TCP hits
        assert only(send(v2, IN, f), 0) == H.tcp(NAT, R, port, 80, f[40:])
    reply = H.tcp(R, NAT, 80, port, b"y" * 500)
    assert only(send(v2, OUT, reply), 1) == H.tcp(R, A, 80, 40000, b"y" * 500)
    only(send(v2, IN, H.icmp_echo(A, R, 9, 1, b"p")), 0)   # the general path counts too
    v2.clock.t += 7
    data = {(m["proto"], m["inside"][1]): m for m in v2.export_state()["mappings"]}
    assert (data[("tcp", 40000)]["packets"], data[("tcp", 40000)]["bytes"]) == \
        (5, sum(sizes) + len(reply))
    assert (data[("icmp", 9)]["packets"], data[("icmp", 9)]["bytes"]) == (1, 28 + 1)
    assert data[("tcp", 40000)]["age"] == 7.0
    lines = v2.read("mappings").splitlines()
    assert lines[0].endswith("packets 1 bytes 29 age 7s") and lines[0].startswith("icmp")
    assert lines[1].endswith("packets 5 bytes %d age 7s" % (sum(sizes) + len(reply)))
    assert "packets" not in v1.read("mappings")


def test_top_lists_the_ten_mappings_with_most_bytes():
    e = nat(V2)
    for i in range(12):
        port = out_port(e, H.udp(A, R, 1000 + i, 53, b"z" * (10 * i)))
        for _ in range(2):
            send(e, OUT, H.udp(R, NAT, 53, port, b"z" * (10 * i)))
    top = e.read("top").splitlines()
    assert len(top) == 10
    assert [line.split()[1] for line in top] == ["%s:%d" % (A, 1000 + i)
                                                 for i in range(11, 1, -1)]
    assert top[0].endswith("packets 3 bytes %d age 0s" % (3 * (28 + 110)))


def test_v2_state_round_trip_keeps_counters_and_age():
    e = nat(V2)
    port = out_port(e, H.udp(A, R, 1, 53, b"abc"))
    e.clock.t += 50
    send(e, OUT, H.udp(R, NAT, 53, port))
    data = json.loads(json.dumps(e.export_state()))
    f = nat(V2, t=3.0)
    f.import_state(data, 2)
    f.clock.t += 10
    assert f.read("mappings") == "udp %s:1 -> %s:%d idle 10s sessions 1: %s:53 " \
        "packets 2 bytes 59 age 60s" % (A, NAT, port, R)


# -- journal and hand-over across versions -------------------------------------------------

def test_v1_journal_migrates_and_replays_into_v2():
    v1 = nat(library.IPRewriter)
    out_port(v1, H.udp(A, R, 1, 53))
    snapshot = json.loads(json.dumps(v1.export_state()))
    v1._journal = []
    tcp = out_port(v1, H.tcp(A, R, 40000, 80, flags=H.TCP_SYN))
    send(v1, OUT, H.tcp(R, NAT, 80, tcp, flags=SYNACK))
    events = json.loads(json.dumps(v1._journal))
    r = nat(V2)
    r.import_state(snapshot, 1)
    r.replay_events(V2.migrate_events(events, 1))
    assert sessions_by_mapping(r.export_state()) == sessions_by_mapping(v1.export_state())
    assert "established packets 0 bytes 0" in r.read("mappings")


def test_adopting_a_v1_table_migrates_it():
    v1, ports = busy_v1_table()
    v2 = nat(V2, t=v1.clock.t)
    assert v2.adopt_state(v1) == 6
    assert sessions_by_mapping(v2.export_state()) == sessions_by_mapping(v1.export_state())
    assert only(send(v2, OUT, H.tcp(R, NAT, 80, ports["est"])), 1) == H.tcp(R, A, 80, 40000)


# -- the package's manifest ----------------------------------------------------------------

def test_shipped_package_matches_its_manifest():
    assert verify_manifest(PKG) == []


def test_tampered_copy_of_the_package_is_refused(tmp_path):
    copy = tmp_path / "nat-v2"
    shutil.copytree(PKG, copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert verify_manifest(copy) == []
    code = copy / "elements" / "rewriter_v2.py"
    code.write_text(code.read_text().replace("COUNT_TRAFFIC = True", "COUNT_TRAFFIC = False"))
    (copy / "elements" / "extra.py").write_text("")
    assert verify_manifest(copy) == ["digest mismatch: elements/rewriter_v2.py",
                                     "extra file elements/extra.py (not in the manifest)"]

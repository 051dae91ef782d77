"""Tests for nf.elements.sources: generators driven by an injected clock, and pcap
files checked against headers and records packed here with struct."""

import io
import struct

import pytest

from nf import headers as H
from nf.errors import ConfigError, HandlerError
from nf.packet import Packet
from nf.testing import make
from tests import checksum_ref


class Clock:
    def __init__(self, t=0.0):
        self.t = t

    def __call__(self):
        return self.t


class FakeRouter:
    """The router services sources use: tasks and please_stop."""

    def __init__(self):
        self.addresses = None
        self.tasks, self.stops = [], 0

    def add_task(self, fn):
        self.tasks.append(fn)

    def please_stop(self):
        self.stops += 1


def frames_out(e):
    return [p.data for p in e.sinks[0].packets]


def drain(e, limit=1000):
    """Call run_task until it reports no work."""
    for _ in range(limit):
        if not e.run_task():
            return
    raise AssertionError("run_task never went idle")


# (The documented fixed form of every element is checked in tests/test_library.py.)


# -- InfiniteSource ------------------------------------------------------------------------

def test_infinite_source_limit_and_burst():
    s = make("InfiniteSource", "\\<0800 4500>, 5, 2")
    sizes = []
    while s.run_task():
        sizes.append(len(s.sinks[0].packets))
    assert sizes == [2, 4, 5]
    assert frames_out(s) == [b"\x08\x00\x45\x00"] * 5
    assert s.read("count") == "5"
    assert not s.run_task()
    s.write("reset")
    assert s.run_task() and s.read("count") == "2"


def test_infinite_source_packets_are_independent_copies():
    s = make("InfiniteSource", "DATA abc, LIMIT 2, BURST 2")
    s.run_task()
    a, b = s.sinks[0].packets
    a.buf[0] = 0x7A
    assert b.data == b"abc"
    s.write("reset")
    s.run_task()
    assert frames_out(s)[2:] == [b"abc", b"abc"]


def test_infinite_source_default_data_and_timestamp():
    s = make("InfiniteSource", "LIMIT 1")
    s.wallclock = lambda: 1234.5
    s.run_task()
    (p,) = s.sinks[0].packets
    assert len(p) >= 64 and p.ts == 1234.5


def test_infinite_source_handlers():
    s = make("InfiniteSource", "x, LIMIT 3, BURST 10, ACTIVE false")
    assert s.read("active") == "false"
    assert not s.run_task() and s.read("count") == "0"
    s.write("active", "true")
    s.write("limit", "4")
    assert s.read("limit") == "4"
    s.run_task()
    assert s.read("count") == "4"
    s.write("burstsize", "1")
    s.write("limit", "-1")
    s.run_task()
    assert s.read("count") == "5"
    with pytest.raises(HandlerError, match="expected integer"):
        s.write("limit", "lots")


def test_infinite_source_data_syntax_and_datasize():
    s = make("InfiniteSource", 'DATA "a\\tb\\x41\\101\\0" \\<ff>, DATASIZE 14, LIMIT 1')
    s.run_task()
    assert frames_out(s) == [b"a\tbAA\x00 \xffa\tbAA\x00"]
    with pytest.raises(ConfigError, match="hex digits"):
        make("InfiniteSource", "\\<0g>")
    with pytest.raises(ConfigError, match="BURST: expected at least 1"):
        make("InfiniteSource", "x, 1, 0")


def test_infinite_source_registers_task_and_stops_router():
    router = FakeRouter()
    s = make("InfiniteSource", "x, LIMIT 2, BURST 5, STOP true", router=router)
    assert router.tasks == [s.run_task]
    assert router.tasks[0]()
    assert not router.tasks[0]() and not router.tasks[0]()
    assert router.stops == 1


def test_infinite_source_golden_frame():
    frame = H.ether("00:00:00:00:00:02", "00:00:00:00:00:01", H.ETHERTYPE_IP,
                    H.udp("10.0.0.1", "10.0.0.2", 9, 9, b"x" * 18))
    s = make("InfiniteSource", "\\<%s>, 3, 3" % frame.hex())
    s.run_task()
    assert frames_out(s) == [frame] * 3
    assert H.verify(frames_out(s)[0]) == [] and checksum_ref.l4_ok(frames_out(s)[0])


# -- RatedSource ---------------------------------------------------------------------------

def test_rated_source_emits_what_is_due():
    s = make("RatedSource", "x, 100")
    s.clock = Clock(50.0)
    assert s.run_task() and s.read("count") == "1"       # first packet at once
    assert not s.run_task()
    s.clock.t = 50.5
    drain(s)
    assert s.read("count") == "51"
    s.clock.t = 55.0                                      # a late run catches up
    drain(s)
    assert s.read("count") == "501"
    assert len(s.sinks[0].packets) == 501


def test_rated_source_limit_rate_handler_and_stop():
    router = FakeRouter()
    s = make("RatedSource", "RATE 10, LIMIT 15, STOP true", router=router)
    s.clock = Clock(0.0)
    s.run_task()
    s.clock.t = 1.0
    drain(s)
    assert s.read("count") == "11"
    s.write("rate", "1000")
    assert s.read("rate") == "1000"
    s.clock.t = 1.002                       # pacing restarts: 1 now, 2 more by 2 ms
    drain(s)
    assert s.read("count") == "12"
    s.clock.t = 1.004
    drain(s)
    assert s.read("count") == "14"
    s.clock.t = 9.0
    drain(s)
    assert s.read("count") == "15" and router.stops == 1
    with pytest.raises(HandlerError, match="positive"):
        s.write("rate", "0")


def test_rated_source_inactive_does_not_catch_up():
    s = make("RatedSource", "x, 10, ACTIVE false")
    s.clock = Clock(0.0)
    assert not s.run_task()
    s.clock.t = 100.0
    s.write("active", "true")
    s.run_task()
    assert s.read("count") == "1"


# -- pcap: hand-built files --------------------------------------------------------------------

def pcap_bytes(records, endian="<", nano=False, linktype=1, magic=None):
    """A classic pcap file built field by field: records are (sec, frac, data)."""
    if magic is None:
        magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = struct.pack(endian + "I", magic)
    out += struct.pack(endian + "HH", 2, 4)
    out += struct.pack(endian + "iI", 0, 0)
    out += struct.pack(endian + "II", 65535, linktype)
    for sec, frac, data in records:
        out += struct.pack(endian + "IIII", sec, frac, len(data), len(data)) + data
    return out


FRAME1 = H.ether("00:00:00:00:00:02", "00:00:00:00:00:01", H.ETHERTYPE_IP,
                 H.tcp("10.0.0.1", "10.0.1.1", 1234, 80, b"data", flags=H.TCP_SYN))
FRAME2 = H.ether("00:00:00:00:00:01", "00:00:00:00:00:02", H.ETHERTYPE_IP,
                 H.udp("10.0.1.1", "10.0.0.1", 53, 5353, b"answer"))
FRAME3 = H.ether("00:00:00:00:00:02", "00:00:00:00:00:01", H.ETHERTYPE_IP,
                 H.icmp_echo("10.0.0.1", "10.0.1.1", 1, 2, b"ping"))


def write(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    return str(path)


def read_all(path, config=""):
    e = make("FromDump", path + ("," + config if config else ""))
    e.log = io.StringIO()
    drain(e)
    return e


@pytest.mark.parametrize("endian,nano", [("<", False), (">", False), ("<", True),
                                         (">", True)])
def test_from_dump_reads_hand_built_files(tmp_path, endian, nano):
    scale = 10 ** 9 if nano else 10 ** 6
    recs = [(1700000000, 123 * scale // 1000, FRAME1), (1700000001, 0, FRAME2),
            (1700000001, scale - 1, FRAME3)]
    path = write(tmp_path, "t.pcap", pcap_bytes(recs, endian, nano))
    e = read_all(path)
    packets = e.sinks[0].packets
    assert [p.data for p in packets] == [FRAME1, FRAME2, FRAME3]
    for p, (sec, frac, _) in zip(packets, recs):
        assert p.ts == pytest.approx(sec + frac / scale, abs=1e-6)
        assert p.off == 0 and p.nh == -1
    assert all(H.verify(p.data) == [] for p in packets)
    assert e.read("count") == "3" and e.read("filename") == path
    assert e.log.getvalue() == "" and e.last_error is None


def test_from_dump_raw_ip_sets_network_header(tmp_path):
    ip = H.udp("10.0.0.1", "10.0.0.2", 1, 2, b"raw")
    e = read_all(write(tmp_path, "raw.pcap", pcap_bytes([(1, 0, ip)], linktype=101)))
    (p,) = e.sinks[0].packets
    assert p.data == ip and p.nh == 0
    assert checksum_ref.ip_ok(p.data, 0) and checksum_ref.l4_ok(p.data, 0)


def test_from_dump_burst_and_active(tmp_path):
    recs = [(i, 0, FRAME2) for i in range(5)]
    e = make("FromDump", write(tmp_path, "b.pcap", pcap_bytes(recs)) + ", BURST 2, ACTIVE false")
    assert not e.run_task()
    e.write("active", "true")
    assert e.run_task() and e.read("count") == "2"
    drain(e)
    assert e.read("count") == "5"


@pytest.mark.parametrize("keep,message", [
    (6, "truncated record header (6 of 16 bytes)"),
    (16 + 40, "truncated packet data (40 of %d bytes)" % len(FRAME3)),
    (16, "truncated packet data (0 of %d bytes)" % len(FRAME3)),
])
def test_from_dump_truncated_last_record(tmp_path, keep, message):
    content = pcap_bytes([(1, 0, FRAME1), (2, 0, FRAME2), (3, 0, FRAME3)])
    third = len(content) - (16 + len(FRAME3))
    path = write(tmp_path, "cut.pcap", content[:third + keep])
    e = read_all(path)
    assert frames_out(e) == [FRAME1, FRAME2]
    assert e.last_error == "%s: record 3: %s" % (path, message)
    assert e.last_error in e.log.getvalue()
    assert not e.run_task()                 # reading has stopped, quietly


def test_from_dump_corrupt_length_and_stop(tmp_path):
    content = bytearray(pcap_bytes([(1, 0, FRAME1), (2, 0, FRAME2)]))
    second = 24 + 16 + len(FRAME1)
    struct.pack_into("<I", content, second + 8, 0x7FFFFFFF)
    router = FakeRouter()
    e = make("FromDump", write(tmp_path, "bad.pcap", bytes(content)) + ", STOP true",
             router=router)
    e.log = io.StringIO()
    drain(e)
    assert frames_out(e) == [FRAME1]
    assert "record 2: captured length 2147483647" in e.last_error
    assert router.stops == 1 and router.tasks == [e.run_task]


@pytest.mark.parametrize("content,message", [
    (b"", "not a pcap file"),
    (b"\x00" * 24, "not a pcap file (magic 0x00000000"),
    (struct.pack("<I", 0x0A0D0D0A) + b"\0" * 40, "pcapng format is not supported"),
    (pcap_bytes([])[:20], "truncated global header (20 of 24 bytes)"),
    (pcap_bytes([], linktype=105), "unsupported link type 105"),
])
def test_from_dump_bad_header_is_a_config_error(tmp_path, content, message):
    path = write(tmp_path, "h.pcap", content)
    with pytest.raises(ConfigError) as info:
        make("FromDump", path)
    assert path in str(info.value) and message in str(info.value)


def test_from_dump_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="No such file"):
        make("FromDump", str(tmp_path / "absent.pcap"))


def test_from_dump_timing_replays_original_spacing(tmp_path):
    recs = [(100, 0, FRAME1), (100, 500000, FRAME2), (101, 0, FRAME3)]
    e = make("FromDump", write(tmp_path, "t.pcap", pcap_bytes(recs)) + ", TIMING true")
    e.clock = Clock(20.0)
    assert e.run_task() and e.read("count") == "1"
    e.clock.t = 20.4
    assert not e.run_task()
    e.clock.t = 20.5
    assert e.run_task() and e.read("count") == "2"
    e.clock.t = 30.0
    drain(e)
    assert frames_out(e) == [FRAME1, FRAME2, FRAME3]


# -- ToDump ------------------------------------------------------------------------------------

def push_frames(e, frames, tss):
    batch = []
    for f, ts in zip(frames, tss):
        batch.append(Packet(bytearray(f), 0, ts))
    e.push(0, batch)


def parse_pcap(content):
    """Independent reader for what ToDump writes (little-endian)."""
    magic, major, minor, _zone, _sig, snap, link = struct.unpack_from("<IHHiIII", content)
    recs, i = [], 24
    while i < len(content):
        sec, frac, cap, orig = struct.unpack_from("<IIII", content, i)
        recs.append((sec, frac, orig, content[i + 16:i + 16 + cap]))
        i += 16 + cap
    return (magic, major, minor, snap, link), recs


def test_to_dump_writes_golden_file(tmp_path):
    path = str(tmp_path / "out.pcap")
    e = make("ToDump", path)
    push_frames(e, [FRAME1, FRAME2], [1700000000.25, 1700000001.000001])
    e.cleanup()
    header, recs = parse_pcap(open(path, "rb").read())
    assert header == (0xA1B2C3D4, 2, 4, 2000, 1)
    assert recs == [(1700000000, 250000, len(FRAME1), FRAME1),
                    (1700000001, 1, len(FRAME2), FRAME2)]
    assert e.read("count") == "2" and e.read("filename") == path
    assert frames_out(e) == [FRAME1, FRAME2]          # passed on to output 0


def test_to_dump_snaplen_encap_and_missing_timestamp(tmp_path):
    path = str(tmp_path / "ip.pcap")
    e = make("ToDump", path + ", 20, IP")
    e.wallclock = lambda: 42.5
    ip = H.tcp("10.0.0.1", "10.0.0.2", 1, 2, b"z" * 30)
    push_frames(e, [ip], [0.0])
    e.cleanup()
    header, recs = parse_pcap(open(path, "rb").read())
    assert header[3:] == (20, 101)
    assert recs == [(42, 500000, len(ip), ip[:20])]


def test_to_dump_errors(tmp_path):
    with pytest.raises(ConfigError, match="ENCAP: expected ETHER or IP"):
        make("ToDump", str(tmp_path / "x.pcap") + ", ENCAP FDDI")
    with pytest.raises(ConfigError, match="No such file"):
        make("ToDump", str(tmp_path / "no" / "dir.pcap"))


@pytest.mark.parametrize("config", ["", "NANO true", "ENCAP IP"])
def test_to_dump_from_dump_round_trip(tmp_path, config):
    path = str(tmp_path / "rt.pcap")
    frames = [FRAME1, FRAME2, FRAME3, FRAME1[:60]]
    tss = [1700000000.123456, 1700000000.5, 1700000007.000001, 1700000008.999999]
    out = make("ToDump", path + ("," + config if config else ""))
    push_frames(out, frames[:2], tss[:2])
    push_frames(out, frames[2:], tss[2:])
    out.cleanup()
    back = read_all(path)
    packets = back.sinks[0].packets
    assert [p.data for p in packets] == frames
    assert [round(p.ts * 1e6) for p in packets] == [round(t * 1e6) for t in tss]
    assert all(p.nh == (0 if "IP" in config else -1) for p in packets)


# -- with the real router ----------------------------------------------------------------------

def test_sources_in_a_router_until_stop(tmp_path):
    from nf.config import parse_string
    from nf.router import Router
    path = tmp_path / "run.pcap"
    config = """
        AddressInfo(me 10.0.0.1);
        src :: InfiniteSource(\\<%s>, LIMIT 10, BURST 4, STOP true)
            -> c :: Counter -> t :: Tee(2);
        t[0] -> ToDump(%s) -> Discard;
        t[1] -> d :: Discard;
    """ % (FRAME2.hex(), path)
    router = Router(parse_string(config))
    router.run(install_signals=False)
    assert router.read("c.count") == "10" and router.read("d.count") == "10"
    e = read_all(str(path))
    assert frames_out(e) == [FRAME2] * 10


# -- FastUDPFlows ------------------------------------------------------------------------------

SRC_MAC, DST_MAC = "02:00:00:00:00:01", "02:00:00:00:00:02"
SRC_IP, DST_IP = "10.0.0.2", "198.51.100.7"


def flows(rate, limit, length, nflows, flowsize, extra=""):
    config = "%s, %s, %s, %s, %s, %s, %s, %s, %s%s" % (
        rate, limit, length, SRC_MAC, SRC_IP, DST_MAC, DST_IP, nflows, flowsize, extra)
    s = make("FastUDPFlows", config)
    s.clock = Clock(0.0)
    return s


def expected_udp_frame(sport, dport, length, checksum=True):
    """The frame FastUDPFlows should send, built here: zero payload, TTL 250, IP id 0,
    no DF, and the UDP checksum from the naive RFC 1071 loop."""
    payload = bytes(length - 42)
    seg = bytearray(struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload)
    if checksum:
        pseudo = H._ip(SRC_IP) + H._ip(DST_IP) + struct.pack("!BBH", 0, 17, len(seg))
        seg[6:8] = struct.pack("!H", checksum_ref.rfc1071(pseudo + seg) or 0xFFFF)
    ip = H.ipv4(SRC_IP, DST_IP, H.IPPROTO_UDP, seg, ttl=250, ident=0, flags_frag=0)
    return H.ether(DST_MAC, SRC_MAC, H.ETHERTYPE_IP, ip)


def ports(frame):
    return struct.unpack_from("!HH", frame, 34)


@pytest.mark.parametrize("length", [60, 1514])
def test_fast_udp_flows_golden_frames_in_flow_order(length):
    s = flows(0, 12, length, 4, 3)
    assert s.run_task() and not s.run_task()            # RATE 0: all 12 at once, then LIMIT
    out = frames_out(s)
    assert len(out) == 12
    seen = [ports(f) for f in out]
    firsts = seen[::3]
    assert len({sp for sp, _ in firsts}) == 4            # four flows, distinct source ports
    assert seen == [p for p in firsts for _ in range(3)]  # 3 packets each, in turn
    for f in out:
        assert f == expected_udp_frame(*ports(f), length)
        assert H.verify(f) == []
        assert checksum_ref.ip_ok(f) and checksum_ref.l4_ok(f)
    p = s.sinks[0].packets[0]
    assert p.nh == 14 and p.dst_ip == H._ip(DST_IP)


def test_fast_udp_flows_with_the_same_seed_send_the_same_frames():
    def frames(extra):
        s = flows(0, 20, 60, 10, 2, extra)
        s.run_task()
        return frames_out(s)
    one, again, other = frames(", SEED 7"), frames(", SEED 7"), frames(", SEED 8")
    assert one == again and len(one) == 20
    assert [ports(f) for f in one] != [ports(f) for f in other]
    for f in one:
        assert f == expected_udp_frame(*ports(f), 60) and checksum_ref.l4_ok(f)


def test_fast_udp_flows_cycle_through_flows_across_runs_at_rate():
    s = flows(100, 10, 60, 3, 2)
    s.run_task()
    s.clock.t = 0.03                                    # 4 packets due: a, a, b, b
    drain(s)
    s.clock.t = 1.0                                     # the rest: c, c, a, a, b, b -> 10
    drain(s)
    seen = [ports(f)[0] for f in frames_out(s)]
    a, b, c = seen[0], seen[2], seen[4]
    assert seen == [a, a, b, b, c, c, a, a, b, b]
    assert s.read("count") == "10"


def test_fast_udp_flows_without_checksum_and_handlers():
    s = flows(10, -1, 60, 2, 1, ", false, ACTIVE false")
    assert not s.run_task()
    assert s.read("active") == "false"
    s.write("active", "true")
    s.run_task()
    f = frames_out(s)[0]
    assert f == expected_udp_frame(*ports(f), 60, checksum=False)
    s.write("rate", "0")
    assert s.read("rate") == "0"
    s.run_task()
    assert s.read("count") == "257"                     # unpaced: a full batch per run
    s.write("reset")
    assert s.read("count") == "0"
    with pytest.raises(HandlerError, match="RATE"):
        s.write("rate", "-5")


def test_fast_udp_flows_make_as_many_nat_mappings_as_flows():
    n = 3000
    s = flows(0, n, 60, n, 1)
    nat = make("IPRewriter", "pattern 192.0.2.1 1024-65535 - - 0 1, drop")
    s._connect_output(0, nat, 0)
    drain(s)
    assert nat.read("table_size") == str(n) and nat.read("mapping_failures") == "0"
    out = nat.sinks[0].packets
    assert len(out) == n
    for p in out[:50]:
        assert H.verify(p.data) == [] and checksum_ref.l4_ok(p.data)


def test_fast_udp_flows_all_source_ports_distinct_at_the_maximum():
    s = flows(0, 64512, 60, 64512, 1)
    drain(s)
    assert sorted(ports(f)[0] for f in frames_out(s)) == list(range(1024, 65536))


@pytest.mark.parametrize("args, message", [
    ((0, 1, 59, 1, 1), "LENGTH"),
    ((0, 1, 65550, 1, 1), "LENGTH"),
    ((0, 1, 60, 0, 1), "FLOWS"),
    ((0, 1, 60, 64513, 1), "FLOWS"),
    ((0, 1, 60, 1, 0), "FLOWSIZE"),
    ((-1, 1, 60, 1, 1), "RATE"),
])
def test_fast_udp_flows_configuration_errors(args, message):
    with pytest.raises(ConfigError, match=message):
        flows(*args)

"""Golden tests for nf.elements.standard: packets in, packets (and lines) out."""

import io
import zlib

import pytest

from nf import headers as H
from nf.args import AddressTable
from nf.element import Arg, Element
from nf.errors import ConfigError, HandlerError
from nf.packet import Packet
from nf.testing import make, run
from tests import checksum_ref

MAC_A, MAC_B = "00:00:00:00:00:0a", "00:00:00:00:00:0b"


def eth(ip_packet):
    return H.ether(MAC_B, MAC_A, H.ETHERTYPE_IP, ip_packet)


def tcp_frame(flags=H.TCP_SYN, payload=b"", seq=1000, ack=0):
    return eth(H.tcp("10.0.0.1", "10.0.1.1", 1234, 80, payload, seq=seq, ack=ack, flags=flags))


def udp_frame(payload=b"hello"):
    return eth(H.udp("10.0.0.1", "10.0.1.1", 5353, 53, payload))


def icmp_frame():
    return eth(H.icmp_echo("10.0.0.1", "10.0.1.1", 7, 1, b"ping"))


FRAMES = [tcp_frame(), udp_frame(), icmp_frame()]


def checksums_ok(frame):
    return (H.verify(frame) == [] and checksum_ref.ip_ok(frame)
            and checksum_ref.l4_ok(frame))


class Clock:
    """An injectable monotonic clock."""

    def __init__(self, t=0.0):
        self.t = t

    def __call__(self):
        return self.t


def with_clock(e, t=0.0):
    e.clock = Clock(t)
    return e.clock


# -- every element: the documented fixed form ---------------------------------------------

# (The documented fixed form of every element is checked in tests/test_library.py.)


# -- counters --------------------------------------------------------------------------------

def test_counter_passes_frames_unchanged_and_counts():
    c = make("Counter")
    out = run(c, FRAMES)
    assert out == [FRAMES]
    assert all(checksums_ok(f) for f in out[0])
    assert c.read("count") == "3"
    assert c.read("byte_count") == str(sum(len(f) for f in FRAMES))
    c.write("reset")
    assert (c.read("count"), c.read("byte_count")) == ("0", "0")


def test_counter_counts_bytes_from_the_data_offset():
    c = make("Counter")
    run(c, [tcp_frame()], off=14)
    assert c.read("byte_count") == str(len(tcp_frame()) - 14)


def test_counter_rate_tracks_a_steady_arrival_rate():
    c = make("Counter")
    clock = with_clock(c)
    c.write("reset")
    assert c.read("rate") == "0"
    for second in range(20):
        clock.t = float(second)
        run(c, [FRAMES[0]] * 100)
    clock.t = 20.0
    rate = float(c.read("rate"))
    assert 99 < rate <= 100.5
    clock.t = 40.0                      # silence: the average decays
    assert float(c.read("rate")) < 1


def test_counter_state_export_import_and_take_state():
    old = make("Counter")
    run(old, FRAMES)
    data = old.export_state()
    new = make("Counter")
    new.import_state(data, 1)
    assert (new.read("count"), new.read("byte_count")) == (old.read("count"),
                                                           old.read("byte_count"))
    swapped = make("Counter")
    swapped.take_state(old)
    run(swapped, FRAMES[:1])
    assert swapped.read("count") == "4"


def test_counter_refuses_bad_or_future_state():
    c = make("Counter")
    with pytest.raises(ValueError, match="count"):
        c.import_state({"packets": 3}, 1)
    with pytest.raises(ValueError, match="version 2"):
        c.import_state({"count": 1, "byte_count": 1}, 2)


class HandlerRouter:
    """Records handler writes, as Router.write("element.handler", value) does them."""

    addresses = None

    def __init__(self):
        self.writes = []

    def write(self, spec, value=""):
        self.writes.append((spec, value))


def test_counter_count_calls_fire_once_per_threshold():
    router = HandlerRouter()
    c = make("Counter", "COUNT_CALL 3 src.active false, BYTE_COUNT_CALL 100 log.mark",
             router=router)
    run(c, [b"x" * 60] * 2)
    assert router.writes == [("log.mark", "")]
    run(c, [b"x"])
    run(c, [b"x"] * 5)
    assert router.writes == [("log.mark", ""), ("src.active", "false")]
    c.write("reset")
    run(c, [b"x"] * 3)
    assert router.writes[2:] == [("src.active", "false")]


def test_counter_rejects_bad_count_call():
    with pytest.raises(ConfigError, match="COUNT_CALL: expected N ELEMENT.HANDLER"):
        make("Counter", "COUNT_CALL ten x.reset")
    with pytest.raises(ConfigError, match="unknown keyword RATE"):
        make("Counter", "RATE 5")


def test_average_counter_rate_over_the_span():
    a = make("AverageCounter")
    clock = with_clock(a)
    assert a.read("rate") == "0"
    for t in range(11):                 # 11 packets over 10 seconds
        clock.t = float(t)
        assert run(a, [FRAMES[1]]) == [[FRAMES[1]]]
    assert a.read("count") == "11"
    assert a.read("rate") == "1.1"
    assert a.read("byte_rate") == "%g" % (11 * len(FRAMES[1]) / 10)
    a.write("reset")
    assert (a.read("count"), a.read("rate")) == ("0", "0")


def test_average_counter_ignore_skips_the_first_seconds():
    a = make("AverageCounter", "2")
    clock = with_clock(a)
    for t in (0.0, 1.0, 1.9, 2.0, 3.0, 4.0):
        clock.t = t
        run(a, [FRAMES[0]])
    assert a.read("count") == "3"
    assert a.read("rate") == "1.5"      # 3 packets over 4 - 2 seconds


# -- plumbing --------------------------------------------------------------------------------

def test_tee_copies_to_every_output_independently():
    t = make("Tee", "3")
    assert t.port_count() == "1/3"
    out = run(t, FRAMES)
    assert out == [FRAMES, FRAMES, FRAMES]
    first = [s.packets for s in t.sinks]
    first[0][0].buf[0] = 0xFF           # changing one copy leaves the others alone
    assert first[1][0].data == FRAMES[0] and first[2][0].data == FRAMES[0]


def test_tee_without_n_uses_the_connected_outputs():
    t = make("Tee", noutputs=2)
    assert t.port_count() == "1/1-"
    assert run(t, FRAMES[:1]) == [FRAMES[:1], FRAMES[:1]]


def test_discard_counts():
    d = make("Discard")
    assert run(d, FRAMES) == []
    assert d.read("count") == "3"
    d.write("reset_counts")
    assert d.read("count") == "0"


def test_null_passes_the_same_packets():
    n = make("Null")
    batch = [Packet(bytearray(f)) for f in FRAMES]
    n.push(0, batch)
    assert n.sinks[0].packets == batch


def test_queue_passes_through_and_counts_drops_beyond_capacity():
    q = make("Queue", "2")
    frames = [udp_frame(bytes([i])) for i in range(5)]
    out = run(q, frames)
    assert out == [frames[:2], frames[2:]]
    assert (q.read("drops"), q.read("highwater_length"), q.read("length")) == ("3", "2", "0")
    q.write("capacity", "10")
    assert run(q, frames) == [frames, []]
    assert (q.read("capacity"), q.read("highwater_length")) == ("10", "5")
    new = make("Queue")
    new.take_state(q)
    assert (new.read("drops"), new.read("highwater_length")) == ("3", "5")
    q.write("reset_counts")
    assert q.read("drops") == "0"
    with pytest.raises(HandlerError, match="unsigned integer"):
        q.write("capacity", "many")


# -- printing ------------------------------------------------------------------------------

def printed(e, frames, off=0, nh=-1, ts=0.0):
    e.file = io.StringIO()
    batch = []
    for f in frames:
        p = Packet(bytearray(f), off, ts)
        p.nh = nh
        batch.append(p)
    e.push(0, batch)
    assert [p.data for p in e.sinks[0].packets[-len(batch):]] == [bytes(f[off:])
                                                                   for f in frames]
    return e.file.getvalue()


def test_print_hex_line():
    data = bytes(range(30))
    assert printed(make("Print", "lbl"), [data]) == \
        "lbl:   30 | 00010203 04050607 08090a0b 0c0d0e0f 10111213 14151617\n"


def test_print_length_timestamp_and_no_label():
    data = bytes(range(6))
    out = printed(make("Print", "MAXLENGTH 5, TIMESTAMP true"), [data], ts=12.5)
    assert out == "12.500000:    6 | 00010203 04\n"
    assert printed(make("Print", "x, -1"), [data]) == "x:    6 | 00010203 0405\n"
    assert printed(make("Print", "x, LENGTH 2"), [data]) == "x:    6 | 0001\n"


def test_print_ascii_and_none():
    data = b"Hello,\x00world! 0123456789"
    assert printed(make("Print", "a, CONTENTS ASCII"), [data]) == \
        "a:   24 |  Hello,.w orld! 01 23456789\n"
    assert printed(make("Print", "a, CONTENTS NONE"), [data, data]) == "a:   24\na:   24\n"


def test_print_active_handler_silences():
    p = make("Print", "x, ACTIVE false")
    assert p.read("active") == "false"
    assert printed(p, [b"abc"]) == ""
    p.write("active", "true")
    assert printed(p, [b"abc"]) == "x:    3 | 616263\n"
    with pytest.raises(HandlerError, match="boolean"):
        p.write("active", "maybe")


def test_print_rejects_bad_contents():
    with pytest.raises(ConfigError, match="expected NONE, HEX or ASCII"):
        make("Print", "x, CONTENTS BINARY")


def test_print_goes_to_stderr_by_default(capsys):
    p = make("Print", "err")
    run(p, [b"\x01"])
    assert capsys.readouterr().err == "err:    1 | 01\n"


def ipprint(config, frames, **kw):
    return printed(make("IPPrint", config), frames, **kw)


def test_ipprint_tcp_udp_icmp_lines():
    out = ipprint("lbl, TIMESTAMP false", FRAMES, nh=14)
    assert out.splitlines() == [
        "lbl: 10.0.0.1.1234 > 10.0.1.1.80: S 1000:1001(1,54,40) win 65535",
        "lbl: 10.0.0.1.5353 > 10.0.1.1.53: udp 13",
        "lbl: 10.0.0.1 > 10.0.1.1: icmp echo (7, 1)",
    ]


def test_ipprint_tcp_data_ack_and_fields():
    frame = tcp_frame(H.TCP_ACK | H.TCP_PSH, b"abcdef", seq=5, ack=77)
    out = ipprint("TIMESTAMP false, ID true, TTL true, LENGTH true", [frame], off=14)
    assert out == ("id 1 ttl 64 length 46 10.0.0.1.1234 > 10.0.1.1.80: "
                   "P 5:11(6,46,46) ack 77 win 65535\n")


def test_ipprint_timestamp_reply_and_contents():
    reply = eth(H.icmp_echo("10.0.1.1", "10.0.0.1", 9, 3, reply=True))
    out = ipprint("r, CONTENTS HEX, MAXLENGTH 6", [reply], nh=14, ts=3.25)
    assert out == "r: 3.250000: 10.0.1.1 > 10.0.0.1: icmp echo-reply (9, 3)\n  00000000 000b\n"


def test_ipprint_payload_and_fragments():
    out = ipprint("TIMESTAMP false, PAYLOAD ASCII", [udp_frame(b"hi there")], nh=14)
    assert out == "10.0.0.1.5353 > 10.0.1.1.53: udp 16\n  hi there\n"
    frag = eth(H.ipv4("10.0.0.1", "10.0.1.1", 17, b"x" * 16, ident=9, flags_frag=0x2003))
    out = ipprint("TIMESTAMP false", [frag], nh=14)
    assert out == "10.0.0.1 > 10.0.1.1: udp (frag 9:16@24+)\n"


def test_ipprint_truncated_and_not_ip():
    assert ipprint("TIMESTAMP false", [b"\x45\x00"]) == "truncated-ip\n"
    short_tcp = H.tcp("1.1.1.1", "2.2.2.2", 1, 2)[:22]
    assert ipprint("TIMESTAMP false", [short_tcp]) == "1.1.1.1 > 2.2.2.2: truncated-tcp\n"


def test_ipprint_outfile(tmp_path):
    path = tmp_path / "ip.txt"
    e = make("IPPrint", "o, TIMESTAMP false, OUTFILE %s" % path)
    run(e, [H.udp("10.0.0.1", "10.0.1.1", 1, 2)])
    e.cleanup()
    assert path.read_text() == "o: 10.0.0.1.1 > 10.0.1.1.2: udp 8\n"


def test_ipprint_rejects_contents_with_payload():
    with pytest.raises(ConfigError, match="at most one of CONTENTS and PAYLOAD"):
        make("IPPrint", "CONTENTS HEX, PAYLOAD HEX")


# -- paint -----------------------------------------------------------------------------------

def test_paint_and_checkpaint():
    p = make("Paint", "7")
    p.push(0, [Packet(bytearray(f)) for f in FRAMES])
    painted = p.sinks[0].packets
    assert [q.paint for q in painted] == [7, 7, 7]
    assert [q.data for q in painted] == FRAMES
    other = Packet(bytearray(FRAMES[1]))
    other.paint = 3
    c = make("CheckPaint", "7")
    c.push(0, painted[:2] + [other] + painted[2:])
    assert [q.data for q in c.sinks[0].packets] == [FRAMES[0], FRAMES[1], FRAMES[2]]
    assert c.sinks[1].packets == [other]
    dropper = make("CheckPaint", "7", noutputs=1)
    dropper.push(0, [other])                # no output 1: dropped silently
    assert dropper.sinks[0].packets == []


def test_paint_errors_and_color_handler():
    with pytest.raises(ConfigError, match="0 to 255"):
        make("Paint", "300")
    with pytest.raises(ConfigError, match="only the paint annotation"):
        make("Paint", "1, 16")
    p = make("Paint", "1, PAINT")
    p.write("color", "9")
    assert p.read("color") == "9"


# -- switches ---------------------------------------------------------------------------------

def test_switch_output_and_handler():
    s = make("Switch", "1", noutputs=3)
    assert run(s, FRAMES) == [[], FRAMES, []]
    s.write("switch", "2")
    assert s.read("switch") == "2"
    assert run(s, FRAMES[:1]) == [[], [], FRAMES[:1]]
    s.write("switch", "-1")
    assert run(s, FRAMES) == [[], [], []]
    s.write("switch", "5")                   # no such output: dropped
    assert run(s, FRAMES) == [[], [], []]
    with pytest.raises(HandlerError, match="expected integer"):
        s.write("switch", "two")


def test_switch_default_and_errors():
    assert run(make("Switch", noutputs=2), FRAMES) == [FRAMES, []]
    with pytest.raises(ConfigError, match="keyword K: expected integer, got 'x'"):
        make("Switch", "x")
    with pytest.raises(ConfigError, match="missing required argument K"):
        make("StaticSwitch")


def test_static_switch():
    s = make("StaticSwitch", "0", noutputs=2)
    assert run(s, FRAMES) == [FRAMES, []]
    assert "switch" not in s.handlers()


def test_round_robin_switch_rotates_across_batches():
    r = make("RoundRobinSwitch", noutputs=3)
    frames = [udp_frame(bytes([i])) for i in range(5)]
    assert run(r, frames) == [[frames[0], frames[3]], [frames[1], frames[4]], [frames[2]]]
    assert run(r, frames[:2]) == [[frames[1]], [], [frames[0]]]


def test_hash_switch_is_deterministic_by_flow():
    h = make("HashSwitch", "26, 8", noutputs=4)      # IP source and destination
    flows = [eth(H.udp("10.0.0.%d" % i, "10.0.1.1", 1000, 53, b"q")) for i in range(1, 33)]
    out = run(h, flows)
    for port, frames in enumerate(out):
        for f in frames:
            assert zlib.crc32(f[26:34]) % 4 == port
    assert sum(1 for frames in out if frames) > 1
    assert run(h, flows) == out                      # same flow, same output
    assert run(h, [b"short"]) == [[b"short"], [], [], []]


def test_hash_switch_needs_length():
    with pytest.raises(ConfigError, match="LENGTH: expected at least 1"):
        make("HashSwitch", "0, 0")


# -- declarations -----------------------------------------------------------------------------

class _IPUser(Element):
    """_IPUser(ADDR, NET, MAC)

    Test helper: takes addresses."""
    ABSTRACT = True
    PORTS = "0/0"
    ARGS = (Arg("ADDR", "ip", positional=True, doc="an address"),
            Arg("NET", "prefix", positional=True, doc="a prefix"),
            Arg("MAC", "eth", positional=True, doc="an Ethernet address"))


def test_address_info_names_are_usable_by_other_elements():
    table = AddressTable()
    ai = make("AddressInfo", "inside 10.0.0.1/24 00:11:22:33:44:55, OUT 192.0.2.7",
              addresses=table)
    assert ai.port_count() == "0/0" and ai.CONFIGURE_PHASE == 0
    user = _IPUser("u", "inside, inside, inside", addresses=table)
    assert user.addr == bytes([10, 0, 0, 1])
    assert user.net == (bytes([10, 0, 0, 0]), bytes([255, 255, 255, 0]))
    assert user.mac == bytes.fromhex("001122334455")
    assert _IPUser("u", "OUT, 1.0.0.0/8, 0:0:0:0:0:1", addresses=table).addr == \
        bytes([192, 0, 2, 7])


def test_address_info_errors():
    with pytest.raises(ConfigError, match="expected NAME ADDRESS"):
        make("AddressInfo", "lonely")
    with pytest.raises(ConfigError, match="not an IP address, prefix or Ethernet"):
        make("AddressInfo", "x banana")
    with pytest.raises(ConfigError, match="expected a name"):
        make("AddressInfo", "1.2.3.4 5.6.7.8")


def test_schedule_info_is_accepted():
    s = make("ScheduleInfo", "src 10, sink 1")
    assert s.port_count() == "0/0"

"""IPRewriter and friends: golden packets both ways for TCP, UDP and ICMP echo,
endpoint-independent mapping, random ports, filtering modes, timeouts on an
injected clock, the table limit, UDP's zero checksum, malformed input, fragments,
export/import, handlers.  Every output frame is compared whole to one built
independently with nf.headers, and its checksums are recomputed twice (nf.headers
and the naive RFC 1071 loop of tests/checksum_ref)."""

import json
import random
import struct

import pytest

from nf import headers as H
from nf.errors import ConfigError, HandlerError
from nf.netutil import l4_checksum
from nf.packet import Packet
from nf.testing import make
from tests import checksum_ref

IN, OUT = 0, 1                         # inputs (and outputs): from inside, from outside
A, A2 = "10.0.0.2", "10.0.0.3"          # inside hosts
NAT = "192.0.2.1"                      # the outside address
R, R2 = "198.51.100.7", "203.0.113.5"  # remote hosts
LO, HI = 1024, 65535
NAT_SPEC = "pattern %s %d-%d - - 0 1, drop" % (NAT, LO, HI)


class Clock:
    def __init__(self, t=1000.0):
        self.t = t

    def __call__(self):
        return self.t


def rewriter(config=NAT_SPEC, cls="IPRewriter"):
    e = make(cls, config)
    e.clock = Clock()
    return e


def send(e, port, frame, nh=0):
    """Push one IP packet (IP header at ``nh``); return the frames on each output."""
    before = [len(s.packets) for s in e.sinks]
    p = Packet(bytearray(frame))
    p.nh = nh
    e.push(port, [p])
    return [[q.data for q in s.packets[n:]] for s, n in zip(e.sinks, before)]


def only(outs, port):
    """The single frame on output ``port``, and nothing anywhere else."""
    assert [len(o) for o in outs] == [1 if i == port else 0 for i in range(len(outs))], outs
    return outs[port][0]


def checked(frame, off=0):
    assert H.verify(frame, off) == []
    assert checksum_ref.ip_ok(frame, off) and checksum_ref.l4_ok(frame, off)
    return frame


def outside_port(frame, off=0):
    return H.parse(frame, off)["sport"]


def open_tcp(e, src=A, sport=40000, dst=R, dport=80, flags=H.TCP_SYN):
    """Send one segment from the inside; return its outside source port."""
    out = only(send(e, IN, H.tcp(src, dst, sport, dport, flags=flags)), 0)
    return outside_port(checked(out))


# -- golden translation ----------------------------------------------------------------------

def test_tcp_forward_and_reverse_golden():
    e = rewriter()
    syn = H.tcp(A, R, 40000, 80, b"hello", seq=7, flags=H.TCP_SYN, ident=9)
    out = checked(only(send(e, IN, syn), 0))
    port = outside_port(out)
    assert LO <= port <= HI
    assert out == H.tcp(NAT, R, port, 80, b"hello", seq=7, flags=H.TCP_SYN, ident=9)
    reply = H.tcp(R, NAT, 80, port, b"world", seq=50, ack=13, flags=H.TCP_SYN | H.TCP_ACK)
    back = checked(only(send(e, OUT, reply), 1))
    assert back == H.tcp(R, A, 80, 40000, b"world", seq=50, ack=13,
                         flags=H.TCP_SYN | H.TCP_ACK)
    # established packets take the fast path; they must come out the same way
    data = H.tcp(A, R, 40000, 80, b"x" * 1000, seq=8, ack=51)
    assert checked(only(send(e, IN, data), 0)) == H.tcp(NAT, R, port, 80, b"x" * 1000,
                                                       seq=8, ack=51)


def test_udp_forward_and_reverse_golden():
    e = rewriter()
    out = checked(only(send(e, IN, H.udp(A, R, 5353, 53, b"query")), 0))
    port = outside_port(out)
    assert out == H.udp(NAT, R, port, 53, b"query")
    back = checked(only(send(e, OUT, H.udp(R, NAT, 53, port, b"answer!")), 1))
    assert back == H.udp(R, A, 53, 5353, b"answer!")


def test_icmp_echo_forward_and_reverse_golden():
    e = rewriter()
    out = checked(only(send(e, IN, H.icmp_echo(A, R, 0x1234, 1, b"ping")), 0))
    qid = H.parse(out, 0)["id"]
    assert LO <= qid <= HI
    assert out == H.icmp_echo(NAT, R, qid, 1, b"ping")
    back = checked(only(send(e, OUT, H.icmp_echo(R, NAT, qid, 1, b"ping", reply=True)), 1))
    assert back == H.icmp_echo(R, A, 0x1234, 1, b"ping", reply=True)
    # an echo *request* to the outside id is not a reply: no mapping lets it in
    assert send(e, OUT, H.icmp_echo(R, NAT, qid, 2)) == [[], []]


def test_ip_header_annotation_with_ethernet_in_front():
    e = rewriter()
    eth = lambda ip: H.ether("02:00:00:00:00:01", "02:00:00:00:00:02", H.ETHERTYPE_IP, ip)
    out = only(send(e, IN, eth(H.tcp(A, R, 40000, 80, b"abc")), nh=14), 0)
    port = outside_port(out, 14)
    assert checked(out, 14) == eth(H.tcp(NAT, R, port, 80, b"abc"))
    back = only(send(e, OUT, eth(H.tcp(R, NAT, 80, port, b"de")), nh=14), 1)
    assert checked(back, 14) == eth(H.tcp(R, A, 80, 40000, b"de"))


def test_ip_options_take_the_general_path_correctly():
    e = rewriter()
    opts = b"\x01\x01\x01\x00"              # NOP NOP NOP EOL: IHL 6

    def with_options(src, dst, sport, dport, payload):
        seg = H.tcp(src, dst, sport, dport, payload)[20:]
        return H.ipv4(src, dst, H.IPPROTO_TCP, seg, options=opts)

    out = checked(only(send(e, IN, with_options(A, R, 40000, 80, b"opt")), 0))
    port = struct.unpack_from("!H", out, 24)[0]
    assert out == with_options(NAT, R, port, 80, b"opt")
    back = checked(only(send(e, OUT, with_options(R, NAT, 80, port, b"rep")), 1))
    assert back == with_options(R, A, 80, 40000, b"rep")


def test_destination_annotation_is_set():
    e = rewriter()
    p = Packet(bytearray(H.udp(A, R, 1000, 53, b"q")))
    e.push(IN, [p])
    assert e.sinks[0].packets[0].dst_ip == bytes([198, 51, 100, 7])


def test_keep_spec_installs_an_identity_mapping():
    e = rewriter("keep 0 1, drop")
    assert checked(only(send(e, IN, H.tcp(A, R, 40000, 80, b"k")), 0)) == \
        H.tcp(A, R, 40000, 80, b"k")
    assert only(send(e, OUT, H.tcp(R, A, 80, 40000, b"r")), 1) == H.tcp(R, A, 80, 40000, b"r")
    assert send(e, OUT, H.tcp(R2, A, 80, 40000, b"r")) == [[], []]


def test_destination_rewriting_pattern_and_its_replies():
    e = rewriter("pattern - - 10.9.9.9 8080 0 1, drop")
    out = checked(only(send(e, IN, H.tcp(A, R, 40000, 80, b"req")), 0))
    assert out == H.tcp(A, "10.9.9.9", 40000, 8080, b"req")
    back = checked(only(send(e, OUT, H.tcp("10.9.9.9", A, 8080, 40000, b"rep")), 1))
    assert back == H.tcp(R, A, 80, 40000, b"rep")


# -- mapping behaviour -----------------------------------------------------------------------

def test_endpoint_independent_mapping():
    e = rewriter()
    p1 = open_tcp(e, dst=R, dport=80)
    p2 = open_tcp(e, dst=R2, dport=443)
    assert p1 == p2
    assert e.read("table_size") == "1" and e.read("sessions") == "2"
    # a different inside endpoint gets its own port
    assert open_tcp(e, sport=40001) != p1
    assert e.read("table_size") == "2"


def test_outside_ports_are_random_over_the_range():
    e = rewriter()
    ports = [open_tcp(e, sport=20000 + i) for i in range(200)]
    assert len(set(ports)) == 200
    assert all(LO <= p <= HI for p in ports)
    steps = sum(1 for a, b in zip(ports, ports[1:]) if b - a == 1)
    assert steps < 5                              # not a sequential allocator
    assert max(ports) - min(ports) > (HI - LO) // 2
    assert min(ports) < LO + (HI - LO) // 4 and max(ports) > HI - (HI - LO) // 4


def test_port_exhaustion_counts_a_failure():
    e = rewriter("pattern %s 5000-5001 - - 0 1, drop" % NAT)
    assert {open_tcp(e, sport=1), open_tcp(e, sport=2)} == {5000, 5001}
    assert send(e, IN, H.tcp(A, R, 3, 80)) == [[], []]
    assert e.read("mapping_failures") == "1"


def test_port_preserving_pattern_refuses_a_second_host_on_the_same_port():
    e = rewriter("pattern %s - - - 0 1, drop" % NAT)
    assert open_tcp(e, src=A, sport=7000) == 7000
    assert send(e, IN, H.tcp(A2, R, 7000, 80)) == [[], []]
    assert e.read("mapping_failures") == "1"


@pytest.mark.parametrize("mode, same_addr_other_port, other_addr", [
    ("address-port", False, False),
    ("address", True, False),
    ("endpoint", True, True),
])
def test_filtering_modes(mode, same_addr_other_port, other_addr):
    e = rewriter(NAT_SPEC + ", FILTER " + mode)
    port = outside_port(checked(only(send(e, IN, H.udp(A, R, 5000, 3478, b"x")), 0)))
    # the remote the inside endpoint sent to always gets in
    assert only(send(e, OUT, H.udp(R, NAT, 3478, port, b"a")), 1) == H.udp(R, A, 3478, 5000,
                                                                           b"a")
    for src, sport, allowed in ((R, 9999, same_addr_other_port), (R2, 3478, other_addr)):
        outs = send(e, OUT, H.udp(src, NAT, sport, port, b"b"))
        if allowed:
            assert checked(only(outs, 1)) == H.udp(src, A, sport, 5000, b"b")
        else:
            assert outs == [[], []]
    # a session let in belongs to the same mapping
    assert e.read("table_size") == "1"


def test_endpoint_filtering_lets_replies_of_admitted_remotes_out_unchanged_port():
    e = rewriter(NAT_SPEC + ", FILTER endpoint")
    port = outside_port(only(send(e, IN, H.udp(A, R, 5000, 3478)), 0))
    only(send(e, OUT, H.udp(R2, NAT, 1111, port, b"hi")), 1)
    out = checked(only(send(e, IN, H.udp(A, R2, 5000, 1111, b"back")), 0))
    assert out == H.udp(NAT, R2, port, 1111, b"back")


# -- timeouts --------------------------------------------------------------------------------

def reply_gets_in(e, port, proto="tcp"):
    if proto == "udp":
        return send(e, OUT, H.udp(R, NAT, 53, port))[1] != []
    return send(e, OUT, H.tcp(R, NAT, 80, port))[1] != []


def test_udp_session_expires_after_udp_timeout():
    e = rewriter()
    port = outside_port(only(send(e, IN, H.udp(A, R, 5000, 53)), 0))
    e.clock.t += 299
    e.expire()
    assert e.read("table_size") == "1"
    e.clock.t += 2
    e.expire()
    assert e.read("table_size") == "0" and e.read("sessions") == "0"
    assert not reply_gets_in(e, port, "udp")


def test_traffic_keeps_a_udp_session_alive():
    e = rewriter("%s, UDP_TIMEOUT 10" % NAT_SPEC)
    port = outside_port(only(send(e, IN, H.udp(A, R, 5000, 53)), 0))
    for _ in range(5):
        e.clock.t += 8
        assert reply_gets_in(e, port, "udp")
        e.expire()
    assert e.read("table_size") == "1"


def test_established_tcp_persists_and_expires_after_tcp_timeout():
    e = rewriter()
    port = open_tcp(e)
    send(e, OUT, H.tcp(R, NAT, 80, port, flags=H.TCP_SYN | H.TCP_ACK))
    e.clock.t += 7000                          # far beyond UDP's and the done timeout
    e.expire()
    assert reply_gets_in(e, port)
    e.clock.t += 7441
    e.expire()
    assert e.read("table_size") == "0"


@pytest.mark.parametrize("close", ["fin", "rst", "syn-only"])
def test_closed_or_half_open_tcp_expires_after_done_timeout(close):
    e = rewriter()
    port = open_tcp(e)
    if close != "syn-only":
        send(e, OUT, H.tcp(R, NAT, 80, port, flags=H.TCP_SYN | H.TCP_ACK))
    if close == "fin":
        send(e, IN, H.tcp(A, R, 40000, 80, flags=H.TCP_FIN | H.TCP_ACK))
        e.clock.t += 1000
        e.expire()                             # one FIN: still a live (half-closed) session
        assert e.read("table_size") == "1"
        send(e, OUT, H.tcp(R, NAT, 80, port, flags=H.TCP_FIN | H.TCP_ACK))
    elif close == "rst":
        send(e, OUT, H.tcp(R, NAT, 80, port, flags=H.TCP_RST))
    e.clock.t += 239
    e.expire()
    assert e.read("table_size") == "1"
    e.clock.t += 2
    e.expire()
    assert e.read("table_size") == "0"


def test_icmp_session_expires_after_icmp_timeout():
    e = rewriter("%s, ICMP_TIMEOUT 5" % NAT_SPEC)
    send(e, IN, H.icmp_echo(A, R, 7, 1))
    e.clock.t += 4
    e.expire()
    assert e.read("sessions") == "1"
    e.clock.t += 2
    e.expire()
    assert e.read("sessions") == "0"


def test_timer_is_registered_with_the_router():
    class StubRouter:
        addresses = None

        def __init__(self):
            self.timers = []

        def add_timer(self, interval, fn):
            self.timers.append((interval, fn))

    r = StubRouter()
    e = make("IPRewriter", NAT_SPEC, router=r)
    assert r.timers == [(1.0, e.expire)]


# -- table limit -----------------------------------------------------------------------------

def test_full_table_drops_new_flows_and_keeps_old_ones():
    e = rewriter(NAT_SPEC + ", CAPACITY 3")
    ports = [open_tcp(e, sport=s) for s in (1, 2, 3)]
    assert send(e, IN, H.tcp(A, R, 4, 80)) == [[], []]
    assert e.read("mapping_failures") == "1" and e.read("table_size") == "3"
    for s, port in zip((1, 2, 3), ports):
        assert checked(only(send(e, IN, H.tcp(A, R, s, 80, b"d")), 0)) == \
            H.tcp(NAT, R, port, 80, b"d")
        assert checked(only(send(e, OUT, H.tcp(R, NAT, 80, port, b"r")), 1)) == \
            H.tcp(R, A, 80, s, b"r")
    # new sessions of existing mappings are not limited by CAPACITY
    assert open_tcp(e, sport=1, dst=R2) == ports[0]
    e.write("capacity", "4")
    assert e.read("capacity") == "4"
    open_tcp(e, sport=4)
    assert e.read("table_size") == "4"


# -- checksums -------------------------------------------------------------------------------

def test_udp_zero_checksum_stays_zero():
    e = rewriter()
    out = only(send(e, IN, H.udp(A, R, 5000, 53, b"nocsum", checksum=0)), 0)
    port = outside_port(out)
    assert out == H.udp(NAT, R, port, 53, b"nocsum", checksum=0)
    back = only(send(e, OUT, H.udp(R, NAT, 53, port, b"none", checksum=0)), 1)
    assert back == H.udp(R, A, 53, 5000, b"none", checksum=0)
    assert H.verify(back, 0) == [] and checksum_ref.l4_ok(back, 0)


def test_udp_checksum_computing_to_zero_is_sent_as_ffff():
    e = rewriter()
    port = outside_port(only(send(e, IN, H.udp(A, R, 5000, 53)), 0))
    # choose a payload word that makes the *translated* datagram's sum 0xFFFF
    probe = bytearray(H.udp(NAT, R, port, 53, b"\0\0abcd"))
    word = l4_checksum(probe)
    payload = struct.pack("!H", word) + b"abcd"
    expected = H.udp(NAT, R, port, 53, payload)
    assert struct.unpack_from("!H", expected, 26)[0] == 0xFFFF
    out = only(send(e, IN, H.udp(A, R, 5000, 53, payload)), 0)
    assert checked(out) == expected


def test_many_random_flows_keep_checksums_right():
    rng = random.Random(5)
    e = rewriter()
    for i in range(300):
        src = "10.%d.%d.%d" % (rng.randrange(256), rng.randrange(256), rng.randrange(1, 255))
        dst = "%d.%d.%d.%d" % (rng.randrange(1, 224), rng.randrange(256), rng.randrange(256),
                               rng.randrange(1, 255))
        payload = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 40)))
        sp, dp = rng.randrange(1, 65536), rng.randrange(1, 65536)
        frame = (H.tcp if i % 2 else H.udp)(src, dst, sp, dp, payload)
        out = checked(only(send(e, IN, frame), 0))
        port = outside_port(out)
        maker = H.tcp if i % 2 else H.udp
        assert checked(only(send(e, OUT, maker(dst, NAT, dp, port, payload[::-1])), 1)) == \
            maker(dst, src, dp, sp, payload[::-1])


# -- bad input -------------------------------------------------------------------------------

def malformed_packets():
    good = H.tcp(A, R, 40000, 80, b"data")
    bad_version = bytearray(good)
    bad_version[0] = 0x65
    bad_ihl = bytearray(good)
    bad_ihl[0] = 0x44
    too_long = bytearray(good)
    too_long[2:4] = struct.pack("!H", len(good) + 10)
    short_tcp = H.ipv4(A, R, H.IPPROTO_TCP, b"\x9c\x40\x00\x50\0\0\0\0\0\0")
    short_udp = H.ipv4(A, R, H.IPPROTO_UDP, b"\x9c\x40\x00")
    later_fragment = H.ipv4(A, R, H.IPPROTO_UDP, b"12345678", flags_frag=0x0010)
    unreachable = H.ipv4(A, R, H.IPPROTO_ICMP, b"\x03\x01\0\0\0\0\0\0" + good[:28])
    gre = H.ipv4(A, R, 47, b"\0" * 8)
    return [b"", b"\x45", good[:19], good[:30], bytes(bad_version), bytes(bad_ihl),
            bytes(too_long), short_tcp, short_udp, later_fragment, unreachable, gre]


def test_malformed_and_unsupported_packets_are_dropped_and_counted():
    e = rewriter()
    frames = malformed_packets()
    for f in frames:
        assert send(e, IN, f) == [[], []]
    assert e.read("bad_packets") == str(len(frames))
    assert e.read("table_size") == "0"


def test_pass_input_passes_what_it_cannot_rewrite_but_not_garbage():
    e = rewriter("pass 1, drop")
    gre = H.ipv4(A, R, 47, b"\0" * 8)
    assert only(send(e, IN, gre), 1) == gre
    assert send(e, IN, b"\x45\0\0") == [[], []]
    assert e.read("bad_packets") == "1"


def test_random_garbage_never_raises():
    rng = random.Random(1)
    e = rewriter(NAT_SPEC + ", FILTER endpoint")
    good = H.tcp(A, R, 40000, 80, b"data")
    batch = []
    for _ in range(2000):
        f = bytearray(good if rng.random() < 0.5 else H.icmp_echo(A, R, 1, 1))
        for _ in range(rng.randrange(1, 6)):
            f[rng.randrange(len(f))] = rng.randrange(256)
        batch.append(Packet(bytes(f[:rng.randrange(len(f) + 1)])))
    e.push(IN, batch)
    e.push(OUT, [Packet(p.buf) for p in batch])


def test_later_fragments_follow_the_first_fragments_translation():
    e = rewriter()
    port = outside_port(only(send(e, IN, H.udp(A, R, 5000, 53, b"first")), 0))
    whole = H.udp(A, R, 5000, 53, bytes(range(40)))[20:]     # the UDP datagram
    first = H.ipv4(A, R, H.IPPROTO_UDP, whole[:24], ident=77, flags_frag=0x2000)
    second = H.ipv4(A, R, H.IPPROTO_UDP, whole[24:], ident=77, flags_frag=3)
    out1 = only(send(e, IN, first), 0)
    out2 = only(send(e, IN, second), 0)
    twhole = H.udp(NAT, R, port, 53, bytes(range(40)))[20:]
    assert out1 == H.ipv4(NAT, R, H.IPPROTO_UDP, twhole[:24], ident=77, flags_frag=0x2000)
    assert out2 == H.ipv4(NAT, R, H.IPPROTO_UDP, twhole[24:], ident=77, flags_frag=3)


# -- state -----------------------------------------------------------------------------------

def test_export_import_round_trip_keeps_outside_ports_and_states():
    config = NAT_SPEC + ", FILTER endpoint, ICMP_TIMEOUT 1000"
    e = rewriter(config)
    tcp_port = open_tcp(e)
    send(e, OUT, H.tcp(R, NAT, 80, tcp_port, flags=H.TCP_SYN | H.TCP_ACK))
    closing = open_tcp(e, sport=40001)
    send(e, OUT, H.tcp(R, NAT, 80, closing, flags=H.TCP_RST))
    udp_port = outside_port(only(send(e, IN, H.udp(A, R, 5000, 53)), 0))
    ping_id = H.parse(only(send(e, IN, H.icmp_echo(A, R, 99, 1)), 0), 0)["id"]
    e.clock.t += 100
    data = json.loads(json.dumps(e.export_state()))

    e2 = rewriter(config)
    e2.clock.t = 5.0                        # another process: another monotonic clock
    e2.import_state(data, e2.STATE_VERSION)
    assert e2.read("table_size") == "4" and e2.read("sessions") == "4"
    assert e2.read("mappings") == e.read("mappings")
    assert checked(only(send(e2, OUT, H.tcp(R, NAT, 80, tcp_port, b"on")), 1)) == \
        H.tcp(R, A, 80, 40000, b"on")
    assert checked(only(send(e2, IN, H.tcp(A, R, 40000, 80, b"go")), 0)) == \
        H.tcp(NAT, R, tcp_port, 80, b"go")
    assert checked(only(send(e2, OUT, H.udp(R, NAT, 53, udp_port, b"u")), 1)) == \
        H.udp(R, A, 53, 5000, b"u")
    assert checked(only(send(e2, OUT, H.icmp_echo(R, NAT, ping_id, 1, reply=True)), 1)) == \
        H.icmp_echo(R, A, 99, 1, reply=True)
    # idle ages and TCP states came along: the reset session dies 240 s after its
    # last packet, which was 100 s before the export
    e2.clock.t += 139
    e2.expire()
    assert e2.read("table_size") == "4"
    e2.clock.t += 2
    e2.expire()
    assert e2.read("table_size") == "3"
    assert ":40001" not in e2.read("mappings")
    # a new flow must not be given a port held by an imported mapping
    e3 = rewriter("pattern %s 6000-6001 - - 0 1, drop" % NAT)
    p1 = open_tcp(e3, sport=1)
    e4 = rewriter("pattern %s 6000-6001 - - 0 1, drop" % NAT)
    e4.import_state(e3.export_state(), 1)
    assert open_tcp(e4, sport=2) == 6001 - (p1 - 6000)


def test_import_rejects_bad_data_and_keeps_the_table():
    e = rewriter()
    port = open_tcp(e)
    good = e.export_state()
    bad = json.loads(json.dumps(good))
    bad["mappings"][0]["outside"][1] = 70000
    with pytest.raises(ValueError, match="mapping 0"):
        e.import_state(bad, 1)
    with pytest.raises(ValueError, match="version"):
        e.import_state(good, 2)
    bad = json.loads(json.dumps(good))
    bad["mappings"][0]["routput"] = 5
    with pytest.raises(ValueError, match="output"):
        e.import_state(bad, 1)
    bad = json.loads(json.dumps(good))
    bad["mappings"][0]["sessions"][0]["state"] = "dancing"
    with pytest.raises(ValueError, match="TCP state"):
        e.import_state(bad, 1)
    assert reply_gets_in(e, port)
    assert e.read("table_size") == "1"


def test_import_migrates_older_state_versions_first():
    from nf.elements.rewriter import IPRewriter
    from nf.testing import attach

    class RewriterV2(IPRewriter):
        ABSTRACT = True                       # keep it out of the element registry
        STATE_VERSION = 2
        MIGRATIONS = {1: lambda d: dict(d, mappings=[dict(m, bytes=0)
                                                     for m in d["mappings"]])}
        seen = None

        def _import_mapping(self, md, now, addrs):
            RewriterV2.seen = md["bytes"]
            return super()._import_mapping(md, now, addrs)

    old = rewriter()
    port = open_tcp(old)
    new = attach(RewriterV2("rw2", NAT_SPEC))
    new.import_state(old.export_state(), 1)
    assert RewriterV2.seen == 0
    assert reply_gets_in(new, port)


def test_take_state_does_not_carry_the_table():
    old = rewriter()
    open_tcp(old)
    new = rewriter()
    new.take_state(old)
    assert new.read("table_size") == "0"


# -- handlers and configuration ----------------------------------------------------------------

def test_handlers():
    e = rewriter("pattern %s 1024-65535 - - 0 1, pass 1, CAPACITY 10" % NAT)
    port = open_tcp(e, dst=R, dport=80)
    send(e, OUT, H.tcp(R, NAT, 80, port, flags=H.TCP_SYN | H.TCP_ACK))
    open_tcp(e, dst=R2, dport=443)
    e.clock.t += 3
    assert e.read("table_size") == "1"
    assert e.read("sessions") == "2"
    assert e.read("mappings") == (
        "tcp 10.0.0.2:40000 -> %s:%d idle 3s sessions 2: 198.51.100.7:80 established, "
        "203.0.113.5:443 syn" % (NAT, port))
    assert e.read("capacity") == "10"
    assert e.read("patterns") == "0: pattern %s 1024-65535 - - 0 1\n1: pass 1" % NAT
    assert e.read("bad_packets") == "0" and e.read("mapping_failures") == "0"
    with pytest.raises(HandlerError):
        e.write("capacity", "lots")
    e.write("clear")
    assert e.read("table_size") == "0" and e.read("mappings") == ""
    # the reply no longer matches: input 1's 'pass 1' sends it on unchanged
    reply = H.tcp(R, NAT, 80, port)
    assert only(send(e, OUT, reply), 1) == reply


def test_named_patterns_are_shared_between_rewriters():
    make("IPRewriterPatterns", "testnat_shared %s 7000-7001 - -" % NAT)
    e1 = rewriter("testnat_shared 0 1, drop")
    e2 = rewriter("pattern testnat_shared 0 1, drop", cls="UDPRewriter")
    p1 = open_tcp(e1)
    p2 = open_tcp(e2)
    assert {p1, p2} == {7000, 7001}
    assert send(e1, IN, H.tcp(A, R, 1, 80)) == [[], []]
    assert "testnat_shared" in e1.read("patterns")


def test_protocol_restricted_rewriters():
    tcp_only = rewriter("pattern %s 1024-65535 - - 0 1, pass 1" % NAT, cls="TCPRewriter")
    assert send(tcp_only, IN, H.udp(A, R, 1, 2)) == [[], []]
    assert tcp_only.read("bad_packets") == "1"
    assert only(send(tcp_only, OUT, H.udp(R, A, 2, 1)), 1) == H.udp(R, A, 2, 1)
    open_tcp(tcp_only)

    udp = rewriter(cls="UDPRewriter")          # Click's UDPRewriter also rewrites TCP
    outside_port(only(send(udp, IN, H.udp(A, R, 1, 2)), 0))
    open_tcp(udp)
    assert send(udp, IN, H.icmp_echo(A, R, 1, 1)) == [[], []]

    ping = rewriter(cls="ICMPPingRewriter")
    out = checked(only(send(ping, IN, H.icmp_echo(A, R, 3, 1)), 0))
    assert out == H.icmp_echo(NAT, R, H.parse(out, 0)["id"], 1)
    assert send(ping, IN, H.tcp(A, R, 1, 2)) == [[], []]


@pytest.mark.parametrize("config, message", [
    ("", "INPUTSPEC"),
    ("pattern 1.2.3.4 1024 - - 0", "bad INPUTSPEC"),
    ("pattern 1.2.3.4 9-3 - - 0 1", "port range"),
    ("pattern banana 1 - - 0 1", "SADDR"),
    ("nosuchpattern_xyz 0 1", "no pattern named"),
    ("pass x", "output port"),
    ("drop, FILTER sometimes", "FILTER"),
])
def test_configuration_errors(config, message):
    with pytest.raises(ConfigError, match=message):
        make("IPRewriter", config)


def test_port_count_follows_the_specs():
    e = make("IPRewriter", "pattern %s 1-2 - - 0 3, drop, pass 2" % NAT)
    assert e.port_count() == "3/4"


# -- journal and replay (the persistent store's recovery) -----------------------------------

JOURNAL_CONFIG = NAT_SPEC + ", FILTER endpoint"


def table(e):
    """The element's table in export form without idle ages (which replay resets),
    in a canonical order."""
    mappings = e.export_state()["mappings"]
    for m in mappings:
        for s in m["sessions"]:
            del s["idle"]
        m["sessions"].sort(key=lambda s: s["remote"])
    return sorted(mappings, key=lambda m: (m["proto"], m["inside"]))


def recovered(snapshot, events, t, config=JOURNAL_CONFIG):
    """A fresh rewriter at clock ``t`` rebuilt from a snapshot and the journal after it,
    both through JSON, as a store would keep them."""
    e = rewriter(config)
    e.clock.t = t
    e.import_state(json.loads(json.dumps(snapshot)), 1)
    e.replay_events(json.loads(json.dumps(events)))
    return e


def test_snapshot_plus_replayed_journal_equals_the_live_table():
    e = rewriter(JOURNAL_CONFIG)
    old_tcp = open_tcp(e, sport=41000)
    send(e, OUT, H.tcp(R, NAT, 80, old_tcp, flags=H.TCP_SYN | H.TCP_ACK))
    udp_port = outside_port(only(send(e, IN, H.udp(A2, R, 5000, 53)), 0))
    snapshot = e.export_state()
    e._journal = []                         # what a persistent store attaches
    e.clock.t += 200
    new_tcp = open_tcp(e, sport=42000)                                     # mapping created
    send(e, OUT, H.tcp(R, NAT, 80, new_tcp, flags=H.TCP_SYN | H.TCP_ACK))  # -> established
    open_tcp(e, sport=42000, dst=R2, dport=443)                            # second session
    send(e, IN, H.tcp(A, R, 41000, 80, flags=H.TCP_FIN | H.TCP_ACK))       # -> fin-out
    send(e, OUT, H.tcp(R, NAT, 80, old_tcp, flags=H.TCP_FIN | H.TCP_ACK))  # -> closed
    send(e, OUT, H.udp(R2, NAT, 53, udp_port))                 # inbound session (endpoint)
    ping_id = H.parse(only(send(e, IN, H.icmp_echo(A, R, 7, 1)), 0), 0)["id"]
    e.clock.t += 150          # the UDP session to R (idle 350 s) and the ping (150 s) expire
    assert e.expire() == 2
    kinds = [ev[0] for ev in e._journal]
    assert kinds.count("created") == 4 and kinds.count("removed") == 2

    r = recovered(snapshot, e._journal, e.clock.t)
    assert table(r) == table(e)
    assert r.read("table_size") == e.read("table_size") == "3"
    # the recovered table forwards like the live one, ports and states included
    assert checked(only(send(r, OUT, H.tcp(R, NAT, 80, new_tcp, b"x")), 1)) == \
        H.tcp(R, A, 80, 42000, b"x")
    assert checked(only(send(r, OUT, H.udp(R2, NAT, 53, udp_port, b"u")), 1)) == \
        H.udp(R2, A2, 53, 5000, b"u")
    assert "198.51.100.7:80 closed" in r.read("mappings")
    # removed entries stay removed: the expired UDP session (its mapping lives on with
    # the R2 session) and the expired ping mapping
    assert "%s:53" % R not in r.read("mappings") and "icmp" not in r.read("mappings")
    assert send(r, OUT, H.icmp_echo(R, NAT, ping_id, 1, reply=True)) == [[], []]


def test_only_slow_path_changes_are_journaled():
    e = rewriter(JOURNAL_CONFIG)
    e._journal = []
    port = open_tcp(e)
    send(e, OUT, H.tcp(R, NAT, 80, port, flags=H.TCP_SYN | H.TCP_ACK))
    assert [(k, key) for k, key, _ in e._journal] == [
        ("created", ["tcp", A, 40000]), ("updated", ["tcp", A, 40000, R, 80])]
    assert e._journal[1][2]["state"] == "established"
    for _ in range(3):                     # data both ways: nothing to journal
        send(e, IN, H.tcp(A, R, 40000, 80, b"data"))
        send(e, OUT, H.tcp(R, NAT, 80, port, b"ack"))
    send(e, IN, H.tcp(A, R, 40000, 80, flags=H.TCP_SYN | H.TCP_ACK))  # no state change
    assert len(e._journal) == 2
    json.dumps(e._journal)                 # keys and values are JSON data


def test_clear_is_journaled_and_replayed():
    e = rewriter(JOURNAL_CONFIG)
    port = open_tcp(e)
    outside_port(only(send(e, IN, H.udp(A, R, 5000, 53)), 0))
    snapshot = e.export_state()
    e._journal = []
    e.write("clear")
    assert sorted(key for _, key, _ in e._journal) == [["tcp", A, 40000], ["udp", A, 5000]]
    r = recovered(snapshot, e._journal, e.clock.t)
    assert r.read("table_size") == "0"
    assert not reply_gets_in(r, port)


def test_replay_frees_and_claims_pattern_ports():
    spec = "pattern %s 6000-6001 - - 0 1, drop" % NAT
    e = rewriter(spec)
    first = open_tcp(e, sport=1)
    snapshot = e.export_state()
    e._journal = []
    e.write("clear")
    second = open_tcp(e, sport=2)          # may take either port now
    r = recovered(snapshot, e._journal, e.clock.t, spec)
    assert table(r) == table(e)
    assert open_tcp(r, sport=3) == 6001 - (second - 6000)
    assert first in (6000, 6001)


@pytest.mark.parametrize("event, message", [
    (("created", ["tcp", A, 1], None), "dict"),
    (("created", ["tcp", A, 1], {"proto": "tcp", "inside": [A, 2]}), "match its key"),
    (("renamed", ["tcp", A, 1], None), "event kind"),
    (("removed", ["tcp", A], None), "expected key"),
    (("removed", ["sctp", A, 1], None), "protocol"),
    (("created", ["udp", A, 1, R, 53], {"remote": [R, 53]}), "idle|rewritten|'"),
    (("removed",), "journal event 0"),
])
def test_replay_rejects_malformed_events(event, message):
    e = rewriter(JOURNAL_CONFIG)
    outside_port(only(send(e, IN, H.udp(A, R, 1, 53)), 0))
    with pytest.raises(ValueError, match=message):
        e.replay_events([event])


def test_replay_ignores_removals_of_entries_already_gone():
    e = rewriter(JOURNAL_CONFIG)
    assert e.replay_events([("removed", ["tcp", A, 1], None),
                            ("removed", ["udp", A, 1, R, 53], None),
                            ("updated", ["tcp", A, 1, R, 80],
                             {"remote": [R, 80], "rewritten": [R, 80], "foutput": 0,
                              "routput": 1, "state": "closed", "idle": 0})]) == 0
    assert e.read("table_size") == "0"


def test_adopt_state_carries_the_table_and_applies_the_new_timeouts():
    old = rewriter()
    port = open_tcp(old)                                # a SYN-only session
    same = rewriter()
    assert same.adopt_state(old) == 1
    assert reply_gets_in(same, port)
    assert open_tcp(same, sport=40001) != port          # new flows avoid adopted ports
    shorter = rewriter(NAT_SPEC + ", TCP_DONE_TIMEOUT 10")
    assert shorter.adopt_state(old) == 2
    shorter.clock.t += 11
    shorter.expire()
    assert shorter.read("table_size") == "0"            # the new timeout applies

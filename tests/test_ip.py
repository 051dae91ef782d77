"""Golden packet tests for nf/elements/ip.py: header checks, TTL, checksums."""

import random
import struct

import pytest

from nf import headers as H
from nf.errors import ConfigError
from nf.netutil import inet_checksum, ones_sum
from nf.packet import Packet
from nf.testing import make, run

from checksum_ref import ip_ok, l4_ok, rfc1071

MAC_A, MAC_B = "02:00:00:00:00:0a", "02:00:00:00:00:0b"
A, B = "10.0.0.1", "192.168.1.2"


def eth(ip_packet):
    return H.ether(MAC_B, MAC_A, H.ETHERTYPE_IP, ip_packet)


def assert_checksums(frame, off=14):
    assert H.verify(frame, off) == []
    assert ip_ok(frame, off) and l4_ok(frame, off)


def ip_header_fields(**kw):
    """An IPv4 header (no payload) whose fields the caller may override."""
    d = dict(vhl=0x45, tos=0, length=20, ident=7, frag=0x4000, ttl=64, proto=17, csum=None,
             src=bytes([10, 0, 0, 1]), dst=bytes([192, 168, 1, 2]))
    d.update(kw)
    hdr = bytearray(struct.pack("!BBHHHBBH4s4s", d["vhl"], d["tos"], d["length"], d["ident"],
                                d["frag"], d["ttl"], d["proto"], 0, d["src"], d["dst"]))
    c = rfc1071(hdr) if d["csum"] is None else d["csum"]
    hdr[10:12] = struct.pack("!H", c)
    return bytes(hdr)


def through(cls, config, frames_or_packets, noutputs=None, **kw):
    """Push packets (bytes or Packet) into a fresh element; return (element, outputs
    as lists of Packet)."""
    e = make(cls, config, noutputs=noutputs, **kw)
    batch = [f if isinstance(f, Packet) else Packet(bytearray(f)) for f in frames_or_packets]
    e.push(0, batch)
    return e, [s.packets for s in e.sinks]


def checked(frames, offset=14):
    """Packets as CheckIPHeader(offset) leaves them (p.nh set)."""
    _, (good, bad) = through("CheckIPHeader", "%d" % offset, frames)
    assert not bad
    return good


# -- CheckIPHeader ----------------------------------------------------------------------

def test_checkipheader_passes_valid_frame_and_sets_annotations():
    frame = eth(H.udp(A, B, 1000, 53, b"query"))
    e, (good, bad) = through("CheckIPHeader", "14", [frame])
    assert [p.data for p in good] == [frame] and bad == []
    p = good[0]
    assert p.nh == 14 and p.dst_ip == bytes([192, 168, 1, 2])
    assert e.read("drops") == "0" and e.read("count") == "1"


def test_checkipheader_offset_zero_on_bare_ip():
    pkt = H.tcp(A, B, 4000, 80, b"x" * 11)
    _, (good, _) = through("CheckIPHeader", "", [pkt])
    assert [p.data for p in good] == [pkt] and good[0].nh == 0


def test_checkipheader_trims_link_padding_to_ip_length():
    frame = eth(H.udp(A, B, 1, 2, b""))          # 42 bytes: padded to 60 on the wire
    _, (good, _) = through("CheckIPHeader", "14", [frame + bytes(18)])
    assert [p.data for p in good] == [frame]


def test_checkipheader_offset_counts_from_data_start_not_buffer_start():
    frame = eth(H.udp(A, B, 1, 2, b"abc"))
    p = Packet(bytearray(bytes(8) + frame), off=8)       # 8 bytes of headroom
    _, (good, _) = through("CheckIPHeader", "OFFSET 14", [p])
    assert good[0].nh == 22 and good[0].ip_offset == 14 and good[0].data == frame


BAD_HEADERS = [
    ("tiny packet", ip_header_fields()[:19]),
    ("bad IP version", ip_header_fields(vhl=0x65)),
    ("bad IP header length", ip_header_fields(vhl=0x44)),
    ("bad IP length", ip_header_fields(length=21)),        # longer than the packet
    ("bad IP length", ip_header_fields(length=19)),        # shorter than the header
    ("bad IP length", ip_header_fields(vhl=0x46, length=20) + bytes(4)),
    ("bad IP checksum", ip_header_fields(csum=0x1234)),
    ("bad source address", ip_header_fields(src=bytes([224, 0, 0, 5]))),
    ("bad source address", ip_header_fields(src=bytes([239, 1, 2, 3]))),
    ("bad source address", ip_header_fields(src=b"\xff\xff\xff\xff")),
]


@pytest.mark.parametrize("reason,header", BAD_HEADERS)
def test_checkipheader_rejects_each_kind_of_bad_header(reason, header):
    frame = eth(header)
    e, (good, bad) = through("CheckIPHeader", "14", [frame])
    assert good == [] and [p.data for p in bad] == [frame]
    assert e.read("drops") == "1"
    details = dict(line.split("\t")[::-1] for line in e.read("drop_details").splitlines())
    assert details[reason] == "1"
    assert sum(int(v) for v in details.values()) == 1


def test_checkipheader_drops_bad_packets_without_output_1():
    frame = eth(ip_header_fields(csum=0x1234))
    e, outs = through("CheckIPHeader", "14", [frame, eth(ip_header_fields())], noutputs=1)
    assert [p.data for p in outs[0]] == [eth(ip_header_fields())]
    assert e.read("drops") == "1"


def test_checkipheader_checksum_false_accepts_bad_checksum():
    frame = eth(ip_header_fields(csum=0x1234))
    _, (good, bad) = through("CheckIPHeader", "14, CHECKSUM false", [frame])
    assert [p.data for p in good] == [frame] and bad == []


def test_checkipheader_class_e_source_is_accepted_by_default():
    frame = eth(ip_header_fields(src=bytes([240, 0, 0, 1])))
    _, (good, _) = through("CheckIPHeader", "14", [frame])
    assert len(good) == 1


def test_checkipheader_badsrc_and_gooddst():
    bad_src = eth(H.udp("10.0.0.255", B, 1, 2))
    exempt = eth(H.udp("10.0.0.255", "10.0.0.1", 1, 2))
    _, (good, bad) = through("CheckIPHeader", "14, BADSRC 10.0.0.255 0.0.0.0, GOODDST 10.0.0.1",
                             [bad_src, exempt])
    assert [p.data for p in good] == [exempt] and [p.data for p in bad] == [bad_src]


def test_checkipheader_interfaces_makes_broadcasts_bad_sources():
    frames = [eth(H.udp(s, B, 1, 2)) for s in ("10.0.0.255", "0.0.0.0", "10.0.0.7")]
    _, (good, bad) = through("CheckIPHeader", "14, INTERFACES 10.0.0.1/24", frames)
    assert [p.data for p in good] == [frames[2]] and [p.data for p in bad] == frames[:2]


def test_checkipheader_config_errors_say_what_was_expected():
    with pytest.raises(ConfigError, match="IP address"):
        make("CheckIPHeader", "BADSRC nonsense")
    with pytest.raises(ConfigError, match="unsigned integer"):
        make("CheckIPHeader", "-3")


def test_checkipheader_reports_first_failure_then_only_with_verbose(capsys):
    frames = [eth(ip_header_fields(csum=1)), eth(ip_header_fields(vhl=0x65))]
    through("CheckIPHeader", "14", frames)
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "bad IP checksum" in err[0]
    through("CheckIPHeader", "14, VERBOSE true", frames)
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and "bad IP version" in err[1]


# -- CheckTCPHeader / CheckUDPHeader ----------------------------------------------------

def test_checktcpheader_accepts_valid_segments_even_and_odd():
    frames = [eth(H.tcp(A, B, 4000, 80, b"x" * n)) for n in (0, 1, 2, 1459)]
    e, (good, bad) = through("CheckTCPHeader", "", checked(frames))
    assert [p.data for p in good] == frames and bad == []
    assert e.read("count") == "4"


def _corrupt(frame, at, value):
    b = bytearray(frame)
    b[at] = value
    return bytes(b)


def test_checktcpheader_rejects_bad_checksum_length_and_protocol():
    good_frame = eth(H.tcp(A, B, 4000, 80, b"payload"))
    bad_sum = eth(H.tcp(A, B, 4000, 80, b"payload", checksum=0xBEEF))
    bad_off = _corrupt(good_frame, 14 + 20 + 12, 0x40)        # data offset 16 < 20
    long_off = _corrupt(good_frame, 14 + 20 + 12, 0xF0)       # 60 > segment
    udp = eth(H.udp(A, B, 1, 2, b"u"))
    e, (good, bad) = through("CheckTCPHeader", "",
                             checked([good_frame, bad_sum, bad_off, long_off, udp]))
    assert [p.data for p in good] == [good_frame]
    assert [p.data for p in bad] == [bad_sum, bad_off, long_off, udp]
    details = {r: int(n) for n, r in (l.split("\t") for l in e.read("drop_details").splitlines())}
    assert details == {"not TCP": 1, "bad packet length": 2, "bad TCP checksum": 1}


def test_checktcpheader_checksum_false():
    bad_sum = eth(H.tcp(A, B, 4000, 80, b"payload", checksum=0xBEEF))
    _, (good, _) = through("CheckTCPHeader", "CHECKSUM false", checked([bad_sum]))
    assert len(good) == 1


def test_checktcpheader_rejects_later_fragments():
    ip = bytearray(H.tcp(A, B, 4000, 80, b"zz"))
    ip[6:8] = b"\x00\x10"                                     # fragment offset 16
    ip[10:12] = b"\0\0"
    ip[10:12] = struct.pack("!H", inet_checksum(ip[:20]))
    _, (good, bad) = through("CheckTCPHeader", "", checked([eth(ip)]))
    assert good == [] and len(bad) == 1


def test_checkudpheader_accepts_zero_checksum_and_valid_ones():
    frames = [eth(H.udp(A, B, 5, 6, b"abc", checksum=0)), eth(H.udp(A, B, 5, 6, b"abcd")),
              eth(H.udp(A, B, 5, 6, b""))]
    _, (good, bad) = through("CheckUDPHeader", "", checked(frames))
    assert [p.data for p in good] == frames and bad == []


def test_checkudpheader_rejects_bad_checksum_and_lengths():
    ok = eth(H.udp(A, B, 5, 6, b"abcdef"))
    bad_sum = eth(H.udp(A, B, 5, 6, b"abcdef", checksum=0x1111))
    too_long = _corrupt(ok, 14 + 20 + 5, 15)                  # UDP length 15 > 14
    too_short = _corrupt(ok, 14 + 20 + 5, 7)
    tcp = eth(H.tcp(A, B, 5, 6))
    e, (good, bad) = through("CheckUDPHeader", "", checked([ok, bad_sum, too_long, too_short,
                                                            tcp]))
    assert [p.data for p in good] == [ok]
    assert [p.data for p in bad] == [bad_sum, too_long, too_short, tcp]
    assert e.read("drops") == "4"


def test_transport_checks_use_data_start_without_annotation():
    pkt = H.udp(A, B, 5, 6, b"abc")
    _, (good, _) = through("CheckUDPHeader", "", [pkt])
    assert [p.data for p in good] == [pkt]


# -- DecIPTTL ---------------------------------------------------------------------------

def test_decipttl_golden_frame():
    frame = eth(H.udp(A, B, 1, 2, b"data", ttl=64))
    e, (out, expired) = through("DecIPTTL", "", checked([frame]))
    assert [p.data for p in out] == [eth(H.udp(A, B, 1, 2, b"data", ttl=63))]
    assert_checksums(out[0].data)


def test_decipttl_checksum_equals_full_recompute_for_many_headers():
    rnd = random.Random(1624)
    frames = []
    for ttl in range(2, 256):
        for _ in range(4):
            unicast_src = bytes([rnd.randrange(1, 224)]) + rnd.randbytes(3)
            frames.append(eth(ip_header_fields(ttl=ttl, ident=rnd.randrange(65536),
                                               tos=rnd.randrange(256), proto=rnd.randrange(256),
                                               src=unicast_src, dst=rnd.randbytes(4))))
    _, (out, expired) = through("DecIPTTL", "", checked(frames))
    assert len(out) == len(frames) and expired == []
    for before, p in zip(frames, out):
        hdr = bytearray(before[14:34])
        hdr[8] -= 1
        hdr[10:12] = b"\0\0"
        hdr[10:12] = struct.pack("!H", rfc1071(hdr))
        assert p.data[14:] == bytes(hdr)


def _header_with_sum(target_sum, ttl):
    """A header (checksum field zero) whose one's-complement sum is target_sum,
    reached by choosing the ident field."""
    base = ip_header_fields(ttl=ttl, ident=0, csum=0)
    ident = (target_sum - ones_sum(base)) % 0xFFFF
    return ip_header_fields(ttl=ttl, ident=ident, csum=0)


@pytest.mark.parametrize("case", ["zero before", "zero after", "ffff representation"])
def test_decipttl_checksum_corners(case):
    if case == "zero before":             # checksum 0x0000 before the decrement
        hdr = bytearray(_header_with_sum(0xFFFF, 9))
        hdr[10:12] = struct.pack("!H", rfc1071(hdr))
        assert hdr[10:12] == b"\0\0"
    elif case == "zero after":            # checksum becomes 0x0000 after it
        hdr = bytearray(_header_with_sum(0x0100, 9))     # minus 0x0100 leaves 0xFFFF
        hdr[10:12] = struct.pack("!H", rfc1071(hdr))
    else:                                 # 0xFFFF: the other zero of one's complement
        hdr = bytearray(_header_with_sum(0xFFFF, 9))
        hdr[10:12] = b"\xff\xff"
    assert ones_sum(hdr) == 0xFFFF        # a valid header either way
    _, (out, _) = through("DecIPTTL", "", [bytes(hdr)])
    got = out[0].data
    want = bytearray(hdr)
    want[8] -= 1
    want[10:12] = b"\0\0"
    want[10:12] = struct.pack("!H", rfc1071(want))
    assert got == bytes(want)
    if case == "zero after":
        assert got[10:12] == b"\0\0"


@pytest.mark.parametrize("ttl", [0, 1])
def test_decipttl_expired_to_output_1_unchanged(ttl):
    frame = eth(H.udp(A, B, 1, 2, ttl=ttl))
    e, (out, expired) = through("DecIPTTL", "", checked([frame]))
    assert out == [] and [p.data for p in expired] == [frame]
    assert e.read("drops") == "1"


def test_decipttl_expired_dropped_with_one_output():
    frames = [eth(H.udp(A, B, 1, 2, ttl=1)), eth(H.udp(A, B, 1, 2, ttl=2))]
    e, outs = through("DecIPTTL", "", checked(frames), noutputs=1)
    assert [p.data for p in outs[0]] == [eth(H.udp(A, B, 1, 2, ttl=1))]
    assert e.read("drops") == "1"


def test_decipttl_multicast_and_active_keywords():
    mc = H.udp(A, "224.0.0.251", 5353, 5353, ttl=5)
    _, (out, _) = through("DecIPTTL", "MULTICAST false", [mc])
    assert [p.data for p in out] == [mc]
    _, (out, _) = through("DecIPTTL", "", [mc])
    assert out[0].data[8] == 4
    _, (out, _) = through("DecIPTTL", "ACTIVE false", [H.udp(A, B, 1, 2, ttl=1)])
    assert [p.data for p in out] == [H.udp(A, B, 1, 2, ttl=1)]


# -- GetIPAddress -----------------------------------------------------------------------

def test_getipaddress_sets_destination_annotation():
    pkt = H.udp(A, B, 1, 2)
    _, (out,) = through("GetIPAddress", "16", [pkt])
    assert out[0].dst_ip == bytes([192, 168, 1, 2]) and out[0].data == pkt
    _, (out,) = through("GetIPAddress", "12", [pkt])
    assert out[0].dst_ip == bytes([10, 0, 0, 1])
    _, (out,) = through("GetIPAddress", "16", [pkt[:19]])
    assert out == []                                    # no address to read: dropped
    with pytest.raises(ConfigError, match="OFFSET"):
        make("GetIPAddress", "")


# -- checksum setters -------------------------------------------------------------------

def _zeroed(frame, at):
    return _corrupt(_corrupt(frame, at, 0), at + 1, 0)


def test_setipchecksum_recomputes_header_checksum():
    frame = eth(H.udp(A, B, 1, 2, b"x"))
    bad = _corrupt(frame, 14 + 10, 0x55)
    _, (good, _) = through("CheckIPHeader", "14, CHECKSUM false", [bad])
    _, (out,) = through("SetIPChecksum", "", good)
    assert [p.data for p in out] == [frame]
    assert_checksums(out[0].data)


@pytest.mark.parametrize("n", [0, 1, 2, 7, 1400])
def test_settcpchecksum_recomputes(n):
    frame = eth(H.tcp(A, B, 4000, 80, bytes(i % 251 for i in range(n))))
    bad = _zeroed(frame, 14 + 20 + 16)
    _, (out,) = through("SetTCPChecksum", "", checked([bad]))
    assert [p.data for p in out] == [frame]
    assert_checksums(out[0].data)


def test_setudpchecksum_recomputes_and_writes_ffff_for_zero():
    base = H.udp(A, B, 7, 9, b"\0\0")
    s0 = ones_sum(bytes(base[12:20]) + struct.pack("!HH", 17, 10) + base[20:26] + base[28:])
    payload = struct.pack("!H", 0xFFFF - s0)      # makes the whole sum 0xFFFF
    frame = eth(H.udp(A, B, 7, 9, payload))
    assert frame[14 + 26:14 + 28] == b"\xff\xff"  # the builder agrees: computed 0 -> ffff
    _, (out,) = through("SetUDPChecksum", "", checked([_zeroed(frame, 14 + 26)]))
    assert [p.data for p in out] == [frame]
    assert_checksums(out[0].data)
    odd = eth(H.udp(A, B, 7, 9, b"odd"))
    _, (out,) = through("SetUDPChecksum", "", checked([_corrupt(odd, 14 + 27, 3)]))
    assert [p.data for p in out] == [odd]


def test_checksum_setters_pass_fragments_and_drop_other_protocols():
    frag = bytearray(H.udp(A, B, 1, 2, b"frag", checksum=0x1234))
    frag[6] |= 0x20                                            # more fragments
    frag[10:12] = b"\0\0"
    frag[10:12] = struct.pack("!H", inet_checksum(frag[:20]))
    _, (out,) = through("SetUDPChecksum", "", [bytes(frag), H.tcp(A, B, 1, 2)])
    assert [p.data for p in out] == [bytes(frag)]
    _, (out,) = through("SetTCPChecksum", "", [H.udp(A, B, 1, 2)])
    assert out == []


# -- robustness -------------------------------------------------------------------------

ALL_IP_ELEMENTS = [("CheckIPHeader", "14"), ("CheckIPHeader", ""), ("CheckTCPHeader", ""),
            ("CheckUDPHeader", ""), ("DecIPTTL", ""), ("GetIPAddress", "16"),
            ("SetIPChecksum", ""), ("SetTCPChecksum", ""), ("SetUDPChecksum", "")]


@pytest.mark.parametrize("cls,config", ALL_IP_ELEMENTS)
def test_truncated_packets_never_raise(cls, config):
    frames = [eth(H.tcp(A, B, 1, 2, b"tcp payload")), eth(H.udp(A, B, 1, 2, b"udp!")),
              eth(ip_header_fields(vhl=0x4F, length=60))]
    cuts = []
    for f in frames:
        for n in range(len(f) + 1):
            cuts.append(f[:n])
            cuts.append(f[14:14 + n])
    e = make(cls, config)
    run(e, cuts)
    # with the IP header annotation pointing into a truncated buffer, too
    batch = []
    for c in cuts:
        p = Packet(bytearray(c))
        p.nh = 14
        batch.append(p)
    e.push(0, batch)

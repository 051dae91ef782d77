"""StatefulFirewall: golden packets through the TCP state machine, UDP, ICMP,
timeouts on an injected clock, capacity, LOOSE mode, malformed input, and an
export/import round trip.  Every passing frame must leave unchanged, on the
output of its direction; every drop must be counted under its reason and
appear on output 2."""

import json
import random

import pytest

from nf import headers as H
from nf.errors import ConfigError, HandlerError
from nf.packet import Packet
from nf.testing import make
from tests import checksum_ref

IN, OUT = 0, 1                               # input ports: from inside, from outside
A, R, R2 = "10.0.0.2", "198.51.100.9", "203.0.113.5"
AP, RP = 40000, 80
SYN, ACK, FIN, RST, PSH = H.TCP_SYN, H.TCP_ACK, H.TCP_FIN, H.TCP_RST, H.TCP_PSH
ISN, RISN = 1000, 5000                       # inside's and outside's initial sequence numbers


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def firewall(config=""):
    fw = make("StatefulFirewall", config, noutputs=3)
    fw.clock = Clock()
    return fw


def eth(ip_packet):
    return H.ether("02:00:00:00:00:01", "02:00:00:00:00:02", H.ETHERTYPE_IP, ip_packet)


def from_inside(flags, seq, ack=0, payload=b"", sport=AP, dst=R, dport=RP):
    return eth(H.tcp(A, dst, sport, dport, payload, seq=seq, ack=ack, flags=flags))


def from_outside(flags, seq, ack=0, payload=b"", src=R, sport=RP, dport=AP):
    return eth(H.tcp(src, A, sport, dport, payload, seq=seq, ack=ack, flags=flags))


def send(fw, port, frame, nh=14):
    """Push one frame (IP header at ``nh``); return the frames on each output."""
    before = [len(s.packets) for s in fw.sinks]
    p = Packet(bytearray(frame))
    p.nh = nh
    fw.push(port, [p])
    return [[q.data for q in s.packets[n:]] for s, n in zip(fw.sinks, before)]


def reasons(fw):
    return {r: int(n) for r, n in (line.split() for line in fw.read("drop_reasons").splitlines())}


def passes(fw, port, frame, l4=True):
    """The frame leaves unchanged on the output of its direction, and only there,
    with right checksums (``l4`` False: no TCP/UDP/ICMP checksum to check)."""
    outs = send(fw, port, frame)
    expected = [[], [], []]
    expected[port] = [frame]
    assert outs == expected
    assert checksum_ref.ip_ok(outs[port][0])
    if l4:
        assert H.verify(outs[port][0]) == [] and checksum_ref.l4_ok(outs[port][0])


def drops(fw, port, frame, reason, nh=14):
    """The frame is dropped to output 2 and counted under ``reason`` (only)."""
    before = reasons(fw)
    outs = send(fw, port, frame, nh)
    assert outs == [[], [], [frame]]
    after = reasons(fw)
    before[reason] += 1
    assert after == before


def state(fw, proto="tcp", inside="%s:%d" % (A, AP), remote="%s:%d" % (R, RP)):
    """The state the table shows for one session, or None."""
    for line in fw.read("table").splitlines():
        p, i, arrow, r, st, idle = line.split()
        assert arrow == "<->" and idle.endswith("s")
        if (p, i, r) == (proto, inside, remote):
            return st
    return None


def establish(fw):
    passes(fw, IN, from_inside(SYN, ISN))
    passes(fw, OUT, from_outside(SYN | ACK, RISN, ISN + 1))
    passes(fw, IN, from_inside(ACK, ISN + 1, RISN + 1))
    assert state(fw) == "ESTABLISHED"


# -- TCP state machine --------------------------------------------------------------------

def test_handshake_data_and_inside_close():
    fw = firewall()
    passes(fw, IN, from_inside(SYN, ISN))
    assert state(fw) == "SYN_SENT"
    passes(fw, OUT, from_outside(SYN | ACK, RISN, ISN + 1))
    assert state(fw) == "SYN_RECV"
    passes(fw, IN, from_inside(ACK, ISN + 1, RISN + 1))
    assert state(fw) == "ESTABLISHED"
    passes(fw, IN, from_inside(ACK | PSH, ISN + 1, RISN + 1, b"GET / HTTP/1.0\r\n\r\n"))
    passes(fw, OUT, from_outside(ACK | PSH, RISN + 1, ISN + 19, b"x" * 1000))
    passes(fw, IN, from_inside(ACK | FIN, ISN + 19, RISN + 1001))
    assert state(fw) == "FIN_WAIT"
    passes(fw, OUT, from_outside(ACK, RISN + 1001, ISN + 20))
    drops(fw, OUT, from_outside(SYN | ACK, RISN, ISN + 1), "invalid-state")
    passes(fw, OUT, from_outside(ACK | FIN, RISN + 1001, ISN + 20))
    assert state(fw) == "TIME_WAIT"
    passes(fw, IN, from_inside(ACK, ISN + 20, RISN + 1002))
    assert state(fw) == "TIME_WAIT"
    assert fw.read("drops") == "1"             # only the stray SYN-ACK


def test_outside_close_then_last_ack_then_port_reuse():
    fw = firewall()
    establish(fw)
    passes(fw, OUT, from_outside(ACK | FIN, RISN + 1, ISN + 1))
    assert state(fw) == "CLOSE_WAIT"
    passes(fw, IN, from_inside(ACK, ISN + 1, RISN + 2, b"last words"))
    passes(fw, IN, from_inside(ACK | FIN, ISN + 11, RISN + 2))
    assert state(fw) == "LAST_ACK"
    passes(fw, OUT, from_outside(ACK, RISN + 2, ISN + 11))      # does not ack the FIN yet
    assert state(fw) == "LAST_ACK"
    passes(fw, OUT, from_outside(ACK, RISN + 2, ISN + 12))
    assert state(fw) == "CLOSED"
    passes(fw, IN, from_inside(SYN, 777))                        # same ports, new connection
    assert state(fw) == "SYN_SENT"
    drops(fw, OUT, from_outside(SYN | ACK, RISN, ISN + 1), "invalid-state")   # old ISN
    passes(fw, OUT, from_outside(SYN | ACK, 9000, 778))
    assert state(fw) == "SYN_RECV"


@pytest.mark.parametrize("port", [IN, OUT])
def test_rst_closes_and_closed_session_lingers_then_expires(port):
    fw = firewall()
    establish(fw)
    rst = from_inside(RST, ISN + 1) if port == IN else from_outside(RST, RISN + 1)
    passes(fw, port, rst)
    assert state(fw) == "CLOSED"
    passes(fw, OUT, from_outside(ACK, RISN + 1, ISN + 1, b"late"))   # in flight before the RST
    fw.clock.t += 11
    fw.expire()
    assert state(fw) is None
    drops(fw, OUT, from_outside(ACK, RISN + 1, ISN + 1, b"late"), "unsolicited")


def test_outside_rst_in_syn_sent_must_ack_the_syn():
    fw = firewall()
    passes(fw, IN, from_inside(SYN, ISN))
    drops(fw, OUT, from_outside(RST, 0), "invalid-state")
    drops(fw, OUT, from_outside(RST | ACK, 0, ISN + 5), "invalid-state")
    assert state(fw) == "SYN_SENT"
    passes(fw, OUT, from_outside(RST | ACK, 0, ISN + 1))
    assert state(fw) == "CLOSED"


def test_outside_syn_ack_must_answer_an_inside_syn():
    fw = firewall()
    drops(fw, OUT, from_outside(SYN | ACK, RISN, ISN + 1), "unsolicited")
    passes(fw, IN, from_inside(SYN, ISN))
    drops(fw, OUT, from_outside(SYN | ACK, RISN, ISN + 2), "invalid-state")
    drops(fw, OUT, from_outside(ACK, RISN, ISN + 1, b"early"), "invalid-state")
    drops(fw, OUT, from_outside(SYN | ACK, RISN, ISN + 1, sport=81), "unsolicited")
    drops(fw, IN, from_inside(ACK, ISN + 1, RISN + 1), "invalid-state")   # no SYN-ACK yet
    assert state(fw) == "SYN_SENT"


def test_syn_ack_retransmission_passes_but_outside_syn_never_opens_or_restarts():
    fw = firewall()
    establish(fw)
    passes(fw, OUT, from_outside(SYN | ACK, RISN, ISN + 1))   # our final ACK got lost
    drops(fw, OUT, from_outside(SYN, 1), "invalid-state")
    drops(fw, OUT, from_outside(SYN, 1, sport=22), "unsolicited")
    drops(fw, IN, from_inside(SYN | ACK, 1, 2, sport=22), "not-syn")  # no inbound servers
    assert state(fw) == "ESTABLISHED"
    passes(fw, OUT, from_outside(ACK, RISN + 1, ISN + 1, b"still fine"))


def test_final_ack_must_acknowledge_the_outside_syn():
    fw = firewall()
    passes(fw, IN, from_inside(SYN, ISN))
    passes(fw, OUT, from_outside(SYN | ACK, RISN, ISN + 1))
    drops(fw, IN, from_inside(ACK, ISN + 1, RISN), "invalid-state")
    assert state(fw) == "SYN_RECV"
    passes(fw, IN, from_inside(ACK | PSH, ISN + 1, RISN + 1, b"data with the ACK"))
    assert state(fw) == "ESTABLISHED"


def test_unsolicited_outside_packets_are_dropped_and_counted():
    fw = firewall()
    drops(fw, OUT, from_outside(SYN, RISN), "unsolicited")
    drops(fw, OUT, from_outside(ACK, RISN, 1), "unsolicited")
    drops(fw, OUT, eth(H.udp(R, A, 53, 5353, b"q")), "unsolicited")
    drops(fw, OUT, eth(H.icmp_echo(R, A, 7, 1)), "unsolicited")
    drops(fw, OUT, eth(H.icmp_echo(R, A, 7, 1, reply=True)), "unsolicited")
    assert fw.read("drops") == "5" and reasons(fw)["unsolicited"] == 5
    assert fw.read("sessions") == "0"


def test_drops_without_a_third_output_are_only_counted():
    fw = make("StatefulFirewall", "", noutputs=2)
    p = Packet(bytearray(from_outside(SYN, RISN)))
    p.nh = 14
    fw.push(OUT, [p])
    assert [s.packets for s in fw.sinks] == [[], []]
    assert fw.read("drops") == "1"


def test_inside_ack_without_session_is_dropped_unless_loose():
    fw = firewall()
    drops(fw, IN, from_inside(ACK, ISN + 1, RISN + 1, b"mid-stream"), "not-syn")
    drops(fw, IN, from_inside(RST, ISN), "not-syn")
    loose = firewall("LOOSE true")
    passes(loose, IN, from_inside(ACK, ISN + 1, RISN + 1, b"mid-stream"))
    assert state(loose) == "ESTABLISHED"
    passes(loose, OUT, from_outside(ACK, RISN + 1, ISN + 11, b"reply"))
    drops(loose, OUT, from_outside(ACK, 1, 1, sport=443), "unsolicited")   # never from outside
    passes(loose, IN, from_inside(ACK | FIN, 1, 1, dport=8080))
    assert state(loose, remote="%s:8080" % R) == "FIN_WAIT"


def test_bad_flag_combinations_are_malformed():
    fw = firewall()
    establish(fw)
    drops(fw, OUT, from_outside(PSH, RISN + 1, 0, b"no ACK"), "malformed")
    drops(fw, IN, from_inside(0, ISN + 1), "malformed")
    drops(fw, IN, from_inside(SYN | FIN, ISN), "malformed")
    drops(fw, IN, from_inside(SYN | RST, ISN), "malformed")
    drops(fw, IN, from_inside(0, ISN), "malformed")
    drops(fw, IN, from_inside(FIN, ISN), "malformed")


def test_tcp_with_ip_options_and_no_ethernet_header():
    fw = firewall()
    establish(fw)
    seg = H.tcp(R, A, RP, AP, b"opt", seq=RISN + 1, ack=ISN + 1)[20:]
    frame = H.ipv4(R, A, H.IPPROTO_TCP, seg, options=b"\x01\x01\x01\x00")
    outs = send(fw, OUT, frame, nh=-1)                # header at the data start
    assert outs == [[], [frame], []]
    assert H.verify(frame, 0) == [] and checksum_ref.l4_ok(frame, 0)


# -- UDP, ICMP, other protocols -----------------------------------------------------------

def test_udp_replies_from_the_same_endpoint_pass():
    fw = firewall()
    query = eth(H.udp(A, R, 5353, 53, b"query", checksum=0))
    passes(fw, IN, query)
    assert state(fw, "udp", "%s:5353" % A, "%s:53" % R) == "UNREPLIED"
    passes(fw, OUT, eth(H.udp(R, A, 53, 5353, b"answer")))
    assert state(fw, "udp", "%s:5353" % A, "%s:53" % R) == "REPLIED"
    drops(fw, OUT, eth(H.udp(R, A, 54, 5353, b"other port")), "unsolicited")
    drops(fw, OUT, eth(H.udp(R2, A, 53, 5353, b"other host")), "unsolicited")


def test_icmp_echo_replies_pass_by_identifier():
    fw = firewall()
    passes(fw, IN, eth(H.icmp_echo(A, R, 77, 1, b"ping")))
    passes(fw, OUT, eth(H.icmp_echo(R, A, 77, 1, b"ping", reply=True)))
    assert state(fw, "icmp", "%s:77" % A, "%s:77" % R) == "REPLIED"
    drops(fw, OUT, eth(H.icmp_echo(R, A, 78, 1, reply=True)), "unsolicited")
    drops(fw, OUT, eth(H.icmp_echo(R2, A, 77, 1, reply=True)), "unsolicited")
    drops(fw, OUT, eth(H.icmp_echo(R, A, 77, 2)), "unsolicited")   # an echo request in


def icmp_error(src, dst, quoted, kind=3, code=4):
    body = bytearray(bytes([kind, code, 0, 0, 0, 0, 0x05, 0xdc]) + quoted[:28])
    csum = checksum_ref.rfc1071(body)
    body[2:4] = csum.to_bytes(2, "big")
    return eth(H.ipv4(src, dst, H.IPPROTO_ICMP, bytes(body)))


def test_icmp_errors_about_a_session_pass():
    fw = firewall()
    establish(fw)
    quoted = H.tcp(A, R, AP, RP, seq=ISN + 1, ack=RISN + 1)
    passes(fw, OUT, icmp_error("192.0.2.254", A, quoted))          # fragmentation needed
    passes(fw, OUT, icmp_error("192.0.2.254", A, quoted, kind=11, code=0))
    other = H.tcp(A, R, AP + 1, RP)
    drops(fw, OUT, icmp_error("192.0.2.254", A, other), "unsolicited")
    drops(fw, OUT, icmp_error("192.0.2.254", "10.0.0.3", quoted), "unsolicited")
    drops(fw, OUT, icmp_error("192.0.2.254", A, quoted[:20]), "unsolicited")
    passes(fw, IN, icmp_error(A, R, H.udp(R, A, 53, 5353)))          # inside errors go out


def test_other_protocols_follow_the_other_keyword():
    gre_out = eth(H.ipv4(A, R, 47, b"\0\0\x08\x00inner"))
    gre_in = eth(H.ipv4(R, A, 47, b"\0\0\x08\x00inner"))
    fw = firewall()
    passes(fw, IN, gre_out, l4=False)
    drops(fw, OUT, gre_in, "protocol")
    assert fw.read("sessions") == "0"
    strict = firewall("OTHER drop")
    drops(strict, IN, gre_out, "protocol")
    with pytest.raises(ConfigError, match="OTHER"):
        make("StatefulFirewall", "OTHER allow")


def test_fragments_without_ports():
    fw = firewall()
    later = eth(H.ipv4(R, A, H.IPPROTO_UDP, b"\1" * 16, flags_frag=0x0003))
    drops(fw, OUT, later, "fragment")
    passes(fw, IN, eth(H.ipv4(A, R, H.IPPROTO_UDP, b"\1" * 16, flags_frag=0x0003)), l4=False)
    first = eth(H.ipv4(R, A, H.IPPROTO_UDP, H.udp(R, A, 53, 5353, b"x" * 40)[20:48],
                       flags_frag=0x2000))
    drops(fw, OUT, first, "unsolicited")          # a first fragment is judged by its ports
    establish(fw)
    seg = H.tcp(R, A, RP, AP, b"z" * 24, seq=RISN + 1, ack=ISN + 1)[20:]
    drops(fw, OUT, eth(H.ipv4(R, A, H.IPPROTO_TCP, seg, flags_frag=0x0003)), "fragment")


# -- timeouts -----------------------------------------------------------------------------

def test_syn_sent_expires():
    fw = firewall()
    passes(fw, IN, from_inside(SYN, ISN))
    fw.clock.t += 119
    fw.expire()
    assert state(fw) == "SYN_SENT"
    fw.clock.t += 2
    fw.expire()
    assert fw.read("sessions") == "0"
    drops(fw, OUT, from_outside(SYN | ACK, RISN, ISN + 1), "unsolicited")


def test_established_persists_and_expires_after_its_timeout():
    fw = firewall()
    establish(fw)
    fw.clock.t += 7000
    fw.expire()
    passes(fw, OUT, from_outside(ACK, RISN + 1, ISN + 1, b"after 7000 s"))
    fw.clock.t += 7441
    fw.expire()
    assert state(fw) is None


def test_icmp_echo_session_expires_after_icmp_timeout():
    fw = firewall("ICMP_TIMEOUT 5")
    passes(fw, IN, eth(H.icmp_echo(A, R, 77, 1)))
    fw.clock.t += 4
    fw.expire()
    passes(fw, OUT, eth(H.icmp_echo(R, A, 77, 1, reply=True)))
    fw.clock.t += 6
    fw.expire()
    drops(fw, OUT, eth(H.icmp_echo(R, A, 77, 1, reply=True)), "unsolicited")


def test_udp_expires_unreplied_and_lives_longer_once_replied():
    fw = firewall("UDP_TIMEOUT 30, UDP_STREAM_TIMEOUT 180")
    passes(fw, IN, eth(H.udp(A, R, 5353, 53, b"q")))
    passes(fw, IN, eth(H.udp(A, R, 5354, 53, b"q")))
    passes(fw, OUT, eth(H.udp(R, A, 53, 5354, b"a")))
    fw.clock.t += 31
    fw.expire()
    drops(fw, OUT, eth(H.udp(R, A, 53, 5353, b"late")), "unsolicited")
    passes(fw, OUT, eth(H.udp(R, A, 53, 5354, b"stream")))
    fw.clock.t += 181
    fw.expire()
    assert fw.read("sessions") == "0"


def test_table_shows_idle_age_and_timer_is_registered():
    class Router:
        addresses = None

        def __init__(self):
            self.timers = []

        def add_timer(self, interval, fn):
            self.timers.append((interval, fn))

    router = Router()
    fw = make("StatefulFirewall", "", noutputs=3, router=router)
    assert router.timers == [(1.0, fw.expire)]
    fw.clock = Clock()
    passes(fw, IN, eth(H.icmp_echo(A, R, 9, 1)))
    fw.clock.t += 2.5
    assert fw.read("table") == "icmp %s:9 <-> %s:9 UNREPLIED 2.5s" % (A, R)


# -- capacity, handlers -------------------------------------------------------------------

def test_capacity_refuses_new_sessions_and_counts():
    fw = firewall("CAPACITY 2")
    passes(fw, IN, from_inside(SYN, ISN))
    passes(fw, IN, eth(H.udp(A, R, 5353, 53)))
    drops(fw, IN, from_inside(SYN, ISN, sport=AP + 1), "capacity")
    drops(fw, IN, eth(H.icmp_echo(A, R, 1, 1)), "capacity")
    passes(fw, OUT, from_outside(SYN | ACK, RISN, ISN + 1))        # existing sessions work
    assert fw.read("capacity") == "2"
    fw.write("capacity", "3")
    passes(fw, IN, eth(H.icmp_echo(A, R, 1, 1)))
    with pytest.raises(HandlerError, match="unsigned integer"):
        fw.write("capacity", "lots")
    fw.write("clear")
    assert fw.read("sessions") == "0"
    assert reasons(fw)["capacity"] == 2


def test_drop_reasons_lists_every_reason():
    fw = firewall()
    assert reasons(fw) == dict.fromkeys(
        ["truncated", "malformed", "fragment", "unsolicited", "not-syn", "invalid-state",
         "protocol", "capacity"], 0)
    doc = fw.doc()
    assert doc.startswith("StatefulFirewall([KEYWORDS])") and "TCP_ESTABLISHED_TIMEOUT" in doc


# -- malformed input ----------------------------------------------------------------------

def with_ip_bytes(frame, **fields):
    """A copy of ``frame`` with IP header bytes replaced: {offset: value}."""
    b = bytearray(frame)
    for off, v in fields.items():
        b[14 + int(off[1:])] = v
    return bytes(b)


def test_malformed_and_truncated_packets_are_dropped_and_counted():
    fw = firewall()
    establish(fw)
    data = from_outside(ACK, RISN + 1, ISN + 1, b"payload")
    drops(fw, OUT, data[:30], "truncated")                       # half an IP header
    drops(fw, OUT, data[:-3], "truncated")                       # shorter than total length
    drops(fw, OUT, data[:14], "truncated")                       # nothing after the header
    drops(fw, OUT, with_ip_bytes(data, b0=0x65), "malformed")    # IPv6 version nibble
    drops(fw, OUT, with_ip_bytes(data, b0=0x44), "malformed")    # IHL 4
    drops(fw, OUT, with_ip_bytes(data, b2=0, b3=19), "malformed")       # total < header
    drops(fw, OUT, with_ip_bytes(data, b2=0, b3=30), "truncated")       # 10 bytes of TCP
    drops(fw, OUT, with_ip_bytes(data, b32=0x40), "malformed")          # TCP offset 4
    drops(fw, OUT, with_ip_bytes(data, b32=0xF0), "malformed")          # offset past the end
    drops(fw, IN, eth(H.ipv4(A, R, H.IPPROTO_UDP, b"\0" * 7)), "truncated")
    drops(fw, IN, eth(H.ipv4(A, R, H.IPPROTO_ICMP, b"\x08\0\0\0")), "truncated")
    passes(fw, OUT, data)                                        # the session is unharmed


def test_random_truncation_and_corruption_never_raise():
    fw = firewall("LOOSE true")
    establish(fw)
    rng = random.Random(7)
    frames = [from_outside(ACK, RISN + 1, ISN + 1, b"abc"), from_inside(SYN, 1, sport=1),
              eth(H.udp(A, R, 1, 2, b"x")), eth(H.icmp_echo(A, R, 1, 1)),
              icmp_error(R, A, H.tcp(A, R, AP, RP))]
    batch = []
    for _ in range(2000):
        b = bytearray(rng.choice(frames))
        del b[rng.randrange(len(b) + 1):]
        for _ in range(rng.randrange(3)):
            if b:
                b[rng.randrange(len(b))] = rng.randrange(256)
        p = Packet(b)
        p.nh = 14
        batch.append(p)
    before = sum(len(s.packets) for s in fw.sinks)
    for port in (IN, OUT):
        fw.push(port, list(batch))
    assert sum(len(s.packets) for s in fw.sinks) - before == 2 * len(batch)
    assert int(fw.read("drops")) == len(fw.sinks[2].packets) > 0


# -- state --------------------------------------------------------------------------------

def test_export_import_round_trip_keeps_an_established_session():
    old = firewall()
    establish(old)
    passes(old, IN, eth(H.udp(A, R, 5353, 53)))
    old.clock.t += 40
    exported = json.loads(json.dumps(old.export_state()))
    new = firewall()
    new.clock.t = 5000.0                              # another process, another clock
    assert new.import_state(exported, old.STATE_VERSION) == 1    # the UDP one timed out
    assert state(new) == "ESTABLISHED"
    assert new.read("table") == "tcp %s:%d <-> %s:%d ESTABLISHED 40.0s" % (A, AP, R, RP)
    passes(new, OUT, from_outside(ACK, RISN + 1, ISN + 1, b"after the upgrade"))
    passes(new, IN, from_inside(ACK | FIN, ISN + 1, RISN + 18))
    assert state(new) == "FIN_WAIT"


def test_import_of_handshake_state_keeps_sequence_checks():
    old = firewall()
    passes(old, IN, from_inside(SYN, ISN))
    new = firewall()
    new.import_state(old.export_state(), 1)
    drops(new, OUT, from_outside(SYN | ACK, RISN, ISN + 2), "invalid-state")
    passes(new, OUT, from_outside(SYN | ACK, RISN, ISN + 1))


def test_import_rejects_bad_state_clearly():
    fw = firewall()
    with pytest.raises(ValueError, match="version 2"):
        fw.import_state({"sessions": []}, 2)
    with pytest.raises(ValueError, match="sessions"):
        fw.import_state([], 1)
    bad = {"proto": 17, "inside": [A, 1], "remote": [R, 2], "state": "ESTABLISHED", "idle": 0}
    with pytest.raises(ValueError, match="session 0"):
        fw.import_state({"sessions": [bad]}, 1)


def test_take_state_keeps_no_sessions():
    old = firewall()
    establish(old)
    new = firewall()
    new.take_state(old)
    assert new.read("sessions") == "0"
    drops(new, OUT, from_outside(ACK, RISN + 1, ISN + 1), "unsolicited")


def test_import_over_capacity_keeps_the_most_recently_active():
    old = firewall()
    passes(old, IN, eth(H.udp(A, R, 1111, 53)))
    old.clock.t += 10
    passes(old, IN, eth(H.udp(A, R, 2222, 53)))
    new = firewall("CAPACITY 1")
    assert new.import_state(old.export_state(), 1) == 1
    passes(new, OUT, eth(H.udp(R, A, 53, 2222)))
    drops(new, OUT, eth(H.udp(R, A, 53, 1111)), "unsolicited")

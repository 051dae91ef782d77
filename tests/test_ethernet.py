"""Golden packet tests for nf/elements/ethernet.py: Strip/Unstrip, EtherEncap,
EtherRewrite, ARPResponder and ARPQuerier."""

import pytest

from nf import headers as H
from nf.args import AddressTable
from nf.errors import ConfigError, HandlerError
from nf.netutil import parse_ip
from nf.packet import Packet
from nf.testing import make, run

from checksum_ref import ip_ok, l4_ok

BCAST = "ff:ff:ff:ff:ff:ff"
ZERO = "00:00:00:00:00:00"
ME_MAC, ME_IP = "02:00:00:00:00:01", "10.0.0.1"
PEER_MAC, PEER_IP = "02:00:00:00:00:02", "10.0.0.2"
GW_MAC, GW_IP = "02:00:00:00:00:fe", "10.0.0.254"
FAR = "8.8.8.8"


def ip_pkt(dst=PEER_IP, payload=b"hello", sport=1000):
    return H.udp(ME_IP, dst, sport, 53, payload)


def arp_request(sha, spa, tpa, eth_dst=BCAST):
    return H.ether(eth_dst, sha, H.ETHERTYPE_ARP, H.arp(1, sha, spa, ZERO, tpa))


def arp_reply(sha, spa, tha, tpa):
    return H.ether(tha, sha, H.ETHERTYPE_ARP, H.arp(2, sha, spa, tha, tpa))


def frames(packets):
    return [p.data for p in packets]


# -- Strip / Unstrip --------------------------------------------------------------------

def test_strip_removes_header_and_keeps_ip_annotation():
    ip = ip_pkt()
    e = make("Strip", "14")
    p = Packet(bytearray(H.ether(PEER_MAC, ME_MAC, H.ETHERTYPE_IP, ip)))
    p.nh = 14
    e.push(0, [p])
    (out,) = [s.packets for s in e.sinks]
    assert frames(out) == [ip] and out[0].nh == 14 and out[0].ip_offset == 0


def test_strip_more_than_the_packet_leaves_it_empty():
    assert run(make("Strip", "20"), [b"short"]) == [[b""]]


def test_unstrip_restores_stripped_bytes_and_grows_when_needed():
    frame = H.ether(PEER_MAC, ME_MAC, H.ETHERTYPE_IP, ip_pkt())
    strip, unstrip = make("Strip", "14"), make("Unstrip", "14")
    strip.push(0, [Packet(bytearray(frame))])
    unstrip.push(0, strip.sinks[0].packets)
    assert frames(unstrip.sinks[0].packets) == [frame]
    p = Packet(bytearray(b"abc"))
    p.nh = 1
    unstrip.push(0, [p])
    assert p.data == bytes(14) + b"abc" and p.nh == 15


# -- EtherEncap / EtherRewrite ----------------------------------------------------------

def test_etherencap_golden_and_reuses_headroom():
    ip = ip_pkt()
    want = H.ether(PEER_MAC, ME_MAC, H.ETHERTYPE_IP, ip)
    e = make("EtherEncap", "0x0800, %s, %s" % (ME_MAC, PEER_MAC))
    assert run(e, [ip]) == [[want]]
    p = Packet(bytearray(b"X" * 14 + ip), off=14)
    e.push(0, [p])
    assert p.data == want and p.off == 0 and len(p.buf) == len(want)


def test_etherencap_handlers_read_and_write():
    e = make("EtherEncap", "2048, %s, %s" % (ME_MAC, PEER_MAC))
    assert (e.read("src"), e.read("dst"), e.read("ethertype")) == (ME_MAC, PEER_MAC, "0x0800")
    e.write("dst", GW_MAC)
    e.write("src", PEER_MAC)
    e.write("ethertype", "0x86dd")
    assert run(e, [b"payload"]) == [[H.ether(GW_MAC, PEER_MAC, 0x86DD, b"payload")]]
    with pytest.raises(HandlerError, match="Ethernet address"):
        e.write("dst", "not-a-mac")
    with pytest.raises(HandlerError, match="Ethernet type"):
        e.write("ethertype", "0x10000")


def test_etherencap_config_errors():
    with pytest.raises(ConfigError, match="Ethernet type"):
        make("EtherEncap", "IP, %s, %s" % (ME_MAC, PEER_MAC))
    with pytest.raises(ConfigError, match="DST"):
        make("EtherEncap", "0x0800, %s" % ME_MAC)


def test_etherrewrite_replaces_addresses_only():
    ip = ip_pkt()
    frame = H.ether(ME_MAC, PEER_MAC, H.ETHERTYPE_IP, ip)
    e = make("EtherRewrite", "%s, %s" % (GW_MAC, PEER_MAC))
    assert run(e, [frame, b"too short"]) == [[H.ether(PEER_MAC, GW_MAC, H.ETHERTYPE_IP, ip)]]
    e.write("src", ME_MAC)
    e.write("dst", GW_MAC)
    assert (e.read("src"), e.read("dst")) == (ME_MAC, GW_MAC)
    assert run(e, [frame]) == [[H.ether(GW_MAC, ME_MAC, H.ETHERTYPE_IP, ip)]]


# -- ARPResponder -----------------------------------------------------------------------

def test_arpresponder_reply_bytes_exactly():
    e = make("ARPResponder", "%s %s" % (ME_IP, ME_MAC))
    req = arp_request(PEER_MAC, PEER_IP, ME_IP)
    want = H.ether(PEER_MAC, ME_MAC, H.ETHERTYPE_ARP, H.arp(2, ME_MAC, ME_IP, PEER_MAC, PEER_IP))
    assert run(e, [req]) == [[want], []]
    assert len(want) == 42


def test_arpresponder_answers_the_arp_sender_not_the_ethernet_source():
    e = make("ARPResponder", "%s %s" % (ME_IP, ME_MAC))
    req = H.ether(BCAST, GW_MAC, H.ETHERTYPE_ARP, H.arp(1, PEER_MAC, PEER_IP, ZERO, ME_IP))
    (reply,), _ = run(e, [req])
    assert reply[:6] == bytes.fromhex("020000000002")


def test_arpresponder_prefixes_several_addresses_and_longest_match():
    e = make("ARPResponder", "10.0.0.1 10.0.0.9 %s, 10.1.0.0/16 %s, 10.1.2.0/24 %s"
             % (ME_MAC, GW_MAC, PEER_MAC))
    cases = {"10.0.0.9": ME_MAC, "10.1.9.9": GW_MAC, "10.1.2.3": PEER_MAC, "10.0.0.1": ME_MAC}
    for tpa, mac in cases.items():
        out, _ = run(e, [arp_request(PEER_MAC, PEER_IP, tpa)])
        assert out == [H.ether(PEER_MAC, mac, H.ETHERTYPE_ARP, H.arp(2, mac, tpa, PEER_MAC,
                                                                      PEER_IP))]


def test_arpresponder_sends_everything_else_to_output_1_or_drops_it():
    e = make("ARPResponder", "%s %s" % (ME_IP, ME_MAC))
    other = [arp_request(PEER_MAC, PEER_IP, "10.0.0.3"),
             arp_reply(PEER_MAC, PEER_IP, ME_MAC, ME_IP),
             H.ether(ME_MAC, PEER_MAC, H.ETHERTYPE_IP, ip_pkt()),
             arp_request(PEER_MAC, PEER_IP, ME_IP)[:41]]
    assert run(e, other) == [[], other]
    e1 = make("ARPResponder", "%s %s" % (ME_IP, ME_MAC), noutputs=1)
    assert run(e1, other) == [[]]


def test_arpresponder_addressinfo_names():
    a = AddressTable()
    a.add("me", ["10.0.0.1/24", ME_MAC])
    a.add("mac", [GW_MAC])
    e = make("ARPResponder", "me, 10.0.0.200 mac", addresses=a)
    assert run(e, [arp_request(PEER_MAC, PEER_IP, "10.0.0.1")])[0][0][6:12] == \
        bytes.fromhex("020000000001")
    assert run(e, [arp_request(PEER_MAC, PEER_IP, "10.0.0.7")])[0] == []   # IP preferred
    assert run(e, [arp_request(PEER_MAC, PEER_IP, "10.0.0.200")])[0][0][6:12] == \
        bytes.fromhex("0200000000fe")
    e2 = make("ARPResponder", "me:ipnet %s" % ME_MAC, addresses=a)
    assert len(run(e2, [arp_request(PEER_MAC, PEER_IP, "10.0.0.7")])[0]) == 1


@pytest.mark.parametrize("config,msg", [
    ("10.0.0.1", "missing ETH"), (ME_MAC, "missing IP/MASK"),
    ("10.0.0.1 %s %s" % (ME_MAC, PEER_MAC), "more than one ETH"),
    ("10.0.0.1 bogus", "expected IP/MASK ETH"), ("", "at least one")])
def test_arpresponder_config_errors(config, msg):
    with pytest.raises(ConfigError, match=msg):
        make("ARPResponder", config)


def test_arpresponder_add_remove_table_handlers():
    e = make("ARPResponder", "%s %s" % (ME_IP, ME_MAC))
    e.write("add", "10.9.0.0/16 %s" % GW_MAC)
    assert e.read("table").splitlines() == ["10.0.0.1/32 %s" % ME_MAC, "10.9.0.0/16 %s" % GW_MAC]
    assert len(run(e, [arp_request(PEER_MAC, PEER_IP, "10.9.1.1")])[0]) == 1
    e.write("remove", "10.9.0.0/16")
    e.write("remove", ME_IP)
    assert e.read("table") == ""
    assert run(e, [arp_request(PEER_MAC, PEER_IP, ME_IP)])[0] == []
    with pytest.raises(HandlerError, match="no entry"):
        e.write("remove", "10.9.0.0/16")


# -- ARPQuerier -------------------------------------------------------------------------

class Clock:
    def __init__(self, t=1000.0):
        self.t = t

    def __call__(self):
        return self.t


def querier(config="%s/24, %s" % (ME_IP, ME_MAC), clock=None, **kw):
    q = make("ARPQuerier", config, **kw)
    q.clock = clock or Clock()
    return q


def query_frame(tpa, eth_dst=BCAST):
    return H.ether(eth_dst, ME_MAC, H.ETHERTYPE_ARP, H.arp(1, ME_MAC, ME_IP, ZERO, tpa))


def encapsulated(ip, mac):
    return H.ether(mac, ME_MAC, H.ETHERTYPE_IP, ip)


def push_ip(q, pkts, dst_ip=None):
    """Push IP packets (bytes) on input 0, with the destination annotation if given."""
    before = [len(s.packets) for s in q.sinks]
    batch = []
    for b in pkts:
        p = Packet(bytearray(b))
        if dst_ip is not None:
            p.dst_ip = parse_ip(dst_ip)
        batch.append(p)
    q.push(0, batch)
    return [frames(s.packets[n:]) for s, n in zip(q.sinks, before)]


def test_arpquerier_queries_queues_and_releases_on_reply():
    q = querier()
    ip1, ip2 = ip_pkt(payload=b"one"), ip_pkt(payload=b"two")
    assert push_ip(q, [ip1, ip2]) == [[], [query_frame(PEER_IP)]]
    assert q.read("length") == "2" and q.read("queries") == "1"
    released = run(q, [arp_reply(PEER_MAC, PEER_IP, ME_MAC, ME_IP)], port=1)
    assert released == [[encapsulated(ip1, PEER_MAC), encapsulated(ip2, PEER_MAC)], []]
    for f in released[0]:
        assert H.verify(f) == [] and ip_ok(f) and l4_ok(f)
    assert q.read("length") == "0" and q.read("responses") == "1"
    ip3 = ip_pkt(payload=b"three")
    assert push_ip(q, [ip3]) == [[encapsulated(ip3, PEER_MAC)], []]


def test_arpquerier_uses_destination_annotation_for_next_hop():
    q = querier()
    far = ip_pkt(dst=FAR)
    assert push_ip(q, [far], dst_ip=GW_IP) == [[], [query_frame(GW_IP)]]
    out = run(q, [arp_reply(GW_MAC, GW_IP, ME_MAC, ME_IP)], port=1)
    assert out == [[encapsulated(far, GW_MAC)], []]


def test_arpquerier_queries_on_output_0_with_one_output():
    q = querier(noutputs=1)
    assert push_ip(q, [ip_pkt()]) == [[query_frame(PEER_IP)]]


def test_arpquerier_query_rate_limit_and_timer_retry():
    clock = Clock()
    q = querier(clock=clock)
    assert push_ip(q, [ip_pkt()])[1] == [query_frame(PEER_IP)]
    clock.t += 0.05
    assert push_ip(q, [ip_pkt()])[1] == []              # within 0.1 s: no new query
    clock.t += 0.06
    assert push_ip(q, [ip_pkt()])[1] == [query_frame(PEER_IP)]
    clock.t += 1.0
    q.run_timer()                                       # packets still wait: ask again
    assert frames(q.sinks[1].packets[-1:]) == [query_frame(PEER_IP)]
    assert q.read("queries") == "3"
    n = len(q.sinks[1].packets)
    clock.t += 0.01
    q.run_timer()
    assert len(q.sinks[1].packets) == n


def test_arpquerier_backs_off_after_ten_unanswered_queries_until_a_reply():
    clock = Clock()
    q = querier("%s, %s, POLL_TIMEOUT 5" % (ME_IP, ME_MAC), clock=clock)
    for _ in range(10):
        push_ip(q, [ip_pkt()])
        clock.t += 0.1
    assert q.read("queries") == "10"
    clock.t += 1.0
    assert push_ip(q, [ip_pkt()])[1] == []
    clock.t += 1.0
    assert push_ip(q, [ip_pkt()])[1] == [query_frame(PEER_IP)]
    run(q, [arp_reply(PEER_MAC, PEER_IP, ME_MAC, ME_IP)], port=1)
    clock.t += 5.0                                      # renewal polls: fast again
    assert len(push_ip(q, [ip_pkt()])[1]) == 1
    clock.t += 0.1
    assert len(push_ip(q, [ip_pkt()])[1]) == 1


def test_arpquerier_entry_times_out_with_injected_clock():
    clock = Clock()
    q = querier("%s, %s, TIMEOUT 10, POLL_TIMEOUT 0" % (ME_IP, ME_MAC), clock=clock)
    q.write("insert", "%s %s" % (PEER_IP, PEER_MAC))
    clock.t += 9.9
    assert push_ip(q, [ip_pkt()]) == [[encapsulated(ip_pkt(), PEER_MAC)], []]
    clock.t += 0.1                                      # now 10 s old: expired
    assert push_ip(q, [ip_pkt()]) == [[], [query_frame(PEER_IP)]]
    assert q.read("table").split()[:3] == [PEER_IP, "0", ZERO]
    clock.t += 10.0
    q.run_timer()                                       # pending too long: removed
    assert q.read("count") == "0" and q.read("drops") == "1" and q.read("length") == "0"


def test_arpquerier_timer_expires_resolved_entries():
    clock = Clock()
    q = querier("%s, %s, TIMEOUT 5" % (ME_IP, ME_MAC), clock=clock)
    q.write("insert", "%s %s" % (PEER_IP, PEER_MAC))
    clock.t += 4.0
    q.run_timer()
    assert q.read("count") == "1"
    clock.t += 1.0
    q.run_timer()
    assert q.read("count") == "0"


def test_arpquerier_renewal_poll_is_unicast_after_poll_timeout():
    clock = Clock()
    q = querier("%s, %s, POLL_TIMEOUT 30" % (ME_IP, ME_MAC), clock=clock)
    run(q, [arp_reply(PEER_MAC, PEER_IP, ME_MAC, ME_IP)], port=1)
    clock.t += 29
    assert push_ip(q, [ip_pkt()])[1] == []
    clock.t += 1
    assert push_ip(q, [ip_pkt()]) == [[encapsulated(ip_pkt(), PEER_MAC)],
                                      [query_frame(PEER_IP, eth_dst=PEER_MAC)]]
    qb = querier("%s, %s, POLL_TIMEOUT 30, BROADCAST_POLL true" % (ME_IP, ME_MAC), clock=clock)
    qb.write("insert", "%s %s" % (PEER_IP, PEER_MAC))
    clock.t += 30
    assert push_ip(qb, [ip_pkt()])[1] == [query_frame(PEER_IP)]


def test_arpquerier_broadcast_multicast_and_zero_destinations():
    q = querier()
    bc, lim, mc = ip_pkt(dst="10.0.0.255"), ip_pkt(dst="255.255.255.255"), \
        ip_pkt(dst="239.129.2.3")
    out = push_ip(q, [bc, lim, mc])
    assert out == [[encapsulated(bc, BCAST), encapsulated(lim, BCAST),
                    encapsulated(mc, "01:00:5e:01:02:03")], []]
    assert push_ip(q, [ip_pkt(dst="0.0.0.0")]) == [[], []]
    assert q.read("drops") == "1" and q.read("broadcast") == "10.0.0.255"
    q32 = querier("%s, %s" % (ME_IP, ME_MAC))
    assert q32.read("broadcast") == "255.255.255.255"
    assert push_ip(q32, [bc])[1] == [query_frame("10.0.0.255")]


def test_arpquerier_packet_capacities():
    q = querier("%s, %s, ENTRY_PACKET_CAPACITY 2" % (ME_IP, ME_MAC))
    push_ip(q, [ip_pkt(payload=b"%d" % i) for i in range(3)])
    assert q.read("length") == "2" and q.read("drops") == "1"
    out = run(q, [arp_reply(PEER_MAC, PEER_IP, ME_MAC, ME_IP)], port=1)[0]
    assert out == [encapsulated(ip_pkt(payload=b"%d" % i), PEER_MAC) for i in range(2)]

    q = querier("%s, %s, CAPACITY 4" % (ME_IP, ME_MAC))
    push_ip(q, [ip_pkt(payload=b"%d" % i) for i in range(5)])
    # over capacity: the oldest packets go until half the capacity is left
    assert q.read("length") == "2" and q.read("drops") == "3"
    out = run(q, [arp_reply(PEER_MAC, PEER_IP, ME_MAC, ME_IP)], port=1)[0]
    assert out == [encapsulated(ip_pkt(payload=b"%d" % i), PEER_MAC) for i in (3, 4)]


def test_arpquerier_entry_capacity_evicts_oldest():
    clock = Clock()
    q = querier("%s, %s, ENTRY_CAPACITY 2" % (ME_IP, ME_MAC), clock=clock)
    for i, ip in enumerate(("10.0.0.5", "10.0.0.6", "10.0.0.7")):
        clock.t += 1
        q.write("insert", "%s 02:00:00:00:01:0%d" % (ip, i))
    assert [l.split()[0] for l in q.read("table").splitlines()] == ["10.0.0.6", "10.0.0.7"]


def test_arpquerier_ignores_non_replies_and_group_senders():
    q = querier()
    push_ip(q, [ip_pkt()])
    junk = [arp_request(PEER_MAC, PEER_IP, ME_IP),
            arp_reply("03:00:00:00:00:02", PEER_IP, ME_MAC, ME_IP),
            arp_reply(PEER_MAC, PEER_IP, ME_MAC, ME_IP)[:41],
            H.ether(ME_MAC, PEER_MAC, H.ETHERTYPE_IP, ip_pkt())]
    assert run(q, junk, port=1) == [[], []]
    assert q.read("length") == "1" and q.read("responses") == "0"


def test_arpquerier_learns_unsolicited_replies_like_click():
    q = querier()
    run(q, [arp_reply(GW_MAC, GW_IP, ME_MAC, ME_IP)], port=1)
    assert push_ip(q, [ip_pkt(dst=FAR)], dst_ip=GW_IP) == \
        [[encapsulated(ip_pkt(dst=FAR), GW_MAC)], []]


def test_arpquerier_table_insert_delete_clear_handlers():
    clock = Clock()
    q = querier(clock=clock)
    push_ip(q, [ip_pkt()])
    clock.t += 2.5
    q.write("insert", "%s %s" % (GW_IP, GW_MAC))
    assert q.read("table").splitlines() == ["%s 0 %s 2.500" % (PEER_IP, ZERO),
                                            "%s 1 %s 0.000" % (GW_IP, GW_MAC)]
    out = q.sinks[0].packets
    q.write("insert", "%s %s" % (PEER_IP, PEER_MAC))   # releases the waiting packet
    assert frames(out) == [encapsulated(ip_pkt(), PEER_MAC)]
    assert q.read("count") == "2"
    q.write("delete", GW_IP)
    assert q.read("count") == "1"
    with pytest.raises(HandlerError, match="no entry"):
        q.write("delete", GW_IP)
    with pytest.raises(HandlerError, match="IP ETH"):
        q.write("insert", GW_IP)
    q.write("clear", "")
    assert (q.read("count"), q.read("queries"), q.read("table")) == ("0", "0", "")


def test_arpquerier_addressinfo_name_form():
    a = AddressTable()
    a.add("inside", ["10.0.0.1/24", ME_MAC])
    q = make("ARPQuerier", "inside", addresses=a)
    assert q.read("ipaddr") == ME_IP and q.read("broadcast") == "10.0.0.255"
    assert push_ip(q, [ip_pkt()])[1] == [query_frame(PEER_IP)]
    a.add("ipOnly", ["10.0.0.9"])
    with pytest.raises(ConfigError, match="missing ETH"):
        make("ARPQuerier", "ipOnly", addresses=a)


def test_arpquerier_export_import_round_trip_keeps_ages():
    clock = Clock(1000.0)
    q = querier(clock=clock)
    q.write("insert", "%s %s" % (PEER_IP, PEER_MAC))
    clock.t += 7
    q.write("insert", "%s %s" % (GW_IP, GW_MAC))
    push_ip(q, [ip_pkt(dst="10.0.0.77")])               # pending: not state
    clock.t += 3
    state = q.export_state()
    assert sorted((r["ip"], r["eth"], r["age"]) for r in state["table"]) == \
        [(PEER_IP, PEER_MAC, 10.0), (GW_IP, GW_MAC, 3.0)]

    q2 = querier(clock=Clock(50.0))                     # another clock base
    q2.import_state(state, 1)
    assert sorted(q2.read("table").splitlines()) == sorted(
        ["%s 1 %s 10.000" % (PEER_IP, PEER_MAC), "%s 1 %s 3.000" % (GW_IP, GW_MAC)])
    assert push_ip(q2, [ip_pkt()]) == [[encapsulated(ip_pkt(), PEER_MAC)], []]
    assert q2.read("queries") == str(state["queries"]) and q2.export_state() == state
    with pytest.raises(ValueError, match="version"):
        q2.import_state(state, 2)


def test_arpquerier_take_state_adopts_table_and_waiting_packets():
    clock = Clock()
    old = querier(clock=clock)
    old.write("insert", "%s %s" % (GW_IP, GW_MAC))
    push_ip(old, [ip_pkt()])                            # waits for PEER_IP
    new = querier(clock=clock)
    new.take_state(old)
    assert old.read("count") == "0"
    assert new.read("count") == "2" and new.read("length") == "1"
    assert push_ip(new, [ip_pkt(dst=FAR)], dst_ip=GW_IP)[0] == \
        [encapsulated(ip_pkt(dst=FAR), GW_MAC)]
    assert run(new, [arp_reply(PEER_MAC, PEER_IP, ME_MAC, ME_IP)], port=1)[0] == \
        [encapsulated(ip_pkt(), PEER_MAC)]

    other = querier("10.0.0.3/24, %s" % ME_MAC, clock=clock)
    other.take_state(new)                               # different address: nothing taken
    assert other.read("count") == "0" and new.read("count") == "2"


def test_arpquerier_registers_its_timer_with_the_router():
    class Router:
        addresses = AddressTable()

        def __init__(self):
            self.timers = []

        def add_timer(self, interval, fn):
            self.timers.append((interval, fn))

    r = Router()
    q = make("ARPQuerier", "%s, %s" % (ME_IP, ME_MAC), router=r)
    q.clock = Clock()
    push_ip(q, [ip_pkt()])
    [(interval, fn)] = r.timers
    assert interval == 1.0
    q.clock.t += 1
    fn()
    assert q.read("queries") == "2"


def test_arpquerier_config_errors():
    with pytest.raises(ConfigError, match="IP address"):
        make("ARPQuerier", "nonsense, %s" % ME_MAC)
    with pytest.raises(ConfigError, match="missing ETH"):
        make("ARPQuerier", ME_IP)
    with pytest.raises(ConfigError, match="IP"):
        make("ARPQuerier", "")


# -- robustness -------------------------------------------------------------------------

def test_truncated_frames_never_raise():
    base = [arp_request(PEER_MAC, PEER_IP, ME_IP), arp_reply(PEER_MAC, PEER_IP, ME_MAC, ME_IP),
            H.ether(ME_MAC, PEER_MAC, H.ETHERTYPE_IP, ip_pkt())]
    cuts = [f[:n] for f in base for n in range(len(f) + 1)]
    ip_cuts = [ip_pkt()[:n] for n in range(29)]
    for cls, config in [("Strip", "14"), ("Unstrip", "14"), ("EtherRewrite", "%s, %s"
                        % (ME_MAC, PEER_MAC)), ("EtherEncap", "0x0800, %s, %s"
                        % (ME_MAC, PEER_MAC)), ("ARPResponder", "%s %s" % (ME_IP, ME_MAC))]:
        run(make(cls, config), cuts)
    q = querier()
    run(q, cuts, port=1)
    run(q, ip_cuts, port=0)
    assert q.read("drops") == str(20)                   # no destination in < 20 bytes

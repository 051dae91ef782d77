"""Golden tests for Classifier, IPClassifier and IPFilter.

Frames are built in memory with nf.headers; each test checks which output every
frame reaches, and that what comes out is byte for byte the frame that went in
(rebuilt independently), with its checksums still right.
"""

import pytest

from nf import headers as H
from nf.args import AddressTable
from nf.errors import ConfigError
from nf.packet import Packet
from nf.testing import make
from tests import checksum_ref

A, B, BCAST = "00:00:00:00:00:01", "00:00:00:00:00:02", "ff:ff:ff:ff:ff:ff"


def eth(payload, ethertype=H.ETHERTYPE_IP, dst=B):
    return H.ether(dst, A, ethertype, payload)


def _udp_segment(sport, dport, payload):
    return H.udp("10.0.0.2", "8.8.8.8", sport, dport, payload)[20:]


# Named IPv4 frames: each builder returns fresh bytes, so expected frames are
# independent of what the element saw.
BUILD = {
    "syn": lambda: eth(H.tcp("10.0.0.1", "192.168.1.9", 40000, 80, flags=H.TCP_SYN)),
    "ack": lambda: eth(H.tcp("192.168.1.9", "10.0.0.1", 80, 40000, b"hello",
                             flags=H.TCP_ACK | H.TCP_PSH)),
    "finack": lambda: eth(H.tcp("10.0.0.1", "192.168.1.9", 40001, 443,
                                flags=H.TCP_FIN | H.TCP_ACK)),
    "dns": lambda: eth(H.udp("10.0.0.2", "8.8.8.8", 5353, 53, b"query")),
    "hi": lambda: eth(H.udp("172.16.0.1", "10.0.0.1", 1500, 2500, b"data")),
    "ping": lambda: eth(H.icmp_echo("10.0.0.1", "8.8.8.8", 7, 1, b"ping")),
    "pong": lambda: eth(H.icmp_echo("8.8.8.8", "10.0.0.1", 7, 1, b"ping", reply=True)),
    # first fragment (MF set, offset 0) of a DNS query: ports are visible
    "frag1": lambda: eth(H.ipv4("10.0.0.2", "8.8.8.8", H.IPPROTO_UDP,
                                _udp_segment(5353, 53, b"q" * 16), flags_frag=0x2000)),
    # a later fragment whose payload happens to look like ports 5353 -> 53
    "frag2": lambda: eth(H.ipv4("10.0.0.2", "8.8.8.8", H.IPPROTO_UDP,
                                bytes.fromhex("14e90035") + b"r" * 12, flags_frag=2)),
    # IP options (header length 24) and TTL 5, TCP SYN 1234 -> 22
    "opts": lambda: eth(H.ipv4("10.0.0.3", "192.168.1.9", H.IPPROTO_TCP,
                               H.tcp("10.0.0.3", "192.168.1.9", 1234, 22,
                                     flags=H.TCP_SYN)[20:],
                               ttl=5, options=b"\x01\x01\x01\x00")),
}
NAMES = list(BUILD)
ALL = set(NAMES)
TCP = {"syn", "ack", "finack", "opts"}
UDP = {"dns", "hi", "frag1", "frag2"}
ICMP = {"ping", "pong"}


def arp_frame(op):
    return H.ether(BCAST, A, H.ETHERTYPE_ARP,
                   H.arp(op, A, "10.0.0.1", "00:00:00:00:00:00", "10.0.0.254"))


def route(e, frames, off=0, nh=-1):
    """Push ``frames`` as one batch; return the output each reached (None: dropped),
    after checking that every packet left unchanged and no packet was duplicated."""
    batch = []
    for f in frames:
        p = Packet(bytearray(f), off)
        p.nh = nh
        batch.append(p)
    before = [len(s.packets) for s in e.sinks]
    e.push(0, batch)
    where = {}
    for k, (s, n) in enumerate(zip(e.sinks, before)):
        for p in s.packets[n:]:
            assert id(p) not in where, "a packet left twice"
            where[id(p)] = k
    for p, f in zip(batch, frames):
        assert bytes(p.buf) == bytes(f) and p.off == off
    return [where.get(id(p)) for p in batch]


def route_named(e, names=NAMES, layout="nh"):
    """Route the named IPv4 frames; ``layout`` 'nh' sets the network header
    annotation, 'off' strips the Ethernet header instead (as Strip(14) does)."""
    frames = [BUILD[n]() for n in names]
    if layout == "nh":
        got = route(e, frames, off=0, nh=H.ETH_LEN)
    else:
        got = route(e, frames, off=H.ETH_LEN, nh=-1)
    return dict(zip(names, got))


def config_error(cls, config, addresses=None):
    with pytest.raises(ConfigError) as info:
        make(cls, config, addresses=addresses)
    return str(info.value)


# -- Classifier ---------------------------------------------------------------------------

def test_classic_arp_ip_split_has_four_outputs_and_keeps_frames():
    e = make("Classifier", "12/0806 20/0001, 12/0806 20/0002, 12/0800, -")
    assert e.port_count() == "1/4"
    ipv6 = H.ether(B, A, 0x86DD, bytes(40))
    frames = [arp_frame(2), BUILD["syn"](), arp_frame(1), ipv6, BUILD["dns"]()]
    assert route(e, frames) == [1, 2, 0, 3, 2]
    assert [s.frames for s in e.sinks] == [[arp_frame(1)], [arp_frame(2)],
                                           [BUILD["syn"](), BUILD["dns"]()], [ipv6]]
    for f in e.sinks[2].frames:
        assert H.verify(f) == []
        assert checksum_ref.ip_ok(f) and checksum_ref.l4_ok(f)
    assert e.read("dropped") == "0"
    assert e.read("counts") == "0 1\n1 1\n2 2\n3 1"


def test_unmatched_packets_are_dropped_and_counted():
    e = make("Classifier", "12/0806, 12/0800 23/11")
    frames = [BUILD["syn"](), BUILD["dns"](), arp_frame(1), BUILD["ping"]()]
    assert route(e, frames) == [None, 1, 0, None]
    assert e.read("dropped") == "2"
    assert e.read("counts") == "0 1\n1 1"


def test_masks_and_wildcard_nibbles():
    # 14/40%f0: IPv4 whatever the header length; 14/06%0f: header length 6 words;
    # 12/08??: any ethertype 0x08xx
    e = make("Classifier", "14/40%f0 23/01, 14/06%0f, 12/08??")
    frames = [BUILD["ping"](), BUILD["syn"](), BUILD["opts"](), arp_frame(1)]
    assert route(e, frames) == [0, 2, 1, 2]


def test_negated_clauses():
    e = make("Classifier", "12/0800 !23/06, 12/0800, !12/0800")
    frames = [BUILD["dns"](), BUILD["syn"](), arp_frame(1), BUILD["ping"]()]
    assert route(e, frames) == [0, 1, 2, 0]


def test_short_packets_do_not_match_clauses_past_their_end():
    e = make("Classifier", "12/0800, 40/00, !40/00")
    short = bytes.fromhex("0000000000010000000000020800")[:13]     # ethertype cut
    assert route(e, [short, bytes(41), bytes(40), b""]) == [2, 1, 2, 2]


def test_long_values_compare_whole_fields():
    # a 6-byte value: the Ethernet destination address
    e = make("Classifier", "0/ffffffffffff, 0/000000000002")
    assert route(e, [arp_frame(1), BUILD["syn"](), eth(b"", dst="00:00:00:00:00:03")]) \
        == [0, 1, None]


def test_classifier_reads_from_the_data_offset_after_strip():
    # after Strip(14) the data starts at the IP header: offset 9 is the protocol
    e = make("Classifier", "9/06, 9/11, -")
    names = ["syn", "dns", "ping", "opts"]
    got = route(e, [BUILD[n]() for n in names], off=H.ETH_LEN)
    assert got == [0, 1, 2, 0]


def test_classifier_program_handler_lists_the_decisions():
    e = make("Classifier", "12/0806 20/0001, 12/0800 !23/06, -")
    assert e.read("program").splitlines() == [
        "data[12:2] == 0x0806 and data[20:2] == 0x0001 -> [0]",
        "data[12:2] == 0x0800 and not (data[23] == 0x06) -> [1]",
        "true -> [2]",
    ]
    e = make("Classifier", "12/0800")
    assert e.read("program").splitlines()[-1] == "otherwise -> drop"


@pytest.mark.parametrize("config, message", [
    ("12/0800, 12:0806", "pattern 1: expected a clause OFFSET/VALUE or OFFSET/VALUE%MASK, "
                         "got '12:0806'"),
    ("x/0800", "pattern 0: expected a decimal offset before '/' in 'x/0800'"),
    ("12/08zz", "pattern 0: expected hex digits"),
    ("12/080", "pattern 0: expected an even number of hex digits in '12/080'"),
    ("12/0800%fff", "pattern 0: expected the mask to have as many hex digits"),
    ("-, 12/0800 -", "pattern 1: '-' must be the whole pattern"),
    ("12/0800 !", "pattern 0: expected a clause after '!'"),
    ("", "expected at least one pattern"),
])
def test_classifier_errors_name_the_pattern_and_what_was_expected(config, message):
    msg = config_error("Classifier", config)
    assert message in msg
    assert msg.startswith("classifier :: Classifier: ")


# -- IPClassifier: every primitive and combinator ------------------------------------------

GOLDEN = [
    ("ip", ALL),
    ("tcp", TCP), ("udp", UDP), ("icmp", ICMP),
    ("ip proto tcp", TCP), ("ip proto 17", UDP), ("proto icmp", ICMP),
    ("ip proto udp or ip proto icmp", UDP | ICMP), ("ip proto != 6", UDP | ICMP),
    ("host 10.0.0.1", {"syn", "ack", "finack", "hi", "ping", "pong"}),
    ("10.0.0.1", {"syn", "ack", "finack", "hi", "ping", "pong"}),
    ("src host 10.0.0.1", {"syn", "finack", "ping"}),
    ("dst host 10.0.0.1", {"ack", "hi", "pong"}),
    ("src and dst host 10.0.0.1", set()),
    ("src or dst host 8.8.8.8", {"dns", "ping", "pong", "frag1", "frag2"}),
    ("src host != 10.0.0.1", ALL - {"syn", "finack", "ping"}),
    ("net 192.168.0.0/16", {"syn", "ack", "finack", "opts"}),
    ("src net 10.0.0.0 mask 255.255.255.0",
     {"syn", "finack", "dns", "ping", "frag1", "frag2", "opts"}),
    ("dst net 192.168.1.0/24", {"syn", "finack", "opts"}),
    ("172.16.0.0/12", {"hi"}),
    ("port 80", {"syn", "ack"}), ("tcp port 80", {"syn", "ack"}), ("udp port 80", set()),
    ("src port 80", {"ack"}), ("dst port 80", {"syn"}), ("dst port www", {"syn"}),
    ("udp dst port 53", {"dns", "frag1"}), ("port domain", {"dns", "frag1"}),
    ("port ssh", {"opts"}), ("https", {"finack"}),
    ("port 1000-3000", {"hi", "opts"}), ("src port 1000-2000", {"hi", "opts"}),
    ("dst port 1000-2000", set()),
    ("dst port > 1023", {"ack", "hi"}), ("dst port <= 53", {"dns", "frag1", "opts"}),
    ("port != 80", {"finack", "dns", "hi", "frag1", "opts"}),
    ("src port 80 or 81", {"ack"}), ("src port 5353 or 1500", {"dns", "frag1", "hi"}),
    ("dst tcp port 8000 or 443", {"finack"}),
    ("icmp type echo", {"ping"}), ("icmp type echo-reply", {"pong"}),
    ("icmp type 0", {"pong"}), ("icmp echo", {"ping"}), ("echo-reply", {"pong"}),
    ("icmp type != 0", {"ping"}),
    ("tcp opt syn", {"syn", "opts"}), ("syn", {"syn", "opts"}),
    ("tcp opt ack", {"ack", "finack"}), ("fin ack", {"finack"}), ("psh", {"ack"}),
    ("tcp opt rst", set()), ("tcp opt syn and not ack", {"syn", "opts"}),
    ("ip frag", {"frag1", "frag2"}), ("ip unfrag", ALL - {"frag1", "frag2"}),
    ("unfrag", ALL - {"frag1", "frag2"}),
    ("true", ALL), ("false", set()), ("-", ALL), ("any", ALL), ("all", ALL),
    ("tcp and dst port 80", {"syn"}), ("tcp && src port 80", {"ack"}),
    ("icmp or udp", ICMP | UDP), ("icmp || tcp", ICMP | TCP),
    ("not tcp", UDP | ICMP), ("! udp", TCP | ICMP), ("!icmp", TCP | UDP),
    ("(tcp or udp) and host 8.8.8.8", {"dns", "frag1", "frag2"}),
    ("not (tcp or udp)", ICMP), ("tcp or udp and host 8.8.8.8", TCP | {"dns", "frag1", "frag2"}),
    ("src host 10.0.0.1 tcp port 80", {"syn"}),
    ("src host 10.0.0.1 or 10.0.0.2", {"syn", "finack", "ping", "dns", "frag1", "frag2"}),
    ("udp host 10.0.0.1", {"hi"}),
    ("ip ttl 5", {"opts"}), ("ip ttl < 10", {"opts"}), ("ip hl 6", {"opts"}),
    ("ip vers 4", ALL), ("ip[9] == 1", ICMP), ("ip[9] 17", UDP),
    ("tcp[13] & 2 != 0", {"syn", "opts"}), ("tcp win 65535", TCP),
    ("tcp ? dst port 80 : icmp", {"syn", "ping", "pong"}),
]


@pytest.mark.parametrize("layout", ["nh", "off"])
@pytest.mark.parametrize("pattern, matching", GOLDEN, ids=[g[0] for g in GOLDEN])
def test_ipclassifier_primitives(pattern, matching, layout):
    e = make("IPClassifier", "%s, -" % pattern)
    got = route_named(e, layout=layout)
    assert {n for n, k in got.items() if k == 0} == matching
    assert {n for n, k in got.items() if k == 1} == ALL - matching


def test_ipclassifier_first_match_wins_and_drops_the_rest():
    e = make("IPClassifier", "tcp dst port 80, tcp, icmp type echo")
    assert e.port_count() == "1/3"
    got = route_named(e)
    assert got == {"syn": 0, "ack": 1, "finack": 1, "dns": None, "hi": None, "ping": 2,
                   "pong": None, "frag1": None, "frag2": None, "opts": 1}
    assert e.sinks[0].frames == [BUILD["syn"]()]
    assert e.sinks[2].frames == [BUILD["ping"]()]
    for f in e.sinks[1].frames:
        assert H.verify(f) == [] and checksum_ref.ip_ok(f) and checksum_ref.l4_ok(f)
    assert e.read("dropped") == "5"


def test_ipclassifier_prefers_the_network_header_annotation():
    # nh points at the IP header while the data still starts at Ethernet
    e = make("IPClassifier", "udp, -")
    got = route(e, [BUILD["dns"](), BUILD["syn"]()], off=0, nh=H.ETH_LEN)
    assert got == [0, 1]
    # without the annotation the IP header is taken at the data start: an
    # Ethernet frame seen from its start is not UDP
    assert route(e, [BUILD["dns"]()], off=0, nh=-1) == [1]


def test_bare_ip_does_not_match_arp():
    e = make("IPClassifier", "ip, -")
    assert route(e, [arp_frame(1)], off=H.ETH_LEN) == [1]


def test_addressinfo_names_as_hosts_and_nets():
    table = AddressTable()
    table.add("INSIDE", ["10.0.0.0/8"])
    table.add("SERVER", ["192.168.1.9"])
    e = make("IPClassifier", "src INSIDE and dst host SERVER, src net INSIDE, SERVER, -",
             addresses=table)
    got = route_named(e)
    assert got == {"syn": 0, "ack": 2, "finack": 0, "dns": 1, "hi": 3, "ping": 1,
                   "pong": 3, "frag1": 1, "frag2": 1, "opts": 0}


def test_truncated_packets_never_match_transport_tests_and_never_crash():
    patterns = ["port 80", "src port 80", "dst port 53", "icmp type echo", "tcp opt syn",
                "port != 80", "host 10.0.0.1", "ip frag", "-"]
    e = make("IPClassifier", ", ".join(patterns))
    for name in NAMES:
        full = BUILD[name]()
        ihl = (full[H.ETH_LEN] & 15) * 4
        for cut in range(len(full)):
            k, = route(e, [full[:cut]], nh=H.ETH_LEN)
            if cut < H.ETH_LEN + ihl + 4:          # ports not all there
                assert k not in (0, 1, 2, 5), (name, cut, k)
            if cut < H.ETH_LEN + ihl + 14:         # TCP flags not there
                assert k != 4, (name, cut)
    # the whole frames do reach the transport tests
    assert route_named(e, ["syn", "dns", "ping", "finack"]) == \
        {"syn": 0, "dns": 2, "ping": 3, "finack": 5}


def test_garbage_headers_do_not_crash():
    e = make("IPClassifier", "port 80, icmp type echo, ip[40:4] 1, -")
    junk = [bytes([0x40]) + bytes(30), bytes([0x4F]) + bytes(25), bytes([0xFF]) * 3, b""]
    assert route(e, junk, nh=0) == [3, 3, 3, 3]
    # a network header annotation past the end of the packet
    assert route(e, [b"\x45"], nh=10) == [3]


def test_ipclassifier_program_handler():
    e = make("IPClassifier", "udp dst port 53, src net 10.0.0.0/8, -")
    lines = e.read("program").splitlines()
    assert lines == [
        "ip[9] == 17 and ip[6:2] & 0x1fff == 0 and len(transp) >= 4 and transp[2:2] == 53 -> [0]",
        "ip[12:4] & 255.0.0.0 == 10.0.0.0 -> [1]",
        "true -> [2]",
    ]


# -- IPFilter --------------------------------------------------------------------------------

def test_ipfilter_first_matching_rule_decides():
    e = make("IPFilter", "deny src host 10.0.0.2, allow udp or icmp, 2 tcp dst port 80, "
                         "drop tcp, allow all")
    assert e.port_count() == "1/3-"
    got = route_named(e)
    assert got == {"syn": 2, "ack": None, "finack": None, "dns": None, "hi": 0, "ping": 0,
                   "pong": 0, "frag1": None, "frag2": None, "opts": None}
    assert e.sinks[2].frames == [BUILD["syn"]()]
    assert e.sinks[1].frames == []
    assert e.read("dropped") == "6"


def test_ipfilter_unmatched_packets_are_dropped():
    e = make("IPFilter", "allow tcp")
    assert e.port_count() == "1/1-"
    got = route_named(e, ["syn", "dns", "ping"])
    assert got == {"syn": 0, "dns": None, "ping": None}
    assert e.read("program").splitlines() == ["ip[9] == 6 -> [0]", "otherwise -> drop"]


def test_ipfilter_with_click_style_rules():
    table = AddressTable()
    table.add("INTERNALNET", ["192.168.1.0/24"])
    table.add("BASTION", ["10.0.0.1"])
    e = make("IPFilter", """deny src INTERNALNET,
        allow src BASTION && dst INTERNALNET && tcp && src port > 1023 && dst port www,
        allow dst INTERNALNET && tcp && dst port 22,
        deny all""", addresses=table)
    assert route_named(e) == {"syn": 0, "ack": None, "finack": None, "dns": None,
                              "hi": None, "ping": None, "pong": None, "frag1": None,
                              "frag2": None, "opts": 0}


# -- pattern errors ----------------------------------------------------------------------------

@pytest.mark.parametrize("cls, config, message", [
    ("IPClassifier", "tcp, port httpx",
     "pattern 1: expected a port number after 'port', got 'httpx'"),
    ("IPClassifier", "host 10.0.0.0/8",
     "pattern 0: expected an IP address after 'host', got '10.0.0.0/8'"),
    ("IPClassifier", "net foo", "pattern 0: expected an IP prefix"),
    ("IPClassifier", "echo", "pattern 0: 'echo' is ambiguous; say 'port echo' or 'icmp type echo'"),
    ("IPClassifier", "tcp and", "pattern 0: expected a primitive (like tcp, host ADDR, port N) "
                                "after 'and', got end of pattern"),
    ("IPClassifier", "(tcp or udp", "pattern 0: expected ')' to close '('"),
    ("IPClassifier", "tcp)", "pattern 0: unexpected ')'"),
    ("IPClassifier", "icmp port 80", "pattern 0: 'port' needs tcp or udp, not icmp"),
    ("IPClassifier", "udp opt syn", "pattern 0: 'tcp opt' needs tcp, not udp"),
    ("IPClassifier", "ip ttl 300", "pattern 0: value '300' out of range for 'ttl' (0-255)"),
    ("IPClassifier", "port 2000-1000", "pattern 0: range '2000-1000' is empty"),
    ("IPClassifier", "80", "pattern 0: a bare number '80' needs a field before it"),
    ("IPClassifier", "tcp, udp, frobnicate", "pattern 2: expected a primitive"),
    ("IPClassifier", "src tcp", "pattern 0: 'src' or 'dst' makes no sense with 'proto'"),
    ("IPClassifier", "tcp opt > syn", "pattern 0: 'tcp opt' takes no operator"),
    ("IPClassifier", "tcp opt syn > 1", "pattern 0: unexpected '>' after 'syn'"),
    ("IPClassifier", "ip frag 1", "pattern 0: 'frag' takes no value"),
    ("IPClassifier", "src host > 10.0.0.1", "pattern 0: 'host' compares with == or != only"),
    ("IPClassifier", "tcp ? port 80", "pattern 0: expected ':'"),
    ("IPClassifier", "ip proto tcp; udp", "pattern 0: unexpected character ';'"),
    ("IPClassifier", 'tcp, ""', "pattern 1: empty pattern"),
    ("IPClassifier", "", "expected at least one pattern"),
    ("IPClassifier", "dst port >", "pattern 0: expected a port number after '>', got end"),
    ("IPClassifier", "net 10.0.0.0 mask 255.0.255.0", "expected a netmask"),
    ("IPFilter", "permit tcp", "pattern 0: expected an action (allow, deny, drop or an output "
                               "number), got 'permit'"),
    ("IPFilter", "allow tcp, allow", "pattern 1: expected a pattern after 'allow'"),
])
def test_ip_pattern_errors_name_the_pattern_word_and_expectation(cls, config, message):
    msg = config_error(cls, config)
    assert message in msg
    assert msg.startswith("%s :: %s: " % (cls.lower(), cls))


@pytest.mark.parametrize("pattern", [
    "__import__('os').system('true')",
    "tcp or 1); import os; (",
    "host 10.0.0.1 or ip[9] == 6 and __builtins__",
    "port 80\n    return 0",
    "ip ttl 0x1ff",
])
def test_config_text_cannot_reach_the_generated_code(pattern):
    with pytest.raises(ConfigError):
        make("IPClassifier", pattern)

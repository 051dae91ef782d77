"""Header layouts, and builders for well-formed frames.

The builders compute every checksum from scratch (RFC 1071), so tests can
build golden packets in memory and elements can build ARP and ICMP replies.
``verify(frame)`` recomputes the IP and TCP/UDP/ICMP checksums of a frame and
reports any that are wrong: tests use it to check what elements emit.
"""

import struct

from .netutil import inet_checksum, l4_checksum, ones_sum, parse_ip, parse_mac

__all__ = ["ETH_LEN", "ETHERTYPE_IP", "ETHERTYPE_ARP", "IPPROTO_ICMP", "IPPROTO_TCP",
           "IPPROTO_UDP", "TCP_FIN", "TCP_SYN", "TCP_RST", "TCP_PSH", "TCP_ACK",
           "ether", "ipv4", "tcp", "udp", "icmp_echo", "arp", "verify", "parse"]

ETH_LEN = 14
ETHERTYPE_IP = 0x0800
ETHERTYPE_ARP = 0x0806
IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP = 1, 6, 17
TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK = 0x01, 0x02, 0x04, 0x08, 0x10


def _mac(m):
    return m if isinstance(m, (bytes, bytearray)) else parse_mac(m)


def _ip(a):
    return a if isinstance(a, (bytes, bytearray)) else parse_ip(a)


def ether(dst, src, ethertype, payload=b""):
    return _mac(dst) + _mac(src) + struct.pack("!H", ethertype) + bytes(payload)


def ipv4(src, dst, proto, payload=b"", ttl=64, ident=1, tos=0, flags_frag=0x4000,
         options=b"", checksum=None):
    ihl = 5 + len(options) // 4
    total = ihl * 4 + len(payload)
    hdr = bytearray(struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, tos, total, ident, flags_frag,
                                ttl, proto, 0, _ip(src), _ip(dst)) + options)
    c = inet_checksum(hdr) if checksum is None else checksum
    hdr[10:12] = struct.pack("!H", c)
    return bytes(hdr) + bytes(payload)


def _l4(src, dst, proto, seg, csum_off, checksum):
    seg = bytearray(seg)
    pkt = bytearray(ipv4(src, dst, proto, seg))
    c = l4_checksum(pkt) if checksum is None else checksum
    seg[csum_off:csum_off + 2] = struct.pack("!H", c)
    return bytes(seg)


def tcp(src, dst, sport, dport, payload=b"", seq=1000, ack=0, flags=TCP_ACK, window=65535,
        checksum=None, ttl=64, ident=1):
    """An IPv4 packet (no Ethernet header) carrying a TCP segment."""
    seg = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, window, 0, 0) \
        + bytes(payload)
    return ipv4(src, dst, IPPROTO_TCP, _l4(src, dst, IPPROTO_TCP, seg, 16, checksum),
                ttl=ttl, ident=ident)


def udp(src, dst, sport, dport, payload=b"", checksum=None, ttl=64, ident=1):
    """An IPv4 packet carrying a UDP datagram; ``checksum=0`` sends none (RFC 768)."""
    seg = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + bytes(payload)
    return ipv4(src, dst, IPPROTO_UDP, _l4(src, dst, IPPROTO_UDP, seg, 6, checksum),
                ttl=ttl, ident=ident)


def icmp_echo(src, dst, ident, seq, payload=b"", reply=False, ttl=64):
    body = bytearray(struct.pack("!BBHHH", 0 if reply else 8, 0, 0, ident, seq) + payload)
    body[2:4] = struct.pack("!H", inet_checksum(body))
    return ipv4(src, dst, IPPROTO_ICMP, body, ttl=ttl)


def arp(op, sha, spa, tha, tpa):
    """An ARP payload (op 1 request, 2 reply) for Ethernet/IPv4."""
    return struct.pack("!HHBBH6s4s6s4s", 1, ETHERTYPE_IP, 6, 4, op, _mac(sha), _ip(spa),
                       _mac(tha), _ip(tpa))


def parse(frame, offset=ETH_LEN):
    """A dict of the main fields of an IPv4 packet at ``offset`` (for tests and Print)."""
    b = bytes(frame)
    ihl = (b[offset] & 15) * 4
    d = {"proto": b[offset + 9], "ttl": b[offset + 8], "len": struct.unpack_from("!H", b, offset + 2)[0],
         "src": ".".join(map(str, b[offset + 12:offset + 16])),
         "dst": ".".join(map(str, b[offset + 16:offset + 20])), "ihl": ihl}
    t = offset + ihl
    if d["proto"] in (IPPROTO_TCP, IPPROTO_UDP):
        d["sport"], d["dport"] = struct.unpack_from("!HH", b, t)
        if d["proto"] == IPPROTO_TCP:
            d["seq"], d["ack"] = struct.unpack_from("!II", b, t + 4)
            d["flags"] = b[t + 13]
            d["csum"] = struct.unpack_from("!H", b, t + 16)[0]
        else:
            d["csum"] = struct.unpack_from("!H", b, t + 6)[0]
    elif d["proto"] == IPPROTO_ICMP:
        d["type"], d["code"] = b[t], b[t + 1]
        d["id"], d["seq"] = struct.unpack_from("!HH", b, t + 4)
    return d


def verify(frame, offset=ETH_LEN):
    """Recompute every checksum of the IPv4 packet at ``offset``; return a list of
    problems (empty when all are right).  UDP's zero checksum means 'none'."""
    b = bytes(frame)
    problems = []
    ihl = (b[offset] & 15) * 4
    if ones_sum(b[offset:offset + ihl]) != 0xFFFF:
        problems.append("IP header checksum")
    proto = b[offset + 9]
    total = struct.unpack_from("!H", b, offset + 2)[0]
    pkt = b[offset:offset + total]
    t = ihl
    if proto == IPPROTO_TCP:
        if struct.unpack_from("!H", pkt, t + 16)[0] != l4_checksum(pkt):
            problems.append("TCP checksum")
    elif proto == IPPROTO_UDP:
        c = struct.unpack_from("!H", pkt, t + 6)[0]
        if c != 0 and c != l4_checksum(pkt):
            problems.append("UDP checksum")
    elif proto == IPPROTO_ICMP:
        if ones_sum(pkt[t:]) != 0xFFFF:
            problems.append("ICMP checksum")
    return problems

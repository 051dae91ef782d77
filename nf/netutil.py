"""Address parsing and Internet checksums (RFC 1071, RFC 1624).

The one's-complement sum uses a number-theory shortcut: the sum of 16-bit
words folded to 16 bits equals the buffer read as one big-endian integer
modulo 0xFFFF (because 2**16 = 1 mod 0xFFFF), which Python computes in C.
"""

import ipaddress
import socket
import struct

__all__ = [
    "csum_add", "ones_sum", "inet_checksum", "csum_fold", "csum_update",
    "parse_ip", "parse_prefix", "parse_mac", "ip_str", "mac_str",
    "pseudo_header_sum", "ip_checksum_ok", "l4_checksum",
]


def ones_sum(data):
    """One's-complement 16-bit sum of ``data`` (odd lengths are zero-padded)."""
    if len(data) & 1:
        data = bytes(data) + b"\0"
    n = int.from_bytes(data, "big")
    if n == 0:
        return 0
    r = n % 0xFFFF
    return r if r else 0xFFFF


def csum_add(a, b):
    """Add two one's-complement 16-bit sums."""
    s = a + b
    return (s & 0xFFFF) + (s >> 16)


def csum_fold(s):
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def inet_checksum(data, initial=0):
    """The Internet checksum (RFC 1071) of ``data`` plus an initial sum."""
    return ~csum_add(ones_sum(data), initial) & 0xFFFF


def csum_update(old_csum, old_bytes, new_bytes):
    """RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m') for equal-length fields."""
    s = (~old_csum & 0xFFFF) + (~ones_sum(old_bytes) & 0xFFFF) + ones_sum(new_bytes)
    return ~csum_fold(s) & 0xFFFF


def pseudo_header_sum(src, dst, proto, length):
    return csum_add(ones_sum(src + dst), proto + length)


def ip_checksum_ok(ip_header):
    return ones_sum(ip_header) == 0xFFFF


def l4_checksum(ip_packet):
    """Recompute the TCP or UDP checksum of an IPv4 packet (bytes-like).

    Returns the value that belongs in the checksum field; the field's current
    content is ignored.  UDP's computed 0 is sent as 0xFFFF (RFC 768).
    """
    ihl = (ip_packet[0] & 15) * 4
    proto = ip_packet[9]
    total = struct.unpack_from("!H", ip_packet, 2)[0]
    seg = bytearray(ip_packet[ihl:total])
    off = 16 if proto == 6 else 6
    seg[off:off + 2] = b"\0\0"
    c = inet_checksum(seg, pseudo_header_sum(bytes(ip_packet[12:16]), bytes(ip_packet[16:20]),
                                             proto, len(seg)))
    if proto == 17 and c == 0:
        c = 0xFFFF
    return c


def parse_ip(text):
    """Dotted quad to 4 bytes; raises ValueError."""
    return socket.inet_aton(str(ipaddress.IPv4Address(text.strip())))


def parse_prefix(text):
    """'10.0.0.0/8' or '10.0.0.0 255.0.0.0' or a bare address -> (addr4, mask4)."""
    t = text.strip().replace(" ", "/")
    net = ipaddress.IPv4Network(t, strict=False)
    return net.network_address.packed, net.netmask.packed


def parse_mac(text):
    t = text.strip().replace("-", ":")
    parts = t.split(":")
    if len(parts) != 6 or not all(1 <= len(p) <= 2 for p in parts):
        raise ValueError("not an Ethernet address: %r" % text)
    return bytes(int(p, 16) for p in parts)


def ip_str(b):
    return socket.inet_ntoa(bytes(b))


def mac_str(b):
    return ":".join("%02x" % x for x in b)

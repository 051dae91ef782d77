"""A deliberately naive RFC 1071 checksum, independent of nf.netutil, to check it."""

import struct


def rfc1071(data):
    data = bytes(data)
    if len(data) % 2:
        data += b"\0"
    s = 0
    for (w,) in struct.iter_unpack("!H", data):
        s += w
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ip_ok(frame, off=14):
    ihl = (frame[off] & 15) * 4
    return rfc1071(frame[off:off + ihl]) == 0


def l4_ok(frame, off=14):
    """True if the TCP/UDP/ICMP checksum of the IPv4 packet at ``off`` is right
    (a UDP checksum of 0 means none and is accepted)."""
    ihl = (frame[off] & 15) * 4
    proto = frame[off + 9]
    total = struct.unpack_from("!H", frame, off + 2)[0]
    seg = bytes(frame[off + ihl:off + total])
    if proto == 1:
        return rfc1071(seg) == 0
    if proto == 17 and struct.unpack_from("!H", seg, 6)[0] == 0:
        return True
    pseudo = bytes(frame[off + 12:off + 20]) + struct.pack("!BBH", 0, proto, len(seg))
    return rfc1071(pseudo + seg) == 0

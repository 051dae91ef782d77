"""IPv4 header elements: checking, TTL, checksums, the destination annotation.

All of them find the IP header the same way (:func:`ip_header_at`: the
``p.nh`` annotation when CheckIPHeader has set it, else an offset from the
data start) and read fields straight from ``p.buf`` at absolute offsets, so
the per-packet work is a few index operations and at most one big-integer
checksum.  Checksums use the identity behind :mod:`nf.netutil`: a buffer read
as one big-endian integer is congruent, modulo 0xFFFF, to the one's-complement
sum of its 16-bit words; a pseudo header is summed the same way, as integers,
so no bytes are ever concatenated.  A sum of nonzero data is correct exactly
when it is congruent to 0 (one's-complement "negative zero", 0xFFFF).

The three header checkers share :class:`HeaderCheck`: valid packets go to
output 0, invalid ones to output 1 if it is connected, else they are dropped;
either way they are counted per reason, and the first (with VERBOSE, every)
failure is reported on stderr, as Click's click_chatter does.
"""

import sys

from ..element import REQUIRED, Arg, Element, read_handler
from ..netutil import inet_checksum, parse_ip, parse_prefix

__all__ = ["ip_header_at", "parse_ip_mask", "broadcast_address", "CheckIPHeader",
           "CheckTCPHeader", "CheckUDPHeader", "DecIPTTL", "GetIPAddress", "SetIPChecksum",
           "SetTCPChecksum", "SetUDPChecksum"]

IPPROTO_TCP, IPPROTO_UDP = 6, 17
_ALL_ONES = b"\xff\xff\xff\xff"


# -- shared helpers ------------------------------------------------------------------

def ip_header_at(p, offset=0):
    """Absolute offset in ``p.buf`` of the packet's IP header: the network-header
    annotation when set, else ``offset`` bytes into the data."""
    nh = p.nh
    return nh if nh >= 0 else p.off + offset


def _transport(buf, nh, proto):
    """(start, end) of the transport segment of the IPv4 packet at ``nh`` if it
    carries ``proto``, is not a later fragment, and its lengths fit the buffer;
    else None.  Never raises on truncated buffers."""
    if len(buf) - nh < 20 or buf[nh + 9] != proto or (buf[nh + 6] & 0x1F) | buf[nh + 7]:
        return None
    hl = (buf[nh] & 15) << 2
    end = nh + (buf[nh + 2] << 8 | buf[nh + 3])
    if hl < 20 or end > len(buf) or end < nh + hl:
        return None
    return nh + hl, end


def _l4_sum(buf, nh, start, end, proto):
    """Congruent (mod 0xFFFF) to the one's-complement sum of the pseudo header and
    the segment ``buf[start:end]``, checksum field included.  Positive."""
    n = end - start
    seg = int.from_bytes(buf[start:end], "big")
    if n & 1:
        seg <<= 8               # the RFC 1071 zero pad byte
    return int.from_bytes(buf[nh + 12:nh + 20], "big") + proto + n + seg


def _checksum_of(total):
    """The checksum field value that makes a sum ``total`` (> 0, field zeroed) right."""
    r = total % 0xFFFF
    return 0xFFFF - (r if r else 0xFFFF)


def _set_l4_checksum(buf, nh, start, end, proto, field):
    """Recompute and store the transport checksum at ``start + field``; returns it."""
    at = start + field
    buf[at] = buf[at + 1] = 0
    c = _checksum_of(_l4_sum(buf, nh, start, end, proto))
    if c == 0 and proto == IPPROTO_UDP:
        c = 0xFFFF              # RFC 768: a computed 0 is sent as all ones
    buf[at] = c >> 8
    buf[at + 1] = c & 0xFF
    return c


def parse_ip_mask(word, addresses=None):
    """'10.0.0.1', '10.0.0.1/24', '10.0.0.1/255.255.255.0' or an AddressInfo name
    -> (address, mask), 4 bytes each.  A bare address has mask /32; a name gives
    its address and, if it was declared with one, its prefix's mask."""
    w = word.strip()
    if addresses is not None and w in addresses.ip:
        pfx = addresses.prefix.get(w)
        return addresses.ip[w], (pfx[1] if pfx else _ALL_ONES)
    try:
        if "/" in w:
            return parse_ip(w.split("/", 1)[0]), parse_prefix(w)[1]
        return parse_ip(w), _ALL_ONES
    except ValueError:
        raise ValueError("expected IP address with optional /MASK (or an AddressInfo "
                         "name), got %r" % word) from None


def broadcast_address(addr, mask):
    """The directed broadcast address of ``addr`` under ``mask`` (4 bytes each)."""
    return bytes(a | (~m & 0xFF) for a, m in zip(addr, mask))


# -- header checkers ------------------------------------------------------------------

class HeaderCheck(Element):
    """Shared machinery of the CheckXHeader elements: the batch loop, the per-reason
    counters, output 1 for bad packets, and the first-failure message."""

    ABSTRACT = True
    PORTS = "1/1-2"
    WHAT = "header"                  # "IP header check failed: ..."
    REASONS = ()

    def configure(self):
        self._drops = 0
        self._count = 0
        self._reason_drops = [0] * len(self.REASONS)

    def push(self, port, batch):
        check = self._check
        good = []
        bad = None
        for p in batch:
            r = check(p)
            if r is None:
                good.append(p)
            else:
                if bad is None:
                    bad = []
                bad.append(p)
                self._failed(r)
        if good:
            self._count += len(good)
            self._out[0](good)
        if bad:
            self.output(1)(bad)

    def _check(self, p):
        """None if ``p`` is valid (possibly after adjusting it), else a reason index."""
        raise NotImplementedError

    def _failed(self, reason):
        if self._drops == 0 or self.verbose:
            print("%s: %s check failed: %s" % (self.name, self.WHAT, self.REASONS[reason]),
                  file=sys.stderr)
        self._drops += 1
        self._reason_drops[reason] += 1

    @read_handler("count", "number of valid packets seen")
    def _h_count(self):
        return str(self._count)

    @read_handler("drops", "number of invalid packets seen (dropped or sent to output 1)")
    def _h_drops(self):
        return str(self._drops)

    @read_handler("drop_details", "invalid packets per reason, one 'count<TAB>reason' a line")
    def _h_drop_details(self):
        return "\n".join("%d\t%s" % (n, r) for n, r in zip(self._reason_drops, self.REASONS))


_VERBOSE = Arg("VERBOSE", "bool", False, doc="report every invalid packet on stderr, not "
                                             "just the first")
_DETAILS = Arg("DETAILS", "bool", False, doc="accepted for Click compatibility; per-reason "
                                             "counts are always kept (drop_details)")
_CHECKSUM = Arg("CHECKSUM", "bool", True, doc="verify the checksum")


class CheckIPHeader(HeaderCheck):
    """CheckIPHeader([OFFSET, KEYWORDS])

    Checks the IPv4 header that starts OFFSET bytes into each packet's data
    (CheckIPHeader(14) on Ethernet frames): length at least 20, version 4,
    header length at least 20, total length between the header length and the
    packet length, header checksum, and source address.  Valid packets get the
    network-header annotation (p.nh) and the destination IP annotation, are
    trimmed to the IP total length (dropping link-layer padding), and leave on
    output 0.  Invalid packets go to output 1 if it is connected, else are
    dropped.  Sources are checked against BADSRC/INTERFACES as in Click; in
    addition a multicast or limited-broadcast (255.255.255.255) source is always
    invalid (RFC 1812 5.3.7), which Click leaves to configuration.
    """

    WHAT = "IP header"
    REASONS = ("tiny packet", "bad IP version", "bad IP header length", "bad IP length",
               "bad IP checksum", "bad source address")
    ARGS = (
        Arg("OFFSET", "uint", 0, positional=True, doc="where the IP header starts in the data"),
        _CHECKSUM,
        Arg("BADSRC", "raw", None, doc="space-separated IP addresses that are invalid sources"),
        Arg("GOODDST", "raw", None, doc="space-separated destinations exempt from BADSRC"),
        Arg("INTERFACES", "raw", None, doc="space-separated ADDR/MASK of this router's "
                                         "interfaces: their broadcast addresses, 0.0.0.0 and "
                                         "255.255.255.255 become BADSRC, the addresses GOODDST"),
        _VERBOSE, _DETAILS,
    )

    def configure(self):
        super().configure()
        bad = set(self._addr_list(self.badsrc))
        good = set(self._addr_list(self.gooddst))
        for w in (self.interfaces or "").split():
            addr, mask = parse_ip_mask(w, self.addresses)
            bad.update((broadcast_address(addr, mask), bytes(4), _ALL_ONES))
            good.add(addr)
        self._badsrc = frozenset(bad) or None       # None: skip the lookup per packet
        self._gooddst = frozenset(good)

    def _addr_list(self, text):
        out = []
        for w in (text or "").split():
            if self.addresses is not None and w in self.addresses.ip:
                out.append(self.addresses.ip[w])
            else:
                try:
                    out.append(parse_ip(w))
                except ValueError:
                    raise ValueError("expected space-separated IP addresses, got %r" % w) \
                        from None
        return out

    def _check(self, p):
        buf = p.buf
        nh = p.off + self.offset
        plen = len(buf) - nh
        if plen < 20:
            return 0
        b0 = buf[nh]
        if b0 >> 4 != 4:
            return 1
        hl = (b0 & 15) << 2
        if hl < 20:
            return 2
        ln = buf[nh + 2] << 8 | buf[nh + 3]
        if ln > plen or ln < hl:
            return 3
        if self.checksum and int.from_bytes(buf[nh:nh + hl], "big") % 0xFFFF:
            return 4
        s0 = buf[nh + 12]
        if s0 >= 224 and (s0 < 240 or buf[nh + 12:nh + 16] == _ALL_ONES):
            return 5
        if self._badsrc is not None and bytes(buf[nh + 12:nh + 16]) in self._badsrc \
                and bytes(buf[nh + 16:nh + 20]) not in self._gooddst:
            return 5
        p.nh = nh
        if plen > ln:
            del buf[nh + ln:]
        p.dst_ip = bytes(buf[nh + 16:nh + 20])
        return None


class _TransportCheck(HeaderCheck):
    """CheckTCPHeader and CheckUDPHeader: same flow, different header rules."""

    ABSTRACT = True
    PROTO = 0
    ARGS = (_CHECKSUM, _VERBOSE, _DETAILS)

    def _check(self, p):
        buf = p.buf
        nh = ip_header_at(p)
        seg = _transport(buf, nh, self.PROTO)
        if seg is None:
            return 0
        start, end = seg
        if not self._length_ok(buf, start, end - start):
            return 1
        if self.checksum and self._checksum_present(buf, start) \
                and _l4_sum(buf, nh, start, self._end(buf, start, end), self.PROTO) % 0xFFFF:
            return 2
        return None

    def _checksum_present(self, buf, start):
        return True

    def _end(self, buf, start, end):
        return end


class CheckTCPHeader(_TransportCheck):
    """CheckTCPHeader([KEYWORDS])

    Checks the TCP header of TCP/IP packets (IP header at p.nh, or at the data
    start): the protocol is TCP and the packet is not a later fragment, the
    segment holds a header whose data offset is at least 20 and fits, and the
    checksum (over the pseudo header) is right.  Valid packets leave on output 0;
    invalid ones go to output 1 if connected, else are dropped.  A first
    fragment fails the checksum, as in Click: reassemble before checking.
    """

    WHAT = "TCP header"
    PROTO = IPPROTO_TCP
    REASONS = ("not TCP", "bad packet length", "bad TCP checksum")

    def _length_ok(self, buf, start, seglen):
        return seglen >= 20 and 20 <= (buf[start + 12] >> 4) << 2 <= seglen


class CheckUDPHeader(_TransportCheck):
    """CheckUDPHeader([KEYWORDS])

    Checks the UDP header of UDP/IP packets (IP header at p.nh, or at the data
    start): the protocol is UDP and the packet is not a later fragment, the UDP
    length is at least 8 and fits in the IP payload, and the checksum over the
    pseudo header and the UDP length is right; a zero checksum means "none" and
    is accepted (RFC 768).  Valid packets leave on output 0; invalid ones go to
    output 1 if connected, else are dropped.
    """

    WHAT = "UDP header"
    PROTO = IPPROTO_UDP
    REASONS = ("not UDP", "bad packet length", "bad UDP checksum")

    def _length_ok(self, buf, start, seglen):
        return seglen >= 8 and 8 <= (buf[start + 4] << 8 | buf[start + 5]) <= seglen

    def _checksum_present(self, buf, start):
        return buf[start + 6] | buf[start + 7]

    def _end(self, buf, start, end):
        return start + (buf[start + 4] << 8 | buf[start + 5])


# -- TTL and annotations ----------------------------------------------------------------

class DecIPTTL(Element):
    """DecIPTTL([KEYWORDS])

    Decrements the IP time-to-live of each packet (IP header at p.nh, or at the
    data start) and updates the header checksum incrementally (RFC 1624); the
    result equals a full recomputation.  Packets whose TTL is 1 or 0 are not
    changed: they go to output 1 if it is connected (usually an ICMPError), else
    are dropped.  Packets too short to hold an IP header are dropped.
    """

    PORTS = "1/1-2"
    ARGS = (
        Arg("ACTIVE", "bool", True, doc="if false, pass every packet unchanged"),
        Arg("MULTICAST", "bool", True, doc="if false, pass multicast packets unchanged"),
    )

    def configure(self):
        self._drops = 0

    def push(self, port, batch):
        if not self.active:
            self._out[0](batch)
            return
        skip_multicast = not self.multicast
        out = []
        expired = None
        for p in batch:
            buf = p.buf
            nh = p.nh
            if nh < 0:
                nh = p.off
            if len(buf) - nh < 20:
                self._drops += 1
                continue
            if skip_multicast and 224 <= buf[nh + 16] < 240:
                out.append(p)
                continue
            ttl = buf[nh + 8]
            if ttl <= 1:
                if expired is None:
                    expired = []
                expired.append(p)
                continue
            buf[nh + 8] = ttl - 1
            # RFC 1624 eqn. 3, HC' = ~(~HC + ~m + m'), where the TTL/protocol word m
            # drops by 0x0100 (~m + m' = 0xFEFF), works out to HC + 0x0100 when
            # HC < 0xFEFF and HC - 0xFEFF otherwise: never 0xFFFF, like a full
            # recomputation (eqn. 2's -0 pitfall avoided).
            c = (buf[nh + 10] << 8 | buf[nh + 11]) + 0x100
            if c >= 0xFFFF:
                c -= 0xFFFF
            buf[nh + 10] = c >> 8
            buf[nh + 11] = c & 0xFF
            out.append(p)
        if out:
            self._out[0](out)
        if expired:
            self._drops += len(expired)
            self.output(1)(expired)

    @read_handler("drops", "packets with an expired TTL (or no IP header)")
    def _h_drops(self):
        return str(self._drops)


class GetIPAddress(Element):
    """GetIPAddress(OFFSET)

    Sets each packet's destination IP annotation (p.dst_ip) to the 4 bytes
    OFFSET bytes into its data; GetIPAddress(16) reads the destination of an IP
    packet.  Packets too short to hold those bytes are dropped.
    """

    ARGS = (Arg("OFFSET", "uint", REQUIRED, positional=True, doc="where the address starts "
                                                               "in the data"),)

    def push(self, port, batch):
        offset = self.offset
        out = []
        for p in batch:
            at = p.off + offset
            if len(p.buf) - at >= 4:
                p.dst_ip = bytes(p.buf[at:at + 4])
                out.append(p)
        if out:
            self._out[0](out)


# -- checksum setters -------------------------------------------------------------------

class SetIPChecksum(Element):
    """SetIPChecksum()

    Recomputes the IP header checksum of each packet (IP header at p.nh, or at
    the data start) from scratch.  Packets too short for their header length, or
    with a header length under 20, are dropped.
    """

    def push(self, port, batch):
        out = []
        for p in batch:
            buf = p.buf
            nh = ip_header_at(p)
            if len(buf) - nh < 20:
                continue
            hl = (buf[nh] & 15) << 2
            if hl < 20 or nh + hl > len(buf):
                continue
            buf[nh + 10] = buf[nh + 11] = 0
            c = inet_checksum(buf[nh:nh + hl])
            buf[nh + 10] = c >> 8
            buf[nh + 11] = c & 0xFF
            out.append(p)
        if out:
            self._out[0](out)


class _SetL4Checksum(Element):
    """SetTCPChecksum and SetUDPChecksum: same flow, different field and length."""

    ABSTRACT = True
    PROTO = 0
    FIELD = 0

    def push(self, port, batch):
        proto, field, seg_end = self.PROTO, self.FIELD, self._seg_end
        out = []
        for p in batch:
            buf = p.buf
            nh = ip_header_at(p)
            if len(buf) - nh >= 20 and buf[nh + 9] == proto \
                    and (buf[nh + 6] & 0x3F or buf[nh + 7]):
                out.append(p)           # a fragment: its checksum covers other packets
                continue
            seg = _transport(buf, nh, proto)
            end = seg_end(buf, seg[0], seg[1]) if seg is not None else 0
            if end:                     # else not this protocol, or truncated: dropped
                _set_l4_checksum(buf, nh, seg[0], end, proto, field)
                out.append(p)
        if out:
            self._out[0](out)


class SetTCPChecksum(_SetL4Checksum):
    """SetTCPChecksum()

    Recomputes the TCP checksum of each TCP/IP packet (IP header at p.nh, or at
    the data start) from scratch, over the pseudo header and the segment.
    Fragments pass unchanged (their checksum covers the whole datagram);
    non-TCP or truncated packets are dropped.
    """

    PROTO, FIELD = IPPROTO_TCP, 16

    def _seg_end(self, buf, start, end):
        return end if end - start >= 20 else 0


class SetUDPChecksum(_SetL4Checksum):
    """SetUDPChecksum()

    Recomputes the UDP checksum of each UDP/IP packet (IP header at p.nh, or at
    the data start) from scratch, over the pseudo header and UDP-length bytes; a
    computed 0 is written as 0xFFFF (RFC 768).  Fragments pass unchanged;
    non-UDP packets and packets whose UDP length does not fit are dropped.
    """

    PROTO, FIELD = IPPROTO_UDP, 6

    def _seg_end(self, buf, start, end):
        if end - start < 8:
            return 0
        ulen = buf[start + 4] << 8 | buf[start + 5]
        return start + ulen if 8 <= ulen <= end - start else 0

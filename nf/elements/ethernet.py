"""Ethernet and ARP elements: header strip/encap/rewrite, ARP answers and queries.

Headers are prebuilt as bytes at configuration time (and rebuilt by the write
handlers), so the per-packet work of EtherEncap, EtherRewrite and a resolved
ARPQuerier lookup is one dict lookup at most and one slice assignment into
``p.buf``; EtherEncap and ARPQuerier prepend through ``p.push_front``, which
reuses the headroom that Strip left.  ARPQuerier keeps one prebuilt Ethernet
header per resolved neighbour.

ARP frames follow Click byte for byte: 14 + 28 = 42 bytes, no padding to the
60-byte Ethernet minimum (the device or kernel pads if the medium needs it).
"""

import struct

from ..args import parse_value, split_words
from ..element import REQUIRED, Arg, Element, read_handler, write_handler
from ..netutil import ip_str, mac_str, parse_ip
from ..packet import Packet
from .ip import broadcast_address, ip_header_at, parse_ip_mask

__all__ = ["Strip", "Unstrip", "EtherEncap", "EtherRewrite", "ARPResponder", "ARPQuerier"]

ETHERTYPE_IP, ETHERTYPE_ARP = 0x0800, 0x0806
ARP_REQUEST, ARP_REPLY = 1, 2
ARP_FRAME_LEN = 42
_BROADCAST_MAC = b"\xff" * 6
_ZERO_MAC = bytes(6)
_ALL_ONES_IP = b"\xff\xff\xff\xff"
# Ethernet/IPv4 ARP header up to and including the opcode (hrd 1, pro 0x0800, 6, 4).
_ARP_FIXED = struct.pack("!HHBB", 1, ETHERTYPE_IP, 6, 4)


def _ethertype(text, _addresses=None):
    """16-bit Ethernet type like 0x0800"""
    t = text.strip()
    try:
        v = int(t, 16) if t[:2].lower() == "0x" else int(t, 10)
    except ValueError:
        v = -1
    if not 0 <= v <= 0xFFFF:
        raise ValueError("expected 16-bit Ethernet type like 0x0800")
    return v


def _eth(text, addresses):
    return parse_value("eth", text, addresses)


def arp_frame(op, eth_dst, sha, spa, tha, tpa):
    """A 42-byte Ethernet/ARP frame (all addresses as bytes)."""
    return (eth_dst + sha + b"\x08\x06" + _ARP_FIXED + op.to_bytes(2, "big")
            + sha + spa + tha + tpa)


def _row(ip, e, now):
    """An ARP entry's exported form."""
    return {"ip": ip_str(ip), "eth": mac_str(e.eth), "age": now - e.live}


def _is_arp(buf, off, op):
    """True if the data at ``off`` is an Ethernet/IPv4 ARP frame with opcode ``op``."""
    return (len(buf) - off >= ARP_FRAME_LEN and buf[off + 12:off + 14] == b"\x08\x06"
            and buf[off + 14:off + 20] == _ARP_FIXED and buf[off + 20] == 0
            and buf[off + 21] == op)


# -- header manipulation ----------------------------------------------------------------

class Strip(Element):
    """Strip(LENGTH)

    Removes LENGTH bytes from the front of each packet by moving its data
    offset; the bytes stay in the buffer as headroom for Unstrip or EtherEncap.
    The IP header annotation is absolute and so is unaffected.  A packet shorter
    than LENGTH becomes empty.
    """

    ARGS = (Arg("LENGTH", "uint", REQUIRED, positional=True, doc="bytes to remove"),)

    def push(self, port, batch):
        n = self.length
        for p in batch:
            off = p.off + n
            end = len(p.buf)
            p.off = off if off <= end else end
        self._out[0](batch)


class Unstrip(Element):
    """Unstrip(LENGTH)

    Puts LENGTH bytes back in front of each packet's data (Click's push): the
    stripped bytes when there is headroom, zero bytes otherwise.
    """

    ARGS = (Arg("LENGTH", "uint", REQUIRED, positional=True, doc="bytes to restore"),)

    def push(self, port, batch):
        n = self.length
        for p in batch:
            p.push_front(n)
        self._out[0](batch)


class EtherEncap(Element):
    """EtherEncap(ETHERTYPE, SRC, DST)

    Prepends a 14-byte Ethernet header (destination DST, source SRC, type
    ETHERTYPE) to each packet, using the packet's headroom when it has some.
    """

    ARGS = (
        Arg("ETHERTYPE", _ethertype, REQUIRED, positional=True, doc="Ethernet type, e.g. 0x0800"),
        Arg("SRC", "eth", REQUIRED, positional=True, doc="source Ethernet address"),
        Arg("DST", "eth", REQUIRED, positional=True, doc="destination Ethernet address"),
    )

    def configure(self):
        self._build()

    def _build(self):
        self._hdr = self.dst + self.src + self.ethertype.to_bytes(2, "big")

    def push(self, port, batch):
        hdr = self._hdr
        for p in batch:
            p.push_front(14)
            off = p.off
            p.buf[off:off + 14] = hdr
        self._out[0](batch)

    @read_handler("src", "the source Ethernet address")
    def _h_src(self):
        return mac_str(self.src)

    @write_handler("src", "set the source Ethernet address")
    def _w_src(self, value):
        self.src = _eth(value, self.addresses)
        self._build()

    @read_handler("dst", "the destination Ethernet address")
    def _h_dst(self):
        return mac_str(self.dst)

    @write_handler("dst", "set the destination Ethernet address")
    def _w_dst(self, value):
        self.dst = _eth(value, self.addresses)
        self._build()

    @read_handler("ethertype", "the Ethernet type, as 0xNNNN")
    def _h_ethertype(self):
        return "0x%04x" % self.ethertype

    @write_handler("ethertype", "set the Ethernet type (0xNNNN or decimal)")
    def _w_ethertype(self, value):
        self.ethertype = _ethertype(value)
        self._build()


class EtherRewrite(Element):
    """EtherRewrite(SRC, DST)

    Overwrites the destination and source addresses of the Ethernet header at
    the start of each packet with DST and SRC; the type is left alone.  Packets
    shorter than an Ethernet header are dropped.
    """

    ARGS = (
        Arg("SRC", "eth", REQUIRED, positional=True, doc="new source Ethernet address"),
        Arg("DST", "eth", REQUIRED, positional=True, doc="new destination Ethernet address"),
    )

    def configure(self):
        self._build()

    def _build(self):
        self._addrs = self.dst + self.src

    def push(self, port, batch):
        addrs = self._addrs
        out = []
        for p in batch:
            off = p.off
            if len(p.buf) - off >= 14:
                p.buf[off:off + 12] = addrs
                out.append(p)
        if out:
            self._out[0](out)

    @read_handler("src", "the source Ethernet address written")
    def _h_src(self):
        return mac_str(self.src)

    @write_handler("src", "set the source Ethernet address written")
    def _w_src(self, value):
        self.src = _eth(value, self.addresses)
        self._build()

    @read_handler("dst", "the destination Ethernet address written")
    def _h_dst(self):
        return mac_str(self.dst)

    @write_handler("dst", "set the destination Ethernet address written")
    def _w_dst(self, value):
        self.dst = _eth(value, self.addresses)
        self._build()


# -- ARPResponder -----------------------------------------------------------------------

class ARPResponder(Element):
    """ARPResponder(IP/MASK [IP/MASK...] ETH, IP2/MASK2 ETH2, ...)

    Answers ARP requests.  Input: Ethernet frames.  For an Ethernet/IPv4 ARP
    request whose target address matches one of the prefixes (longest match;
    a bare address is a /32), it emits on output 0 a 42-byte reply from that
    prefix's ETH: Ethernet source ETH and destination the requester's sender
    hardware address; sender ETH and the requested address; target the
    requester's addresses.  Everything else (other requests, replies, non-ARP
    frames) goes to output 1 if connected, else is dropped.  Each argument is
    one or more addresses or prefixes followed by one Ethernet address;
    AddressInfo names work, and a name with both an IP and an Ethernet address
    may stand alone (ARPResponder(NAME)); a name's IP address is preferred to
    its prefix (NAME:ipnet selects the prefix).
    """

    PORTS = "1/1-2"
    ARGS = (Arg("ENTRIES", rest=True, doc="each 'IP/MASK... ETH' (one per argument)"),)

    def configure(self):
        if not self.entries:
            raise ValueError("expected at least one 'IP/MASK ETH' argument")
        self._exact = {}                 # address -> eth, for /32 entries
        self._nets = []                  # (mask_int, net_int, eth), longest mask first
        for i, arg in enumerate(self.entries):
            try:
                self._add(arg)
            except ValueError as e:
                raise ValueError("argument %d: %s" % (i + 1, e)) from None

    def _add(self, arg):
        """Add one 'IP/MASK [IP/MASK...] ETH' argument; later entries win."""
        prefixes, eth, dual = [], None, None
        for w in split_words(arg):
            pm = self._prefix_word(w)
            if pm is not None:
                prefixes.append(pm)
                if dual is None and self.addresses is not None and w in self.addresses.eth:
                    dual = self.addresses.eth[w]
                continue
            try:
                e = _eth(w, self.addresses)
            except ValueError:
                raise ValueError("expected IP/MASK ETH, got %r" % w) from None
            if eth is not None:
                raise ValueError("more than one ETH in %r" % arg)
            eth = e
        if not prefixes:
            raise ValueError("missing IP/MASK in %r" % arg)
        eth = eth if eth is not None else dual
        if eth is None:
            raise ValueError("missing ETH in %r" % arg)
        for addr, mask in prefixes:
            self._insert(addr, mask, eth)

    def _prefix_word(self, w):
        a = self.addresses
        if a is not None and w.endswith(":ipnet") and w[:-6] in a.prefix:
            return a.prefix[w[:-6]]
        if a is not None and w in a.ip:
            return a.ip[w], _ALL_ONES_IP
        try:
            return parse_ip_mask(w, a)
        except ValueError:
            return None

    def _insert(self, addr, mask, eth):
        m = int.from_bytes(mask, "big")
        net = int.from_bytes(addr, "big") & m
        if m == 0xFFFFFFFF:
            self._exact[net.to_bytes(4, "big")] = eth
            return
        self._nets = [e for e in self._nets if e[:2] != (m, net)] + [(m, net, eth)]
        self._nets.sort(key=lambda e: -e[0])    # stable: equal masks keep their order

    def lookup(self, ip):
        """The Ethernet address answering for ``ip`` (4 bytes), or None."""
        eth = self._exact.get(ip)
        if eth is None and self._nets:
            n = int.from_bytes(ip, "big")
            for m, net, e in self._nets:
                if n & m == net:
                    return e
        return eth

    def push(self, port, batch):
        replies = []
        other = None
        for p in batch:
            buf, off = p.buf, p.off
            eth = None
            if _is_arp(buf, off, ARP_REQUEST):
                tpa = bytes(buf[off + 38:off + 42])
                eth = self.lookup(tpa)
            if eth is None:
                if other is None:
                    other = []
                other.append(p)
                continue
            sha = bytes(buf[off + 22:off + 28])
            spa = bytes(buf[off + 28:off + 32])
            replies.append(Packet(bytearray(arp_frame(ARP_REPLY, sha, eth, tpa, sha, spa)),
                                  ts=p.ts))
        if replies:
            self._out[0](replies)
        if other:
            self.output(1)(other)

    def _entries(self):
        out = [(a, _ALL_ONES_IP, e) for a, e in self._exact.items()]
        out += [(net.to_bytes(4, "big"), m.to_bytes(4, "big"), e) for m, net, e in self._nets]
        return out

    @read_handler("table", "the entries, one 'ADDR/LEN ETH' a line")
    def _h_table(self):
        return "\n".join("%s/%d %s" % (ip_str(a), bin(int.from_bytes(m, "big")).count("1"),
                                       mac_str(e)) for a, m, e in self._entries())

    @write_handler("add", "add entries: 'IP/MASK [IP/MASK...] ETH'")
    def _w_add(self, value):
        self._add(value)

    @write_handler("remove", "remove the entry for 'IP/MASK'")
    def _w_remove(self, value):
        addr, mask = parse_ip_mask(value, self.addresses)
        m = int.from_bytes(mask, "big")
        net = int.from_bytes(addr, "big") & m
        if m == 0xFFFFFFFF and self._exact.pop(net.to_bytes(4, "big"), None) is not None:
            return
        kept = [e for e in self._nets if e[:2] != (m, net)]
        if len(kept) == len(self._nets):
            raise ValueError("no entry for %s" % value.strip())
        self._nets = kept


# -- ARPQuerier -------------------------------------------------------------------------

class _Neighbour:
    """One ARP table entry.  ``hdr`` is the prebuilt Ethernet header for IP packets
    (None while unresolved); ``queue`` holds IP packets waiting for resolution."""

    __slots__ = ("eth", "hdr", "live", "polled", "polls", "queue")

    def __init__(self, now):
        self.eth = self.hdr = None
        self.live = now          # when last confirmed (or created, if unresolved)
        self.polled = -1e18      # when a query was last sent for it
        self.polls = 0           # queries sent since the last reply
        self.queue = []


class ARPQuerier(Element):
    """ARPQuerier(IP, ETH, [KEYWORDS])

    Encapsulates IP packets in Ethernet headers found by ARP.  Input 0: IP
    packets (data at the IP header) with the destination IP annotation set (if
    it is unset, the header's destination is used).  When the destination's
    Ethernet address is known the packet leaves on output 0 behind a header
    from ETH; otherwise it is queued and a broadcast ARP request for it is sent.
    Input 1: ARP replies (Ethernet frames); each one's sender mapping is learnt
    (as in Click, only replies teach, whatever they answer) and the packets
    queued for it are sent.  ARP requests leave on output 1 when there are two
    outputs, else on output 0.  0.0.0.0 is dropped; 255.255.255.255 and the
    broadcast address go to ff:ff:ff:ff:ff:ff; multicast groups to their
    01:00:5e mapping (RFC 1112).  IP may carry a mask (10.0.0.1/24) to give the
    broadcast address; ARPQuerier(NAME) takes both addresses from AddressInfo.

    Queries for one address are sent at most every 0.1 s, and every 2 s after
    10 unanswered (Click's rule).  Entries live TIMEOUT after their last reply;
    after POLL_TIMEOUT a use of the entry also sends a renewal query (unicast,
    unless BROADCAST_POLL).  Every second (a router timer; without a router,
    call run_timer()) expired entries are removed, their queued packets dropped,
    and queries are repeated for addresses that still have packets waiting.

    State (version 1): the resolved entries with their ages, and the counters.
    With a persistent store attached, entries learnt, refreshed, expired or
    removed are journaled (key: the IP address as text) and
    ``replay_events`` applies them on recovery; the counters are carried by
    the store's snapshots only.
    """

    PORTS = "2/1-2"
    STATE_VERSION = 1
    POLL_INTERVAL = 0.1          # Click: at most 10 queries a second per address
    SLOW_POLL_INTERVAL = 2.0     # ... once 10 went unanswered
    TIMER_INTERVAL = 1.0
    ARGS = (
        Arg("IP", "raw", REQUIRED, positional=True, doc="this host's IP address, optionally "
                                                       "with /MASK (or an AddressInfo name)"),
        Arg("ETH", "raw", None, positional=True, doc="this host's Ethernet address (omit when "
                                                    "IP is an AddressInfo name that has one)"),
        Arg("CAPACITY", "uint", 2048, doc="most IP packets queued in all (0: unlimited)"),
        Arg("ENTRY_CAPACITY", "uint", 0, doc="most table entries (0: unlimited)"),
        Arg("ENTRY_PACKET_CAPACITY", "uint", 0, doc="most packets queued per address "
                                                    "(0: unlimited)"),
        Arg("TIMEOUT", "seconds", 300.0, doc="entry lifetime after its last reply (0: forever)"),
        Arg("POLL_TIMEOUT", "seconds", 60.0, doc="entry age after which uses send renewal "
                                                 "queries (0: never)"),
        Arg("BROADCAST", "ip", None, doc="local broadcast address (default: from IP's mask, "
                                         "else 255.255.255.255)"),
        Arg("BROADCAST_POLL", "bool", False, doc="send renewal queries as broadcasts"),
    )

    # -- configuration ------------------------------------------------------------
    def configure(self):
        name = self.ip.strip()
        self.my_ip, mask = parse_ip_mask(name, self.addresses)
        if self.eth is not None:
            self.my_eth = _eth(self.eth, self.addresses)
        elif self.addresses is not None and name in self.addresses.eth:
            self.my_eth = self.addresses.eth[name]
        else:
            raise ValueError("missing ETH (give IP, ETH, or an AddressInfo name with both)")
        if self.broadcast is None:
            bcast = broadcast_address(self.my_ip, mask)
            self.broadcast = _ALL_ONES_IP if bcast == self.my_ip else bcast
        self._tail = self.my_eth + b"\x08\x00"           # source + type of every IP frame
        self._bcast_hdr = _BROADCAST_MAC + self._tail
        self._table = {}                                  # IP (4 bytes) -> _Neighbour
        self._saved = 0
        self._queries = self._responses = self._drops = 0

    def initialize(self):
        if self.router is not None:
            self.router.add_timer(self.TIMER_INTERVAL, self.run_timer)

    # -- packet path ----------------------------------------------------------------
    def push(self, port, batch):
        if port == 0:
            self._push_ip(batch)
        else:
            self._push_arp(batch)

    def _push_ip(self, batch):
        now = self.clock()
        table = self._table
        stale = now - self.timeout if self.timeout else -1e18
        poll_age = self.poll_timeout
        out = []
        queries = out if self.noutputs < 2 else []
        for p in batch:
            dst = p.dst_ip
            if dst is None:
                at = ip_header_at(p) + 16
                dst = bytes(p.buf[at:at + 4])
            e = table.get(dst)
            if e is not None and e.hdr is not None and e.live > stale:
                off = p.off - 14
                if off >= 0:            # the usual case: the stripped header's room
                    p.off = off
                else:
                    p.push_front(14)
                    off = p.off
                p.buf[off:off + 14] = e.hdr
                out.append(p)
                if poll_age and now - e.live >= poll_age and self._may_poll(e, now):
                    self._query(dst, _BROADCAST_MAC if self.broadcast_poll else e.eth,
                                e, now, queries)
            else:
                self._unresolved(p, dst, e, now, out, queries)
        if out:
            self._out[0](out)
        if queries and queries is not out:
            self._emit_queries(queries)

    def _unresolved(self, p, dst, e, now, out, queries):
        """The slow path: broadcast, multicast, 0.0.0.0, or queue and query."""
        if dst == _ALL_ONES_IP or dst == self.broadcast:
            self._send_with(p, self._bcast_hdr, out)
        elif len(dst) == 4 and 224 <= dst[0] < 240:
            group = b"\x01\x00\x5e" + bytes((dst[1] & 0x7F, dst[2], dst[3]))
            self._send_with(p, group + self._tail, out)
        elif len(dst) != 4 or dst == b"\0\0\0\0":
            self._drops += 1            # no usable destination (annotation unset?)
        else:
            if e is None:
                e = self._new_entry(dst, now)
            elif e.hdr is not None:     # known but expired: resolve afresh
                e.eth = e.hdr = None
                e.live = now
                self._journal_entry("removed", dst, e)
            self._enqueue(e, p)
            if self._may_poll(e, now):
                self._query(dst, _BROADCAST_MAC, e, now, queries)

    @staticmethod
    def _send_with(p, hdr, out):
        p.push_front(14)
        p.buf[p.off:p.off + 14] = hdr
        out.append(p)

    def _new_entry(self, ip, now):
        cap = self.entry_capacity
        if cap and len(self._table) >= cap:
            oldest = min(self._table, key=lambda k: self._table[k].live)
            self._remove(oldest)
        e = self._table[ip] = _Neighbour(now)
        return e

    def _enqueue(self, e, p):
        epc = self.entry_packet_capacity
        if epc and len(e.queue) >= epc:
            self._drops += 1
            return
        e.queue.append(p)
        self._saved += 1
        if self.capacity and self._saved > self.capacity:
            self._slim()

    def _slim(self):
        """Over CAPACITY: drop the oldest queued packets, oldest entries first, down
        to half the capacity (Click's slim factor 2), so a flood of unresolvable
        destinations costs one sort per CAPACITY/2 packets, not one per packet."""
        target = max(self.capacity - self.capacity // 2, 1)
        for e in sorted(self._table.values(), key=lambda e: e.live):
            while e.queue and self._saved > target:
                del e.queue[0]
                self._saved -= 1
                self._drops += 1
            if self._saved <= target:
                return

    def _may_poll(self, e, now):
        gap = self.SLOW_POLL_INTERVAL if e.polls >= 10 else self.POLL_INTERVAL
        return now - e.polled >= gap

    def _query(self, ip, eth_dst, e, now, queries):
        e.polled = now
        e.polls += 1
        self._queries += 1
        queries.append(Packet(bytearray(arp_frame(ARP_REQUEST, eth_dst, self.my_eth,
                                                  self.my_ip, _ZERO_MAC, ip))))

    def _emit_queries(self, queries):
        self.output(max(self.noutputs, 1) - 1)(queries)

    def _push_arp(self, batch):
        released = []
        for p in batch:
            buf, off = p.buf, p.off
            if not _is_arp(buf, off, ARP_REPLY) or buf[off + 22] & 1:
                continue                # not a reply, or a group sender address
            self._responses += 1
            self._learn(bytes(buf[off + 28:off + 32]), bytes(buf[off + 22:off + 28]),
                        released)
        if released:
            self._out[0](released)

    def _learn(self, ip, eth, released):
        """Record ip -> eth and move the packets waiting for ip, encapsulated, to
        ``released`` in arrival order."""
        now = self.clock()
        e = self._table.get(ip)
        if e is None:
            e = self._new_entry(ip, now)
        kind = "created" if e.hdr is None else "updated"
        e.eth, e.hdr = eth, eth + self._tail
        e.live = now
        e.polls = 0
        e.polled = -1e18
        self._journal_entry(kind, ip, e)
        if e.queue:
            for p in e.queue:
                self._send_with(p, e.hdr, released)
            self._saved -= len(e.queue)
            e.queue = []

    def _remove(self, ip):
        e = self._table.pop(ip)
        self._drops += len(e.queue)
        self._saved -= len(e.queue)
        if e.hdr is not None:            # unresolved entries are not state
            self._journal_entry("removed", ip, e)

    def _journal_entry(self, kind, ip, e):
        """Journal a resolved entry's creation, refresh or removal when a store
        listens (the row is built only then)."""
        if self._journal is not None:
            self.journal(kind, ip_str(ip),
                         None if kind == "removed" else _row(ip, e, self.clock()))

    # -- timer ------------------------------------------------------------------------
    def run_timer(self):
        """Expire old entries (dropping their queued packets) and repeat queries for
        addresses that still have packets waiting."""
        now = self.clock()
        if self.timeout:
            stale = now - self.timeout
            for ip in [ip for ip, e in self._table.items() if e.live <= stale]:
                self._remove(ip)
        queries = []
        for ip, e in self._table.items():
            if e.queue and e.hdr is None and self._may_poll(e, now):
                self._query(ip, _BROADCAST_MAC, e, now, queries)
        if queries:
            self._emit_queries(queries)

    # -- handlers ---------------------------------------------------------------------
    @read_handler("table", "the ARP table, one 'IP OK ETH AGE' a line (OK 1 if resolved "
                           "and live, ETH 00:00:00:00:00:00 if unresolved, AGE in seconds)")
    def _h_table(self):
        now = self.clock()
        lines = []
        for ip, e in self._table.items():
            ok = int(e.hdr is not None and (not self.timeout or now - e.live < self.timeout))
            lines.append("%s %d %s %.3f" % (ip_str(ip), ok, mac_str(e.eth or _ZERO_MAC),
                                            now - e.live))
        return "\n".join(lines)

    @read_handler("count", "number of table entries (resolved or not)")
    def _h_count(self):
        return str(len(self._table))

    @read_handler("length", "number of IP packets queued for resolution")
    def _h_length(self):
        return str(self._saved)

    @read_handler("queries", "ARP queries sent")
    def _h_queries(self):
        return str(self._queries)

    @read_handler("responses", "ARP replies learnt from")
    def _h_responses(self):
        return str(self._responses)

    @read_handler("drops", "IP packets dropped (queue limits, expiry, no destination)")
    def _h_drops(self):
        return str(self._drops)

    @read_handler("ipaddr", "this host's IP address")
    def _h_ipaddr(self):
        return ip_str(self.my_ip)

    @read_handler("broadcast", "the local broadcast IP address")
    def _h_broadcast(self):
        return ip_str(self.broadcast)

    @write_handler("insert", "add or refresh a mapping: 'IP ETH'; sends packets waiting "
                             "for IP")
    def _w_insert(self, value):
        words = split_words(value)
        if len(words) != 2:
            raise ValueError("expected 'IP ETH', got %r" % value)
        ip = parse_value("ip", words[0], self.addresses)
        eth = _eth(words[1], self.addresses)
        released = []
        self._learn(ip, eth, released)
        if released:
            self._out[0](released)

    @write_handler("delete", "remove the entry for IP (its queued packets are dropped)")
    def _w_delete(self, value):
        ip = parse_value("ip", value, self.addresses)
        if ip not in self._table:
            raise ValueError("no entry for %s" % value.strip())
        self._remove(ip)

    @write_handler("clear", "empty the table (queued packets are dropped) and zero the "
                            "counters")
    def _w_clear(self, value=""):
        for ip in list(self._table):
            self._remove(ip)
        self._queries = self._responses = self._drops = 0

    # -- state ------------------------------------------------------------------------
    def export_state(self):
        """Resolved entries with their ages (seconds before now), and the counters;
        queued packets are traffic, not state, and are not exported."""
        now = self.clock()
        return {
            "table": [_row(ip, e, now) for ip, e in self._table.items() if e.hdr is not None],
            "queries": self._queries, "responses": self._responses, "drops": self._drops,
        }

    def import_state(self, data, version):
        data = self.migrate_state(data, version)
        now = self.clock()
        released = []
        for row in data.get("table", ()):
            self._learn_row(row, now, released)
        self._queries = int(data.get("queries", 0))
        self._responses = int(data.get("responses", 0))
        self._drops = int(data.get("drops", 0))
        if released:
            self._out[0](released)

    def _learn_row(self, row, now, released):
        """Learn an exported {ip, eth, age} row, keeping its age."""
        ip = parse_ip(row["ip"])
        self._learn(ip, parse_value("eth", row["eth"]), released)
        self._table[ip].live = now - float(row["age"])

    def replay_events(self, events):
        """Apply journaled entry events in order: "created" and "updated" learn
        the row (keeping its age), "removed" forgets the address.  Raises
        ValueError naming the first malformed event; earlier ones stay applied."""
        now = self.clock()
        released = []
        try:
            for i, (kind, key, value) in enumerate(events):
                try:
                    if kind == "removed":
                        ip = parse_ip(key)
                        if ip in self._table:
                            self._remove(ip)
                    elif kind in ("created", "updated"):
                        self._learn_row(value, now, released)
                    else:
                        raise ValueError("unknown kind %r (expected created, updated or "
                                         "removed)" % (kind,))
                except (KeyError, TypeError, ValueError) as e:
                    raise ValueError("ARPQuerier journal event %d (%r): %s"
                                     % (i, [kind, key, value], e)) from None
        finally:
            if released:
                self._out[0](released)

    def take_state(self, old):
        """Click's hot-swap: adopt the old element's table, queued packets included,
        if it has the same addresses (a changed address invalidates the table)."""
        addrs = tuple(getattr(old, a, None) for a in ("my_ip", "my_eth", "broadcast"))
        if type(old).__name__ != type(self).__name__ or \
                addrs != (self.my_ip, self.my_eth, self.broadcast):
            return
        for ip, oe in old._table.items():
            e = self._table[ip] = _Neighbour(oe.live)
            e.polled, e.polls, e.queue = oe.polled, oe.polls, list(oe.queue)
            if oe.eth is not None:
                e.eth, e.hdr = oe.eth, oe.eth + self._tail
        self._saved = sum(len(e.queue) for e in self._table.values())
        self._queries, self._responses, self._drops = old._queries, old._responses, old._drops
        old._table, old._saved = {}, 0

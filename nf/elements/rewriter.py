"""The NAT: Click's rewriter family (IPRewriter, TCPRewriter, UDPRewriter,
ICMPPingRewriter) and IPRewriterPatterns.

Table design.  A *mapping* binds (protocol, inside address, inside port) to one
outside (address, port) for every destination: endpoint-independent mapping,
RFC 4787 REQ-1.  A mapping owns one *session* per remote endpoint.  Each session
puts two 12-byte *flow keys* in its protocol's flow table -- the forward flow
(inside -> remote) and the reverse flow (remote -> outside) -- laid out like the
packet headers (source address, destination address, source port, destination
port; ICMP echo uses type and query id instead of ports).  A key's value is an
*entry* tuple holding all the packet path needs: the 12 bytes to write, the
RFC 1624 checksum deltas precomputed for that rewrite, the output port and the
session, whose ``used`` time is the only thing a packet updates.

Packet path (``push``).  For an IPv4 header without options, one struct unpack
reads the header fields and the flow key (addresses and ports are contiguous),
one dict lookup finds the entry, one struct pack writes the IP checksum,
addresses and ports, and the TCP/UDP checksum gets one read and one write.
Anything else -- options, fragments, ICMP, table misses, malformed packets --
goes through ``_general``, which applies the input spec on a miss.

State.  ``export_state`` walks the mappings once (O(n)) and writes plain JSON
data; ``import_state`` builds a fresh table and swaps it in only when all of the
data is valid, so a failed import leaves the running table untouched.  A later
state version adds fields through the ``_mapping_data`` / ``_import_mapping``
hooks and a ``MIGRATIONS`` step (upgrades/nat-v2 adds per-mapping counters).

Journal.  While a persistent store is attached (``Element.journal``), the slow
path records every change a recovery needs: a mapping created (key ``[proto,
inside address, inside port]``, value the mapping's export form with its first
session), a session created or its TCP state changed (key ``[proto, inside
address, inside port, remote address, remote port]``, value the session's export
form), and mappings or sessions removed (value None).  ``replay_events`` applies
them after ``import_state`` of the last snapshot.  Packets that only refresh an
idle time are not journaled: replayed entries count as used at replay time.

Traffic counters.  ``COUNT_TRAFFIC`` (a class attribute, read once per batch)
makes the packet path add each packet and its IP length to its mapping's
counters; the library rewriter leaves it off and pays one local test a packet.
"""

import random
import struct
import weakref

from ..args import parse_value, split_words
from ..element import Arg, Element, read_handler, write_handler
from ..netutil import csum_add, ip_str, ones_sum, parse_ip
from ..perf import gc_paused

__all__ = ["IPRewriter", "TCPRewriter", "UDPRewriter", "ICMPPingRewriter",
           "IPRewriterPatterns", "Pattern"]

TCP, UDP, ICMP = 6, 17, 1
PROTO_NAMES = {TCP: "tcp", UDP: "udp", ICMP: "icmp"}
PROTO_NUMBERS = {v: k for k, v in PROTO_NAMES.items()}
ICMP_ECHO_REPLY, ICMP_ECHO = 0, 8
TH_FIN, TH_SYN, TH_RST, TH_ACK = 0x01, 0x02, 0x04, 0x10

# Transport checksum offset and minimum transport header length, per protocol.
_L4 = {TCP: (16, 20), UDP: (6, 8), ICMP: (2, 8)}

# TCP session states and their names in exported state and in the mappings handler.
SYN_SENT, ESTABLISHED, FIN_OUT, FIN_IN, CLOSED = range(5)
TCP_STATES = ("syn", "established", "fin-out", "fin-in", "closed")

FRAG_TIMEOUT = 30.0        # seconds a first fragment's translation serves later fragments
FRAG_CAPACITY = 4096       # fragmented datagrams tracked at once

# Fast path: version/IHL, total length, fragment field, protocol, IP checksum and the
# 12-byte flow key (addresses + ports) of an IPv4 header without options.
_HDR5 = struct.Struct("!BxHxxHxBH12s")
_SUM_FLOW = struct.Struct("!H12s")       # IP checksum + addresses + ports, written at nh+10
_IPHDR = struct.Struct("!BxHHHxB")        # version/IHL, total length, id, fragment, protocol
_U16 = struct.Struct("!H")
_PORTS = struct.Struct("!HH")
_struct_error = struct.error


# -- checksum arithmetic (RFC 1624) --------------------------------------------------------

def _delta(old, new):
    """The one's-complement sum ~m + m' that turns a checksum over ``old`` into one
    over ``new`` (equal-length byte strings)."""
    return csum_add(~ones_sum(old) & 0xFFFF, ones_sum(new))


def _adjust(csum, delta):
    """RFC 1624 eqn. 3: HC' = ~(~HC + delta), one fold suffices for 16-bit inputs."""
    x = (csum ^ 0xFFFF) + delta
    return ((x & 0xFFFF) + (x >> 16)) ^ 0xFFFF


# -- patterns and input specs ----------------------------------------------------------------

class Pattern:
    """A rewrite pattern ``SADDR SPORT DADDR DPORT``; ``-`` keeps a field, SPORT may be a
    range ``LOW-HIGH``.  ``taken`` holds the outside (proto, address, port) triples that
    live mappings made from this pattern hold, in every rewriter sharing it."""

    __slots__ = ("name", "saddr", "sport", "daddr", "dport", "taken")

    def __init__(self, words, addresses=None, name=None):
        if len(words) != 4:
            raise ValueError("expected pattern SADDR SPORT DADDR DPORT, got %r" % " ".join(words))
        self.name = name
        self.saddr = self._addr(words[0], "SADDR", addresses)
        self.sport = self._port_range(words[1])
        self.daddr = self._addr(words[2], "DADDR", addresses)
        d = self._port_range(words[3])
        if d is not None and d[0] != d[1]:
            raise ValueError("DPORT must be a port number or '-', got %r" % words[3])
        self.dport = None if d is None else d[0]
        self.taken = set()

    @staticmethod
    def _addr(word, what, addresses):
        if word == "-":
            return None
        if "-" in word:
            raise ValueError("%s: address ranges are not supported, got %r" % (what, word))
        try:
            return parse_value("ip", word, addresses)
        except ValueError:
            raise ValueError("%s: expected IP address or '-', got %r" % (what, word)) from None

    @staticmethod
    def _port_range(word):
        if word == "-":
            return None
        lo, dash, hi = word.partition("-")
        try:
            lo = int(lo)
            hi = int(hi) if dash else lo
        except ValueError:
            raise ValueError("expected port, port range LOW-HIGH or '-', got %r" % word) from None
        if not 0 <= lo <= hi <= 65535:
            raise ValueError("port range must lie in 0-65535 with LOW <= HIGH, got %r" % word)
        return lo, hi

    @classmethod
    def keep(cls):
        return cls(["-", "-", "-", "-"])

    @property
    def keeps_destination(self):
        return self.daddr is None and self.dport is None

    def text(self):
        sport = "-" if self.sport is None else (
            str(self.sport[0]) if self.sport[0] == self.sport[1] else "%d-%d" % self.sport)
        return "%s %s %s %s" % (ip_str(self.saddr) if self.saddr else "-", sport,
                                ip_str(self.daddr) if self.daddr else "-",
                                "-" if self.dport is None else self.dport)


# Named patterns, per router (module level because elements are configured before the
# router knows its elements); router None is the registry of unit tests.
_PATTERN_REGISTRY = {}


def _patterns_of(router):
    key = None if router is None else id(router)
    named = _PATTERN_REGISTRY.get(key)
    if named is None:
        named = _PATTERN_REGISTRY[key] = {}
        if router is not None:
            try:
                weakref.finalize(router, _PATTERN_REGISTRY.pop, key, None)
            except TypeError:       # not weak-referenceable: the entry stays
                pass
    return named


DROP, PASS, MAP = "drop", "pass", "map"
_SPEC_FORMS = ("drop, pass OUTPUT, keep FOUTPUT ROUTPUT, "
               "pattern SADDR SPORT DADDR DPORT FOUTPUT ROUTPUT, or PATNAME FOUTPUT ROUTPUT")


class _InputSpec:
    """What an input does with packets that match no session."""

    __slots__ = ("kind", "pattern", "foutput", "routput", "text")

    def __init__(self, kind, pattern=None, foutput=0, routput=0, text=""):
        self.kind, self.pattern, self.text = kind, pattern, text
        self.foutput, self.routput = foutput, routput

    @property
    def outputs(self):
        return () if self.kind == DROP else (self.foutput, self.routput)


def _output(word):
    try:
        n = int(word)
    except ValueError:
        n = -1
    if n < 0:
        raise ValueError("expected output port number, got %r" % word)
    return n


def parse_input_spec(text, addresses=None, named=None):
    """One INPUTSPEC string -> _InputSpec; raises ValueError naming the accepted forms."""
    words = split_words(text)
    if not words:
        raise ValueError("empty INPUTSPEC (expected %s)" % _SPEC_FORMS)
    head, args = words[0], words[1:]
    if head in ("drop", "discard") and not args:
        return _InputSpec(DROP, text=text)
    if head in ("pass", "passthrough", "nochange") and len(args) == 1:
        return _InputSpec(PASS, foutput=_output(args[0]), routput=_output(args[0]), text=text)
    if head == "keep" and len(args) == 2:
        return _InputSpec(MAP, Pattern.keep(), _output(args[0]), _output(args[1]), text)
    if head == "pattern" and len(args) == 6:
        return _InputSpec(MAP, Pattern(args[:4], addresses), _output(args[4]),
                          _output(args[5]), text)
    if head == "pattern" and len(args) == 3:
        head, args = args[0], args[1:]
    if len(args) == 2 and head not in ("drop", "discard", "pass", "keep", "pattern"):
        named = named or {}
        if head not in named:
            raise ValueError("no pattern named %r: declare it in an IPRewriterPatterns element"
                             " (declared: %s)" % (head, ", ".join(sorted(named)) or "none"))
        return _InputSpec(MAP, named[head], _output(args[0]), _output(args[1]), text)
    raise ValueError("bad INPUTSPEC %r (expected %s)" % (text, _SPEC_FORMS))


# -- table objects -----------------------------------------------------------------------------

class _Mapping:
    """An inside endpoint's outside endpoint, and its sessions keyed by remote endpoint.
    ``packets`` and ``bytes`` count traffic when the element's COUNT_TRAFFIC is on;
    ``created`` is the clock time the mapping was made (or imported as made)."""

    __slots__ = ("proto", "inside", "outside", "sessions", "pattern", "input",
                 "foutput", "routput", "keeps_dst", "packets", "bytes", "created")

    def __init__(self, proto, inside, outside, pattern, input_, foutput, routput, keeps_dst,
                 created=0.0):
        self.proto, self.inside, self.outside = proto, inside, outside
        self.pattern, self.input = pattern, input_
        self.foutput, self.routput, self.keeps_dst = foutput, routput, keeps_dst
        self.sessions = {}
        self.packets = self.bytes = 0
        self.created = created


class _Session:
    """One (mapping, remote endpoint) pair.  ``remote`` is the destination the inside
    host used; ``rdst`` what it was rewritten to (equal unless the pattern rewrites the
    destination).  ``tmo`` is the idle timeout that applies in the current state."""

    __slots__ = ("mapping", "remote", "rdst", "foutput", "routput", "state", "tmo", "used",
                 "fkey", "rkey")

    def __init__(self, mapping, remote, rdst, foutput, routput, state, used):
        self.mapping, self.remote, self.rdst = mapping, remote, rdst
        self.foutput, self.routput, self.state, self.used = foutput, routput, state, used
        self.tmo = 0.0
        self.fkey = self.rkey = None


def _flow(proto, saddr, sport, daddr, dport, request):
    """The 12-byte flow key of a packet, in header order.  ICMP echo: type, a zero byte
    and the query id, which is the source 'port' of requests and the destination 'port'
    of replies."""
    if proto == ICMP:
        if request:
            return saddr + daddr + b"\x08\x00" + _U16.pack(sport)
        return saddr + daddr + b"\x00\x00" + _U16.pack(dport)
    return saddr + daddr + _PORTS.pack(sport, dport)


def _entry(proto, key, new, out, session, forward):
    """The table value for flow ``key`` rewritten to ``new``; field order is the unpack
    order of the packet path."""
    ipd = _delta(key[:8], new[:8])
    l4d = _delta(key[8:], new[8:])
    if proto != ICMP:                      # TCP/UDP checksums cover the addresses too
        l4d = csum_add(ipd, l4d)
    coff, minlen = _L4[proto]
    return (new, ipd, l4d, coff, 20 + minlen, out, session, proto, new[4:8], forward)


def _endpoint(addr, port):
    return "%s:%d" % (ip_str(addr), port)


class _Memo(dict):
    """A memoised conversion: a table repeats few distinct addresses, and converting
    each of them every time would dominate export and import."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def __missing__(self, key):
        value = self[key] = self.fn(key)
        return value


# -- the rewriter ------------------------------------------------------------------------------

class IPRewriter(Element):
    """IPRewriter(INPUTSPEC1, ..., INPUTSPECn [, KEYWORDS])

    Network address and port translator (NAPT) for TCP, UDP and ICMP echo.  Each
    packet is first looked up in the table, in either direction: a hit on a forward
    flow is rewritten and sent to that session's FOUTPUT, a hit on a reverse flow
    (a reply) is rewritten back and sent to its ROUTPUT.  A miss is handled by the
    INPUTSPEC of the input it arrived on: 'drop' (or 'discard'); 'pass OUTPUT' sends
    it unchanged; 'keep FOUTPUT ROUTPUT' installs a session that changes nothing;
    'pattern SADDR SPORT DADDR DPORT FOUTPUT ROUTPUT' rewrites by the pattern ('-'
    keeps a field; SPORT may be a range LOW-HIGH from which outside ports are chosen
    at random, RFC 6056, retrying on collision); 'PATNAME FOUTPUT ROUTPUT' (or
    'pattern PATNAME ...') uses a pattern declared by IPRewriterPatterns.

    Mapping is endpoint-independent (RFC 4787 REQ-1): the outside address and port
    depend only on the protocol and the inside address and port, and all the inside
    endpoint's sessions share them; an inside endpoint keeps the mapping of the
    first INPUTSPEC that created it.  With SPORT '-' the inside port is kept and a
    second inside host with the same port is refused; likewise a pattern that sends
    every flow to one fixed DADDR and DPORT gives an inside endpoint one session.
    FILTER decides which unknown remotes may send in through a mapping (only for
    patterns that keep the destination): 'endpoint' any, 'address' those at an
    address the inside endpoint has sent to, 'address-port' (default) only the
    exact remotes it sent to.  For ICMP echo the query id plays the port (RFC 5508)
    and DPORT is ignored.

    Checksums are updated incrementally (RFC 1624); a UDP checksum of 0 (none)
    stays 0.  Packets start at the IP header annotation (else at the data start).
    Sessions expire after TCP_TIMEOUT (established TCP), TCP_DONE_TIMEOUT (TCP that
    saw FIN both ways or RST, or only a SYN), UDP_TIMEOUT or ICMP_TIMEOUT idle
    seconds; a mapping goes with its last session.  When CAPACITY mappings exist, or
    no outside port is free, new flows are dropped and counted in mapping_failures.
    The first fragment's translation is remembered for FRAG_TIMEOUT (30 s) so later
    fragments get their addresses rewritten.  Malformed packets, and packets the
    element cannot rewrite (other protocols, ICMP other than echo, truncated
    transport headers, later fragments of unknown datagrams) are dropped and counted
    in bad_packets, except that a 'pass' input passes the latter unchanged, as in
    Click.  ICMP error messages are not translated (they count as bad packets).

    State (version 1): export_state/import_state carry every mapping and session
    with outside ports, remotes, TCP states and idle ages.  take_state does nothing
    for the table, as in stock Click since its 2010 rewriter rewrite: a hot-swap
    starts empty; upgrades carry the table through adopt_state (by reference when
    the specs and timeouts are unchanged) or export/import.  With a persistent
    store attached, created, changed (TCP state) and removed mappings and sessions
    are journaled, and replay_events rebuilds the table from a snapshot and them.
    """

    PORTS = "1-/1-"
    STATE_VERSION = 1
    MIGRATIONS = {}
    PROTOCOLS = (TCP, UDP, ICMP)
    COUNT_TRAFFIC = False       # per-mapping packet and byte counters (a subclass sets it)

    ARGS = (
        Arg("INPUTSPEC", rest=True,
            doc="one per input: drop, pass OUTPUT, keep FOUTPUT ROUTPUT, "
                "pattern SADDR SPORT DADDR DPORT FOUTPUT ROUTPUT, or PATNAME FOUTPUT ROUTPUT"),
        Arg("FILTER", "word", "address-port",
            doc="inbound filtering: endpoint, address or address-port (RFC 4787)"),
        Arg("TCP_TIMEOUT", "seconds", 7440.0,
            doc="idle timeout of established TCP sessions (RFC 5382 REQ-5: >= 2h4m)"),
        Arg("TCP_DONE_TIMEOUT", "seconds", 240.0,
            doc="idle timeout of TCP sessions after FIN both ways or RST, or SYN only"),
        Arg("UDP_TIMEOUT", "seconds", 300.0, doc="idle timeout of UDP sessions (RFC 4787 REQ-5)"),
        Arg("ICMP_TIMEOUT", "seconds", 60.0, doc="idle timeout of ICMP echo sessions (RFC 5508)"),
        Arg("CAPACITY", "uint", 65536, doc="maximum number of mappings"),
        Arg("MAPPING_CAPACITY", "uint", None, doc="Click's name for CAPACITY (overrides it)"),
        Arg("DST_ANNO", "bool", True,
            doc="set the destination IP annotation to the rewritten destination"),
    )

    FILTERS = ("endpoint", "address", "address-port")

    # -- configuration ------------------------------------------------------------------
    def configure(self):
        if self.filter not in self.FILTERS:
            raise ValueError("FILTER must be one of %s, got %r"
                             % (", ".join(self.FILTERS), self.filter))
        if self.mapping_capacity is not None:
            self.capacity = self.mapping_capacity
        if not self.inputspec:
            raise ValueError("expected at least one INPUTSPEC (%s)" % _SPEC_FORMS)
        named = _patterns_of(self.router)
        self._specs = []
        for i, text in enumerate(self.inputspec):
            try:
                self._specs.append(parse_input_spec(text, self.addresses, named))
            except ValueError as e:
                raise ValueError("INPUTSPEC %d: %s" % (i, e)) from None
        self._nout = 1 + max((o for s in self._specs for o in s.outputs), default=0)
        self._timeouts = {UDP: self.udp_timeout, ICMP: self.icmp_timeout}
        done, est = self.tcp_done_timeout, self.tcp_timeout
        self._tcp_timeouts = (done, est, est, est, done)      # indexed by TCP state
        self._rng = random.SystemRandom()   # RFC 6056: outside ports must be unpredictable
        self.mapping_failures = self.bad_packets = 0
        self._new_tables()

    def port_count(self):
        return "%d/%d" % (len(self._specs), self._nout)

    def initialize(self):
        if self.router is not None:
            self.router.add_timer(1.0, self.expire)

    def _new_tables(self):
        self._tables = {proto: {} for proto in self.PROTOCOLS}   # flow key -> entry
        # the fast path serves TCP and UDP only; ICMP keys are not where ports are
        self._hot = {p: t for p, t in self._tables.items() if p != ICMP}
        self._mappings = {}          # (proto, inside addr, inside port) -> _Mapping
        self._outside = {}           # (proto, outside addr, outside port) -> _Mapping
        self._fragments = {}         # (proto, addresses, IP id) -> (new addrs, delta, out, dst, t)

    # -- packet path --------------------------------------------------------------------
    def push(self, port, batch):
        now = self.clock()
        outs = [[] for _ in range(self._nout)]
        hot = self._hot
        general = self._general
        unpack_hdr = _HDR5.unpack_from
        pack_sum_flow = _SUM_FLOW.pack_into
        unpack16 = _U16.unpack_from
        pack16 = _U16.pack_into
        dst_anno = self.dst_anno
        count = self.COUNT_TRAFFIC
        for p in batch:
            buf = p.buf
            nh = p.nh
            if nh < 0:
                nh = p.off
            try:
                vihl, tot, frag, proto, ipsum, key = unpack_hdr(buf, nh)
            except _struct_error:                       # shorter than 24 bytes
                general(p, nh, port, now, outs)
                continue
            table = hot.get(proto)
            if vihl != 0x45 or frag & 0x3FFF or table is None or tot > len(buf) - nh:
                general(p, nh, port, now, outs)
                continue
            e = table.get(key)
            if e is None:
                general(p, nh, port, now, outs)
                continue
            new, ipd, l4d, coff, mint, out, s, kind, dst, fwd = e
            if tot < mint:
                general(p, nh, port, now, outs)
                continue
            s.used = now
            if count:
                m = s.mapping
                m.packets += 1
                m.bytes += tot
            # _adjust inlined: a function call would cost as much as the rest
            x = (ipsum ^ 0xFFFF) + ipd
            pack_sum_flow(buf, nh + 10, ((x & 0xFFFF) + (x >> 16)) ^ 0xFFFF, new)
            co = nh + 20 + coff
            c = unpack16(buf, co)[0]
            if c or kind == TCP:                       # UDP's 0 means no checksum
                x = (c ^ 0xFFFF) + l4d
                c = ((x & 0xFFFF) + (x >> 16)) ^ 0xFFFF
                pack16(buf, co, c if c or kind == TCP else 0xFFFF)
            if kind == TCP:
                fl = buf[nh + 33]
                if fl & 0x07:                          # SYN, FIN or RST: state may change
                    self._tcp_event(s, fwd, fl)
            if dst_anno:
                p.dst_ip = dst
            outs[out].append(p)
        for i, lst in enumerate(outs):
            if lst:
                self.output(i)(lst)

    def _general(self, p, nh, port, now, outs):
        """The slow path: IP options, fragments, ICMP, table misses, bad packets."""
        buf = p.buf
        spec = self._specs[port]
        hdr = _parse_ip(buf, nh)
        if hdr is None:
            self.bad_packets += 1
            return
        ihl, tot, ipid, frag, proto = hdr
        if frag & 0x1FFF:
            self._later_fragment(p, nh, proto, ipid, spec, now, outs)
            return
        t = nh + ihl
        key = self._flow_key(buf, nh, t, tot - ihl, proto)
        if key is None:
            self._cannot_rewrite(p, spec, outs)
            return
        flags = buf[t + 13] if proto == TCP else 0
        e = self._tables[proto].get(key)
        if e is None:
            e = self._inbound(proto, key, flags, now)
            if e is None:
                e = self._miss(p, proto, key, flags, spec, now, outs)
                if e is None:
                    return
        s = e[6]
        s.used = now
        if self.COUNT_TRAFFIC:
            m = s.mapping
            m.packets += 1
            m.bytes += tot
        if frag & 0x2000:
            self._remember_fragment(proto, bytes(buf[nh + 12:nh + 20]), ipid, e, now)
        _rewrite(buf, nh, t, e)
        if flags & 0x07:
            self._tcp_event(s, e[9], flags)
        if self.dst_anno:
            p.dst_ip = e[8]
        outs[e[5]].append(p)

    def _flow_key(self, buf, nh, t, l4len, proto):
        """The packet's flow key, or None if this element cannot rewrite it."""
        if proto not in self._tables or l4len < _L4[proto][1]:
            return None
        if proto != ICMP:
            return bytes(buf[nh + 12:nh + 20]) + bytes(buf[t:t + 4])
        icmp_type = buf[t]
        if icmp_type not in (ICMP_ECHO, ICMP_ECHO_REPLY):
            return None
        return bytes(buf[nh + 12:nh + 20]) + bytes((icmp_type, 0)) + bytes(buf[t + 4:t + 6])

    def _cannot_rewrite(self, p, spec, outs):
        if spec.kind == PASS:
            outs[spec.foutput].append(p)
        else:
            self.bad_packets += 1

    def _miss(self, p, proto, key, flags, spec, now, outs):
        """Apply the input spec to a packet of no known session; return the new
        session's forward entry, or None when the packet was passed or dropped."""
        if spec.kind == PASS:
            outs[spec.foutput].append(p)
            return None
        if spec.kind == DROP or (proto == ICMP and key[8] != ICMP_ECHO):
            return None         # replies never create mappings
        e = self._new_flow(proto, key, spec, flags, now)
        if e is None:
            self.mapping_failures += 1
        return e

    # -- table maintenance ----------------------------------------------------------------
    def _new_flow(self, proto, key, spec, flags, now):
        in_addr, r_addr = key[:4], key[4:8]
        if proto == ICMP:
            in_port, r_port = _U16.unpack_from(key, 10)[0], 0
        else:
            in_port, r_port = _PORTS.unpack_from(key, 8)
        m = self._mappings.get((proto, in_addr, in_port))
        fresh = m is None
        if fresh:
            m = self._new_mapping(proto, in_addr, in_port, spec, now)
            if m is None:
                return None
        pat = spec.pattern
        rdst = (pat.daddr or r_addr,
                r_port if pat.dport is None or proto == ICMP else pat.dport)
        s = self._add_session(m, (r_addr, r_port), rdst, spec.foutput, spec.routput,
                              _initial_state(proto, flags), now)
        if s is None:
            if fresh:
                self._remove_mapping(m)
            return None
        if self._journal is not None:
            if fresh:
                self._journal_mapping("created", m, now)
            else:
                self._journal_session("created", s, now)
        return self._tables[proto][s.fkey]

    def _new_mapping(self, proto, in_addr, in_port, spec, now):
        if len(self._mappings) >= self.capacity:
            return None
        outside = self._allocate(spec.pattern, proto, in_addr, in_port)
        if outside is None:
            return None
        m = _Mapping(proto, (in_addr, in_port), outside, spec.pattern, self._specs.index(spec),
                     spec.foutput, spec.routput, spec.pattern.keeps_destination, now)
        self._register_mapping(m)
        spec.pattern.taken.add((proto,) + outside)
        return m

    def _register_mapping(self, m):
        self._mappings[(m.proto,) + m.inside] = m
        self._outside[(m.proto,) + m.outside] = m

    def _allocate(self, pat, proto, in_addr, in_port):
        """An outside (address, port) for a new mapping, or None if none is free.
        RFC 6056: a few random draws, then (Algorithm 1) a scan from a random start."""
        addr = pat.saddr or in_addr
        taken, used = pat.taken, self._outside

        def free(port):
            k = (proto, addr, port)
            return k not in used and k not in taken

        if pat.sport is None:
            return (addr, in_port) if free(in_port) else None
        lo, hi = pat.sport
        n = hi - lo + 1
        draw = self._rng.randrange
        for _ in range(min(n, 16)):
            port = lo + draw(n)
            if free(port):
                return addr, port
        start = draw(n)
        for i in range(n):
            port = lo + (start + i) % n
            if free(port):
                return addr, port
        return None

    def _add_session(self, m, remote, rdst, foutput, routput, state, used):
        """Create and install a session; None if its flows would collide with others."""
        proto = m.proto
        (ia, ip_), (oa, op) = m.inside, m.outside
        (ra, rp), (da, dp) = remote, rdst
        fkey = _flow(proto, ia, ip_, ra, rp, True)
        rkey = _flow(proto, da, dp, oa, op, False)
        table = self._tables[proto]
        if remote in m.sessions or fkey in table or rkey in table or fkey == rkey:
            return None
        s = _Session(m, remote, rdst, foutput, routput, state, used)
        s.tmo = self._tcp_timeouts[state] if proto == TCP else self._timeouts[proto]
        s.fkey, s.rkey = fkey, rkey
        table[fkey] = _entry(proto, fkey, _flow(proto, oa, op, da, dp, True), foutput, s, True)
        table[rkey] = _entry(proto, rkey, _flow(proto, ra, rp, ia, ip_, False), routput, s,
                             False)
        m.sessions[remote] = s
        return s

    def _inbound(self, proto, key, flags, now):
        """Endpoint-independent filtering: a packet from an unknown remote to a live
        mapping's outside endpoint gets a session if FILTER allows it."""
        if self.filter == "address-port":
            return None
        r_addr, o_addr = key[:4], key[4:8]
        if proto == ICMP:
            if key[8] != ICMP_ECHO_REPLY:
                return None
            r_port, o_port = 0, _U16.unpack_from(key, 10)[0]
        else:
            r_port, o_port = _PORTS.unpack_from(key, 8)
        m = self._outside.get((proto, o_addr, o_port))
        if m is None or not m.keeps_dst:
            return None
        if self.filter == "address" and not any(
                s.rdst[0] == r_addr for s in m.sessions.values()):
            return None
        remote = (r_addr, r_port)
        s = self._add_session(m, remote, remote, m.foutput, m.routput,
                              _initial_state(proto, flags), now)
        if s is None:
            return None
        if self._journal is not None:
            self._journal_session("created", s, now)
        return self._tables[proto][s.rkey]

    def _tcp_event(self, s, forward, flags):
        """Follow SYN, FIN and RST to pick the session's timeout (RFC 5382)."""
        st = s.state
        if flags & TH_RST:
            st = CLOSED
        else:
            if flags & TH_SYN:
                if st == SYN_SENT and flags & TH_ACK:
                    st = ESTABLISHED
                elif st == CLOSED and not flags & TH_ACK:
                    st = SYN_SENT            # the 5-tuple is reused by a new connection
            if flags & TH_FIN:
                if st in (SYN_SENT, ESTABLISHED):
                    st = FIN_OUT if forward else FIN_IN
                elif st == (FIN_IN if forward else FIN_OUT):
                    st = CLOSED
        if st != s.state:
            s.state = st
            s.tmo = self._tcp_timeouts[st]
            if self._journal is not None:
                self._journal_session("updated", s, s.used)

    def _remember_fragment(self, proto, addrs, ipid, e, now):
        if len(self._fragments) < FRAG_CAPACITY:
            new, ipd, out, dst = e[0][:8], e[1], e[5], e[8]
            self._fragments[(proto, addrs, ipid)] = (new, ipd, out, dst, now)

    def _later_fragment(self, p, nh, proto, ipid, spec, now, outs):
        buf = p.buf
        rec = self._fragments.get((proto, bytes(buf[nh + 12:nh + 20]), ipid))
        if rec is None:
            self._cannot_rewrite(p, spec, outs)
            return
        new, ipd, out, dst, _ = rec
        _U16.pack_into(buf, nh + 10, _adjust(_U16.unpack_from(buf, nh + 10)[0], ipd))
        buf[nh + 12:nh + 20] = new
        if self.dst_anno:
            p.dst_ip = dst
        outs[out].append(p)

    def _remove_session(self, s):
        m = s.mapping
        table = self._tables[m.proto]
        table.pop(s.fkey, None)
        table.pop(s.rkey, None)
        del m.sessions[s.remote]

    def _unregister_mapping(self, m):
        for s in list(m.sessions.values()):
            self._remove_session(s)
        del self._mappings[(m.proto,) + m.inside]
        del self._outside[(m.proto,) + m.outside]

    def _remove_mapping(self, m):
        self._unregister_mapping(m)
        if m.pattern is not None:
            m.pattern.taken.discard((m.proto,) + m.outside)

    def expire(self):
        """Remove sessions idle past their timeout and mappings left without sessions;
        forget old fragment translations.  Returns the number of sessions removed.
        A replication standby (nf.state.replica) expires nothing: its copies look
        idle, the traffic being on the active, whose removals it replays."""
        if getattr(self.router, "replication_role", None) == "standby":
            return 0
        now = self.clock()
        removed = 0
        journal = self._journal is not None
        for m in list(self._mappings.values()):
            dead = [s for s in m.sessions.values() if now - s.used > s.tmo]
            removed += len(dead)
            if len(dead) == len(m.sessions):      # the mapping goes with its last session
                self._remove_mapping(m)
                if journal:
                    self.journal("removed", _mapping_key(m))
                continue
            for s in dead:
                self._remove_session(s)
                if journal:
                    self.journal("removed", _session_key(s))
        frags = self._fragments
        for k in [k for k, rec in frags.items() if now - rec[4] > FRAG_TIMEOUT]:
            del frags[k]
        return removed

    def clear(self):
        """Forget every mapping and session."""
        journal = self._journal is not None
        for m in list(self._mappings.values()):
            self._remove_mapping(m)
            if journal:
                self.journal("removed", _mapping_key(m))
        self._new_tables()

    def nsessions(self):
        return sum(len(m.sessions) for m in self._mappings.values())

    def restart_idle(self):
        """Count every session as used now: a standby promoted to active restarts
        the idle times of its copies.  Returns the number of sessions."""
        now = self.clock()
        n = 0
        for m in self._mappings.values():
            for s in m.sessions.values():
                s.used = now
                n += 1
        return n

    # -- state ----------------------------------------------------------------------------
    def export_state(self):
        now = self.clock()
        names = _Memo(ip_str)
        with gc_paused():
            mappings = [self._mapping_data(m, now, names) for m in self._mappings.values()]
        return {"mappings": mappings,
                "mapping_failures": self.mapping_failures, "bad_packets": self.bad_packets}

    def import_state(self, data, version):
        """Replace the table with exported data (migrated to STATE_VERSION first).
        Outside ports are kept; idle ages continue from the export.  Mappings beyond
        CAPACITY are imported too: existing connections matter more than the limit."""
        data = self.migrate_state(data, version)
        now = self.clock()
        saved = (self._tables, self._hot, self._mappings, self._outside, self._fragments)
        old = list(self._mappings.values())
        self._new_tables()
        try:
            if not isinstance(data, dict) or not isinstance(data.get("mappings"), list):
                raise ValueError("expected a dict with a 'mappings' list")
            addrs = _Memo(parse_ip)
            with gc_paused():
                for i, md in enumerate(data["mappings"]):
                    try:
                        self._import_mapping(md, now, addrs)
                    except (KeyError, TypeError, ValueError, IndexError) as e:
                        raise ValueError("mapping %d: %s" % (i, e)) from None
        except ValueError:
            (self._tables, self._hot, self._mappings, self._outside,
             self._fragments) = saved
            raise
        for m in old:                       # release the replaced table's pattern ports
            if m.pattern is not None:
                m.pattern.taken.discard((m.proto,) + m.outside)
        for m in self._mappings.values():
            if m.pattern is not None:
                m.pattern.taken.add((m.proto,) + m.outside)
        self.mapping_failures = int(data.get("mapping_failures", self.mapping_failures))
        self.bad_packets = int(data.get("bad_packets", self.bad_packets))

    def _mapping_data(self, m, now, names):
        """Mapping ``m`` in export form (``names`` converts addresses to text); a later
        state version extends it."""
        return _export_mapping(m, now, names)

    def _import_mapping(self, md, now, addrs):
        """Install the mapping ``md`` (export form) with its sessions and return it;
        on error nothing of it stays installed.  Its pattern port is not claimed."""
        proto = PROTO_NUMBERS.get(md["proto"])
        if proto not in self._tables:
            raise ValueError("protocol %r is not handled by %s"
                             % (md["proto"], self.__class__.__name__))
        inside = _import_endpoint(md["inside"], addrs)
        outside = _import_endpoint(md["outside"], addrs)
        if (proto,) + inside in self._mappings or (proto,) + outside in self._outside:
            raise ValueError("duplicate mapping %s" % _endpoint(*inside))
        input_ = md.get("input")
        spec = self._specs[input_] if isinstance(input_, int) and 0 <= input_ < len(
            self._specs) else None
        pattern = spec.pattern if spec is not None and spec.kind == MAP else None
        m = _Mapping(proto, inside, outside, pattern, input_,
                     self._import_output(md["foutput"]), self._import_output(md["routput"]),
                     bool(md.get("keeps_dst", True)))
        self._register_mapping(m)
        try:
            for sd in md["sessions"]:
                self._import_session(m, sd, now, addrs)
        except BaseException:
            self._unregister_mapping(m)
            raise
        # state version 1 keeps no creation time: the oldest last use is the best bound
        m.created = min((s.used for s in m.sessions.values()), default=now)
        return m

    def _import_session(self, m, sd, now, addrs):
        proto = m.proto
        state = None
        if proto == TCP:
            if sd.get("state") not in TCP_STATES:
                raise ValueError("unknown TCP state %r (expected one of %s)"
                                 % (sd.get("state"), ", ".join(TCP_STATES)))
            state = TCP_STATES.index(sd["state"])
        idle = float(sd["idle"])
        if idle < 0:
            raise ValueError("negative idle time %r" % idle)
        remote = _import_endpoint(sd["remote"], addrs)
        s = self._add_session(m, remote, _import_endpoint(sd["rewritten"], addrs),
                              self._import_output(sd["foutput"]),
                              self._import_output(sd["routput"]), state, now - idle)
        if s is None:
            raise ValueError("session to %s collides with another" % _endpoint(*remote))
        return s

    def _import_output(self, n):
        if not isinstance(n, int) or not 0 <= n < self._nout:
            raise ValueError("output %r out of range (this element has %d outputs)"
                             % (n, self._nout))
        return n

    def _mapping_text(self, m, now):
        """Mapping ``m`` as one line of the mappings handler."""
        return _mapping_line(m, now)

    # -- journal and replay (the persistent store's recovery) -----------------------------
    def _journal_mapping(self, kind, m, now):
        self.journal(kind, _mapping_key(m), self._mapping_data(m, now, _Memo(ip_str)))

    def _journal_session(self, kind, s, now):
        self.journal(kind, _session_key(s), _export_session(s, s.mapping.proto, now,
                                                            _Memo(ip_str)))

    @classmethod
    def migrate_events(cls, events, version):
        """Lift events journaled at state ``version``: each mapping entry goes through
        MIGRATIONS as a one-mapping state; session entries are kept as they are (a
        migration must keep the session layout).  Raises ValueError like
        migrate_state."""
        if version == cls.STATE_VERSION:
            return list(events)
        out = []
        for i, (kind, key, value) in enumerate(events):
            if kind != "removed" and isinstance(key, (list, tuple)) and len(key) == 3:
                try:
                    value = cls.migrate_state({"mappings": [value]}, version)["mappings"][0]
                except ValueError as e:
                    raise ValueError("journal event %d: %s" % (i, e)) from None
            out.append((kind, key, value))
        return out

    def replay_events(self, events):
        """Apply journaled ``(kind, key, value)`` events in order, on top of the state
        just imported from the snapshot they follow (events of an older state
        version go through migrate_events first).  A created mapping replaces one
        of the same inside endpoint; a created or updated session replaces its
        earlier self; removals of entries already gone, and session events of a
        mapping that is gone, change nothing.  Replayed entries count as used now.
        Returns the number of events that changed the table; raises ValueError
        naming the first malformed event (the events before it stay applied)."""
        now = self.clock()
        addrs = _Memo(parse_ip)
        applied = 0
        with gc_paused():
            for i, event in enumerate(events):
                try:
                    applied += self._replay(event, now, addrs)
                except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
                    raise ValueError("journal event %d: %s" % (i, e)) from None
        return applied

    def _replay(self, event, now, addrs):
        kind, key, value = event
        if kind not in ("created", "updated", "removed"):
            raise ValueError("unknown event kind %r (expected created, updated or removed)"
                             % (kind,))
        if not isinstance(key, (list, tuple)) or len(key) not in (3, 5):
            raise ValueError("expected key [proto, inside address, inside port] or [proto, "
                             "inside address, inside port, remote address, remote port], "
                             "got %r" % (key,))
        proto = PROTO_NUMBERS.get(key[0])
        if proto not in self._tables:
            raise ValueError("protocol %r is not handled by %s"
                             % (key[0], self.__class__.__name__))
        inside = _import_endpoint(key[1:3], addrs)
        if kind != "removed":
            _check_entry(value, key, addrs)
        m = self._mappings.get((proto,) + inside)
        if len(key) == 3:
            return self._replay_mapping(kind, value, m, now, addrs)
        if m is None:
            return False
        s = m.sessions.get(_import_endpoint(key[3:5], addrs))
        if s is not None:
            self._remove_session(s)
        if kind != "removed":
            self._import_session(m, value, now, addrs)
        elif not m.sessions:                    # as expire() does: the mapping goes too
            self._remove_mapping(m)
        return kind != "removed" or s is not None

    def _replay_mapping(self, kind, value, old, now, addrs):
        if old is not None:
            self._remove_mapping(old)
        if kind == "removed":
            return old is not None
        m = self._import_mapping(value, now, addrs)
        if m.pattern is not None:
            m.pattern.taken.add((m.proto,) + m.outside)
        return True

    def adopt_state(self, old):
        """The in-place upgrade's hand-over.  When ``old`` keeps the same state version
        and everything that shaped its table is unchanged -- protocols, input specs
        (inline patterns only), timeouts -- the table moves by reference, in constant
        time, with the specs its mappings point to; otherwise it is copied through
        export_state/import_state (migrating it).  Returns the mappings carried."""
        if not self._same_table_shape(old):
            return super().adopt_state(old)
        self._specs = old._specs
        (self._tables, self._hot, self._mappings, self._outside, self._fragments) = (
            old._tables, old._hot, old._mappings, old._outside, old._fragments)
        self.mapping_failures, self.bad_packets = old.mapping_failures, old.bad_packets
        return len(self._mappings)

    def _same_table_shape(self, old):
        if not isinstance(old, IPRewriter) or old.STATE_VERSION != self.STATE_VERSION:
            return False
        if any(sp.pattern is not None and sp.pattern.name for sp in self._specs + old._specs):
            return False        # named patterns are shared: their port sets must not split
        return (old.PROTOCOLS == self.PROTOCOLS
                and [sp.text for sp in old._specs] == [sp.text for sp in self._specs]
                and old._timeouts == self._timeouts
                and old._tcp_timeouts == self._tcp_timeouts)

    def take_state(self, old):
        """Keep nothing: stock Click's rewriters (since 2010) start a hot-swap with an
        empty table.  In-service upgrades carry the table by adopt_state."""

    # -- handlers -------------------------------------------------------------------------
    @read_handler("table_size", "number of mappings")
    def _h_table_size(self):
        return str(len(self._mappings))

    @read_handler("sessions", "number of sessions (mapping and remote endpoint pairs)")
    def _h_sessions(self):
        return str(self.nsessions())

    @read_handler("mappings", "one line per mapping: protocol, inside -> outside endpoint, "
                  "idle seconds, and each session's remote endpoint and state")
    def _h_mappings(self):
        now = self.clock()
        lines = [self._mapping_text(m, now) for m in
                 sorted(self._mappings.values(), key=lambda m: (m.proto, m.inside))]
        return "\n".join(lines)

    @read_handler("mapping_failures", "new flows refused: table full, no free port, collision")
    def _h_mapping_failures(self):
        return str(self.mapping_failures)

    @read_handler("bad_packets", "packets dropped as malformed, truncated or not rewritable")
    def _h_bad_packets(self):
        return str(self.bad_packets)

    @read_handler("capacity", "maximum number of mappings")
    def _h_capacity(self):
        return str(self.capacity)

    @write_handler("capacity", "set the maximum number of mappings (existing ones stay)")
    def _w_capacity(self, value):
        self.capacity = parse_value("uint", value.strip())

    @read_handler("patterns", "each input's INPUTSPEC, one per line")
    def _h_patterns(self):
        lines = []
        for i, s in enumerate(self._specs):
            if s.kind == MAP:
                name = " (%s)" % s.pattern.name if s.pattern.name else ""
                lines.append("%d: pattern %s %d %d%s" % (i, s.pattern.text(), s.foutput,
                                                         s.routput, name))
            elif s.kind == PASS:
                lines.append("%d: pass %d" % (i, s.foutput))
            else:
                lines.append("%d: drop" % i)
        return "\n".join(lines)

    @write_handler("clear", "remove every mapping and session")
    def _w_clear(self, value):
        self.clear()


def _parse_ip(buf, nh):
    """(header length, total length, id, fragment field, protocol), or None if the
    IPv4 header is malformed or the packet shorter than its total length."""
    avail = len(buf) - nh
    if avail < 20:
        return None
    vihl, tot, ipid, frag, proto = _IPHDR.unpack_from(buf, nh)
    ihl = (vihl & 15) * 4
    if vihl >> 4 != 4 or ihl < 20 or tot < ihl or tot > avail:
        return None
    return ihl, tot, ipid, frag, proto


def _rewrite(buf, nh, t, e):
    """Apply entry ``e`` to the packet (any header length)."""
    new, ipd, l4d, coff, kind = e[0], e[1], e[2], e[3], e[7]
    _U16.pack_into(buf, nh + 10, _adjust(_U16.unpack_from(buf, nh + 10)[0], ipd))
    buf[nh + 12:nh + 20] = new[:8]
    if kind == ICMP:
        buf[t + 4:t + 6] = new[10:]
    else:
        buf[t:t + 4] = new[8:]
    co = t + coff
    c = _U16.unpack_from(buf, co)[0]
    if c or kind != UDP:
        c = _adjust(c, l4d)
        _U16.pack_into(buf, co, c if c or kind != UDP else 0xFFFF)


def _initial_state(proto, flags):
    if proto != TCP:
        return None
    return SYN_SENT if flags & (TH_SYN | TH_ACK) == TH_SYN else ESTABLISHED


def _state_name(proto, state):
    return TCP_STATES[state] if proto == TCP else None


def _export_session(s, proto, now, name):
    return {"remote": [name[s.remote[0]], s.remote[1]],
            "rewritten": [name[s.rdst[0]], s.rdst[1]],
            "foutput": s.foutput, "routput": s.routput,
            "state": _state_name(proto, s.state),
            "idle": round(max(0.0, now - s.used), 6)}


def _export_mapping(m, now, name):
    return {
        "proto": PROTO_NAMES[m.proto],
        "inside": [name[m.inside[0]], m.inside[1]],
        "outside": [name[m.outside[0]], m.outside[1]],
        "input": m.input, "foutput": m.foutput, "routput": m.routput,
        "keeps_dst": m.keeps_dst,
        "sessions": [_export_session(s, m.proto, now, name) for s in m.sessions.values()],
    }


def _check_entry(value, key, addrs):
    """A journaled value must describe the entry its key names."""
    if not isinstance(value, dict):
        raise ValueError("expected the entry as a dict, got %r" % (value,))
    if len(key) == 3:
        same = value["proto"] == key[0] and _import_endpoint(
            value["inside"], addrs) == _import_endpoint(key[1:3], addrs)
    else:
        same = _import_endpoint(value["remote"], addrs) == _import_endpoint(key[3:5], addrs)
    if not same:
        raise ValueError("the entry does not match its key %r" % (list(key),))


def _mapping_key(m):
    """A mapping's journal key: [protocol, inside address, inside port]."""
    return [PROTO_NAMES[m.proto], ip_str(m.inside[0]), m.inside[1]]


def _session_key(s):
    """A session's journal key: its mapping's key, remote address, remote port."""
    return _mapping_key(s.mapping) + [ip_str(s.remote[0]), s.remote[1]]


def _import_endpoint(pair, addrs):
    addr, port = pair
    if not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError("bad port %r" % (port,))
    if not isinstance(addr, str):
        raise ValueError("bad address %r" % (addr,))
    return addrs[addr], port


def _mapping_line(m, now):
    idle = now - max((s.used for s in m.sessions.values()), default=now)
    remotes = []
    for s in m.sessions.values():
        r = _endpoint(*s.remote)
        if s.rdst != s.remote:
            r += " as " + _endpoint(*s.rdst)
        if m.proto == TCP:
            r += " " + TCP_STATES[s.state]
        remotes.append(r)
    return "%s %s -> %s idle %.0fs sessions %d: %s" % (
        PROTO_NAMES[m.proto], _endpoint(*m.inside), _endpoint(*m.outside), idle,
        len(remotes), ", ".join(remotes))


class TCPRewriter(IPRewriter):
    """TCPRewriter(INPUTSPEC1, ..., INPUTSPECn [, KEYWORDS])

    IPRewriter restricted to TCP, as in Click: other packets go to the output of a
    'pass' input unchanged, and are dropped (and counted in bad_packets) on any
    other input.  Click's sequence-number shifting (for FTPPortMapper) is not
    implemented.
    """

    PROTOCOLS = (TCP,)


class UDPRewriter(IPRewriter):
    """UDPRewriter(INPUTSPEC1, ..., INPUTSPECn [, KEYWORDS])

    IPRewriter without ICMP: as in Click, despite its name it rewrites both UDP and
    TCP ("in most uses, any given UDPRewriter will see packets of only one
    protocol").  Other packets go to the output of a 'pass' input unchanged, and
    are dropped (and counted in bad_packets) on any other input.
    """

    PROTOCOLS = (TCP, UDP)


class ICMPPingRewriter(IPRewriter):
    """ICMPPingRewriter(INPUTSPEC1, ..., INPUTSPECn [, KEYWORDS])

    IPRewriter restricted to ICMP echo (RFC 5508): the query id is rewritten like a
    source port (a SPORT range gives the outside ids) and echo replies are mapped
    back.  A pattern is an INPUTSPEC such as 'pattern 192.0.2.1 1024-65535 - - 0 1'.
    Other packets go to the output of a 'pass' input unchanged, and are dropped
    (and counted in bad_packets) on any other input.
    """

    PROTOCOLS = (ICMP,)


class IPRewriterPatterns(Element):
    """IPRewriterPatterns(NAME PATTERN, ...)

    Declares named rewrite patterns, each 'NAME SADDR SPORT DADDR DPORT', for
    rewriters' 'PATNAME FOUTPUT ROUTPUT' input specs.  Rewriters that share a
    pattern never hand out the same outside port.  It configures before the
    rewriters; names are kept per router (with no router, in one process-wide set
    used by unit tests).  A name declared again replaces the earlier pattern, so a
    new configuration loaded into the same router can redeclare it.
    """

    PORTS = "0/0"
    CONFIGURE_PHASE = 40        # after AddressInfo (0), before rewriters (50)
    ARGS = (Arg("PATTERN", rest=True, doc="NAME SADDR SPORT DADDR DPORT"),)

    def configure(self):
        if not self.pattern:
            raise ValueError("expected at least one 'NAME SADDR SPORT DADDR DPORT'")
        mine = {}
        for text in self.pattern:
            words = split_words(text)
            if len(words) != 5:
                raise ValueError("expected 'NAME SADDR SPORT DADDR DPORT', got %r" % text)
            name = words[0]
            if name in mine:
                raise ValueError("pattern %r declared twice" % name)
            mine[name] = Pattern(words[1:], self.addresses, name=name)
        self.patterns = mine
        _patterns_of(self.router).update(mine)

    @read_handler("patterns", "the declared patterns, one 'NAME SADDR SPORT DADDR DPORT' a line")
    def _h_patterns(self):
        return "\n".join("%s %s" % (n, p.text()) for n, p in self.patterns.items())

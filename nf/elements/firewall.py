"""A stateful firewall: inside-initiated sessions and their replies pass.

Design.  Every session is one ``_Session`` object filed in two dictionaries
per protocol: under the key its *inside* packets carry and under the key its
*outside* packets carry.  A key is 12 bytes, the packet's own source address,
destination address, source port and destination port in wire order (for an
IHL-5 header the contiguous bytes 12..24 of the IP header), so a packet finds
its session with one slice and one dict lookup in either direction, with no
normalisation on the packet path; the two keys are mirror images of each
other and both lead to the same direction-free session (state, last-seen
time, handshake sequence numbers).  ICMP echo uses the identifier in place
of both ports.

The packet path has one fast case, written inline in ``push``: an option-less
TCP segment with ACK and without SYN/FIN/RST that belongs to an ESTABLISHED
session is checked for truncation, refreshed and passed.  Everything else
(handshakes, teardown, UDP, ICMP, malformed input) goes through
``_classify``, which returns None to pass a packet or a drop reason.

Sessions are removed by ``expire()`` only (the router calls it every second),
never on the packet path, so a session can outlive its timeout by up to one
timer interval.

Journal (for the persistent store, nf.state): a session's creation, each
state change (``_enter``) and its removal (expiry, clear, import) are
journaled, keyed by ``[proto, inside ip, inside port, remote ip, remote
port]`` with the session's exported form as value.  These are all slow-path
events: the established fast path journals nothing.
"""

import struct

from ..args import parse_value
from ..element import Arg, Element, read_handler, write_handler
from ..netutil import ip_str, parse_ip

__all__ = ["StatefulFirewall"]

TCP, UDP, ICMP = 6, 17, 1
FIN, SYN, RST, ACK = 0x01, 0x02, 0x04, 0x10
M32 = 0xFFFFFFFF

# Session states.  TCP's are named from the inside host's point of view:
# FIN_WAIT = the inside closed first, CLOSE_WAIT = the outside closed first.
(SYN_SENT, SYN_RECV, ESTABLISHED, FIN_WAIT, CLOSE_WAIT, LAST_ACK, TIME_WAIT, CLOSED,
 UNREPLIED, REPLIED) = range(1, 11)
STATE_NAMES = {SYN_SENT: "SYN_SENT", SYN_RECV: "SYN_RECV", ESTABLISHED: "ESTABLISHED",
               FIN_WAIT: "FIN_WAIT", CLOSE_WAIT: "CLOSE_WAIT", LAST_ACK: "LAST_ACK",
               TIME_WAIT: "TIME_WAIT", CLOSED: "CLOSED", UNREPLIED: "UNREPLIED",
               REPLIED: "REPLIED"}
STATES_BY_NAME = {v: k for k, v in STATE_NAMES.items()}
PROTO_NAMES = {TCP: "tcp", UDP: "udp", ICMP: "icmp"}
PROTO_STATES = {TCP: frozenset(range(SYN_SENT, CLOSED + 1)),
                UDP: frozenset((UNREPLIED, REPLIED)), ICMP: frozenset((UNREPLIED, REPLIED))}

# Drop reasons, in the order the drop_reasons handler lists them.
REASONS = ("truncated", "malformed", "fragment", "unsolicited", "not-syn", "invalid-state",
           "protocol", "capacity")

ICMP_ECHO_REPLY, ICMP_ECHO = 0, 8
ICMP_ERRORS = frozenset((3, 11, 12))     # unreachable, time exceeded, parameter problem

OTHER_POLICIES = ("drop", "allow-outbound")

_key12 = struct.Struct("12s").unpack_from
_seq_ack = struct.Struct("!II").unpack_from


def _after(a, b):
    """True if sequence number ``a`` is at or after ``b`` (modulo 2**32, RFC 793)."""
    return ((a - b) & M32) < 0x80000000


def _mirror(key):
    """The key the other direction's packets of the same session carry."""
    return key[4:8] + key[0:4] + key[10:12] + key[8:10]


def _endpoint(addr, port):
    return "%s:%d" % (ip_str(addr), int.from_bytes(port, "big"))


class _Session:
    """One session: its keys, state, last-seen time and handshake numbers.

    ``isn`` is the inside's initial sequence number, ``risn`` the outside's,
    ``fin`` the sequence number just past the inside's FIN (what the outside
    must acknowledge to leave LAST_ACK); each is None while unknown.
    """

    __slots__ = ("proto", "ikey", "okey", "state", "last", "timeout", "isn", "risn", "fin")

    def __init__(self, proto, ikey, state, last, timeout):
        self.proto, self.ikey, self.okey = proto, ikey, _mirror(ikey)
        self.state, self.last, self.timeout = state, last, timeout
        self.isn = self.risn = self.fin = None


class StatefulFirewall(Element):
    """StatefulFirewall([KEYWORDS])

    Stateful firewall between an inside and an outside network.  Input 0
    takes IP packets from the inside, which leave on output 0; input 1 takes
    packets from the outside, which leave on output 1.  The IP header is at
    the packet's network-header annotation if set, else at its data start.
    Inside-initiated sessions and their replies pass; unsolicited outside
    packets are dropped, counted by reason, and emitted on output 2 if it is
    connected.

    TCP follows a per-connection state machine modelled on Linux conntrack
    and RFC 793: only an inside SYN opens a session (SYN_SENT); the outside's
    SYN-ACK must acknowledge it (SYN_RECV); the inside's ACK of the
    outside's SYN completes it (ESTABLISHED).  The first FIN leads to
    FIN_WAIT (inside closed first) or CLOSE_WAIT (outside closed first), the
    second FIN to TIME_WAIT or LAST_ACK; the outside's ACK of the inside's
    FIN turns LAST_ACK into CLOSED, and TIME_WAIT simply expires.  A RST
    from either side of a known session closes it; in SYN_SENT an outside
    RST must acknowledge the inside's SYN (RFC 793).  There is no
    window tracking beyond the handshake: the established path stays a
    dictionary lookup, and a blind attacker must still match the session's
    addresses and ports.  A CLOSED session lingers for TCP_CLOSED_TIMEOUT so
    that late segments pass; an inside SYN on any existing session starts it
    over (port reuse).  An outside SYN never opens or restarts anything, and
    simultaneous open is not supported.  With LOOSE true, an inside
    segment without SYN (and without RST) that has no session opens one as
    ESTABLISHED, which picks up connections after a restart once the inside
    host sends something; outside segments never do.

    UDP: an inside datagram opens a session that lets replies from the same
    remote address and port back in (UNREPLIED, then REPLIED with the longer
    timeout).  ICMP: an inside echo request opens a session keyed by inside
    address, remote address and identifier, and matching echo replies pass;
    outside unreachable, time-exceeded and parameter-problem errors pass
    when the packet they quote belongs to a session; inside ICMP of other
    types passes without state.  Other protocols: OTHER allow-outbound lets
    inside packets out without state and drops outside ones; OTHER drop
    drops both.  Non-first fragments carry no ports: inside ones pass,
    outside ones are dropped (put IPReassembler in front if needed).
    Truncated or malformed headers (including nonsensical TCP flag sets) are
    dropped; checksums are not checked (use CheckIPHeader).

    The default established timeout is RFC 5382's 7440 s (2 h 4 min) rather
    than conntrack's 5 days, to match the NAT it runs beside and to keep
    sessions of vanished hosts from filling the table.  Sessions are removed
    by ``expire()``, which the router runs every second.  When the table
    holds CAPACITY sessions, new ones are refused (drop reason capacity).

    State (version 1) is the session table with each session's state and
    idle age; ``import_state`` replaces the table, so an upgraded firewall
    keeps its established sessions.  With a persistent store attached,
    session creations, state changes and removals are journaled, and
    ``replay_events`` applies them on recovery.  ``take_state`` keeps
    nothing, as stock Click elements with connection state do: upgrades use
    export/import.
    """

    PORTS = "2/2-3"
    STATE_VERSION = 1
    ARGS = (
        Arg("LOOSE", "bool", False,
            doc="open ESTABLISHED sessions from inside non-SYN TCP segments (mid-stream pickup)"),
        Arg("OTHER", "word", "allow-outbound",
            doc="policy for protocols other than TCP, UDP and ICMP: drop or allow-outbound"),
        Arg("CAPACITY", "uint", 65536, doc="maximum number of sessions"),
        Arg("TCP_SYN_TIMEOUT", "seconds", 120.0, doc="idle timeout in SYN_SENT and SYN_RECV"),
        Arg("TCP_ESTABLISHED_TIMEOUT", "seconds", 7440.0,
            doc="idle timeout in ESTABLISHED (RFC 5382 REQ-5)"),
        Arg("TCP_CLOSE_TIMEOUT", "seconds", 120.0,
            doc="idle timeout in FIN_WAIT, CLOSE_WAIT, LAST_ACK and TIME_WAIT"),
        Arg("TCP_CLOSED_TIMEOUT", "seconds", 10.0,
            doc="how long a CLOSED (reset or fully closed) session lingers"),
        Arg("UDP_TIMEOUT", "seconds", 30.0, doc="idle timeout of a UDP session with no reply yet"),
        Arg("UDP_STREAM_TIMEOUT", "seconds", 180.0,
            doc="idle timeout of a UDP session that has seen a reply"),
        Arg("ICMP_TIMEOUT", "seconds", 30.0, doc="idle timeout of an ICMP echo session"),
    )

    # -- setup ------------------------------------------------------------------------
    def configure(self):
        if self.other not in OTHER_POLICIES:
            raise ValueError("keyword OTHER: expected %s, got %r"
                             % (" or ".join(OTHER_POLICIES), self.other))
        syn, close = self.tcp_syn_timeout, self.tcp_close_timeout
        self._timeouts = {
            SYN_SENT: syn, SYN_RECV: syn, ESTABLISHED: self.tcp_established_timeout,
            FIN_WAIT: close, CLOSE_WAIT: close, LAST_ACK: close, TIME_WAIT: close,
            CLOSED: self.tcp_closed_timeout, UNREPLIED: self.udp_timeout,
            REPLIED: self.udp_stream_timeout}
        self._icmp_timeouts = {UNREPLIED: self.icmp_timeout, REPLIED: self.icmp_timeout}
        # proto -> (sessions by inside key, the same sessions by outside key)
        self._index = {TCP: ({}, {}), UDP: ({}, {}), ICMP: ({}, {})}
        self._reasons = dict.fromkeys(REASONS, 0)

    def initialize(self):
        if self.router is not None:
            self.router.add_timer(1.0, self.expire)

    # -- packet path ------------------------------------------------------------------
    def push(self, port, batch):
        now = self.clock()
        inbound = port == 1
        get = self._index[TCP][1 if inbound else 0].get
        key12 = _key12
        classify = self._classify
        counts = self._reasons
        passed = []
        dropped = []
        for p in batch:
            buf = p.buf
            nh = p.nh
            if nh < 0:
                nh = p.off
            # Fast path: option-less TCP, ACK without SYN/FIN/RST, not a fragment,
            # untruncated, of an ESTABLISHED session.
            avail = len(buf) - nh
            if avail >= 40 and buf[nh] == 0x45 and buf[nh + 9] == 6:
                s = get(key12(buf, nh + 12)[0])
                # (buf[nh + 32] >> 2) & 0x3C is the TCP header length in bytes.
                if (s is not None and s.state == ESTABLISHED and buf[nh + 33] & 0x17 == 0x10
                        and not (buf[nh + 6] & 0x1F or buf[nh + 7])
                        and buf[nh + 32] >= 0x50
                        and 20 + ((buf[nh + 32] >> 2) & 0x3C)
                        <= (buf[nh + 2] << 8 | buf[nh + 3]) <= avail):
                    s.last = now
                    passed.append(p)
                    continue
            reason = classify(buf, nh, inbound, now)
            if reason is None:
                passed.append(p)
            else:
                counts[reason] += 1
                dropped.append(p)
        if passed:
            self._out[port](passed)
        if dropped:
            self.output(2)(dropped)

    def _classify(self, buf, nh, inbound, now):
        """None if the packet passes, else why it is dropped; updates sessions."""
        n = len(buf)
        if n - nh < 20:
            return "truncated"
        vhl = buf[nh]
        ihl = (vhl & 15) << 2
        if vhl >> 4 != 4 or ihl < 20:
            return "malformed"
        total = buf[nh + 2] << 8 | buf[nh + 3]
        if total < ihl:
            return "malformed"
        if nh + total > n:
            return "truncated"
        proto = buf[nh + 9]
        if (buf[nh + 6] & 0x1F) or buf[nh + 7]:
            # A later fragment has no ports to match; only the first one is judged.
            return "fragment" if inbound else None
        t = nh + ihl
        seglen = total - ihl
        if proto == TCP:
            if seglen < 20:
                return "truncated"
            doff = (buf[t + 12] >> 4) << 2
            if doff < 20 or doff > seglen:
                return "malformed"
            return self._tcp(buf, t, _ports_key(buf, nh, t), seglen - doff, inbound, now)
        if proto == UDP:
            if seglen < 8:
                return "truncated"
            return self._seen(UDP, _ports_key(buf, nh, t), inbound, now)
        if proto == ICMP:
            if seglen < 8:
                return "truncated"
            return self._icmp(buf, nh, t, seglen, inbound, now)
        if inbound or self.other == "drop":
            return "protocol"
        return None

    # -- sessions ---------------------------------------------------------------------
    def _timeout(self, proto, state):
        return (self._icmp_timeouts if proto == ICMP else self._timeouts)[state]

    def _open(self, proto, ikey, state, last, nums=None):
        """File a new session under both keys, with ``nums`` = (isn, risn, fin) if
        known; None if the table is full (or CAPACITY was lowered below the count)."""
        if self._count() >= self.capacity:
            return None
        s = _Session(proto, ikey, state, last, self._timeout(proto, state))
        if nums is not None:
            s.isn, s.risn, s.fin = nums
        by_in, by_out = self._index[proto]
        by_in[ikey] = s
        by_out[s.okey] = s
        self._journal_session("created", s)
        return s

    def _enter(self, s, state):
        s.state = state
        s.timeout = self._timeout(s.proto, state)
        self._journal_session("updated", s)

    def _drop(self, s):
        by_in, by_out = self._index[s.proto]
        del by_in[s.ikey]
        del by_out[s.okey]
        self._journal_session("removed", s)

    def _journal_session(self, kind, s):
        """Journal a session's creation, change or removal when a store listens;
        the value is built only then."""
        if self._journal is not None:
            value = None if kind == "removed" else self._export_session(s, self.clock())
            self.journal(kind, _session_key(s), value)

    def _count(self):
        return sum(len(by_in) for by_in, _ in self._index.values())

    def _lookup(self, proto, key, inbound):
        return self._index[proto][1 if inbound else 0].get(key)

    def _seen(self, proto, key, inbound, now):
        """Refresh the session ``key`` belongs to (opening it for an inside
        packet); the shared UDP / ICMP echo logic.  Returns a drop reason or None."""
        s = self._lookup(proto, key, inbound)
        if s is None:
            if inbound:
                return "unsolicited"
            if self._open(proto, key, UNREPLIED, now) is None:
                return "capacity"
            return None
        if inbound and s.state == UNREPLIED:
            self._enter(s, REPLIED)
        s.last = now
        return None

    # -- ICMP -------------------------------------------------------------------------
    def _icmp(self, buf, nh, t, seglen, inbound, now):
        kind = buf[t]
        if kind == (ICMP_ECHO_REPLY if inbound else ICMP_ECHO):
            return self._seen(ICMP, _echo_key(buf, nh, t), inbound, now)
        if not inbound:
            return None          # other inside ICMP (errors, replies) goes out statelessly
        if kind in ICMP_ERRORS and self._quotes_session(buf, nh, t + 8, t + seglen):
            return None
        return "unsolicited"

    def _quotes_session(self, buf, nh, q, end):
        """True if the ICMP error whose quoted IP header starts at ``q`` (and
        whose message ends at ``end``) reports on a packet the inside sent
        within a known session, and is addressed to that inside host."""
        if end - q < 28 or buf[q] >> 4 != 4:
            return False
        qt = q + ((buf[q] & 15) << 2)
        if qt + 8 > end or buf[nh + 16:nh + 20] != buf[q + 12:q + 16]:
            return False
        proto = buf[q + 9]
        if proto in (TCP, UDP):
            key = _ports_key(buf, q, qt)
        elif proto == ICMP and buf[qt] == ICMP_ECHO:
            key = _echo_key(buf, q, qt)
        else:
            return False
        return self._lookup(proto, key, False) is not None

    # -- TCP --------------------------------------------------------------------------
    def _tcp(self, buf, t, key, payload, inbound, now):
        flags = buf[t + 13]
        if (flags & SYN and flags & (FIN | RST)) or not flags & (SYN | RST | ACK):
            return "malformed"       # flag sets no TCP sends (and scanners love)
        seq, ack = _seq_ack(buf, t + 4)
        s = self._lookup(TCP, key, inbound)
        if s is None:
            if inbound:
                return "unsolicited"
            return self._tcp_open(key, flags, seq, ack, payload, now)
        if inbound:
            reason = self._tcp_from_outside(s, flags, seq, ack)
        else:
            reason = self._tcp_from_inside(s, flags, seq, ack, payload)
        if reason is None:
            s.last = now
        return reason

    def _tcp_open(self, key, flags, seq, ack, payload, now):
        """An inside segment without a session: a SYN opens one; in LOOSE mode
        any other segment but RST and SYN-ACK picks the connection up."""
        if flags & (SYN | ACK) == SYN:
            if self._open(TCP, key, SYN_SENT, now, (seq, None, None)) is None:
                return "capacity"
            return None
        if not self.loose or flags & (SYN | RST):
            return "not-syn"
        s = self._open(TCP, key, ESTABLISHED, now)
        if s is None:
            return "capacity"
        return self._tcp_from_inside(s, flags, seq, ack, payload)

    def _tcp_from_inside(self, s, flags, seq, ack, payload):
        state = s.state
        if flags & RST:
            self._enter(s, CLOSED)
            return None
        if flags & SYN:
            if flags & ACK:
                return "invalid-state"           # the inside accepts no outside SYN
            if not (state in (SYN_SENT, SYN_RECV) and seq == s.isn):
                # A new connection on the same ports (e.g. after TIME_WAIT).
                s.isn, s.risn, s.fin = seq, None, None
                self._enter(s, SYN_SENT)
            return None
        if state == SYN_SENT:
            return "invalid-state"
        if state == SYN_RECV:
            if not (flags & ACK and s.risn is not None and _after(ack, (s.risn + 1) & M32)):
                return "invalid-state"
            state = ESTABLISHED
            self._enter(s, state)
        if flags & FIN:
            if state == ESTABLISHED:
                self._enter(s, FIN_WAIT)
            elif state == CLOSE_WAIT:
                s.fin = (seq + payload + 1) & M32
                self._enter(s, LAST_ACK)
        return None

    def _tcp_from_outside(self, s, flags, seq, ack):
        state = s.state
        acks_syn = s.isn is not None and flags & ACK and ack == (s.isn + 1) & M32
        if flags & RST:
            if state == SYN_SENT and not acks_syn:
                return "invalid-state"           # RFC 793: must acknowledge our SYN
            self._enter(s, CLOSED)
            return None
        if flags & SYN:
            # Only a SYN-ACK answering the inside's SYN (or its retransmission).
            if not (flags & ACK and acks_syn and state in (SYN_SENT, SYN_RECV, ESTABLISHED)):
                return "invalid-state"
            if state == SYN_SENT:
                s.risn = seq
                self._enter(s, SYN_RECV)
            return None
        if state == SYN_SENT:
            return "invalid-state"
        if flags & FIN:
            if state == ESTABLISHED:
                state = CLOSE_WAIT
                self._enter(s, state)
            elif state == FIN_WAIT:
                state = TIME_WAIT
                self._enter(s, state)
        if state == LAST_ACK and flags & ACK and s.fin is not None and _after(ack, s.fin):
            self._enter(s, CLOSED)
        return None

    # -- timers -----------------------------------------------------------------------
    def expire(self):
        """Remove every session idle for longer than its state's timeout -- except on
        a replication standby (nf.state.replica), whose copies look idle while the
        active carries the traffic; the active's removals remove them."""
        if getattr(self.router, "replication_role", None) == "standby":
            return
        now = self.clock()
        for by_in, _ in self._index.values():
            dead = [s for s in by_in.values() if now - s.last > s.timeout]
            for s in dead:
                self._drop(s)

    def _clear(self):
        if self._journal is not None:
            for s in list(self._sessions()):
                self._journal_session("removed", s)
        for by_in, by_out in self._index.values():
            by_in.clear()
            by_out.clear()

    def _sessions(self):
        for proto in (TCP, UDP, ICMP):
            yield from self._index[proto][0].values()

    def restart_idle(self):
        """Count every session as seen now: a standby promoted to active restarts
        the idle times of its copies.  Returns the number of sessions."""
        now = self.clock()
        n = 0
        for s in self._sessions():
            s.last = now
            n += 1
        return n

    # -- handlers ---------------------------------------------------------------------
    @read_handler("sessions", "number of sessions in the table")
    def _h_sessions(self):
        return str(self._count())

    @read_handler("table", "one session per line: protocol, inside endpoint <-> remote "
                           "endpoint, state, idle seconds (ICMP echo shows its identifier "
                           "as both ports)")
    def _h_table(self):
        now = self.clock()
        lines = []
        for s in self._sessions():
            k = s.ikey
            lines.append("%s %s <-> %s %s %.1fs" % (
                PROTO_NAMES[s.proto], _endpoint(k[0:4], k[8:10]), _endpoint(k[4:8], k[10:12]),
                STATE_NAMES[s.state], max(0.0, now - s.last)))
        return "\n".join(lines)

    @read_handler("drops", "total number of packets dropped")
    def _h_drops(self):
        return str(sum(self._reasons.values()))

    @read_handler("drop_reasons", "one line per drop reason: reason and count")
    def _h_drop_reasons(self):
        return "\n".join("%s %d" % (r, self._reasons[r]) for r in REASONS)

    @read_handler("capacity", "maximum number of sessions")
    def _h_capacity(self):
        return str(self.capacity)

    @write_handler("capacity", "set the maximum number of sessions; lowering it below the "
                               "current count keeps the existing sessions and refuses new ones")
    def _h_set_capacity(self, value):
        self.capacity = parse_value("uint", value)

    @write_handler("clear", "remove every session (the drop counters stay)")
    def _h_clear(self, _value):
        self._clear()

    # -- state ------------------------------------------------------------------------
    def adopt_state(self, old):
        """The in-place upgrade's hand-over: with the same state version the session
        index moves by reference, in constant time (the new configuration's timeouts
        and capacity apply from now on); otherwise export/import, migrating."""
        if not isinstance(old, StatefulFirewall) or old.STATE_VERSION != self.STATE_VERSION:
            return super().adopt_state(old)
        self._index, self._reasons = old._index, old._reasons
        return sum(len(self._index[p][0]) for p in self._index)

    def export_state(self):
        now = self.clock()
        return {"sessions": [self._export_session(s, now) for s in self._sessions()]}

    @staticmethod
    def _export_session(s, now):
        k = s.ikey
        return {"proto": s.proto,
                "inside": [ip_str(k[0:4]), int.from_bytes(k[8:10], "big")],
                "remote": [ip_str(k[4:8]), int.from_bytes(k[10:12], "big")],
                "state": STATE_NAMES[s.state], "idle": max(0.0, now - s.last),
                "isn": s.isn, "risn": s.risn, "fin": s.fin}

    def import_state(self, data, version):
        """Replace the table with exported sessions, keeping idle ages.

        Sessions already past their timeout are left out, and if there are
        more than CAPACITY, the most recently active ones are kept.  Returns
        the number of sessions left out; raises ValueError on malformed data.
        """
        data = self.migrate_state(data, version)
        if not isinstance(data, dict) or not isinstance(data.get("sessions"), list):
            raise ValueError("StatefulFirewall state: expected {\"sessions\": [...]}")
        rows = [self._parse_session(i, e) for i, e in enumerate(data["sessions"])]
        rows.sort(key=lambda r: r[2])
        now = self.clock()
        self._clear()
        kept = 0
        for proto, ikey, idle, state, nums in rows:
            if idle > self._timeout(proto, state):
                continue
            if self._open(proto, ikey, state, now - idle, nums) is None:
                break                    # full: the rest were idle longer
            kept += 1
        return len(rows) - kept

    @staticmethod
    def _parse_session(i, e):
        """One exported session -> (proto, inside key, idle, state, (isn, risn, fin))."""
        try:
            proto = int(e["proto"])
            state = STATES_BY_NAME[e["state"]]
            if state not in PROTO_STATES[proto]:
                raise ValueError
            (iaddr, iport), (raddr, rport) = e["inside"], e["remote"]
            ikey = (parse_ip(iaddr) + parse_ip(raddr) + int(iport).to_bytes(2, "big")
                    + int(rport).to_bytes(2, "big"))
            idle = float(e["idle"])
            nums = tuple(None if e.get(f) is None else int(e[f]) & M32
                         for f in ("isn", "risn", "fin"))
        except (KeyError, TypeError, ValueError, OverflowError):
            raise ValueError("StatefulFirewall state: session %d is not {proto: 6|17|1, "
                             "inside: [ip, port], remote: [ip, port], state: a state of that "
                             "protocol, idle: seconds, isn/risn/fin: int or null}: %r"
                             % (i, e)) from None
        return proto, ikey, idle, state, nums

    def replay_events(self, events):
        """Apply journaled session events in order on top of the imported table:
        "created" and "updated" put the session in the table as exported (state,
        idle age, sequence numbers), "removed" takes it out.  Raises ValueError
        naming the first malformed event; the events before it stay applied."""
        now = self.clock()
        for i, (kind, key, value) in enumerate(events):
            if kind == "removed":
                proto, ikey = _parse_key(i, key)
                s = self._index[proto][0].get(ikey)
                if s is not None:
                    self._drop(s)
            elif kind in ("created", "updated"):
                proto, ikey, idle, state, nums = self._parse_session(i, value)
                s = self._index[proto][0].get(ikey)
                if s is None:
                    self._open(proto, ikey, state, now - idle, nums)
                else:
                    s.isn, s.risn, s.fin = nums
                    s.last = now - idle
                    self._enter(s, state)
            else:
                raise ValueError("StatefulFirewall journal event %d: unknown kind %r "
                                 "(expected created, updated or removed)" % (i, kind))

    def take_state(self, old):
        """Keep nothing: like stock Click's stateful elements, a hot-swap starts
        with an empty table.  In-service upgrades use export_state/import_state."""


def _session_key(s):
    """A session's journal key: [proto, inside ip, inside port, remote ip, remote port]."""
    k = s.ikey
    return [s.proto, ip_str(k[0:4]), int.from_bytes(k[8:10], "big"), ip_str(k[4:8]),
            int.from_bytes(k[10:12], "big")]


def _parse_key(i, key):
    """(proto, inside key) from the journal key of event ``i``."""
    try:
        proto, iaddr, iport, raddr, rport = key
        if proto not in PROTO_STATES:
            raise ValueError
        return proto, (parse_ip(iaddr) + parse_ip(raddr) + int(iport).to_bytes(2, "big")
                       + int(rport).to_bytes(2, "big"))
    except (TypeError, ValueError, OverflowError):
        raise ValueError("StatefulFirewall journal event %d: key %r is not [proto, inside "
                         "ip, inside port, remote ip, remote port]" % (i, key)) from None


def _ports_key(buf, nh, t):
    """Key of a TCP/UDP packet: addresses from the IP header at ``nh``, ports at ``t``."""
    if t == nh + 20:
        return _key12(buf, nh + 12)[0]
    return bytes(buf[nh + 12:nh + 20] + buf[t:t + 4])


def _echo_key(buf, nh, t):
    """Key of an ICMP echo packet: addresses, then its identifier twice (as both ports)."""
    ident = buf[t + 4:t + 6]
    return bytes(buf[nh + 12:nh + 20] + ident + ident)

"""General-purpose elements: counting, printing, painting, switching, declarations.

Every element here works on whole batches: a counter adds the batch length,
a switch sorts the batch into one list per output and pushes each non-empty
list once, so the per-packet Python work stays inside one tight loop.

Two departures from Click are deliberate and documented on the classes:

* ``Queue`` is a pass-through.  Click's Queue is the boundary between push
  and pull processing; our runtime only pushes, so a Queue models one drain
  per batch: packets beyond CAPACITY in a single batch are dropped (or go to
  output 1) and counted.
* ``Counter`` and ``Queue`` keep their counts across a hot-swap
  (``take_state``), which stock Click's Counter does not; the upgrade
  experiments compare counts before and after a swap.

Print-like elements write through a ``file`` attribute (None means the
current ``sys.stderr``) so tests and tools can capture their lines.
"""

import math
import re
import sys
import zlib

from ..args import AddressTable, parse_value, split_words
from ..element import REQUIRED, Arg, Element, read_handler, write_handler
from ..netutil import ip_str

__all__ = ["Counter", "AverageCounter", "Tee", "Discard", "Null", "Queue", "Print",
           "IPPrint", "Paint", "CheckPaint", "StaticSwitch", "Switch", "RoundRobinSwitch",
           "HashSwitch", "AddressInfo", "ScheduleInfo"]


# -- small shared helpers ----------------------------------------------------------------

def _num(x):
    """A rate for a handler: up to three decimals, no trailing zeros ("12.5", "100")."""
    s = "%.3f" % x
    return s.rstrip("0").rstrip(".") if "." in s else s


def _parse_int(text):
    return parse_value("int", text)


def _parse_bool(text):
    return parse_value("bool", text)


def _bytes_len(batch):
    return sum([len(p.buf) - p.off for p in batch])


def _write_lines(element, lines):
    """One write per batch, to ``element.file`` or the current stderr."""
    f = element.file if element.file is not None else sys.stderr
    f.write("\n".join(lines) + "\n")
    f.flush()


def _timestamp(ts):
    """Click's Timestamp form: seconds.microseconds."""
    usec = int(round(ts * 1e6))
    return "%d.%06d" % divmod(usec, 1000000)


_PRINTABLE = bytes(c if 32 <= c <= 126 else 46 for c in range(256))   # 46 is '.'

_CONTENTS = {"NONE": 0, "HEX": 1, "ASCII": 2, "FALSE": 0, "NO": 0, "TRUE": 1, "YES": 1}


def _contents_mode(word):
    mode = _CONTENTS.get(word.upper())
    if mode is None:
        raise ValueError("keyword CONTENTS: expected NONE, HEX or ASCII, got %r" % word)
    return mode


def _dump(data, mode, line=0):
    """Packet bytes as text: hex in groups of 4 bytes (mode 1) or printable ASCII in
    groups of 8 (mode 2).  ``line``: bytes per line, each line starting "\\n  "
    (IPPrint's form); without it Print's single-line form."""
    if mode == 1:
        chunks = [data[i:i + 4].hex() for i in range(0, len(data), 4)]
        per_line = line // 4
    else:
        text = data.translate(_PRINTABLE).decode("ascii")
        chunks = [text[i:i + 8] for i in range(0, len(text), 8)]
        per_line = line // 8
    if not line:
        return (" " + " ".join(chunks)) if mode == 2 else " ".join(chunks)
    return "".join("\n  " + " ".join(chunks[i:i + per_line])
                   for i in range(0, len(chunks), per_line))


def _color(v):
    if v > 255:
        raise ValueError("expected a paint colour from 0 to 255, got %d" % v)
    return v


def _check_paint_anno(anno):
    # Packets carry one paint byte; Click's ANNO picks any annotation byte.
    if anno is not None and anno.upper() not in ("PAINT", "PAINT_ANNO"):
        raise ValueError("keyword ANNO: only the paint annotation (PAINT) is supported, "
                         "got %r" % anno)


# -- counters ----------------------------------------------------------------------------

class Counter(Element):
    """Counter([KEYWORDS])

    Passes packets unchanged from input to output, counting packets and bytes
    (bytes from the data start, so an Ethernet header counts) and keeping a recent
    packet rate: an exponentially weighted moving average with a time constant
    of one second.  COUNT_CALL and BYTE_COUNT_CALL write a handler once, when
    a count first reaches its threshold (again after a reset).  Unlike Click's
    Counter, the counts survive a hot-swap (``take_state``), and they are
    exported as versioned state.  A persistent store carries the counts by
    periodic snapshots (journaling each packet would cost the packet path);
    only a reset is journaled, as an "updated" event of the key "counts",
    so that recovery does not bring back counts that were reset."""

    PORTS = "1/1"
    ARGS = (Arg("COUNT_CALL", "raw", None,
                doc="N ELEMENT.HANDLER [VALUE]: write VALUE to the handler when the "
                    "packet count reaches N"),
            Arg("BYTE_COUNT_CALL", "raw", None,
                doc="N ELEMENT.HANDLER [VALUE]: the same for the byte count"))
    STATE_VERSION = 1
    RATE_TAU = 1.0          # seconds: time constant of the rate average
    RATE_MIN_DT = 0.01      # fold arrivals into the average at most this often

    def configure(self):
        # Each trigger: [attribute counted, threshold, handler, value].
        self._triggers = [self._parse_call(kw, attr, text) for kw, attr, text in
                          (("COUNT_CALL", "count", self.count_call),
                           ("BYTE_COUNT_CALL", "byte_count", self.byte_count_call))
                          if text is not None]
        self._reset()

    @staticmethod
    def _parse_call(kw, attr, text):
        words = split_words(text)
        if len(words) < 2 or not words[0].isdigit() or "." not in words[1]:
            raise ValueError("keyword %s: expected N ELEMENT.HANDLER [VALUE], got %r"
                             % (kw, text))
        return [attr, int(words[0]), words[1], " ".join(words[2:])]

    def _reset(self):
        self.count = self.byte_count = 0
        self._avg = 0.0                 # packets per second
        self._pending = 0               # arrivals not yet folded into _avg
        self._rate_t = self.clock()
        self._armed = list(self._triggers)
        if self._journal is not None:
            self.journal("updated", "counts", self.export_state())

    def _fire(self):
        """Write the handlers of the triggers whose threshold has been reached."""
        for t in [t for t in self._armed if getattr(self, t[0]) >= t[1]]:
            self._armed.remove(t)
            if self.router is None:
                continue
            try:
                self.router.write(t[2], t[3])
            except Exception as e:        # a bad handler must not stop the packet path
                sys.stderr.write("%s :: Counter: calling %s: %s\n" % (self.name, t[2], e))

    def _fold(self, now):
        dt = now - self._rate_t
        if dt >= self.RATE_MIN_DT:
            w = 1.0 - math.exp(-dt / self.RATE_TAU)
            self._avg += (self._pending / dt - self._avg) * w
            self._pending = 0
            self._rate_t = now

    def push(self, port, batch):
        n = len(batch)
        self.count += n
        self.byte_count += _bytes_len(batch)
        self._fold(self.clock())
        self._pending += n
        if self._armed:
            self._fire()
        self._out[0](batch)

    @read_handler("count", "packets that have passed since the last reset")
    def h_count(self):
        return str(self.count)

    @read_handler("byte_count", "bytes that have passed since the last reset")
    def h_byte_count(self):
        return str(self.byte_count)

    @read_handler("rate", "recent arrival rate in packets per second (moving average)")
    def h_rate(self):
        self._fold(self.clock())
        return _num(self._avg)

    @write_handler("reset", "reset the counts and the rate to zero")
    def h_reset(self, _value):
        self._reset()

    @write_handler("reset_counts", "same as reset")
    def h_reset_counts(self, _value):
        self._reset()

    def export_state(self):
        return {"count": self.count, "byte_count": self.byte_count, "rate": self._avg}

    def import_state(self, data, version):
        data = self.migrate_state(data, version)
        try:
            self.count, self.byte_count = int(data["count"]), int(data["byte_count"])
            self._avg = float(data.get("rate", 0.0))
        except (KeyError, TypeError, ValueError):
            raise ValueError("Counter state needs integer count and byte_count, got %r"
                             % (data,)) from None
        self._pending, self._rate_t = 0, self.clock()

    def replay_events(self, events):
        """Apply journaled resets: each event is ("updated", "counts", exported
        counts); the last one wins.  An empty list (the usual case: counts are
        snapshotted, not journaled) changes nothing."""
        for i, (kind, key, value) in enumerate(events):
            if kind != "updated" or key != "counts":
                raise ValueError("Counter journal event %d: expected ('updated', 'counts', "
                                 "counts), got %r" % (i, [kind, key, value]))
            self.import_state(value, self.STATE_VERSION)

    def take_state(self, old):
        # Through export/import so an old instance of a reloaded class works too.
        if old.__class__.__name__ == "Counter" and old.STATE_VERSION is not None:
            self.import_state(old.export_state(), old.STATE_VERSION)


class AverageCounter(Element):
    """AverageCounter([IGNORE])

    Passes packets unchanged, counting packets and bytes and reporting the
    average rate between the first and the most recent packet.  Packets that
    arrive in the first IGNORE seconds after the first packet are not counted,
    and the rate's time span leaves those seconds out.  With no time span yet
    the rates read 0."""

    PORTS = "1/1"
    ARGS = (Arg("IGNORE", "seconds", 0.0, positional=True,
                doc="seconds after the first packet during which packets are not counted"),)

    def configure(self):
        self._reset()

    def _reset(self):
        self.count = self.byte_count = 0
        self._first = self._last = None

    def push(self, port, batch):
        now = self.clock()
        if self._first is None:
            self._first = now
        if now - self._first >= self.ignore:
            self.count += len(batch)
            self.byte_count += _bytes_len(batch)
        self._last = now
        self._out[0](batch)

    def _rate(self, n):
        if self._first is None:
            return "0"
        span = self._last - self._first - self.ignore
        return _num(n / span) if span > 0 else "0"

    @read_handler("count", "packets counted since the last reset")
    def h_count(self):
        return str(self.count)

    @read_handler("byte_count", "bytes counted since the last reset")
    def h_byte_count(self):
        return str(self.byte_count)

    @read_handler("rate", "average packets per second between first and last packet")
    def h_rate(self):
        return self._rate(self.count)

    @read_handler("byte_rate", "average bytes per second between first and last packet")
    def h_byte_rate(self):
        return self._rate(self.byte_count)

    @write_handler("reset", "reset the counts and the time span")
    def h_reset(self, _value):
        self._reset()


# -- plumbing --------------------------------------------------------------------------------

class Tee(Element):
    """Tee([N])

    Pushes each packet to every output: clones to outputs 0 to N-2 and the
    packet itself to the last output, so a downstream element that changes a
    packet cannot affect the copies.  N, if given, must equal the number of
    outputs."""

    PORTS = "1/1-"
    ARGS = (Arg("N", "uint", None, positional=True, doc="number of outputs"),)

    def configure(self):
        if self.n is not None and self.n < 1:
            raise ValueError("keyword N: expected at least 1 output")

    def port_count(self):
        return "1/%d" % self.n if self.n is not None else self.PORTS

    def push(self, port, batch):
        out = self._out
        last = (self.noutputs or len(out)) - 1
        for i in range(last):
            out[i]([p.clone() for p in batch])
        out[last](batch)


class Discard(Element):
    """Discard

    Drops every packet it receives, counting them."""

    PORTS = "1/0"

    def configure(self):
        self.count = 0

    def push(self, port, batch):
        self.count += len(batch)

    @read_handler("count", "packets dropped since the last reset")
    def h_count(self):
        return str(self.count)

    @write_handler("reset_counts", "reset the count to zero")
    def h_reset_counts(self, _value):
        self.count = 0


class Null(Element):
    """Null

    Passes packets unchanged from its input to its output."""

    PORTS = "1/1"

    def push(self, port, batch):
        self._out[0](batch)


class Queue(Element):
    """Queue([CAPACITY])

    Accepted for Click configurations, but a pass-through: Click's Queue stores
    packets between push and pull processing, and this runtime only pushes.
    Each batch stands for what arrives between two drains of the queue: the
    first CAPACITY packets pass on output 0; the rest are dropped (emitted on
    output 1 if it is connected) and counted in ``drops``.  ``length`` is
    always 0 since nothing stays queued; ``highwater_length`` is the largest
    number of packets passed from one batch.  Counters survive a hot-swap."""

    PORTS = "1/1-2"
    ARGS = (Arg("CAPACITY", "uint", 1000, positional=True,
                doc="packets passed per batch; the rest are dropped"),)

    def configure(self):
        if self.capacity < 1:
            raise ValueError("keyword CAPACITY: expected at least 1")
        self.drops = self.highwater = 0

    def push(self, port, batch):
        cap = self.capacity
        if len(batch) > cap:
            self.drops += len(batch) - cap
            self.output(1)(batch[cap:])
            batch = batch[:cap]
        if len(batch) > self.highwater:
            self.highwater = len(batch)
        self._out[0](batch)

    @read_handler("length", "packets held now (always 0: this Queue passes packets through)")
    def h_length(self):
        return "0"

    @read_handler("highwater_length", "largest number of packets passed from one batch")
    def h_highwater(self):
        return str(self.highwater)

    @read_handler("capacity", "the CAPACITY")
    def h_capacity(self):
        return str(self.capacity)

    @write_handler("capacity", "set the CAPACITY (a positive integer)")
    def h_set_capacity(self, value):
        v = parse_value("uint", value)
        if v < 1:
            raise ValueError("expected a capacity of at least 1")
        self.capacity = v

    @read_handler("drops", "packets dropped because a batch exceeded the capacity")
    def h_drops(self):
        return str(self.drops)

    @write_handler("reset_counts", "reset drops and highwater_length to zero")
    def h_reset_counts(self, _value):
        self.drops = self.highwater = 0

    def take_state(self, old):
        self.drops = getattr(old, "drops", 0)
        self.highwater = getattr(old, "highwater", 0)


# -- printing ------------------------------------------------------------------------------

class _Printer(Element):
    """Shared by Print and IPPrint: one line per packet, written per batch."""

    ABSTRACT = True
    PORTS = "1/1"
    file = None             # where lines go; None means the current sys.stderr

    def line(self, p):
        raise NotImplementedError

    def push(self, port, batch):
        if self.active:
            _write_lines(self, [self.line(p) for p in batch])
        self._out[0](batch)

    @read_handler("active", "whether packets are printed")
    def h_active(self):
        return str(self.active).lower()

    @write_handler("active", "print (true) or stay silent (false)")
    def h_set_active(self, value):
        self.active = _parse_bool(value)


class Print(_Printer):
    """Print([LABEL, MAXLENGTH, KEYWORDS])

    Prints one line per packet and passes the packet on unchanged.  The line is
    LABEL and ": " (if LABEL is set), the timestamp and ": " (if TIMESTAMP),
    the packet length right-aligned in 4 columns, then " | " and the first
    MAXLENGTH bytes in hex, in groups of 4 bytes (CONTENTS HEX), or as text
    with '.' for unprintable bytes, in groups of 8 (CONTENTS ASCII).  Lines go
    to the element's ``file`` attribute (standard error by default)."""

    ARGS = (
        Arg("LABEL", "string", "", positional=True, doc="text that starts each line"),
        Arg("MAXLENGTH", "int", 24, positional=True,
            doc="bytes of data to print; negative prints the whole packet"),
        Arg("LENGTH", "int", None, doc="old name of MAXLENGTH"),
        Arg("CONTENTS", "word", "HEX", doc="NONE, HEX or ASCII: how to print the data"),
        Arg("TIMESTAMP", "bool", False, doc="print each packet's timestamp"),
        Arg("ACTIVE", "bool", True, doc="print at all (see the active handler)"),
    )

    def configure(self):
        if self.length is not None:
            self.maxlength = self.length
        self._mode = _contents_mode(self.contents)

    def line(self, p):
        """The text Print writes for packet ``p`` (without the newline)."""
        head = [self.label] if self.label else []
        if self.timestamp:
            head.append(_timestamp(p.ts))
        text = ": ".join(head + ["%4d" % len(p)])
        n = self.maxlength if self._mode else 0
        if n:
            data = bytes(p.buf[p.off:] if n < 0 else p.buf[p.off:p.off + n])
            if data:
                text += " | " + _dump(data, self._mode)
        return text




_TCP_FLAGS = ((0x02, "S"), (0x01, "F"), (0x04, "R"), (0x08, "P"))
_PROTO_NAMES = {1: "icmp", 6: "tcp", 17: "udp"}
_ICMP_TYPES = {0: "echo-reply", 3: "unreachable", 4: "sourcequench", 5: "redirect",
               8: "echo", 11: "timeexceeded", 12: "parameterproblem", 13: "timestamp",
               14: "timestamp-reply"}
_UNREACH_CODES = {0: "net", 1: "host", 2: "protocol", 3: "port", 4: "needfrag"}


class IPPrint(_Printer):
    """IPPrint([LABEL, KEYWORDS])

    Prints a tcpdump-like line for each IP packet and passes it on unchanged.
    The IP header is at the packet's network-header offset if set, else at the
    data start.  Lines look like ``LABEL: TIMESTAMP: 10.0.0.1.1234 >
    10.0.1.1.80: S 1000:1001(1,40,40) win 65535`` for TCP (flags, sequence
    range, (sequence length, packet length, IP length), ack, window),
    ``... > ...: udp 13`` (UDP length) and ``... > ...: icmp echo (7, 1)``
    (identifier, sequence) as in Click.  Lines go to the ``file`` attribute
    (standard error by default), or to OUTFILE."""

    ARGS = (
        Arg("LABEL", "string", "", positional=True, doc="text that starts each line"),
        Arg("CONTENTS", "word", "NONE", doc="NONE, HEX or ASCII: also print the packet data"),
        Arg("PAYLOAD", "word", "NONE",
            doc="NONE, HEX or ASCII: also print the transport payload"),
        Arg("MAXLENGTH", "int", 1500, doc="bytes of data to print with CONTENTS/PAYLOAD"),
        Arg("TIMESTAMP", "bool", True, doc="print each packet's timestamp"),
        Arg("ID", "bool", False, doc="print the IP identification"),
        Arg("TTL", "bool", False, doc="print the IP time to live"),
        Arg("TOS", "bool", False, doc="print the IP type of service"),
        Arg("LENGTH", "bool", False, doc="print the IP total length"),
        Arg("PAINT", "bool", False, doc="print the paint annotation"),
        Arg("ACTIVE", "bool", True, doc="print at all (see the active handler)"),
        Arg("OUTFILE", "string", None, doc="write lines to this file instead"),
    )

    def configure(self):
        contents, payload = _contents_mode(self.contents), _contents_mode(self.payload)
        if contents and payload:
            raise ValueError("give at most one of CONTENTS and PAYLOAD")
        self._mode, self._payload = contents or payload, bool(payload)
        self._outfile = None

    def initialize(self):
        if self.outfile:
            try:
                self._outfile = self.file = open(self.outfile, "w")
            except OSError as e:
                raise self.error("OUTFILE %s: %s" % (self.outfile, e.strerror)) from None

    def cleanup(self):
        if self._outfile is not None:
            self._outfile.close()
            self._outfile = self.file = None


    def line(self, p):
        """The text IPPrint writes for packet ``p`` (without the newline)."""
        parts = [self.label + ": "] if self.label else []
        if self.timestamp:
            parts.append(_timestamp(p.ts) + ": ")
        if self.paint:
            parts.append("paint %d: " % p.paint)
        b, ip = p.buf, p.nh if p.nh >= 0 else p.off
        if len(b) - ip < 20 or b[ip] >> 4 != 4:
            parts.append("truncated-ip" if len(b) - ip < 20 else "not-ipv4")
            return "".join(parts)
        ihl = (b[ip] & 15) * 4
        ip_len = int.from_bytes(b[ip + 2:ip + 4], "big")
        frag = int.from_bytes(b[ip + 6:ip + 8], "big")
        for flag, field in ((self.id, "id %d " % int.from_bytes(b[ip + 4:ip + 6], "big")),
                            (self.ttl, "ttl %d " % b[ip + 8]), (self.tos, "tos %d " % b[ip + 1]),
                            (self.length, "length %d " % ip_len)):
            if flag:
                parts.append(field)
        t = ip + ihl
        tlen = max(0, min(len(b) - t, ip_len - ihl))
        parts.append(self._transport(p, b, ip, t, tlen, ip_len, first=not frag & 0x1FFF))
        if frag & 0x3FFF:
            parts.append(" (frag %d:%d@%d%s)" % (int.from_bytes(b[ip + 4:ip + 6], "big"),
                                                ip_len - ihl, (frag & 0x1FFF) << 3,
                                                "+" if frag & 0x2000 else ""))
        if self._mode:
            parts.append(self._contents(p, b, ip, t, first=not frag & 0x1FFF))
        return "".join(parts)

    def _transport(self, p, b, ip, t, tlen, ip_len, first):
        src, dst, proto = ip_str(b[ip + 12:ip + 16]), ip_str(b[ip + 16:ip + 20]), b[ip + 9]
        pair = "%s > %s: " % (src, dst)
        if proto not in _PROTO_NAMES:
            return pair + "ip-proto-%d" % proto
        if not first:
            return pair + _PROTO_NAMES[proto]
        if proto == 1:
            return pair + self._icmp(b, t, tlen)
        if tlen < 4:
            return pair + "truncated-" + _PROTO_NAMES[proto]
        sport, dport = int.from_bytes(b[t:t + 2], "big"), int.from_bytes(b[t + 2:t + 4], "big")
        head = "%s.%d > %s.%d: " % (src, sport, dst, dport)
        if proto == 17:
            if tlen < 8:
                return head + "truncated-udp"
            return head + "udp %d" % int.from_bytes(b[t + 4:t + 6], "big")
        return head + self._tcp(p, b, ip, t, tlen, ip_len)

    @staticmethod
    def _tcp(p, b, ip, t, tlen, ip_len):
        if tlen < 14:
            return "truncated-tcp"
        flags = b[t + 13]
        seqlen = ip_len - (b[ip] & 15) * 4 - (b[t + 12] >> 4) * 4
        letters = "".join(c for bit, c in _TCP_FLAGS if flags & bit) or "."
        seqlen += (flags & 1) + (flags >> 1 & 1)        # SYN and FIN count one each
        seq = int.from_bytes(b[t + 4:t + 8], "big")
        text = "%s %d:%d(%d,%d,%d)" % (letters, seq, (seq + seqlen) & 0xFFFFFFFF, seqlen,
                                       len(p), ip_len)
        if flags & 0x10:
            text += " ack %d" % int.from_bytes(b[t + 8:t + 12], "big")
        if tlen < 16:
            return text + " truncated-tcp"
        return text + " win %d" % int.from_bytes(b[t + 14:t + 16], "big")

    @staticmethod
    def _icmp(b, t, tlen):
        if tlen < 2:
            return "truncated-icmp"
        typ, code = b[t], b[t + 1]
        if typ in (0, 8):
            if tlen < 8:
                return "icmp %s truncated-icmp" % _ICMP_TYPES[typ]
            return "icmp %s (%d, %d)" % (_ICMP_TYPES[typ], int.from_bytes(b[t + 4:t + 6], "big"),
                                         int.from_bytes(b[t + 6:t + 8], "big"))
        if typ == 3:
            cname = _UNREACH_CODES.get(code, "code %d" % code)
            e = t + 8                                    # the quoted IP header
            if tlen < 28:
                return "icmp unreachable %s truncated-icmp" % cname
            text = "icmp %s unreachable %s" % (ip_str(b[e + 16:e + 20]), cname)
            eproto = b[e + 9]
            if code == 3:
                eudp = e + (b[e] & 15) * 4
                name = _PROTO_NAMES.get(eproto, "protocol %d" % eproto)
                if eudp + 4 > t + tlen:
                    return text + " " + name + " truncated-icmp"
                text += " %s/%d" % (name, int.from_bytes(b[eudp + 2:eudp + 4], "big"))
            elif code == 2:
                text += " " + _PROTO_NAMES.get(eproto, str(eproto))
            return text
        text = "icmp " + _ICMP_TYPES.get(typ, "type %d" % typ)
        return text + (" code %d" % code if code else "")

    def _contents(self, p, b, ip, t, first):
        start = p.off
        if self._payload:
            proto = b[ip + 9]
            start = t
            if first and proto == 6 and len(b) >= t + 13:
                start += (b[t + 12] >> 4) * 4
            elif first and proto == 17:
                start += 8
        n = self.maxlength
        data = bytes(b[start:] if n < 0 else b[start:start + n])
        return _dump(data, self._mode, 24 if self._mode == 1 else 48) if data else ""



# -- paint -----------------------------------------------------------------------------------

class Paint(Element):
    """Paint(COLOR [, ANNO])

    Sets each packet's paint annotation to COLOR and passes it on."""

    PORTS = "1/1"
    ARGS = (Arg("COLOR", "uint", REQUIRED, positional=True, doc="paint colour, 0 to 255"),
            Arg("ANNO", "word", None, positional=True,
                doc="annotation to set; only PAINT is supported"))

    def configure(self):
        self.color = _color(self.color)
        _check_paint_anno(self.anno)

    def push(self, port, batch):
        c = self.color
        for p in batch:
            p.paint = c
        self._out[0](batch)

    @read_handler("color", "the COLOR")
    def h_color(self):
        return str(self.color)

    @write_handler("color", "set the COLOR (0 to 255)")
    def h_set_color(self, value):
        self.color = _color(parse_value("uint", value))


class CheckPaint(Paint):
    """CheckPaint(COLOR [, ANNO])

    Sends packets whose paint annotation equals COLOR to output 0; other
    packets go to output 1 if it is connected, and are dropped otherwise."""

    PORTS = "1/1-2"

    def push(self, port, batch):
        c = self.color
        yes = [p for p in batch if p.paint == c]
        if len(yes) < len(batch):
            no = [p for p in batch if p.paint != c]
            self.output(1)(no)
        if yes:
            self._out[0](yes)


# -- switches ---------------------------------------------------------------------------------

def _push_split(element, lists):
    """Push each non-empty per-output list."""
    out = element._out
    for i, lst in enumerate(lists):
        if lst:
            out[i](lst)


class StaticSwitch(Element):
    """StaticSwitch(K)

    Sends every packet to output K.  If K is negative or not an output, the
    packets are dropped."""

    PORTS = "1/-"
    ARGS = (Arg("K", "int", REQUIRED, positional=True, doc="output port, -1 to drop"),)

    def push(self, port, batch):
        k = self.k
        if k >= 0:
            self.output(k)(batch)


class Switch(StaticSwitch):
    """Switch([K])

    Sends every packet to output K, which the ``switch`` handler can change
    while the router runs.  If K is negative or not an output, the packets are
    dropped."""

    ARGS = (Arg("K", "int", 0, positional=True, doc="output port, -1 to drop"),)

    @read_handler("switch", "the current output K")
    def h_switch(self):
        return str(self.k)

    @write_handler("switch", "set the output K (an integer; -1 drops)")
    def h_set_switch(self, value):
        self.k = _parse_int(value)


class RoundRobinSwitch(Element):
    """RoundRobinSwitch

    Sends each packet to the next output in turn: the first to output 0, the
    next to output 1, and so on, wrapping around."""

    PORTS = "1/1-"

    def configure(self):
        self._next = 0

    def push(self, port, batch):
        n = self.noutputs or len(self._out)
        start = self._next
        # Packet j goes to output (start + j) % n: a stride slice per output.
        _push_split(self, [batch[(i - start) % n::n] for i in range(n)])
        self._next = (start + len(batch)) % n


class HashSwitch(Element):
    """HashSwitch(OFFSET, LENGTH)

    Sends each packet to the output chosen by a hash (CRC-32) of the LENGTH
    bytes at OFFSET from the data start, modulo the number of outputs; the
    choice is the same in every run.  Packets too short go to output 0."""

    PORTS = "1/1-"
    ARGS = (Arg("OFFSET", "uint", REQUIRED, positional=True, doc="first byte hashed"),
            Arg("LENGTH", "uint", REQUIRED, positional=True, doc="number of bytes hashed"))

    def configure(self):
        if self.length < 1:
            raise ValueError("keyword LENGTH: expected at least 1 byte")

    def push(self, port, batch):
        n = self.noutputs or len(self._out)
        lists = [[] for _ in range(n)]
        o, end, crc = self.offset, self.offset + self.length, zlib.crc32
        for p in batch:
            b, off = p.buf, p.off
            if len(b) - off < end:
                lists[0].append(p)
            else:
                lists[crc(b[off + o:off + end]) % n].append(p)
        _push_split(self, lists)


# -- declarations -----------------------------------------------------------------------------

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")


class AddressInfo(Element):
    """AddressInfo(NAME ADDRESS [ADDRESS...], ...)

    Declares names for addresses: each argument is a name followed by IP
    addresses, IP prefixes (ADDR/LEN) or Ethernet addresses.  Other elements'
    IP, prefix and Ethernet arguments then accept the name.  AddressInfo is
    configured before every other element, so declaration order does not
    matter."""

    PORTS = "0/0"
    CONFIGURE_PHASE = 0
    ARGS = (Arg("ENTRIES", rest=True, doc="NAME followed by one or more addresses"),)

    def configure(self):
        if self.addresses is None:
            self.addresses = AddressTable()
        for entry in self.entries:
            words = split_words(entry)
            if len(words) < 2:
                raise ValueError("expected NAME ADDRESS [ADDRESS...], got %r" % entry)
            if not _NAME.match(words[0]):
                raise ValueError("expected a name (letters, digits, _) before the "
                                 "addresses, got %r" % words[0])
            self.addresses.add(words[0], words[1:])


class ScheduleInfo(Element):
    """ScheduleInfo(ELEMENT PARAM, ...)

    Accepted for Click configurations and ignored: this runtime schedules its
    tasks in turn, without Click's stride-scheduling tickets."""

    PORTS = "0/0"
    ARGS = (Arg("ENTRIES", rest=True, doc="ELEMENT PARAM pairs (ignored)"),)

"""Traffic sources and pcap files: InfiniteSource, RatedSource, FastUDPFlows,
FromDump, ToDump.

Sources have no input: they register ``run_task`` with ``router.add_task`` in
``initialize()`` and the router calls it every loop turn; it pushes what is
due as one batch and returns True if it did work.  With ``router=None`` (unit
tests) nothing is registered and the test calls ``run_task()`` itself, with
``element.clock`` injected to control time.  The generators share one base
(LIMIT, ACTIVE, STOP, handlers) and RatedSource's pacing; what they send comes
from two hooks, ``_prepare`` (build templates at configuration) and
``_make_batch`` (copy them into packets).

Packet timestamps are wall-clock seconds from the ``wallclock`` attribute
(``time.time`` unless a test injects another), as Click stamps generated
packets with the current time; pacing uses the monotonic ``clock``.

The pcap code reads and writes the classic libpcap format: a 24-byte global
header (magic, version 2.4, time-zone offset, accuracy, snapshot length, link
type) and per record a 16-byte header (seconds, micro- or nanoseconds,
captured length, original length).  The magic tells the byte order and the
time resolution.  Only Ethernet and raw-IP link types are accepted, since
those are what the elements downstream understand.
"""

import random
import re
import struct
import sys
import time

from ..args import parse_value
from ..element import REQUIRED, Arg, Element, read_handler, write_handler
from ..headers import ETHERTYPE_IP, IPPROTO_UDP, ether, ipv4
from ..netutil import csum_fold, ones_sum, pseudo_header_sum
from ..packet import Packet

__all__ = ["InfiniteSource", "RatedSource", "FastUDPFlows", "FromDump", "ToDump", "PcapError",
           "PcapReader", "pcap_global_header", "LINKTYPE_ETHERNET", "LINKTYPE_RAW"]

# Click's default is a text of about 70 bytes; ours is likewise at least 64 bytes,
# the minimum Ethernet frame, so it survives any padding check downstream.
DEFAULT_DATA = b"clickup InfiniteSource default packet data: sixty-four bytes or so."

MAX_BATCH = 256          # packets pushed per batch by the sources
_UDP_HDR = struct.Struct("!HHHH")


# -- Click string syntax for DATA --------------------------------------------------------

_ESCAPES = {"n": 10, "t": 9, "r": 13, "a": 7, "b": 8, "f": 12, "v": 11,
            "\\": 92, '"': 34, "'": 39}
_HEX_BLOCK = re.compile(r"\\<([^>]*)>")
_OCTAL = re.compile(r"[0-7]{1,3}")


def _hex_block(body):
    digits = "".join(body.split())
    try:
        if len(digits) % 2:
            raise ValueError
        return bytes.fromhex(digits)
    except ValueError:
        raise ValueError("expected an even number of hex digits inside \\<...>") from None


def _quoted(text, i, out):
    """Decode a double-quoted string starting after the quote at ``i``; return the
    index after the closing quote."""
    while i < len(text):
        c = text[i]
        if c == '"':
            return i + 1
        if c != "\\" or i + 1 == len(text):
            out += c.encode()
            i += 1
            continue
        m = _HEX_BLOCK.match(text, i)
        nxt = text[i + 1]
        if m:
            out += _hex_block(m.group(1))
            i = m.end()
        elif nxt == "x" and re.fullmatch(r"[0-9a-fA-F]{2}", text[i + 2:i + 4]):
            out.append(int(text[i + 2:i + 4], 16))
            i += 4
        elif nxt in "01234567":                      # \0, \12, \177: octal
            m = _OCTAL.match(text, i + 1)
            out.append(int(m.group(), 8) & 0xFF)
            i = m.end()
        else:
            out += bytes([_ESCAPES[nxt]]) if nxt in _ESCAPES else nxt.encode()
            i += 2
    raise ValueError("unterminated double-quoted string")


def click_data(text, _addresses=None):
    """string"""
    # Click's string syntax: "double quotes" with C escapes, 'single quotes'
    # taken literally, and \<hex bytes> anywhere (spaces inside are ignored).
    text, out, i = text.strip(), bytearray(), 0
    while i < len(text):
        c = text[i]
        if c == '"':
            i = _quoted(text, i + 1, out)
        elif c == "'":
            end = text.find("'", i + 1)
            if end < 0:
                raise ValueError("unterminated single-quoted string")
            out += text[i + 1:end].encode()
            i = end + 1
        elif text.startswith("\\<", i):
            m = _HEX_BLOCK.match(text, i)
            if not m:
                raise ValueError("unterminated \\<...> hex block")
            out += _hex_block(m.group(1))
            i = m.end()
        else:
            out += c.encode()
            i += 1
    return bytes(out)


# -- sources --------------------------------------------------------------------------------

def _please_stop(router):
    stop = getattr(router, "please_stop", None)
    if stop is not None:
        stop()


class _Source(Element):
    """Shared by InfiniteSource and RatedSource: DATA, LIMIT, ACTIVE, STOP and
    the count/reset/active/limit handlers."""

    ABSTRACT = True
    PORTS = "0/1"
    PACKET_SOURCE = True
    wallclock = staticmethod(time.time)      # packet timestamps; injectable

    def configure(self):
        self.count = 0
        self._stop_sent = False
        self._prepare()

    def _prepare(self):
        """Build what packets are copied from: DATA, repeated up to DATASIZE."""
        data = self.data
        if self.datasize is not None and 0 < len(data) < self.datasize:
            data = (data * (self.datasize // len(data) + 1))[:self.datasize]
        self._template = data

    def initialize(self):
        if self.router is not None:
            self.router.add_task(self.run_task)

    def run_task(self):
        raise NotImplementedError

    def _room(self, n):
        """``n`` limited by what LIMIT still allows."""
        return n if self.limit < 0 else max(0, min(n, self.limit - self.count))

    def _emit(self, n):
        ts, out, make = self.wallclock(), self.output(0), self._make_batch
        self.count += n
        while n > 0:
            k = min(n, MAX_BATCH)
            out(make(k, ts))
            n -= k

    def _make_batch(self, k, ts):
        """``k`` new packets stamped ``ts``."""
        tpl = self._template
        return [Packet(tpl, 0, ts) for _ in range(k)]     # Packet copies tpl

    def _done(self):
        """LIMIT reached: ask the router to stop once, if STOP is set."""
        if self.stop and not self._stop_sent and self.router is not None:
            self._stop_sent = True
            _please_stop(self.router)
        return False

    @read_handler("count", "packets generated since the last reset")
    def h_count(self):
        return str(self.count)

    @write_handler("reset", "reset the count to 0, so that LIMIT more packets are sent")
    def h_reset(self, _value):
        self.count = 0
        self._stop_sent = False
        self._restart()

    @read_handler("active", "whether packets are generated")
    def h_active(self):
        return str(self.active).lower()

    @write_handler("active", "start (true) or pause (false) generating packets")
    def h_set_active(self, value):
        active = parse_value("bool", value)
        if active and not self.active:
            self._restart()
        self.active = active

    @read_handler("limit", "the LIMIT (-1: unlimited)")
    def h_limit(self):
        return str(self.limit)

    @write_handler("limit", "set the LIMIT (an integer; negative means unlimited)")
    def h_set_limit(self, value):
        self.limit = parse_value("int", value)

    def _restart(self):
        """Hook: pacing starts afresh (after reset or re-activation)."""

    def released(self):
        """The router's hold ended (nf/router.py): pace afresh, as after re-activation,
        rather than send at once what fell due while held."""
        self._restart()


def _source_arg(name):
    return {
        "DATA": Arg("DATA", click_data, DEFAULT_DATA, positional=True,
                    doc="packet contents (Click string syntax; \\<hex> allowed)"),
        "LIMIT": Arg("LIMIT", "int", -1, positional=True,
                      doc="total packets to send; negative means no limit"),
        "ACTIVE": Arg("ACTIVE", "bool", True, positional=True,
                      doc="send packets at all (see the active handler)"),
        "DATASIZE": Arg("DATASIZE", "uint", None,
                        doc="repeat DATA up to this many bytes"),
        "STOP": Arg("STOP", "bool", False, doc="stop the router once LIMIT packets are sent"),
    }[name]


class InfiniteSource(_Source):
    """InfiniteSource([DATA, LIMIT, BURST, ACTIVE, KEYWORDS])

    Pushes copies of DATA out of its output, BURST packets each time the
    router runs its task, until LIMIT packets have been sent (forever if LIMIT
    is negative).  Packets carry the current time as their timestamp.  A BURST
    of 32 or more keeps the per-packet cost low."""

    ARGS = (_source_arg("DATA"), _source_arg("LIMIT"),
            Arg("BURST", "uint", 1, positional=True, doc="packets per task run"),
            _source_arg("ACTIVE"), _source_arg("DATASIZE"), _source_arg("STOP"))

    def configure(self):
        super().configure()
        if self.burst < 1:
            raise ValueError("keyword BURST: expected at least 1")

    def run_task(self):
        """Push up to BURST packets; return whether any were sent."""
        if not self.active:
            return False
        n = self._room(self.burst)
        if n <= 0:
            return self._done()
        self._emit(n)
        return True

    @read_handler("burstsize", "the BURST")
    def h_burst(self):
        return str(self.burst)

    @write_handler("burstsize", "set the BURST (an integer of at least 1)")
    def h_set_burst(self, value):
        v = parse_value("uint", value)
        if v < 1:
            raise ValueError("expected a burst of at least 1")
        self.burst = v


class RatedSource(_Source):
    """RatedSource([DATA, RATE, LIMIT, ACTIVE, KEYWORDS])

    Pushes copies of DATA at RATE packets per second, until LIMIT packets have
    been sent (forever if LIMIT is negative).  The first packet leaves at once;
    each task run then sends every packet that has come due since, so a late
    run catches up with a batch (at most 256 packets per run)."""

    ARGS = (_source_arg("DATA"),
            Arg("RATE", "double", 10.0, positional=True, doc="packets per second"),
            _source_arg("LIMIT"), _source_arg("ACTIVE"), _source_arg("DATASIZE"),
            _source_arg("STOP"))

    def configure(self):
        super().configure()
        self._check_rate(self.rate)
        self._restart()

    @staticmethod
    def _check_rate(rate):
        if not rate > 0:
            raise ValueError("keyword RATE: expected a positive number of packets per second")
        return rate

    def _restart(self):
        self._t0 = None         # pacing starts at the next task run
        self._base = self.count

    def run_task(self):
        """Push the packets due by now; return whether any were sent.  Tells the router
        when the next packet is due, so that an idle loop wakes up for it instead of
        sleeping its full poll timeout and sending a burst afterwards."""
        if not self.active:
            return False
        n = self._room(min(self._due(), MAX_BATCH))
        if n <= 0:
            if self._room(1) == 0:
                return self._done()
            self._wake_for_next()
            return False
        self._emit(n)
        self._wake_for_next()
        return True

    def _wake_for_next(self):
        if self.router is not None and self.rate > 0 and hasattr(self.router, "wake_at"):
            self.router.wake_at(self._t0 + (self.count - self._base) / self.rate)

    def _due(self):
        """How many packets are due by now and not yet sent."""
        now = self.clock()
        if self._t0 is None:
            self._t0, self._base = now, self.count
        # The k-th packet (from 0) is due at t0 + k/RATE; the epsilon absorbs
        # float error so a packet due exactly now is sent now.
        return int((now - self._t0) * self.rate + 1e-9) + 1 - (self.count - self._base)

    @read_handler("rate", "the RATE in packets per second")
    def h_rate(self):
        return "%g" % self.rate

    @write_handler("rate", "set the RATE (packets per second); pacing restarts")
    def h_set_rate(self, value):
        self.rate = self._check_rate(parse_value("double", value))
        self._restart()


class FastUDPFlows(RatedSource):
    """FastUDPFlows(RATE, LIMIT, LENGTH, SRCETH, SRCIP, DSTETH, DSTIP, FLOWS, FLOWSIZE [, CHECKSUM, ACTIVE, KEYWORDS])

    Generates Ethernet frames of LENGTH bytes carrying UDP datagrams from SRCIP
    to DSTIP (zero payload, TTL 250, IP id 0), spread over FLOWS flows: each flow
    has its own random source port, distinct from every other flow's (so FLOWS
    is at most 64512, the ports 1024-65535), and a random destination port.  It
    sends FLOWSIZE packets of the first flow, then FLOWSIZE of the next, and after
    the last flow starts again with the first.  Packets leave at RATE per second
    (0: as fast as the task runs, 256 per run), paced like RatedSource, until
    LIMIT packets are sent (-1: no limit).  IP and UDP checksums are computed
    (the UDP one only if CHECKSUM); the IP header and destination annotations
    are set.  Unlike Click's, which picks a random flow for each packet and gives
    a flow new ports after FLOWSIZE packets, the flows here are fixed and visited
    in order, so FLOWS flows make exactly FLOWS NAT mappings.  With SEED the
    ports are drawn from a generator seeded with it, so two sources with the same
    SEED send the same flows (two NFs of a pair, one after the other).  LENGTH
    must be at least 60 (Click raises smaller values to 60)."""

    ARGS = (
        Arg("RATE", "double", REQUIRED, positional=True,
            doc="packets per second; 0 sends as fast as the task runs"),
        Arg("LIMIT", "int", REQUIRED, positional=True,
            doc="total packets to send; negative means no limit"),
        Arg("LENGTH", "uint", REQUIRED, positional=True,
            doc="frame length in bytes, Ethernet header included (at least 60)"),
        Arg("SRCETH", "eth", REQUIRED, positional=True, doc="source Ethernet address"),
        Arg("SRCIP", "ip", REQUIRED, positional=True, doc="source IP address"),
        Arg("DSTETH", "eth", REQUIRED, positional=True, doc="destination Ethernet address"),
        Arg("DSTIP", "ip", REQUIRED, positional=True, doc="destination IP address"),
        Arg("FLOWS", "uint", REQUIRED, positional=True,
            doc="number of flows, each with its own source port (1-64512)"),
        Arg("FLOWSIZE", "uint", REQUIRED, positional=True,
            doc="packets sent from one flow before moving to the next"),
        Arg("CHECKSUM", "bool", True, positional=True, doc="compute UDP checksums"),
        _source_arg("ACTIVE"), _source_arg("STOP"),
        Arg("SEED", "int", None, doc="seed of the flows' port choice (default: a fresh "
                                     "random one each run)"),
    )

    MIN_LENGTH = 60               # a minimum Ethernet frame without its FCS
    _HEADERS = 14 + 20 + 8        # Ethernet, IPv4, UDP
    _SPORTS = range(1024, 65536)

    @staticmethod
    def _check_rate(rate):
        if not rate >= 0:
            raise ValueError("keyword RATE: expected packets per second (0: unpaced)")
        return rate

    def _prepare(self):
        if not self.MIN_LENGTH <= self.length <= 65535 + 14:
            raise ValueError("keyword LENGTH: expected %d to 65549 bytes, got %d"
                             % (self.MIN_LENGTH, self.length))
        if not 1 <= self.flows <= len(self._SPORTS):
            raise ValueError("keyword FLOWS: expected 1 to %d flows (one source port "
                             "each), got %d" % (len(self._SPORTS), self.flows))
        if self.flowsize < 1:
            raise ValueError("keyword FLOWSIZE: expected at least 1 packet per flow")
        payload = bytes(self.length - self._HEADERS)
        seg = _UDP_HDR.pack(0, 0, 8 + len(payload), 0) + payload
        ip = ipv4(self.srcip, self.dstip, IPPROTO_UDP, seg, ttl=250, ident=0, flags_frag=0)
        self._template = ether(self.dsteth, self.srceth, ETHERTYPE_IP, ip)
        self._udp_headers = self._flow_headers(len(seg), ones_sum(seg))
        self._pos = 0             # index of the next packet in the round of all flows

    def _flow_headers(self, ulen, seg_sum):
        """Each flow's 8-byte UDP header.  Its checksum is the template's (ports 0)
        plus the two ports, one's-complement arithmetic (RFC 1071)."""
        rng = random.Random(self.seed)
        base = seg_sum + pseudo_header_sum(self.srcip, self.dstip, IPPROTO_UDP, ulen)
        headers = []
        for sport in rng.sample(self._SPORTS, self.flows):
            dport = rng.randrange(1024, 65536)
            c = 0
            if self.checksum:     # a computed 0 is sent as 0xFFFF (RFC 768)
                c = ~csum_fold(base + sport + dport) & 0xFFFF or 0xFFFF
            headers.append(_UDP_HDR.pack(sport, dport, ulen, c))
        return headers

    def _make_batch(self, k, ts):
        tpl, hdrs, size, dst = self._template, self._udp_headers, self.flowsize, self.dstip
        round_len = size * len(hdrs)
        pos = self._pos
        batch = []
        append = batch.append
        for i in range(pos, pos + k):
            buf = bytearray(tpl)
            buf[34:42] = hdrs[(i % round_len) // size]
            p = Packet(buf, 0, ts)
            p.nh = 14
            p.dst_ip = dst
            append(p)
        self._pos = (pos + k) % round_len
        return batch

    def _due(self):
        return MAX_BATCH if self.rate == 0 else super()._due()


# -- pcap files -----------------------------------------------------------------------------

LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101                  # raw IPv4/IPv6; also seen as DLT_RAW 12 or 14
_RAW_TYPES = (LINKTYPE_RAW, 12, 14, 228)    # 228: LINKTYPE_IPV4
_MAGIC_USEC, _MAGIC_NSEC = 0xA1B2C3D4, 0xA1B23C4D
_PCAPNG_MAGIC = 0x0A0D0D0A
_MAX_CAPLEN = 262144                # libpcap's largest snapshot length
_REC = struct.Struct("<IIII")       # ToDump writes little-endian, like pcap_global_header


class PcapError(ValueError):
    """A malformed or truncated pcap file; the message names the file (and record)."""


def pcap_global_header(linktype, snaplen=65535, nano=False, endian="<"):
    """The 24-byte global header of a classic pcap file."""
    magic = _MAGIC_NSEC if nano else _MAGIC_USEC
    return struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)


def _split_ts(ts, scale):
    """Float seconds -> (seconds, fraction in 1/scale), rounded, carry handled."""
    total = int(round(ts * scale))
    return divmod(total, scale)


class PcapReader:
    """Reads records from a classic pcap file: ``read()`` returns ``(ts, bytearray)``,
    or None at the end; PcapError for a bad header or a bad record."""

    def __init__(self, path):
        self.path, self.record = path, 0
        try:
            self._f = open(path, "rb")
        except OSError as e:
            raise PcapError("%s: %s" % (path, e.strerror)) from None
        try:
            self._read_global_header()
        except PcapError:
            self._f.close()
            raise

    def _read_global_header(self):
        head = self._f.read(24)
        if len(head) < 4:
            raise PcapError("%s: not a pcap file (empty or shorter than its magic number)"
                            % self.path)
        for endian in "<>":
            magic = struct.unpack(endian + "I", head[:4])[0]
            if magic in (_MAGIC_USEC, _MAGIC_NSEC):
                break
        else:
            if struct.unpack("<I", head[:4])[0] == _PCAPNG_MAGIC:
                raise PcapError("%s: pcapng format is not supported (convert it with "
                                "'editcap -F pcap')" % self.path)
            raise PcapError("%s: not a pcap file (magic 0x%s; expected a1b2c3d4 or "
                            "a1b23c4d in either byte order)" % (self.path, head[:4].hex()))
        if len(head) < 24:
            raise PcapError("%s: truncated global header (%d of 24 bytes)"
                            % (self.path, len(head)))
        _, major, _, _, _, self.snaplen, link = struct.unpack(endian + "IHHiIII", head)
        if major != 2:
            raise PcapError("%s: unsupported pcap version %d (expected 2)" % (self.path, major))
        self.linktype = link & 0xFFFF       # the upper bits may carry FCS information
        if self.linktype != LINKTYPE_ETHERNET and self.linktype not in _RAW_TYPES:
            raise PcapError("%s: unsupported link type %d (expected Ethernet, 1, or raw "
                            "IP, 101)" % (self.path, self.linktype))
        self.raw_ip = self.linktype in _RAW_TYPES
        self._rec = struct.Struct(endian + "IIII")
        self._scale = 1000000000 if magic == _MAGIC_NSEC else 1000000

    def read(self):
        head = self._f.read(16)
        if not head:
            return None
        self.record += 1
        where = "%s: record %d" % (self.path, self.record)
        if len(head) < 16:
            raise PcapError("%s: truncated record header (%d of 16 bytes)" % (where, len(head)))
        sec, frac, caplen, _origlen = self._rec.unpack(head)
        if caplen > _MAX_CAPLEN:
            raise PcapError("%s: captured length %d exceeds %d (corrupt file?)"
                            % (where, caplen, _MAX_CAPLEN))
        if frac >= self._scale:
            raise PcapError("%s: sub-second timestamp %d out of range (corrupt file?)"
                            % (where, frac))
        data = bytearray(caplen)           # read straight into the packet's buffer
        got = self._f.readinto(data)
        if got < caplen:
            raise PcapError("%s: truncated packet data (%d of %d bytes)"
                            % (where, got, caplen))
        return sec + frac / self._scale, data

    def close(self):
        self._f.close()


class FromDump(Element):
    """FromDump(FILENAME [, KEYWORDS])

    Reads packets from a pcap file (classic libpcap format, either byte order,
    micro- or nanosecond timestamps; Ethernet or raw-IP link type) and pushes
    them, with their recorded timestamps, up to BURST per task run.  Raw-IP
    packets get their network-header offset set.  With TIMING, packets keep
    their original spacing: the first leaves at once, each later one when as
    much time has passed as separated it from the first in the file.  A bad
    file header is a configuration error; a bad or truncated record is
    reported on standard error (naming the file and the record number) and
    ends the file, as if it ended there."""

    PORTS = "0/1"
    PACKET_SOURCE = True
    ARGS = (
        Arg("FILENAME", "string", REQUIRED, positional=True, doc="the pcap file to read"),
        Arg("STOP", "bool", False, doc="stop the router when the file is done"),
        Arg("TIMING", "bool", False, doc="replay packets with their original spacing"),
        Arg("ACTIVE", "bool", True, doc="emit packets at all (see the active handler)"),
        Arg("BURST", "uint", 32, doc="packets per task run at most"),
        Arg("END_CALL", "raw", None, doc="accepted and ignored"),
    )
    log = None              # where reading errors are reported; None: sys.stderr

    def configure(self):
        if self.burst < 1:
            raise ValueError("keyword BURST: expected at least 1")
        self.count = 0
        self.last_error = None
        self._reader = self._next = self._t_base = None
        self._done = False

    def initialize(self):
        try:
            self._reader = PcapReader(self.filename)
        except PcapError as e:
            raise self.error(str(e)) from None
        if self.router is not None:
            self.router.add_task(self.run_task)

    def cleanup(self):
        if self._reader is not None:
            self._reader.close()

    def _peek(self):
        """The next record (kept until taken), or None when the file is done."""
        if self._next is None and not self._done:
            try:
                self._next = self._reader.read()
            except (PcapError, OSError) as e:
                self._report(e)
            if self._next is None:
                self._finish()
        return self._next

    def _report(self, e):
        self.last_error = str(e)
        f = self.log if self.log is not None else sys.stderr
        f.write("%s :: FromDump: %s\n" % (self.name, self.last_error))
        f.flush()

    def _finish(self):
        self._done = True
        self._reader.close()
        if self.stop and self.router is not None:
            _please_stop(self.router)

    def _is_due(self, ts):
        if not self.timing:
            return True
        now = self.clock()
        if self._t_base is None:
            self._t_base = (now, ts)
        return ts - self._t_base[1] <= now - self._t_base[0]

    def released(self):
        """The router's hold ended: with TIMING, the next packet leaves at once and the
        spacing is kept from it (not a burst of what fell due while held)."""
        self._t_base = None

    def run_task(self):
        """Push the next packets (up to BURST, or those due with TIMING)."""
        if not self.active or self._done or self._reader is None:
            return False
        batch, raw = [], self._reader.raw_ip
        while len(batch) < self.burst:
            rec = self._peek()
            if rec is None or not self._is_due(rec[0]):
                break
            self._next = None
            p = Packet(rec[1], 0, rec[0])
            if raw:
                p.nh = 0
            batch.append(p)
        if batch:
            self.count += len(batch)
            self._out[0](batch)
        return bool(batch)

    @read_handler("count", "packets emitted so far")
    def h_count(self):
        return str(self.count)

    @read_handler("filename", "the FILENAME")
    def h_filename(self):
        return self.filename

    @read_handler("active", "whether packets are emitted")
    def h_active(self):
        return str(self.active).lower()

    @write_handler("active", "resume (true) or pause (false) reading")
    def h_set_active(self, value):
        self.active = parse_value("bool", value)


_ENCAPS = {"ETHER": LINKTYPE_ETHERNET, "ETHERNET": LINKTYPE_ETHERNET, "IP": LINKTYPE_RAW}


class ToDump(Element):
    """ToDump(FILENAME [, SNAPLEN, ENCAP, KEYWORDS])

    Writes every packet (its data from the data start) to FILENAME in classic
    pcap format, with the packet's timestamp, or the current time if it has
    none.  At most SNAPLEN bytes of each packet are kept (0: all).  ENCAP is
    the link type written in the file header: ETHER (default) or IP (raw IP;
    strip the Ethernet header before).  Packets continue on output 0 if it is
    connected.  The file is flushed when the router stops (cleanup)."""

    PORTS = "1/0-1"
    ARGS = (
        Arg("FILENAME", "string", REQUIRED, positional=True, doc="the pcap file to write"),
        Arg("SNAPLEN", "uint", 2000, positional=True,
            doc="bytes kept of each packet; 0 keeps all"),
        Arg("ENCAP", "word", "ETHER", positional=True, doc="ETHER or IP: the file's link type"),
        Arg("NANO", "bool", False, doc="write nanosecond timestamps"),
    )
    wallclock = staticmethod(time.time)      # stamps packets without a timestamp

    def configure(self):
        linktype = _ENCAPS.get(self.encap.upper())
        if linktype is None:
            raise ValueError("keyword ENCAP: expected ETHER or IP, got %r" % self.encap)
        self._linktype = linktype
        self._scale = 1000000000 if self.nano else 1000000
        self.count = 0
        self._f = None

    def initialize(self):
        try:
            self._f = open(self.filename, "wb")
        except OSError as e:
            raise self.error("%s: %s" % (self.filename, e.strerror)) from None
        self._f.write(pcap_global_header(self._linktype, self.snaplen or _MAX_CAPLEN,
                                         self.nano))

    def cleanup(self):
        if self._f is not None:
            self._f.close()
            self._f = None

    def push(self, port, batch):
        f = self._f
        if f is not None:
            parts, pack, snap, scale = [], _REC.pack, self.snaplen, self._scale
            now = None                      # read the wall clock once, if needed
            for p in batch:
                ts = p.ts
                if not ts:
                    if now is None:
                        now = self.wallclock()
                    ts = now
                sec, frac = _split_ts(ts, scale)
                n = len(p.buf) - p.off
                cap = min(n, snap) if snap else n
                parts.append(pack(sec, frac, cap, n))
                parts.append(p.buf[p.off:p.off + cap])
            f.write(b"".join(parts))
            self.count += len(batch)
        self.output(0)(batch)

    @read_handler("count", "packets written")
    def h_count(self):
        return str(self.count)

    @read_handler("filename", "the FILENAME")
    def h_filename(self):
        return self.filename


"""Packet I/O on Linux network devices through AF_PACKET sockets.

FromDevice opens one raw socket per device, bound to ETH_P_ALL, non-blocking,
with a large receive buffer (set with SO_RCVBUFFORCE when we are root) so that
a pause of the packet loop -- an upgrade's swap, a slow batch -- is absorbed
by the kernel queue instead of losing frames.  PACKET_IGNORE_OUTGOING keeps
the socket from seeing the frames this host sends, including our own
ToDevice's.  The router calls ``selected()`` when the socket is readable; it
reads up to BURST frames and pushes them as one batch.

ToDevice sends on a socket bound with protocol 0, which receives nothing, and
sets PACKET_QDISC_BYPASS so frames go straight to the driver as a forwarding
plane's would.  A send the kernel refuses (queue full) is counted as a drop.

Both move a batch per system call (recvmmsg/sendmmsg through
:class:`nf.afpacket.MsgRing`); frames are copied out of the receive ring into
each packet's own buffer, because elements rewrite packets in place and may
hold them (ARPQuerier's queue) past the next read.
"""

from .. import afpacket
from ..element import REQUIRED, Arg, Element, read_handler, write_handler
from ..packet import Packet

TX_SLOT = 65536     # the largest frame ToDevice stages (jumbo frames and then some)

_BURST = Arg("BURST", "uint", 64, doc="most frames per system call (one batch)")
_METHOD = Arg("METHOD", "word", "LINUX", doc="accepted for Click compatibility (always "
                                             "AF_PACKET)")


class _Device(Element):
    """What FromDevice and ToDevice share: a socket on DEVNAME, BURST, a frame count."""
    ABSTRACT = True

    def configure(self):
        if self.burst < 1:
            raise ValueError("keyword BURST: expected at least 1")
        self.sock = None
        self.count = 0

    def cleanup(self):
        if self.sock is not None:
            if self.router is not None:
                self.router.remove_reader(self.sock.fileno())
            self.sock.close()
            self.sock = None

    @read_handler("count", "frames received (FromDevice) or sent (ToDevice)")
    def _h_count(self):
        return str(self.count)


class FromDevice(_Device):
    """FromDevice(DEVNAME, [KEYWORDS])

    Reads Ethernet frames arriving on network device DEVNAME and pushes them
    out of output 0 in batches of up to BURST frames.  Frames this host sends
    are ignored.  The kernel still sees every frame too, so the NF's device
    should carry no IP address the kernel would answer for.
    """
    PORTS = "0/1"
    PACKET_SOURCE = True        # a standby's hold leaves its frames in the kernel queue
    ARGS = (
        Arg("DEVNAME", "word", REQUIRED, positional=True, doc="network device to read"),
        Arg("PROMISC", "bool", False, doc="put the device in promiscuous mode"),
        Arg("SNIFFER", "bool", True, doc="accepted for Click compatibility; the kernel "
                                         "always sees the frames too"),
        _BURST,
        Arg("SNAPLEN", "uint", 65535, doc="longest frame read; longer ones are truncated"),
        Arg("RCVBUF", "uint", 64 << 20, doc="receive buffer in bytes (absorbs pauses)"),
        _METHOD,
    )

    def initialize(self):
        self.sock = s = afpacket.open_rx(self.devname, self.rcvbuf, self.promisc)
        self.ring = afpacket.MsgRing(self.burst, self.snaplen)
        self._drops = 0
        self.last_rx = None         # clock time of the last frame read
        if self.router is not None:
            self.router.add_reader(s.fileno(), self.selected)

    def selected(self):
        """Read up to BURST frames and push them; returns how many were read."""
        ring = self.ring
        n = ring.recv(self.sock.fileno())
        if not n:
            return 0
        view, slot, ts = ring.view, ring.slot, self.clock()
        base = 0
        batch = []
        for ln in ring.lengths(n):
            batch.append(Packet(bytearray(view[base:base + ln]), 0, ts))
            base += slot
        self.count += n
        self.last_rx = ts
        self._out[0](batch)
        return n

    def pending(self):
        """Whether a frame waits in the socket's queue, unread (a hold, a busy loop)."""
        return self.sock is not None and afpacket.rx_pending(self.sock) > 0

    @read_handler("drops", "frames the kernel dropped for want of buffer space")
    def _h_drops(self):
        if self.sock is None:
            return "0"
        self._drops += afpacket.rx_drops(self.sock)   # the kernel resets it on each read
        return str(self._drops)

    @write_handler("reset_counts", "zero the frame count")
    def _h_reset(self, _value):
        self.count = 0


class ToDevice(_Device):
    """ToDevice(DEVNAME, [KEYWORDS])

    Sends the frames it receives on network device DEVNAME, bypassing the
    device's queueing discipline unless QDISC is true.  Frames the kernel
    refuses are dropped and counted.
    """
    PORTS = "1/0"
    ARGS = (
        Arg("DEVNAME", "word", REQUIRED, positional=True, doc="network device to send on"),
        Arg("QDISC", "bool", False, doc="send through the device's qdisc (needed for shaping)"),
        _BURST,
        Arg("SNDBUF", "uint", 4 << 20, doc="send buffer in bytes"),
        _METHOD,
    )

    def configure(self):
        super().configure()
        self.drops = 0

    def initialize(self):
        self.sock = afpacket.open_tx(self.devname, not self.qdisc, self.sndbuf)
        self.ring = afpacket.MsgRing(self.burst, TX_SLOT)

    def push(self, port, batch):
        ring, fd, burst = self.ring, self.sock.fileno(), self.burst
        stage = ring.stage
        i = dropped = 0
        for p in batch:
            if len(p.buf) - p.off > TX_SLOT:
                dropped += 1            # longer than any device's MTU: the kernel would refuse
                continue
            stage(i, memoryview(p.buf)[p.off:] if p.off else p.buf)
            i += 1
            if i == burst:
                dropped += ring.send(fd, i)
                self.count += i
                i = 0
        if i:
            dropped += ring.send(fd, i)
            self.count += i
        self.count -= dropped
        self.drops += dropped

    @read_handler("drops", "frames the kernel refused")
    def _h_drops(self):
        return str(self.drops)

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
"""

from .. import afpacket
from ..element import REQUIRED, Arg, Element, read_handler, write_handler
from ..packet import Packet


class FromDevice(Element):
    """FromDevice(DEVNAME, [KEYWORDS])

    Reads Ethernet frames arriving on network device DEVNAME and pushes them
    out of output 0 in batches of up to BURST frames.  Frames this host sends
    are ignored.  The kernel still sees every frame too, so the NF's device
    should carry no IP address the kernel would answer for.
    """
    PORTS = "0/1"
    ARGS = (
        Arg("DEVNAME", "word", REQUIRED, positional=True, doc="network device to read"),
        Arg("PROMISC", "bool", False, doc="put the device in promiscuous mode"),
        Arg("SNIFFER", "bool", True, doc="accepted for Click compatibility; the kernel "
                                         "always sees the frames too"),
        Arg("BURST", "uint", 64, doc="most frames read per batch"),
        Arg("SNAPLEN", "uint", 65535, doc="longest frame read; longer ones are truncated"),
        Arg("RCVBUF", "uint", 64 << 20, doc="receive buffer in bytes (absorbs pauses)"),
        Arg("METHOD", "word", "LINUX", doc="accepted for Click compatibility (always AF_PACKET)"),
    )

    def configure(self):
        if self.burst < 1:
            raise ValueError("keyword BURST: expected at least 1")
        self.sock = None
        self.count = 0
        self.byte_count = 0

    def initialize(self):
        self.sock = s = afpacket.open_rx(self.devname, self.rcvbuf, self.promisc)
        self._drops = 0
        if self.router is not None:
            self.router.add_reader(s.fileno(), self.selected)

    def selected(self):
        """Read up to BURST frames and push them; returns how many were read."""
        recv, snap, burst = self.sock.recv, self.snaplen, self.burst
        batch = []
        append = batch.append
        ts = self.clock()
        try:
            while len(batch) < burst:
                p = Packet(recv(snap))
                p.ts = ts
                append(p)
        except BlockingIOError:
            pass
        except InterruptedError:
            pass
        n = len(batch)
        if n:
            self.count += n
            self._out[0](batch)
        return n

    def cleanup(self):
        if self.sock is not None:
            if self.router is not None:
                self.router.remove_reader(self.sock.fileno())
            self.sock.close()
            self.sock = None

    @read_handler("count", "frames received")
    def _h_count(self):
        return str(self.count)

    @read_handler("drops", "frames the kernel dropped for want of buffer space")
    def _h_drops(self):
        if self.sock is None:
            return "0"
        self._drops += afpacket.rx_drops(self.sock)   # the kernel resets it on each read
        return str(self._drops)

    @write_handler("reset_counts", "zero the frame count")
    def _h_reset(self, _value):
        self.count = 0


class ToDevice(Element):
    """ToDevice(DEVNAME, [KEYWORDS])

    Sends the frames it receives on network device DEVNAME, bypassing the
    device's queueing discipline unless QDISC is true.  Frames the kernel
    refuses are dropped and counted.
    """
    PORTS = "1/0"
    ARGS = (
        Arg("DEVNAME", "word", REQUIRED, positional=True, doc="network device to send on"),
        Arg("QDISC", "bool", False, doc="send through the device's qdisc (needed for shaping)"),
        Arg("BURST", "uint", 64, doc="accepted for Click compatibility"),
        Arg("SNDBUF", "uint", 4 << 20, doc="send buffer in bytes"),
        Arg("METHOD", "word", "LINUX", doc="accepted for Click compatibility (always AF_PACKET)"),
    )

    def configure(self):
        self.sock = None
        self.count = 0
        self.drops = 0

    def initialize(self):
        self.sock = afpacket.open_tx(self.devname, not self.qdisc, self.sndbuf)

    def push(self, port, batch):
        send = self.sock.send
        sent = 0
        for p in batch:
            try:
                if p.off:
                    send(memoryview(p.buf)[p.off:])
                else:
                    send(p.buf)
                sent += 1
            except (BlockingIOError, InterruptedError):
                self.drops += 1
            except OSError as e:      # ENOBUFS, ENETDOWN, EMSGSIZE: count, keep going
                self.drops += 1
                self.last_error = e.strerror
        self.count += sent

    def cleanup(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    @read_handler("count", "frames sent")
    def _h_count(self):
        return str(self.count)

    @read_handler("drops", "frames the kernel refused")
    def _h_drops(self):
        return str(self.drops)

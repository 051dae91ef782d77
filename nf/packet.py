"""The packet: a mutable buffer, a data offset and a few annotations.

Like Click's Packet, the data starts at ``off`` inside ``buf`` so that Strip
and Unstrip only move an offset; headroom that was stripped stays in the
buffer and is reused by Unstrip and EtherEncap.  The data always runs to the
end of ``buf``.  Annotations follow Click's: the destination IP address
(``dst_ip``, 4 bytes, set by GetIPAddress and read by ARPQuerier), the paint
colour, the network-header offset set by CheckIPHeader/Strip, and the arrival
time.
"""

__all__ = ["Packet"]


class Packet:
    __slots__ = ("buf", "off", "nh", "dst_ip", "paint", "ts")

    def __init__(self, data, off=0, ts=0.0):
        self.buf = data if type(data) is bytearray else bytearray(data)
        self.off = off
        self.nh = -1          # absolute offset of the IP header in buf, -1 if unknown
        self.dst_ip = None    # destination IP annotation (bytes of length 4)
        self.paint = 0
        self.ts = ts

    # -- views ----------------------------------------------------------
    @property
    def data(self):
        """The packet's bytes from the data offset to the end (a copy)."""
        return bytes(self.buf[self.off:])

    def __len__(self):
        return len(self.buf) - self.off

    @property
    def ip_offset(self):
        """Offset of the IP header relative to the data start, or -1."""
        return self.nh - self.off if self.nh >= 0 else -1

    # -- headroom ---------------------------------------------------------
    def push_front(self, nbytes):
        """Make ``nbytes`` of room before the data (Click's Packet::push)."""
        if self.off >= nbytes:
            self.off -= nbytes
        else:
            grow = nbytes - self.off
            self.buf[0:0] = bytes(grow)
            if self.nh >= 0:
                self.nh += grow
            self.off = 0

    def pull_front(self, nbytes):
        """Drop ``nbytes`` from the front of the data (Click's Packet::pull)."""
        self.off = min(self.off + nbytes, len(self.buf))

    def take_tail(self, nbytes):
        """Drop ``nbytes`` from the end of the data."""
        if nbytes > 0:
            del self.buf[max(self.off, len(self.buf) - nbytes):]

    def clone(self):
        q = Packet(bytearray(self.buf), self.off, self.ts)
        q.nh = self.nh
        q.dst_ip = self.dst_ip
        q.paint = self.paint
        return q

    def __repr__(self):
        return "<Packet %d bytes off=%d nh=%d>" % (len(self), self.off, self.nh)

"""clickup's userspace network function runtime, in the Click tradition.

A router is a graph of elements joined port to port.  Packets travel by push,
in batches (lists of :class:`nf.packet.Packet`), so that the per-packet cost of
Python stays in tight loops inside each element instead of in calls between
them.  Elements are configured with Click's argument syntax and expose read and
write handlers, reachable through the control socket.
"""

__version__ = "0.1.0"

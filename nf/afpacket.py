"""AF_PACKET sockets as the NF and the bare forwarder use them.

Receive sockets: bound to ETH_P_ALL on one device, non-blocking, with
PACKET_IGNORE_OUTGOING (so a socket never sees what this host sends) and a
large receive buffer forced past rmem_max when we are root, so that a pause of
the packet loop is absorbed by the kernel queue.  Send sockets: bound with
protocol 0, so they receive nothing, and with PACKET_QDISC_BYPASS unless the
caller wants the device's queueing discipline (for htb shaping on the NF).
"""

import socket
import struct

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1
PACKET_STATISTICS = 6
PACKET_QDISC_BYPASS = 20
PACKET_IGNORE_OUTGOING = 23
SO_SNDBUFFORCE, SO_RCVBUFFORCE = 32, 33     # not exported by Python's socket module

__all__ = ["ifindex", "open_rx", "open_tx", "rx_drops"]


def ifindex(dev):
    try:
        return socket.if_nametoindex(dev)
    except OSError:
        raise ValueError("no network device %r in this namespace (check the interface "
                         "name, or run the NF in the namespace that has it)" % dev) from None


def _socket(dev, proto):
    ifindex(dev)
    try:
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(proto))
    except PermissionError:
        raise ValueError("opening a packet socket on %s needs root (CAP_NET_RAW)" % dev) \
            from None
    s.bind((dev, proto))
    s.setblocking(False)
    return s


def open_rx(dev, rcvbuf=64 << 20, promisc=False):
    s = _socket(dev, ETH_P_ALL)
    try:
        s.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
    except OSError:
        s.close()
        raise ValueError("this kernel lacks PACKET_IGNORE_OUTGOING (Linux 4.20 or newer "
                         "is needed)") from None
    try:
        s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf)
    except OSError:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    if promisc:
        mreq = struct.pack("iHH8s", ifindex(dev), PACKET_MR_PROMISC, 0, b"")
        s.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
    return s


def open_tx(dev, qdisc_bypass=True, sndbuf=4 << 20):
    s = _socket(dev, 0)
    if qdisc_bypass:
        try:
            s.setsockopt(SOL_PACKET, PACKET_QDISC_BYPASS, 1)
        except OSError:
            pass
    try:
        s.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, sndbuf)
    except OSError:
        pass
    return s


def rx_drops(sock):
    """Frames the kernel dropped on ``sock`` since the last call (PACKET_STATISTICS)."""
    _, drops = struct.unpack("II", sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
    return drops

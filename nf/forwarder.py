"""The bare forwarder: the fastest loop Python can run between two devices.

It is the benchmark's yardstick for what the NF's element graph costs: the same
AF_PACKET sockets and batched system calls (nf.afpacket), the same batch size,
the same epoll loop and busy polling, but no packet objects and no elements --
every frame read on one device is written unchanged to the other, straight
from the receive ring.
"""

import select
import signal
import time

from . import afpacket
from .router import Router

BURST = 64
BUSY_POLL = Router.busy_poll     # the same busy-poll window as the NF's loop


def forward(dev1, dev2, burst=BURST, slot=65535):
    rx = {dev: afpacket.open_rx(dev) for dev in (dev1, dev2)}
    tx = {dev: afpacket.open_tx(dev) for dev in (dev1, dev2)}
    # Frames are sent straight from the receive ring: no copy at all.
    pairs = {rx[a].fileno(): (rx[a].fileno(), afpacket.MsgRing(burst, slot), tx[b].fileno())
             for a, b in ((dev1, dev2), (dev2, dev1))}
    ep = select.epoll()
    for fd in pairs:
        ep.register(fd, select.EPOLLIN)
    stop = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.append(1))
    spin_until = 0.0
    clock = time.monotonic
    try:
        while not stop:
            now = clock()
            events = ep.poll(0 if now < spin_until else 0.2)
            if events:
                spin_until = now + BUSY_POLL
            for fd, _ in events:
                rfd, ring, tfd = pairs[fd]
                n = ring.recv(rfd)
                if n:
                    ring.send_received(tfd, n)
    finally:
        ep.close()
        for s in list(rx.values()) + list(tx.values()):
            s.close()
    return 0

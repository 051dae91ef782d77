"""The bare forwarder: the fastest loop Python can run between two devices.

It is the benchmark's yardstick for what the NF's element graph costs: the same
AF_PACKET sockets (nf.afpacket), the same batch size and the same epoll loop,
and the same busy polling,
but no packet objects and no elements -- every frame read on one device is
written unchanged to the other.
"""

import select
import signal
import time

from . import afpacket

BURST = 64
BUSY_POLL = 0.0002      # the same busy-poll window as nf.router.Router


def forward(dev1, dev2, burst=BURST):
    rx = {dev: afpacket.open_rx(dev) for dev in (dev1, dev2)}
    tx = {dev: afpacket.open_tx(dev) for dev in (dev1, dev2)}
    pairs = {rx[dev1].fileno(): (rx[dev1].recv, tx[dev2].send),
             rx[dev2].fileno(): (rx[dev2].recv, tx[dev1].send)}
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
                recv, send = pairs[fd]
                for _ in range(burst):
                    try:
                        data = recv(65535)
                    except (BlockingIOError, InterruptedError):
                        break
                    try:
                        send(data)
                    except OSError:        # queue full: the frame is lost, as in the NF
                        pass
    finally:
        ep.close()
        for s in list(rx.values()) + list(tx.values()):
            s.close()
    return 0

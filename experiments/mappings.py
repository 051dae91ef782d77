"""Establish NAT mappings: one small UDP datagram from each of many local source ports.

    python -m experiments.mappings HOST --port 9999 --count 1000 [--base-port 20000] [--rate 2000]

A NAT creates one mapping per inside source endpoint (RFC 4787), so datagrams from ``count``
distinct source ports give it ``count`` mappings before an upgrade: the state whose survival
the ISSU benchmark checks.  Source ports are base_port, base_port + 1, ...; a port that
another socket holds is skipped (and counted) and the next one taken, so ``count`` datagrams
go out as long as the port range has room.  The datagrams are paced (``rate`` a second on an
absolute schedule; 0: no pacing) because a burst of new flows can overflow the NF's receive
ring before it has allocated them all.  The payload is shorter than a probe header, so an
experiments.probe receiver at HOST:PORT ignores it.
"""

import argparse
import errno
import json
import socket
import sys
import time

__all__ = ["establish"]

PAYLOAD = b"clickup-mapping"      # < 24 bytes: experiments.probe's receiver drops it
DEFAULT_RATE = 2000.0


def _bind(port):
    """A UDP socket bound to ``port``, or None when another socket holds the port."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(("0.0.0.0", port))
    except OSError as e:
        s.close()
        if e.errno == errno.EADDRINUSE:
            return None
        raise OSError(e.errno, "cannot bind UDP source port %d (%s); choose another "
                               "--base-port" % (port, e.strerror)) from None
    return s


def _check(port, count, base_port, rate):
    if not 0 < port < 65536:
        raise ValueError("--port must be 1-65535 (the receiver's UDP port), got %r" % port)
    if count < 1:
        raise ValueError("--count must be at least 1 (mappings to create), got %r" % count)
    if not 0 < base_port < 65536 or base_port + count - 1 > 65535:
        raise ValueError("--base-port %r with --count %r runs past port 65535: choose a "
                         "--base-port of at most %d" % (base_port, count, 65536 - count))
    if rate < 0:
        raise ValueError("--rate must be >= 0 datagrams per second (0: no pacing), got %r"
                         % rate)


def establish(host, port, count, base_port=20000, rate=DEFAULT_RATE):
    """Send one datagram to host:port from each of ``count`` distinct source ports.

    Returns {"sent": n, "skipped": k, "ports": [first, last]}: n < count only when the
    ports up to 65535 ran out; ports is [None, None] when nothing was sent.
    """
    _check(port, count, base_port, rate)
    dest = (socket.gethostbyname(host), port)      # resolve once, not per datagram
    sent = skipped = 0
    first = last = None
    start = time.monotonic()
    for src in range(base_port, 65536):
        if sent == count:
            break
        s = _bind(src)
        if s is None:
            skipped += 1
            continue
        with s:
            if rate:
                time.sleep(max(0.0, start + sent / rate - time.monotonic()))
            s.sendto(PAYLOAD, dest)
        first = src if first is None else first
        last = src
        sent += 1
    return {"sent": sent, "skipped": skipped, "ports": [first, last]}


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m experiments.mappings",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("host", help="where to send (through the NAT)")
    p.add_argument("--port", type=int, required=True, help="destination UDP port")
    p.add_argument("--count", type=int, required=True, help="mappings to create")
    p.add_argument("--base-port", type=int, default=20000, help="first source port")
    p.add_argument("--rate", type=float, default=DEFAULT_RATE,
                   help="datagrams per second (default %g; 0: no pacing)" % DEFAULT_RATE)
    a = p.parse_args(argv)
    try:
        _check(a.port, a.count, a.base_port, a.rate)
    except ValueError as e:
        p.error(str(e))
    try:
        out = establish(a.host, a.port, a.count, a.base_port, a.rate)
    except OSError as e:                 # an unknown host, a port we may not bind
        p.error("cannot send to %s:%d: %s" % (a.host, a.port, e))
    print(json.dumps(out), flush=True)
    if out["sent"] < a.count:
        print("only %d of %d source ports were free from %d up to 65535; choose a lower "
              "--base-port" % (out["sent"], a.count, a.base_port), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

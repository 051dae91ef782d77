"""A sequence-numbered UDP probe stream: loss and the longest gap, seen from outside.

    python -m experiments.probe recv --port 9000 --duration 5      (prints one JSON line)
    python -m experiments.probe send HOST --port 9000 --rate 5000 --duration 3

Each datagram carries a 64-bit sequence number and the sender's monotonic send
time.  The receiver reports how many arrived, which sequence numbers never did,
duplicates, reordering, and the longest interval between two consecutive
arrivals (the outage a pause of the path caused, at the probe's granularity of
1/rate).  The sender paces by absolute schedule, so a late wake-up sends a
catch-up burst rather than lowering the rate.
"""

import argparse
import json
import socket
import struct
import sys
import time

HDR = struct.Struct("!QQd")      # magic+flags, sequence number, send time
MAGIC = 0x636c69636b7570    # "clickup"
END = 1 << 63


def send(host, port, rate, duration, size=64):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    pad = b"\0" * max(0, size - HDR.size)
    start = time.monotonic()
    n = 0
    total = int(rate * duration)
    while n < total:
        due = start + n / rate
        now = time.monotonic()
        if due > now:
            time.sleep(min(due - now, 0.01))
            continue
        s.sendto(HDR.pack(MAGIC, n, now) + pad, (host, port))
        n += 1
    for _ in range(5):                        # end markers; several in case one is lost
        s.sendto(HDR.pack(MAGIC | END, n, time.monotonic()), (host, port))
        time.sleep(0.01)
    return {"sent": n, "rate": rate, "duration": duration, "size": size}


def receive(port, duration, rcvbuf=32 << 20):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, 33, rcvbuf)      # SO_RCVBUFFORCE (root)
    except OSError:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.bind(("0.0.0.0", port))
    s.settimeout(0.2)
    print(json.dumps({"ready": True}), flush=True)
    seen = set()
    dup = reordered = 0
    highest = -1
    last_t = first_t = None
    gap, gap_after = 0.0, None
    sent = None
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        try:
            data = s.recv(65536)
        except socket.timeout:
            continue
        now = time.monotonic()
        if len(data) < HDR.size:
            continue
        magic, seq, _ = HDR.unpack_from(data)
        if magic & ~END != MAGIC:
            continue
        if magic & END:
            sent = seq
            break
        if seq in seen:
            dup += 1
            continue
        seen.add(seq)
        if seq < highest:
            reordered += 1
        highest = max(highest, seq)
        if last_t is not None and now - last_t > gap:
            gap, gap_after = now - last_t, seq
        if first_t is None:
            first_t = now
        last_t = now
    total = sent if sent is not None else highest + 1
    missing = [i for i in range(total) if i not in seen]
    return {"received": len(seen), "sent": sent, "lost": len(missing),
            "lost_first": missing[:20], "duplicates": dup, "reordered": reordered,
            "longest_gap_ms": round(gap * 1000, 3), "gap_before_seq": gap_after,
            "complete": sent is not None}


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m experiments.probe")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("recv")
    r.add_argument("--port", type=int, default=9000)
    r.add_argument("--duration", type=float, default=10.0, help="give up after this long")
    s = sub.add_parser("send")
    s.add_argument("host")
    s.add_argument("--port", type=int, default=9000)
    s.add_argument("--rate", type=float, default=1000.0, help="datagrams per second")
    s.add_argument("--duration", type=float, default=3.0)
    s.add_argument("--size", type=int, default=64, help="UDP payload bytes (>= 24)")
    a = p.parse_args(argv)
    if a.cmd == "recv":
        out = receive(a.port, a.duration)
    else:
        if a.rate <= 0 or a.duration <= 0:
            p.error("--rate and --duration must be positive")
        out = send(a.host, a.port, a.rate, a.duration, a.size)
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

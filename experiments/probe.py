"""A sequence-numbered UDP probe stream: loss and the longest gap, seen from outside.

    python -m experiments.probe recv --port 9000 --duration 5 [--bin 0.01] [--out FILE]
    python -m experiments.probe send HOST --port 9000 --rate 5000 --duration 3 [--flow-packets K]

recv prints {"ready": true, "port": P} once it listens, then one JSON result line.

Each datagram carries a 64-bit sequence number and the sender's monotonic send
time.  The receiver reports how many arrived, which sequence numbers never did,
duplicates, reordering, and the longest interval between two consecutive
arrivals (the outage a pause of the path caused, at the probe's granularity of
1/rate).  The sender paces by absolute schedule, so a late wake-up sends a
catch-up burst rather than lowering the rate.

With ``--flow-packets K`` the stream is a string of new flows: every K datagrams
leave from a new socket (a new source port, so a new NAT mapping), and each carries
its flow number.  The receiver then also reports the flows whose datagrams came
from more than one source address and port ("flows_split"): a flow a NAT mapped
twice -- e.g. its first datagram handled by an NF and its next by another that did
not yet know the mapping.

The receiver also keeps a timeline: distinct datagrams counted per bin of ``bin_s`` seconds on
time.monotonic() (the clock every process and namespace of the machine shares, so the bins
line up with the NF's phase record), from the receiver's start to its end.  Bins before the
first datagram are zeros, so an outage at the start shows too.  Counts live in a compact
array; an hour at 10 ms is 360,000 bins (1.4 MB).
"""

import argparse
import array
import json
import os
import socket
import struct
import sys
import time

HDR = struct.Struct("!QQd")      # magic+flags, sequence number, send time
FLOW_ID = struct.Struct("!Q")    # after HDR, when the FLOW flag is set: the flow number
MAGIC = 0x636c69636b7570    # "clickup"
END = 1 << 63
FLOW = 1 << 62
MAX_BINS = 10_000_000            # 40 MB of counts: a bound on the timeline's memory


def send(host, port, rate, duration, size=64, flow_packets=0):
    """Send ``rate`` datagrams/s for ``duration`` s; with ``flow_packets`` K, every K
    datagrams come from a new socket (source port) and carry their flow number."""
    if flow_packets and size < HDR.size + FLOW_ID.size:
        raise ValueError("--flow-packets needs --size of at least %d"
                         % (HDR.size + FLOW_ID.size))
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    pad = b"\0" * max(0, size - HDR.size - (FLOW_ID.size if flow_packets else 0))
    start = time.monotonic()
    n = flows = 0
    total = int(rate * duration)
    while n < total:
        due = start + n / rate
        now = time.monotonic()
        if due > now:
            time.sleep(min(due - now, 0.01))
            continue
        if flow_packets:
            if n % flow_packets == 0:
                s.close()
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                flows += 1
            s.sendto(HDR.pack(MAGIC | FLOW, n, now) + FLOW_ID.pack(n // flow_packets) + pad,
                     (host, port))
        else:
            s.sendto(HDR.pack(MAGIC, n, now) + pad, (host, port))
        n += 1
    for _ in range(5):                        # end markers; several in case one is lost
        s.sendto(HDR.pack(MAGIC | END, n, time.monotonic()), (host, port))
        time.sleep(0.01)
    s.close()
    out = {"sent": n, "rate": rate, "duration": duration, "size": size}
    if flow_packets:
        out.update(flow_packets=flow_packets, flows=flows)
    return out


def _check_timeline(duration, bin_s):
    """Raise ValueError unless ``bin_s`` makes a timeline of bounded size for ``duration``."""
    if bin_s < 0:
        raise ValueError("--bin must be >= 0 seconds (0 disables the timeline), got %g" % bin_s)
    if bin_s and duration / bin_s > MAX_BINS:
        raise ValueError("--bin %g over --duration %g gives %d bins, more than %d: choose a "
                         "larger --bin or a shorter --duration"
                         % (bin_s, duration, duration / bin_s, MAX_BINS))


class Timeline:
    """Arrivals per bin of ``bin_s`` seconds since ``t0`` (a time.monotonic() value)."""

    def __init__(self, t0, bin_s):
        self.t0, self.bin_s = t0, bin_s
        self.counts = array.array("I")       # 4 bytes a bin, not a Python int object

    def _cover(self, t):
        k = int((t - self.t0) / self.bin_s)
        if k >= len(self.counts):
            missing = k + 1 - len(self.counts)             # zero bins up to bin k
            self.counts.frombytes(bytes(missing * self.counts.itemsize))
        return k

    def add(self, t):
        self.counts[self._cover(t)] += 1

    def close(self, t):
        """Extend the timeline with empty bins up to time ``t`` (the receiver's end)."""
        self._cover(t)

    def as_dict(self):
        return {"t0_mono": self.t0, "bin_s": self.bin_s, "counts": self.counts.tolist()}


def receive(port, duration, rcvbuf=32 << 20, bin_s=0.01):
    """Receive one probe stream on UDP ``port`` (0: any free port) for at most ``duration`` s,
    or until the sender's end marker; return the report (with "timeline" unless bin_s is 0)."""
    _check_timeline(duration, bin_s)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, 33, rcvbuf)      # SO_RCVBUFFORCE (root)
    except OSError:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.bind(("0.0.0.0", port))
    s.settimeout(0.2)
    start = time.monotonic()
    timeline = Timeline(start, bin_s) if bin_s else None
    print(json.dumps({"ready": True, "port": s.getsockname()[1]}), flush=True)
    seen = set()
    dup = reordered = 0
    highest = -1
    last_t = first_t = None
    gap, gap_after = 0.0, None
    sent = None
    sources = {}                              # flow number -> the sources it came from
    deadline = start + duration
    while time.monotonic() < deadline:
        try:
            data, addr = s.recvfrom(65536)
        except socket.timeout:
            continue
        now = time.monotonic()
        if len(data) < HDR.size:
            continue
        magic, seq, _ = HDR.unpack_from(data)
        if magic & ~(END | FLOW) != MAGIC:
            continue
        if magic & FLOW and len(data) >= HDR.size + FLOW_ID.size:
            sources.setdefault(FLOW_ID.unpack_from(data, HDR.size)[0], set()).add(addr)
        if magic & END:
            sent = seq
            break
        if seq in seen:
            dup += 1
            continue
        seen.add(seq)
        if timeline is not None:
            timeline.add(now)                 # distinct datagrams only: sum(counts) == received
        if seq < highest:
            reordered += 1
        highest = max(highest, seq)
        if last_t is not None and now - last_t > gap:
            gap, gap_after = now - last_t, seq
        if first_t is None:
            first_t = now
        last_t = now
    s.close()
    total = sent if sent is not None else highest + 1
    missing = [i for i in range(total) if i not in seen]
    out = {"received": len(seen), "sent": sent, "lost": len(missing),
           "lost_first": missing[:20], "duplicates": dup, "reordered": reordered,
           "longest_gap_ms": round(gap * 1000, 3), "gap_before_seq": gap_after,
           "complete": sent is not None}
    if sources:
        split = sorted(f for f, a in sources.items() if len(a) > 1)
        out.update(flows=len(sources), flows_split=len(split), split_first=[
            [f, sorted("%s:%d" % a for a in sources[f])] for f in split[:10]])
    if timeline is not None:
        timeline.close(time.monotonic())
        out["timeline"] = timeline.as_dict()
    return out


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m experiments.probe")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("recv")
    r.add_argument("--port", type=int, default=9000)
    r.add_argument("--duration", type=float, default=10.0, help="give up after this long")
    r.add_argument("--bin", type=float, default=0.01, metavar="SECONDS",
                   help="timeline bin width on the monotonic clock (default 0.01; 0: no "
                        "timeline)")
    r.add_argument("--out", metavar="FILE", help="also write the result JSON to FILE")
    s = sub.add_parser("send")
    s.add_argument("host")
    s.add_argument("--port", type=int, default=9000)
    s.add_argument("--rate", type=float, default=1000.0, help="datagrams per second")
    s.add_argument("--duration", type=float, default=3.0)
    s.add_argument("--size", type=int, default=64, help="UDP payload bytes (>= 24)")
    s.add_argument("--flow-packets", type=int, default=0, metavar="K",
                   help="send every K datagrams from a new source port (a new flow), "
                        "numbered, so the receiver can tell a flow mapped twice (0: one "
                        "flow)")
    a = p.parse_args(argv)
    if a.cmd == "recv":
        if a.duration <= 0:
            p.error("--duration must be positive (seconds to listen), got %g" % a.duration)
        try:
            _check_timeline(a.duration, a.bin)
        except ValueError as e:
            p.error(str(e))
        if a.out and not os.path.isdir(os.path.dirname(os.path.abspath(a.out))):
            # say so now, not after the whole stream has been received
            p.error("--out %s: its directory does not exist; create it first" % a.out)
        out = receive(a.port, a.duration, bin_s=a.bin)
        if a.out:
            with open(a.out, "w") as f:
                json.dump(out, f)
    else:
        if a.rate <= 0 or a.duration <= 0:
            p.error("--rate and --duration must be positive")
        if a.flow_packets < 0:
            p.error("--flow-packets must be 0 (one flow) or more, got %d" % a.flow_packets)
        try:
            out = send(a.host, a.port, a.rate, a.duration, a.size, a.flow_packets)
        except ValueError as e:
            p.error(str(e))
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

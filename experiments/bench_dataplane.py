"""``clickup bench dataplane``: what the NF's element graph costs on the wire.

One three-node namespace topology (client -- middle -- server), re-addressed
for each variant, carries the same two loads:

* TCP throughput: iperf3, one stream, MTU 1500, receiver-side goodput;
* UDP packet rate: iperf3 at full speed with 64-byte payloads, datagrams the
  server received per second (iperf3's own counts).

through three middles: (a) the kernel's IP forwarding, (b) the bare Python
AF_PACKET forwarder (nf/forwarder.py), (c) the NF running configs/nat.click.
Trials are interleaved and each figure is the median.  The middle runs pinned
to core 0 and the hosts on the last core (see topologies/netns.py).
"""

import os
import sys
import time

from experiments.bench import benchmark, emit, median, progress
from experiments.iperf import IperfError, parse_json, tcp_gbps, udp_summary

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAT_CONFIG = os.path.join(ROOT, "configs", "nat.click")
VARIANTS = ("kernel", "forwarder", "nat")


def _middle(t, variant):
    """Start the middle node's forwarding for ``variant``; returns the process or None."""
    if variant == "kernel":
        t.set_mode("kernel")
        return None
    if variant == "forwarder":
        t.set_mode("wire")
        cmd = [sys.executable, "-m", "experiments.cli", "nf", "forward", t.nf_in, t.nf_out]
    else:
        t.set_mode("nf")
        cmd = [sys.executable, "-m", "experiments.cli", "nf", "run", NAT_CONFIG]
        for k, v in t.nf_defines().items():
            cmd += ["-d", "%s=%s" % (k, v)]
    p = t.popen("nf", cmd, cwd=ROOT)
    return p


def _wait_path(t, proc, timeout=10.0):
    from topologies.netns import SERVER_IP
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("middle node exited: %s" % proc.stderr.read().decode()[-2000:])
        if t.run("c", ["ping", "-c", "1", "-W", "1", SERVER_IP]).returncode == 0:
            return
    raise RuntimeError("no path from client to server through the middle node")


def _iperf(t, args, seconds):
    from topologies.netns import SERVER_IP
    srv = t.popen("s", ["iperf3", "-s", "-1"])
    time.sleep(0.3)
    r = t.run("c", ["iperf3", "-c", SERVER_IP, "-t", seconds, "-J"] + args,
              timeout=seconds + 30)
    try:
        srv.wait(5)
    except Exception:
        t.kill(srv)
    return parse_json(r.stdout)


def measure(trials, seconds):
    from topologies.netns import ThreeNode
    res = {v: {"gbps": [], "kpps": []} for v in VARIANTS}
    with ThreeNode(mode="kernel") as t:
        for trial in range(trials):
            for v in VARIANTS:
                progress("trial %d/%d: %s" % (trial + 1, trials, v))
                p = _middle(t, v)
                try:
                    _wait_path(t, p)
                    res[v]["gbps"].append(tcp_gbps(_iperf(t, [], seconds)))
                    _, _, _, kpps = udp_summary(_iperf(t, ["-u", "-b", "0", "-l", "64"],
                                                       seconds))
                    res[v]["kpps"].append(kpps)
                finally:
                    if p is not None:
                        t.kill(p)
    return res


@benchmark("dataplane", "TCP Gbit/s and UDP kpps: kernel vs bare forwarder vs NAT")
def run(args):
    if os.geteuid() != 0:
        print("clickup bench dataplane: needs root (network namespaces)", file=sys.stderr)
        return 1
    trials = 1 if args.quick else args.trials
    seconds = 3 if args.quick else 5
    try:
        res = measure(trials, seconds)
    except (IperfError, RuntimeError) as e:
        print("clickup bench dataplane: %s" % e, file=sys.stderr)
        return 1
    out = {}
    for v, key in (("kernel", "kernel"), ("forwarder", "forwarder"), ("nat", "nat")):
        out[key + "_gbps"] = round(median(res[v]["gbps"]), 3)
        out[key + "_kpps"] = round(median(res[v]["kpps"]), 1)
    out["trials"] = trials
    out["seconds"] = seconds
    out["raw"] = res
    fw_g, fw_p = out["forwarder_gbps"], out["forwarder_kpps"]
    lines = ["dataplane: median of %d trial(s), %d s each, MTU 1500" % (trials, seconds),
             "%-10s %12s %14s" % ("middle", "TCP Gbit/s", "UDP-64 kpps")]
    for v in VARIANTS:
        lines.append("%-10s %12.3f %14.1f" % (v, out[v + "_gbps"], out[v + "_kpps"]))
    lines += ["ratios: nat/forwarder TCP %.2f, UDP %.2f; forwarder/kernel TCP %.2f, UDP %.2f"
              % (out["nat_gbps"] / fw_g if fw_g else 0, out["nat_kpps"] / fw_p if fw_p else 0,
                 fw_g / out["kernel_gbps"] if out["kernel_gbps"] else 0,
                 fw_p / out["kernel_kpps"] if out["kernel_kpps"] else 0),
              "targets: nat >= 1 Gbit/s TCP (%s); nat >= 50%% of forwarder kpps (%s)"
              % ("met" if out["nat_gbps"] >= 1 else "MISSED",
                 "met" if fw_p and out["nat_kpps"] >= 0.5 * fw_p else "MISSED")]
    emit(out, args.json, lines)
    return 0

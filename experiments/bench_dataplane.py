"""``clickup bench dataplane``: what the NF's element graph costs on the wire.

One three-node namespace topology (client -- middle -- server), re-addressed
for each variant, carries the same two loads:

* TCP throughput: iperf3, one stream, MTU 1500, receiver-side goodput;
* UDP packet rate: 64-byte UDP payloads (106-byte frames) offered as fast as
  netsniff-ng's trafgen can send them from the client (mmap'ed TX ring, one
  flow), and the frames the server host received per second, read from the
  server's own interface counters before and after.  (iperf3 cannot offer
  small datagrams faster than this machine's middles forward them, so with it
  every middle looked equally fast.)

through three middles: (a) the kernel's IP forwarding, (b) the bare Python
AF_PACKET forwarder (nf/forwarder.py), (c) the NF running configs/nat.click.
Trials are interleaved and each figure is the median.  The middle runs pinned
to core 0 and the hosts on the last core (see topologies/netns.py).
"""

import os
import shutil
import sys
import time

from experiments.bench import benchmark, emit, median, progress
from experiments.iperf import IperfError, parse_json, tcp_gbps
from experiments.results import provenance, run_dir, save_json

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
        return t.popen("nf", [sys.executable, "-m", "experiments.cli", "nf", "forward",
                              t.nf_in, t.nf_out], cwd=ROOT, text=True)
    t.set_mode("nf")
    return t.start_nf(NAT_CONFIG)


def _wait_path(t, proc, timeout=10.0):
    from topologies.netns import SERVER_IP
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("middle node exited: %s" % proc.stderr.read()[-2000:])
        if t.run("c", ["ping", "-c", "1", "-W", "1", SERVER_IP]).returncode == 0:
            return
    raise RuntimeError("no path from client to server through the middle node")


SINK = ("import socket, time\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "s.bind(('0.0.0.0', 9))\n"
        "time.sleep(3600)\n")     # bound, never read: no ICMP port-unreachable floods back


def _trafgen_conf(dst_mac, src_mac, src_ip, dst_ip, cpu, payload=64):
    b = lambda mac: ", ".join("0x" + x for x in mac.split(":"))   # noqa: E731
    q = lambda ip: ", ".join(ip.split("."))                        # noqa: E731
    return ("cpu(%d): { %s, %s, 0x08, 0x00,\n"
            "  0x45, 0x00, const16(%d), const16(1), 0x40, 0x00, 64, 17, csumip(14, 33),\n"
            "  %s, %s,\n"
            "  const16(4000), const16(9), const16(%d), const16(0),\n"
            "  fill(0x55, %d) }\n" % (cpu, b(dst_mac), b(src_mac), 28 + payload, q(src_ip),
                                      q(dst_ip), 8 + payload, payload))


def _counter(t, node, dev, name):
    return int(t.run(node, ["cat", "/sys/class/net/%s/statistics/%s" % (dev, name)]).stdout)


def _udp_rate(t, seconds, conf_path):
    """(offered kpps, received kpps): trafgen's frames counted leaving the client
    and arriving at the server, by the hosts' own interface counters."""
    from topologies.netns import CLIENT_IP, SERVER_IP
    mac = lambda node, dev: t.run(node, ["cat", "/sys/class/net/%s/address" % dev]).stdout.strip()  # noqa
    gw = mac("s", "s-eth0") if t.mode == "wire" else mac("nf", t.nf_in)
    with open(conf_path, "w") as f:
        f.write(_trafgen_conf(gw, mac("c", "c-eth0"), CLIENT_IP, SERVER_IP, t.host_cpu or 0))
    # trafgen forks one sender per CPU up to --cpus and pins each to its CPU; the
    # config's cpu(N) prefix leaves only the hosts' core with frames to send.
    cmd = ["timeout", "-s", "INT", str(seconds), "trafgen", "--dev", "c-eth0", "--conf",
           conf_path, "--cpus", str((t.host_cpu or 0) + 1), "-q", "-Q"]
    sink = t.popen("s", [sys.executable, "-c", SINK])
    try:
        for attempt in (1, 2):
            tx0 = _counter(t, "c", "c-eth0", "tx_packets")
            rx0 = _counter(t, "s", "s-eth0", "rx_packets")
            r = t.run("c", cmd, timeout=seconds + 30)
            time.sleep(0.3)                 # let the middle drain its queues
            tx1 = _counter(t, "c", "c-eth0", "tx_packets")
            rx1 = _counter(t, "s", "s-eth0", "rx_packets")
            if r.returncode in (0, 124, 130):
                break
            # trafgen sometimes gives up when the TX ring cannot be flushed (EAGAIN)
            progress("  trafgen failed (%d), %s: %s" % (
                r.returncode, "retrying" if attempt == 1 else "giving up",
                r.stderr.strip().splitlines()[-1:] or ""))
        else:
            raise RuntimeError("trafgen failed twice: %s" % r.stderr[-500:])
    finally:
        t.kill(sink)
    return (tx1 - tx0) / seconds / 1e3, (rx1 - rx0) / seconds / 1e3


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


def measure(trials, seconds, workdir):
    from topologies.netns import ThreeNode
    res = {v: {"gbps": [], "kpps": [], "offered_kpps": []} for v in VARIANTS}
    conf = os.path.join(workdir, "trafgen.cfg")
    rows = open(os.path.join(workdir, "results.csv"), "w")
    rows.write("trial,middle,tcp_gbps,udp_offered_kpps,udp_received_kpps\n")
    with rows, ThreeNode(mode="kernel") as t:
        for trial in range(trials):
            for v in VARIANTS:
                progress("trial %d/%d: %s" % (trial + 1, trials, v))
                p = _middle(t, v)
                try:
                    _wait_path(t, p)
                    res[v]["gbps"].append(tcp_gbps(_iperf(t, [], seconds)))
                    offered, kpps = _udp_rate(t, seconds, conf)
                    res[v]["kpps"].append(kpps)
                    res[v]["offered_kpps"].append(offered)
                    rows.write("%d,%s,%.4f,%.2f,%.2f\n" % (trial + 1, v, res[v]["gbps"][-1],
                                                          offered, kpps))
                    rows.flush()
                finally:
                    if p is not None:
                        t.kill(p)
    return res


@benchmark("dataplane", "TCP Gbit/s and UDP kpps: kernel vs bare forwarder vs NAT")
def run(args):
    if os.geteuid() != 0:
        print("clickup bench dataplane: needs root (network namespaces)", file=sys.stderr)
        return 1
    missing = [tool for tool in ("iperf3", "trafgen", "ethtool") if not shutil.which(tool)]
    if missing:
        print("clickup bench dataplane: missing %s (run make setup)" % ", ".join(missing),
              file=sys.stderr)
        return 1
    trials = 1 if args.quick else args.trials
    seconds = 3 if args.quick else 5
    out_dir = run_dir("bench-dataplane")
    save_json(os.path.join(out_dir, "provenance.json"), provenance(args))
    try:
        res = measure(trials, seconds, out_dir)
    except (IperfError, RuntimeError) as e:
        print("clickup bench dataplane: %s" % e, file=sys.stderr)
        return 1
    out = {}
    for v, key in (("kernel", "kernel"), ("forwarder", "forwarder"), ("nat", "nat")):
        out[key + "_gbps"] = round(median(res[v]["gbps"]), 3)
        out[key + "_kpps"] = round(median(res[v]["kpps"]), 1)
        out[key + "_offered_kpps"] = round(median(res[v]["offered_kpps"]), 1)
    out["trials"] = trials
    out["seconds"] = seconds
    out["raw"] = res
    out["results_dir"] = out_dir
    save_json(os.path.join(out_dir, "summary.json"), out)
    fw_g, fw_p = out["forwarder_gbps"], out["forwarder_kpps"]
    lines = ["dataplane: median of %d trial(s), %d s each, MTU 1500" % (trials, seconds),
             "%-10s %12s %14s %14s" % ("middle", "TCP Gbit/s", "UDP-64 kpps", "(offered)")]
    for v in VARIANTS:
        lines.append("%-10s %12.3f %14.1f %14.1f" % (v, out[v + "_gbps"], out[v + "_kpps"],
                                                     out[v + "_offered_kpps"]))
    lines += ["ratios: nat/forwarder TCP %.2f, UDP %.2f; forwarder/kernel TCP %.2f, UDP %.2f"
              % (out["nat_gbps"] / fw_g if fw_g else 0, out["nat_kpps"] / fw_p if fw_p else 0,
                 fw_g / out["kernel_gbps"] if out["kernel_gbps"] else 0,
                 fw_p / out["kernel_kpps"] if out["kernel_kpps"] else 0),
              "targets: nat >= 1 Gbit/s TCP (%s); nat >= 50%% of forwarder kpps (%s)"
              % ("met" if out["nat_gbps"] >= 1 else "MISSED",
                 "met" if fw_p and out["nat_kpps"] >= 0.5 * fw_p else "MISSED")]
    lines.append("raw data: %s" % out_dir)
    emit(out, args.json, lines)
    return 0

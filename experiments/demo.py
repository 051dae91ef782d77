"""``make demo``: the NAT in a small Mininet network, with a real download through it.

client h1 (10.0.0.1) -- nf (configs/nat.click) -- server h2 (10.0.1.1)

It downloads a file from a web server on h2 with ``wget``, runs iperf3 TCP
for a few seconds, and prints the figures the tools measured, then the NAT's
table as its control socket reports it (for information).  Raw outputs and
provenance go to results/demo/<timestamp>/.
"""

import os
import re
import subprocess
import sys
import time

from experiments.iperf import parse_json, tcp_gbps
from experiments.results import provenance, run_dir, save_json

FILE_MB = 100


def main():
    if os.geteuid() != 0:
        print("make demo needs root (Mininet)", file=sys.stderr)
        return 1
    from mininet.log import setLogLevel
    from mininet.net import Mininet
    from nf.control import ControlClient
    from topologies.nfnode import NFNode

    setLogLevel("warning")
    out = run_dir("demo")
    prov = provenance()
    save_json(os.path.join(out, "provenance.json"), prov)
    net = Mininet(topo=None, build=False, controller=None)
    procs = []
    try:
        h1 = net.addHost("h1", ip="10.0.0.1/24", defaultRoute="via 10.0.0.254")
        h2 = net.addHost("h2", ip="10.0.1.1/24")
        nf = net.addHost("nf", cls=NFNode, ip=None,
                         defines={"in_if": "nf-eth0", "out_if": "nf-eth1"},
                         control=os.path.join(out, "nf.sock"))
        net.addLink(h1, nf)
        net.addLink(h2, nf)
        net.build()
        for h in (h1, h2):
            h.cmd("ethtool -K %s-eth0 tx off >/dev/null 2>&1" % h.name)
        print("== clickup demo: client h1 -- NAT (configs/nat.click) -- server h2")
        print(h1.cmd("ping -c 3 -i 0.2 10.0.1.1").strip().splitlines()[-1])

        www = os.path.join(out, "www")
        os.makedirs(www)
        with open(os.path.join(www, "file.bin"), "wb") as f:
            f.write(os.urandom(FILE_MB * 1000 * 1000))
        srv = h2.popen([sys.executable, "-m", "http.server", "8000", "--bind", "10.0.1.1",
                        "--directory", www], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        procs.append(srv)
        time.sleep(1.0)
        print("wget: downloading a %d MB file through the NAT ..." % FILE_MB)
        t0 = time.time()
        log = h1.cmd("wget -O /dev/null http://10.0.1.1:8000/file.bin 2>&1")
        wall = time.time() - t0
        with open(os.path.join(out, "wget.log"), "w") as f:
            f.write(log)
        ok = "saved" in log
        rate = re.search(r"\(([\d.]+ [KMG]B/s)\)", log)
        print("wget: %s in %.2f s (wall clock), wget's rate %s"
              % ("done" if ok else "FAILED", wall, rate.group(1) if rate else "?"))

        ip = h2.popen(["iperf3", "-s", "-1"], stdout=subprocess.DEVNULL,
                      stderr=subprocess.DEVNULL)
        procs.append(ip)
        time.sleep(0.5)
        text = h1.cmd("iperf3 -c 10.0.1.1 -t 5 -J")
        with open(os.path.join(out, "iperf3.json"), "w") as f:
            f.write(text)
        gbps = tcp_gbps(parse_json(text))
        print("iperf3: TCP %.3f Gbit/s through the NAT (receiver side, 5 s)" % gbps)

        with ControlClient(nf.control) as c:
            mappings = c.read("rw.mappings")
            size = c.read("rw.table_size")
        print("NAT table (from its control socket, for information): %s mappings" % size)
        print("\n".join("  " + l for l in mappings.splitlines()[:6]))
        save_json(os.path.join(out, "summary.json"),
                  {"wget_ok": ok, "wget_seconds": wall, "file_mb": FILE_MB,
                   "wget_rate": rate.group(1) if rate else None, "iperf3_tcp_gbps": gbps,
                   "nat_table_size": int(size)})
        print("results: %s" % out)
        return 0 if ok else 1
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
        net.stop()
        import shutil
        shutil.rmtree(os.path.join(out, "www"), ignore_errors=True)   # the 100 MB payload


if __name__ == "__main__":
    sys.exit(main())

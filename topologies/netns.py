"""A three-node line of network namespaces: client -- NF -- server.

The lightest topology the project has, for the NF's root tests and the data
plane benchmark; the Mininet topologies build the same shape with more hosts.
Every name it creates carries a tag (``cu<tag>-c``, ``cu<tag>-nf``,
``cu<tag>-s``), so teardown removes exactly what this run made: its processes
(by PID, then whatever still runs inside its namespaces) and its namespaces
(their veth pairs go with them).

Addressing: inside 10.0.0.0/24 (client .1, NF .254), outside 10.0.1.0/24
(server .1, NF .254).  ``mode`` says what the middle node is:

* ``nf``     -- no IP address and ip_forward=0 on the NF node, so only a
               userspace NF (configs/nat.click) answers for .254;
* ``kernel`` -- the NF node's kernel routes between the two subnets;
* ``wire``   -- no addresses in the middle; client and server reach each
               other on-link, for a forwarder that copies frames unchanged.

Transmit checksum offload is off on the end hosts (which also turns TSO off),
because frames forwarded in userspace must carry finished checksums.

CPU placement: on a machine with two or more cores, the end hosts' receive
processing is steered (RPS) to the last core, and ``popen(..., cpu=)`` pins a
process to a core, so the middle node can have core 0 to itself.  Otherwise
the kernel runs the receiving host's whole TCP stack inside the forwarder's
send() calls and charges it to the forwarder.
"""

import os
import signal
import subprocess
import time

__all__ = ["ThreeNode", "CLIENT_IP", "SERVER_IP", "NF_IN_IP", "NF_OUT_IP"]

CLIENT_IP, NF_IN_IP = "10.0.0.1", "10.0.0.254"
SERVER_IP, NF_OUT_IP = "10.0.1.1", "10.0.1.254"


def sh(*cmd, check=True, ns=None, capture=False):
    full = (["ip", "netns", "exec", ns] if ns else []) + [str(c) for c in cmd]
    r = subprocess.run(full, stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True)
    if check and r.returncode != 0:
        raise RuntimeError("%s failed: %s" % (" ".join(full), r.stderr.strip()))
    return r.stdout if capture else r.returncode


class ThreeNode:
    """``with ThreeNode("t1", mode="nf", mtu=1500) as t: t.popen("c", [...])``"""

    def __init__(self, tag=None, mode="nf", mtu=1500):
        ncpu = os.cpu_count() or 1
        self.nf_cpu, self.host_cpu = (0, ncpu - 1) if ncpu >= 2 else (None, None)
        if mode not in ("nf", "kernel", "wire"):
            raise ValueError("mode must be nf, kernel or wire, not %r" % mode)
        self.tag = tag or str(os.getpid() % 100000)
        self.mode, self.mtu = mode, mtu
        self.ns = {k: "cu%s-%s" % (self.tag, k) for k in ("c", "nf", "s")}
        self.procs = []
        self.nf_in, self.nf_out = "nf-eth0", "nf-eth1"

    # -- building ---------------------------------------------------------------------------
    def start(self):
        try:
            self._build()
        except BaseException:
            self.stop()
            raise
        return self

    def _build(self):
        c, nf, s = self.ns["c"], self.ns["nf"], self.ns["s"]
        from experiments.owned import record
        for n in (c, nf, s):
            sh("ip", "netns", "add", n)
            record("netns", n)
            sh("sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", ns=n)
            sh("sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1", ns=n)
            sh("ip", "link", "set", "lo", "up", ns=n)
        sh("ip", "link", "add", "c-eth0", "netns", c, "type", "veth", "peer", "name",
           self.nf_in, "netns", nf)
        sh("ip", "link", "add", "s-eth0", "netns", s, "type", "veth", "peer", "name",
           self.nf_out, "netns", nf)
        for n, dev in ((c, "c-eth0"), (nf, self.nf_in), (nf, self.nf_out), (s, "s-eth0")):
            sh("ip", "link", "set", dev, "mtu", self.mtu, "up", ns=n)
        for n, dev in ((c, "c-eth0"), (s, "s-eth0")):
            sh("ethtool", "-K", dev, "tx", "off", "gro", "on", ns=n)
            if self.host_cpu is not None:
                sh("sh", "-c", "echo %x > /sys/class/net/%s/queues/rx-0/rps_cpus"
                   % (1 << self.host_cpu, dev), ns=n)
        # The NF's devices must hand the NF exactly the frames on the wire.
        for dev in (self.nf_in, self.nf_out):
            sh("ethtool", "-K", dev, "tx", "off", "gro", "off", ns=nf, check=False)
        self.set_mode(self.mode)

    def set_mode(self, mode):
        """Re-address the same namespaces and links for another middle-node mode."""
        if mode not in ("nf", "kernel", "wire"):
            raise ValueError("mode must be nf, kernel or wire, not %r" % mode)
        c, nf, s = self.ns["c"], self.ns["nf"], self.ns["s"]
        for n, dev in ((c, "c-eth0"), (nf, self.nf_in), (nf, self.nf_out), (s, "s-eth0")):
            sh("ip", "addr", "flush", "dev", dev, ns=n)
            sh("ip", "neigh", "flush", "dev", dev, ns=n, check=False)
        sh("ip", "addr", "add", CLIENT_IP + "/24", "dev", "c-eth0", ns=c)
        sh("ip", "addr", "add", SERVER_IP + "/24", "dev", "s-eth0", ns=s)
        sh("sysctl", "-qw", "net.ipv4.ip_forward=%d" % (mode == "kernel"), ns=nf)
        if mode == "kernel":
            sh("ip", "addr", "add", NF_IN_IP + "/24", "dev", self.nf_in, ns=nf)
            sh("ip", "addr", "add", NF_OUT_IP + "/24", "dev", self.nf_out, ns=nf)
            sh("ip", "route", "add", "default", "via", NF_IN_IP, ns=c)
            sh("ip", "route", "add", "10.0.0.0/24", "via", NF_OUT_IP, ns=s)
        elif mode == "nf":
            sh("ip", "route", "add", "default", "via", NF_IN_IP, ns=c)
        else:
            sh("ip", "route", "add", "10.0.1.0/24", "dev", "c-eth0", ns=c)
            sh("ip", "route", "add", "10.0.0.0/24", "dev", "s-eth0", ns=s)
        self.mode = mode

    def nf_defines(self):
        """The -d parameters that fit configs/nat.click to this topology."""
        return {"in_if": self.nf_in, "out_if": self.nf_out, "in_ip": NF_IN_IP,
                "in_net": "10.0.0.0/24", "out_ip": NF_OUT_IP, "out_net": "10.0.1.0/24"}

    def start_nf(self, config, control=None, extra=(), timeout=10.0):
        """Start ``clickup nf run CONFIG`` on the NF node with this topology's -d
        parameters (plus ``extra`` options); with ``control``, wait until its control
        socket exists (RuntimeError with the NF's stderr if it exits first).  The
        process's pipes are text."""
        from topologies.procs import nf_command
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        p = self.popen("nf", nf_command(config, self.nf_defines(), control, extra), cwd=root,
                       text=True)
        deadline = time.monotonic() + timeout
        while control and not os.path.exists(control):
            if p.poll() is not None:
                raise RuntimeError("the NF exited: %s" % p.stderr.read())
            if time.monotonic() > deadline:
                raise RuntimeError("the NF did not open %s within %.0f s" % (control, timeout))
            time.sleep(0.02)
        return p

    def probe_stream(self, rate, seconds, during, after=0.8):
        """A sequence-numbered UDP stream (experiments.probe) from the client to the
        server at ``rate``/s for ``seconds``; ``during()`` runs ``after`` s in.  Returns
        (sender's report, receiver's report, what ``during`` returned)."""
        import json
        import sys
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        rcv = self.popen("s", [sys.executable, "-m", "experiments.probe", "recv",
                               "--duration", seconds + 30], cwd=root, text=True)
        if not json.loads(rcv.stdout.readline()).get("ready"):
            raise RuntimeError("the probe receiver did not start")
        snd = self.popen("c", [sys.executable, "-m", "experiments.probe", "send", SERVER_IP,
                               "--rate", rate, "--duration", seconds], cwd=root, text=True)
        time.sleep(after)
        result = during()
        return json.loads(snd.stdout.readline()), json.loads(rcv.stdout.readline()), result

    # -- processes -------------------------------------------------------------------------
    def cpu_for(self, node):
        """The core a node's processes are pinned to (None: not pinned)."""
        return self.nf_cpu if node == "nf" else self.host_cpu

    def _wrap(self, node, cmd):
        cpu = self.cpu_for(node)
        pin = ["taskset", "-c", str(cpu)] if cpu is not None else []
        return ["ip", "netns", "exec", self.ns[node]] + pin + [str(x) for x in cmd]

    def popen(self, node, cmd, **kw):
        """Start ``cmd`` in a node ('c', 'nf' or 's'), pinned to the node's core;
        it is killed at teardown."""
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        p = subprocess.Popen(self._wrap(node, cmd), start_new_session=True, **kw)
        self.procs.append(p)
        from experiments.owned import record
        record("pid", p.pid, " ".join(str(x) for x in cmd))
        return p

    def run(self, node, cmd, timeout=60, check=False):
        r = subprocess.run(self._wrap(node, cmd), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=timeout)
        if check and r.returncode:
            raise RuntimeError("%s failed (%d): %s" % (" ".join(map(str, cmd)), r.returncode,
                                                       r.stderr.strip()))
        return r

    def kill(self, p, sig=signal.SIGTERM, wait=5.0):
        if p.poll() is None:
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                pass
            try:
                p.wait(wait)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(5)

    # -- teardown ---------------------------------------------------------------------------
    def stop(self):
        from experiments.owned import forget
        for p in reversed(self.procs):
            try:
                self.kill(p)
            except Exception:
                pass
            forget("pid", p.pid)
        for n in self.ns.values():
            # Anything still running in a namespace we made is ours (a daemonised iperf3).
            out = subprocess.run(["ip", "netns", "pids", n], stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, text=True).stdout
            for pid in out.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            subprocess.run(["ip", "netns", "del", n], stderr=subprocess.DEVNULL)
            forget("netns", n)
        time.sleep(0.05)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

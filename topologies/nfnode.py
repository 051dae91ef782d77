"""The NF as a Mininet node.

``NFNode`` is a Mininet ``Node`` whose ``config()`` prepares its interfaces the
way a userspace NF needs them -- no IP address (the NF owns its addresses, so
the node's kernel must not answer ARP or send RSTs for them), ip_forward off,
IPv6 off, offloads off -- and starts ``clickup nf run`` on the given Click
config with a control socket (``extra``: more ``clickup nf run`` options, e.g.
replication's); ``terminate()`` stops that process (SIGTERM,
then SIGKILL by PID) before the node goes.

    net.addHost('nf', cls=NFNode, nfconfig='configs/nat.click',
                defines={'in_if': 'nf-eth0', 'out_if': 'nf-eth1'})
"""

import os
import subprocess
import time

from mininet.node import Node
from topologies.procs import nf_command, stop

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class NFNode(Node):
    def __init__(self, name, nfconfig=None, defines=None, control=None, extra=(), **params):
        super().__init__(name, **params)
        self.nfconfig = nfconfig or os.path.join(ROOT, "configs", "nat.click")
        self.defines = dict(defines or {})
        self.control = control or "/tmp/clickup-%s-%d.sock" % (name, os.getpid())
        self.extra = list(extra)
        self.nfproc = None

    def config(self, **params):
        r = super().config(**params)
        self.cmd("sysctl -qw net.ipv4.ip_forward=0 net.ipv6.conf.all.disable_ipv6=1")
        for intf in self.intfList():
            if intf.name == "lo":
                continue
            self.cmd("ip addr flush dev %s" % intf.name)
            self.cmd("ethtool -K %s tx off gro off >/dev/null 2>&1" % intf.name)
        self.start_nf()
        return r

    def start_nf(self, timeout=10.0):
        cmd = nf_command(self.nfconfig, self.defines, self.control, self.extra)
        if os.path.exists(self.control):
            os.unlink(self.control)         # a stale socket must not look like a ready NF
        self.log = open(self.control + ".log", "w")   # never a pipe nobody reads
        self.nfproc = self.popen(cmd, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + timeout
        while not os.path.exists(self.control):
            if self.nfproc.poll() is not None:
                with open(self.control + ".log") as f:
                    raise RuntimeError("the NF on %s failed to start:\n%s"
                                       % (self.name, f.read()[-3000:]))
            if time.time() > deadline:
                raise RuntimeError("the NF on %s did not open %s" % (self.name, self.control))
            time.sleep(0.05)

    def stop_nf(self):
        p, self.nfproc = self.nfproc, None
        stop(p)
        if getattr(self, "log", None) is not None:
            self.log.close()
            self.log = None
            try:
                os.unlink(self.control + ".log")
            except OSError:
                pass

    def terminate(self):
        self.stop_nf()
        super().terminate()

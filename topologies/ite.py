"""``ite``: RFC 7654's simple isolated test environment, as a Mininet topology.

    h1..hN --[bridge s1 | direct]-- nf --[bridge s2 | direct]-- srv1..srvM

N client hosts, the NF node (``NFNode``: configs/nat.click, or
configs/firewall.click with ``nf=firewall``) and M server hosts.  Each side is a
direct link when it has one host, else a Linux bridge (``switch=lxbr`` forces
bridges, ``switch=direct`` refuses more than one host); no OpenFlow controller
is involved.  ``bw=`` (Mbit/s, at most 1000) shapes every link with htb
(``ShapedLink``, a TCLink); delay and loss are never passed: there is no netem.  The end
hosts turn tx checksum offload off and IPv6 off, so frames the NF forwards in
userspace carry finished checksums and no stray IPv6 chatter.  The NF's ports
are always ``nf-eth0`` (inside) and ``nf-eth1`` (outside).

Addressing.  NAT: inside 10.0.0.0/24 (clients .1..N, gateway nf .254), outside
10.0.1.0/24 (servers .1..M; the NAT's .254).  Firewall (a bump in the wire): the
same host addresses in one shared subnet, 10.0.0.0/16, with no gateway.

Switch names (the only names this topology puts in the root namespace) start
with ``tag``, so concurrent networks do not collide.  The ``sdn`` topology
(topologies/sdn.py) is this class with Open vSwitch switches.

    mn --custom topologies/ite.py --topo ite,clients=2,servers=1,bw=46,nf=nat \\
       --controller none --test download

``running(ITE(...))`` builds, starts and always stops a network (Ctrl-C,
SIGTERM or a failure included); ``download`` and ``reach`` check it carries
traffic, and are also ``mn --test`` names.
"""

import contextlib
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

# `mn --custom` execs this file with no __file__ and without the project on sys.path.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(sys._getframe().f_code.co_filename)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from mininet.link import Link, TCIntf, TCLink  # noqa: E402
from mininet.log import error, output  # noqa: E402
from mininet.net import Mininet  # noqa: E402
from mininet.node import Host  # noqa: E402
from mininet.nodelib import LinuxBridge  # noqa: E402
from mininet.topo import Topo  # noqa: E402

from topologies.nfnode import NFNode  # noqa: E402
from topologies.procs import stop as stop_process  # noqa: E402

__all__ = ["ITE", "EndHost", "ShapedLink", "running", "download", "reach", "topos", "tests",
           "NF_IN_IP", "NF_OUT_IP", "NFS"]

NFS = {"nat": os.path.join(_ROOT, "configs", "nat.click"),
       "firewall": os.path.join(_ROOT, "configs", "firewall.click")}
NF_IN_IP, NF_OUT_IP = "10.0.0.254", "10.0.1.254"
INSIDE_NET, OUTSIDE_NET = "10.0.0.0/24", "10.0.1.0/24"
NF_IN_IF, NF_OUT_IF = "nf-eth0", "nf-eth1"


class HtbIntf(TCIntf):
    """A shaped interface that keeps quiet about htb's "quantum is big" note.

    Mininet's single htb class has no sibling to share with, so a large quantum
    (rate / r2q) is harmless; Mininet would print the note as an error for
    every interface."""

    def tc(self, cmd, tc="tc"):
        out = super().tc(cmd, tc)
        return "" if "quantum of class" in out and "is big" in out else out


class ShapedLink(TCLink):
    """A veth pair shaped by htb at ``bw`` Mbit/s in both directions (no netem)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("cls1", HtbIntf)
        kwargs.setdefault("cls2", HtbIntf)
        super().__init__(*args, **kwargs)


class EndHost(Host):
    """A client or server: tx checksum offload off (so TSO off too) and no IPv6."""

    def config(self, **params):
        r = super().config(**params)
        self.cmd("sysctl -qw net.ipv6.conf.all.disable_ipv6=1 "
                 "net.ipv6.conf.default.disable_ipv6=1")
        for intf in self.intfList():
            if intf.name != "lo":
                self.cmd("ethtool -K %s tx off >/dev/null 2>&1" % intf.name)
        return r


class ITE(Topo):
    """clients -- NF -- servers; see the module docstring for the parameters."""

    # switch kind -> (Mininet class, extra switch parameters)
    NAME = "ite"
    SWITCHES = {"lxbr": (LinuxBridge, {})}
    DEFAULT_SWITCH = "lxbr"
    DIRECT = True                       # a one-host side may be a direct link
    # what describe() calls each switch kind
    SWITCH_TEXT = {"lxbr": "Linux bridge", "direct": "direct link"}

    def build(self, clients=1, servers=1, nf="nat", bw=None, switch="auto", tag="",
              config=None, defines=None, control=None):
        """clients, servers: host counts; nf: 'nat' or 'firewall'; bw: Mbit/s per link
        (None: unshaped); switch: 'auto', 'direct' or a key of SWITCHES; tag: prefix of
        the switch names (<= 6 letters/digits); config: a Click file instead of nf's;
        defines: extra -d parameters for it; control: the NF's control socket path."""
        if nf not in NFS:
            raise ValueError("nf must be one of %s, not %r" % (", ".join(NFS), nf))
        for what, n in (("clients", clients), ("servers", servers)):
            if not isinstance(n, int) or not 1 <= n <= 200:
                raise ValueError("%s must be a whole number from 1 to 200, not %r" % (what, n))
        if bw is not None and not (isinstance(bw, (int, float)) and 0 < bw <= 1000):
            raise ValueError("bw must be a rate in Mbit/s above 0 and at most 1000 (Mininet's "
                             "htb limit), or None for unshaped links; not %r" % (bw,))
        tag = str(tag)       # mn's inline parameters turn tag=12 into a number
        if len(tag) > 6 or (tag and not tag.isalnum()):
            raise ValueError("tag must be at most 6 letters or digits, not %r" % tag)
        self.nf, self.tag, self.bw = nf, tag, bw
        self.clients = ["h%d" % i for i in range(1, clients + 1)]
        self.servers = ["srv%d" % j for j in range(1, servers + 1)]
        self.nf_name = "nf"
        self.nf_names = [self.nf_name]      # the NF nodes (sdn's pair: nf1 and nf2)
        self.linkopts = {"cls": ShapedLink, "bw": bw} if bw else {"cls": Link}

        # The NF runs from the project's directory: make a relative config path absolute.
        nfconfig = os.path.abspath(config) if config else NFS[nf]
        self.addHost(self.nf_name, cls=NFNode, ip=None, nfconfig=nfconfig,
                     defines=dict(self.nf_defines(), **(defines or {})), control=control)
        for name in self.clients + self.servers:
            self.addHost(name, cls=EndHost, **self.host_params(name))
        self._side(self.clients, 0, 1, switch)
        self._side(self.servers, 1, 2, switch)

    def _side(self, hosts, nf_port, index, switch):
        """Connect one side's hosts to NF port ``nf_port``, directly or through switch ``index``."""
        kind = self._kind(switch, len(hosts))
        if kind == "direct":
            self.addLink(hosts[0], self.nf_name, port2=nf_port, **self.linkopts)
            return
        cls, extra = self.SWITCHES[kind]
        sw = self.addSwitch("%ss%d" % (self.tag, index), cls=cls, dpid="%016x" % index,
                            **extra)
        self.addLink(sw, self.nf_name, port2=nf_port, **self.linkopts)
        for h in hosts:
            self.addLink(h, sw, **self.linkopts)

    def _kind(self, switch, nhosts):
        choices = ["auto"] + (["direct"] if self.DIRECT else []) + sorted(self.SWITCHES)
        if switch not in choices:
            raise ValueError("switch must be one of %s, not %r" % (", ".join(choices), switch))
        if switch == "auto":
            return "direct" if self.DIRECT and nhosts == 1 else self.DEFAULT_SWITCH
        if switch == "direct" and nhosts > 1:
            raise ValueError("switch=direct links one host per side; this side has %d "
                             "(use switch=auto or a bridge)" % nhosts)
        return switch

    def describe(self):
        """This network as a run's records state it (trial.json, the ISSU report's
        Topology section): names, counts, switch kind, shaping, the NF and its config."""
        # Read off the built graph: each switch's class, and a side without one is direct.
        kinds = {k for sw in self.switches() for k, (cls, _) in self.SWITCHES.items()
                 if self.nodeInfo(sw)["cls"] is cls}
        kinds = sorted(kinds | ({"direct"} if len(self.switches()) < 2 else set()))
        sw = " / ".join(self.SWITCH_TEXT.get(k, k) for k in kinds)
        nfconfig = self.nodeInfo(self.nf_names[0])["nfconfig"]
        config = os.path.relpath(nfconfig, _ROOT) \
            if nfconfig.startswith(_ROOT + os.sep) else nfconfig
        return {"name": self.NAME, "clients": len(self.clients), "servers": len(self.servers),
                "switch": "+".join(kinds), "bw_mbit": self.bw, "nf": self.nf,
                "config": config, "nf_nodes": list(self.nf_names),
                "description": "%s -- %s -- %s -- %s -- %s; veth links, %s"
                % (_count(self.clients, "client"), sw, self.describe_nf(), sw,
                   _count(self.servers, "server"),
                   "htb-shaped to %g Mbit/s" % self.bw if self.bw else "unshaped")}

    def describe_nf(self):
        return "NF (%s, userspace, AF_PACKET)" % self.nf

    # -- addressing --------------------------------------------------------------------------
    def host_ip(self, name):
        """The address of host ``name`` (no prefix length)."""
        if name in self.clients:
            return "10.0.0.%d" % (self.clients.index(name) + 1)
        if name in self.servers:
            return "10.0.1.%d" % (self.servers.index(name) + 1)
        raise KeyError("%r is neither a client (%s) nor a server (%s)"
                       % (name, ", ".join(self.clients), ", ".join(self.servers)))

    def host_params(self, name):
        """Mininet addHost parameters: the address, and for NAT clients the gateway."""
        if self.nf == "firewall":
            return {"ip": self.host_ip(name) + "/16"}
        params = {"ip": self.host_ip(name) + "/24"}
        if name in self.clients:
            params["defaultRoute"] = "via " + NF_IN_IP
        return params

    def nf_defines(self):
        """The -d parameters that fit the NF's Click configuration to this topology."""
        d = {"in_if": NF_IN_IF, "out_if": NF_OUT_IF}
        if self.nf == "nat":
            d.update(in_ip=NF_IN_IP, in_net=INSIDE_NET, out_ip=NF_OUT_IP, out_net=OUTSIDE_NET)
        return d


def _count(names, what):
    return "%d %s%s" % (len(names), what, "" if len(names) == 1 else "s")


# -- running a network ---------------------------------------------------------------------------

def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt("signal %d" % signum)


@contextlib.contextmanager
def _stop_on_sigterm():
    """Within the block, SIGTERM unwinds like Ctrl-C, so ``finally`` clauses tear down."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _teardown(net):
    """net.stop() with Ctrl-C and SIGTERM held off, so a second one cannot cut it short."""
    if threading.current_thread() is not threading.main_thread():
        net.stop()
        return
    old = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        net.stop()
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@contextlib.contextmanager
def running(topo, controller=None, connect_timeout=20.0, **mininet_params):
    """Build and start a Mininet network for ``topo``; always stop it on the way out.

    ``controller``: a Mininet controller class for switches that need one (sdn).
    Yields the ``Mininet`` object; ``net.topo`` is ``topo``."""
    with _stop_on_sigterm():
        net = Mininet(topo=topo, controller=controller, build=False, **mininet_params)
        try:
            net.build()
            net.start()
            if net.controllers and not net.waitConnected(timeout=connect_timeout):
                raise RuntimeError("the switches did not connect to the controller within "
                                   "%.0f s" % connect_timeout)
            yield net
        finally:
            _teardown(net)


# -- checks (also `mn --test` names) ---------------------------------------------------------------

def _await_output(p, text, timeout):
    """Wait for process ``p`` to print a line containing ``text``; False if it exits first
    or ``timeout`` s pass."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not select.select([p.stdout], [], [], max(0.0, deadline - time.time()))[0]:
            break
        line = p.stdout.readline()
        if not line:
            return False
        if text in line.decode(errors="replace"):
            return True
    return False


def download(net, nbytes=1000000, client=0, server=0, port=8000, timeout=20):
    """Serve ``nbytes`` random bytes over HTTP from a server host and fetch them with
    ``wget`` (one try, no resume) on a client, through the NF.

    ``client``, ``server``: indexes into the topology's clients and servers.
    Returns ``(ok, message)``; ok means every byte arrived intact."""
    topo = net.topo
    c, s = net.get(topo.clients[client]), net.get(topo.servers[server])
    url = "http://%s:%d/file.bin" % (topo.host_ip(s.name), port)
    www = tempfile.mkdtemp(prefix="clickup-www-")
    srv = None
    try:
        payload = os.urandom(nbytes)
        with open(os.path.join(www, "file.bin"), "wb") as f:
            f.write(payload)
        srv = s.popen([sys.executable, "-u", "-m", "http.server", str(port), "--bind",
                       topo.host_ip(s.name), "--directory", www],
                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if not _await_output(srv, "Serving HTTP", 10):
            return False, "the HTTP server on %s did not start" % s.name
        got_path = os.path.join(www, "got.bin")
        t0 = time.time()
        log = c.cmd("wget -nv -t 1 -T %d -O %s %s 2>&1" % (timeout, got_path, url))
        secs = time.time() - t0
        got = open(got_path, "rb").read() if os.path.exists(got_path) else b""
        if got != payload:
            return False, ("%s got %d of %d bytes from %s: %s"
                           % (c.name, len(got), nbytes, url, log.strip()[-300:]))
        return True, "%s downloaded %d bytes from %s in %.2f s" % (c.name, nbytes, url, secs)
    finally:
        stop_process(srv)
        shutil.rmtree(www, ignore_errors=True)


def reach(net, count=2):
    """Every client pings every server through the NF (``count`` echoes each).

    Returns the (client, server) pairs for which no echo came back."""
    topo = net.topo
    failed = []
    for cname in topo.clients:
        for sname in topo.servers:
            out = net.get(cname).cmd("ping -c %d -i 0.2 -W 2 %s" % (count, topo.host_ip(sname)))
            m = re.search(r"(\d+) received", out)
            if not m or int(m.group(1)) == 0:
                failed.append((cname, sname))
    return failed


def _mn_test(name, check):
    """Run ``check() -> (ok, message)`` for ``mn --test`` and print the outcome.  Never
    raises: a failing test would make ``mn`` run its machine-wide cleanup."""
    try:
        ok, msg = check()
    except Exception as e:  # noqa: BLE001 -- see the doc string
        ok, msg = False, "%s: %s" % (type(e).__name__, e)
    (output if ok else error)("*** %s %s: %s\n" % (name, "ok" if ok else "FAILED", msg))


def download_test(net, nbytes=1000000):
    """mn --test download[,NBYTES]: the first client downloads from the first server."""
    _mn_test("download", lambda: download(net, nbytes=int(nbytes)))


def reach_test(net):
    """mn --test reach: every client pings every server."""
    def check():
        failed = reach(net)
        return not failed, (" ".join("%s->%s" % p for p in failed)
                            or "every client reached every server")
    _mn_test("reach", check)


topos = {"ite": ITE}
tests = {"download": download_test, "reach": reach_test}

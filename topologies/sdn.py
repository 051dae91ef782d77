"""``sdn``: the ``ite`` shape with Open vSwitch switches and the os-ken controller.

    h1..hN -- OVS s1 -- nf -- OVS s2 -- srv1..srvM        (controller: L2Learning)

Both sides always go through a switch.  The switches are ``UserOVSSwitch``:
OVS's userspace datapath (``datapath_type=netdev``; the machines have no OVS
kernel module), OpenFlow 1.3, fail mode secure, so nothing crosses them unless
the controller installed it.  Addressing, NF choice, ``bw=`` and ``tag`` are the
``ITE`` parameters (topologies/ite.py).

Processes, and who stops them:

* OVS: started with ``ovs-ctl start --system-id=random`` when it is not
  running, and stopped again after the last of our bridges went, only if this
  process started it.  Bridges are deleted by name (Mininet's switch stop), so
  only the ones this topology made.
* The controller: ``OsKenController`` is a Mininet controller node that runs
  ``python -m topologies.controller`` (topologies/controller.py) in a
  subprocess on a free port, and stops it by PID in ``stop()``.  Its Python is
  the one running this module if it has os-ken (or Ryu), else the project's
  .venv -- so plain ``mn`` (Debian's python3) works too:

    mn --custom topologies/sdn.py --topo sdn,clients=2 --controller osken --test download

``network(**params)`` is ``ite.running(SDN(**params), controller=OsKenController)``.

The standby pair (``pair=True``): two NF nodes, nf1 (active) and nf2, each with
its inside port on s1 and outside port on s2.  With ``nf=nat`` both carry the same
fixed MACs (``NF_MAC``), so hosts never see which one forwards, and the steering
app steers by that MAC (mode "mac"); with ``nf=firewall`` -- a bump in the wire,
whose frames keep the hosts' MACs -- it steers every host frame by port (mode
"wire") and the NF ports need no shared MAC.  The controller then runs
the NFSteering app (topologies/steering.py) with the config the topology
generates (``SDN.steering``) and a REST port of its own
(``OsKenController.rest_port``); ``steering_status(port)`` and
``move_to(port, nf)`` are its clients.  ``replicate=True`` also starts the NFs
with the replication options (nf1 active, replicating to nf2).  Under ``mn``
the controller takes the pair config from the last SDN topology built in the
process:

    mn --custom topologies/sdn.py --topo sdn,pair=1 --controller osken --test download
"""

import contextlib
import functools
import importlib.util
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

# `mn --custom` execs this file with no __file__ and without the project on sys.path.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(sys._getframe().f_code.co_filename)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from mininet.node import Controller, Node, OVSSwitch  # noqa: E402

from topologies import ite  # noqa: E402
from topologies.procs import stop as stop_process  # noqa: E402

__all__ = ["SDN", "UserOVSSwitch", "OsKenController", "network", "ovs_running", "topos",
           "controllers", "tests", "PAIR", "NF_MAC", "steering_status", "move_to",
           "rest_port"]

OVS_CTL = "/usr/share/openvswitch/scripts/ovs-ctl"
PAIR = ("nf1", "nf2")                   # the active-standby pair's nodes; nf1 starts active
# Locally administered, fixed: both NFs answer for the same addresses with the same MACs.
NF_MAC = {"inside": "02:00:00:00:01:fe", "outside": "02:00:00:00:02:fe"}
_SIDES = ("inside", "outside")          # NF port 0, port 1
_last_steering = [None]                 # the pair config of the last SDN built here (for mn)


# -- Open vSwitch --------------------------------------------------------------------------------

def ovs_running():
    """Are ovsdb-server and ovs-vswitchd both up?"""
    return subprocess.run([OVS_CTL, "status"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0


def _ovs_ctl(*args):
    r = subprocess.run([OVS_CTL] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    if r.returncode:
        raise RuntimeError("%s %s failed (%d):\n%s" % (OVS_CTL, " ".join(args), r.returncode,
                                                      r.stdout.strip()))


class UserOVSSwitch(OVSSwitch):
    """An OVS bridge in the userspace datapath, OpenFlow 1.3, that starts OVS if needed.

    ``started_ovs`` records whether this process started OVS; then the last
    ``batchShutdown`` that leaves OVS with no bridge at all stops it again."""

    started_ovs = False

    def __init__(self, name, datapath="user", protocols="OpenFlow13", **params):
        self.ensure_ovs()
        super().__init__(name, datapath=datapath, protocols=protocols, **params)

    @classmethod
    def ensure_ovs(cls):
        if not os.path.exists(OVS_CTL):
            raise RuntimeError("Open vSwitch is not installed (%s is missing): "
                               "apt-get install openvswitch-switch" % OVS_CTL)
        if not ovs_running():
            _ovs_ctl("start", "--system-id=random")
            UserOVSSwitch.started_ovs = True

    def connected(self):
        """Has a controller connected?  OVS refreshes the ``is_connected`` column Mininet
        reads only every few seconds; a flow in the table (fail mode secure starts with
        none) shows at once that a controller has programmed the switch."""
        if "actions=" in self.dpctl("dump-flows", "-O", self.protocols or "OpenFlow13"):
            return True
        return super().connected()

    @classmethod
    def batchShutdown(cls, switches, **kwargs):
        done = super().batchShutdown(switches, **kwargs)
        cls.stop_ovs_if_ours()
        return done

    @staticmethod
    def stop_ovs_if_ours():
        """Stop OVS if this process started it and no bridge (ours or anyone's) is left."""
        if not UserOVSSwitch.started_ovs:
            return
        left = subprocess.run(["ovs-vsctl", "-t", "5", "list-br"], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
        if left.returncode == 0 and not left.stdout.strip():
            _ovs_ctl("stop")
            UserOVSSwitch.started_ovs = False


# -- the controller ------------------------------------------------------------------------------

def _free_port(host):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _listening(host, port):
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def controller_python():
    """A Python that can import os-ken (or Ryu): this one, else the project's .venv."""
    if importlib.util.find_spec("os_ken") or importlib.util.find_spec("ryu"):
        return sys.executable
    venv = os.path.join(_ROOT, ".venv", "bin", "python")
    return venv if os.path.exists(venv) else sys.executable


class OsKenController(Controller):
    """Mininet controller node running topologies/controller.py's L2Learning app.

    ``port``: OpenFlow TCP port (default: a free one); ``timeout``: seconds to wait
    for it to listen.  ``steering``: a steering config (dict) runs the NFSteering
    app instead, with REST on 127.0.0.1:``rest_port`` (a free one); False forces
    L2 learning; None takes the pair config of the last SDN topology built in
    this process, if it was a pair (that is how ``mn`` gets it).  The
    subprocess's output goes to a temporary log, quoted in the error if it fails
    to start and deleted when it stops (with the config file)."""

    def __init__(self, name, ip="127.0.0.1", port=None, timeout=15.0, steering=None,
                 **params):
        self.timeout = timeout
        self.proc = None
        self.log = self.config_file = None
        self.steering = _last_steering[0] if steering is None else (steering or None)
        self.rest_port = _free_port("127.0.0.1") if self.steering else None
        super().__init__(name, ip=ip, port=port or _free_port(ip), **params)

    def checkListening(self):
        """Refuse a port something already listens on (Mininet asks telnet; we ask a socket)."""
        if _listening(self.ip, self.port):
            raise RuntimeError("something already listens on %s:%d; choose another "
                               "controller port" % (self.ip, self.port))

    def start(self):
        """Start the controller subprocess and wait until it accepts connections."""
        fd, self.log = tempfile.mkstemp(prefix="clickup-%s-" % self.name, suffix=".log")
        with os.fdopen(fd, "w") as logf:
            self.proc = subprocess.Popen(
                [controller_python(), "-m", "topologies.controller", "--host", self.ip,
                 "--port", str(self.port), "-v"] + self._app_args(),
                cwd=_ROOT, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                start_new_session=True)    # Ctrl-C reaches us, and we stop it by PID
        deadline = time.time() + self.timeout
        while not (_listening(self.ip, self.port)
                   and (not self.rest_port or _listening("127.0.0.1", self.rest_port))):
            if self.proc.poll() is not None or time.time() > deadline:
                msg = self._read_log()
                self._stop_process()
                raise RuntimeError("the os-ken controller did not start on %s:%d:\n%s"
                                   % (self.ip, self.port, msg))
            time.sleep(0.05)

    def _app_args(self):
        """The launcher's options for the steering app (its config in a temporary file)."""
        if not self.steering:
            return []
        fd, self.config_file = tempfile.mkstemp(prefix="clickup-%s-" % self.name,
                                                suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump(self.steering, f, indent=1)
        return ["--app", "steering", "--config", self.config_file,
                "--rest-port", str(self.rest_port)]

    def _read_log(self):
        try:
            with open(self.log) as f:
                return f.read()[-2000:]
        except OSError:
            return ""

    def _stop_process(self):
        p, self.proc = self.proc, None
        stop_process(p)
        for attr in ("log", "config_file"):
            path = getattr(self, attr)
            setattr(self, attr, None)
            if path:
                with contextlib.suppress(OSError):
                    os.unlink(path)

    def stop(self, *args, **kwargs):
        """Stop the controller subprocess by PID, then the node's shell."""
        self._stop_process()
        # Not Controller.stop: it kills a shell job named after `command`, which we never ran.
        Node.stop(self, *args, **kwargs)

    @classmethod
    def isAvailable(cls):
        return bool(importlib.util.find_spec("os_ken") or importlib.util.find_spec("ryu")
                    or os.path.exists(os.path.join(_ROOT, ".venv", "bin", "python")))


# -- the topology --------------------------------------------------------------------------------

def _flag(value, name):
    """A yes/no topology parameter; ``mn``'s inline parameters give 0 or 1."""
    if value in (True, False, 0, 1):
        return bool(value)
    raise ValueError("%s must be True/False (or 1/0 for mn), not %r" % (name, value))


class SDN(ite.ITE):
    """``ITE`` with a userspace Open vSwitch on each side (``switch`` may only be
    'auto' or 'ovs'); ``pair=True``: the NF slot holds nf1 and nf2 (module doc)."""

    NAME = "sdn"
    SWITCHES = {"ovs": (UserOVSSwitch, {})}
    DEFAULT_SWITCH = "ovs"
    DIRECT = False
    SWITCH_TEXT = {"ovs": "Open vSwitch (userspace datapath)"}

    def build(self, pair=False, replicate=False, **params):
        """``ITE.build``'s parameters, plus ``pair`` (the NF pair) and ``replicate`` (start
        the pair with the NF's replication options)."""
        self.pair, self.replicate = _flag(pair, "pair"), _flag(replicate, "replicate")
        self.steering = None
        if self.replicate and not self.pair:
            raise ValueError("replicate=True needs pair=True: replication runs between "
                             "the pair's NFs")
        if self.pair and params.get("control"):
            raise ValueError("control= names the single NF's socket; with pair=True each NF "
                             "has its own (SDN.nf_paths)")
        super().build(**params)
        if self.pair:
            self.nf_names = list(PAIR)
            self.steering = self.steering_config()
        _last_steering[0] = self.steering

    def addHost(self, name, **opts):
        """In a pair, ITE's one NF node becomes nf1 and nf2, with their own interfaces,
        control sockets and replication paths."""
        if not (getattr(self, "pair", False) and name == self.nf_name):
            return super().addHost(name, **opts)
        for nf in PAIR:
            paths = self.nf_paths(nf)
            super().addHost(nf, **dict(
                opts, control=paths["control"], extra=self.replication_options(nf),
                defines=dict(opts["defines"], in_if=nf + "-eth0", out_if=nf + "-eth1")))
        return name

    def _side(self, hosts, nf_port, index, switch):
        """In a pair, switch ``index`` links to both NFs' port ``nf_port`` (same MAC), then
        to the hosts."""
        if not self.pair:
            return super()._side(hosts, nf_port, index, switch)
        cls, extra = self.SWITCHES[self._kind(switch, len(hosts))]
        sw = self.addSwitch("%ss%d" % (self.tag, index), cls=cls, dpid="%016x" % index,
                            **extra)
        # A NAT answers for its addresses, so both carry its MACs; a firewall has none.
        addr = {"addr2": NF_MAC[_SIDES[nf_port]]} if self.steering_mode() == "mac" else {}
        for nf in PAIR:
            self.addLink(sw, nf, port2=nf_port, **dict(addr, **self.linkopts))
        for h in hosts:
            self.addLink(h, sw, **self.linkopts)
        return None

    def describe(self):
        return dict(super().describe(), controller="os-ken app (topologies/steering.py)")

    def describe_nf(self):
        if not self.pair:
            return super().describe_nf()
        return "NF pair (%s, %s active / %s standby%s; steered by the os-ken app)" % (
            self.nf, PAIR[0], PAIR[1], ", replicating" if self.replicate else "")

    def nf_paths(self, nf):
        """NF ``nf``'s control socket and replication listen path (unique per tag and
        process)."""
        base = "/tmp/clickup-%s%s-%d" % (self.tag, nf, os.getpid())
        return {"control": base + ".sock", "replica": base + ".replica"}

    def replication_options(self, nf, role=None):
        """``clickup nf run`` options for ``nf`` (none unless replicate=True); ``role``: its
        replication role (default: nf1 starts active, nf2 standby)."""
        if not self.replicate:
            return []
        peer = [n for n in PAIR if n != nf][0]
        return ["--replica-listen", self.nf_paths(nf)["replica"],
                "--replicate-to", self.nf_paths(peer)["replica"],
                "--role", role or ("active" if nf == PAIR[0] else "standby")]

    def steering_mode(self):
        """NFSteering's mode for this NF: "mac" (a NAT's own MAC) or "wire" (a firewall,
        a bump in the wire: every host frame to the active NF)."""
        return "wire" if self.nf == "firewall" else "mac"

    def steering_config(self):
        """NFSteering's configuration for this pair (topologies/steering.py): each
        switch's NF ports by the interface names Mininet gives them, and the NF's MACs
        (mode "mac") or mode "wire"."""
        switches = {}
        for index in (1, 2):
            sw = "%ss%d" % (self.tag, index)
            switches[str(index)] = {nf: "%s-eth%d" % (sw, self.port(sw, nf)[0]) for nf in PAIR}
        cfg = {"nf_mac": dict(NF_MAC)} if self.steering_mode() == "mac" else {"mode": "wire"}
        return dict(cfg, switches=switches, active=PAIR[0],
                    health={nf: self.nf_paths(nf)["control"] for nf in PAIR},
                    health_interval=0.05, health_failures=3)


def network(controller=OsKenController, topo=None, **params):
    """``with network(clients=2, bw=46) as net:`` -- a started SDN network, always stopped.
    With ``pair=True`` the os-ken controller runs the steering app for the pair.  ``topo``:
    an SDN topology already made (then ``params`` must be empty)."""
    if topo is not None and params:
        raise ValueError("network(): give either topo or its parameters, not both")
    topo = topo or SDN(**params)
    if controller is OsKenController:
        controller = functools.partial(OsKenController, steering=topo.steering or False)
    return ite.running(topo, controller=controller)


# -- the steering app's REST clients ------------------------------------------------------------

def rest_port(net):
    """The steering app's REST port in a running pair network."""
    port = getattr(net.controllers[0], "rest_port", None) if net.controllers else None
    if not port:
        raise ValueError("this network's controller runs no steering app (build it with "
                         "pair=True and the osken controller)")
    return port


def _rest(port, path, body=None, timeout=10.0):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), data=data,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        detail = e.read().decode(errors="replace")
        try:
            detail = json.loads(detail)["error"]
        except (ValueError, KeyError, TypeError):
            pass
        raise RuntimeError("steering REST %s on port %d: %d %s" % (path, port, e.code,
                                                                   detail)) from None


def steering_status(port):
    """GET /clickup/status: {"active", "standby", "moves", "failovers", ...}."""
    return _rest(port, "/clickup/status")


def move_to(port, nf):
    """POST /clickup/active: steer to ``nf``; returns {"active", "move_ms", "t_start_mono",
    "t_end_mono", ...} once every switch confirmed (barrier)."""
    return _rest(port, "/clickup/active", {"nf": nf})


def steering_test(net):
    """mn --test steering: the pair's controller answers REST with both switches programmed."""
    def check():
        st = steering_status(rest_port(net))
        ok = st["active"] == PAIR[0] and sorted(st["switches"]) == ["1", "2"]
        return ok, "active %s, standby %s, switches %s" % (st["active"], st["standby"],
                                                           ", ".join(sorted(st["switches"])))
    ite._mn_test("steering", check)


topos = {"sdn": SDN}
controllers = {"osken": OsKenController}
tests = dict(ite.tests, steering=steering_test)

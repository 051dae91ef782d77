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
"""

import contextlib
import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import time

# `mn --custom` execs this file with no __file__ and without the project on sys.path.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(sys._getframe().f_code.co_filename)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from mininet.node import Controller, Node, OVSSwitch  # noqa: E402

from topologies import ite  # noqa: E402
from topologies.procs import stop as stop_process  # noqa: E402

__all__ = ["SDN", "UserOVSSwitch", "OsKenController", "network", "ovs_running", "topos",
           "controllers", "tests"]

OVS_CTL = "/usr/share/openvswitch/scripts/ovs-ctl"


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
    for it to listen.  The subprocess's output goes to a temporary log, quoted in
    the error if it fails to start and deleted when it stops."""

    def __init__(self, name, ip="127.0.0.1", port=None, timeout=15.0, **params):
        self.timeout = timeout
        self.proc = None
        self.log = None
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
                 "--port", str(self.port), "-v"],
                cwd=_ROOT, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                start_new_session=True)    # Ctrl-C reaches us, and we stop it by PID
        deadline = time.time() + self.timeout
        while not _listening(self.ip, self.port):
            if self.proc.poll() is not None or time.time() > deadline:
                msg = self._read_log()
                self._stop_process()
                raise RuntimeError("the os-ken controller did not start on %s:%d:\n%s"
                                   % (self.ip, self.port, msg))
            time.sleep(0.05)

    def _read_log(self):
        try:
            with open(self.log) as f:
                return f.read()[-2000:]
        except OSError:
            return ""

    def _stop_process(self):
        p, self.proc = self.proc, None
        stop_process(p)
        log, self.log = self.log, None
        if log:
            with contextlib.suppress(OSError):
                os.unlink(log)

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

class SDN(ite.ITE):
    """``ITE`` with a userspace Open vSwitch on each side (``switch`` may only be
    'auto' or 'ovs')."""

    SWITCHES = {"ovs": (UserOVSSwitch, {})}
    DEFAULT_SWITCH = "ovs"
    DIRECT = False


def network(controller=OsKenController, **params):
    """``with network(clients=2, bw=46) as net:`` -- a started SDN network, always stopped."""
    return ite.running(SDN(**params), controller=controller)


topos = {"sdn": SDN}
controllers = {"osken": OsKenController}
tests = dict(ite.tests)

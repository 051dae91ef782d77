"""One trial's network: the ``ite`` topology with the NF, a file server and a
transfer client -- the pieces every transfer experiment drives.

    with Testbed(bw_mbit=46.3) as tb:
        tb.serve(size)
        client = tb.transfer(trace, size, announce=50)   # direction="up": an upload
        tb.wait_announced(client, 50)        # 50 % of the file is across
        ...                                  # upgrade the NF through tb.control
        summary = tb.finish_transfer(client)

Everything it starts is stopped on the way out, also on Ctrl-C: the client
and server by PID, the network by Mininet's own teardown (topologies.ite).
"""

import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time

from topologies.procs import stop

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PORT = 8000


class Testbed:
    """``pair=True``: the ``sdn`` topology with an active/standby NF pair, replicating,
    steered by the controller (the ``switchover`` strategy's network); ``control`` is
    then the active NF's socket at the start (nf1).  ``record``: a path where the network's
    description (``topo.describe()``) is saved once it is up, beside the trial's raw data."""

    def __init__(self, bw_mbit=None, nf="nat", clients=1, servers=1, pair=False, record=None):
        self.bw, self.nf, self.nclients, self.nservers = bw_mbit, nf, clients, servers
        self.pair, self.record = pair, record
        self.procs = []

    def __enter__(self):
        from topologies.ite import ITE, running
        self.tmp = tempfile.mkdtemp(prefix="clickup-tb-")
        # Switch names live in the root namespace: a per-process tag keeps concurrent
        # networks (two runs, or a run beside the tests) apart.
        tag = "tb%d" % (os.getpid() % 10000)
        if self.pair:
            from topologies.sdn import SDN, network
            topo = SDN(clients=self.nclients, servers=self.nservers, bw=self.bw, tag=tag,
                       nf=self.nf, pair=True, replicate=True)
            self.control = topo.nf_paths("nf1")["control"]
            self._cm = network(topo=topo)
        else:
            self.control = os.path.join(self.tmp, "nf.sock")
            topo = ITE(clients=self.nclients, servers=self.nservers, nf=self.nf, bw=self.bw,
                       control=self.control, tag=tag)
            self._cm = running(topo)
        try:
            self.net = self._cm.__enter__()
        except BaseException:
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise
        self.topo = topo
        if self.record:
            with open(self.record, "w") as f:
                json.dump(topo.describe(), f, indent=1)
        return self

    def __exit__(self, *exc):
        for p in reversed(self.procs):
            stop(p, 3.0)
        try:
            self._cm.__exit__(*exc)
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def host(self, name):
        return self.net.get(name)

    def active_nf(self):
        """The NF node forwarding now: the pair's active one (asked of the controller), or
        the only one."""
        if not self.pair:
            return self.net.get(self.topo.nf_name)
        from topologies.sdn import rest_port, steering_status
        return self.net.get(steering_status(rest_port(self.net))["active"])

    def controls(self):
        """Every NF's control socket (the pair's two, or the one)."""
        if not self.pair:
            return [self.control]
        return [self.topo.nf_paths(n)["control"] for n in self.topo.nf_names]

    def server_ip(self, i=0):
        return self.topo.host_ip(self.topo.servers[i])

    def popen(self, host, cmd, **kw):
        """Run ``cmd`` on Mininet host ``host`` (stdout and stderr piped unless ``kw`` says
        otherwise); stopped by PID on the way out."""
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        p = self.host(host).popen(cmd, **kw)
        self.procs.append(p)
        return p

    def python(self, host, args, **kw):
        """``popen`` of ``python -m ARGS`` of this project."""
        return self.popen(host, [sys.executable, "-u", "-m"] + args, cwd=ROOT, **kw)

    def serve(self, size, server=0, rate=None):
        """Start the file server on server host ``server``; ``rate`` paces each connection
        (bytes/s)."""
        args = ["experiments.traffic", "serve", "--port", str(PORT), "--size", str(size)]
        if rate:
            args += ["--rate", str(int(rate))]
        p = self.python(self.topo.servers[server], args)
        expect_ready(p, "the file server")
        return p

    def url(self, server=0):
        return "http://%s:%d/file" % (self.server_ip(server), PORT)

    def transfer(self, trace, size, direction="down", announce=(), client=0, server=0,
                 give_up=900):
        """Start a client that downloads (GET) the served file, or uploads (PUT) ``size``
        bytes to the server; it restarts from byte 0 on failure (experiments.traffic)."""
        if direction not in ("down", "up"):
            raise ValueError("direction must be 'down' or 'up', not %r" % direction)
        args = ["experiments.traffic", "get" if direction == "down" else "put",
                self.url(server), "--out", trace, "--give-up", str(give_up)]
        if direction == "up":
            args += ["--size", str(size)]
        if announce:
            args += ["--announce", ",".join("%g" % a for a in announce)]
        return self.python(self.topo.clients[client], args)

    def upgrade(self, package, config, strategy, delay=0.0, record_path=None):
        """Upgrade the NF to ``package``/``config`` (with its elements/ code); never
        raises -- the traffic's fate is the measurement.  The phase record (or the
        error) is saved to ``record_path`` and returned."""
        from nf.upgrade.client import request_upgrade
        if strategy == "switchover":
            from experiments.switchover import switchover
            rec = switchover(self.net, self.topo, package, config, delay)
            _save(record_path, rec)
            return rec
        try:
            rec = request_upgrade(self.control, {
                "to": os.path.join(package, config), "elements": os.path.join(package, "elements"),
                "strategy": strategy, "delay": delay}, timeout=120)
        except Exception as e:
            rec = {"error": str(e)}
        _save(record_path, rec)
        return rec

    def wait_announced(self, client, pct, timeout=900):
        """Block until the client says it reached ``pct`` % of the file; False if it ended."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            line = _line(client, deadline - time.time())
            if line is None:
                return False
            rec = json.loads(line)
            if rec.get("reached") is not None and rec["reached"] >= pct:
                return True
        return False

    def finish_transfer(self, client, timeout=1200):
        """The client's summary (its last JSON line)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            line = _line(client, deadline - time.time())
            if line is None:
                break
            rec = json.loads(line)
            if "ok" in rec:
                client.wait(10)
                return rec
        raise RuntimeError("the transfer client ended without a summary: %s"
                           % client.stderr.read().decode()[-500:])


def expect_ready(p, what, timeout=15):
    """Wait for the {"ready": true} line tools print once they listen; RuntimeError (with
    the tool's last words if it exited) otherwise."""
    line = _line(p, timeout)
    if not line or not json.loads(line).get("ready"):
        raise RuntimeError("%s did not start: %s" % (what, p.stderr.read().decode()[-300:]
                                                    if p.poll() is not None else "no answer"))


def _save(path, rec):
    if path:
        with open(path, "w") as f:
            json.dump(rec, f, indent=1)


def _line(p, timeout):
    """The next non-empty stdout line of ``p`` within ``timeout`` s, or None."""
    deadline = time.time() + timeout
    while True:
        left = deadline - time.time()
        if left <= 0 or not select.select([p.stdout], [], [], left)[0]:
            return None
        line = p.stdout.readline()
        if not line:
            return None
        line = line.decode(errors="replace").strip()
        if line:
            return line

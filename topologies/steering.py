"""NFSteering: the os-ken/Ryu app that steers NF-bound traffic to the active NF of a pair.

Two NFs (nf1, nf2) share one MAC on the inside and one on the outside; every
switch has a port to each.  Per switch (OpenFlow 1.3) two tables:

* table 0 (learning): frames from an NF port go on to table 1 unlearned (two
  ports carry the NF's MAC, so it is never learned); a host's frame whose
  (in_port, eth_src) is not yet known is copied to the controller, which
  learns it, and goes on to table 1 -- forwarding never waits for us.
* table 1 (forwarding): the *NF-bound* rules -- frames to an NF MAC, and
  broadcasts from each host port, go to the active NF's port (broadcasts also
  to the other host ports); learned hosts by eth_dst; frames from either NF port
  to the host ports (never to the other NF); unknown unicast from a host to
  the other host ports.

Two steering modes (config key ``mode``):

* ``mac`` (the default, a NAT): NF-bound means addressed to the NF's MAC, as above.
* ``wire`` (a firewall, a bump in the wire with no MAC of its own: frames keep
  the hosts' MACs): every frame from a host port goes to the active NF, except
  to a host learned on the same switch (hosts' broadcasts also to the other
  host ports); both NF ports' output goes to the host ports as in ``mac`` mode.
  The NF-bound rules are then the per-host-port rules to the active NF.

A move rewrites only the NF-bound rules: FlowMods on every switch, then a
barrier on each; it is done when every barrier reply is in.  The old NF's
output stays accepted, so packets it still holds are delivered.  A health
thread (the framework's hub) reads ``version`` from the active NF's control
socket every ``health_interval`` and fails over after ``health_failures``
failures in a row.  REST on 127.0.0.1 (stdlib wsgiref: os-ken 4 dropped
``os_ken.app.wsgi`` and its native hub has no WSGI server):

    GET  /clickup/status               -> {"active", "standby", "moves", "failovers", ...}
    POST /clickup/active {"nf": "nf2"} -> {"active", "move_ms", "t_start_mono", "t_end_mono"}

The pure parts -- ``parse_config``/``load_config`` and the rules a switch gets
(``switch_rules``, ``nf_bound_rules``, ``learned_rules``, ``port_roles``, for either
mode) --
need no controller.  Started by ``python -m topologies.controller --app
steering --config FILE --rest-port PORT`` (topologies/controller.py).
"""

import collections
import json
import logging
import re
import socketserver
import threading
import time
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from topologies.controller import BaseApp, FRAMEWORK, _m, handler, ofp_event, ofproto_v1_3, \
    set_ev_cls

__all__ = ["NFSteering", "ConfigError", "Rule", "parse_config", "load_config", "port_roles",
           "switch_rules", "nf_bound_rules", "learned_rules", "LEARN", "FORWARD", "MAC", "WIRE",
           "MODES"]

LOG = logging.getLogger("clickup.steering")
hub = _m("lib.hub")

LEARN, FORWARD = 0, 1                 # the two tables
MAC, WIRE = "mac", "wire"             # steering modes (module doc)
MODES = (MAC, WIRE)
BROADCAST = "ff:ff:ff:ff:ff:ff"
OFPP_MAX = 0xffffff00                 # port numbers above this are reserved (LOCAL, ...)
PACKET_IN_BYTES = 64                  # the controller only needs the Ethernet header
BARRIER_TIMEOUT = 5.0
_MAC = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")
_KEYS = {"mode", "nf_mac", "switches", "active", "health", "health_interval", "health_failures",
         "health_timeout"}

# table, priority, match (dict of OFPMatch fields), actions: ("output", port) |
# ("controller", max_len) | ("goto", table)
Rule = collections.namedtuple("Rule", "table priority match actions")


# -- configuration ------------------------------------------------------------------------------

class ConfigError(ValueError):
    """The steering configuration is wrong; the message says what and how to fix it."""


def load_config(path):
    """Read and check the JSON configuration file at ``path``."""
    try:
        with open(path) as f:
            data = json.load(f)
    except OSError as e:
        raise ConfigError("cannot read the steering config %s: %s" % (path, e)) from None
    except ValueError as e:
        raise ConfigError("the steering config %s is not valid JSON: %s" % (path, e)) from None
    return parse_config(data, where=path)


def parse_config(data, where="the steering config"):
    """Check ``data`` (the decoded JSON) and return it normalised: dpids as ints, MACs in
    lower case (``{}`` in wire mode), ``mode``, ``nfs`` (the two NF names, sorted) and the
    health defaults filled in."""
    def fail(msg):
        raise ConfigError("%s: %s" % (where, msg))
    if not isinstance(data, dict):
        fail("expected a JSON object, got %s" % type(data).__name__)
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        fail("unknown key(s) %s; the keys are %s" % (", ".join(unknown), ", ".join(sorted(_KEYS))))
    mode = data.get("mode", MAC)
    if mode not in MODES:
        fail('"mode" must be "mac" (steer frames to the NF\'s MAC, e.g. a NAT) or "wire" '
             '(every host frame to the active NF, e.g. a bump-in-the-wire firewall), not %r'
             % (mode,))
    if mode == WIRE and "nf_mac" in data:
        # Silently ignoring it would hide a config meant for the other mode.
        fail('"nf_mac" has no use in "wire" mode (frames keep the hosts\' MACs and are '
             'steered by port): remove it, or use "mode": "mac"')
    macs = _nf_macs(data.get("nf_mac"), fail) if mode == MAC else {}
    switches, nfs = _switches(data.get("switches"), fail)
    active = data.get("active")
    if active not in nfs:
        fail('"active" must name one of the NFs (%s), not %r' % (" or ".join(nfs), active))
    health = data.get("health", {})
    if not isinstance(health, dict) or (health and set(health) != set(nfs)) or \
            not all(isinstance(p, str) and p for p in health.values()):
        fail('"health" must map each NF (%s) to its control socket path, e.g. {"%s": '
             '"/tmp/%s.sock", ...}; got %r' % (", ".join(nfs), nfs[0], nfs[0], health))
    interval = _number(data, "health_interval", 0.05, fail)
    failures = data.get("health_failures", 3)
    if isinstance(failures, bool) or not isinstance(failures, int) or failures < 1:
        fail('"health_failures" must be a whole number >= 1, not %r' % (failures,))
    timeout = _number(data, "health_timeout", max(0.1, 2 * interval), fail)
    return {"mode": mode, "nf_mac": macs, "switches": switches, "nfs": nfs, "active": active,
            "health": dict(health), "health_interval": interval, "health_failures": failures,
            "health_timeout": timeout}


def _nf_macs(macs, fail):
    if not isinstance(macs, dict) or not macs:
        fail('"nf_mac" must be an object naming the NF\'s MAC on each side, e.g. '
             '{"inside": "02:00:00:00:01:fe", "outside": "02:00:00:00:02:fe"}')
    for side, mac in macs.items():
        if not isinstance(mac, str) or not _MAC.match(mac) or int(mac[:2], 16) & 1:
            fail('"nf_mac".%s must be a unicast MAC like 02:00:00:00:01:fe, not %r' % (side, mac))
    return {side: mac.lower() for side, mac in macs.items()}


def _switches(switches, fail):
    if not isinstance(switches, dict) or not switches:
        fail('"switches" must map each switch\'s dpid (a decimal number as a string) to its NF '
             'ports, e.g. {"1": {"nf1": "s1-eth1", "nf2": "s1-eth2"}}')
    out, nfs = {}, None
    for dpid, ports in switches.items():
        if not str(dpid).isdigit():
            fail('switch key %r is not a dpid: write it as a decimal number, e.g. "1"' % dpid)
        if not isinstance(ports, dict) or len(ports) != 2:
            fail("switch %s must name exactly two NF ports (active and standby), got %r"
                 % (dpid, ports))
        names = sorted(ports)
        if nfs is None:
            nfs = names
        elif names != nfs:
            fail("switch %s names the NFs %s, but another switch names %s: every switch "
                 "needs a port for the same two NFs" % (dpid, names, nfs))
        if not all(isinstance(p, str) and p for p in ports.values()) or \
                len(set(ports.values())) != 2:
            fail("switch %s: the NF ports must be two different interface names, not %r"
                 % (dpid, ports))
        out[int(dpid)] = dict(ports)
    return out, nfs


def _number(data, key, default, fail):
    v = data.get(key, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 60:
        fail('"%s" must be a number of seconds above 0 and at most 60, not %r' % (key, v))
    return float(v)


# -- the rules a switch gets --------------------------------------------------------------------

def port_roles(ports, nf_port_names, dpid=None):
    """``ports``: {port number: interface name} of a switch; ``nf_port_names``: {nf: name}.
    Returns ({nf: port number}, [host port numbers]); reserved ports are no host ports."""
    by_name = {name: no for no, name in ports.items()}
    missing = [n for n in nf_port_names.values() if n not in by_name]
    if missing:
        raise ConfigError("switch %s has no port named %s (its ports: %s); fix \"switches\" in "
                          "the steering config" % (dpid, ", ".join(missing),
                                                   ", ".join(sorted(by_name)) or "none"))
    nf_ports = {nf: by_name[name] for nf, name in nf_port_names.items()}
    hosts = sorted(no for no in ports if no < OFPP_MAX and no not in nf_ports.values())
    return nf_ports, hosts


def _out(*ports):
    return tuple(("output", p) for p in ports)


def _check_mode(mode):
    if mode not in MODES:
        raise ValueError("unknown steering mode %r: choose %s" % (mode, " or ".join(MODES)))


def nf_bound_rules(nf_ports, host_ports, nf_macs, active, mode=MAC):
    """The rules a move rewrites: hosts' broadcasts go to the active NF (and the other
    host ports); in ``mac`` mode frames to an NF MAC go to it, in ``wire`` mode every other
    frame from a host port (below the learned hosts' priority: a host on the same switch
    is reached directly).  ``nf_macs`` is unused in wire mode."""
    _check_mode(mode)
    to_nf = nf_ports[active]
    if mode == WIRE:
        rules = [Rule(FORWARD, 5, {"in_port": h}, _out(to_nf)) for h in host_ports]
    else:
        rules = [Rule(FORWARD, 30, {"eth_dst": mac}, _out(to_nf))
                 for mac in sorted(set(nf_macs))]
    rules += [Rule(FORWARD, 30, {"in_port": h, "eth_dst": BROADCAST},
                   _out(to_nf, *[o for o in host_ports if o != h])) for h in host_ports]
    return rules


def switch_rules(nf_ports, host_ports, nf_macs, active, mode=MAC):
    """Every rule a switch gets when it connects, for ``active`` NF (see the module doc)."""
    _check_mode(mode)
    rules = [Rule(LEARN, 0, {}, (("controller", PACKET_IN_BYTES), ("goto", FORWARD)))]
    for nf in sorted(nf_ports):
        p = nf_ports[nf]
        rules.append(Rule(LEARN, 20, {"in_port": p}, (("goto", FORWARD),)))   # never learned
        rules.append(Rule(FORWARD, 10, {"in_port": p}, _out(*host_ports)))
    if mode == MAC:       # unknown unicast stays on this side; in wire mode it is NF-bound
        rules += [Rule(FORWARD, 5, {"in_port": h}, _out(*[o for o in host_ports if o != h]))
                  for h in host_ports]
    return rules + nf_bound_rules(nf_ports, host_ports, nf_macs, active, mode)


def learned_rules(mac, port):
    """Host ``mac`` lives behind ``port``: stop copying its frames to us; deliver to it."""
    return [Rule(LEARN, 10, {"in_port": port, "eth_src": mac}, (("goto", FORWARD),)),
            Rule(FORWARD, 20, {"eth_dst": mac}, _out(port))]


def _flow_mod(dp, rule):
    ofp, parser = dp.ofproto, dp.ofproto_parser
    actions, inst = [], []
    for kind, arg in rule.actions:
        if kind == "output":
            actions.append(parser.OFPActionOutput(arg))
        elif kind == "controller":
            actions.append(parser.OFPActionOutput(ofp.OFPP_CONTROLLER, arg))
        else:
            inst.append(parser.OFPInstructionGotoTable(arg))
    if actions:
        inst.insert(0, parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, actions))
    # ADD replaces a flow with the same match and priority: a move is an ADD.
    return parser.OFPFlowMod(datapath=dp, table_id=rule.table, priority=rule.priority,
                             match=parser.OFPMatch(**rule.match), instructions=inst)


def _mac_text(mac):
    return ":".join("%02x" % b for b in mac)


# -- the app ------------------------------------------------------------------------------------

class MoveError(RuntimeError):
    pass


class NFSteering(BaseApp):
    """Steers NF-bound traffic to the active NF; moves on REST or on the active's failure."""

    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]
    CONFIG = None            # set by configure() before AppManager starts the app
    REST = None              # (host, port) or None

    @classmethod
    def configure(cls, config, rest=None):
        cls.CONFIG, cls.REST = config, rest

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.CONFIG is None:
            raise RuntimeError("NFSteering needs its configuration: run python -m "
                               "topologies.controller --app steering --config FILE")
        self.cfg = self.CONFIG
        self.active = self.cfg["active"]
        self.datapaths = {}             # dpid -> datapath
        self.roles = {}                 # dpid -> ({nf: port}, [host ports])
        self.learned = {}               # dpid -> {mac text: port}
        self.moves, self.failovers = [], 0
        self.health = {"failures": 0, "last_error": None, "last_ok_mono": None}
        self._lock = threading.RLock()  # the active NF, switches and records change together
        self._move_lock = threading.Lock()
        self._barriers = {}             # (dpid, xid) -> Event
        self.rest_server = None

    def start(self):
        thread = super().start()
        if self.REST:
            self.rest_server = make_server(self.REST[0], self.REST[1], RestApp(self),
                                           server_class=_ThreadingServer,
                                           handler_class=_QuietHandler)
            self.threads.append(hub.spawn(self.rest_server.serve_forever))
        if self.cfg["health"]:
            self.threads.append(hub.spawn(self._health_loop))
        return thread

    # -- switches ---------------------------------------------------------------------------
    @set_ev_cls(ofp_event.EventOFPStateChange, [handler.MAIN_DISPATCHER, handler.DEAD_DISPATCHER])
    def on_state_change(self, ev):
        """A switch is ready (its ports known) or gone."""
        dp = ev.datapath
        if ev.state == handler.DEAD_DISPATCHER:
            with self._lock:
                self.datapaths.pop(dp.id, None)
            return
        if dp.id not in self.cfg["switches"]:
            LOG.error("switch %d is not in the steering config (%s): it forwards nothing",
                      dp.id, ", ".join(map(str, sorted(self.cfg["switches"]))))
            return
        self._program(dp, fresh=True)

    @set_ev_cls(ofp_event.EventOFPPortStateChange, handler.MAIN_DISPATCHER)
    def on_port_change(self, ev):
        """A port came or went (``dp.ports`` is up to date by now): the host-port lists
        in the static rules change."""
        if ev.datapath.id in self.datapaths:
            self._program(ev.datapath, fresh=False)

    def _program(self, dp, fresh):
        ports = {no: p.name.decode() if isinstance(p.name, bytes) else p.name
                 for no, p in dp.ports.items()}
        try:
            roles = port_roles(ports, self.cfg["switches"][dp.id], dp.id)
        except ConfigError as e:
            LOG.error("%s", e)
            return
        ofp, parser = dp.ofproto, dp.ofproto_parser
        with self._lock:
            if fresh:             # a reconnecting switch may hold a previous controller's flows
                dp.send_msg(parser.OFPFlowMod(datapath=dp, command=ofp.OFPFC_DELETE,
                                              table_id=ofp.OFPTT_ALL, out_port=ofp.OFPP_ANY,
                                              out_group=ofp.OFPG_ANY, match=parser.OFPMatch()))
                self.learned[dp.id] = {}
            for rule in switch_rules(*roles, self.cfg["nf_mac"].values(), self.active,
                                     self.cfg["mode"]):
                dp.send_msg(_flow_mod(dp, rule))
            self.roles[dp.id] = roles
            self.datapaths[dp.id] = dp
        LOG.info("switch %d programmed: NF ports %s, host ports %s", dp.id, *roles)

    @set_ev_cls(ofp_event.EventOFPPacketIn, handler.MAIN_DISPATCHER)
    def on_packet_in(self, ev):
        """Learn a host's MAC (table 0 copied the frame here; it is forwarded already)."""
        msg = ev.msg
        dp, in_port = msg.datapath, msg.match["in_port"]
        roles, table = self.roles.get(dp.id), self.learned.get(dp.id)
        if roles is None or len(msg.data) < 14 or in_port not in roles[1]:
            return
        src = _mac_text(bytes(msg.data[6:12]))
        if int(src[:2], 16) & 1 or src in self.cfg["nf_mac"].values() or \
                table.get(src) == in_port:
            return
        table[src] = in_port
        for rule in learned_rules(src, in_port):
            dp.send_msg(_flow_mod(dp, rule))

    @set_ev_cls(ofp_event.EventOFPBarrierReply, handler.MAIN_DISPATCHER)
    def on_barrier_reply(self, ev):
        waiter = self._barriers.pop((ev.msg.datapath.id, ev.msg.xid), None)
        if waiter:
            waiter.set()

    # -- moves ------------------------------------------------------------------------------
    def other(self, nf):
        return [n for n in self.cfg["nfs"] if n != nf][0]

    def move(self, to, reason="rest", expect=None, **details):
        """Steer to NF ``to``: the NF-bound FlowMods on every switch, then a barrier on each.
        Returns the move's record once every barrier replied (None if ``expect`` -- the NF
        the caller saw active -- is no longer active).  Raises MoveError on a timeout."""
        if to not in self.cfg["nfs"]:
            raise ValueError("unknown NF %r: choose %s" % (to, " or ".join(self.cfg["nfs"])))
        with self._move_lock:            # moves one at a time, each with its barriers
            with self._lock:             # short: the event thread takes it too
                if expect is not None and self.active != expect:
                    return None
                before, dps = self.active, list(self.datapaths.values())
                t0 = time.monotonic()
                self.active = to
                for dp in dps:
                    for rule in nf_bound_rules(*self.roles[dp.id],
                                               self.cfg["nf_mac"].values(), to,
                                               self.cfg["mode"]):
                        dp.send_msg(_flow_mod(dp, rule))
                waits = [(dp.id, self._barrier(dp)) for dp in dps]
            # Wait without _lock: the barrier replies arrive on the event thread.
            late = [dpid for dpid, ev in waits
                    if not ev.wait(max(0.0, t0 + BARRIER_TIMEOUT - time.monotonic()))]
            t1 = time.monotonic()
            record = dict(details, reason=reason, to=to, active=to,
                          move_ms=(t1 - t0) * 1000.0, t_start_mono=t0, t_end_mono=t1,
                          switches=sorted(d for d, _ in waits), late=late)
            record["from"] = before
            with self._lock:             # the status shows a failover with its move
                self.moves.append(record)
                if reason == "failover":
                    self.failovers += 1
                self.health["failures"] = 0
        LOG.info("moved %s -> %s (%s) in %.3f ms", before, to, reason, record["move_ms"])
        if late:
            raise MoveError("switch(es) %s did not answer the barrier within %.0f s"
                            % (", ".join(map(str, late)), BARRIER_TIMEOUT))
        return record

    def _barrier(self, dp):
        req = dp.ofproto_parser.OFPBarrierRequest(dp)
        dp.set_xid(req)
        ev = threading.Event()
        self._barriers[(dp.id, req.xid)] = ev
        dp.send_msg(req)
        return ev

    def status(self):
        with self._lock:
            return {"active": self.active, "standby": self.other(self.active),
                    "mode": self.cfg["mode"],
                    "nfs": list(self.cfg["nfs"]), "moves": list(self.moves),
                    "failovers": self.failovers, "health": dict(self.health),
                    "switches": {str(d): {"nf_ports": r[0], "host_ports": r[1]}
                                 for d, r in self.roles.items() if d in self.datapaths},
                    "framework": FRAMEWORK, "now_mono": time.monotonic()}

    # -- failover ---------------------------------------------------------------------------
    def probe(self, nf):
        """None if NF ``nf`` answers READ version on its control socket, else the error."""
        from nf.control import ControlClient, ControlError   # the NF runtime's own client
        try:
            with ControlClient(self.cfg["health"][nf], timeout=self.cfg["health_timeout"]) as c:
                c.read("version")
            return None
        except (OSError, ControlError, ValueError) as e:
            return "%s: %s" % (type(e).__name__, e)

    def _health_loop(self):
        while True:
            hub.sleep(self.cfg["health_interval"])
            try:
                self._health_check()
            except Exception:  # noqa: BLE001 -- the loop must outlive any one bad check
                LOG.exception("health check failed")

    def _health_check(self):
        active = self.active
        error = self.probe(active)
        h = self.health
        if error is None:
            h["failures"], h["last_ok_mono"] = 0, time.monotonic()
            return
        h["failures"] += 1
        h["last_error"] = "%s: %s" % (active, error)
        if h["failures"] < self.cfg["health_failures"]:
            return
        standby = self.other(active)
        standby_error = self.probe(standby)
        if standby_error is not None:
            if h["failures"] == self.cfg["health_failures"]:
                LOG.error("%s failed but the standby %s is down too (%s): not moving",
                          active, standby, standby_error)
            return
        record = self.move(standby, reason="failover", expect=active, failures=h["failures"],
                           error=error, t_detect_mono=time.monotonic())
        if record is not None:
            record["promoted"] = self.promote(standby)

    def promote(self, nf):
        """Give ``nf`` the active replication role after a failover: a standby forwards
        what it is sent but expires nothing (its peer did that).  None, or the error."""
        from nf.control import ControlClient, ControlError
        try:
            with ControlClient(self.cfg["health"][nf], timeout=self.cfg["health_timeout"]) as c:
                c.write("replication_role", "active")
            return None
        except (OSError, ControlError, ValueError) as e:
            LOG.error("failed over to %s but could not promote it: %s", nf, e)
            return "%s: %s" % (type(e).__name__, e)


# -- REST ---------------------------------------------------------------------------------------

class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True            # a slow client never holds up the process's exit


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, fmt, *args):
        LOG.debug("rest: " + fmt, *args)


class RestApp:
    """The WSGI app: GET /clickup/status, POST /clickup/active {"nf": NAME}."""

    def __init__(self, steering):
        self.steering = steering

    def __call__(self, environ, start_response):
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        routes = {"/clickup/status": ("GET", self.get_status),
                  "/clickup/active": ("POST", self.post_active)}
        if path not in routes:
            code, body = 404, {"error": "no such resource %s; try GET /clickup/status or "
                                        "POST /clickup/active" % path}
        elif method != routes[path][0]:
            code, body = 405, {"error": "%s takes %s, not %s" % (path, routes[path][0], method)}
        else:
            code, body = routes[path][1](environ)
        data = json.dumps(body).encode()
        start_response("%d %s" % (code, _REASONS.get(code, "")),
                       [("Content-Type", "application/json"),
                        ("Content-Length", str(len(data)))])
        return [data]

    def get_status(self, environ):
        return 200, self.steering.status()

    def post_active(self, environ):
        try:
            n = int(environ.get("CONTENT_LENGTH") or 0)
            req = json.loads(environ["wsgi.input"].read(n) or b"null")
        except ValueError as e:
            return 400, {"error": "the body must be JSON like {\"nf\": \"nf2\"}: %s" % e}
        nfs = self.steering.cfg["nfs"]
        if not isinstance(req, dict) or req.get("nf") not in nfs:
            return 400, {"error": "the body must be {\"nf\": NAME} with NAME one of %s; got %r"
                                  % (", ".join(nfs), req)}
        try:
            return 200, self.steering.move(req["nf"], reason="rest")
        except MoveError as e:
            return 504, {"error": str(e)}


_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            504: "Gateway Timeout"}

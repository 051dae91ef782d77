"""The NF pair and its steering controller (topologies/steering.py, sdn.py pair=True).

No root: the config checks, the rules each switch gets for active nf1 / nf2, the
pair topology's shape and generated config, the REST app, the launcher's
errors, and the failover decision against real control sockets.  Root: the
pair carries ping and TCP through nf1; a REST move sends it through nf2; a
SIGKILLed active NF makes the controller fail over by itself."""

import io
import json
import os
import subprocess
import time
from wsgiref.util import setup_testing_defaults

import pytest

pytest.importorskip("mininet")
pytest.importorskip("os_ken")

from mininet.log import setLogLevel  # noqa: E402

from nf.control import ControlClient  # noqa: E402
from topologies import ite, sdn, steering  # noqa: E402
from topologies.steering import FORWARD, LEARN, ConfigError, Rule  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
root = pytest.mark.root
pytestmark = pytest.mark.filterwarnings("ignore:distutils Version classes:DeprecationWarning")
setLogLevel("critical")

IN_MAC, OUT_MAC = sdn.NF_MAC["inside"], sdn.NF_MAC["outside"]


def good_config(**changes):
    cfg = {"nf_mac": dict(sdn.NF_MAC),
           "switches": {"1": {"nf1": "s1-eth1", "nf2": "s1-eth2"},
                        "2": {"nf1": "s2-eth1", "nf2": "s2-eth2"}},
           "active": "nf1", "health": {"nf1": "/tmp/a.sock", "nf2": "/tmp/b.sock"}}
    cfg.update(changes)
    return cfg


def tag(letter):
    return "s%d%s" % (os.getpid() % 10000, letter)


# -- configuration ------------------------------------------------------------------------------

def test_config_is_normalised_with_defaults():
    cfg = steering.parse_config(good_config(nf_mac={"inside": "02:00:00:00:01:FE"}))
    assert cfg["switches"] == {1: {"nf1": "s1-eth1", "nf2": "s1-eth2"},
                               2: {"nf1": "s2-eth1", "nf2": "s2-eth2"}}
    assert cfg["nfs"] == ["nf1", "nf2"] and cfg["active"] == "nf1"
    assert cfg["nf_mac"] == {"inside": "02:00:00:00:01:fe"}
    assert cfg["health_interval"] == 0.05 and cfg["health_failures"] == 3
    assert cfg["health_timeout"] == 0.1


@pytest.mark.parametrize("changes, msg", [
    ({"nf_mac": {}}, '"nf_mac" must be an object'),
    ({"nf_mac": {"inside": "01:00:5e:00:00:01"}}, "must be a unicast MAC"),
    ({"nf_mac": {"inside": "02:00:00:01:fe"}}, "must be a unicast MAC"),
    ({"switches": {"s1": {"nf1": "a", "nf2": "b"}}}, "is not a dpid"),
    ({"switches": {"1": {"nf1": "a"}}}, "exactly two NF ports"),
    ({"switches": {"1": {"nf1": "a", "nf2": "a"}}}, "two different interface names"),
    ({"switches": {"1": {"nf1": "a", "nf2": "b"}, "2": {"nf1": "c", "nf3": "d"}}},
     "every switch needs a port for the same two NFs"),
    ({"active": "nf3"}, '"active" must name one of the NFs \\(nf1 or nf2\\)'),
    ({"health": {"nf1": "/tmp/a.sock"}}, '"health" must map each NF'),
    ({"health_interval": 0}, '"health_interval" must be a number of seconds above 0'),
    ({"health_failures": 0}, '"health_failures" must be a whole number >= 1'),
    ({"health_failures": True}, '"health_failures" must be a whole number'),
    ({"helth": {}}, "unknown key\\(s\\) helth"),
])
def test_bad_config_says_what_is_wrong(changes, msg):
    with pytest.raises(ConfigError, match=msg):
        steering.parse_config(good_config(**changes))


def test_load_config_reports_the_file_and_the_json_error(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"active": ')
    with pytest.raises(ConfigError, match="bad.json is not valid JSON"):
        steering.load_config(str(bad))
    with pytest.raises(ConfigError, match="cannot read the steering config"):
        steering.load_config(str(tmp_path / "missing.json"))
    good = tmp_path / "good.json"
    good.write_text(json.dumps(good_config(active="nf2")))
    assert steering.load_config(str(good))["active"] == "nf2"


# -- rules --------------------------------------------------------------------------------------

NF_PORTS, HOSTS = {"nf1": 1, "nf2": 2}, [3, 4, 5]


def outputs(rule):
    return [a[1] for a in rule.actions if a[0] == "output"]


def rules_for(active):
    return steering.switch_rules(NF_PORTS, HOSTS, [IN_MAC, OUT_MAC], active)


def test_port_roles_find_nf_ports_by_name_and_skip_reserved_ports():
    ports = {1: "s1-eth1", 2: "s1-eth2", 3: "s1-eth3", 4: "s1-eth4", 0xfffffffe: "s1"}
    assert steering.port_roles(ports, {"nf1": "s1-eth1", "nf2": "s1-eth2"}) == \
        ({"nf1": 1, "nf2": 2}, [3, 4])
    with pytest.raises(ConfigError, match="switch 7 has no port named s1-eth9"):
        steering.port_roles(ports, {"nf1": "s1-eth1", "nf2": "s1-eth9"}, dpid=7)


@pytest.mark.parametrize("active, standby", [("nf1", "nf2"), ("nf2", "nf1")])
def test_nf_bound_traffic_goes_to_the_active_nf_only(active, standby):
    rules = rules_for(active)
    to_mac = [r for r in rules if r.table == FORWARD and set(r.match) == {"eth_dst"}
              and r.match["eth_dst"] in (IN_MAC, OUT_MAC)]
    assert sorted(r.match["eth_dst"] for r in to_mac) == sorted([IN_MAC, OUT_MAC])
    assert all(outputs(r) == [NF_PORTS[active]] for r in to_mac)
    bcast = {r.match["in_port"]: outputs(r) for r in rules
             if r.match.get("eth_dst") == steering.BROADCAST}
    # a host's broadcast: the active NF and every other host, never the sender or the standby
    assert bcast == {h: [NF_PORTS[active]] + [o for o in HOSTS if o != h] for h in HOSTS}
    for r in rules:
        assert NF_PORTS[standby] not in outputs(r), r
        assert r.priority > 20 or not (set(outputs(r)) & {1, 2}), r


def test_nf_output_reaches_hosts_only_and_the_nf_mac_is_never_learned():
    for active in ("nf1", "nf2"):
        rules = rules_for(active)
        for p in NF_PORTS.values():
            # both NFs' output is accepted, to the hosts only (never to the other NF)
            assert Rule(FORWARD, 10, {"in_port": p}, tuple(("output", h) for h in HOSTS)) \
                in rules
            # frames from an NF port skip learning: they are not copied to the controller
            assert Rule(LEARN, 20, {"in_port": p}, (("goto", FORWARD),)) in rules
        miss = [r for r in rules if r.table == LEARN and r.match == {}]
        assert miss == [Rule(LEARN, 0, {}, (("controller", steering.PACKET_IN_BYTES),
                                            ("goto", FORWARD)))]
        unknown = {r.match["in_port"]: outputs(r) for r in rules if r.priority == 5}
        assert unknown == {3: [4, 5], 4: [3, 5], 5: [3, 4]}


def keys(rules):
    """Rules as a set (their match is a dict)."""
    return {(r.table, r.priority, tuple(sorted(r.match.items())), r.actions) for r in rules}


def test_a_move_changes_exactly_the_nf_bound_rules():
    one, two = keys(rules_for("nf1")), keys(rules_for("nf2"))
    changed = one ^ two
    macs = [IN_MAC, OUT_MAC]
    assert one - two == keys(steering.nf_bound_rules(NF_PORTS, HOSTS, macs, "nf1"))
    assert two - one == keys(steering.nf_bound_rules(NF_PORTS, HOSTS, macs, "nf2"))
    assert len(changed) == 2 * (2 + len(HOSTS))       # 2 NF MACs + one broadcast per host


def test_learned_rules():
    assert steering.learned_rules("aa:bb:cc:00:00:01", 4) == [
        Rule(LEARN, 10, {"in_port": 4, "eth_src": "aa:bb:cc:00:00:01"}, (("goto", FORWARD),)),
        Rule(FORWARD, 20, {"eth_dst": "aa:bb:cc:00:00:01"}, (("output", 4),))]


# -- the pair topology (no root) ---------------------------------------------------------------

def test_pair_topology_shape_and_generated_config():
    t = sdn.SDN(pair=True, clients=2, tag="py")
    assert sorted(t.hosts()) == ["h1", "h2", "nf1", "nf2", "srv1"] and t.nf_names == ["nf1", "nf2"]
    for nf in ("nf1", "nf2"):
        info = t.nodeInfo(nf)
        assert info["defines"]["in_if"] == nf + "-eth0" and info["extra"] == []
        assert info["control"] == t.nf_paths(nf)["control"]
        assert t.linkInfo("pys1", nf)["addr2"] == IN_MAC       # same MACs on both NFs
        assert t.linkInfo("pys2", nf)["addr2"] == OUT_MAC
    cfg = steering.parse_config(t.steering)
    assert cfg["switches"] == {1: {"nf1": "pys1-eth1", "nf2": "pys1-eth2"},
                               2: {"nf1": "pys2-eth1", "nf2": "pys2-eth2"}}
    assert cfg["active"] == "nf1" and cfg["health"] == {
        nf: t.nf_paths(nf)["control"] for nf in ("nf1", "nf2")}
    assert t.nf_paths("nf1")["control"] != t.nf_paths("nf2")["control"]
    assert sdn.SDN(tag="pz").steering is None


def test_pair_replication_options():
    t = sdn.SDN(pair=True, replicate=1, tag="pr")
    one, two = t.nf_paths("nf1")["replica"], t.nf_paths("nf2")["replica"]
    assert t.nodeInfo("nf1")["extra"] == ["--replica-listen", one, "--replicate-to", two,
                                          "--role", "active"]
    assert t.nodeInfo("nf2")["extra"] == ["--replica-listen", two, "--replicate-to", one,
                                          "--role", "standby"]


@pytest.mark.parametrize("params, msg", [
    ({"replicate": True}, "replicate=True needs pair=True"),
    ({"pair": True, "nf": "router"}, "nf must be one of"),
    ({"pair": True, "control": "/tmp/x.sock"}, "with pair=True each NF has its own"),
    ({"pair": "yes"}, "pair must be True/False"),
])
def test_bad_pair_parameters(params, msg):
    with pytest.raises(ValueError, match=msg):
        sdn.SDN(**params)


# -- REST app (no controller) -------------------------------------------------------------------

class FakeSteering:
    cfg = {"nfs": ["nf1", "nf2"]}

    def __init__(self):
        self.moved = []

    def move(self, nf, reason):
        self.moved.append((nf, reason))
        return {"active": nf, "move_ms": 0.5}

    def status(self):
        return {"active": "nf1"}


def call(app, method, path, body=None):
    env = {"REQUEST_METHOD": method, "PATH_INFO": path}
    setup_testing_defaults(env)
    data = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    env.update({"wsgi.input": io.BytesIO(data), "CONTENT_LENGTH": str(len(data))})
    got = {}
    out = app(env, lambda status, headers: got.update(status=status))
    return int(got["status"].split()[0]), json.loads(b"".join(out))


def test_rest_routes_and_errors():
    fake = FakeSteering()
    app = steering.RestApp(fake)
    assert call(app, "GET", "/clickup/status") == (200, {"active": "nf1"})
    assert call(app, "POST", "/clickup/active", {"nf": "nf2"}) == \
        (200, {"active": "nf2", "move_ms": 0.5})
    assert fake.moved == [("nf2", "rest")]
    code, body = call(app, "POST", "/clickup/active", {"nf": "nf9"})
    assert code == 400 and "one of nf1, nf2" in body["error"]
    code, body = call(app, "POST", "/clickup/active", b"{nf")
    assert code == 400 and "must be JSON" in body["error"]
    assert call(app, "GET", "/clickup/active")[0] == 405
    assert call(app, "GET", "/nothing")[0] == 404
    assert fake.moved == [("nf2", "rest")]                 # bad requests moved nothing


# -- launcher (no root) -------------------------------------------------------------------------

def launcher(*args):
    return subprocess.run([sdn.controller_python(), "-m", "topologies.controller"] + list(args),
                          cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=60)


def test_launcher_refuses_missing_or_bad_steering_config(tmp_path):
    r = launcher("--app", "steering")
    assert r.returncode == 2 and "--app steering needs --config FILE" in r.stdout
    bad = tmp_path / "s.json"
    bad.write_text(json.dumps(good_config(active="nf3")))
    r = launcher("--app", "steering", "--config", str(bad), "--rest-port", "1")
    assert r.returncode == 2 and '"active" must name one of the NFs' in r.stdout, r.stdout
    r = launcher("--config", str(bad))
    assert r.returncode == 2 and "options of --app steering" in r.stdout


def test_steering_app_loads_under_ryu_names():
    from test_topologies import RYU_ALIAS
    code = RYU_ALIAS.replace('print("ok")', "import topologies.steering as s\n"
                             "assert issubclass(s.NFSteering, am.RyuApp)\nprint('ok')")
    r = subprocess.run([sdn.controller_python(), "-c", code], cwd=ROOT,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert r.stdout.strip().endswith("ok"), r.stdout


# -- failover decision against real control sockets (no root, no switches) ---------------------

NF_CONFIG = "src :: InfiniteSource(LIMIT 1); src -> Discard;"


def app_with(health, **changes):
    steering.NFSteering.configure(steering.parse_config(good_config(health=health, **changes)))
    try:
        return steering.NFSteering()
    finally:
        steering.NFSteering.configure(None)


def test_health_fails_over_after_n_failures_in_a_row(control_router, tmp_path):
    _, _, live = control_router(NF_CONFIG)
    app = app_with({"nf1": str(tmp_path / "dead.sock"), "nf2": live}, health_failures=3)
    assert app.probe("nf2") is None and "no control socket" in app.probe("nf1")
    app._health_check()
    app._health_check()
    assert app.active == "nf1" and app.failovers == 0 and app.health["failures"] == 2
    app._health_check()
    assert app.active == "nf2" and app.failovers == 1
    record = app.status()["moves"][-1]
    assert record["reason"] == "failover" and record["from"] == "nf1" and record["to"] == "nf2"
    assert record["failures"] == 3 and record["t_end_mono"] >= record["t_start_mono"]
    app._health_check()                                    # nf2 answers: it stays
    assert app.active == "nf2" and app.health["failures"] == 0


def test_health_does_not_move_to_a_dead_standby(tmp_path):
    app = app_with({"nf1": str(tmp_path / "a.sock"), "nf2": str(tmp_path / "b.sock")},
                   health_failures=1)
    for _ in range(3):
        app._health_check()
    assert app.active == "nf1" and app.failovers == 0 and app.moves == []
    assert app.health["failures"] == 3 and "nf1" in app.health["last_error"]


# -- root: the pair in Mininet ------------------------------------------------------------------

def nf_read(net, nf, handler):
    with ControlClient(net.get(nf).control) as c:
        return c.read(handler)


def sent(net):
    """Frames each NF sent to the outside."""
    return {nf: int(nf_read(net, nf, "to_out.count")) for nf in ("nf1", "nf2")}


def remove_sockets(net):
    """A SIGKILLed NF leaves its control socket behind; it is ours (named by our tag)."""
    for nf in ("nf1", "nf2"):
        path = net.topo.nf_paths(nf)["control"]
        if os.path.exists(path):
            os.unlink(path)


@root
def test_pair_carries_traffic_through_nf1_and_a_move_sends_it_through_nf2():
    with sdn.network(pair=True, clients=2, servers=1, tag=tag("a")) as net:
        port = sdn.rest_port(net)
        st = sdn.steering_status(port)
        assert st["active"] == "nf1" and st["standby"] == "nf2" and st["moves"] == []
        assert sorted(st["switches"]) == ["1", "2"]
        assert ite.reach(net) == []
        ok, msg = ite.download(net, nbytes=2000000, client=1)
        assert ok, msg
        before = sent(net)
        assert before["nf1"] > 100 and before["nf2"] == 0

        answer = sdn.move_to(port, "nf2")
        assert answer["active"] == "nf2" and answer["from"] == "nf1"
        assert answer["move_ms"] > 0 and answer["t_end_mono"] >= answer["t_start_mono"]
        assert answer["switches"] == [1, 2] and answer["late"] == []
        flows = net.get(tag("a") + "s1").dpctl("dump-flows", "-O", "OpenFlow13")
        assert 'dl_dst=%s actions=output:"%ss1-eth2"' % (IN_MAC, tag("a")) in flows, flows
        ok, msg = ite.download(net, nbytes=2000000)
        assert ok, msg
        assert ite.reach(net) == []
        after = sent(net)
        assert after["nf1"] == before["nf1"] and after["nf2"] > 100
        st = sdn.steering_status(port)
        assert st["active"] == "nf2" and [m["reason"] for m in st["moves"]] == ["rest"]
        with pytest.raises(RuntimeError, match="400 .*one of nf1, nf2"):
            sdn.move_to(port, "nf3")
    assert not [l for l in subprocess.run(["ip", "-o", "link"], stdout=subprocess.PIPE,
                                          text=True).stdout.splitlines() if tag("a") in l]


@root
def test_sigkill_of_the_active_nf_fails_over_to_the_standby():
    with sdn.network(pair=True, tag=tag("b")) as net:
        try:
            port = sdn.rest_port(net)
            ok, msg = ite.download(net, nbytes=1000000)
            assert ok, msg
            net.get("nf1").nfproc.kill()                  # SIGKILL
            deadline = time.monotonic() + 10
            # "active" changes as the move starts; the failover counts once its move is
            # done (barriers answered), with its record
            while sdn.steering_status(port)["failovers"] == 0:
                assert time.monotonic() < deadline, sdn.steering_status(port)
                time.sleep(0.02)
            st = sdn.steering_status(port)
            assert st["failovers"] == 1 and st["active"] == "nf2"
            fo = st["moves"][-1]
            assert fo["reason"] == "failover" and fo["from"] == "nf1" and fo["to"] == "nf2"
            assert fo["failures"] == 3 and "nf1" in st["health"]["last_error"]
            # A new connection works through nf2 (nf1's NAT state is gone: no replication).
            ok, msg = ite.download(net, nbytes=1000000)
            assert ok, msg
            assert int(nf_read(net, "nf2", "to_out.count")) > 50
        finally:
            remove_sockets(net)


@root
@pytest.mark.skipif(not os.path.exists("/usr/bin/mn"), reason="no /usr/bin/mn")
def test_mn_custom_sdn_pair():
    from test_topologies import run_mn
    rc, out = run_mn("--custom", "topologies/sdn.py", "--topo", "sdn,pair=1,tag=%s" % tag("c"),
                     "--controller", "osken", "--test", "steering+download")
    assert rc == 0 and "*** download ok" in out, out
    assert "*** steering ok: active nf1, standby nf2, switches 1, 2" in out, out
    assert "suppressed" not in out, out


# -- wire mode: a bump-in-the-wire NF (the firewall), steered by port ---------------------------

def wire_config(**changes):
    cfg = good_config(mode="wire", **changes)
    if "nf_mac" not in changes:
        del cfg["nf_mac"]
    return cfg


def wire_rules(active):
    # NF MACs given anyway are ignored: in wire mode nothing is steered by MAC
    return steering.switch_rules(NF_PORTS, HOSTS, [IN_MAC, OUT_MAC], active, mode="wire")


def forward(rules, in_port, eth_dst):
    """Where table 1 sends a frame: the outputs of the highest-priority rule that matches."""
    hits = [r for r in rules if r.table == FORWARD
            and r.match.get("in_port", in_port) == in_port
            and r.match.get("eth_dst", eth_dst) == eth_dst]
    assert hits, (in_port, eth_dst)
    best = max(r.priority for r in hits)
    assert len([r for r in hits if r.priority == best]) == 1, hits    # never ambiguous
    return outputs([r for r in hits if r.priority == best][0])


def test_wire_config_needs_no_nf_mac_and_mac_stays_the_default():
    cfg = steering.parse_config(wire_config())
    assert cfg["mode"] == "wire" and cfg["nf_mac"] == {} and cfg["active"] == "nf1"
    assert steering.parse_config(good_config())["mode"] == "mac"
    with pytest.raises(ConfigError, match='"mode" must be "mac" .* or "wire"'):
        steering.parse_config(good_config(mode="bridge"))
    with pytest.raises(ConfigError, match='"nf_mac" has no use in "wire" mode'):
        steering.parse_config(wire_config(nf_mac=dict(sdn.NF_MAC)))
    with pytest.raises(ConfigError, match='"nf_mac" must be an object'):
        steering.parse_config(good_config(mode="mac", nf_mac=None))


@pytest.mark.parametrize("active, standby", [("nf1", "nf2"), ("nf2", "nf1")])
def test_wire_mode_sends_every_host_frame_to_the_active_nf_only(active, standby):
    rules = wire_rules(active)
    server, local = "aa:bb:cc:00:01:01", "aa:bb:cc:00:00:04"
    for h in HOSTS:
        # a frame for a host beyond the NF (its MAC is the host's own, never learned here)
        assert forward(rules, h, server) == [NF_PORTS[active]]
        assert forward(rules, h, steering.BROADCAST) == \
            [NF_PORTS[active]] + [o for o in HOSTS if o != h]
    # a host learned on this switch is reached directly, not through the NF
    learned = rules + steering.learned_rules(local, 4)
    assert forward(learned, 3, local) == [4]
    assert forward(learned, 3, server) == [NF_PORTS[active]]
    for p in NF_PORTS.values():
        # either NF's output goes to the hosts (learned or flooded), never to the other NF
        assert forward(rules, p, server) == HOSTS
        assert forward(learned, p, local) == [4]
        assert Rule(LEARN, 20, {"in_port": p}, (("goto", FORWARD),)) in rules
    assert not any(NF_PORTS[standby] in outputs(r) for r in rules)
    assert not any(r.match.get("eth_dst") in (IN_MAC, OUT_MAC) for r in rules)


def test_wire_move_changes_exactly_the_host_to_nf_rules():
    one, two = keys(wire_rules("nf1")), keys(wire_rules("nf2"))
    assert one - two == keys(steering.nf_bound_rules(NF_PORTS, HOSTS, [], "nf1", mode="wire"))
    assert two - one == keys(steering.nf_bound_rules(NF_PORTS, HOSTS, [], "nf2", mode="wire"))
    assert len(one ^ two) == 2 * 2 * len(HOSTS)          # per host: unicast and broadcast
    moved = steering.nf_bound_rules(NF_PORTS, HOSTS, [], "nf2", mode="wire")
    assert {r.match["in_port"] for r in moved} == set(HOSTS)     # host -> NF rules only
    # mac mode is untouched by the new parameter
    assert rules_for("nf1") == steering.switch_rules(NF_PORTS, HOSTS, [IN_MAC, OUT_MAC],
                                                     "nf1", mode="mac")
    with pytest.raises(ValueError, match="unknown steering mode 'bridge'"):
        steering.switch_rules(NF_PORTS, HOSTS, [], "nf1", mode="bridge")


def test_firewall_pair_topology_generates_a_wire_config():
    t = sdn.SDN(pair=True, nf="firewall", tag="pw")
    assert t.nf_names == ["nf1", "nf2"] and t.steering_mode() == "wire"
    for nf in ("nf1", "nf2"):
        info = t.nodeInfo(nf)
        assert info["nfconfig"] == ite.NFS["firewall"]
        assert info["defines"]["in_if"] == nf + "-eth0" and info["defines"]["out_if"] == nf + "-eth1"
        assert "addr2" not in t.linkInfo("pws1", nf)          # no shared MAC: hosts' MACs pass
    assert "nf_mac" not in t.steering
    cfg = steering.parse_config(t.steering)
    assert cfg["mode"] == "wire" and cfg["switches"] == {
        1: {"nf1": "pws1-eth1", "nf2": "pws1-eth2"}, 2: {"nf1": "pws2-eth1", "nf2": "pws2-eth2"}}
    nat = sdn.SDN(pair=True, tag="pn").steering
    assert nat["nf_mac"] == sdn.NF_MAC and "mode" not in nat          # nat: unchanged


@root
def test_firewall_pair_carries_traffic_through_nf1_and_a_move_sends_it_through_nf2():
    with sdn.network(pair=True, nf="firewall", clients=2, servers=1, tag=tag("w")) as net:
        port = sdn.rest_port(net)
        assert sdn.steering_status(port)["mode"] == "wire"
        assert ite.reach(net) == []
        ok, msg = ite.download(net, nbytes=1000000, client=1)
        assert ok, msg
        before = sent(net)
        # nf2 sees only the few IPv6 router solicitations the root namespace's end of its
        # links sends directly (not through the switch); a firewall passes them on.
        assert before["nf1"] > 50 and before["nf2"] < 10
        answer = sdn.move_to(port, "nf2")
        assert answer["active"] == "nf2" and answer["late"] == []
        ok, msg = ite.download(net, nbytes=1000000)
        assert ok, msg
        after = sent(net)
        assert after["nf1"] - before["nf1"] < 10 and after["nf2"] - before["nf2"] > 50

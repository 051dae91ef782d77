"""The Mininet topologies: ``ite`` carries a download through the NF, ``sdn`` with
the os-ken controller passes ping and TCP, and both build through ``mn --custom``.

Every network gets a tag of its own (the prefix of its switch names), so these
tests can run beside other Mininet users of the machine.  ``mn`` itself runs
its machine-wide ``cleanup()`` when anything fails; the ``mn`` tests
run the real /usr/bin/mn script with that function disarmed."""

import os
import re
import subprocess

import pytest

pytest.importorskip("mininet")

from mininet.log import setLogLevel  # noqa: E402

from topologies import ite, sdn  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
root = pytest.mark.root
# Mininet's OVS version check uses distutils' StrictVersion.
pytestmark = pytest.mark.filterwarnings("ignore:distutils Version classes:DeprecationWarning")
setLogLevel("critical")


def tag(letter):
    return "t%d%s" % (os.getpid() % 10000, letter)


def root_links(prefix):
    """Names of the root namespace's interfaces that start with ``prefix``."""
    out = subprocess.run(["ip", "-o", "link", "show"], stdout=subprocess.PIPE, text=True).stdout
    names = (l.split(":")[1].strip().split("@")[0] for l in out.splitlines())
    return [n for n in names if n.startswith(prefix)]


def nf_read(net, handler):
    from nf.control import ControlClient
    with ControlClient(net.get("nf").control) as c:
        return c.read(handler)


def has_osken():
    py = sdn.controller_python()
    return subprocess.run([py, "-c", "import os_ken.base.app_manager"],
                          stderr=subprocess.DEVNULL).returncode == 0


# -- parameters (no root) -------------------------------------------------------------------------

def test_parameters_build_the_documented_shape():
    t = ite.ITE(clients=3, servers=2, nf="nat", tag="ab")
    assert t.clients == ["h1", "h2", "h3"] and t.servers == ["srv1", "srv2"]
    assert sorted(t.switches()) == ["abs1", "abs2"]
    assert t.nodeInfo("h2")["ip"] == "10.0.0.2/24"
    assert t.nodeInfo("h2")["defaultRoute"] == "via 10.0.0.254"
    assert t.nodeInfo("srv2")["ip"] == "10.0.1.2/24"
    fw = ite.ITE(clients=1, servers=1, nf="firewall")
    assert fw.switches() == []                          # one host a side: direct links
    assert fw.nodeInfo("h1")["ip"] == "10.0.0.1/16" and "defaultRoute" not in fw.nodeInfo("h1")
    assert fw.nodeInfo("srv1")["ip"] == "10.0.1.1/16"
    assert fw.nodeInfo("nf")["defines"] == {"in_if": "nf-eth0", "out_if": "nf-eth1"}


@pytest.mark.parametrize("params, msg", [
    ({"clients": 2, "switch": "direct"}, "switch=direct"),
    ({"nf": "router"}, "nf must be one of"),
    ({"switch": "ovs"}, "switch must be one of"),
    ({"servers": 0}, "servers must be"),
    ({"tag": "much-too-long"}, "tag must be"),
    ({"bw": 5000}, "bw must be"),
])
def test_bad_parameters_say_what_was_expected(params, msg):
    with pytest.raises(ValueError, match=msg):
        ite.ITE(**params)


def test_sdn_always_uses_switches():
    t = sdn.SDN(clients=1, servers=1, tag="x")
    assert sorted(t.switches()) == ["xs1", "xs2"]
    assert t.nodeInfo("xs1")["cls"] is sdn.UserOVSSwitch
    with pytest.raises(ValueError, match="switch must be one of auto, ovs"):
        sdn.SDN(switch="direct")


def test_describe_states_the_network_a_run_records():
    t = ite.ITE(clients=3, servers=2, nf="nat", bw=46.3, tag="ab").describe()
    assert (t["name"], t["clients"], t["servers"], t["switch"]) == ("ite", 3, 2, "lxbr")
    assert (t["nf"], t["config"], t["nf_nodes"], t["bw_mbit"]) == \
        ("nat", "configs/nat.click", ["nf"], 46.3)
    assert t["description"] == ("3 clients -- Linux bridge -- NF (nat, userspace, AF_PACKET) "
                                "-- Linux bridge -- 2 servers; veth links, htb-shaped to "
                                "46.3 Mbit/s")
    fw = ite.ITE(nf="firewall").describe()
    assert fw["switch"] == "direct" and fw["description"].startswith(
        "1 client -- direct link -- NF (firewall, ")
    p = sdn.SDN(clients=4, servers=3, tag="x", pair=True, replicate=True).describe()
    assert (p["name"], p["switch"], p["nf_nodes"]) == ("sdn", "ovs", ["nf1", "nf2"])
    assert "NF pair (nat, nf1 active / nf2 standby, replicating" in p["description"]
    assert "Open vSwitch (userspace datapath)" in p["description"]
    assert sdn.SDN(tag="x").describe()["nf_nodes"] == ["nf"]


# -- ite -------------------------------------------------------------------------------------------

@root
def test_ite_nat_download_through_the_nf():
    with ite.running(ite.ITE(clients=2, servers=2, nf="nat", bw=200, tag=tag("a"))) as net:
        ok, msg = ite.download(net, nbytes=3000000, client=1, server=1)
        assert ok, msg
        # The NAT carried it: its table maps h2's connection to the outside address.
        assert re.search(r"10\.0\.0\.2:\d+ -> 10\.0\.1\.254:\d+", nf_read(net, "rw.mappings"))
        assert ite.reach(net) == []
        h1 = net.get("h1")
        assert "tx-checksumming: off" in h1.cmd("ethtool -k h1-eth0")
        qdiscs = h1.cmd("tc qdisc show dev h1-eth0") + h1.cmd("tc class show dev h1-eth0")
        assert "htb" in qdiscs and "rate 200Mbit" in qdiscs and "netem" not in qdiscs
        assert root_links(tag("a") + "s1")              # a bridge: two clients
    assert root_links(tag("a")) == []


@root
def test_ite_firewall_on_direct_links_passes_only_inside_sessions():
    with ite.running(ite.ITE(nf="firewall", tag=tag("b"))) as net:
        ok, msg = ite.download(net, nbytes=2000000)
        assert ok, msg
        assert int(nf_read(net, "fw.sessions")) >= 1
        # The NF is really in the path: the outside cannot open a session.
        out = net.get("srv1").cmd("ping -c 2 -i 0.2 -W 1 10.0.0.1")
        assert " 0 received" in out
        assert root_links(tag("b")) == []              # direct links: nothing in the root namespace


@root
def test_ite_failure_inside_tears_everything_down():
    with pytest.raises(RuntimeError, match="boom"):
        with ite.running(ite.ITE(clients=2, tag=tag("c"))) as net:
            nf_proc = net.get("nf").nfproc
            assert root_links(tag("c"))
            raise RuntimeError("boom")
    assert nf_proc.poll() is not None
    assert root_links(tag("c")) == []


# -- sdn -------------------------------------------------------------------------------------------

@root
@pytest.mark.skipif(not has_osken(), reason="os-ken is not installed: pip install os-ken==4.2.2")
def test_sdn_controller_passes_ping_and_tcp():
    with sdn.network(clients=2, servers=1, tag=tag("d")) as net:
        ctl = net.controllers[0].proc
        assert ite.reach(net) == []
        ok, msg = ite.download(net, nbytes=3000000, client=1)
        assert ok, msg
        # The controller learned the hosts: flows beyond its table-miss entry.
        flows = net.get(tag("d") + "s1").dpctl("dump-flows", "-O", "OpenFlow13")
        assert "priority=10" in flows and "CONTROLLER" in flows
        bridges = subprocess.run(["ovs-vsctl", "list-br"], stdout=subprocess.PIPE,
                                 text=True).stdout.split()
        assert {tag("d") + "s1", tag("d") + "s2"} <= set(bridges)
    assert ctl.poll() is not None                       # stopped by PID
    left = subprocess.run(["ovs-vsctl", "-t", "2", "list-br"], stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, text=True).stdout.split()
    assert not [b for b in left if b.startswith(tag("d"))]
    assert root_links(tag("d")) == []


# -- mn --custom -----------------------------------------------------------------------------------

MN = ("import runpy, sys, mininet.clean\n"
      "mininet.clean.cleanup = lambda: print('mn cleanup() suppressed')\n"
      "sys.argv = ['mn'] + sys.argv[1:]\n"
      "runpy.run_path('/usr/bin/mn', run_name='__main__')\n")


def run_mn(*args):
    """The real /usr/bin/mn under Debian's python3, its machine-wide cleanup disarmed."""
    r = subprocess.run(["/usr/bin/python3", "-c", MN] + list(args), cwd=ROOT,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60)
    return r.returncode, r.stdout


@root
@pytest.mark.skipif(not os.path.exists("/usr/bin/mn"), reason="no /usr/bin/mn")
def test_mn_custom_ite_builds_and_downloads():
    rc, out = run_mn("--custom", "topologies/ite.py",
                     "--topo", "ite,clients=2,servers=1,bw=46,nf=nat,tag=%s" % tag("e"),
                     "--controller", "none", "--test", "download+reach")
    assert rc == 0 and "*** download ok" in out and "*** reach ok" in out, out
    assert "suppressed" not in out, out
    assert root_links(tag("e")) == []


@root
@pytest.mark.skipif(not os.path.exists("/usr/bin/mn") or not has_osken(),
                    reason="needs /usr/bin/mn and os-ken")
def test_mn_custom_sdn_with_the_osken_controller():
    rc, out = run_mn("--custom", "topologies/sdn.py", "--topo", "sdn,tag=%s" % tag("f"),
                     "--controller", "osken", "--test", "download")
    assert rc == 0 and "*** download ok" in out, out
    assert "suppressed" not in out, out
    assert root_links(tag("f")) == []


# -- the controller app under Ryu's names (no root) ---------------------------------------------

RYU_ALIAS = """
import importlib, sys
for sub in ("", ".base", ".base.app_manager", ".controller", ".controller.ofp_event",
            ".controller.handler", ".controller.controller", ".ofproto",
            ".ofproto.ofproto_v1_3", ".lib", ".lib.hub", ".cfg"):
    sys.modules["ryu" + sub] = importlib.import_module("os_ken" + sub)
am = sys.modules["ryu.base.app_manager"]
am.RyuApp = am.OSKenApp
del am.OSKenApp                 # Ryu has no OSKenApp: the app must find RyuApp
import topologies.controller as c
assert c.FRAMEWORK == "ryu", c.FRAMEWORK
assert issubclass(c.L2Learning, am.RyuApp)
print("ok")
"""


@pytest.mark.skipif(not has_osken(), reason="os-ken is not installed")
def test_controller_app_loads_under_ryu_names():
    r = subprocess.run([sdn.controller_python(), "-c", RYU_ALIAS], cwd=ROOT,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert r.stdout.strip().endswith("ok"), r.stdout

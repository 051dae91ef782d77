"""``clickup doctor``: check every dependency and say how to fix what is missing."""

import importlib
import os
import shutil
import subprocess
import sys

TOOLS = [  # (command, Debian package)
    ("mn", "mininet"), ("iperf3", "iperf3"), ("ovs-vsctl", "openvswitch-switch"),
    ("ovs-testcontroller", "openvswitch-testcontroller"), ("brctl", "bridge-utils"),
    ("ethtool", "ethtool"), ("ping", "iputils-ping"), ("wget", "wget"), ("curl", "curl"),
    ("trafgen", "netsniff-ng"), ("tc", "iproute2"), ("ip", "iproute2"),
    ("taskset", "util-linux"),
]
MODULES = [  # (module, how to get it)
    ("mininet", "apt-get install mininet (it lives in /usr/bin/python3; the venv must be "
                "made with --system-site-packages: make setup)"),
    ("matplotlib", "apt-get install python3-matplotlib (then make setup)"),
    ("os_ken", "make setup (pip installs os-ken into .venv)"),
]


def _probe_kernel():
    """(ok, detail) for network namespaces + veth + htb, tried in a scratch namespace."""
    ns = "cudoctor%d" % os.getpid()
    try:
        if subprocess.run(["ip", "netns", "add", ns], capture_output=True).returncode:
            return False, "cannot create a network namespace"
        ex = lambda *c: subprocess.run(["ip", "netns", "exec", ns] + list(c),  # noqa: E731
                                       capture_output=True, text=True)
        if ex("ip", "link", "add", "d0", "type", "veth", "peer", "name", "d1").returncode:
            return False, "no veth support"
        r = ex("tc", "qdisc", "add", "dev", "d0", "root", "handle", "1:", "htb")
        if r.returncode:
            return False, "no htb qdisc: %s" % r.stderr.strip()
        return True, "namespaces, veth and htb work"
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def doctor():
    problems = 0

    def line(ok, what, fix=""):
        nonlocal problems
        problems += not ok
        print("%s %s%s" % ("ok  " if ok else "MISS", what, "" if ok else "  -> " + fix))

    line(os.geteuid() == 0, "running as root", "run as root (Mininet and namespaces need it)")
    for cmd, pkg in TOOLS:
        line(shutil.which(cmd) is not None, "command %s" % cmd, "apt-get install %s" % pkg)
    line(os.path.exists("/usr/share/openvswitch/scripts/ovs-ctl"), "ovs-ctl script",
         "apt-get install openvswitch-switch")
    for mod, fix in MODULES:
        try:
            importlib.import_module(mod)
            ok = True
        except Exception:
            ok = False
        line(ok, "Python module %s" % mod, fix)
    if os.geteuid() == 0:
        ok, detail = _probe_kernel()
        line(ok, "kernel: %s" % detail, "this kernel lacks it; the testbed cannot run here")
    print("\n%s" % ("everything is in place" if not problems else
                    "%d problem(s); `make setup` installs the packages" % problems))
    return 1 if problems else 0


def add_parser(sub):
    p = sub.add_parser("doctor", help="check every dependency and say how to fix it")
    p.set_defaults(func=lambda a: doctor())


if __name__ == "__main__":
    sys.exit(doctor())

"""What this project created on the machine, so ``clickup clean`` removes only that.

Topologies and runners call :func:`record` for each process (by PID, with its
command line), network namespace, interface and OVS bridge they create, and
:func:`forget` once they have removed it themselves.  After a crash or a
SIGKILL the records stay, and ``clickup clean`` finishes the job: it kills a
recorded PID only if that process still runs the recorded command line (a PID
can be reused), and deletes recorded names only.  Nothing machine-wide is
touched: no Mininet-wide cleanup, no killing by process name.
"""

import json
import os
import signal
import subprocess
import time

DIR = os.environ.get("CLICKUP_STATE_DIR", "/run/clickup")
PATH = os.path.join(DIR, "owned.jsonl")

__all__ = ["record", "forget", "records", "clean", "add_parser"]


def _proc_cmd(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return None


def record(kind, name, cmd=None):
    """kind: "pid", "netns", "link" (root-namespace interface) or "ovs-bridge".
    For a pid, ``cmd`` is the command line it will run (after any exec wrappers);
    ``clean`` kills it only if its command line still ends with that."""
    entry = {"kind": kind, "name": name, "t": time.time()}
    if kind == "pid":
        entry["cmd"] = cmd or _proc_cmd(int(name))
    try:
        os.makedirs(DIR, exist_ok=True)
        with open(PATH, "a") as f:
            f.write(json.dumps(entry) + "\n")
    except OSError:
        pass                    # not root: nothing of ours can outlive us anyway


def forget(kind, name):
    rs = [r for r in records() if not (r["kind"] == kind and str(r["name"]) == str(name))]
    _write(rs)


def records():
    try:
        with open(PATH) as f:
            return [json.loads(line) for line in f if line.strip()]
    except (OSError, ValueError):
        return []


def _write(rs):
    try:
        os.makedirs(DIR, exist_ok=True)
        tmp = PATH + ".tmp"
        with open(tmp, "w") as f:
            for r in rs:
                f.write(json.dumps(r) + "\n")
        os.replace(tmp, PATH)
    except OSError:
        pass


def _run(*cmd):
    return subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode


def clean(verbose=True):
    """Remove everything recorded; returns the list of what was removed."""
    done = []
    left = []
    for r in records():
        kind, name = r["kind"], r["name"]
        if kind == "pid":
            pid = int(name)
            cmd = _proc_cmd(pid)
            if cmd is None or (r.get("cmd") and not cmd.endswith(r["cmd"])):
                continue                      # gone, or the PID now belongs to someone else
            try:
                os.kill(pid, signal.SIGTERM)
                for _ in range(50):
                    if _proc_cmd(pid) is None:
                        break
                    time.sleep(0.05)
                else:
                    os.kill(pid, signal.SIGKILL)
                done.append("process %d (%s)" % (pid, cmd[:60]))
            except ProcessLookupError:
                pass
        elif kind == "netns":
            if _run("ip", "netns", "pids", name) == 0:
                out = subprocess.run(["ip", "netns", "pids", name], capture_output=True,
                                     text=True).stdout
                for pid in out.split():
                    try:
                        os.kill(int(pid), signal.SIGKILL)
                    except (ProcessLookupError, ValueError):
                        pass
                if _run("ip", "netns", "del", name) == 0:
                    done.append("namespace %s" % name)
        elif kind == "link":
            if _run("ip", "link", "del", name) == 0:
                done.append("interface %s" % name)
        elif kind == "ovs-bridge":
            if _run("ovs-vsctl", "--if-exists", "del-br", name) == 0:
                done.append("OVS bridge %s" % name)
        else:
            left.append(r)
    _write(left)
    if verbose:
        print("\n".join("removed " + d for d in done) or "nothing of clickup's to clean")
    return done


def add_parser(sub):
    p = sub.add_parser("clean", help="remove what this project left behind (by record)")
    p.set_defaults(func=lambda a: (clean(), 0)[1])

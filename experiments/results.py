"""Where runs put their data, and the provenance saved beside it.

``run_dir(name)`` makes ``results/<name>/<timestamp>/`` and points
``results/<name>/latest`` at it; ``provenance(args)`` records the arguments,
the git commit (and whether the tree was dirty), tool versions and the host.
"""

import datetime
import json
import os
import platform
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TOOLS = {"iperf3": ["iperf3", "--version"], "wget": ["wget", "--version"],
         "mininet": ["mn", "--version"], "kernel": ["uname", "-r"]}


def _first_line(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return None


def git_commit():
    commit = _first_line(["git", "-C", ROOT, "rev-parse", "HEAD"])
    dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return commit, bool(dirty)


def provenance(args=None):
    from nf import __version__
    commit, dirty = git_commit()
    return {
        "argv": sys.argv,
        "args": {k: v for k, v in vars(args).items() if k != "func"} if args else {},
        "git_commit": commit, "git_dirty": dirty, "clickup_version": __version__,
        "python": sys.version.split()[0], "host": platform.node(),
        "platform": platform.platform(), "cpus": os.cpu_count(),
        "tools": {k: _first_line(v) for k, v in TOOLS.items()},
        "started": datetime.datetime.now().isoformat(timespec="seconds"),
    }


def run_dir(name, base=None):
    base = base or os.path.join(ROOT, "results")
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    d = os.path.join(base, name, stamp)
    os.makedirs(d, exist_ok=True)
    latest = os.path.join(base, name, "latest")
    try:
        if os.path.islink(latest):
            os.unlink(latest)
        os.symlink(stamp, latest)
    except OSError:
        pass
    return d


def resolve_run(path, marker):
    """The run folder at ``path``: ``path`` itself if it holds ``marker`` (a file or folder
    every run of its kind has), else its ``latest`` run when ``path`` is an experiment's
    folder (results/<name>/) -- the link run_dir keeps -- else None."""
    if os.path.exists(os.path.join(path, marker)):
        return path
    latest = os.path.join(path, "latest")
    if os.path.exists(os.path.join(latest, marker)):
        return os.path.realpath(latest)
    return None


def save_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True, default=str)
        f.write("\n")

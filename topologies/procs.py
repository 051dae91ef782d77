"""Processes this project starts: the NF's command line, and stopping by PID only."""

import signal
import subprocess
import sys

__all__ = ["stop", "nf_command"]


def nf_command(config, defines=None, control=None, extra=()):
    """The command that runs an NF: ``clickup nf run CONFIG -d k=v ... [--control S]``,
    with the interpreter running us (so a venv's is used in every namespace)."""
    cmd = [sys.executable, "-m", "experiments.cli", "nf", "run", config]
    for k, v in (defines or {}).items():
        cmd += ["-d", "%s=%s" % (k, v)]
    if control:
        cmd += ["--control", control]
    return cmd + list(extra)


def stop(p, grace=5.0):
    """SIGTERM ``p`` (a Popen), then SIGKILL if it has not exited after ``grace`` s."""
    if p is None or p.poll() is not None:
        return
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(grace)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(5)

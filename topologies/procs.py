"""Stopping a process this project started, by its PID only."""

import signal
import subprocess

__all__ = ["stop"]


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

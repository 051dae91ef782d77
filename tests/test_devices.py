"""Root tests for FromDevice/ToDevice: frames cross a veth pair byte for byte,
outgoing frames are not read back, and the bare forwarder copies frames."""

import os
import select
import subprocess
import sys
import time

import pytest

from nf import headers as H
from nf.testing import make, packets

pytestmark = pytest.mark.root

NS = "cutest%d" % (os.getpid() % 100000)
CLONE_NEWNET = 0x40000000


def _setns(fd):
    # os.setns arrived in Python 3.12; Debian 12 has 3.11.
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns")


@pytest.fixture
def veth():
    """A namespace with a veth pair a0 <-> b0; the test process enters it."""
    subprocess.run(["ip", "netns", "add", NS], check=True)
    try:
        cmd = lambda *c: subprocess.run(["ip", "netns", "exec", NS] + list(c), check=True)  # noqa
        cmd("ip", "link", "add", "a0", "type", "veth", "peer", "name", "b0")
        cmd("ip", "link", "set", "a0", "up")
        cmd("ip", "link", "set", "b0", "up")
        cmd("sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
        old = os.open("/proc/self/ns/net", os.O_RDONLY)
        fd = os.open("/run/netns/%s" % NS, os.O_RDONLY)
        _setns(fd)
        os.close(fd)
        try:
            yield
        finally:
            _setns(old)
            os.close(old)
    finally:
        subprocess.run(["ip", "netns", "del", NS])


FRAME = H.ether("02:00:00:00:00:02", "02:00:00:00:00:01", H.ETHERTYPE_IP,
                H.udp("10.9.0.1", "10.9.0.2", 1000, 2000, b"golden payload"))


def _drain(elem, want, timeout=3.0):
    deadline = time.time() + timeout
    while len(elem.sinks[0].packets) < want and time.time() < deadline:
        select.select([elem.sock], [], [], 0.1)
        elem.selected()
    return [p.data for p in elem.sinks[0].packets]


def test_todevice_to_fromdevice_byte_for_byte(veth):
    rx = make("FromDevice", "b0")
    tx = make("ToDevice", "a0")
    try:
        frames = [FRAME, FRAME[:-1] + b"!"]
        tx.push(0, packets(frames))
        got = _drain(rx, 2)
        assert got == frames
        assert H.verify(got[0]) == []
        assert tx.read("count") == "2"
    finally:
        rx.cleanup()
        tx.cleanup()


def test_fromdevice_tells_a_frame_waiting_unread_and_when_it_last_read(veth):
    """What a switchover asks of the old active: is a frame still queued, when was the
    last one read (FromDevice.pending, last_rx)."""
    rx = make("FromDevice", "b0")
    tx = make("ToDevice", "a0")
    try:
        assert not rx.pending() and rx.last_rx is None
        tx.push(0, packets([FRAME]))
        deadline = time.time() + 3
        while not rx.pending() and time.time() < deadline:
            time.sleep(0.01)
        assert rx.pending()
        assert _drain(rx, 1) == [FRAME]
        assert not rx.pending() and rx.last_rx is not None
    finally:
        rx.cleanup()
        tx.cleanup()


def test_fromdevice_ignores_outgoing(veth):
    rx = make("FromDevice", "a0")
    tx = make("ToDevice", "a0")
    peer = make("FromDevice", "b0")
    try:
        tx.push(0, packets([FRAME]))
        assert _drain(peer, 1) == [FRAME]
        assert _drain(rx, 1, timeout=0.5) == [], "a device's own sends are not read back"
    finally:
        for e in (rx, tx, peer):
            e.cleanup()


def test_missing_device_is_a_clear_error(veth):
    from nf.errors import ConfigError
    with pytest.raises((ValueError, ConfigError)) as ei:
        make("FromDevice", "nonesuch0")
    assert "nonesuch0" in str(ei.value)


def test_forwarder_copies_frames_unchanged(veth):
    subprocess.run(["ip", "link", "add", "c0", "type", "veth", "peer", "name", "d0"], check=True)
    for d in ("c0", "d0"):
        subprocess.run(["ip", "link", "set", d, "up"], check=True)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    p = subprocess.Popen([sys.executable, "-m", "experiments.cli", "nf", "forward", "b0", "c0"],
                         cwd=root, stderr=subprocess.PIPE)
    rx = make("FromDevice", "d0")
    tx = make("ToDevice", "a0")
    try:
        time.sleep(0.5)
        tx.push(0, packets([FRAME]))
        assert _drain(rx, 1) == [FRAME]
    finally:
        rx.cleanup()
        tx.cleanup()
        p.terminate()
        p.wait(5)

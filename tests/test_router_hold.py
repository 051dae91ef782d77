"""Router.hold(): packet sources stopped, their frames kept queued, in order.

A replication standby holds (nf/state/replica.py), so the frames a switchover
sends it before it has caught up wait in the kernel's socket queue instead of
being handled with incomplete state.  No root: the device is a Unix datagram
socketpair read by a PACKET_SOURCE element of the test's own, the generators
are the library's, and the router is stepped by hand (no loop thread)."""

import socket

import pytest

from nf import headers as H
from nf.config import parse_string
from nf.control import ControlClient, ControlError, ControlServer
from nf.element import Element
from nf.packet import Packet
from nf.router import Router


class SockSource(Element):
    """SockSource -- pushes each datagram read from the test's socket as a packet."""

    PORTS = "0/1"
    PACKET_SOURCE = True
    sock = None                   # set by the test before initialize()

    def initialize(self):
        self.router.add_reader(self.sock.fileno(), self.selected)

    def selected(self):
        batch = []
        while True:
            try:
                batch.append(Packet(bytearray(self.sock.recv(2048))))
            except BlockingIOError:
                break
        if batch:
            self._out[0](batch)


class Keep(Element):
    """Keep -- remembers the payload of every packet it gets."""

    PORTS = "1/0"
    seen = None

    def push(self, port, batch):
        Keep.seen.extend(bytes(p.buf) for p in batch)


CLASSES = {"SockSource": SockSource, "Keep": Keep}


@pytest.fixture
def wire():
    """(router, the sending end of the device) for ``SockSource -> Keep``."""
    inside, outside = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    inside.setblocking(False)
    SockSource.sock = inside
    Keep.seen = []
    r = Router(parse_string("src :: SockSource -> Keep;"), classes=CLASSES)
    yield r, outside
    r.cleanup()
    inside.close()
    outside.close()


def frames(n, start=0):
    return [H.udp("10.0.0.2", "198.51.100.7", 5000 + i, 53) for i in range(start, start + n)]


def turns(router, n=5):
    for _ in range(n):
        router.step(0.01)


def test_held_frames_wait_in_the_queue_and_come_in_order_on_release(wire):
    r, dev = wire
    r.initialize()
    dev.send(frames(1)[0])
    turns(r)
    assert len(Keep.seen) == 1                  # not holding: handled at once
    assert r.hold(True) is True
    sent = frames(20, start=1)
    for f in sent:
        dev.send(f)
    turns(r)
    assert len(Keep.seen) == 1                  # held: nothing read
    assert r.holding and r.hold_since is not None
    assert r.hold(False) is True
    turns(r)
    assert Keep.seen[1:] == sent                # every frame, in the order sent
    assert not r.holding and r.hold_since is None


def held_until_released(r, dev):
    """A frame sent now stays unread until the hold is released, then is read."""
    dev.send(frames(1)[0])
    turns(r)
    assert Keep.seen == []
    r.hold(False)
    turns(r)
    assert len(Keep.seen) == 1


def test_a_source_registered_while_holding_is_held_too(wire):
    r, dev = wire
    r.hold(True)
    r.initialize()                              # FromDevice registers in initialize()
    held_until_released(r, dev)


def test_holding_twice_or_releasing_twice_changes_nothing(wire):
    r, dev = wire
    r.initialize()
    assert r.hold(False) is False
    assert r.hold(True) is True
    assert r.hold(True) is False
    assert r.hold(False) is True
    dev.send(frames(1)[0])
    turns(r)
    assert len(Keep.seen) == 1


def test_an_element_suspended_while_held_resumes_into_the_hold(wire):
    """An upgrade may suspend and resume a source during a hold: it stays held."""
    r, dev = wire
    r.initialize()
    r.hold(True)
    src = r.elements["src"]
    r.suspend(src)
    r.resume(src)
    held_until_released(r, dev)


def test_other_readers_and_tasks_keep_running(wire):
    """Only packet sources stop: the control socket, timers and other tasks go on."""
    r, _ = wire
    r.initialize()
    ran = []

    class Helper:
        def task(self):
            ran.append(1)
            return False
    r.add_task(Helper().task)
    r.hold(True)
    turns(r, 3)
    assert len(ran) >= 3


def test_a_rated_generator_sends_nothing_held_and_paces_afresh_after(monkeypatch):
    Keep.seen = []
    r = Router(parse_string("src :: RatedSource(RATE 1000) -> Keep;"), classes=CLASSES)
    t = [100.0]
    r.elements["src"].clock = lambda: t[0]
    try:
        r.initialize()
        r.step(0)
        assert len(Keep.seen) == 1              # the first packet leaves at once
        r.hold(True)
        for _ in range(10):
            t[0] += 0.1                         # a second passes while held
            r.step(0)
        assert len(Keep.seen) == 1
        r.hold(False)
        r.step(0)
        # Without the fresh start a run would send every packet due in the held
        # second (1000, in batches of 256); with it, one packet.
        assert len(Keep.seen) == 2
        t[0] += 0.010
        r.step(0)
        assert len(Keep.seen) == 12             # then at RATE again: 10 more in 10 ms
    finally:
        r.cleanup()


def test_the_hold_handler_through_the_control_socket(wire, tmp_path):
    r, dev = wire
    path = str(tmp_path / "nf.sock")
    ControlServer(r, path)
    r.initialize()
    box = {}

    import threading

    def client():
        with ControlClient(path) as c:
            box["before"] = c.read("hold")
            c.write("hold", "true")
            box["during"] = c.read("hold")
            try:
                c.write("hold", "maybe")
            except ControlError as e:
                box["bad"] = str(e)
    th = threading.Thread(target=client)
    th.start()
    while th.is_alive():
        r.step(0.01)
    th.join()
    assert box["before"] == "false" and box["during"] == "true"
    assert "hold: expected true or false" in box["bad"] and "maybe" in box["bad"]
    dev.send(frames(1)[0])
    turns(r)
    assert Keep.seen == [] and r.holding


def test_a_queued_frame_is_seen_by_rx_pending():
    """nf.afpacket.rx_pending (FIONREAD: the next frame's length) on a datagram socket,
    as on a packet socket: what tells a switchover the old NF still has frames queued."""
    from nf.afpacket import rx_pending
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        assert rx_pending(b) == 0
        a.send(b"x" * 60)
        a.send(b"y" * 90)
        assert rx_pending(b) == 60
        b.recv(100)
        assert rx_pending(b) == 90
        b.recv(100)
        assert rx_pending(b) == 0
    finally:
        a.close()
        b.close()

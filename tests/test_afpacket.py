"""Batched I/O (nf.afpacket.MsgRing) on a Unix datagram socket pair: no root needed."""

import socket

from nf.afpacket import MsgRing


def _pair():
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    return a, b


def test_stage_send_and_receive_a_batch():
    a, b = _pair()
    frames = [bytes([i]) * (60 + i) for i in range(5)]
    tx, rx = MsgRing(8, 256), MsgRing(8, 256)
    for i, f in enumerate(frames):
        tx.stage(i, f)
    assert tx.send(a.fileno(), len(frames)) == 0
    n = rx.recv(b.fileno())
    assert n == 5
    got = [bytes(rx.view[i * rx.slot:i * rx.slot + ln]) for i, ln in enumerate(rx.lengths(n))]
    assert got == frames


def test_recv_without_data_returns_zero():
    a, b = _pair()
    b.setblocking(False)
    assert MsgRing(4, 64).recv(b.fileno()) == 0


def test_send_received_echoes_without_copy_and_restores_slots():
    a, b = _pair()
    c, d = _pair()
    ring = MsgRing(4, 128)
    for f in (b"x" * 10, b"y" * 100):
        a.send(f)
    n = ring.recv(b.fileno())
    assert n == 2
    assert ring.send_received(c.fileno(), n) == 0
    assert d.recv(200) == b"x" * 10 and d.recv(200) == b"y" * 100
    a.send(b"z" * 120)
    assert ring.recv(b.fileno()) == 1 and ring.lengths(1) == [120], "slot length restored"


def test_refused_frames_are_counted():
    a, b = _pair()
    b.close()                               # the peer is gone: every send fails
    ring = MsgRing(4, 64)
    for i in range(3):
        ring.stage(i, b"abc")
    assert ring.send(a.fileno(), 3) == 3

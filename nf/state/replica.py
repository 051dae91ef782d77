"""Live state replication between an active and a standby NF, conntrackd style.

Two NF processes run the same graph.  The *active* one forwards and sends a
live copy of its stateful elements' state to the *standby*, which forwards
nothing and keeps the copy ready.  The standby's packet sources are held
(``Router.hold``): frames that reach it -- those the controller sends it in
the moment of a switchover, before it has caught up with the old active's
last changes -- wait in the kernel's socket queues and are handled, in
order, once it is promoted, with complete state.  When the standby is told to become active
(``WRITE replication_role active``, after the SDN controller moved the
traffic to it), it holds every NAT mapping and firewall session the active
had, with the same outside ports.  The contract is section 1 of
docs/switchover.md; this module is both ends of it.

Transport: a Unix stream socket (the NF nodes are network namespaces on one
filesystem).  Frames: a 4-byte big-endian length, then one JSON object.

    active -> standby   {"type": "hello", "node": N, "graph_version": V}
                        {"type": "snapshot", "seq": n, "states": {element: {"class": C,
                            "version": v, "data": export_state()}, ...}}
                        {"type": "events", "seq": n, "events": {element: {"class": C,
                            "version": v, "events": [[kind, key, value], ...]}, ...}}
    standby -> active   {"type": "ack", "seq": n}      (after applying message n;
                                                        acks are cumulative)

Sequence numbers grow over the life of the sending process, across
reconnections, so an ack of an older connection can never pass for a newer
message.

Active side (the sender), driven by a router timer every ``interval``
seconds (0.005): while it has no connection it tries the peer's path every
``retry`` seconds (0.1); on every connection it does a full resync -- hello,
then one snapshot of every stateful element that replays a journal,
exported at its STATE_VERSION -- and from then on sends, every interval,
the events those elements journaled since (one "events" message, if there
are any).  A connection lost before its snapshot was acked (a peer that
dies at once, or a path where something else listens) is retried after
0.2, 0.4, ... up to 2 s, as each attempt costs a full export; an absent
peer is tried every ``retry`` seconds.  It reads the journals through persistent readers
(:class:`nf.state.sync.JournalReader`), so it coexists with the persistent
store's syncer: both see every event.  Any error -- the standby closed the
connection, a send failed -- drops the connection, and the next one
resyncs.  When the graph's stateful elements change (an in-place upgrade
replaced one), the sender resyncs on the same connection.

Standby side (the receiver): listens on ``listen`` and applies, on the
router's loop thread, a snapshot with ``import_state(data, version)`` (which
migrates an older version: the standby may run the newer code) and events
with ``migrate_events(events, version)`` then ``replay_events(events)``.
Elements it does not have, of another class, whose state it cannot load, or
whose snapshot failed (their later events) are skipped and counted.  A new
connection replaces the current one once it has said hello (a connection
that only probes whether someone listens cuts no link).  Acks are sent
after the messages a read brought in are applied.  The standby's router carries
``replication_role = "standby"``, which stops IPRewriter and
StatefulFirewall from expiring entries on their own (the copies look idle:
the traffic is on the active); the active's "removed" events remove them.

Roles: ``WRITE replication_role active`` promotes a standby -- its inbound
connection is closed, every entry's idle time restarts now
(``restart_idle()`` of the elements that have it), its hold is released, it
stops listening and starts sending to its peer; ``WRITE replication_role
standby`` demotes an active -- it stops sending, holds and listens.  An NF listens only while it is a
standby: an active peer that tries to connect to an active NF is refused by
the kernel at once, before it exports anything (else it would export its
whole table every retry).

The packet loop is never blocked on a socket: every socket is non-blocking
and on the loop's epoll (the sender's wish to write through an epoll of its
own, registered as a reader, so that it is woken when the socket drains).
Encoding is spread over loop turns: a big message is encoded in slices of
``SLICE`` list items with the C encoder, and at most ``BUDGET`` seconds of
encoding and sending happen per loop turn; the frame is sent once it is
complete.  What is not spread is ``export_state()`` itself, an element
method that walks the table in one go.

Measured on the 2-core VM, 10,000 IPRewriter mappings (one UDP session each,
2.5 MB of JSON), the standby in another process: the active's loop stops
once per resync for the export, 37-52 ms; the encoding, 33-38 ms in all, is
spread over 14-16 loop turns of at most 2.5 ms each (5 ms when the cyclic
collector runs meanwhile); the standby is in sync about 300 ms after the
connection.  The standby, which carries no traffic, stops its loop for
50-60 ms to decode the snapshot (the collector paused) and 140-160 ms to
import it.  tests/test_replica.py measures it again (in one process, where
the two loops share the GIL, so its turns look longer).  Steady state: a
tick with nothing journaled costs 3 us (200 a second); 1,000 new mappings in
one interval cost the active about 3 ms and the standby 27 ms to apply.

    READ replication        -> JSON: role, listen, peer, connected, seq_sent,
                               seq_acked, pending_events, in_sync, resyncs,
                               snapshot_entries, events_applied, skipped,
                               last_ack_mono, and more (see Replication.status)
    WRITE replication_role  active | standby
"""

import collections
import functools
import itertools
import json
import os
import select
import socket
import sys
import time
import weakref

from ..element import state_entries
from ..errors import HandlerError
from ..perf import gc_paused
from .sync import journal_reader, replays_journal
from .wire import (HEADER, FrameReader, _Job, frame,  # noqa: F401 (frame: re-exported)
                   listen_path_problem, peer_path_problem)

__all__ = ["Replication", "replication_of", "is_standby", "replicable", "ROLES",
           "listen_path_problem", "peer_path_problem", "FrameReader", "frame"]

ROLES = ("active", "standby")
BUDGET = 0.002                # seconds of encoding and sending per loop turn
OUT_HIGH = 1 << 20            # bytes queued for the socket before encoding pauses
RECV = 1 << 20
MAX_PENDING = 4               # inbound connections not yet greeted (hello) kept open
MAX_JOBS = 10000              # messages waiting to be encoded: past it, the standby
                              # does not keep up; drop the connection (resync later)
MAX_BACKOFF = 2.0             # seconds between attempts at most (see _drop_out)

_REPLICAS = weakref.WeakKeyDictionary()       # router -> its Replication


def replication_of(router):
    """The router's Replication, or None."""
    return _REPLICAS.get(router)


def is_standby(router):
    """True while ``router`` is the standby of a replicating pair (its elements
    must not expire entries on their own)."""
    return getattr(router, "replication_role", None) == "standby"


def replicable(e):
    """Elements whose state is replicated: stateful ones that replay a journal."""
    return e.stateful and replays_journal(e)


# -- the two ends --------------------------------------------------------------------------

class _Inbound:
    __slots__ = ("sock", "frames", "ack_out", "ack_seq", "ack_next", "hello")

    def __init__(self, sock):
        self.sock = sock
        self.frames = FrameReader()
        self.ack_out = b""           # the unsent rest of an ack frame
        self.ack_seq = None          # the seq it acks
        self.ack_next = None         # a seq to ack once ack_out is out
        self.hello = None


class Replication:
    """Replicates ``router``'s state to a standby (role "active") or receives the
    active's (role "standby").

    ``listen``: the path where this NF listens for an active peer while it is a
    standby; ``peer``: the peer's listen path, where it sends while active;
    ``role``: the starting role (default "active" if ``peer`` is given, else
    "standby"); ``interval``: seconds between the sender's journal drains;
    ``retry``: seconds between connection attempts; ``node``: the name sent in
    hello.  ValueError for bad arguments, OSError if it cannot listen.
    """

    def __init__(self, router, listen=None, peer=None, role=None, interval=0.005,
                 node=None, retry=0.1, clock=None):
        if _REPLICAS.get(router) is not None:
            raise ValueError("the router already replicates")
        if role is None:
            role = "active" if peer else "standby"
        if role not in ROLES:
            raise ValueError("role must be active or standby, got %r" % (role,))
        if not (isinstance(interval, (int, float)) and interval > 0):
            raise ValueError("replica interval must be a positive number of seconds, got %r"
                             % (interval,))
        if role == "standby" and not listen:
            raise ValueError("a standby needs a listen path (where the active connects)")
        if listen and peer and os.path.abspath(listen) == os.path.abspath(peer):
            raise ValueError("the listen path and the peer's path are the same (%s)" % listen)
        self.router = router
        self.listen, self.peer = listen, peer
        self.interval, self.retry = float(interval), float(retry)
        self.clock = clock or router.clock
        self.node = node or "%s/%d" % (socket.gethostname(), os.getpid())
        self.options = None          # the NF's run options, kept current (restarts)
        self.role = role
        self.closed = False
        self.last_error = None
        # sender
        self._out = None             # connected socket to the peer
        self._frames = None          # acks from the peer
        self._readers = {}           # element name -> JournalReader
        self._jobs = collections.deque()
        self._queue = collections.deque()   # [memoryview, seq or None] to send
        self._queued = 0
        self._wep = select.epoll()   # the sender's wish to write (a reader of the loop)
        self._wreg = False
        self._retry_at = 0.0
        self._failures = 0            # connections lost in a row before their snapshot's ack
        self._seq = 0
        self._snap_seq = None
        self.seq_sent = 0
        self.seq_acked = 0
        self.last_ack_mono = None
        self.events_sent = 0
        # receiver
        self._listener = None
        self._in = None               # the current inbound connection (it said hello)
        self._pending_in = []         # accepted, no hello yet
        self._snapshot_applied = False
        self._valid = set()           # elements whose snapshot applied on this connection
        self.seq_applied = 0          # the last message applied (standby)
        self.seq_acked_out = 0        # the last seq acked to the active
        self.last_ack_out_mono = None
        self.events_applied = 0
        self.skipped = 0
        self.skip_reasons = {}
        self.refused = 0
        # both
        self.resyncs = 0
        self.connections = 0
        self.snapshot_entries = 0
        self.promotions = 0
        # the loop's pauses, in ms: the active's last snapshot export, its encoding
        # (CPU in all, and in how many loop turns), the longest encode-and-send turn;
        # the standby's last snapshot decode and import, the longest message applied
        self.timing = {"export_ms": None, "encode_ms": None, "encode_turns": None,
                       "snapshot_bytes": None, "max_pump_ms": 0.0, "decode_ms": None,
                       "import_ms": None, "max_apply_ms": 0.0, "promote_ms": None}
        try:
            if role == "standby":
                self._start_listening()
            elif listen:
                problem = listen_path_problem(listen, "listen path")
                if problem:
                    raise OSError(problem)
        except OSError:
            self._wep.close()
            raise
        router.replication_role = role
        router.hold(role == "standby")
        router.add_reader(self._wep.fileno(), self._writable)
        router.add_timer(self.interval, self._tick)
        router.add_cleanup(self.close)
        router.global_handlers.update({
            "replication": (self._h_read, None),
            "replication_role": (None, self._h_role),
        })
        _REPLICAS[router] = self

    # -- status -------------------------------------------------------------------------
    @property
    def connected(self):
        return (self._out if self.role == "active" else self._in) is not None

    def pending_events(self):
        """Events journaled and not yet drained into a message."""
        return sum(r.pending() for r in self._readers.values())

    @property
    def in_sync(self):
        """Active: connected, the last snapshot acked, every message sent and acked,
        no journaled event waiting.  Standby: connected and a snapshot applied."""
        if self.role == "standby":
            return self._in is not None and self._snapshot_applied
        return (self._out is not None and self._snap_seq is not None
                and not self._jobs and not self._queue
                and self.seq_acked >= self._snap_seq and self.seq_acked == self.seq_sent
                and self.pending_events() == 0)

    def status(self):
        """The ``replication`` read handler's answer, as a dict."""
        standby = self.role == "standby"
        hello = self._in.hello if self._in is not None and self._in.hello else {}
        return {
            "role": self.role, "listen": self.listen, "peer": self.peer,
            "listening": self._listener is not None,
            "connected": self.connected,
            # a standby's are those of the last message it received and acked
            "seq_sent": self.seq_applied if standby else self.seq_sent,
            "seq_acked": self.seq_acked_out if standby else self.seq_acked,
            "pending_events": 0 if standby else self.pending_events(),
            "in_sync": self.in_sync,
            "resyncs": self.resyncs, "connections": self.connections,
            "snapshot_entries": self.snapshot_entries,
            "events_sent": self.events_sent, "events_applied": self.events_applied,
            "skipped": self.skipped, "skip_reasons": dict(self.skip_reasons),
            "refused": self.refused, "promotions": self.promotions,
            "holding": self.router.holding, **self._rx(),
            "last_ack_mono": self.last_ack_out_mono if standby else self.last_ack_mono,
            "peer_node": hello.get("node"), "peer_graph_version": hello.get("graph_version"),
            "node": self.node, "interval": self.interval,
            "last_error": self.last_error, "timing": dict(self.timing),
        }

    def _rx(self):
        """Frames the packet sources brought in, when the last one was read (clock
        time), and how many sources have a frame waiting unread: a switchover watches
        the old active's to see when it has stopped receiving."""
        rx, last, pending = 0, None, 0
        for e in self.router.elements.values():
            if e.PACKET_SOURCE:
                rx += getattr(e, "count", 0)
                t = getattr(e, "last_rx", None)
                if t is not None and (last is None or t > last):
                    last = t
                waiting = getattr(e, "pending", None)
                if waiting is not None and waiting():
                    pending += 1
        return {"rx_frames": rx, "last_rx_mono": last, "rx_pending": pending}

    def _h_read(self):
        return json.dumps(self.status(), sort_keys=True)

    def _h_role(self, value):
        role = value.strip()
        if role not in ROLES:
            raise HandlerError("replication_role: expected active or standby, got %r"
                               % value.strip())
        try:
            self.set_role(role)
        except (ValueError, OSError) as e:
            raise HandlerError("replication_role %s: %s" % (role, e)) from None

    # -- roles --------------------------------------------------------------------------
    def set_role(self, role):
        """Become ``role`` (no change if it is the current one)."""
        if role not in ROLES:
            raise ValueError("role must be active or standby, got %r" % (role,))
        if role == self.role or self.closed:
            return
        if role == "active":
            self._promote()
        else:
            self._demote()
        if self.options is not None:
            self.options["role"] = role

    def _promote(self):
        t0 = time.perf_counter()
        self._close_in("promoted to active")
        self._stop_listening()
        self.role = self.router.replication_role = "active"
        for e in list(self.router.elements.values()):
            touch = getattr(e, "restart_idle", None)
            if touch is not None:
                try:
                    touch()
                except Exception as ex:      # one element must not stop the promotion
                    self._log("%s.restart_idle() failed: %s" % (e.name, ex))
        self.promotions += 1
        self.router.hold(False)              # what reached it meanwhile is handled now
        self._retry_at = self.clock()        # connect to the peer at the next tick
        self.timing["promote_ms"] = round((time.perf_counter() - t0) * 1e3, 3)

    def _demote(self):
        if not self.listen:
            raise ValueError("this NF has no listen path (--replica-listen): it cannot be "
                             "a standby")
        problem = listen_path_problem(self.listen, "listen path")
        if problem:
            raise OSError(problem)
        self._drop_out("demoted to standby", retry=False)
        self.role = self.router.replication_role = "standby"
        self.router.hold(True)
        self._snapshot_applied = False
        self._start_listening()

    # -- the timer ----------------------------------------------------------------------
    def _tick(self):
        if self.closed:
            return
        if self.role == "standby":
            if self._in is not None and (self._in.ack_out or self._in.ack_next is not None):
                self._flush_ack()
            return
        if self.peer is None:
            return
        if self._out is None:
            if self.clock() >= self._retry_at:
                self._connect()
            return
        if self._elements_changed():
            self._resync()
            return
        self._send_events()

    def _replicable(self):
        return {n: e for n, e in self.router.elements.items() if replicable(e)}

    def _elements_changed(self):
        current = self.router.elements
        readers = self._readers
        n = 0
        for name, e in current.items():
            if replicable(e):
                r = readers.get(name)
                if r is None or r.element is not e:
                    return True
                n += 1
        return n != len(readers)

    # -- sender -------------------------------------------------------------------------
    def _connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect(self.peer)
        except OSError as e:
            s.close()
            self._retry_at = self.clock() + self.retry
            self._error("connect %s: %s" % (self.peer, e.strerror or e))
            return
        self._out = s
        self._frames = FrameReader()
        self.connections += 1
        self.last_error = None
        self.router.add_reader(s.fileno(), self._out_readable)
        self._resync()

    def _resync(self):
        """hello and a snapshot of every replicable element, then its events."""
        self.resyncs += 1
        for r in self._readers.values():
            r.close()
        self._readers = {}
        current = self._replicable()
        for name, e in current.items():
            self._readers[name] = journal_reader(e)
        self._enqueue("hello", {"type": "hello", "node": self.node,
                                "graph_version": self._graph_version()})
        t0 = time.perf_counter()
        states, entries = {}, 0
        for name, e in current.items():
            try:
                data = e.export_state()
            except Exception as ex:          # one broken element must not stop the others
                self._log("%s.export_state() failed: %s" % (name, ex))
                continue
            states[name] = {"class": type(e).__name__, "version": e.STATE_VERSION,
                            "data": data}
            entries += state_entries(data)
        self.timing["export_ms"] = round((time.perf_counter() - t0) * 1e3, 3)
        self.snapshot_entries = entries
        self._seq += 1
        self._snap_seq = self._seq
        self._enqueue("snapshot", {"type": "snapshot", "seq": self._seq, "states": states},
                      seq=self._seq)
        self._want_write(True)        # encoding starts at the next loop turn

    def _send_events(self):
        batch, n = {}, 0
        for name, r in self._readers.items():
            events = r.drain()
            if events:
                e = r.element
                batch[name] = {"class": type(e).__name__, "version": e.STATE_VERSION,
                               "events": events}
                n += len(events)
        if n and len(self._jobs) >= MAX_JOBS:
            self._drop_out("the standby does not keep up: %d messages wait to be sent"
                           % len(self._jobs))
            return
        if n:
            self._seq += 1
            self._enqueue("events", {"type": "events", "seq": self._seq, "events": batch},
                          seq=self._seq, events=n)
            self._pump()

    def _enqueue(self, kind, msg, seq=None, events=0):
        self._jobs.append(_Job(seq, kind, msg, events))

    def _graph_version(self):
        try:
            from ..upgrade.base import running_version
            return running_version(self.router)
        except Exception:                    # a name for the log only
            return None

    def _pump(self):
        """Encode and send for at most about BUDGET seconds."""
        s = self._out
        if s is None:
            return
        t0 = time.perf_counter()
        deadline = t0 + BUDGET
        try:
            while True:
                while self._jobs and self._queued < OUT_HIGH:
                    job = self._jobs[0]
                    if not job.step(deadline):
                        break
                    self._jobs.popleft()
                    self._frame_done(job)
                if not self._queue:
                    break
                bufs = [m for m, _ in itertools.islice(self._queue, 64)]
                try:
                    n = s.sendmsg(bufs, [], socket.MSG_NOSIGNAL)
                except (BlockingIOError, InterruptedError):
                    break
                self._sent(n)
                if time.perf_counter() >= deadline:
                    break
        except OSError as e:
            self._drop_out("send: %s" % (e.strerror or e))
            return
        finally:
            self._turn("max_pump_ms", time.perf_counter() - t0)
        self._want_write(bool(self._queue or self._jobs))

    def _frame_done(self, job):
        if job.kind == "snapshot":
            self.timing["encode_ms"] = round(job.busy * 1e3, 3)
            self.timing["encode_turns"] = job.turns
            self.timing["snapshot_bytes"] = job.size
        header = HEADER.pack(job.size)
        q = self._queue
        q.append([memoryview(header), None])
        for b in job.pieces:
            q.append([memoryview(b), None])
        q[-1][1] = job.seq
        self._queued += job.size + 4
        if job.events:
            self.events_sent += job.events
        job.pieces = None

    def _sent(self, n):
        q = self._queue
        self._queued -= n
        while n:
            item = q[0]
            m = item[0]
            if n >= len(m):
                n -= len(m)
                q.popleft()
                if item[1] is not None:
                    self.seq_sent = item[1]
            else:
                item[0] = m[n:]
                n = 0

    def _want_write(self, want):
        if want == self._wreg or self._out is None:
            return
        if want:
            self._wep.register(self._out.fileno(), select.EPOLLOUT)
        else:
            self._wep.unregister(self._out.fileno())
        self._wreg = want

    def _writable(self):
        try:
            self._wep.poll(0)
        except OSError:
            pass
        if self._out is not None:
            self._pump()

    def _out_readable(self):
        s = self._out
        if s is None:
            return
        try:
            data = s.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            self._drop_out("receive: %s" % (e.strerror or e))
            return
        if not data:
            self._drop_out("the standby closed the connection")
            return
        try:
            bodies = self._frames.feed(data)
            for body in bodies:
                msg = json.loads(body)
                if isinstance(msg, dict) and msg.get("type") == "ack":
                    seq = int(msg["seq"])
                    if seq > self.seq_acked:
                        self.seq_acked = seq
                    if self._snap_seq is not None and seq >= self._snap_seq:
                        self._failures = 0
                    self.last_ack_mono = self.clock()
        except (ValueError, KeyError, TypeError) as e:
            self._drop_out("bad message from the standby: %s" % e)

    def _drop_out(self, reason, retry=True):
        """Close the connection to the peer (the next one resyncs)."""
        s = self._out
        if s is not None:
            if self._wreg:
                try:
                    self._wep.unregister(s.fileno())
                except OSError:
                    pass
                self._wreg = False
            self.router.remove_reader(s.fileno())
            s.close()
            self._out = None
            self._error(reason)
        unacked = self._snap_seq is not None and self.seq_acked < self._snap_seq
        self._frames = None
        self._jobs.clear()
        self._queue.clear()
        self._queued = 0
        self._snap_seq = None
        for r in self._readers.values():
            r.close()
        self._readers = {}
        if retry:
            # A peer that took the connection but lost it before acking the snapshot
            # (it died, or it is not a replica receiver) is retried with a back-off:
            # each attempt costs a full export.  An absent peer costs nothing to try.
            self._failures = min(self._failures + 1, 8) if unacked else 0
            delay = min(self.retry * (2 ** self._failures), max(self.retry, MAX_BACKOFF))
            self._retry_at = self.clock() + delay

    # -- receiver -----------------------------------------------------------------------
    def _start_listening(self):
        if self._listener is not None:
            return
        path = self.listen
        problem = listen_path_problem(path)
        if problem:
            raise OSError(problem)
        if os.path.exists(path):
            os.unlink(path)                  # a stale socket (nobody listens there)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)                # 0600: the peer writes this NF's state
        try:
            s.bind(path)
        except OSError:
            s.close()
            raise
        finally:
            os.umask(old)
        s.listen(4)
        s.setblocking(False)
        self._listener = s
        self.router.add_reader(s.fileno(), self._accept)

    def _stop_listening(self):
        s = self._listener
        if s is None:
            return
        self.router.remove_reader(s.fileno())
        s.close()
        self._listener = None
        try:
            os.unlink(self.listen)
        except OSError:
            pass

    def _accept(self):
        try:
            s, _ = self._listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            self._error("accept: %s" % e)
            return
        if self.role != "standby":
            self.refused += 1
            s.close()
            return
        # The connection replaces the current one only once it says hello: a probe
        # (another process checking whether someone listens here) must not cut the
        # live link.
        s.setblocking(False)
        c = _Inbound(s)
        self._pending_in.append(c)
        while len(self._pending_in) > MAX_PENDING:
            self._close_conn(self._pending_in[0])
        self.router.add_reader(s.fileno(), functools.partial(self._in_readable, c))

    def _close_conn(self, c, reason=None):
        """Close inbound connection ``c`` (the current one, or one not yet greeted)."""
        if c.sock.fileno() >= 0:
            self.router.remove_reader(c.sock.fileno())
        c.sock.close()
        if c in self._pending_in:
            self._pending_in.remove(c)
        if c is self._in:
            self._in = None
            self._snapshot_applied = False
            self._valid = set()
            if reason:
                self._error(reason)

    def _close_in(self, reason):
        """Close the current inbound connection and any not yet greeted."""
        for c in list(self._pending_in):
            self._close_conn(c)
        if self._in is not None:
            self._close_conn(self._in, reason)

    def _in_readable(self, c):
        if c is not self._in and c not in self._pending_in:
            return
        chunks = []
        eof = None
        for _ in range(16):
            try:
                data = c.sock.recv(RECV)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as e:
                eof = "receive: %s" % (e.strerror or e)
                break
            if not data:
                eof = "the active closed the connection"
                break
            chunks.append(data)
        last = None
        if chunks:
            try:
                bodies = c.frames.feed(b"".join(chunks) if len(chunks) > 1 else chunks[0])
                for body in bodies:
                    seq = self._apply(c, body)
                    if self._in is not c:          # the role changed meanwhile
                        return
                    if seq is not None:
                        last = seq
            except ValueError as e:
                self._close_conn(c, "bad message from the active: %s" % e)
                return
        if last is not None:
            self._ack(last)
        if eof is not None:
            self._close_conn(c, eof)

    def _greeted(self, c, msg):
        """``c`` said hello: it becomes the current connection (a full resync follows)."""
        if self._in is not None and self._in is not c:
            self._close_conn(self._in, "replaced by a new connection")
        if c in self._pending_in:
            self._pending_in.remove(c)
            self.connections += 1
        self._in = c
        c.hello = {"node": msg.get("node"), "graph_version": msg.get("graph_version")}
        self._snapshot_applied = False
        self._valid = set()

    def _apply(self, c, body):
        """Apply one message from connection ``c``; returns its seq (to ack), or None."""
        t0 = time.perf_counter()
        with gc_paused():
            msg = json.loads(body)
        decode = time.perf_counter() - t0
        if not isinstance(msg, dict):
            raise ValueError("expected a JSON object, got %s" % type(msg).__name__)
        kind = msg.get("type")
        seq = msg.get("seq")
        if seq is not None and not isinstance(seq, int):
            raise ValueError("seq must be an integer, got %r" % (seq,))
        if kind == "hello":
            self._greeted(c, msg)
            return None
        if c is not self._in:
            raise ValueError("expected hello first, got %r" % (kind,))
        if kind == "snapshot":
            self.timing["decode_ms"] = round(decode * 1e3, 3)
            self._apply_snapshot(msg.get("states"))
        elif kind == "events":
            self._apply_events(msg.get("events"))
        # other types: a newer sender's; ignored, but acked
        if seq is not None:
            self.seq_applied = seq
        self._turn("max_apply_ms", time.perf_counter() - t0)
        return seq

    def _target(self, name, ent):
        """The element ``ent`` (a snapshot's or events' entry) is for, or None after
        counting why it is skipped."""
        if not isinstance(ent, dict):
            return self._skip(name, "malformed entry")
        e = self.router.elements.get(name)
        if e is None:
            return self._skip(name, "no element of that name")
        if not e.stateful:
            return self._skip(name, "%s keeps no state" % type(e).__name__)
        if type(e).__name__ != ent.get("class"):
            return self._skip(name, "class differs: the active's %s, this NF's %s"
                              % (ent.get("class"), type(e).__name__))
        version = ent.get("version")
        if not isinstance(version, int) or version > e.STATE_VERSION:
            return self._skip(name, "state version %r is newer than %s's %d"
                              % (version, type(e).__name__, e.STATE_VERSION))
        return e

    def _skip(self, name, reason):
        self.skipped += 1
        self.skip_reasons[name] = reason
        return None

    def _apply_snapshot(self, states):
        if not isinstance(states, dict):
            raise ValueError("a snapshot needs 'states' (an object)")
        t0 = time.perf_counter()
        self._valid = set()
        entries = 0
        for name, ent in states.items():
            e = self._target(name, ent)
            if e is None:
                continue
            data = ent.get("data")
            try:
                e.import_state(data, ent["version"])
            except Exception as ex:
                self._skip(name, "import_state failed: %s" % ex)
                continue
            self._valid.add(name)
            entries += state_entries(data)
        self.snapshot_entries = entries
        self._snapshot_applied = True
        self.timing["import_ms"] = round((time.perf_counter() - t0) * 1e3, 3)

    def _apply_events(self, batch):
        if not isinstance(batch, dict):
            raise ValueError("an events message needs 'events' (an object)")
        for name, ent in batch.items():
            e = self._target(name, ent)
            if e is None:
                continue
            events = ent.get("events")
            if not isinstance(events, list):
                self._skip(name, "malformed events")
                continue
            if name not in self._valid:
                self._skip(name, "events without an applied snapshot")
                continue
            try:
                if ent["version"] != e.STATE_VERSION:
                    events = type(e).migrate_events(events, ent["version"])
                e.replay_events(events)
            except Exception as ex:
                self._skip(name, "replay failed: %s" % ex)
                continue
            self.events_applied += len(events)

    def _ack(self, seq):
        c = self._in
        if c.ack_out:                         # the last ack is still on its way
            c.ack_next = seq
            return
        c.ack_out = frame({"type": "ack", "seq": seq})
        c.ack_seq = seq
        self._flush_ack()

    def _flush_ack(self):
        c = self._in
        while c is not None:
            if not c.ack_out and c.ack_next is not None:
                c.ack_out = frame({"type": "ack", "seq": c.ack_next})
                c.ack_seq, c.ack_next = c.ack_next, None
            if not c.ack_out:
                return
            try:
                n = c.sock.send(c.ack_out, socket.MSG_NOSIGNAL)
            except (BlockingIOError, InterruptedError):
                return                        # the next tick tries again
            except OSError as e:
                self._close_conn(c, "send ack: %s" % (e.strerror or e))
                return
            c.ack_out = c.ack_out[n:]
            if not c.ack_out:
                self.seq_acked_out = c.ack_seq
                self.last_ack_out_mono = self.clock()

    # -- odds and ends --------------------------------------------------------------------
    def _turn(self, key, seconds):
        ms = seconds * 1e3
        if ms > self.timing[key]:
            self.timing[key] = round(ms, 3)

    def _error(self, reason):
        self.last_error = reason

    def _log(self, text):
        sys.stderr.write("clickup nf: replication: %s\n" % text)

    def close(self):
        """Stop replicating (router cleanup): close sockets, stop listening."""
        if self.closed:
            return
        self.closed = True
        self._drop_out("closed", retry=False)
        self._close_in("closed")
        self._stop_listening()
        try:
            self.router.remove_reader(self._wep.fileno())
        except (OSError, ValueError):
            pass
        self._wep.close()
        if _REPLICAS.get(self.router) is self:
            del _REPLICAS[self.router]


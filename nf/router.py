"""The router: an element graph and the loop that drives it.

``Router(graph)`` instantiates and checks the elements of a flat graph
(:mod:`nf.config`), wires each output to its downstream element's ``push``
and initializes the elements in declaration order.  ``run()`` is a single
thread event loop: readable sockets (FromDevice, the control socket), due
timers (NAT expiry, ARP retries) and tasks (sources) are served in turn, and
every batch is pushed through the graph to completion before the next one
starts.  Handlers, and thus upgrades, therefore always run *between* batches,
never in the middle of one.

After traffic, the loop polls without sleeping for ``busy_poll`` seconds
(200 us) before it blocks again, as Click's userlevel driver and DPDK-style
NFs do: it trades a little idle CPU for far fewer wake-ups per frame.

Readers, timers and tasks are owned by the element whose bound method they
call, so an upgrade can *suspend* what a replaced element registered (its
socket stops being read, its timers stop) when the new graph takes over,
*resume* it on rollback, and *release* it (cleanup) once the new graph has
proved itself.  :meth:`swap` installs a new element set between two batches.

*Holding* (:meth:`hold`) stops the packet sources -- the readers and tasks of
elements with ``PACKET_SOURCE`` (FromDevice, the generators) -- without
closing anything: frames that arrive wait in their socket's kernel queue and
are read, in order, when the hold is released.  A replication standby holds
(nf/state/replica.py), so the packets a switchover sends it before it has
caught up with the old active are kept, not handled with incomplete state.

An exception raised while a batch moves through the graph is caught, counted
and reported; if an ``on_error`` hook is set (an upgrade in probation) it is
told, so a failing new graph can be rolled back.

Signals: SIGTERM and SIGINT set a flag through a wake-up pipe; the loop
finishes its current batch, cleans up every element (closing sockets) and
returns.
"""

import heapq
import os
import select
import signal
import sys
import time
import traceback

from .args import AddressTable
from .errors import ConfigErrors, HandlerError

__all__ = ["Router"]


def _owner(fn):
    return getattr(fn, "__self__", None)


def _is_input(fn):
    return getattr(_owner(fn), "PACKET_SOURCE", False)


class Router:
    busy_poll = 0.0002     # seconds of polling without sleep after the last event

    def __init__(self, graph, clock=time.monotonic, classes=None):
        from .config import build_elements, check
        self.graph = graph
        self.clock = clock
        self.classes = dict(classes or {})     # element code from an upgrade package
        self.addresses = AddressTable()
        self._readers = {}
        self._timers = []          # heap of (due, seq, interval, fn)
        self._seq = 0
        self._tasks = []
        self._cleanups = []
        self._suspended = {}       # element -> (readers, timers, tasks) taken out of service
        self.holding = False       # packet sources stopped (see hold())
        self.hold_since = None     # clock time the current hold began
        self._held_readers = {}    # fd -> fn of packet sources, while holding
        self._held_tasks = []
        self._stop = False
        self._spin_until = 0.0
        self._wake = float("inf")
        self._epoll = select.epoll()
        # name -> (read fn or None, write fn or None)
        self.global_handlers = {"hold": (self._h_hold, self._h_set_hold)}
        self.on_error = None       # fn(element_name, exception) during an upgrade's probation
        self.errors = 0
        self.elements, errors = build_elements(graph, router=self, classes=self.classes)
        if not errors:
            errors = check(graph, self.elements)
        if errors:
            self._epoll.close()
            raise ConfigErrors(errors)
        self.wire(graph, self.elements)
        self.initialized = False

    def wire(self, graph, elements):
        for e in elements.values():
            e._out = []
        for c in graph.connections:
            elements[c.src]._connect_output(c.sport, elements[c.dst], c.dport)

    # -- services for elements ----------------------------------------------------------
    def add_reader(self, fd, fn):
        if self.holding and _is_input(fn):
            self._held_readers[fd] = fn
            return
        self._readers[fd] = fn
        self._epoll.register(fd, select.EPOLLIN)

    def remove_reader(self, fd):
        self._held_readers.pop(fd, None)
        if self._readers.pop(fd, None) is not None:
            try:
                self._epoll.unregister(fd)
            except (OSError, ValueError):
                pass

    def add_timer(self, interval, fn):
        self._seq += 1
        heapq.heappush(self._timers, (self.clock() + interval, self._seq, interval, fn))

    def add_task(self, fn):
        if self.holding and _is_input(fn):
            self._held_tasks.append(fn)
            return
        self._tasks.append(fn)

    def wake_at(self, t):
        """Don't sleep past clock time ``t`` in this loop turn (a paced task's next
        packet)."""
        if t < self._wake:
            self._wake = t

    def remove_task(self, fn):
        self._tasks = [t for t in self._tasks if t != fn]
        self._held_tasks = [t for t in self._held_tasks if t != fn]

    def hold(self, on):
        """Stop (``on``) or restart the packet sources.  While holding, the readers and
        tasks of PACKET_SOURCE elements -- those registered now and any registered
        later -- are kept aside: frames stay queued in the kernel, generators send
        nothing.  On release they are served again; a source with a
        ``released()`` method is told (a paced generator starts its pacing afresh
        rather than sending what fell due meanwhile).  Returns whether it changed."""
        on = bool(on)
        if on == self.holding:
            return False
        if on:
            for fd, fn in list(self._readers.items()):
                if _is_input(fn):
                    self.remove_reader(fd)
                    self._held_readers[fd] = fn
            self._held_tasks = [t for t in self._tasks if _is_input(t)]
            self._tasks = [t for t in self._tasks if not _is_input(t)]
            self.holding, self.hold_since = True, self.clock()
            return True
        self.holding, self.hold_since = False, None
        readers, self._held_readers = self._held_readers, {}
        tasks, self._held_tasks = self._held_tasks, []
        for fd, fn in readers.items():
            self.add_reader(fd, fn)
        self._tasks.extend(tasks)
        for e in {_owner(fn) for fn in list(readers.values()) + tasks}:
            released = getattr(e, "released", None)
            if released is not None:
                released()
        return True

    def add_cleanup(self, fn):
        """Call ``fn()`` when the router stops (after the elements are cleaned up)."""
        self._cleanups.append(fn)

    def please_stop(self):
        self._stop = True

    def element(self, name):
        try:
            return self.elements[name]
        except KeyError:
            raise HandlerError("no element named %r" % name) from None

    # -- suspending and releasing what an element registered --------------------------------
    def suspend(self, e):
        """Take ``e``'s readers, timers and tasks out of service (kept for resume)."""
        self._suspended[e] = self._take_out(e)

    def _take_out(self, e):
        """Remove ``e``'s readers, timers and tasks; return them."""
        readers = {fd: fn for fd, fn in list(self._readers.items())
                   + list(self._held_readers.items()) if _owner(fn) is e}
        for fd in readers:
            self.remove_reader(fd)
        timers = [t for t in self._timers if _owner(t[3]) is e]
        if timers:
            self._timers = [t for t in self._timers if _owner(t[3]) is not e]
            heapq.heapify(self._timers)
        tasks = [t for t in self._tasks + self._held_tasks if _owner(t) is e]
        self._tasks = [t for t in self._tasks if _owner(t) is not e]
        self._held_tasks = [t for t in self._held_tasks if _owner(t) is not e]
        return readers, timers, tasks

    def resume(self, e):
        readers, timers, tasks = self._suspended.pop(e, ({}, [], []))
        for fd, fn in readers.items():
            self.add_reader(fd, fn)
        for t in timers:
            heapq.heappush(self._timers, t)
        for t in tasks:
            self.add_task(t)

    def release(self, e):
        """Clean up an element that has left the graph for good."""
        self._suspended.pop(e, None)      # what was suspended goes with it
        self._take_out(e)
        try:
            e.cleanup()
        except Exception as ex:     # a failing cleanup must not take the router down
            self._report(e.name, ex)

    def swap(self, graph, elements, addresses=None):
        """Install ``elements`` wired as ``graph`` (between two batches: call this from
        the loop thread).  Elements of the old set that are not in the new one are
        suspended, not released; returns them."""
        gone = [e for e in self.elements.values() if e not in set(elements.values())]
        for e in gone:
            self.suspend(e)
        self.wire(graph, elements)
        self.graph, self.elements = graph, elements
        if addresses is not None:
            self.addresses = addresses
        return gone

    def _h_hold(self):
        return "true" if self.holding else "false"

    def _h_set_hold(self, value):
        from .args import parse_value
        try:
            on = parse_value("bool", value.strip())
        except ValueError:
            raise HandlerError("hold: expected true or false, got %r" % value.strip()) from None
        self.hold(on)

    # -- handlers by "element.handler" name ---------------------------------------------
    def _split(self, spec):
        name, dot, handler = spec.rpartition(".")
        if not dot:
            raise HandlerError("expected ELEMENT.HANDLER, got %r" % spec)
        return self.element(name), handler

    def read(self, spec):
        e, h = self._split(spec)
        return e.read(h)

    def write(self, spec, value=""):
        e, h = self._split(spec)
        return e.write(h, value)

    # -- life cycle ---------------------------------------------------------------------
    def initialize(self, elements=None):
        """Initialize ``elements`` (default: all) in order; on failure clean up the
        ones already initialized and raise a ConfigError naming the element."""
        done = []
        try:
            for e in (elements if elements is not None else self.elements.values()):
                try:
                    e.initialize()
                except (ValueError, OSError) as ex:
                    # Name the element and its line: "no device" means nothing without them.
                    raise e.error(str(ex)) from None
                done.append(e)
        except Exception:
            for e in reversed(done):
                self.release(e)
            raise
        if elements is None:
            self.initialized = True

    def run_timers(self, now):
        timers = self._timers
        while timers and timers[0][0] <= now:
            _, seq, interval, fn = heapq.heappop(timers)
            try:
                fn()
            except Exception as ex:
                self._report(getattr(_owner(fn), "name", "timer"), ex)
            heapq.heappush(timers, (now + interval, seq, interval, fn))

    def _report(self, where, ex):
        self.errors += 1
        if self.on_error is not None:
            self.on_error(where, ex)
        elif self.errors <= 5:
            print("clickup nf: %s: %s" % (where, "".join(
                traceback.format_exception_only(type(ex), ex)).strip()), file=sys.stderr)

    def step(self, timeout=0.1):
        """One turn of the loop: due timers, tasks, then readable sockets."""
        now = self.clock()
        if self._timers:
            self.run_timers(now)
            timeout = min(timeout, max(0.0, self._timers[0][0] - now))
        busy = now < self._spin_until
        self._wake = float("inf")
        for t in self._tasks:
            try:
                if t():
                    busy = True
            except Exception as ex:       # a source's batch raised downstream
                self._report(getattr(_owner(t), "name", "task"), ex)
        if not busy and self._wake < now + timeout:
            timeout = max(0.0, self._wake - now)
        events = self._epoll.poll(0 if busy else timeout)
        if events:
            # Keep polling without sleeping for a moment after traffic: a sleeping
            # loop is woken per frame, and in a VM each wake-up costs more than the frame.
            self._spin_until = now + self.busy_poll
            for fd, _ in events:
                fn = self._readers.get(fd)
                if fn is not None:
                    try:
                        fn()
                    except Exception as ex:    # a bad element must not kill the NF
                        self._report(getattr(_owner(fn), "name", "reader"), ex)

    def run(self, install_signals=True):
        """Run until please_stop() or SIGTERM/SIGINT; then clean up."""
        if not self.initialized:
            self.initialize()
        rfd = wfd = None
        old = {}
        if install_signals:
            rfd, wfd = os.pipe()
            os.set_blocking(rfd, False)
            os.set_blocking(wfd, False)
            self.add_reader(rfd, lambda: (os.read(rfd, 64), self.please_stop()))
            for sig in (signal.SIGTERM, signal.SIGINT):
                old[sig] = signal.signal(sig, lambda *_: None)
            old_wakeup = signal.set_wakeup_fd(wfd)
        try:
            while not self._stop:
                self.step()
        finally:
            if install_signals:
                signal.set_wakeup_fd(old_wakeup)
                for sig, h in old.items():
                    signal.signal(sig, h)
                self.remove_reader(rfd)
                os.close(rfd)
                os.close(wfd)
            self.cleanup()

    def cleanup(self):
        for e in list(self._suspended) + list(reversed(list(self.elements.values()))):
            try:
                e.cleanup()
            except Exception:      # cleanup must reach every element
                pass
        self._suspended.clear()
        for fn in self._cleanups:
            try:
                fn()
            except Exception:
                pass
        try:
            self._epoll.close()
        except OSError:
            pass

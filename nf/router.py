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

Signals: SIGTERM and SIGINT set a flag through a wake-up pipe; the loop
finishes its current batch, cleans up every element (closing sockets) and
returns.
"""

import heapq
import os
import select
import signal
import time

from .args import AddressTable
from .errors import ConfigErrors, HandlerError

__all__ = ["Router"]


class Router:
    busy_poll = 0.0002     # seconds of polling without sleep after the last event
    def __init__(self, graph, clock=time.monotonic):
        from .config import build_elements, check
        self.graph = graph
        self.clock = clock
        self.addresses = AddressTable()
        self._readers = {}
        self._timers = []          # heap of (due, seq, interval, fn)
        self._seq = 0
        self._tasks = []
        self._cleanups = []
        self._stop = False
        self._spin_until = 0.0
        self._epoll = select.epoll()
        self.elements, errors = build_elements(graph, router=self)
        if not errors:
            errors = check(graph, self.elements)
        if errors:
            self._epoll.close()
            raise ConfigErrors(errors)
        for c in graph.connections:
            self.elements[c.src]._connect_output(c.sport, self.elements[c.dst], c.dport)
        self.initialized = False

    # -- services for elements ----------------------------------------------------------
    def add_reader(self, fd, fn):
        self._readers[fd] = fn
        self._epoll.register(fd, select.EPOLLIN)

    def remove_reader(self, fd):
        if self._readers.pop(fd, None) is not None:
            try:
                self._epoll.unregister(fd)
            except (OSError, ValueError):
                pass

    def add_timer(self, interval, fn):
        self._seq += 1
        heapq.heappush(self._timers, (self.clock() + interval, self._seq, interval, fn))

    def add_task(self, fn):
        self._tasks.append(fn)

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
    def initialize(self):
        done = []
        try:
            for e in self.elements.values():
                try:
                    e.initialize()
                except (ValueError, OSError) as ex:
                    # Name the element and its line: "no device" means nothing without them.
                    raise e.error(str(ex)) from None
                done.append(e)
        except Exception:
            for e in reversed(done):
                e.cleanup()
            raise
        self.initialized = True

    def run_timers(self, now):
        timers = self._timers
        while timers and timers[0][0] <= now:
            _, seq, interval, fn = heapq.heappop(timers)
            fn()
            heapq.heappush(timers, (now + interval, seq, interval, fn))

    def step(self, timeout=0.1):
        """One turn of the loop: due timers, tasks, then readable sockets."""
        now = self.clock()
        if self._timers:
            self.run_timers(now)
            timeout = min(timeout, max(0.0, self._timers[0][0] - now))
        busy = now < self._spin_until
        for t in self._tasks:
            if t():
                busy = True
        events = self._epoll.poll(0 if busy else timeout)
        if events:
            # Keep polling without sleeping for a moment after traffic: a sleeping
            # loop is woken per frame, and in a VM each wake-up costs more than the frame.
            self._spin_until = now + self.busy_poll
            for fd, _ in events:
                fn = self._readers.get(fd)
                if fn is not None:
                    fn()

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
        for e in reversed(list(self.elements.values())):
            try:
                e.cleanup()
            except Exception:      # cleanup must reach every element
                pass
        for fn in self._cleanups:
            try:
                fn()
            except Exception:
                pass
        try:
            self._epoll.close()
        except OSError:
            pass

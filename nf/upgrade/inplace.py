"""In-process strategies: Click's hot-swap and our in-place upgrade.

Both stage in a thread while the old graph forwards, then swap graphs between
two batches (:meth:`nf.router.Router.swap`).  They differ in what they carry:

* ``hotswap`` (Click's hotconfig) builds *every* element anew, gives each new
  element ``take_state(old)`` from the element of the same name and class
  (queues, ARP tables and counters keep theirs; NAT and firewall tables are
  lost, as in stock Click since 2010), and reopens every device.
* ``clickup`` keeps every unchanged element running untouched -- same object,
  same sockets, so not a frame is dropped -- builds only new or changed ones,
  integrates only the code they need, and hands each changed stateful element
  its predecessor's state: by reference when the state version is the same (so
  the pause does not grow with the table), or by a migrated pre-copy made
  during staging plus the changes journaled since, when it is not.

The old elements stay suspended through probation, so a failure of the new
graph -- in ``initialize()`` or on its first packets -- swaps straight back.
"""

from . import strategy
from .base import Strategy
from .diff import diff
from .package import MigrationFailed


class _InPlace(Strategy):
    carry_state = False

    def stage(self):
        m = self.manager
        pkg = self.package()
        used = sorted({d.cls for d in pkg.graph.elements.values()})
        if self.carry_state:
            # The package's code is new by definition: load the modules of the classes
            # the new config uses from it, then diff against what runs; library modules
            # are loaded only for changed elements whose class is not loaded yet.
            pkg_classes = sorted(c for c in used if c in pkg.index_code())
            integrated = self.load_used_code(pkg, pkg_classes)
            self.diff = diff(self.router.elements, pkg.graph, pkg.resolve)
            changed_classes = {pkg.graph.elements[n].cls for n in self.diff.integrate}
            integrated += self.load_used_code(pkg, sorted(changed_classes - set(pkg_classes)))
        else:
            integrated = self.load_used_code(pkg, used)
            self.diff = None
        m.check_abort()
        if self.carry_state:
            # Unchanged elements keep running: build only what the new graph changes.
            reuse = {n: self.router.elements[n] for n in self.diff.unchanged}
            self.fresh, self.addresses = pkg.build(
                self.router.clock, reuse,
                self.router.addresses if self.diff.unchanged else None)
        else:
            self.fresh, self.addresses = pkg.build(self.router.clock)
        if self.diff is None:
            self.diff = diff({}, pkg.graph, pkg.resolve)        # every element is new
        pkg.check_state_carry(self.router.elements,
                              {n: type(e) for n, e in self.fresh.items()} if self.carry_state
                              else {})
        rec = m.record
        rec["to_version"] = pkg.version()
        rec["modules_integrated"] = integrated
        rec["elements"] = self.diff.summary()
        self.pkg = pkg
        m.sleep(self.delay)                     # injected: the old graph keeps forwarding
        self.precopy()

    def precopy(self):
        """Copy state that cannot be handed over by reference (see ClickUp)."""

    def new_set(self):
        keep = set(self.diff.unchanged)
        return {n: (self.router.elements[n] if n in keep else self.fresh[n])
                for n in self.pkg.graph.elements}

    def run(self, now):
        m, r = self.manager, self.router
        t_stop = r.clock()
        new = self.new_set()
        self.old_graph, self.old_elements, self.old_addresses = r.graph, r.elements, r.addresses
        self.ports = {n: (e.ninputs, e.noutputs) for n, e in r.elements.items()}
        self.created = [e for n, e in new.items() if n not in self.diff.unchanged]
        for e in self.created:
            e.router = r
        for n in self.diff.unchanged:           # the same element, maybe wired differently
            new[n].ninputs, new[n].noutputs = self.pkg.port_counts[n]
        try:
            r.initialize(self.created)
            entries = self.hand_over(new)
        except Exception as e:                  # nothing swapped yet: the old graph runs on
            for el in self.created:
                r.release(el)
            self.restore_ports()
            # The loop forwarded nothing while it tried: that pause is this run phase's T2.
            m.record["t_stop"] = t_stop
            m.record["T2_ms"] = round((r.clock() - t_stop) * 1000, 3)
            m.record["T2_basis"] = "pause while the new graph failed to start (rolled back)"
            m.finish("rolled-back", "the new graph failed before the swap: %s" % e)
            return
        m.record["entries_migrated"] = entries
        self.gone = r.swap(self.pkg.graph, new, self.addresses)
        r.on_error = self.failed
        m.swapped(t_stop, r.clock())

    def restore_ports(self):
        for n, (i, o) in self.ports.items():
            e = self.old_elements[n]
            e.ninputs, e.noutputs = i, o

    def hand_over(self, new):
        """Carry state from old to new elements; return the entries carried."""
        return 0

    def failed(self, where, ex):
        """The new graph raised during probation: go back to the old one."""
        m, r = self.manager, self.router
        if m.phase not in ("first-packet", "probation"):
            return
        r.on_error = None
        r.swap(self.old_graph, self.old_elements, self.old_addresses)
        for e in self.gone:
            r.resume(e)
        for e in self.created:
            r.release(e)
        self.restore_ports()
        self.undo_hand_over()
        m.finish("rolled-back", "%s raised %s: %s; the old graph is forwarding again"
                 % (where, type(ex).__name__, ex))

    def undo_hand_over(self):
        pass

    def housekeeping(self):
        m, r = self.manager, self.router
        t0 = r.clock()
        r.on_error = None
        for e in self.gone:
            r.release(e)
        from ..state import sync_now
        sync_now(r, snapshot=True)       # the store now holds the new version's state
        m.housekept(t0)


@strategy("hotswap")
class HotSwap(_InPlace):
    """Click's hotconfig: a whole new graph in the same process."""

    def hand_over(self, new):
        carried = 0
        for name, e in new.items():
            old = self.router.elements.get(name)
            if old is not None and type(old).__name__ == type(e).__name__:
                e.take_state(old)
                carried += 1
        return carried


@strategy("clickup")
class ClickUp(_InPlace):
    """Ours: integrate only what changed, migrate versioned state, swap in place."""
    carry_state = True

    def stateful_pairs(self):
        for n in self.diff.changed:
            old, new = self.router.elements[n], self.fresh[n]
            if old.STATE_VERSION is not None and new.STATE_VERSION is not None:
                yield n, old, new

    def precopy(self):
        # Same version: nothing to copy now; the swap hands the tables over by
        # reference.  Newer version: migrate a full copy now, while the old graph
        # forwards, and journal what changes meanwhile.
        self.precopied = {}
        for n, old, new in self.stateful_pairs():
            if old.STATE_VERSION == new.STATE_VERSION:
                continue
            self.manager.check_abort()
            from ..state import journal_mark
            mark = journal_mark(old)      # reads alongside the store's syncer, if any
            try:
                data = old.export_state()
                new.import_state(data, old.STATE_VERSION)
            except Exception as e:
                from ..state import journal_since
                journal_since(mark)
                raise MigrationFailed("state of %s cannot be migrated from version %s to %s: %s"
                                      % (n, old.STATE_VERSION, new.STATE_VERSION, e)) from None
            self.precopied[n] = (mark, _entries(data))

    def hand_over(self, new):
        carried = 0
        for n, old, fresh in self.stateful_pairs():
            if n in self.precopied:
                from ..state import journal_since
                mark, count = self.precopied[n]
                events = journal_since(mark)
                fresh.replay_events(fresh.migrate_events(events, old.STATE_VERSION))
                carried += count
            else:
                carried += fresh.adopt_state(old)
        return carried


def _entries(data):
    from ..element import state_entries
    return state_entries(data)

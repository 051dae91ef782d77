"""Keeping the store in step with a running router, and the recovery bootstrap.

``attach(router, path, interval)`` starts a :class:`Syncer`.  It writes a full
snapshot of every stateful element at once (a new store file), turns on the
journal of every element that can replay one (``e._journal = []``), and then,
every ``interval`` seconds, moves each element's pending events into one
appended record.  The elements journal on their slow paths only (an entry
created, a TCP state change, an expiry, a clear), so a sync costs nothing when
nothing happened and a json.dumps of the events when something did.

Snapshots, per element, go into the same records:

* an element the syncer has not seen before (a new graph after an upgrade, a
  replaced element) is snapshotted at once;
* every ``refresh`` seconds, small states (at most ``SMALL`` entries: counters,
  ARP tables) and the states of elements that cannot replay a journal are
  snapshotted again if they changed, since they change without events
  (packet counts, rates);
* when the file has grown to twice its size after the last full snapshot (and
  past ``compact_bytes``), the next sync takes a full snapshot instead: so the
  snapshot's cost, proportional to the tables, is paid once per table-sized
  amount of journal, and recovery replays at most about a table's worth of
  events.

On a clean stop (router cleanup) the syncer takes a last full snapshot, so a
store left by a clean stop holds no events at all, which also lets a newer
state version migrate it without replaying old-version events.

Measured on the 2-core VM (IPRewriter, median of 5): a sync of a few events
0.13 ms; a sync moving 10,000 new mappings' events (a burst no 0.5 s interval
sees in practice) 65 ms, about 6.5 us an event, mostly json.dumps; a full
snapshot of 10,000 mappings 125 ms (export_state and json.dumps); recovering
10,000 mappings 260-285 ms, of which loading the store is 50-70 ms and the
rest IPRewriter.import_state.  The packet loop waits during a sync, and the
sockets' receive buffers absorb it (a 300 ms stop loses no datagram).

Other readers of an element's journal share it with the syncer.  An
in-place upgrade, which journals what changes during its pre-copy, takes a
mark with ``journal_mark(e)`` and reads once with ``journal_since(mark)``.
A reader that drains again and again -- the syncer itself, and the live
replica's sender (nf.state.replica) -- holds a :class:`JournalReader`
(``journal_reader(e)``): ``drain()`` returns the events journaled since its
previous drain.  Whoever drains swaps in a fresh list (so the journal never
grows past what the slowest reader has not read) and hands the other open
marks and readers the part of the drained list they had not read yet: no
reader steals another's events, every reader sees every event once, in
order.  The journal is on while any mark or reader is open, and goes off
when the last one closes if a mark or reader turned it on.

Recovery (``recover(router, path)``): for every stateful element of the new
router with a stored record, ``import_state(snapshot, version)`` (which
migrates older versions through the element's MIGRATIONS) and then
``replay_events(events)``.  Records are skipped, with the reason, when no
element has that name, when the class changed, or when the stored state
version is newer than the code.  Journal events stored at an older state
version go through the class's ``migrate_events(events, version)`` (which
lifts the events' values as MIGRATIONS lift a snapshot); if it cannot, they
are reported as skipped and only the (migrated) snapshot is restored.  Idle
ages restart from the stored ones: the time the NF was down does not count
against a session.  The entries a report gives per element are the
snapshot's entries plus created minus removed events (an estimate: it does
not look at what the events' keys name).
"""

import os
import sys
import time
import weakref

from ..element import Element, state_entries
from .store import StoreError, StoreWriter, load

__all__ = ["Syncer", "attach", "syncer_of", "sync_now", "snapshot_now", "store_path",
           "recover", "RecoveryReport", "replays_journal", "journal_mark", "journal_since",
           "JournalMark", "JournalReader", "journal_reader"]

SMALL = 64                    # entries: states at most this big are refreshed by snapshot

_SYNCERS = weakref.WeakKeyDictionary()       # router -> its Syncer
_MARKS = weakref.WeakKeyDictionary()         # element -> its open JournalMarks and readers
_TURNED_ON = weakref.WeakSet()    # elements whose journal a mark or reader turned on


def replays_journal(element):
    """True if the element's class implements replay_events (so journaling it helps)."""
    return type(element).replay_events is not Element.replay_events


class _Tracked:
    """What the syncer knows of one element: the object, when it was last
    snapshotted, and the snapshot itself when it is small (to see changes)."""

    __slots__ = ("element", "snapped", "small", "last", "reader")

    def __init__(self, element):
        self.element = element
        self.snapped = None       # monotonic time of the last snapshot, None: never
        self.small = True
        self.last = None          # the last snapshot's data, kept only while small
        self.reader = None        # its JournalReader, if the element replays a journal

    def stop(self):
        """Stop reading the element's journal (off, unless another reader reads it)."""
        if self.reader is not None:
            self.reader.close()
            self.reader = None


class Syncer:
    """Syncs a router's stateful elements to the store at ``path``.

    ``interval``: seconds between syncs.  ``refresh``: seconds between snapshots
    of small or journal-less states.  ``compact_bytes``: the file size below
    which no full snapshot is taken for size reasons.  ``stats`` counts syncs,
    snapshots, events and bytes, and keeps the last and longest sync in ms.
    """

    def __init__(self, router, path, interval=0.5, refresh=5.0, compact_bytes=8 << 20,
                 fsync=False, clock=time.monotonic):
        if interval <= 0:
            raise ValueError("sync interval must be positive, got %r" % interval)
        self.router, self.path, self.interval = router, path, interval
        self.refresh, self.compact_bytes, self.clock = refresh, compact_bytes, clock
        self.writer = StoreWriter(path, fsync=fsync)
        self._tracked = {}
        self._seq = 0
        self._base = 0            # file size right after the last full snapshot
        self._broken = False      # a write failed: the next sync rewrites the file
        self._error = None        # the last failure reported (reported once)
        self.closed = False
        self.stats = {"syncs": 0, "snapshots": 0, "events": 0, "bytes": 0,
                      "last_ms": 0.0, "max_ms": 0.0}

    # -- life cycle -------------------------------------------------------------------
    def start(self):
        """First full snapshot, then a sync every ``interval`` and a last one at stop.
        StoreError if ``path`` holds something that is not a store."""
        self.snapshot()
        self.router.add_timer(self.interval, self._tick)
        self.router.add_cleanup(self.close)
        _SYNCERS[self.router] = self
        return self

    def close(self):
        """The clean stop: a last full snapshot, then release the file."""
        if self.closed:
            return
        self.closed = True
        try:
            self.snapshot()
        finally:
            self.writer.close()
            for tr in self._tracked.values():
                tr.stop()
            if _SYNCERS.get(self.router) is self:
                del _SYNCERS[self.router]

    def _tick(self):
        # A timer must not take the router down: report (once) and retry with a
        # full rewrite at the next tick.
        try:
            self.sync()
            self._error = None
        except (OSError, StoreError, TypeError, ValueError) as e:
            self._broken = True
            if str(e) != self._error:
                self._error = str(e)
                sys.stderr.write("clickup: state store %s: sync failed: %s\n" % (self.path, e))

    # -- syncing ----------------------------------------------------------------------
    def sync(self):
        """Append one record with every element's pending events (and the snapshots
        that are due); a full snapshot instead when the file has grown enough or a
        write failed.  Returns the stats."""
        if self._broken or self.writer.size > max(self.compact_bytes, 2 * self._base):
            return self.snapshot()
        t0 = time.perf_counter()
        now = self.clock()
        record = {}
        snaps, events, nev = {}, {}, 0
        current = self._stateful()
        gone = self._forget_gone(current)
        for name, e in current.items():
            tr = self._track(name, e)
            pending = self._take_journal(tr)
            snap = self._due_snapshot(tr, now)
            if snap is not None:
                snaps[name] = snap           # it already holds the pending events' effect
            elif pending:
                events[name] = pending
                nev += len(pending)
        for key, value in (("gone", gone), ("snap", snaps), ("ev", events)):
            if value:
                record[key] = value
        if record:
            self._seq += 1
            record["seq"], record["time"] = self._seq, time.time()
            try:
                n = self.writer.append(record)
            except OSError:
                self._broken = True
                raise
            self._count(t0, n, nev, len(snaps))
        return self.stats

    def snapshot(self):
        """A full snapshot: every stateful element exported into a new store file,
        every pending journal emptied.  Returns the stats."""
        t0 = time.perf_counter()
        now = self.clock()
        current = self._stateful()
        self._forget_gone(current)
        snaps = {}
        for name, e in current.items():
            tr = self._track(name, e)
            self._take_journal(tr)
            snap = self._export(tr, now)
            if snap is not None:
                snaps[name] = snap
        self._seq += 1
        n = self.writer.rewrite({"seq": self._seq, "time": time.time(), "snap": snaps})
        self._base, self._broken = n, False
        self._count(t0, n, 0, len(snaps))
        self.stats["snapshots"] += 1
        return self.stats

    def _stateful(self):
        return {n: e for n, e in self.router.elements.items() if e.stateful}

    def _forget_gone(self, current):
        """Stop tracking elements no longer in the graph; returns their names."""
        gone = [name for name in self._tracked if name not in current]
        for name in gone:
            self._tracked.pop(name).stop()
        return gone

    def _track(self, name, e):
        """The element's record, started afresh (journal on, snapshot due) for an
        element object not seen before under that name."""
        tr = self._tracked.get(name)
        if tr is None or tr.element is not e:
            if tr is not None:
                tr.stop()
            tr = self._tracked[name] = _Tracked(e)
            if replays_journal(e):
                tr.reader = JournalReader(e)
        return tr

    @staticmethod
    def _take_journal(tr):
        """The events the element journaled since the last sync (other readers keep
        theirs)."""
        return tr.reader.drain() if tr.reader is not None else []

    def _due_snapshot(self, tr, now):
        """A snapshot of ``tr``'s element if it is new, or if its refresh is due and
        it is small or cannot replay a journal (and its state changed)."""
        if tr.snapped is None:
            return self._export(tr, now)
        if now - tr.snapped < self.refresh:
            return None
        if not tr.small and replays_journal(tr.element):
            return None                      # its journal keeps it current
        last = tr.last
        snap = self._export(tr, now)
        if snap is not None and last is not None and snap["data"] == last:
            return None
        return snap

    def _export(self, tr, now):
        e = tr.element
        try:
            data = e.export_state()
        except Exception as ex:          # one broken element must not stop the others
            sys.stderr.write("clickup: state store: %s.export_state() failed: %s\n"
                             % (e.name, ex))
            return None
        tr.snapped = now
        tr.small = state_entries(data) <= SMALL
        tr.last = data if tr.small else None
        return _snapshot_entry(e, data)

    def _count(self, t0, nbytes, nevents, nsnaps):
        ms = (time.perf_counter() - t0) * 1e3
        st = self.stats
        st["syncs"] += 1
        st["events"] += nevents
        st["bytes"] += nbytes
        st["last_ms"] = ms
        st["max_ms"] = max(st["max_ms"], ms)


def _snapshot_entry(e, data):
    return {"class": type(e).__name__, "version": e.STATE_VERSION, "code": e.CODE_VERSION,
            "data": data}


def attach(router, path, interval=0.5, **kw):
    """Start syncing ``router``'s stateful elements to ``path`` (see Syncer)."""
    old = _SYNCERS.get(router)
    if old is not None:
        raise StoreError("router already syncs to %s" % old.path)
    return Syncer(router, path, interval, **kw).start()


def syncer_of(router):
    """The router's Syncer, or None if no store is attached."""
    return _SYNCERS.get(router)


def store_path(router):
    """The path of the router's store, or None."""
    s = _SYNCERS.get(router)
    return None if s is None else s.path


def sync_now(router, snapshot=False):
    """Sync the router's store at once (a full snapshot if ``snapshot``), e.g.
    before an upgrade restarts the process; returns the stats, or None if no
    store is attached."""
    s = _SYNCERS.get(router)
    if s is None:
        return None
    return s.snapshot() if snapshot else s.sync()


def snapshot_now(router, path=None):
    """A full snapshot of the router's stateful elements, now (before a restart):
    into its attached store when ``path`` is None or that store's path, else into
    a one-off store file at ``path`` (no syncing starts).  Returns the path."""
    s = _SYNCERS.get(router)
    if s is not None and (path is None or os.path.abspath(path) == os.path.abspath(s.path)):
        s.snapshot()
        return s.path
    if path is None:
        raise StoreError("no state store is attached and no path was given")
    snaps = {n: _snapshot_entry(e, e.export_state())
             for n, e in router.elements.items() if e.stateful}
    w = StoreWriter(path)
    try:
        w.rewrite({"seq": 1, "time": time.time(), "snap": snaps})
    finally:
        w.close()
    return path


# -- other readers of a journal ------------------------------------------------------------

def _open_journal(e):
    """Turn ``e``'s journal on if it is off (remembering that a reader did)."""
    if e._journal is None:
        e._journal = []
        _TURNED_ON.add(e)


def _closed(e, mark):
    """``mark`` (or reader) stops reading ``e``'s journal: the journal goes off with
    the last open one, if a mark or reader turned it on."""
    marks = _MARKS.get(e, [])
    if mark in marks:
        marks.remove(mark)
    if not marks and e in _TURNED_ON:
        _TURNED_ON.discard(e)
        e._journal = None


class JournalMark:
    """A position in an element's journal, from ``journal_mark``."""

    __slots__ = ("element", "list", "pos", "taken", "own")

    def __init__(self, element, own):
        self.element, self.own = element, own
        self.list, self.pos = element._journal, len(element._journal)
        self.taken = []           # events another reader drained since the mark


def journal_mark(e):
    """Start reading ``e``'s journal from now on (turning it on if no store has),
    alongside the store's syncer; end with journal_since()."""
    own = e._journal is None
    _open_journal(e)
    m = JournalMark(e, own)
    _MARKS.setdefault(e, []).append(m)
    return m


def journal_since(mark):
    """The events ``mark``'s element journaled since the mark, in order; closes the
    mark (and turns the journal off again if no other mark or reader uses it and
    a mark or reader turned it on)."""
    e = mark.element
    events = list(mark.taken)
    if e._journal is mark.list:
        events += mark.list[mark.pos:]
    _closed(e, mark)
    return events


class JournalReader(JournalMark):
    """A reader that drains an element's journal again and again (the syncer's,
    the replica sender's): ``drain()`` returns the events journaled since the
    previous drain, or since the reader opened; ``close()`` ends it.  Made by
    ``journal_reader(e)``."""

    __slots__ = ("closed",)

    def __init__(self, element):
        _open_journal(element)
        super().__init__(element, False)
        self.closed = False
        _MARKS.setdefault(element, []).append(self)

    def pending(self):
        """How many events a drain() would return now (it takes none)."""
        n = len(self.taken)
        j = self.element._journal
        if j is not None and j is self.list:
            n += len(j) - self.pos
        return n

    def drain(self):
        """The events journaled since the previous drain, in order.  The journal's
        list is swapped for a fresh one, and the other marks and readers keep the
        part of it they had not read."""
        if self.closed:
            return []
        e = self.element
        events, self.taken = self.taken, []
        cur = e._journal
        if cur is None:                   # turned off behind the readers' back
            _open_journal(e)
        elif cur is self.list:
            events += cur[self.pos:] if self.pos else cur
        if cur:
            e._journal = []
            _hand_to_marks(e, cur, self)
        self.list, self.pos = e._journal, 0
        return events

    def close(self):
        """Stop reading (the journal goes off if nothing else reads it)."""
        if not self.closed:
            self.closed = True
            self.taken = []
            _closed(self.element, self)


def journal_reader(e):
    """A :class:`JournalReader` on ``e``'s journal, turning it on if it is off."""
    return JournalReader(e)


def _hand_to_marks(e, drained, drainer=None):
    """``drainer`` (a reader, or None) drained the list ``drained`` from ``e``: keep
    what every other open mark had not read yet, and move them to the fresh list."""
    for m in _MARKS.get(e, ()):
        if m is not drainer and m.list is drained:
            m.taken += drained[m.pos:]
            m.list, m.pos = e._journal, 0


# -- recovery -----------------------------------------------------------------------------

class RecoveryReport:
    """What ``recover`` did.  ``restored``: {name: entries}; ``replayed``: {name:
    events}; ``skipped``: {name: reason} (the element's stored state, or part of
    it, was not used); ``fresh``: stateful elements the store had nothing for;
    ``dropped``: what a damaged store lost (None if intact)."""

    def __init__(self, path, contents):
        self.path = path
        self.syncs = contents.syncs
        self.last_sync = contents.last_sync
        self.dropped = contents.dropped
        self.orphans = contents.orphans
        self.restored, self.replayed, self.skipped = {}, {}, {}
        self.fresh = []
        self.seconds = 0.0

    def summary(self):
        """One line for a log: what was restored, skipped and dropped."""
        age = ""
        if self.last_sync is not None:
            age = ", last sync %.1f s ago" % max(0.0, time.time() - self.last_sync)
        parts = ["recovered %d element(s) from %s (%d sync(s)%s) in %.0f ms"
                 % (len(self.restored), self.path, self.syncs, age, self.seconds * 1e3)]
        if self.restored:
            parts.append(", ".join("%s %d entries%s" % (
                n, k, " (+%d events)" % self.replayed[n] if self.replayed.get(n) else "")
                for n, k in self.restored.items()))
        if self.skipped:
            parts.append("skipped: " + "; ".join("%s (%s)" % kv for kv in self.skipped.items()))
        if self.fresh:
            parts.append("fresh: " + ", ".join(self.fresh))
        if self.dropped:
            parts.append("dropped " + self.dropped)
        if self.orphans:
            parts.append("ignored %d event(s) of elements without a snapshot" % self.orphans)
        return "; ".join(parts)

    def __str__(self):
        return self.summary()


def recover(router, path):
    """Restore the state of ``router``'s stateful elements from the store at
    ``path`` (before the first packet).  StoreError if there is no store there
    or it is not one; anything else is reported, not raised."""
    t0 = time.perf_counter()
    contents = load(path)
    report = RecoveryReport(path, contents)
    for name, rec in contents.items():
        e = router.elements.get(name)
        reason = _refusal(e, rec)
        if reason is not None:
            report.skipped[name] = reason
            continue
        _restore(e, rec, report)
    report.fresh = [n for n, e in router.elements.items()
                    if e.stateful and n not in contents]
    report.seconds = time.perf_counter() - t0
    return report


def _refusal(e, rec):
    """Why the stored record cannot be loaded into element ``e`` (None if it can)."""
    if e is None:
        return "no element of that name in the configuration"
    if not e.stateful:
        return "%s keeps no state" % type(e).__name__
    if type(e).__name__ != rec.class_name:
        return "class changed: stored %s, configured %s" % (rec.class_name, type(e).__name__)
    if rec.state_version > e.STATE_VERSION:
        return ("stored state version %d is newer than %s's %d"
                % (rec.state_version, rec.class_name, e.STATE_VERSION))
    return None


def _restore(e, rec, report):
    name = e.name
    try:
        e.import_state(rec.data, rec.state_version)
    except Exception as ex:            # a bad record must not stop the other elements
        report.skipped[name] = "import_state failed: %s" % ex
        return
    entries = state_entries(rec.data)
    events, why = _replayable(e, rec)
    if why is not None:
        report.skipped[name] = why
    if events:
        try:
            e.replay_events(events)
        except Exception as ex:
            report.skipped[name] = "replay_events failed (events before it applied): %s" % ex
        report.replayed[name] = len(events)
        entries += sum(1 for k, _, _ in events if k == "created")
        entries -= sum(1 for k, _, _ in events if k == "removed")
    report.restored[name] = max(entries, 0)


def _replayable(e, rec):
    """The record's events lifted to the element's state version (its class's
    migrate_events), and the reason they were left out if that fails."""
    events = rec.events
    if not events or rec.state_version == e.STATE_VERSION:
        return events, None
    try:
        return list(type(e).migrate_events(events, rec.state_version)), None
    except (ValueError, TypeError, KeyError) as ex:
        return [], ("%d journal event(s) at state version %d not replayed (%s); only the "
                    "migrated snapshot was restored" % (len(events), rec.state_version, ex))

"""One upgrade at a time, driven from the router's loop.

``WRITE upgrade {json}`` (or ``key=value ...``) starts an upgrade and returns
at once; the NF keeps forwarding.  The phases, each timed on the monotonic
clock (which is system-wide, so a restarted process continues the same
timeline):

* **T1, staging** -- in a thread, off the packet loop: the package is verified,
  parsed, its code loaded, the new elements constructed and, for ``clickup``,
  their state pre-copied.  An injected delay (the paper's "upgrade delay") is
  slept here by in-place strategies.  ``WRITE upgrade_abort`` stops it; nothing
  has changed yet.
* **T2, run** -- from the moment forwarding stops (the loop turns from packets
  to the swap, or the old process stops) to the first packet forwarded by the
  new version, as seen at the graph's egress elements.  With no traffic it is
  the swap itself, and the record says so (``T2_basis``).
* probation -- the new graph runs; an exception from one of its elements
  rolls back to the old graph, which kept its state.
* **T3, housekeeping** -- the old graph released, the store synced.

``READ upgrade_status`` gives idle/staging/running/probation/done/refused/
aborted/rolled-back; ``READ upgrade_report`` the JSON phase record.
"""

import json
import threading

from ..errors import HandlerError
from .package import MigrationFailed, Refused

__all__ = ["UpgradeManager", "parse_request", "Aborted"]

TERMINAL = ("idle", "done", "refused", "aborted", "rolled-back")


class Aborted(Exception):
    pass


def parse_request(value):
    """JSON object, or ``to=PATH strategy=S [elements=DIR] [delay=SECONDS]``."""
    value = value.strip()
    if value.startswith("{"):
        try:
            req = json.loads(value)
        except ValueError as e:
            raise ValueError("upgrade request is not valid JSON: %s" % e) from None
    else:
        req = {}
        for word in value.split():
            k, eq, v = word.partition("=")
            if not eq:
                raise ValueError("expected key=value in the upgrade request, got %r" % word)
            req[k] = v
    if not req.get("to"):
        raise ValueError("the upgrade request needs 'to' (the new config)")
    req.setdefault("strategy", "clickup")
    try:
        req["delay"] = float(req.get("delay") or 0)
    except ValueError:
        raise ValueError("delay must be a number of seconds") from None
    if req["delay"] < 0:
        raise ValueError("delay must not be negative")
    return req


def egress_count(elements):
    """Packets that left the graph: the sum of the sinks' counters (ToDevice,
    Discard, ToDump), which is how the first packet of a new version is seen."""
    total = 0
    for e in elements.values():
        if e.noutputs == 0:
            total += getattr(e, "count", 0) or 0
    return total


class UpgradeManager:
    PROBATION = 0.5          # seconds the new graph runs before the old one is released
    FIRST_PACKET_WAIT = 2.0  # after this, T2 is the swap itself (no traffic)

    def __init__(self, router, run_options=None):
        self.router = router
        self.options = dict(run_options or {})
        self.status = "idle"
        self.record = None
        self.strategy = None
        self.phase = None
        self._thread = None
        self._stage_error = None
        self._abort = threading.Event()
        router.global_handlers.update({
            "upgrade": (None, self._h_upgrade),
            "upgrade_abort": (None, self._h_abort),
            "upgrade_status": (lambda: self.status, None),
            "upgrade_report": (lambda: json.dumps(self.record or {}, sort_keys=True), None),
        })
        router.add_task(self._task)

    # -- handlers ---------------------------------------------------------------------------
    def _h_upgrade(self, value):
        from . import strategies
        if self.status not in TERMINAL:
            raise HandlerError("an upgrade is already %s" % self.status)
        try:
            req = parse_request(value)
        except ValueError as e:
            raise HandlerError(str(e)) from None
        known = strategies()
        if req["strategy"] not in known:
            raise HandlerError("unknown strategy %r (known: %s)"
                               % (req["strategy"], ", ".join(sorted(known))))
        self.start(known[req["strategy"]](self, req))

    def _h_abort(self, _value):
        if self.status != "staging":
            raise HandlerError("no upgrade is staging (status: %s); only staging can be "
                               "aborted without effect" % self.status)
        self._abort.set()

    # -- driving --------------------------------------------------------------------------
    def start(self, strat):
        self.strategy = strat
        self._abort.clear()
        self._stage_error = None
        now = self.router.clock()
        self.record = strat.new_record(now)
        self.status = self.phase = "staging"
        self._thread = threading.Thread(target=self._stage, name="clickup-staging", daemon=True)
        self._thread.start()

    def sleep(self, seconds):
        """The injected delay, interruptible by an abort."""
        if seconds > 0 and self._abort.wait(seconds):
            raise Aborted("aborted during the injected delay")
        self.check_abort()

    def check_abort(self):
        if self._abort.is_set():
            raise Aborted("aborted during staging")

    def _stage(self):
        try:
            self.strategy.stage()
            self.check_abort()
        except (Refused, Aborted) as e:
            self._stage_error = e
        except Exception as e:             # staging code must never reach the packet loop
            self._stage_error = Refused("staging failed: %s: %s" % (type(e).__name__, e))
        self._t_staged = self.router.clock()

    def _task(self):
        phase = self.phase
        if phase is None:
            return False
        now = self.router.clock()
        if phase == "staging":
            if self._thread.is_alive():
                return False
            self._thread = None
            rec = self.record
            rec["T1_ms"] = round((self._t_staged - rec["t_start"]) * 1000, 3)
            if self._stage_error is not None:
                e = self._stage_error
                outcome = "aborted" if isinstance(e, Aborted) else \
                    "rolled-back" if isinstance(e, MigrationFailed) else "refused"
                self.finish(outcome, str(e))
                return False
            self.status = "running"
            self.strategy.run(now)         # may exec (restart strategies): never returns then
            return True
        if phase == "first-packet":
            return self._await_first(now)
        if phase == "probation" and now >= self._probation_end:
            self.phase = "housekeeping"
            self.strategy.housekeeping()
        return False

    def resume(self, handoff, modules, rollback_reason=None):
        """In the process a restart strategy started: carry on the phase record from
        the hand-off (the old process's T1 and the moment it stopped forwarding)."""
        rec = dict(handoff["record"])
        rec["modules_integrated"] = modules
        rec["entries_migrated"] = getattr(self.router, "recovered", 0)
        self.record = rec
        self.strategy = _Restarted(self)
        t_stop = handoff["t_stop"]
        if rollback_reason is not None:
            rec["T2_ms"] = round((self.router.clock() - t_stop) * 1000, 3)
            rec["T2_basis"] = "outage until the old version was running again"
            self.finish("rolled-back", rollback_reason)
            return
        self.swapped(t_stop, self.router.clock())

    # -- called by strategies --------------------------------------------------------------
    def swapped(self, t_stop, t_ready):
        """The new version is in place: watch for its first forwarded packet."""
        self.record["t_stop"], self._t_ready = t_stop, t_ready
        self._egress0 = egress_count(self.router.elements)
        self.phase = "first-packet"
        self.status = "probation"

    def _await_first(self, now):
        rec = self.record
        if egress_count(self.router.elements) > self._egress0:
            rec["T2_ms"] = round((now - rec["t_stop"]) * 1000, 3)
            rec["T2_basis"] = "first packet forwarded by the new version"
        elif now - self._t_ready > self.FIRST_PACKET_WAIT:
            rec["T2_ms"] = round((self._t_ready - rec["t_stop"]) * 1000, 3)
            rec["T2_basis"] = "ready to forward (no packet arrived within %.1f s)" \
                % self.FIRST_PACKET_WAIT
        else:
            return True                    # poll without sleeping: T2 is measured here
        self.phase = "probation"
        self._probation_end = now + self.PROBATION
        return False

    def housekept(self, t0):
        rec = self.record
        rec["T3_ms"] = round((self.router.clock() - t0) * 1000, 3)
        rec["T4_ms"] = round(rec["T1_ms"] + rec["T2_ms"] + rec["T3_ms"], 3)
        self.finish("done")

    def finish(self, outcome, reason=None):
        rec = self.record
        rec["outcome"] = outcome
        rec["reason"] = reason
        # The phase boundaries on CLOCK_MONOTONIC, which every process and namespace of the
        # machine shares: a test tool's own timestamps line up with them (ISSU timelines).
        rec["t_start_mono"] = rec.pop("t_start", None)
        rec["t_stop_mono"] = rec.pop("t_stop", None)
        rec["t_end_mono"] = self.router.clock()
        self.status = outcome
        self.phase = None
        self.router.on_error = None


class _Restarted:
    """The tail of a restart strategy, in the new process: housekeeping only."""

    def __init__(self, manager):
        self.manager = manager

    def housekeeping(self):
        from ..state import sync_now
        r = self.manager.router
        t0 = r.clock()
        sync_now(r, snapshot=True)          # the store holds the new version's state
        self.manager.housekept(t0)

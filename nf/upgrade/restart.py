"""Restart strategies: the NF process is replaced by a new one.

* ``native`` (Click's way): the old process stops, a new one starts with the
  full new config and loads *every* module of the element library, compiled
  from source as a rebuild would, plus all of the package's code.  State is
  lost.
* ``clickup-restart`` (CLICK-UP as published): the state is synced to the
  persistent store, the process restarts loading only the essential modules
  (those of the elements the config uses and what they import), and each
  element's recovery bootstrap restores its state from the store.

The old process stages (verifies) the package while it still forwards, then
stops forwarding, writes a hand-off file (the phase record so far, the moment
forwarding stopped, and how to get back to the old version) and execs the new
process in its place -- same PID, same control socket path.  The new process
sleeps the injected delay (it lengthens the outage, labelled as injected),
integrates, recovers, and measures T2 up to its first forwarded packet.  If it
cannot start the new version it starts the old one again (rollback) and says
why in the record.
"""

import json
import os
import sys
import tempfile

from .. import library
from . import strategy
from .base import Strategy
from .package import Package

__all__ = ["Native", "ClickUpRestart", "integrate"]


class _Restart(Strategy):
    in_place = False
    essential = True

    def stage(self):
        m = self.manager
        pkg = self.package()
        used = sorted({d.cls for d in pkg.graph.elements.values()})
        # Load and build here too, only to verify: the new process integrates again,
        # and that is the cost its outage measures.
        self.load_used_code(pkg, used)
        fresh, _ = pkg.build(self.router.clock)
        if self.essential:
            pkg.check_state_carry(self.router.elements, {n: type(e) for n, e in fresh.items()})
        rec = m.record
        rec["to_version"] = pkg.version()
        rec["elements"] = {"rebuilt": len(fresh)}
        self.pkg = pkg

    def run(self, now):
        m, r = self.manager, self.router
        t_stop = r.clock()
        store = self.save_state() if self.essential else None
        opts = m.options
        new = {"config": self.pkg.config, "elements": self.pkg.elements_dir,
               "defines": dict(r.graph.defines), "load": "essential" if self.essential
               else "all-from-source"}
        old = {"config": opts.get("config"), "elements": opts.get("elements"),
               "defines": opts.get("defines") or {}}
        rec = dict(m.record)
        handoff = {"record": rec, "t_stop": t_stop, "strategy": self.name, "delay": self.delay,
                   "new": new, "old": old, "store": store, "options": opts,
                   # a one-off snapshot (no --store): the new process deletes it when it exits
                   "store_temporary": bool(store) and (store != opts.get("store") or
                                                       bool(opts.get("store_temporary")))}
        fd, path = tempfile.mkstemp(prefix="clickup-handoff-", suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump(handoff, f)
        r.cleanup()                             # stop forwarding: close every socket
        argv = [sys.executable, "-m", "experiments.cli", "nf", "run", new["config"],
                "--handoff", path]
        os.execv(sys.executable, argv)          # does not return

    def save_state(self):
        """Sync the persistent store (or write a one-off snapshot); return its path."""
        r = self.router
        from ..state import snapshot_now, store_path
        path = store_path(r)
        if path is None:
            path = os.path.join(tempfile.gettempdir(), "clickup-state-%d.db" % os.getpid())
        snapshot_now(r, path)
        return path


@strategy("native")
class Native(_Restart):
    """Click's native restart: full rebuild, state lost."""
    essential = False


@strategy("clickup-restart")
class ClickUpRestart(_Restart):
    """CLICK-UP as published: essential modules only, state restored from the store."""
    essential = True


def integrate(config, elements_dir, defines, load):
    """The new process's integration step: load the code ``load`` asks for, parse and
    build.  Returns (graph, package classes, modules integrated)."""
    pkg = Package(config, elements_dir, defines, require_manifest=False)
    graph = pkg.parse()
    used = sorted({d.cls for d in graph.elements.values()})
    if load == "all-from-source":
        mods = ["library:%s" % m for m in library.load_all(from_source=True)]
        mods += ["package:%s" % s for s in pkg.load_code()]
    else:
        index = pkg.index_code()
        stems = sorted({index[c] for c in used if c in index})
        mods = ["package:%s" % s for s in pkg.load_code(stems)]
        mods += ["library:%s" % m for m in library.load_essential(
            [c for c in used if c not in pkg.classes])]
    return graph, pkg.classes, mods

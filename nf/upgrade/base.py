"""What every strategy shares: the phase record and the staging of a package."""

import os

from .. import library
from .package import Package, Refused, graph_version

__all__ = ["Strategy", "running_version"]


def running_version(router):
    return graph_version(router.graph, lambda decl: type(router.elements[decl.name]))


class Strategy:
    name = None
    in_place = True

    def __init__(self, manager, request):
        self.manager = manager
        self.router = manager.router
        self.request = request
        self.delay = float(request.get("delay") or 0)

    def new_record(self, now):
        return {"strategy": self.name, "t_start": now, "to": os.path.abspath(self.request["to"]),
                "elements_dir": self.request.get("elements"),
                "from_version": running_version(self.router), "to_version": None,
                "injected_delay_s": self.delay,
                "injected_delay_note": "injected (the paper's upgrade delay), not a measured "
                                       "cost" if self.delay else None,
                "modules_integrated": [], "entries_migrated": 0, "elements": None,
                "T1_ms": None, "T2_ms": None, "T2_basis": None, "T3_ms": None, "T4_ms": None,
                "outcome": None, "reason": None}

    def package(self):
        """Verify and parse the package (every strategy's first staging step)."""
        pkg = Package(self.request["to"], self.request.get("elements"),
                      defines=self.router.graph.defines,
                      require_manifest=not self.request.get("no_manifest"))
        pkg.verify_manifest()
        self.manager.check_abort()
        pkg.parse()
        self.manager.check_abort()
        return pkg

    def load_used_code(self, pkg, class_names, from_source=False):
        """Load the package modules and library modules that ``class_names`` need;
        return the names of the modules this actually integrated."""
        index = pkg.index_code()
        stems = sorted({index[c] for c in class_names if c in index})
        pkg.load_code(stems)
        before = set(library.loaded())
        lib_needed = [c for c in class_names if c not in pkg.classes]
        library.load_essential(lib_needed, from_source=from_source)
        missing = sorted(c for c in class_names if pkg.resolve(c) is None)
        if missing:
            raise Refused("unknown element class%s %s in %s (not in the library%s)"
                          % ("es" if len(missing) > 1 else "", ", ".join(missing), pkg.config,
                             " nor in %s" % pkg.elements_dir if pkg.elements_dir else ""))
        new_lib = sorted(set(library.loaded()) - before)
        return ["package:%s" % s for s in stems] + ["library:%s" % m for m in new_lib]

    # run(now) and housekeeping() are the strategy's own

"""An upgrade package: a new Click config and, optionally, new element code.

The package is the directory that holds the config.  Its ``MANIFEST.sha256``
lists every file with its digest (RFC 7654 §3.1: the download is verified
before anything else).  Element code is a directory of Python modules, each
defining element classes with their ``CODE_VERSION``; they are compiled from
source under private module names and register into the package's own class
table, never over the library's.

:meth:`Package.stage` runs every check that must pass before the running NF is
touched -- manifest, parse, class resolution, graph checks, and whether every
stateful element's state can be carried -- and raises :class:`Refused` with a
message that says what to fix.
"""

import hashlib
import importlib.util
import os
import sys

from ..args import AddressTable
from ..element import lookup, registering_into
from ..errors import ConfigError

__all__ = ["Package", "Refused", "MigrationFailed", "graph_version"]

MANIFEST = "MANIFEST.sha256"


class Refused(Exception):
    """The upgrade was refused before anything changed."""


class MigrationFailed(Refused):
    """State could not be migrated to the new version; the old graph runs on."""


class _StagingRouter:
    """Stands in for the router while new elements are constructed off the packet
    loop: it gives them a fresh address table and nothing else."""

    def __init__(self, clock):
        self.addresses = AddressTable()
        self.clock = clock


class Package:
    def __init__(self, config, elements_dir=None, defines=None, require_manifest=True):
        self.config = os.path.abspath(config)
        self.root = os.path.dirname(self.config)
        self.elements_dir = os.path.abspath(elements_dir) if elements_dir else None
        self.defines = dict(defines or {})
        self.require_manifest = require_manifest
        self.classes = {}          # class name -> class, from the package's element code
        self.class_module = {}     # class name -> package module file (stem)
        self.module_deps = {}      # package module stem -> package modules it imports
        self.graph = None

    # -- checks ----------------------------------------------------------------------------
    def verify_manifest(self):
        from .manifest import verify_manifest
        if not os.path.exists(os.path.join(self.root, MANIFEST)):
            if self.require_manifest:
                raise Refused("%s: no %s (write one with `clickup nf manifest %s`)"
                              % (self.root, MANIFEST, self.root))
            return
        problems = verify_manifest(self.root)
        if problems:
            raise Refused("%s: manifest check failed: %s" % (self.root, "; ".join(problems)))
        if self.elements_dir and not (self.elements_dir + os.sep).startswith(self.root + os.sep):
            raise Refused("element code %s lies outside the package %s, so the manifest "
                          "does not cover it" % (self.elements_dir, self.root))

    def parse(self):
        from ..config import parse_file
        try:
            self.graph = parse_file(self.config, self.defines)
        except ConfigError as e:
            raise Refused("the new config does not parse:\n%s" % e) from None
        return self.graph

    def stems(self):
        if not self.elements_dir:
            return []
        if not os.path.isdir(self.elements_dir):
            raise Refused("no element code directory %s" % self.elements_dir)
        return sorted(f[:-3] for f in os.listdir(self.elements_dir)
                      if f.endswith(".py") and not f.startswith("_"))

    def index_code(self):
        """{class name: module stem} for the package's code, read with ast (no import)."""
        import ast
        if getattr(self, "_index", None) is not None:
            return self._index
        out = {}
        for stem in self.stems():
            path = os.path.join(self.elements_dir, stem + ".py")
            try:
                with open(path) as f:
                    tree = ast.parse(f.read(), path)
            except SyntaxError as e:
                raise Refused("element code %s has a syntax error at line %s: %s"
                              % (path, e.lineno, e.msg)) from None
            for node in tree.body:
                if isinstance(node, ast.ClassDef):
                    out.setdefault(node.name, stem)
        self._index = out
        return out

    def load_code(self, stems=None):
        """Compile and load modules of the element directory (all, or ``stems``)
        under private names; returns the stems loaded."""
        stems = self.stems() if stems is None else list(stems)
        if not stems:
            return []
        tag = hashlib.sha256(self.elements_dir.encode()).hexdigest()[:10]
        pkgname = "clickup_pkg_%s" % tag
        for stem in stems:
            path = os.path.join(self.elements_dir, stem + ".py")
            name = "%s_%s" % (pkgname, stem)
            if name in sys.modules and stem in self.class_module.values():
                continue
            spec = importlib.util.spec_from_file_location(name, path)
            mod = importlib.util.module_from_spec(spec)
            found = {}
            try:
                with open(path) as f:
                    code = compile(f.read(), path, "exec", dont_inherit=True)
                sys.modules[name] = mod
                with registering_into(found):
                    exec(code, mod.__dict__)
            except Exception as e:
                sys.modules.pop(name, None)
                raise Refused("element code %s does not load: %s: %s"
                              % (path, type(e).__name__, e)) from None
            for cname, cls in found.items():
                if cname in self.classes:
                    raise Refused("element class %s is defined twice in %s"
                                  % (cname, self.elements_dir))
                self.classes[cname] = cls
                self.class_module[cname] = stem
        return stems

    def resolve(self, class_name):
        return self.classes.get(class_name) or lookup(class_name)

    def build(self, clock, reuse=None, addresses=None):
        """Construct (not initialize) the new graph's elements off the packet loop.

        Elements in ``reuse`` (name -> running element) are not built again; they
        take part in the checks, and the port counts the new graph gives them are
        returned in ``self.port_counts`` while their own stay as they are (they are
        running).  ``addresses``: the running address table, when AddressInfo is
        unchanged.  Returns (elements, address table)."""
        from ..config import build_elements, check
        reuse = reuse or {}
        shim = _StagingRouter(clock)
        if addresses is not None:
            shim.addresses = addresses
        elements, errors = build_elements(self.graph, router=shim, classes=self.classes,
                                          reuse=reuse)
        saved = {n: (e.ninputs, e.noutputs) for n, e in reuse.items()}
        try:
            if not errors:
                errors = check(self.graph, elements)
            self.port_counts = {n: (elements[n].ninputs, elements[n].noutputs) for n in reuse}
        finally:
            for n, (i, o) in saved.items():
                reuse[n].ninputs, reuse[n].noutputs = i, o
        if errors:
            raise Refused("the new config fails its checks:\n%s"
                          % "\n".join(str(e) for e in errors))
        return elements, shim.addresses

    @staticmethod
    def check_state_carry(old_elements, new_classes_by_name):
        """Every stateful element that stays (same name) must be able to take its
        predecessor's state: same version, or a migration path up to its own."""
        problems = []
        for name, old in old_elements.items():
            new_cls = new_classes_by_name.get(name)
            if new_cls is None or old.STATE_VERSION is None:
                continue
            if new_cls.STATE_VERSION is None:
                problems.append("%s: the new %s keeps no state, the running one keeps "
                                "version %d" % (name, new_cls.__name__, old.STATE_VERSION))
                continue
            v, target = old.STATE_VERSION, new_cls.STATE_VERSION
            if v > target:
                problems.append("%s: state version %d cannot go back to %d"
                                % (name, v, target))
            while v < target:
                if v not in new_cls.MIGRATIONS:
                    problems.append("%s: no migration from state version %d (the new %s "
                                    "keeps version %d)" % (name, v, new_cls.__name__, target))
                    break
                v += 1
        if problems:
            raise Refused("state cannot be carried: " + "; ".join(problems))

    def version(self):
        """A short identity of what this package runs (see graph_version)."""
        return graph_version(self.graph, lambda decl: self.resolve(decl.cls))


def graph_version(graph, class_of):
    """Digest of a flat config and the code versions of its classes -- the same for a
    running graph and a staged one that would run the same thing.  ``class_of(decl)``
    gives the class a declaration runs."""
    from ..config import render
    h = hashlib.sha256(render(graph).encode())
    for decl in graph.elements.values():
        h.update(("%s=%s;" % (decl.cls, getattr(class_of(decl), "CODE_VERSION", "?")))
                 .encode())
    return h.hexdigest()[:12]

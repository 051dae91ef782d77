"""The element library as modules: which module defines which class, which
modules each one needs, and loading them -- all of them, or only some.

Click ships its element library compiled into one binary, so integrating a new
element means rebuilding and reloading everything.  CLICK-UP's essential module
integration loads only the modules the configuration needs.  This module
models both: ``load_all(from_source=True)`` compiles every library module from
its source (bypassing cached bytecode, as a rebuild would), while
``load_essential(classes)`` imports only the modules that define the classes a
configuration uses, plus the library modules those import.

The index is read from the sources with :mod:`ast` (no imports), so asking
"where is IPRewriter?" loads nothing.
"""

import ast
import importlib
import importlib.util
import os
import sys

PACKAGE = "nf.elements"
_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "elements")
_index = None     # class name -> module short name
_deps = None      # module short name -> set of library module short names it imports


def _scan():
    global _index, _deps
    index, deps = {}, {}
    for fn in sorted(os.listdir(_DIR)):
        if not fn.endswith(".py") or fn.startswith("_"):
            continue
        mod = fn[:-3]
        with open(os.path.join(_DIR, fn)) as f:
            tree = ast.parse(f.read(), fn)
        deps[mod] = set()
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                index.setdefault(node.name, mod)
            elif isinstance(node, ast.ImportFrom):
                # "from .ip import x" (level 1) or "from nf.elements.ip import x"
                name = node.module or ""
                if node.level == 1 and name:
                    deps[mod].add(name.split(".")[0])
                elif name.startswith(PACKAGE + "."):
                    deps[mod].add(name[len(PACKAGE) + 1:].split(".")[0])
    for mod in deps:
        deps[mod] &= set(deps)
    _index, _deps = index, deps


def index():
    """{class name: module short name} for every class defined in the library."""
    if _index is None:
        _scan()
    return dict(_index)


def modules():
    if _deps is None:
        _scan()
    return sorted(_deps)


def module_of(class_name):
    if _index is None:
        _scan()
    return _index.get(class_name)


def closure(mods):
    """``mods`` plus every library module they import, transitively."""
    if _deps is None:
        _scan()
    out, todo = set(), list(mods)
    while todo:
        m = todo.pop()
        if m in out or m not in _deps:
            continue
        out.add(m)
        todo.extend(_deps[m])
    return out


def essential_modules(class_names):
    """The library modules a configuration using ``class_names`` needs."""
    return closure({module_of(c) for c in class_names if module_of(c)})


def load_module(mod, from_source=False):
    """Import library module ``mod``; with ``from_source``, compile it from its source
    text even if cached bytecode exists (the cost a rebuild pays)."""
    full = "%s.%s" % (PACKAGE, mod)
    if full in sys.modules:
        return sys.modules[full]
    if not from_source:
        return importlib.import_module(full)
    importlib.import_module(PACKAGE)
    path = os.path.join(_DIR, mod + ".py")
    spec = importlib.util.spec_from_file_location(full, path)
    m = importlib.util.module_from_spec(spec)
    sys.modules[full] = m
    try:
        with open(path) as f:
            code = compile(f.read(), path, "exec", dont_inherit=True)
        exec(code, m.__dict__)
    except BaseException:
        del sys.modules[full]
        raise
    return m


def load_essential(class_names, from_source=False):
    """Load the modules ``class_names`` need; returns their names, in load order."""
    mods = sorted(essential_modules(class_names))
    for m in mods:
        for dep in sorted(closure({m}) - {m}):
            load_module(dep, from_source)
        load_module(m, from_source)
    return mods


def load_all(from_source=False):
    """Load every library module (Click's "everything is in the binary")."""
    mods = modules()
    for m in mods:
        load_module(m, from_source)
    return mods


def loaded():
    """The library modules imported so far."""
    return sorted(m for m in modules() if "%s.%s" % (PACKAGE, m) in sys.modules)

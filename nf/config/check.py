"""Building and checking a flat graph, as Click does before a router runs.

:func:`build_elements` instantiates every element (configure phase first, then
declaration order, so that AddressInfo fills the shared address table before
anyone reads it) and collects every configuration error instead of stopping at
the first.  :func:`check` adds Click's port rules, using each instance's
``port_count()``:

* a connected port must exist ("'c' :: Counter has 1 output, but output 1 is
  connected");
* every port below the highest one in use, and at least the minimum count,
  must be connected ("'c' output 0 unconnected");
* an output feeds one input (all our ports are push); several outputs may
  feed one input.

It stores the resulting port counts on the instances (``ninputs``/``noutputs``)
for the router; :func:`port_usage` gives the counts the connections imply.
"""

from ..args import AddressTable
from ..element import lookup, parse_port_spec
from ..errors import ConfigError
from .flatten import count_phrase

__all__ = ["build_elements", "check", "port_usage"]


def build_elements(graph, router=None, classes=None, reuse=None):
    """Instantiate the graph's elements.  Returns (name -> Element in
    declaration order, list of ConfigError).  ``classes`` (name -> class) is
    searched before the library: an upgrade package's element code.  Elements
    named in ``reuse`` (name -> instance) are taken as they are, not built."""
    reuse = reuse or {}
    table = getattr(router, "addresses", None) if router is not None else None
    if table is None:
        table = AddressTable(offline=router is None)   # checking only: devices may be elsewhere
    decls = list(graph.elements.values())
    errors, chosen = [], {}
    for i, d in enumerate(decls):
        if d.name in reuse:
            continue
        cls = (classes or {}).get(d.cls) or lookup(d.cls)
        if cls is None:
            errors.append((i, ConfigError("unknown element class '%s'" % d.cls, d.loc)))
        else:
            chosen[i] = cls
    built = {}
    for i in sorted(chosen, key=lambda i: (chosen[i].CONFIGURE_PHASE, i)):
        d = decls[i]
        try:
            built[i] = chosen[i](d.name, d.config, router=router, addresses=table, loc=d.loc)
        except ConfigError as e:
            if e.loc is None:
                e.loc = d.loc
            errors.append((i, e))
    errors.sort(key=lambda pair: pair[0])
    for i, d in enumerate(decls):
        if d.name in reuse:
            built[i] = reuse[d.name]
    return {decls[i].name: built[i] for i in sorted(built)}, [e for _, e in errors]


def port_usage(graph):
    """name -> (inputs, outputs) that the connections use (highest port + 1)."""
    usage = {name: [0, 0] for name in graph.elements}
    for c in graph.connections:
        if c.src in usage:
            usage[c.src][1] = max(usage[c.src][1], c.sport + 1)
        if c.dst in usage:
            usage[c.dst][0] = max(usage[c.dst][0], c.dport + 1)
    return {name: tuple(v) for name, v in usage.items()}


def check(graph, elements=None, classes=None):
    """Every error in ``graph``, sorted by position; empty if it can run.

    ``elements`` (from :func:`build_elements`) avoids building them twice; when
    given, configuration errors are the caller's to report.  Each checked
    instance gets ``ninputs``/``noutputs`` set to its port counts."""
    errors = []
    for c in graph.connections:
        for direction, name in (("from", c.src), ("to", c.dst)):
            if name not in graph.elements:
                errors.append(ConfigError("connection %s unknown element '%s'"
                                          % (direction, name), c.loc))
    if elements is None:
        elements, build_errors = build_elements(graph, classes=classes)
        errors.extend(build_errors)
    ins, outs = {}, {}
    for c in graph.connections:
        outs.setdefault(c.src, {}).setdefault(c.sport, []).append(c)
        ins.setdefault(c.dst, {}).setdefault(c.dport, []).append(c)
    for name, e in elements.items():
        decl = graph.elements.get(name)
        errors.extend(_check_ports(e, decl.loc if decl else e.loc, ins.get(name, {}),
                                   outs.get(name, {})))
    errors.sort(key=lambda e: (e.loc.line, e.loc.col) if e.loc else (0, 0))
    return errors


def _check_ports(e, loc, ins, outs):
    label = "'%s' :: %s" % (e.name, e.__class__.__name__)
    spec = e.port_count()
    try:
        (imin, imax), (omin, omax) = parse_port_spec(spec)
    except ValueError:
        return [ConfigError("%s has a bad port count %r (expected like '1/1' or '1/1-2')"
                            % (label, spec), loc)]
    errors = []
    e.ninputs = _check_side(e, label, loc, "input", imin, imax, ins, errors)
    e.noutputs = _check_side(e, label, loc, "output", omin, omax, outs, errors)
    for port, conns in sorted(outs.items()):
        if len(conns) > 1:
            targets = ", ".join("'%s' input %d" % (c.dst, c.dport) for c in conns)
            errors.append(ConfigError(
                "'%s' output %d connected to more than one input (%s); an output feeds "
                "one input: use Tee to copy packets" % (e.name, port, targets), conns[1].loc))
    return errors


def _check_side(e, label, loc, side, lo, hi, used, errors):
    """Check one side's ports; return its port count."""
    if hi is not None:
        allowed = count_phrase(hi, side) if lo == hi else "at most %s" % count_phrase(hi, side)
        for port in sorted(p for p in used if p >= hi):
            errors.append(ConfigError("%s has %s, but %s %d is connected"
                                      % (label, allowed, side, port), used[port][0].loc))
    n = max(max(used) + 1 if used else 0, lo)
    if hi is not None:
        n = min(n, hi)
    for port in range(n):
        if port not in used:
            errors.append(ConfigError("'%s' %s %d unconnected" % (e.name, side, port), loc))
    return n

"""Flattening: statements -> one flat :class:`Graph`, as Click expands a router.

Each body (the file, or one instance of a compound) is processed in two steps:

1. *collect*: walk its statements in order, declaring elements (names are
   local to the body), giving anonymous ones Click's ``Class@N`` names (N is
   the element's position in its body, bumped past names already taken), and
   recording connections; ``elementclass`` statements extend the class scope
   from that point on (so classes are lexically scoped and non-recursive).
2. *expand*: substitute ``$parameters`` in every configuration string, expand
   each compound instance recursively (its elements get the prefix
   ``instance/``), then splice: a compound's ports are tunnels, and every
   connection that enters one is followed through to the real elements on
   the other side (several compounds in a row, and ``input -> output``
   pass-throughs, included).

Errors are collected (each with its file:line:col) rather than raised one at a
time, so that the user sees all of them; syntax errors stop the parser first.
"""

import re
from collections import ChainMap

from ..args import split_args, split_keyword
from ..element import lookup
from ..errors import ConfigError, ConfigErrors, Location
from .graph import Connection, ElementDecl, Graph
from .parser import Chain, ClassDef, CompoundDef, Decl, Define, Require, parse

__all__ = ["parse_string", "parse_file", "count_phrase"]

IN, OUT = "input", "output"          # a compound body's pseudo-elements
_IN_IDX, _OUT_IDX = -1, -2           # their indices in a body's connection list

_VAR = re.compile(r"\$\{([A-Za-z0-9_]+)\}|\$([A-Za-z0-9_]+)")
# Single-quoted text is not expanded (as in Click); double-quoted text is, but
# must be skipped as a whole so that an apostrophe inside it is not a quote.
_SCAN = re.compile(r"""'[^']*'?|"(?:\\.|[^"\\])*"?|\$\{[A-Za-z0-9_]+\}|\$[A-Za-z0-9_]+""")
_DEFINE_ARG = re.compile(r"\$([A-Za-z0-9_]+)(?:\s+|$)")


def parse_string(text, filename="<config>", defines=None):
    """Parse and flatten a Click configuration.  ``defines`` (name -> value,
    without '$') override the file's ``define($name ...)`` values, like
    Click's command-line ``name=value``.  Raises ConfigError / ConfigErrors."""
    source, statements = parse(text, filename)
    overrides = {k.lstrip("$"): str(v) for k, v in (defines or {}).items()}
    flattener = _Flattener(source, overrides)
    graph = flattener.run(statements)
    errors = sorted(flattener.errors, key=lambda e: (e.loc.line, e.loc.col))
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise ConfigErrors(errors)
    return graph


def parse_file(path, defines=None):
    """Read ``path`` and :func:`parse_string` it, with the path as the file name."""
    path = str(path)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError("cannot read configuration file: %s"
                          % (e.strerror or e), Location(path, 1, 1)) from None
    return parse_string(text, path, defines)


def count_phrase(n, what):
    """'no outputs', '1 output', '3 outputs'."""
    if n == 0:
        return "no %ss" % what
    return "%d %s%s" % (n, what, "" if n == 1 else "s")


class CompoundClass:
    """A compound class in scope: its definition plus the classes and the
    parameters visible where it was defined (compounds are lexically scoped)."""

    __slots__ = ("defn", "classes", "env")

    def __init__(self, defn, classes, env):
        self.defn, self.classes, self.env = defn, classes, env

    @property
    def display(self):
        return self.defn.name or "<anonymous>"


class _Local:
    """One element of a body before expansion.  ``written`` is the class as
    written (the stem of an anonymous name); ``cls`` a class name or a
    CompoundClass; ``config`` a lexer Text or None."""

    __slots__ = ("name", "written", "cls", "config", "pos")

    def __init__(self, name, written, cls, config, pos):
        self.name, self.written, self.cls, self.config, self.pos = \
            name, written, cls, config, pos


class _Level:
    """A flattened body: declarations with full names, connections whose ends
    are ('R', name, port) for real elements or ('P', 'input'|'output', port) for
    the body's own pseudo-elements, and the body's port counts."""

    __slots__ = ("decls", "edges", "ninputs", "noutputs", "broken")

    def __init__(self, decls, edges, ninputs, noutputs):
        self.decls, self.edges, self.ninputs, self.noutputs = decls, edges, ninputs, noutputs
        self.broken = False     # errors inside: its port counts may be wrong


class _Body:
    """Elements and connections collected from one body's statements."""

    def __init__(self, owner):
        self.owner = owner                 # the CompoundClass being expanded, None at top
        self.locals, self.names, self.conns = [], {}, []

    def add(self, name, written, cls, config, pos):
        self.locals.append(_Local(name, written, cls, config, pos))
        if name is not None:
            self.names[name] = len(self.locals) - 1
        return len(self.locals) - 1

    def name_anonymous(self):
        """Click's names for anonymous elements: Class@N, N its 1-based position
        in the body, increased until the name is free."""
        taken = set(self.names)
        for i, local in enumerate(self.locals):
            if local.name is None:
                n = i + 1
                while "%s@%d" % (local.written, n) in taken:
                    n += 1
                local.name = "%s@%d" % (local.written, n)
                taken.add(local.name)


class _Flattener:
    def __init__(self, source, overrides):
        self.source, self.overrides = source, overrides
        self.errors, self._reported = [], set()
        self.reports = 0        # every report, repeats included: tells a body had errors
        self.requirements = []

    # -- errors -------------------------------------------------------------------------
    def loc(self, pos):
        return self.source.loc(pos)

    def report(self, message, loc):
        """Record an error once (a compound's body is walked once per instance)."""
        self.reports += 1
        key = (str(loc), message)
        if key not in self._reported:
            self._reported.add(key)
            self.errors.append(ConfigError(message, loc))

    # -- top level ----------------------------------------------------------------------
    def run(self, statements):
        env = self.bind_defines(statements, {}, None)
        for name, value in self.overrides.items():
            env.maps[0].setdefault(name, value)
        level = self.instantiate(statements, env, {}, "", None)
        graph = Graph(self.source.filename)
        for decl in level.decls:
            graph.add_element(decl)
        # in the order they were written; Graph.connect's duplicate test is linear
        seen = set()
        for src, dst, loc in sorted(level.edges, key=lambda e: (e[2].line, e[2].col)):
            conn = Connection(src[1], src[2], dst[1], dst[2], loc)
            if conn not in seen:
                seen.add(conn)
                graph.connections.append(conn)
        graph.requirements = list(self.requirements)
        graph.defines = dict(env.maps[0])
        return graph

    # -- parameters ---------------------------------------------------------------------
    def bind_defines(self, statements, layer, parent):
        """Evaluate a body's ``define($x value, ...)`` statements into ``layer``
        (which already holds a compound's formal parameters); return the
        environment (layer, then the enclosing ones)."""
        env = ChainMap(layer) if parent is None else parent.new_child(layer)
        formals, first = set(layer), {}
        for st in statements:
            if not isinstance(st, Define):
                continue
            for name, value in self.define_args(st.config):
                where = value.loc()
                if name in formals:
                    self.report("parameter $%s is already a parameter of this compound"
                                % name, where)
                elif name in first:
                    self.report("parameter $%s defined twice (first defined at %s)"
                                % (name, first[name]), where)
                else:
                    first[name] = where
                    top = parent is None
                    layer[name] = (self.overrides[name] if top and name in self.overrides
                                   else self.expand(value, env))
        return env

    def define_args(self, config):
        """(name, value Text) for each '$name value' argument of define()."""
        text, cursor = config.text, 0
        for arg in split_args(text):
            at = text.find(arg, cursor)
            cursor = at + len(arg)
            m = _DEFINE_ARG.match(arg)
            if m is None:
                self.report("expected '$name value' in define(), got %r" % arg,
                            config.loc(at))
                continue
            yield m.group(1), config.sub(at + m.end(), at + len(arg))

    def expand(self, text, env):
        """``text`` (a lexer Text) with $name and ${name} replaced from ``env``."""
        s = text.text
        if "$" not in s:
            return s
        out, pos = [], 0
        for m in _SCAN.finditer(s):
            c = s[m.start()]
            if c == "'":
                continue
            found = _VAR.finditer(s, m.start(), m.end()) if c == '"' else \
                (_VAR.match(s, m.start()),)
            for v in found:
                name = v.group(1) or v.group(2)
                out.append(s[pos:v.start()])
                if name in env:
                    out.append(env[name])
                else:
                    self.report("undefined parameter $%s" % name, text.loc(v.start()))
                    out.append(v.group())
                pos = v.end()
        out.append(s[pos:])
        return "".join(out)

    # -- one body -----------------------------------------------------------------------
    def instantiate(self, statements, env, classes, prefix, owner):
        before = self.reports
        body = _Body(owner)
        for st in statements:
            if isinstance(st, ClassDef):
                classes = self.define_class(st, classes, env)
            elif isinstance(st, Decl):
                for name, pos in st.names:
                    self.declare(body, name, pos, st, classes, env)
            elif isinstance(st, Chain):
                self.collect_chain(body, st, classes, env)
            elif isinstance(st, Require):
                for req in split_args(self.expand(st.config, env)):
                    if req not in self.requirements:
                        self.requirements.append(req)
        body.name_anonymous()
        ninputs, noutputs = self.pseudo_ports(body)
        level = self.expand_body(body, env, prefix, ninputs, noutputs)
        level.broken = self.reports > before
        return level

    def define_class(self, st, classes, env):
        if isinstance(st.target, CompoundDef):
            # the body sees the classes defined before it, not itself: non-recursive
            target = CompoundClass(st.target, classes, env)
        else:
            target = classes.get(st.target, st.target)
        new = dict(classes)
        new[st.name] = target
        return new

    def class_of(self, written, classes, env):
        if isinstance(written, CompoundDef):
            return "", CompoundClass(written, classes, env)
        return written, classes.get(written, written)

    def declare(self, body, name, pos, decl, classes, env):
        if body.owner is not None and name in (IN, OUT):
            self.report("'%s' is reserved inside a compound (it stands for the compound's "
                        "%ss) and cannot be declared" % (name, name), self.loc(pos))
            return None
        if name in body.names:
            first = body.locals[body.names[name]].pos
            self.report("element '%s' redeclared (first declared at %s)"
                        % (name, self.loc(first)), self.loc(pos))
            return body.names[name]
        if any(part.isdigit() for part in name.split("/")):
            self.report("element name '%s' has an all-digit component (expected a name "
                        "with a letter, '_' or '@')" % name, self.loc(pos))
        written, cls = self.class_of(decl.cls, classes, env)
        return body.add(name, written, cls, decl.config, pos)

    def item_index(self, body, item, classes, env):
        """The body index of a chain endpoint (declaring it if needed); None on error."""
        if item.decl is not None:
            return self.declare(body, item.name, item.pos, item.decl, classes, env)
        if item.cls is not None:                          # anonymous compound { ... }
            written, cls = self.class_of(item.cls, classes, env)
            return body.add(None, written, cls, item.config, item.pos)
        name = item.name
        if body.owner is not None and name in (IN, OUT):
            if item.config is not None:
                self.report("'%s' takes no configuration" % name, self.loc(item.pos))
            return _IN_IDX if name == IN else _OUT_IDX
        if name in body.names:
            if item.config is not None:
                self.report("element '%s' is already declared (at %s); a configuration can "
                            "only be given where an element is declared"
                            % (name, self.loc(body.locals[body.names[name]].pos)),
                            self.loc(item.pos))
            return body.names[name]
        cls = self.resolve_class(name, classes)
        if cls is None:
            self.report("unknown element '%s' (%s)" % (name, _unknown_hint(name, body)),
                        self.loc(item.pos))
            return None
        return body.add(None, name, cls, item.config, item.pos)

    @staticmethod
    def resolve_class(name, classes):
        """A name used in a connection that is not a declared element is an
        anonymous element if it names a class: a compound in scope, a registered
        class, or (since classes are written capitalised) any capitalised word,
        left for the checker to find unknown."""
        if name in classes:
            return classes[name]
        if name[0].isupper() or lookup(name) is not None:
            return name
        return None

    def collect_chain(self, body, chain, classes, env):
        idx = [self.item_index(body, item, classes, env) for item in chain.items]
        for k, arrow in enumerate(chain.arrows):
            a, b = idx[k], idx[k + 1]
            if a is None or b is None:
                continue
            out_port, in_port = chain.items[k].outport, chain.items[k + 1].inport
            body.conns.append((a, out_port[0] if out_port else 0, b,
                               in_port[0] if in_port else 0, arrow))

    def pseudo_ports(self, body):
        """Check the use of 'input'/'output' in a compound body; return its port counts."""
        if body.owner is None:
            return 0, 0
        kept, used = [], {IN: set(), OUT: set()}
        for conn in body.conns:
            src, sport, dst, dport, arrow = conn
            if dst == _IN_IDX or src == _OUT_IDX:
                wrong, role = (IN, "source") if dst == _IN_IDX else (OUT, "destination")
                example = "input [0] -> x" if wrong == IN else "x -> [0] output"
                self.report("'%s' can only be the %s of a connection inside a compound "
                            "(as in '%s')" % (wrong, role, example), self.loc(arrow))
                continue
            if src == _IN_IDX:
                used[IN].add(sport)
            if dst == _OUT_IDX:
                used[OUT].add(dport)
            kept.append(conn)
        body.conns = kept
        counts = []
        for side in (IN, OUT):
            n = max(used[side]) + 1 if used[side] else 0
            for p in range(n):
                if p not in used[side]:
                    self.report("compound '%s' %s %d unused: its body uses %s %d but nothing "
                                "connects %s %d" % (body.owner.display, side, p, side, n - 1,
                                                    side, p), self.loc(body.owner.defn.pos))
            counts.append(n)
        return counts

    # -- expansion ------------------------------------------------------------------------
    def expand_body(self, body, env, prefix, ninputs, noutputs):
        decls, edges, subs = [], [], {}
        for i, local in enumerate(body.locals):
            config = self.expand(local.config, env) if local.config is not None else ""
            if isinstance(local.cls, CompoundClass):
                sub = self.expand_compound(local, config, prefix + local.name)
                subs[i] = sub
                if sub is not None:
                    decls.extend(sub.decls)
                    edges.extend((_tunnel(s, i), _tunnel(d, i), loc, False)
                                 for s, d, loc in sub.edges)
            else:
                decls.append(ElementDecl(prefix + local.name, local.cls, config,
                                         self.loc(local.pos)))
        for src, sport, dst, dport, arrow in body.conns:
            loc = self.loc(arrow)
            a = self.end(body, subs, src, sport, prefix, OUT, loc)
            b = self.end(body, subs, dst, dport, prefix, IN, loc)
            if a is not None and b is not None:
                edges.append((a, b, loc, True))
        return _Level(decls, _splice(edges), ninputs, noutputs)

    def end(self, body, subs, idx, port, prefix, side, loc):
        """One end of a body connection: a real port, this body's pseudo-element,
        or a tunnel into/out of a compound instance (checked against its ports)."""
        if idx in (_IN_IDX, _OUT_IDX):
            return ("P", IN if idx == _IN_IDX else OUT, port)
        local = body.locals[idx]
        if not isinstance(local.cls, CompoundClass):
            return ("R", prefix + local.name, port)
        sub = subs[idx]
        if sub is None:
            return None
        have = sub.ninputs if side == IN else sub.noutputs
        if port >= have:
            if sub.broken:          # already reported inside; its ports are unreliable
                return None
            if have == 0:
                msg = "compound '%s' has no %s but is used with an %s connection" % (
                    local.cls.display, side, side)
            else:
                msg = "compound '%s' has %s, but %s %d is connected" % (
                    local.cls.display, count_phrase(have, side), side, port)
            self.report(msg, loc)
            return None
        return ("I" if side == IN else "O", idx, port)

    def expand_compound(self, local, config, full_name):
        cc = local.cls
        values = self.bind_arguments(cc, split_args(config), self.loc(local.pos))
        if values is None:
            return None
        env = self.bind_defines(cc.defn.body, values, cc.env)
        return self.instantiate(cc.defn.body, env, cc.classes, full_name + "/", cc)

    def bind_arguments(self, cc, args, loc):
        """Click's rules: positional parameters first, all required; then
        'KEYWORD $x' parameters (optional, empty by default) matched by
        'KEYWORD value' arguments; '__REST__ $x' takes whatever is left."""
        formals = cc.defn.formals
        positional = [f for f in formals if f.keyword is None]
        keywords = {f.keyword: f for f in formals if f.keyword not in (None, "__REST__")}
        rest = next((f for f in formals if f.keyword == "__REST__"), None)
        if not keywords and rest is None and len(args) != len(positional):
            self.report("compound '%s' takes %d argument%s, got %d"
                        % (cc.display, len(positional), "" if len(positional) == 1 else "s",
                           len(args)), loc)
            return None
        if len(args) < len(positional):
            self.report("compound '%s' takes at least %s, got %d"
                        % (cc.display, count_phrase(len(positional), "argument"), len(args)),
                        loc)
            return None
        values = {f.var: "" for f in formals}
        values.update((f.var, a) for f, a in zip(positional, args))
        extra = []
        for arg in args[len(positional):]:
            kw, value = split_keyword(arg)
            if kw in keywords:
                values[keywords[kw].var] = value
            elif rest is not None:
                extra.append(arg)
            else:
                self.report("compound '%s' got unexpected argument %r (expected keywords: %s)"
                            % (cc.display, arg, ", ".join(keywords)), loc)
                return None
        if rest is not None:
            values[rest.var] = ", ".join(extra)
        return values


def _tunnel(end, idx):
    """An end of a compound's inner connection, seen from the enclosing body:
    its pseudo-elements become the tunnels of the instance ``idx``."""
    if end[0] == "P":
        return ("I" if end[1] == IN else "O", idx, end[2])
    return end


def _splice(edges):
    """Follow every connection that starts at a real port (or this body's
    'input') through compound tunnels to the real ports (or 'output') it
    reaches.  Tunnel ends nobody connects to drop their inner connections, as
    in Click.

    ``edges`` are (src, dst, loc, own): ``own`` is true for this body's own
    connections, false for those from inside compounds.  A spliced connection
    takes the location of the first own connection on its path: that is the
    line the user wrote at this level (``c -> a``), not the compound's body.
    """
    onward = {}
    for src, dst, loc, own in edges:
        if src[0] in "IO":
            onward.setdefault(src, []).append((dst, loc, own))
    out = []
    for src, dst, loc, own in edges:
        if src[0] in "IO":
            continue
        stack, seen = [(dst, loc, own)], set()
        while stack:
            end, where, mine = stack.pop()
            if end[0] in "RP":
                out.append((src, end, where))
            elif end not in seen:
                seen.add(end)
                stack.extend((nxt, where if mine or not nxt_own else nxt_loc, mine or nxt_own)
                             for nxt, nxt_loc, nxt_own in reversed(onward.get(end, ())))
    return out


def _unknown_hint(name, body):
    if name in (IN, OUT) and body.owner is None:
        return "'input' and 'output' exist only inside a compound"
    return "expected an element declared earlier in this %s, or a class name" % (
        "compound" if body.owner is not None else "file")

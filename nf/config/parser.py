"""Recursive-descent parser for the Click language: tokens -> statements.

The parser only checks syntax and builds a small tree of statements; names are
resolved, compounds expanded and ``$parameters`` substituted afterwards by
:mod:`nf.config.flatten`, because that needs scopes (element names are local to
a compound body, element classes are lexically scoped).  The first syntax
error stops parsing: what follows a syntax error is rarely meaningful.

Grammar (Click's, without ``=>`` port lists, ``||`` overloading and groups)::

    stmts     := (stmt)*
    stmt      := ';' | 'elementclass' IDENT (compound | IDENT)
               | 'require' CONFIG | 'define' CONFIG
               | IDENT (',' IDENT)* '::' class [CONFIG]            (declaration)
               | endpoint ('->' endpoint)*                         (connection)
    endpoint  := ['[' PORT ']'] element ['[' PORT ']']
    element   := IDENT ['::' class] [CONFIG] | compound [CONFIG]
    class     := IDENT | compound
    compound  := '{' [formal (',' formal)* '|'] stmts '}'
    formal    := VAR | IDENT VAR                      ($x, or KEYWORD $x; __REST__ $x)
"""

from ..errors import ConfigError
from .lexer import Source, tokenize

__all__ = ["parse", "Decl", "Item", "Chain", "ClassDef", "CompoundDef", "Require",
           "Define", "Formal"]

KEYWORDS = ("elementclass", "require", "define")


class Decl:
    """``a, b :: Class(config)``: names is a list of (name, pos)."""
    __slots__ = ("names", "cls", "cls_pos", "config")

    def __init__(self, names, cls, cls_pos, config):
        self.names, self.cls, self.cls_pos, self.config = names, cls, cls_pos, config


class Item:
    """One endpoint of a connection chain.

    ``decl`` is set for an inline declaration ``x :: Foo``; otherwise ``name``
    is a reference or a class used anonymously (decided in flattening), or
    ``cls`` is an anonymous compound.  Ports are (number, pos) or None.
    """
    __slots__ = ("inport", "outport", "decl", "name", "pos", "cls", "config")

    def __init__(self, pos):
        self.pos = pos
        self.inport = self.outport = self.decl = self.name = self.cls = self.config = None


class Chain:
    """``a -> b -> c``: items and the offsets of the arrows between them."""
    __slots__ = ("items", "arrows")

    def __init__(self, items, arrows):
        self.items, self.arrows = items, arrows


class ClassDef:
    """``elementclass Name {...}`` (target a CompoundDef) or ``elementclass Name Other``
    (target the other class's name)."""
    __slots__ = ("name", "pos", "target", "target_pos")

    def __init__(self, name, pos, target, target_pos):
        self.name, self.pos, self.target, self.target_pos = name, pos, target, target_pos


class Formal:
    """A compound parameter: ``$var`` (keyword None), ``KEYWORD $var`` or ``__REST__ $var``."""
    __slots__ = ("var", "keyword", "pos")

    def __init__(self, var, keyword, pos):
        self.var, self.keyword, self.pos = var, keyword, pos


class CompoundDef:
    __slots__ = ("name", "formals", "body", "pos")

    def __init__(self, name, formals, body, pos):
        self.name, self.formals, self.body, self.pos = name, formals, body, pos


class Require:
    __slots__ = ("config", "pos")

    def __init__(self, config, pos):
        self.config, self.pos = config, pos


class Define:
    __slots__ = ("config", "pos")

    def __init__(self, config, pos):
        self.config, self.pos = config, pos


def parse(text, filename="<config>"):
    """Parse ``text``; returns (Source, list of statements).  Raises ConfigError."""
    source = Source(text, filename)
    parser = _Parser(source, tokenize(source))
    return source, parser.statements(None)


class _Parser:
    def __init__(self, source, tokens):
        self.source, self.toks, self.i = source, tokens, 0

    # -- token helpers ----------------------------------------------------------------
    def peek(self, k=0):
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def next(self):
        t = self.toks[self.i]
        if t.kind != "eof":
            self.i += 1
        return t

    def accept(self, kind):
        if self.peek().kind == kind:
            return self.next()
        return None

    def error(self, tok, message):
        return ConfigError(message, self.source.loc(tok.pos))

    def expect(self, kind, what, after):
        t = self.next()
        if t.kind != kind:
            raise self.error(t, "expected %s after %s, found %s" % (what, after, t.describe()))
        return t

    # -- statements -------------------------------------------------------------------
    def statements(self, compound_open):
        """Statements up to end of file, or up to the '}' closing the compound
        opened by the token ``compound_open``."""
        out = []
        while True:
            t = self.peek()
            if t.kind == "eof":
                if compound_open is not None:
                    raise self.error(t, "expected '}' to close the compound opened at %s, "
                                     "found end of file" % self.source.where(compound_open.pos))
                return out
            if t.kind == "}":
                if compound_open is None:
                    raise self.error(t, "unexpected '}' with no compound open")
                return out
            stmt = self.statement()
            if stmt is not None:
                out.append(stmt)

    def statement(self):
        t = self.peek()
        if t.kind == ";":
            self.next()
            return None
        if t.kind == "ident" and t.value in KEYWORDS:
            return getattr(self, "stmt_" + t.value)(self.next())
        if t.kind == "ident" and self.peek(1).kind == ",":
            return self.declaration()
        if t.kind in ("ident", "[", "{"):
            return self.chain()
        raise self.error(t, "expected a declaration, connection or 'elementclass', found %s"
                         % t.describe() + _hint(t))

    def stmt_elementclass(self, kw):
        name = self.expect("ident", "the new class's name", "'elementclass'")
        t = self.next()
        if t.kind == "{":
            return ClassDef(name.value, name.pos, self.compound(t, name.value), t.pos)
        if t.kind == "ident":
            return ClassDef(name.value, name.pos, t.value, t.pos)
        raise self.error(t, "expected '{' or a class name after 'elementclass %s', found %s"
                         % (name.value, t.describe()))

    def stmt_require(self, kw):
        return Require(self.expect("config", "'(' and the required packages", "'require'")
                       .value, kw.pos)

    def stmt_define(self, kw):
        return Define(self.expect("config", "'($name value, ...)'", "'define'").value, kw.pos)

    def declaration(self):
        """``a, b, c :: Class(config)`` as a statement of its own."""
        names = [self.next()]
        while self.accept(","):
            names.append(self.expect("ident", "an element name", "','"))
        self.expect("::", "'::' and a class", "element names '%s'"
                    % ", ".join(n.value for n in names))
        cls, cls_pos = self.element_class()
        config = self.optional_config()
        after = self.peek()
        if after.kind in ("->", "["):
            raise self.error(after, "a declaration of several elements cannot be part of a "
                             "connection; declare them first, then connect them by name")
        return Decl([(n.value, n.pos) for n in names], cls, cls_pos, config)

    # -- connections ------------------------------------------------------------------
    def chain(self):
        items, arrows = [self.endpoint(None)], []
        while True:
            t = self.peek()
            if t.kind == "->":
                arrows.append(self.next().pos)
                items.append(self.endpoint(t))
                continue
            if t.kind == "=>":
                raise self.error(t, "'=>' port-list connections are not supported; use '->'")
            if t.kind == ";":
                self.next()
            elif t.kind not in ("ident", "{", "}", "[", "eof"):
                raise self.error(t, "expected '->' or ';' after an element, found %s"
                                 % t.describe() + _hint(t))
            break
        if items[0].inport is not None:
            raise self.error_at(items[0].inport[1], "input port at the start of a chain: "
                                "nothing connects to it (expected an element before it and '->')")
        if items[-1].outport is not None:
            raise self.error_at(items[-1].outport[1], "output port at the end of a chain: it "
                                "connects to nothing (expected '->' and an element after it)")
        return Chain(items, arrows)

    def error_at(self, pos, message):
        return ConfigError(message, self.source.loc(pos))

    def endpoint(self, arrow):
        item = Item(self.peek().pos)
        item.inport = self.port()
        t = self.next()
        if t.kind == "ident" and t.value not in KEYWORDS:
            item.pos, item.name = t.pos, t.value
            if self.accept("::") is not None:
                cls, cls_pos = self.element_class()
                item.decl = Decl([(t.value, t.pos)], cls, cls_pos, self.optional_config())
            else:
                item.config = self.optional_config()
        elif t.kind == "{":
            item.pos, item.cls = t.pos, self.compound(t, None)
            item.config = self.optional_config()
        else:
            after = "'->'" if arrow is not None else "a port"
            raise self.error(t, "expected element name or class after %s, found %s"
                             % (after, t.describe()))
        item.outport = self.port()
        return item

    def port(self):
        """An optional ``[N]``: returns (N, pos of '[') or None."""
        lb = self.accept("[")
        if lb is None:
            return None
        t = self.next()
        if t.kind != "ident" or not t.value.isdigit():
            raise self.error(t, "expected port number after '[', found %s" % t.describe())
        self.expect("]", "']'", "port number %s" % t.value)
        return int(t.value), lb.pos

    def element_class(self):
        t = self.next()
        if t.kind == "ident" and t.value not in KEYWORDS:
            return t.value, t.pos
        if t.kind == "{":
            return self.compound(t, None), t.pos
        raise self.error(t, "expected element class after '::', found %s" % t.describe())

    def optional_config(self):
        t = self.accept("config")
        return t.value if t is not None else None

    # -- compounds --------------------------------------------------------------------
    def compound(self, brace, name):
        formals = self.formals()
        body = self.statements(brace)
        self.next()                                           # the closing '}'
        return CompoundDef(name, formals, body, brace.pos)

    def formals(self):
        """``$a, KEY $b, __REST__ $c |`` at the start of a compound body, if present."""
        t0, t1 = self.peek(), self.peek(1)
        if t0.kind == "|":
            self.next()
            return []
        if not (t0.kind == "var" or (t0.kind == "ident" and t1.kind == "var")):
            return []
        formals = []
        while True:
            t = self.next()
            keyword = None
            if t.kind == "ident":
                keyword, t = t.value, self.next()
            if t.kind != "var":
                raise self.error(t, "expected a parameter like '$name' in the compound's "
                                 "parameter list, found %s" % t.describe())
            formals.append(Formal(t.value[1:], keyword, t.pos))
            sep = self.next()
            if sep.kind == "|":
                break
            if sep.kind != ",":
                raise self.error(sep, "expected ',' or '|' after compound parameter %s, found %s"
                                 % (t.value, sep.describe()))
        self.check_formals(formals)
        return formals

    def check_formals(self, formals):
        seen, rank = {}, 0
        order = {None: 0, "__REST__": 2}
        for f in formals:
            if f.var in seen:
                raise self.error_at(f.pos, "parameter $%s defined twice in the parameter list"
                                    % f.var)
            seen[f.var] = f
            r = order.get(f.keyword, 1)
            if r < rank or (rank == 2):
                raise self.error_at(f.pos, "compound parameters out of order at $%s: expected "
                                    "positional parameters, then KEYWORD ones, then __REST__"
                                    % f.var)
            rank = r


def _hint(tok):
    if tok.kind == "var":
        return " ($parameters can only be used inside a configuration string)"
    if tok.kind == "config":
        return " (a configuration must follow an element class)"
    if tok.kind in ("||", "..."):
        return " (compound overloading with '||' and '...' is not supported)"
    return ""

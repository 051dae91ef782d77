"""Classifier, IPClassifier and IPFilter: patterns compiled to one Python function.

Design: each element parses its patterns, at configure time, into a small
decision tree of our own (``Cmp`` leaf tests on a header field; ``And``, ``Or``,
``Not``, ``Cond``, ``Const``), simplifies it, and generates the source text of
one function ``_match(p) -> output`` (``-1`` for drop) that tests the rules in
order.  The generator emits only integers it formats itself and fixed snippets,
so no configuration text can reach the compiled code.  A leaf reads ``p.buf``
at an absolute offset from one of three bases -- ``d`` (the data start
``p.off``), ``i`` (the IP header: ``p.nh``, else ``p.off``) and ``t`` (the
transport header, ``i`` plus the IP header length) -- behind a length guard,
so short packets fail a test instead of raising; a conjunction hoists one guard
per base.  Pushing a batch is then one loop calling that function per packet.

The IP pattern language is Click's IPClassifier syntax (tcpdump-like; see
:class:`IPClassifier`), parsed by a recursive-descent parser that remembers the
previous primitive, so that Click's abbreviations ('src port 80 or 81') work.
"""

import re

from ..args import parse_value, unquote
from ..element import Arg, Element, read_handler
from ..netutil import ip_str

__all__ = ["Classifier", "IPClassifier", "IPFilter", "parse_ip_pattern",
           "parse_classifier_pattern"]


# -- the decision tree ----------------------------------------------------------------

class Cmp(tuple):
    """Leaf test ``((field >> shift) & mask) OP lo`` (``lo <= x <= hi`` for 'in') on
    the ``size`` bytes at ``base + off``; false when the packet is too short."""
    __slots__ = ()
    base = property(lambda s: s[1])
    off = property(lambda s: s[2])
    size = property(lambda s: s[3])
    shift = property(lambda s: s[4])
    mask = property(lambda s: s[5])
    op = property(lambda s: s[6])
    lo = property(lambda s: s[7])
    hi = property(lambda s: s[8])

    def __new__(cls, base, off, size, shift, mask, op, lo, hi=None):
        return tuple.__new__(cls, ("cmp", base, off, size, shift, mask, op, lo,
                                   lo if hi is None else hi))


def Need(base, nbytes):
    """Leaf test: the packet holds ``nbytes`` bytes from ``base`` (a whole header part)."""
    return ("need", base, nbytes)


def And(*items):
    return ("and",) + tuple(items)


def Or(*items):
    return ("or",) + tuple(items)


def Not(x):
    return ("not", x)


def Cond(c, a, b):
    return ("if", c, a, b)


TRUE, FALSE = ("const", True), ("const", False)
_OPS = {"==": "==", "!=": "!=", "<": "<", ">": ">", "<=": "<=", ">=": ">="}
_BASES = {"d": "d", "i": "i", "t": "t"}          # base -> local variable in _match


def simplify(node):
    """Flatten nested and/or, drop repeated tests ('tcp and port 80' tests the
    protocol once), fold constants and double negations."""
    tag = node[0]
    if tag in ("and", "or"):
        absorbing = tag == "or"            # True absorbs an or, False an and
        items = []
        for x in map(simplify, node[1:]):
            if x[0] == "const":
                if x[1] == absorbing:
                    return x
                continue
            items.extend(y for y in (x[1:] if x[0] == tag else (x,)) if y not in items)
        if not items:
            return ("const", not absorbing)
        return items[0] if len(items) == 1 else (tag,) + tuple(items)
    if tag == "not":
        x = simplify(node[1])
        if x[0] == "const":
            return ("const", not x[1])
        return x[1] if x[0] == "not" else ("not", x)
    if tag == "if":
        c = simplify(node[1])
        if c[0] == "const":
            return simplify(node[2] if c[1] else node[3])
        return ("if", c, simplify(node[2]), simplify(node[3]))
    return node


def uses_base(node, base):
    if node[0] in ("cmp", "need"):
        return node[1] == base
    return node[0] != "const" and any(uses_base(x, base) for x in node[1:])


# -- code generation --------------------------------------------------------------------

def _num(v):
    """Only integers we computed ourselves may enter generated code."""
    if type(v) is not int:
        raise TypeError("generated code may only contain integers, not %r" % (v,))
    return "%d" % v


def _at(base, k):
    return _BASES[base] if k == 0 else "%s+%s" % (_BASES[base], _num(k))


def _read(c):
    if c.size == 1:
        v = "b[%s]" % _at(c.base, c.off)
    elif c.size == 2:
        v = "(b[%s] << 8 | b[%s])" % (_at(c.base, c.off), _at(c.base, c.off + 1))
    else:
        v = "_fb(b[%s:%s], 'big')" % (_at(c.base, c.off), _at(c.base, c.off + c.size))
    if c.shift:
        v = "(%s >> %s)" % (v, _num(c.shift))
    if c.mask != ((1 << 8 * c.size) - 1) >> c.shift:
        v = "(%s & %s)" % (v, _num(c.mask))
    return v


def _test(c):
    if c.op == "in":
        return "%s <= %s <= %s" % (_num(c.lo), _read(c), _num(c.hi))
    return "%s %s %s" % (_read(c), _OPS[c.op], _num(c.lo))


def _guard(base, end):
    return "n > %s" % _at(base, end - 1)


def _same_field(items):
    """True if every item is an equality test of one and the same field."""
    first = items[0]
    return all(x[0] == "cmp" and x.op == "==" and x[1:6] == first[1:6] for x in items)


def emit(node):
    """Python expression text for ``node`` (locals b, n and the bases in scope)."""
    tag = node[0]
    if tag == "const":
        return "True" if node[1] else "False"
    if tag == "cmp":
        return "(%s and %s)" % (_guard(node.base, node.off + node.size), _test(node))
    if tag == "need":
        return "(%s)" % _guard(node[1], node[2])
    if tag == "not":
        return "(not %s)" % emit(node[1])
    if tag == "or":
        if _same_field(node[1:]):           # 'tcp or udp': one read, a tuple test
            c = node[1]
            return "(%s and %s in (%s,))" % (_guard(c.base, c.off + c.size), _read(c),
                                             ", ".join(_num(x.lo) for x in node[1:]))
        return "(%s)" % " or ".join(map(emit, node[1:]))
    if tag == "if":
        return "(%s if %s else %s)" % (emit(node[2]), emit(node[1]), emit(node[3]))
    # and: every direct leaf must hold, so one length guard per base covers them all
    ends = {}
    for x in node[1:]:
        if x[0] == "cmp":
            ends[x.base] = max(ends.get(x.base, 0), x.off + x.size)
        elif x[0] == "need":
            ends[x[1]] = max(ends.get(x[1], 0), x[2])
    parts = [_guard(base, end) for base, end in ends.items()]
    parts += [_test(x) if x[0] == "cmp" else emit(x) for x in node[1:] if x[0] != "need"]
    return "(%s)" % " and ".join(parts)


_PROLOGUE = {
    "d": ["d = p.off"],
    "i": ["i = p.nh", "if i < 0:", "    i = p.off"],
    # The transport header follows the IP header; a missing or impossible header
    # length puts it at the end of the packet, where every guard fails.
    "t": ["t = i + ((b[i] & 15) << 2) if n > i else n", "if t < i + 20:", "    t = n"],
}


def generate(rules, name="_match"):
    """Source text of ``def _match(p)`` returning the output of the first rule whose
    tree matches, or -1.  ``rules`` is a list of (tree, output or -1)."""
    body, bases = [], set()
    for tree, out in rules:
        tree = simplify(tree)
        if tree == FALSE:
            continue
        for base in "dit":
            if uses_base(tree, base):
                bases.add(base)
        if tree == TRUE:
            body.append("return %s" % _num(out))
            break
        body += ["if %s:" % emit(tree), "    return %s" % _num(out)]
    else:
        body.append("return -1")
    if "t" in bases:
        bases.add("i")
    head = ["b = p.buf", "n = len(b)"]
    for base in "dit":
        if base in bases:
            head += _PROLOGUE[base]
    return "def %s(p):\n%s\n" % (name, "\n".join("    " + line for line in head + body))


def compile_rules(rules, filename):
    src = generate(rules)
    namespace = {"__builtins__": {}, "len": len, "_fb": int.from_bytes}
    exec(compile(src, filename, "exec"), namespace)
    return namespace["_match"], src


# -- rendering trees for the 'program' handler -------------------------------------------

_BASE_NAMES = {"d": "data", "i": "ip", "t": "transp"}


def _render_value(c, v):
    if c.base == "d":
        return "0x%0*x" % (2 * c.size, v)
    if c.base == "i" and c.size == 4 and not c.shift:      # addresses and netmasks
        return ip_str(v.to_bytes(4, "big"))
    return "%d" % v


def render(node, top=True):
    tag = node[0]
    if tag == "const":
        return "true" if node[1] else "false"
    if tag == "cmp":
        c = node
        field = "%s[%d%s]" % (_BASE_NAMES[c.base], c.off, ":%d" % c.size if c.size > 1 else "")
        if c.shift:
            field += " >> %d" % c.shift
        if c.mask != ((1 << 8 * c.size) - 1) >> c.shift:
            field += " & " + (_render_value(c, c.mask) if c.base == "i" and c.size == 4
                              else "0x%x" % c.mask)
        if c.op == "in":
            return "%s in %s-%s" % (field, _render_value(c, c.lo), _render_value(c, c.hi))
        return "%s %s %s" % (field, c.op, _render_value(c, c.lo))
    if tag == "need":
        return "len(%s) >= %d" % (_BASE_NAMES[node[1]], node[2])
    if tag == "not":
        return "not (%s)" % render(node[1])
    if tag == "if":
        text = "%s ? %s : %s" % tuple(render(x, False) for x in node[1:])
    else:
        text = (" %s " % tag).join(render(x, False) for x in node[1:])
    return text if top else "(%s)" % text


# -- Classifier patterns -----------------------------------------------------------------

_CLAUSE = re.compile(r"^(\d+)/([0-9a-fA-F?]+)(?:%([0-9a-fA-F]+))?$")


def _clause(word):
    m = _CLAUSE.match(word)
    if not m:
        if "/" not in word:
            raise ValueError("expected a clause OFFSET/VALUE or OFFSET/VALUE%%MASK, got %r"
                             % word)
        if not word.partition("/")[0].isdigit():
            raise ValueError("expected a decimal offset before '/' in %r" % word)
        raise ValueError("expected hex digits (or '?') after '/' and after '%%' in %r"
                         % word)
    off, value, mask = int(m.group(1)), m.group(2), m.group(3)
    if len(value) % 2:
        raise ValueError("expected an even number of hex digits in %r" % word)
    if mask is not None and len(mask) != len(value):
        raise ValueError("expected the mask to have as many hex digits as the value in %r"
                         % word)
    # '?' nibbles are don't-cares: zero in both value and mask
    nib_mask = int("".join("0" if ch == "?" else "f" for ch in value), 16)
    v = int(value.replace("?", "0"), 16)
    m_ = nib_mask & (int(mask, 16) if mask is not None else -1)
    if m_ == 0:
        return TRUE
    return Cmp("d", off, len(value) // 2, 0, m_, "==", v & m_)


def parse_classifier_pattern(text):
    """One Classifier pattern ('12/0800 !23/06', or '-') to a decision tree."""
    words = unquote(text).split()
    if words == ["-"]:
        return TRUE
    if not words:
        raise ValueError("empty pattern (expected clauses OFFSET/VALUE, or '-')")
    tests, negate = [], False
    for w in words:
        if w == "-":
            raise ValueError("'-' must be the whole pattern (it matches every packet)")
        if w == "!":
            negate = not negate
            continue
        if w.startswith("!"):
            negate, w = not negate, w[1:]
        t = _clause(w)
        tests.append(Not(t) if negate else t)
        negate = False
    if negate:
        raise ValueError("expected a clause after '!'")
    return And(*tests)


# -- IPClassifier patterns: tokens ------------------------------------------------------

_TOKEN = re.compile(r"\s*(?:(&&|\|\||==|!=|<=|>=|[&|<>!=()\[\]?])|([A-Za-z0-9_.:/@-]+))")


def tokenize(text):
    out, pos, text = [], 0, text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ValueError("unexpected character %r" % text[pos])
        out.append(m.group(1) or m.group(2))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


# -- IPClassifier patterns: names --------------------------------------------------------

PROTOCOLS = {"icmp": 1, "igmp": 2, "ipip": 4, "tcp": 6, "udp": 17}
TCPUDP, TRANSP = -1, -2          # pseudo protocols: 'tcp or udp' (ports), any ('transp[]')
TCP_FLAGS = {"fin": 0x01, "syn": 0x02, "rst": 0x04, "psh": 0x08, "ack": 0x10, "urg": 0x20}
ICMP_TYPES = {
    "echo-reply": 0, "unreachable": 3, "sourcequench": 4, "redirect": 5, "echo": 8,
    "routeradvert": 9, "routersolicit": 10, "timeexceeded": 11, "parameterproblem": 12,
    "timestamp": 13, "timestamp-reply": 14, "inforeq": 15, "inforeq-reply": 16,
    "maskreq": 17, "maskreq-reply": 18,
}
PORTS = {
    "echo": 7, "discard": 9, "daytime": 13, "chargen": 19, "ftp-data": 20, "ftp": 21,
    "ssh": 22, "telnet": 23, "smtp": 25, "domain": 53, "dns": 53, "bootps": 67,
    "bootpc": 68, "tftp": 69, "finger": 79, "www": 80, "http": 80, "pop3": 110,
    "sunrpc": 111, "auth": 113, "nntp": 119, "ntp": 123, "netbios-ns": 137,
    "netbios-dgm": 138, "netbios-ssn": 139, "snmp": 161, "snmp-trap": 162, "irc": 194,
    "imap3": 220, "https": 443, "rip": 520, "route": 520, "imaps": 993, "pop3s": 995,
}

# Header fields: kind -> (base, offset, size, shift, mask, required protocol)
FIELDS = {
    "vers": ("i", 0, 1, 4, 0xF, None), "hl": ("i", 0, 1, 0, 0xF, None),
    "tos": ("i", 1, 1, 0, 0xFF, None), "dscp": ("i", 1, 1, 2, 0x3F, None),
    "len": ("i", 2, 2, 0, 0xFFFF, None), "id": ("i", 4, 2, 0, 0xFFFF, None),
    "ttl": ("i", 8, 1, 0, 0xFF, None), "proto": ("i", 9, 1, 0, 0xFF, None),
    "win": ("t", 14, 2, 0, 0xFFFF, 6), "type": ("t", 0, 1, 0, 0xFF, 1),
    "port": ("t", 0, 2, 0, 0xFFFF, TCPUDP),
}
NO_DATA = ("frag", "unfrag", "ect", "ce")
KINDS = set(FIELDS) | {"host", "net", "opt"} | set(NO_DATA)
INT_KINDS = set(FIELDS) | {"field"}     # kinds a bare number can continue
_NAMES = {"port": PORTS, "proto": PROTOCOLS, "opt": TCP_FLAGS, "type": ICMP_TYPES}
_EXPECTED = {
    "host": "an IP address", "net": "an IP prefix (like 10.0.0.0/8 or ADDR mask MASK)",
    "port": "a port number", "proto": "a protocol (a number, or icmp, igmp, ipip, tcp, udp)",
    "opt": "a TCP flag (syn, fin, ack, rst, psh, urg)",
    "type": "an ICMP type (a number, or a name like echo, echo-reply)",
}
_END = (None, ")", "or", "||", "?", ":")
_STRUCTURAL = set(_END) | {"and", "&&", "not", "!", "(", "[", "]", "&"} | set(_OPS)
_INT = re.compile(r"^(?:\d+|0[xX][0-9a-fA-F]+)$")
_RANGE = re.compile(r"^(\d+)-(\d+)$")
_FIRST_FRAGMENT = Cmp("i", 6, 2, 0, 0x1FFF, "==", 0)


def _proto_name(proto):
    names = {v: k for k, v in PROTOCOLS.items()}
    names.update({TCPUDP: "tcp or udp", TRANSP: "transp"})
    return names.get(proto, "ip proto %d" % proto)


def _proto_test(proto):
    if proto == TCPUDP:
        return Or(Cmp("i", 9, 1, 0, 0xFF, "==", 6), Cmp("i", 9, 1, 0, 0xFF, "==", 17))
    if proto == TRANSP:
        return TRUE
    return Cmp("i", 9, 1, 0, 0xFF, "==", proto)


class _Prim:
    """A primitive while it is parsed: qualifiers, then operator and data."""
    __slots__ = ("srcdst", "proto", "kind", "field", "mask", "op", "data", "word", "after",
                 "quals")

    def __init__(self):
        self.srcdst = self.proto = self.kind = self.field = self.mask = None
        self.op = "=="
        self.data = None            # (data kind, value[, value2]) or None
        self.word = self.after = None
        self.quals = False


class _IPParser:
    """Recursive descent over tokens; builds the decision tree of one pattern.

    expr ::= orexpr ['?' expr ':' expr];  orexpr ::= term (('or'|'||') term)*;
    term ::= factor (['and'|'&&'] factor)*;  factor ::= ('not'|'!') factor
           | '(' expr ')' | 'true' | 'false' | quals ['[' POS[:LEN] ']'] ['&' MASK]
             [relop] [data]
    """

    def __init__(self, tokens, addresses=None):
        self.toks, self.pos, self.addresses = tokens, 0, addresses
        self.prev = None

    # -- token helpers
    def peek(self, k=0):
        return self.toks[self.pos + k] if self.pos + k < len(self.toks) else None

    def take(self):
        self.pos += 1
        return self.toks[self.pos - 1]

    def last(self):
        return self.toks[self.pos - 1] if self.pos else None

    def fail_expected(self, what, after=None):
        w = self.peek()
        after = after if after is not None else self.last()
        raise ValueError("expected %s%s, got %s" % (
            what, " after %r" % after if after is not None else "",
            "end of pattern" if w is None else repr(w)))

    # -- grammar
    def parse(self):
        tree = self.expr()
        if self.peek() is not None:
            raise ValueError("unexpected %r after a complete expression%s" % (
                self.peek(), " (unbalanced ')'?)" if self.peek() == ")" else ""))
        return tree

    def expr(self):
        c = self.orexpr()
        if self.peek() != "?":
            return c
        self.take()
        a = self.expr()
        if self.peek() != ":":
            self.fail_expected("':' (the colon of 'COND ? A : B', with spaces around it)")
        self.take()
        return Cond(c, a, self.expr())

    def orexpr(self):
        items = [self.term()]
        while self.peek() in ("or", "||"):
            self.take()
            items.append(self.term())
        return Or(*items)

    def term(self):
        items = [self.factor()]
        while self.peek() not in _END:
            if self.peek() in ("and", "&&"):
                self.take()
            items.append(self.factor())
        return And(*items)

    def factor(self):
        w = self.peek()
        if w in _END or w in ("and", "&&"):
            self.fail_expected("a primitive (like tcp, host ADDR, port N)")
        if w in ("not", "!"):
            self.take()
            return Not(self.factor())
        if w == "(":
            self.take()
            x = self.expr()
            if self.peek() != ")":
                self.fail_expected("')' to close '('")
            self.take()
            return x
        if w in ("true", "false"):
            self.take()
            return TRUE if w == "true" else FALSE
        return self.primitive()

    # -- primitives
    def primitive(self):
        p = _Prim()
        self.qualifiers(p)
        if self.peek() == "[" and p.quals and p.kind is None:
            self.brackets(p)
        if self.peek() == "&":
            self.take()
            w = self.peek()
            if w is None or not _INT.match(w):
                self.fail_expected("a mask number")
            p.mask = int(self.take(), 0)
        if self.peek() in _OPS or self.peek() == "=":
            if not p.quals and (self.prev is None or self.prev.kind not in INT_KINDS):
                after = " after %r" % self.last() if self.pos else ""
                raise ValueError("unexpected %r%s (an operator goes between a field and its "
                                 "value, like 'ip ttl > 5')" % (self.peek(), after))
            p.op = _OPS.get(self.take(), "==")
            p.after = self.last()
        self.data(p)
        if not p.quals:
            self.inherit(p)
        tree = self.build(p)
        self.prev = p
        return tree

    def qualifiers(self, p):
        while True:
            w = self.peek()
            if w == "src":
                if self.peek(1) in ("and", "&&", "or", "||") and self.peek(2) in ("dst", "dest"):
                    sd = "and" if self.peek(1) in ("and", "&&") else "or"
                    self.pos += 2
                else:
                    sd = "src"
                self.set_once(p, "srcdst", sd, "'src' or 'dst'")
            elif w in ("dst", "dest"):
                self.set_once(p, "srcdst", "dst", "'src' or 'dst'")
            elif w == "ip":
                pass
            elif w in PROTOCOLS or (w == "transp" and self.peek(1) == "["):
                proto = PROTOCOLS.get(w, TRANSP)
                if p.proto is not None and p.proto != proto:
                    raise ValueError("transport protocol given twice (%r after %s)"
                                     % (w, _proto_name(p.proto)))
                p.proto = proto
            elif w in KINDS:
                self.set_once(p, "kind", w, "the primitive's type")
            else:
                return
            self.take()
            p.quals = True

    def set_once(self, p, attr, value, what):
        if getattr(p, attr) is not None:
            raise ValueError("%s given twice (at %r)" % (what, self.peek()))
        setattr(p, attr, value)

    def brackets(self, p):
        self.take()
        parts = []
        while self.peek() not in (None, "]"):
            parts.append(self.take())
        if self.peek() != "]":
            self.fail_expected("']'")
        self.take()
        m = re.match(r"^(\d+)(?::(\d+))?$", "".join(parts))
        if not m:
            raise ValueError("expected [POS] or [POS:LEN] after %r, got [%s]"
                             % (self.toks[self.pos - len(parts) - 3], "".join(parts)))
        pos, size = int(m.group(1)), int(m.group(2) or 1)
        if not 1 <= size <= 4:
            raise ValueError("LEN in [%d:%d] must be between 1 and 4" % (pos, size))
        base = "i" if p.proto is None else "t"
        p.kind, p.field = "field", (base, pos, size, 0, (1 << 8 * size) - 1, p.proto)

    def data(self, p):
        """Consume the data word if there is one and it fits; record what it is."""
        w = self.peek()
        if w is None or w in _STRUCTURAL:
            return
        d = self.classify(w, p)
        if d is None:
            return
        p.after = self.last()
        p.data, p.word = d, self.take()
        if d[0] == "host" and self.peek() == "mask":
            self.take()
            if self.peek() is None:
                self.fail_expected("a netmask")
            word = self.take()
            try:
                mask = parse_value("ip", word, self.addresses)
                addr, mask = parse_value("prefix", "%s/%s" % (ip_str(d[1]), ip_str(mask)))
            except ValueError:
                raise ValueError("expected a netmask (like 255.255.0.0) after 'mask', got %r"
                                 % word) from None
            p.data, p.word = ("net", addr, mask), "%s mask %s" % (w, word)

    def classify(self, w, p):
        """What the word ``w`` is in this primitive's context, or None."""
        names = self.names(w, p)
        if names:
            return names
        if _INT.match(w):
            return ("int", int(w, 0))
        m = _RANGE.match(w)
        if m:
            return ("range", int(m.group(1)), int(m.group(2)))
        return self.address(w, p.kind)

    def names(self, w, p):
        if p.kind in _NAMES:
            v = _NAMES[p.kind].get(w)
            return (p.kind, v) if v is not None else None
        if p.kind is not None:
            return None
        found = []
        if p.proto in (None, 6, 17, TCPUDP) and w in PORTS:
            found.append(("port", PORTS[w]))
        if p.proto in (None, 6) and w in TCP_FLAGS:
            found.append(("opt", TCP_FLAGS[w]))
        if p.proto in (None, 1) and w in ICMP_TYPES:
            found.append(("type", ICMP_TYPES[w]))
        if len(found) > 1:
            raise ValueError("%r is ambiguous; say %s" % (w, " or ".join(
                "'%s %s'" % ({"port": "port", "opt": "tcp opt", "type": "icmp type"}[k], w)
                for k, _ in found)))
        return found[0] if found else None

    def address(self, w, kind):
        a = self.addresses
        try:
            if "/" in w or (kind != "host" and a is not None and w in a.prefix
                            and (kind == "net" or a.prefix[w][1] != b"\xff" * 4)):
                addr, mask = parse_value("prefix", w, a)
                return ("net", addr, mask)
            return ("host", parse_value("ip", w, a))
        except ValueError:
            return None

    def inherit(self, p):
        """Click's abbreviations: a bare value continues the previous primitive
        ('src port 80 or 81', 'dst host A or B')."""
        q, dk = self.prev, p.data[0] if p.data else None
        if q is None:
            return
        if dk in ("host", "net"):
            p.srcdst = q.srcdst
        elif dk == "port":
            p.srcdst, p.proto = q.srcdst, q.proto
        elif dk in ("int", "range") and q.kind in INT_KINDS:
            p.kind, p.field, p.srcdst, p.proto = q.kind, q.field, q.srcdst, q.proto

    # -- building trees
    def build(self, p):
        dk = p.data[0] if p.data else None
        if p.kind is None:
            if dk in ("host", "net", "opt", "port", "type"):
                p.kind = dk
            elif dk is not None:
                raise ValueError("a bare number %r needs a field before it (like 'port %s' "
                                 "or 'ip ttl %s')" % (p.word, p.word, p.word))
            elif p.proto is not None and p.proto >= 0:
                p.kind = "proto"
            elif p.srcdst is not None:
                self.fail_expected("'host', 'net', 'port' or an address")
            elif p.quals:                       # a bare 'ip': an IPv4 header is there
                return Cmp("i", 0, 1, 4, 0xF, "==", 4)
            else:
                self.fail_expected("a primitive (like tcp, host ADDR, port N)")
        if p.kind == "proto" and p.proto is not None:   # 'ip proto tcp', or just 'tcp'
            if p.data is not None:
                raise ValueError("transport protocol given twice (%s and %r)"
                                 % (_proto_name(p.proto), p.word))
            p.data, p.word, p.proto = ("proto", p.proto), _proto_name(p.proto), None
        if p.srcdst is not None and p.kind not in ("host", "net", "port"):
            raise ValueError("'src' or 'dst' makes no sense with %r" % p.kind)
        if p.mask is not None and p.kind not in INT_KINDS:
            raise ValueError("a mask ('& N') makes no sense with %r" % p.kind)
        if p.kind in NO_DATA:
            tree = self.build_flag(p)
        elif p.kind in ("host", "net"):
            tree = self.build_address(p)
        elif p.kind == "opt":
            return self.build_opt(p)
        elif (p.field or FIELDS[p.kind])[0] == "t":      # guards its own protocol
            return self.build_field(p)
        else:
            tree = self.build_field(p)
        # a protocol qualifier on an IP-level primitive ('udp host A') tests it too
        return tree if p.proto is None else And(_proto_test(p.proto), tree)

    def need(self, p, ok):
        """Fail unless the data word is one of the kinds in ``ok``."""
        if p.data is None or p.data[0] not in ok:
            what = _EXPECTED.get(p.kind, "a number")
            if p.data is None:
                self.fail_expected(what, p.after or self.last())
            raise ValueError("expected %s after %r, got %r" % (what, p.after, p.word))

    def build_flag(self, p):
        if p.data is not None or p.op != "==":
            raise ValueError("'%s' takes no value (got %r)" % (p.kind, p.word or p.op))
        if p.kind in ("frag", "unfrag"):
            return Cmp("i", 6, 2, 0, 0x3FFF, "!=" if p.kind == "frag" else "==", 0)
        if p.kind == "ect":
            return Cmp("i", 1, 1, 0, 0x3, "!=", 0)
        return Cmp("i", 1, 1, 0, 0x3, "==", 3)

    def build_address(self, p):
        self.need(p, ("host",) if p.kind == "host" else ("host", "net"))
        if p.op not in ("==", "!="):
            raise ValueError("'%s' compares with == or != only, not %r" % (p.kind, p.op))
        addr, mask = (p.data[1], b"\xff" * 4) if p.data[0] == "host" else p.data[1:]
        m = int.from_bytes(mask, "big")
        v = int.from_bytes(addr, "big") & m
        sides = [Cmp("i", off, 4, 0, m, "==", v) for off in self.sides(p.srcdst, 12, 16)]
        tree = self.combine(p.srcdst, sides)
        return Not(tree) if p.op == "!=" else tree

    def build_opt(self, p):
        self.need(p, ("opt", "int"))
        if p.op != "==":
            raise ValueError("'tcp opt' takes no operator (got %r)" % p.op)
        flags = p.data[1]
        if not 0 < flags <= 0xFF:
            raise ValueError("TCP flags %d out of range (1-255)" % flags)
        return And(*self.transport_guard(p, 6), Cmp("t", 13, 1, 0, flags, "==", flags))

    def build_field(self, p):
        spec = p.field if p.kind == "field" else FIELDS[p.kind]
        base, off, size, shift, fmask, proto = spec
        self.need(p, (p.kind, "int", "range") if p.kind in _NAMES else ("int", "range"))
        if p.data[0] == "range" and p.op not in ("==", "!="):
            raise ValueError("a range takes no operator other than == or != (got %r)" % p.op)
        mask = fmask
        if p.mask is not None:
            if p.mask & fmask != p.mask or not p.mask:
                raise ValueError("mask 0x%x out of range for %r (1-0x%x)"
                                 % (p.mask, p.kind, fmask))
            mask = p.mask
        lo, hi = p.data[1], p.data[-1]
        if lo > hi:
            raise ValueError("range %r is empty (expected LOW-HIGH)" % p.word)
        if not 0 <= lo <= hi <= fmask:
            raise ValueError("value %r out of range for %r (0-%d)" % (p.word, p.kind, fmask))
        guard = self.transport_guard(p, proto) if base == "t" else ()
        # '!=' on a port means "a TCP/UDP packet whose ports are not N": negate the
        # comparison inside the protocol guard, like Click.
        op = "in" if p.data[0] == "range" else ("==" if p.op == "!=" else p.op)
        if p.kind == "port":             # both ports present, or no port test matches
            guard += (Need("t", 4),)
            tests = [Cmp(base, o, 2, 0, mask, op, lo, hi) for o in self.sides(p.srcdst, 0, 2)]
            cmp = self.combine(p.srcdst, tests)
        else:
            cmp = Cmp(base, off, size, shift, mask, op, lo, hi)
        return And(*guard, Not(cmp) if p.op == "!=" else cmp)

    def transport_guard(self, p, needed):
        """The protocol and first-fragment tests a transport-header field needs."""
        proto = p.proto if p.proto is not None else needed
        ok = {TCPUDP: (6, 17, TCPUDP), TRANSP: None}.get(needed, (needed,))
        if ok is not None and proto not in ok:
            raise ValueError("%r needs %s, not %s" % ({"opt": "tcp opt", "type": "icmp type"}
                                                      .get(p.kind, p.kind),
                                                      _proto_name(needed), _proto_name(proto)))
        return (_proto_test(proto), _FIRST_FRAGMENT)

    @staticmethod
    def sides(srcdst, src_off, dst_off):
        if srcdst == "src":
            return (src_off,)
        if srcdst == "dst":
            return (dst_off,)
        return (src_off, dst_off)

    @staticmethod
    def combine(srcdst, tests):
        return And(*tests) if srcdst == "and" else Or(*tests)


def parse_ip_pattern(text, addresses=None):
    """One IPClassifier pattern to a decision tree (ValueError on bad syntax)."""
    return parse_ip_tokens(tokenize(unquote(text)), addresses)


def parse_ip_tokens(tokens, addresses=None):
    if not tokens:
        raise ValueError("empty pattern (expected a primitive, or '-' for every packet)")
    if len(tokens) == 1 and tokens[0] in ("-", "any", "all"):
        return TRUE
    return _IPParser(tokens, addresses).parse()


# -- the elements ------------------------------------------------------------------------

class _Classifying(Element):
    """Shared machinery: compile rules, push a batch through one loop, count."""
    ABSTRACT = True
    PORTS = "1/-"

    def install(self, rules, noutputs):
        """Compile ``rules`` [(tree, output or -1)] for an element with ``noutputs``."""
        self._rules = [(simplify(t), k) for t, k in rules]
        self._nout = noutputs
        self._match, self._source = compile_rules(
            self._rules, "<%s %s>" % (self.__class__.__name__, self.name))
        self._counts = [0] * (noutputs + 1)          # the last one counts drops

    @staticmethod
    def parse_each(patterns, parse):
        """``parse`` each pattern; errors name the pattern by its number (from 0)."""
        if not patterns:
            raise ValueError("expected at least one pattern")
        parsed = []
        for k, text in enumerate(patterns):
            try:
                parsed.append(parse(text))
            except ValueError as e:
                raise ValueError("pattern %d: %s" % (k, e)) from None
        return parsed

    def port_count(self):
        return "1/%d" % self._nout

    def push(self, port, batch):
        match = self._match
        buckets = [[] for _ in range(self._nout + 1)]   # [-1] collects the drops
        for p in batch:
            buckets[match(p)].append(p)
        counts = self._counts
        for k, bucket in enumerate(buckets):
            if bucket:
                counts[k] += len(bucket)
                if k < self._nout:
                    self.output(k)(bucket)

    @read_handler("program", "the compiled decision list: one test per line, first match wins")
    def _h_program(self):
        lines = []
        for tree, out in self._rules:
            if tree == FALSE:
                continue
            lines.append("%s -> %s" % (render(tree), "drop" if out < 0 else "[%d]" % out))
            if tree == TRUE:
                break
        else:
            lines.append("otherwise -> drop")
        return "\n".join(lines)

    @read_handler("dropped", "packets that matched no pattern (or a drop rule)")
    def _h_dropped(self):
        return str(self._counts[-1])

    @read_handler("counts", "packets sent to each output, one 'OUTPUT COUNT' per line")
    def _h_counts(self):
        return "\n".join("%d %d" % (k, c) for k, c in enumerate(self._counts[:-1]))


class Classifier(_Classifying):
    """Classifier(PATTERN_1, ..., PATTERN_N)

    Classifies packets by their bytes.  A pattern is a list of space-separated
    clauses OFFSET/VALUE or OFFSET/VALUE%MASK, all of which must match: OFFSET
    is decimal, counted from the start of the packet data; VALUE and MASK are
    hex with an even number of digits, '?' a don't-care nibble.  '!' before a
    clause negates it; the pattern '-' matches every packet.  A clause reaching
    past the end of a short packet does not match.  Each packet goes to the
    output of the first matching pattern (one output per pattern); packets no
    pattern matches are dropped and counted.  Errors number patterns from 0, as
    outputs are.
    """
    ARGS = (Arg("PATTERN", "raw", rest=True,
                doc="one pattern per output, e.g. '12/0800' or '12/0806 20/0001' or '-'"),)

    def configure(self):
        trees = self.parse_each(self.pattern, parse_classifier_pattern)
        self.install([(t, k) for k, t in enumerate(trees)], len(trees))


class IPClassifier(_Classifying):
    """IPClassifier(PATTERN_1, ..., PATTERN_N)

    Classifies IP packets with tcpdump-like patterns, one output per pattern,
    first match wins; unmatched packets are dropped and counted.  The IP header
    is at the packet's network-header annotation, else at the data start.
    Primitives: 'ip', 'tcp', 'udp', 'icmp', 'ip proto P', '[src|dst|src or dst|src
    and dst] host A', '... net P' (A/LEN, or A mask M), '[src|dst] [tcp|udp] port
    N' (a number, a name like www or ssh, or a range N-M), 'icmp type T', 'tcp opt
    syn|ack|fin|rst|psh|urg' (flag set), 'ip frag', 'ip unfrag', 'ip vers|hl|tos|
    dscp|ttl|id|len N', 'tcp win N', 'ip ect', 'ip ce', 'ip[POS:LEN] N',
    'tcp[POS:LEN] N', 'true', 'false'; integer primitives take '& MASK' and ==, !=,
    <, >, <=, >= (for 'src or dst' ports a relation holds if either side does).
    Combine with and/&&, or/||, not/!, parentheses, 'C ? A : B'; juxtaposed
    primitives are and-ed.  Abbreviations as in Click: a bare address means
    host, a bare prefix net, a bare port or flag name its primitive, and a bare
    value repeats the previous primitive ('src port 80 or 81').  Addresses may be
    AddressInfo names.  Port, ICMP type and TCP flag tests only match first
    fragments with the whole field present; '-', 'any' or 'all' match everything.
    """
    ARGS = (Arg("PATTERN", "raw", rest=True,
                doc="one pattern per output, e.g. 'tcp dst port 80' or 'icmp type echo'"),)

    def configure(self):
        trees = self.parse_each(self.pattern, self.parse_pattern)
        self.install([(t, k) for k, t in enumerate(trees)], len(trees))

    def parse_pattern(self, text):
        return parse_ip_pattern(text, self.addresses)


class IPFilter(IPClassifier):
    """IPFilter(ACTION_1 PATTERN_1, ..., ACTION_N PATTERN_N)

    Filters IP packets: each rule is an action and an IPClassifier pattern,
    and the first rule whose pattern matches decides.  ACTION is 'allow'
    (output 0), 'deny' or 'drop' (drop the packet), or an output number.
    Packets no rule matches are dropped and counted.  The element has one
    output, or as many as the highest output number used plus one (more may be
    connected).
    """
    ARGS = (Arg("RULE", "raw", rest=True,
                doc="'allow PATTERN', 'deny PATTERN', 'drop PATTERN' or 'N PATTERN'"),)

    def configure(self):
        rules = self.parse_each(self.rule, self.parse_rule)
        self.install(rules, max([1] + [out + 1 for _, out in rules]))

    def parse_rule(self, text):
        tokens = tokenize(unquote(text))
        action = tokens[0] if tokens else None
        if action == "allow":
            out = 0
        elif action in ("deny", "drop"):
            out = -1
        elif action is not None and action.isdigit():
            out = int(action)
        else:
            raise ValueError("expected an action (allow, deny, drop or an output number), "
                             "got %r" % (action if action is not None else text))
        if len(tokens) == 1:
            raise ValueError("expected a pattern after %r" % action)
        return parse_ip_tokens(tokens[1:], self.addresses), out

    def port_count(self):
        return "1/%d-" % self._nout

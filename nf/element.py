"""The Element base class: ports, typed keyword configuration, handlers, state.

An element class declares, as class attributes:

* ``PORTS`` -- Click's port-count string (``"1/1"``, ``"1/1-2"``, ``"-/-"``);
  ``port_count()`` may compute it from the configuration instead.
* ``ARGS`` -- a tuple of :class:`Arg`: keyword name, type, default, whether it
  may be given positionally, and a line of documentation.  Each parsed value
  lands on the instance as the lower-cased keyword (``OFFSET`` -> ``offset``).
* handlers -- methods decorated with :func:`read_handler` / :func:`write_handler`.
* ``STATE_VERSION`` -- for stateful elements, the version of the dictionary
  that ``export_state()`` returns and ``import_state(data, version)`` accepts;
  ``MIGRATIONS`` maps an old version to a function that lifts its data one step.
* ``CODE_VERSION`` -- bumped when the element's code changes behaviour.

Its docstring gives the signature on the first line and a summary after it;
the keyword and handler sections are rendered from the declarations, so the
documentation cannot drift from the code (see :meth:`Element.doc`).

Packets travel by ``push(port, batch)`` with ``batch`` a non-empty list.  An
element that maps each packet to at most one packet on output 0 can implement
``simple_action(p)`` instead, returning the packet or None (dropped).
"""

import functools
import inspect
import re
import time

from .args import EXPECTED, parse_value, split_args, split_keyword
from .errors import ConfigError, HandlerError

__all__ = ["Element", "Arg", "read_handler", "write_handler", "ELEMENTS", "lookup",
           "registering_into",
           "parse_port_spec", "REQUIRED"]

ELEMENTS = {}          # class name -> class; filled as element modules are imported
_registry = [ELEMENTS]  # where newly defined classes register (see registering_into)
_LIBRARY_PREFIX = "nf.elements."


class registering_into:
    """``with registering_into(classes): import ...`` -- element classes defined
    inside the block register into ``classes`` instead of the library's ELEMENTS.
    The upgrade loader uses it so that a package's IPRewriter does not replace the
    library's for everyone else."""

    def __init__(self, registry):
        self.registry = registry

    def __enter__(self):
        _registry.append(self.registry)
        return self.registry

    def __exit__(self, *exc):
        _registry.pop()


class _Required:
    def __repr__(self):
        return "REQUIRED"


REQUIRED = _Required()


class Arg:
    """One configuration argument.

    ``positional``: may also be given without its keyword, in declaration order.
    ``rest``: collects every remaining positional argument as a list of strings.
    ``multi``: the keyword may repeat; the value is a list.
    """

    __slots__ = ("name", "kind", "default", "positional", "rest", "multi", "doc")

    def __init__(self, name, kind="raw", default=None, positional=False, rest=False,
                 multi=False, doc=""):
        self.name, self.kind, self.default = name, kind, default
        self.positional, self.rest, self.multi, self.doc = positional, rest, multi, doc

    @property
    def attr(self):
        return self.name.lower()

    def expected(self):
        return EXPECTED.get(self.kind, getattr(self.kind, "__doc__", None) or "value")


def read_handler(name, doc=""):
    """Declare a method ``f(self) -> str`` as the read handler ``name``."""
    def deco(f):
        f._read_handler = (name, doc)
        return f
    return deco


def write_handler(name, doc=""):
    """Declare a method ``f(self, value: str)`` as the write handler ``name``."""
    def deco(f):
        f._write_handler = (name, doc)
        return f
    return deco


_SPEC = re.compile(r"^\s*(-|\d+)(?:\s*-\s*(\d*))?\s*$")


def parse_port_spec(spec):
    """'1/1-2' -> ((1, 1), (1, 2)); '-' means any number, 'n-' n or more (max None)."""
    ins, _, outs = spec.partition("/")
    if not _:
        outs = ins

    def side(s):
        m = _SPEC.match(s)
        if not m:
            raise ValueError("bad port count %r" % spec)
        if m.group(1) == "-":
            return 0, None
        lo = int(m.group(1))
        if m.group(2) is None:
            return lo, lo
        return lo, (int(m.group(2)) if m.group(2) else None)
    return side(ins), side(outs)


def _discard(batch):
    pass


class Element:
    PORTS = "1/1"
    ARGS = ()
    STATE_VERSION = None
    MIGRATIONS = {}
    CODE_VERSION = 1
    CONFIGURE_PHASE = 50        # lower configures first (AddressInfo uses 0)
    ABSTRACT = True             # set in the class body of concrete elements' bases only
    PACKET_SOURCE = False       # brings packets into the graph (a device, a generator):
                                # what Router.hold() stops while an NF is a standby

    clock = staticmethod(time.monotonic)   # injectable per instance for tests

    _read_handlers = {}
    _write_handlers = {}

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        if "ABSTRACT" not in cls.__dict__:
            cls.ABSTRACT = False
        reads, writes = {}, {}
        for klass in reversed(cls.__mro__):
            for attr in vars(klass).values():
                if hasattr(attr, "_read_handler"):
                    reads[attr._read_handler[0]] = (attr, attr._read_handler[1])
                if hasattr(attr, "_write_handler"):
                    writes[attr._write_handler[0]] = (attr, attr._write_handler[1])
        cls._read_handlers, cls._write_handlers = reads, writes
        if not cls.ABSTRACT:
            # The library's own classes always go to ELEMENTS, even when a package's code
            # imports a library module for the first time inside registering_into: else
            # the library would lose them for good (the module stays imported).
            lib = cls.__module__.startswith(_LIBRARY_PREFIX)
            (ELEMENTS if lib else _registry[-1])[cls.__name__] = cls

    # -- construction -----------------------------------------------------------------
    def __init__(self, name="", config="", router=None, addresses=None, loc=None):
        self.name = name or self.__class__.__name__
        self.config = config or ""
        self.router = router
        self.loc = loc
        self.addresses = addresses if addresses is not None else (
            router.addresses if router is not None else None)
        self.ninputs = self.noutputs = 0
        self._out = []
        self._journal = None     # a list while a persistent store is attached (see journal())
        try:
            self._parse_config(split_args(self.config))
            self.configure()
        except ConfigError:
            raise
        except ValueError as e:
            raise self.error(str(e)) from None

    def error(self, message):
        return ConfigError("%s :: %s: %s" % (self.name, self.__class__.__name__, message),
                           self.loc)

    def _parse_config(self, args):
        spec = self.ARGS
        byname = {a.name: a for a in spec if not a.rest}
        values, extra = {}, []
        for raw in args:
            kw, val = split_keyword(raw)
            if kw is None or kw not in byname:
                extra.append(raw)
                continue
            a = byname[kw]
            v = self._typed(a, val)
            if a.multi:
                values.setdefault(a.name, []).append(v)
            elif a.name in values:
                raise ValueError("keyword %s given twice" % kw)
            else:
                values[a.name] = v
        for a in spec:
            if a.positional and not a.rest and extra and a.name not in values:
                values[a.name] = self._typed(a, extra.pop(0))
        rest = next((a for a in spec if a.rest), None)
        if rest is not None:
            values[rest.name], extra = extra, []
        if extra:
            kw, _ = split_keyword(extra[0])
            if kw is not None:
                raise ValueError("unknown keyword %s (known: %s)"
                                 % (kw, ", ".join(byname) or "none"))
            raise ValueError("too many arguments at %r (expected %s)"
                             % (extra[0], self.signature()))
        for a in spec:
            if a.name in values:
                v = values[a.name]
            elif a.default is REQUIRED:
                raise ValueError("missing required argument %s (%s)" % (a.name, a.expected()))
            else:
                v = [] if (a.multi or a.rest) and a.default is None else a.default
            setattr(self, a.attr, v)

    def _typed(self, a, text):
        try:
            return parse_value(a.kind, text, self.addresses)
        except ValueError as e:
            raise ValueError("keyword %s: %s, got %r" % (a.name, e, text)) from None

    def configure(self):
        """Validate and derive from the parsed arguments; raise ValueError to refuse."""

    def port_count(self):
        return self.PORTS

    def initialize(self):
        """Called once the graph is wired, before the first packet; may raise."""

    def cleanup(self):
        """Release resources (sockets, files).  Called when the router stops."""

    # -- packet movement ----------------------------------------------------------------
    def _connect_output(self, port, target, tport):
        while len(self._out) <= port:
            self._out.append(_discard)
        self._out[port] = functools.partial(target.push, tport)

    def output(self, port):
        """The callable that pushes a batch out of ``port`` (discards if unconnected)."""
        return self._out[port] if port < len(self._out) else _discard

    def push(self, port, batch):
        sa = self.simple_action
        out = [q for q in map(sa, batch) if q is not None]
        if out:
            self._out[0](out)

    def simple_action(self, p):
        raise NotImplementedError("%s implements neither push nor simple_action"
                                  % self.__class__.__name__)

    # -- handlers -------------------------------------------------------------------------
    def handlers(self):
        names = {}
        for n in self._read_handlers:
            names[n] = "r"
        for n in self._write_handlers:
            names[n] = names.get(n, "") + "w"
        return names

    def read(self, handler):
        try:
            f = self._read_handlers[handler][0]
        except KeyError:
            raise HandlerError("no read handler %s.%s" % (self.name, handler)) from None
        return f(self)

    def write(self, handler, value=""):
        try:
            f = self._write_handlers[handler][0]
        except KeyError:
            raise HandlerError("no write handler %s.%s" % (self.name, handler)) from None
        try:
            return f(self, value)
        except ValueError as e:
            raise HandlerError("%s.%s: %s" % (self.name, handler, e)) from None

    @read_handler("class", "the element's class name")
    def _h_class(self):
        return self.__class__.__name__

    @read_handler("name", "the element's name")
    def _h_name(self):
        return self.name

    @read_handler("config", "the configuration string")
    def _h_config(self):
        return self.config

    @read_handler("ports", "connected input and output port counts")
    def _h_ports(self):
        return "%d inputs\n%d outputs" % (self.ninputs, self.noutputs)

    @read_handler("handlers", "this element's handlers, one per line, with r/w flags")
    def _h_handlers(self):
        return "\n".join("%s\t%s" % (n, f) for n, f in sorted(self.handlers().items()))

    # -- state --------------------------------------------------------------------------
    @property
    def stateful(self):
        return self.STATE_VERSION is not None

    def export_state(self):
        """The element's state as JSON-serialisable data at ``STATE_VERSION``."""
        raise NotImplementedError("%s keeps no state" % self.__class__.__name__)

    def import_state(self, data, version):
        """Load state exported at ``version``, migrating it forward if it is older."""
        raise NotImplementedError("%s keeps no state" % self.__class__.__name__)

    @classmethod
    def migrate_state(cls, data, version):
        """Lift exported data from ``version`` to ``STATE_VERSION`` through MIGRATIONS."""
        if version == cls.STATE_VERSION:
            return data
        if version is None or cls.STATE_VERSION is None or version > cls.STATE_VERSION:
            raise ValueError("%s cannot load state version %s (it keeps version %s)"
                             % (cls.__name__, version, cls.STATE_VERSION))
        while version < cls.STATE_VERSION:
            step = cls.MIGRATIONS.get(version)
            if step is None:
                raise ValueError("%s has no migration from state version %d"
                                 % (cls.__name__, version))
            data = step(data)
            version += 1
        return data

    def take_state(self, old):
        """Click's hot-swap hook: adopt what is worth keeping from ``old``."""

    def adopt_state(self, old):
        """The in-place upgrade's hand-over: take over all of ``old``'s state, as the
        element it replaces (same name, possibly a newer class).  The default copies
        through export_state()/import_state() -- O(table size), migrating if ``old``
        keeps an older state version; stateful elements override it to move their
        tables by reference when the versions match, so the swap's pause does not
        grow with the table.  Returns the number of entries carried."""
        data = old.export_state()
        self.import_state(data, old.STATE_VERSION)
        return state_entries(data)

    # -- journal of state changes (for the persistent store) ----------------------------
    def journal(self, kind, key, value=None):
        """Record a state change -- ``kind`` is "created", "updated" or "removed",
        ``key`` identifies the entry (JSON-serialisable), ``value`` is the entry as
        export_state() would give it.  Costs one attribute test when no store is
        attached; call it on the slow path (entry creation, expiry), not per packet."""
        j = self._journal
        if j is not None:
            j.append((kind, key, value))

    @classmethod
    def migrate_events(cls, events, version):
        """Lift journaled events recorded at state ``version`` to STATE_VERSION (an
        in-place upgrade replays the changes made since its pre-copy).  Elements
        whose state has several versions override this."""
        if version == cls.STATE_VERSION or not events:
            return list(events)
        raise ValueError("%s cannot migrate journal events from state version %s"
                         % (cls.__name__, version))

    def replay_events(self, events):
        """Apply journaled ``(kind, key, value)`` events, in order, on top of the state
        just imported: the recovery bootstrap's second half."""
        raise NotImplementedError("%s does not replay journal events" % self.__class__.__name__)

    # -- documentation --------------------------------------------------------------------
    @classmethod
    def signature(cls):
        doc = inspect.getdoc(cls) or ""
        first = doc.splitlines()[0].strip() if doc else ""
        return first or "%s()" % cls.__name__

    @classmethod
    def summary(cls):
        doc = inspect.getdoc(cls) or ""
        lines = doc.splitlines()[1:]
        return "\n".join(lines).strip()

    @classmethod
    def doc(cls):
        """The element's documentation in the fixed form: signature, summary,
        ports, keywords, handlers."""
        out = [cls.signature(), "", cls.summary(), "", "Ports: %s" % cls.PORTS]
        if cls.STATE_VERSION is not None:
            out.append("State: version %d" % cls.STATE_VERSION)
        out += ["", "Keywords:"]
        if not cls.ARGS:
            out.append("  (none)")
        for a in cls.ARGS:
            dflt = "" if a.default in (None, REQUIRED) else " (default %s)" % (a.default,)
            req = " (required)" if a.default is REQUIRED else ""
            out.append("  %-12s %s%s%s" % (a.name, a.doc, dflt, req))
        out += ["", "Handlers:"]
        names = sorted(set(cls._read_handlers) | set(cls._write_handlers))
        for n in names:
            mode = ("r" if n in cls._read_handlers else "") + ("w" if n in cls._write_handlers
                                                               else "")
            d = (cls._read_handlers.get(n) or cls._write_handlers.get(n))[1]
            out.append("  %-12s (%s) %s" % (n, mode, d))
        return "\n".join(out)


def state_entries(data):
    """How many entries exported state holds: the length of its largest list or
    dict (a NAT's mappings, a firewall's sessions); 1 for scalar state."""
    if isinstance(data, dict):
        sizes = [len(v) for v in data.values() if isinstance(v, (list, dict))]
        return max(sizes) if sizes else 1
    return len(data) if isinstance(data, list) else 1


def lookup(name):
    """The element class called ``name``, loading the library module that defines
    it on first use (see nf.library); None if no module defines it."""
    if name not in ELEMENTS:
        from . import library
        mod = library.module_of(name)
        if mod is not None:
            library.load_module(mod)
    return ELEMENTS.get(name)

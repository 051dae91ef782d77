"""The flattened router graph that the parser produces and the router consumes.

Elements keep their declaration order (Click initializes in that order) and
their source location, so every later error can point at the file and line.
"""

from ..errors import Location

__all__ = ["ElementDecl", "Connection", "Graph"]


class ElementDecl:
    __slots__ = ("name", "cls", "config", "loc")

    def __init__(self, name, cls, config="", loc=None):
        self.name, self.cls, self.config = name, cls, config
        self.loc = loc or Location()

    def __eq__(self, other):
        return (isinstance(other, ElementDecl) and self.name == other.name
                and self.cls == other.cls and self.config == other.config)

    def __repr__(self):
        return "ElementDecl(%r, %r, %r)" % (self.name, self.cls, self.config)


class Connection:
    __slots__ = ("src", "sport", "dst", "dport", "loc")

    def __init__(self, src, sport, dst, dport, loc=None):
        self.src, self.sport, self.dst, self.dport = src, sport, dst, dport
        self.loc = loc or Location()

    def key(self):
        return (self.src, self.sport, self.dst, self.dport)

    def __eq__(self, other):
        return isinstance(other, Connection) and self.key() == other.key()

    def __hash__(self):
        return hash(self.key())

    def __repr__(self):
        return "Connection(%r, %d, %r, %d)" % self.key()


class Graph:
    """A flat graph: ``elements`` (name -> ElementDecl, in declaration order),
    ``connections`` (list of Connection), ``requirements`` (require(...) words)
    and ``defines`` (the $parameters in force, for provenance)."""

    def __init__(self, filename="<config>"):
        self.filename = filename
        self.elements = {}
        self.connections = []
        self.requirements = []
        self.defines = {}

    def add_element(self, decl):
        self.elements[decl.name] = decl
        return decl

    def __eq__(self, other):
        """Same elements (in order, with class and configuration), connections
        (in order) and requirements; file name, locations and defines are
        provenance, not structure."""
        return (isinstance(other, Graph)
                and list(self.elements.values()) == list(other.elements.values())
                and self.connections == other.connections
                and self.requirements == other.requirements)

    __hash__ = None

    def __repr__(self):
        return "Graph(%d elements, %d connections)" % (len(self.elements),
                                                       len(self.connections))

    def connect(self, src, sport, dst, dport, loc=None):
        c = Connection(src, sport, dst, dport, loc)
        if c not in self.connections:
            self.connections.append(c)
        return c

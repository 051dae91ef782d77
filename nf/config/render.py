"""Click text of a flat graph: ``require``, declarations, then connections.

The output parses back to an equal graph: names and classes are identifiers,
configuration strings are copied as they are (their parentheses are balanced
and their quotes closed, since they came out of the parser), and ports equal
to 0 are left out as Click's own tools do.
"""

__all__ = ["render"]


def render(graph):
    lines = []
    if graph.requirements:
        lines.append("require(%s);" % ", ".join(graph.requirements))
    for d in graph.elements.values():
        config = "(%s)" % d.config if d.config else ""
        lines.append("%s :: %s%s;" % (d.name, d.cls, config))
    if graph.connections:
        lines.append("")
    for c in graph.connections:
        sport = " [%d]" % c.sport if c.sport else ""
        dport = "[%d] " % c.dport if c.dport else ""
        lines.append("%s%s -> %s%s;" % (c.src, sport, dport, c.dst))
    return "\n".join(lines) + "\n" if lines else ""

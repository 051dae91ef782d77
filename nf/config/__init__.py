"""The Click configuration language: parse, flatten, check and render.

    graph = parse_string(text, "nat.click", defines={"dev": "eth1"})
    elements, errors = build_elements(graph, router)
    errors += check(graph, elements)
    print(render(graph))

:mod:`.lexer` makes tokens, :mod:`.parser` statements, :mod:`.flatten` the
flat :class:`Graph` (compounds expanded, ``$parameters`` substituted);
:mod:`.check` applies Click's class and port rules; :mod:`.render` writes
Click text back.  Every error is a :class:`nf.errors.ConfigError` whose
``str()`` starts with ``file:line:col``.
"""

import sys

from ..errors import ConfigError, ConfigErrors
from .check import build_elements, check, port_usage
from .flatten import parse_file, parse_string
from .graph import Connection, ElementDecl, Graph
from .render import render

__all__ = ["parse_string", "parse_file", "build_elements", "check", "port_usage", "render",
           "defines_dict",
           "check_main", "Graph", "ElementDecl", "Connection"]


def check_main(path, defines=None, classes=None):
    """``clickup nf check FILE [name=value ...]``: print the flattened graph and
    return 0, or print each error as 'file:line:col: message' on stderr and
    return 1.  ``defines`` is a dict or a list of 'name=value' strings."""
    try:
        defines = defines_dict(defines)
        graph = parse_file(path, defines)
        errors = check(graph, classes=classes)
    except ConfigErrors as e:
        errors = e.errors
    except ConfigError as e:
        errors = [e]
    if errors:
        for e in errors:
            print(e, file=sys.stderr)
        return 1
    sys.stdout.write(render(graph))
    return 0


def defines_dict(defines):
    if defines is None or isinstance(defines, dict):
        return defines
    out = {}
    for item in defines:
        name, eq, value = item.partition("=")
        if not eq or not name:
            raise ConfigError("expected name=value for a parameter, got %r" % item)
        out[name.lstrip("$")] = value
    return out

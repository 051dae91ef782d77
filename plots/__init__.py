"""Figures drawn from saved results, one script per figure, registered by name.

A figure script decorates its drawing function with ``@figure(NAME, x=..., y=...,
unit=...)``: NAME is the experiment whose run folders it draws, ``x``/``y`` the
results.csv columns that summary.json summarises (so the points can be
recomputed when summary.json is missing) and ``unit`` the unit of ``y``.  The
drawing function gets ``(ax, run)`` -- a matplotlib Axes and a loaded
:class:`plots.common.Run` -- and draws the data and the paper's reference
values; :func:`plots.common.render` adds title, legend and the provenance
footnote and writes PNG and PDF.

Importing this package (or the figure scripts) does not import matplotlib, so
``clickup`` works without it; only drawing needs it.
"""

import importlib
from collections import namedtuple

FigureSpec = namedtuple("FigureSpec", "name draw x y unit title aliases")

FIGURES = {}

# The figure scripts, imported on first use so that their decorators run.
FIGURE_MODULES = ("transfer_point", "transfer_delay", "integration", "firewall_wget", "issu")


def figure(name, x, y, unit, title, aliases=()):
    """Register ``draw(ax, run)`` as the figure of experiment NAME.

    ``aliases`` are other folder names that hold the same data (for example
    ``bench-integration``, where ``clickup bench integration`` writes)."""
    def deco(draw):
        FIGURES[name] = FigureSpec(name, draw, x, y, unit, title, tuple(aliases))
        return draw
    return deco


def figures():
    """All registered figures by name, importing the figure scripts once."""
    for mod in FIGURE_MODULES:
        importlib.import_module("plots." + mod)
    return FIGURES


def lookup(name):
    """The figure for an experiment name or alias, or None."""
    for spec in figures().values():
        if name == spec.name or name in spec.aliases:
            return spec
    return None

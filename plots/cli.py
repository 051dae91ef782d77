"""``clickup plot RESULTS_DIR [--out DIR] [--experiment NAME]``.

Draws the figure of one run folder from its saved files only (no root, no
network): the experiment is found from summary.json, provenance.json,
results.csv or the folder's name, and PNG and PDF are written beside the data
unless --out says elsewhere.  ``plot_dir`` is the same for callers in Python
(``clickup run`` plots each run when it ends).
"""

import sys

import plots
from plots.common import PlotError, load, render


def plot_dir(path, out=None, experiment=None):
    """Plot the run folder ``path``; returns the paths of the files written."""
    return render(load(path, experiment), out)


def add_parser(sub):
    p = sub.add_parser("plot", help="draw a run's figure (PNG and PDF) from its saved data",
                       description="Draw the figure of a run folder written by `clickup run` "
                       "(results/<name>/<timestamp>/, or results/<name>/ for its latest run) "
                       "from its saved data only; needs no root.")
    p.add_argument("results_dir", metavar="RESULTS_DIR", help="the run folder")
    p.add_argument("--out", metavar="DIR", help="where to write the PNG and PDF "
                   "(default: the run folder)")
    p.add_argument("--experiment", choices=sorted(plots.figures()),
                   help="the figure to draw, when the folder does not say")
    p.set_defaults(func=cmd_plot)


def cmd_plot(args):
    try:
        for path in plot_dir(args.results_dir, args.out, args.experiment):
            print("plot: %s" % path)
    except PlotError as e:
        print("clickup plot: %s" % e, file=sys.stderr)
        return 1
    return 0

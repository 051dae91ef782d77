"""Loading a run folder, the shared look of the figures, and writing them.

A run folder (docs/results.md) holds ``results.csv`` (one row per trial),
``summary.json`` (median, min and max per strategy and x) and
``provenance.json``.  :func:`load` reads all three into a :class:`Run`; the
points come from summary.json when it has them, else they are recomputed from
results.csv, and a summary that disagrees with results.csv (a wrong unit, a
stale file) loses to results.csv, the tidy source, with a warning.

Every figure shares: one colour and marker per strategy, the median drawn as a
line with min-max error bars, the paper's published values (DESIGN.md section
3, kept in :data:`PAPER`) as star markers or hatched bands labelled
"paper (CLICK-UP, 2020): ...", and a footnote naming the run's commit, date
and host.  matplotlib is imported only when drawing, with the Agg backend, so
plotting needs no display and no root.
"""

import csv
import json
import math
import os
import statistics
import sys
import textwrap

import plots
from experiments.results import resolve_run

PAPER_LABEL = "paper (CLICK-UP, 2020)"

# The paper's published values (../shared/DESIGN.md section 3 and section 1),
# in the paper's unit, seconds.  Paper "CLICK-UP" is modelled by our
# clickup-restart strategy, so it is drawn in that strategy's colour.
PAPER = {
    "transfer": {"none_s": 43.218, "native_at_40pct_s": 63.599, "clickup_band_s": (41.0, 42.5)},
    "delay": {"native": ((1, 68.810), (5, 77.837), (12, 87.5)),
              "clickup-restart": ((5, 46.3), (12, 51.3))},
    "integration": {"native": ((1, 3.806), (5, 4.118), (10, 5.652), (45, 14.459), (50, 16.595)),
                    "clickup-restart": ((1, 0.661), (5, 1.487), (10, 2.556), (45, 10.663),
                                        (50, 11.619))},
    "wget": {"none": (33.0, 51.0), "native": (89.0, 155.0), "clickup-restart": (28.5, 48.5)},
}

# Strategy order, legend names, colours (colour-blind safe Okabe-Ito) and markers,
# the same in every figure.
STRATEGIES = {
    "none": ("no upgrade", "#555555", "o"),
    "native": ("native (restart, state lost)", "#D55E00", "s"),
    "hotswap": ("hotswap (Click hotconfig)", "#E69F00", "^"),
    "clickup-restart": ("clickup-restart (CLICK-UP as published)", "#0072B2", "D"),
    "clickup": ("clickup (ours, in place)", "#009E73", "o"),
    "switchover": ("switchover (redundant pair)", "#CC79A7", "v"),
}
OTHER_STYLE = ("#000000", "x")

OK_OUTCOMES = ("", "ok", "done")     # rows without an outcome column count as ok
UNIT_SCALE = {"s": 1.0, "ms": 1e-3}  # seconds per unit
LOG_RATIO = 20.0                     # a data span wider than this is drawn on a log axis
LEGEND_WIDTH = 46                    # characters per legend line (the legend sits beside)


class PlotError(Exception):
    """A run folder that cannot be plotted; the message says what was expected."""


class Run:
    """One loaded run folder: rows, points, provenance and the figure that draws it."""

    def __init__(self, path, spec, rows, points, summary, provenance):
        self.dir, self.spec, self.rows, self.points = path, spec, rows, points
        self.summary, self.provenance = summary, provenance
        self.params = summary.get("params") or {}
        # A figure that is no median-of-trials series (issu's timelines) sets the title's
        # second line here while drawing, before render() writes the title.
        self.subtitle = None

    @property
    def experiment(self):
        return self.spec.name

    def strategies(self):
        """Strategies present in the data, in the fixed order (unknown ones last)."""
        present = {r.get("strategy", "") for r in self.rows}
        order = [s for s in STRATEGIES if s in present]
        return order + sorted(present - set(order))

    def ok_rows(self, strategy=None):
        return [r for r in self.rows if row_ok(r) and
                (strategy is None or r.get("strategy") == strategy)]

    def failed(self, strategy):
        return sum(1 for r in self.rows if r.get("strategy") == strategy and not row_ok(r))

    def trials(self):
        """Most trials behind any point (for the 'median of N' note)."""
        return max((p["n"] for p in self.points), default=0)


def row_ok(row):
    return (row.get("outcome") or "").strip().lower() in OK_OUTCOMES


# ---------------------------------------------------------------- loading

def _read_json(path):
    if not os.path.exists(path):
        return {}
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        raise PlotError("%s is not readable JSON: %s" % (path, e))
    return data if isinstance(data, dict) else {}


def _read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def resolve_dir(path):
    """The run folder to plot: PATH itself, or its ``latest`` run when PATH is an
    experiment's folder (results/<name>/)."""
    path = os.path.abspath(path)
    if not os.path.isdir(path):
        raise PlotError("%s: no such folder (expected a run folder such as "
                        "results/<name>/<timestamp>/)" % path)
    run = resolve_run(path, "results.csv")
    if run is None:
        raise PlotError("no results.csv in %s: expected a run folder written by "
                        "`clickup run NAME` (results/<name>/<timestamp>/)" % path)
    return run


def detect_experiment(path, summary, provenance, rows):
    """The experiment's name: summary.json, then provenance.json's arguments, then
    results.csv's experiment column, then the folder names (results/<name>/<stamp>)."""
    args = provenance.get("args") or {}
    real = os.path.realpath(path)
    candidates = [summary.get("experiment"), args.get("name"), args.get("experiment"),
                  args.get("bench"), rows[0].get("experiment") if rows else None,
                  os.path.basename(os.path.dirname(real)), os.path.basename(real)]
    for name in candidates:
        if name and plots.lookup(str(name)):
            return plots.lookup(str(name))
    raise PlotError("cannot tell which experiment %s holds: summary.json has no "
                    "'experiment', provenance.json's args name none, and the folder is not "
                    "under results/<name>/; known: %s (give --experiment)"
                    % (path, ", ".join(sorted(plots.figures()))))


def summarise(rows, x, y):
    """Median, min and max of column ``y`` per (strategy, x) over the successful rows."""
    groups = {}
    for r in rows:
        if not row_ok(r) or r.get(y) in (None, ""):
            continue
        try:
            groups.setdefault((r["strategy"], float(r[x])), []).append(float(r[y]))
        except ValueError:
            raise PlotError("results.csv row %r: %s and %s must be numbers" % (r, x, y))
    return [{"strategy": s, "x": xv, "median": statistics.median(v), "min": min(v),
             "max": max(v), "n": len(v)} for (s, xv), v in sorted(groups.items())]


def _summary_points(summary, unit):
    """summary.json's points converted to the figure's unit, or None if it has none."""
    points = summary.get("points")
    if not isinstance(points, list) or not points:
        return None
    out = []
    for p in points:
        try:
            scale = UNIT_SCALE[p.get("unit") or unit] / UNIT_SCALE[unit]
            out.append({"strategy": p["strategy"], "x": float(p["x"]),
                        "median": p["median"] * scale, "min": p["min"] * scale,
                        "max": p["max"] * scale, "n": int(p.get("n", 0))})
        except (KeyError, TypeError, ValueError):
            return None                      # not the documented format: recompute
    return sorted(out, key=lambda p: (p["strategy"], p["x"]))


def _same_points(a, b):
    key = lambda p: (p["strategy"], p["x"])      # noqa: E731
    if sorted(map(key, a)) != sorted(map(key, b)):
        return False
    bb = {key(p): p for p in b}
    return all(math.isclose(p[f], bb[key(p)][f], rel_tol=1e-3, abs_tol=1e-6)
               for p in a for f in ("median", "min", "max"))


def load(path, experiment=None):
    """Read a run folder into a :class:`Run`; raise PlotError saying what is wrong."""
    path = resolve_dir(path)
    rows = _read_csv(os.path.join(path, "results.csv"))
    summary = _read_json(os.path.join(path, "summary.json"))
    provenance = _read_json(os.path.join(path, "provenance.json"))
    if experiment:
        spec = plots.lookup(experiment)
        if spec is None:
            raise PlotError("unknown experiment %r; known: %s"
                            % (experiment, ", ".join(sorted(plots.figures()))))
    else:
        spec = detect_experiment(path, summary, provenance, rows)
    if not rows:
        raise PlotError("%s/results.csv has no rows: the run measured nothing" % path)
    missing = [c for c in ("strategy", spec.x, spec.y) if c not in rows[0]]
    if missing:
        raise PlotError("%s/results.csv lacks column(s) %s that the %s figure needs "
                        "(see docs/results.md)" % (path, ", ".join(missing), spec.name))
    computed = summarise(rows, spec.x, spec.y)
    if not computed:
        raise PlotError("%s/results.csv has no successful rows to plot" % path)
    points = _summary_points(summary, spec.unit)
    if points is not None and not _same_points(points, computed):
        print("clickup plot: %s/summary.json disagrees with results.csv (unit or stale "
              "file?); plotting from results.csv" % path, file=sys.stderr)
        points = None
    return Run(path, spec, rows, points or computed, summary, provenance)


# ---------------------------------------------------------------- text

def strategy_style(strategy):
    """(legend name, colour, marker) of a strategy, the same in every figure."""
    if strategy in STRATEGIES:
        return STRATEGIES[strategy]
    return (strategy,) + OTHER_STYLE


def footnote(run):
    """The provenance line under every figure: commit, date, host, arguments."""
    prov = run.provenance
    commit = prov.get("git_commit") or "unknown commit"
    if prov.get("git_dirty"):
        commit += " (uncommitted changes)"
    args = prov.get("args") or {}
    bits = ["run %s" % os.path.basename(run.dir), "commit %s" % commit,
            "started %s" % (prov.get("started") or "at an unknown date")]
    if prov.get("host"):
        bits.append("host %s" % prov["host"])
    if prov.get("clickup_version"):
        bits.append("clickup %s" % prov["clickup_version"])
    if args.get("quick"):
        bits.append("--quick")
    return " | ".join(bits)


def size_text(nbytes):
    """A file size as the paper gives it: Gbit for the big transfer, MB for wget's files."""
    if nbytes * 8 >= 1e9:
        return "%.3g Gbit" % (nbytes * 8 / 1e9)
    return "%.3g MB" % (nbytes / 1e6)


def title(run):
    """The figure's title, with the run's scale when the run recorded it."""
    if run.subtitle:
        return "%s\n%s" % (run.spec.title, run.subtitle)
    p, extra = run.params, []
    if p.get("file_bytes"):
        size = size_text(float(p["file_bytes"]))
        extra.append("%d files of %s" % (int(p["files"]), size) if p.get("files")
                     else "file %s" % size)
    if p.get("link_mbit"):
        extra.append("link %.3g Mbit/s" % float(p["link_mbit"]))
    n = run.trials()
    extra.append("median of %d trial%s, bars min-max" % (n, "" if n == 1 else "s"))
    return "%s\n%s" % (run.spec.title, ", ".join(extra))


# ---------------------------------------------------------------- drawing helpers

def legend_name(run, strategy):
    """A strategy's legend entry, saying how many of its trials failed, if any."""
    name = strategy_style(strategy)[0]
    failed = run.failed(strategy)
    return name + (" [%d failed]" % failed if failed else "")


def median_bars(ax, run, strategy, pos, med, lo, hi, horizontal=False):
    """One strategy's medians joined by a line, with min-max error bars; the
    medians run along y, or along x when ``horizontal`` (a distribution)."""
    _, colour, marker = strategy_style(strategy)
    err = [[m - a for m, a in zip(med, lo)], [b - m for m, b in zip(med, hi)]]
    xy = (med, pos) if horizontal else (pos, med)
    ax.errorbar(*xy, **{"xerr" if horizontal else "yerr": err}, color=colour, marker=marker,
                markersize=4 if horizontal else 5, capsize=0 if horizontal else 3,
                elinewidth=0.8, linewidth=1.5, label=legend_name(run, strategy), zorder=3)


def plot_series(ax, run, dodge=0.012):
    """Draw each strategy's median line with min-max error bars from ``run.points``.

    Strategies are nudged apart on x by ``dodge`` of the x range so that their
    bars do not hide each other.  A strategy measured at a single x while the
    others span several (no upgrade, measured once) is also drawn as a dashed
    baseline across the figure."""
    xs = sorted({p["x"] for p in run.points})
    span = (xs[-1] - xs[0]) or 1.0
    present = [s for s in run.strategies() if any(p["strategy"] == s for p in run.points)]
    for i, s in enumerate(present):
        pts = sorted((p for p in run.points if p["strategy"] == s), key=lambda p: p["x"])
        shift = (i - (len(present) - 1) / 2) * dodge * span
        median_bars(ax, run, s, [p["x"] + shift for p in pts], [p["median"] for p in pts],
                    [p["min"] for p in pts], [p["max"] for p in pts])
        if len(pts) == 1 and len(xs) > 1:
            ax.axhline(pts[0]["median"], color=strategy_style(s)[1], linestyle="--",
                       linewidth=1, zorder=2)


def paper_points(ax, strategy, points, what, unit_scale=1.0):
    """The paper's values for ``strategy`` as star markers (joined by a dotted line
    when there are several), labelled as the paper's."""
    _, colour, _ = strategy_style(strategy)
    xs = [x for x, _ in points]
    ys = [y * unit_scale for _, y in points]
    ax.plot(xs, ys, linestyle=":" if len(points) > 1 else "none", color=colour, linewidth=1,
            marker="*", markersize=13, markerfacecolor=colour, markeredgecolor="black",
            markeredgewidth=0.8, label="%s: %s" % (PAPER_LABEL, what), zorder=4)


def paper_band(ax, strategy, lo, hi, what, axis="y"):
    """A published range as a hatched band across the figure, labelled as the paper's."""
    _, colour, _ = strategy_style(strategy)
    span = ax.axhspan if axis == "y" else ax.axvspan
    span(lo, hi, facecolor=colour, alpha=0.15, hatch="//", edgecolor=colour, linewidth=0,
         label="%s: %s" % (PAPER_LABEL, what), zorder=1)


def paper_level(ax, strategy, y, what):
    """A single published value that holds at every x, as a dotted level line."""
    _, colour, _ = strategy_style(strategy)
    ax.axhline(y, color=colour, linestyle=(0, (1, 1.5)), linewidth=1.6,
               label="%s: %s" % (PAPER_LABEL, what), zorder=2)


def log_if_wide(ax, values, axis="y"):
    """Use a log axis when the values (ours and the paper's) span more than
    LOG_RATIO, e.g. a --quick run in seconds beside the paper's minute scale.
    Returns True when the axis became logarithmic."""
    positive = [v for v in values if v and v > 0]
    if not positive or max(positive) / min(positive) <= LOG_RATIO:
        return False
    (ax.set_yscale if axis == "y" else ax.set_xscale)("log")
    return True


def series_values(run):
    """Every drawn value of the run (for the axis-scale choice)."""
    return [v for p in run.points for v in (p["min"], p["max"])]


# ---------------------------------------------------------------- writing

def pyplot():
    """matplotlib.pyplot with the Agg backend, or a PlotError saying how to get it."""
    try:
        import matplotlib
    except ImportError:
        raise PlotError("matplotlib is missing: install Debian's python3-matplotlib "
                        "(apt-get install python3-matplotlib) and use a venv made with "
                        "--system-site-packages")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def render(run, out_dir=None):
    """Draw ``run``'s figure and write <experiment>.png and .pdf into ``out_dir``
    (default: the run folder).  Returns the paths written."""
    plt = pyplot()
    out_dir = out_dir or run.dir
    os.makedirs(out_dir, exist_ok=True)
    fig, ax = plt.subplots(figsize=(9, 5.2))
    try:
        run.spec.draw(ax, run)
        ax.set_title(title(run), fontsize=10)
        ax.grid(True, which="major", alpha=0.3)
        handles, labels = ax.get_legend_handles_labels()
        ax.legend(handles, [textwrap.fill(t, LEGEND_WIDTH, subsequent_indent="  ")
                            for t in labels], loc="upper left", bbox_to_anchor=(1.01, 1.0),
                  fontsize=7.5, frameon=False)
        fig.text(0.01, 0.005, footnote(run), fontsize=6.5, color="#444444", ha="left",
                 va="bottom")
        fig.tight_layout(rect=(0, 0.03, 1, 1))
        paths = []
        for ext in ("png", "pdf"):
            path = os.path.join(out_dir, "%s.%s" % (run.experiment, ext))
            fig.savefig(path, dpi=150, bbox_inches="tight")
            paths.append(path)
        return paths
    finally:
        plt.close(fig)

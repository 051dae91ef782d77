"""``clickup run NAME``: experiments registered by name, one driver per figure.

A driver is a function ``fn(ctx)`` registered with :func:`experiment`; it
measures trials and hands each row to ``ctx.row(...)``, which appends it to the
run folder's ``results.csv`` at once (a crash keeps what was measured).  When
the driver returns, ``summary.json`` (median, min, max per point) is computed
from those rows; the plot for the figure is then made from the saved files
only.  Progress goes to stderr.
"""

import csv
import json
import os
import statistics
import sys
import time

from experiments.results import provenance, run_dir, save_json

EXPERIMENTS = {}


def experiment(name, columns, x, y, help="", unit="s"):
    """Register ``fn(ctx)`` as ``clickup run NAME``; ``columns`` are results.csv's,
    ``x``/``y`` the columns summary.json groups by and summarises (in ``unit``)."""
    def deco(fn):
        EXPERIMENTS[name] = {"fn": fn, "columns": columns, "x": x, "y": y, "help": help,
                             "unit": unit}
        return fn
    return deco


class Context:
    """What a driver gets: its arguments, its folder, and row/progress helpers."""

    def __init__(self, name, args, out):
        self.name, self.args, self.dir = name, args, out
        self.spec = EXPERIMENTS[name]
        self.raw = os.path.join(out, "raw")
        os.makedirs(self.raw, exist_ok=True)
        self._csv = open(os.path.join(out, "results.csv"), "w", newline="")
        self._w = csv.DictWriter(self._csv, fieldnames=self.spec["columns"])
        self._w.writeheader()
        self.rows = []
        self.t0 = time.time()

    def row(self, **values):
        values.setdefault("experiment", self.name)
        self._w.writerow({k: values.get(k) for k in self.spec["columns"]})
        self._csv.flush()
        self.rows.append(values)

    def progress(self, done, total, what):
        el = time.time() - self.t0
        eta = el / done * (total - done) if done else 0
        print("[%d/%d] %s (elapsed %.0f s%s)" % (done, total, what, el,
                                                 ", ~%.0f s left" % eta if done else ""),
              file=sys.stderr, flush=True)

    def close(self):
        self._csv.close()


def summarise(rows, x, y, unit="s"):
    """Median, min and max of ``y`` per (strategy, x), over successful rows."""
    groups = {}
    for r in rows:
        if r.get("outcome", "ok") != "ok" or r.get(y) in (None, ""):
            continue
        groups.setdefault((r["strategy"], float(r[x])), []).append(float(r[y]))
    return [{"strategy": s, "x": xv, "median": statistics.median(v), "min": min(v),
             "max": max(v), "n": len(v), "unit": unit}
            for (s, xv), v in sorted(groups.items())]


def add_parser(sub):
    from experiments import firewall_wget, integration, transfer  # noqa: F401  (register)
    p = sub.add_parser("run", help="run an experiment and save its data (and plot)")
    p.add_argument("name", choices=sorted(EXPERIMENTS))
    p.add_argument("--quick", action="store_true", help="a short version, for CI and demos")
    p.add_argument("--trials", type=int, help="trials per point (default 3; --quick: 1)")
    p.add_argument("--strategies", help="comma-separated subset of the strategies")
    p.add_argument("--out", help="results base directory (default results/)")
    p.add_argument("--no-plot", action="store_true", help="save the data only")
    p.set_defaults(func=cmd_run)


def cmd_run(args):
    if os.geteuid() != 0 and EXPERIMENTS[args.name].get("root", True):
        print("clickup run: needs root (Mininet)", file=sys.stderr)
        return 1
    if args.trials is None:
        args.trials = 1 if args.quick else 3
    if args.trials < 1:
        print("clickup run: --trials must be at least 1", file=sys.stderr)
        return 2
    spec = EXPERIMENTS[args.name]
    out = run_dir(args.name, args.out)
    save_json(os.path.join(out, "provenance.json"), provenance(args))
    ctx = Context(args.name, args, out)
    status = 0
    try:
        spec["fn"](ctx)
    except KeyboardInterrupt:
        print("clickup run: interrupted; the network was torn down, partial data kept in %s"
              % out, file=sys.stderr)
        status = 130
    finally:
        ctx.close()
        save_json(os.path.join(out, "summary.json"),
                  {"experiment": args.name, "params": getattr(ctx, "params", {}),
                   "points": summarise(ctx.rows, spec["x"], spec["y"], spec["unit"])})
    print("data: %s" % out)
    if status == 0 and not args.no_plot:
        try:
            from plots.cli import plot_dir
            for f in plot_dir(out):
                print("plot: %s" % f)
        except Exception as e:          # the data stays; plotting can be redone
            print("clickup run: plotting failed (%s); run `clickup plot %s`" % (e, out),
                  file=sys.stderr)
    return status


def print_table(ctx, points, xlabel):
    strategies = sorted({p["strategy"] for p in points})
    xs = sorted({p["x"] for p in points})
    by = {(p["strategy"], p["x"]): p for p in points}
    print("%-10s" % xlabel + "".join("%22s" % s for s in strategies))
    for x in xs:
        cells = []
        for s in strategies:
            p = by.get((s, x))
            cells.append("%22s" % ("%.2f (%.2f-%.2f)" % (p["median"], p["min"], p["max"])
                                   if p else "-"))
        print("%-10g" % x + "".join(cells))


def load_json_lines(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]

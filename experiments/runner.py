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


def experiment(name, columns, x, y, help="", unit="s", trials=3, options=(), finish=None):
    """Register ``fn(ctx)`` as ``clickup run NAME``; ``columns`` are results.csv's,
    ``x``/``y`` the columns summary.json groups by and summarises (in ``unit``).

    ``trials``: the default number of trials (--quick: 1).  ``options``: extra command-line
    options of this experiment only, as (flag, argparse keywords) pairs.  ``finish``:
    "module:function" called with the run folder after the driver (also after Ctrl-C), to
    write what it computes from the saved files (a report)."""
    def deco(fn):
        EXPERIMENTS[name] = {"fn": fn, "columns": columns, "x": x, "y": y, "help": help,
                             "unit": unit, "trials": trials, "options": tuple(options),
                             "finish": finish}
        return fn
    return deco


class Context:
    """What a driver gets: its arguments, its folder, and row/progress helpers.

    With ``resume``, the folder's results.csv keeps its rows and new ones are appended;
    ``done(**key)`` tells a driver which trials it already has."""

    def __init__(self, name, args, out, resume=False):
        self.name, self.args, self.dir = name, args, out
        self.spec = EXPERIMENTS[name]
        self.raw = os.path.join(out, "raw")
        os.makedirs(self.raw, exist_ok=True)
        path = os.path.join(out, "results.csv")
        self.rows = []
        if resume and os.path.exists(path):
            with open(path, newline="") as f:
                self.rows = list(csv.DictReader(f))
        self._csv = open(path, "a" if self.rows else "w", newline="")
        self._w = csv.DictWriter(self._csv, fieldnames=self.spec["columns"])
        if not self.rows:
            self._w.writeheader()
        self.t0 = time.time()
        self.skipped = 0

    def choose(self, text, known, default, what="strategies"):
        """The names in ``text`` (an option's comma-separated value), else ``default``;
        SystemExit naming the unknown ones and the known."""
        chosen = [x for x in (text or "").split(",") if x] or list(default)
        bad = [x for x in chosen if x not in known]
        if bad:
            raise SystemExit("clickup run %s: unknown %s %s (known: %s)"
                             % (self.name, what, ", ".join(bad), ", ".join(known)))
        return chosen

    def done(self, **key):
        """True if a successful row with these column values is already there (resume)."""
        want = {k: _number(v) for k, v in key.items()}
        found = any(succeeded(r) and all(_number(r.get(k)) == v for k, v in want.items())
                    for r in self.rows)
        self.skipped += found               # the ETA counts only what this run measures
        return found

    def row(self, **values):
        values.setdefault("experiment", self.name)
        self._w.writerow({k: values.get(k) for k in self.spec["columns"]})
        self._csv.flush()
        self.rows.append(values)

    def progress(self, done, total, what):
        el = time.time() - self.t0
        measured = done - self.skipped
        eta = el / measured * (total - done) if measured > 0 else 0
        print("[%d/%d] %s (elapsed %.0f s%s)" % (done, total, what, el,
                                                 ", ~%.0f s left" % eta if measured > 0
                                                 else ""),
              file=sys.stderr, flush=True)

    def close(self):
        self._csv.close()


def succeeded(row):
    """A row that measured what it meant to: outcome "ok" (or none), or the outcome its
    scenario expected (an abort, a rollback)."""
    return row.get("outcome", "ok") in ("ok", row.get("expected_outcome"))


def summarise(rows, x, y, unit="s"):
    """Median, min and max of ``y`` per (strategy, x), over successful rows (an outcome of
    "ok", or the row's expected_outcome).  A numeric x is kept as a number."""
    groups = {}
    for r in rows:
        if not succeeded(r) or r.get(y) in (None, ""):
            continue
        groups.setdefault((r["strategy"], _number(r[x])), []).append(float(r[y]))
    return [{"strategy": s, "x": xv, "median": statistics.median(v), "min": min(v),
             "max": max(v), "n": len(v), "unit": unit}
            for (s, xv), v in sorted(groups.items())]


def _number(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return v


def add_parser(sub):
    from experiments import firewall_wget, integration, issu, transfer  # noqa: F401
    p = sub.add_parser("run", help="run an experiment and save its data (and plot)")
    p.add_argument("name", choices=sorted(EXPERIMENTS))
    p.add_argument("--quick", action="store_true", help="a short version, for CI and demos")
    p.add_argument("--trials", type=int, help="trials per point (default 3, issu 5; --quick: 1)")
    p.add_argument("--strategies", help="comma-separated subset of the strategies")
    p.add_argument("--out", help="results base directory (default results/)")
    p.add_argument("--no-plot", action="store_true", help="save the data only")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue this run folder: keep its "
                   "rows and measure only the trials it lacks (same experiment, same --quick; "
                   "--trials may grow)")
    for name, spec in sorted(EXPERIMENTS.items()):
        for flag, kw in spec["options"]:
            p.add_argument(flag, default=None, **dict(kw, help="(%s only) %s"
                                                      % (name, kw.get("help", ""))))
    p.set_defaults(func=cmd_run)


def _foreign_options(args):
    """Options given that belong to another experiment than args.name."""
    own = {flag for flag, _ in EXPERIMENTS[args.name]["options"]}
    return sorted(flag for spec in EXPERIMENTS.values() for flag, _ in spec["options"]
                  if flag not in own and getattr(args, flag.lstrip("-").replace("-", "_"),
                                                 None) is not None)


def cmd_run(args):
    spec = EXPERIMENTS[args.name]
    foreign = _foreign_options(args)
    if foreign:
        print("clickup run: %s not an option of %s" % (", ".join(foreign) + (" is" if len(
            foreign) == 1 else " are"), args.name), file=sys.stderr)
        return 2
    if os.geteuid() != 0 and spec.get("root", True):
        print("clickup run: needs root (Mininet)", file=sys.stderr)
        return 1
    if args.trials is None:
        args.trials = 1 if args.quick else spec["trials"]
    if args.trials < 1:
        print("clickup run: --trials must be at least 1", file=sys.stderr)
        return 2
    if args.resume:
        out, problem = _resumable(args)
        if problem:
            print("clickup run: --resume %s: %s" % (args.resume, problem), file=sys.stderr)
            return 2
    else:
        out = run_dir(args.name, args.out)
        save_json(os.path.join(out, "provenance.json"), provenance(args))
    ctx = Context(args.name, args, out, resume=bool(args.resume))
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
        if spec["finish"]:
            _finish(spec["finish"], out)
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


def _resumable(args):
    """(folder, None) if args.resume is a run of this experiment made with the same --quick
    (its provenance then lists this continuation), else (None, what is wrong)."""
    out = os.path.realpath(args.resume)
    path = os.path.join(out, "provenance.json")
    try:
        with open(path) as f:
            prov = json.load(f)
    except (OSError, ValueError) as e:
        return None, "not a run folder (no readable provenance.json: %s)" % e
    first = prov.get("args", {})
    if first.get("name") != args.name:
        return None, "it is a run of %r, not of %r" % (first.get("name"), args.name)
    if bool(first.get("quick")) != bool(args.quick):
        return None, "it was run %s --quick; resume it the same way" % (
            "with" if first.get("quick") else "without")
    prov.setdefault("resumed", []).append(provenance(args))
    save_json(path, prov)
    return out, None


def _finish(target, out):
    """Run the experiment's "module:function" on the run folder; report, never raise."""
    import importlib
    mod, _, fn = target.partition(":")
    try:
        written = getattr(importlib.import_module(mod), fn)(out)
        for path in written or ():
            print("report: %s" % path)
    except Exception as e:               # the data stays; the report can be redone
        print("clickup run: writing the report failed (%s: %s); run `python -m %s %s`"
              % (type(e).__name__, e, mod, out), file=sys.stderr)


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

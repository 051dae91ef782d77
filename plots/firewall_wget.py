"""Per-file completion times of parallel wget downloads (50 in the paper)
through the stateful firewall while an upgrade inserts a Log element.

Drawn as a sorted CDF: x is a file's completion time in seconds, y the number
of files complete by then.  Each trial's times are sorted; at each rank the
median over the trials is drawn with min-max bars, so the curve is the typical
run and the bars its spread.  The paper's per-file ranges (no upgrade, native,
CLICK-UP) are hatched bands on the time axis.  Drawn from results.csv's rows:
summary.json's per-file medians do not give the distribution.
"""

import statistics

from plots import figure
from plots.common import PAPER, log_if_wide, median_bars, paper_band


def rank_spread(rows):
    """Completion times per rank over trials: [(rank, median, min, max)], rank 1
    being each trial's first finished file."""
    by_trial = {}
    for r in rows:
        by_trial.setdefault(r.get("trial", ""), []).append(float(r["completion_s"]))
    runs = [sorted(v) for v in by_trial.values()]
    out = []
    for k in range(max(map(len, runs), default=0)):
        vals = [t[k] for t in runs if len(t) > k]
        out.append((k + 1, statistics.median(vals), min(vals), max(vals)))
    return out


@figure("firewall-wget", x="file", y="completion_s", unit="s",
        title="Parallel wget downloads through the stateful firewall while an upgrade "
              "adds a Log element")
def draw(ax, run):
    ours = []
    for s in run.strategies():
        spread = rank_spread(r for r in run.ok_rows(s) if r.get("completion_s") not in (None, ""))
        if not spread:
            continue
        rank, med, lo, hi = zip(*spread)
        median_bars(ax, run, s, rank, med, lo, hi, horizontal=True)
        ours += lo + hi
    names = {"none": "no upgrade", "native": "native with upgrade",
             "clickup-restart": "CLICK-UP with upgrade"}
    for s, (lo, hi) in PAPER["wget"].items():
        paper_band(ax, s, lo, hi, "%s %g-%g s per file" % (names[s], lo, hi), axis="x")
    bands = [v for rng in PAPER["wget"].values() for v in rng]
    log = log_if_wide(ax, list(ours) + bands, axis="x")
    ax.set_xlabel("completion time per file (s%s)" % (", log scale" if log else ""))
    ax.set_ylabel("files completed (sorted by completion time)")

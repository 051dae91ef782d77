"""The receive rate around the upgrade (RFC 7654 ISSU): when, and for how long, frames were lost.

One panel per strategy (rows) and scenario (columns).  x is seconds from T0, the driver's
upgrade request, from 2 s before to 1 s after the latest upgrade end (at least 3 s); y is the
UDP probe streams' summed receive rate in kpps per timeline bin, from the receivers' timelines
in each trial folder (raw/<tag>/probe-<i>.json, summed by experiments.issu_report.rate_windows).
A panel's first trial is drawn solid, its other trials faintly.  The phases of the first
trial's phase record (upgrade.json) are marked: T1 (staging) and T2 (upgrade run) shaded,
T0 and the upgrade's end as vertical lines, and an injected delay is labelled as injected in
the panel.  The offered probe rate is a dotted level.  Drawn from raw/, not results.csv: the
timelines are not in the tidy table.
"""

import os

from experiments.issu_report import (SETTLE_S, groups, injected_text, probe_timelines,
                                     rate_windows, trial_metrics)
from plots import figure
from plots.common import PlotError, strategy_style

BEFORE_S, MIN_AFTER_S = 2.0, 3.0
T1_STYLE = {"facecolor": "#56B4E9", "alpha": 0.3, "linewidth": 0}
T2_STYLE = {"color": "#F0E442", "alpha": 0.8}
T0_STYLE = {"color": "black", "linewidth": 0.9}
END_STYLE = {"color": "black", "linewidth": 0.9, "linestyle": "--"}
OFFERED_STYLE = {"color": "#777777", "linewidth": 0.9, "linestyle": ":"}


def load_trials(run_dir):
    """{(strategy, scenario): [(metrics, timelines), ...]} of every trial folder under raw/."""
    raw = os.path.join(run_dir, "raw")
    tags = sorted(d for d in os.listdir(raw) if os.path.isdir(os.path.join(raw, d))) \
        if os.path.isdir(raw) else []
    if not tags:
        raise PlotError("no trial folders under %s: the issu figure draws the probes' "
                        "timelines from raw/<strategy>-<scenario>-t<trial>/" % raw)
    trials = [trial_metrics(os.path.join(raw, t)) for t in tags]
    return {k: [(m, probe_timelines(os.path.join(raw, m["detail"]["tag"]))) for m in ms]
            for k, ms in groups(trials).items()}


def rel(m, key):
    """A phase time of trial ``m`` in seconds from its T0, or None."""
    t0, t = m["detail"]["phases"].get("t_request_mono"), m["detail"]["phases"].get(key)
    return None if t0 is None or t is None else t - t0


def x_range(trials):
    ends = [rel(m, "t_end_mono") for ms in trials.values() for m, _ in ms]
    return -BEFORE_S, max([MIN_AFTER_S] + [e + SETTLE_S for e in ends if e is not None])


def receive_rate(timelines, t0, x0, x1):
    """(x, kpps) of the summed timelines from T0 + x0 to T0 + x1 at their widest bin."""
    step = max(width for _, width, _ in timelines)
    counts = rate_windows(timelines, t0 + x0, t0 + x1, step)
    xs = [x0 + j * step for j in range(len(counts))]
    return xs, [float("nan") if c is None else c / step / 1e3 for c in counts]


def mark_phases(ax, m):
    """T0, T1 and T2 spans and the upgrade's end of trial ``m`` (its phase record)."""
    ax.axvline(0.0, **T0_STYLE)
    start, stop, end = rel(m, "t_start_mono"), rel(m, "t_stop_mono"), rel(m, "t_end_mono")
    if start is not None and m["T1_ms"] is not None:
        ax.axvspan(start, start + m["T1_ms"] / 1e3, **T1_STYLE)
    if stop is not None:                  # a sub-ms T2 is thinner than a pixel: draw a line too
        ax.axvspan(stop, stop + (m["T2_ms"] or 0.0) / 1e3, linewidth=0, **T2_STYLE)
        ax.axvline(stop, linewidth=1.2, **T2_STYLE)
    if end is not None:
        ax.axvline(end, **END_STYLE)


def panel_label(m, n):
    bits = ["%s, %s: %s" % (m["strategy"], m["scenario"], m["outcome"]),
            "TPL %s%s frames" % ("at least " if m["tpl_lower_bound"] else "",
                                 "n/a" if m["TPL_frames"] is None else "%g" % m["TPL_frames"])]
    if n > 1:
        bits.append("trial %s solid, %d more faint" % (m["trial"], n - 1))
    delay = injected_text([m["detail"]["injected_delay_s"]])
    return "; ".join(bits) + ("\n" + delay if delay else "")


def draw_panel(ax, entries, x0, x1):
    """One strategy/scenario: its trials' receive rates, offered rate and phases."""
    first, _ = entries[0]
    colour = strategy_style(first["strategy"])[1]
    top = 0.0
    for i, (m, tls) in enumerate(entries):
        t0 = m["detail"]["phases"].get("t_request_mono")
        if not tls or t0 is None:
            continue
        xs, kpps = receive_rate(tls, t0, x0, x1)
        ax.step(xs, kpps, where="post", color=colour, linewidth=1.3 if i == 0 else 0.8,
                alpha=1.0 if i == 0 else 0.3, zorder=3 if i == 0 else 2)
        top = max([top] + [k for k in kpps if k == k])
    offered = sum(s["offered_fps"] or 0 for s in first["detail"]["streams"]
                  if s["kind"] == "probe") / 1e3
    if offered:
        ax.axhline(offered, **OFFERED_STYLE)
    if not any(tls for _, tls in entries):
        ax.text(0.5, 0.5, "no probe timeline (see report.md's anomalies)",
                transform=ax.transAxes, ha="center", va="center", fontsize=8)
    mark_phases(ax, first)
    ax.set_xlim(x0, x1)
    ax.set_ylim(0, max(top, offered, 1e-3) * 1.45)   # headroom for the label
    ax.text(0.01, 0.97, panel_label(first, len(entries)), transform=ax.transAxes, va="top",
            ha="left", fontsize=7, bbox={"facecolor": "white", "edgecolor": "none",
                                         "alpha": 0.85, "pad": 1.5})
    ax.grid(True, alpha=0.3)
    ax.tick_params(labelsize=7)


def legend_proxies(ax, strategies, faint):
    """Legend entries on the (invisible) frame axes, which render() turns into the legend."""
    from matplotlib.patches import Rectangle
    for s in strategies:
        name, colour, _ = strategy_style(s)
        ax.plot([], [], color=colour, linewidth=1.3, label="%s: probes received" % name)
    if faint:
        ax.plot([], [], color="#555555", alpha=0.3, label="other trials (faint)")
    ax.plot([], [], label="offered probe rate", **OFFERED_STYLE)
    ax.plot([], [], label="T0: upgrade requested (driver)", **T0_STYLE)
    ax.add_patch(Rectangle((0, 0), 0, 0, label="T1: staging (NF's phase record; an injected "
                           "delay is labelled in the panel)", **T1_STYLE))
    ax.add_patch(Rectangle((0, 0), 0, 0, label="T2: upgrade run", linewidth=0, **T2_STYLE))
    ax.plot([], [], label="upgrade end (after T3)", **END_STYLE)


@figure("issu", x="trial", y="TPL_frames", unit="frames",
        title="RFC 7654 ISSU: the probes' receive rate around the upgrade")
def draw(ax, run):
    trials = load_trials(run.dir)
    strategies = list(dict.fromkeys(s for s, _ in trials))
    scenarios = list(dict.fromkeys(sc for _, sc in trials))
    x0, x1 = x_range(trials)
    fig = ax.figure
    fig.set_size_inches(max(9.0, 3.6 * len(scenarios) + 3.4), 1.9 * len(strategies) + 1.4)
    grid = ax.get_subplotspec().subgridspec(len(strategies), len(scenarios), hspace=0.3,
                                            wspace=0.12)
    ax.set_axis_off()                      # a frame only: title and legend, the panels inside
    shared = None
    for (s, sc), entries in trials.items():
        r, c = strategies.index(s), scenarios.index(sc)
        panel = fig.add_subplot(grid[r, c], sharex=shared)
        shared = shared or panel
        draw_panel(panel, entries, x0, x1)
        if all((below, sc) not in trials for below in strategies[r + 1:]):   # lowest in column
            panel.set_xlabel("seconds from T0 (the upgrade request)", fontsize=8)
        if c == 0:
            panel.set_ylabel("received (kpps)", fontsize=8)
    legend_proxies(ax, strategies, any(len(e) > 1 for e in trials.values()))
    bins = sorted({1e3 * w for ms in trials.values() for _, tls in ms for _, w, _ in tls})
    run.subtitle = ("the UDP probe receivers' summed timelines per %s ms bin, aligned at T0; "
                    "phases from the NF's record" % "/".join("%g" % b for b in bins))

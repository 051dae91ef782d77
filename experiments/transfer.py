"""Drivers for the CLICK-UP transfer figures, on the ``ite`` topology.

* ``transfer-point``: a file download through the NAT, cut by an upgrade when
  the client has received P % of the file (P = 0, 10, ..., 90), for each
  strategy and without upgrade.  The paper's scale by default: a 2 Gbit file
  over a link shaped (htb) so the download without upgrade takes ~43 s.
* ``transfer-delay``: the same at P = 50 % against the injected upgrade delay
  (0..15 s): restart strategies stay down for it, clickup stages through it.
  Here the file goes the other way, an upload from the client behind the NAT:
  the client's TCP then holds the unacknowledged data and retransmits it with
  exponential back-off while the NF is down, and the first retransmission
  after the NF is back decides the outcome (a new outside port and the
  server's RST if the mapping was lost; the same mapping if it was kept).
  That is what puts TCP's back-off steps into the curve.  A download cannot
  show them: its client only receives, so it sends nothing that could draw
  the server's RST, and notices the stall only by its own idle timeout.

Each trial uses a fresh network and NF, so no state leaks between trials.  The
transfer time comes from the transfer client's own clock (first request to
last byte received, or to the server's answer for an upload), restarts from
its event trace; the upgrade's phase record is kept beside it (raw/), for
information.
"""

import os
import sys
import threading

from experiments.runner import experiment

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
V2 = os.path.join(ROOT, "upgrades", "nat-v2")
STRATEGIES = ("none", "native", "hotswap", "clickup-restart", "clickup", "switchover")
COLUMNS = ["experiment", "strategy", "point_pct", "delay_s", "trial", "transfer_s",
           "restarts", "bytes", "outcome"]

# The paper: 2 Gbit in 43.218 s through its NAT.  A link shaped to this rate
# reproduces the time scale (htb, on the server's link).
PAPER_BITS = 2e9
PAPER_SECONDS = 43.218
QUICK_BYTES = 50 * 1000 * 1000     # ~9 s at the paper's rate


def _scale(ctx):
    size = QUICK_BYTES if ctx.args.quick else int(PAPER_BITS / 8)
    bw_mbit = PAPER_BITS / PAPER_SECONDS / 1e6        # ~46.3 Mbit/s
    return size, bw_mbit


def one_transfer(ctx, strategy, point, delay, size, bw_mbit, tag, direction):
    """One trial: fresh network, a transfer ("down"load or "up"load), an upgrade at
    ``point`` % -> the client's summary."""
    from experiments.testbed import Testbed
    trace = os.path.join(ctx.raw, "%s.trace.jsonl" % tag)
    with Testbed(bw_mbit=bw_mbit, pair=strategy == "switchover",
                 record=os.path.join(ctx.raw, "%s.topology.json" % tag)) as tb:
        tb.serve(size)
        client = tb.transfer(trace, size, direction,
                             announce=(point,) if strategy != "none" else ())
        if strategy != "none":
            if not tb.wait_announced(client, point):
                raise RuntimeError("the transfer never reached %d %%" % point)
            th = threading.Thread(target=tb.upgrade, daemon=True, args=(
                V2, "nat.click", strategy, delay,
                os.path.join(ctx.raw, "%s.upgrade.json" % tag)))
            th.start()
        summary = tb.finish_transfer(client)
        if strategy != "none":
            th.join(130)
    return summary


def _sweep(ctx, points, name, direction):
    size, bw = _scale(ctx)
    ctx.params = {"file_bytes": size, "link_mbit": round(bw, 3), "trials": ctx.args.trials,
                  "direction": {"down": "download", "up": "upload"}[direction],
                  "note": "delays are injected, not measured"}
    total = len(points) * ctx.args.trials
    done = 0
    for trial in range(1, ctx.args.trials + 1):
        for strategy, point, delay in points:
            tag = "%s-p%d-d%g-t%d" % (strategy, point, delay, trial)
            if ctx.done(strategy=strategy, point_pct=point, delay_s=delay, trial=trial):
                done += 1                        # --resume: measured already
                continue
            ctx.progress(done, total, "trial %d %s at %d %% (injected delay %g s)"
                         % (trial, strategy, point, delay))
            try:
                s = one_transfer(ctx, strategy, point, delay, size, bw, tag, direction)
                ctx.row(strategy=strategy, point_pct=point, delay_s=delay, trial=trial,
                        transfer_s=s.get("transfer_s"), restarts=s.get("restarts"),
                        bytes=s.get("bytes"), outcome="ok" if s.get("ok") else "failed")
            except RuntimeError as e:
                print("  failed: %s" % e, file=sys.stderr)
                ctx.row(strategy=strategy, point_pct=point, delay_s=delay, trial=trial,
                        outcome="failed")
            done += 1
    ctx.progress(done, total, "%s done" % name)


@experiment("transfer-point", COLUMNS, "point_pct", "transfer_s",
            "download time vs the upgrade point, per strategy")
def transfer_point(ctx):
    strategies = ctx.choose(ctx.args.strategies, STRATEGIES,
                            ("none", "native", "clickup") if ctx.args.quick else STRATEGIES)
    pcts = (10, 30, 50, 70, 90) if ctx.args.quick else tuple(range(0, 100, 10))
    points = []
    for s in strategies:
        for p in ((0,) if s == "none" else pcts):
            points.append((s, p, 0.0))
    _sweep(ctx, points, "transfer-point", "down")


@experiment("transfer-delay", COLUMNS, "delay_s", "transfer_s",
            "upload time vs the injected upgrade delay at 50 %, per strategy")
def transfer_delay(ctx):
    strategies = ctx.choose(ctx.args.strategies, STRATEGIES,
                            ("native", "clickup") if ctx.args.quick
                            else ("native", "clickup-restart", "clickup"))
    delays = (0, 3) if ctx.args.quick else tuple(range(0, 16))
    _sweep(ctx, [(s, 50, float(d)) for s in strategies for d in delays], "transfer-delay",
           "up")

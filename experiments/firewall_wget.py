"""``clickup run firewall-wget``: the CLICK-UP demo.

Fifty parallel ``wget`` downloads of 1.2 MB files from a server behind the
stateful firewall (configs/firewall.click), while an upgrade inserts a Log
element (upgrades/firewall-log).  Per-file completion times come from the
wget processes themselves (spawn to exit; a broken connection makes wget
start the file again from byte 0).  Strategies: no upgrade, native, clickup,
and switchover (a firewall pair on the sdn topology, steered by port by the
controller: the standby is upgraded, then the traffic moved; experiments/switchover.py).
The link is shaped so that the batch takes about as long as the paper's
(33-51 s per file without upgrade); the upgrade starts at 40 % of that.
"""

import os
import threading
import time

from experiments.runner import experiment
from experiments.testbed import Testbed
from experiments.traffic import run_tool

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PKG = os.path.join(ROOT, "upgrades", "firewall-log")
STRATEGIES = ("none", "native", "clickup", "switchover")
COLUMNS = ["experiment", "strategy", "trial", "file", "completion_s", "restarts", "outcome"]
FILE_BYTES = 1200 * 1000
LINK_MBIT = 10.0
UPGRADE_AT = 0.4          # of the batch's expected duration


@experiment("firewall-wget", COLUMNS, "file", "completion_s",
            "50 parallel wget downloads through the firewall while a Log element is inserted")
def firewall_wget(ctx):
    strategies = ctx.choose(ctx.args.strategies, STRATEGIES, STRATEGIES)
    files = 10 if ctx.args.quick else 50
    expected = files * FILE_BYTES * 8 / (LINK_MBIT * 1e6)
    ctx.params = {"files": files, "file_bytes": FILE_BYTES, "link_mbit": LINK_MBIT,
                  "upgrade_at_s": round(expected * UPGRADE_AT, 1), "trials": ctx.args.trials}
    total, done = ctx.args.trials * len(strategies), 0
    for trial in range(1, ctx.args.trials + 1):
        for s in strategies:
            if ctx.done(strategy=s, trial=trial, file=files - 1):
                done += 1                        # --resume: the whole batch is there
                continue
            ctx.progress(done, total, "trial %d, %s, %d parallel wget" % (trial, s, files))
            for i, r in enumerate(_batch(ctx, s, trial, files, expected * UPGRADE_AT)):
                ctx.row(strategy=s, trial=trial, file=i, completion_s=r.get("transfer_s"),
                        restarts=r.get("restarts"), outcome="ok" if r.get("ok") else "failed")
            done += 1
    ctx.progress(done, total, "firewall-wget done")


def _batch(ctx, strategy, trial, files, upgrade_at):
    tag = "%s-t%d" % (strategy, trial)
    results = [None] * files
    with Testbed(bw_mbit=LINK_MBIT, nf="firewall", pair=strategy == "switchover",
                 record=os.path.join(ctx.raw, "%s.topology.json" % tag)) as tb:
        tb.serve(FILE_BYTES)
        client = tb.host(tb.topo.clients[0])

        def fetch(i):
            trace = os.path.join(ctx.raw, "%s-f%02d.trace.jsonl" % (tag, i))
            results[i] = run_tool("wget", tb.url(), trace, popen=client.popen,
                                  give_up=900)
        threads = [threading.Thread(target=fetch, args=(i,), daemon=True)
                   for i in range(files)]
        for t in threads:
            t.start()
        if strategy != "none":
            time.sleep(upgrade_at)
            tb.upgrade(PKG, "firewall.click", strategy,
                       record_path=os.path.join(ctx.raw, "%s.upgrade.json" % tag))
        for t in threads:
            t.join(1000)
    return [r or {"ok": False} for r in results]

"""``clickup run integration``: the integration-latency figure.

The same measurement as ``clickup bench integration`` (experiments/
bench_integration.py: N new modules inserted into a NAT holding 10,000 live
mappings, each strategy, fresh NF per trial), saved in the experiment format
so ``clickup plot`` draws it beside the paper's values.  No root needed.
"""

import json
import os

from experiments import bench_integration as bi
from experiments.runner import EXPERIMENTS, experiment

STRATEGIES = bi.STRATEGIES       # switchover: a pair of NF processes (see there)
COLUMNS = ["experiment", "strategy", "modules", "trial", "integration_ms", "pause_ms",
           "outcome"]


@experiment("integration", COLUMNS, "modules", "integration_ms",
            "integration latency vs the number of new modules, per strategy", unit="ms")
def integration(ctx):
    strategies = ctx.choose(ctx.args.strategies, STRATEGIES, STRATEGIES)
    modules = (1, 5) if ctx.args.quick else (1,) + tuple(range(5, 55, 5))
    ctx.params = {"mappings": bi.FLOWS, "modules": list(modules), "trials": ctx.args.trials}
    pkgs_dir = os.path.join(ctx.raw, "packages")
    os.makedirs(pkgs_dir, exist_ok=True)
    base = os.path.join(pkgs_dir, "base.click")
    with open(base, "w") as f:
        f.write(bi.base_config())
    pkgs = {n: bi.write_package(os.path.join(pkgs_dir, "n%02d" % n), n) for n in modules}
    total = ctx.args.trials * len(modules) * len(strategies)
    done = 0
    with open(os.path.join(ctx.raw, "records.jsonl"), "w") as raw:
        for trial in range(1, ctx.args.trials + 1):
            for n in modules:
                for s in strategies:
                    ctx.progress(done, total, "trial %d, N=%d, %s" % (trial, n, s))
                    t = bi.run_once(base, pkgs[n], s, n, trial)
                    raw.write(json.dumps(t, sort_keys=True) + "\n")
                    raw.flush()
                    ctx.row(strategy=s, modules=n, trial=trial,
                            integration_ms=t["integration_ms"], pause_ms=t["pause_ms"],
                            outcome="ok" if t["integration_ms"] is not None else "failed")
                    done += 1
    ctx.progress(done, total, "integration done")


EXPERIMENTS["integration"]["root"] = False

"""The experiment runner's pieces, and (root) quick downloads cut by upgrades on
the ite topology, judged by the download client."""

import json
import os
import subprocess
import sys
import time

import pytest

from experiments.runner import summarise


def test_summary_is_median_min_max_of_successful_rows():
    rows = [{"strategy": "native", "point_pct": "50", "transfer_s": v, "outcome": o}
            for v, o in (("10", "ok"), ("30", "ok"), ("20", "ok"), ("99", "failed"))]
    (p,) = summarise(rows, "point_pct", "transfer_s")
    assert (p["median"], p["min"], p["max"], p["n"], p["x"]) == (20.0, 10.0, 30.0, 3, 50.0)


@pytest.fixture
def toy_experiment():
    """A registered experiment that needs no root: one row per (strategy, trial), and a
    list of the trials it actually measured."""
    from experiments import runner
    measured = []

    @runner.experiment("toy", ["experiment", "strategy", "x", "trial", "y", "outcome"], "x",
                       "y")
    def toy(ctx):
        for trial in range(1, ctx.args.trials + 1):
            for s in ("a", "b"):
                if ctx.done(strategy=s, x=1, trial=trial):
                    continue
                measured.append((s, trial))
                ctx.row(strategy=s, x=1, trial=trial, y=trial * 10,
                        outcome="failed" if (s, trial) == ("b", 1) and len(measured) < 3
                        else "ok")
    runner.EXPERIMENTS["toy"]["root"] = False
    yield measured
    del runner.EXPERIMENTS["toy"]


def _run(argv):
    import argparse
    from experiments import runner
    sub = argparse.ArgumentParser().add_subparsers()
    runner.add_parser(sub)
    args = sub.choices["run"].parse_args(argv)
    return runner.cmd_run(args)


def test_resume_measures_only_the_missing_and_failed_trials(toy_experiment, tmp_path, capsys):
    assert _run(["toy", "--trials", "1", "--out", str(tmp_path), "--no-plot"]) == 0
    assert toy_experiment == [("a", 1), ("b", 1)]          # b/1 failed
    folder = os.path.realpath(str(tmp_path / "toy" / "latest"))
    assert _run(["toy", "--trials", "2", "--resume", folder, "--no-plot"]) == 0
    assert toy_experiment[2:] == [("b", 1), ("a", 2), ("b", 2)]
    with open(os.path.join(folder, "results.csv")) as f:
        lines = f.read().splitlines()
    assert lines[0].startswith("experiment,") and len(lines) == 1 + 5
    with open(os.path.join(folder, "summary.json")) as f:
        points = {p["strategy"]: p for p in json.load(f)["points"]}
    assert (points["a"]["n"], points["b"]["n"], points["b"]["median"]) == (2, 2, 15.0)
    with open(os.path.join(folder, "provenance.json")) as f:
        prov = json.load(f)
    assert prov["args"]["trials"] == 1 and prov["resumed"][0]["args"]["trials"] == 2


def test_resume_refuses_another_experiment_or_another_scale(toy_experiment, tmp_path, capsys):
    assert _run(["toy", "--out", str(tmp_path), "--no-plot", "--trials", "1"]) == 0
    folder = str(tmp_path / "toy" / "latest")
    capsys.readouterr()
    assert _run(["toy", "--quick", "--resume", folder, "--no-plot"]) == 2
    assert "without --quick; resume it the same way" in capsys.readouterr().err
    assert _run(["toy", "--resume", str(tmp_path), "--no-plot"]) == 2
    assert "not a run folder" in capsys.readouterr().err


def test_clean_removes_recorded_namespaces_and_processes_only(tmp_path, monkeypatch):
    if os.geteuid() != 0:
        pytest.skip("needs root")
    import experiments.owned as owned
    monkeypatch.setattr(owned, "PATH", str(tmp_path / "owned.jsonl"))
    monkeypatch.setattr(owned, "DIR", str(tmp_path))
    ns = "cuclean%d" % os.getpid()
    subprocess.run(["ip", "netns", "add", ns], check=True)
    owned.record("netns", ns)
    mine = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    time.sleep(0.2)
    owned.record("pid", mine.pid)
    try:
        removed = owned.clean(verbose=False)
        assert any(ns in r for r in removed)
        assert mine.wait(5) is not None
        assert other.poll() is None, "a process it did not record is left alone"
        assert ns not in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                        text=True).stdout
        assert owned.records() == []
    finally:
        other.kill()
        subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)


@pytest.mark.root
@pytest.mark.parametrize("direction,strategy,restarts,failure", [
    ("down", "clickup", 0, None), ("down", "native", 1, "timeout"),
    ("up", "clickup", 0, None), ("up", "native", 1, "reset")])
def test_quick_transfer_with_an_upgrade(tmp_path, direction, strategy, restarts, failure):
    """A download notices a NAT that forgot it only by its idle timeout; an upload's own
    retransmission, through the restarted NAT, draws the server's RST."""
    from experiments.testbed import Testbed
    from nf.upgrade.client import request_upgrade
    v2 = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                      "upgrades", "nat-v2")
    size = 6 * 1000 * 1000
    trace = str(tmp_path / "trace.jsonl")
    with Testbed(bw_mbit=20) as tb:
        tb.serve(size)
        client = tb.transfer(trace, size, direction, announce=(30,))
        assert tb.wait_announced(client, 30, timeout=30)
        rec = request_upgrade(tb.control, {"to": os.path.join(v2, "nat.click"),
                                           "elements": os.path.join(v2, "elements"),
                                           "strategy": strategy}, timeout=60)
        assert rec["outcome"] == "done", rec
        summary = tb.finish_transfer(client, timeout=60)
    assert summary["ok"] and summary["verified"], summary
    assert summary["restarts"] == restarts, json.dumps(summary)
    with open(trace) as f:
        events = [json.loads(line)["ev"] for line in f]
    failures = [e for e in events if e in ("reset", "timeout", "eof_early")]
    assert failures == ([failure] if failure else []), events

"""``clickup run issu``: the load model's options, the plan of runs, and (root) one quick
run through the real network, whose report must hold the RFC 7654 figures."""

import json
import os
import subprocess
import sys

import pytest

from experiments import issu

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_load_model_defaults_quick_and_overrides():
    full = issu.parse_load(None)
    assert (full["streams"], full["stream_pps"], full["duration_s"]) == (4, 1000, 20.0)
    assert full["frame_bytes"] == 14 + 20 + 8 + 64
    quick = issu.parse_load("", quick=True)
    assert quick["duration_s"] < full["duration_s"] and quick["mappings"] < full["mappings"]
    mine = issu.parse_load("streams=3,pps=2000,churn=25,payload=100,duration=15", quick=True)
    assert (mine["streams"], mine["stream_pps"], mine["churn"]) == (3, 2000, 25)
    assert mine["frame_bytes"] == 142 and mine["duration_s"] == 15.0
    assert mine["iperf_streams"] == quick["iperf_streams"]      # --quick's, not overridden


@pytest.mark.parametrize("text,says", [
    ("flows=3", "key one of"), ("streams", "key one of"), ("pps=fast", "needs a number"),
    ("pps=0", "must be positive"), ("payload=10", "at least 24"),
    ("duration=5", "must leave at least 6 s"), ("churn=-1", "must be positive")])
def test_bad_load_is_refused_with_the_fix(text, says):
    with pytest.raises(ValueError) as ei:
        issu.parse_load(text)
    assert says in str(ei.value)


def test_abort_runs_only_where_staging_can_be_aborted():
    plan = issu.runs(["native", "clickup"], ["upgrade", "abort", "rollback"])
    assert plan == [("native", "upgrade"), ("clickup", "upgrade"), ("clickup", "abort"),
                    ("native", "rollback"), ("clickup", "rollback")]
    assert issu.runs(["native", "clickup-restart"], ["abort"]) == []


def test_an_option_of_another_experiment_is_refused():
    r = subprocess.run([sys.executable, "-m", "experiments.cli", "run", "transfer-point",
                        "--load", "streams=2", "--out", "/nonexistent"], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--load is not an option of transfer-point" in r.stderr


def test_the_fault_package_is_intact_and_says_what_it_is():
    from nf.upgrade.manifest import verify_manifest
    pkg = os.path.join(ROOT, "upgrades", "nat-v2-broken")
    verify_manifest(pkg)
    with open(os.path.join(pkg, "nat.click")) as f:
        assert "FAULT INJECTION" in f.read()


RECORDED = os.path.join(ROOT, "tests", "fixtures", "results", "issu-recorded")


@pytest.mark.parametrize("tag", ["clickup-upgrade-t1", "native-upgrade-t1"])
def test_recorded_trials_give_the_recorded_rows_and_the_receivers_counts(tag):
    """A real run's files (tests/fixtures/results/issu-recorded): the metrics computed now
    are the row written then, and TPL comes from the receivers' own counts."""
    import csv
    from experiments.iperf import IperfError, parse_json, udp_summary
    from experiments.issu_report import csv_row, trial_metrics
    folder = os.path.join(RECORDED, "raw", tag)
    strategy, scenario, _ = tag.split("-")
    with open(os.path.join(RECORDED, "results.csv")) as f:
        recorded = next(r for r in csv.DictReader(f)
                        if (r["strategy"], r["scenario"]) == (strategy, scenario))
    now = {k: "" if v is None else str(v) for k, v in csv_row(trial_metrics(folder)).items()}
    assert now == recorded
    with open(os.path.join(folder, "trial.json")) as f:
        iperf_pps = json.load(f)["load"]["iperf_pps"]
    lost, offered, unknown = 0, 0.0, 0
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if name.startswith("probe-"):
            with open(path) as f:
                p = json.load(f)
            lost += p["sent"] - p["received"]
            offered += p["sender"]["rate"]
        elif name.startswith("iperf-"):
            with open(path) as f:
                try:
                    _, n, _, _ = udp_summary(parse_json(f.read()))
                    lost += n
                    offered += iperf_pps
                except IperfError:
                    unknown += 1
    assert int(recorded["TPL_frames"]) == lost
    assert float(recorded["offered_fps"]) == offered
    assert float(recorded["TPL_time_ms"]) == pytest.approx(lost / offered * 1000)
    assert recorded["tpl_lower_bound"] == str(bool(unknown))
    assert (lost == 0) == (strategy == "clickup")


@pytest.mark.root
def test_quick_issu_run_measures_every_strategy_and_writes_the_report(tmp_path):
    """`clickup run issu --quick`: native and clickup, upgrade / abort / rollback, through
    the real network; the figures come from the receivers and must tell the strategies
    apart the way their designs say."""
    import csv
    r = subprocess.run([sys.executable, "-m", "experiments.cli", "run", "issu", "--quick",
                        "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    run = os.path.join(str(tmp_path), "issu", "latest")
    with open(os.path.join(run, "results.csv")) as f:
        rows = {(x["strategy"], x["scenario"]): x for x in csv.DictReader(f)}
    assert sorted(rows) == sorted([("native", "upgrade"), ("clickup", "upgrade"),
                                   ("clickup", "abort"), ("native", "rollback"),
                                   ("clickup", "rollback")])
    for row in rows.values():
        assert row["outcome"] == row["expected_outcome"], row
        assert float(row["offered_fps"]) > 0
    ours = rows[("clickup", "upgrade")]
    assert int(ours["TPL_frames"]) == 0 and ours["tcp_survived"] == ours["tcp_sessions"]
    assert int(ours["mappings_kept"]) == int(ours["mappings_before"]) >= 200
    assert float(ours["T2_ms"]) < 50
    native = rows[("native", "upgrade")]
    assert int(native["TPL_frames"]) > 0 and int(native["mappings_vanished"]) > 0
    assert int(native["tcp_survived"]) < int(native["tcp_sessions"])
    assert int(rows[("clickup", "abort")]["TPL_frames"]) == 0
    with open(os.path.join(run, "report.md")) as f:
        report = f.read()
    assert "ISSU Disruption Impact (clickup, upgrade): 0 frames lost" in report
    with open(os.path.join(run, "report.json")) as f:
        assert json.load(f)["table"]
    assert os.path.exists(os.path.join(run, "issu.png"))

"""``clickup bench integration``: the generated upgrade packages, the summary it
computes from trial records, and one brief end-to-end run (no root)."""

import json
import os
import subprocess
import sys
import threading

import pytest

from experiments import bench_integration as bi
from nf.args import AddressTable
from nf.config import parse_string
from nf.headers import ether, udp, verify
from nf.router import Router
from nf.testing import attach, run
from nf.upgrade.diff import diff
from nf.upgrade.manifest import verify_manifest
from nf.upgrade.package import Package
from tests import checksum_ref

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASE_NAMES = ["src", "strip", "chk", "rw", "sink"]


def staged_package(tmp_path, n):
    req = bi.write_package(str(tmp_path / "pkg"), n)
    pkg = Package(req["to"], req["elements"])
    pkg.verify_manifest()
    pkg.parse()
    pkg.load_code()
    return req, pkg


def fill(router, packets=bi.FLOWS):
    """Drive the router's loop with the source's clock stepped ahead, until the source
    has sent ``packets`` (deterministic: no waiting on the wall clock)."""
    src, now = router.elements["src"], [1000.0]
    src.clock = lambda: now[0]
    src.h_set_limit(str(packets))
    while src.count < packets:
        router.step(0)
        now[0] += 0.05


# -- the generated package ----------------------------------------------------------------

def test_package_holds_one_module_per_new_class_under_a_valid_manifest(tmp_path):
    req, pkg = staged_package(tmp_path, 3)
    assert sorted(os.listdir(req["elements"])) == ["stage01.py", "stage02.py", "stage03.py"]
    assert verify_manifest(str(tmp_path / "pkg")) == []
    assert pkg.index_code() == {"Stage01": "stage01", "Stage02": "stage02",
                                "Stage03": "stage03"}
    assert sorted(pkg.classes) == ["Stage01", "Stage02", "Stage03"]
    sources = [open(os.path.join(req["elements"], f)).read() for f in sorted(os.listdir(
        req["elements"]))]
    assert len(set(sources)) == 3, "every module has code of its own"


def test_new_element_has_the_fixed_form_docstring_and_passes_frames_unchanged(tmp_path):
    _, pkg = staged_package(tmp_path, 2)
    cls = pkg.classes["Stage02"]
    assert cls.__doc__.splitlines()[0] == "Stage02()"
    assert cls.__doc__.splitlines()[1] == ""
    e = attach(cls("s02", "", addresses=AddressTable()))
    e.initialize()
    frames = [ether("02:00:00:00:00:02", "02:00:00:00:00:01", 0x0800,
                    udp("10.0.0.2", "192.0.2.1", 4000 + i, 53, b"payload %d" % i))
              for i in range(3)]
    out = run(e, frames)
    assert out == [frames]
    for f in out[0]:
        assert verify(f) == [] and checksum_ref.ip_ok(f) and checksum_ref.l4_ok(f)
    assert e.read("seen") == "3"


def test_upgrade_keeps_every_base_element_and_adds_exactly_n(tmp_path):
    _, pkg = staged_package(tmp_path, 5)
    old = Router(parse_string(bi.base_config()))
    d = diff(old.elements, pkg.graph, pkg.resolve)
    assert sorted(d.unchanged) == sorted(BASE_NAMES)
    assert d.changed == [] and d.removed == []
    assert d.added == ["s01", "s02", "s03", "s04", "s05"]


def test_base_config_makes_one_live_mapping_per_flow():
    r = Router(parse_string(bi.base_config()))
    r.initialize()
    try:
        fill(r, bi.FLOWS + 500)             # every flow once, then some again
        assert r.read("rw.table_size") == str(bi.FLOWS)
        assert r.read("rw.mapping_failures") == "0"
        assert r.read("sink.count") == str(bi.FLOWS + 500), "every packet reached the sink"
    finally:
        r.cleanup()


def test_upgraded_pipeline_sends_every_packet_through_every_new_element(tmp_path):
    _, pkg = staged_package(tmp_path, 3)
    r = Router(pkg.graph, classes=pkg.classes)
    r.initialize()
    try:
        fill(r, 1000)
        for name in ("s01", "s02", "s03"):
            assert r.read(name + ".seen") == "1000"
        assert r.read("sink.count") == "1000"
    finally:
        r.cleanup()


# -- the summary ---------------------------------------------------------------------------

def trial(strategy, n, integ, pause, t=1):
    rec = None if integ is None else {"outcome": "done", "T1_ms": integ - pause,
                                      "T2_ms": pause, "T3_ms": 0.1,
                                      "T2_basis": "first packet forwarded by the new version"}
    return bi.trial_row(t, strategy, n, rec, error=None if rec else "the NF exited")


def test_trial_row_takes_integration_as_t1_plus_t2():
    t = trial("clickup", 1, 20.0, 0.5)
    assert t["integration_ms"] == 20.0 and t["pause_ms"] == 0.5 and t["outcome"] == "done"
    refused = bi.trial_row(1, "clickup", 1, {"outcome": "refused", "reason": "bad manifest",
                                             "T1_ms": 3.0, "T2_ms": None})
    assert refused["integration_ms"] is None and refused["reason"] == "bad manifest"


def test_rows_are_medians_with_spread_and_raw_values():
    trials = [trial("native", 1, v, p) for v, p in ((1000, 900), (1200, 1100), (900, 800))]
    trials += [trial("clickup", 1, 20, 0.4), trial("clickup", 1, None, None)]
    rows = bi.summarize(trials, ["native", "clickup"], [1])
    native, clickup = rows
    assert {"strategy", "modules", "integration_ms", "pause_ms"} <= set(native)
    assert (native["strategy"], native["modules"]) == ("native", 1)
    assert native["integration_ms"] == 1000 and native["pause_ms"] == 900
    assert (native["integration_min_ms"], native["integration_max_ms"]) == (900, 1200)
    assert (native["pause_min_ms"], native["pause_max_ms"]) == (800, 1100)
    assert native["integration_trials_ms"] == [1000, 1200, 900]
    assert clickup["trials"] == 1 and clickup["failed"] == 1
    json.dumps(rows)                         # the --json output is plain JSON


def test_a_figure_with_no_successful_run_is_none():
    rows = bi.summarize([trial("native", 5, None, None)], ["native"], [5])
    assert rows[0]["integration_ms"] is None and rows[0]["pause_ms"] is None


def test_ratios_to_native_and_the_cut():
    trials = [trial("native", 1, 1000, 900), trial("clickup", 1, 30, 0.5),
              trial("clickup-restart", 1, 500, 450), trial("hotswap", 1, 100, 5),
              trial("clickup", 5, 40, 0.6)]
    rows = bi.summarize(trials, bi.STRATEGIES, [1, 5])
    r1, r5 = bi.ratios(rows, [1, 5])
    assert r1["clickup/native"] == 0.03 and r1["clickup-restart/native"] == 0.5
    assert r1["hotswap/native"] == 0.1 and r1["clickup_cut_pct"] == 97.0
    assert r5["clickup/native"] is None and r5["clickup_cut_pct"] is None, "no native at N=5"
    assert r1["switchover/native"] is None, "no switchover run"


def verdicts(trials, modules):
    rows = bi.summarize(trials, bi.STRATEGIES, modules)
    return [t["status"] for t in bi.targets(rows, bi.ratios(rows, modules))]


def test_targets_met():
    trials = [trial("native", 1, 1000, 900), trial("clickup", 1, 30, 0.5),
              trial("native", 5, 1100, 900), trial("clickup", 5, 35, 0.9),
              trial("native", 45, 2000, 1800), trial("clickup", 45, 150, 3)]
    assert verdicts(trials, [1, 5, 45]) == ["met", "met"]


def test_targets_missed():
    trials = [trial("native", 1, 1000, 900), trial("clickup", 1, 50, 0.5),   # cut 95 %
              trial("native", 5, 1100, 900), trial("clickup", 5, 35, 1.2),   # pause 1.2 ms
              trial("native", 45, 2000, 1800), trial("clickup", 45, 150, 3)]
    assert verdicts(trials, [1, 5, 45]) == ["MISSED", "MISSED"]


def test_targets_not_measured_without_their_n():
    trials = [trial("native", 1, 1000, 900), trial("clickup", 1, 30, 0.5)]
    assert verdicts(trials, [1]) == ["met", "not measured"]
    assert verdicts([trial("hotswap", 10, 30, 0.5)], [10]) == ["not measured", "not measured"]


def test_table_has_strategies_as_columns_n_as_rows_ratios_and_targets():
    trials = [trial("native", 1, 1000, 900), trial("clickup", 1, 30, 0.5),
              trial("native", 45, 2000, 1800), trial("clickup", 45, 300, 3)]
    strategies = ["native", "clickup"]
    rows = bi.summarize(trials, strategies, [1, 45])
    ratio_rows = bi.ratios(rows, [1, 45])
    lines = bi.table_lines(rows, ratio_rows, bi.targets(rows, ratio_rows), strategies,
                           [1, 45], 3)
    header = next(line for line in lines if line.split()[:1] == ["N"])
    assert header.split() == ["N", "native", "clickup"]
    assert any(line.split()[:7] == ["1", "1000.0", "/", "900.000", "30.0", "/", "0.500"]
               for line in lines)
    assert any(line.split()[:1] == ["45"] and "85.0 %" in line for line in lines)
    pause, cut = [line for line in lines if line.startswith("target:")]
    assert "pause" in pause and ": met (N=1: 0.5)" in pause
    assert "cuts integration" in cut and ": MISSED (N=1: 97, N=45: 85)" in cut


# -- the command ---------------------------------------------------------------------------

def bench(*argv, timeout=120):
    return subprocess.run([sys.executable, "-m", "experiments.cli", "bench", "integration"]
                          + list(argv), cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.parametrize("argv, what", [
    (["--modules", "0"], "--modules"), (["--modules", "1,x"], "--modules"),
    (["--strategies", "clickup,teleport"], "--strategies")])
def test_bad_arguments_are_refused_before_anything_runs(tmp_path, argv, what):
    r = bench(*argv, "--results", str(tmp_path))
    assert r.returncode == 2 and what in r.stderr
    assert os.listdir(tmp_path) == []


def test_quick_run_end_to_end(tmp_path):
    """A brief real run: one N, the two in-process strategies, one trial each."""
    r = bench("--quick", "--modules", "1", "--strategies", "clickup,hotswap", "--json",
              "--results", str(tmp_path))
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [(x["strategy"], x["modules"]) for x in rows] == [("clickup", 1), ("hotswap", 1)]
    for x in rows:
        assert x["integration_ms"] > 0 and 0 <= x["pause_ms"] <= x["integration_ms"]
    out = tmp_path / "bench-integration" / "latest"
    for name in ("provenance.json", "summary.json", "results.csv", "records.jsonl"):
        assert (out / name).exists(), name
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    assert [t["mappings_before"] for t in records] == [bi.FLOWS, bi.FLOWS]
    assert records[0]["record"]["modules_integrated"] == ["package:stage01"]
    assert "[2/2]" in r.stderr, "progress is shown on stderr"


def test_switchover_run_end_to_end(tmp_path):
    """The pair without a network: the new version's standby gets the 10,000 mappings,
    the traffic (the in-NF sources) moves, and no flow is mapped again."""
    r = bench("--quick", "--modules", "1", "--strategies", "switchover", "--json",
              "--results", str(tmp_path))
    assert r.returncode == 0, r.stderr
    row, = json.loads(r.stdout)
    assert (row["strategy"], row["modules"], row["trials"]) == ("switchover", 1, 1)
    assert 0 < row["pause_ms"] < row["integration_ms"]
    out = tmp_path / "bench-integration" / "latest"
    rec, = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    assert rec["outcome"] == "done" and rec["T2_basis"].startswith("the old NF's source held")
    assert rec["mappings_before"] == rec["record"]["mappings_after"] == bi.FLOWS
    assert rec["record"]["sync_T1"]["snapshot_entries"] >= bi.FLOWS


def test_switchover_whose_new_version_cannot_start_is_a_failed_row(tmp_path):
    base = tmp_path / "base.click"
    base.write_text(bi.base_config())
    bad = tmp_path / "new.click"
    bad.write_text(bi.base_config() + "oops :: NoSuchElement;\n")
    (tmp_path / "elements").mkdir()
    threads = set(threading.enumerate())
    row = bi.run_once(str(base), {"to": str(bad), "elements": str(tmp_path / "elements")},
                      "switchover", 1, 1)
    assert row["outcome"] == "error" and row["integration_ms"] is None
    assert "exited" in row["reason"] and "NoSuchElement" in row["reason"], row["reason"]
    # nothing of the failed run goes on polling the (stopped) old NF for the sync
    assert set(threading.enumerate()) <= threads, threading.enumerate()

"""The RFC 7654 ISSU report and figure on the synthetic run folder tests/fixtures/results/issu/.

The expected numbers are worked out by hand from the fixture (its README lists them): frame
loss and impact time from the receivers, the control-plane gap from the poll, the NAT state
delta, T4, and which anomalies a trial shows; then the aggregation over trials, report.md's
statement and table, robustness to missing or broken files, and the figure's files.
"""

import json
import os
import shutil

import pytest

from experiments.issu_markdown import render_markdown
from experiments import issu_report as ir

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "results", "issu")
CLICKUP, NATIVE, ABORT = "clickup-upgrade-t1", "native-upgrade-t1", "clickup-abort-t1"
TRIAL_FILES = ("trial.json", "upgrade.json", "probe-0.json", "iperf-0.json", "tcp-0.jsonl",
               "control.jsonl", "churn.json", "pre.json", "post.json")


def metrics(tag, run=FIXTURE):
    return ir.trial_metrics(os.path.join(run, "raw", tag))


def kinds(m):
    return {a["kind"] for a in m["detail"]["anomalies"]}


@pytest.fixture
def run(tmp_path):
    """A writable copy of the fixture run folder."""
    dst = tmp_path / "issu" / "20260102-030405"
    shutil.copytree(FIXTURE, dst)
    return str(dst)


def edit_json(path, edit):
    with open(path) as f:
        data = json.load(f)
    edit(data)
    with open(path, "w") as f:
        json.dump(data, f)


# ---------------------------------------------------------------- one trial, by hand

def test_clickup_upgrade_loses_nothing_and_shows_no_anomaly():
    m = metrics(CLICKUP)
    assert (m["strategy"], m["scenario"], m["trial"]) == ("clickup", "upgrade", 1)
    assert (m["outcome"], m["expected_outcome"]) == ("done", "done")
    assert (m["T1_ms"], m["T2_ms"], m["T3_ms"]) == (16.8, 0.7, 0.05)
    assert m["T4_ms"] == pytest.approx(17.55)
    # 2 probes x 500 fps + 1 iperf3 stream x 1000 fps, nothing lost
    assert (m["TPL_frames"], m["offered_fps"], m["TPL_time_ms"]) == (0, 2000, 0.0)
    assert m["tpl_lower_bound"] is False
    assert m["longest_gap_ms"] == 2.4                      # max of the probes' 2.4 and 2.1
    assert m["control_gap_ms"] == 30.0                     # polls 1000.00 -> 1000.03
    assert (m["tcp_survived"], m["tcp_sessions"]) == (1, 1)
    assert (m["mappings_before"], m["mappings_kept"], m["mappings_changed"],
            m["mappings_vanished"]) == (4, 4, 0, 0)
    assert m["churn_failed"] == 0
    assert m["anomalies"] == []
    assert m["detail"]["pre"]["steady"] is True and m["detail"]["pre"]["idle"] is True


def test_native_upgrade_counts_loss_from_the_receivers_and_flags_every_anomaly():
    m = metrics(NATIVE)
    # each probe lost 54 + 6 bins of 10 datagrams; iperf3 failed, so its 1000 fps are out
    assert (m["TPL_frames"], m["offered_fps"]) == (1200, 1000)
    assert m["TPL_time_ms"] == 1200.0                      # 1200 / 1000 fps * 1000
    assert m["tpl_lower_bound"] is True
    assert m["longest_gap_ms"] == 1082.4
    assert m["control_gap_ms"] == 1150.0                   # last ok 2000.35, next 2001.50
    assert m["detail"]["control_failures"] == 22
    assert m["T4_ms"] == 1437.0
    assert (m["tcp_survived"], m["tcp_sessions"]) == (0, 1)
    assert (m["mappings_before"], m["mappings_kept"], m["mappings_changed"],
            m["mappings_vanished"]) == (4, 0, 2, 2)
    assert m["churn_failed"] == 3
    assert kinds(m) == {"loss-unknown", "tcp-reset", "control-gap", "control-failures",
                        "churn-failures", "state-lost", "rss-growth", "loss-outside"}
    assert "iperf-0: loss unknown (iperf3: control socket has closed unexpectedly)" \
        in m["anomalies"]
    after = [a for a in m["detail"]["anomalies"] if a["kind"] == "loss-outside"]
    assert [a["phase"] for a in after] == ["after"] and "T0+2.75 s" in after[0]["text"]
    iperf = next(s for s in m["detail"]["streams"] if s["stream"] == "iperf-0")
    assert iperf["loss_known"] is False and iperf["lost"] is None


def test_abort_ends_as_expected_with_the_later_phases_unknown():
    m = metrics(ABORT)
    assert (m["outcome"], m["expected_outcome"]) == ("aborted", "aborted")
    assert m["T1_ms"] == 1003.2 and m["T2_ms"] is m["T3_ms"] is m["T4_ms"] is None
    assert m["detail"]["injected_delay_s"] == 2.0
    assert m["detail"]["config_delta"] == ""
    assert m["control_gap_ms"] == 50.0
    assert m["anomalies"] == []


def test_metrics_have_exactly_the_results_csv_columns():
    m = metrics(NATIVE)
    assert set(m) == set(ir.COLUMNS) - {"experiment"} | {"detail"}
    row = ir.csv_row(m)
    assert list(row) == ir.COLUMNS and row["experiment"] == "issu"
    assert row["anomalies"] == "; ".join(m["anomalies"]) and "; " in row["anomalies"]


def test_config_delta_is_a_unified_diff_of_the_flat_configurations():
    delta = metrics(CLICKUP)["detail"]["config_delta"]
    assert delta.startswith("--- pre-ISSU flatconfig\n+++ post-ISSU flatconfig\n")
    assert "\n+rw[0] -> cnt :: Counter -> EtherEncap(0x0800, nf-eth1, srv) -> out;" in delta
    assert "\n-rw[0] -> EtherEncap(0x0800, nf-eth1, srv) -> out;" in delta


# ---------------------------------------------------------------- the pieces

def test_state_delta_matches_mappings_by_protocol_and_inside_endpoint():
    pre = ("mappings 3\n"
           "udp 10.0.0.1:1 -> 10.0.1.254:100 idle 0s sessions 1: 10.0.1.1:9000\n"
           "tcp 10.0.0.1:1 -> 10.0.1.254:200 idle 0s sessions 1: 10.0.1.1:80 established\n"
           "udp 10.0.0.2:2 -> 10.0.1.254:300 idle 3s sessions 1: 10.0.1.1:9000\n")
    post = ("udp 10.0.0.1:1 -> 10.0.1.254:100 idle 1s sessions 1: 10.0.1.1:9000\n"
            "tcp 10.0.0.1:1 -> 10.0.1.254:999 idle 0s sessions 1: 10.0.1.1:80 established\n"
            "udp 10.0.0.9:9 -> 10.0.1.254:300 idle 0s sessions 1: 10.0.1.1:9000\n")
    assert ir.state_delta(pre, post) == {"mappings_before": 3, "mappings_kept": 1,
                                         "mappings_changed": 1, "mappings_vanished": 1}


def test_control_gap_is_the_longest_interval_between_ok_answers():
    polls = [{"t": 1.00, "ok": True}, {"t": 1.01, "ok": False, "error": "x"},
             {"t": 1.25, "ok": True}, {"t": 1.26, "ok": True}]
    assert ir.control_gap(polls) == (250.0, 1, 3)
    assert ir.control_gap([{"t": 1.0, "ok": True}]) == (None, 0, 1)


def test_probe_without_sender_report_or_end_marker_is_a_lower_bound():
    s = ir.probe_stream({"received": 90, "lost": 10, "complete": False}, 0,
                        {"stream_pps": 100})
    assert (s["lost"], s["loss_known"], s["offered_fps"]) == (10, False, 100)
    frames, fps, time_ms, lower = ir.total_loss([s])
    assert (frames, fps, time_ms, lower) == (10, 100, 100.0, True)


def test_rate_windows_share_bins_that_straddle_windows():
    tl = (100.0, 0.02, [10] * 100)                         # 500 fps for 2 s
    rates = ir.rate_windows([tl], 100.01, 102.11, 0.1)     # windows offset from the bins
    assert rates[:19] == pytest.approx([50.0] * 19)
    assert rates[-1] is None                               # past the timeline's end


def test_stats_mean_min_max_and_sample_stdev():
    st = ir.stats([1, 2, None, 3, 4])
    assert (st["mean"], st["min"], st["max"], st["n"]) == (2.5, 1, 4, 4)
    assert st["stdev"] == pytest.approx(1.2909944)
    assert ir.stats([5])["stdev"] is None
    assert ir.stats([None])["n"] == 0 and ir.stats([None])["mean"] is None


# ---------------------------------------------------------------- anomalies from edited copies

@pytest.mark.parametrize("probes,expected", [
    (["probe-0.json"], {("not-steady", "before")}),             # half the rate: off, not lost
    (["probe-0.json", "probe-1.json"], {("not-steady", "before"), ("loss-outside", "before")})])
def test_dip_before_t0_is_not_steady_and_a_gap_is_loss_outside_the_window(run, probes,
                                                                           expected):
    def dip(data):                       # T0 - 1.5 s .. T0 - 1.3 s: bins 75..84
        for k in range(75, 85):
            data["timeline"]["counts"][k] = 0
    for name in probes:
        edit_json(os.path.join(run, "raw", CLICKUP, name), dip)
    m = metrics(CLICKUP, run)
    assert m["detail"]["pre"]["steady"] is False
    assert {(a["kind"], a["phase"]) for a in m["detail"]["anomalies"]} == expected


def test_unexpected_outcome_is_an_anomaly_with_its_reason(run):
    def refuse(up):
        up.update(outcome="refused", reason="package signature mismatch", T2_ms=None)
    edit_json(os.path.join(run, "raw", CLICKUP, "upgrade.json"), refuse)
    m = metrics(CLICKUP, run)
    assert m["T4_ms"] is None
    assert "outcome refused, expected done (package signature mismatch)" in m["anomalies"]


@pytest.mark.parametrize("name", TRIAL_FILES)
@pytest.mark.parametrize("damage", ["missing", "garbage"])
def test_a_missing_or_broken_file_is_an_anomaly_not_a_crash(run, name, damage):
    path = os.path.join(run, "raw", CLICKUP, name)
    if damage == "missing":
        os.unlink(path)
    else:
        with open(path, "w") as f:
            f.write('{"truncated": ')
    m = metrics(CLICKUP, run)
    stem = name.split(".")[0]
    assert any(stem in a for a in m["anomalies"]), m["anomalies"]
    report = ir.build_report(run)                          # and the report still renders
    text = render_markdown(report)
    assert "ISSU Disruption Impact (clickup, upgrade)" in text
    assert "%s: %s" % (CLICKUP, m["anomalies"][0]) in text.split("## Anomalies")[1]


def test_file_of_the_wrong_shape_is_reported(run):
    with open(os.path.join(run, "raw", CLICKUP, "upgrade.json"), "w") as f:
        f.write("[]")
    edit_json(os.path.join(run, "raw", CLICKUP, "probe-0.json"),
              lambda d: d.update(timeline={"t0_mono": "soon", "bin_s": 0.02, "counts": []}))
    m = metrics(CLICKUP, run)
    assert m["outcome"] == "unknown"
    assert "upgrade.json holds no JSON object" in m["anomalies"]
    assert any(a.startswith("probe-0.json has unexpected content") for a in m["anomalies"])


# ---------------------------------------------------------------- the run's report

def test_switchover_frames_in_flight_are_reported_per_trial(run):
    raw = os.path.join(run, "raw")
    assert "frames in flight" not in render_markdown(ir.build_report(run))
    fl = {"quiet_s": 0.005, "went_quiet": True, "old_rx_until_move_answered": 31,
          "old_rx_after_move_answered": 5, "last_old_rx_after_barriers_ms": 3.724,
          "held_ms": 10.056}
    edit_json(os.path.join(raw, CLICKUP, "upgrade.json"), lambda d: d.update(in_flight=fl))
    report = ir.build_report(run)
    m = next(t for t in report["trials"] if t["detail"]["tag"] == CLICKUP)
    assert m["detail"]["phases"]["in_flight"] == fl
    text = render_markdown(report)
    assert "## Switchover: frames in flight at the move" in text
    assert "| %s | 31 | 5 | 3.72 | 10.1 | yes |" % CLICKUP in text, text


def test_each_network_the_trials_ran_on_is_described_with_its_strategies(run):
    raw = os.path.join(run, "raw")
    text = render_markdown(ir.build_report(run))
    assert "## Topology\n\nite (5 clients -- Linux bridge" in text      # one network: no sub-heads
    pair = {"name": "sdn", "clients": 5, "servers": 4, "switch": "ovs", "bw_mbit": None,
            "nf": "nat", "config": "configs/nat.click", "nf_nodes": ["nf1", "nf2"],
            "description": "5 clients -- Open vSwitch -- NF pair -- Open vSwitch -- 4 servers"}
    edit_json(os.path.join(raw, CLICKUP, "trial.json"), lambda d: d.update(topology=pair))
    report = ir.build_report(run)
    assert [(t["name"], t["strategies"]) for t in report["topologies"]] == \
        [("ite", ["clickup", "native"]), ("sdn", ["clickup"])]
    text = render_markdown(report)
    assert "### ite: clickup, native\n" in text and "### sdn: clickup\n" in text
    assert "[ NF: nat, pair nf1 + nf2 ]" in text


def test_table_aggregates_each_strategy_and_scenario(run):
    raw = os.path.join(run, "raw")
    shutil.copytree(os.path.join(raw, CLICKUP), os.path.join(raw, "clickup-upgrade-t2"))
    edit_json(os.path.join(raw, "clickup-upgrade-t2", "trial.json"), lambda d: d.update(trial=2))
    edit_json(os.path.join(raw, "clickup-upgrade-t2", "probe-0.json"),
              lambda d: d.update(received=3490))            # 10 frames lost
    edit_json(os.path.join(raw, "clickup-upgrade-t2", "upgrade.json"),
              lambda d: d.update(T1_ms=20.8))
    report = ir.build_report(run)
    row = next(r for r in report["table"] if (r["strategy"], r["scenario"]) ==
               ("clickup", "upgrade"))
    assert row["trials"] == 2 and row["as_expected"] == 2
    tpl = row["TPL_frames"]
    assert (tpl["mean"], tpl["min"], tpl["max"], tpl["n"]) == (5, 0, 10, 2)
    assert tpl["stdev"] == pytest.approx(7.0710678)
    assert row["T1_ms"]["mean"] == pytest.approx(18.8)
    assert row["TPL_time_ms"]["max"] == 5.0                 # 10 / 2000 fps * 1000
    native = next(r for r in report["table"] if r["strategy"] == "native")
    assert native["TPL_frames"]["n"] == 1 and native["TPL_frames"]["stdev"] is None
    assert [(r["strategy"], r["scenario"]) for r in report["table"]] == \
        [("native", "upgrade"), ("clickup", "upgrade"), ("clickup", "abort")]
    assert "ISSU Disruption Impact (clickup, upgrade): 5 frames lost (mean of 2 trials; " \
        "min 0, max 10) of 2000 fps offered; impact time 2.5 ms (TPL_time); the probes' " \
        "longest gap 2.4 ms." in report["statements"]


def test_report_md_has_the_statements_table_and_sections(run):
    md, js = ir.write_report(run)
    assert (md, js) == (os.path.join(run, "report.md"), os.path.join(run, "report.json"))
    with open(md) as f:
        text = f.read()
    assert "- ISSU Disruption Impact (clickup, upgrade): 0 frames lost (mean of 1 trial; " \
        "min 0, max 0) of 2000 fps offered; impact time 0.0 ms (TPL_time); the probes' " \
        "longest gap 2.4 ms.\n" in text
    assert "- ISSU Disruption Impact (native, upgrade): at least 1200 frames lost" in text
    assert "| clickup | upgrade | 1 | 1/1 | none | 16.8 (16.8-16.8) | 0.7 (0.7-0.7) | " \
        "0 (0-0) | 0 (0-0) | 0.05 (0.05-0.05) |" in text
    assert "| native | upgrade | 1 | 1/1 | none | 350 (350-350) | 1075 (1075-1075) | " \
        "1200 (1200-1200) (lower bound) | 1200 (1200-1200) | 12 (12-12) | 1437 (1437-1437) |" \
        in text
    sections = ["## ISSU Disruption Impact", "## Time results", "## Recommended parameters",
                "## DUT", "## Topology", "## Load model", "## Pre-ISSU verification",
                "## Post-ISSU verification", "## Negative stimuli (churn)",
                "## Abort and rollback", "## Anomalies"]
    assert [text.index(s) for s in sections] == sorted(text.index(s) for s in sections)
    assert "RFC 7654 section 7.1" in text
    assert "No figure here comes from the NF's own counters" in text
    assert "```diff\n--- pre-ISSU flatconfig" in text
    assert "| Traffic load | 2000 fps, 1696000 bit/s" in text          # 2000 x 106 x 8
    assert "| Port speed | unshaped veth |" in text
    assert "injected staging delay 2 s (injected" in text.split("## Abort and rollback")[1]
    anomalies = text.split("## Anomalies")[1]
    during, after = anomalies.split("### After the upgrade")
    assert "native-upgrade-t1: control-plane gap 1150 ms > 100 ms" in during
    assert "native-upgrade-t1: NAT mappings: 2 changed, 2 vanished of 4" in after
    with open(js) as f:
        data = json.load(f)
    assert [t["detail"]["tag"] for t in data["trials"]] == [NATIVE, CLICKUP, ABORT]
    assert data["dut"]["git_commit"] == "f1x7u4e0000000000000000000000000000c0de1"


def test_command_line_writes_the_report_and_says_where(run, capsys):
    assert ir.main([run]) == 0
    assert capsys.readouterr().out.splitlines()[0] == os.path.join(run, "report.md")
    assert os.path.getsize(os.path.join(run, "report.md")) > 1000


def test_not_a_run_folder_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(ir.ReportError, match="no such folder"):
        ir.build_report(str(tmp_path / "nowhere"))
    assert ir.main([str(tmp_path)]) == 2
    assert "expected a run folder written by `clickup run issu`" in capsys.readouterr().err


def test_run_without_trials_reports_that_nothing_was_measured(tmp_path):
    shutil.copy(os.path.join(FIXTURE, "provenance.json"), tmp_path / "provenance.json")
    report = ir.build_report(str(tmp_path))
    assert report["trials"] == [] and report["statements"] == []
    text = render_markdown(report)
    assert "no trial folders under raw/" in text and "No trials." in text


# ---------------------------------------------------------------- the figure

def test_issu_figure_writes_png_and_pdf_with_a_panel_per_strategy_and_scenario(run):
    pytest.importorskip("matplotlib")
    from plots import cli
    from plots.common import load, pyplot
    paths = cli.plot_dir(run)
    assert paths == [os.path.join(run, "issu.png"), os.path.join(run, "issu.pdf")]
    with open(paths[0], "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    with open(paths[1], "rb") as f:
        assert f.read(5) == b"%PDF-"
    loaded = load(run)
    assert loaded.experiment == "issu"
    plt = pyplot()
    fig, ax = plt.subplots()
    try:
        loaded.spec.draw(ax, loaded)
        panels = [a for a in fig.axes if a is not ax]
        labels = ax.get_legend_handles_labels()[1]
        texts = [t.get_text() for p in panels for t in p.texts]
    finally:
        plt.close(fig)
    assert len(panels) == 3                                 # native/upgrade, clickup x 2
    assert {"T2: upgrade run", "T0: upgrade requested (driver)",
            "upgrade end (after T3)"} <= set(labels)
    assert any("injected staging delay 2 s (injected" in t for t in texts)
    assert loaded.subtitle.startswith("the UDP probe receivers' summed timelines per 20 ms bin")

"""Plot scripts on the committed synthetic fixtures (tests/fixtures/results/).

Each figure must come out as a real PNG and PDF, draw the paper's reference
values beside ours, and say where the data came from; a run folder is
recognised from its own files or its place under results/<name>/, and a
folder that cannot be plotted fails with a message saying what was expected.
"""

import argparse
import json
import os
import shutil

import pytest

pytest.importorskip("matplotlib")

from plots import cli, lookup                                   # noqa: E402
from plots.common import PAPER_LABEL, PlotError, footnote, legend_name, load, pyplot  # noqa: E402

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "results")
EXPERIMENTS = ("transfer-point", "transfer-delay", "integration", "firewall-wget")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
STAMP = "20260102-030405"


def run_copy(tmp_path, experiment, name=None, drop=(), summary=None, provenance=None):
    """A copy of a fixture at tmp/results/<name>/<stamp>/, without the files in
    ``drop``; ``summary``/``provenance`` may edit that file's JSON in place."""
    dst = tmp_path / "results" / (name or experiment) / STAMP
    shutil.copytree(os.path.join(FIXTURES, experiment), dst)
    for f in drop:
        os.unlink(dst / f)
    for f, edit in (("summary.json", summary), ("provenance.json", provenance)):
        if edit:
            data = json.loads((dst / f).read_text())
            edit(data)
            (dst / f).write_text(json.dumps(data))
    return str(dst)


def no_args(prov):
    prov["args"] = {}


def clickup_plot(argv):
    """Run `clickup plot ARGV` through the subcommand's own parser."""
    p = argparse.ArgumentParser(prog="clickup")
    cli.add_parser(p.add_subparsers(dest="cmd"))
    args = p.parse_args(["plot"] + argv)
    return args.func(args)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_writes_png_and_pdf_beside_the_data(tmp_path, experiment):
    d = run_copy(tmp_path, experiment)
    assert clickup_plot([d]) == 0
    png, pdf = (os.path.join(d, "%s.%s" % (experiment, ext)) for ext in ("png", "pdf"))
    with open(png, "rb") as f:
        head = f.read(8)
    assert head == PNG_MAGIC and os.path.getsize(png) > 20000
    with open(pdf, "rb") as f:
        data = f.read()
    assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
    assert len(data) > 5000


def test_out_writes_elsewhere_and_leaves_the_fixture_alone(tmp_path):
    before = sorted(os.listdir(os.path.join(FIXTURES, "integration")))
    paths = cli.plot_dir(os.path.join(FIXTURES, "integration"), out=str(tmp_path / "figs"))
    assert paths == [str(tmp_path / "figs" / "integration.png"),
                     str(tmp_path / "figs" / "integration.pdf")]
    assert all(os.path.getsize(p) > 0 for p in paths)
    assert sorted(os.listdir(os.path.join(FIXTURES, "integration"))) == before


@pytest.mark.parametrize("experiment,refs", [("transfer-point", 3), ("transfer-delay", 2),
                                             ("integration", 2), ("firewall-wget", 3)])
def test_paper_values_drawn_beside_every_strategy(experiment, refs):
    run = load(os.path.join(FIXTURES, experiment))
    plt = pyplot()
    fig, ax = plt.subplots()
    try:
        run.spec.draw(ax, run)
        labels = ax.get_legend_handles_labels()[1]
        xlabel, ylabel, yscale = ax.get_xlabel(), ax.get_ylabel(), ax.get_yscale()
    finally:
        plt.close(fig)
    assert sum(lab.startswith(PAPER_LABEL + ": ") for lab in labels) == refs
    assert {legend_name(run, s) for s in run.strategies()} <= set(labels)
    assert "(s" in xlabel + ylabel or "(ms" in ylabel
    if experiment == "transfer-delay":
        assert xlabel == "injected upgrade delay (s)"
    if experiment == "integration":
        assert yscale == "log" and "ms" in ylabel


def test_failed_trials_leave_the_median_and_show_in_the_legend():
    run = load(os.path.join(FIXTURES, "transfer-point"))
    p = next(p for p in run.points if p["strategy"] == "native" and p["x"] == 90)
    assert (p["median"], p["min"], p["max"], p["n"]) == (88.65, 88.0, 89.3, 2)
    assert legend_name(run, "native").endswith("[1 failed]")
    assert "failed" not in legend_name(run, "clickup")


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_detected_from_summary(experiment):
    assert load(os.path.join(FIXTURES, experiment)).experiment == experiment


def test_detected_from_folder_name_and_recomputed_without_summary(tmp_path):
    d = run_copy(tmp_path, "transfer-delay", drop=["summary.json"], provenance=no_args)
    run = load(d)
    assert run.experiment == "transfer-delay"
    assert run.points == load(os.path.join(FIXTURES, "transfer-delay")).points


def test_detected_from_bench_arguments_and_alias(tmp_path):
    def bench(prov):
        prov["args"] = {"cmd": "bench", "bench": "integration"}
    d = run_copy(tmp_path, "integration", name="elsewhere", drop=["summary.json"],
                 provenance=bench)
    assert load(d).experiment == "integration"
    # as `clickup bench integration` writes it: no experiment column, no points
    d = run_copy(tmp_path, "integration", name="bench-integration", drop=["summary.json",
                                                                          "provenance.json"])
    with open(os.path.join(d, "results.csv")) as f:
        text = f.read().replace("experiment,", "").replace("integration,", "")
    with open(os.path.join(d, "results.csv"), "w") as f:
        f.write(text)
    run = load(d)
    assert run.experiment == "integration" and "experiment" not in run.rows[0]


def test_experiment_folder_means_its_latest_run(tmp_path):
    d = run_copy(tmp_path, "firewall-wget")
    os.symlink(STAMP, os.path.join(os.path.dirname(d), "latest"))
    assert load(os.path.dirname(d)).dir == d


def test_undetectable_folder_says_how_to_name_it(tmp_path):
    d = run_copy(tmp_path, "transfer-point", name="mystery", provenance=no_args,
                 summary=lambda summ: summ.pop("experiment"))
    with open(os.path.join(d, "results.csv")) as f:
        text = f.read().replace("transfer-point,", "x,")
    with open(os.path.join(d, "results.csv"), "w") as f:
        f.write(text)
    with pytest.raises(PlotError, match="--experiment"):
        load(d)
    assert load(d, experiment="transfer-point").experiment == "transfer-point"


def test_folder_without_results_csv_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(PlotError, match="no results.csv in .*clickup run"):
        load(str(tmp_path))
    assert clickup_plot([str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("clickup plot: no results.csv in %s" % tmp_path)
    assert not any(f.endswith((".png", ".pdf")) for f in os.listdir(tmp_path))


def test_header_only_results_csv_is_a_clear_error(tmp_path):
    d = run_copy(tmp_path, "transfer-point")
    with open(os.path.join(d, "results.csv")) as f:
        header = f.readline()
    with open(os.path.join(d, "results.csv"), "w") as f:
        f.write(header)
    with pytest.raises(PlotError, match="has no rows"):
        load(d)


def test_summary_in_seconds_is_converted_and_a_wrong_unit_loses(tmp_path, capsys):
    reference = load(os.path.join(FIXTURES, "integration")).points

    def in_seconds(summ):
        for p in summ["points"]:
            p.update(unit="s", median=p["median"] / 1e3, min=p["min"] / 1e3,
                     max=p["max"] / 1e3)
    run = load(run_copy(tmp_path / "a", "integration", summary=in_seconds))
    assert [p["median"] for p in run.points] == pytest.approx(
        [p["median"] for p in reference])
    assert capsys.readouterr().err == ""

    def mislabelled(summ):
        for p in summ["points"]:
            p["unit"] = "s"                       # values still in ms
    run = load(run_copy(tmp_path / "b", "integration", summary=mislabelled))
    assert run.points == reference
    assert "disagrees with results.csv" in capsys.readouterr().err


def test_footnote_names_commit_date_and_host(tmp_path):
    run = load(os.path.join(FIXTURES, "transfer-point"))
    note = footnote(run)
    assert "commit f1x7u4e0000000000000000000000000000c0de1" in note
    assert "started 2026-01-02T03:04:05" in note and "host fixture-host" in note

    def dirty(prov):
        prov["git_dirty"] = True
    assert "uncommitted changes" in footnote(load(run_copy(tmp_path, "transfer-point",
                                                           provenance=dirty)))


def test_every_experiment_has_a_figure():
    for name in EXPERIMENTS:
        assert lookup(name).name == name
    assert lookup("bench-integration").name == "integration"
    assert lookup("no-such-thing") is None

"""The ISSU benchmark's load tools on loopback: the probe's timeline, connection churn, NAT
mapping set-up and the control-plane poll (no root, no network namespaces)."""

import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from experiments import churn, ctlpoll, mappings, probe, traffic
from nf.config import parse_string
from nf.control import ControlServer
from nf.router import Router

ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- probe

def _recv(*args):
    """Start `probe recv` on a free port; return (process, port)."""
    p = subprocess.Popen([sys.executable, "-m", "experiments.probe", "recv", "--port", "0",
                          *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    ready = json.loads(p.stdout.readline())
    assert ready["ready"] is True
    return p, ready["port"]


def _finish(p):
    out, err = p.communicate(timeout=15)
    assert p.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def test_probe_timeline_counts_every_datagram_on_the_monotonic_clock(tmp_path):
    out_file = tmp_path / "probe-0.json"
    p, port = _recv("--duration", "10", "--out", str(out_file))
    time.sleep(0.2)                     # bins before the first datagram must be zeros
    t_send = time.monotonic()
    sender = probe.send("127.0.0.1", port, 1000, 0.3)
    t_end = time.monotonic()
    res = _finish(p)
    assert sender["sent"] == 300
    assert res["complete"] and res["sent"] == 300
    tl = res["timeline"]
    counts = tl["counts"]
    assert tl["bin_s"] == 0.01
    assert sum(counts) == res["received"] > 0
    first = next(k for k, c in enumerate(counts) if c)
    last = max(k for k, c in enumerate(counts) if c)
    assert first >= 10 and not any(counts[:first])
    # The bins are on our monotonic clock: the first arrival's bin holds the send start.
    assert tl["t0_mono"] < t_send
    assert tl["t0_mono"] + first * 0.01 <= t_send + 0.15
    assert tl["t0_mono"] + (first + 1) * 0.01 >= t_send
    # ... and the timeline covers the whole stream (the last datagram leaves at about
    # t_send + 0.299), up to the receiver's end (the end markers, sent before t_end).
    assert tl["t0_mono"] + len(counts) * 0.01 >= t_send + 0.29
    assert tl["t0_mono"] + len(counts) * 0.01 <= t_end + 1.0, "not on to --duration"
    assert 0.1 <= (last - first) * 0.01 <= 1.0
    assert json.loads(out_file.read_text()) == res, "--out writes the printed result"


def test_probe_bin_zero_disables_the_timeline():
    p, port = _recv("--duration", "10", "--bin", "0")
    probe.send("127.0.0.1", port, 1000, 0.05)
    res = _finish(p)
    assert res["received"] == 50 and res["complete"]
    assert "timeline" not in res


def test_probe_flows_come_each_from_its_own_source_port():
    p, port = _recv("--duration", "10", "--bin", "0")
    sender = probe.send("127.0.0.1", port, 2000, 0.1, flow_packets=4)
    res = _finish(p)
    assert sender["flows"] == 50 and res["received"] == 200 and res["lost"] == 0
    assert res["flows"] == 50 and res["flows_split"] == 0 and res["split_first"] == []


def test_probe_tells_a_flow_whose_datagrams_came_from_two_sources():
    """What a NAT that mapped a flow twice looks like to the receiver."""
    p, port = _recv("--duration", "10", "--bin", "0")
    a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for seq, (sock, flow) in enumerate([(a, 0), (a, 0), (a, 1), (b, 1), (b, 2)]):
            sock.sendto(probe.HDR.pack(probe.MAGIC | probe.FLOW, seq, 0.0)
                        + probe.FLOW_ID.pack(flow) + b"\0" * 8, ("127.0.0.1", port))
        a.sendto(probe.HDR.pack(probe.MAGIC | probe.END, 5, 0.0), ("127.0.0.1", port))
        res = _finish(p)
        both = sorted("127.0.0.1:%d" % s.getsockname()[1] for s in (a, b))
    finally:
        a.close()
        b.close()
    assert res["received"] == 5 and res["flows"] == 3 and res["flows_split"] == 1
    assert [f for f, _ in res["split_first"]] == [1]
    assert res["split_first"][0][1] == both


@pytest.mark.parametrize("args, says", [
    (["--flow-packets", "-1"], "--flow-packets must be 0"),
    (["--flow-packets", "2", "--size", "24"], "needs --size of at least 32"),
])
def test_probe_send_rejects_bad_flow_options(capsys, args, says):
    with pytest.raises(SystemExit) as e:
        probe.main(["send", "127.0.0.1", "--port", "9", "--duration", "0.01", *args])
    assert e.value.code == 2
    assert says in capsys.readouterr().err


@pytest.mark.parametrize("args, says", [
    (["--bin", "-1"], "--bin must be >= 0"),
    (["--bin", "0.000001", "--duration", "3600"], "choose a larger --bin"),
    (["--duration", "0"], "--duration must be positive"),
    (["--out", "/nonexistent-dir/x.json"], "directory does not exist"),
])
def test_probe_recv_rejects_bad_options(capsys, args, says):
    with pytest.raises(SystemExit) as e:
        probe.main(["recv", "--port", "0", *args])
    assert e.value.code == 2
    assert says in capsys.readouterr().err


def test_probe_timeline_bins_by_arrival_time():
    tl = probe.Timeline(100.0, 0.01)
    for t in (100.001, 100.009, 100.035):
        tl.add(t)
    tl.close(100.061)
    assert tl.as_dict() == {"t0_mono": 100.0, "bin_s": 0.01, "counts": [2, 0, 0, 1, 0, 0, 0]}


# ----------------------------------------------------------------------------- churn

@pytest.fixture
def server():
    srv = traffic.serve(2000, 0, "127.0.0.1")
    yield srv
    srv.close()


def _closed_port():
    """A port where nothing listens: bound but not listening, so a SYN gets an RST."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    return s


def test_churn_completes_every_connection_to_a_healthy_server(server):
    res = churn.churn("127.0.0.1", server.port, 50, 0.5)
    assert res["attempted"] == 25
    assert res["completed"] == 25 and res["failed"] == 0 and res["errors"] == {}
    assert len(server.connections) == 25
    assert all(sent == 2000 for sent, _ in server.connections)
    assert 0 < res["latency_ms"]["median"] <= res["latency_ms"]["max"] < 2000
    assert set(res) == {"rate", "duration_s", "attempted", "completed", "failed", "errors",
                        "latency_ms"}


def test_churn_counts_refused_connections():
    s = _closed_port()
    try:
        res = churn.churn("127.0.0.1", s.getsockname()[1], 20, 0.25)
    finally:
        s.close()
    assert res["attempted"] == 5 and res["completed"] == 0 and res["failed"] == 5
    assert res["errors"] == {"refused": 5}
    assert res["latency_ms"] == {"median": None, "max": None}


@pytest.mark.parametrize("mode, kinds", [("reset", {"reset", "eof_early"}),
                                         ("eof", {"eof_early"})])
def test_churn_counts_broken_connections(mode, kinds):
    with traffic.serve(200000, 0, "127.0.0.1", fail_after=1000, fail_mode=mode,
                       fail_count=1000) as srv:
        res = churn.churn("127.0.0.1", srv.port, 40, 0.25)
    assert res["attempted"] == 10 and res["completed"] == 0 and res["failed"] == 10
    assert set(res["errors"]) <= kinds and sum(res["errors"].values()) == 10


def test_churn_never_waits_for_a_slow_connection():
    # Stalled connections hold both workers; the schedule goes on and counts "busy".
    with traffic.serve(200000, 0, "127.0.0.1", fail_after=1000, fail_mode="stall",
                       fail_count=1000) as srv:
        res = churn.churn("127.0.0.1", srv.port, 50, 0.2, timeout=0.5, workers=2)
    assert res["attempted"] == 10
    assert res["errors"] == {"timeout": 2, "busy": 8}


def test_churn_cli_prints_and_writes_the_result(server, tmp_path, capsys):
    out = tmp_path / "churn.json"
    assert churn.main(["127.0.0.1", "--port", str(server.port), "--rate", "20",
                       "--duration", "0.25", "--out", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(out.read_text())
    assert printed["rate"] == 20 and printed["completed"] == 5


@pytest.mark.parametrize("args, says", [
    (["--rate", "0", "--duration", "1"], "--rate (connections per second)"),
    (["--rate", "5", "--duration", "1", "--port", "70000"], "--port must be 1-65535"),
    (["--rate", "5", "--duration", "1", "--path", "file"], "--path must start with /"),
])
def test_churn_cli_rejects_bad_options(capsys, args, says):
    argv = ["127.0.0.1", "--port", "8080", *args]
    with pytest.raises(SystemExit) as e:
        churn.main(argv)
    assert e.value.code == 2
    assert says in capsys.readouterr().err


# ----------------------------------------------------------------------------- mappings

def _udp_receiver():
    r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    r.bind(("127.0.0.1", 0))
    r.settimeout(2.0)
    return r


def _free_base(n):
    """A base port with n + 1 free UDP ports above it (checked just now)."""
    for base in range(42000, 60000, 500):
        socks = []
        try:
            for port in range(base, base + n + 1):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("0.0.0.0", port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    pytest.skip("no free range of UDP ports")


def test_mappings_come_from_distinct_ports_and_skip_a_busy_one():
    rcv = _udp_receiver()
    base = _free_base(20)
    busy = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    busy.bind(("0.0.0.0", base + 3))
    try:
        res = mappings.establish("127.0.0.1", rcv.getsockname()[1], 20, base_port=base)
        seen = {rcv.recvfrom(64)[1][1] for _ in range(20)}
    finally:
        busy.close()
        rcv.close()
    assert res == {"sent": 20, "skipped": 1, "ports": [base, base + 20]}
    assert seen == set(range(base, base + 21)) - {base + 3}


def test_mappings_reject_a_range_past_65535(capsys):
    with pytest.raises(ValueError, match="at most 65436"):
        mappings.establish("127.0.0.1", 9, 100, base_port=65500)
    with pytest.raises(SystemExit):
        mappings.main(["127.0.0.1", "--port", "9", "--count", "0"])
    assert "--count must be at least 1" in capsys.readouterr().err


def test_mapping_datagrams_are_ignored_by_a_probe_receiver():
    assert len(mappings.PAYLOAD) < probe.HDR.size


# ----------------------------------------------------------------------------- ctlpoll

CONFIG = """
src :: RatedSource(RATE 1000);
src -> c :: Counter -> Discard;
"""


@pytest.fixture
def nf(control_router):
    return control_router(CONFIG)


def _lines(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def test_ctlpoll_records_answers_then_errors_and_keeps_going(nf, tmp_path):
    r, t, path = nf
    out = tmp_path / "control.jsonl"
    start = time.monotonic()
    with ctlpoll.Poller(path, interval=0.01, out=str(out)) as p:
        time.sleep(0.3)
        answered = p.samples
        elapsed = time.monotonic() - start
        r.please_stop()
        t.join(5)
        assert not t.is_alive()
        time.sleep(0.2)
    assert not p._thread.is_alive()
    recs = _lines(out)
    assert len(recs) == p.samples
    ok = recs[:answered]
    assert 10 <= answered <= elapsed / 0.01 + 2, "polls at the interval, never in bursts"
    assert all(x["ok"] and x["value"] == "idle" and x["latency_ms"] >= 0 for x in ok)
    after = recs[answered:]
    assert len(after) >= 5 and not after[-1]["ok"]
    assert any("no control socket" in x.get("error", "") for x in after)
    assert [x["t"] for x in recs] == sorted(x["t"] for x in recs)
    assert p.ok_samples == sum(x["ok"] for x in recs)


def test_ctlpoll_reconnects_when_the_nf_comes_back(tmp_path):
    path = str(tmp_path / "ctl.sock")
    p = ctlpoll.Poller(path, handler="version", interval=0.01)
    assert not p.poll()["ok"]
    r = Router(parse_string(CONFIG))
    ControlServer(r, path)
    r.initialize()
    t = threading.Thread(target=r.run, kwargs={"install_signals": False}, daemon=True)
    t.start()
    try:
        rec = p.poll()
    finally:
        p.stop()
        r.please_stop()
        t.join(5)
    assert rec["ok"] and rec["value"]


def test_ctlpoll_start_inside_with_starts_once(nf, tmp_path):
    _, _, path = nf
    with ctlpoll.Poller(path, out=str(tmp_path / "c.jsonl")).start() as p:
        time.sleep(0.05)
    assert p.samples >= 2 and p.ok_samples == p.samples
    assert [t.name for t in threading.enumerate()].count("ctlpoll") == 0
    with pytest.raises(RuntimeError, match="make a new one"):
        p.start()


def test_ctlpoll_skips_missed_polls_after_a_stall():
    # Poll 3 ran, then the poller stalled until 10.5 intervals: next is slot 11, not 4.
    assert ctlpoll.next_slot(0.0, 0.01, 3, 0.105) == 11
    assert ctlpoll.next_slot(0.0, 0.01, 3, 0.031) == 4


def test_ctlpoll_cli_polls_for_the_duration(nf, tmp_path, capsys):
    _, _, path = nf
    out = tmp_path / "control.jsonl"
    assert ctlpoll.main([path, "--duration", "0.2", "--out", str(out),
                         "--handler", "c.count"]) == 0
    summary = json.loads(capsys.readouterr().out)
    recs = _lines(out)
    assert summary["samples"] == len(recs) >= 5 and summary["ok"] == len(recs)
    assert all(x["value"].isdigit() for x in recs)


def test_ctlpoll_rejects_bad_options(capsys, tmp_path):
    with pytest.raises(SystemExit):
        ctlpoll.main(["x.sock", "--duration", "1", "--out", str(tmp_path / "o"),
                      "--interval", "0"])
    assert "--interval must be positive" in capsys.readouterr().err


def test_ctlpoll_follows_a_pair_to_the_member_that_answers(control_router, tmp_path):
    _, _, alive = control_router(CONFIG)
    dead = str(tmp_path / "gone.sock")
    out = tmp_path / "control.jsonl"
    with ctlpoll.Poller([dead, alive], interval=0.01, out=str(out)):
        time.sleep(0.2)
    recs = _lines(out)
    assert recs[0]["ok"] is False and recs[0]["path"] == dead
    assert all(r["ok"] and r["path"] == alive for r in recs[1:]) and len(recs) > 5

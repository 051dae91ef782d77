"""The ``switchover`` strategy on the sdn pair (root): a make-before-break upgrade of an
active/standby NAT pair with live replication, moved by the SDN controller; and the
controller's automatic failover when the active NF is killed.  Judged by the traffic
tools: the download client (resets, restarts, content) and a sequence-numbered UDP stream
(loss)."""

import json
import os
import signal
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
V2 = os.path.join(ROOT, "upgrades", "nat-v2")


def _probe(tb, rate, seconds, flow_packets=0):
    """Start a probe receiver on srv1 and a sender on h1 (every ``flow_packets`` datagrams
    a new flow, if given); returns a function that waits for both and gives the
    receiver's report."""
    from experiments.testbed import _line
    rcv = tb.python(tb.topo.servers[0], ["experiments.probe", "recv", "--duration",
                                         str(seconds + 20), "--bin", "0"])
    assert json.loads(_line(rcv, 15))["ready"]
    snd = tb.python(tb.topo.clients[0], ["experiments.probe", "send", tb.server_ip(),
                                         "--rate", str(rate), "--duration", str(seconds),
                                         "--flow-packets", str(flow_packets)])

    def result():
        snd.wait(seconds + 30)
        out, _ = rcv.communicate(timeout=30)
        return json.loads(out.decode().strip().splitlines()[-1])
    return result


def _failures(trace):
    with open(trace) as f:
        return [json.loads(line)["ev"] for line in f
                if json.loads(line)["ev"] in ("reset", "timeout", "eof_early", "restart")]


@pytest.mark.root
def test_switchover_keeps_a_download_and_a_udp_stream_whole(tmp_path):
    from experiments.testbed import Testbed
    from topologies.sdn import rest_port, steering_status
    size = 8 * 1000 * 1000
    trace = str(tmp_path / "trace.jsonl")
    with Testbed(bw_mbit=20, pair=True) as tb:
        tb.serve(size)
        probe = _probe(tb, 2000, 8)
        client = tb.transfer(trace, size, announce=(25,))
        assert tb.wait_announced(client, 25, timeout=30)
        rec = tb.upgrade(V2, "nat.click", "switchover",
                         record_path=str(tmp_path / "upgrade.json"))
        summary = tb.finish_transfer(client, timeout=60)
        received = probe()
        status = steering_status(rest_port(tb.net))
    assert rec["outcome"] == "done", rec
    assert all(rec[k] is not None for k in ("T1_ms", "T2_ms", "T3_ms", "T4_ms")), rec
    assert status["active"] == "nf2" and status["standby"] == "nf1"
    assert summary["ok"] and summary["verified"] and summary["restarts"] == 0, summary
    assert _failures(trace) == []
    assert received["complete"] and received["lost"] == 0, received


@pytest.mark.root
def test_new_flows_crossing_switchovers_are_mapped_once_and_lose_nothing(tmp_path):
    """The in-flight window: a stream of new flows, each 8 datagrams in 4 ms from a new
    source port, so that a flow is starting whenever the controller moves the traffic.
    The new active holds what reaches it until it has the old one's last mappings, so
    each flow reaches the server from one outside port (a flow whose next datagram met
    the new NF before its mapping had would have a second, random port) and no
    datagram is lost.  Two switchovers: there and back."""
    from experiments.testbed import Testbed
    from topologies.sdn import rest_port, steering_status
    with Testbed(bw_mbit=20, pair=True) as tb:
        probe = _probe(tb, 2000, 10, flow_packets=8)
        recs = []
        for _ in range(2):
            time.sleep(1.0)
            recs.append(tb.upgrade(V2, "nat.click", "switchover"))
        received = probe()
        status = steering_status(rest_port(tb.net))
    assert [r["outcome"] for r in recs] == ["done", "done"], recs
    assert [m["to"] for m in status["moves"]] == ["nf2", "nf1"], status
    for r in recs:
        fl = r["in_flight"]
        assert fl["went_quiet"] and fl["old_rx_until_move_answered"] > 0, fl
    assert received["complete"] and received["lost"] == 0, received
    assert received["flows"] == 2500 and received["flows_split"] == 0, received


@pytest.mark.root
def test_killing_the_active_nf_fails_over_with_the_replicated_state(tmp_path):
    from experiments.testbed import Testbed
    from topologies.sdn import rest_port, steering_status
    size = 6 * 1000 * 1000
    trace = str(tmp_path / "trace.jsonl")
    with Testbed(bw_mbit=20, pair=True) as tb:
        tb.serve(size)
        client = tb.transfer(trace, size, announce=(30,))
        assert tb.wait_announced(client, 30, timeout=30)
        tb.net.get("nf1").nfproc.send_signal(signal.SIGKILL)
        summary = tb.finish_transfer(client, timeout=60)
        status = steering_status(rest_port(tb.net))
    assert status["active"] == "nf2" and status["failovers"] >= 1, status
    # nf2 had the connection's mapping from the replica: the download just goes on.
    assert summary["ok"] and summary["verified"] and summary["restarts"] == 0, summary


@pytest.mark.root
def test_a_new_version_that_cannot_start_on_the_standby_is_rolled_back_unnoticed(tmp_path):
    from experiments.testbed import Testbed
    from topologies.sdn import rest_port, steering_status
    broken = os.path.join(ROOT, "upgrades", "nat-v2-broken")
    size = 4 * 1000 * 1000
    trace = str(tmp_path / "trace.jsonl")
    with Testbed(bw_mbit=20, pair=True) as tb:
        tb.serve(size)
        probe = _probe(tb, 2000, 5)
        client = tb.transfer(trace, size, announce=(25,))
        assert tb.wait_announced(client, 25, timeout=30)
        rec = tb.upgrade(broken, "nat.click", "switchover")
        summary = tb.finish_transfer(client, timeout=60)
        received = probe()
        status = steering_status(rest_port(tb.net))
    assert rec["outcome"] == "rolled-back" and "did not start" in rec["reason"], rec
    assert status["active"] == "nf1" and status["moves"] == [], status
    assert summary["ok"] and summary["restarts"] == 0 and _failures(trace) == []
    assert received["lost"] == 0, received


@pytest.mark.root
def test_switchover_of_a_firewall_pair_keeps_a_download_whole(tmp_path):
    """The bump-in-the-wire firewall, steered by port (wire mode): the replicated session
    lets nf2 pass the download's packets after the move, and the Log element is in."""
    from experiments.testbed import Testbed
    from nf.control import ControlClient
    from topologies.sdn import rest_port, steering_status
    log_pkg = os.path.join(ROOT, "upgrades", "firewall-log")
    size = 8 * 1000 * 1000
    trace = str(tmp_path / "trace.jsonl")

    def count(tb, nf, element="to_in"):          # to_in: the download's data frames
        with ControlClient(tb.topo.nf_paths(nf)["control"]) as c:
            return int(c.read(element + ".count"))
    with Testbed(bw_mbit=20, pair=True, nf="firewall") as tb:
        tb.serve(size)
        client = tb.transfer(trace, size, announce=(25,))
        assert tb.wait_announced(client, 25, timeout=30)
        through = {nf: count(tb, nf) for nf in ("nf1", "nf2")}
        rec = tb.upgrade(log_pkg, "firewall.click", "switchover",
                         record_path=str(tmp_path / "upgrade.json"))
        summary = tb.finish_transfer(client, timeout=60)
        status = steering_status(rest_port(tb.net))
        # nf2 was restarted in T1: its counters hold only what it carried as the active
        after, logged = count(tb, "nf2"), count(tb, "nf2", "log")
    # The standby forwards nothing (it holds even the few IPv6 router solicitations the
    # root namespace's end of its links sends it directly, not through the switch).
    assert through["nf1"] > 1000 and through["nf2"] == 0, through
    assert rec["outcome"] == "done", rec
    assert status["mode"] == "wire" and status["active"] == "nf2", status
    assert after > 1000 and logged > 100, (after, logged)
    assert summary["ok"] and summary["verified"] and summary["restarts"] == 0, summary
    assert _failures(trace) == []


def test_the_old_active_is_quiet_only_with_nothing_read_lately_and_nothing_queued(
        monkeypatch):
    """wait_quiet (no root: the NF's status is played back): a frame read within the
    quiet time (0.5 s here, so that a stalled test process cannot pass it), or one still
    queued unread, means not yet."""
    from experiments import switchover as so
    t0 = time.monotonic() - 1.0                                      # a second ago
    seen = []

    def replication(control):
        st = [{"rx_frames": 10, "last_rx_mono": time.monotonic(), "rx_pending": 0},  # now
              {"rx_frames": 11, "last_rx_mono": t0, "rx_pending": 1},   # one queued, unread
              {"rx_frames": 12, "last_rx_mono": t0, "rx_pending": 0},   # quiet
              ][len(seen)]
        seen.append(st)
        return st
    monkeypatch.setattr(so, "replication", replication)
    st, quiet = so.wait_quiet("nf1.sock", since=t0 - 1, quiet=0.5, poll=0.01)
    assert quiet and st["rx_frames"] == 12 and len(seen) == 3

    monkeypatch.setattr(so, "replication", lambda control: {
        "rx_frames": 1, "last_rx_mono": t0, "rx_pending": 1})
    st, quiet = so.wait_quiet("nf1.sock", since=t0 - 1, quiet=0.5, timeout=0.05, poll=0.01)
    assert not quiet and st["rx_pending"] == 1

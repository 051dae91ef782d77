"""``clickup run issu``: the RFC 7654 ISSU benchmark, every strategy measured the same way.

One trial is one upgrade of the NAT on a fresh ``ite`` network (4 clients, 3 servers
behind Linux bridges, plus one client and one server for churn), under the load model of
RFC 7654 section 4.2:

* measured streams -- sequence-numbered UDP: project probe streams (experiments.probe,
  which report loss and the longest gap between arrivals, and a 10 ms receive timeline)
  and iperf3 UDP streams (which report loss), between different client/server pairs;
* alongside -- long-lived paced TCP downloads, a set of established NAT mappings, and
  optionally churn: new short-lived TCP connections per second from hosts outside the
  measured streams (section 5.5);
* the control plane -- the NF's control socket polled every 10 ms (experiments.ctlpoll).

Sequence (sections 5.1-5.4): load on, steady for ``warmup`` s; pre-ISSU snapshot (status,
flat configuration, NAT mappings, resources); T0 and the upgrade request; the NF's own
phase record (T1, T2, T3) when it ends; post-ISSU snapshot; load off.  Scenarios:
``upgrade`` (to upgrades/nat-v2), ``abort`` (an injected staging delay, aborted during
staging; in-place strategies only, as only they stage for that long) and ``rollback``
(to upgrades/nat-v2-broken, whose new element fails on purpose when it starts).  Every
figure comes from the tools' files in ``raw/<strategy>-<scenario>-t<trial>/``
(docs/results.md); experiments.issu_report turns them
into results.csv rows and report.md / report.json.
"""

import json
import os
import shutil
import subprocess
import sys
import time

from experiments.issu_report import COLUMNS, csv_row, trial_metrics
from experiments.runner import experiment
from experiments.testbed import expect_ready

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = {"upgrade": os.path.join(ROOT, "upgrades", "nat-v2"),
            "abort": os.path.join(ROOT, "upgrades", "nat-v2"),
            "rollback": os.path.join(ROOT, "upgrades", "nat-v2-broken")}
EXPECTED = {"upgrade": "done", "abort": "aborted", "rollback": "rolled-back"}
STRATEGIES = ("native", "hotswap", "clickup-restart", "clickup", "switchover")
STAGING_STRATEGIES = ("hotswap", "clickup")     # those that sleep the injected delay staging
SCENARIOS = ("upgrade", "abort", "rollback")
ABORT_DELAY_S, ABORT_AFTER_S = 3.0, 0.5         # injected staging delay; abort after this

# The load model, overridable with --load key=value,...  (rates per stream).
LOAD = {"streams": 4, "stream_pps": 1000, "iperf_streams": 2, "iperf_pps": 1000,
        "payload_bytes": 64, "tcp": 2, "tcp_rate_Bps": 250000, "mappings": 1000, "churn": 0,
        "duration_s": 20.0, "warmup_s": 4.0}
QUICK = {"streams": 2, "iperf_streams": 1, "tcp": 1, "mappings": 200, "duration_s": 12.0,
         "warmup_s": 3.0}
ALIASES = {"pps": "stream_pps", "iperf": "iperf_streams", "iperf_pps": "iperf_pps",
           "payload": "payload_bytes", "tcp_rate": "tcp_rate_Bps", "duration": "duration_s",
           "warmup": "warmup_s"}
CLIENTS, SERVERS = 4, 3                          # measured pairs; churn gets one more each
PROBE_PORT, IPERF_PORT, FILE_PORT, SINK_PORT = 9000, 5201, 8000, 9


def parse_load(text, quick=False):
    """``streams=4,pps=1000,churn=50,...`` -> the load model (defaults, then --quick's,
    then these).  Raises ValueError naming the bad item and the known keys."""
    load = dict(LOAD, **(QUICK if quick else {}))
    for item in filter(None, (text or "").split(",")):
        key, eq, value = item.partition("=")
        key = ALIASES.get(key.strip(), key.strip())
        if not eq or key not in LOAD:
            raise ValueError("--load: expected key=value with key one of %s; got %r"
                             % (", ".join(sorted(set(LOAD) | set(ALIASES))), item))
        try:
            num = float(value)
        except ValueError:
            raise ValueError("--load: %s needs a number, got %r" % (key, value)) from None
        if num < 0 or (key != "churn" and key.endswith(("pps", "_s", "Bps")) and num == 0):
            raise ValueError("--load: %s must be positive, got %r" % (key, value))
        load[key] = num if key.endswith("_s") else int(num)
    if load["payload_bytes"] < 24:
        raise ValueError("--load: payload must be at least 24 bytes (the probe's header)")
    if load["duration_s"] < load["warmup_s"] + 6:
        raise ValueError("--load: duration (%g s) must leave at least 6 s after the warmup "
                         "(%g s) for the upgrade and the post-ISSU checks"
                         % (load["duration_s"], load["warmup_s"]))
    load["frame_bytes"] = 14 + 20 + 8 + load["payload_bytes"]
    return load


def runs(strategies, scenarios):
    """(strategy, scenario) pairs of one trial: abort only where staging can be aborted."""
    out = []
    for scenario in scenarios:
        for s in strategies:
            if scenario != "abort" or s in STAGING_STRATEGIES:
                out.append((s, scenario))
    return out


@experiment("issu", COLUMNS, "scenario", "TPL_frames",
            "RFC 7654 ISSU benchmark: T1/T2/TPL/T3/T4 per strategy, report.md", unit="frames",
            trials=5,
            options=[("--load", {"metavar": "K=V,...", "help": "load model, e.g. streams=4,"
                                 "pps=1000,iperf=2,tcp=2,mappings=1000,churn=50,duration=20"}),
                     ("--scenarios", {"metavar": "S,...", "help": "upgrade,abort,rollback "
                                      "(default: all three)"})],
            finish="experiments.issu_report:write_report")
def issu(ctx):
    try:
        load = parse_load(ctx.args.load, ctx.args.quick)
    except ValueError as e:
        raise SystemExit("clickup run issu: %s" % e) from None
    strategies = ctx.choose(ctx.args.strategies, STRATEGIES,
                            ("native", "clickup") if ctx.args.quick else STRATEGIES)
    scenarios = ctx.choose(ctx.args.scenarios, SCENARIOS, SCENARIOS, "scenarios")
    plan = runs(strategies, scenarios)
    if not plan:
        raise SystemExit("clickup run issu: nothing to run (abort needs one of %s)"
                         % ", ".join(STAGING_STRATEGIES))
    trials = ctx.args.trials
    ctx.params = {"load": load, "trials": trials, "runs": plan,
                  "abort": {"injected_delay_s": ABORT_DELAY_S, "abort_after_s": ABORT_AFTER_S,
                            "note": "the staging delay is injected, not measured"}}
    total, done = trials * len(plan), 0
    for trial in range(1, trials + 1):
        for strategy, scenario in plan:
            tag = "%s-%s-t%d" % (strategy, scenario, trial)
            if ctx.done(strategy=strategy, scenario=scenario, trial=trial):
                done += 1                        # --resume: measured already
                continue
            ctx.progress(done, total, "trial %d: %s, %s" % (trial, strategy, scenario))
            folder = os.path.join(ctx.raw, tag)
            try:
                Trial(folder, strategy, scenario, trial, load).run()
            except RuntimeError as e:
                print("  trial %s failed: %s (its files are kept)" % (tag, e), file=sys.stderr)
            m = trial_metrics(folder)
            ctx.row(**csv_row(m))
            done += 1
            print("  %s: outcome %s, TPL %s frames (%s ms), T2 %s ms, control gap %s ms"
                  % (tag, m.get("outcome"), m.get("TPL_frames"), m.get("TPL_time_ms"),
                     m.get("T2_ms"), m.get("control_gap_ms")), file=sys.stderr)
    ctx.progress(done, total, "issu done")


class Trial:
    """One upgrade under load on a fresh network; writes the trial folder."""

    def __init__(self, folder, strategy, scenario, trial, load):
        self.dir, self.strategy, self.scenario, self.trial = folder, strategy, scenario, trial
        self.load = load
        os.makedirs(folder, exist_ok=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def run(self):
        from experiments.ctlpoll import Poller
        from experiments.testbed import Testbed
        churn = self.load["churn"] > 0
        with Testbed(clients=CLIENTS + churn, servers=SERVERS + churn,
                     pair=self.strategy == "switchover") as tb:
            self.tb = tb
            self.meta = self._meta()
            pairs = self._pairs()
            self.meta["pairs"] = pairs
            self._save_meta()
            with Poller(tb.controls(), out=self.path("control.jsonl")).start():
                self._establish_mappings()
                self.meta["t_load_start_mono"] = time.monotonic()
                tools = self._start_load(pairs)
                time.sleep(self.load["warmup_s"])
                self._snapshot("pre.json")
                self._upgrade()
                time.sleep(1.0)                  # the new version settles: then verify
                self._snapshot("post.json")
                self._finish_load(tools)
                self.meta["t_load_end_mono"] = time.monotonic()
            self._save_meta()

    # -- the trial's description --------------------------------------------------------------
    def _meta(self):
        return {"strategy": self.strategy, "scenario": self.scenario, "trial": self.trial,
                "expected_outcome": EXPECTED[self.scenario],
                "package": os.path.relpath(PACKAGES[self.scenario], ROOT),
                "injected_delay_s": ABORT_DELAY_S if self.scenario == "abort" else 0.0,
                "load": self.load,
                "topology": self.tb.topo.describe(),
                "nf_pid": self.tb.active_nf().nfproc.pid}

    def _save_meta(self):
        with open(self.path("trial.json"), "w") as f:
            json.dump(self.meta, f, indent=1)

    def _pairs(self):
        """Client/server pairs, spread so streams cross different pairs (section 4.2)."""
        topo, load = self.tb.topo, self.load
        c, s = topo.clients[:CLIENTS], topo.servers[:SERVERS]
        pairs = []

        def add(kind, i, client, server, port):
            pairs.append({"kind": kind, "index": i, "client": client, "server": server,
                          "src": topo.host_ip(client), "dst": topo.host_ip(server),
                          "dport": port})
        for i in range(load["streams"]):
            add("probe", i, c[i % len(c)], s[i % len(s)], PROBE_PORT + i)
        for i in range(load["iperf_streams"]):
            add("iperf", i, c[(i + 1) % len(c)], s[(i + 1) % len(s)], IPERF_PORT + i)
        for i in range(load["tcp"]):
            add("tcp", i, c[(i + 2) % len(c)], s[(i + 2) % len(s)], FILE_PORT)
        add("mappings", 0, c[0], s[0], SINK_PORT)
        if load["churn"]:
            add("churn", 0, topo.clients[-1], topo.servers[-1], FILE_PORT)
        return pairs

    # -- load ---------------------------------------------------------------------------------
    def _establish_mappings(self):
        p = next(x for x in self.meta["pairs"] if x["kind"] == "mappings")
        if not self.load["mappings"]:
            return
        proc = self.tb.python(p["client"], ["experiments.mappings", p["dst"], "--port",
                                            str(p["dport"]), "--count",
                                            str(self.load["mappings"])])
        out, err = proc.communicate(timeout=60)
        if proc.returncode != 0:
            raise RuntimeError("establishing NAT mappings failed: %s" % err.decode()[-300:])
        self.meta["mappings_established"] = json.loads(out.decode().strip().splitlines()[-1])

    def _start_load(self, pairs):
        load, tb = self.load, self.tb
        dur = load["duration_s"]
        tools = {"receivers": [], "senders": [], "iperf": [], "tcp": [], "churn": None}
        servers_with_files = set()
        for p in pairs:
            if p["kind"] == "probe":
                tools["receivers"].append((p, tb.python(p["server"], [
                    "experiments.probe", "recv", "--port", str(p["dport"]), "--duration",
                    str(dur + 15), "--bin", "0.01"])))
            elif p["kind"] == "iperf":                # one-off server, stopped by PID
                self.tb.popen(p["server"], ["iperf3", "-s", "-1", "-p", str(p["dport"])])
            elif p["kind"] in ("tcp", "churn") and p["server"] not in servers_with_files:
                servers_with_files.add(p["server"])
                size = 1000 if p["kind"] == "churn" else int(load["tcp_rate_Bps"] * dur)
                rate = None if p["kind"] == "churn" else load["tcp_rate_Bps"]
                tb.serve(size, server=tb.topo.servers.index(p["server"]), rate=rate)
        for p, r in tools["receivers"]:
            expect_ready(r, "probe receiver on %s" % p["server"])
        time.sleep(0.3)                          # iperf3 servers listening
        for p in pairs:
            if p["kind"] == "probe":
                tools["senders"].append((p, tb.python(p["client"], [
                    "experiments.probe", "send", p["dst"], "--port", str(p["dport"]),
                    "--rate", str(load["stream_pps"]), "--duration", str(dur),
                    "--size", str(load["payload_bytes"])])))
            elif p["kind"] == "iperf":
                bps = load["iperf_pps"] * load["payload_bytes"] * 8
                tools["iperf"].append((p, self.tb.popen(p["client"], [
                    "iperf3", "-c", p["dst"], "-p", str(p["dport"]), "-u", "-b", str(bps),
                    "-l", str(load["payload_bytes"]), "-t", str(int(round(dur))), "-J"])))
            elif p["kind"] == "tcp":
                tools["tcp"].append((p, tb.python(p["client"], [
                    "experiments.traffic", "get", "http://%s:%d/file" % (p["dst"], p["dport"]),
                    "--out", self.path("tcp-%d.jsonl" % p["index"]), "--give-up",
                    str(dur + 60)])))
            elif p["kind"] == "churn":
                tools["churn"] = tb.python(p["client"], [
                    "experiments.churn", p["dst"], "--port", str(p["dport"]), "--rate",
                    str(load["churn"]), "--duration", str(dur), "--out",
                    self.path("churn.json")])
        return tools

    def _finish_load(self, tools):
        limit = self.load["duration_s"] + 60
        receivers = {p["index"]: proc for p, proc in tools["receivers"]}
        for p, proc in tools["senders"]:
            out = _last_json(proc, limit, "probe sender to %s" % p["dst"])
            self._receiver_result(p, receivers[p["index"]], out)
        for p, proc in tools["iperf"]:
            try:
                out, _ = proc.communicate(timeout=limit)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, _ = proc.communicate()
            with open(self.path("iperf-%d.json" % p["index"]), "wb") as f:
                f.write(out)
        for p, proc in tools["tcp"]:
            try:
                proc.wait(limit)
            except subprocess.TimeoutExpired:
                proc.kill()
        if tools["churn"] is not None:
            try:
                tools["churn"].wait(limit)
            except subprocess.TimeoutExpired:
                tools["churn"].kill()

    def _receiver_result(self, p, receiver, sender_report):
        rec = _last_json(receiver, 30, "probe receiver on %s" % p["server"]) or \
            {"error": "the probe receiver on %s printed no result" % p["server"]}
        rec["sender"] = sender_report
        with open(self.path("probe-%d.json" % p["index"]), "w") as f:
            json.dump(rec, f)

    # -- the upgrade and its verification -------------------------------------------------------
    def _upgrade(self):
        from nf.upgrade.client import request_upgrade
        pkg = PACKAGES[self.scenario]
        req = {"to": os.path.join(pkg, "nat.click"), "elements": os.path.join(pkg, "elements"),
               "strategy": self.strategy, "delay": self.meta["injected_delay_s"]}
        self.meta["t_request_mono"] = time.monotonic()
        self._save_meta()
        if self.strategy == "switchover":          # driven from outside the NFs
            self.tb.upgrade(pkg, "nat.click", "switchover", req["delay"],
                            record_path=self.path("upgrade.json"))
            return
        try:
            rec = request_upgrade(self.tb.control, req, timeout=120,
                                  abort_after=ABORT_AFTER_S if self.scenario == "abort"
                                  else None)
        except Exception as e:                   # the traffic's fate is the measurement
            rec = {"error": "%s: %s" % (type(e).__name__, e)}
        with open(self.path("upgrade.json"), "w") as f:
            json.dump(rec, f, indent=1, sort_keys=True)

    def _snapshot(self, name):
        from nf.control import ControlClient, ControlError
        snap = {"t_mono": time.monotonic()}
        try:
            node = self.tb.active_nf()              # the pair's active one after a switchover
            snap["nf"] = node.name
            snap["resources"] = resources(node.nfproc.pid, self.dir)
            with ControlClient(node.control, timeout=10) as c:
                snap["status"] = c.read("upgrade_status")
                snap["flatconfig"] = c.read("flatconfig")
                snap["mappings"] = c.read("rw.mappings")
                snap["table_size"] = int(c.read("rw.table_size"))
        except (ControlError, OSError, ValueError, RuntimeError) as e:
            snap["error"] = "%s: %s" % (type(e).__name__, e)
        with open(self.path(name), "w") as f:
            json.dump(snap, f)


def resources(pid, folder):
    """The NF's memory and CPU time and the machine's free memory, disk and load (5.1)."""
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    out["nf_rss_kb"] = int(line.split()[1])
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        out["nf_cpu_s"] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        out["nf_error"] = "process %d not readable" % pid
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                out["mem_available_kb"] = int(line.split()[1])
    out["disk_free_mb"] = round(shutil.disk_usage(folder).free / 2**20, 1)
    out["load1"] = os.getloadavg()[0]
    return out


def _last_json(p, timeout, what):
    """The last JSON line ``p`` prints before it exits (None if it prints none)."""
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
    for line in reversed(out.decode(errors="replace").splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                break
    print("  %s printed no result: %s" % (what, err.decode(errors="replace")[-300:]),
          file=sys.stderr)
    return None


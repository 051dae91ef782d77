"""report.md of the RFC 7654 ISSU benchmark: the report dict of experiments.issu_report
rendered as the sections of RFC 7654 section 7 (disruption impact, time results, the
recommended parameters, DUT, topology, load model, pre- and post-ISSU verification, negative
stimuli, abort and rollback, anomalies).  Presentation only: every number is computed there.
"""

import json

from experiments.issu_report import PHASE_TITLES, PHASES, TABLE_FIELDS, fmt, injected_text, num

def _cell(st):
    return "n/a" if not st["n"] else "%s (%s-%s)" % (fmt(st["mean"]), fmt(st["min"]),
                                                     fmt(st["max"]))


def _md_table(head, rows):
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return out


def _md_time(report):
    head = ["strategy", "scenario", "trials", "as expected", "injected delay", "T1 (ms)",
            "T2 (ms)", "TPL_frames", "TPL_time (ms)", "T3 (ms)", "T4 (ms)",
            "longest probe gap (ms)", "control gap (ms)"]
    rows = [[r["strategy"], r["scenario"], r["trials"], "%d/%d" % (r["as_expected"], r["trials"]),
             injected_text(r["injected_delay_s"]).replace(" (injected, not a measured cost)",
                                                           " (injected)") or "none"]
            + [_cell(r[f]) + (" (lower bound)" if f == "TPL_frames" and r["lower_bound"]
                              else "") for f in TABLE_FIELDS] for r in report["table"]]
    out = ["## Time results", "",
           "Mean (min-max) over the trials of each strategy and scenario; T4 = T1 + T2 + T3. "
           "A T1 that includes an injected delay is labelled so: that delay is injected, not "
           "a measured cost.", ""]
    out += _md_table(head, rows)
    out += ["", "Per trial:", ""]
    out += _md_table(["trial", "outcome (expected)", "T1", "T2", "T3", "T4", "TPL_frames",
                      "TPL_time", "offered fps", "longest gap", "control gap", "TCP survived",
                      "anomalies"],
                     [[m["detail"]["tag"], "%s (%s)" % (m["outcome"], m["expected_outcome"]),
                       fmt(m["T1_ms"]) + (" incl. injected %s s" % fmt(
                           m["detail"]["injected_delay_s"]) if m["detail"]["injected_delay_s"]
                           else ""),
                       fmt(m["T2_ms"]), fmt(m["T3_ms"]), fmt(m["T4_ms"]),
                       ("at least " if m["tpl_lower_bound"] else "") + fmt(m["TPL_frames"]),
                       fmt(m["TPL_time_ms"]), fmt(m["offered_fps"]), fmt(m["longest_gap_ms"]),
                       fmt(m["control_gap_ms"]), "%s/%s" % (m["tcp_survived"], m["tcp_sessions"]),
                       len(m["anomalies"])] for m in report["trials"]])
    return out


def _md_in_flight(report):
    """Switchover trials: the frames in flight at the controller's move (none if no trial
    of the run moved traffic between NFs)."""
    rows = []
    for m in report["trials"]:
        fl = m["detail"]["phases"].get("in_flight")
        if fl:
            rows.append([m["detail"]["tag"], fl.get("old_rx_until_move_answered"),
                         fl.get("old_rx_after_move_answered"),
                         fmt(num(fl.get("last_old_rx_after_barriers_ms"))),
                         fmt(num(fl.get("held_ms"))),
                         "yes" if fl.get("went_quiet") else "**no**"])
    if not rows:
        return []
    return ["## Switchover: frames in flight at the move", "",
            "Frames the old active NF received from the start of the controller's move to "
            "its answer, and after it (counted over its control socket); when its last "
            "frame came, after the barriers (its own clock); and how long the new active "
            "held what it received until it had the old one's last state and was promoted "
            "(from the barriers).  Held frames are delivered, not lost: their loss would "
            "show in TPL_frames.", ""] + _md_table(
        ["trial", "to old until the move's answer", "to old after it",
         "last at old after barriers (ms)", "held at new (ms)", "old went quiet"], rows) + [""]


def _md_dut(d):
    return ["## DUT (device under test)", "",
            "- NF: %s, configuration %s" % (d["nf"] or "unknown", d["config"] or "unknown"),
            "- upgrade packages: %s" % (", ".join(d["packages"]) or "unknown"),
            "- NF versions (from -> to, the NF's digests): %s"
            % (", ".join(d["nf_versions"]) or "unknown"),
            "- clickup %s, git commit %s%s" % (d["clickup_version"] or "unknown",
                                               d["git_commit"] or "unknown",
                                               " (uncommitted changes)" if d["git_dirty"] else ""),
            "- host %s, %s, %s CPUs, Python %s" % (d["host"] or "unknown", d["platform"] or
                                                   "unknown platform", d["cpus"] or "?",
                                                   d["python"] or "?"),
            "- tools: %s" % (", ".join("%s: %s" % kv for kv in sorted(d["tools"].items()))
                             or "unknown"),
            "- run started %s" % (d["started"] or "at an unknown date"), ""]


def _md_topologies(topos):
    out = ["## Topology", ""]
    if not topos:
        return out + ["unknown: no trial.json recorded the network.", ""]
    for t in topos:
        out += _md_topology(t, len(topos) > 1)
    return out


def _md_topology(t, several):
    clients = sorted({p["client"] for p in t.get("pairs", []) if p.get("client")})
    servers = sorted({p["server"] for p in t.get("pairs", []) if p.get("server")})
    sw = t.get("switch") or "switch"
    left = ", ".join(clients) or "%s clients" % t.get("clients", "?")
    right = ", ".join(servers) or "%s servers" % t.get("servers", "?")
    nodes = t.get("nf_nodes") or []
    nf = "[ NF: %s%s ]" % (t.get("nf") or "?", ", pair %s" % " + ".join(nodes)
                           if len(nodes) > 1 else "")
    line = "%s --veth-- (%s) --veth-- %s --veth-- (%s) --veth-- %s" % (left, sw, nf, sw, right)
    pad = len(left) + len(" --veth-- (%s) --veth-- " % sw)
    name = t.get("name") or "unknown topology"
    out = ["### %s: %s" % (name, ", ".join(t.get("strategies") or ["?"])), ""] \
        if several else []
    out += ["%s (%s)" % (name, t.get("description") or "no description"), "",
            "```", line, "%-*s%s" % (pad, "clients (inside)", "device under test"), "```", ""]
    if t.get("pairs"):
        out += _md_table(["kind", "index", "client", "server", "src", "dst", "dport"],
                         [[p.get(k) for k in ("kind", "index", "client", "server", "src", "dst",
                                              "dport")] for p in t["pairs"]])
        out.append("")
    return out


def _md_load(load, report):
    if not load:
        return ["## Load model", "", "unknown: no trial.json recorded the load.", ""]
    delays = sorted({(m["scenario"], m["detail"]["injected_delay_s"]) for m in report["trials"]
                     if m["detail"]["injected_delay_s"]})
    out = ["## Load model", "",
           "Steady streams (RFC 7654 section 4.2), IPv4 only:", "",
           "- %s UDP probe streams x %s fps (sequence-numbered; loss, longest gap and a "
           "receive timeline)" % (fmt(load.get("streams")), fmt(load.get("stream_pps"))),
           "- %s iperf3 UDP streams x %s fps (loss)" % (fmt(load.get("iperf_streams")),
                                                      fmt(load.get("iperf_pps"))),
           "- payload %s bytes, frame %s octets" % (fmt(load.get("payload_bytes")),
                                                   fmt(load.get("frame_bytes"))),
           "- %s long-lived TCP sessions at %s B/s each (survival)"
           % (fmt(load.get("tcp")), fmt(load.get("tcp_rate_Bps"))),
           "- %s established NAT mappings (state delta)" % fmt(load.get("mappings")),
           "- churn: %s" % ("%s new TCP connections/s" % fmt(load["churn"])
                            if load.get("churn") else "none"),
           "- duration %s s per trial" % fmt(load.get("duration_s"))]
    out += ["- %s: %s" % (sc, injected_text([d])) for sc, d in delays]
    out.append("- divergence from production: a synthetic steady load on virtual links; no "
               "production traffic template")
    if load.get("differs_between_trials"):
        out.append("- the load differs between trials: the first trial's is shown")
    return out + [""]


def _md_pre(report):
    out = ["## Pre-ISSU verification", "",
           "Status idle (no upgrade under way) and steady state from the receivers: each 100 ms "
           "of the 2 s before T0 within 10 % of the offered probe rate (section 5.1).", ""]
    rows = []
    for m in report["trials"]:
        pre = m["detail"]["pre"]
        res = pre.get("resources") or {}
        rows.append([m["detail"]["tag"], pre.get("status") or "unknown",
                     {True: "yes", False: "no", None: "unknown"}[pre.get("steady")],
                     fmt(num(res.get("nf_rss_kb"))), fmt(num(res.get("mem_available_kb"))),
                     fmt(num(res.get("disk_free_mb"))), fmt(num(res.get("load1")))])
    return out + _md_table(["trial", "status", "steady", "NF RSS (kB)", "memory available (kB)",
                            "disk free (MB)", "load1"], rows) + [""]


def _md_post(report):
    out = ["## Post-ISSU verification", ""]
    rows = []
    for m in report["trials"]:
        res = m["detail"]["post"].get("resources") or {}
        rows.append([m["detail"]["tag"], m["mappings_before"], m["mappings_kept"],
                     m["mappings_changed"], m["mappings_vanished"],
                     "%s/%s" % (m["tcp_survived"], m["tcp_sessions"]),
                     fmt(num(res.get("nf_rss_kb"))), fmt(m["detail"]["rss_ratio"])])
    out += ["State delta (NAT mappings before -> after) and TCP sessions:", ""]
    out += _md_table(["trial", "mappings before", "kept", "changed", "vanished",
                      "TCP survived", "NF RSS after (kB)", "RSS after/before"], rows)
    out += ["", "### Configuration delta", ""]
    for m in report["trials"]:
        delta = m["detail"]["config_delta"]
        if delta is None:
            out.append("- %s: unknown (a snapshot is missing)" % m["detail"]["tag"])
        elif not delta:
            out.append("- %s: no configuration change" % m["detail"]["tag"])
        else:
            out += ["- %s:" % m["detail"]["tag"], "", "```diff", delta, "```", ""]
    return out + [""]


def _md_churn(report):
    out = ["## Negative stimuli (churn)", ""]
    rows = [[m["detail"]["tag"], fmt(num(c.get("rate"))), fmt(num(c.get("attempted"))),
             fmt(num(c.get("completed"))), fmt(num(c.get("failed"))),
             json.dumps(c.get("errors") or {}, sort_keys=True),
             fmt(num((c.get("latency_ms") or {}).get("median"))),
             fmt(num((c.get("latency_ms") or {}).get("max")))]
            for m in report["trials"] for c in [m["detail"]["churn"]] if isinstance(c, dict)]
    if not rows:
        return out + ["No churn was applied (section 5.5 is optional).", ""]
    return out + _md_table(["trial", "rate (/s)", "attempted", "completed", "failed",
                            "errors", "median latency (ms)", "max latency (ms)"], rows) + [""]


def _md_abort(report):
    out = ["## Abort and rollback", ""]
    if not report["abort_rollback"]:
        return out + ["No abort or rollback scenario in this run.", ""]
    rows = [[m["detail"]["tag"], m["expected_outcome"], m["outcome"],
             "yes" if m["outcome"] == m["expected_outcome"] else "**no**",
             injected_text([m["detail"]["injected_delay_s"]]) or "none",
             fmt(m["T1_ms"]), ("at least " if m["tpl_lower_bound"] else "") + fmt(m["TPL_frames"]),
             "%s/%s" % (m["tcp_survived"], m["tcp_sessions"]),
             "%s/%s" % (m["mappings_kept"], m["mappings_before"]),
             {None: "unknown", "": "none"}.get(m["detail"]["config_delta"], "changed")]
            for m in report["abort_rollback"]]
    return out + _md_table(["trial", "expected", "outcome", "as expected", "injected delay",
                            "T1 (ms)", "TPL_frames", "TCP survived", "mappings kept",
                            "config delta"], rows) + [""]


def _md_anomalies(report):
    out = ["## Anomalies", ""]
    for phase in PHASES:
        kinds = report["anomalies"][phase]
        out += ["### " + PHASE_TITLES[phase], ""]
        if not kinds:
            out += ["None.", ""]
            continue
        for k in kinds:
            out.append("- **%s** (%d): %s" % (k["kind"], len(k["trials"]), "; ".join(
                "%s: %s" % (t["tag"], t["text"]) for t in k["trials"])))
        out.append("")
    return out


def render_markdown(report):
    """report.md: the sections of RFC 7654 section 7."""
    out = ["# ISSU benchmark report (RFC 7654)", "", "Run folder: `%s`" % report["run_dir"], "",
           report["sources"], "", "## ISSU Disruption Impact", ""]
    out += ["- " + s for s in report["statements"]] or ["No trials."]
    out.append("")
    out += _md_time(report)
    out += ["", "## Recommended parameters (RFC 7654 section 7)", ""]
    out += _md_table(["parameter", "value"], [[p["parameter"], p["value"]]
                                             for p in report["parameters"]])
    out.append("")
    out += _md_in_flight(report)
    out += _md_dut(report["dut"])
    out += _md_topologies(report["topologies"])
    out += _md_load(report["load"], report)
    out += _md_pre(report)
    out += _md_post(report)
    out += _md_churn(report)
    out += _md_abort(report)
    out += _md_anomalies(report)
    return "\n".join(out).rstrip() + "\n"

"""The RFC 7654 ISSU report, computed from a run folder's saved files only (no root, no network).

``trial_metrics(raw/<tag>/)`` turns one trial folder (the data contract in
docs/results.md) into the results.csv row of the trial plus a ``detail``
dict; ``build_report(run_dir)`` aggregates every trial into the RFC's final report (section 7)
and ``write_report`` saves it as report.md and report.json.

Every loss and outage figure comes from the test tools outside the NF (probe receivers,
iperf3 servers, TCP clients, churn client, control poll), never from the NF's own counters
(RFC 7654 section 7.1); T1/T2/T3 are the NF's phase record on the CLOCK_MONOTONIC that the
tools share.  A stream whose loss is unknown adds neither frames nor offered rate, so
TPL_time = TPL_frames / offered_fps * 1000 stays "frames over the rate that produced them",
and TPL_frames is flagged as a lower bound.  A missing or broken file never stops the
report: it becomes an anomaly of the trial and the figures it feeds are left unknown (None).
"""

import argparse
import difflib
import glob
import json
import math
import os
import re
import statistics
import sys

from experiments.iperf import IperfError, parse_json, udp_summary
from experiments.results import resolve_run, save_json
from experiments.runner import load_json_lines

EXPECTED = {"upgrade": "done", "abort": "aborted", "rollback": "rolled-back"}
SCENARIOS = ("upgrade", "abort", "rollback")
STRATEGY_ORDER = ("none", "native", "hotswap", "clickup-restart", "clickup", "switchover")

# results.csv, written by the driver (experiments/issu.py) from trial_metrics.
COLUMNS = ["experiment", "strategy", "scenario", "trial", "outcome", "expected_outcome",
           "T1_ms", "T2_ms", "T3_ms", "T4_ms", "TPL_frames", "TPL_time_ms", "tpl_lower_bound",
           "longest_gap_ms", "offered_fps", "control_gap_ms", "tcp_survived", "tcp_sessions",
           "mappings_before", "mappings_kept", "mappings_changed", "mappings_vanished",
           "churn_failed", "anomalies"]
TABLE_FIELDS = ("T1_ms", "T2_ms", "TPL_frames", "TPL_time_ms", "T3_ms", "T4_ms",
                "longest_gap_ms", "control_gap_ms")

CONTROL_GAP_LIMIT_MS = 100.0   # a management poll unanswered longer than this is an outage
STEADY_S, WINDOW_S = 2.0, 0.1  # steady state: the 2 s before T0, judged every 100 ms (4.2)
STEADY_TOLERANCE = 0.10        # ... each window's receive rate within 10 % of the offered
LOW_RATE = 0.5                 # "well below": under half the offered rate, so sender jitter
                               # never trips it while a real outage of >= 50 ms does
SETTLE_S = 1.0                 # loss later than this after the upgrade's end is not its own
EDGE_S = 0.5                   # senders start and stop at slightly different times: the
                               # first and last 0.5 s of the probes' traffic are not judged
RSS_GROWTH_LIMIT = 1.5         # NF resident memory after / before the upgrade
EPS = 1e-6                     # seconds: float slack when comparing times
PHASES = ("before", "during", "after", "data")
PHASE_TITLES = {"before": "Before the upgrade (pre-ISSU verification)",
                "during": "During the upgrade",
                "after": "After the upgrade (post-ISSU analysis)",
                "data": "Missing or unreadable data"}
TAG_RE = re.compile(r"^(?P<strategy>.+)-(?P<scenario>[a-z]+)-t(?P<trial>\d+)$")
MAPPING_RE = re.compile(r"^\s*(\w+)\s+(\S+)\s+->\s+(\S+)")
SOURCES = ("Where the numbers come from (RFC 7654 section 7.1): frame loss (TPL_frames), "
           "impact time (TPL_time) and the longest gap are counted by the test tools outside "
           "the NF -- the UDP probe receivers (sequence numbers, receive timelines) and the "
           "iperf3 servers; TCP session survival by the download clients; churn failures by "
           "the churn client; the control-plane gap by the control poll (every 10 ms).  No "
           "figure here comes from the NF's own counters.  T1, T2 and T3 are the NF's phase "
           "record (upgrade.json), timestamps on CLOCK_MONOTONIC, which the tools share; T0 "
           "is the driver's upgrade request.  TPL_time = TPL_frames / offered fps * 1000.")


class ReportError(Exception):
    """A folder that is not an ISSU run or trial folder; the message says what was expected."""


# ---------------------------------------------------------------- small helpers

def num(value):
    """``value`` as a float, or None when it is missing or not a number (bools included)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _r(value, digits=3):
    return None if value is None else round(value, digits)


def count(value):
    """A count read as a float (num) back as an int when it is whole, for a tidy CSV."""
    return int(value) if value is not None and float(value).is_integer() else value


def stats(values):
    """Mean, min, max, sample stdev (None for fewer than 2) and n of the known values."""
    vals = [v for v in values if v is not None]
    if not vals:
        return {"mean": None, "min": None, "max": None, "stdev": None, "n": 0}
    return {"mean": statistics.fmean(vals), "min": min(vals), "max": max(vals),
            "stdev": statistics.stdev(vals) if len(vals) > 1 else None, "n": len(vals)}


def fmt(value):
    """A number for the report: integers plainly, else one decimal from 10 up, 3 digits below
    ("n/a" for None; anything else that is no number as it is)."""
    v = num(value)
    if v is None:
        return "n/a" if value is None else str(value)
    if v.is_integer() and abs(v) < 1e9:
        return "%d" % v
    return "%.1f" % v if abs(v) >= 10 else "%.3g" % v


def csv_row(metrics, experiment="issu"):
    """The results.csv row of one trial's metrics (anomalies joined with "; ")."""
    row = {k: metrics.get(k) for k in COLUMNS}
    row["experiment"] = experiment
    row["anomalies"] = "; ".join(metrics.get("anomalies") or [])
    return row


class _Trial:
    """One trial folder being read: its files, and the anomalies found on the way."""

    def __init__(self, path):
        self.dir = path
        self.tag = os.path.basename(os.path.normpath(path))
        self.found = []                        # {"kind", "phase", "text"}

    def note(self, kind, phase, text):
        self.found.append({"kind": kind, "phase": phase, "text": text})

    def path(self, name):
        return os.path.join(self.dir, name)

    def _missing(self, name, required, why):
        if required:
            self.note("missing-file", "data", "%s missing (%s)" % (name, why))

    def json(self, name, required=True, why="its figures are unknown"):
        """The JSON object in ``name``, or None (an anomaly unless optional and absent)."""
        path = self.path(name)
        if not os.path.exists(path):
            self._missing(name, required, why)
            return None
        try:
            with open(path) as f:
                data = json.load(f)
        except (OSError, ValueError) as e:
            self.note("unreadable-file", "data", "%s unreadable (%s)" % (name, e))
            return None
        if not isinstance(data, dict):
            self.note("unreadable-file", "data", "%s holds no JSON object" % name)
            return None
        return data

    def text(self, name, why):
        path = self.path(name)
        if not os.path.exists(path):
            self._missing(name, True, why)
            return None
        try:
            with open(path, errors="replace") as f:
                return f.read()
        except OSError as e:
            self.note("unreadable-file", "data", "%s unreadable (%s)" % (name, e))
            return None

    def lines(self, name, why):
        """The JSON lines of ``name`` (experiments.runner.load_json_lines), or None."""
        path = self.path(name)
        if not os.path.exists(path):
            self._missing(name, True, why)
            return None
        try:
            recs = load_json_lines(path)
        except (OSError, ValueError) as e:
            self.note("unreadable-file", "data", "%s unreadable (%s)" % (name, e))
            return None
        return [r for r in recs if isinstance(r, dict)]

    def guard(self, name, fn, *args):
        """fn(*args), or None with an anomaly when a file's content has an unexpected shape,
        so one odd file costs only the figures it feeds."""
        try:
            return fn(*args)
        except (TypeError, KeyError, ValueError, AttributeError, IndexError) as e:
            self.note("unreadable-file", "data", "%s has unexpected content (%s: %s)"
                      % (name, type(e).__name__, e))
            return None


# ---------------------------------------------------------------- one file each

def identity(tag, info):
    """strategy, scenario, trial and expected outcome from trial.json, else from the tag."""
    m = TAG_RE.match(tag)
    guess = m.groupdict() if m else {}
    scenario = info.get("scenario") or guess.get("scenario") or "unknown"
    trial = info.get("trial") if isinstance(info.get("trial"), int) else \
        int(guess["trial"]) if guess.get("trial") else None
    return {"strategy": info.get("strategy") or guess.get("strategy") or "unknown",
            "scenario": scenario, "trial": trial,
            "expected_outcome": info.get("expected_outcome") or EXPECTED.get(scenario)}


def phase_record(up):
    """Outcome, T1..T4 and the phase boundaries from upgrade.json (the NF's record)."""
    t = {k: num(up.get(k)) for k in ("T1_ms", "T2_ms", "T3_ms")}
    known = [t["T1_ms"], t["T2_ms"], t["T3_ms"]]
    t["T4_ms"] = _r(sum(known)) if None not in known else None
    t["outcome"] = up.get("outcome") or "unknown"
    t["phases"] = {k: num(up.get(k)) for k in ("t_start_mono", "t_stop_mono", "t_end_mono")}
    t["phases"].update({k: up.get(k) for k in ("reason", "from_version", "to_version",
                                               "injected_delay_s", "injected_delay_note",
                                               "T2_basis")})
    # switchover: what reached the old active after the controller's move (held by the
    # new one until it had that state; experiments/switchover.py)
    fl = up.get("in_flight")
    t["phases"]["in_flight"] = fl if isinstance(fl, dict) else None
    return t


def probe_stream(data, index, load):
    """One probe stream's loss, offered rate and gap.  The sender's count makes the loss
    exact; without it, the receiver's count is exact only if it saw the end marker."""
    sender = data.get("sender") if isinstance(data.get("sender"), dict) else {}
    rate = num(sender.get("rate")) or num(load.get("stream_pps"))
    received, sent = num(data.get("received")), num(sender.get("sent"))
    s = {"stream": "probe-%d" % index, "kind": "probe", "offered_fps": rate,
         "received": received, "sent": sent, "lost": None, "loss_known": False,
         "longest_gap_ms": num(data.get("longest_gap_ms")), "error": data.get("error")}
    if sent is not None and received is not None:
        s["lost"], s["loss_known"] = sent - received, True
    elif num(data.get("lost")) is not None:
        s["lost"], s["loss_known"] = num(data["lost"]), bool(data.get("complete"))
    if not s["loss_known"] and not s["error"]:
        s["error"] = ("no sender report and no end marker: the loss counted is a lower bound"
                      if s["lost"] is not None else "no counts")
    return s


def iperf_stream(text, index, load):
    """One iperf3 UDP stream from its raw -J output; an IperfError leaves the loss unknown."""
    s = {"stream": "iperf-%d" % index, "kind": "iperf", "offered_fps": num(load.get("iperf_pps")),
         "received": None, "sent": None, "lost": None, "loss_known": False,
         "longest_gap_ms": None, "error": None}
    try:
        pkts, lost, secs, _ = udp_summary(parse_json(text))
    except IperfError as e:
        s["error"] = str(e)
        return s
    s.update(sent=pkts, received=pkts - lost, lost=lost, loss_known=True)
    if s["offered_fps"] is None and secs:
        s["offered_fps"] = pkts / secs
    return s


def total_loss(streams):
    """TPL_frames, offered fps, TPL_time_ms and lower-bound flag over the measured streams:
    those that counted their loss (the offered rate of an uncounted stream is left out)."""
    counted = [s for s in streams if s["lost"] is not None and s["offered_fps"]]
    lower = any(not s["loss_known"] for s in streams)
    if not counted:
        return None, None, None, lower
    frames = count(sum(s["lost"] for s in counted))
    fps = sum(s["offered_fps"] for s in counted)
    return frames, fps, _r(frames / fps * 1000.0), lower


def control_gap(polls):
    """(longest interval between consecutive ok answers in ms, failed polls, ok answers)."""
    ok = sorted(num(p.get("t")) for p in polls if p.get("ok") is True and
                num(p.get("t")) is not None)
    failed = sum(1 for p in polls if p.get("ok") is not True)
    gap = max((b - a for a, b in zip(ok, ok[1:])), default=None)
    return (_r(gap * 1000.0) if gap is not None else None), failed, len(ok)


def tcp_session(records):
    """(survived, summary line) of one TCP session trace: survived iff ok and no restart."""
    summary = next((r for r in reversed(records) if r.get("ev") == "summary"), None)
    if summary is None:
        return None, None
    return bool(summary.get("ok") is True and summary.get("restarts") == 0), summary


def parse_mappings(text):
    """rw.mappings text -> {(proto, inside): outside}; other lines (headers) are ignored."""
    out = {}
    for line in (text or "").splitlines():
        m = MAPPING_RE.match(line)
        if m:
            out[(m.group(1).lower(), m.group(2))] = m.group(3)
    return out


def state_delta(pre_text, post_text):
    """Each (proto, inside) mapping before the upgrade: kept (same outside endpoint after),
    changed (another outside endpoint) or vanished (absent after)."""
    pre, post = parse_mappings(pre_text), parse_mappings(post_text)
    kept = sum(1 for k, v in pre.items() if post.get(k) == v)
    vanished = sum(1 for k in pre if k not in post)
    return {"mappings_before": len(pre), "mappings_kept": kept,
            "mappings_changed": len(pre) - kept - vanished, "mappings_vanished": vanished}


def config_delta(pre_text, post_text):
    """Unified diff of the flat configurations before and after ("" when equal)."""
    return "\n".join(difflib.unified_diff((pre_text or "").splitlines(),
                                          (post_text or "").splitlines(),
                                          "pre-ISSU flatconfig", "post-ISSU flatconfig",
                                          lineterm=""))


# ---------------------------------------------------------------- probe timelines

def timeline(data):
    """A probe file's receive timeline as (t0_mono, bin_s, counts), or None if it has none."""
    tl = data.get("timeline")
    if not isinstance(tl, dict):
        return None
    t0, width, counts = num(tl.get("t0_mono")), num(tl.get("bin_s")), tl.get("counts")
    if t0 is None or not width or width <= 0 or not isinstance(counts, list) or \
            any(num(c) is None for c in counts):
        raise ValueError("timeline needs t0_mono, a positive bin_s and numeric counts")
    return t0, width, counts


def rate_windows(timelines, start, stop, step):
    """Datagrams received per window [start + j*step, start + (j+1)*step) before ``stop``,
    summed over the timelines; None for a window that some timeline does not cover.

    A bin that straddles two windows is shared in proportion to its overlap, so windows
    that are not aligned with the bins still get the same number of bins' worth each."""
    n = max(0, int(math.floor((stop - start) / step + EPS)))
    sums = [0.0] * n
    covered = [True] * n
    for t0, width, counts in timelines:
        end = t0 + len(counts) * width
        for j in range(n):
            ws = start + j * step
            if t0 > ws + EPS or end < ws + step - EPS:
                covered[j] = False
        first = max(0, int(math.floor((start - t0) / width)))
        last = min(len(counts), int(math.ceil((start + n * step - t0) / width)))
        for k in range(first, last):
            b0, b1 = t0 + k * width, t0 + (k + 1) * width
            j0 = max(0, int(math.floor((b0 - start) / step)))
            j1 = min(n - 1, int(math.floor((b1 - start) / step)))
            for j in range(j0, j1 + 1):
                ws = start + j * step
                overlap = min(b1, ws + step) - max(b0, ws)
                if overlap > 0:
                    sums[j] += counts[k] * overlap / width
    return [s if c else None for s, c in zip(sums, covered)]


def probe_timelines(trial_dir):
    """The receive timelines of a trial folder's probe-<i>.json files, in index order
    (files without a usable timeline are left out: trial_metrics reports them)."""
    tr = _Trial(trial_dir)
    out = []
    for i in _indices(tr, {}, "probe", "json"):
        data = tr.json("probe-%d.json" % i)
        tl = tr.guard("probe-%d.json" % i, timeline, data) if data is not None else None
        if tl is not None:
            out.append(tl)
    return out


def traffic_span(timelines):
    """(latest first arrival, earliest last arrival) over the timelines: while every probe
    stream was flowing; None if a timeline saw nothing."""
    firsts, lasts = [], []
    for t0, width, counts in timelines:
        nz = [k for k, c in enumerate(counts) if c]
        if not nz:
            return None
        firsts.append(t0 + nz[0] * width)
        lasts.append(t0 + (nz[-1] + 1) * width)
    return max(firsts), min(lasts)


def steady_before(timelines, t0, offered):
    """RFC 7654 5.1 steady state from the receivers: in each 100 ms of the 2 s before T0 the
    summed receive rate is within 10 % of the offered probe rate.  None when not judgeable."""
    rates = rate_windows(timelines, t0 - STEADY_S, t0, WINDOW_S)
    out = {"steady": None, "offered_fps": offered, "min_fps": None, "max_fps": None,
           "windows_off": None}
    if not rates or None in rates or not offered:
        return out
    fps = [c / WINDOW_S for c in rates]
    off = sum(1 for f in fps if abs(f - offered) > STEADY_TOLERANCE * offered)
    out.update(steady=off == 0, min_fps=_r(min(fps), 1), max_fps=_r(max(fps), 1),
               windows_off=off)
    return out


def low_windows(timelines, start, stop, offered):
    """Start times of the 100 ms windows in [start, stop) whose receive rate is under
    LOW_RATE of the offered rate."""
    if stop - start < WINDOW_S or not offered:
        return []
    rates = rate_windows(timelines, start, stop, WINDOW_S)
    return [start + j * WINDOW_S for j, c in enumerate(rates)
            if c is not None and c / WINDOW_S < LOW_RATE * offered]


def loss_outside(timelines, t0, t_end, offered):
    """Windows well below the offered rate before T0 and after t_end + SETTLE_S, within
    the probes' traffic (less EDGE_S at both ends): {"before": [...], "after": [...]}."""
    span = traffic_span(timelines)
    out = {"before": [], "after": []}
    if span is None:
        return out
    lo, hi = span[0] + EDGE_S, span[1] - EDGE_S
    if t0 is not None:
        out["before"] = low_windows(timelines, lo, min(t0, hi), offered)
    if t_end is not None:
        out["after"] = low_windows(timelines, max(t_end + SETTLE_S, lo), hi, offered)
    return out


# ---------------------------------------------------------------- one trial

def _indices(tr, info, kind, ext):
    """The stream indices of ``kind``: from trial.json's pairs (else its load counts) plus
    any file present, so a stream that left no file is still reported."""
    load = info.get("load") if isinstance(info.get("load"), dict) else {}
    idx = {p.get("index") for p in info.get("pairs") or []
           if isinstance(p, dict) and p.get("kind") == kind and isinstance(p.get("index"), int)}
    count_key = {"probe": "streams", "iperf": "iperf_streams", "tcp": "tcp"}[kind]
    if not idx and isinstance(load.get(count_key), int):
        idx = set(range(load[count_key]))
    for path in glob.glob(tr.path("%s-*.%s" % (kind, ext))):
        m = re.match(r"%s-(\d+)\.%s$" % (kind, ext), os.path.basename(path))
        if m:
            idx.add(int(m.group(1)))
    return sorted(idx)


def _streams(tr, info, load):
    """Per-stream results (probes, then iperf3) and the probes' timelines with their rates."""
    streams, timelines = [], []
    for i in _indices(tr, info, "probe", "json"):
        name = "probe-%d.json" % i
        data = tr.json(name, why="the stream's loss is unknown")
        s = tr.guard(name, probe_stream, data, i, load) if data is not None else None
        if s is None:
            s = {"stream": "probe-%d" % i, "kind": "probe", "lost": None,
                 "loss_known": False, "offered_fps": num(load.get("stream_pps")),
                 "longest_gap_ms": None, "error": "file missing or unreadable"}
        else:
            tl = tr.guard(name, timeline, data)
            if tl is not None:
                timelines.append(tl)
            s["has_timeline"] = tl is not None
        streams.append(s)
    for i in _indices(tr, info, "iperf", "json"):
        name = "iperf-%d.json" % i
        text = tr.text(name, "the stream's loss is unknown")
        s = tr.guard(name, iperf_stream, text, i, load) if text is not None else None
        streams.append(s or {"stream": "iperf-%d" % i, "kind": "iperf", "lost": None,
                             "loss_known": False, "offered_fps": None,
                             "longest_gap_ms": None, "error": "file missing or unreadable"})
    for s in streams:
        if not s["loss_known"]:
            tr.note("loss-unknown", "during", "%s: loss unknown (%s)" % (s["stream"], s["error"]))
    return streams, timelines


def _tcp(tr, info, m):
    sessions = _indices(tr, info, "tcp", "jsonl")
    survived, detail = 0, []
    for i in sessions:
        name = "tcp-%d.jsonl" % i
        recs = tr.lines(name, "the session's fate is unknown")
        ok, summary = (tr.guard(name, tcp_session, recs) if recs is not None else None) \
            or (None, None)
        if recs is not None and summary is None:
            tr.note("unreadable-file", "data", "%s has no summary line: the session's fate "
                    "is unknown" % name)
        if ok is False:
            tr.note("tcp-reset", "during", "tcp-%d: session reset (ok %s, restarts %s)"
                    % (i, summary.get("ok"), summary.get("restarts")))
        survived += ok is True
        detail.append({"session": "tcp-%d" % i, "survived": ok,
                       "restarts": (summary or {}).get("restarts"),
                       "reason": (summary or {}).get("reason")})
    m["tcp_survived"], m["tcp_sessions"] = survived, len(sessions)
    return detail


def _control(tr, m):
    polls = tr.lines("control.jsonl", "the control-plane gap is unknown")
    if polls is None:
        return None
    gap, failed, ok = tr.guard("control.jsonl", control_gap, polls) or (None, None, 0)
    m["control_gap_ms"] = gap
    if ok < 2:
        tr.note("control-gap", "during", "control plane: fewer than 2 ok answers in "
                "control.jsonl: its gap is unknown")
    elif gap > CONTROL_GAP_LIMIT_MS:
        tr.note("control-gap", "during", "control-plane gap %s ms > %s ms"
                % (fmt(gap), fmt(CONTROL_GAP_LIMIT_MS)))
    if failed:
        tr.note("control-failures", "during", "control plane: %d failed polls" % failed)
    return failed


def _churn(tr, load, m):
    expected = num(load.get("churn")) or 0
    data = tr.json("churn.json", required=expected > 0, why="churn failures are unknown")
    if data is None:
        return None
    m["churn_failed"] = count(num(data.get("failed")))
    if m["churn_failed"]:
        tr.note("churn-failures", "during", "churn: %s of %s new connections failed %s"
                % (fmt(m["churn_failed"]), fmt(num(data.get("attempted"))),
                   json.dumps(data.get("errors") or {}, sort_keys=True)))
    return data


def _snapshots(tr, m, outcome):
    """Pre- and post-ISSU snapshots: status, state delta, configuration delta, resources."""
    pre = tr.json("pre.json", why="pre-ISSU verification and the state delta are unknown")
    post = tr.json("post.json", why="post-ISSU verification and the state delta are unknown")
    for name, snap in (("pre.json", pre), ("post.json", post)):
        if snap is not None and snap.get("error"):
            tr.note("snapshot-error", "data", "%s: %s" % (name, snap["error"]))
    detail = {"pre": {"status": None, "idle": None, "resources": None},
              "post": {"status": None, "resources": None}, "config_delta": None}
    if pre is not None:
        detail["pre"].update(status=pre.get("status"), idle=pre.get("status") == "idle",
                             resources=pre.get("resources"))
        if pre.get("status") is not None and pre.get("status") != "idle":
            tr.note("not-idle", "before", "NF status %r before the upgrade, not idle"
                    % pre.get("status"))
    if post is not None:
        detail["post"].update(status=post.get("status"), resources=post.get("resources"))
    if pre is None or post is None:
        return detail
    if isinstance(pre.get("mappings"), str) and isinstance(post.get("mappings"), str):
        m.update(state_delta(pre["mappings"], post["mappings"]))
        lost = m["mappings_changed"] + m["mappings_vanished"]
        if lost:
            tr.note("state-lost", "after", "NAT mappings: %d changed, %d vanished of %d"
                    % (m["mappings_changed"], m["mappings_vanished"], m["mappings_before"]))
    if isinstance(pre.get("flatconfig"), str) and isinstance(post.get("flatconfig"), str):
        detail["config_delta"] = config_delta(pre["flatconfig"], post["flatconfig"])
        if detail["config_delta"] and outcome in ("aborted", "rolled-back", "refused"):
            tr.note("config-changed", "after", "configuration changed although the upgrade "
                    "was %s" % outcome)
    rss = [_rss(pre), _rss(post)]
    if None not in rss and rss[0] > 0:
        detail["rss_ratio"] = _r(rss[1] / rss[0])
        if rss[1] > RSS_GROWTH_LIMIT * rss[0]:
            tr.note("rss-growth", "after", "NF resident memory %s -> %s kB (x%.2f > x%g)"
                    % (fmt(rss[0]), fmt(rss[1]), rss[1] / rss[0], RSS_GROWTH_LIMIT))
    return detail


def _rss(snap):
    res = snap.get("resources")
    return num(res.get("nf_rss_kb")) if isinstance(res, dict) else None


def _timeline_checks(tr, timelines, offered, t0, t_end):
    """Steady state before T0 and loss outside the upgrade window, from the receivers."""
    if not timelines or t0 is None:          # both already reported as missing data
        return {"steady": None}
    steady = steady_before(timelines, t0, offered)
    if steady["steady"] is False:
        tr.note("not-steady", "before", "not steady before T0: %d of %d 100 ms windows off "
                "the offered %s fps by more than 10 %% (%s-%s fps)"
                % (steady["windows_off"], int(round(STEADY_S / WINDOW_S)), fmt(offered),
                   fmt(steady["min_fps"]), fmt(steady["max_fps"])))
    elif steady["steady"] is None:
        tr.note("not-steady", "before", "steady state unknown: the probe timelines do not "
                "cover the 2 s before T0 or the offered rate is unknown")
    outside = loss_outside(timelines, t0, t_end, offered)
    for phase, where in (("before", "before T0"), ("after", "over %g s after the upgrade's "
                                                    "end" % SETTLE_S)):
        if outside[phase]:
            tr.note("loss-outside", phase, "frames lost %s: %d 100 ms window(s) under %d %% "
                    "of the offered rate, first at T0%+.2f s"
                    % (where, len(outside[phase]), LOW_RATE * 100, outside[phase][0] - t0))
    steady["loss_outside_s"] = {k: [_r(t - t0) for t in v] for k, v in outside.items()}
    return steady


def _empty_metrics(ident):
    m = dict(ident, outcome="unknown")
    for k in COLUMNS[6:-1]:
        m[k] = None
    m["tpl_lower_bound"] = False
    return m


def trial_metrics(trial_dir):
    """One trial's metrics under the results.csv column names (not ``experiment``), with
    ``anomalies`` a list of short strings and ``detail`` (not a column) holding the config
    delta, per-stream results, pre/post verification and the anomalies with their phase."""
    if not os.path.isdir(trial_dir):
        raise ReportError("%s is not a folder: give a trial folder raw/<strategy>-<scenario>-"
                          "t<trial>/ of an issu run" % trial_dir)
    tr = _Trial(trial_dir)
    info = tr.json("trial.json", why="identity, T0 and load taken from the folder's name")
    info = info or {}
    load = info.get("load") if isinstance(info.get("load"), dict) else {}
    m = _empty_metrics(identity(tr.tag, info))
    t0 = num(info.get("t_request_mono"))
    if info and t0 is None:
        tr.note("missing-field", "data", "trial.json has no t_request_mono (T0)")
    up = tr.json("upgrade.json", why="the outcome and T1-T4 are unknown")
    rec = {"phases": {}}
    if up is not None and up.get("error"):
        tr.note("no-phase-record", "during", "no phase record from the NF: %s" % up["error"])
    elif up is not None:
        rec = tr.guard("upgrade.json", phase_record, up) or rec
        m.update({k: v for k, v in rec.items() if k != "phases"})
    if m["outcome"] != m["expected_outcome"]:
        reason = rec["phases"].get("reason")
        tr.note("outcome", "during", "outcome %s, expected %s%s"
                % (m["outcome"], m["expected_outcome"], " (%s)" % reason if reason else ""))
    streams, timelines = _streams(tr, info, load)
    m["TPL_frames"], m["offered_fps"], m["TPL_time_ms"], m["tpl_lower_bound"] = \
        total_loss(streams)
    gaps = [s["longest_gap_ms"] for s in streams if s.get("longest_gap_ms") is not None]
    m["longest_gap_ms"] = max(gaps) if gaps else None
    tcp = _tcp(tr, info, m)
    failed_polls = _control(tr, m)
    churn = _churn(tr, load, m)
    snaps = _snapshots(tr, m, m["outcome"])
    probe_fps = sum(s["offered_fps"] or 0 for s in streams
                    if s["kind"] == "probe" and s.get("has_timeline"))
    checks = _timeline_checks(tr, timelines, probe_fps, t0, rec["phases"].get("t_end_mono"))
    delay = num(info.get("injected_delay_s"))
    if delay is None:
        delay = num(rec["phases"].get("injected_delay_s"))
    m["anomalies"] = [a["text"] for a in tr.found]
    m["detail"] = {
        "tag": tr.tag, "package": info.get("package"), "injected_delay_s": delay,
        "phases": dict(rec["phases"], t_request_mono=t0), "streams": streams,
        "tcp": tcp, "churn": churn, "control_failures": failed_polls,
        "config_delta": snaps["config_delta"], "rss_ratio": snaps.get("rss_ratio"),
        "pre": dict(snaps["pre"], steady=checks.get("steady"),
                    steady_detail={k: v for k, v in checks.items() if k != "steady"}),
        "post": snaps["post"], "anomalies": tr.found}
    return m


# ---------------------------------------------------------------- the run

def _group_key(m):
    s, sc = m["strategy"], m["scenario"]
    return (STRATEGY_ORDER.index(s) if s in STRATEGY_ORDER else len(STRATEGY_ORDER), s,
            SCENARIOS.index(sc) if sc in SCENARIOS else len(SCENARIOS), sc)


def groups(trials):
    """Trials by (strategy, scenario), in the fixed strategy and scenario order."""
    out = {}
    for m in sorted(trials, key=lambda m: (_group_key(m), m["trial"] or 0)):
        out.setdefault((m["strategy"], m["scenario"]), []).append(m)
    return out


def table(trials):
    """Per (strategy, scenario): stats of every TABLE_FIELDS column, trials, expected ones."""
    rows = []
    for (strategy, scenario), ms in groups(trials).items():
        row = {"strategy": strategy, "scenario": scenario, "trials": len(ms),
               "as_expected": sum(m["outcome"] == m["expected_outcome"] for m in ms),
               "lower_bound": any(m["tpl_lower_bound"] for m in ms),
               "offered_fps": stats(m["offered_fps"] for m in ms)["mean"],
               "injected_delay_s": sorted({m["detail"]["injected_delay_s"] or 0.0 for m in ms})}
        for f in TABLE_FIELDS:
            row[f] = stats(m[f] for m in ms)
        rows.append(row)
    return rows


def injected_text(delays):
    delays = [d for d in delays if d]
    return ("injected staging delay %s s (injected, not a measured cost)"
            % "/".join(fmt(d) for d in delays)) if delays else ""


def statement(row):
    """RFC 7654 section 7's "ISSU Disruption Impact" sentence of one (strategy, scenario)."""
    tpl, tt, gap = row["TPL_frames"], row["TPL_time_ms"], row["longest_gap_ms"]
    head = "ISSU Disruption Impact (%s, %s): " % (row["strategy"], row["scenario"])
    if not tpl["n"]:
        return head + "frame loss unknown (no stream counted its loss in %d trial%s)." \
            % (row["trials"], "" if row["trials"] == 1 else "s")
    text = head + "%s%s frames lost (mean of %d trial%s; min %s, max %s) of %s fps offered; " \
        "impact time %s ms (TPL_time)" % (
            "at least " if row["lower_bound"] else "", fmt(tpl["mean"]), tpl["n"],
            "" if tpl["n"] == 1 else "s", fmt(tpl["min"]), fmt(tpl["max"]),
            fmt(row["offered_fps"]), "%.1f" % tt["mean"] if tt["n"] else "n/a")
    if gap["n"]:
        text += "; the probes' longest gap %s ms" % fmt(gap["max"])
    extra = []
    if row["lower_bound"]:
        extra.append("a lower bound: a stream's loss is unknown, and neither its frames nor "
                     "its rate are counted")
    if row["as_expected"] < row["trials"]:
        extra.append("%d of %d trials did not end as expected"
                     % (row["trials"] - row["as_expected"], row["trials"]))
    if injected_text(row["injected_delay_s"]):
        extra.append(injected_text(row["injected_delay_s"]))
    return text + ("; " + "; ".join(extra) if extra else "") + "."


def _trial_infos(raw, tags):
    """Each trial's trial.json (its problems are already in that trial's anomalies)."""
    return [_Trial(os.path.join(raw, t)).json("trial.json") or {} for t in tags]


def topologies(infos):
    """The networks the trials ran on (a switchover trial runs on the sdn pair, the others
    on ite), each once, with the strategies that ran on it and its first trial's pairs."""
    seen = {}                       # the description, as canonical JSON -> its entry
    for i in infos:
        t = i.get("topology")
        if not isinstance(t, dict):
            continue
        pairs = i.get("pairs") if isinstance(i.get("pairs"), list) else []
        entry = seen.setdefault(json.dumps(t, sort_keys=True), dict(
            t, strategies=[], pairs=[p for p in pairs if isinstance(p, dict)]))
        if i.get("strategy") and i["strategy"] not in entry["strategies"]:
            entry["strategies"].append(i["strategy"])
    return list(seen.values())


def load_model(infos):
    """The load of the first trial that recorded it, and whether others differ."""
    loads = [i["load"] for i in infos if isinstance(i.get("load"), dict)]
    if not loads:
        return {}
    model = dict(loads[0])
    model["differs_between_trials"] = any(x != loads[0] for x in loads[1:])
    return model


def parameters(load, topo, rows, n_trials):
    """RFC 7654 section 7's table of recommended parameters, as [(parameter, value)]."""
    fps = (num(load.get("streams")) or 0) * (num(load.get("stream_pps")) or 0) + \
        (num(load.get("iperf_streams")) or 0) * (num(load.get("iperf_pps")) or 0)
    frame = num(load.get("frame_bytes"))
    bps = fps * frame * 8 if frame else None
    by_group = lambda f, unit: "; ".join(                      # noqa: E731
        "%s/%s: %s%s" % (r["strategy"], r["scenario"],
                         "at least " if r["lower_bound"] and f == "TPL_frames" else "",
                         fmt(r[f]["mean"]) + unit if r[f]["n"] else "n/a") for r in rows) or "n/a"
    bw, churn = num(topo.get("bw_mbit")), num(load.get("churn"))
    return [
        ("Traffic load", "%s fps, %s bit/s (bits of Ethernet frames without FCS: fps x %s "
         "octets x 8)" % (fmt(fps), fmt(bps), fmt(frame)) if frame else "%s fps" % fmt(fps)),
        ("Disruption (average)", by_group("TPL_frames", " frames")),
        ("Impact time (average)", by_group("TPL_time_ms", " ms")),
        ("Number of trials", "%d (%s)" % (n_trials, "; ".join(
            "%s/%s: %d" % (r["strategy"], r["scenario"], r["trials"]) for r in rows))),
        ("Protocols", "IPv4; UDP probes (%s streams), UDP iperf3 (%s streams), TCP sessions "
         "(%s)" % (fmt(load.get("streams")), fmt(load.get("iperf_streams")),
                   fmt(load.get("tcp")))),
        ("Frame size", "%s octets (Ethernet frame without FCS: 14 + 20 + 8 + %s payload)"
         % (fmt(frame), fmt(load.get("payload_bytes"))) if frame else "n/a"),
        ("Port media", "virtual Ethernet (veth) between network namespaces"),
        ("Port speed", "htb-shaped to %s Mbit/s" % fmt(bw) if bw else "unshaped veth"),
        ("Interface encapsulation", "Ethernet II"),
        ("Churn (negative stimuli)", "%s new TCP connections per second" % fmt(churn)
         if churn else "none"),
        ("NAT mappings held", fmt(load.get("mappings"))),
    ]


def _dut(prov, topo, trials):
    versions = sorted({"%s -> %s" % (ph.get("from_version"), ph.get("to_version") or
                                     "(stayed: %s)" % m["outcome"])
                       for m in trials for ph in [m["detail"]["phases"]]
                       if ph.get("from_version")})
    packages = sorted({"%s: %s" % (m["scenario"], m["detail"]["package"])
                       for m in trials if m["detail"]["package"]})
    return {"nf": topo.get("nf"), "config": topo.get("config"), "packages": packages,
            "nf_versions": versions, "clickup_version": prov.get("clickup_version"),
            "git_commit": prov.get("git_commit"), "git_dirty": prov.get("git_dirty"),
            "host": prov.get("host"), "platform": prov.get("platform"),
            "cpus": prov.get("cpus"), "python": prov.get("python"),
            "tools": prov.get("tools") or {}, "started": prov.get("started"),
            "args": prov.get("args") or {}}


def _grouped_anomalies(trials, run_level):
    """{phase: [{"kind", "trials": [{"tag", "text"}]}]}, kinds in order of appearance."""
    out = {p: {} for p in PHASES}
    for a in run_level:
        out["data"].setdefault(a["kind"], []).append({"tag": "run", "text": a["text"]})
    for m in trials:
        for a in m["detail"]["anomalies"]:
            out[a["phase"]].setdefault(a["kind"], []).append({"tag": m["detail"]["tag"],
                                                              "text": a["text"]})
    return {p: [{"kind": k, "trials": v} for k, v in kinds.items()] for p, kinds in out.items()}


def _resolve(run_dir):
    """The run folder: RUN_DIR, or its ``latest`` run when given results/issu/."""
    if not os.path.isdir(run_dir):
        raise ReportError("%s: no such folder (expected an issu run folder such as "
                          "results/issu/<timestamp>/)" % run_dir)
    run = resolve_run(run_dir, "raw")
    if run is not None:
        return run
    if not os.path.exists(os.path.join(run_dir, "provenance.json")):
        raise ReportError("%s has neither raw/ nor provenance.json: expected a run folder "
                          "written by `clickup run issu` (results/issu/<timestamp>/)" % run_dir)
    return run_dir


def build_report(run_dir):
    """The report of a run folder (every raw/*/ trial plus provenance.json) as a dict."""
    run_dir = _resolve(run_dir)
    run_level = []
    prov = {}
    try:
        with open(os.path.join(run_dir, "provenance.json")) as f:
            prov = json.load(f)
        if not isinstance(prov, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as e:
        prov = {}
        run_level.append({"kind": "provenance", "text": "provenance.json missing or "
                          "unreadable (%s): DUT details unknown" % e})
    raw = os.path.join(run_dir, "raw")
    tags = sorted(d for d in os.listdir(raw) if os.path.isdir(os.path.join(raw, d))) \
        if os.path.isdir(raw) else []
    if not tags:
        run_level.append({"kind": "no-trials", "text": "no trial folders under raw/: "
                          "nothing was measured"})
    trials = sorted((trial_metrics(os.path.join(raw, t)) for t in tags),
                    key=lambda m: (_group_key(m), m["trial"] or 0))
    infos = _trial_infos(raw, tags)
    load = load_model(infos)
    topos = topologies(infos)
    topo = topos[0] if topos else {}
    rows = table(trials)
    return {
        "run_dir": os.path.abspath(run_dir), "sources": SOURCES,
        "statements": [statement(r) for r in rows],
        "table": rows,
        "parameters": [{"parameter": p, "value": v}
                       for p, v in parameters(load, topo, rows, len(trials))],
        "dut": _dut(prov, topo, trials),
        "topologies": topos,
        "load": load,
        "trials": trials,
        "abort_rollback": [m for m in trials if m["scenario"] in ("abort", "rollback")],
        "anomalies": _grouped_anomalies(trials, run_level),
    }


def write_report(run_dir):
    """Write report.md and report.json into the run folder; returns their paths."""
    report = build_report(run_dir)
    run_dir = report["run_dir"]
    md, js = os.path.join(run_dir, "report.md"), os.path.join(run_dir, "report.json")
    from experiments.issu_markdown import render_markdown
    with open(md, "w") as f:
        f.write(render_markdown(report))
    save_json(js, report)
    return md, js


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m experiments.issu_report",
                                description="(Re)write report.md and report.json of an issu "
                                "run folder from its saved files (no root, no network).")
    p.add_argument("run_dir", metavar="RUN_DIR", help="results/issu/<timestamp>/ (or "
                   "results/issu/ for its latest run)")
    a = p.parse_args(argv)
    try:
        md, js = write_report(a.run_dir)
    except ReportError as e:
        print("issu_report: %s" % e, file=sys.stderr)
        return 2
    print(md)
    print(js)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The ``switchover`` strategy: a make-before-break upgrade of an active/standby NF pair.

It runs outside the NFs, because it is the SDN controller that moves the traffic
(topologies/sdn.py with ``pair=True, replicate=True``; topologies/steering.py):

* T1 -- the standby is restarted on the new version, as standby; the active notices it
  (replication reconnects) and sends it a full resync, then every change.  An injected
  delay is slept here (the old active keeps forwarding; labelled as injected).  T1 ends
  when the active reports its replica in sync.
* T2 -- the controller moves the traffic to the standby (one ordered change on every
  switch, answered after the barriers; the old NF's output stays accepted, so what it
  still holds is delivered).  The standby holds what it receives (a standby's packet
  sources are held, nf/router.py), so no packet meets it before it has the old active's
  last changes: the driver waits until the old active has read nothing for ``QUIET``
  s and has nothing queued (the frames that were in flight at the move have arrived
  there and been handled), then
  until the new one has acknowledged everything the old one journaled, and only then
  promotes the new one, which handles the held frames in order.  The record keeps what
  proves it: the frames the old active received after the controller's barriers, and
  when the last one came.
* T3 -- the old active is restarted on the new version as the standby; it ends when the
  new active reports it in sync: redundancy restored.

The phase record has the keys of the NF's own (nf/upgrade/manager.py), on the same
CLOCK_MONOTONIC, so the ISSU report and the transfer drivers read it the same way.
"""

import json
import os
import time

from nf.control import ControlClient, ControlError

__all__ = ["switchover", "replication", "wait_in_sync", "wait_quiet", "restart_nf",
           "set_role"]

SYNC_TIMEOUT = 60.0
QUIET = 0.005          # s without a frame at the old active: the move has taken effect
QUIET_TIMEOUT = 2.0    # s; past it the old active still receives (recorded, not hidden)


def replication(control):
    """The NF's ``replication`` handler, parsed (None if the NF does not answer)."""
    try:
        with ControlClient(control, timeout=2.0) as c:
            return json.loads(c.read("replication"))
    except (ControlError, OSError, ValueError):
        return None


def wait_in_sync(control, after=None, timeout=SYNC_TIMEOUT, poll=0.005, check=None):
    """Block until the NF at ``control`` (active) reports its replica in sync, on a
    connection newer than status ``after`` (so a stale in_sync of the connection to a peer
    that was just restarted does not count); returns the last status.  Raises
    RuntimeError after ``timeout`` s, with that status.  ``check``, if given, is called
    before every poll: what it raises (say, an NF process found dead) ends the wait."""
    deadline = time.monotonic() + timeout
    seen = (after or {}).get("connections", -1)
    st = None
    while time.monotonic() < deadline:
        if check:
            check()
        st = replication(control)
        if st and st.get("in_sync") and st.get("connections", 0) > seen:
            return st
        time.sleep(poll)
    raise RuntimeError("the replica did not get in sync within %.0f s: %s" % (timeout, st))


def wait_quiet(control, since, quiet=QUIET, timeout=QUIET_TIMEOUT, poll=0.001):
    """Block until the NF at ``control`` has read no frame for ``quiet`` s after clock
    time ``since`` (CLOCK_MONOTONIC, as the NF's) and has none waiting unread (a loop
    busy with a long batch reads nothing for a while, yet has frames queued); returns
    (its last replication status, whether it went quiet within ``timeout`` s)."""
    deadline = time.monotonic() + timeout
    st = None
    while True:
        st = replication(control) or st
        now = time.monotonic()
        if st is not None:
            last = max(since, st.get("last_rx_mono") or since)
            if now - last >= quiet and not st.get("rx_pending"):
                return st, True
        if now >= deadline:
            return st, False
        time.sleep(poll)


def restart_nf(topo, node, role, config=None, elements=None):
    """Restart the NF process of pair member ``node`` (a running NFNode), optionally on a
    new config and element directory, in replication role ``role``."""
    extra = topo.replication_options(node.name, role)
    if elements:
        extra += ["--elements", elements]
    node.stop_nf()
    if config:
        node.nfconfig = config
    node.extra = extra
    node.start_nf()


def set_role(control, role):
    with ControlClient(control, timeout=5.0) as c:
        c.write("replication_role", role)


def switchover(net, topo, package, config, delay=0.0):
    """Upgrade the pair in ``net`` to ``package``/``config`` (with its elements/); returns
    the phase record (never raises: a failure is the record's outcome and reason)."""
    from topologies.sdn import PAIR, move_to, rest_port, steering_status
    now = time.monotonic
    rec = {"strategy": "switchover", "to": os.path.join(package, config),
           "injected_delay_s": delay,
           "injected_delay_note": "injected (the paper's upgrade delay), not a measured cost"
           if delay else None, "T1_ms": None, "T2_ms": None, "T3_ms": None, "T4_ms": None,
           "t_start_mono": now(), "t_stop_mono": None, "outcome": None, "reason": None}
    try:
        port = rest_port(net)
        st = steering_status(port)
        old, new = st["active"], st["standby"]
        rec.update({"from_nf": old, "to_nf": new})
        ctl = {n: topo.nf_paths(n)["control"] for n in PAIR}
        cfg, elements = os.path.join(package, config), os.path.join(package, "elements")
        # T1: the standby on the new version, in sync with the active.  If the new
        # version cannot start there, the standby goes back to the old one (rollback):
        # the active never stopped forwarding.
        before = replication(ctl[old])
        node = net.get(new)
        previous = (node.nfconfig, list(node.extra))
        try:
            restart_nf(topo, node, "standby", cfg, elements)
        except RuntimeError as e:
            node.nfconfig, node.extra = previous
            node.start_nf()
            wait_in_sync(ctl[old], before)
            rec["T1_ms"] = round((now() - rec["t_start_mono"]) * 1000, 3)
            rec["outcome"], rec["reason"] = "rolled-back", "the new version did not start " \
                "on the standby %s: %s" % (new, str(e).splitlines()[-1][-300:])
            rec["t_end_mono"] = now()
            return rec
        if delay:
            time.sleep(delay)                   # injected: the old active forwards on
        rec["sync_T1"] = wait_in_sync(ctl[old], before)
        t_stop = now()
        rec["T1_ms"] = round((t_stop - rec["t_start_mono"]) * 1000, 3)
        # T2: the controller moves the traffic; the new NF, holding what it receives,
        # takes the active role once the old one has stopped receiving and the new one
        # has everything the old one did.  Whatever goes wrong after the move, the new
        # NF is promoted: the traffic is already on it.  (A move that fails leaves
        # the traffic on the old active, which stays the active.)
        rec["t_stop_mono"] = t_stop
        rx0 = wait_in_sync(ctl[old])["rx_frames"]
        rec["move"] = move = move_to(port, new)
        try:
            moved = replication(ctl[old]) or {}
            st, went_quiet = wait_quiet(ctl[old], move["t_end_mono"])
            rec["sync_after_move"] = wait_in_sync(ctl[old])
        finally:
            set_role(ctl[new], "active")
        t3 = now()
        st = st or {}
        last, rx1 = st.get("last_rx_mono"), moved.get("rx_frames", rx0)
        # Counts are read over the control socket (a millisecond or so after the
        # controller answered); the last frame's time is the NF's own clock reading.
        rec["in_flight"] = {
            "quiet_s": QUIET, "went_quiet": went_quiet,
            "old_rx_until_move_answered": rx1 - rx0,
            "old_rx_after_move_answered": st.get("rx_frames", rx1) - rx1,
            "last_old_rx_after_barriers_ms": None if last is None else
            round((last - move["t_end_mono"]) * 1000, 3),
            "held_ms": round((t3 - move["t_end_mono"]) * 1000, 3)}
        rec["T2_ms"] = round((t3 - t_stop) * 1000, 3)
        rec["T2_basis"] = ("controller move (barriers on every switch), the old active "
                           "quiet for %g ms and in sync, role change" % (QUIET * 1000))
        # T3: the old active on the new version, as the standby, in sync: redundancy back.
        before = replication(ctl[new])
        restart_nf(topo, net.get(old), "standby", cfg, elements)
        rec["sync_T3"] = wait_in_sync(ctl[new], before)
        rec["T3_ms"] = round((now() - t3) * 1000, 3)
        rec["T4_ms"] = round(rec["T1_ms"] + rec["T2_ms"] + rec["T3_ms"], 3)
        rec["outcome"] = "done"
    except Exception as e:                      # the traffic's fate is the measurement
        rec["outcome"], rec["reason"] = "failed", "%s: %s" % (type(e).__name__, e)
    rec["t_end_mono"] = now()
    return rec

"""Asking a running NF to upgrade, and waiting for its phase record.

    clickup nf upgrade SOCKET --to NEW.click [--elements DIR] --strategy S
                       [--delay SECONDS] [--json]
    clickup nf manifest DIR            (write DIR/MANIFEST.sha256)

The request goes through the control socket (``WRITE upgrade``); the client
then polls ``upgrade_status``.  Restart strategies replace the NF process, so
the connection drops and the client reconnects to the same socket path until
the new process answers.
"""

import json
import os
import sys
import time

from ..control import ControlClient, ControlError

__all__ = ["request_upgrade", "add_parsers"]

TERMINAL = ("done", "refused", "aborted", "rolled-back")


def _connect(path, deadline):
    while True:
        try:
            return ControlClient(path, timeout=5.0)
        except (ControlError, OSError):
            if time.time() > deadline:
                raise ControlError(0, "the NF at %s did not come back" % path) from None
            time.sleep(0.02)


def request_upgrade(path, request, timeout=120.0, poll=0.02, abort_after=None):
    """Run an upgrade through the control socket at ``path``; return its record.

    ``abort_after`` (seconds): ask for ``upgrade_abort`` that long after the request, as an
    operator would during staging (the record then says whether it was still staging)."""
    deadline = time.time() + timeout
    c = _connect(path, deadline)
    try:
        c.write("upgrade", json.dumps(request))
        if abort_after is not None:
            time.sleep(abort_after)
            try:
                c.write("upgrade_abort")
            except ControlError:
                pass                       # no longer staging: the record tells the outcome
    except ControlError:
        c.close()
        raise
    while time.time() < deadline:
        try:
            status = c.read("upgrade_status")
            if status in TERMINAL:
                rec = json.loads(c.read("upgrade_report"))
                c.close()
                return rec
        except (ControlError, OSError):
            c.close()                      # the process was replaced: find the new one
            c = _connect(path, deadline)
            continue
        time.sleep(poll)
    c.close()
    raise ControlError(0, "the upgrade did not finish within %.0f s" % timeout)


def add_parsers(s):
    p = s.add_parser("upgrade", help="upgrade a running NF through its control socket")
    p.add_argument("socket")
    p.add_argument("--to", required=True, metavar="NEW.click", help="the new config")
    p.add_argument("--elements", metavar="DIR", help="directory of new element code")
    p.add_argument("--strategy", required=True,
                   help="native, hotswap, clickup-restart or clickup")
    p.add_argument("--delay", type=float, default=0.0, metavar="SECONDS",
                   help="injected upgrade delay (the paper's), labelled as injected")
    p.add_argument("--timeout", type=float, default=120.0)
    p.add_argument("--json", action="store_true", help="print the phase record as JSON")
    p.set_defaults(func=cmd_upgrade)

    p = s.add_parser("manifest", help="write DIR/MANIFEST.sha256 for an upgrade package")
    p.add_argument("dir")
    p.set_defaults(func=cmd_manifest)


def cmd_upgrade(args):
    from . import strategies
    if args.strategy not in strategies():
        print("clickup nf upgrade: unknown strategy %r (known: %s)"
              % (args.strategy, ", ".join(sorted(strategies()))), file=sys.stderr)
        return 2
    req = {"to": os.path.abspath(args.to), "strategy": args.strategy, "delay": args.delay}
    if args.elements:
        req["elements"] = os.path.abspath(args.elements)
    try:
        rec = request_upgrade(args.socket, req, args.timeout)
    except ControlError as e:
        print("clickup nf upgrade: %s" % e, file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(rec, indent=2, sort_keys=True))
    else:
        print(format_record(rec))
    return 0 if rec.get("outcome") == "done" else 1


def format_record(rec):
    def ms(k):
        return "-" if rec.get(k) is None else "%.3f ms" % rec[k]
    lines = ["upgrade %s: %s%s" % (rec.get("strategy"), rec.get("outcome"),
                                   " (%s)" % rec["reason"] if rec.get("reason") else ""),
             "  versions   %s -> %s" % (rec.get("from_version"), rec.get("to_version")),
             "  T1 staging %s   T2 run %s (%s)" % (ms("T1_ms"), ms("T2_ms"),
                                                   rec.get("T2_basis") or "-"),
             "  T3 housekeeping %s   T4 %s" % (ms("T3_ms"), ms("T4_ms")),
             "  modules integrated: %d   entries migrated: %s"
             % (len(rec.get("modules_integrated") or []), rec.get("entries_migrated"))]
    if rec.get("injected_delay_s"):
        lines.append("  injected delay: %.3f s (injected, not measured)" % rec["injected_delay_s"])
    return "\n".join(lines)


def cmd_manifest(args):
    from .manifest import write_manifest
    write_manifest(args.dir)
    print("wrote %s" % os.path.join(args.dir, "MANIFEST.sha256"))
    return 0

"""``clickup nf ...``: check, run and talk to a network function.

    clickup nf check FILE [-d name=value]...
    clickup nf run CONFIG [-d name=value]... [--control SOCKET] [--pidfile F]
                   [--store PATH [--sync-interval SECONDS] [--recover]]
                   [--replica-listen PATH] [--replicate-to PATH]
                   [--role active|standby] [--replica-interval SECONDS]
    clickup nf read SOCKET ELEMENT.HANDLER
    clickup nf write SOCKET ELEMENT.HANDLER [VALUE]
    clickup nf doc [CLASS]
    clickup nf forward DEV1 DEV2          (the bare forwarder the benchmark compares with)
"""

import argparse
import os
import sys

from .errors import ConfigError


def _defines(pairs):
    from .config import defines_dict
    try:
        return defines_dict(pairs or [])
    except ConfigError as e:
        raise SystemExit("clickup nf: -d: %s" % e.message)


def add_parser(sub):
    nf = sub.add_parser("nf", help="check, run and control a network function")
    s = nf.add_subparsers(dest="nf_cmd", required=True, metavar="COMMAND")

    p = s.add_parser("check", help="parse and check a Click config; print the flat graph")
    p.add_argument("file")
    p.add_argument("-d", "--define", action="append", metavar="NAME=VALUE")
    p.add_argument("--elements", metavar="DIR",
                   help="directory of element code (an upgrade package's) to check with")
    p.set_defaults(func=cmd_check)

    p = s.add_parser("run", help="run a router from a Click config")
    p.add_argument("config")
    p.add_argument("-d", "--define", action="append", metavar="NAME=VALUE",
                   help="set a define($name ...) parameter")
    p.add_argument("--control", metavar="SOCKET", help="serve handlers on this Unix socket")
    p.add_argument("--pidfile", help="write the process id here (removed on exit)")
    p.add_argument("--elements", metavar="DIR",
                   help="directory of element code to use besides the library")
    p.add_argument("--handoff", metavar="FILE", help=argparse.SUPPRESS)  # set by upgrades
    _add_store_options(p)
    _add_replica_options(p)
    p.set_defaults(func=cmd_run)

    p = s.add_parser("read", help="read a handler through the control socket")
    p.add_argument("socket")
    p.add_argument("handler", metavar="ELEMENT.HANDLER")
    p.set_defaults(func=cmd_read)

    p = s.add_parser("write", help="write a handler through the control socket")
    p.add_argument("socket")
    p.add_argument("handler", metavar="ELEMENT.HANDLER")
    p.add_argument("value", nargs="?", default="")
    p.set_defaults(func=cmd_write)

    p = s.add_parser("doc", help="print the documentation of an element class (or list them)")
    p.add_argument("cls", nargs="?")
    p.set_defaults(func=cmd_doc)

    from .upgrade.client import add_parsers as add_upgrade_parsers
    add_upgrade_parsers(s)

    p = s.add_parser("forward", help="bare AF_PACKET forwarder between two devices")
    p.add_argument("dev1")
    p.add_argument("dev2")
    p.set_defaults(func=cmd_forward)


def cmd_check(args):
    from .config import check_main
    classes = None
    if args.elements:
        from .upgrade.package import Package, Refused
        pkg = Package(args.file, args.elements, require_manifest=False)
        try:
            pkg.load_code()
        except Refused as e:
            print("clickup nf check: %s" % e, file=sys.stderr)
            return 1
        classes = pkg.classes
    return check_main(args.file, _defines(args.define), classes)


def _print_errors(e):
    for err in getattr(e, "errors", [e]):
        print(str(err), file=sys.stderr)


def cmd_run(args):
    from .control import ControlServer
    from .upgrade.manager import UpgradeManager
    handoff = _take_handoff(args) if args.handoff else None
    problem = _store_args_problem(args) or _replica_args_problem(args)
    if problem:
        print("clickup nf run: %s" % problem, file=sys.stderr)
        return 1
    try:
        router, modules, rollback = _start(args, handoff)
    except ConfigError as e:
        _print_errors(e)
        return 1
    except OSError as e:
        print("clickup nf run: %s" % e, file=sys.stderr)
        return 1
    if args.store and not _start_store(router, args):
        return 1
    args.store_temporary = bool(handoff and handoff.get("store_temporary"))
    if args.store_temporary:
        # The restart strategy's one-off snapshot became this process's store; it is no
        # one's to keep, so it goes when this process exits -- but not when it execs the
        # next version (atexit does not run then), which recovers from it.
        import atexit
        path = args.store
        atexit.register(lambda: os.path.exists(path) and os.unlink(path))
    if args.control:
        try:
            ControlServer(router, args.control)
        except OSError as e:
            router.cleanup()
            print("clickup nf run: control socket %s: %s" % (args.control, e), file=sys.stderr)
            return 1
    replication = None
    if args.replica_listen or args.replicate_to:
        replication = _start_replication(router, args)
        if replication is None:
            return 1
    if args.pidfile:
        with open(args.pidfile, "w") as f:
            f.write("%d\n" % os.getpid())
        router.add_cleanup(lambda: os.path.exists(args.pidfile) and os.unlink(args.pidfile))
    manager = UpgradeManager(router, _run_options(args))
    if replication is not None:
        replication.options = manager.options     # a restart keeps the current role
    if handoff is not None:
        manager.resume(handoff, modules, rollback)
    router.run()
    return 0


def _run_options(args):
    """What a restart strategy needs to start this NF again, elsewhere or as before."""
    return {"config": os.path.abspath(args.config), "defines": _defines(args.define),
            "elements": os.path.abspath(args.elements) if args.elements else None,
            "control": args.control, "pidfile": args.pidfile, "store": args.store,
            "store_temporary": getattr(args, "store_temporary", False),
            "sync_interval": args.sync_interval,
            "replica_listen": args.replica_listen, "replicate_to": args.replicate_to,
            "role": args.role, "replica_interval": args.replica_interval}


def _take_handoff(args):
    """The new process of a restart upgrade: adopt the old process's options."""
    import json
    with open(args.handoff) as f:
        h = json.load(f)
    os.unlink(args.handoff)
    opts = h["options"]
    args.config, args.elements = h["new"]["config"], h["new"]["elements"]
    args.define = ["%s=%s" % kv for kv in h["new"]["defines"].items()]
    args.control, args.pidfile = opts.get("control"), opts.get("pidfile")
    args.store = h.get("store") or opts.get("store")
    args.sync_interval = opts.get("sync_interval") or 0.5
    args.recover = h["new"]["load"] == "essential" and bool(h.get("store"))
    args.replica_listen, args.replicate_to = opts.get("replica_listen"), opts.get("replicate_to")
    args.role, args.replica_interval = opts.get("role"), opts.get("replica_interval")
    return h


def _start(args, handoff):
    """Build and initialize the router; for a restart upgrade, first sleep the injected
    delay and integrate the new version's modules, and fall back to the old version if
    the new one cannot start.  Returns (router, modules integrated, rollback reason)."""
    import time
    from .router import Router
    from .upgrade.package import Refused
    from .upgrade.restart import integrate
    if handoff is None:
        from .config import parse_file
        graph, classes, modules = parse_file(args.config, _defines(args.define)), {}, []
        if args.elements:
            graph, classes, modules = integrate(args.config, args.elements,
                                                _defines(args.define), "essential")
    else:
        time.sleep(handoff["delay"])        # the injected upgrade delay: outage grows
        try:
            graph, classes, modules = integrate(args.config, args.elements,
                                                _defines(args.define), handoff["new"]["load"])
        except (Refused, ConfigError) as e:
            return _rollback(args, handoff, "the new version does not integrate: %s" % e)
    router = None
    try:
        router = Router(graph, classes=classes)
        router.initialize()
    except Exception as e:              # any failure of a new version to start: go back
        if handoff is None:
            raise
        if router is not None:
            router.cleanup()            # release what it opened before the old one starts
        return _rollback(args, handoff, "the new version does not start: %s"
                         % (e if isinstance(e, ConfigError) else "%s: %s" % (type(e).__name__,
                                                                              e)))
    return router, modules, None


def _rollback(args, handoff, reason):
    from .router import Router
    from .upgrade.restart import integrate
    old = handoff["old"]
    print("clickup nf run: %s; starting the old version again" % reason, file=sys.stderr)
    args.config, args.elements = old["config"], old["elements"]
    args.define = ["%s=%s" % kv for kv in (old.get("defines") or {}).items()]
    graph, classes, _ = integrate(args.config, args.elements, old.get("defines") or {},
                                  "essential")
    router = Router(graph, classes=classes)
    router.initialize()
    return router, [], reason


# -- the persistent store (nf.state) -----------------------------------------------------

def _add_store_options(p):
    p.add_argument("--store", metavar="PATH",
                   help="sync the state of every stateful element to this file")
    p.add_argument("--sync-interval", type=float, default=0.5, metavar="SECONDS",
                   help="seconds between syncs to --store (default 0.5)")
    p.add_argument("--recover", action="store_true",
                   help="rebuild the state from --store before forwarding the first packet")


def _store_args_problem(args):
    """What is wrong with the store options (checked before any device is opened)."""
    if args.recover and not args.store:
        return "--recover needs --store PATH (the store to recover from)"
    if not args.sync_interval > 0:
        return "--sync-interval: expected a positive number of seconds, got %s" % (
            args.sync_interval,)
    if args.recover and not os.path.exists(args.store):
        return "--recover: no state store at %s" % args.store
    return None


def _start_store(router, args):
    """Recover (if asked) and start syncing; False (router cleaned up) on failure."""
    from .state import StoreError, attach, recover
    try:
        if args.recover:
            report = recover(router, args.store)
            router.recovered = sum(report.restored.values())
            print("clickup nf run: %s" % report.summary(), file=sys.stderr)
        attach(router, args.store, args.sync_interval)
    except (StoreError, OSError) as e:
        router.cleanup()
        print("clickup nf run: state store: %s" % e, file=sys.stderr)
        return False
    return True


# -- live state replication (nf.state.replica) ---------------------------------------------

def _add_replica_options(p):
    p.add_argument("--replica-listen", metavar="PATH",
                   help="while standby, listen here for the active peer's state (Unix socket)")
    p.add_argument("--replicate-to", metavar="PATH",
                   help="while active, send the state to the peer listening here")
    p.add_argument("--role", choices=("active", "standby"),
                   help="the starting role (default: active with --replicate-to, else "
                        "standby)")
    p.add_argument("--replica-interval", type=float, metavar="SECONDS",
                   help="seconds between the active's sends of journaled changes "
                        "(default 0.005)")


def _replica_args_problem(args):
    """What is wrong with the replication options (checked before any device opens)."""
    from .state.wire import listen_path_problem, peer_path_problem
    listen, peer = args.replica_listen, args.replicate_to
    if not listen and not peer:
        for opt, value in (("--role", args.role), ("--replica-interval",
                                                   args.replica_interval)):
            if value is not None:
                return ("%s needs --replicate-to PATH and/or --replica-listen PATH (it "
                        "sets how this NF replicates)" % opt)
        return None
    if args.replica_interval is not None and not args.replica_interval > 0:
        return "--replica-interval: expected a positive number of seconds, got %s" % (
            args.replica_interval,)
    role = args.role or ("active" if peer else "standby")
    if role == "standby" and not listen:
        return "--role standby needs --replica-listen PATH (where the active connects)"
    if role == "active" and not peer:
        return ("--role active needs --replicate-to PATH (the standby's --replica-listen "
                "path)")
    if listen and peer and os.path.abspath(listen) == os.path.abspath(peer):
        return "--replica-listen and --replicate-to are the same path (%s)" % listen
    for opt, value in (("--replica-listen", listen), ("--replicate-to", peer)):
        if value and args.control and os.path.abspath(value) == os.path.abspath(args.control):
            return "%s and --control are the same path (%s)" % (opt, value)
    if peer:
        problem = peer_path_problem(peer)
        if problem:
            return problem
    if listen:
        return listen_path_problem(listen)
    return None


def _start_replication(router, args):
    """Start replicating; None (router cleaned up) on failure."""
    from .state.replica import Replication
    stem = args.control or args.replica_listen or ""
    node = os.path.splitext(os.path.basename(stem))[0] or None
    try:
        return Replication(router, listen=args.replica_listen, peer=args.replicate_to,
                           role=args.role, interval=args.replica_interval or 0.005,
                           node=node)
    except (ValueError, OSError) as e:
        router.cleanup()
        print("clickup nf run: replication: %s" % e, file=sys.stderr)
        return None


def _client(path):
    from .control import ControlClient, ControlError
    try:
        return ControlClient(path)
    except (ControlError, OSError) as e:
        raise SystemExit("clickup nf: %s" % e)


def cmd_read(args):
    from .control import ControlError
    with _client(args.socket) as c:
        try:
            sys.stdout.write(c.read(args.handler))
        except ControlError as e:
            print("clickup nf read: %s" % e, file=sys.stderr)
            return 1
    if sys.stdout.isatty():
        sys.stdout.write("\n")
    return 0


def cmd_write(args):
    from .control import ControlError
    with _client(args.socket) as c:
        try:
            c.write(args.handler, args.value)
        except ControlError as e:
            print("clickup nf write: %s" % e, file=sys.stderr)
            return 1
    return 0


def cmd_doc(args):
    from .element import ELEMENTS, lookup
    if args.cls:
        cls = lookup(args.cls)
        if cls is None:
            print("clickup nf doc: no element class %r" % args.cls, file=sys.stderr)
            return 1
        print(cls.doc())
        return 0
    from . import library
    library.load_all()
    for name in sorted(ELEMENTS):
        print("%-20s %s" % (name, ELEMENTS[name].summary().split("\n")[0]))
    return 0


def cmd_forward(args):
    from .forwarder import forward
    return forward(args.dev1, args.dev2)

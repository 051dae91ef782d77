"""``clickup nf ...``: check, run and talk to a network function.

    clickup nf check FILE [-d name=value]...
    clickup nf run CONFIG [-d name=value]... [--control SOCKET] [--pidfile F]
    clickup nf read SOCKET ELEMENT.HANDLER
    clickup nf write SOCKET ELEMENT.HANDLER [VALUE]
    clickup nf doc [CLASS]
    clickup nf forward DEV1 DEV2          (the bare forwarder the benchmark compares with)
"""

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
    p.set_defaults(func=cmd_check)

    p = s.add_parser("run", help="run a router from a Click config")
    p.add_argument("config")
    p.add_argument("-d", "--define", action="append", metavar="NAME=VALUE",
                   help="set a define($name ...) parameter")
    p.add_argument("--control", metavar="SOCKET", help="serve handlers on this Unix socket")
    p.add_argument("--pidfile", help="write the process id here (removed on exit)")
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

    p = s.add_parser("forward", help="bare AF_PACKET forwarder between two devices")
    p.add_argument("dev1")
    p.add_argument("dev2")
    p.set_defaults(func=cmd_forward)


def cmd_check(args):
    from .config import check_main
    return check_main(args.file, _defines(args.define))


def _print_errors(e):
    for err in getattr(e, "errors", [e]):
        print(str(err), file=sys.stderr)


def cmd_run(args):
    from .config import parse_file
    from .control import ControlServer
    from .router import Router
    try:
        graph = parse_file(args.config, _defines(args.define))
        router = Router(graph)
    except ConfigError as e:
        _print_errors(e)
        return 1
    except OSError as e:
        print("clickup nf run: %s" % e, file=sys.stderr)
        return 1
    try:
        router.initialize()
    except ConfigError as e:
        router.cleanup()
        _print_errors(e)
        return 1
    if args.control:
        try:
            ControlServer(router, args.control)
        except OSError as e:
            router.cleanup()
            print("clickup nf run: control socket %s: %s" % (args.control, e), file=sys.stderr)
            return 1
    if args.pidfile:
        with open(args.pidfile, "w") as f:
            f.write("%d\n" % os.getpid())
        router.add_cleanup(lambda: os.path.exists(args.pidfile) and os.unlink(args.pidfile))
    router.run()
    return 0


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

"""The ``clickup`` command: one entry point, subcommands contributed by modules.

Each module that offers commands has ``add_parser(subparsers)`` and sets a
``func`` default that returns the exit status.
"""

import argparse
import sys

from nf import __version__


def build_parser():
    from nf import cli as nf_cli
    from experiments import bench, doctor, owned, runner
    from plots import cli as plots_cli
    p = argparse.ArgumentParser(prog="clickup", description="In-service upgrade testbed for "
                                "stateful network functions.")
    p.add_argument("--version", action="version", version="clickup %s" % __version__)
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    for mod in (nf_cli, bench, runner, plots_cli, owned, doctor):
        mod.add_parser(sub)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except KeyboardInterrupt:
        print("clickup: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

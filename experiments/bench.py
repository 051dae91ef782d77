"""``clickup bench NAME``: benchmarks that print their figures, measured side by side.

Benchmarks are registered by decorator; each gets its own subcommand.  The
machine is shared and noisy, so each figure is the median of several trials,
interleaved so that a slow moment hurts every variant alike.
"""

import json
import statistics
import sys

BENCHMARKS = {}


def benchmark(name, help=""):
    """Register ``fn(args) -> int`` as ``clickup bench NAME``; ``fn.add_args(parser)``
    may add options."""
    def deco(fn):
        BENCHMARKS[name] = (fn, help)
        return fn
    return deco


def add_parser(sub):
    from experiments import bench_dataplane  # noqa: F401  (registers)
    from experiments import bench_integration  # noqa: F401  (registers)
    p = sub.add_parser("bench", help="run a benchmark and print its figures")
    s = p.add_subparsers(dest="bench", required=True, metavar="BENCHMARK")
    for name, (fn, h) in sorted(BENCHMARKS.items()):
        q = s.add_parser(name, help=h)
        q.add_argument("--json", action="store_true", help="print one JSON object")
        q.add_argument("--trials", type=int, default=3, help="trials per figure (median)")
        q.add_argument("--quick", action="store_true", help="short runs, one trial")
        if hasattr(fn, "add_args"):
            fn.add_args(q)
        q.set_defaults(func=fn)


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def progress(msg):
    print(msg, file=sys.stderr, flush=True)


def emit(obj, as_json, lines):
    if as_json:
        print(json.dumps(obj, indent=2, sort_keys=True))
    else:
        print("\n".join(lines))

"""Integration latency of an upgrade against the number of new modules.

x: N, the new modules the upgrade brings; y: integration time T1 + T2
(staging plus the switch to the new version) in milliseconds on a log axis,
since ours (milliseconds) and the paper's (seconds) are orders apart.  The
paper's values are converted from seconds to milliseconds.  Reads the rows of
``clickup bench integration`` (also from its own results/bench-integration/
folders).
"""

from plots import figure
from plots.common import PAPER, paper_points, plot_series

MS_PER_S = 1000.0


def _what(name, points):
    return "%s %s s at N = %s" % (name, "/".join("%g" % y for _, y in points),
                                  "/".join("%d" % x for x, _ in points))


@figure("integration", x="modules", y="integration_ms", unit="ms",
        title="Integrating new modules: integration time (T1 + T2) vs modules",
        aliases=("bench-integration",))
def draw(ax, run):
    ref = PAPER["integration"]
    plot_series(ax, run)
    paper_points(ax, "native", ref["native"], _what("native", ref["native"]), MS_PER_S)
    paper_points(ax, "clickup-restart", ref["clickup-restart"],
                 _what("CLICK-UP", ref["clickup-restart"]), MS_PER_S)
    ax.set_yscale("log")
    ax.set_xlabel("new modules integrated by the upgrade (N)")
    ax.set_ylabel("integration time T1 + T2 (ms, log scale)")

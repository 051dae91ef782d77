"""Transfer time of a file sent through the NAT, upgraded at 50 %, against the injected delay.

x: the upgrade delay in seconds -- injected by the testbed to model a slow
upgrade (the paper's "upgrade delay"), not a measured cost; y: the transfer
time in seconds.  The file is uploaded by the client behind the NAT, so its
TCP retransmits with back-off while the NF is down: every restart strategy
waits for the first retransmission after the NF is back, and steps where the
timer backs off; native (mappings lost) then also starts the file again from
byte 0, and clickup (in place, the old graph forwarding while it stages) does
not move at all.  Beside ours:
the paper's native points (1, 5 and 12 s) and CLICK-UP's endpoints (5 and 12 s).
"""

from plots import figure
from plots.common import PAPER, log_if_wide, paper_points, plot_series, series_values


def _what(name, points):
    return "%s at 50 %%: %s" % (name, ", ".join("%g s (delay %g s)" % (y, x) for x, y in points))


@figure("transfer-delay", x="delay_s", y="transfer_s", unit="s",
        title="Upload through the NAT upgraded at 50 %: transfer time vs injected upgrade "
              "delay")
def draw(ax, run):
    ref = PAPER["delay"]
    plot_series(ax, run)
    paper_points(ax, "native", ref["native"], _what("native", ref["native"]))
    paper_points(ax, "clickup-restart", ref["clickup-restart"],
                 _what("CLICK-UP", ref["clickup-restart"]))
    paper_ys = [y for pts in ref.values() for _, y in pts]
    log = log_if_wide(ax, series_values(run) + paper_ys)
    ax.set_xlabel("injected upgrade delay (s)")
    ax.set_ylabel("transfer time (s%s)" % (", log scale" if log else ""))

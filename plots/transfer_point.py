"""Transfer time of a NAT download against the point where an upgrade cuts it.

x: the upgrade point in % of the file already received; y: the download's
transfer time (first request to last byte) in seconds.  A strategy that loses
the NAT's mappings (native, hotswap) makes the client start again from byte 0,
so its time grows with the point; one that keeps them stays flat.  The
no-upgrade baseline is measured once and drawn across.  Beside ours: the
paper's no-upgrade time, its native upgrade at 40 % and CLICK-UP's flat band.
"""

from plots import figure
from plots.common import (PAPER, log_if_wide, paper_band, paper_level, paper_points,
                          plot_series, series_values)


@figure("transfer-point", x="point_pct", y="transfer_s", unit="s",
        title="NAT download cut by an upgrade: transfer time vs upgrade point")
def draw(ax, run):
    ref = PAPER["transfer"]
    lo, hi = ref["clickup_band_s"]
    plot_series(ax, run)
    paper_band(ax, "clickup-restart", lo, hi, "CLICK-UP %g-%g s at every point" % (lo, hi))
    paper_level(ax, "none", ref["none_s"], "no upgrade %.3f s" % ref["none_s"])
    paper_points(ax, "native", [(40, ref["native_at_40pct_s"])],
                 "native at 40 %%, %.3f s" % ref["native_at_40pct_s"])
    log = log_if_wide(ax, series_values(run) + [lo, ref["native_at_40pct_s"]])
    ax.set_xlabel("upgrade point (% of the file received when the upgrade starts)")
    ax.set_ylabel("transfer time (s%s)" % (", log scale" if log else ""))
    ax.set_xlim(-5, 95)

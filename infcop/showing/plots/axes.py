"""Axis helpers shared by the figures: percent log axes, log scales, integer ticks, colour levels, bands."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .style import BAND_ALPHA, new_figure

_PCT_TICKS = (100, 50, 20, 10, 5, 2, 1, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01, 0.005, 0.002, 0.001)
_PCT_TICKS_FINE = (100, 80, 60, 50, 40, 30, 20, 15, 10, 8, 6, 5, 4, 3, 2, 1.5, 1, 0.8, 0.6, 0.5, 0.4, 0.3,
                   0.2, 0.15, 0.1, 0.08, 0.06, 0.05, 0.04, 0.03, 0.02, 0.01)


def band(ax, x, lo, hi, n, color, clip=(None, None)):
    """Shade the 95% CI (clipped to the quantity's physical range) where some point has several seeds."""
    if len(n) and np.nanmax(np.asarray(n, dtype=float)) > 1:
        lo, hi = np.asarray(lo, float), np.asarray(hi, float)
        if clip[0] is not None or clip[1] is not None:
            lo, hi = np.clip(lo, clip[0], clip[1]), np.clip(hi, clip[0], clip[1])
        ax.fill_between(np.asarray(x, float), lo, hi, color=color, alpha=BAND_ALPHA, lw=0)


def percent_log_axis(ax, values, axis: str = "x", reverse: bool = False):
    """Log axis for percentages with ticks at 100/50/20/10/... %."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    v = np.asarray([x for x in values if np.isfinite(x) and x > 0], float)
    lo, hi = (v.min(), v.max()) if v.size else (1.0, 100.0)
    lo, hi = lo / 1.25, hi * 1.25
    ticks = [t for t in _PCT_TICKS if lo <= t <= hi]
    if len(ticks) < 4:
        ticks = [t for t in _PCT_TICKS_FINE if lo <= t <= hi]
        if len(ticks) > 8:
            ticks = ticks[::2]
    ticks = ticks or [float(f"{np.sqrt(lo * hi):.2g}")]
    (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    a = ax.xaxis if axis == "x" else ax.yaxis
    a.set_major_locator(FixedLocator(ticks))
    a.set_major_formatter(FuncFormatter(lambda t, _: f"{t:g}%"))
    a.set_minor_locator(NullLocator())
    lim = (hi, lo) if reverse else (lo, hi)
    (ax.set_xlim if axis == "x" else ax.set_ylim)(*lim)


def log_axis(ax, axis: str = "y"):
    """Log scale with light minor ticks (at 2x and 5x, unlabelled: full minor ticks are slow to draw)."""
    from matplotlib.ticker import LogLocator, NullFormatter

    (ax.set_yscale if axis == "y" else ax.set_xscale)("log")
    a = ax.yaxis if axis == "y" else ax.xaxis
    a.set_minor_locator(LogLocator(subs=(2.0, 5.0)))
    a.set_minor_formatter(NullFormatter())


def plain_log_ticks(ax, axis: str = "x"):
    """Log-axis ticks at 1, 2, 5 x 10^k written as plain numbers (2, 5, 10, 20, ...)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

    a = ax.xaxis if axis == "x" else ax.yaxis
    a.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    a.set_major_formatter(FuncFormatter(lambda t, _: f"{t:g}"))
    a.set_minor_locator(NullLocator())


def maybe_log(ax, values, axis: str = "y", decades: float = 1.0) -> bool:
    """Switch to a log scale when the (positive) values span more than ``decades`` decades."""
    v = np.asarray([x for x in np.ravel(values) if np.isfinite(x)], float)
    if v.size and (v > 0).all() and v.max() / v.min() > 10 ** decades:
        log_axis(ax, axis)
        return True
    return False


def int_ticks(ax, axis: str = "x"):
    from matplotlib.ticker import MaxNLocator

    (ax.xaxis if axis == "x" else ax.yaxis).set_major_locator(MaxNLocator(integer=True))


def discrete_cmap(n_max: int, name: str = "viridis", n_min: int = 1):
    """Colormap + norm for integer levels n_min..n_max, and a ScalarMappable for the colorbar."""
    import matplotlib as mpl
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import BoundaryNorm

    n_max = max(int(n_max), n_min)
    levels = n_max - n_min + 1
    cmap = mpl.colormaps[name].resampled(max(levels, 2))
    if levels == 1:
        cmap = mpl.colors.ListedColormap([mpl.colormaps[name](0.5)])
    norm = BoundaryNorm(np.arange(n_min - 0.5, n_max + 1.5), cmap.N)
    return cmap, norm, ScalarMappable(norm=norm, cmap=cmap)


def colorbar_ticks(n_max: int, n_min: int = 1) -> list[int]:
    step = max(1, int(math.ceil((n_max - n_min + 1) / 10)))
    return list(range(n_min, n_max + 1, step))


def panel_grid(n: int, w: float = 4.6, h: float = 3.3, max_cols: int = 3):
    """A figure with ``n`` panels in rows of at most ``max_cols``; returns (figure, list of axes)."""
    nc = min(n, max_cols)
    nr = int(math.ceil(n / nc))
    fig = new_figure(max(w * nc, 6.0), h * nr + 0.9)
    axes = fig.subplots(nr, nc, squeeze=False)
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_axis_off()
    return fig, flat[:n]


def accuracy_range(ax, frame: pd.DataFrame, methods: pd.DataFrame) -> None:
    """An accuracy panel's range from the runs that are retrained (`frame`: method, iteration, v in %): a 0-epoch control (pruned, never
    retrained) can sit tens of points below and would squash every other method into the top of the panel;
    it runs off the bottom, named there."""
    budget = pd.to_numeric(methods.get("max_epochs"), errors="coerce") if "max_epochs" in methods else None
    if budget is None:
        return
    zero = set(methods.loc[methods["control"].astype(bool) & (budget == 0), "method"]) & set(frame["method"])
    rest = frame[~frame["method"].isin(zero)].groupby(["method", "iteration"])["v"].mean()
    if not zero or rest.empty:
        return
    low = frame[frame["method"].isin(zero)]["v"].min()
    lo, hi = float(rest.min()), float(rest.max())
    if low >= lo:
        return
    pad = 0.1 * ((hi - lo) or 1.0)
    ax.set_ylim(lo - pad, min(100.0, hi + pad))
    ax.annotate(f"below: {', '.join(sorted(zero))} (no retraining; down to {low:.1f}%)", (0.01, 0.02),
                xycoords="axes fraction", fontsize=6.5, color="0.3")

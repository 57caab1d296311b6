"""Means over seeds with a deterministic 95 % Student-t interval: as a table, and drawn with seaborn."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .style import BAND_ALPHA

# Two-sided 95 % Student-t quantiles t_{0.975, dof}.
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)


def t975(dof: int) -> float:
    """The 0.975 quantile of Student's t with ``dof`` degrees of freedom (NaN for dof < 1)."""
    if dof < 1:
        return float("nan")
    if dof <= len(_T975):
        return _T975[dof - 1]
    if dof <= 40:
        return 2.021
    if dof <= 60:
        return 2.000
    if dof <= 120:
        return 1.980
    return 1.960


def t_halfwidth(values) -> float:
    """Half width of the 95 % t-interval of the mean of ``values`` (0 for fewer than two values)."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if v.size < 2:
        return 0.0
    return t975(v.size - 1) * v.std(ddof=1) / np.sqrt(v.size)


def mean_ci(df: pd.DataFrame, by, value: str) -> pd.DataFrame:
    """Mean of ``value`` per group with a 95 % t-interval (``lo``/``hi``; equal to the mean for n < 2).

    Returns columns ``by + [mean, lo, hi, n]`` sorted by ``by``; NaN values are ignored.
    """
    by = [by] if isinstance(by, str) else list(by)
    d = df[by + [value]].dropna(subset=[value])
    if d.empty:
        return pd.DataFrame(columns=by + ["mean", "lo", "hi", "n"])
    g = d.groupby(by, sort=True)[value].agg(["mean", "std", "count"]).reset_index()
    t = np.array([t975(int(n) - 1) for n in g["count"]])
    half = np.where(g["count"] > 1, t * g["std"].fillna(0.0) / np.sqrt(g["count"]), 0.0)
    g["lo"] = g["mean"] - half
    g["hi"] = g["mean"] + half
    g = g.rename(columns={"count": "n"}).drop(columns="std")
    return g[by + ["mean", "lo", "hi", "n"]]


def t_errorbar(clip=(None, None)):
    """A seaborn ``errorbar`` callable: the 95 % t-interval of the mean, clipped to ``clip``.

    Deterministic, unlike seaborn's bootstrap interval.
    """
    lo_clip, hi_clip = clip

    def interval(values):
        v = np.asarray(values, float)
        m, h = float(np.mean(v)), t_halfwidth(v)
        lo, hi = m - h, m + h
        if lo_clip is not None:
            lo, hi = max(lo, lo_clip), max(hi, lo_clip)
        if hi_clip is not None:
            lo, hi = min(lo, hi_clip), min(hi, hi_clip)
        return lo, hi

    return interval


def mean_curve(ax, data: pd.DataFrame, x: str, y: str, color=None, clip=(None, None), band: bool = True,
               hue: str | None = None, palette=None, hue_order=None, **kws):
    """Mean of ``y`` over seeds against ``x``, with the 95 % t-band when ``band`` (seaborn lineplot).

    One curve, or one per ``hue`` level coloured by ``palette``. Leaves the axis labels as they were.
    Extra keywords go to the lines (marker, ms, ls, ...).
    """
    import seaborn as sns

    d = data[[x, y] + ([hue] if hue else [])].dropna()
    if d.empty:
        return
    xlabel, ylabel = ax.get_xlabel(), ax.get_ylabel()
    if hue:
        kws.update(hue=hue, palette=palette, hue_order=[h for h in (hue_order or sorted(set(d[hue]))) if h in set(d[hue])])
    else:
        kws.update(color=color)
    sns.lineplot(data=d, x=x, y=y, ax=ax, estimator="mean", errorbar=t_errorbar(clip) if band else None,
                 err_kws={"alpha": BAND_ALPHA, "lw": 0}, legend=False, **kws)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)

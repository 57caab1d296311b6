"""Means over seeds with a deterministic 95 % Student-t interval: as a table, and drawn with seaborn."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .style import BAND_ALPHA

from ...judging.stats import t975  # the figures' t quantile, from infcop.judging.stats (scipy)


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


MIN_SEEDS_FOR_BAND = 5  # with fewer seeds a t-band covers whole panels: draw the seeds instead
SEED_LW, SEED_ALPHA = 0.6, 0.45


def shows_band(n_seeds: int) -> bool:
    return n_seeds >= MIN_SEEDS_FOR_BAND


def spread_note(n_seeds: int) -> str:
    """How a figure shows the spread over ``n_seeds`` seeds, for its title."""
    if n_seeds <= 1:
        return "one seed"
    if shows_band(n_seeds):
        return f"mean over {n_seeds} seeds, 95% t-interval"
    return f"mean over {n_seeds} seeds; thin lines: single seeds"


def n_seeds(df: pd.DataFrame) -> int:
    """The largest number of seeds of any run group in ``df`` (0 when empty)."""
    if df.empty or "seed" not in df:
        return 0
    keys = [c for c in ("dataset", "arch", "method") if c in df]
    return int(df.groupby(keys)["seed"].nunique().max()) if keys else int(df["seed"].nunique())


def mean_curve(ax, data: pd.DataFrame, x: str, y: str, color=None, clip=(None, None), hue: str | None = None,
               palette=None, hue_order=None, markers=None, units: str = "seed", **kws):
    """Mean of ``y`` over seeds against ``x`` (seaborn lineplot), with the spread over seeds.

    From ``MIN_SEEDS_FOR_BAND`` seeds on, the 95 % t-band (clipped to ``clip``); with fewer, every
    seed as a thin line under the mean. One curve, or one per ``hue`` level coloured by ``palette``
    and marked by ``markers``. Leaves the axis labels as they were. Extra keywords go to the mean
    lines (marker, ms, ls, ...). Returns the number of seeds.
    """
    import seaborn as sns

    cols = [x, y] + [c for c in (hue, units) if c and c in data]
    d = data[cols].dropna()
    if d.empty:
        return 0
    n = int(d.groupby(hue)[units].nunique().max() if hue else d[units].nunique()) if units in d else 1
    xlabel, ylabel = ax.get_xlabel(), ax.get_ylabel()
    ax.set_xlabel(xlabel or " ")  # seaborn then leaves the labels alone (and skips costly tick queries)
    ax.set_ylabel(ylabel or " ")
    common = {}
    if hue:
        present = set(d[hue])
        common.update(hue=hue, palette=palette,
                      hue_order=[h for h in (hue_order or sorted(present)) if h in present])
    else:
        common.update(color=color)
    if 1 < n < MIN_SEEDS_FOR_BAND:
        sns.lineplot(data=d, x=x, y=y, ax=ax, units=units, estimator=None, legend=False, lw=SEED_LW,
                     alpha=SEED_ALPHA, gid="seed", **common)
    mean_kws = dict(common, **kws)
    if hue and markers:
        mean_kws.update(style=hue, markers=markers, dashes=False, style_order=mean_kws["hue_order"])
    sns.lineplot(data=d, x=x, y=y, ax=ax, estimator="mean", legend=False, gid="mean",
                 errorbar=t_errorbar(clip) if shows_band(n) else None, err_kws={"alpha": BAND_ALPHA, "lw": 0},
                 **mean_kws)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return n


def dodge(order, width: float) -> dict:
    """Offsets centred on 0, ``width`` apart, one per item of ``order`` (keeps identical curves apart)."""
    c = (len(order) - 1) / 2
    return {m: (i - c) * width for i, m in enumerate(order)}


def method_styles(it: pd.DataFrame, span: float):
    """(order, markers, x offsets) of the methods in ``it``: display order, one marker each, and offsets
    spreading them over ``span`` in total so that identical curves stay apart."""
    from .style import method_markers, method_order

    order = method_order(it["method"].unique())
    return order, method_markers(order), dodge(order, span / max(len(order) - 1, 1))

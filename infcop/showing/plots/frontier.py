"""frontier.pdf: test accuracy against the full cost at matched sparsity (epoch-equivalents: retraining
epochs, plus flow measurements and the train-dense work only the method needs).

One panel per (dataset, arch, control group with at least two controls, level): the fixed-budget
controls of the group as a curve through their means (each point labelled with its budget), every other
method of the group as its mean, and every seed as a small point of its own (no t-intervals of absolute
accuracy: what decides a verdict is the seed-paired difference, drawn in `verdicts`). The legend gives
each method's verdict from summary.csv."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from . import data as D
from .axes import maybe_log, plain_log_ticks
from .stats import n_seeds, t_halfwidth
from .style import figure_fn, method_markers, method_order, new_figure, no_data

CONTROL_COLOR = "0.3"
FRONTIER_COLS = ["dataset", "arch", "control_group", "level", "method", "seed", "role", "budget",
                 "cost_epoch_equivalents", "test_accuracy"]
SUMMARY_COLS = ["dataset", "arch", "method", "level", "verdict", "delta", "delta_lo", "delta_hi", "margin_pp"]


def points(fr: pd.DataFrame) -> pd.DataFrame:
    """Per method: mean cum_epochs and test accuracy (%) over seeds, their 95% t half-widths, n, budget."""
    rows = []
    for m, g in fr.groupby("method", sort=False):
        x, y = g["cost_epoch_equivalents"].to_numpy(float), g["test_accuracy"].to_numpy(float) * 100
        rows.append(dict(method=m, role=g["role"].iloc[0], budget=pd.to_numeric(g["budget"], errors="coerce").mean(),
                         x=np.nanmean(x), y=np.nanmean(y), dx=t_halfwidth(x), dy=t_halfwidth(y),
                         n=int(g["seed"].nunique())))
    return pd.DataFrame(rows, columns=["method", "role", "budget", "x", "y", "dx", "dy", "n"])


def verdict_label(method: str, s: pd.DataFrame) -> str:
    """'ciap: inconclusive (Δ −0.40 pp [−1.90, +1.10], margin 0.5 pp)' from the summary row of the panel."""
    if s.empty:
        return f"{method}: no verdict in summary.csv"
    r = s.iloc[0]
    v = r["verdict"] if isinstance(r["verdict"], str) else "n/a"
    against = r["verdict_against"] if isinstance(r.get("verdict_against"), str) else ""
    if v == "identical":
        return f"{method}: identical to {against}"
    if v not in ("better", "equivalent", "worse", "inconclusive", "dominated"):
        return f"{method}: no verdict ({v})"
    if v == "dominated":
        v = f"dominated by {against}"
    d, lo, hi, m = (pd.to_numeric(r[c], errors="coerce") for c in ("delta", "delta_lo", "delta_hi", "margin_pp"))
    return f"{method}: {v} (Δ {100 * d:+.2f} pp [{100 * lo:+.2f}, {100 * hi:+.2f}], margin {m:.2g} pp)"


def _limits(vals, extra) -> tuple[float, float]:
    """Cover the points; let intervals widen that by at most half the points' span on each side."""
    v = np.asarray([x for x in vals if np.isfinite(x)], float)
    lo, hi = v.min(), v.max()
    span = (hi - lo) or abs(hi) * 0.1 or 1.0
    e = np.asarray([x for x in extra if np.isfinite(x)], float)
    lo2 = max(min(lo, e.min()) if e.size else lo, lo - 0.5 * span)
    hi2 = min(max(hi, e.max()) if e.size else hi, hi + 0.5 * span)
    pad = 0.08 * (hi2 - lo2)
    return lo2 - pad, hi2 + pad


CONTRAST_COLS = ["dataset", "arch", "level", "method", "against", "accuracy_verdict", "accuracy_delta"]


def contrast_text(method: str, co: pd.DataFrame) -> str:
    """'vs earlystop: worse (−1.02 pp)' lines from contrasts.csv rows of the panel, or ''."""
    rows = co[co["method"] == method] if len(co) else co
    parts = []
    for r in rows.itertuples():
        word = r.accuracy_verdict if isinstance(r.accuracy_verdict, str) else "n/a"
        word = {"better": "more accurate", "worse": "less accurate"}.get(word, word)  # accuracy alone
        cost = float(getattr(r, "cost_delta_epoch_equivalents", np.nan))
        parts.append(f"vs {r.against}: {word} ({100 * float(r.accuracy_delta):+.2f} pp"
                     + (f", {cost:+.1f} epoch-eq.)" if np.isfinite(cost) else ")"))
    return "".join(f"\n    {p}" for p in parts)  # a line of its own under the verdict


def _panel(ax, fr: pd.DataFrame, su: pd.DataFrame, colors, markers, title: str, co: pd.DataFrame | None = None):
    from matplotlib.lines import Line2D

    pts = points(fr)
    ctrl = pts[pts["role"] == "control"].sort_values(["budget", "x"])
    meth = pts[pts["role"] != "control"]
    meth = meth.set_index("method").loc[[m for m in method_order(meth["method"]) if m in set(meth["method"])]] \
        .reset_index()
    xs, ys, ex, ey = [], [], [], []
    handles = []
    if len(ctrl):
        seeds = fr[fr["method"].isin(ctrl["method"])]
        ax.scatter(seeds["cost_epoch_equivalents"], seeds["test_accuracy"] * 100, s=7, color=CONTROL_COLOR,
                   alpha=0.4, lw=0, gid="control-seeds", zorder=2)
        xs += seeds["cost_epoch_equivalents"].tolist()
        # the y-range comes from the runs that matter: a 0-epoch control (pruned, never retrained) can sit
        # tens of points below and would squash every other run into the top of the panel; it is drawn
        # at the lower edge, its value written beside it
        trained = seeds[~(pd.to_numeric(seeds["budget"], errors="coerce") == 0)]
        ys += (trained["test_accuracy"] * 100).tolist()
        ax.plot(ctrl["x"], ctrl["y"], color=CONTROL_COLOR, marker="s", ms=4, lw=1.3, gid="control-curve", zorder=3)
        for r in ctrl.itertuples():
            ax.annotate(f"{r.budget:g}" if np.isfinite(r.budget) else r.method, (r.x, r.y), xytext=(3, -9),
                        textcoords="offset points", fontsize=6.5, color=CONTROL_COLOR)
        handles.append(Line2D([], [], color=CONTROL_COLOR, marker="s", ms=4,
                              label="fixed-budget controls (numbers: epochs per iteration)"))
        xs += ctrl["x"].tolist()
        ys += ctrl.loc[~(ctrl["budget"] == 0), "y"].tolist() or ctrl["y"].tolist()
    for r in meth.itertuples():
        c, mk = colors.get(r.method, "black"), markers.get(r.method, "o")
        s = fr[fr["method"] == r.method]
        ax.scatter(s["cost_epoch_equivalents"], s["test_accuracy"] * 100, s=10, color=c, alpha=0.5, lw=0, marker=mk,
                   gid=f"seeds-{r.method}", zorder=4)
        xs += s["cost_epoch_equivalents"].tolist()
        ys += (s["test_accuracy"] * 100).tolist()
        ax.plot([r.x], [r.y], color=c, marker=mk, ms=6.5, ls="none", markeredgecolor="white", markeredgewidth=0.6,
                gid=f"method-{r.method}", zorder=6)
        sm = su[su["method"] == r.method]
        label = verdict_label(r.method, sm) + (contrast_text(r.method, co) if co is not None else "")
        handles.append(Line2D([], [], color=c, marker=mk, ms=5, ls="none", label=label))
        xs.append(r.x)
        ys.append(r.y)
    if xs:
        if not maybe_log(ax, xs, "x", decades=0.7):
            lo, hi = _limits(xs, ex)
            ax.set_xlim(max(lo, -0.05 * (hi - lo)), hi)  # no cost below zero
        else:
            plain_log_ticks(ax, "x")
            lo, hi = min(x for x in xs if x > 0), max(xs)
            ax.set_xlim(lo / 1.4, hi * 1.4)
        lo, hi = _limits(ys, ey)
        ax.set_ylim(lo, min(hi, 100.5))  # no accuracy above 100%
        for r in ctrl[ctrl["y"] < lo].itertuples():  # off the scale, below: marked at the edge with its value
            ax.plot([r.x], [lo], marker="v", color=CONTROL_COLOR, ms=6, clip_on=False, gid=f"below-{r.method}",
                    zorder=5)
            ax.annotate(f"{r.budget:g} epochs: {r.y:.1f}% (below)", (r.x, lo), xytext=(5, 4),
                        textcoords="offset points", fontsize=6.5, color=CONTROL_COLOR)
    ax.set_title(title, fontsize=8)
    ax.set_xlabel("full cost to reach this sparsity (epoch-equivalents)")
    ax.set_ylabel("test accuracy there (%)")
    from matplotlib.transforms import offset_copy

    # below the x label, at a fixed distance (an axes-fraction offset moves as the layout resizes the axes)
    below = offset_copy(ax.transAxes, fig=ax.figure, y=-26, units="points")
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), bbox_transform=below, fontsize=7.5,
              frameon=False, handletextpad=0.4)


@figure_fn
def frontier(tables_dir: Path):
    """Accuracy against cumulative retraining cost at matched sparsity, controls as a curve."""
    fr = D.read(tables_dir, "frontier", FRONTIER_COLS)
    su = D.read(tables_dir, "summary", SUMMARY_COLS)
    co = D.read(tables_dir, "contrasts", CONTRAST_COLS, optional=True)  # flow methods vs early stopping
    co = co.assign(_lv=pd.to_numeric(co["level"], errors="coerce").round(9))
    methods = D.read_methods(tables_dir)
    if fr.empty:
        return no_data("Cost–accuracy frontier", "frontier.csv")
    fr = fr.copy()
    for c in ("level", "budget", "cost_epoch_equivalents", "test_accuracy"):
        fr[c] = pd.to_numeric(fr[c], errors="coerce")
    # only groups with a curve: at least two fixed-budget controls
    ctrl_n = fr[fr["role"] == "control"].groupby(["dataset", "arch", "control_group"])["method"].nunique()
    keep = {k for k, v in ctrl_n.items() if v >= 2}
    fr = fr[[k in keep for k in zip(fr["dataset"], fr["arch"], fr["control_group"])]]
    if fr.empty:
        return no_data("Cost–accuracy frontier", "frontier.csv (no group with two or more fixed-budget controls)")
    fr["_lv"] = fr["level"].round(9)
    su = su.assign(_lv=pd.to_numeric(su["level"], errors="coerce").round(9)) if len(su) else su.assign(_lv=np.nan)
    colors = D.experiment_colors(methods, fr)
    markers = method_markers(colors)
    groups = sorted({(str(a), str(b), str(c)) for a, b, c in zip(fr["dataset"], fr["arch"], fr["control_group"])})
    levels = {g: sorted(D.sel(fr, dataset=g[0], arch=g[1], control_group=g[2])["_lv"].unique(), reverse=True)
              for g in groups}
    nc = max(len(v) for v in levels.values())
    entries = max(D.sel(fr[fr["role"] != "control"], dataset=g[0], arch=g[1], control_group=g[2])["method"].nunique()
                  for g in groups) + 1  # legend entries below a panel
    lines_per_entry = 2 if len(co) else 1  # a contrast with early stopping under each verdict
    fig = new_figure(max(5.6 * nc, 7.0), (3.9 + 0.19 * lines_per_entry * entries) * len(groups) + 0.9)
    fig.suptitle("Cost–accuracy frontier at matched sparsity: methods against fixed-budget controls\n"
                 f"(large markers: mean over {n_seeds(fr)} seeds; small dots: single seeds; the verdicts: verdicts.png)")
    axes = fig.subplots(len(groups), nc, squeeze=False)
    for r, g in enumerate(groups):
        for j in range(nc):
            ax = axes[r, j]
            if j >= len(levels[g]):
                ax.set_axis_off()
                continue
            lv = levels[g][j]
            f = D.sel(fr, dataset=g[0], arch=g[1], control_group=g[2])
            f = f[f["_lv"] == lv]
            s = D.sel(su, dataset=g[0], arch=g[1])
            s = s[s["_lv"] == lv] if len(s) else s
            pct = f"{100 * lv:.3g}%"
            c = D.sel(co, dataset=g[0], arch=g[1]) if len(co) else co
            c = c[c["_lv"] == lv] if len(c) else c
            _panel(ax, f, s, colors, markers, f"{g[0]} / {g[1]} — {pct} weights remaining\n{_wrap(g[2])}", c)
    return fig


def _wrap(text: str, width: int = 60) -> str:
    if len(text) <= width:
        return text
    cut = text.rfind(" ", 0, width)
    cut = cut if cut > 0 else width
    return text[:cut] + "\n" + _wrap(text[cut:].lstrip(), width)

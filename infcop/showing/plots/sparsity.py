"""Methods against sparsity: accuracy.pdf (test accuracy vs remaining weights and vs theoretical MACs) and cost.pdf
(cumulative retraining epochs and seconds vs remaining weights)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from . import data as D
from .axes import accuracy_range, band, panel_grid, percent_log_axis
from .stats import SEED_ALPHA, SEED_LW, mean_ci, method_styles, n_seeds, shows_band, spread_note
from .style import figure_fn, legend_below, method_handles, new_figure, no_data, panel_title

DODGE = 0.03  # relative spread of the methods' points along the (log) remaining-weights axis


def sparsity_path(ax, s: pd.DataFrame, y: str, color, marker, factor: float = 1.0, clip=(None, None)) -> list:
    """One method's mean (remaining weights %, ``y``) per iteration, with its seeds or its 95% band.

    ``factor`` scales x (a small dodge on the log axis). Returns the x values drawn.
    """
    s = s.assign(rw=s["remaining_weights"] * 100 * factor)
    y_ci = mean_ci(s, "iteration", y)
    x_ci = mean_ci(s, "iteration", "rw")
    a = y_ci.merge(x_ci, on="iteration", suffixes=("", "_x")).sort_values("mean_x", ascending=False)
    n = int(s.groupby("iteration")["seed"].nunique().max()) if "seed" in s and len(s) else 1
    if 1 < n and not shows_band(n):
        for _, g in s.sort_values("iteration").groupby("seed"):
            ax.plot(g["rw"], g[y], color=color, lw=SEED_LW, alpha=SEED_ALPHA, gid="seed")
    ax.plot(a["mean_x"], a["mean"], color=color, marker=marker, ms=4, markeredgecolor="white",
            markeredgewidth=0.4, gid="mean")
    if shows_band(n):
        band(ax, a["mean_x"], a["lo"], a["hi"], a["n"], color, clip=clip)
    return a["mean_x"].tolist()


@figure_fn
def accuracy(tables_dir: Path):
    """Test accuracy against remaining weights (log x, sparser to the right), dense accuracy marked; beside
    it, against theoretical MACs (multiply-accumulates of a forward pass, % of the dense network's), which
    differ between methods at the same remaining weights when they prune different layers."""
    from matplotlib.lines import Line2D

    it, methods, colors = D.iterations(tables_dir)
    if it.empty:
        return no_data("Accuracy vs. sparsity", "iterations.csv")
    panels = D.panels(it)
    order, markers, shift = method_styles(it, DODGE)
    has_macs = {"macs", "dense_macs"} <= set(it.columns) and bool(
        (pd.to_numeric(it["dense_macs"], errors="coerce") > 0).any())
    nr = len(panels)
    fig = new_figure(10.5 if has_macs else 6.0, 3.3 * nr + 0.9)
    axes = fig.subplots(nr, 2 if has_macs else 1, squeeze=False)
    fig.suptitle(f"Test accuracy against remaining weights{' and MACs' if has_macs else ''} "
                 f"({spread_note(n_seeds(it))})")
    x_axes = [("remaining_weights", "remaining weights (%, log scale)")]
    if has_macs:
        x_axes.append(("macs_share", "theoretical MACs (% of dense, log scale)"))
        it = it.assign(macs_share=pd.to_numeric(it["macs"], errors="coerce")
                       / pd.to_numeric(it["dense_macs"], errors="coerce"))
    for r, (ds, arch) in enumerate(panels):
        p = D.sel(it, dataset=ds, arch=arch)
        for j, (col, label) in enumerate(x_axes):
            ax, xs = axes[r, j], []
            for m in order:
                s = D.sel(p, method=m)
                if not s.empty:
                    s = s.assign(v=s["test_accuracy"] * 100, remaining_weights=s[col])
                    xs += sparsity_path(ax, s, "v", colors[m], markers[m], 1 + shift[m], clip=(0, 100))
            dense = p[p["iteration"] == 0]["test_accuracy"].dropna()
            if len(dense):
                ax.axhline(dense.mean() * 100, color="black", ls="--", lw=1)
            percent_log_axis(ax, xs, "x", reverse=True)
            accuracy_range(ax, p.assign(v=p["test_accuracy"] * 100), methods)  # a 0-epoch control runs off, named
            ax.set_xlabel(label)
            ax.set_ylabel("test accuracy (%)")
            ax.set_title(panel_title(ds, arch))
    handles = method_handles(order, colors, markers)
    handles.append(Line2D([], [], color="black", ls="--", label="dense network"))
    legend_below(fig, handles)
    return fig


@figure_fn
def cost(tables_dir: Path):
    """Cumulative retraining epochs and seconds against remaining weights, per method.

    Seconds are training seconds plus flow-measurement seconds where the method's stop criteria need
    flows (``flows_charged``); flow measurements made only for the figures are not a method's cost.
    """
    it, methods, colors = D.iterations(tables_dir, extra=("train_seconds", "flow_seconds"))
    if it.empty:
        return no_data("Cumulative retraining cost", "iterations.csv")
    it = it.sort_values(D.KEYS + ["seed", "iteration"]).copy()
    charged = D.as_bool(it["flows_charged"]) if "flows_charged" in it else pd.Series(True, index=it.index)
    retrain = it["iteration"] > 0  # iteration 0 is the shared dense training: not a retraining cost
    it["ep"] = np.where(retrain, it["epochs_trained"].fillna(0), 0.0)
    masks_s = pd.to_numeric(it["mask_seconds"], errors="coerce").fillna(0) if "mask_seconds" in it else 0.0  # would-be masks: always charged
    it["sec"] = np.where(retrain, it["train_seconds"].fillna(0) + it["flow_seconds"].fillna(0) * charged + masks_s,
                         0.0)
    g = it.groupby(D.KEYS + ["seed"], sort=False)
    it["cum_ep"] = g["ep"].cumsum()
    it["cum_sec"] = g["sec"].cumsum()
    panels = D.panels(it)
    order, markers, shift = method_styles(it, DODGE)
    nr = len(panels)
    fig = new_figure(10.5, 3.0 * nr + 1.0)
    fig.suptitle(f"Cumulative retraining cost of the pruning search ({spread_note(n_seeds(it))})")
    axes = fig.subplots(nr, 2, squeeze=False)
    sec_scale, sec_unit = 1.0, "seconds"
    if it["cum_sec"].max() > 3 * 3600:
        sec_scale, sec_unit = 3600.0, "hours"
    for r, (ds, arch) in enumerate(panels):
        p = D.sel(it, dataset=ds, arch=arch)
        xs = []
        for m in order:
            s = D.sel(p, method=m)
            if s.empty:
                continue
            for j, col, scale in ((0, "cum_ep", 1.0), (1, "cum_sec", sec_scale)):
                xs += sparsity_path(axes[r, j], s.assign(v=s[col] / scale), "v", colors[m], markers[m],
                                    1 + shift[m], clip=(0, None))
        for j, lab in enumerate(("cumulative retraining epochs",
                                 f"cumulative {sec_unit} (train + charged flow)")):
            ax = axes[r, j]
            percent_log_axis(ax, xs, "x", reverse=True)
            ax.set_ylabel(lab)
            ax.set_ylim(bottom=0)
            ax.set_xlabel("remaining weights (%, log scale)" if r == nr - 1 else "")
            ax.set_title(f"{ds} / {arch} — {'epochs' if j == 0 else 'wall-clock ' + sec_unit}")
    legend_below(fig, method_handles(order, colors, markers))
    return fig

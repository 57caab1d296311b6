"""Method comparisons across IMP iterations: comparison.pdf, accuracy.pdf, epochs.pdf, cost.pdf."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from . import data as D
from .axes import band, int_ticks, panel_grid, percent_log_axis
from .stats import mean_ci, mean_curve, t_errorbar
from .style import figure_fn, legend_below, method_handles, method_order, new_figure, no_data, panel_title


def common_budget(methods: pd.DataFrame, order) -> float:
    b = methods[methods["method"].isin(order)]["max_epochs"].dropna().unique()
    return float(b[0]) if len(b) == 1 else np.nan


@figure_fn
def comparison(tables_dir: Path):
    """Test accuracy, retraining epochs and remaining weights against IMP iteration, all methods."""
    from matplotlib.lines import Line2D

    it, methods, colors = D.iterations(tables_dir)
    if it.empty:
        return no_data("Method comparison", "iterations.csv")
    panels = D.panels(it)
    order = method_order(it["method"].unique())
    nr = len(panels)
    fig = new_figure(12.0, 2.9 * nr + 1.0)
    fig.suptitle("Methods across IMP iterations (mean over seeds, 95% CI)")
    axes = fig.subplots(nr, 3, squeeze=False)
    budget = common_budget(methods, order)
    for r, (ds, arch) in enumerate(panels):
        p = D.sel(it, dataset=ds, arch=arch)
        frames = [(p.assign(v=p["test_accuracy"] * 100), (0, 100)),
                  (p[p["iteration"] > 0].assign(v=p["epochs_trained"]), (0, None)),
                  (p.assign(v=p["remaining_weights"] * 100), (0, 100))]
        for j, (frame, clip) in enumerate(frames):
            mean_curve(axes[r, j], frame, "iteration", "v", clip=clip, hue="method", palette=colors,
                       hue_order=order, marker="o", ms=3.5)
        if np.isfinite(budget):
            axes[r, 1].axhline(budget, color="0.5", ls=":", lw=1)
        rw = p.groupby(["method", "iteration"])["remaining_weights"].mean() * 100
        percent_log_axis(axes[r, 2], rw.tolist(), "y")
        axes[r, 0].set_ylabel("test accuracy (%)")
        axes[r, 1].set_ylabel("retraining epochs")
        axes[r, 2].set_ylabel("remaining weights (%)")
        for j, t in enumerate(("test accuracy", "retraining epochs per iteration", "remaining weights")):
            axes[r, j].set_title(f"{ds} / {arch} — {t}")
            int_ticks(axes[r, j])
            axes[r, j].set_xlabel("IMP iteration" if r == nr - 1 else "")
        int_ticks(axes[r, 1], "y")
    handles = method_handles(order, colors)
    if np.isfinite(budget):
        handles.append(Line2D([], [], color="0.5", ls=":", label=f"epoch budget ({budget:g})"))
    legend_below(fig, handles)
    return fig


@figure_fn
def accuracy(tables_dir: Path):
    """Test accuracy against remaining weights (log x, sparser to the right), dense accuracy marked."""
    from matplotlib.lines import Line2D

    it, methods, colors = D.iterations(tables_dir)
    if it.empty:
        return no_data("Accuracy vs. sparsity", "iterations.csv")
    panels = D.panels(it)
    order = method_order(it["method"].unique())
    fig, axes = panel_grid(len(panels))
    fig.suptitle("Test accuracy against remaining weights (mean over seeds, 95% CI)")
    for ax, (ds, arch) in zip(axes, panels):
        p = D.sel(it, dataset=ds, arch=arch)
        xs = []
        for m in order:
            s = D.sel(p, method=m)
            if s.empty:
                continue
            acc = mean_ci(s.assign(v=s["test_accuracy"] * 100), "iteration", "v")
            rw = mean_ci(s.assign(v=s["remaining_weights"] * 100), "iteration", "v")
            a = acc.merge(rw, on="iteration", suffixes=("", "_rw")).sort_values("mean_rw", ascending=False)
            c = colors[m]
            ax.plot(a["mean_rw"], a["mean"], color=c, marker="o", ms=3.5)
            band(ax, a["mean_rw"], a["lo"], a["hi"], a["n"], c, clip=(0, 100))
            xs.extend(a["mean_rw"].tolist())
        dense = p[p["iteration"] == 0]["test_accuracy"].dropna()
        if len(dense):
            ax.axhline(dense.mean() * 100, color="black", ls="--", lw=1)
        percent_log_axis(ax, xs, "x", reverse=True)
        ax.set_xlabel("remaining weights (%, log scale)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(panel_title(ds, arch))
    handles = method_handles(order, colors)
    handles.append(Line2D([], [], color="black", ls="--", label="dense network"))
    legend_below(fig, handles)
    return fig


@figure_fn
def epochs(tables_dir: Path):
    """Retraining epochs per IMP iteration per method: grouped bars with 95% CI error bars."""
    import seaborn as sns
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    it, methods, colors = D.iterations(tables_dir)
    it = it[it["iteration"] > 0] if not it.empty else it
    if it.empty:
        return no_data("Retraining epochs", "iterations.csv")
    panels = D.panels(it)
    order = method_order(it["method"].unique())
    k_max = int(it["iteration"].max())
    fig = new_figure(max(7.0, min(16.0, 1.0 + 0.32 * k_max * len(order))), 2.8 * len(panels) + 0.9)
    fig.suptitle("Retraining epochs per IMP iteration (mean over seeds, 95% CI)")
    axes = fig.subplots(len(panels), 1, squeeze=False)[:, 0]
    budget = common_budget(methods, order)
    for ax, (ds, arch) in zip(axes, panels):
        p = D.sel(it, dataset=ds, arch=arch).dropna(subset=["epochs_trained"])
        several = p.groupby(["method", "iteration"]).size().max() > 1
        sns.barplot(data=p, x="iteration", y="epochs_trained", hue="method", hue_order=order, palette=colors,
                    native_scale=True, width=0.8, gap=0.05, errorbar=t_errorbar((0, None)) if several else None,
                    err_kws={"linewidth": 0.8, "color": "0.2"}, capsize=0.15, saturation=1, legend=False, ax=ax)
        if np.isfinite(budget):
            ax.axhline(budget, color="0.5", ls=":", lw=1)
        ax.set_xticks(range(1, k_max + 1))
        ax.set_xlim(0.4, k_max + 0.6)
        ax.grid(axis="x", visible=False)
        int_ticks(ax, "y")
        ax.set_ylabel("retraining epochs")
        ax.set_xlabel("")
        ax.set_title(panel_title(ds, arch))
    axes[-1].set_xlabel("IMP iteration")
    handles = [Patch(color=colors[m], label=m) for m in order]
    if np.isfinite(budget):
        handles.append(Line2D([], [], color="0.5", ls=":", label=f"epoch budget ({budget:g})"))
    legend_below(fig, handles)
    return fig


@figure_fn
def cost(tables_dir: Path):
    """Cumulative retraining epochs and seconds against remaining weights, per method."""
    it, methods, colors = D.iterations(tables_dir, extra=("train_seconds", "flow_seconds"))
    if it.empty:
        return no_data("Cumulative retraining cost", "iterations.csv")
    it = it.sort_values(D.KEYS + ["seed", "iteration"]).copy()
    retrain = it["iteration"] > 0  # iteration 0 is the shared dense training: not a retraining cost
    it["ep"] = np.where(retrain, it["epochs_trained"].fillna(0), 0.0)
    it["sec"] = np.where(retrain, it["train_seconds"].fillna(0) + it["flow_seconds"].fillna(0), 0.0)
    g = it.groupby(D.KEYS + ["seed"], sort=False)
    it["cum_ep"] = g["ep"].cumsum()
    it["cum_sec"] = g["sec"].cumsum()
    panels = D.panels(it)
    order = method_order(it["method"].unique())
    nr = len(panels)
    fig = new_figure(10.5, 3.0 * nr + 1.0)
    fig.suptitle("Cumulative retraining cost of the pruning search (mean over seeds, 95% CI)")
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
            rw = mean_ci(s.assign(v=s["remaining_weights"] * 100), "iteration", "v")
            for j, col, scale in ((0, "cum_ep", 1.0), (1, "cum_sec", sec_scale)):
                a = mean_ci(s.assign(v=s[col] / scale), "iteration", "v").merge(
                    rw[["iteration", "mean"]].rename(columns={"mean": "x"}), on="iteration")
                axes[r, j].plot(a["x"], a["mean"], color=colors[m], marker="o", ms=3.5)
                band(axes[r, j], a["x"], a["lo"], a["hi"], a["n"], colors[m], clip=(0, None))
                xs.extend(a["x"].tolist())
        for j, lab in enumerate(("cumulative retraining epochs", f"cumulative {sec_unit} (train + flow)")):
            ax = axes[r, j]
            percent_log_axis(ax, xs, "x", reverse=True)
            ax.set_ylabel(lab)
            ax.set_ylim(bottom=0)
            ax.set_xlabel("remaining weights (%, log scale)" if r == nr - 1 else "")
            ax.set_title(f"{ds} / {arch} — {'epochs' if j == 0 else 'wall-clock ' + sec_unit}")
    legend_below(fig, method_handles(order, colors))
    return fig

"""Methods across IMP iterations: comparison.pdf (accuracy, epochs, remaining weights per iteration)
and epochs.pdf (retraining epochs per iteration as grouped bars)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from . import data as D
from .axes import accuracy_range, int_ticks, percent_log_axis
from .stats import mean_curve, method_styles, n_seeds, shows_band, spread_note, t_errorbar
from .style import figure_fn, legend_below, method_handles, method_order, new_figure, no_data, panel_title

DODGE = 0.16  # total width (in iterations) over which the methods' points are spread


def budget_lines(ax, methods: pd.DataFrame, order) -> list:
    """Dotted line(s) at each shown method's own epoch budget; returns their legend handles.

    One line labelled 'epoch budget (n)' when every shown method has budget n; otherwise one line
    per distinct budget naming its methods (a budget only fixed-budget controls have is left to
    their own curves).
    """
    from matplotlib.lines import Line2D

    groups = D.budget_groups(methods, order)
    shown = set(methods[methods["method"].isin(order)]["method"])
    all_shown = len(groups) == 1 and set(groups[0][1]) == shown
    handles = []
    for i, (b, names) in enumerate(groups):
        ls = (0, (1, 1.5 + 1.5 * i))
        ax.axhline(b, color="0.5", ls=ls, lw=1, gid="budget")
        handles.append(Line2D([], [], color="0.5", ls=ls, label=D.budget_label(b, names, all_shown)))
    return handles


@figure_fn
def comparison(tables_dir: Path):
    """Test accuracy, retraining epochs and remaining weights against IMP iteration, all methods."""
    it, methods, colors = D.iterations(tables_dir)
    if it.empty:
        return no_data("Method comparison", "iterations.csv")
    panels = D.panels(it)
    order, markers, shift = method_styles(it, DODGE)
    nr = len(panels)
    fig = new_figure(12.0, 2.9 * nr + 1.0)
    fig.suptitle(f"Methods across IMP iterations ({spread_note(n_seeds(it))}; "
                 f"points of different methods spread slightly along x)")
    axes = fig.subplots(nr, 3, squeeze=False)
    handles = []
    for r, (ds, arch) in enumerate(panels):
        p = D.sel(it, dataset=ds, arch=arch)
        p = p.assign(x=p["iteration"] + p["method"].map(shift))
        frames = [(p.assign(v=p["test_accuracy"] * 100), (0, 100)),
                  (p[p["iteration"] > 0].assign(v=p["epochs_trained"]), (0, None)),
                  (p.assign(v=p["remaining_weights"] * 100), (0, 100))]
        for j, (frame, clip) in enumerate(frames):
            mean_curve(axes[r, j], frame, "x", "v", clip=clip, hue="method", palette=colors, hue_order=order,
                       markers=markers, ms=4, markeredgecolor="white", markeredgewidth=0.4)
        handles = budget_lines(axes[r, 1], methods, order)
        rw = p.groupby(["method", "iteration"])["remaining_weights"].mean() * 100
        percent_log_axis(axes[r, 2], rw.tolist(), "y")
        axes[r, 0].set_ylabel("test accuracy (%)")
        axes[r, 1].set_ylabel("retraining epochs")
        axes[r, 2].set_ylabel("remaining weights (%)")
        for j, t in enumerate(("test accuracy", "retraining epochs per iteration", "remaining weights")):
            axes[r, j].set_title(f"{ds} / {arch} — {t}")
            int_ticks(axes[r, j])
            axes[r, j].set_xlabel("IMP iteration" if r == nr - 1 else "")
        axes[r, 1].set_ylim(bottom=0)
        int_ticks(axes[r, 1], "y")
        accuracy_range(axes[r, 0], frames[0][0], methods)
    legend_below(fig, method_handles(order, colors, markers) + handles)
    return fig


@figure_fn
def epochs(tables_dir: Path):
    """Retraining epochs per IMP iteration per method: grouped bars, the seeds or a 95% interval."""
    import seaborn as sns
    from matplotlib.patches import Patch

    it, methods, colors = D.iterations(tables_dir)
    it = it[it["iteration"] > 0] if not it.empty else it
    if it.empty:
        return no_data("Retraining epochs", "iterations.csv")
    panels = D.panels(it)
    order = method_order(it["method"].unique())
    k_max = int(it["iteration"].max())
    n = n_seeds(it)
    note = spread_note(n).replace("thin lines", "dots")
    fig = new_figure(max(7.0, min(16.0, 1.0 + 0.32 * k_max * len(order))), 2.8 * len(panels) + 1.0)
    fig.suptitle(f"Retraining epochs per IMP iteration ({note})")
    axes = fig.subplots(len(panels), 1, squeeze=False)[:, 0]
    handles = []
    for ax, (ds, arch) in zip(axes, panels):
        p = D.sel(it, dataset=ds, arch=arch).dropna(subset=["epochs_trained"])
        hue_order = [m for m in order if m in set(p["method"])]
        sns.barplot(data=p, x="iteration", y="epochs_trained", hue="method", hue_order=hue_order, palette=colors,
                    native_scale=True, width=0.8, gap=0.05, errorbar=t_errorbar((0, None)) if shows_band(n) else None,
                    err_kws={"linewidth": 0.8, "color": "0.2"}, capsize=0.15, saturation=1, legend=False, ax=ax)
        if 1 < n and not shows_band(n):
            sns.stripplot(data=p, x="iteration", y="epochs_trained", hue="method", hue_order=hue_order,
                          palette={m: "0.15" for m in hue_order}, native_scale=True, dodge=True, jitter=False,
                          size=2.2, alpha=0.8, legend=False, ax=ax, zorder=3)
        handles = budget_lines(ax, methods, order)
        ax.set_xticks(range(1, k_max + 1))
        ax.set_xlim(0.4, k_max + 0.6)
        ax.grid(axis="x", visible=False)
        int_ticks(ax, "y")
        ax.set_ylabel("retraining epochs")
        ax.set_xlabel("")
        ax.set_title(panel_title(ds, arch))
    axes[-1].set_xlabel("IMP iteration")
    legend_below(fig, [Patch(color=colors[m], label=m) for m in order] + handles)
    return fig

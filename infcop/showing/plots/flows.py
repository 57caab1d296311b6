"""connectivity.pdf and gradient.pdf: a per-layer flow vector at the end of each IMP iteration,
one panel per method and (dataset, arch), one curve per iteration, the dense network dashed."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from . import data as D
from .axes import colorbar_ticks, discrete_cmap, log_axis, maybe_log
from .style import figure_fn, legend_below, method_order, new_figure, no_data


def layer_flow_figure(tables_dir: Path, metric: str, title: str, ylabel: str, xlabel: str):
    from matplotlib.lines import Line2D

    ly = D.read(tables_dir, "layers", D.KEYS + ["seed", "iteration", "metric", "layer", "layer_index", "value"])
    methods = D.read_methods(tables_dir)
    d = ly[ly["metric"] == metric] if not ly.empty else ly
    if d.empty:
        return no_data(title, f"layers.csv (metric={metric})")
    colors = D.experiment_colors(methods, ly)
    panels = D.panels(d)
    order = method_order(d["method"].unique())
    k_max = int(d["iteration"].max())
    cmap, norm, sm = discrete_cmap(max(k_max, 1))
    nc = min(len(order), 4)  # methods wrap onto several rows per (dataset, arch)
    per_panel = int(math.ceil(len(order) / nc))
    nr = len(panels) * per_panel
    longest = max(len(str(v)) for v in d["layer"].unique())
    fig = new_figure(max(3.3 * nc + 1.3, 6.0), (2.2 + 0.05 * longest) * nr + 1.0)
    fig.suptitle(f"{title} at the end of each IMP iteration (mean over seeds)")
    # no sharey: shared log axes make matplotlib's tick layout quadratic; limits are synced by hand
    axes = fig.subplots(nr, nc, squeeze=False)
    for p, (ds, arch) in enumerate(panels):
        pd_ = D.sel(d, dataset=ds, arch=arch)
        names = dict(zip(pd_["layer_index"].astype(int), pd_["layer"].astype(str)))
        idx = sorted(names)
        dense = pd_[pd_["iteration"] == 0].groupby("layer_index", sort=True)["value"].mean()
        means = pd_.groupby(["method", "iteration", "layer_index"])["value"].mean()
        logy = maybe_log(axes[p * per_panel, 0], means, "y")
        v = means[np.isfinite(means)]
        if logy:
            ylim = (v.min() / 1.3, v.max() * 1.3)
        else:
            pad = 0.05 * (v.max() - v.min() or abs(v.max()) or 1.0)
            ylim = (v.min() - pad, v.max() + pad)
        for i, m in enumerate(order):
            r, c = p * per_panel + i // nc, i % nc
            ax = axes[r, c]
            sub = D.sel(pd_, method=m)
            a = sub[sub["iteration"] > 0].groupby(["iteration", "layer_index"], sort=True)["value"].mean()
            for k, g in a.reset_index().groupby("iteration", sort=True):
                ax.plot(g["layer_index"], g["value"], color=cmap(norm(int(k))), lw=1.1, marker=".", ms=3)
            if len(dense):
                ax.plot(dense.index, dense.values, color="black", ls="--", lw=1.2, zorder=5)
            if sub.empty:
                ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, color="0.4")
            if logy:
                log_axis(ax, "y")
            ax.set_ylim(*ylim)
            ax.set_title(f"{ds} / {arch} — {m}", color=colors.get(m, "black"), fontweight="bold")
            ax.set_xticks(idx)
            ax.set_xticklabels([names[j] for j in idx], rotation=40, ha="right", rotation_mode="anchor",
                               fontsize=6)
            if idx:
                ax.set_xlim(idx[0] - 0.3, idx[-1] + 0.3)
            ax.set_xlabel(xlabel)
            if c == 0:
                ax.set_ylabel(ylabel)
            else:
                ax.tick_params(labelleft=False)
        for i in range(len(order), per_panel * nc):
            axes[p * per_panel + i // nc, i % nc].set_axis_off()
    cb = fig.colorbar(sm, ax=axes, shrink=min(0.9, 0.6 / nr + 0.3), aspect=25)
    cb.set_ticks(colorbar_ticks(k_max))
    cb.set_label("IMP iteration")
    legend_below(fig, [Line2D([], [], color="black", ls="--", label="dense network (iteration 0)")])
    return fig


@figure_fn
def connectivity(tables_dir: Path):
    """Information flow (connectivity per layer pair) after each iteration, one subplot per method."""
    return layer_flow_figure(tables_dir, "connectivity", "Information flow",
                             "connectivity (mean Pearson r)", "layer pair")


@figure_fn
def gradient(tables_dir: Path):
    """Gradient flow (mean |dL/dW| per layer) after each iteration, one subplot per method."""
    return layer_flow_figure(tables_dir, "gradflow", "Gradient flow", "mean |∂L/∂W|", "layer")

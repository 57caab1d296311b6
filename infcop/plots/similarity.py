"""similarity.pdf, the study's signature dashboard: one page per (dataset, arch, method), one row per
IMP iteration, five panels per row (flow distance, three per-layer vectors, validation accuracy)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from . import data as D
from .axes import colorbar_ticks, discrete_cmap, int_ticks, maybe_log
from .stats import mean_curve
from .style import BAND_ALPHA, STOP_COLOR, figure_fn, message_figure, method_order

LAYER_METRICS = (  # metric, column title, y label, x label
    ("connectivity", "information flow", "connectivity", "layer pair"),
    ("gradflow", "gradient flow", "mean |∂L/∂W|", "layer"),
    ("similarity", "activation similarity to dense", "similarity", "layer"),
)
DIST = {  # kind -> (column, colour, linestyle, label)
    "infoflow": ("info_distance", "black", "-", "information-flow distance"),
    "gradflow": ("grad_distance", "0.45", "--", "gradient-flow distance"),
}
COLUMNS = ("distance", "connectivity", "gradflow", "similarity", "val_accuracy")


@figure_fn
def similarity(tables_dir: Path) -> list:
    """The study's signature figure: per (dataset, arch, method) page, one row per IMP iteration."""
    k = D.KEYS + ["seed", "iteration"]
    ep = D.read(tables_dir, "epochs", k + ["epoch", "val_accuracy", "info_distance", "grad_distance",
                                           "stopped", "stop_reason"])
    el = D.read(tables_dir, "epoch_layers", k + ["epoch", "metric", "layer", "layer_index", "value"])
    ly = D.read(tables_dir, "layers", k + ["metric", "layer", "layer_index", "value"])
    it = D.read(tables_dir, "iterations", k + ["remaining_weights", "val_accuracy"])
    methods = D.read_methods(tables_dir)
    if ep.empty:
        return [message_figure("Flow similarity during retraining", "no data", "epochs.csv has no rows for this figure")]
    ep = ep.copy()
    ep["stopped"] = D.as_bool(ep["stopped"])
    pages = []
    for ds, arch in D.panels(ep):
        pe = D.sel(ep, dataset=ds, arch=arch)
        for m in method_order(pe["method"].unique()):
            pages.append(_page(ds, arch, m, D.sel(pe, method=m), D.sel(el, dataset=ds, arch=arch, method=m),
                               D.sel(ly, dataset=ds, arch=arch), D.sel(it, dataset=ds, arch=arch),
                               D.method_info(methods, m)))
    return pages


def stop_epochs(rows: pd.DataFrame) -> list[tuple[int, str]]:
    """(stopping epoch, reason) per seed; a seed without a stopped row ran its whole budget."""
    out = []
    for _, s in rows.groupby("seed"):
        st = s[s["stopped"]]
        if len(st):
            r = st.sort_values("epoch").iloc[0]
            reason = r["stop_reason"] if isinstance(r["stop_reason"], str) and r["stop_reason"] else "stop"
            out.append((int(r["epoch"]), reason))
        else:
            out.append((int(s["epoch"].max()), "budget"))
    return out


def stop_text(stops_k: list[tuple[int, str]]) -> str:
    if not stops_k:
        return "no retraining"
    epochs = [e for e, _ in stops_k]
    reasons = sorted({r for _, r in stops_k})
    where = f"epoch {epochs[0]}" if min(epochs) == max(epochs) else \
        f"epochs {min(epochs)}–{max(epochs)} (mean {np.mean(epochs):.1f})"
    return f"stopped at {where} ({'/'.join(reasons)})"


def _dense_layers(ly: pd.DataFrame) -> dict:
    out = {}
    if not ly.empty:
        d0 = ly[ly["iteration"] == 0]
        for metric, *_ in LAYER_METRICS:
            dm = d0[d0["metric"] == metric]
            if len(dm):
                out[metric] = dm.groupby("layer_index", sort=True)["value"].mean()
    return out


def _layer_names(*tables: pd.DataFrame) -> dict:
    names = {}
    for src in tables:
        if not src.empty:
            for metric, g in src.groupby("metric"):
                names.setdefault(metric, {}).update(dict(zip(g["layer_index"].astype(int), g["layer"].astype(str))))
    return names


class _Layout:
    """Fixed layout in inches (constrained layout is too slow for pages of up to ~75 axes)."""

    W, left, right, gap = 15.0, 0.7, 0.25, 0.8
    top, col_titles_h, row_title_h, ax_h, row_gap, legend_h = 0.45, 0.25, 0.3, 1.35, 0.3, 0.85

    def __init__(self, n_rows: int, longest_label: int):
        ratios = np.array([1, 1.35, 1.35, 1.35, 1])
        self.col_w = (self.W - self.left - self.right - 4 * self.gap) * ratios / ratios.sum()
        self.col_x = self.left + np.concatenate([[0], np.cumsum(self.col_w + self.gap)[:-1]])
        bottom_ticks = max(0.25, 0.022 * longest_label + 0.1) + 0.3
        self.H = (self.top + self.col_titles_h + n_rows * (self.row_title_h + self.ax_h + self.row_gap)
                  + bottom_ticks + self.legend_h)

    def axes(self, fig, x, y_top, w, h):
        return fig.add_axes((x / self.W, 1 - (y_top + h) / self.H, w / self.W, h / self.H))


def _page(ds, arch, method, ep, el, ly, it, info):
    from matplotlib.figure import Figure

    iters = sorted(int(i) for i in ep["iteration"].unique())
    n_seeds = ep["seed"].nunique()
    max_epoch = int(ep["epoch"].max())
    cmap, norm, sm = discrete_cmap(max_epoch)
    stops = info["stops"]
    kinds = [k for k in ("infoflow", "gradflow") if k in stops] or ["infoflow", "gradflow"]
    dense_layers = _dense_layers(ly)
    layer_names = _layer_names(el, ly)
    dense_val = np.nan
    if not it.empty:
        d0 = it[it["iteration"] == 0]["val_accuracy"].dropna()
        dense_val = float(d0.mean()) * 100 if len(d0) else np.nan
    acc_target = (dense_val - 100 * info["accuracy_delta"]
                  if "accuracy" in stops and np.isfinite(info["accuracy_delta"]) else np.nan)

    longest = max([len(v) for names in layer_names.values() for v in names.values()] or [4])
    L = _Layout(len(iters), longest)
    fig = Figure(figsize=(L.W, L.H))
    fig.suptitle(f"{ds} / {arch} — {method}: retraining after each IMP iteration "
                 f"(mean over {n_seeds} seed{'s' if n_seeds != 1 else ''})", fontsize=11, y=1 - 0.15 / L.H,
                 va="top")
    col_titles = ["flow distance to dense"] + [t for _, t, _, _ in LAYER_METRICS] + ["validation accuracy"]
    y = L.top
    for r, k in enumerate(iters):
        last = r == len(iters) - 1
        rows = ep[ep["iteration"] == k]
        stops_k = stop_epochs(rows)
        rw = it[it["iteration"] == k]["remaining_weights"] if not it.empty else pd.Series(dtype=float)
        if rw.dropna().empty and "remaining_weights" in rows:
            rw = rows["remaining_weights"]
        rw = pd.to_numeric(rw, errors="coerce")
        rw_txt = f"{100 * rw.mean():.3g}% weights remaining" if rw.notna().any() else "remaining weights unknown"
        fig.text(0.1 / L.W, 1 - (y + L.row_title_h - 0.1) / L.H, f"iteration {k} · {rw_txt} · {stop_text(stops_k)}",
                 fontsize=9, fontweight="bold", gid=f"row-title-{k}")
        y += L.row_title_h + (L.col_titles_h if r == 0 else 0.0)
        axes = [L.axes(fig, L.col_x[j], y, L.col_w[j], L.ax_h) for j in range(5)]
        for ax, key in zip(axes, COLUMNS):
            ax.set_label(f"iteration {k}: {key}")  # lets callers (and tests) find a panel
        y += L.ax_h + L.row_gap

        _distance_panel(axes[0], rows, kinds, info)
        for j, spec in enumerate(LAYER_METRICS, start=1):
            sub = el[(el["iteration"] == k) & (el["metric"] == spec[0])] if not el.empty else el
            _layer_panel(axes[j], sub, spec, dense_layers, layer_names.get(spec[0], {}), cmap, norm, last)
        _accuracy_panel(axes[4], rows, dense_val, acc_target)
        for ax in (axes[0], axes[4]):
            int_ticks(ax)
            ax.set_xlim(0.5, max_epoch + 0.5)
            for e, cnt in pd.Series([s for s, _ in stops_k]).value_counts().items():
                ax.axvline(e, color=STOP_COLOR, lw=1.0, alpha=0.35 + 0.65 * cnt / len(stops_k), zorder=0)
            if last:
                ax.set_xlabel("retraining epoch")
        if r == 0:
            for ax, t in zip(axes, col_titles):
                ax.set_title(t)

    for ax in fig.axes:  # minor log ticks cost much drawing time on pages with ~75 axes
        ax.minorticks_off()
    _legend(fig, L, kinds, info, acc_target, n_seeds, sm, max_epoch)
    return fig


def _distance_panel(ax, rows, kinds, info):
    """(1) distances to the dense network's flows, the stop thresholds dotted."""
    shown = []
    for kind in kinds:
        col, color, ls, _ = DIST[kind]
        d = rows[["epoch", col]].dropna()
        if d.empty:
            continue
        mean_curve(ax, d, "epoch", col, color, clip=(0, None), ls=ls, marker="o", ms=2.5)
        shown.extend(d.groupby("epoch")[col].mean().tolist())
        eps = info.get(f"{kind}_epsilon", np.nan)
        if np.isfinite(eps):
            ax.axhline(eps, color=color, ls=":", lw=1.1)
            shown.append(eps)
    if shown:
        if maybe_log(ax, shown, "y", decades=1.5):
            v = np.asarray(shown, float)
            ax.set_ylim(v.min() / 1.6, v.max() * 1.6)
    else:
        ax.text(0.5, 0.5, "not measured", ha="center", va="center", transform=ax.transAxes, color="0.4")
    ax.set_ylabel("L2 distance")


def _layer_panel(ax, sub, spec, dense_layers, names, cmap, norm, last):
    """(2-4) a per-layer vector, one curve per retraining epoch, the dense network dashed."""
    metric, _, ylabel, xlabel = spec
    vals = []
    if len(sub):
        a = sub.groupby(["epoch", "layer_index"], sort=True)["value"].mean().reset_index()
        for e, g in a.groupby("epoch", sort=True):
            ax.plot(g["layer_index"], g["value"], color=cmap(norm(int(e))), lw=1.0, marker=".", ms=3)
            vals.extend(g["value"].tolist())
    if not vals:
        ax.text(0.5, 0.95, "not measured during retraining", ha="center", va="top", zorder=10,
                transform=ax.transAxes, color="0.3", bbox={"fc": "white", "ec": "none", "alpha": 0.85})
    if metric in dense_layers:
        d = dense_layers[metric]
        ax.plot(d.index, d.values, color="black", ls="--", lw=1.3, zorder=5,
                marker="_" if len(d) == 1 else None, ms=10)
        vals.extend(d.tolist())
    if vals and metric == "gradflow":
        maybe_log(ax, vals, "y")
    idx = sorted(names)
    ax.set_xticks(idx)
    ax.set_xticklabels([names[i] for i in idx] if last else [""] * len(idx),
                       rotation=40, ha="right", rotation_mode="anchor", fontsize=6)
    if idx:
        ax.set_xlim(idx[0] - 0.3, idx[-1] + 0.3)
    ax.set_ylabel(ylabel)
    if last:
        ax.set_xlabel(xlabel)


def _accuracy_panel(ax, rows, dense_val, acc_target):
    """(5) validation accuracy, the dense network dashed, the accuracy stop target dotted."""
    acc = rows.assign(v=pd.to_numeric(rows["val_accuracy"], errors="coerce") * 100)
    mean_curve(ax, acc, "epoch", "v", "black", clip=(0, 100), marker="o", ms=2.5)
    if np.isfinite(dense_val):
        ax.axhline(dense_val, color="black", ls="--", lw=1.1)
    if np.isfinite(acc_target):
        ax.axhline(acc_target, color=STOP_COLOR, ls=":", lw=1.1)
    ax.set_ylabel("val. accuracy (%)")


def _legend(fig, L, kinds, info, acc_target, n_seeds, sm, max_epoch):
    """Legend and epoch colorbar below the last row."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = []
    for kind in kinds:
        _, color, ls, label = DIST[kind]
        handles.append(Line2D([], [], color=color, ls=ls, marker="o", ms=2.5, label=label))
        if np.isfinite(info.get(f"{kind}_epsilon", np.nan)):
            handles.append(Line2D([], [], color=color, ls=":",
                                  label=f"ε = {info[f'{kind}_epsilon']:g} ({kind} stop threshold)"))
    handles.append(Line2D([], [], color=STOP_COLOR, lw=1.0, label="stopping epoch (per seed)"))
    handles.append(Line2D([], [], color="black", ls="--", label="dense network (iteration 0)"))
    handles.append(Line2D([], [], color="black", marker="o", ms=2.5, label="val. accuracy"))
    if np.isfinite(acc_target):
        handles.append(Line2D([], [], color=STOP_COLOR, ls=":", label="accuracy stop target"))
    if n_seeds > 1:
        handles.append(Patch(color="black", alpha=BAND_ALPHA, label="95% CI over seeds"))
    y_leg = L.H - L.legend_h
    fig.legend(handles=handles, loc="center left", ncol=3, frameon=False,
               bbox_to_anchor=(L.left / L.W, 1 - (y_leg + 0.4) / L.H))
    cax = L.axes(fig, L.W * 0.62, y_leg + 0.3, L.W * 0.33, 0.16)
    cb = fig.colorbar(sm, cax=cax, orientation="horizontal")
    cb.set_ticks(colorbar_ticks(max_epoch))
    cb.set_label("retraining epoch (curve colour in the per-layer panels)")

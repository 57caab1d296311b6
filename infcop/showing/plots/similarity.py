"""similarity.pdf, the study's signature dashboard: one page per (dataset, arch, method), one row per
IMP iteration, five panels per row: the distance of each flow criterion with its effective threshold,
three per-layer vectors (one curve per epoch), validation accuracy with the accuracy target. Every
panel starts at epoch 0, the pruned and rewound network before retraining.

Each page is labelled with its method (``Figure.get_label()``): ``make_figure`` writes one PNG per
method, ``similarity-<method>.png``, stacking that method's pages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from . import data as D
from . import similarity_panels as P
from .axes import colorbar_ticks, discrete_cmap
from .stats import SEED_ALPHA, SEED_LW, n_seeds, shows_band, spread_note
from .style import BAND_ALPHA, STOP_COLOR, figure_fn, message_figure, method_order

COLUMNS = ("distance", "connectivity", "gradflow", "similarity", "val_accuracy")
_INFO_METRIC = {"signed_mean": "connectivity", "abs_mean": "abs_connectivity", "cka": "cka"}


@figure_fn
def similarity(tables_dir: Path) -> list:
    """One page per (dataset, arch, method) with data; a 'no data' page for a method without any."""
    k = D.KEYS + ["seed", "iteration"]
    ep = D.read(tables_dir, "epochs", k + ["epoch", "val_accuracy", "info_distance", "grad_distance",
                                           "stopped", "stop_reason"])
    el = D.read(tables_dir, "epoch_layers", k + ["epoch", "metric", "layer", "layer_index", "value"])
    ly = D.read(tables_dir, "layers", k + ["metric", "layer", "layer_index", "value"])
    it = D.read(tables_dir, "iterations", k + ["remaining_weights", "val_accuracy"])
    cr = D.read(tables_dir, "criteria", k + ["epoch", "criterion", "name", "measure", "form", "value",
                                             "threshold", "holds"], optional=True)
    methods = D.read_methods(tables_dir)
    for c in ("info_distance", "abs_distance", "cka_distance", "grad_distance"):
        if c not in ep:
            ep[c] = np.nan
    order = method_order(set(methods["method"].dropna()) | set(ep["method"].dropna()))
    if not order:
        return [message_figure("Flow similarity during retraining", "no data", "epochs.csv has no rows")]
    ep = ep.assign(stopped=D.as_bool(ep["stopped"])) if len(ep) else ep
    cr = cr.assign(holds=D.as_bool(cr["holds"])) if len(cr) else cr
    pages = []  # (dataset, arch, method index, page): sorted by (dataset, arch), then method
    for i, m in enumerate(order):
        pairs = D.panels(D.sel(ep, method=m))
        for ds, arch in pairs:
            fig = _page(ds, arch, m, D.sel(ep, dataset=ds, arch=arch, method=m),
                        D.sel(el, dataset=ds, arch=arch, method=m), _own(D.sel(ly, dataset=ds, arch=arch), m),
                        _own(D.sel(it, dataset=ds, arch=arch), m), D.sel(cr, dataset=ds, arch=arch, method=m),
                        D.method_info(methods, m))
            pages.append((ds, arch, i, fig))
        if not pairs:
            pages.append(("~", "~", i, message_figure(f"Flow similarity during retraining — {m}", "no data",
                                                      f"epochs.csv has no rows for method {m}")))
    for _, _, i, fig in pages:
        fig.set_label(order[i])  # make_figure writes one PNG per method
    return [fig for *_, fig in sorted(pages, key=lambda p: p[:3])]


def _own(df: pd.DataFrame, method: str) -> pd.DataFrame:
    """A method's rows; the dense network's (iteration 0) from any method when it has none of its own."""
    mine = D.sel(df, method=method)
    if df.empty or (mine["iteration"] == 0).any():
        return mine
    return pd.concat([mine, df[df["iteration"] == 0]])


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
    return f"stopped at {where} ({' / '.join(reasons)})"


def epoch0_text(crit_k: pd.DataFrame, flows) -> str:
    """'held at epoch 0: infoflow 3/3 seeds' for the flow criteria that held before any retraining."""
    if crit_k.empty:
        return ""
    e0 = crit_k[crit_k["epoch"] == 0]
    parts = []
    for f in flows:
        g = e0[e0["criterion"] == f.id]
        n_held = int(g.groupby("seed")["holds"].any().sum()) if len(g) else 0
        if n_held:
            parts.append(f"{f.id} {n_held}/{g['seed'].nunique()}")
    return f" · held at epoch 0: {', '.join(parts)} seeds" if parts else ""


def _dense_layers(ly: pd.DataFrame, metric: str):
    d0 = ly[(ly["iteration"] == 0) & (ly["metric"] == metric)] if not ly.empty else ly
    return d0.groupby("layer_index", sort=True)["value"].mean() if len(d0) else None


def _layer_names(el: pd.DataFrame, ly: pd.DataFrame, metric: str) -> dict:
    names = {}
    for src in (el, ly):
        if not src.empty:
            g = src[src["metric"] == metric]
            names.update(dict(zip(g["layer_index"].astype(int), g["layer"].astype(str))))
    return names


class _Layout:
    """Fixed layout in inches (constrained layout is too slow for pages of up to ~75 axes)."""

    W, left, right, gap = 15.0, 0.7, 0.25, 0.8
    top, col_titles_h, row_title_h, ax_h, row_gap = 0.45, 0.25, 0.3, 1.35, 0.3

    def __init__(self, n_rows: int, longest_label: int, legend_rows: int):
        ratios = np.array([1, 1.35, 1.35, 1.35, 1])
        self.col_w = (self.W - self.left - self.right - 4 * self.gap) * ratios / ratios.sum()
        self.col_x = self.left + np.concatenate([[0], np.cumsum(self.col_w + self.gap)[:-1]])
        self.bottom_ticks = 0.045 * longest_label + 0.4  # vertical layer names + axis label
        self.legend_h = 0.2 + 0.16 * legend_rows
        self.H = (self.top + self.col_titles_h + n_rows * (self.row_title_h + self.ax_h + self.row_gap)
                  + self.bottom_ticks + self.legend_h)

    def axes(self, fig, x, y_top, w, h):
        return fig.add_axes((x / self.W, 1 - (y_top + h) / self.H, w / self.W, h / self.H))


def _page(ds, arch, method, ep, el, ly, it, cr, info):
    from matplotlib.figure import Figure

    iters = sorted(int(i) for i in ep["iteration"].unique())
    n = n_seeds(ep)
    budget = info.get("max_epochs", np.nan)  # show the whole budget: how early did it stop?
    max_epoch = int(max(ep["epoch"].max(), budget if np.isfinite(budget) else 0))
    cmap, norm, sm = discrete_cmap(max_epoch, n_min=0)
    flows, dist = P.flow_series(ep, cr, info)
    info_measure = next((f.measure for f in flows if f.name == "infoflow"), "signed_mean")
    metrics = [_INFO_METRIC.get(info_measure, "connectivity"), "gradflow", "similarity"]
    if el.empty or not (el["metric"] == metrics[0]).any():
        metrics[0] = "connectivity"
    names = {m: _layer_names(el, ly, m) for m in metrics}
    dense_val = it[it["iteration"] == 0]["val_accuracy"].dropna() if not it.empty else pd.Series(dtype=float)
    dense_val = float(dense_val.mean()) * 100 if len(dense_val) else np.nan
    acc = cr[(cr["name"] == "accuracy") | (cr["measure"] == "val_accuracy")] if not cr.empty else cr
    fallback_target = (dense_val - 100 * info["accuracy_delta"] if "accuracy" in info["stops"]
                       and np.isfinite(info["accuracy_delta"]) else np.nan)

    handles = _legend_handles(flows, dist, acc, fallback_target, n)
    longest = max([len(v) for d in names.values() for v in d.values()] or [4])
    L = _Layout(len(iters), longest, int(np.ceil(len(handles) / 2)))
    fig = Figure(figsize=(L.W, L.H))
    fig.suptitle(f"{ds} / {arch} — {method}: retraining after each IMP iteration ({spread_note(n)})",
                 fontsize=11, y=1 - 0.15 / L.H, va="top")
    col_titles = ["flow distance to dense"] + [P.LAYER_PANELS[m][0] for m in metrics] + ["validation accuracy"]
    y = L.top
    for r, k in enumerate(iters):
        last = r == len(iters) - 1
        rows = ep[ep["iteration"] == k]
        stops_k = stop_epochs(rows)
        rw = pd.to_numeric(it[it["iteration"] == k]["remaining_weights"], errors="coerce") if len(it) else None
        if rw is None or rw.dropna().empty:
            rw = pd.to_numeric(rows.get("remaining_weights", pd.Series(dtype=float)), errors="coerce")
        rw_txt = f"{100 * rw.mean():.3g}% weights remaining" if rw.notna().any() else "remaining weights unknown"
        crit_k = cr[cr["iteration"] == k] if len(cr) else cr
        fig.text(0.1 / L.W, 1 - (y + L.row_title_h - 0.1) / L.H,
                 f"iteration {k} · {rw_txt} · {stop_text(stops_k)}{epoch0_text(crit_k, flows)}",
                 fontsize=9, fontweight="bold", gid=f"row-title-{k}")
        y += L.row_title_h + (L.col_titles_h if r == 0 else 0.0)
        axes = [L.axes(fig, L.col_x[j], y, L.col_w[j], L.ax_h) for j in range(5)]
        for ax, key in zip(axes, COLUMNS):
            ax.set_label(f"iteration {k}: {key}")  # lets callers (and tests) find a panel
        y += L.ax_h + L.row_gap

        last_row = axes
        P.distance_panel(axes[0], dist[dist["iteration"] == k], flows)
        for j, metric in enumerate(metrics, start=1):
            sub = el[(el["iteration"] == k) & (el["metric"] == metric)] if not el.empty else el
            P.layer_panel(axes[j], sub, metric, _dense_layers(ly, metric), names[metric], cmap, norm, last)
        acc_k = acc[acc["iteration"] == k] if len(acc) else acc
        target = P.row_threshold(acc_k) * 100 if len(acc_k) else fallback_target
        P.accuracy_panel(axes[4], rows, dense_val, target)
        for ax in (axes[0], axes[4]):
            P.epoch_axis(ax, max_epoch, stops_k, last)
        if r == 0:
            for ax, t in zip(axes, col_titles):
                ax.set_title(t)

    for ax in fig.axes:  # minor log ticks cost much drawing time on pages with ~75 axes
        ax.minorticks_off()
    y_leg = L.H - L.legend_h
    fig.legend(handles=handles, loc="upper left", ncol=2, frameon=False,
               bbox_to_anchor=(L.left / L.W, 1 - (y_leg + 0.05) / L.H))
    cax = L.axes(fig, L.W * 0.66, y_leg + 0.3, L.W * 0.3, 0.16)
    cb = fig.colorbar(sm, cax=cax, orientation="horizontal")
    cb.set_ticks(colorbar_ticks(max_epoch, n_min=0))
    cb.set_label("epoch: curve colour in the per-layer panels (0 = before retraining, dotted)")
    thin_overlapping_ticklabels(fig, last_row[1:4])
    return fig


def _legend_handles(flows, dist, acc, fallback_target, n) -> list:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = []
    for f in flows:
        handles.append(Line2D([], [], color=f.color, ls=f.ls, marker="o", ms=2.5, label=f.label))
        if f.threshold_label and dist[dist["id"] == f.id]["threshold"].notna().any():
            handles.append(Line2D([], [], color=f.color, ls=":", label=f.threshold_label))
    handles.append(Line2D([], [], color="black", marker="o", ms=2.5, label="val. accuracy"))
    if len(acc) or np.isfinite(fallback_target):
        handles.append(Line2D([], [], color=STOP_COLOR, ls=":",
                              label="accuracy stop target (dense val. accuracy − δ), mean over seeds"))
    handles.append(Line2D([], [], color="black", ls="--", label="dense network (iteration 0)"))
    handles.append(Line2D([], [], color=STOP_COLOR, lw=1.0, label="stopping epoch (one line per seed)"))
    handles.append(Patch(color=P.EPOCH0_SHADE, label="epoch 0: pruned and rewound, before retraining"))
    if shows_band(n):
        handles.append(Patch(color="black", alpha=BAND_ALPHA, label="95% t-interval over seeds"))
    elif n > 1:
        handles.append(Line2D([], [], color="black", lw=SEED_LW, alpha=SEED_ALPHA, label="single seeds"))
    return handles


def thin_overlapping_ticklabels(fig, axes):
    """Show every 2nd, 3rd, ... x tick label of each of ``axes`` while the renderer finds two that overlap."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()
    for ax in axes:
        ax.xaxis.get_tightbbox(renderer)  # places the tick labels
        labels = [t for t in ax.get_xticklabels() if t.get_text()]
        step = 1
        while len(labels) > 1:
            shown = labels[::step]
            boxes = [t.get_window_extent(renderer) for t in shown]
            if not any(a.overlaps(b) for a, b in zip(boxes, boxes[1:])):
                break
            step += 1
            for i, t in enumerate(labels):
                t.set_visible(i % step == 0)

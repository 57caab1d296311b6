"""The panels of one dashboard row (see ``similarity``): flow distances with the stop thresholds,
per-layer vectors per epoch, validation accuracy with the accuracy target. Epoch 0 (the pruned,
rewound network before any retraining) is drawn in every panel."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import data as D
from .axes import maybe_log
from .stats import mean_curve
from .style import STOP_COLOR, isnan

MEASURES = {  # measure -> (epochs.csv distance column, per-layer metric, label)
    "signed_mean": ("info_distance", "connectivity", "connectivity distance (signed mean r)"),
    "abs_mean": ("abs_distance", "abs_connectivity", "connectivity distance (mean |r|)"),
    "cka": ("cka_distance", "cka", "CKA distance (1 − CKA per layer)"),
    "gradflow": ("grad_distance", "gradflow", "gradient-flow distance"),
}
LAYER_PANELS = {  # per-layer metric -> (column title, y label, x label)
    "connectivity": ("information flow (signed mean r)", "connectivity", "layer pair"),
    "abs_connectivity": ("information flow (mean |r|)", "connectivity |r|", "layer pair"),
    "cka": ("CKA to dense, per layer", "linear CKA", "layer"),
    "gradflow": ("gradient flow", "mean |∂L/∂W|", "layer"),
    "similarity": ("activation similarity to dense", "cosine similarity", "layer"),
}
_FLOW_STYLES = (("black", "-"), ("0.45", "--"), ("#0072B2", "-."), ("#D55E00", ":"))
EPOCH0_SHADE = "0.9"


@dataclass(frozen=True)
class Flow:
    """A distance curve of the distance panel: a flow criterion of the method, or context."""

    id: str  # criterion id, or the epochs.csv column for context curves
    name: str
    measure: str
    form: str  # epsilon | auto | recover | patience | '' (no threshold / context)
    color: str
    ls: str
    label: str
    threshold_label: str  # '' when no threshold line is drawn


def flow_series(rows: pd.DataFrame, crit: pd.DataFrame, info: dict) -> tuple[list[Flow], pd.DataFrame]:
    """The method's flow criteria and their values per (seed, iteration, epoch).

    From criteria.csv when it has rows (the value each criterion compared and its effective threshold);
    else from methods.csv and the epochs.csv distance columns (absolute ε only). A method without flow
    criteria shows the study's two distances as context, without thresholds.
    """
    keys = ["seed", "iteration", "epoch"]
    specs, frames = [], []
    fc = crit[(crit["name"] != "accuracy") & (crit["measure"] != "val_accuracy")] if not crit.empty else crit
    if not fc.empty:
        for cid, g in fc.groupby("criterion", sort=False):
            r = g.iloc[0]
            specs.append((cid, str(r["name"]), str(r["measure"]) if not isnan(r["measure"]) else "",
                          str(r["form"]) if not isnan(r["form"]) else ""))
            frames.append(g[keys].assign(id=cid, value=pd.to_numeric(g["value"], errors="coerce"),
                                         threshold=pd.to_numeric(g["threshold"], errors="coerce")))
    elif crit.empty:
        for name in ("infoflow", "gradflow"):
            if name in info["stops"]:
                meas = info.get("infoflow_measure")
                meas = "gradflow" if name == "gradflow" else (meas if isinstance(meas, str) and meas else "signed_mean")
                col = MEASURES.get(meas, MEASURES["signed_mean"])[0]
                eps = info.get(f"{name}_epsilon", np.nan)
                specs.append((name, name, meas, "epsilon" if np.isfinite(eps) else ""))
                frames.append(rows[keys].assign(id=name, value=rows[col], threshold=eps))
    context = not specs
    if context:
        for meas in ("signed_mean", "gradflow"):
            col = MEASURES[meas][0]
            specs.append((col, "", meas, ""))
            frames.append(rows[keys].assign(id=col, value=rows[col], threshold=np.nan))
    flows = []
    for i, (cid, name, meas, form) in enumerate(specs):
        color, ls = _FLOW_STYLES[i % len(_FLOW_STYLES)]
        label = MEASURES.get(meas, (None, None, f"{cid} value"))[2]
        label = f"{label} (not a stop criterion)" if context else f"{cid}: {label}"
        if form == "patience":
            label += f" ({info.get(f'{name}_threshold') or 'patience'}: no threshold line)"
        flows.append(Flow(cid, name, meas, form, color, ls, label, _threshold_label(cid, name, form, info)))
    dist = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=keys + ["id", "value", "threshold"])
    return flows, dist.dropna(subset=["value"])


def _threshold_label(cid: str, name: str, form: str, info: dict) -> str:
    text = info.get(f"{name}_threshold")
    text = "" if text is None or isnan(text) else str(text)
    if form == "epsilon":
        eps = info.get(f"{name}_epsilon", np.nan)
        return f"{cid} threshold: ε = {eps:g} (absolute)" if np.isfinite(eps) else f"{cid} threshold ε"
    if form == "auto":
        return f"{cid} threshold: dense noise floor (auto), mean over seeds"
    if form == "recover":
        alpha = D.parse_threshold(text)[1]
        a = f"{alpha:g} × " if np.isfinite(alpha) else "α × "
        return f"{cid} threshold: {a}epoch-0 distance, mean over seeds"
    if form in ("patience", ""):
        return ""
    return f"{cid} threshold, mean over seeds"


def row_threshold(d: pd.DataFrame) -> float:
    """One row's threshold: per seed (constant over epochs), then the mean over seeds."""
    t = d.dropna(subset=["threshold"])
    return float(t.groupby("seed")["threshold"].mean().mean()) if len(t) else np.nan


def distance_panel(ax, dist_k: pd.DataFrame, flows: list[Flow]):
    """Distances to the dense network's flows, epoch 0 on; each criterion's threshold dotted."""
    shown = []
    for f in flows:
        d = dist_k[dist_k["id"] == f.id]
        if d.empty:
            continue
        mean_curve(ax, d, "epoch", "value", f.color, clip=(0, None), ls=f.ls, marker="o", ms=2.5)
        shown.extend(d.groupby("epoch")["value"].mean().tolist())
        thr = row_threshold(d) if f.threshold_label else np.nan
        if np.isfinite(thr):
            ax.axhline(thr, color=f.color, ls=":", lw=1.1, gid=f"threshold-{f.id}")
            shown.append(thr)
    if shown:
        if maybe_log(ax, shown, "y", decades=1.5):
            v = np.asarray([s for s in shown if s > 0], float)
            ax.set_ylim(v.min() / 1.6, v.max() * 1.6)
    else:
        ax.text(0.5, 0.5, "not measured", ha="center", va="center", transform=ax.transAxes, color="0.4")
    ax.set_ylabel("distance to dense")


def layer_panel(ax, sub, metric, dense, names, cmap, norm, last):
    """A per-layer vector, one curve per epoch (epoch 0 dotted), the dense network dashed."""
    ylabel, xlabel = LAYER_PANELS[metric][1:]
    vals = []
    if len(sub):
        a = sub.groupby(["epoch", "layer_index"], sort=True)["value"].mean().reset_index()
        for e, g in a.groupby("epoch", sort=True):
            ax.plot(g["layer_index"], g["value"], color=cmap(norm(int(e))), lw=1.3 if e == 0 else 1.0,
                    ls=":" if e == 0 else "-", marker=".", ms=3, gid=f"epoch-{int(e)}", zorder=4 if e == 0 else 2)
            vals.extend(g["value"].tolist())
    if not vals:
        ax.text(0.5, 0.95, "not measured during retraining", ha="center", va="top", zorder=10,
                transform=ax.transAxes, color="0.3", bbox={"fc": "white", "ec": "none", "alpha": 0.85})
    if dense is not None and len(dense):
        ax.plot(dense.index, dense.values, color="black", ls="--", lw=1.3, zorder=5,
                marker="_" if len(dense) == 1 else None, ms=10, gid="dense")
        vals.extend(dense.tolist())
    if vals and metric == "gradflow":
        maybe_log(ax, vals, "y")
    idx = sorted(names)
    ax.set_xticks(idx)
    # vertical labels: their bounding boxes are the glyphs' (tilted ones' boxes overlap their neighbours)
    ax.set_xticklabels([names[i] for i in idx] if last else [""] * len(idx), rotation=90, fontsize=6)
    if idx:
        ax.set_xlim(idx[0] - 0.4, idx[-1] + 0.4)
    ax.set_ylabel(ylabel)
    if last:
        ax.set_xlabel(xlabel)


def accuracy_panel(ax, rows, dense_val, target):
    """Validation accuracy from epoch 0, the dense network dashed, the accuracy stop target dotted."""
    acc = rows.assign(v=pd.to_numeric(rows["val_accuracy"], errors="coerce") * 100)
    mean_curve(ax, acc, "epoch", "v", "black", clip=(0, 100), marker="o", ms=2.5)
    if np.isfinite(dense_val):
        ax.axhline(dense_val, color="black", ls="--", lw=1.1, gid="dense")
    if np.isfinite(target):
        ax.axhline(target, color=STOP_COLOR, ls=":", lw=1.1, gid="accuracy-target")
    ax.set_ylabel("val. accuracy (%)")


def epoch_axis(ax, max_epoch: int, stops_k: list, last: bool):
    """Epochs 0..max, epoch 0 shaded, each seed's stopping epoch as a red line."""
    from .axes import int_ticks

    int_ticks(ax)
    ax.set_xlim(-0.5, max_epoch + 0.5)
    ax.axvspan(-0.5, 0.5, color=EPOCH0_SHADE, lw=0, zorder=0, gid="epoch-0")
    for e, cnt in pd.Series([s for s, _ in stops_k]).value_counts().items():
        ax.axvline(e, color=STOP_COLOR, lw=1.0, alpha=0.35 + 0.65 * cnt / len(stops_k), zorder=1, gid="stop")
    if last:
        ax.set_xlabel("epoch (0 = pruned, before retraining)")

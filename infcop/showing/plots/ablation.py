"""ablation.pdf: methods that differ only in one absolute stop threshold (an ε or δ sweep), their final
test accuracy and total retraining epochs against that threshold."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import data as D
from .axes import maybe_log
from .stats import mean_curve, n_seeds, spread_note
from .style import CANONICAL_COLORS, figure_fn, legend_below, message_figure, new_figure, no_data

# sweepable parameter -> (criterion, threshold form, axis label)
SWEEP_PARAMS = {
    "infoflow_epsilon": ("infoflow", "epsilon", "information-flow ε"),
    "infoflow_recover": ("infoflow", "recover", "information-flow recover α"),
    "infoflow_patience": ("infoflow", "patience", "information-flow patience P"),
    "gradflow_epsilon": ("gradflow", "epsilon", "gradient-flow ε"),
    "gradflow_recover": ("gradflow", "recover", "gradient-flow recover α"),
    "gradflow_patience": ("gradflow", "patience", "gradient-flow patience P"),
    "accuracy_delta": ("accuracy", "delta", "accuracy δ"),
}
PARAM_LABELS = {p: v[2] for p, v in SWEEP_PARAMS.items()}


@dataclass(frozen=True)
class EpsilonSweep:
    """Methods sharing pruner, stop criteria and budget that differ only in one stop threshold."""

    pruner: str
    stops: tuple[str, ...]
    parameter: str  # a key of SWEEP_PARAMS, e.g. infoflow_epsilon
    methods: tuple[str, ...]  # sorted by threshold value
    values: tuple[float, ...]

    @property
    def label(self) -> str:
        return f"{self.pruner} + {'+'.join(self.stops)} stop ({', '.join(self.methods)})"


def _threshold_columns(m: pd.DataFrame) -> pd.DataFrame:
    """Add <crit>_form and the numbers of the non-absolute forms (recover α, patience P) from the text."""
    for crit in ("infoflow", "gradflow"):
        text = m[f"{crit}_threshold"] if f"{crit}_threshold" in m else pd.Series(np.nan, index=m.index)
        parsed = text.map(D.parse_threshold)
        form = parsed.map(lambda t: t[0])
        eps = pd.to_numeric(m[f"{crit}_epsilon"], errors="coerce")
        m[f"{crit}_form"] = np.where(form == "", np.where(eps.notna(), "epsilon", ""), form)
        for f in ("recover", "patience"):
            m[f"{crit}_{f}"] = [v if fo == f else np.nan for fo, v in parsed]
    return m


def find_epsilon_sweeps(methods: pd.DataFrame) -> list[EpsilonSweep]:
    """Detect threshold sweeps in methods.csv.

    A sweep is >= 2 methods with the same pruner, stop criteria, max_epochs, threshold forms and
    information-flow measure (and, where methods.csv has them, the same ``rewind`` and pruner
    ``spec``), equal values in the other threshold parameters, and >= 2 distinct values of one
    parameter that one of their stop criteria uses: an absolute ε or δ, a recover α or a patience P.
    Thresholds without a number (``auto``: the dense noise floor) are never swept.
    """
    if methods.empty or "method" not in methods:
        return []
    m = methods.copy()
    for c in ("pruner", "stops", "max_epochs", "infoflow_epsilon", "gradflow_epsilon", "accuracy_delta"):
        if c not in m:
            m[c] = np.nan
    m = _threshold_columns(m)
    m["_stops"] = m["stops"].map(D.parse_stops)
    m["_pruner"] = m["pruner"].fillna("").astype(str)
    m["_budget"] = pd.to_numeric(m["max_epochs"], errors="coerce").fillna(-1)
    params = list(SWEEP_PARAMS)
    for p in params:
        m[p] = pd.to_numeric(m[p], errors="coerce")
    extra = [c for c in ("rewind", "spec", "infoflow_measure", "infoflow_form", "gradflow_form") if c in m.columns]
    for c in extra:
        m[f"_{c}"] = m[c].fillna("").astype(str)
    sweeps = []
    for key, fam in m.groupby(["_pruner", "_stops", "_budget"] + [f"_{c}" for c in extra], sort=True):
        pruner, stops = key[0], key[1]
        if len(fam) < 2:
            continue
        for p, (crit, form, _) in SWEEP_PARAMS.items():
            if crit not in stops:
                continue
            others = [q for q in params if q != p]
            keyed = fam.assign(**{f"_k_{q}": fam[q].fillna(-1.0).round(12) for q in others})
            for _, sub in keyed.groupby([f"_k_{q}" for q in others], sort=True):
                sub = sub.dropna(subset=[p])
                if sub[p].nunique() >= 2:
                    sub = sub.sort_values([p, "method"])
                    sweeps.append(EpsilonSweep(pruner, stops, p, tuple(sub["method"].astype(str)),
                                               tuple(float(v) for v in sub[p])))
    return sweeps


def _sweep_color(sw: EpsilonSweep) -> str:
    for m in sw.methods:
        if m in CANONICAL_COLORS:
            return CANONICAL_COLORS[m]
    fallback = {"infoflow": "ciap", "gradflow": "giap", "accuracy": "earlystop"}
    return CANONICAL_COLORS[fallback[SWEEP_PARAMS[sw.parameter][0]]]


def _no_sweep(methods: pd.DataFrame):
    detail = ""
    if not methods.empty:
        def f(v):
            return "–" if not np.isfinite(v) else f"{v:g}"
        lines = [f"{'method':<16}{'stops':<20}{'ε info':>8}{'ε grad':>9}{'δ acc':>8}"]
        lines += [f"{str(r.method)[:15]:<16}{'+'.join(D.parse_stops(r.stops)) or 'budget':<20}"
                  f"{f(r.infoflow_epsilon):>8}{f(r.gradflow_epsilon):>9}{f(r.accuracy_delta):>8}"
                  for r in methods.itertuples()]
        detail = "\n".join(lines[:13] + (["..."] if len(lines) > 13 else []))
    return message_figure("Epsilon ablation", "no epsilon sweep in this experiment", detail)


def _baselines(methods: pd.DataFrame, sw: EpsilonSweep) -> list[str]:
    """Budget-only methods with the sweep's pruner, budget (and rewind and spec where known)."""
    fam = methods[methods["method"].isin(sw.methods)].iloc[0]
    ok = (methods["pruner"].astype(str) == sw.pruner) & methods["stops"].map(lambda v: len(D.parse_stops(v)) == 0)
    ok &= pd.to_numeric(methods["max_epochs"], errors="coerce").fillna(-1) == \
        (fam["max_epochs"] if np.isfinite(fam["max_epochs"]) else -1)
    for c in ("rewind", "spec"):
        if c in methods.columns:
            ok &= methods[c].astype(str) == str(fam[c])
    return methods[ok]["method"].astype(str).tolist()


@figure_fn
def ablation(tables_dir: Path):
    """Final test accuracy and total retraining epochs against a swept threshold, one line per family."""
    from matplotlib.lines import Line2D

    methods = D.read_methods(tables_dir)
    sweeps = find_epsilon_sweeps(methods)
    if not sweeps:
        return _no_sweep(methods)
    it, _, colors = D.iterations(tables_dir)
    if it.empty:
        return no_data("Epsilon ablation", "iterations.csv")
    it = it.sort_values(D.KEYS + ["seed", "iteration"])
    g = it.groupby(D.KEYS + ["seed"], sort=False)
    final = g.tail(1)[D.KEYS + ["seed", "test_accuracy", "remaining_weights"]].copy()
    total = g["epochs_trained"].sum(min_count=1).reset_index(name="total_epochs")
    per_seed = final.merge(total, on=D.KEYS + ["seed"])
    per_seed["acc"] = per_seed["test_accuracy"] * 100
    params = [p for p in SWEEP_PARAMS if any(s.parameter == p for s in sweeps)]
    panels = D.panels(it)
    nr, nc = len(panels), 2 * len(params)
    fig = new_figure(max(4.2 * nc, 7.0), 3.0 * nr + 1.2)
    fig.suptitle("Stop-threshold ablation: final test accuracy and total retraining epochs "
                 f"({spread_note(n_seeds(per_seed))})")
    axes = fig.subplots(nr, nc, squeeze=False)
    handles, seen_baselines = [], set()
    for i_p, p in enumerate(params):
        for sw in (s for s in sweeps if s.parameter == p):
            color = _sweep_color(sw)
            handles.append(Line2D([], [], color=color, marker="o", ms=4, label=sw.label))
            vmap = dict(zip(sw.methods, sw.values))
            base = _baselines(methods, sw)
            for r, (ds, arch) in enumerate(panels):
                sub = D.sel(per_seed, dataset=ds, arch=arch)
                sub = sub[sub["method"].isin(sw.methods)].assign(eps=lambda d: d["method"].map(vmap))
                for j, col in enumerate(("acc", "total_epochs")):
                    ax = axes[r, 2 * i_p + j]
                    if sub[col].dropna().empty:
                        continue
                    mean_curve(ax, sub, "eps", col, color, clip=(0, 100) if j == 0 else (0, None), marker="o", ms=4)
                    for b in base:
                        bv = D.sel(per_seed, dataset=ds, arch=arch, method=b)[col].dropna()
                        if len(bv):
                            ax.axhline(bv.mean(), color=colors.get(b, "0.5"), ls=":", lw=1.2)
                            if b not in seen_baselines:
                                seen_baselines.add(b)
                                budget = methods.loc[methods["method"] == b, "max_epochs"].iloc[0]
                                handles.append(Line2D([], [], color=colors.get(b, "0.5"), ls=":",
                                                      label=f"{b} (fixed budget {budget:g}, no early stop)"))
        for r, (ds, arch) in enumerate(panels):
            vals = [v for s in sweeps if s.parameter == p for v in s.values]
            for j, lab in enumerate(("final test accuracy (%)", "total retraining epochs")):
                ax = axes[r, 2 * i_p + j]
                if not maybe_log(ax, vals, "x") and len(set(vals)) <= 8:
                    ax.set_xticks(sorted(set(vals)))
                ax.set_ylabel(lab)
                ax.set_xlabel(PARAM_LABELS[p] if r == nr - 1 else "")
                ax.set_title(f"{ds} / {arch} — {'accuracy' if j == 0 else 'epochs'} vs. {PARAM_LABELS[p]}")
    legend_below(fig, handles)
    return fig

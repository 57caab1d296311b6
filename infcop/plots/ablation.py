"""ablation.pdf: methods that differ only in one absolute stop threshold (an ε or δ sweep), their final
test accuracy and total retraining epochs against that threshold."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import data as D
from .axes import maybe_log
from .stats import mean_curve
from .style import CANONICAL_COLORS, figure_fn, legend_below, message_figure, new_figure, no_data

PARAM_LABELS = {
    "infoflow_epsilon": "information-flow ε",
    "gradflow_epsilon": "gradient-flow ε",
    "accuracy_delta": "accuracy δ",
}


@dataclass(frozen=True)
class EpsilonSweep:
    """Methods sharing pruner, stop criteria and budget that differ only in one stop threshold."""

    pruner: str
    stops: tuple[str, ...]
    parameter: str  # infoflow_epsilon | gradflow_epsilon | accuracy_delta
    methods: tuple[str, ...]  # sorted by threshold value
    values: tuple[float, ...]

    @property
    def label(self) -> str:
        return f"{self.pruner} + {'+'.join(self.stops)} stop ({', '.join(self.methods)})"


def find_epsilon_sweeps(methods: pd.DataFrame) -> list[EpsilonSweep]:
    """Detect epsilon sweeps in methods.csv.

    A sweep is >= 2 methods with the same pruner, stop criteria and max_epochs
    (and, where methods.csv has them, the same ``rewind`` and pruner ``spec``),
    equal values in the other threshold columns, and >= 2 distinct values of a
    threshold that one of their stop criteria uses.
    """
    if methods.empty or "method" not in methods:
        return []
    m = methods.copy()
    for c in ("pruner", "stops", "max_epochs", *D.STOP_PARAMS.values()):
        if c not in m:
            m[c] = np.nan
    m["_stops"] = m["stops"].map(D.parse_stops)
    m["_pruner"] = m["pruner"].fillna("").astype(str)
    m["_budget"] = pd.to_numeric(m["max_epochs"], errors="coerce").fillna(-1)
    params = list(D.STOP_PARAMS.values())
    for p in params:
        m[p] = pd.to_numeric(m[p], errors="coerce")
    extra = [c for c in ("rewind", "spec") if c in m.columns]
    for c in extra:
        m[f"_{c}"] = m[c].astype(str)
    sweeps = []
    for key, fam in m.groupby(["_pruner", "_stops", "_budget"] + [f"_{c}" for c in extra], sort=True):
        pruner, stops = key[0], key[1]
        if len(fam) < 2:
            continue
        for crit, p in D.STOP_PARAMS.items():
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
    fallback = {"infoflow_epsilon": "ciap", "gradflow_epsilon": "giap", "accuracy_delta": "earlystop"}
    return CANONICAL_COLORS[fallback[sw.parameter]]


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


@figure_fn
def ablation(tables_dir: Path):
    """Final test accuracy and total retraining epochs against epsilon, one line per method family."""
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
    params = [p for p in D.STOP_PARAMS.values() if any(s.parameter == p for s in sweeps)]
    panels = D.panels(it)
    nr, nc = len(panels), 2 * len(params)
    fig = new_figure(max(4.2 * nc, 7.0), 3.0 * nr + 1.2)
    fig.suptitle("Stop-threshold ablation: final test accuracy and total retraining epochs "
                 "(mean over seeds, 95% CI)")
    axes = fig.subplots(nr, nc, squeeze=False)
    handles, seen_baselines = [], set()
    for i_p, p in enumerate(params):
        for sw in (s for s in sweeps if s.parameter == p):
            color = _sweep_color(sw)
            handles.append(Line2D([], [], color=color, marker="o", ms=4, label=sw.label))
            vmap = dict(zip(sw.methods, sw.values))
            base = methods[(methods["pruner"].astype(str) == sw.pruner)
                           & (methods["stops"].map(lambda v: len(D.parse_stops(v)) == 0))]["method"].astype(str)
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
                                handles.append(Line2D([], [], color=colors.get(b, "0.5"), ls=":",
                                                      label=f"{b} (fixed budget, no early stop)"))
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

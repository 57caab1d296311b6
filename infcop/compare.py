"""Honest comparisons: methods at matched sparsity, and against the fixed-budget controls.

Every run is a curve over its IMP iterations: remaining weights, test accuracy and the cumulative
retraining cost (epochs, train seconds, and flow seconds where the method's stop criteria need flows).
Runs are compared at remaining-weight *levels* that every compared run reached, each run's curve
interpolated linearly on log remaining weights. The controls (budget-only methods) of a control group
(same pruner, rewind and learning rate) form the frontier: test accuracy against cumulative epochs. A
method lies above, on or below it by the seed-paired difference between its accuracy and the control
curve's at the method's own cost, with a 95% t-interval over seeds."""
from __future__ import annotations

import math

from .stats import mean_interval

RUN = ["dataset", "arch", "method", "seed"]
LADDER = (0.5, 0.25, 0.1, 0.05, 0.02, 0.01)  # named levels shown beside the deepest common one


def run_curves(iterations):
    """Per run and iteration (0 = dense): remaining weights, test accuracy and cumulative costs."""
    it = iterations.sort_values(RUN + ["iteration"]).copy()
    retrain = it["iteration"] > 0
    charged = it["flows_charged"].fillna(False).astype(bool) if "flows_charged" in it else retrain & False
    it["epochs"] = it["epochs_trained"].where(retrain, 0).fillna(0)
    it["train_s"] = it["train_seconds"].where(retrain, 0).fillna(0)
    it["flow_s"] = it["flow_seconds"].where(retrain & charged, 0).fillna(0)
    g = it.groupby(RUN, sort=False)
    for col in ("epochs", "train_s", "flow_s"):
        it[f"cum_{col}"] = g[col].cumsum()
    return it


def at_level(curve, level: float) -> dict | None:
    """One run's values where its remaining weights cross `level` (log-linear between iterations);
    None when the run never got that sparse."""
    rows = curve.sort_values("iteration")
    rw = rows["remaining_weights"].tolist()
    if not rw or min(rw) > level * (1 + 1e-9):
        return None
    cols = ("test_accuracy", "cum_epochs", "cum_train_s", "cum_flow_s")
    vals = {c: rows[c].tolist() for c in cols}
    for i in range(len(rw)):
        if rw[i] <= level * (1 + 1e-9):
            if i == 0 or math.isclose(rw[i], level, rel_tol=1e-9):
                return {c: float(vals[c][i]) for c in cols}
            a, b = math.log(rw[i - 1]), math.log(rw[i])
            t = (a - math.log(level)) / (a - b) if a != b else 1.0
            return {c: float(vals[c][i - 1] + t * (vals[c][i] - vals[c][i - 1])) for c in cols}
    return None


def deepest_common_level(curves) -> float:
    """The sparsest remaining-weight level every run of `curves` reached."""
    return float(curves.groupby(RUN)["remaining_weights"].min().max())


def levels_for(curves) -> list[float]:
    deepest = deepest_common_level(curves)
    return [lv for lv in LADDER if lv > deepest * 1.05] + [deepest]


def level_label(level: float) -> str:
    return f"{100 * level:.3g}%"


def points(curves, level: float, methods=None):
    """One row per run at `level`: method, seed, test_accuracy and the cumulative costs there."""
    import pandas as pd

    rows = []
    for key, c in curves.groupby(RUN, sort=True):
        if methods is not None and key[2] not in methods:
            continue
        v = at_level(c, level)
        if v is not None:
            rows.append(dict(zip(RUN, key), level=level, **v))
    return pd.DataFrame(rows, columns=RUN + ["level", "test_accuracy", "cum_epochs", "cum_train_s", "cum_flow_s"])


def _control_curve_at(controls, seed, cost: float) -> float:
    """The control curve of one seed (accuracy against cumulative epochs, linear between budgets) at
    `cost`; NaN outside the controls' range."""
    c = controls[controls["seed"] == seed].sort_values("cum_epochs")
    xs, ys = c["cum_epochs"].tolist(), c["test_accuracy"].tolist()
    if len(xs) < 2 or not xs[0] - 1e-9 <= cost <= xs[-1] + 1e-9:
        return float("nan")
    for i in range(1, len(xs)):
        if cost <= xs[i] + 1e-9:
            if xs[i] == xs[i - 1]:
                return ys[i]
            t = (cost - xs[i - 1]) / (xs[i] - xs[i - 1])
            return ys[i - 1] + t * (ys[i] - ys[i - 1])
    return float("nan")


def verdict(method_points, control_points) -> dict:
    """Seed-paired: the method's accuracy minus the control curve's at the method's own cost."""
    diffs = []
    for r in method_points.itertuples():
        curve = _control_curve_at(control_points, r.seed, r.cum_epochs)
        if math.isfinite(curve):
            diffs.append(r.test_accuracy - curve)
    mean, lo, hi = mean_interval(diffs)
    if len(diffs) < len(method_points) or not diffs:
        word = "n/a"  # some seed's cost lies outside the controls' range
    elif len(diffs) < 2:
        word = "n/a"  # one seed: no interval
    else:
        word = "above" if lo > 0 else "below" if hi < 0 else "on"
    return {"frontier_verdict": word, "frontier_delta": mean, "frontier_ci_lo": lo, "frontier_ci_hi": hi}


def frontier_and_summary(iterations, methods):
    """(frontier rows, summary rows) as DataFrames. `methods` is the methods table (method, control,
    control_group, max_epochs)."""
    import pandas as pd

    curves = run_curves(iterations)
    info = methods.set_index("method")
    frontier, summary = [], []
    for (ds, arch), cur in curves.groupby(["dataset", "arch"], sort=True):
        present = [m for m in info.index if m in set(cur["method"])]
        groups = {}
        for m in present:
            groups.setdefault(info.loc[m, "control_group"], []).append(m)
        common = levels_for(cur)
        for group, members in groups.items():
            gcur = cur[cur["method"].isin(members)]
            controls = [m for m in members if bool(info.loc[m, "control"])]
            for level in sorted(set(common) | set(levels_for(gcur)), reverse=True):
                pts = points(gcur, level)
                if pts.empty or pts.groupby("method")["seed"].nunique().reindex(members).isna().any():
                    continue  # some member run never got this sparse: not a matched level for the group
                ctrl = pts[pts["method"].isin(controls)]
                for r in pts.itertuples():
                    frontier.append({"dataset": ds, "arch": arch, "control_group": group, "level": level,
                                     "method": r.method, "seed": r.seed,
                                     "role": "control" if r.method in controls else "method",
                                     "budget": info.loc[r.method, "max_epochs"] if r.method in controls else math.nan,
                                     "cum_epochs": r.cum_epochs, "test_accuracy": r.test_accuracy,
                                     "train_seconds": r.cum_train_s, "flow_seconds": r.cum_flow_s})
                for m in members:
                    mp = pts[pts["method"] == m]
                    row = {"dataset": ds, "arch": arch, "method": m, "level": level, "level_label": level_label(level),
                           "control_group": group, "common_to_all_methods": level in common,
                           "seeds": int(mp["seed"].nunique()),
                           "test_accuracy_mean": mp["test_accuracy"].mean(),
                           "test_accuracy_std": mp["test_accuracy"].std(ddof=1) if len(mp) > 1 else 0.0}
                    for col, name in (("cum_epochs", "epochs"), ("cum_train_s", "train_seconds"),
                                      ("cum_flow_s", "flow_seconds")):
                        row[f"{name}_mean"] = mp[col].mean()
                        row[f"{name}_std"] = mp[col].std(ddof=1) if len(mp) > 1 else 0.0
                    if m in controls:
                        row.update(frontier_verdict="control", frontier_delta=math.nan, frontier_ci_lo=math.nan,
                                   frontier_ci_hi=math.nan)
                    elif len(controls) >= 2:
                        row.update(verdict(mp, ctrl))
                    else:
                        row.update(frontier_verdict="n/a", frontier_delta=math.nan, frontier_ci_lo=math.nan,
                                   frontier_ci_hi=math.nan)
                    summary.append(row)
    summary = pd.DataFrame(summary)
    if not summary.empty:
        summary = _speedups(summary)
    return pd.DataFrame(frontier), summary


def _speedups(summary):
    """Cost ratios against lth and sap at the same level: >1 means cheaper than the reference."""
    summary = summary.copy()
    summary["total_seconds_mean"] = summary["train_seconds_mean"] + summary["flow_seconds_mean"]
    for base in ("lth", "sap"):
        ref = summary[summary["method"] == base].set_index(["dataset", "arch", "level"])
        for unit, col in (("epochs", "epochs_mean"), ("seconds", "total_seconds_mean")):
            num = [ref[col].get((r.dataset, r.arch, r.level), math.nan) for r in summary.itertuples()]
            den = summary[col].where(summary[col] > 0)
            summary[f"speedup_{unit}_vs_{base}"] = [n / d if d == d else math.nan for n, d in zip(num, den)]
    return summary.drop(columns="total_seconds_mean")

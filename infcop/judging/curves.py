"""Run curves: each run over its IMP iterations as remaining weights, test accuracy and the cumulative cost of
getting there, and the remaining-weight *levels* at which runs are compared (each run's curve interpolated
linearly on log remaining weights; a level must be reached by every compared run).

**Cost** is everything the user pays for a method: its retraining epochs, its flow measurements (only where
its stop criteria need them), and the train-dense work that only it needs (the noise floors of
`epsilon: auto`, the `rewind: {epoch: k}` point: k dense epochs). It is stated in seconds and in
*epoch-equivalents*: epochs count one each; measured seconds (flows, noise floors) are converted at the
median seconds per retraining epoch of the controls of the same data set and architecture."""
from __future__ import annotations

import math

RUN = ["dataset", "arch", "method", "seed"]
LADDER = (0.5, 0.25, 0.1, 0.05, 0.02, 0.01)  # named levels shown beside the deepest common one
POINT_COLUMNS = RUN + ["level", "test_accuracy", "cum_epochs", "cum_train_s", "cum_flow_s", "cum_mask_s", "macs",
                       "once_s", "once_epochs", "cost", "cost_seconds"]


def run_curves(iterations, methods=None):
    """Per run and iteration (0 = dense): remaining weights, test accuracy and cumulative costs. With the
    methods table, each run is also charged its one-time train-dense share (noise floors, rewind point)."""
    it = iterations.sort_values(RUN + ["iteration"]).copy()
    retrain = it["iteration"] > 0
    charged = it["flows_charged"].fillna(False).astype(bool) if "flows_charged" in it else retrain & False
    it["epochs"] = it["epochs_trained"].where(retrain, 0).fillna(0)
    it["train_s"] = it["train_seconds"].where(retrain, 0).fillna(0)
    it["flow_s"] = it["flow_seconds"].where(retrain & charged, 0).fillna(0)
    # would-be masks (mask_stable) are only computed for the methods that read them: always charged
    it["mask_s"] = (it["mask_seconds"].where(retrain, 0).fillna(0) if "mask_seconds" in it else 0.0)
    if "macs" not in it:
        it["macs"] = math.nan
    g = it.groupby(RUN, sort=False)
    for col in ("epochs", "train_s", "flow_s", "mask_s"):
        it[f"cum_{col}"] = g[col].cumsum()
    it["once_s"], it["once_epochs"] = 0.0, 0.0
    if methods is not None and not it.empty:
        info = methods.set_index("method")
        if "rewind_epochs" in info:
            it["once_epochs"] = it["method"].map(info["rewind_epochs"]).fillna(0).astype(float)
        # the train-dense work only some methods need: the noise floors (for a criterion that reads one) and
        # the dense network's reference flow pass (for every method that measures flows), per run
        for flag, column in (("needs_noise_floor", "noise_floor_seconds"), ("needs_flows", "flow_seconds")):
            if flag not in info or column not in it:
                continue
            dense = it.loc[it["iteration"] == 0, RUN + [column]].rename(columns={column: "_once"})
            it = it.merge(dense, on=RUN, how="left")  # each run's dense seconds, on every row
            needs = it["method"].map(info[flag]).fillna(False).astype(bool)
            it["once_s"] = it["once_s"] + it["_once"].fillna(0.0).where(needs, 0.0)
            it = it.drop(columns="_once")
    return it


def seconds_per_epoch(curves, methods=None) -> dict:
    """(dataset, arch) -> the pooled median, over every retraining iteration of every control run (all
    methods' if there are no controls), of the iteration's training seconds (epochs, their validation
    passes, the epoch-0 pass and the prune) over its epochs: the one rate at which every method's measured
    seconds become epoch-equivalents."""
    rows = curves[(curves["iteration"] > 0) & (curves["epochs"] > 0)]
    if methods is not None:
        controls = set(methods.loc[methods["control"].astype(bool), "method"])
        if rows["method"].isin(controls).any():
            rows = rows[rows["method"].isin(controls)]
    out = {}
    for key, g in rows.groupby(["dataset", "arch"]):
        out[key] = float((g["train_s"] / g["epochs"]).median())
    return out


def at_level(curve, level: float) -> dict | None:
    """One run's values where its remaining weights cross `level` (log-linear between two pruned iterations);
    None when the run never got that sparse, or only passed it in its first prune (one-shot pruning from
    100% to 17% never trained a network at 50%)."""
    rows = curve.sort_values("iteration")
    rw = rows["remaining_weights"].tolist()
    if not rw or min(rw) > level * (1 + 1e-9):
        return None
    cols = ("test_accuracy", "cum_epochs", "cum_train_s", "cum_flow_s", "cum_mask_s", "macs")
    vals = {c: rows[c].tolist() for c in cols}
    once = {"once_s": float(rows["once_s"].iloc[0]) if "once_s" in rows else 0.0,
            "once_epochs": float(rows["once_epochs"].iloc[0]) if "once_epochs" in rows else 0.0}
    its = rows["iteration"].tolist()
    for i in range(len(rw)):
        if rw[i] <= level * (1 + 1e-9):
            if i == 0 or math.isclose(rw[i], level, rel_tol=1e-9):
                return {**{c: float(vals[c][i]) for c in cols}, **once}
            if its[i - 1] == 0:  # between the dense network and the first prune: a level it never trained at
                return None
            a, b = math.log(rw[i - 1]), math.log(rw[i])
            t = (a - math.log(level)) / (a - b) if a != b else 1.0
            return {**{c: float(vals[c][i - 1] + t * (vals[c][i] - vals[c][i - 1])) for c in cols}, **once}
    return None


def deepest_common_level(curves) -> float:
    """The sparsest remaining-weight level every run of `curves` reached."""
    return float(curves.groupby(RUN)["remaining_weights"].min().max())


def levels_for(curves) -> list[float]:
    deepest = deepest_common_level(curves)
    return [lv for lv in LADDER if lv > deepest * 1.05] + [deepest]


def matched(curves, level: float, members) -> bool:
    """Whether every run of every member has a point at `level` (not only in the pass of its first prune)."""
    pts = points(curves, level)
    runs_of = curves.groupby("method")["seed"].nunique().reindex(members)
    reached = pts.groupby("method")["seed"].nunique().reindex(members)
    return not pts.empty and not reached.isna().any() and not (reached < runs_of).any()


def own_levels(curves, members, common) -> list[float]:
    """A group's own levels besides the common ones: its deepest level, unless it is one of the common
    levels but for rounding (0.5%) and the group is matched there. (A method of one iteration ends at its
    first prune, 32.761% say, and is never at a common 32.770% that another run's rounding set.)"""
    out = []
    for lv in levels_for(curves):
        near = [c for c in common if math.isclose(lv, c, rel_tol=5e-3)]
        if not near or not matched(curves, near[0], members):
            out.append(lv)
    return out


def level_label(level: float, digits: int = 3) -> str:
    return f"{100 * level:.{digits}g}%"


def level_labels(levels) -> dict:
    """level -> its label, with as many significant digits as it takes for no two levels to share one."""
    levels = sorted(set(levels))
    for digits in range(3, 10):
        labels = {lv: level_label(lv, digits) for lv in levels}
        if len(set(labels.values())) == len(levels):
            return labels
    return {lv: f"{100 * lv!r}%" for lv in levels}


def points(curves, level: float, methods=None, sec_per_epoch: float = math.nan):
    """One row per run at `level`: method, seed, test_accuracy, the cumulative costs there and the full
    cost in epoch-equivalents (`cost`) and seconds (`cost_seconds`)."""
    import pandas as pd

    rows = []
    for key, c in curves.groupby(RUN, sort=True):
        if methods is not None and key[2] not in methods:
            continue
        v = at_level(c, level)
        if v is not None:
            extra_s = v["cum_flow_s"] + v["cum_mask_s"] + v["once_s"]
            spe = sec_per_epoch if sec_per_epoch == sec_per_epoch and sec_per_epoch > 0 else math.nan
            cost = v["cum_epochs"] + v["once_epochs"] + (extra_s / spe if extra_s and spe == spe else 0.0)
            seconds = v["cum_train_s"] + extra_s + (v["once_epochs"] * spe if spe == spe else 0.0)
            rows.append(dict(zip(RUN, key), level=level, **v, cost=cost, cost_seconds=seconds))
    return pd.DataFrame(rows, columns=POINT_COLUMNS)


def identical_runs(iterations, methods) -> dict:
    """method -> the control whose runs it equals in every seed and iteration (same remaining weights, test
    accuracy and epochs): a flow criterion that always stops where a fixed budget does *is* that budget."""
    cols = ["seed", "iteration", "remaining_weights", "test_accuracy", "epochs_trained"]
    out = {}
    info = methods.set_index("method")
    for (ds, arch), g in iterations.groupby(["dataset", "arch"]):
        runs = {m: r[cols].sort_values(["seed", "iteration"]).reset_index(drop=True) for m, r in g.groupby("method")}
        for m, r in runs.items():
            if m not in info.index or bool(info.loc[m, "control"]):
                continue
            for c, rc in runs.items():
                if (c in info.index and bool(info.loc[c, "control"]) and c != m
                        and info.loc[c, "control_group"] == info.loc[m, "control_group"]
                        and r.shape == rc.shape and r.equals(rc)):
                    out[m] = c
                    break
    return out



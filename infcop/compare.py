"""Honest comparisons: methods at matched sparsity, at their full cost, against the fixed-budget controls.

Every run is a curve over its IMP iterations: remaining weights, test accuracy and the cumulative cost of
getting there. Runs are compared at remaining-weight *levels* that every compared run reached, each run's
curve interpolated linearly on log remaining weights.

**Cost** is everything the user pays for a method: its retraining epochs, its flow measurements (only where
its stop criteria need them), and the train-dense work that only it needs (the noise floors of
`epsilon: auto`, the `rewind: {epoch: k}` point: k dense epochs). It is stated in seconds and in
*epoch-equivalents*: epochs count one each; measured seconds (flows, noise floors) are converted at the
median seconds per retraining epoch of the controls of the same data set and architecture.

**Verdicts.** The controls (budget-only methods) of a control group (same pruner and retraining recipe:
rewind point, learning-rate schedule and rate)
form the frontier: test accuracy against cost. A method is compared, seed by seed, with the control curve
at its own cost; the mean difference and its two one-sided 95% bounds (a 90% two-sided t-interval) are
judged against an equivalence margin that is never below one test image:
*better* (the lower bound clears +margin, and the method also beats the next more expensive control: it
dominates, not just the chord), *worse* (the upper bound is below -margin), *equivalent* (both bounds
inside +-margin) or *inconclusive* (anything else; with how many seeds would resolve it at the observed
spread)."""
from __future__ import annotations

import math

RUN = ["dataset", "arch", "method", "seed"]
LADDER = (0.5, 0.25, 0.1, 0.05, 0.02, 0.01)  # named levels shown beside the deepest common one
CONFIDENCE = 0.95  # of each one-sided test
MIN_SPEEDUP_COST = 0.5  # epoch-equivalents: below it a speed-up ratio is noise over a near-zero cost


def _t(n: int) -> float:
    """The one-sided CONFIDENCE quantile of Student's t with n - 1 degrees of freedom."""
    from scipy import stats

    return float(stats.t.ppf(CONFIDENCE, n - 1))


def tost(diffs, margin: float) -> dict:
    """Two one-sided tests of mean(diffs) against +-margin: verdict, mean, the one-sided 95% bounds, and for
    an inconclusive verdict the seeds that would resolve it at the observed spread (None: none would)."""
    v = [float(x) for x in diffs if x is not None and math.isfinite(float(x))]
    n = len(v)
    out = {"verdict": "n/a", "delta": math.nan, "lo": math.nan, "hi": math.nan, "seeds_needed": None}
    if n == 0:
        return out
    mean = sum(v) / n
    out["delta"] = mean
    if n < 2:
        return out
    sd = math.sqrt(sum((x - mean) ** 2 for x in v) / (n - 1))
    half = _t(n) * sd / math.sqrt(n)
    lo, hi = mean - half, mean + half
    word = ("better" if lo > margin else "worse" if hi < -margin else
            "equivalent" if -margin < lo and hi < margin else "inconclusive")
    out.update(verdict=word, lo=lo, hi=hi)
    if word == "inconclusive":
        out["seeds_needed"] = seeds_needed(mean, sd, margin, n)
    return out


def seeds_needed(mean: float, sd: float, margin: float, n_now: int, limit: int = 1000) -> int | None:
    """The fewest seeds with which a difference of `mean` at spread `sd` would be resolved (better or worse
    if it lies beyond the margin, equivalent if inside); None when no number up to `limit` would."""
    gap = abs(abs(mean) - margin)
    if gap == 0 or sd == 0:
        return None if gap == 0 else n_now
    for n in range(max(n_now, 2), limit + 1):
        if _t(n) * sd / math.sqrt(n) < gap:
            return n
    return None


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
        if "needs_noise_floor" in info and "noise_floor_seconds" in it:
            dense = it.loc[it["iteration"] == 0, RUN + ["noise_floor_seconds"]].rename(
                columns={"noise_floor_seconds": "_floor_s"})
            it = it.merge(dense, on=RUN, how="left")  # each run's dense noise-floor seconds, on every row
            needs = it["method"].map(info["needs_noise_floor"]).fillna(False).astype(bool)
            it["once_s"] = it["_floor_s"].fillna(0.0).where(needs, 0.0)
            it = it.drop(columns="_floor_s")
    return it


def seconds_per_epoch(curves, methods=None) -> dict:
    """(dataset, arch) -> the median seconds of one retraining epoch of the controls (all methods if none)."""
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
    """One run's values where its remaining weights cross `level` (log-linear between iterations);
    None when the run never got that sparse."""
    rows = curve.sort_values("iteration")
    rw = rows["remaining_weights"].tolist()
    if not rw or min(rw) > level * (1 + 1e-9):
        return None
    cols = ("test_accuracy", "cum_epochs", "cum_train_s", "cum_flow_s", "cum_mask_s", "macs")
    vals = {c: rows[c].tolist() for c in cols}
    once = {"once_s": float(rows["once_s"].iloc[0]) if "once_s" in rows else 0.0,
            "once_epochs": float(rows["once_epochs"].iloc[0]) if "once_epochs" in rows else 0.0}
    for i in range(len(rw)):
        if rw[i] <= level * (1 + 1e-9):
            if i == 0 or math.isclose(rw[i], level, rel_tol=1e-9):
                return {**{c: float(vals[c][i]) for c in cols}, **once}
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


def level_label(level: float) -> str:
    return f"{100 * level:.3g}%"


CONTRAST_COLUMNS = ["dataset", "arch", "control_group", "level", "level_label", "method", "against", "seeds",
                    "margin_pp", "accuracy_verdict", "accuracy_delta", "accuracy_delta_lo", "accuracy_delta_hi",
                    "seeds_needed", "cost_delta_epoch_equivalents", "cost_delta_min", "cost_delta_max"]
POINT_COLUMNS = RUN + ["level", "test_accuracy", "cum_epochs", "cum_train_s", "cum_flow_s", "cum_mask_s", "macs",
                       "once_s", "once_epochs", "cost", "cost_seconds"]


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


def _curve_at(controls, seed, cost: float) -> tuple[float, float]:
    """The control curve of one seed (accuracy against cost, linear between budgets) at `cost`, and the
    accuracy of the next control that costs at least as much. Beyond the most expensive control the curve
    is that control (what more training would give is unknown, so no next control: NaN); below the
    cheapest, NaN."""
    c = controls[controls["seed"] == seed].sort_values("cost")
    xs, ys = c["cost"].tolist(), c["test_accuracy"].tolist()
    if len(xs) < 2 or cost < xs[0] - 1e-9:
        return math.nan, math.nan
    if cost > xs[-1] + 1e-9:
        return ys[-1], math.nan
    for i in range(len(xs)):
        if cost <= xs[i] + 1e-9:
            if i == 0 or xs[i] == xs[i - 1]:
                return ys[i], ys[i]
            t = (cost - xs[i - 1]) / (xs[i] - xs[i - 1])
            return ys[i - 1] + t * (ys[i] - ys[i - 1]), ys[i]
    return math.nan, math.nan


def verdict(method_points, control_points, margin: float) -> dict:
    """Seed-paired: the method's accuracy minus the control curve's at the method's own full cost, judged by
    two one-sided tests against +-margin; "better" also needs the method to beat the next more expensive
    control (one-sided 95%)."""
    diffs, nexts, beyond = [], [], False
    for r in method_points.itertuples():
        curve, nxt = _curve_at(control_points, r.seed, r.cost)
        if math.isfinite(curve):
            diffs.append(r.test_accuracy - curve)
            nexts.append(r.test_accuracy - nxt)
            beyond = beyond or not math.isfinite(nxt)
    res = tost(diffs, margin)
    out = {"verdict": res["verdict"], "delta": res["delta"], "delta_lo": res["lo"], "delta_hi": res["hi"],
           "seeds_needed": res["seeds_needed"], "dominates_next_control": math.nan, "note": ""}
    if len(diffs) < len(method_points) or not diffs:
        out.update(verdict="n/a", note="its cost lies below the cheapest control's for some seed")
    elif len(diffs) < 2:
        out.update(verdict="n/a", note="one seed: no interval")
    elif beyond:  # it cost more than every control: judged against the most expensive one
        out["dominates_next_control"] = False
        out["note"] = "it cost more than the most expensive control (compared with that control)"
        if out["verdict"] == "better":
            out.update(verdict="inconclusive", note="more accurate than the most expensive control, but it also "
                                                    "cost more: no control shows what that cost would buy",
                       seeds_needed=None)
    else:
        nxt = tost(nexts, 0.0)
        out["dominates_next_control"] = bool(nxt["lo"] > 0)
        if out["verdict"] == "better" and not out["dominates_next_control"]:
            out.update(verdict="inconclusive", note="above the chord between budgets, but not above the next "
                                                    "more expensive control", seeds_needed=None)
    return out


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


def _ratio_stats(nums, dens) -> tuple[float, float, float]:
    """Median, min and max over seeds of per-seed cost ratios; NaN where a denominator is near zero."""
    rs = [a / b for a, b in zip(nums, dens) if math.isfinite(a) and math.isfinite(b) and b >= MIN_SPEEDUP_COST]
    if len(rs) < len(nums) or not rs:
        return math.nan, math.nan, math.nan
    rs.sort()
    mid = len(rs) // 2
    med = rs[mid] if len(rs) % 2 else (rs[mid - 1] + rs[mid]) / 2
    return med, rs[0], rs[-1]


def margin_for(test_size: int | None, margin_pp: float) -> float:
    """The equivalence margin (as a fraction): the larger of margin_pp and one test image."""
    image = 1.0 / test_size if test_size else 0.0
    return max(margin_pp / 100.0, image)


def frontier_and_summary(iterations, methods, margin_pp: float = 0.5, test_sizes: dict | None = None):
    """(frontier rows, summary rows, contrasts against early stopping) as DataFrames. `methods` is the
    methods table (method, control, control_group, max_epochs, needs_noise_floor, rewind_epochs,
    early_stopping); `test_sizes` data set -> test images (the margin is never below one)."""
    import pandas as pd

    curves = run_curves(iterations, methods)
    spe_all = seconds_per_epoch(curves, methods)
    info = methods.set_index("method")
    identical = identical_runs(iterations, methods)
    frontier, summary, contrasts = [], [], []
    for (ds, arch), cur in curves.groupby(["dataset", "arch"], sort=True):
        spe = spe_all.get((ds, arch), math.nan)
        margin = margin_for((test_sizes or {}).get(ds), margin_pp)
        present = [m for m in info.index if m in set(cur["method"])]
        groups = {}
        for m in present:
            groups.setdefault(info.loc[m, "control_group"], []).append(m)
        common = levels_for(cur)
        for group, members in groups.items():
            gcur = cur[cur["method"].isin(members)]
            controls = [m for m in members if bool(info.loc[m, "control"])]
            budget_max = max((info.loc[c, "max_epochs"] for c in controls), default=None)
            full = [c for c in controls if info.loc[c, "max_epochs"] == budget_max]
            for level in sorted(set(common) | set(levels_for(gcur)), reverse=True):
                pts = points(gcur, level, sec_per_epoch=spe)
                if pts.empty or pts.groupby("method")["seed"].nunique().reindex(members).isna().any():
                    continue  # some member run never got this sparse: not a matched level for the group
                ctrl = pts[pts["method"].isin(controls)]
                for r in pts.itertuples():
                    frontier.append({"dataset": ds, "arch": arch, "control_group": group, "level": level,
                                     "method": r.method, "seed": r.seed,
                                     "role": "control" if r.method in controls else "method",
                                     "budget": info.loc[r.method, "max_epochs"] if r.method in controls else math.nan,
                                     "cum_epochs": r.cum_epochs, "cost_epoch_equivalents": r.cost,
                                     "test_accuracy": r.test_accuracy, "train_seconds": r.cum_train_s,
                                     "flow_seconds": r.cum_flow_s, "mask_seconds": r.cum_mask_s,
                                     "once_seconds": r.once_s, "macs": r.macs,
                                     "cost_seconds": r.cost_seconds})
                for m in members:
                    mp = pts[pts["method"] == m].sort_values("seed")
                    row = {"dataset": ds, "arch": arch, "method": m, "level": level, "level_label": level_label(level),
                           "control_group": group, "common_to_all_methods": level in common,
                           "seeds": int(mp["seed"].nunique()), "margin_pp": 100 * margin,
                           "test_accuracy_mean": mp["test_accuracy"].mean(),
                           "test_accuracy_std": mp["test_accuracy"].std(ddof=1) if len(mp) > 1 else 0.0,
                           "identical_to": identical.get(m, "")}
                    for col, name in (("cum_epochs", "epochs"), ("cum_train_s", "train_seconds"),
                                      ("cum_flow_s", "flow_seconds"), ("cum_mask_s", "mask_seconds"),
                                      ("macs", "macs"), ("once_s", "once_seconds"),
                                      ("cost", "cost_epoch_equivalents"), ("cost_seconds", "cost_seconds")):
                        row[f"{name}_mean"] = mp[col].mean()
                        row[f"{name}_std"] = mp[col].std(ddof=1) if len(mp) > 1 else 0.0
                    if m in controls:
                        row.update(verdict="control", delta=math.nan, delta_lo=math.nan, delta_hi=math.nan,
                                   seeds_needed=None, dominates_next_control=math.nan,
                                   note=("" if len(controls) >= 2 else
                                         "the only budget of its pruner and recipe: no curve, no verdict"))
                    elif len(controls) >= 2:
                        row.update(verdict(mp, ctrl, margin))
                    else:
                        row.update(verdict="n/a", delta=math.nan, delta_lo=math.nan, delta_hi=math.nan,
                                   seeds_needed=None, dominates_next_control=math.nan,
                                   note="fewer than two fixed-budget controls share its pruner and recipe")
                    # the stop rule's share of a speed-up: its own full-budget control's cost over its cost
                    if full and m not in full:
                        fp = pts[pts["method"] == full[0]].set_index("seed")["cost"]
                        med, lo, hi = _ratio_stats([fp.get(s, math.nan) for s in mp["seed"]], mp["cost"].tolist())
                        row.update(stop_rule_speedup=med, stop_rule_speedup_min=lo, stop_rule_speedup_max=hi,
                                   speedup_reference=full[0])
                    summary.append(row)
                # paired contrasts: every flow method against every early-stopping method of its group
                stoppers = [m for m in members if bool(info.loc[m].get("early_stopping", False))]
                for m in members:
                    if not bool(info.loc[m, "needs_flows"]):
                        continue
                    mp = pts[pts["method"] == m].set_index("seed")
                    for e in stoppers:
                        ep = pts[pts["method"] == e].set_index("seed")
                        seeds = sorted(set(mp.index) & set(ep.index))
                        acc = tost([mp.loc[s, "test_accuracy"] - ep.loc[s, "test_accuracy"] for s in seeds], margin)
                        cost = [mp.loc[s, "cost"] - ep.loc[s, "cost"] for s in seeds]
                        contrasts.append({"dataset": ds, "arch": arch, "control_group": group, "level": level,
                                          "level_label": level_label(level), "method": m, "against": e,
                                          "seeds": len(seeds), "margin_pp": 100 * margin,
                                          "accuracy_verdict": acc["verdict"], "accuracy_delta": acc["delta"],
                                          "accuracy_delta_lo": acc["lo"], "accuracy_delta_hi": acc["hi"],
                                          "seeds_needed": acc["seeds_needed"],
                                          "cost_delta_epoch_equivalents": sum(cost) / len(cost) if cost else math.nan,
                                          "cost_delta_min": min(cost) if cost else math.nan,
                                          "cost_delta_max": max(cost) if cost else math.nan})
    summary = pd.DataFrame(summary)
    if not summary.empty:
        summary = _pruner_speedups(summary, pd.DataFrame(frontier))
        summary = _best_recipe(summary, curves, info, spe_all, margin_pp, test_sizes)
    return pd.DataFrame(frontier), summary, pd.DataFrame(contrasts, columns=CONTRAST_COLUMNS)


BEST_RECIPE_COLUMNS = ["best_recipe", "best_recipe_verdict", "best_recipe_delta", "best_recipe_delta_lo",
                       "best_recipe_delta_hi", "best_recipe_seeds_needed", "best_recipe_note"]


def _best_recipe(summary, curves, info, spe_all: dict, margin_pp: float, test_sizes: dict | None):
    """Each method against the strongest fixed-budget recipe at its cost: of the control groups that share its
    pruner (any rewind point, schedule, learning rate) and have a control curve at the level, the one
    whose curve lies highest at the method's cost (the smallest mean difference: the upper envelope over
    recipes), and the verdict against it; a recipe whose curve does not reach the method's cost (its
    cheapest control cost more) or whose controls never got this sparse is named in the note, not compared. A control is judged against the other
    recipes only (is another recipe better at its cost?). Choosing the strongest recipe after seeing the data favours the
    controls: a method called better against it is better against every recipe."""
    summary = summary.copy()
    for col in BEST_RECIPE_COLUMNS:
        summary[col] = math.nan if "delta" in col or "seeds" in col else ""
    pruner = info["spec"] if "spec" in info else info["control_group"]
    controls_of: dict = {}
    for m in info.index:
        if bool(info.loc[m, "control"]):
            controls_of.setdefault(info.loc[m, "control_group"], []).append(m)
    control_points: dict = {}  # (dataset, arch, level, group) -> its controls at that level: shared by every row

    def points_of(ds, arch, level, methods):
        cur = curves[(curves["dataset"] == ds) & (curves["arch"] == arch)]
        return points(cur[cur["method"].isin(methods)], level, sec_per_epoch=spe_all.get((ds, arch), math.nan))

    for i, r in summary.iterrows():
        margin = margin_for((test_sizes or {}).get(r["dataset"]), margin_pp)
        mp = points_of(r["dataset"], r["arch"], r["level"], [r["method"]])
        best, uncovered, shallow = None, [], []
        for group, ctrls in controls_of.items():
            if len(ctrls) < 2 or pruner.get(ctrls[0]) != pruner.get(r["method"]):
                continue
            if r["verdict"] == "control" and group == r["control_group"]:
                continue
            key = (r["dataset"], r["arch"], r["level"], group)
            if key not in control_points:
                control_points[key] = points_of(r["dataset"], r["arch"], r["level"], ctrls)
            cp = control_points[key]
            seeds = set(mp["seed"])
            if cp.empty or any(set(cp.loc[cp["method"] == c, "seed"]) < seeds for c in ctrls):
                shallow.append(group)  # some control never got this sparse: no curve at this level
                continue
            v = verdict(mp, cp, margin)
            if v["verdict"] == "n/a":
                uncovered.append(group)  # e.g. the method cost less than that recipe's cheapest control
            elif best is None or v["delta"] < best[1]["delta"]:
                best = (group, v)
        if best is not None:
            group, v = best
            note = "; ".join(x for x in (v["note"], "no curve at its cost: " + ", ".join(uncovered) if uncovered
                                          else "", "not this sparse: " + ", ".join(shallow) if shallow else "") if x)
            summary.loc[i, BEST_RECIPE_COLUMNS] = [group, v["verdict"], v["delta"], v["delta_lo"], v["delta_hi"],
                                                   v["seeds_needed"] if v["seeds_needed"] is not None else math.nan,
                                                   note]
    return summary


def _pruner_speedups(summary, frontier):
    """The pruner's share of a speed-up against lth: lth's cost over sap's at the same level, both at the full
    budget (same stop rule, other pruner), per seed; median and range. Shown beside the stop rule's share."""
    summary = summary.copy()
    for col in ("pruner_speedup", "pruner_speedup_min", "pruner_speedup_max"):
        summary[col] = math.nan
    if frontier.empty or not {"lth", "sap"} <= set(frontier["method"]):
        return summary
    for (ds, arch, level), g in frontier.groupby(["dataset", "arch", "level"]):
        a = g[g["method"] == "lth"].set_index("seed")["cost_epoch_equivalents"]
        b = g[g["method"] == "sap"].set_index("seed")["cost_epoch_equivalents"]
        seeds = sorted(set(a.index) & set(b.index))
        if not seeds:
            continue
        med, lo, hi = _ratio_stats([a[s] for s in seeds], [b[s] for s in seeds])
        sel = (summary["dataset"] == ds) & (summary["arch"] == arch) & (summary["level"] == level)
        summary.loc[sel, ["pruner_speedup", "pruner_speedup_min", "pruner_speedup_max"]] = [med, lo, hi]
    return summary

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

from . import paired_tests as T
from .control_curve import Control, bracket

RUN = ["dataset", "arch", "method", "seed"]
LADDER = (0.5, 0.25, 0.1, 0.05, 0.02, 0.01)  # named levels shown beside the deepest common one
CONFIDENCE = 0.95  # of each one-sided test
MIN_SPEEDUP_COST = 0.5  # epoch-equivalents: below it a speed-up ratio is noise over a near-zero cost


def tost(diffs, margin: float) -> dict:
    """Two one-sided tests of mean(diffs) against +-margin: verdict, mean, the one-sided 95% bounds, the p-value
    of the verdict's test, and for an inconclusive verdict the seeds that would resolve it at 80% power at the
    observed mean and spread (None: no number would)."""
    n, mean, sd = T.describe(diffs)
    out = {"verdict": "n/a", "delta": mean if n else math.nan, "lo": math.nan, "hi": math.nan,
           "seeds_needed": None, "p": math.nan}
    if n < 2:
        return out
    _, lo, hi = T.bounds(diffs)
    tests = {"better": T.p_above(diffs, margin), "worse": T.p_below(diffs, -margin),
             "equivalent": max(T.p_above(diffs, -margin), T.p_below(diffs, margin))}
    word = next((w for w, p in tests.items() if p < T.ALPHA), "inconclusive")
    out.update(verdict=word, lo=lo, hi=hi, p=tests[word] if word != "inconclusive" else min(tests.values()))
    if word == "inconclusive":
        out["seeds_needed"] = seeds_needed(mean, sd, margin, n)
    return out


def seeds_needed(mean: float, sd: float, margin: float, n_now: int) -> int | None:
    """The fewest seeds at which the paired tests would resolve a difference of `mean` at spread `sd` with 80%
    power: better or worse if it lies beyond the margin, equivalent if inside (TOST power); None when no
    number up to 1000 would (e.g. a mean on the margin)."""
    if not (math.isfinite(mean) and math.isfinite(sd)):
        return None
    if mean > margin:
        return T.seeds_for(lambda n: T.power_above(mean - margin, sd, n), n_now)
    if mean < -margin:
        return T.seeds_for(lambda n: T.power_above(-margin - mean, sd, n), n_now)
    return T.seeds_for(lambda n: T.power_within(mean, sd, n, -margin, margin), n_now)


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


def _controls_of_seed(control_points, seed, budgets: dict) -> list[Control]:
    c = control_points[control_points["seed"] == seed]
    return [Control(r.method, float(r.cost), float(r.test_accuracy), float(budgets.get(r.method, math.nan)))
            for r in c.itertuples()]


VERDICT_KEYS = ["verdict", "verdict_against", "delta", "delta_lo", "delta_hi", "delta_upper", "delta_upper_lo",
                "delta_upper_hi", "bracket_width", "p_value", "seeds_needed", "resolve_by",
                "dominates_next_control", "note"]


def verdict(method_points, control_points, margin: float, budgets: dict | None = None) -> dict:
    """Seed-paired, the method against the bracket of its control curve at its own full cost
    (`infcop.control_curve`): **better** when it clears the upper bound by the margin and beats the next dearer
    control (one-sided 95% each); **dominated by X** when a control X that cost less in every seed is at least
    as accurate (the method not better by the margin, one-sided 95%); **worse** when it falls below the lower
    bound by the margin; **equivalent** when within the margin of both bounds (two one-sided tests);
    else **inconclusive**, with the seeds that would resolve it at 80% power and whether a budget between
    the two neighbouring controls would (the bracket wider than the margin). `delta*` are against the lower
    bound, `delta_upper*` against the upper; `p_value` is the verdict's own test, before Holm's adjustment."""
    budgets = budgets or {}
    lower, upper, nexts, widths, beyond, costs, budget_at, between = [], [], [], [], False, [], [], set()
    seeds = []
    for r in method_points.itertuples():
        b = bracket(_controls_of_seed(control_points, r.seed, budgets), r.cost)
        if b is None:
            continue
        seeds.append(r.seed)
        lower.append(r.test_accuracy - b.lower)
        upper.append(r.test_accuracy - b.upper)
        widths.append(b.upper - b.lower)
        costs.append(r.cost)
        if b.next_control is None:
            beyond = True
        else:
            nexts.append(r.test_accuracy - b.next_control.accuracy)
        if math.isfinite(b.budget):
            budget_at.append(b.budget)
        if b.between:
            between.add(b.between)
    out = dict.fromkeys(VERDICT_KEYS, math.nan)
    out.update(verdict="n/a", verdict_against="", seeds_needed=None, resolve_by="", note="")
    n = len(lower)
    if n < len(method_points) or n == 0:
        out["note"] = "its cost lies below the cheapest control's for some seed"
        return out
    out["delta"], out["delta_lo"], out["delta_hi"] = T.bounds(lower)
    out["delta_upper"], out["delta_upper_lo"], out["delta_upper_hi"] = T.bounds(upper)
    out["bracket_width"] = sum(widths) / n
    if n < 2:
        out["note"] = "one seed: no interval"
        return out
    p_next = T.p_above(nexts, 0.0) if not beyond else 0.0  # beyond the dearest: no dearer control to beat
    out["dominates_next_control"] = bool(p_next < T.ALPHA) if not beyond else math.nan
    dominated = _dominated(method_points, control_points, margin)
    tests = [("better", max(T.p_above(upper, margin), p_next), ""),
             ("dominated", *(dominated or (1.0, ""))),
             ("worse", T.p_below(lower, -margin), ""),
             ("equivalent", max(T.p_above(upper, -margin), T.p_below(lower, margin)), "")]
    word, p, against = next(((w, p, x) for w, p, x in tests if p < T.ALPHA), ("inconclusive", min(t[1] for t in tests), ""))
    out.update(verdict=word, p_value=p, verdict_against=against)
    if beyond:
        out["note"] = "it cost more than the dearest control: the curve past it is the last segment's extension"
    if word == "inconclusive":
        out["seeds_needed"] = _seeds_to_resolve(lower, upper, nexts, beyond, margin, n)
        wide = out["bracket_width"] > margin
        if wide and budget_at and len(between) == 1:
            a, b = next(iter(between))
            out["resolve_by"] = (f"a control between {a} and {b} (max_epochs: {sum(budget_at) / len(budget_at):.2g}, a "
                                 "fractional budget): the curve is not known there to within the margin")
        elif out["seeds_needed"] is not None:
            out["resolve_by"] = f"about {out['seeds_needed']} seeds at 80% power"
        else:
            out["resolve_by"] = "no number of seeds up to 1000 at this spread (80% power)"
    return out


def _dominated(method_points, control_points, margin: float) -> tuple[float, str] | None:
    """(p-value, control) of the strongest case that a control costing less than the method in every seed is
    at least as accurate (H0: the method is better by the margin or more); None when no control is cheaper."""
    best = None
    m = method_points.set_index("seed")
    for name, c in control_points.groupby("method", sort=True):
        c = c.set_index("seed")
        seeds = [s for s in m.index if s in c.index]
        if len(seeds) < len(m) or any(c.loc[s, "cost"] >= m.loc[s, "cost"] - 1e-9 for s in seeds):
            continue
        p = T.p_below([m.loc[s, "test_accuracy"] - c.loc[s, "test_accuracy"] for s in seeds], margin)
        if best is None or p < best[0]:
            best = (p, name)
    return best


def _seeds_to_resolve(lower, upper, nexts, beyond: bool, margin: float, n_now: int) -> int | None:
    """Seeds for 80% power on the verdict the observed means point to: better (the upper bound cleared and the
    next dearer control beaten, both), worse, or equivalent (within the margin of both bounds)."""
    _, mu_u, sd_u = T.describe(upper)
    _, mu_l, sd_l = T.describe(lower)
    if mu_u > margin:
        _, mu_n, sd_n = T.describe(nexts) if not beyond else (0, 1.0, 0.0)
        return T.seeds_for(lambda n: T.power_above(mu_u - margin, sd_u, n) * T.power_above(mu_n, sd_n, n), n_now)
    if mu_l < -margin:
        return T.seeds_for(lambda n: T.power_above(-margin - mu_l, sd_l, n), n_now)
    width = mu_l - mu_u  # the bracket's mean width: equivalence needs lower - margin < x < upper + margin
    return T.seeds_for(lambda n: T.power_within(mu_l, max(sd_l, sd_u), n, -margin + width, margin), n_now)


def adjust(summary, method: str = "holm", prefix: str = ""):
    """Holm's adjustment over one family of verdicts (every judged row of `summary`, the `prefix`ed columns):
    a verdict whose adjusted p-value is not below 5% becomes inconclusive, said in its note. Returns the table
    with `{prefix}p_adjusted` and the family size in `{prefix}comparisons`."""
    s = summary.copy()
    v, p = f"{prefix}verdict", f"{prefix}p_value"
    judged = s[v].isin(["better", "worse", "equivalent", "dominated", "inconclusive"]) & s[p].notna()
    s[f"{prefix}comparisons"] = int(judged.sum())
    s[f"{prefix}adjustment"] = method
    s[f"{prefix}p_adjusted"] = math.nan
    if not judged.any():
        return s
    adjusted = T.holm(s.loc[judged, p].tolist()) if method == "holm" else s.loc[judged, p].tolist()
    s.loc[judged, f"{prefix}p_adjusted"] = adjusted
    lost = judged & (s[f"{prefix}p_adjusted"] >= T.ALPHA) & (s[v] != "inconclusive")
    note = f"{prefix}note"
    for i in s.index[lost]:
        was = s.at[i, v]
        if s.at[i, v] == "dominated":
            was = f"dominated by {s.at[i, f'{prefix}verdict_against']}"
        s.at[i, v] = "inconclusive"
        s.at[i, f"{prefix}verdict_against"] = ""
        s.at[i, note] = "; ".join(x for x in (f"{was} before Holm's adjustment over {int(judged.sum())} comparisons",
                                              s.at[i, note] if isinstance(s.at[i, note], str) else "") if x)
    return s


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


def frontier_and_summary(iterations, methods, margin_pp: float = 0.5, test_sizes: dict | None = None,
                         adjust_method: str = "holm"):
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
        own_of = {g: own_levels(cur[cur["method"].isin(ms)], ms, common) for g, ms in groups.items()}
        labels = level_labels(set(common).union(*own_of.values()))
        for group, members in groups.items():
            gcur = cur[cur["method"].isin(members)]
            controls = [m for m in members if bool(info.loc[m, "control"])]
            budget_max = max((info.loc[c, "max_epochs"] for c in controls), default=None)
            full = [c for c in controls if info.loc[c, "max_epochs"] == budget_max]
            budgets = {c: float(info.loc[c, "max_epochs"]) for c in controls}
            runs_of = gcur.groupby("method")["seed"].nunique().reindex(members)  # every seed of every member
            for level in sorted(set(common) | set(own_of[group]), reverse=True):
                pts = points(gcur, level, sec_per_epoch=spe)
                reached = pts.groupby("method")["seed"].nunique().reindex(members)
                if pts.empty or reached.isna().any() or (reached < runs_of).any():
                    continue  # some member run never got this sparse (or only in its first prune): not matched
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
                    row = {"dataset": ds, "arch": arch, "method": m, "level": level, "level_label": labels[level],
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
                    blank = {**dict.fromkeys(VERDICT_KEYS, math.nan), "verdict_against": "", "seeds_needed": None,
                             "resolve_by": ""}
                    if m in controls:
                        row.update(blank, verdict="control",
                                   note=("" if len(controls) >= 2 else
                                         "the only budget of its pruner and recipe: no curve, no verdict"))
                    elif len(controls) >= 2 and identical.get(m) in controls:
                        # the same masks and accuracies as a control: no verdict from its timing, only its cost
                        x = identical[m]
                        extra = (mp.set_index("seed")["cost"] - ctrl[ctrl["method"] == x].set_index("seed")["cost"]).mean()
                        row.update(blank, verdict="identical", verdict_against=x,
                                   note=f"identical to {x} in every seed and iteration, {extra:+.2f} epoch-equivalents")
                    elif len(controls) >= 2:
                        row.update(verdict(mp, ctrl, margin, budgets))
                    else:
                        row.update(blank, verdict="n/a",
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
                                          "level_label": labels[level], "method": m, "against": e,
                                          "seeds": len(seeds), "margin_pp": 100 * margin,
                                          "accuracy_verdict": acc["verdict"], "accuracy_delta": acc["delta"],
                                          "accuracy_delta_lo": acc["lo"], "accuracy_delta_hi": acc["hi"],
                                          "seeds_needed": acc["seeds_needed"],
                                          "cost_delta_epoch_equivalents": sum(cost) / len(cost) if cost else math.nan,
                                          "cost_delta_min": min(cost) if cost else math.nan,
                                          "cost_delta_max": max(cost) if cost else math.nan})
    summary = pd.DataFrame(summary)
    if not summary.empty:
        summary = adjust(summary, adjust_method)
        summary = _pruner_speedups(summary, pd.DataFrame(frontier))
        summary = _best_recipe(summary, curves, info, spe_all, margin_pp, test_sizes)
        summary = adjust(summary, adjust_method, prefix="best_recipe_")
    return pd.DataFrame(frontier), summary, pd.DataFrame(contrasts, columns=CONTRAST_COLUMNS)


BEST_RECIPE_COLUMNS = ["best_recipe", "best_recipe_verdict", "best_recipe_verdict_against", "best_recipe_delta",
                       "best_recipe_delta_lo", "best_recipe_delta_hi", "best_recipe_p_value",
                       "best_recipe_seeds_needed", "best_recipe_resolve_by", "best_recipe_note"]


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
        summary[col] = math.nan if any(w in col for w in ("delta", "seeds", "p_value")) else ""
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
            v = verdict(mp, cp, margin, {c: float(info.loc[c, "max_epochs"]) for c in ctrls})
            if v["verdict"] == "n/a":
                uncovered.append(group)  # e.g. the method cost less than that recipe's cheapest control
            elif best is None or v["delta"] < best[1]["delta"]:
                best = (group, v)
        if best is not None:
            group, v = best
            note = "; ".join(x for x in (v["note"], "no curve at its cost: " + ", ".join(uncovered) if uncovered
                                          else "", "not this sparse: " + ", ".join(shallow) if shallow else "") if x)
            summary.loc[i, BEST_RECIPE_COLUMNS] = [group, v["verdict"], v["verdict_against"], v["delta"],
                                                   v["delta_lo"], v["delta_hi"], v["p_value"],
                                                   v["seeds_needed"] if v["seeds_needed"] is not None else math.nan,
                                                   v["resolve_by"], note]
        elif uncovered or shallow:  # say why no recipe is named
            summary.loc[i, "best_recipe_note"] = "; ".join(
                x for x in ("no curve at its cost: " + ", ".join(uncovered) if uncovered else "",
                            "not this sparse: " + ", ".join(shallow) if shallow else "") if x)
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

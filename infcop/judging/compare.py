"""Honest comparisons: methods at matched sparsity, at their full cost, against the fixed-budget controls.

This module assembles the tables: the frontier (every run at every matched level), the summary (one row per
method and level, with its verdict against its own control group, Holm-adjusted over the run, then the
strongest-recipe pass: the verdict against the best fixed-budget recipe of the same pruner at its cost, and
the stop rule's and the pruner's shares of a speed-up) and the contrasts of flow methods with early stopping.
Run curves, levels and costs are in infcop.judging.curves; the verdict against one control curve in
infcop.judging.verdicts; the tests and other statistics in infcop.judging.stats."""
from __future__ import annotations

import math

from .curves import identical_runs, level_labels, levels_for, own_levels, points, run_curves, seconds_per_epoch
from .stats import ratio_stats, tost
from .verdicts import VERDICT_KEYS, adjust, margin_for, verdict

CONTRAST_COLUMNS = ["dataset", "arch", "control_group", "level", "level_label", "method", "against", "seeds",
                    "margin_pp", "accuracy_verdict", "accuracy_delta", "accuracy_delta_lo", "accuracy_delta_hi",
                    "seeds_needed", "cost_delta_epoch_equivalents", "cost_delta_min", "cost_delta_max"]


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
                        med, lo, hi = ratio_stats([fp.get(s, math.nan) for s in mp["seed"]], mp["cost"].tolist())
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
        med, lo, hi = ratio_stats([a[s] for s in seeds], [b[s] for s in seeds])
        sel = (summary["dataset"] == ds) & (summary["arch"] == arch) & (summary["level"] == level)
        summary.loc[sel, ["pruner_speedup", "pruner_speedup_min", "pruner_speedup_max"]] = [med, lo, hi]
    return summary

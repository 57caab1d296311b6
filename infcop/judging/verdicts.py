"""Verdicts: a method against the control curve of its control group at its own full cost, seed-paired.

The controls (budget-only methods) of a control group (same pruner and retraining recipe: rewind point,
learning-rate schedule and rate) form the frontier: test accuracy against cost. A method is compared, seed
by seed, with the bracket of that curve at its own cost (`infcop.judging.control_curve`); the mean difference and
its two one-sided 95% bounds (a 90% two-sided t-interval) are judged against an equivalence margin that is
never below one test image: *better* (the lower bound clears +margin, and the method also beats the next
more expensive control: it dominates, not just the chord), *dominated* (a cheaper control is as accurate),
*worse* (the upper bound is below -margin), *equivalent* (both bounds inside +-margin) or *inconclusive*
(anything else; with how many seeds would resolve it at the observed spread). Holm's adjustment over a
family of verdicts is here too (`adjust`); the tests themselves are in infcop.judging.stats."""
from __future__ import annotations

import math

from . import stats
from .control_curve import Control, bracket

VERDICT_KEYS = ["verdict", "verdict_against", "delta", "delta_lo", "delta_hi", "delta_upper", "delta_upper_lo",
                "delta_upper_hi", "bracket_width", "p_value", "seeds_needed", "resolve_by",
                "dominates_next_control", "note"]


def margin_for(test_size: int | None, margin_pp: float) -> float:
    """The equivalence margin (as a fraction): the larger of margin_pp and one test image."""
    image = 1.0 / test_size if test_size else 0.0
    return max(margin_pp / 100.0, image)


def _controls_of_seed(control_points, seed, budgets: dict) -> list[Control]:
    c = control_points[control_points["seed"] == seed]
    return [Control(r.method, float(r.cost), float(r.test_accuracy), float(budgets.get(r.method, math.nan)))
            for r in c.itertuples()]


def verdict(method_points, control_points, margin: float, budgets: dict | None = None) -> dict:
    """Seed-paired, the method against the bracket of its control curve at its own full cost
    (`infcop.judging.control_curve`): **better** when it clears the upper bound by the margin and beats the next dearer
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
    out["delta"], out["delta_lo"], out["delta_hi"] = stats.bounds(lower)
    out["delta_upper"], out["delta_upper_lo"], out["delta_upper_hi"] = stats.bounds(upper)
    out["bracket_width"] = sum(widths) / n
    if n < 2:
        out["note"] = "one seed: no interval"
        return out
    p_next = stats.p_above(nexts, 0.0) if not beyond else 0.0  # beyond the dearest: no dearer control to beat
    out["dominates_next_control"] = bool(p_next < stats.ALPHA) if not beyond else math.nan
    dominated = _dominated(method_points, control_points, margin)
    tests = [("better", max(stats.p_above(upper, margin), p_next), ""),
             ("dominated", *(dominated or (1.0, ""))),
             ("worse", stats.p_below(lower, -margin), ""),
             ("equivalent", max(stats.p_above(upper, -margin), stats.p_below(lower, margin)), "")]
    word, p, against = next(((w, p, x) for w, p, x in tests if p < stats.ALPHA), ("inconclusive", min(t[1] for t in tests), ""))
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
        p = stats.p_below([m.loc[s, "test_accuracy"] - c.loc[s, "test_accuracy"] for s in seeds], margin)
        if best is None or p < best[0]:
            best = (p, name)
    return best


def _seeds_to_resolve(lower, upper, nexts, beyond: bool, margin: float, n_now: int) -> int | None:
    """Seeds for 80% power on the verdict the observed means point to: better (the upper bound cleared and the
    next dearer control beaten, both), worse, or equivalent (within the margin of both bounds)."""
    _, mu_u, sd_u = stats.describe(upper)
    _, mu_l, sd_l = stats.describe(lower)
    if mu_u > margin:
        _, mu_n, sd_n = stats.describe(nexts) if not beyond else (0, 1.0, 0.0)
        return stats.seeds_for(lambda n: stats.power_above(mu_u - margin, sd_u, n) * stats.power_above(mu_n, sd_n, n), n_now)
    if mu_l < -margin:
        return stats.seeds_for(lambda n: stats.power_above(-margin - mu_l, sd_l, n), n_now)
    width = mu_l - mu_u  # the bracket's mean width: equivalence needs lower - margin < x < upper + margin
    return stats.seeds_for(lambda n: stats.power_within(mu_l, max(sd_l, sd_u), n, -margin + width, margin), n_now)


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
    adjusted = stats.holm(s.loc[judged, p].tolist()) if method == "holm" else s.loc[judged, p].tolist()
    s.loc[judged, f"{prefix}p_adjusted"] = adjusted
    lost = judged & (s[f"{prefix}p_adjusted"] >= stats.ALPHA) & (s[v] != "inconclusive")
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

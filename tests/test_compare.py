"""Comparisons at matched sparsity and against the fixed-budget controls, on hand-built runs."""
import math

import pandas as pd
import pytest

from infcop.judging.compare import frontier_and_summary
from infcop.judging.curves import at_level, deepest_common_level, levels_for, run_curves
from infcop.judging.summary import summary_markdown


def _runs(spec):
    """spec: method -> list per seed of [(remaining_weights, test_accuracy, epochs), ...] per iteration."""
    rows = []
    for method, seeds in spec.items():
        for seed, its in enumerate(seeds):
            rows.append(dict(dataset="d", arch="a", method=method, seed=seed, iteration=0, remaining_weights=1.0,
                             test_accuracy=0.99, epochs_trained=0, train_seconds=0.0, flow_seconds=0.0,
                             flows_charged=False))
            for k, (rw, acc, ep) in enumerate(its, start=1):
                rows.append(dict(dataset="d", arch="a", method=method, seed=seed, iteration=k, remaining_weights=rw,
                                 test_accuracy=acc, epochs_trained=ep, train_seconds=2.0 * ep, flow_seconds=1.0 * ep,
                                 flows_charged=method.startswith("flow")))
    return pd.DataFrame(rows)


def _methods(rows):
    return pd.DataFrame([dict(method=m, control=c, control_group=g, max_epochs=b, needs_flows=not c,
                              needs_noise_floor=False, rewind_epochs=0, early_stopping=False) for m, c, g, b in rows])


def test_interpolation_is_linear_in_log_remaining_weights():
    curves = run_curves(_runs({"m": [[(0.5, 0.90, 2), (0.25, 0.80, 2)]]}))
    mid = at_level(curves, math.sqrt(0.5 * 0.25))  # halfway in log between iterations 1 and 2
    assert mid["test_accuracy"] == pytest.approx(0.85) and mid["cum_epochs"] == pytest.approx(3.0)
    assert at_level(curves, 0.5)["cum_epochs"] == 2.0
    assert at_level(curves, 0.1) is None  # never that sparse
    assert mid["cum_flow_s"] == 0.0  # a method whose criteria need no flows is not charged for them


def test_levels_are_those_every_run_reached():
    curves = run_curves(_runs({"slow": [[(0.8, 0.9, 1), (0.64, 0.9, 1)]], "fast": [[(0.5, 0.9, 1), (0.2, 0.9, 1)]]}))
    assert deepest_common_level(curves) == 0.64
    assert levels_for(curves) == [0.64]  # no ladder level (0.5, ...) above 0.64 * 1.05 is common to both


def _judge(deltas_by_seed, cost=1, controls=((1, 0.90), (5, 0.95)), margin_pp=0.5, method="crit"):
    """One method (no flows charged) at one level against two controls; accuracy = the curve's + delta per seed."""
    spec = {f"fixed{b}": [[(0.5, acc, b)] for _ in deltas_by_seed] for b, acc in controls}
    (b0, a0), (b1, a1) = controls
    curve = a0 + (a1 - a0) * (cost - b0) / (b1 - b0)
    spec[method] = [[(0.5, curve + d, cost)] for d in deltas_by_seed]
    methods = _methods([(m, m.startswith("fixed"), "g", int(m[5:]) if m.startswith("fixed") else 10) for m in spec])
    frontier, summary, _ = frontier_and_summary(_runs(spec), methods, margin_pp=margin_pp, test_sizes={"d": 1000})
    return summary.set_index("method").loc[method]


def test_four_verdicts_against_the_margin_with_two_one_sided_tests():
    better = _judge([0.020, 0.022, 0.024])  # +2.2 pp, tight: clears +0.5 pp
    assert better["verdict"] == "better" and better["delta"] == pytest.approx(0.022)
    assert better["delta_lo"] > 0.005 and better["dominates_next_control"]
    worse = _judge([-0.020, -0.022, -0.024], cost=3)
    assert worse["verdict"] == "worse" and worse["delta_hi"] < -0.005
    equivalent = _judge([0.001, -0.001, 0.0005])  # within +-0.5 pp, tight
    assert equivalent["verdict"] == "equivalent" and -0.005 < equivalent["delta_lo"] < equivalent["delta_hi"] < 0.005
    wide = _judge([0.03, -0.02, 0.01])  # could be anything: +0.67 pp at a spread of 2.5 pp
    assert wide["verdict"] == "inconclusive" and wide["seeds_needed"] is None  # > 1000 seeds at 80% power
    assert "no number of seeds" in wide["resolve_by"]
    spread = _judge([0.012, 0.002, 0.007])  # +0.7 pp, spread 0.5 pp: more seeds would make it "better"
    assert spread["verdict"] == "inconclusive" and 3 < spread["seeds_needed"] < 100
    assert f"about {int(spread['seeds_needed'])} seeds" in spread["resolve_by"]
    from infcop.judging.stats import tost

    v = [0.03, -0.02, 0.01]
    sd = pd.Series(v).std()
    # the one-sided 95% bounds are the 90% two-sided t-interval
    res = tost(v, 0.005)
    from scipy import stats

    assert res["hi"] - res["delta"] == pytest.approx(stats.t.ppf(0.95, 2) * sd / math.sqrt(3))


def test_the_margin_is_never_below_one_test_image():
    # 1,000 test images: one image = 0.1 pp; margin_pp 0 still judges against 0.1 pp
    r = _judge([0.0004, 0.0005, 0.0006], margin_pp=0.0)  # +0.05 pp: less than one image
    assert r["margin_pp"] == pytest.approx(0.1) and r["verdict"] == "equivalent"


def test_better_needs_dominance_not_just_the_chord():
    # controls 1 -> 90%, 5 -> 90.1%, 10 -> 99%: the chord between 5 and 10 lies far below what 10 epochs give
    controls = ((1, 0.90), (5, 0.901), (10, 0.99))
    spec = {f"fixed{b}": [[(0.5, acc, b)] for _ in range(3)] for b, acc in controls}
    spec["crit"] = [[(0.5, 0.96 + 0.001 * s, 6)] for s in range(3)]  # at cost 6: chord ~91.9%, fixed10 99%
    methods = _methods([(m, m.startswith("fixed"), "g", int(m[5:]) if m.startswith("fixed") else 10) for m in spec])
    _, summary, _ = frontier_and_summary(_runs(spec), methods, test_sizes={"d": 1000})
    r = summary.set_index("method").loc["crit"]
    # the chord at 6 is ~91.9%; no concave curve passes these controls, so the bracket closes on the chord:
    # the method clears it by 4 pp, but "better" also needs it to beat fixed10 (99%), which it does not
    assert r["delta"] > 0.03 and not r["dominates_next_control"]
    assert r["verdict"] == "inconclusive"


def test_the_full_cost_charges_flows_noise_floors_and_rewind_points():
    # 2 s per epoch for every run: flow seconds (1 s per epoch for flow methods) convert at 2 s per epoch
    spec = {"fixed1": [[(0.5, 0.90, 1)] for _ in range(3)], "fixed5": [[(0.5, 0.95, 5)] for _ in range(3)],
            "flow_auto": [[(0.5, 0.93, 2)] for _ in range(3)]}
    methods = _methods([(m, m.startswith("fixed"), "g", int(m[5:]) if m.startswith("fixed") else 10) for m in spec])
    methods["needs_noise_floor"] = methods["method"] == "flow_auto"
    methods["rewind_epochs"] = 1  # every method rewinds to the dense network after 1 epoch: pays 1 epoch
    it = _runs(spec)
    it["noise_floor_seconds"] = [3.0 if k == 0 else float("nan") for k in it["iteration"]]
    frontier, summary, _ = frontier_and_summary(it, methods, test_sizes={"d": 1000})
    s = summary.set_index("method")
    # flow_auto: 2 epochs + 2 s flows / 2 + 3 s noise floor / 2 + 1 rewind epoch = 5.5 epoch-equivalents
    assert s.loc["flow_auto", "cost_epoch_equivalents_mean"] == pytest.approx(5.5)
    assert s.loc["fixed1", "cost_epoch_equivalents_mean"] == pytest.approx(2.0)  # 1 epoch + the rewind epoch
    assert s.loc["flow_auto", "cost_seconds_mean"] == pytest.approx(4 + 2 + 3 + 2)
    # on the curve at 5.5 (past fixed5 at 6? no: fixed5 costs 6): 0.90 + 0.05 * (5.5 - 2) / 4
    assert s.loc["flow_auto", "delta"] == pytest.approx(0.93 - (0.90 + 0.05 * 3.5 / 4))
    f = frontier[frontier["method"] == "fixed5"]
    assert (f["cost_epoch_equivalents"] == 6).all()


def test_a_cost_beyond_every_control_is_judged_against_the_last_segments_extension():
    group = "g"
    spec = {"fixed1": [[(0.5, 0.9, 1)] for _ in range(3)], "fixed2": [[(0.5, 0.92, 2)] for _ in range(3)],
            "crit_long": [[(0.5, 0.95 + 0.001 * s, 8)] for s in range(3)],  # 3 pp above fixed2, at 4x its cost
            "crit_poor": [[(0.5, 0.85 + 0.001 * s, 8)] for s in range(3)]}
    methods = _methods([("fixed1", True, group, 1), ("fixed2", True, group, 2), ("crit_long", False, group, 10),
                        ("crit_poor", False, group, 10)])
    _, summary, _ = frontier_and_summary(_runs(spec), methods)
    s = summary.set_index("method")
    # past fixed2 the curve is bounded by the last segment's extension: 0.92 + 0.02 * (8 - 2) = 1.04 at cost 8
    assert s.loc["crit_long", "delta"] == pytest.approx(0.031) and s.loc["crit_long", "verdict"] == "inconclusive"
    assert "dearest control" in s.loc["crit_long", "note"]
    assert s.loc["crit_long", "delta_upper"] == pytest.approx(0.951 - 1.04)
    # less accurate than a cheaper control: dominated by the one that makes the strongest case
    assert s.loc["crit_poor", "verdict"] == "dominated" and s.loc["crit_poor", "verdict_against"] == "fixed2"


def test_a_method_equal_to_a_control_is_named_identical_and_a_lone_budget_says_why_it_has_no_verdict():
    spec = {"fixed1": [[(0.5, 0.90 + 0.01 * s, 1)] for s in range(2)], "fixed5": [[(0.5, 0.95, 5)] for _ in range(2)],
            "flow": [[(0.5, 0.90 + 0.01 * s, 1)] for s in range(2)], "lth": [[(0.8, 0.95, 10)] for _ in range(2)]}
    methods = _methods([("fixed1", True, "g", 1), ("fixed5", True, "g", 5), ("flow", False, "g", 10),
                        ("lth", True, "magnitude", 10)])
    it = _runs(spec).assign(stop_reason="x", stopped_early_vs_accuracy=None)
    _, summary, _ = frontier_and_summary(it, methods)
    s = summary.drop_duplicates("method").set_index("method")
    assert s.loc["flow", "identical_to"] == "fixed1" and s.loc["fixed5", "identical_to"] == ""
    md = summary_markdown(summary, it, methods)
    assert "`flow` (identical to `fixed1`)" in md
    assert "`lth` (magnitude rewind" not in md and "no verdict — the only fixed budget" in md


def test_speedups_are_medians_of_per_seed_ratios_split_into_pruner_and_stop_rule():
    spec = {"lth": [[(0.8, 0.95, 10), (0.64, 0.94, 10), (0.5, 0.94, 10)] for _ in range(3)],
            "sap": [[(0.5, 0.95, 10), (0.3, 0.93, 10)] for _ in range(3)],
            "crit": [[(0.5, 0.95, 1 + s), (0.3, 0.93, 1)] for s in range(3)],  # no flows charged
            "sap_fixed0": [[(0.5, 0.90, 0), (0.3, 0.80, 0)] for _ in range(3)]}
    methods = _methods([("lth", True, "magnitude", 10), ("sap", True, "sap", 10), ("crit", False, "sap", 10),
                        ("sap_fixed0", True, "sap", 0)])
    iterations = _runs(spec)
    _, summary, _ = frontier_and_summary(iterations, methods)
    # 64%: sap passed it only in its first prune (from 100% to 50%), never trained there: not a level of its
    assert not (summary["level"] == 0.64).any()
    at = summary[summary["level"] == 0.5].set_index("method")
    assert at.loc["sap", "epochs_mean"] == pytest.approx(10)
    # the stop rule's share: sap's cost / crit's, per seed (crit: 1, 2, 3 epochs in iteration 1) -> median
    assert at.loc["crit", "stop_rule_speedup"] == pytest.approx(10 / 2)
    assert (at.loc["crit", "stop_rule_speedup_min"], at.loc["crit", "stop_rule_speedup_max"]) == pytest.approx((10 / 3, 10))
    assert at.loc["crit", "speedup_reference"] == "sap"
    # the pruner's share: lth's cost over sap's at the same level (30 epochs vs 10)
    assert at.loc["crit", "pruner_speedup"] == pytest.approx(3)
    # no ratio over a near-zero cost (prune without retraining)
    assert math.isnan(at.loc["sap_fixed0", "stop_rule_speedup"])
    md = summary_markdown(summary, iterations.assign(stop_reason="x", stopped_early_vs_accuracy=None), methods)
    assert "every method at 50% weights remaining" in md and "5× [3.3–10] vs `sap`" in md


def test_flow_methods_are_paired_with_early_stopping():
    spec = {"fixed1": [[(0.5, 0.90, 1)] for _ in range(3)], "fixed5": [[(0.5, 0.95, 5)] for _ in range(3)],
            "es": [[(0.5, 0.94 + 0.001 * s, 4)] for s in range(3)],
            "flow": [[(0.5, 0.91 + 0.001 * s, 2)] for s in range(3)]}
    methods = _methods([(m, m.startswith("fixed"), "g", int(m[5:]) if m.startswith("fixed") else 10) for m in spec])
    methods["needs_flows"] = methods["method"] == "flow"
    methods["early_stopping"] = methods["method"] == "es"
    _, summary, contrasts = frontier_and_summary(_runs(spec), methods, test_sizes={"d": 1000})
    (c,) = contrasts.itertuples()
    assert (c.method, c.against) == ("flow", "es") and c.accuracy_delta == pytest.approx(-0.03)
    assert c.accuracy_verdict == "worse" and c.cost_delta_epoch_equivalents < 0
    md = summary_markdown(summary, _runs(spec).assign(stop_reason="x", stopped_early_vs_accuracy=None), methods,
                          contrasts=contrasts)
    assert "each flow method against early stopping" in md and "| `flow` | `es` | 50% |" in md


def test_summary_counts_per_criterion_how_often_it_held_before_any_retraining():
    spec = {"sap": [[(0.5, 0.95, 10), (0.3, 0.93, 10)]], "flow": [[(0.5, 0.95, 1), (0.3, 0.93, 1)]]}
    methods = _methods([("sap", True, "sap", 10), ("flow", False, "sap", 10)])
    iterations = _runs(spec).assign(stop_reason="infoflow", stopped_early_vs_accuracy=True)
    summary = frontier_and_summary(iterations, methods)[1]
    # the flow criterion held at epoch 0 in both iterations, accuracy in one; later epochs do not count
    criteria = pd.DataFrame([dict(method="flow", seed=0, iteration=k, epoch=e, criterion=c, holds=h)
                             for k, e, c, h in [(1, 0, "infoflow", True), (1, 0, "accuracy", False),
                                                (2, 0, "infoflow", True), (2, 0, "accuracy", True),
                                                (1, 1, "accuracy", True)]])
    md = summary_markdown(summary, iterations, methods, criteria)
    stops = md.split("How the stop criteria decided")[1]
    row = next(line for line in stops.splitlines() if line.startswith("| flow |"))
    assert "| accuracy 1 of 2, infoflow 2 of 2 |" in row and "| held at epoch 0 |" in stops
    without = summary_markdown(summary, iterations, methods).split("How the stop criteria decided")[1]
    assert "| 1.0 (min 1, max 1) | — |" in without  # no criteria table: nothing claimed


def test_summary_states_the_test_split_and_one_image():
    spec = {"fixed1": [[(0.5, 0.90, 1)] for _ in range(2)], "fixed5": [[(0.5, 0.95, 5)] for _ in range(2)]}
    methods = _methods([("fixed1", True, "g", 1), ("fixed5", True, "g", 5)])
    it = _runs(spec).assign(stop_reason="x", stopped_early_vs_accuracy=None)
    summary = frontier_and_summary(it, methods, test_sizes={"d": 5000})[1]
    md = summary_markdown(summary, it, methods, test_sizes={"d": 5000})
    assert "d: 5,000 test images, so one image is 0.02 pp" in md and "margin of **0.5 pp**" in md


# ------------------------------------------------------------------------- the bracket, case by case

def _group(controls, methods_spec, seeds=3, margin_pp=0.5, test_size=1000, adjust_method="holm"):
    """controls: [(budget, cost, accuracy)] (every seed alike); methods_spec: name -> [(cost, accuracy)] per
    seed. Costs are epochs here (no seconds): one iteration at remaining weights 0.5."""
    spec = {f"fixed{b}": [[(0.5, acc, cost)] for _ in range(seeds)] for b, cost, acc in controls}
    spec.update({m: [[(0.5, acc, cost)] for cost, acc in per_seed] for m, per_seed in methods_spec.items()})
    rows = [(f"fixed{b}", True, "g", b) for b, _, _ in controls] + [(m, False, "g", 10) for m in methods_spec]
    it = _runs(spec)
    it["epochs_trained"] = it["epochs_trained"].astype(float)
    _, summary, _ = frontier_and_summary(it, _methods(rows), margin_pp=margin_pp, test_sizes={"d": test_size},
                                         adjust_method=adjust_method)
    return summary.set_index("method")


def test_a_cheaper_control_almost_as_good_is_a_dominated_not_a_better():
    # the peers study at 32.8%: fixed2 95.36% at 4.8 eq., fixed3 94.88% at 7.2; a method at 7.0, +0.24 pp
    # above fixed2 in every seed, was "better +0.68" against the chord (94.92% at 7.0)
    controls = [(1, 2.4, 0.945), (2, 4.8, 0.9536), (3, 7.2, 0.9488)]
    s = _group(controls, {"m": [(7.0, 0.9560 + d) for d in (-0.0002, 0.0, 0.0002)]})
    r = s.loc["m"]
    assert r["delta"] == pytest.approx(0.0024, abs=1e-4)  # against the envelope: fixed2's 95.36%, not the chord
    assert r["verdict"] == "dominated" and r["verdict_against"] == "fixed2"


def test_the_steep_first_segment_brackets_and_names_the_budget_that_would_resolve_it():
    # fixed0 51% at 0, fixed1 95% at 2.4: a method at 2.3 with fixed1's accuracy read +3.8 pp on the chord
    controls = [(0, 0.0, 0.51), (1, 2.4, 0.95), (2, 4.8, 0.9536)]
    s = _group(controls, {"m": [(2.3, 0.95 + d) for d in (-0.0005, 0.0, 0.0005)]})
    r = s.loc["m"]
    assert r["delta"] == pytest.approx(0.95 - (0.51 + 0.44 * 2.3 / 2.4), abs=1e-6)  # above the chord ...
    assert abs(r["delta_upper"]) < 0.001  # ... but level with what a concave curve can reach there
    assert r["verdict"] == "inconclusive" and r["bracket_width"] > 0.005
    assert "between fixed0 and fixed1" in r["resolve_by"] and "max_epochs: 0.96" in r["resolve_by"]


def test_a_method_identical_to_a_control_gets_no_verdict_from_its_timing():
    controls = [(0, 0.0, 0.51), (1, 2.4, 0.95)]
    spec = {f"fixed{b}": [[(0.5, acc, cost)] for _ in range(3)] for b, cost, acc in controls}
    spec["flow_eps"] = [[(0.5, 0.51, 0.0)] for _ in range(3)]  # fixed0's runs, plus the flows it measured
    it = _runs(spec)
    it.loc[(it["method"] == "flow_eps") & (it["iteration"] > 0), "flow_seconds"] = 0.24  # 0.12 epoch-eq.
    methods = _methods([("fixed0", True, "g", 0), ("fixed1", True, "g", 1), ("flow_eps", False, "g", 10)])
    _, summary, _ = frontier_and_summary(it, methods, test_sizes={"d": 1000})
    r = summary.set_index("method").loc["flow_eps"]
    assert r["verdict"] == "identical" and r["verdict_against"] == "fixed0" and "+0.12 epoch" in r["note"]
    assert math.isnan(r["p_value"])  # not a test, not in the family


def test_beyond_the_dearest_control_the_same_accuracy_at_more_cost_is_dominated():
    controls = [(5, 5.0, 0.90), (10, 10.0, 0.91)]
    s = _group(controls, {"recover": [(12.6, 0.91 + d) for d in (-0.0003, 0.0, 0.0003)]})
    assert s.loc["recover", "verdict"] == "dominated" and s.loc["recover", "verdict_against"] == "fixed10"


def test_worse_is_below_the_lower_bound_and_better_clears_the_upper_and_the_next_control():
    controls = [(1, 1.0, 0.90), (2, 2.0, 0.94), (4, 4.0, 0.96)]
    s = _group(controls, {"low": [(1.5, 0.90 + d) for d in (-0.0005, 0.0, 0.0005)],  # the chord says 92%
                          "high": [(1.5, 0.975 + d) for d in (-0.0005, 0.0, 0.0005)]})
    assert s.loc["low", "verdict"] in ("worse", "dominated") and s.loc["low", "delta_hi"] < -0.005
    # upper at 1.5: min(fixed2's 94%, the segment 2 -> 4 extended back: 0.94 - 0.01 * 0.5 = 93.5%) = 93.5%
    assert s.loc["high", "delta_upper"] == pytest.approx(0.975 - 0.935, abs=1e-6)
    assert s.loc["high", "verdict"] == "better" and s.loc["high", "dominates_next_control"]


def test_holm_adjusts_a_run_as_one_family():
    from infcop.judging.stats import holm

    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # two methods, each "better" at p ~ 0.03 alone: over the family of two, neither holds
    controls = [(1, 1.0, 0.90), (4, 4.0, 0.96)]
    spec = {"a": [(1.0, 0.90 + d) for d in (0.010, 0.015, 0.020)], "b": [(1.0, 0.90 + d) for d in (0.010, 0.015, 0.020)]}
    alone = _group(controls, spec, adjust_method="none")
    assert (alone.loc[["a", "b"], "verdict"] == "better").all() and (alone.loc[["a", "b"], "p_value"] > 0.025).all()
    family = _group(controls, spec)
    assert (family.loc[["a", "b"], "verdict"] == "inconclusive").all()
    assert family.loc["a", "comparisons"] == 2 and "before Holm's adjustment over 2 comparisons" in family.loc["a", "note"]


@pytest.mark.parametrize("mean,sd,low,high", [(0.0, 0.01, -0.005, 0.005), (0.002, 0.004, -0.005, 0.005),
                                              (0.001, 0.006, -0.004, 0.008)])
def test_tost_power_agrees_with_a_simulation_of_the_paired_tests(mean, sd, low, high):
    import numpy as np

    from infcop.judging import stats as T

    n = T.seeds_for(lambda k: T.power_within(mean, sd, k, low, high), 2)
    assert n is not None and n > 2
    rng = np.random.default_rng(0)
    x = rng.normal(mean, sd, size=(20000, n))
    m, s = x.mean(axis=1), x.std(axis=1, ddof=1)
    half = T.t_quantile(n) * s / np.sqrt(n)
    simulated = float(np.mean((m - half > low) & (m + half < high)))
    assert abs(simulated - T.POWER) < 0.02 + (T.power_within(mean, sd, n, low, high) - T.POWER)
    assert abs(simulated - T.power_within(mean, sd, n, low, high)) < 0.02
    one_fewer = float(np.mean((x[:, :-1].mean(1) - T.t_quantile(n - 1) * x[:, :-1].std(1, ddof=1) / np.sqrt(n - 1) > low)
                              & (x[:, :-1].mean(1) + T.t_quantile(n - 1) * x[:, :-1].std(1, ddof=1) / np.sqrt(n - 1) < high)))
    assert one_fewer < T.POWER + 0.02  # n is the fewest


def test_one_sided_power_agrees_with_a_simulation():
    import numpy as np

    from infcop.judging import stats as T

    gap, sd = 0.003, 0.005
    n = T.seeds_for(lambda k: T.power_above(gap, sd, k), 2)
    x = np.random.default_rng(1).normal(gap, sd, size=(20000, n))
    simulated = float(np.mean(x.mean(1) - T.t_quantile(n) * x.std(1, ddof=1) / np.sqrt(n) > 0))
    assert abs(simulated - T.power_above(gap, sd, n)) < 0.02 and T.power_above(gap, sd, n) >= T.POWER


def test_levels_are_only_measured_ones_and_labels_never_collide():
    from infcop.judging.curves import level_labels

    curves = run_curves(_runs({"oneshot": [[(0.168, 0.9, 10)]], "imp": [[(0.8, 0.9, 1), (0.4, 0.9, 1), (0.1, 0.9, 1)]]}))
    oneshot = curves[curves["method"] == "oneshot"]
    assert at_level(oneshot, 0.5) is None  # passed only in its single prune: never trained at 50%
    assert at_level(oneshot, 0.168)["test_accuracy"] == 0.9
    assert at_level(curves[curves["method"] == "imp"], 0.5) is not None  # between two pruned iterations
    labels = level_labels([0.10066, 0.10144, 0.5])
    assert len(set(labels.values())) == 3 and labels[0.5] == "50%"


def test_the_dense_reference_flow_pass_is_charged_to_every_method_that_measures_flows():
    spec = {"fixed1": [[(0.5, 0.90, 1)] for _ in range(3)], "fixed5": [[(0.5, 0.95, 5)] for _ in range(3)],
            "flow_eps": [[(0.5, 0.93, 2)] for _ in range(3)], "es": [[(0.5, 0.93, 2)] for _ in range(3)]}
    methods = _methods([("fixed1", True, "g", 1), ("fixed5", True, "g", 5), ("flow_eps", False, "g", 10),
                        ("es", False, "g", 10)])
    methods.loc[methods["method"] == "es", "needs_flows"] = False  # early stopping reads no flows
    it = _runs(spec)
    it.loc[it["iteration"] == 0, "flow_seconds"] = 1.0  # the dense network's reference flows: 1 s per run
    _, summary, _ = frontier_and_summary(it, methods, test_sizes={"d": 1000})
    s = summary.set_index("method")
    # flow_eps: 2 epochs + 2 s of its own flows / 2 s per epoch + the 1 s reference pass / 2 = 3.5
    assert s.loc["flow_eps", "cost_epoch_equivalents_mean"] == pytest.approx(3.5)
    assert s.loc["es", "cost_epoch_equivalents_mean"] == pytest.approx(2.0)  # no flows, no reference pass
    assert s.loc["fixed1", "cost_epoch_equivalents_mean"] == pytest.approx(1.0)


def test_a_verdict_lost_to_holm_keeps_no_control_name_and_says_what_it_was():
    from infcop.judging.verdicts import adjust

    s = pd.DataFrame({"verdict": ["dominated", "better", "control"], "verdict_against": ["fixed2", "", ""],
                      "p_value": [0.03, 0.04, math.nan], "note": ["", "", ""]})
    out = adjust(s)
    assert list(out["verdict"]) == ["inconclusive", "inconclusive", "control"]
    assert out.loc[0, "verdict_against"] == "" and "dominated by fixed2 before Holm's adjustment over 2" in out.loc[0, "note"]
    assert list(adjust(s, "none")["verdict"]) == ["dominated", "better", "control"]


def test_seconds_become_epoch_equivalents_at_one_pooled_rate_of_the_controls():
    from infcop.judging.curves import seconds_per_epoch

    spec = {"fixed1": [[(0.5, 0.90, 1)] for _ in range(3)], "fixed5": [[(0.5, 0.95, 5)] for _ in range(3)],
            "flow_eps": [[(0.5, 0.93, 2)] for _ in range(3)]}
    methods = _methods([("fixed1", True, "g", 1), ("fixed5", True, "g", 5), ("flow_eps", False, "g", 10)])
    it = _runs(spec)
    slow = (it["method"] == "fixed5") & (it["seed"] == 2) & (it["iteration"] == 1)
    it.loc[slow, "train_seconds"] = 50.0  # one slow control iteration: 10 s per epoch
    it.loc[(it["method"] == "flow_eps") & (it["iteration"] == 1), "train_seconds"] = 40.0  # the method's own speed
    rate = seconds_per_epoch(run_curves(it, methods), methods)[("d", "a")]
    assert rate == pytest.approx(2.0)  # the median of six control iterations (five at 2 s, one at 10 s)
    _, summary, _ = frontier_and_summary(it, methods, test_sizes={"d": 1000})
    # 2 epochs + its 2 s of flows at the pooled 2 s per epoch, not at its own 20 s per epoch
    assert summary.set_index("method").loc["flow_eps", "cost_epoch_equivalents_mean"] == pytest.approx(3.0)


def test_a_level_is_matched_only_where_every_seed_of_every_member_stands_on_it():
    # seed 1's first prune went straight below 50%: 50% is no level of its (it never trained there)
    spec = {"fixed1": [[(0.52, 0.90, 1), (0.3, 0.9, 1)], [(0.48, 0.90, 1), (0.3, 0.9, 1)]],
            "fixed5": [[(0.52, 0.95, 5), (0.3, 0.9, 5)], [(0.52, 0.95, 5), (0.3, 0.9, 5)]]}
    methods = _methods([("fixed1", True, "g", 1), ("fixed5", True, "g", 5)])
    _, summary, _ = frontier_and_summary(_runs(spec), methods, test_sizes={"d": 1000})
    assert 0.5 not in set(summary["level"]) and (summary["seeds"] == 2).all()


def test_a_one_iteration_group_is_placed_at_its_own_level_when_it_misses_the_common_one_by_rounding():
    # IMP ends at 32.770% (its rounding), GMP's single prune at 32.761%: GMP never stood at 32.770% (only
    # passed it in its first prune), so it gets a level of its own instead of no row at all
    imp = [[(0.64, 0.95, 2), (0.3277, 0.94, 2)]] * 3  # three seeds alike
    spec = {"imp2": imp, "imp4": [[(0.64, 0.96, 4), (0.3277, 0.95, 4)]] * 3,
            "gmp10": [[(0.32761, 0.93, 10)]] * 3, "gmp25": [[(0.32761, 0.94, 25)]] * 3}
    methods = _methods([("imp2", True, "imp", 2), ("imp4", True, "imp", 4), ("gmp10", True, "gmp", 10),
                        ("gmp25", True, "gmp", 25)])
    _, summary, _ = frontier_and_summary(_runs(spec), methods)
    g = summary[summary["control_group"] == "gmp"]
    assert sorted(g["method"]) == ["gmp10", "gmp25"] and (g["level"] == 0.32761).all()
    assert g.set_index("method")["cost_epoch_equivalents_mean"].to_dict() == {"gmp10": 10, "gmp25": 25}
    # the IMP group keeps the common level, and the two levels carry labels that tell them apart
    i = summary[summary["control_group"] == "imp"]
    assert set(i["level"]) >= {0.3277} and g["level_label"].iloc[0] != i[i["level"] == 0.3277]["level_label"].iloc[0]
    # a group matched at the common level gets no extra level
    assert not (i["level"] == 0.32761).any()

"""Comparisons at matched sparsity and against the fixed-budget controls, on hand-built runs."""
import math

import pandas as pd
import pytest

from infcop.compare import at_level, deepest_common_level, frontier_and_summary, levels_for, run_curves
from infcop.summary import summary_markdown


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
    return pd.DataFrame([dict(method=m, control=c, control_group=g, max_epochs=b) for m, c, g, b in rows])


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


def test_frontier_verdicts_are_seed_paired_against_the_control_curve():
    group = "sap rewind dense"
    controls = {f"fixed{b}": [[(0.5, acc + 0.002 * s, b), (0.25, acc - 0.05 + 0.002 * s, b)] for s in range(3)]
                for b, acc in ((1, 0.90), (5, 0.95))}
    spec = {**controls,
            # at the fixed1 cost but better than the curve there (by 3 pp, every seed)
            "flow_good": [[(0.5, 0.93 + 0.002 * s, 1), (0.25, 0.88 + 0.002 * s, 1)] for s in range(3)],
            # the fixed1 run itself, identical accuracies: on the curve
            "flow_same": [[(0.5, 0.90 + 0.002 * s, 1), (0.25, 0.85 + 0.002 * s, 1)] for s in range(3)],
            # at the fixed5 cost, 3 pp worse
            "flow_bad": [[(0.5, 0.92 + 0.002 * s, 5), (0.25, 0.87 + 0.001 * s, 5)] for s in range(3)]}
    methods = _methods([(m, m.startswith("fixed"), group, int(m[5:]) if m.startswith("fixed") else 10) for m in spec])
    frontier, summary = frontier_and_summary(_runs(spec), methods)
    deepest = summary[summary["level"] == 0.25].set_index("method")
    assert deepest.loc["flow_good", "frontier_verdict"] == "above"
    assert deepest.loc["flow_good", "frontier_delta"] == pytest.approx(0.03)
    assert deepest.loc["flow_same", "frontier_verdict"] == "on"
    assert deepest.loc["flow_same", "frontier_delta"] == pytest.approx(0.0, abs=1e-12)
    assert deepest.loc["flow_bad", "frontier_verdict"] == "below"
    assert deepest.loc["fixed1", "frontier_verdict"] == "control"
    lo, hi = deepest.loc["flow_bad", ["frontier_ci_lo", "frontier_ci_hi"]]
    assert lo < deepest.loc["flow_bad", "frontier_delta"] < hi < 0
    f = frontier[(frontier["level"] == 0.25)]
    assert set(f.loc[f["role"] == "control", "budget"]) == {1, 5}
    assert f.loc[(f.method == "fixed5") & (f.seed == 0), "cum_epochs"].item() == 10  # 2 iterations x 5 epochs
    # the speed-up against a method needs that method: none here is named lth or sap
    assert summary["speedup_epochs_vs_sap"].isna().all()
    # flow seconds are charged to the flow methods only
    assert (deepest.loc["flow_good", "flow_seconds_mean"], deepest.loc["fixed1", "flow_seconds_mean"]) == (2.0, 0.0)


def test_a_cost_outside_the_controls_range_gets_no_verdict():
    group = "g"
    spec = {"fixed1": [[(0.5, 0.9, 1)] for _ in range(2)], "fixed2": [[(0.5, 0.92, 2)] for _ in range(2)],
            "flow_long": [[(0.5, 0.95, 8)] for _ in range(2)]}
    methods = _methods([("fixed1", True, group, 1), ("fixed2", True, group, 2), ("flow_long", False, group, 10)])
    _, summary = frontier_and_summary(_runs(spec), methods)
    assert summary.set_index("method").loc["flow_long", "frontier_verdict"] == "n/a"


def test_speedups_compare_costs_at_the_same_level_and_the_summary_says_so():
    spec = {"lth": [[(0.8, 0.95, 10), (0.64, 0.94, 10)]], "sap": [[(0.5, 0.95, 10), (0.3, 0.93, 10)]],
            "flow": [[(0.5, 0.95, 2), (0.3, 0.93, 1)]]}
    methods = _methods([("lth", True, "magnitude", 10), ("sap", True, "sap", 10), ("flow", False, "sap", 10)])
    iterations = _runs(spec)
    _, summary = frontier_and_summary(iterations, methods)
    at = summary[summary["level"] == 0.64].set_index("method")
    # lth needs 20 epochs to reach 64%; sap 10 x log(0.64)/log(0.5) of its first iteration
    frac = math.log(0.64) / math.log(0.5)
    assert at.loc["sap", "epochs_mean"] == pytest.approx(10 * frac)
    assert at.loc["flow", "speedup_epochs_vs_lth"] == pytest.approx(20 / (2 * frac))
    assert at.loc["flow", "speedup_epochs_vs_sap"] == pytest.approx(5.0)
    md = summary_markdown(summary, iterations.assign(stop_reason="x", stopped_early_vs_accuracy=None), methods)
    assert "every method at 64% weights remaining" in md and "| flow | 1 |" in md


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

"""Search cost at matched sparsity, against the fixed-budget controls: the default experiment (config.yaml:
digits, small_cnn, 3 seeds, the study's methods, early stopping, the calibrated presets and the controls
retrained exactly 0, 1, 2, 3, 5 and 10 epochs per iteration), run end to end in a scratch copy of the
workflow, read from its results/tables/summary.csv.

Two questions, answered from the same run:
1. Matched sparsity: at the deepest remaining-weight level that every run reached, cumulative retraining
   epochs and seconds (flow time charged only where a method's criteria need it), test accuracy, and the
   ratios against lth and sap.
2. The frontier: is each method with a stop criterion above, on or below the curve of the fixed-budget
   controls (same pruner and rewind point), at its own cost? That says what the stop criterion adds over
   simply retraining less.

No target: the old "Inf-CoP needs >= 3x fewer epochs than lth" was met by an artifact (the study's
thresholds held before any retraining, and lth ended at another sparsity); what counts is the frontier.

    python bench/search_cost.py [--reuse]
"""
from __future__ import annotations

import argparse

from _common import SCRATCH, result, run_default_experiment


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reuse", action="store_true", help="read the default run already in the scratch folder")
    args = ap.parse_args()
    run_dir = SCRATCH / "default"
    if not (args.reuse and (run_dir / "results" / "tables" / "summary.csv").is_file()):
        run_default_experiment(run_dir)
    import pandas as pd

    tables = run_dir / "results" / "tables"
    summary = pd.read_csv(tables / "summary.csv")
    print((tables / "summary.md").read_text())
    common = summary[summary["common_to_all_methods"]]
    common = common[common["level"] == common["level"].min()]
    for r in common.itertuples():
        if r.method == "lth":
            continue
        epochs = (f"{r.epochs_mean:.1f} epochs ({r.speedup_epochs_vs_lth:.2f}x fewer than lth, "
                  f"{r.speedup_epochs_vs_sap:.2f}x fewer than sap)" if r.epochs_mean > 0 else
                  "0 epochs (no retraining: no epoch ratio)")
        print(result(f"search_digits_{r.method}_at_{r.level_label}",
                     f"{epochs}, {r.speedup_seconds_vs_lth:.2f}x less time than lth, "
                     f"test accuracy {100 * r.test_accuracy_mean:.2f} ± {100 * r.test_accuracy_std:.2f}%"))
    for group, g in summary.groupby("control_group"):
        g = g[g["level"] == g["level"].min()]
        for r in g[~g["frontier_verdict"].isin(["control"])].itertuples():
            if r.frontier_verdict == "n/a":
                continue
            print(result(f"frontier_digits_{r.method}",
                         f"{r.frontier_verdict} the fixed-budget curve at {r.level_label} weights: "
                         f"{r.epochs_mean:.1f} epochs, accuracy {100 * r.test_accuracy_mean:.2f}%, "
                         f"Δ {100 * r.frontier_delta:+.2f} pp [{100 * r.frontier_ci_lo:+.2f}, "
                         f"{100 * r.frontier_ci_hi:+.2f}]"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

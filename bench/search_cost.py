"""Search cost at matched sparsity, against the fixed-budget controls: the default experiment (config.yaml:
MNIST-1D, mnist1d_cnn, 3 seeds, the study's methods, early stopping, the calibrated preset and the controls
retrained exactly 0, 1, 2, 3, 4, 5, 7 and 10 epochs per iteration), run end to end in a scratch copy of the
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

    python bench/search_cost.py [--reuse] [--seeds 10]
"""
from __future__ import annotations

import argparse

from _common import SCRATCH, result, run_default_experiment


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reuse", action="store_true", help="read the default run already in the scratch folder")
    ap.add_argument("--seeds", type=int, help="run seeds 0..N-1 instead of config.yaml's (e.g. 10 for the "
                                              "power of the verdicts; its own scratch folder)")
    args = ap.parse_args()
    run_dir = SCRATCH / ("default" if not args.seeds else f"default_{args.seeds}_seeds")
    if not (args.reuse and (run_dir / "results" / "tables" / "summary.csv").is_file()):
        run_default_experiment(run_dir, args.seeds)
    import pandas as pd

    tables = run_dir / "results" / "tables"
    summary = pd.read_csv(tables / "summary.csv", keep_default_na=False, na_values=[""])  # "n/a" is a verdict
    print((tables / "summary.md").read_text())
    dataset = summary["dataset"].iloc[0]
    common = summary[summary["common_to_all_methods"]]
    common = common[common["level"] == common["level"].min()]
    for r in common.itertuples():
        if r.method == "lth":
            continue
        stop = ("—" if r.stop_rule_speedup != r.stop_rule_speedup else
                f"{r.stop_rule_speedup:.2g}x [{r.stop_rule_speedup_min:.2g}-{r.stop_rule_speedup_max:.2g}] cheaper "
                f"than {r.speedup_reference} (the stop rule's share)")
        print(result(f"search_{dataset}_{r.method}_at_{r.level_label}",
                     f"{r.cost_epoch_equivalents_mean:.1f} epoch-equivalents ({r.epochs_mean:.1f} epochs), {stop}, "
                     f"test accuracy {100 * r.test_accuracy_mean:.2f} ± {100 * r.test_accuracy_std:.2f}%"))
    for _, g in summary.groupby("control_group"):
        for r in g[~g["verdict"].isin(["control", "n/a"])].sort_values("level", ascending=False).itertuples():
            extra = f" ({r.note})" if isinstance(r.note, str) and r.note else ""
            link = {"dominated": " by ", "identical": " to "}.get(r.verdict, "")
            word = r.verdict + (link + str(r.verdict_against) if link else "")
            print(result(f"frontier_{dataset}_{r.method}_at_{r.level_label}",
                         f"{word} (margin {r.margin_pp:.2g} pp): {r.cost_epoch_equivalents_mean:.1f} epoch-eq., "
                         f"accuracy {100 * r.test_accuracy_mean:.2f}%, Δ {100 * r.delta:+.2f} pp "
                         f"[{100 * r.delta_lo:+.2f}, {100 * r.delta_hi:+.2f}]{extra}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

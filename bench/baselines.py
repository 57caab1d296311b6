"""The baselines a reviewer demands: runs workflow/experiments/baselines_mnist1d.yaml (layer-wise magnitude IMP
and its fixed budgets, the flow criteria and early stopping under the same recipe, the lottery-ticket controls,
global magnitude, LAMP, random and ERK-random pruning, one-shot, SNIP and SynFlow at initialisation, gradual
magnitude pruning; MNIST-1D, its CNN, 3 seeds) and reports, at the final sparsity every method ends at
(32.8% of the weights):

(a) every method's test accuracy, its total retraining epochs and MACs;
(b) the stop rules' verdicts against the fixed-budget curve of their recipe (from summary.csv);
(c) seed-paired differences of the flow criteria and the ticket controls against GMP and against IMP.

    python bench/baselines.py [--reuse] [--workdir DIR] [--markdown]
"""
from __future__ import annotations

import math
from pathlib import Path


from _common import ROOT, result, sparsity_table, study_main

EXPERIMENT = ROOT / "workflow" / "experiments" / "baselines_mnist1d.yaml"
STOP_RULES = ("mag_ciap", "mag_giap_auto", "mag_earlystop_patience")
PAIRS = (("mag_giap_auto", "gmp_fixed10"), ("mag_giap_auto", "gmp_fixed25"), ("mag_ciap", "gmp_fixed10"),
         ("mag_fixed5", "gmp_fixed25"), ("mag_fixed2", "gmp_fixed10"), ("lth_init", "lth_reinit"),
         ("lth_init", "lth_random_mask"), ("mag_fixed5", "lth_init"), ("oneshot", "snip"), ("oneshot", "synflow"))


def analyse(results: Path) -> dict:
    import pandas as pd

    from infcop.judging.stats import bounds

    tables = results / "tables"
    it = pd.read_csv(tables / "iterations.csv")
    summary = pd.read_csv(tables / "summary.csv", keep_default_na=False, na_values=[""])
    runs = it[it["iteration"] > 0]
    last = runs[runs["iteration"] == runs.groupby(["method", "seed"])["iteration"].transform("max")]
    epochs = runs.groupby(["method", "seed"])["epochs_trained"].sum()
    rep = {"methods": {}, "verdicts": {}, "pairs": {}}
    for m, g in last.groupby("method"):
        rep["methods"][m] = {"remaining": 100 * g["remaining_weights"].mean(),
                             "accuracy": 100 * g["test_accuracy"].mean(),
                             "accuracy_sd": 100 * g["test_accuracy"].std(ddof=1),
                             "epochs": float(epochs.loc[m].mean()),
                             "macs": 100 * (g["macs"] / g["dense_macs"]).mean(), "seeds": len(g)}
    deepest = summary[summary["method"].isin(STOP_RULES)]
    for r in deepest.itertuples():
        if abs(r.level - last[last.method == r.method]["remaining_weights"].mean()) > 0.005:
            continue  # the final level only
        rep["verdicts"][r.method] = {"level": r.level_label, "verdict": r.verdict,
                                     "against": r.verdict_against if isinstance(r.verdict_against, str) else "",
                                     "delta": 100 * float(r.delta), "lo": 100 * float(r.delta_lo),
                                     "hi": 100 * float(r.delta_hi), "cost": float(r.cost_epoch_equivalents_mean)}
    acc = last.set_index(["method", "seed"])["test_accuracy"]
    for a, b in PAIRS:
        if a in rep["methods"] and b in rep["methods"]:
            d = [100 * (acc[(a, s)] - acc[(b, s)]) for s in sorted(set(last[last.method == a]["seed"]))]
            mean, lo, hi = bounds(d)
            rep["pairs"][f"{a} - {b}"] = {"mean": mean, "lo": lo, "hi": hi,
                                          "epochs": (rep["methods"][a]["epochs"], rep["methods"][b]["epochs"])}
    return rep


def markdown_tables(rep: dict) -> str:
    out = sparsity_table(dict(sorted(rep["methods"].items(), key=lambda kv: -kv[1]["accuracy"])))
    out += ["", "| stop rule | level | verdict against its recipe's fixed budgets | full cost (epoch-eq.) |",
            "|---|---|---|---|"]
    for m, v in rep["verdicts"].items():
        against = f" `{v['against']}`" if v["against"] else ""
        delta = "" if not math.isfinite(v["delta"]) else f" {v['delta']:+.2f} [{v['lo']:+.2f}, {v['hi']:+.2f}]"
        out.append(f"| `{m}` | {v['level']} | {v['verdict']}{' to' if v['verdict'] == 'identical' else ''}{against}"
                   f"{delta} | {v['cost']:.1f} |")
    out += ["", "| seed-paired difference | test accuracy (pp), one-sided 95% bounds | retraining epochs |",
            "|---|---|---|"]
    for k, p in rep["pairs"].items():
        out.append(f"| `{k.split(' - ')[0]}` − `{k.split(' - ')[1]}` | {p['mean']:+.2f} [{p['lo']:+.2f}, "
                   f"{p['hi']:+.2f}] | {p['epochs'][0]:.1f} vs {p['epochs'][1]:.1f} |")
    return "\n".join(out)


def result_lines(rep: dict) -> list[str]:
    lines = [result(f"baselines_{m}", f"{r['accuracy']:.2f}% at {r['remaining']:.1f}% weights, {r['epochs']:.1f} "
                    "retraining epochs") for m, r in rep["methods"].items()]
    lines += [result(f"baselines_{k.replace(' - ', '_minus_')}", f"{p['mean']:+.2f} pp [{p['lo']:+.2f}, "
                     f"{p['hi']:+.2f}]") for k, p in rep["pairs"].items()]
    return lines


def main() -> int:
    return study_main(__doc__, EXPERIMENT, "baselines", analyse, markdown_tables, result_lines)


if __name__ == "__main__":
    raise SystemExit(main())

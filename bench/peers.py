"""Against the peers as published: runs workflow/experiments/peers_mnist1d.yaml (every stop rule under the
study's recipe -- rewind to dense, constant rate -- and under BIMP's, rewind none: per-step warm-up over 10%
of the steps and linear decay from ALLR's start rate, the stop rules also with `anneal_on_stop`; controls of
learning-rate rewinding of a step-schedule dense run and of fine-tuning at its last rate; Early-Bird's
distance over all mask entries; random, global-magnitude and one-shot baselines; MNIST-1D, its CNN, 3 seeds,
5 IMP iterations) and reports from its summary.csv, at the deepest level every run reached and at 50%:

(a) the fixed-budget controls of each recipe: test accuracy and full cost per budget;
(b) every stop rule against its own recipe's controls and against the strongest recipe at its cost;
(c) per rewind point, the cheapest method -- stop rule or fixed budget -- whose mean test accuracy is within
    the verdict margin of the most accurate method of that rewind point ("equal accuracy"), and the
    cheapest across both;
(d) the baselines at IMP's final sparsity (32.8% of the weights): layer-wise and global magnitude, random
    pruning with layer-wise magnitude's counts, one-shot pruning with IMP's total budget.

    python bench/peers.py [--reuse] [--workdir DIR] [--markdown]
"""
from __future__ import annotations

import math
from pathlib import Path


from _common import ROOT, cell as _f, result, sparsity_table, study_main

EXPERIMENT = ROOT / "workflow" / "experiments" / "peers_mnist1d.yaml"
SAP = "sap("  # the pruner every recipe shares in this experiment
BASELINES = ("lth", "lth_global", "random", "oneshot")


def _load(results: Path):
    import pandas as pd

    tables = results / "tables"
    summary = pd.read_csv(tables / "summary.csv", keep_default_na=False, na_values=[""])
    methods = pd.read_csv(tables / "methods.csv").set_index("method")
    iterations = pd.read_csv(tables / "iterations.csv")
    return summary, methods, iterations


def analyse(results: Path) -> dict:
    summary, methods, iterations = _load(results)
    sap = summary[summary["control_group"].astype(str).str.startswith(SAP)]
    rep = {"levels": {}, "baselines": {}}
    deepest = float(sap[sap["common_to_all_methods"].astype(str).str.lower() == "true"]["level"].min())
    levels = sorted({deepest, *[lv for lv in sap["level"].unique() if abs(lv - 0.5) < 1e-9]}, reverse=True)
    for level in levels:
        s = sap[(sap["level"] - level).abs() < 1e-9]
        if s.empty:
            continue
        rows = []
        for r in s.itertuples():
            m = methods.loc[r.method]
            rows.append({"method": r.method, "rewind": m["rewind"], "recipe": m["recipe"], "control": bool(m["control"]),
                         "budget": m["max_epochs"], "accuracy": 100 * r.test_accuracy_mean,
                         "accuracy_sd": 100 * r.test_accuracy_std, "cost": r.cost_epoch_equivalents_mean,
                         "cost_sd": r.cost_epoch_equivalents_std, "verdict": r.verdict,
                         "against": getattr(r, "verdict_against", "") if isinstance(getattr(r, "verdict_against", ""), str) else "",
                         "best_against": getattr(r, "best_recipe_verdict_against", "")
                         if isinstance(getattr(r, "best_recipe_verdict_against", ""), str) else "",
                         "delta": 100 * float(r.delta) if r.verdict not in ("control", "n/a", "identical") else math.nan,
                         "delta_lo": 100 * float(r.delta_lo) if r.verdict not in ("control", "n/a", "identical") else math.nan,
                         "delta_hi": 100 * float(r.delta_hi) if r.verdict not in ("control", "n/a", "identical") else math.nan,
                         "best_recipe": r.best_recipe if isinstance(r.best_recipe, str) else "",
                         "best_verdict": r.best_recipe_verdict if isinstance(r.best_recipe_verdict, str) else "",
                         "best_delta": 100 * float(r.best_recipe_delta) if r.best_recipe_delta == r.best_recipe_delta
                         else math.nan,
                         "best_lo": 100 * float(r.best_recipe_delta_lo), "best_hi": 100 * float(r.best_recipe_delta_hi),
                         "margin_pp": r.margin_pp, "seeds": r.seeds})
        cheapest = {}
        for rewind in sorted({r["rewind"] for r in rows}) + ["any"]:
            group = [r for r in rows if rewind == "any" or r["rewind"] == rewind]
            top = max(r["accuracy"] for r in group)
            margin = group[0]["margin_pp"]
            equal = [r for r in group if r["accuracy"] >= top - margin]
            best = min(equal, key=lambda r: r["cost"])
            cheapest[rewind] = {"method": best["method"], "cost": best["cost"], "accuracy": best["accuracy"],
                                "top": top, "top_method": max(group, key=lambda r: r["accuracy"])["method"],
                                "margin_pp": margin}
        rep["levels"][f"{100 * level:.3g}%"] = {"rows": rows, "cheapest": cheapest}
    # the baselines at IMP's final sparsity: their own last iteration (they do not share SAP's levels)
    it = iterations[iterations["method"].isin(BASELINES)]
    for m, g in it.groupby("method"):
        last = g[g["iteration"] == g["iteration"].max()]
        cost = g[g["iteration"] > 0].groupby("seed")["epochs_trained"].sum()
        rep["baselines"][m] = {"remaining": 100 * last["remaining_weights"].mean(),
                               "accuracy": 100 * last["test_accuracy"].mean(),
                               "accuracy_sd": 100 * last["test_accuracy"].std(ddof=1),
                               "macs": 100 * (last["macs"] / last["dense_macs"]).mean(), "epochs": float(cost.mean())}
    return rep


def _word(verdict: str, against: str) -> str:
    return f"{verdict} by `{against}`" if verdict == "dominated" and against else verdict


def markdown_tables(rep: dict) -> str:
    out = []
    for label, lv in rep["levels"].items():
        out += [f"**At {label} of the weights** (SAP, global scope; mean ± sd over seeds; full cost in "
                "epoch-equivalents; verdicts against the method's own recipe's controls and against the "
                "strongest recipe at its cost, accuracy difference in pp with one-sided 95% bounds)", "",
                "| method | rewind | recipe | test accuracy (%) | full cost | own recipe | strongest recipe at its cost |",
                "|---|---|---|---|---|---|---|"]
        for r in sorted(lv["rows"], key=lambda r: (r["rewind"], not r["control"], r["cost"])):
            own = (r["verdict"] if r["verdict"] in ("control", "n/a") else
                   f"identical to `{r['against']}`" if r["verdict"] == "identical" else
                   f"{_word(r['verdict'], r['against'])} {_f(r['delta'], '{:+.2f}')} [{_f(r['delta_lo'], '{:+.2f}')}, "
                   f"{_f(r['delta_hi'], '{:+.2f}')}]")
            best = "—" if not r["best_verdict"] else (
                f"{r['best_recipe'].split(') ', 1)[-1]}: {_word(r['best_verdict'], r['best_against'])} "
                f"{_f(r['best_delta'], '{:+.2f}')} [{_f(r['best_lo'], '{:+.2f}')}, {_f(r['best_hi'], '{:+.2f}')}]")
            recipe = r["recipe"].split(", ", 1)[-1]
            out.append(f"| `{r['method']}` | {r['rewind']} | {recipe} | {_f(r['accuracy'])} ± {_f(r['accuracy_sd'])} | "
                       f"{_f(r['cost'], '{:.1f}')} | {own} | {best} |")
        out.append("")
        out += ["| rewind point | most accurate | cheapest within the margin of it |", "|---|---|---|"]
        for rewind, c in lv["cheapest"].items():
            out.append(f"| {rewind} | `{c['top_method']}` {_f(c['top'])}% | `{c['method']}` {_f(c['accuracy'])}% at "
                       f"{_f(c['cost'], '{:.1f}')} epoch-eq. (margin {_f(c['margin_pp'], '{:.2g}')} pp) |")
        out.append("")
    if rep["baselines"]:
        out += ["**Baselines at IMP's final sparsity** (magnitude pruning; 5 iterations of 20%, or one-shot)", ""]
        out += sparsity_table(rep["baselines"], epochs_fmt="{:.0f}")
    return "\n".join(out)


def result_lines(rep: dict) -> list[str]:
    lines = []
    for label, lv in rep["levels"].items():
        for rewind, c in lv["cheapest"].items():
            lines.append(result(f"peers_cheapest_equal_accuracy_{rewind}_{label}",
                                f"{c['method']} {c['accuracy']:.2f}% at {c['cost']:.1f} epoch-eq. (most accurate: "
                                f"{c['top_method']} {c['top']:.2f}%, margin {c['margin_pp']:.2g} pp)"))
        for r in lv["rows"]:
            if not r["control"] and r["best_verdict"]:
                lines.append(result(f"peers_{r['method']}_{label}_vs_strongest_recipe",
                                    f"{r['best_verdict']} {r['best_delta']:+.2f} pp [{r['best_lo']:+.2f}, "
                                    f"{r['best_hi']:+.2f}] against {r['best_recipe'].split(') ', 1)[-1]} "
                                    f"(own recipe: {r['verdict']})"))
    for m, b in rep["baselines"].items():
        lines.append(result(f"peers_baseline_{m}", f"{b['accuracy']:.2f}% at {b['remaining']:.1f}% weights, "
                                                   f"{b['macs']:.1f}% MACs, {b['epochs']:.0f} epochs"))
    return lines


def main() -> int:
    return study_main(__doc__, EXPERIMENT, "peers", analyse, markdown_tables, result_lines)


if __name__ == "__main__":
    raise SystemExit(main())

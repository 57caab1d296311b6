"""Where do the flow criteria decide something? Runs workflow/experiments/criteria_study_digits.yaml (three
rewind points x fixed-budget controls, early stopping and flow criteria alone; digits, small_cnn, 3 seeds,
5 IMP iterations; or criteria_study_mnist1d.yaml, the same on MNIST-1D with its CNN) and reports, per
rewind point:

(a) how often each measure x threshold form fires at epoch 0 (before any retraining: it cannot tell
    retraining from none), later, or never, and the spread of its stop epochs;
(b) how the distance after the full 10-epoch budget compares with the distance at epoch 0 (does
    retraining move the flows back towards the dense network's, or away?);
(c) the Spearman correlation between the distance and the validation accuracy across the epochs of an
    iteration (negative: the distance falls as accuracy recovers, which is what a stop criterion needs);
(d) each criterion method's place against the fixed-budget frontier at matched sparsity (summary.csv).

(a)-(c) replay every measure x form (the study's absolute epsilon, epsilon: auto, recover 0.5, patience 2)
through infcop's own criteria on the 10-epoch control's recorded trajectories (every distance is recorded
at every epoch of every method), so they cover forms no method of the experiment runs; (d) needs the real
runs. The workflow step is skipped when the results are already there (--reuse).

    python bench/criteria_study.py [--reuse] [--workdir DIR] [--experiment workflow/experiments/criteria_study_mnist1d.yaml]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml

from _common import ROOT, SCRATCH, machine, result, save_json, snakemake, workdir

EXPERIMENT = ROOT / "workflow" / "experiments" / "criteria_study_digits.yaml"
REGIMES = {"dense": "dense (the study's)", "init": "init (classic LTH)", "e1": "epoch 1 (late rewinding)"}
MEASURES = {"signed_mean": "info_distance", "abs_mean": "abs_distance", "cka": "cka_distance",
            "gradflow": "grad_distance"}
FORMS = {"study ε": lambda m: ({"epsilon": 0.1} if m == "signed_mean" else {"epsilon": 0.5} if m == "gradflow"
                               else None),
         "auto": lambda m: None if m == "cka" else {"epsilon": "auto"},
         "recover 0.5": lambda m: {"recover": 0.5},
         "patience 2": lambda m: {"patience": 2, "tol": 0.001}}


def criterion(measure: str, form: dict) -> dict:
    if measure == "gradflow":
        return {"name": "gradflow", **form}
    return {"name": "infoflow", "measure": measure, **form}


def replay(records: list[dict], stop: dict, reference: dict) -> int | None:
    """The first epoch at which `stop` holds along recorded epochs (None: never)."""
    from infcop.science.stopping import criteria_of, normalise_stops

    (c,) = criteria_of(normalise_stops([stop]))
    for rec in records:
        if c.holds(rec, reference):
            return rec["epoch"]
    return None


def spearman(x, y) -> float:
    import pandas as pd

    s = pd.DataFrame({"x": x, "y": y}).dropna()
    if len(s) < 3 or s["x"].nunique() < 2 or s["y"].nunique() < 2:
        return float("nan")
    return float(s["x"].rank().corr(s["y"].rank()))


def trajectories(results: Path, epochs, regime: str):
    """Per (seed, iteration) of the regime's 10-epoch control: its epoch records and the dense reference."""
    out = []
    control = epochs[epochs["method"] == f"{regime}_fixed10"]
    for (seed, it), g in control.groupby(["seed", "iteration"], sort=True):
        (dense_file,) = results.glob(f"*/*/seed{seed}/dense/metrics.json")  # the study's one data set and arch
        dense = json.loads(dense_file.read_text())
        recs = [{"epoch": int(r.epoch), "val_accuracy": r.val_accuracy,
                 "distances": {m: getattr(r, col) for m, col in MEASURES.items()}}
                for r in g.sort_values("epoch").itertuples()]
        out.append((seed, it, recs, dense))
    return out


def quantiles(values) -> str:
    import numpy as np

    v = [x for x in values if x is not None]
    if not v:
        return "—"
    return f"{np.median(v):g} [{min(v)}–{max(v)}]"


def analyse(results: Path) -> dict:
    import numpy as np
    import pandas as pd

    tables = results / "tables"
    epochs = pd.read_csv(tables / "epochs.csv")
    summary = pd.read_csv(tables / "summary.csv", keep_default_na=False, na_values=[""])  # "n/a" is a verdict
    report: dict = {"replay": [], "distances": [], "frontier": []}
    for regime in REGIMES:
        trajs = trajectories(results, epochs, regime)
        for measure, col in MEASURES.items():
            d0 = [t[2][0]["distances"][measure] for t in trajs]
            dn = [t[2][-1]["distances"][measure] for t in trajs]
            rho = [spearman([r["distances"][measure] for r in t[2]], [r["val_accuracy"] for r in t[2]])
                   for t in trajs]
            report["distances"].append({
                "regime": regime, "measure": measure, "n": len(trajs), "epoch0_median": float(np.median(d0)),
                "final_median": float(np.median(dn)),
                "final_over_epoch0_median": float(np.median([b / a for a, b in zip(d0, dn) if a > 0])),
                "share_final_below_epoch0": float(np.mean([b < a for a, b in zip(d0, dn)])),
                "spearman_median": float(np.nanmedian(rho)), "spearman_share_negative":
                    float(np.mean([r < 0 for r in rho if r == r]))})
            for form, make in FORMS.items():
                spec = make(measure)
                if spec is None:
                    continue
                fired = [replay(t[2], criterion(measure, spec), t[3]) for t in trajs]
                report["replay"].append({
                    "regime": regime, "measure": measure, "form": form, "n": len(fired),
                    "at_epoch0": sum(f == 0 for f in fired), "later": sum(f is not None and f > 0 for f in fired),
                    "never": sum(f is None for f in fired), "stop_epochs": quantiles([f for f in fired if f])})
        deepest = summary[summary["method"].str.startswith(f"{regime}_")]
        deepest = deepest[deepest["level"] == deepest["level"].min()]
        for r in deepest.itertuples():
            report["frontier"].append({
                "regime": regime, "method": r.method[len(regime) + 1:], "level": r.level_label,
                "epochs": r.epochs_mean, "epochs_std": r.epochs_std, "cost": r.cost_epoch_equivalents_mean,
                "test_accuracy": r.test_accuracy_mean, "test_accuracy_std": r.test_accuracy_std,
                "verdict": r.verdict, "delta": r.delta, "lo": r.delta_lo, "hi": r.delta_hi,
                "margin_pp": r.margin_pp, "seeds_needed": r.seeds_needed,
                "identical_to": r.identical_to if isinstance(r.identical_to, str) else "",
                "against": getattr(r, "verdict_against", "") if isinstance(getattr(r, "verdict_against", ""), str)
                else ""})
    return report


def print_report(rep: dict) -> list[str]:
    lines = []
    for regime, label in REGIMES.items():
        print(f"\n== rewind to {label} ==")
        print("(a) replayed on the 10-epoch control's trajectories (seed x iteration): fires at epoch 0 / later / "
              "never; median [range] of the later stop epochs")
        for r in rep["replay"]:
            if r["regime"] == regime:
                print(f"  {r['measure']:<12}{r['form']:<13}{r['at_epoch0']:>3} /{r['later']:>3} /{r['never']:>3}  "
                      f"{r['stop_epochs']}")
        print("(b, c) distance at epoch 0 and after 10 epochs (medians), share of iterations where retraining "
              "lowered it, Spearman(distance, val accuracy) across epochs (median, share < 0)")
        for r in rep["distances"]:
            if r["regime"] == regime:
                print(f"  {r['measure']:<12}{r['epoch0_median']:>10.4g}{r['final_median']:>10.4g}"
                      f"{r['final_over_epoch0_median']:>8.2f}x{100 * r['share_final_below_epoch0']:>6.0f}%"
                      f"{r['spearman_median']:>8.2f}{100 * r['spearman_share_negative']:>6.0f}%")
        print("(d) against the fixed-budget controls at the deepest common level, at the full cost (epoch-eq.)")
        for r in rep["frontier"]:
            if r["regime"] == regime:
                ci = "" if r["verdict"] == "control" else \
                    f"  Δ {100 * r['delta']:+.2f} pp [{100 * r['lo']:+.2f}, {100 * r['hi']:+.2f}]"
                print(f"  {r['method']:<14}{r['level']:>7}{r['cost']:>7.1f} eq{100 * r['test_accuracy']:>8.2f}%  "
                      f"{r['verdict']}{ci}{'  = ' + r['identical_to'] if r['identical_to'] else ''}")
    for r in rep["frontier"]:
        if r["verdict"] not in ("control",):
            extra = ""
            if r["verdict"] == "inconclusive":
                n = r["seeds_needed"]
                extra = f"; ≈{int(n)} seeds would resolve it" if n == n and n is not None else ""
            if r["identical_to"]:
                extra += f"; identical to {r['identical_to'][len(r['regime']) + 1:]}"
            lines.append(result(f"criteria_{r['regime']}_{r['method']}",
                                f"{r['verdict']} at {r['level']} weights (margin {r['margin_pp']:.2g} pp): "
                                f"{r['cost']:.1f} epoch-eq., accuracy {100 * r['test_accuracy']:.2f}%, "
                                f"Δ {100 * r['delta']:+.2f} pp [{100 * r['lo']:+.2f}, {100 * r['hi']:+.2f}]{extra}"
                                if r["verdict"] != "n/a" else f"n/a at {r['level']} weights ({r['cost']:.1f} epoch-eq.)"))
    return lines


def markdown_tables(rep: dict) -> str:
    """Tables (a), (b, c) and (d) as BENCHMARKS.md shows them (printed with --markdown): one column per
    rewind point, so the numbers there are the script's, not retyped."""
    regimes = list(REGIMES)
    heads = {"dense": "dense", "init": "init", "e1": "epoch 1"}
    out = ["(a) fires at epoch 0 / later / never (of the iterations), median [range] of the later stop epochs", "",
           "| measure | threshold | " + " | ".join(heads[r] for r in regimes) + " |", "|" + "---|" * (2 + len(regimes))]
    keys = []
    for r in rep["replay"]:
        if (r["measure"], r["form"]) not in keys:
            keys.append((r["measure"], r["form"]))
    for measure, form in keys:
        cells = []
        for reg in regimes:
            (r,) = [x for x in rep["replay"] if (x["regime"], x["measure"], x["form"]) == (reg, measure, form)]
            cell = f"{r['at_epoch0']} / {r['later']} / {r['never']}"
            cells.append(cell + (f", {r['stop_epochs']}" if r["later"] else ""))
        out.append(f"| {measure} | {form} | " + " | ".join(cells) + " |")
    out += ["", "(b, c) distance at epoch 0 and after the 10 epochs (medians), final / epoch 0 (median), share of "
            "iterations in which retraining lowered it, Spearman(distance, validation accuracy) across the epochs "
            "(median, share < 0)", "",
            "| rewind | measure | epoch 0 | after 10 | final / epoch 0 | lowered in | Spearman (median, share < 0) |",
            "|---|---|---|---|---|---|---|"]
    for r in rep["distances"]:
        out.append(f"| {heads[r['regime']]} | {r['measure']} | {r['epoch0_median']:.3g} | {r['final_median']:.3g} | "
                   f"{r['final_over_epoch0_median']:.2f}x | {100 * r['share_final_below_epoch0']:.0f}% | "
                   f"{r['spearman_median']:+.2f}, {100 * r['spearman_share_negative']:.0f}% |")
    out += ["", "(d) controls (full cost in epoch-equivalents, test accuracy), then each method: full cost, accuracy, "
            "verdict, Δ to the control curve [one-sided 95% bounds]", "",
            "| method | " + " | ".join(heads[r] for r in regimes) + " |", "|" + "---|" * (1 + len(regimes))]
    names = []
    for r in rep["frontier"]:
        if r["method"] not in names:
            names.append(r["method"])
    for name in names:
        cells = []
        for reg in regimes:
            rows = [x for x in rep["frontier"] if (x["regime"], x["method"]) == (reg, name)]
            if not rows:
                cells.append("—")
                continue
            r = rows[0]
            cell = f"{r['cost']:.1f} eq, {100 * r['test_accuracy']:.2f}%"
            if r["verdict"] != "control":
                link = {"dominated": " by", "identical": " to"}.get(r["verdict"], "")
                against = r.get("against") or (r["identical_to"] if r["verdict"] == "identical" else "")
                cell += f", {r['verdict']}" + (f"{link} `{against[len(reg) + 1:]}`" if link and against else "")
                if r["delta"] == r["delta"]:
                    cell += f" {100 * r['delta']:+.2f} [{100 * r['lo']:+.2f}, {100 * r['hi']:+.2f}]"
                if r["identical_to"] and r["verdict"] != "identical":
                    cell += f" = `{r['identical_to'][len(reg) + 1:]}`"
            cells.append(cell)
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    levels = {reg: next((x["level"] for x in rep["frontier"] if x["regime"] == reg), "—") for reg in regimes}
    out += ["", "Deepest common level: " + ", ".join(f"{heads[r]} {levels[r]}" for r in regimes) + "."]
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reuse", action="store_true", help="analyse the results already in --workdir")
    ap.add_argument("--experiment", type=Path, default=EXPERIMENT,
                    help="the study's experiment file (criteria_study_digits.yaml or criteria_study_mnist1d.yaml)")
    ap.add_argument("--workdir", type=Path, default=None, help="default: the scratch folder, by experiment name")
    ap.add_argument("--markdown", action="store_true", help="also print the tables as BENCHMARKS.md shows them")
    args = ap.parse_args()
    experiment = args.experiment.resolve()
    config = yaml.safe_load(experiment.read_text())
    if args.workdir is None:
        name = config["experiment"]["name"]
        args.workdir = SCRATCH / ("criteria_study" if name == "criteria_study_digits" else name)
    if not args.reuse:
        wd = workdir(args.workdir, config, fresh=not (args.workdir / "results").exists())
        (wd / "config.yaml").unlink()
        (wd / "experiment.yaml").write_text(experiment.read_text())
        target = f"results/{config['experiment']['name']}/tables/summary.csv"
        _, wall = snakemake(wd, target, "--configfile", "experiment.yaml", timeout=6 * 3600)  # target first:
        # --configfile takes every word after it
        print(f"criteria study: {wall:.0f} s wall ({machine()})")
    rep = analyse(args.workdir / "results" / config["experiment"]["name"])
    save_json(rep, args.workdir / "criteria_study.json")
    lines = print_report(rep)
    if args.markdown:
        print("\n" + markdown_tables(rep) + "\n")
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

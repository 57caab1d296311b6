"""What is there to recover? For each data set and network: the dense test accuracy, how far one-shot global
magnitude pruning to 50%, 20% and 10% of the weights drops it *without any retraining*, and how many epochs
of retraining (weights kept, the training rate, constant: fine-tuning) bring it back. If pruning costs
nothing, no stopping rule can show what it is worth; the data set must also resolve the differences
(one test image in pp).

    python bench/recovery.py [--seeds 3] [--epochs 20] [--cases digits:small_cnn,mnist1d:mnist1d_cnn,...]
"""
from __future__ import annotations

import argparse
import statistics
import time

from _common import SCRATCH, machine, result

CASES = "digits:small_cnn,mnist1d:mnist1d_cnn,mnist1d:mnist1d_mlp"
LEVELS = (0.5, 0.2, 0.1)


def run_case(dataset: str, arch: str, seed: int, args) -> dict:
    import torch

    from infcop.running import steps
    from infcop.experiments.config import complete_settings
    from infcop.running.job import Env, Run
    from infcop.science.masks import MaskEnforcer
    from infcop.science.pruners import prune
    from infcop.science.training import accuracy, epoch_generator, optimizer_for, train_epoch
    from infcop.running.checkpoints import load_model_file

    settings = complete_settings({"dense": {"epochs": args.dense_epochs[dataset]},
                                  "data": {"data_dir": str(SCRATCH / "data"), "num_samples": args.num_samples},
                                  "training": {"device": "cpu"}})
    out = SCRATCH / "recovery" / f"{dataset}-{arch}-{args.num_samples}-seed{seed}"
    if not (out / "metrics.json").is_file():
        steps.train_dense(dataset, arch, seed, settings, out, threads=1)
    env = Env(Run(dataset, arch, seed), settings, 1)
    obj = load_model_file(out / "model.pt", dataset, arch)
    model, masks = env.load(obj)
    dense = accuracy(model, env.data.test)
    rows = {"dense": dense, "test_size": len(env.data.test), "levels": {}}
    for level in LEVELS:
        model, masks = env.load(obj)
        masks = prune(model, masks, {"name": "magnitude", "rate": 1 - level, "scope": "global"})
        enforcer = MaskEnforcer(model, masks)
        enforcer.apply_weights()
        curve = [accuracy(model, env.data.test)]
        opt = optimizer_for(model, env.tr)
        t0 = time.perf_counter()
        for epoch in range(1, args.epochs + 1):
            train_epoch(model, env.data, opt, enforcer, epoch_generator(seed, 77, epoch), env.tr["batch_size"])
            curve.append(accuracy(model, env.data.test))
        rows["levels"][level] = {"curve": curve, "seconds_per_epoch": (time.perf_counter() - t0) / args.epochs}
        torch.manual_seed(0)
    return rows


def first_epoch(curve, target):
    return next((e for e, a in enumerate(curve) if a >= target), None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=20, help="retraining epochs after each prune")
    ap.add_argument("--num-samples", type=int, default=25000, help="mnist1d: samples generated (80/20 split)")
    ap.add_argument("--cases", default=CASES)
    args = ap.parse_args()
    args.dense_epochs = {"digits": 15, "mnist1d": 30}
    print(f"machine: {machine()}")
    lines = []
    for case in args.cases.split(","):
        dataset, arch = case.split(":")
        runs = [run_case(dataset, arch, s, args) for s in range(args.seeds)]
        n = runs[0]["test_size"]
        image = 100 / n
        dense = [r["dense"] for r in runs]
        dmean = statistics.mean(dense)
        dsd = statistics.stdev(dense) if len(dense) > 1 else 0.0
        print(f"\n{dataset} / {arch}: {n} test images (one = {image:.3f} pp); dense {100 * dmean:.2f}% "
              f"(sd over {len(runs)} seeds {100 * dsd:.2f} pp)")
        print("| weights left | no retraining | change | best in %d epochs | epochs to recover 90%% of the drop | "
              "epochs to within 0.5 pp of dense | s / epoch |" % args.epochs)
        print("|---|---|---|---|---|---|---|")
        parts = []
        for level in LEVELS:
            curves = [r["levels"][level]["curve"] for r in runs]
            zero = statistics.mean(c[0] for c in curves)
            best = statistics.mean(max(c) for c in curves)
            drop = [r["dense"] - c[0] for r, c in zip(runs, curves)]
            rec90 = [first_epoch(c, r["dense"] - 0.1 * d) for r, c, d in zip(runs, curves, drop)]
            within = [first_epoch(c, r["dense"] - 0.005) for r, c in zip(runs, curves)]
            sec = statistics.mean(r["levels"][level]["seconds_per_epoch"] for r in runs)

            def show(xs):
                return "/".join("never" if x is None else str(x) for x in xs)

            print(f"| {100 * level:.0f}% | {100 * zero:.2f}% | {100 * (zero - dmean):+.2f} pp | {100 * best:.2f}% | "
                  f"{show(rec90)} | {show(within)} | {sec:.2f} |")
            parts.append(f"{100 * level:.0f}%: {100 * (zero - dmean):+.2f} pp, back within 0.5 pp after {show(within)} "
                         f"epochs, best in {args.epochs} epochs {100 * (best - dmean):+.2f} pp")
        lines.append(result(f"recovery_{dataset}_{arch}",
                            f"dense {100 * dmean:.2f}% on {n} test images (1 image = {image:.3f} pp); pruned "
                            "without retraining " + "; ".join(parts)))
    print()
    for line in lines:
        print(line)


if __name__ == "__main__":
    main()

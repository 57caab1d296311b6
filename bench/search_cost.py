"""Search cost: retraining epochs and seconds to reach the final mask, and the final test accuracy, per
method, from the real workflow's summary table (results/tables/summary.csv).

1. The default experiment (config.yaml: digits, small_cnn, 3 seeds, lth/sap/ciap/giap/earlystop, 5 IMP
   iterations), run end to end in a scratch copy of the workflow. Its wall time and benchmark files are
   kept for bench/workflow_overhead.py.
2. The epsilon sweep of workflow/experiments/epsilon_sweep_digits.yaml (ciap at 0.08-0.15, giap at
   0.3-0.7), reduced to --sweep-seeds seeds to fit the time, plus --extra-epsilons (smaller thresholds
   that show where the flow criteria start to bite on digits). Run in a copy of run 1, so the dense
   networks and lth/sap of the shared seeds are reused, not retrained. Target: the summary table.
3. `mnist` (small_cnn), reduced to fit a CPU (--mnist-methods lth,ciap,giap, --mnist-seeds 0,
   --mnist-iterations 2, --mnist-max-epochs 2, --mnist-dense-epochs 2), when the MNIST files are in
   --data-dir (default: <repo>/data); skipped otherwise. An epoch of small_cnn over MNIST's 51,000
   training images costs minutes of CPU, so on a 2-core CPU this part alone runs past the ~10 minutes
   of parts 1-2: run it on its own (--skip-default --no-sweep) or on a GPU.

Target: Inf-CoP (ciap, giap) needs >= 3x fewer retraining epochs than lth at a final test accuracy within
1 percentage point of lth's.

    python bench/search_cost.py [--sweep-seeds 0] [--skip-default] [--no-sweep] [--data-dir DIR]
"""
from __future__ import annotations

import argparse
import copy
import shutil
from pathlib import Path

from _common import (ROOT, SCRATCH, default_config, job_total, machine, result, run_default_experiment,
                     snakemake, workdir)

import yaml

SWEEP = ROOT / "workflow" / "experiments" / "epsilon_sweep_digits.yaml"
SPEEDUP_TARGET, ACC_TOLERANCE = 3.0, 0.01


def summary(run_dir: Path):
    import pandas as pd

    return pd.read_csv(run_dir / "results" / "tables" / "summary.csv")


def epoch_table(run_dir: Path):
    import pandas as pd

    return pd.read_csv(run_dir / "results" / "tables" / "epochs.csv")


def print_summary(df, label):
    print(f"\n{label}: per method, mean ± std over seeds (retraining = all IMP iterations; seconds include flows)")
    print(f"{'method':<12}{'seeds':>6}{'remaining':>11}{'test acc %':>16}{'epochs':>14}{'seconds':>16}"
          f"{'x vs lth (ep/s)':>18}{'x vs sap (ep/s)':>18}")
    for r in df.sort_values("method").itertuples():
        print(f"{r.method:<12}{r.seeds:>6}{100 * r.final_remaining_weights:>10.1f}%"
              f"{100 * r.test_accuracy_mean:>9.2f} ± {100 * r.test_accuracy_std:<4.2f}"
              f"{r.total_epochs_mean:>8.1f} ± {r.total_epochs_std:<4.1f}"
              f"{r.total_seconds_mean:>9.1f} ± {r.total_seconds_std:<5.1f}"
              f"{r.speedup_epochs_vs_lth:>9.2f}/{r.speedup_seconds_vs_lth:<8.2f}"
              f"{r.speedup_epochs_vs_sap:>9.2f}/{r.speedup_seconds_vs_sap:<8.2f}")


def distances(run_dir: Path):
    """Median info / grad distance after the first retraining epoch, per method: why the criteria fire."""
    ep = epoch_table(run_dir)
    first = ep[ep["epoch"] == 1]
    return first.groupby("method")[["info_distance", "grad_distance"]].median(), \
        ep.groupby("method")["stop_reason"].agg(
        lambda s: {k: int(v) for k, v in s[s.notna() & (s != "")].value_counts().items()})


def run_default(args) -> Path:
    run_dir = SCRATCH / "default"
    if args.skip_default and (run_dir / "results" / "tables" / "summary.csv").is_file():
        print(f"reusing the default run in the scratch folder ({run_dir.name})")
        return run_dir
    run_default_experiment(run_dir)
    return run_dir


def sweep_config(args) -> dict:
    cfg = default_config()
    sw = yaml.safe_load(SWEEP.read_text())
    cfg["experiment"] = {**cfg["experiment"], **sw["experiment"],
                         "seeds": [int(s) for s in args.sweep_seeds.split(",")]}
    cfg["methods"] = {**cfg["methods"], **sw["methods"]}
    for spec in filter(None, args.extra_epsilons.split(",")):
        kind, eps = spec.split(":")
        stop = {"ciap": "infoflow", "giap": "gradflow"}[kind]
        name = f"{kind}_e{eps}"
        cfg["methods"][name] = {"pruner": {"name": "sap", "p": 1, "q": 2},
                                "stop": [{"name": stop, "epsilon": float(eps)}, {"name": "accuracy", "delta": 0.0}]}
        cfg["experiment"]["methods"].append(name)
    return cfg


def run_sweep(args, default_dir: Path) -> Path:
    run_dir = SCRATCH / "sweep"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    # a copy of the default run, Snakemake's metadata included: the dense networks and lth / sap of the
    # shared seeds are up to date there and are not retrained
    shutil.copytree(default_dir, run_dir, symlinks=True,
                    ignore=shutil.ignore_patterns("figures", "run.json"))
    workdir(run_dir, sweep_config(args), fresh=False)
    dry, _ = snakemake(run_dir, "results/tables/summary.csv", "-n", "--quiet", "rules")
    jobs = job_total(dry.stdout + dry.stderr)
    print(f"\nepsilon sweep: {jobs} new jobs; running ...", flush=True)
    _, wall = snakemake(run_dir, "results/tables/summary.csv", timeout=3600)
    print(f"epsilon sweep: {wall:.0f} s wall")
    return run_dir


def mnist_present(data_dir: Path) -> bool:
    raw = data_dir / "MNIST" / "raw"
    return raw.is_dir() and any(raw.glob("train-images-idx3-ubyte*"))


def run_mnist(args) -> Path:
    run_dir = SCRATCH / "mnist"
    cfg = copy.deepcopy(default_config())
    cfg["data"]["data_dir"] = str(Path(args.data_dir).resolve())
    cfg["experiment"].update(datasets=["mnist"], seeds=[int(s) for s in args.mnist_seeds.split(",")],
                             iterations=args.mnist_iterations, methods=args.mnist_methods.split(","))
    cfg["dense"]["epochs"] = args.mnist_dense_epochs
    cfg["training"]["max_epochs"] = args.mnist_max_epochs
    workdir(run_dir, cfg)
    print(f"\nmnist: seeds {args.mnist_seeds}, {args.mnist_iterations} iterations of up to "
          f"{args.mnist_max_epochs} epochs, dense {args.mnist_dense_epochs} epochs; running ...", flush=True)
    _, wall = snakemake(run_dir, "results/tables/summary.csv", timeout=3600)
    print(f"mnist: {wall:.0f} s wall")
    return run_dir


def verdicts(df, tag):
    lines = []
    lth = df[df["method"] == "lth"].iloc[0]
    for r in df.sort_values("method").itertuples():
        lines.append(result(f"search_{tag}_{r.method}",
                            f"{r.total_epochs_mean:.1f} ± {r.total_epochs_std:.1f} epochs, "
                            f"{r.total_seconds_mean:.1f} ± {r.total_seconds_std:.1f} s, test acc "
                            f"{100 * r.test_accuracy_mean:.2f} ± {100 * r.test_accuracy_std:.2f}%, "
                            f"{100 * r.final_remaining_weights:.1f}% weights left"))
    for m in ("ciap", "giap"):
        rows = df[df["method"] == m]
        if rows.empty:
            continue
        r = rows.iloc[0]
        gap = 100 * (lth.test_accuracy_mean - r.test_accuracy_mean)
        ok = r.speedup_epochs_vs_lth >= SPEEDUP_TARGET and gap <= 100 * ACC_TOLERANCE
        lines.append(result(f"search_{tag}_{m}_vs_lth",
                            f"{r.speedup_epochs_vs_lth:.2f}x fewer epochs ({r.speedup_seconds_vs_lth:.2f}x less "
                            f"time), accuracy {-gap:+.2f} pp", ">= 3x fewer epochs, accuracy within 1 pp", ok))
        sap = df[df["method"] == "sap"]
        if not sap.empty:
            d_sap = 100 * (r.test_accuracy_mean - sap.iloc[0].test_accuracy_mean)
            lines.append(result(f"search_{tag}_{m}_vs_sap",
                                f"{r.speedup_epochs_vs_sap:.2f}x fewer epochs ({r.speedup_seconds_vs_sap:.2f}x less "
                                f"time), accuracy {d_sap:+.2f} pp"))
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sweep-seeds", default="0", help="seeds of the epsilon sweep (comma-separated; the "
                    "experiment file has 0,1,2)")
    ap.add_argument("--extra-epsilons", default="ciap:0.01,giap:0.0002",
                    help="extra sweep presets kind:epsilon (empty: none)")
    ap.add_argument("--no-sweep", action="store_true")
    ap.add_argument("--skip-default", action="store_true", help="reuse the default run of an earlier call")
    ap.add_argument("--data-dir", default=str(ROOT / "data"))
    ap.add_argument("--no-mnist", action="store_true", help="skip mnist even when its files are there")
    ap.add_argument("--mnist-methods", default="lth,ciap,giap")
    ap.add_argument("--mnist-seeds", default="0")
    ap.add_argument("--mnist-iterations", type=int, default=2)
    ap.add_argument("--mnist-max-epochs", type=int, default=2)
    ap.add_argument("--mnist-dense-epochs", type=int, default=2)
    args = ap.parse_args()
    SCRATCH.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine()}")
    lines = []

    default_dir = run_default(args)
    df = summary(default_dir)
    print_summary(df, "default experiment (digits, small_cnn)")
    d, reasons = distances(default_dir)
    print("\nmedian distance to dense after the first retraining epoch, and stop reasons (all iterations, seeds):")
    for m, r in d.iterrows():
        print(f"  {m:<12} info {r.info_distance:.4f}  grad {r.grad_distance:.2e}  stops {reasons[m]}")
    lines += verdicts(df, "digits")

    if not args.no_sweep:
        sweep_dir = run_sweep(args, default_dir)
        sw = summary(sweep_dir)
        print_summary(sw, f"epsilon sweep (digits, small_cnn, seeds {args.sweep_seeds})")
        d, reasons = distances(sweep_dir)
        lth = sw[sw["method"] == "lth"].iloc[0]
        for r in sw[sw["method"].str.contains("_e")].sort_values("method").itertuples():
            d_lth = 100 * (r.test_accuracy_mean - lth.test_accuracy_mean)
            lines.append(result(f"sweep_{r.method}", f"{r.total_epochs_mean:.1f} epochs "
                                f"({r.speedup_epochs_vs_lth:.1f}x fewer than lth), test acc "
                                f"{100 * r.test_accuracy_mean:.2f}% ({d_lth:+.2f} pp vs lth), "
                                f"stops {reasons[r.method]}"))

    data_dir = Path(args.data_dir)
    if args.no_mnist:
        lines.append(result("search_mnist", "skipped (--no-mnist)"))
    elif mnist_present(data_dir):
        mdf = summary(run_mnist(args))
        print_summary(mdf, "mnist (small_cnn, reduced)")
        lines += verdicts(mdf, "mnist")
    else:
        lines.append(result("search_mnist", f"skipped: no MNIST files under {data_dir.name}/MNIST/raw "
                            "(put them there, or pass --data-dir)"))
    print()
    for line in lines:
        print(line)


if __name__ == "__main__":
    main()

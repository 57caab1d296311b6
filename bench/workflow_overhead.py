"""Workflow overhead.

(a) The default experiment's wall time split into compute (the sum over its jobs of Snakemake's benchmark
    column `s`, results/benchmarks/**.tsv) and everything else, in core-seconds (wall x cores, the
    workflow profile runs `--cores all`); the compute further split into the science inside the jobs
    (training + flow seconds from results/tables/iterations.csv) and the rest (per-job start-up, loading,
    saving, evaluation, tables, figures). Reuses the default run of bench/search_cost.py when it is in the
    scratch folder (--rerun to run the default config again).
(b) `snakemake -n` (building the DAG, no job run) for generated grids of about 100, 1,000 and 10,000 jobs
    (digits, varying seeds, methods and iterations): seconds, and seconds per job.
(c) The fixed cost of one rule job: the interpreter + imports (`python -c "import infcop.running.steps"`,
    `import infcop.showing.plots`, against `python -c pass`), and a whole `infcop imp-iteration` on digits with
    training.max_epochs 1 against the time spent inside it in training and flows; timed alternately.
(d) Warm start: that same `infcop imp-iteration` job started afresh (INFCOP_WARM_START=off) and forked by a
    warm-start server (infcop.running.warm_start, as local workflow runs do), timed alternately in one run.
(e) The whole default workflow with this checkout's warm start against a baseline revision's (the warm
    start before it checked peers, tokens and thread counts), side by side in one run (--parts e).

    python bench/workflow_overhead.py [--rerun] [--repeats 5] [--grids 100,1000,10000] [--parts a,b,c,d,e] [--baseline REV]
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import (ROOT, SCRATCH, alternate, default_config, env, job_total, machine, median, result,
                     run_default_experiment, snakemake, tool, workdir)

import yaml


def part_a(args):
    import pandas as pd

    run_dir = SCRATCH / "default"
    if args.rerun or not (run_dir / "run.json").is_file():
        print("(a) no default run of bench/search_cost.py in the scratch folder: running it")
        run_default_experiment(run_dir)
    else:
        print("(a) reusing the default run of bench/search_cost.py from the scratch folder")
    import json

    info = json.loads((run_dir / "run.json").read_text())
    wall, jobs = info["wall_seconds"], info["jobs"]
    cores = os.cpu_count()
    rows = []
    for f in (run_dir / "results" / "benchmarks").rglob("*.tsv"):
        rel = f.relative_to(run_dir / "results" / "benchmarks")
        rule = "figure" if rel.parts[0] == "figures" else ("tables" if f.stem == "tables" else
                                                           "dense" if f.stem == "dense" else
                                                           "imp_iteration" if f.stem.startswith("iter") else f.stem)
        rows.append({"rule": rule, "s": float(pd.read_csv(f, sep="\t")["s"].iloc[0])})
    bench = pd.DataFrame(rows)
    compute = bench["s"].sum()
    it = pd.read_csv(run_dir / "results" / "tables" / "iterations.csv")
    # iteration 0 is the run's dense network, repeated in every method's rows: count it once per seed
    it = pd.concat([it[it["iteration"] > 0],
                    it[it["iteration"] == 0].drop_duplicates(["dataset", "arch", "seed"])])
    science = float((it["train_seconds"] + it["flow_seconds"]).sum())
    core_s = wall * cores
    load = info.get("loadavg_1min_before_after")
    print(f"(a) default experiment: {len(bench)} benchmarked jobs (+ the `all` target), wall {wall:.0f} s on "
          f"{cores} cores = {core_s:.0f} core-s (run of {info['date']}, {info['machine']}"
          + (f"; 1-min load average {load[0]:.1f} before, {load[1]:.1f} after)" if load else ")"))
    per_rule = bench.groupby("rule")["s"].agg(["count", "sum", "median"])
    for rule, r in per_rule.iterrows():
        print(f"    {rule:<14} {int(r['count']):>4} jobs  {r['sum']:>7.1f} s  (median {r['median']:.2f} s/job)")
    print(f"    compute (sum of s): {compute:.0f} core-s = {100 * compute / core_s:.0f}% of wall x cores; "
          f"science inside the jobs (train + flows, dense included): {science:.0f} s = "
          f"{100 * science / compute:.0f}% of the compute")
    return [
        result("workflow_default_wall", f"{wall:.0f} s for {jobs} jobs on {cores} cores"),
        result("workflow_default_compute_share", f"{100 * compute / core_s:.0f}% of wall x cores is inside jobs "
               f"(sum of s {compute:.0f} s); {100 * (1 - compute / core_s):.0f}% is Snakemake and idle cores"),
        result("workflow_default_science_share", f"{100 * science / compute:.0f}% of the jobs' time is training "
               f"+ flows ({science:.0f} s); {100 * (1 - science / compute):.0f}% is per-job start-up, I/O, "
               f"evaluation, tables and figures"),
    ]


def grid_config(seeds: int, methods: int, iterations: int) -> dict:
    cfg = default_config()
    presets = {}
    for i in range(methods):
        stop = [{"name": "infoflow", "epsilon": round(0.05 + 0.01 * i, 4)}, {"name": "accuracy", "delta": 0.0}]
        presets[f"m{i}"] = {"pruner": {"name": "sap", "p": 1, "q": 2}, "stop": stop}
    cfg["experiment"] = {"datasets": ["digits"], "archs": ["small_cnn"], "seeds": list(range(seeds)),
                         "methods": list(presets), "iterations": iterations}
    cfg["methods"] = presets
    return cfg


GRIDS = {100: (3, 5, 5), 1000: (10, 10, 8), 10000: (20, 25, 18)}  # ~jobs: (seeds, methods, iterations)


def part_b(args):
    lines, points = [], []
    base = Path(tempfile.mkdtemp(prefix="dag-", dir=SCRATCH))
    for n in [int(g) for g in args.grids.split(",")]:
        s, m, k = GRIDS.get(n, GRIDS[100])
        d = workdir(base / f"grid{n}", grid_config(s, m, k))
        times, jobs = [], 0
        for _ in range(args.dag_repeats if n < 10000 else 1):
            r, wall = snakemake(d, "-n", "--quiet", "rules", timeout=1800)
            jobs = job_total(r.stdout + r.stderr)
            times.append(wall)
        t = median(times)
        points.append((jobs, t))
        print(f"(b) grid seeds={s} methods={m} iterations={k}: {jobs} jobs, `snakemake -n` {t:.1f} s "
              f"({1000 * t / jobs:.1f} ms/job; median of {len(times)})", flush=True)
        lines.append(result(f"dag_{n}_jobs", f"{t:.1f} s for {jobs} jobs ({1000 * t / jobs:.1f} ms/job)"))
    if len(points) >= 2:
        (j0, t0), (j1, t1) = points[-2], points[-1]
        slope = (t1 - t0) / (j1 - j0)
        lines.append(result("dag_marginal_cost", f"{1000 * slope:.1f} ms per extra job between {j0} and {j1} jobs"
                            f" (grows {'about linearly' if slope * j1 < 2 * t1 else 'faster than linearly'})"))
    shutil.rmtree(base, ignore_errors=True)
    return lines


def dense_dir() -> Path:
    """A dense network of digits/small_cnn/seed0: the default run's, else a 1-epoch one made here."""
    d = SCRATCH / "default" / "results" / "digits" / "small_cnn" / "seed0" / "dense"
    if (d / "metrics.json").is_file():
        return d
    d = SCRATCH / "dense1"
    if not (d / "metrics.json").is_file():
        cfg = SCRATCH / "dense1.yaml"
        c = default_config()
        c["dense"]["epochs"] = 1
        cfg.write_text(yaml.safe_dump(c))
        subprocess.run([tool("infcop"), "train-dense", "--config", str(cfg), "--dataset", "digits", "--arch",
                        "small_cnn", "--seed", "0", "--threads", "1", "--out", str(d)], check=True, env=env(),
                       capture_output=True)
    return d


def imp_iteration_job():
    """A callable running one `infcop imp-iteration` (digits, 1 epoch; extra environment optional), and the
    list its seconds inside training + flows go to."""
    import json

    dense = dense_dir()
    cfg_path = SCRATCH / "epoch1.yaml"
    c = default_config()
    c["training"]["max_epochs"] = 1
    cfg_path.write_text(yaml.safe_dump(c))
    inside = []
    count = [0]

    def job(extra_env=None):
        count[0] += 1
        out = SCRATCH / "job" / f"run{count[0]}"
        shutil.rmtree(out, ignore_errors=True)
        subprocess.run([tool("infcop"), "imp-iteration", "--config", str(cfg_path), "--dataset", "digits",
                        "--arch", "small_cnn", "--seed", "0", "--method", "ciap", "--iteration", "1",
                        "--dense", str(dense), "--previous", str(dense), "--threads", "1", "--out", str(out)],
                       check=True, env={**env(), **(extra_env or {})}, capture_output=True)
        m = json.loads((out / "metrics.json").read_text())
        inside.append(m["train_seconds"] + m["flow_seconds"])

    return job, inside


def part_c(args):
    py = sys.executable
    job, inside = imp_iteration_job()

    def cmd(code):
        return lambda: subprocess.run([py, "-c", code], check=True, env=env(), capture_output=True)

    t = alternate({"python": cmd("pass"), "torch": cmd("import torch"), "steps": cmd("import infcop.running.steps"),
                   "plots": cmd("import infcop.showing.plots"), "imp_iteration": job}, args.repeats)["wall"]
    shutil.rmtree(SCRATCH / "job", ignore_errors=True)
    med = {k: median(v) for k, v in t.items()}
    ins = median(inside[-args.repeats:])
    print(f"(c) medians of {args.repeats}, timed alternately: python {med['python']:.2f} s, import torch "
          f"{med['torch']:.2f} s, import infcop.running.steps {med['steps']:.2f} s, import infcop.showing.plots "
          f"{med['plots']:.2f} s; infcop imp-iteration (digits, 1 epoch) {med['imp_iteration']:.2f} s wall, of "
          f"which {ins:.2f} s inside (train + flows)")
    fixed = med["imp_iteration"] - ins
    return [
        result("job_fixed_cost_imp_iteration", f"{fixed:.2f} s per job outside training + flows "
               f"({100 * fixed / med['imp_iteration']:.0f}% of a 1-epoch digits job of {med['imp_iteration']:.2f} s)"),
        result("job_import_cost", f"import infcop.running.steps {med['steps']:.2f} s (torch {med['torch']:.2f} s, bare python "
               f"{med['python']:.2f} s); import infcop.showing.plots {med['plots']:.2f} s"),
    ]


def part_d(args):
    from infcop.running import warm_start

    job, _ = imp_iteration_job()
    server = warm_start.start(str(SCRATCH / "warm-start.log"), export=False)
    try:
        t = alternate({"cold": lambda: job({"INFCOP_WARM_START": "off"}),
                       "warm": lambda: job(server.env)}, args.repeats)["wall"]
    finally:
        warm_start.stop(server)
    shutil.rmtree(SCRATCH / "job", ignore_errors=True)
    cold, warm = median(t["cold"]), median(t["warm"])
    print(f"(d) infcop imp-iteration (digits, 1 epoch), medians of {args.repeats} timed alternately: started "
          f"afresh {cold:.2f} s, forked warm {warm:.2f} s")
    return [result("job_warm_start", f"{warm:.2f} s forked warm vs {cold:.2f} s started afresh for a 1-epoch "
                   f"digits imp-iteration job ({cold / warm:.1f}x faster; {cold - warm:.2f} s saved per job)")]


def part_e(args):
    """The default workflow run whole (like `make run` after set-up) with this checkout's infcop and with
    that of --baseline (a git revision: its infcop, Snakefile, workflow/ and profiles/), both from the same
    environment (PYTHONPATH picks the infcop), alternated; one pair by default."""
    import tarfile
    import io

    base_src = SCRATCH / "baseline-src"
    shutil.rmtree(base_src, ignore_errors=True)
    base_src.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.baseline, "infcop", "Snakefile", "workflow",
                              "profiles", "environment.yml"], capture_output=True, check=True).stdout
    tarfile.open(fileobj=io.BytesIO(archive)).extractall(base_src)
    config = default_config()
    walls = {"baseline": [], "current": []}

    def run(variant):
        src = base_src if variant == "baseline" else ROOT
        wd = SCRATCH / f"workflow-{variant}"
        shutil.rmtree(wd, ignore_errors=True)
        wd.mkdir(parents=True)
        for f in ("Snakefile", "environment.yml"):
            shutil.copy(src / f, wd / f)
        for d in ("workflow", "profiles"):
            shutil.copytree(src / d, wd / d)
        (wd / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        e = {**env(), "PYTHONPATH": str(src)}
        t0 = time.perf_counter()
        r = subprocess.run([tool("snakemake"), "--cores", "all"], cwd=wd, env=e, capture_output=True, text=True,
                           timeout=3600)
        wall = time.perf_counter() - t0
        if r.returncode != 0:
            sys.exit(f"(e) {variant} failed:\n{r.stderr[-3000:]}")
        log = (wd / ".snakemake" / "infcop" / "warm-start.log").read_text()
        forked = sum(1 for line in log.splitlines() if ": pid " in line)
        print(f"(e) {variant}: {wall:.0f} s, {job_total(r.stdout) or job_total(r.stderr)} jobs, {forked} forked warm")
        walls[variant].append(wall)

    for i in range(args.workflow_repeats):
        for variant in (("baseline", "current") if i % 2 == 0 else ("current", "baseline")):
            run(variant)
    old, new = median(walls["baseline"]), median(walls["current"])
    return [result("workflow_warm_start_safe", f"default workflow {new:.0f} s with this checkout's warm start vs "
                   f"{old:.0f} s with {args.baseline}'s ({new / old:.2f}x; {args.workflow_repeats} pair(s), "
                   "alternated)", "within 10%", new <= 1.10 * old)]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rerun", action="store_true", help="run the default experiment again for (a)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--dag-repeats", type=int, default=3)
    ap.add_argument("--grids", default="100,1000,10000")
    ap.add_argument("--parts", default="a,b,c,d", help="a,b,c,d and e (e: two whole default workflows)")
    ap.add_argument("--baseline", default="6564069", help="(e) the git revision to compare with")
    ap.add_argument("--workflow-repeats", type=int, default=1, help="(e) pairs of whole default workflows")
    args = ap.parse_args()
    SCRATCH.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine()}")
    lines = []
    if "a" in args.parts:
        lines += part_a(args)
    if "b" in args.parts:
        lines += part_b(args)
    if "c" in args.parts:
        lines += part_c(args)
    if "d" in args.parts:
        lines += part_d(args)
    if "e" in args.parts:
        lines += part_e(args)
    print()
    for line in lines:
        print(line)


if __name__ == "__main__":
    main()

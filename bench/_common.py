"""Shared helpers of the benchmark scripts: repository root, scratch workflow copies, timing, RESULT lines.

Every script finds the repository relative to its own file, so it runs from any clone:
`python bench/<name>.py` (use the interpreter of the environment that has infcop installed)."""
from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `import infcop` from this clone even without an editable install
    sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent
SCRATCH = Path(tempfile.gettempdir()) / "infcop-bench"  # runs kept between scripts (search_cost -> workflow_overhead)


def machine() -> str:
    """CPU model and core count, for the context line of every absolute time."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch

    return f"{model}, {os.cpu_count()} cores, torch {torch.__version__} with {torch.get_num_threads()} threads"


def tool(name: str) -> str:
    """A command of the environment running this script (snakemake, infcop), else the one on PATH."""
    p = BIN / name
    if p.exists():
        return str(p)
    found = shutil.which(name)
    if not found:
        sys.exit(f"bench: '{name}' not found beside {sys.executable} nor on PATH")
    return found


def env() -> dict:
    e = dict(os.environ)
    e["PATH"] = f"{BIN}{os.pathsep}{e.get('PATH', '')}"  # the `infcop` the rules call
    e["PYTHONUNBUFFERED"] = "1"
    return e


def default_config() -> dict:
    import yaml

    return yaml.safe_load((ROOT / "config.yaml").read_text())


def workdir(path: Path, config: dict, fresh: bool = True) -> Path:
    """A working directory holding a copy of the workflow and `config` (like tests/workflow_helpers.py)."""
    import yaml

    if fresh and path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    for f in ("Snakefile", "environment.yml"):
        shutil.copy(ROOT / f, path / f)
    for d in ("workflow", "profiles"):
        shutil.copytree(ROOT / d, path / d, dirs_exist_ok=True)
    (path / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def snakemake(cwd: Path, *args, timeout=1800, check=True) -> tuple[subprocess.CompletedProcess, float]:
    """Run snakemake in `cwd`; returns the completed process and its wall time in seconds."""
    t0 = time.perf_counter()
    r = subprocess.run([tool("snakemake"), *args], cwd=cwd, env=env(), capture_output=True, text=True,
                       timeout=timeout)
    wall = time.perf_counter() - t0
    if check and r.returncode != 0:
        sys.exit(f"snakemake {' '.join(args)} failed ({r.returncode}) in {cwd}:\n"
                 f"{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r, wall


def job_total(output: str) -> int:
    """The 'total' row of Snakemake's 'Job stats' table."""
    for line in output.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "total" and parts[1].isdigit():
            return int(parts[1])
    return 0


def median(xs):
    return statistics.median(xs)


def alternate(fns: dict, repeats: int, warmup: int = 1) -> dict:
    """Time each callable `repeats` times, interleaved and rotated (A B C, B C A, C A B, ...) so that the
    noise of a shared machine hits every variant alike; `warmup` untimed rounds first. Returns
    {"wall": name -> [seconds], "cpu": name -> [seconds of this process's CPU time]}. With one torch
    thread the CPU time is the work itself: time slices lost to other processes do not count in it."""
    names = list(fns)
    for _ in range(warmup):
        for n in names:
            fns[n]()
    wall = {n: [] for n in names}
    cpu = {n: [] for n in names}
    for r in range(repeats):
        order = names[r % len(names):] + names[:r % len(names)]
        for n in order:
            t0, c0 = time.perf_counter(), time.process_time()
            fns[n]()
            cpu[n].append(time.process_time() - c0)
            wall[n].append(time.perf_counter() - t0)
    return {"wall": wall, "cpu": cpu}


def result(name: str, value: str, target: str | None = None, met: bool | None = None) -> str:
    if target is None:
        return f"RESULT {name}: {value} info"
    return f"RESULT {name}: {value} (target {target}) {'met' if met else 'missed'}"


def cell(v, fmt="{:.2f}") -> str:
    """A table cell: the number formatted, or a dash for a missing or non-finite one."""
    import math

    try:
        v = float(v)
    except (TypeError, ValueError):
        return "—"
    return "—" if not math.isfinite(v) else fmt.format(v)


def sparsity_table(rows: dict, epochs_fmt: str = "{:.1f}") -> list[str]:
    """Markdown lines of a table of methods at their sparsity: {method: {remaining, macs, accuracy, accuracy_sd,
    epochs}} in the order given."""
    out = ["| method | remaining weights (%) | MACs (% of dense) | test accuracy (%) | retraining epochs |",
           "|---|---|---|---|---|"]
    for m, r in rows.items():
        out.append(f"| `{m}` | {cell(r['remaining'], '{:.1f}')} | {cell(r['macs'], '{:.1f}')} | "
                   f"{cell(r['accuracy'])} ± {cell(r['accuracy_sd'])} | {cell(r['epochs'], epochs_fmt)} |")
    return out


def save_json(obj, path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=1, default=str))


def run_default_experiment(run_dir: Path, seeds: int | None = None) -> dict:
    """Run config.yaml (exactly, or with `seeds` run seeds 0..seeds-1) end to end in a fresh copy of the
    workflow in `run_dir`, like `make run`; records wall time, job count and the machine's load in
    run_dir/run.json and returns that record."""
    import datetime

    config = default_config()
    if seeds:
        config["experiment"]["seeds"] = list(range(seeds))
    workdir(run_dir, config)
    dry, _ = snakemake(run_dir, "-n", "--quiet", "rules")
    jobs = job_total(dry.stdout + dry.stderr)
    print(f"default experiment: {jobs} jobs; running it ...", flush=True)
    load0 = os.getloadavg()[0]
    _, wall = snakemake(run_dir, timeout=3600)
    load1 = os.getloadavg()[0]
    info = {"wall_seconds": wall, "jobs": jobs, "date": datetime.date.today().isoformat(), "machine": machine(),
            "cores": os.cpu_count(), "loadavg_1min_before_after": [load0, load1]}
    save_json(info, run_dir / "run.json")
    print(f"default experiment: {wall:.0f} s wall for {jobs} jobs ({machine()}; 1-min load average "
          f"{load0:.1f} before, {load1:.1f} at the end)")
    return info


def timing_parser(doc: str, repeats: int):
    """The command line shared by the CPU timing scripts: --repeats and --threads."""
    import argparse

    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=repeats)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (the workflow's jobs use 1)")
    return ap


def study_main(doc: str, experiment: Path, label: str, analyse, markdown_tables, result_lines) -> int:
    """The command line of a study script: run `experiment` in --workdir (unless --reuse), analyse its results,
    print the tables (--markdown) and the RESULT lines."""
    import argparse

    import yaml

    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reuse", action="store_true", help="analyse the results already in --workdir")
    ap.add_argument("--workdir", type=Path, default=SCRATCH / experiment.stem)
    ap.add_argument("--markdown", action="store_true", help="also print the tables as BENCHMARKS.md shows them")
    args = ap.parse_args()
    config = yaml.safe_load(experiment.read_text())
    name = config["experiment"]["name"]
    if not args.reuse:
        wd = workdir(args.workdir, config, fresh=not (args.workdir / "results").exists())
        (wd / "config.yaml").unlink()
        (wd / "experiment.yaml").write_text(experiment.read_text())
        _, wall = snakemake(wd, f"results/{name}/tables/summary.csv", "--configfile", "experiment.yaml",
                            timeout=6 * 3600)
        print(f"{label} study: {wall:.0f} s wall ({machine()})")
    rep = analyse(args.workdir / "results" / name)
    save_json(rep, args.workdir / f"{label}.json")
    if args.markdown:
        print(markdown_tables(rep) + "\n")
    for line in result_lines(rep):
        print(line)
    return 0

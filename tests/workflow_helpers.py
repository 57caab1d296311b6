"""Run the real workflow in a scratch copy of the repository's workflow files."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TINY = ROOT / "tests" / "configs" / "tiny.yaml"
TIMING = ("s", "h:m:s")  # Snakemake's benchmark columns; and every column measured in seconds (below)


def is_timing(column: str) -> bool:
    """Wall-clock columns, and those computed from them (the full cost converts measured flow seconds to
    epoch-equivalents; speed-ups divide such costs): they differ between any two runs."""
    return column in TIMING or any(w in column for w in ("seconds", "equivalent", "speedup"))


def env() -> dict:
    e = dict(os.environ)
    e["PATH"] = f"{BIN}{os.pathsep}{e.get('PATH', '')}"  # the `infcop` the rules call
    e["PYTHONUNBUFFERED"] = "1"
    return e


def workdir(path: Path, config: dict | None = None, **changes) -> Path:
    """A fresh working directory holding the workflow and `config` (the tiny config by default)."""
    path.mkdir(parents=True, exist_ok=True)
    for f in ("Snakefile", "environment.yml"):
        shutil.copy(ROOT / f, path / f)
    for d in ("workflow", "profiles"):
        shutil.copytree(ROOT / d, path / d, dirs_exist_ok=True)
    cfg = config if config is not None else yaml.safe_load(TINY.read_text())
    for dotted, value in changes.items():
        section, key = dotted.split("__")
        cfg.setdefault(section, {})[key] = value
    (path / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def snakemake(cwd: Path, *args, timeout=900, check=True, extra_env: dict | None = None) -> subprocess.CompletedProcess:
    if "-n" in args and "--printshellcmds" not in args:
        args = (*args, "--printshellcmds")  # tests read the planned commands of dry runs (the profile hides them)
    r = subprocess.run([str(BIN / "snakemake"), *args], cwd=cwd, env={**env(), **(extra_env or {})},
                       capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r


def job_counts(output: str) -> dict:
    """The 'Job stats' table of a (dry) run: rule -> count."""
    counts, inside = {}, False
    for line in output.splitlines():
        if line.startswith("Job stats"):
            inside, counts = True, {}
            continue
        if inside:
            parts = line.split()
            if len(parts) == 2 and parts[1].isdigit():
                if parts[0] == "total":
                    inside = False
                else:
                    counts[parts[0]] = int(parts[1])
    return counts


def mtimes(root: Path, pattern: str) -> dict:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in sorted(root.glob(pattern)) if p.is_file()}


def comparable_tables(results: Path) -> dict:
    """Every table's content with timing columns dropped: equal across repeated or resumed runs."""
    import pandas as pd

    out = {}
    for p in sorted((results / "tables").glob("*.csv")):
        df = pd.read_csv(p)
        out[p.name] = df.drop(columns=[c for c in df.columns if is_timing(c)]).to_dict("records")
    return json.loads(json.dumps(out, default=str))


def infcop(*args, cwd=None) -> subprocess.CompletedProcess:
    """The `infcop` command (this checkout's package), never raising."""
    return subprocess.run([sys.executable, "-m", "infcop", *map(str, args)], cwd=cwd, env=env(), capture_output=True,
                          text=True, timeout=600)


def killed_run(wd: Path, at: str, where: str, *args) -> None:
    """Run Snakemake until the fault point `at` (infcop.running.faults) fires in the stage matching `where`, which
    SIGKILLs the job and Snakemake together (what a node failure or a cluster's kill does)."""
    e = env()
    e.update(INFCOP_KILL_AT=at, INFCOP_KILL_WHERE=where)
    r = subprocess.run([str(BIN / "snakemake"), *args], cwd=wd, env=e, start_new_session=True, capture_output=True,
                       text=True, timeout=900)
    assert r.returncode == -9, f"not killed at {at} {where}: {r.returncode}\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"


def edit_config(wd: Path, changes: dict) -> dict:
    """Set dotted keys ('training.device', 'methods.lth.description') in wd/config.yaml; returns the values
    they had before (None where absent)."""
    path = wd / "config.yaml"
    cfg = yaml.safe_load(path.read_text())
    before = {}
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        node = cfg
        for p in parents:
            node = node.setdefault(p, {})
        before[dotted] = node.get(last)
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return before

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
TIMING = ("train_seconds", "flow_seconds", "total_seconds_mean", "total_seconds_std", "speedup_seconds_vs_lth",
          "speedup_seconds_vs_sap", "s", "h:m:s")


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


def snakemake(cwd: Path, *args, timeout=900, check=True) -> subprocess.CompletedProcess:
    r = subprocess.run([str(BIN / "snakemake"), *args], cwd=cwd, env=env(), capture_output=True, text=True,
                       timeout=timeout)
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
        out[p.name] = df.drop(columns=[c for c in df.columns if c in TIMING]).to_dict("records")
    return json.loads(json.dumps(out, default=str))

"""Reading and checking the tidy tables the figures are drawn from (``results/tables/*.csv``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .. import InfcopError
from .style import isnan, method_colors

KEYS = ["dataset", "arch", "method"]
_TEXT_COLUMNS = ("dataset", "arch", "method", "layer", "metric", "stop_reason", "stops", "pruner")

STOP_PARAMS = {  # stop criterion -> its threshold column in methods.csv
    "infoflow": "infoflow_epsilon",
    "gradflow": "gradflow_epsilon",
    "accuracy": "accuracy_delta",
}


def read(tables_dir: Path, name: str, required) -> pd.DataFrame:
    """Read ``<tables_dir>/<name>.csv``; an empty file gives an empty frame with ``required`` columns.

    A missing file or a missing required column raises InfcopError naming it.
    """
    path = Path(tables_dir) / f"{name}.csv"
    if not path.is_file():
        raise InfcopError(f"table {path} not found")
    try:
        df = pd.read_csv(path, keep_default_na=True)
    except pd.errors.EmptyDataError:
        df = pd.DataFrame()
    if df.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in dict.fromkeys(list(df.columns) + list(required))})
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise InfcopError(f"table {path.name} lacks column(s) {', '.join(missing)}")
    for c in _TEXT_COLUMNS:
        if c in df.columns:
            df[c] = df[c].where(df[c].isna(), df[c].astype(str))
    return df


def read_methods(tables_dir: Path) -> pd.DataFrame:
    """methods.csv with the threshold and budget columns present and numeric."""
    cols = ["method", "pruner", "stops", "infoflow_epsilon", "gradflow_epsilon", "accuracy_delta", "max_epochs"]
    m = read(tables_dir, "methods", ["method"])
    for c in cols:
        if c not in m.columns:
            m[c] = np.nan
    for c in ("infoflow_epsilon", "gradflow_epsilon", "accuracy_delta", "max_epochs"):
        m[c] = pd.to_numeric(m[c], errors="coerce")
    return m


def parse_stops(stops) -> tuple[str, ...]:
    """``'infoflow+accuracy'`` -> ``('accuracy', 'infoflow')``; empty, NaN or 'budget' -> ``()``."""
    if stops is None or isnan(stops):
        return ()
    parts = {p.strip().lower() for p in str(stops).split("+")}
    return tuple(sorted(p for p in parts if p and p not in ("budget", "none", "nan", "fixed")))


def method_info(methods: pd.DataFrame, method: str) -> dict:
    """One method's stop criteria, thresholds, budget and pruner from methods.csv."""
    row = methods[methods["method"] == method]
    if row.empty:
        return {"stops": (), "infoflow_epsilon": np.nan, "gradflow_epsilon": np.nan,
                "accuracy_delta": np.nan, "max_epochs": np.nan, "pruner": None}
    r = row.iloc[0]
    return {"stops": parse_stops(r["stops"]), "infoflow_epsilon": r["infoflow_epsilon"],
            "gradflow_epsilon": r["gradflow_epsilon"], "accuracy_delta": r["accuracy_delta"],
            "max_epochs": r["max_epochs"], "pruner": r["pruner"]}


def experiment_colors(methods: pd.DataFrame, *dfs: pd.DataFrame) -> dict[str, str]:
    """Colours keyed by every method the experiment knows (methods.csv plus the data tables)."""
    names = set(methods["method"].dropna().astype(str)) if "method" in methods else set()
    for d in dfs:
        if "method" in d:
            names |= set(d["method"].dropna().astype(str))
    return method_colors(names)


def panels(df: pd.DataFrame) -> list[tuple[str, str]]:
    """The (dataset, arch) pairs of a table, sorted."""
    if df.empty:
        return []
    return sorted({(str(a), str(b)) for a, b in zip(df["dataset"], df["arch"])})


def sel(df: pd.DataFrame, **eq) -> pd.DataFrame:
    """Rows where every ``column == value`` holds (an empty frame stays empty)."""
    if df.empty:
        return df
    mask = np.ones(len(df), dtype=bool)
    for k, v in eq.items():
        mask &= (df[k] == v).to_numpy()
    return df[mask]


def as_bool(s: pd.Series) -> pd.Series:
    """True/False, 'True'/'False', 1/0 -> bool (empty -> False)."""
    if s.dtype == bool:
        return s
    return s.map(lambda v: str(v).strip().lower() in ("true", "1", "yes", "1.0"))


IT_COLS = KEYS + ["seed", "iteration", "remaining_weights", "test_accuracy", "epochs_trained"]


def iterations(tables_dir: Path, extra=()) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """iterations.csv (numeric columns as numbers), methods.csv, and the method colours."""
    it = read(tables_dir, "iterations", IT_COLS + list(extra))
    methods = read_methods(tables_dir)
    if not it.empty:
        it = it.copy()
        for c in ["iteration", "remaining_weights", "test_accuracy", "epochs_trained", *extra]:
            it[c] = pd.to_numeric(it[c], errors="coerce")
    return it, methods, experiment_colors(methods, it)

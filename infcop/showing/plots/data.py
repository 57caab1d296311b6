"""Reading and checking the tidy tables the figures are drawn from (``results/tables/*.csv``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ... import InfcopError
from .style import isnan, method_colors

KEYS = ["dataset", "arch", "method"]
_TEXT_COLUMNS = ("dataset", "arch", "method", "layer", "metric", "stop_reason", "stops", "pruner", "criterion",
                 "name", "measure", "form", "control_group", "role", "level_label", "verdict", "rewind", "note",
                 "identical_to",
                 "infoflow_threshold", "gradflow_threshold", "infoflow_measure")

def read(tables_dir: Path, name: str, required, optional: bool = False) -> pd.DataFrame:
    """Read ``<tables_dir>/<name>.csv``; an empty file gives an empty frame with ``required`` columns.

    A missing file (unless ``optional``) or a missing required column raises InfcopError naming it.
    """
    path = Path(tables_dir) / f"{name}.csv"
    if optional and not path.is_file():
        return pd.DataFrame({c: pd.Series(dtype=object) for c in required})
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


_METHOD_NUMBERS = ("infoflow_epsilon", "gradflow_epsilon", "accuracy_delta", "max_epochs", "min_epochs",
                   "infoflow_epsilon_effective", "gradflow_epsilon_effective")
_METHOD_TEXT = ("pruner", "stops", "infoflow_threshold", "gradflow_threshold", "infoflow_measure", "rewind",
                "control_group")


def read_methods(tables_dir: Path) -> pd.DataFrame:
    """methods.csv with the threshold, budget and control columns present (numbers numeric, flags bool)."""
    m = read(tables_dir, "methods", ["method"])
    for c in (*_METHOD_NUMBERS, *_METHOD_TEXT, "control"):
        if c not in m.columns:
            m[c] = np.nan
    for c in _METHOD_NUMBERS:
        m[c] = pd.to_numeric(m[c], errors="coerce")
    m["control"] = as_bool(m["control"]) if len(m) else m["control"]
    return m


def parse_threshold(text) -> tuple[str, float]:
    """'ε = 0.1' -> ('epsilon', 0.1); 'auto (noise floor)' -> ('auto', nan); 'recover 0.5' -> ('recover', 0.5);
    'patience 2' -> ('patience', 2.0); empty -> ('', nan)."""
    if text is None or isnan(text) or not str(text).strip():
        return "", np.nan
    t = str(text).strip().lower()
    for form in ("auto", "recover", "patience"):
        if t.startswith(form):
            num = t[len(form):].split("(")[0].strip()
            try:
                return form, float(num) if num else np.nan
            except ValueError:
                return form, np.nan
    try:
        return "epsilon", float(t.replace("ε", "").replace("=", "").strip())
    except ValueError:
        return t, np.nan


def parse_stops(stops) -> tuple[str, ...]:
    """``'infoflow+accuracy'`` -> ``('accuracy', 'infoflow')``; empty, NaN or 'budget' -> ``()``."""
    if stops is None or isnan(stops):
        return ()
    parts = {p.strip().lower() for p in str(stops).split("+")}
    return tuple(sorted(p for p in parts if p and p not in ("budget", "none", "nan", "fixed")))


def method_info(methods: pd.DataFrame, method: str) -> dict:
    """One method's row of methods.csv as a dict (NaN where unknown), its stop criteria parsed."""
    row = methods[methods["method"] == method]
    cols = [*_METHOD_NUMBERS, *_METHOD_TEXT, "control"]
    info = {c: np.nan for c in cols} if row.empty else {c: row.iloc[0][c] for c in cols if c in row.columns}
    info["stops"] = parse_stops(info.get("stops"))
    if isnan(info.get("pruner", np.nan)):
        info["pruner"] = None
    return info


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


def budget_groups(methods: pd.DataFrame, order) -> list[tuple[float, list[str]]]:
    """Each shown method's effective epoch budget (max_epochs), grouped: [(budget, methods), ...].

    A budget shared only by fixed-budget controls is left out (their own curves show it).
    """
    m = methods[methods["method"].isin(order)].dropna(subset=["max_epochs"])
    out = []
    for b, g in m.groupby("max_epochs", sort=True):
        if not g["control"].fillna(False).astype(bool).all() or len(m["max_epochs"].unique()) == 1:
            out.append((float(b), [x for x in order if x in set(g["method"])]))
    return out


def budget_label(budget: float, names: list[str], all_shown: bool) -> str:
    if all_shown:
        return f"epoch budget ({budget:g})"
    return f"epoch budget {budget:g}: {', '.join(names)}"

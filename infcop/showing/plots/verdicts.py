"""verdicts.pdf: the decision, as a forest plot.

One panel per (dataset, arch, control group with a curve): for every matched level (a block of rows,
sparsest last) and every method with a stop criterion (a row), the seed-paired difference between its test
accuracy and the fixed-budget curve's at its full cost, with its one-sided 95% bounds; the equivalence
margin (never below one test image) as a shaded band around zero; the verdict as a word at the right."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from . import data as D
from .style import figure_fn, method_order, new_figure, no_data

SUMMARY_COLS = ["dataset", "arch", "method", "level", "level_label", "control_group", "verdict", "delta",
                "delta_lo", "delta_hi", "margin_pp"]
OPTIONAL_COLS = {"verdict_against": "", "delta_upper": np.nan}  # summaries written before the bracket lack them
WORD_COLOR = {"better": "#1b7837", "worse": "#b2182b", "equivalent": "#2166ac", "inconclusive": "0.35",
              "dominated": "#8c510a", "identical": "0.45", "n/a": "0.6"}


def word_of(r) -> str:
    """'dominated by sap_fixed2', 'identical to sap_fixed1', or the verdict itself."""
    against = r.verdict_against if isinstance(getattr(r, "verdict_against", None), str) else ""
    link = {"dominated": "by", "identical": "to"}.get(r.verdict)
    return f"{r.verdict} {link} {against}" if link and against else r.verdict


def rows_of(su: pd.DataFrame) -> pd.DataFrame:
    """The judged rows of one panel, ordered level by level (densest first), methods in the figures' order."""
    su = su[~su["verdict"].isin(["control"])].copy()
    order = {m: i for i, m in enumerate(method_order(su["method"].unique()))}
    su["_o"] = su["method"].map(order)
    return su.sort_values(["level", "_o"], ascending=[False, True])


def _panel(ax, su: pd.DataFrame, title: str):
    rows = rows_of(su)
    margin = float(pd.to_numeric(rows["margin_pp"], errors="coerce").max())
    y, labels, ys_level = 0.0, [], []
    xs = [margin, -margin]
    for lv, g in rows.groupby("level", sort=False):
        ys_level.append((y, g["level_label"].iloc[0]))
        for r in g.itertuples():
            d, lo, hi = (100 * float(pd.to_numeric(v, errors="coerce")) for v in (r.delta, r.delta_lo, r.delta_hi))
            color = WORD_COLOR.get(r.verdict, "0.5")
            if np.isfinite(lo) and np.isfinite(hi):
                ax.plot([lo, hi], [y, y], color=color, lw=1.6, solid_capstyle="butt", gid=f"bounds-{r.method}")
                xs += [lo, hi]
            if np.isfinite(d):
                ax.plot([d], [y], "o", color=color, ms=4.5, gid=f"delta-{r.method}")
                xs.append(d)
            up = 100 * float(pd.to_numeric(getattr(r, "delta_upper", np.nan), errors="coerce"))
            if np.isfinite(up) and np.isfinite(d) and abs(up - d) > 1e-9:  # the bracket: Δ to its upper bound too
                ax.plot([up], [y], "|", color=color, ms=7, mew=1.4, gid=f"upper-{r.method}")
                xs.append(up)
            ax.annotate(word_of(r), (1.0, y), xycoords=("axes fraction", "data"), xytext=(4, 0),
                        textcoords="offset points", va="center", fontsize=8, color=color, fontweight="bold")
            labels.append((y, r.method))
            y -= 1.0
        y -= 0.6  # a gap between levels
    ax.axvspan(-margin, margin, color="#2166ac", alpha=0.12, lw=0, gid="margin")
    ax.axvline(0, color="0.3", lw=0.8)
    ax.set_yticks([p for p, _ in labels], [m for _, m in labels], fontsize=8)
    for p, lab in ys_level:
        ax.annotate(f"{lab} weights", (0.0, p + 0.55), xycoords=("axes fraction", "data"), fontsize=7.5,
                    color="0.25", style="italic")
    span = max(abs(x) for x in xs if np.isfinite(x)) if xs else 1.0
    ax.set_xlim(-1.15 * span, 1.15 * span)
    ax.set_ylim(y + 0.4, 1.2)
    ax.set_xlabel("test accuracy − the control curve's lower bound at the method's full cost (pp; tick: − its upper "
                  f"bound); band: ±{margin:.2g} pp margin")
    ax.set_title(title, fontsize=9)
    ax.grid(axis="x", alpha=0.3)


@figure_fn
def verdicts(tables_dir: Path):
    """Per level and method: the seed-paired difference to the control curve, the margin and the verdict."""
    su = D.read(tables_dir, "summary", SUMMARY_COLS)
    if su.empty:
        return no_data("Verdicts against the fixed-budget controls", "summary.csv")
    su = su.assign(**{c: v for c, v in OPTIONAL_COLS.items() if c not in su})
    # the CSV reader takes the word "n/a" for a missing value (and the column for floats when all are)
    su["verdict"] = su["verdict"].astype(object).fillna("n/a")
    for c in ("level", "delta", "delta_lo", "delta_hi", "margin_pp", "delta_upper"):
        su[c] = pd.to_numeric(su[c], errors="coerce")
    groups = []
    for key, g in su.groupby(["dataset", "arch", "control_group"], sort=True):
        if (g["verdict"] == "control").any() and (~g["verdict"].isin(["control", "n/a"])).any():
            groups.append((key, g))
    if not groups:
        return no_data("Verdicts against the fixed-budget controls", "summary.csv (no method judged against a curve)")
    heights = [0.32 * len(rows_of(g)) + 0.3 * g["level"].nunique() + 1.4 for _, g in groups]
    fig = new_figure(9.0, sum(heights) + 0.8)
    fig.suptitle("Verdicts: each stop criterion against the fixed-budget controls, seed-paired, one-sided 95% bounds")
    axes = fig.subplots(len(groups), 1, squeeze=False, gridspec_kw={"height_ratios": heights})
    for ax, ((ds, arch, group), g) in zip(axes[:, 0], groups):
        _panel(ax, g, f"{ds} / {arch} — controls of {group}")
    return fig

"""Paper-style figures of an Inf-CoP experiment, drawn from its tidy tables (``results/tables/*.csv``).

The figure names live here, once: ``FIGURES`` maps each name to a ``FigureSpec`` (the module and
function that draw it, and a one-line description). Importing this package is cheap: it imports
neither matplotlib nor seaborn nor torch, so the CLI and the Snakefile can read the names at start-up.

* ``make_figure(name, tables_dir, out_pdf)`` draws figure ``name`` and writes ``out_pdf`` and its PNG(s),
  each atomically;
* ``figure_outputs(name, out_pdf, methods)`` lists the files that call writes (for the workflow);
* ``FIGURES[name](tables_dir)`` returns the matplotlib Figures (one per PDF page), e.g. for a notebook.

Conventions shared by every figure: mean over seeds with a deterministic 95 % Student-t interval;
one colour per method, the same in every figure (``method_colors``); one panel (row) per
(dataset, arch); legends outside the axes.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType


@dataclass(frozen=True)
class FigureSpec:
    """Where a figure is drawn: ``infcop.showing.plots.<module>.<function>(tables_dir) -> list of Figures``."""

    name: str
    module: str
    function: str
    description: str
    pngs: str = "first"  # "first": <stem>.png of page 1; "per_method": <stem>-<method>.png of its pages

    def load(self):
        return getattr(importlib.import_module(f"{__name__}.{self.module}"), self.function)

    def __call__(self, tables_dir) -> list:
        return self.load()(tables_dir)


_SPECS = (
    FigureSpec("similarity", "similarity", "similarity",
               "per method and iteration, from epoch 0: flow distances against the stop thresholds, per-layer "
               "flows and validation accuracy", pngs="per_method"),
    FigureSpec("connectivity", "flows", "connectivity",
               "information flow (connectivity per layer pair) at the end of each IMP iteration"),
    FigureSpec("gradient", "flows", "gradient",
               "gradient flow (mean |dL/dW| per layer) at the end of each IMP iteration"),
    FigureSpec("comparison", "comparison", "comparison",
               "test accuracy, retraining epochs and remaining weights against IMP iteration"),
    FigureSpec("accuracy", "sparsity", "accuracy", "test accuracy against remaining weights"),
    FigureSpec("epochs", "comparison", "epochs", "retraining epochs per IMP iteration and method"),
    FigureSpec("cost", "sparsity", "cost",
               "cumulative retraining epochs and seconds against remaining weights"),
    FigureSpec("ablation", "ablation", "ablation",
               "final accuracy and total retraining epochs against a swept stop threshold"),
    FigureSpec("verdicts", "verdicts", "verdicts",
               "the decision: per level and method, the seed-paired difference to the fixed-budget curve at "
               "the method's full cost, the margin and the verdict"),
    FigureSpec("frontier", "frontier", "frontier",
               "test accuracy against the full cost (epoch-equivalents) at matched sparsity, fixed-budget "
               "controls as a curve, every seed a point"),
)

FIGURES = MappingProxyType({s.name: s for s in _SPECS})


def _check(name: str) -> FigureSpec:
    if name not in FIGURES:
        raise ValueError(f"unknown figure {name!r}; known figures: {', '.join(FIGURES)}")
    return FIGURES[name]


def figure_outputs(name: str, out_pdf, methods=()) -> list[Path]:
    """The files ``make_figure(name, tables_dir, out_pdf)`` writes.

    The PDF, and beside it ``<stem>.png`` (page 1), or for the similarity dashboard one
    ``<stem>-<method>.png`` per method (``methods``: those of the tables' methods.csv), no ``<stem>.png``.
    """
    spec = _check(name)
    out_pdf = Path(out_pdf)
    if spec.pngs == "per_method":
        return [out_pdf] + [out_pdf.with_name(f"{out_pdf.stem}-{m}.png") for m in methods]
    return [out_pdf, out_pdf.with_suffix(".png")]


def make_figure(name: str, tables_dir, out_pdf) -> None:
    """Draw figure ``name`` from the tables in ``tables_dir``; write ``out_pdf`` and its PNG(s) atomically.

    See ``figure_outputs`` for the PNGs.
    """
    spec = _check(name)
    from .output import write_figure

    out_pdf = Path(out_pdf)
    pages = spec(Path(tables_dir))
    if spec.pngs == "per_method":
        pngs = {}
        for i, fig in enumerate(pages):
            if fig.get_label():
                pngs.setdefault(out_pdf.with_name(f"{out_pdf.stem}-{fig.get_label()}.png"), []).append(i)
    else:
        pngs = {out_pdf.with_suffix(".png"): [0]}
    write_figure(pages, out_pdf, pngs)


_LAZY = {  # helpers re-exported without importing their modules up front
    "CANONICAL_COLORS": "style", "CANONICAL_METHODS": "style", "method_colors": "style",
    "method_order": "style", "mean_ci": "stats", "parse_stops": "data",
    "find_epsilon_sweeps": "ablation", "EpsilonSweep": "ablation",
}


def __getattr__(attr):
    if attr in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[attr]}"), attr)
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))

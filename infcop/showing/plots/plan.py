"""Which figures an experiment has something to draw in, decided from its method presets alone (before any
run): the workflow requests only those, so neither the results nor the report carry a placeholder.

* ``ablation`` needs a threshold sweep: two or more methods that differ only in one stop threshold
  (``find_epsilon_sweeps`` on the methods table, as the figure itself finds them);
* ``frontier`` needs a fixed-budget curve: two or more budget-only methods (controls) of one control group
  (pruner, rewind point, recipe);
* ``verdicts`` needs such a curve, a method with a stop criterion in the same group to place on it, and two or
  more seeds (a verdict is a seed-paired interval).

Every other figure draws the runs themselves. A figure asked for by name (``snakemake
results/figures/ablation.pdf``) is still drawn: it then says what it lacks.
"""
from __future__ import annotations


def missing(methods: dict, settings: dict, seeds: int = 2) -> dict[str, str]:
    """figure -> why it has nothing to draw, for the figures that this experiment's presets (``methods``:
    name -> preset, ``settings``: infcop.experiments.config.settings_of) and number of ``seeds`` leave empty."""
    from ...judging.tables import method_table
    from .ablation import find_epsilon_sweeps

    table = method_table(methods, settings)
    out = {}
    if not find_epsilon_sweeps(table):
        out["ablation"] = "no threshold sweep (methods that differ only in one stop threshold)"
    groups: dict = {}
    for r in table.itertuples():
        groups.setdefault(r.control_group, []).append(bool(r.control))
    curves = {g: roles for g, roles in groups.items() if sum(roles) >= 2}
    if not curves:
        out["frontier"] = "no fixed-budget curve (two or more budget-only methods of one pruner and retraining recipe)"
    if not any(not all(roles) for roles in curves.values()):
        out["verdicts"] = "no method with a stop criterion beside a fixed-budget curve of its pruner and retraining recipe"
    elif seeds < 2:
        out["verdicts"] = "one seed: a verdict needs a seed-paired interval"
    return out


def planned(methods: dict, settings: dict, seeds: int = 2) -> list[str]:
    """The figures (names of infcop.showing.plots.FIGURES, in its order) that the experiment has something to draw in."""
    from . import FIGURES

    skip = missing(methods, settings, seeds)
    return [f for f in FIGURES if f not in skip]

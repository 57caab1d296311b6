"""A method, resolved once: the preset of `methods.<name>` checked (infcop.experiments.config.check_method),
its defaults filled in from the training settings, and frozen into a typed value. Every layer after the
boundary (the stages, the cluster requests, the tables) takes a `Method` and reads its fields; none reads the
preset's keys again. A new recipe key touches `resolve_method`, its check and the one place that uses it.

The fields hold frozen values (mappings as read-only views, lists as tuples); `thaw` gives the plain dicts
and lists the science functions take."""
from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Mapping


def freeze(value):
    """A read-only copy: mappings as MappingProxyType, lists as tuples, all the way down."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value):
    """A plain copy of a frozen value: dicts and lists, as the presets hold them."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [thaw(v) for v in value]
    return value


@dataclass(frozen=True)
class Recipe:
    """How a pruned network is retrained. None means the training settings' own (schedule, rate, optimizer)."""

    rewind: Any            # 'dense', 'init', 'reinit', 'none' or {'epoch': k}
    schedule: Any = None   # the preset's learning-rate schedule spec
    lr: Any = None         # a rate, 'allr' or 'final'
    optimizer: Any = None  # the preset's optimizer spec
    anneal: Any = None     # anneal_on_stop: {'epochs': k} or {'share': s}
    gmp: Any = None        # gradual pruning during the retraining: {'start', 'end', 'every'}

    @property
    def rewind_epoch(self) -> int:
        """k of a late rewinding ({epoch: k}), else 0."""
        return int(self.rewind["epoch"]) if isinstance(self.rewind, Mapping) else 0


@dataclass(frozen=True)
class Method:
    """One method of an experiment: its pruner, its retraining recipe, its stop criteria and budget."""

    name: str
    pruner: Mapping        # the pruner's name and every parameter, defaults filled in
    recipe: Recipe
    stop: tuple            # the stop criteria, normalised (each a mapping with its name and parameters)
    max_epochs: int        # the retraining budget per iteration (the preset's, else training.max_epochs)
    min_epochs: int        # no criterion stops a retraining before this (the preset's, else training's)
    iterations: int | None  # the preset's own IMP iteration count; None: the experiment's
    preset: Mapping        # the checked preset, as recorded in metrics.json and keyed in a stage's settings

    @property
    def gradual(self) -> bool:
        """Whether the retraining itself prunes (GMP), instead of one prune before it."""
        return bool(self.recipe.gmp)


def resolve_method(name: str, preset: dict, training: Mapping) -> Method:
    """The boundary: check `preset` and freeze it into a Method, budgets from `training` where it sets none."""
    from .config import check_method

    m = check_method(name, preset)
    return Method(
        name=name,
        pruner=freeze(m["pruner"]),
        recipe=Recipe(rewind=freeze(m["rewind"]), schedule=freeze(m.get("schedule")), lr=m.get("lr"),
                      optimizer=freeze(m.get("optimizer")), anneal=freeze(m.get("anneal_on_stop")),
                      gmp=freeze(m.get("gmp"))),
        stop=freeze(m["stop"]),
        max_epochs=m.get("max_epochs", training["max_epochs"]),
        min_epochs=m.get("min_epochs", training["min_epochs"]),
        iterations=m.get("iterations"),
        preset=freeze(m),
    )

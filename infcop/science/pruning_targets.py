"""Remaining-weight targets: a pruner's `target` param (a linear or geometric schedule, or one fraction per
iteration), the fraction it asks for after iteration k of K, and how many survivors go to reach it. A pruner
takes a target by listing TARGET among its params (infcop.science.pruners). Cheap to import (no torch)."""
from __future__ import annotations

import math

from .. import InfcopError
from .registry import Param, SpecParam


def target_count(masks: list, keep: float) -> int:
    """Survivors of `masks` to remove so that the fraction `keep` of all their weights remains (the
    nearest whole number of weights; none when fewer remain already)."""
    total = sum(m.numel() for m in masks)
    alive = sum(int(m.sum()) for m in masks)
    return max(0, alive - math.floor(keep * total + 0.5))


TARGET_SCHEDULES = {"linear": lambda k, n, s: 1 - k * (1 - s) / n,  # remaining fraction after iteration k of n
                    "geometric": lambda k, n, s: s ** (k / n)}
FRACTION = Param("final", "number", lo=0, hi=1, lo_open=True, hi_open=True)


class TargetParam(SpecParam):
    """`target`: the remaining-weight fraction after each iteration, {name: linear | geometric, final: s} or
    an explicit list (one per iteration, strictly decreasing); overrides `rate`."""

    def resolved(self, key: str, value) -> object:
        problem = None
        if isinstance(value, dict):
            if set(value) != {"name", "final"} or value["name"] not in TARGET_SCHEDULES:
                problem = "a schedule needs exactly 'name' (linear or geometric) and 'final'"
            elif not FRACTION.valid(value["final"]):
                problem = "'final' must be a number in (0, 1)"
        elif isinstance(value, list) and value:
            if not all(FRACTION.valid(v) for v in value):
                problem = "every fraction must be a number in (0, 1)"
            elif any(a <= b for a, b in zip(value, value[1:])):
                problem = "the fractions must decrease strictly (a pruner cannot regrow weights)"
        else:
            problem = "neither a schedule nor a non-empty list"
        if problem:
            raise InfcopError(f"config key '{key}': bad value {value!r} ({problem}); allowed: {self.allowed()}")
        return value

    def allowed(self) -> str:
        return ("{name: linear | geometric, final: s} with s in (0, 1), the remaining-weight fraction after the "
                "method's last iteration, or a list of remaining fractions in (0, 1), strictly decreasing, one per "
                "iteration")

    def json_schema(self) -> dict:
        return {"oneOf": [{"type": "object", "additionalProperties": False, "required": ["name", "final"],
                           "properties": {"name": {"enum": list(TARGET_SCHEDULES)}, "final": FRACTION.json_schema()}},
                          {"type": "array", "minItems": 1, "items": FRACTION.json_schema()}]}


TARGET = TargetParam("target", "choice", default=None,
                     help="remaining-weight fraction after each iteration (overrides rate)")


def remaining_target(target, iteration: int | None, iterations: int | None, key: str = "pruner.target") -> float:
    """The remaining fraction of all prunable weights `target` asks for after iteration k of K."""
    if iteration is None or iterations is None:
        raise InfcopError(f"config key '{key}': a target needs the iteration k and the method's iteration count K "
                          "(the preset's 'iterations', which an experiment fills in from experiment.iterations; in "
                          "Python, prune(..., iteration=k, iterations=K))")
    check_target_length(key, target, iterations)
    if not 1 <= iteration <= iterations:
        raise InfcopError(f"config key '{key}': iteration {iteration} is outside the method's 1..{iterations}")
    if isinstance(target, list):
        return float(target[iteration - 1])
    return TARGET_SCHEDULES[target["name"]](iteration, iterations, target["final"])


def check_target_length(key: str, target, iterations: int) -> None:
    if isinstance(target, list) and len(target) != iterations:
        raise InfcopError(f"config key '{key}': the list has {len(target)} fractions but the method runs "
                          f"{iterations} IMP iterations (its preset's 'iterations', else experiment.iterations); "
                          f"allowed: a list of exactly {iterations} remaining fractions, one per iteration, or "
                          "{name: linear | geometric, final: s}")


def check_rate_or_target(params: dict, key: str) -> None:
    has = [k for k in ("rate", "target") if params.get(k) is not None]
    if len(has) != 1:
        raise InfcopError(f"config key '{key}': pruner '{params['name']}' needs exactly one of 'rate' (a number in "
                          f"(0, 1): the fraction of survivors removed each iteration) and 'target' (a remaining-"
                          f"weight schedule); got {' and '.join(has) or 'neither'}")

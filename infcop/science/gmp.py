"""Gradual magnitude pruning (Zhu & Gupta 2017, "To prune, or not to prune"): prune during one training run
on a cubic schedule instead of between retrainings. A preset with `gmp: {start, end, every}`, a pruner with
`target: [r_f]` (the remaining fraction at the end) and `iterations: 1` trains once from its rewind point;
after every `every`-th optimisation step from `start` to `end` (shares of the training's N steps) its pruner
removes survivors down to the remaining fraction of all prunable weights

    r_j = r_f + (r_i - r_f) * (1 - j / n)^3,   j = 1 .. n,

Zhu & Gupta's s_t = s_f + (s_i - s_f)(1 - (t - t0) / (n dt))^3 in remaining weights (r = 1 - s), r_i the
network's remaining fraction when the training starts, prune steps t_j = t0 + round(j (t1 - t0) / n) with
t0 = round(start N), t1 = round(end N) and n = max(1, round((t1 - t0) / every)). Masked weights stay zero in
between as in every training; the training after `end` fine-tunes the final mask."""
from __future__ import annotations

from .. import InfcopError
from .registry import Param, SpecParam

START = Param("start", "number", default=0.0, lo=0, hi=1, hi_open=True, help="share of the steps before the first prune")
END = Param("end", "number", default=0.75, lo=0, hi=1, lo_open=True, help="share of the steps at the last prune")
EVERY = Param("every", "integer", default=100, lo=1, help="optimisation steps between two prunes (Zhu & Gupta's dt)")


class GmpParam(SpecParam):
    """`gmp`: {start, end, every} of the cubic schedule, defaults filled in."""

    def resolved(self, key: str, value) -> dict:
        if not isinstance(value, dict) or set(value) - {"start", "end", "every"}:
            raise InfcopError(f"config key '{key}': bad value {value!r}; allowed: {self.allowed()}")
        out = {}
        for p in (START, END, EVERY):
            v = value.get(p.name, p.default)
            p.check(f"{key}.{p.name}", v)
            out[p.name] = v
        if out["start"] >= out["end"]:
            raise InfcopError(f"config key '{key}': start {out['start']} must be before end {out['end']}")
        return out

    def allowed(self) -> str:
        return "a mapping {start: [0, 1) (0), end: (0, 1] (0.75), every: steps >= 1 (100)} with start < end"

    def json_schema(self) -> dict:
        return {"type": "object", "additionalProperties": False,
                "properties": {p.name: p.json_schema() for p in (START, END, EVERY)}}


def prune_steps(spec: dict, steps: int, start_remaining: float, final: float) -> dict[int, float]:
    """{steps done: remaining fraction to prune to} of the cubic schedule over a training of `steps` steps."""
    t0, t1 = round(spec["start"] * steps), round(spec["end"] * steps)
    t1 = max(t1, t0 + 1)
    n = max(1, round((t1 - t0) / spec["every"]))
    return {max(1, t0 + round(j * (t1 - t0) / n)): final + (start_remaining - final) * (1 - j / n) ** 3
            for j in range(1, n + 1)}


class GradualPruner:
    """Applies the cubic schedule during a training: `after(done, model, masks, enforcer)` after each step."""

    def __init__(self, spec: dict, pruner: dict, steps: int, start_remaining: float, seed: int = 0):
        final = pruner["target"][0] if isinstance(pruner.get("target"), list) else None
        if final is None:
            raise InfcopError("gmp needs its pruner's final remaining fraction as `target: [r_f]`")
        self.events = prune_steps(spec, steps, start_remaining, final)
        self.pruner, self.seed = {k: v for k, v in pruner.items() if k != "target"}, seed

    def after(self, done: int, model, masks: dict, enforcer) -> None:
        r = self.events.get(done)
        if r is None:
            return
        from .pruners import prune

        new = prune(model, masks, {**self.pruner, "target": [r]}, seed=self.seed, iteration=1, iterations=1)
        for k in masks:
            masks[k].copy_(new[k].to(masks[k].device))
        enforcer.refresh(masks)
        enforcer.apply_weights()

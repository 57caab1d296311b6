"""Learning-rate schedules: the rate of each optimisation step of a training, registered in SCHEDULES like
pruners and stop criteria. A schedule is `fn(step, steps, lr, params, dense) -> rate` for the 0-based `step`
of a training whose schedule spans `steps` steps and starts from rate `lr`; `dense` describes the dense run
({'steps': S, 'lr': ..., 'schedule': {...}}) for schedules that replay it. A pure function of the step, so
that a resumed training is exact.

Retraining recipes of the literature, as a preset spells them:
- constant rate (the study's; fine-tuning (Han et al. 2015) when `rewind: none` and `lr: final`, the dense
  run's last rate);
- `schedule: linear` with `lr: allr` (Zimmer, Spiegel & Pokutta, ICLR 2023, "BIMP"): step by step as
  BIMP's `define_retrain_schedule` does it -- a cosine warm-up from 0 over the first floor(warmup * N) of the N
  steps, then a linear decay to 0, the start rate set by how much the prune moved the weights;
- `schedule: replay` with `rewind: none` (learning-rate rewinding, Renda, Frankle & Carbin, ICLR 2020:
  keep the weights, replay the dense run's last N steps' rates); with a `step` dense schedule (drops at
  50% and 75% of training, as Renda et al. and open_lth train) a long enough replay includes a drop."""
from __future__ import annotations

import math

from .. import InfcopError
from .registry import Param, Registry, SpecParam

SCHEDULES = Registry("schedule")


@SCHEDULES.register("constant", label="constant")
def constant(step: int, steps: int, lr: float, params: dict, dense: dict | None = None) -> float:
    """The same rate every step."""
    return lr


@SCHEDULES.register("cosine", label="cosine")
def cosine(step: int, steps: int, lr: float, params: dict, dense: dict | None = None) -> float:
    """Cosine from `lr` towards 0 over the steps (torch's CosineAnnealingLR stepped per batch, eta_min 0)."""
    return 0.5 * lr * (1 + math.cos(math.pi * step / max(steps, 1)))


@SCHEDULES.register("linear", params=[
    Param("warmup", "number", default=0.0, lo=0, hi=1, hi_open=True,
          help="share of the steps over which the rate rises from 0 (BIMP's cosine warm-up) before it decays")],
    label="linear decay")
def linear(step: int, steps: int, lr: float, params: dict, dense: dict | None = None) -> float:
    """BIMP's retraining schedule, step for step (ZIB-IOL/BIMP `define_retrain_schedule`: a CosineAnnealingLR
    from 0 to `lr` over W = floor(warmup * N) steps, then LinearLR from `lr` to 0 over the R = N - W others,
    chained by its SequentialSchedulers). Step i trains at
      W = 0:   lr * (1 - i / N)
      i <= W:  lr * (1 - cos(pi * i / W)) / 2
      i > W:   lr * (1 - (i - W - 1) / R)
    (the chain's milestone W + 1 holds the peak for steps W and W + 1, as BIMP's code does)."""
    n = max(int(steps), 1)
    w = math.floor(float(params.get("warmup", 0.0)) * n)
    if w == 0:
        return lr * max(0.0, 1.0 - step / n)
    if step <= w:
        return lr * (1.0 - math.cos(math.pi * step / w)) / 2.0
    return lr * max(0.0, 1.0 - (step - w - 1) / (n - w))


class MilestonesParam(SpecParam):
    """`milestones`: the shares of a training at which a step schedule drops, a list increasing in (0, 1)."""

    def resolved(self, key: str, value) -> list:
        ok = isinstance(value, (list, tuple)) and len(value) > 0 and all(
            isinstance(m, (int, float)) and not isinstance(m, bool) and 0 < m < 1 for m in value)
        if not ok or any(b <= a for a, b in zip(value, list(value)[1:])):
            raise InfcopError(f"config key '{key}': bad value {value!r}; allowed: {self.allowed()}")
        return [float(m) for m in value]

    def allowed(self) -> str:
        return "a list of shares of the training in (0, 1), increasing, e.g. [0.5, 0.75]"

    def json_schema(self) -> dict:
        return {"type": "array", "minItems": 1,
                "items": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1}}


@SCHEDULES.register("step", params=[
    MilestonesParam("milestones", "choice", default=(0.5, 0.75),
                    help="shares of the steps at which the rate drops (Renda et al.: 50% and 75%)"),
    Param("gamma", "number", default=0.1, lo=0, hi=1, lo_open=True, hi_open=True,
          help="the factor of each drop")], label="step decay")
def step_decay(step: int, steps: int, lr: float, params: dict, dense: dict | None = None) -> float:
    """Multi-step decay (Renda et al. 2020; open_lth): `lr` times `gamma` for every milestone share m of the
    N steps already reached (step >= m * N)."""
    n = max(int(steps), 1)
    drops = sum(step >= m * n for m in params.get("milestones", (0.5, 0.75)))
    return lr * float(params.get("gamma", 0.1)) ** drops


@SCHEDULES.register("replay", label="learning-rate rewinding", needs_dense=True)
def replay(step: int, steps: int, lr: float, params: dict, dense: dict | None = None) -> float:
    """The dense run's last `steps` rates (step i replays dense step S - N + i; a retraining longer than the
    dense run starts at its first step). `lr` is not used: the rates are the dense run's."""
    if not dense:
        raise InfcopError("schedule 'replay' needs the dense run's schedule")
    total = int(dense["steps"])
    spec = dense["schedule"]
    return SCHEDULES.get(spec["name"]).obj(max(0, total - steps + step), total, float(dense["lr"]), spec, None)


def resolve_schedule(key: str, spec) -> dict:
    """A schedule name or {name: ..., params}, checked, with defaults filled in."""
    return SCHEDULES.resolve(key, spec)


def check_dense_schedule(key: str, spec) -> dict:
    """The dense run's schedule (training.schedule): any schedule that does not itself replay one."""
    out = resolve_schedule(key, spec)
    if SCHEDULES.get(out["name"]).info.get("needs_dense"):
        raise InfcopError(f"config key '{key}': schedule '{out['name']}' replays the dense run and cannot be the "
                          "dense run's own; allowed: " + ", ".join(
                              e.name for e in SCHEDULES if not e.info.get("needs_dense")))
    return out


def lr_at(step: int, steps: int, lr: float, spec, dense: dict | None = None) -> float:
    """The rate of 0-based `step` of a training whose schedule spans `steps` steps under schedule `spec`."""
    spec = resolve_schedule("schedule", spec)
    return float(SCHEDULES.get(spec["name"]).obj(step, steps, lr, spec, dense))


def final_rate(dense: dict) -> float:
    """The dense run's last step's rate (fine-tuning's rate: `lr: final`)."""
    total = int(dense["steps"])
    return lr_at(total - 1, total, float(dense["lr"]), dense["schedule"])


def anneal_rate(step: int, steps: int, start: float) -> float:
    """`anneal_on_stop`: after a stop rule fired, `steps` more steps decaying linearly from `start` to 0 (BIMP's
    decay without warm-up), so that a stopped retraining ends annealed as a fixed budget's does."""
    return start * max(0.0, 1.0 - step / max(steps, 1))


def allr(lr_max: float, moved: float, pruned_share: float, budget: float, dense_epochs: int) -> float:
    """ALLR's start rate (Zimmer et al. 2023): clip(lr_max * moved / sqrt(s), lr_max * min(budget / T, 1),
    lr_max), with `moved` = ||theta - theta_pruned|| / ||theta|| over all weights and biases (as BIMP's
    `get_model_norm_square`) and `s` = `pruned_share`, the share of the surviving prunable weights this prune
    removed. A prune that removed nothing restarts at the lower clip."""
    low = lr_max * min(budget / max(dense_epochs, 1), 1.0)
    if pruned_share <= 0:
        return low
    return min(max(lr_max * moved / math.sqrt(pruned_share), low), lr_max)

"""Learning-rate schedules: the rate of each epoch of a training, registered in SCHEDULES like pruners
and stop criteria. A schedule is `fn(epoch, horizon, lr, params, dense) -> rate` for the 1-based `epoch`
of a training that spans `horizon` epochs and starts from rate `lr`; `dense` describes the dense run
({'epochs': T, 'lr': ..., 'schedule': {...}}) for schedules that replay it. A pure function of the epoch,
so that a resumed training is exact. Rates change per epoch, not per batch.

Retraining recipes of the literature, as a preset spells them:
- constant rate (the study's; fine-tuning when `rewind: none` and a small `lr`);
- `schedule: linear` with `lr: allr` (Zimmer, Spiegel & Pokutta, ICLR 2023, "BIMP": linear decay to 0
  after an optional warm-up, the start rate set by how much the prune moved the weights);
- `schedule: replay` with `rewind: none` (learning-rate rewinding, Renda, Frankle & Carbin, ICLR 2020:
  keep the weights, replay the last `max_epochs` epochs of the dense run's schedule)."""
from __future__ import annotations

import math

from . import InfcopError
from .registry import Param, Registry

SCHEDULES = Registry("schedule")


@SCHEDULES.register("constant", label="constant")
def constant(epoch: int, horizon: int, lr: float, params: dict, dense: dict | None = None) -> float:
    """The same rate every epoch."""
    return lr


@SCHEDULES.register("cosine", label="cosine")
def cosine(epoch: int, horizon: int, lr: float, params: dict, dense: dict | None = None) -> float:
    """Cosine from `lr` towards 0 over the horizon, each epoch at its start."""
    return 0.5 * lr * (1 + math.cos(math.pi * (epoch - 1) / max(horizon, 1)))


@SCHEDULES.register("linear", params=[
    Param("warmup", "number", default=0.0, lo=0, hi=1, hi_open=True,
          help="fraction of the horizon over which the rate rises linearly from 0 before it decays")],
    label="linear decay")
def linear(epoch: int, horizon: int, lr: float, params: dict, dense: dict | None = None) -> float:
    """Linear warm-up over the first `warmup` of the horizon, then linear decay to 0 at its end; each epoch
    trains at the schedule's value at its midpoint (epoch e of H at u = (e - 1/2) / H), so a one-epoch
    retraining runs at lr/2, the mean of a per-step decay over that epoch."""
    u = (epoch - 0.5) / max(horizon, 1)
    w = float(params.get("warmup", 0.0))
    if u < w:
        return lr * u / w
    return lr * max(0.0, (1.0 - u) / (1.0 - w))


@SCHEDULES.register("replay", label="learning-rate rewinding", needs_dense=True)
def replay(epoch: int, horizon: int, lr: float, params: dict, dense: dict | None = None) -> float:
    """The last `horizon` epochs of the dense run's schedule (epoch e replays dense epoch T - H + e; a
    retraining longer than the dense run starts at its first epoch). `lr` is not used: the rates are the
    dense run's."""
    if not dense:
        raise InfcopError("schedule 'replay' needs the dense run's schedule")
    total = int(dense["epochs"])
    spec = dense["schedule"]
    fn = SCHEDULES.get(spec["name"]).obj
    return fn(max(1, total - horizon + epoch), total, float(dense["lr"]), spec, None)


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


def lr_at(epoch: int, horizon: int, lr: float, spec, dense: dict | None = None) -> float:
    """The rate of 1-based `epoch` of a training spanning `horizon` epochs under schedule `spec`."""
    spec = resolve_schedule("schedule", spec)
    return float(SCHEDULES.get(spec["name"]).obj(epoch, horizon, lr, spec, dense))


def allr(lr_max: float, moved: float, pruned_share: float, budget: int, dense_epochs: int) -> float:
    """ALLR's start rate (Zimmer et al. 2023): clip(lr_max * moved / sqrt(s), lr_max * min(budget / T, 1),
    lr_max), with `moved` = ||theta - theta_pruned|| / ||theta|| and `s` = `pruned_share`, the share of the
    surviving weights this prune removed. A prune that removed nothing restarts at the lower clip."""
    low = lr_max * min(budget / max(dense_epochs, 1), 1.0)
    if pruned_share <= 0:
        return low
    return min(max(lr_max * moved / math.sqrt(pruned_share), low), lr_max)

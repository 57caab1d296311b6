"""The training loop: the optimizer, mask enforcement, the learning rate of every step, and the epoch loop
that trains, measures, asks the stop criteria and writes an epoch checkpoint after every epoch."""
from __future__ import annotations

import logging
import math
import os
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import partial

import torch
from torch import nn

from .. import InfcopError
from ..running.checkpoints import EpochCheckpoint
from .data import Dataset, Split, batches
from ..running.faults import kill_point
from .measures import MEASURES, distance
from .masks import MaskEnforcer
from .schedules import SCHEDULES, anneal_rate, resolve_schedule
from .stopping import Criterion, decide, mask_window, needs_val_loss
from .would_be_masks import WouldBeMasks

log = logging.getLogger("infcop")


class DivergenceError(InfcopError):
    """The training loss became NaN or infinite."""


def pick_device(choice: str) -> torch.device:
    if choice == "cuda" and not torch.cuda.is_available():
        raise InfcopError("training.device is 'cuda' but no CUDA device is available; allowed: auto, cpu, cuda")
    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(choice)


def configure_backend(device: torch.device, deterministic: bool, threads: int | None = None) -> None:
    if threads:
        torch.set_num_threads(threads)
    if device.type == "cuda":
        if deterministic:
            # cuBLAS needs a fixed workspace for reproducible matmuls
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.benchmark = False
        else:
            torch.backends.cudnn.benchmark = True
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True


def autocast_for(device: torch.device, precision: str):
    if precision == "bf16":
        return partial(torch.autocast, device_type=device.type, dtype=torch.bfloat16)
    return nullcontext


def prepare_model(model: nn.Module, device: torch.device) -> nn.Module:
    model = model.to(device)
    if device.type == "cuda" and any(isinstance(m, nn.Conv2d) for m in model.modules()):
        model = model.to(memory_format=torch.channels_last)
    return model


def optimizer_for(model: nn.Module, tr: dict, spec=None):
    """The optimizer of a training: the preset's `spec` or training.optimizer, at training.lr (each step then
    sets its rate from the schedule)."""
    from .optimizers import make_optimizer, resolve_optimizer

    return make_optimizer(model.parameters(), tr["lr"],
                          resolve_optimizer("optimizer", spec or tr.get("optimizer", "sgd"), tr))


def epoch_generator(seed: int, stage: int, epoch: int) -> torch.Generator:
    """Shuffling and augmentation of one epoch depend only on (seed, stage, epoch)."""
    return torch.Generator().manual_seed(seed * 1_000_003 + stage * 1009 + epoch)


def _passes(data, batch_size, generator, passes):
    for _ in range(passes):
        yield from batches(data.train, batch_size, generator, augment=data.augment)


def steps_per_epoch(data: Dataset, batch_size: int, passes: int = 1) -> int:
    return passes * math.ceil(len(data.train) / batch_size)


def train_epoch(model, data: Dataset, opt, enforcer: MaskEnforcer | None, generator, batch_size: int,
                autocast=nullcontext, passes: int = 1, max_steps: int | None = None, rate=None,
                after_step=None) -> float:
    """One epoch: `passes` shuffled passes over the training split (the study's "epoch" was two); with
    `max_steps`, only its first steps (the last, partial epoch of a fractional budget). `rate(step)`: the
    learning rate of the epoch's 0-based step (default: the optimizer's as it is); `after_step(step)` runs
    after each step (gradual pruning)."""
    model.train()
    total = torch.zeros((), device=data.train.x.device)
    count = 0
    for step, (xb, yb) in enumerate(_passes(data, batch_size, generator, passes)):
        if max_steps is not None and step >= max_steps:
            break
        if rate is not None:
            lr = rate(step)
            for group in opt.param_groups:
                group["lr"] = lr
        with autocast():
            loss = nn.functional.cross_entropy(model(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if enforcer is not None:
            enforcer.apply_grads()
        opt.step()
        if enforcer is not None:
            enforcer.apply_weights()
        if after_step is not None:
            after_step(step)
        total += loss.detach() * len(yb)
        count += len(yb)
    # one device sync per epoch, not per batch
    return float(total) / max(count, 1)


@torch.no_grad()
def _split_mean(model, split: Split, per_batch, dtype, batch_size: int, autocast) -> float:
    """Sum `per_batch(logits, labels)` over `split` in eval mode, divided by its size (one sync at the end)."""
    model.eval()
    total = torch.zeros((), device=split.x.device, dtype=dtype)
    for xb, yb in batches(split, batch_size):
        with autocast():
            total += per_batch(model(xb), yb)
    return total.item() / max(len(split), 1)


def accuracy(model, split: Split, batch_size: int = 512, autocast=nullcontext) -> float:
    return _split_mean(model, split, lambda out, y: (out.argmax(1) == y).sum(), torch.int64, batch_size, autocast)


def mean_loss(model, split: Split, batch_size: int = 512, autocast=nullcontext) -> float:
    """The mean cross-entropy over `split` (for early stopping on validation loss)."""
    return _split_mean(model, split, lambda out, y: nn.functional.cross_entropy(out.float(), y, reduction="sum").double(),
                       torch.float64, batch_size, autocast)


@dataclass
class Schedule:
    """How long one retraining may run and what may stop it: every criterion is asked after every epoch
    (epoch 0 included when `epoch0`), and may stop it from `min_epochs` on; `max_epochs` always ends it.
    The learning-rate schedule (`lr_schedule`, default training.schedule) sets the rate of every step; it
    spans `lr_horizon` epochs (default: the max_epochs budget's steps) from rate `lr` (default training.lr);
    `dense` describes the dense run ({'epochs', 'lr', 'schedule'}) for schedules that replay it. `anneal`:
    once a stop criterion ends the training before its schedule has, train on for that many epochs ({'epochs':
    k}) or that share of the epochs trained ({'share': s}) with the rate decaying linearly to 0. `optimizer`:
    the preset's (default training.optimizer). `gmp`: a GradualPruner that prunes during the training.
    `pruner` (with `seed`): the method's, for criteria that read would-be masks."""
    criteria: list[Criterion] = field(default_factory=list)
    max_epochs: float = 1  # a fraction trains the last epoch's first steps only (counted in steps)
    min_epochs: int = 0
    epoch0: bool = False
    lr_horizon: int | None = None
    lr_schedule: dict | str | None = None
    lr: float | None = None
    dense: dict | None = None
    anneal: dict | None = None
    optimizer: dict | str | None = None
    gmp: object | None = None  # infcop.science.gmp.GradualPruner: prunes during this training
    pruner: dict | None = None
    seed: int = 0

    def horizon_steps(self, per_epoch: int) -> int:
        """The steps the learning-rate schedule spans: lr_horizon whole epochs, or the budget's steps (a
        fractional budget's last epoch counted in steps)."""
        if self.lr_horizon:
            return self.lr_horizon * per_epoch
        whole, part = divmod(self.max_epochs, 1)
        return max(1, int(whole) * per_epoch + (max(1, round(part * per_epoch)) if part else 0))


@dataclass
class Reference:
    """The dense network a retraining is compared with: the model (for similarity and CKA) and its
    metrics (reference flows, noise floors, validation accuracy)."""
    model: nn.Module
    metrics: dict


def _record_flows(env, model, masks, reference: Reference | None, rec: dict, extra: set) -> None:
    """Measure the flows and their distances to the dense network's (every standard measure, plus the
    `extra` measure keys a criterion needs) into `rec`."""
    f = env.flows(model, reference=reference.model if reference else None, masks=masks,
                  positions=any("@positions" in k for k in extra))
    rec.update(f.vectors())
    if reference is None:
        return
    kind = env.fl["distance"]
    keys = [e.name for e in MEASURES] + sorted(extra - set(MEASURES.names()))
    rec["distances"] = {k: distance(k, rec, reference.metrics, kind) for k in keys}
    for e in MEASURES:
        rec[e.info["column"]] = rec["distances"][e.name]


def _measure_epoch(env, model, masks, schedule, reference, measure, epoch, rec, ref_metrics,
                   would_be: WouldBeMasks | None = None) -> tuple:
    """Validation accuracy, flows, would-be masks and every criterion's verdict of the network as it is now."""
    t0 = time.perf_counter()
    rec["val_accuracy"] = accuracy(model, env.data.val, autocast=env.autocast)
    if needs_val_loss(schedule.criteria):
        rec["val_loss"] = mean_loss(model, env.data.val, autocast=env.autocast)
    rec.update(info_distance=float("nan"), abs_distance=float("nan"), cka_distance=float("nan"),
               grad_distance=float("nan"))
    eval_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    if measure:
        _record_flows(env, model, masks, reference, rec, set().union(*(c.measures for c in schedule.criteria)))
    flow_s = time.perf_counter() - t1
    if would_be is not None:
        would_be.observe(model, masks, rec)
    stopped, reason = decide(schedule.criteria, epoch, schedule.max_epochs, schedule.min_epochs, rec, ref_metrics)
    rec.update(stopped=stopped, stop_reason=reason, flow_seconds=flow_s)
    return stopped, reason, eval_s


def retrain(env, run, model, masks, schedule: Schedule, checkpoint: EpochCheckpoint, *,
            reference: Reference | None = None, measure: bool = True, keep_best: bool | str = False,
            initial=None) -> dict:
    """Train epoch by epoch until a stop criterion holds or the budget ends. Epoch 0 (with
    `schedule.epoch0`) measures the network before any training; after every epoch the validation
    accuracy, flows, distances and every criterion's verdict are recorded and the epoch checkpoint is
    written. A matching checkpoint is resumed exactly (weights, masks, optimizer, RNG, history, and the
    criteria's state, replayed from the history). `keep_best` (True: validation accuracy; or a metric name,
    'val_loss' lower-is-better) keeps the best epoch's weights in the result's `best` (epoch 0 included).
    With `schedule.anneal`, a stop before the schedule's end is followed by the annealing epochs (recorded
    with `anneal: true`; the criteria are not asked again)."""
    tr = env.tr
    opt = optimizer_for(model, tr, schedule.optimizer)
    history, best = [], None
    ref_metrics = reference.metrics if reference is not None else {}
    window = mask_window(schedule.criteria)
    if window and schedule.pruner is None:
        raise InfcopError("a stop criterion reads would-be masks, but this training has no pruner")
    would_be = WouldBeMasks(schedule.pruner, window, schedule.seed) if window else None
    resumed = checkpoint.load()
    if resumed is not None:
        model.load_state_dict(resumed["state"])
        for k in masks:
            masks[k].copy_(resumed["masks"][k])
        opt.load_state_dict(resumed["optimizer"])
        torch.set_rng_state(resumed["rng"])
        history, best = resumed["history"], resumed.get("best")
        if would_be is not None:
            would_be.recent = list(resumed.get("would_be") or [])
        for rec in history:  # the criteria's state (epoch-0 distance, best so far) as it was
            if not rec.get("anneal"):
                for c in schedule.criteria:
                    c.holds(rec, ref_metrics)
        log.info("%s: resuming after epoch %d from %s", run.label(), resumed["epoch"], checkpoint.path)
    elif initial is not None:
        initial(model)
    enforcer = MaskEnforcer(model, masks)

    def save(epoch):
        checkpoint.save({"epoch": epoch, "state": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                         "masks": {k: v.cpu() for k, v in masks.items()}, "optimizer": opt.state_dict(),
                         "rng": torch.get_rng_state(), "history": history, "best": best,
                         "would_be": would_be.recent if would_be is not None else None})
        kill_point("epoch", checkpoint.path)

    best_by = "val_accuracy" if keep_best is True else (keep_best or None)

    def consider(rec):
        nonlocal best
        if best_by is None:
            return
        v = rec[best_by]
        held = None if best is None else best.get("value", best.get("val_accuracy"))
        if held is None or (v > held if best_by != "val_loss" else v < held):
            best = {"epoch": rec["epoch"], "value": v, "val_accuracy": rec["val_accuracy"],
                    "state": {k: t.detach().cpu().clone() for k, t in model.state_dict().items()}}

    if not history and schedule.epoch0:
        rec = {"epoch": 0, "train_loss": None, "lr": None, "steps": 0}  # None, not NaN: NaN != NaN breaks comparisons
        stopped, reason, eval_s = _measure_epoch(env, model, masks, schedule, reference, measure, 0, rec, ref_metrics,
                                                 would_be)
        rec["train_seconds"] = eval_s
        history.append(rec)
        consider(rec)
        log.info("%s epoch 0 (pruned, rewound) val_acc %.4f info_dist %.4f grad_dist %.4f %s", run.label(),
                 rec["val_accuracy"], rec["info_distance"], rec["grad_distance"],
                 f"STOP ({reason}): no retraining needed" if stopped else "retrain")
        save(0)
    per_epoch = steps_per_epoch(env.data, tr["batch_size"], tr.get("passes", 1))
    horizon = schedule.horizon_steps(per_epoch)
    start_lr = tr["lr"] if schedule.lr is None else schedule.lr
    spec = resolve_schedule("schedule", schedule.lr_schedule or tr["schedule"])  # once, not every step
    schedule_fn = SCHEDULES.get(spec["name"]).obj
    dense = None if schedule.dense is None else {**schedule.dense, "steps": schedule.dense["epochs"] * per_epoch}

    def train_one(epoch, steps, rate):
        """One epoch of `steps` steps (None: all), each at `rate(step of the training)`; its record."""
        done = sum(r.get("steps", per_epoch) for r in history if r["epoch"] > 0)
        rates = []

        def at(i):
            rates.append(rate(done + i))
            return rates[-1]
        gmp = schedule.gmp
        t0 = time.perf_counter()
        loss = train_epoch(model, env.data, opt, enforcer, epoch_generator(run.seed, run.iteration, epoch),
                           tr["batch_size"], env.autocast, tr.get("passes", 1), max_steps=steps, rate=at,
                           after_step=None if gmp is None else lambda i: gmp.after(done + i + 1, model, masks,
                                                                                    enforcer))
        if not math.isfinite(loss):
            raise DivergenceError(f"training diverged ({run.label()}): the loss became {loss} in epoch {epoch}; "
                                  "lower training.lr or check the data")
        rec = {"epoch": epoch, "train_loss": loss, "lr": sum(rates) / len(rates), "steps": len(rates)}
        if steps is not None and steps < per_epoch:
            rec["fraction"] = steps / per_epoch  # of an epoch: what the cost counts
        return rec, time.perf_counter() - t0

    stopped = bool(history) and (history[-1]["stopped"] or bool(history[-1].get("anneal")))
    epoch = history[-1]["epoch"] if history else 0
    while not stopped:
        epoch += 1
        part = schedule.max_epochs - (epoch - 1)  # below 1: a fractional budget's last epoch
        steps = max(1, round(part * per_epoch)) if part < 1 else None
        rec, train_s = train_one(epoch, steps, lambda i: float(schedule_fn(i, horizon, start_lr, spec, dense)))
        stopped, reason, eval_s = _measure_epoch(env, model, masks, schedule, reference, measure, epoch, rec,
                                                 ref_metrics, would_be)
        rec["train_seconds"] = train_s + eval_s
        history.append(rec)
        consider(rec)
        log.info("%s epoch %d loss %.4f val_acc %.4f info_dist %.4f grad_dist %.4f %s", run.label(), epoch,
                 rec["train_loss"], rec["val_accuracy"], rec["info_distance"], rec["grad_distance"],
                 f"STOP ({reason})" if stopped else "go on")
        save(epoch)
    _anneal(history, schedule, per_epoch, horizon, lambda i: float(schedule_fn(i, horizon, start_lr, spec, dense)),
            train_one, env, model, save, consider, run)
    return {"history": history, "best": best}


def anneal_steps(history: list, anneal: dict | None, per_epoch: int, horizon: int) -> int:
    """How many annealing steps follow the stop: none unless a stop criterion (not the budget) ended the
    training before its schedule did."""
    if not history:
        return 0
    stop = next(r for r in reversed(history) if not r.get("anneal"))
    done = sum(r.get("steps", per_epoch) for r in history if r["epoch"] > 0 and not r.get("anneal"))
    if not anneal or stop["stop_reason"] in ("budget", "") or done >= horizon:
        return 0
    if "epochs" in anneal:
        return max(1, round(float(anneal["epochs"]) * per_epoch))
    return max(1, round(float(anneal["share"]) * done))


def _anneal(history, schedule, per_epoch, horizon, rate_of, train_one, env, model, save, consider, run) -> None:
    total = anneal_steps(history, schedule.anneal, per_epoch, horizon)
    if not total:
        return
    stop = next(r for r in reversed(history) if not r.get("anneal"))
    begin = sum(r.get("steps", per_epoch) for r in history if r["epoch"] > 0 and not r.get("anneal"))
    start = rate_of(begin)  # where the schedule would have gone on
    done = sum(r["steps"] for r in history if r.get("anneal"))
    epoch = history[-1]["epoch"]
    while done < total:
        epoch += 1
        steps = min(per_epoch, total - done)
        offset = done
        rec, train_s = train_one(epoch, steps, lambda i: anneal_rate(i - begin, total, start))
        t0 = time.perf_counter()
        rec["val_accuracy"] = accuracy(model, env.data.val, autocast=env.autocast)
        rec.update(anneal=True, stopped=False, stop_reason=stop["stop_reason"], flow_seconds=0.0,  # no flows
                   train_seconds=train_s + time.perf_counter() - t0)
        history.append(rec)
        consider(rec)
        done = offset + rec["steps"]
        log.info("%s epoch %d (annealing after the stop) loss %.4f val_acc %.4f lr %.4g", run.label(), epoch,
                 rec["train_loss"], rec["val_accuracy"], rec["lr"])
        save(epoch)

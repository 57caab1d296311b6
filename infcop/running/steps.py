"""The pipeline's stages, composed from the concept modules: train-dense, imp-iteration, ticket,
evaluate. Each reads and writes only the directories it is given (file names from infcop.running.layout); each
resumes from its last finished epoch when its epoch checkpoint is there."""
from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Mapping
from pathlib import Path

import torch

from .. import InfcopError
from . import layout as L
from .checkpoints import (ARCH_ARGS, TICKET_FORMAT, EpochCheckpoint, load_json, load_model_file, model_record,
                          save_json, save_text, save_torch)
from ..experiments.method import resolve_method, thaw
from ..experiments.experiment import stage_settings
from .faults import kill_point
from .job import Env, Run
from .locks import holding, stage_lock
from ..science.masks import MaskEnforcer, full_masks, prunable, remaining_fraction
from ..science.models import build_model
from ..science.plugins import arch_plugin
from ..science.pruners import prune
from ..science.schedules import allr, final_rate, resolve_schedule
from ..science.stopping import criteria_of, needs_flows, restore_metric
from ..judging.tables import ITERATION_COLUMNS, LAYER_COLUMNS, csv_text, layer_rows
from ..science.flops import layer_macs, pruned_macs
from ..science.flows import noise_floors
from ..science.gmp import GradualPruner
from ..science.training import Reference, Schedule, accuracy, prepare_model, retrain, steps_per_epoch

log = logging.getLogger("infcop")


def fingerprint(*parts) -> str:
    """Identifies the exact inputs of a stage, so that a stale epoch checkpoint is never resumed."""
    h = hashlib.sha256()
    for p in parts:
        if isinstance(p, Path):
            h.update(p.read_bytes())
        else:
            h.update(json.dumps(p, sort_keys=True).encode())
    return h.hexdigest()


def _summed(history, key):
    return float(sum(h[key] for h in history))


def _dense_schedule(settings: dict, epochs: int | None = None) -> Schedule:
    """The dense training's budget; a rewind point trains its first `epochs` under the same LR schedule."""
    total = settings["dense"]["epochs"]
    return Schedule(criteria_of([{"name": "budget"}]), epochs or total, lr_horizon=total)


@holding("train-dense")  # one writer per stage: see infcop.running.locks
def train_dense(dataset: str, arch: str, seed: int, settings: dict, out_dir, threads=None) -> dict:
    out = Path(out_dir)
    run = Run(dataset, arch, seed)
    env = Env(run, settings, threads)
    torch.manual_seed(seed)
    model = build_model(arch, env.data.in_channels, env.data.num_classes, env.data.image_size)
    model = prepare_model(model, env.device)
    masks = full_masks(model)
    meta = env.model_meta(run)
    save_torch(model_record(model, masks, meta), out / L.INIT)
    checkpoint = EpochCheckpoint(out / L.RESUME, fingerprint("dense", run.meta(), stage_settings(settings, "dense"),
                                                             env.data.content_hash))
    result = retrain(env, run, model, masks, _dense_schedule(settings), checkpoint, measure=False, keep_best=True)
    best = result["best"]
    model.load_state_dict(best["state"])  # model selection on the validation split
    t0 = time.perf_counter()
    f = env.flows(model, reference=model, masks=masks, positions=True)
    t1 = time.perf_counter()
    fl = env.fl
    floors = noise_floors(model, env.probe, f, fl["batch_size"], masks, env.autocast, fl["distance"],
                          fl["noise_resamples"], fl["noise_quantile"], seed, fl["max_positions"])
    history = result["history"]
    metrics = {**run.meta(), "val_accuracy": best["val_accuracy"], "best_epoch": best["epoch"],
               "epochs_trained": len(history), "remaining_weights": 1.0, "layers": f.layers, "pairs": f.pairs,
               **f.vectors(), "noise_floor": floors, "content_hash": env.data.content_hash,
               "train_seconds": _summed(history, "train_seconds"),
               "flow_seconds": t1 - t0, "noise_floor_seconds": time.perf_counter() - t1,  # charged to `auto` methods
               "stop_reason": "dense", "device": str(env.device),
               "epochs": history}
    save_torch(model_record(model, masks, meta), out / L.MODEL)
    save_json(metrics, out / L.METRICS)
    kill_point("done", out)
    log.info("%s: dense done, best val_acc %.4f at epoch %d", run.label(), best["val_accuracy"], best["epoch"])
    return metrics


def rewind_point(dataset: str, arch: str, seed: int, settings: dict, epoch: int, dense_dir, threads=None) -> Path:
    """The dense network after `epoch` of its epochs (late rewinding): the dense training's first epochs
    again, from the same init, batches and learning-rate schedule (on the CPU bit for bit the same)."""
    dense_dir = Path(dense_dir)
    with stage_lock(dense_dir, f"rewind-point-{epoch}"):  # one writer per stage: see infcop.running.locks
        return _rewind_point(dataset, arch, seed, settings, epoch, dense_dir, threads)


def _rewind_point(dataset, arch, seed, settings, epoch, dense_dir: Path, threads) -> Path:
    run = Run(dataset, arch, seed)
    env = Env(run, settings, threads)
    model, masks = env.load(load_model_file(dense_dir / L.INIT, dataset, arch))
    checkpoint = EpochCheckpoint(dense_dir / L.rewind_resume(epoch), fingerprint(
        "dense", run.meta(), stage_settings(settings, "dense"), env.data.content_hash, dense_dir / L.INIT))
    retrain(env, run, model, masks, _dense_schedule(settings, epoch), checkpoint, measure=False)
    out = dense_dir / L.rewind_file(epoch)
    save_torch(model_record(model, masks, {**env.model_meta(run), "rewind_epoch": epoch}), out)
    (dense_dir / L.rewind_resume(epoch)).unlink(missing_ok=True)
    return out


def reinit_seed(seed: int) -> int:
    """`rewind: reinit`'s fresh initialisation: drawn as the dense run's was, from this seed instead of the
    run's (one per run, the same in every iteration; recorded in metrics.json as `reinit_seed`)."""
    return seed * 1_000_003 + 999_983


def rewind_state(rewind, dense_dir: Path, dataset: str, arch: str, seed: int | None = None, data=None):
    """The weights the survivors go back to (a recipe's `rewind`): the trained dense ones, the random init, the
    dense network after k epochs ({epoch: k}), a fresh random init from another seed (`reinit`: Frankle &
    Carbin's control, which needs the run's `seed` and its `data` for the network's shape), or none."""
    if rewind == "none":
        return None
    if rewind == "reinit":
        with torch.random.fork_rng(devices=[]):  # the job's own random stream stays as it was
            torch.manual_seed(reinit_seed(seed))
            fresh = build_model(arch, data.in_channels, data.num_classes, data.image_size)
        return {k: v.detach() for k, v in fresh.state_dict().items()}
    name = L.rewind_file(rewind["epoch"]) if isinstance(rewind, Mapping) else L.MODEL if rewind == "dense" else L.INIT
    return load_model_file(Path(dense_dir) / name, dataset, arch)["state"]


def prune_seed(seed: int, iteration: int, pruner: Mapping | None = None) -> int:
    """What a random pruner draws from: the run's seed and the iteration, nothing else; the run's seed alone
    for a pruner that draws once (`draw: once`)."""
    return seed * 1_000_003 + (0 if (pruner or {}).get("draw") == "once" else iteration)


def retraining_lr(lr, lr_max: float, model, before: dict, after: dict, budget: float,
                  dense_epochs: int, dense: dict) -> float:
    """The retraining's (start) rate from a recipe's `lr`: a number; `final`, the dense run's last rate
    (fine-tuning); ALLR's from how much this prune moved the network it pruned (`allr`, lr_max = training.lr,
    the dense run's rate); or None, training.lr. `dense`: the dense run's {'steps', 'lr', 'schedule'}."""
    if lr == "final":
        return final_rate(dense)
    if lr != "allr":
        return float(lr if lr is not None else lr_max)
    # BIMP's relative norm drop: ||theta - theta_pruned|| / ||theta|| over every module's weight and bias
    total = sum(float(p.detach().double().pow(2).sum()) for p in model.parameters())
    removed_sq = 0.0
    kept_before = removed = 0
    layers = prunable(model, biases=True)
    for n, a in after.items():  # biases a pruner masks for the first time were all alive before
        m = before[n] if n in before else torch.ones_like(a)
        gone = m & ~a
        removed_sq += float(layers[n].detach().double()[gone].pow(2).sum())
        kept_before += int(m.sum())
        removed += int(gone.sum())
    moved = math.sqrt(removed_sq / total) if total > 0 else 0.0
    return allr(lr_max, moved, removed / kept_before if kept_before else 0.0, budget, dense_epochs)


def rewinder(state, masks):
    """`initial(model)` for a fresh retraining: load the rewind point, then zero the pruned weights."""
    def apply(model):
        if state is not None:
            model.load_state_dict(state)
        MaskEnforcer(model, masks).apply_weights()
    return apply


@holding("imp-iteration")  # one writer per stage: see infcop.running.locks
def imp_iteration(dataset: str, arch: str, seed: int, method_name: str, preset: dict, settings: dict,
                  iteration: int, dense_dir, previous_dir, out_dir, threads=None) -> dict:
    """Prune iteration k-1's network, rewind, retrain with the method's stop criteria, save iteration k."""
    method = resolve_method(method_name, preset, settings["training"])
    recipe = method.recipe
    dense_dir, previous_dir, out = Path(dense_dir), Path(previous_dir), Path(out_dir)
    if iteration < 1:
        raise InfcopError(f"--iteration must be >= 1, got {iteration}")
    run = Run(dataset, arch, seed, method_name, iteration)
    dense_metrics = load_json(dense_dir / L.METRICS)
    prev_obj = load_model_file(previous_dir / L.MODEL, dataset, arch)
    dense_obj = load_model_file(dense_dir / L.MODEL, dataset, arch)
    env = Env(run, settings, threads)
    prev_model, prev_masks = env.load(prev_obj)
    reference, _ = env.load(dense_obj)
    checkpoint = EpochCheckpoint(out / L.RESUME, fingerprint(
        "imp", run.meta(), stage_settings(settings, "iteration", thaw(method.preset)), env.data.content_hash,
        previous_dir / L.MODEL, dense_dir / L.MODEL))
    draw = prune_seed(seed, iteration, method.pruner)
    rewound = rewind_state(recipe.rewind, dense_dir, dataset, arch, seed, env.data)  # also what SNIP/SynFlow score
    t0 = time.perf_counter()
    if method.gradual:  # gradual pruning: the training itself prunes (infcop.science.gmp)
        masks = {k: v.clone().to(env.device) for k, v in prev_masks.items()}
    else:
        masks = {k: v.to(env.device) for k, v in prune(prev_model, prev_masks, thaw(method.pruner), seed=draw,
                                                       data=env.data, rewind=rewound, iteration=iteration,
                                                       iterations=method.iterations).items()}
    prune_s = time.perf_counter() - t0
    max_epochs = method.max_epochs
    dense_run = {"epochs": settings["dense"]["epochs"], "lr": env.tr["lr"],
                 "schedule": resolve_schedule("training.schedule", env.tr["schedule"])}
    per_epoch = steps_per_epoch(env.data, env.tr["batch_size"], env.tr.get("passes", 1))
    lr = retraining_lr(recipe.lr, env.tr["lr"], prev_model, prev_masks, masks, max_epochs, settings["dense"]["epochs"],
                       {**dense_run, "steps": dense_run["epochs"] * per_epoch})
    schedule = Schedule(criteria_of(thaw(method.stop)), max_epochs, method.min_epochs, epoch0=True,
                        lr_schedule=thaw(recipe.schedule), lr=lr, pruner=thaw(method.pruner), seed=draw,
                        dense=dense_run, anneal=thaw(recipe.anneal), optimizer=thaw(recipe.optimizer))
    if method.gradual:
        schedule.gmp = GradualPruner(thaw(recipe.gmp), thaw(method.pruner), schedule.horizon_steps(per_epoch),
                                     remaining_fraction(prev_masks), seed=draw)
    model = prev_model
    restore = restore_metric(schedule.criteria)
    result = retrain(env, run, model, masks, schedule, checkpoint, reference=Reference(reference, dense_metrics),
                     initial=rewinder(rewound, masks), keep_best=restore or False)
    history = result["history"]
    last = history[-1]
    restored = None
    if restore and result["best"] is not None and result["best"]["epoch"] != last["epoch"]:
        # early stopping as practised: end with the best epoch's weights (paid for up to the stopping epoch)
        model.load_state_dict({k: v.to(env.device) for k, v in result["best"]["state"].items()})
        restored = result["best"]["epoch"]
    stop = next(h for h in reversed(history) if not h.get("anneal"))  # the epoch the criteria ended it
    accuracy_ids = [c.id for c in schedule.criteria if c.name == "accuracy"]
    early = None
    if accuracy_ids:  # did the stop come before the accuracy criterion alone would have allowed it?
        early = stop["stop_reason"] != "budget" and not any(stop["criteria"][i]["holds"] for i in accuracy_ids)
    trained = sum(h.get("fraction", 1) for h in history if h["epoch"] > 0)  # a partial epoch counted in steps
    metrics = {**run.meta(), "remaining_weights": remaining_fraction(masks), "epochs_trained": trained,
               "stop_reason": last["stop_reason"],
               "val_accuracy": last["val_accuracy"] if restored is None else result["best"]["val_accuracy"],
               "restored_epoch": restored,
               "epoch0_val_accuracy": history[0]["val_accuracy"], "stopped_early_vs_accuracy": early,
               "flows_charged": needs_flows(thaw(method.stop)),
               "train_seconds": _summed(history, "train_seconds") + prune_s,
               "flow_seconds": _summed(history, "flow_seconds"),
               "mask_seconds": float(sum(h.get("mask_seconds", 0.0) for h in history)), "lr_start": lr,
               "reinit_seed": reinit_seed(seed) if recipe.rewind == "reinit" else None,
               "method_spec": thaw(method.preset), "device": str(env.device),
               "layers": dense_metrics["layers"], "pairs": dense_metrics["pairs"], "epochs": history}
    save_torch(model_record(model, masks, env.model_meta(run)), out / L.MODEL)
    save_json(metrics, out / L.METRICS)
    kill_point("done", out)
    log.info("%s: done, remaining %.4f, %d epochs, stop %s", run.label(), metrics["remaining_weights"],
             len(history), last["stop_reason"])
    return metrics


def ticket_source(dense_dir, iteration_dirs: list, level: str, out_dir) -> Path:
    """The directory of the network a ticket exports: `level` is an iteration number (each directory's own,
    from its metrics.json; 0 = the dense network) or 'last'. Anything else is refused with the levels there
    are, as is an earlier level written over the ticket the workflow made (beside its evaluation.csv)."""
    levels = {0: Path(dense_dir)}
    for d in map(Path, iteration_dirs):
        levels[int(load_json(d / L.METRICS)["iteration"])] = d
    last = max(levels)
    try:
        k = last if level == "last" else int(level)
    except ValueError:
        k = None
    if k not in levels:
        raise InfcopError(f"--level {level!r} is not a level of this run; allowed: "
                          f"{', '.join(map(str, sorted(levels)))} (the iterations of the --iterations directories; "
                          "0 = the dense network) or last")
    if k != last and (Path(out_dir) / L.EVALUATION).is_file():
        raise InfcopError(f"--out '{out_dir}' holds the run's evaluation and the ticket of its last level ({last}); "
                          f"write the ticket of level {k} to a directory of its own")
    return levels[k]


@holding("ticket")  # one writer per stage: see infcop.running.locks
def export_ticket(dataset: str, arch: str, seed: int, method_name: str, preset: dict, settings: dict,
                  dense_dir, level_dir, out_dir, threads=None, env: Env | None = None) -> dict:
    """The sparse network in `level_dir` (the run's last iteration, or any level: ticket_source) as ticket.pt.
    With training.final_epochs > 0 its mask is retrained from the rewind point for that many epochs, so
    that every method's ticket gets equal training. The ticket holds all that infcop.load_ticket needs to
    run it on raw inputs outside infcop: the architecture (and its plugin), the input normalisation, the
    mask, the level and the recipe."""
    method = resolve_method(method_name, preset, settings["training"])
    dense_dir, level_dir, out = Path(dense_dir), Path(level_dir), Path(out_dir)
    level_obj = load_model_file(level_dir / L.MODEL, dataset, arch)
    iteration = int(level_obj["meta"]["iteration"])
    run = Run(dataset, arch, seed, method_name, iteration + 1)
    env = env or Env(run, settings, threads)
    model, masks = env.load(level_obj)
    final_epochs = env.tr["final_epochs"]
    history = []
    if final_epochs > 0:
        checkpoint = EpochCheckpoint(out / L.TICKET_RESUME, fingerprint(
            "ticket", run.meta(), stage_settings(settings, "ticket", thaw(method.preset)), env.data.content_hash,
            level_dir / L.MODEL))
        schedule = Schedule(criteria_of([{"name": "budget"}]), final_epochs, final_epochs)
        history = retrain(env, run, model, masks, schedule, checkpoint, measure=False,
                          initial=rewinder(rewind_state(method.recipe.rewind, dense_dir, dataset, arch, seed, env.data),
                                           masks))["history"]
    base, remaining = env.model_meta(run), remaining_fraction(masks)
    meta = {**base, "iteration": iteration, "registry_name": arch, "final_epochs": final_epochs,
            "architecture": {"name": arch, "args": {k: base[k] for k in ARCH_ARGS}, "plugin": arch_plugin(arch)},
            "normalisation": {"mean": env.data.mean.detach().cpu(), "std": env.data.std.detach().cpu()},
            "level": {"iteration": iteration, "remaining_weights": remaining},
            "recipe": {"method": method_name, "preset": thaw(method.preset), "final_epochs": final_epochs}}
    record = model_record(model, masks, meta)
    record["format"] = TICKET_FORMAT
    info = {**run.meta(), "iteration": iteration, "remaining_weights": remaining,
            "test_accuracy": accuracy(model, env.data.test, autocast=env.autocast),
            "val_accuracy": accuracy(model, env.data.val, autocast=env.autocast), "final_epochs": final_epochs,
            "train_seconds": _summed(history, "train_seconds")}
    save_torch(record, out / L.TICKET)
    save_json(info, out / L.TICKET_INFO)
    (out / L.TICKET_RESUME).unlink(missing_ok=True)
    return info


def evaluate_run(dataset: str, arch: str, seed: int, method_name: str, method: dict, settings: dict, dense_dir,
                 iteration_dirs: list, out_dir, threads=None) -> list[dict]:
    """One job per run after its last iteration: evaluate every iteration, then export the ticket (the data
    and models are loaded once; a job costs mostly its start-up)."""
    env = Env(Run(dataset, arch, seed, method_name, 0), settings, threads)
    rows = evaluate(dataset, arch, seed, method_name, settings, dense_dir, iteration_dirs, out_dir, env=env)
    export_ticket(dataset, arch, seed, method_name, method, settings, dense_dir, iteration_dirs[-1], out_dir,
                  env=env)
    return rows


@holding("evaluate")  # one writer per stage: see infcop.running.locks
def evaluate(dataset: str, arch: str, seed: int, method_name: str, settings: dict, dense_dir,
             iteration_dirs: list, out_dir, threads=None, env: Env | None = None) -> list[dict]:
    """Test accuracy, remaining weights and per-layer flows of the dense network (iteration 0) and of every
    iteration of one method run, as tidy CSV: evaluation.csv (a row per iteration) and layers.csv."""
    out = Path(out_dir)
    env = env or Env(Run(dataset, arch, seed, method_name, 0), settings, threads)
    dense_dir = Path(dense_dir)
    dense_metrics = load_json(dense_dir / L.METRICS)
    reference, _ = env.load(load_model_file(dense_dir / L.MODEL, dataset, arch))
    rows, layer_out = [], []
    dense_macs = layer_macs(reference, tuple(env.data.train.x.shape[1:]))
    for it_dir in [dense_dir] + [Path(d) for d in iteration_dirs]:
        metrics = dense_metrics if it_dir == dense_dir else load_json(it_dir / L.METRICS)
        model, masks = env.load(load_model_file(it_dir / L.MODEL, dataset, arch))
        f = env.flows(model, reference=reference, masks=masks)
        base = {"dataset": dataset, "arch": arch, "method": method_name, "seed": seed,
                "iteration": 0 if it_dir == dense_dir else int(metrics["iteration"])}
        rows.append({**base, "remaining_weights": remaining_fraction(masks),
                     "test_accuracy": accuracy(model, env.data.test, autocast=env.autocast),
                     **{k: metrics.get(k) for k in ("val_accuracy", "epochs_trained", "stop_reason", "train_seconds",
                                                    "flow_seconds", "noise_floor_seconds", "mask_seconds",
                                                    "lr_start", "epoch0_val_accuracy", "stopped_early_vs_accuracy")},
                     "flows_charged": bool(metrics.get("flows_charged", False)),
                     "macs": pruned_macs(dense_macs, masks), "dense_macs": sum(dense_macs.values())})
        layer_out += layer_rows(base, f.layers, f.pairs, f.vectors())
        kill_point("evaluate", out)
    save_text(csv_text(layer_out, LAYER_COLUMNS), out / L.LAYERS)
    save_text(csv_text(rows, ITERATION_COLUMNS), out / L.EVALUATION)
    return rows

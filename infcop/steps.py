"""The pipeline's stages as functions: train-dense, imp-iteration, ticket, evaluate. Each reads and writes
only the paths it is given; each resumes from its last finished epoch when its epoch checkpoint is there."""
from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from . import InfcopError
from .checkpoints import (EPOCH_FORMAT, TICKET_FORMAT, build_from_record, load_json,
                          load_model_file, load_torch, model_record, save_json, save_text, save_torch)
from .config import check_method, check_settings
from .data import load_dataset, probe_split
from .faults import kill_point
from .flows import measure_flows
from .masks import MaskEnforcer, full_masks, remaining_fraction
from .models import build_model
from .pruners import prune
from .stopping import decide, flow_distance
from .training import (DivergenceError, accuracy, autocast_for, configure_backend, epoch_generator, lr_at,
                       make_optimizer, pick_device, prepare_model, train_epoch)

log = logging.getLogger("infcop")
RESUME_NAME = "resume.pt"  # the in-progress epoch checkpoint, beside a stage's declared outputs


@dataclass
class Run:
    """Who is training: named in every log line and error."""
    dataset: str
    arch: str
    seed: int
    method: str = "dense"
    iteration: int = 0

    def label(self) -> str:
        return (f"dataset={self.dataset} arch={self.arch} method={self.method} seed={self.seed} "
                f"iteration={self.iteration}")

    def meta(self) -> dict:
        return {"dataset": self.dataset, "arch": self.arch, "seed": self.seed, "method": self.method,
                "iteration": self.iteration}


class Env:
    """Device, data and probe of one job, loaded once."""

    def __init__(self, run: Run, settings: dict, threads: int | None = None):
        check_settings(settings)
        tr = settings["training"]
        self.settings, self.tr, self.fl = settings, tr, settings["flows"]
        self.device = pick_device(tr["device"])
        configure_backend(self.device, tr["deterministic"], threads)
        d = settings["data"]
        self.data = load_dataset(run.dataset, run.seed, d["val_fraction"], d["data_dir"], d["download"]).to(self.device)
        self.probe = probe_split(self.data.train, self.fl["probe_size"], run.seed)
        self.autocast = autocast_for(self.device, tr["precision"])

    def model_meta(self, run: Run) -> dict:
        return {**run.meta(), "in_channels": self.data.in_channels, "num_classes": self.data.num_classes,
                "image_size": self.data.image_size}

    def flows(self, model, reference=None, masks=None):
        return measure_flows(model, self.probe, self.fl["batch_size"], reference=reference, masks=masks,
                             autocast=self.autocast)

    def load(self, obj):
        model, masks = build_from_record(obj)
        return prepare_model(model, self.device), {k: v.to(self.device) for k, v in masks.items()}


def fingerprint(*parts) -> str:
    """Identifies the exact inputs of a stage, so that a stale epoch checkpoint is never resumed."""
    h = hashlib.sha256()
    for p in parts:
        if isinstance(p, Path):
            h.update(p.read_bytes())
        else:
            h.update(json.dumps(p, sort_keys=True).encode())
    return h.hexdigest()


def _load_resume(path: Path, fp: str):
    if not path.exists():
        return None
    try:
        obj = load_torch(path, EPOCH_FORMAT)
    except InfcopError as exc:
        log.warning("ignoring unusable epoch checkpoint, starting this stage afresh: %s", exc)
        return None
    if obj.get("fingerprint") != fp:
        log.warning("epoch checkpoint '%s' belongs to other inputs or settings; starting afresh", path)
        return None
    return obj


def retrain(env: Env, run: Run, model, masks, *, max_epochs: int, min_epochs: int, stops: list[dict],
            resume_path: Path, fp: str, reference=None, ref_flows: dict | None = None,
            dense_val_accuracy: float = 1.0, keep_best: bool = False, measure: bool = True,
            initial=None) -> dict:
    """Train epoch by epoch until a stop criterion fires or `max_epochs`; after each epoch record
    validation accuracy, flows, distances and the decision, and write an epoch checkpoint."""
    tr = env.tr
    opt = make_optimizer(model, tr)
    enforcer = MaskEnforcer(model, masks)
    history, best = [], None
    resumed = _load_resume(resume_path, fp)
    if resumed is not None:
        model.load_state_dict(resumed["state"])
        for k in masks:
            masks[k].copy_(resumed["masks"][k])
        enforcer = MaskEnforcer(model, masks)
        opt.load_state_dict(resumed["optimizer"])
        torch.set_rng_state(resumed["rng"])
        history, best = resumed["history"], resumed.get("best")
        log.info("%s: resuming after epoch %d from %s", run.label(), resumed["epoch"], resume_path)
    elif initial is not None:
        initial(model)
    stopped = bool(history) and history[-1]["stopped"]
    epoch = len(history)
    while not stopped:
        epoch += 1
        for group in opt.param_groups:
            group["lr"] = lr_at(epoch, max_epochs, tr)
        t0 = time.perf_counter()
        loss = train_epoch(model, env.data, opt, enforcer, epoch_generator(run.seed, run.iteration, epoch),
                           tr["batch_size"], env.autocast)
        if not torch.isfinite(torch.tensor(loss)):
            raise DivergenceError(f"training diverged ({run.label()}): the loss became {loss} in epoch {epoch}; "
                                  "lower training.lr or check the data")
        val = accuracy(model, env.data.val, autocast=env.autocast)
        train_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        rec = {"epoch": epoch, "train_loss": loss, "val_accuracy": val, "lr": lr_at(epoch, max_epochs, tr)}
        info_d = grad_d = float("nan")
        if measure:
            f = env.flows(model, reference=reference, masks=masks)
            rec.update(connectivity=f.connectivity, gradflow=f.gradflow, similarity=f.similarity)
            if ref_flows is not None:
                info_d = flow_distance(f.connectivity, ref_flows["connectivity"], env.fl["distance"])
                grad_d = flow_distance(f.gradflow, ref_flows["gradflow"], env.fl["distance"])
        flow_s = time.perf_counter() - t1
        stopped, reason = decide(stops, epoch, max_epochs, min_epochs, info_distance=info_d,
                                 grad_distance=grad_d, val_accuracy=val, dense_val_accuracy=dense_val_accuracy)
        rec.update(info_distance=info_d, grad_distance=grad_d, stopped=stopped, stop_reason=reason,
                   train_seconds=train_s, flow_seconds=flow_s)
        history.append(rec)
        if keep_best and (best is None or val > best["val_accuracy"]):
            best = {"epoch": epoch, "val_accuracy": val,
                    "state": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}}
        log.info("%s epoch %d loss %.4f val_acc %.4f info_dist %.4f grad_dist %.4f %s", run.label(), epoch,
                 loss, val, info_d, grad_d, f"STOP ({reason})" if stopped else "go on")
        save_torch({"format": EPOCH_FORMAT, "fingerprint": fp, "epoch": epoch,
                    "state": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                    "masks": {k: v.cpu() for k, v in masks.items()}, "optimizer": opt.state_dict(),
                    "rng": torch.get_rng_state(), "history": history, "best": best}, resume_path)
        kill_point("epoch", resume_path)
    return {"history": history, "best": best}


def _summed(history, key):
    return float(sum(h[key] for h in history))


def train_dense(dataset: str, arch: str, seed: int, settings: dict, out_dir, threads=None) -> dict:
    out = Path(out_dir)
    run = Run(dataset, arch, seed)
    env = Env(run, settings, threads)
    torch.manual_seed(seed)
    model = build_model(arch, env.data.in_channels, env.data.num_classes, env.data.image_size)
    model = prepare_model(model, env.device)
    masks = full_masks(model)
    meta = env.model_meta(run)
    save_torch(model_record(model, masks, meta), out / "init.pt")
    fp = fingerprint("dense", run.meta(), settings)
    result = retrain(env, run, model, masks, max_epochs=settings["dense"]["epochs"], min_epochs=0,
                     stops=[{"name": "budget"}], resume_path=out / RESUME_NAME, fp=fp, keep_best=True,
                     measure=False)
    best = result["best"]
    model.load_state_dict(best["state"])  # model selection on the validation split
    t0 = time.perf_counter()
    f = env.flows(model, reference=model, masks=masks)
    history = result["history"]
    metrics = {**run.meta(), "val_accuracy": best["val_accuracy"], "best_epoch": best["epoch"],
               "epochs_trained": len(history), "remaining_weights": 1.0, "layers": f.layers, "pairs": f.pairs,
               "connectivity": f.connectivity, "gradflow": f.gradflow, "similarity": f.similarity,
               "train_seconds": _summed(history, "train_seconds"),
               "flow_seconds": time.perf_counter() - t0, "stop_reason": "dense", "device": str(env.device),
               "epochs": history}
    save_torch(model_record(model, masks, meta), out / "model.pt")
    save_json(metrics, out / "metrics.json")
    kill_point("done", out)
    log.info("%s: dense done, best val_acc %.4f at epoch %d", run.label(), best["val_accuracy"], best["epoch"])
    return metrics


def _rewind_state(method: dict, dense_dir: Path, dataset, arch):
    if method["rewind"] == "none":
        return None
    name = "model.pt" if method["rewind"] == "dense" else "init.pt"
    return load_model_file(dense_dir / name, dataset, arch)["state"]


def _apply_rewind(state, masks):
    def apply(model):
        if state is not None:
            model.load_state_dict(state)
        MaskEnforcer(model, masks).apply_weights()
    return apply


def imp_iteration(dataset: str, arch: str, seed: int, method_name: str, method: dict, settings: dict,
                  iteration: int, dense_dir, previous_dir, out_dir, threads=None) -> dict:
    """Prune iteration k-1's network, rewind, retrain with the method's stop criteria, save iteration k."""
    method = check_method(method_name, method)
    dense_dir, previous_dir, out = Path(dense_dir), Path(previous_dir), Path(out_dir)
    if iteration < 1:
        raise InfcopError(f"--iteration must be >= 1, got {iteration}")
    run = Run(dataset, arch, seed, method_name, iteration)
    dense_metrics = load_json(dense_dir / "metrics.json")
    prev_obj = load_model_file(previous_dir / "model.pt", dataset, arch)
    dense_obj = load_model_file(dense_dir / "model.pt", dataset, arch)
    env = Env(run, settings, threads)
    prev_model, prev_masks = env.load(prev_obj)
    reference, _ = env.load(dense_obj)
    if "lr" in method:  # a preset may retrain at its own learning rate
        env.tr = {**env.tr, "lr": method["lr"]}
    tr = env.tr
    max_epochs = method.get("max_epochs", tr["max_epochs"])
    min_epochs = method.get("min_epochs", tr["min_epochs"])
    fp = fingerprint("imp", run.meta(), method, settings, previous_dir / "model.pt", dense_dir / "model.pt")
    resume_path = out / RESUME_NAME
    # The previous stage is recorded as finished once this one runs: its final epoch checkpoint, kept
    # so that a job killed after writing its outputs finishes at once on rerun, can go.
    (previous_dir / RESUME_NAME).unlink(missing_ok=True)
    t0 = time.perf_counter()
    masks = {k: v.to(env.device) for k, v in prune(prev_model, prev_masks, method["pruner"]).items()}
    prune_s = time.perf_counter() - t0
    model = prev_model
    result = retrain(env, run, model, masks, max_epochs=max_epochs, min_epochs=min_epochs, stops=method["stop"],
                     resume_path=resume_path, fp=fp, reference=reference, ref_flows=dense_metrics,
                     dense_val_accuracy=dense_metrics["val_accuracy"],
                     initial=_apply_rewind(_rewind_state(method, dense_dir, dataset, arch), masks))
    history = result["history"]
    last = history[-1]
    metrics = {**run.meta(), "remaining_weights": remaining_fraction(masks), "epochs_trained": len(history),
               "stop_reason": last["stop_reason"], "val_accuracy": last["val_accuracy"],
               "train_seconds": _summed(history, "train_seconds") + prune_s,
               "flow_seconds": _summed(history, "flow_seconds"), "method_spec": method, "device": str(env.device),
               "layers": dense_metrics["layers"], "pairs": dense_metrics["pairs"], "epochs": history}
    save_torch(model_record(model, masks, env.model_meta(run)), out / "model.pt")
    save_json(metrics, out / "metrics.json")
    kill_point("done", out)
    log.info("%s: done, remaining %.4f, %d epochs, stop %s", run.label(), metrics["remaining_weights"],
             len(history), last["stop_reason"])
    return metrics


def export_ticket(dataset: str, arch: str, seed: int, method_name: str, method: dict, settings: dict,
                  dense_dir, last_dir, out_dir, threads=None) -> dict:
    """The run's final sparse network as ticket.pt. With training.final_epochs > 0 its mask is retrained
    from the rewind point for that many epochs, so that every method's ticket gets equal training."""
    method = check_method(method_name, method)
    dense_dir, last_dir, out = Path(dense_dir), Path(last_dir), Path(out_dir)
    last_obj = load_model_file(last_dir / "model.pt", dataset, arch)
    iteration = int(last_obj["meta"]["iteration"])
    run = Run(dataset, arch, seed, method_name, iteration + 1)
    env = Env(run, settings, threads)
    model, masks = env.load(last_obj)
    (last_dir / RESUME_NAME).unlink(missing_ok=True)  # the last iteration is recorded as finished
    final_epochs = env.tr["final_epochs"]
    history = []
    if final_epochs > 0:
        fp = fingerprint("ticket", run.meta(), method, settings, last_dir / "model.pt")
        history = retrain(env, run, model, masks, max_epochs=final_epochs, min_epochs=final_epochs,
                          stops=[{"name": "budget"}], resume_path=out / "ticket_resume.pt", fp=fp, measure=False,
                          initial=_apply_rewind(_rewind_state(method, dense_dir, dataset, arch), masks))["history"]
    meta = {**env.model_meta(run), "iteration": iteration, "registry_name": arch, "final_epochs": final_epochs}
    record = model_record(model, masks, meta)
    record["format"] = TICKET_FORMAT
    info = {**run.meta(), "iteration": iteration, "remaining_weights": remaining_fraction(masks),
            "test_accuracy": accuracy(model, env.data.test, autocast=env.autocast),
            "val_accuracy": accuracy(model, env.data.val, autocast=env.autocast), "final_epochs": final_epochs,
            "train_seconds": _summed(history, "train_seconds")}
    save_torch(record, out / "ticket.pt")
    save_json(info, out / "ticket.json")
    (out / "ticket_resume.pt").unlink(missing_ok=True)
    return info


ITERATION_COLUMNS = ["dataset", "arch", "method", "seed", "iteration", "remaining_weights", "test_accuracy",
                     "val_accuracy", "epochs_trained", "stop_reason", "train_seconds", "flow_seconds"]
LAYER_COLUMNS = ["dataset", "arch", "method", "seed", "iteration", "metric", "layer", "layer_index", "value"]


def csv_text(rows: list[dict], columns: list[str]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def layer_rows(base: dict, names: list[str], pairs: list[str], conn, grad, sim) -> list[dict]:
    rows = []
    for metric, labels, values in (("connectivity", pairs, conn), ("gradflow", names, grad),
                                   ("similarity", names, sim)):
        for i, (label, v) in enumerate(zip(labels, values)):
            rows.append({**base, "metric": metric, "layer": label, "layer_index": i, "value": v})
    return rows


def evaluate(dataset: str, arch: str, seed: int, method_name: str, settings: dict, dense_dir,
             iteration_dirs: list, out_dir, threads=None) -> list[dict]:
    """Test accuracy, remaining weights and per-layer flows of the dense network (iteration 0) and of every
    iteration of one method run, as tidy CSV: evaluation.csv (a row per iteration) and layers.csv."""
    out = Path(out_dir)
    run = Run(dataset, arch, seed, method_name, 0)
    env = Env(run, settings, threads)
    dense_dir = Path(dense_dir)
    dense_metrics = load_json(dense_dir / "metrics.json")
    reference, _ = env.load(load_model_file(dense_dir / "model.pt", dataset, arch))
    rows, layer_out = [], []
    for it_dir in [dense_dir] + [Path(d) for d in iteration_dirs]:
        metrics = dense_metrics if it_dir == dense_dir else load_json(it_dir / "metrics.json")
        model, masks = env.load(load_model_file(it_dir / "model.pt", dataset, arch))
        f = env.flows(model, reference=reference, masks=masks)
        base = {"dataset": dataset, "arch": arch, "method": method_name, "seed": seed,
                "iteration": 0 if it_dir == dense_dir else int(metrics["iteration"])}
        rows.append({**base, "remaining_weights": remaining_fraction(masks),
                     "test_accuracy": accuracy(model, env.data.test, autocast=env.autocast),
                     "val_accuracy": metrics["val_accuracy"], "epochs_trained": metrics["epochs_trained"],
                     "stop_reason": metrics["stop_reason"], "train_seconds": metrics["train_seconds"],
                     "flow_seconds": metrics["flow_seconds"]})
        layer_out += layer_rows(base, f.layers, f.pairs, f.connectivity, f.gradflow, f.similarity)
        kill_point("evaluate", out)
    save_text(csv_text(layer_out, LAYER_COLUMNS), out / "layers.csv")
    save_text(csv_text(rows, ITERATION_COLUMNS), out / "evaluation.csv")
    return rows

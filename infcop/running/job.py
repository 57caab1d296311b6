"""One job's context: who is training (Run, named in every log line and error) and what it trains with
(Env: device, data, probe, precision), loaded once per job."""
from __future__ import annotations

from dataclasses import dataclass

from .checkpoints import build_from_record
from ..experiments.config import check_settings
from ..science.data import load_dataset, probe_split
from ..science.flows import measure_flows
from ..science.training import autocast_for, configure_backend, pick_device, prepare_model


@dataclass
class Run:
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
    """Device, data and probe of one job."""

    def __init__(self, run: Run, settings: dict, threads: int | None = None):
        check_settings(settings)
        tr = settings["training"]
        self.settings, self.tr, self.fl = settings, tr, settings["flows"]
        self.device = pick_device(tr["device"])
        configure_backend(self.device, tr["deterministic"], threads)
        d = settings["data"]
        self.data = load_dataset(run.dataset, run.seed, d["val_fraction"], d["data_dir"], d["download"],
                                 d["num_samples"], d["seed"]).to(self.device)
        self.probe = probe_split(self.data.train, self.fl["probe_size"], run.seed)
        self.autocast = autocast_for(self.device, tr["precision"])

    def model_meta(self, run: Run) -> dict:
        return {**run.meta(), "in_channels": self.data.in_channels, "num_classes": self.data.num_classes,
                "image_size": self.data.image_size}

    def flows(self, model, reference=None, masks=None, positions: bool = False, probe=None):
        return measure_flows(model, self.probe if probe is None else probe, self.fl["batch_size"],
                             reference=reference, masks=masks, autocast=self.autocast, positions=positions,
                             max_positions=self.fl["max_positions"])

    def load(self, obj):
        """(model, masks) of a model record, on this job's device."""
        model, masks = build_from_record(obj)
        return prepare_model(model, self.device), {k: v.to(self.device) for k, v in masks.items()}

"""The training loop: SGD, mask enforcement, per-epoch measurement and stop decision, epoch checkpoints."""
from __future__ import annotations

import math
import os
from contextlib import nullcontext
from functools import partial

import torch
from torch import nn

from . import InfcopError
from .data import Dataset, Split, batches
from .masks import MaskEnforcer



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


class SGD:
    """SGD with momentum, Nesterov and weight decay, step for step the same arithmetic as torch.optim.SGD
    (dampening 0). Ours because constructing torch.optim's first optimizer imports torch._dynamo, which
    costs about two seconds in every short workflow job."""

    def __init__(self, params, lr: float, momentum: float = 0.0, nesterov: bool = False, weight_decay: float = 0.0):
        self.params = [p for p in params if p.requires_grad]
        self.param_groups = [{"lr": lr}]
        self.momentum, self.nesterov, self.weight_decay = momentum, nesterov, weight_decay
        self.buffers: list[torch.Tensor] | None = None

    def zero_grad(self, set_to_none: bool = True):
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self):
        lr = self.param_groups[0]["lr"]
        params = [p for p in self.params if p.grad is not None]
        if len(params) != len(self.params):
            raise RuntimeError("every trainable parameter needs a gradient")
        grads = [p.grad for p in params]
        if self.weight_decay:
            grads = torch._foreach_add(grads, params, alpha=self.weight_decay)
        if self.momentum:
            if self.buffers is None:
                self.buffers = [g.detach().clone() for g in grads]
            else:
                torch._foreach_mul_(self.buffers, self.momentum)
                torch._foreach_add_(self.buffers, grads)
            if self.nesterov:
                grads = torch._foreach_add(grads, self.buffers, alpha=self.momentum)
            else:
                grads = self.buffers
        torch._foreach_add_(params, grads, alpha=-lr)

    def state_dict(self) -> dict:
        return {"lr": self.param_groups[0]["lr"],
                "buffers": [b.detach().cpu() for b in self.buffers] if self.buffers is not None else None}

    def load_state_dict(self, state: dict):
        self.param_groups[0]["lr"] = state["lr"]
        bufs = state["buffers"]
        self.buffers = None if bufs is None else [b.to(p.device, p.dtype) for b, p in zip(bufs, self.params)]


def make_optimizer(model: nn.Module, tr: dict) -> SGD:
    return SGD(model.parameters(), lr=tr["lr"], momentum=tr["momentum"],
               nesterov=bool(tr["nesterov"]) and tr["momentum"] > 0, weight_decay=tr["weight_decay"])


def lr_at(epoch: int, max_epochs: int, tr: dict) -> float:
    """Learning rate for 1-based `epoch`, a pure function of the epoch so that resuming is exact."""
    if tr["schedule"] == "cosine":
        return 0.5 * tr["lr"] * (1 + math.cos(math.pi * (epoch - 1) / max(max_epochs, 1)))
    return tr["lr"]


def epoch_generator(seed: int, stage: int, epoch: int) -> torch.Generator:
    """Shuffling and augmentation of one epoch depend only on (seed, stage, epoch)."""
    return torch.Generator().manual_seed(seed * 1_000_003 + stage * 1009 + epoch)


def train_epoch(model, data: Dataset, opt, enforcer: MaskEnforcer | None, generator, batch_size: int,
                autocast=nullcontext) -> float:
    model.train()
    total = torch.zeros((), device=data.train.x.device)
    count = 0
    for xb, yb in batches(data.train, batch_size, generator, augment=data.augment):
        with autocast():
            loss = nn.functional.cross_entropy(model(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if enforcer is not None:
            enforcer.apply_grads()
        opt.step()
        if enforcer is not None:
            enforcer.apply_weights()
        total += loss.detach() * len(yb)
        count += len(yb)
    # one device sync per epoch, not per batch
    return float(total) / max(count, 1)


@torch.no_grad()
def accuracy(model, split: Split, batch_size: int = 512, autocast=nullcontext) -> float:
    model.eval()
    correct = torch.zeros((), device=split.x.device, dtype=torch.int64)
    for xb, yb in batches(split, batch_size):
        with autocast():
            correct += (model(xb).argmax(1) == yb).sum()
    return int(correct) / max(len(split), 1)

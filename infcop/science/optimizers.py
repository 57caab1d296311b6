"""Optimizers, registered by name like pruners and schedules: torch.optim's SGD, Adam and AdamW.
`training.optimizer` chooses the dense run's and every retraining's; a preset's `optimizer` a retraining's.
SGD's momentum, Nesterov and weight decay default to training.momentum, training.nesterov and
training.weight_decay (the keys the default run sets); Adam and AdamW take their own."""
from __future__ import annotations

from .registry import Param, Registry

OPTIMIZERS = Registry("optimizer")

WEIGHT_DECAY = "weight_decay"
_BETAS = (Param("beta1", "number", default=0.9, lo=0, hi=1, hi_open=True),
          Param("beta2", "number", default=0.999, lo=0, hi=1, hi_open=True),
          Param("eps", "number", default=1e-8, lo=0, lo_open=True))


@OPTIMIZERS.register("sgd", params=[
    Param("momentum", "number", default=None, lo=0, hi=1, hi_open=True, help="default: training.momentum"),
    Param("nesterov", "bool", default=None, help="default: training.nesterov"),
    Param(WEIGHT_DECAY, "number", default=None, lo=0, help="default: training.weight_decay")], label="SGD")
def sgd(params, lr: float, spec: dict):
    import torch

    return torch.optim.SGD(params, lr=lr, momentum=spec["momentum"], weight_decay=spec[WEIGHT_DECAY],
                           nesterov=bool(spec["nesterov"]) and spec["momentum"] > 0)


@OPTIMIZERS.register("adam", params=[*_BETAS, Param(WEIGHT_DECAY, "number", default=0.0, lo=0,
                                                      help="L2 penalty added to the gradient")], label="Adam")
def adam(params, lr: float, spec: dict):
    import torch

    return torch.optim.Adam(params, lr=lr, betas=(spec["beta1"], spec["beta2"]), eps=spec["eps"],
                            weight_decay=spec[WEIGHT_DECAY])


@OPTIMIZERS.register("adamw", params=[*_BETAS, Param(WEIGHT_DECAY, "number", default=0.01, lo=0,
                                                       help="decoupled weight decay (Loshchilov & Hutter)")],
                     label="AdamW")
def adamw(params, lr: float, spec: dict):
    import torch

    return torch.optim.AdamW(params, lr=lr, betas=(spec["beta1"], spec["beta2"]), eps=spec["eps"],
                             weight_decay=spec[WEIGHT_DECAY])


def resolve_optimizer(key: str, spec, training: dict | None = None) -> dict:
    """An optimizer name or {name: ..., params}, checked, defaults filled in (SGD's from `training`)."""
    out = OPTIMIZERS.resolve(key, spec)
    if out["name"] == "sgd":
        tr = training or {}
        for k, default in (("momentum", 0.9), ("nesterov", True), (WEIGHT_DECAY, 5e-4)):
            if out.get(k) is None:
                out[k] = tr.get(k, default)
    return out


def make_optimizer(params, lr: float, spec: dict):
    """A torch.optim optimizer over the trainable `params` for the resolved `spec`."""
    return OPTIMIZERS.get(spec["name"]).obj([p for p in params if p.requires_grad], lr, spec)

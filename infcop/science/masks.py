"""Explicit pruning masks: one boolean tensor per prunable weight (Conv1d/Conv2d/Linear weights only)."""
from __future__ import annotations

import torch
from torch import nn

Masks = dict  # parameter name -> bool tensor of the weight's shape


def prunable(model: nn.Module, biases: bool = False) -> dict[str, nn.Parameter]:
    """Conv and Linear weights by parameter name (with `biases`, their biases too: a pruner's
    `prune_biases: true` masks them); norm layers are never pruned."""
    out = {}
    for n, m in model.named_modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)):
            out[f"{n}.weight" if n else "weight"] = m.weight
            if biases and m.bias is not None:
                out[f"{n}.bias" if n else "bias"] = m.bias
    return out


def full_masks(model: nn.Module) -> Masks:
    return {n: torch.ones_like(p, dtype=torch.bool) for n, p in prunable(model).items()}


def remaining_fraction(masks: Masks) -> float:
    total = sum(m.numel() for m in masks.values())
    return sum(int(m.sum()) for m in masks.values()) / total


class MaskEnforcer:
    """Keeps masked weights exactly zero: zeroes their gradients before the optimizer step (so momentum
    and weight decay never move them) and the weights themselves after it."""

    def __init__(self, model: nn.Module, masks: Masks):
        params = prunable(model, biases=True)
        self.params = [params[n] for n in masks]
        self.masks = [masks[n].to(params[n].device, params[n].dtype) for n in masks]

    def refresh(self, masks: Masks):
        """Take up masks changed in place during a training (gradual pruning)."""
        self.masks = [masks[n].to(p.device, p.dtype) for n, p in zip(masks, self.params)]

    @torch.no_grad()
    def apply_weights(self):
        torch._foreach_mul_(self.params, self.masks)

    @torch.no_grad()
    def apply_grads(self):
        grads = [p.grad for p in self.params if p.grad is not None]
        if len(grads) == len(self.params):
            torch._foreach_mul_(grads, self.masks)
        else:
            for p, m in zip(self.params, self.masks):
                if p.grad is not None:
                    p.grad.mul_(m)

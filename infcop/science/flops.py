"""Theoretical cost of a (pruned) network: multiply-accumulates (MACs) per input of its conv and linear
layers, counted from the model itself (a forward pass of one zero input finds every layer's output size),
and for a pruned network each layer's dense count times its share of surviving weights (Blalock et al.
2020 report the same "theoretical FLOPs"; 1 MAC = 2 FLOPs). Biases, norms and activations are left out:
they are a small share and pruning never touches them."""
from __future__ import annotations

import math

import torch
from torch import nn

_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Linear)


@torch.no_grad()
def layer_macs(model: nn.Module, input_shape: tuple) -> dict[str, int]:
    """Dense MACs per input of every Conv1d / Conv2d / Linear weight, by parameter name ('<layer>.weight').
    `input_shape`: one input's shape, e.g. (1, 40) for a 1-D signal or (3, 32, 32) for an image."""
    counts: dict[str, int] = {}
    hooks = []
    for name, m in model.named_modules():
        if isinstance(m, _LAYERS):
            def hook(mod, _inp, out, name=name):
                per_output = (mod.in_features if isinstance(mod, nn.Linear)
                              else mod.in_channels // mod.groups * math.prod(mod.kernel_size))
                counts[f"{name}.weight" if name else "weight"] = (out.numel() // out.shape[0]) * per_output
            hooks.append(m.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        p = next(model.parameters())
        model(torch.zeros(1, *input_shape, device=p.device, dtype=p.dtype))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return counts


def pruned_macs(dense: dict[str, int], masks: dict) -> int:
    """MACs per input of the pruned network: each layer's dense count times its surviving share."""
    total = 0.0
    for name, macs in dense.items():
        m = masks.get(name)
        total += macs if m is None else macs * float(m.sum()) / m.numel()
    return int(round(total))

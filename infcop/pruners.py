"""Pruners: decide how many and which surviving weights to remove. Only surviving weights are ranked."""
from __future__ import annotations

import math

import torch
from torch import nn

from . import InfcopError
from .config import PRUNERS, SCOPES, check_sap
from .masks import Masks, prunable



def pq_index(w: torch.Tensor, p: float, q: float) -> float:
    """PQ index I(w) = 1 - d^(1/q - 1/p) * ||w||_p / ||w||_q over the d entries of w (SAP)."""
    w = w.detach().double().abs().flatten()
    d = w.numel()
    norm_q = w.pow(q).sum().pow(1.0 / q)
    if d == 0 or norm_q == 0:
        return 0.0
    norm_p = w.pow(p).sum().pow(1.0 / p)
    return float(1.0 - d ** (1.0 / q - 1.0 / p) * norm_p / norm_q)


def sap_prune_count(w: torch.Tensor, p: float, q: float, eta: float = 0.0, gamma: float = 1.0,
                    beta: float = 0.9) -> int:
    """Number of the d surviving weights `w` to prune: r = d (1+eta)^(-q/(q-p)) (1-I)^(qp/(q-p)),
    pruned = floor(d * min(gamma (1 - r/d), beta))."""
    check_sap(p, q, eta, gamma, beta)
    d = w.numel()
    if d == 0:
        return 0
    index = pq_index(w, p, q)
    r = d * (1.0 + eta) ** (-q / (q - p)) * (1.0 - index) ** (q * p / (q - p))
    return max(0, math.floor(d * min(gamma * (1.0 - r / d), beta)))


def _prune_smallest(weights: list[torch.Tensor], masks: list[torch.Tensor], count: int) -> None:
    """Clear the `count` smallest-magnitude surviving entries across `weights` (in place on masks).
    Ties are broken by position, so the result is deterministic."""
    if count <= 0:
        return
    surviving = torch.cat([w.detach().abs().flatten()[m.flatten()] for w, m in zip(weights, masks)])
    count = min(count, surviving.numel())
    # stable sort: equal magnitudes pruned in index order
    order = torch.sort(surviving, stable=True).indices[:count]
    drop = torch.zeros(surviving.numel(), dtype=torch.bool)
    drop[order] = True
    start = 0
    for m in masks:
        flat = m.view(-1)
        pos = flat.nonzero().flatten()
        n = pos.numel()
        flat[pos[drop[start:start + n]]] = False
        start += n


def prune(model: nn.Module, masks: Masks, spec: dict) -> Masks:
    """Return new masks with weights removed from `model` (its current weights rank them)."""
    name = spec.get("name")
    scope = spec.get("scope", "layer")
    if name not in PRUNERS:
        raise InfcopError(f"unknown pruner '{name}'; known: {', '.join(PRUNERS)}")
    if scope not in SCOPES:
        raise InfcopError(f"pruner.scope must be one of {', '.join(SCOPES)}, got '{scope}'")
    params = prunable(model)
    new = {n: m.detach().clone().cpu() for n, m in masks.items()}
    weights = {n: params[n].detach().cpu() for n in new}
    groups = [[n] for n in new] if scope == "layer" else [list(new)]
    for group in groups:
        ws = [weights[n] for n in group]
        ms = [new[n] for n in group]
        surviving = torch.cat([w.flatten()[m.flatten()] for w, m in zip(ws, ms)])
        if name == "magnitude":
            rate = spec["rate"]
            if isinstance(rate, bool) or not 0 < rate < 1:
                raise InfcopError(f"pruner.rate must be in (0, 1), got {rate}")
            count = math.floor(rate * surviving.numel())
        else:
            count = sap_prune_count(surviving, spec["p"], spec["q"], spec.get("eta", 0.0),
                                    spec.get("gamma", 1.0), spec.get("beta", 0.9))
        # never empty a layer (or the network): one surviving weight keeps the graph connected
        count = min(count, surviving.numel() - 1)
        _prune_smallest(ws, ms, count)
    return new

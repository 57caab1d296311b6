"""Pruners: decide how many and which surviving weights to remove. A pruner is one function registered
in PRUNERS with its parameter spec: `fn(weights, masks, params) -> new masks`, where `weights` and
`masks` map each prunable (Conv/Linear) weight name to a CPU tensor and its boolean mask. A pruner
registered with `seeded=True` draws at random and is called `fn(weights, masks, params, generator)`,
the generator seeded by the run's seed and iteration. Cheap to import (torch loads when a pruner runs)."""
from __future__ import annotations

import math
from typing import Callable

from . import InfcopError
from .registry import Param, Registry, SpecParam

PRUNERS = Registry("pruner")

SCOPE = Param("scope", "choice", default="layer", choices=("global", "layer"),
              help="rank within each layer, or across all prunable layers at once")


def prune_smallest(weights: list, masks: list, count: int) -> None:
    """Clear the `count` smallest-magnitude surviving entries across `weights` (in place on masks).
    Ties are broken by position, so the result is deterministic."""
    import torch

    if count <= 0:
        return
    surviving = torch.cat([w.detach().abs().flatten()[m.flatten()] for w, m in zip(weights, masks)])
    count = min(count, surviving.numel())
    order = torch.sort(surviving, stable=True).indices[:count]  # stable: equal magnitudes in index order
    drop = torch.zeros(surviving.numel(), dtype=torch.bool)
    drop[order] = True
    start = 0
    for m in masks:
        flat = m.view(-1)
        pos = flat.nonzero().flatten()
        n = pos.numel()
        flat[pos[drop[start:start + n]]] = False
        start += n


def prune_by_count(weights: dict, masks: dict, scope: str, count: Callable) -> dict:
    """The common shape of magnitude-based pruners: per group (each layer, or all layers for `scope:
    global`) `count(surviving weights)` says how many to remove, and the smallest-magnitude survivors go.
    A group always keeps one weight, so the network stays connected."""
    import torch

    groups = [[n] for n in masks] if scope == "layer" else [list(masks)]
    for group in groups:
        ws = [weights[n] for n in group]
        ms = [masks[n] for n in group]
        surviving = torch.cat([w.flatten()[m.flatten()] for w, m in zip(ws, ms)])
        prune_smallest(ws, ms, min(count(surviving), surviving.numel() - 1))
    return masks


@PRUNERS.register("magnitude", params=[
    Param("rate", "number", lo=0, hi=1, lo_open=True, hi_open=True, help="fraction of surviving weights removed"),
    SCOPE], label="magnitude")
def magnitude(weights: dict, masks: dict, params: dict) -> dict:
    """Remove a fixed fraction `rate` of the surviving weights (of each layer, or globally)."""
    return prune_by_count(weights, masks, params["scope"], lambda s: math.floor(params["rate"] * s.numel()))


def pq_index(w, p: float, q: float) -> float:
    """PQ index I(w) = 1 - d^(1/q - 1/p) * ||w||_p / ||w||_q over the d entries of w (SAP)."""
    w = w.detach().double().abs().flatten()
    d = w.numel()
    norm_q = w.pow(q).sum().pow(1.0 / q)
    if d == 0 or norm_q == 0:
        return 0.0
    norm_p = w.pow(p).sum().pow(1.0 / p)
    return float(1.0 - d ** (1.0 / q - 1.0 / p) * norm_p / norm_q)


def check_pq(params: dict, key: str = "pruner") -> None:
    p, q = params["p"], params["q"]
    if not p < q:
        raise InfcopError(f"config key '{key}': p must be < q (the PQ index needs p < q), got p={p}, q={q}")


SAP_PARAMS = (Param("p", "number", lo=0, lo_open=True), Param("q", "number", lo=0, lo_open=True),
              Param("eta", "number", default=0.0, lo=0), Param("gamma", "number", default=1.0, lo=0, lo_open=True),
              Param("beta", "number", default=0.9, lo=0, hi=1, lo_open=True), SCOPE)


def sap_prune_count(w, p: float, q: float, eta: float = 0.0, gamma: float = 1.0,
                    beta: float = 0.9) -> int:
    """Number of the d surviving weights `w` to prune, as the SAP reference code counts them: it keeps
    m = ceil(d (1+eta)^(-q/(q-p)) (1-I)^(qp/(q-p))) and prunes floor(d * min(gamma (1 - m/d), beta))."""
    spec = {"p": p, "q": q, "eta": eta, "gamma": gamma, "beta": beta}
    for param in SAP_PARAMS[:-1]:
        param.check(f"pruner.{param.name}", spec[param.name])
    check_pq(spec)
    d = w.numel()
    if d == 0:
        return 0
    index = pq_index(w, p, q)
    kept = math.ceil(d * (1.0 + eta) ** (-q / (q - p)) * (1.0 - index) ** (q * p / (q - p)))
    return max(0, math.floor(d * min(gamma * (1.0 - kept / d), beta)))


@PRUNERS.register("sap", params=SAP_PARAMS, check=check_pq, label="SAP")
def sap(weights: dict, masks: dict, params: dict) -> dict:
    """SAP: the PQ index of the surviving weights sets how many to remove (adaptive fraction)."""
    args = [params[k] for k in ("p", "q", "eta", "gamma", "beta")]
    return prune_by_count(weights, masks, params["scope"], lambda s: sap_prune_count(s, *args))


class ShadowParam(SpecParam):
    """`shadow`: the pruner whose per-layer counts a random pruner copies (any pruner but a random one)."""

    def resolved(self, key: str, value) -> dict:
        out = PRUNERS.resolve(key, value)
        if PRUNERS.get(out["name"]).info.get("seeded"):
            raise InfcopError(f"config key '{key}': a random pruner cannot shadow another random pruner; "
                              f"allowed: {', '.join(e.name for e in PRUNERS if not e.info.get('seeded'))}")
        return out

    def allowed(self) -> str:
        return "a pruner ({name: ..., params}) that is not itself random"

    def json_schema(self) -> dict:
        return {"type": "object", "required": ["name"]}


SHADOW = ShadowParam("shadow", "choice")


@PRUNERS.register("random", params=[SHADOW], label="random", seeded=True)
def random_pruner(weights: dict, masks: dict, params: dict, generator) -> dict:
    """Random pruning with the same per-layer counts as the `shadow` pruner would remove now (the baseline
    of Blalock et al. 2020 at an identical layer-wise sparsity): in each layer, that many survivors drawn
    uniformly at random. A layer always keeps one weight, like the others."""
    import torch

    shadow = SHADOW.resolved("pruner.shadow", params["shadow"])
    counts = {n: int(m.sum()) for n, m in masks.items()}
    after = PRUNERS.get(shadow["name"]).obj(weights, {n: m.clone() for n, m in masks.items()}, shadow)
    for n in sorted(masks):
        count = min(counts[n] - int(after[n].sum()), counts[n] - 1)
        if count <= 0:
            continue
        flat = masks[n].view(-1)
        alive = flat.nonzero().flatten()
        flat[alive[torch.randperm(alive.numel(), generator=generator)[:count]]] = False
    return masks


def prune(model, masks: dict, spec: dict, seed: int = 0) -> dict:
    """Return new masks with weights removed from `model` (its current weights rank them; a random pruner
    draws from `seed`). The pruner may only remove surviving weights: a result that revives one or
    changes a shape is refused."""
    import torch

    from .masks import prunable

    params = PRUNERS.resolve("pruner", spec)
    entry = PRUNERS.get(params["name"])
    layers = prunable(model)
    new = {n: m.detach().clone().cpu() for n, m in masks.items()}
    weights = {n: layers[n].detach().cpu() for n in new}
    if entry.info.get("seeded"):
        out = entry.obj(weights, new, params, torch.Generator().manual_seed(seed))
    else:
        out = entry.obj(weights, new, params)
    if not isinstance(out, dict) or set(out) != set(masks):
        raise InfcopError(f"pruner '{params['name']}' must return a mask for every prunable weight")
    for n, m in out.items():
        old = masks[n].cpu()
        if m.shape != old.shape or m.dtype != torch.bool or bool((m & ~old).any()):
            raise InfcopError(f"pruner '{params['name']}' returned a bad mask for '{n}': it must be a boolean "
                              "tensor of the weight's shape that keeps only surviving weights")
    return out

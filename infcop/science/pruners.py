"""Pruners: decide how many and which surviving weights to remove. A pruner is one function registered
in PRUNERS with its parameter spec: `fn(weights, masks, params) -> new masks`, where `weights` and
`masks` map each prunable (Conv/Linear) weight name to a CPU tensor and its boolean mask. A pruner
registered with `seeded=True` draws at random and is called `fn(weights, masks, params, generator)`,
the generator seeded by the run's seed and iteration. One registered with `needs_model=True` scores the
network itself and is called `fn(weights, masks, params, model=..., data=..., seed=...)`: a copy of the
network to score (its masks applied), the job's Dataset and the seed. A pruner with a `target` param gets
`params["target"]` as the remaining fraction of all prunable weights to reach in this iteration (a
number; prune() reads the schedule: infcop.science.pruning_targets). The scores the baselines rank by (LAMP,
SNIP, SynFlow) are in infcop.science.pruner_scores. Cheap to import (torch loads when a pruner runs)."""
from __future__ import annotations

import math
from typing import Callable

from .. import InfcopError
from .pruner_scores import lamp_scores, scoring_model, snip_scores, synflow_scores
from .pruning_targets import TARGET, check_rate_or_target, remaining_target, target_count
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


def prune_by_count(weights: dict, masks: dict, scope: str, count: Callable, keep: float | None = None) -> dict:
    """The common shape of magnitude-based pruners: per group (each layer, or all layers for `scope:
    global`) `count(surviving weights)` says how many to remove, and the smallest-magnitude survivors go;
    with `keep` (a target's remaining fraction) as many go as leave `keep` of the group's weights.
    A group always keeps one weight, so the network stays connected."""
    import torch

    groups = [[n] for n in masks] if scope == "layer" else [list(masks)]
    for group in groups:
        ws = [weights[n] for n in group]
        ms = [masks[n] for n in group]
        surviving = torch.cat([w.flatten()[m.flatten()] for w, m in zip(ws, ms)])
        n = count(surviving) if keep is None else target_count(ms, keep)
        prune_smallest(ws, ms, min(n, surviving.numel() - 1))
    return masks


def drop_lowest(scores: dict, masks: dict, count: int) -> dict:
    """Clear the `count` survivors with the lowest `scores` across all layers (in place on masks). Ties go
    by position (layer order, then index); each layer keeps its highest-scoring survivor (the last of equal
    ones), so no layer is cut off."""
    import torch

    values, where, layer = [], [], []
    for i, (n, m) in enumerate(masks.items()):
        alive = m.view(-1).nonzero().flatten()
        if alive.numel() == 0:
            continue
        s = scores[n].detach().reshape(-1).double().cpu()[alive]
        if bool(s.isnan().any()):
            raise InfcopError(f"the pruner's scores of '{n}' contain NaN (an overflow?): they cannot rank the weights")
        rest = torch.ones(alive.numel(), dtype=torch.bool)
        rest[(s == s.max()).nonzero()[-1]] = False
        values.append(s[rest])
        where.append(alive[rest])
        layer.append(torch.full((int(rest.sum()),), i))
    if count <= 0 or not values:
        return masks
    order = torch.sort(torch.cat(values), stable=True).indices[:count]
    where, layer = torch.cat(where)[order], torch.cat(layer)[order]
    for i, m in enumerate(masks.values()):
        m.view(-1)[where[layer == i]] = False
    return masks


def global_count(masks: dict, params: dict) -> int:
    """How many survivors a global pruner removes: `rate` of them, or as many as its target needs."""
    if params.get("target") is not None:
        return target_count(list(masks.values()), params["target"])
    return math.floor(params["rate"] * sum(int(m.sum()) for m in masks.values()))


PRUNE_BIASES = Param("prune_biases", "bool", default=None,  # absent unless given: false
                     help="prune the Conv/Linear biases too: each bias vector a group of its own (scope layer), or "
                          "ranked with the weights (global); remaining weights then count them")
RATE = Param("rate", "number", default=None, lo=0, hi=1, lo_open=True, hi_open=True,
             help="fraction of surviving weights removed (or give `target`)")


@PRUNERS.register("magnitude", params=[RATE, SCOPE, TARGET, PRUNE_BIASES], check=check_rate_or_target,
                  label="magnitude")
def magnitude(weights: dict, masks: dict, params: dict) -> dict:
    """Remove a fixed fraction `rate` of the surviving weights (of each layer, or globally), or as many as
    reach the target's remaining fraction; the smallest magnitudes go."""
    return prune_by_count(weights, masks, params["scope"], lambda s: math.floor(params["rate"] * s.numel()),
                          keep=params.get("target"))


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


@PRUNERS.register("sap", params=(*SAP_PARAMS, PRUNE_BIASES), check=check_pq, label="SAP",
                  refuses={"target": "SAP sets its own count from the PQ index (give a target to magnitude, lamp, "
                                     "random, snip or synflow)"})
def sap(weights: dict, masks: dict, params: dict) -> dict:
    """SAP: the PQ index of the surviving weights sets how many to remove (adaptive fraction)."""
    args = [params[k] for k in ("p", "q", "eta", "gamma", "beta")]
    return prune_by_count(weights, masks, params["scope"], lambda s: sap_prune_count(s, *args))


class ShadowParam(SpecParam):
    """`shadow`: the pruner whose per-layer counts a random pruner copies (any pruner but a random one or
    one that scores the network)."""

    def resolved(self, key: str, value) -> dict:
        if isinstance(value, dict) and "target" in value:
            raise InfcopError(f"config key '{key}.target': a shadow takes no target; give 'target' to the random "
                              "pruner itself (its shadow then counts towards it)")
        out = PRUNERS.resolve(key, value)
        info = PRUNERS.get(out["name"]).info
        if info.get("seeded") or info.get("needs_model"):
            raise InfcopError(f"config key '{key}': a random pruner cannot shadow "
                              f"{'another random pruner' if info.get('seeded') else 'a pruner that scores the network'}"
                              f" ('{out['name']}'); allowed: {', '.join(shadowable())}")
        return out

    def allowed(self) -> str:
        return f"a pruner ({{name: ..., params}}) among {', '.join(shadowable())}"

    def json_schema(self) -> dict:
        return {"type": "object", "required": ["name"]}


def shadowable() -> list[str]:
    return [e.name for e in PRUNERS if not (e.info.get("seeded") or e.info.get("needs_model"))]


SHADOW = ShadowParam("shadow", "choice")
ALLOCATION = Param("allocation", "choice", default="shadow", choices=("shadow", "erk"),
                   help="per-layer counts: the shadow's, or the shadow's total spread by Erdos-Renyi-Kernel")


def check_random(params: dict, key: str) -> None:
    shadow = PRUNERS.get(SHADOW.resolved(f"{key}.shadow", params["shadow"])["name"])
    if params.get("target") is not None and params["allocation"] == "shadow" and "target" not in shadow.param_names():
        raise InfcopError(f"config key '{key}.target': with allocation: shadow the target goes to the shadow pruner, "
                          f"and '{shadow.name}' takes none; allowed: a shadow among "
                          f"{', '.join(n for n in shadowable() if 'target' in PRUNERS.get(n).param_names())}"
                          ", or allocation: erk")


def erk_survivors(shapes: dict, alive: dict, kept: int) -> dict:
    """Survivors per layer, `kept` in all, by Erdos-Renyi-Kernel (Evci et al. 2020): the density of layer l
    is eps * sum(dims) / prod(dims) of its weight tensor, so it keeps eps * sum(dims) weights; a layer whose
    share would exceed its current survivors keeps those (in IMP a layer cannot regrow; on full masks that is
    RigL's cap at dense) and eps is solved again over the others, as RigL's code does. Rounded to whole
    weights summing to `kept` (largest remainders, ties in layer order); every layer keeps at least one."""
    if kept >= sum(alive.values()):
        return dict(alive)
    raw = {n: float(sum(shape)) for n, shape in shapes.items()}
    capped: set = set()
    while True:
        free = [n for n in shapes if n not in capped]
        eps = (kept - sum(alive[n] for n in capped)) / sum(raw[n] for n in free)
        over = {n for n in free if eps * raw[n] > alive[n]}
        if not over:
            break
        capped |= over  # eps only grows as layers are capped, so a capped layer stays over
    real = {n: alive[n] if n in capped else eps * raw[n] for n in shapes}
    out = {n: math.floor(v) for n, v in real.items()}
    extra = kept - sum(out.values())
    for n in sorted(free, key=lambda n: out[n] - real[n])[:extra]:
        out[n] += 1
    return {n: max(min(1, alive[n]), min(alive[n], v)) for n, v in out.items()}


DRAW = Param("draw", "choice", default="each", choices=("each", "once"),
             help="each: a fresh random choice every iteration; once: one random order of each layer's weights, "
                  "drawn at the start from the run's seed, pruned along in every iteration (nested masks: "
                  "the random-mask control of Frankle & Carbin 2019)")


@PRUNERS.register("random", params=[SHADOW, ALLOCATION, TARGET, DRAW, PRUNE_BIASES], check=check_random,
                  label="random", seeded=True)
def random_pruner(weights: dict, masks: dict, params: dict, generator) -> dict:
    """Random pruning (the baseline of Blalock et al. 2020). Each iteration, relative to the current masks:
    in each layer, as many survivors as the `shadow` pruner would remove from this network now (its current
    weights and masks), drawn uniformly at random. The layer-wise sparsity equals the shadow method's run
    only where the shadow's counts depend on survivor counts alone (magnitude with scope layer); with global
    scope or SAP they depend on this network's weights and drift from the shadow run's. `allocation: erk`
    takes only the total from the shadow and spreads the survivors by Erdos-Renyi-Kernel (erk_survivors).
    With `target` the shadow (or ERK) counts towards it. A layer always keeps one weight. `draw: once`: the
    survivors to go are the lowest in one random order per layer (drawn from `generator`, which the caller
    seeds with the run's seed alone: infcop.running.steps.prune_seed), so every iteration's mask is nested in the last."""
    import torch

    shadow = SHADOW.resolved("pruner.shadow", params["shadow"])
    if params.get("target") is not None:
        shadow = {**{k: v for k, v in shadow.items() if k != "rate"}, "target": params["target"]}
    counts = {n: int(m.sum()) for n, m in masks.items()}
    if params["allocation"] == "erk" and params.get("target") is not None:
        kept = sum(counts.values()) - target_count(list(masks.values()), params["target"])
    else:
        after = PRUNERS.get(shadow["name"]).obj(weights, {n: m.clone() for n, m in masks.items()}, shadow)
        kept = sum(int(m.sum()) for m in after.values())
    if params["allocation"] == "erk":
        survivors = erk_survivors({n: tuple(m.shape) for n, m in masks.items()}, counts, kept)
        after = {n: survivors[n] for n in masks}
    else:
        after = {n: int(after[n].sum()) for n in masks}
    once = params.get("draw", "each") == "once"
    order = {n: torch.rand(masks[n].numel(), generator=generator) for n in sorted(masks)} if once else {}
    for n in sorted(masks):
        count = min(counts[n] - after[n], counts[n] - 1)
        if count <= 0:
            continue
        flat = masks[n].view(-1)
        alive = flat.nonzero().flatten()
        if once:
            flat[alive[torch.sort(order[n][alive], stable=True).indices[:count]]] = False
        else:
            flat[alive[torch.randperm(alive.numel(), generator=generator)[:count]]] = False
    return masks


@PRUNERS.register("lamp", params=[RATE, TARGET, PRUNE_BIASES], check=check_rate_or_target, label="LAMP")
def lamp(weights: dict, masks: dict, params: dict) -> dict:
    """LAMP (Lee et al. 2021): one global ranking of the survivors by their LAMP score (lamp_scores); the
    `rate` fraction of them (or as many as the target needs) with the lowest scores go."""
    return drop_lowest({n: lamp_scores(weights[n], m) for n, m in masks.items()}, masks, global_count(masks, params))


AT = Param("at", "choice", default="rewind", choices=("rewind", "current"),
           help="score the network at the method's rewind point (its masks applied; rewind: none: the current "
                "weights) or as it is now")


@PRUNERS.register("snip", params=[RATE, TARGET, Param("batch_size", "integer", default=128, lo=1,
                                                           help="training examples in the one scoring batch"), AT,
                                   PRUNE_BIASES],
                  check=check_rate_or_target, label="SNIP", needs_model=True)
def snip(weights: dict, masks: dict, params: dict, model, data, seed: int) -> dict:
    """SNIP (Lee et al. 2019): the survivors with the lowest |w * dL/dw| on one training batch go, one global
    ranking, `rate` of them (or as many as the target needs)."""
    scores = snip_scores(model, masks, data, params["batch_size"], seed)
    return drop_lowest(scores, masks, global_count(masks, params))


@PRUNERS.register("synflow", params=[RATE, TARGET, Param("rounds", "integer", default=100, lo=1,
                                                              help="scoring rounds within one prune"), AT,
                                      PRUNE_BIASES],
                  check=check_rate_or_target, label="SynFlow", needs_model=True)
def synflow(weights: dict, masks: dict, params: dict, model, data, seed: int) -> dict:
    """SynFlow (Tanaka et al. 2020), data-free (`data` gives the input's shape only): `rounds` times, score
    the survivors and keep the highest-scoring ones, the kept fraction shrinking exponentially, to
    (kept / alive)^(j / rounds) after round j, until `rate` of the survivors (or as many as the target
    needs) are gone."""
    alive = sum(int(m.sum()) for m in masks.values())
    final = alive - global_count(masks, params)
    shape = tuple(data.train.x.shape[1:])
    for j in range(1, params["rounds"] + 1):
        kept = final if j == params["rounds"] else math.floor(alive * (final / alive) ** (j / params["rounds"]) + 0.5)
        now = sum(int(m.sum()) for m in masks.values())
        drop_lowest(synflow_scores(model, masks, shape), masks, now - kept)
    return masks


def prune(model, masks: dict, spec: dict, seed: int = 0, *, data=None, rewind: dict | None = None,
          iteration: int | None = None, iterations: int | None = None) -> dict:
    """Return new masks with weights removed from `model` (its current weights rank them; a random pruner
    draws from `seed`). A pruner that scores the network (SNIP, SynFlow) needs `data` (the job's Dataset),
    reads `seed` for its batch, and with `at: rewind` scores the `rewind` state (the method's rewind point;
    None: none, the current weights). A `target` needs `iteration` (k) and `iterations` (the method's K).
    The pruner may only remove surviving weights: a result that revives one or changes a shape is refused."""
    import torch

    from .masks import prunable

    params = PRUNERS.resolve("pruner", spec)
    entry = PRUNERS.get(params["name"])
    if params.get("target") is not None:
        params["target"] = remaining_target(params["target"], iteration, iterations)
    layers = prunable(model, biases=True)
    new = {n: m.detach().clone().cpu() for n, m in masks.items()}
    if params.get("prune_biases"):  # the biases join as groups of their own (all alive the first time)
        for n in sorted(set(layers) - set(prunable(model)) - set(new)):
            new[n] = torch.ones(layers[n].shape, dtype=torch.bool)
    before = {n: m.clone() for n, m in new.items()}
    weights = {n: layers[n].detach().cpu() for n in new}
    if entry.info.get("needs_model"):
        if data is None:
            raise InfcopError(f"pruner '{params['name']}' scores the network on the training data, but prune() got "
                              "no data (the job's Dataset)")
        scored = scoring_model(model, new, params["at"], rewind)
        out = entry.obj(weights, new, params, model=scored, data=data, seed=seed)
    elif entry.info.get("seeded"):
        out = entry.obj(weights, new, params, torch.Generator().manual_seed(seed))
    else:
        out = entry.obj(weights, new, params)
    if not isinstance(out, dict) or set(out) != set(before):
        raise InfcopError(f"pruner '{params['name']}' must return a mask for every prunable weight")
    for n, m in out.items():
        old = before[n]
        if m.shape != old.shape or m.dtype != torch.bool or bool((m & ~old).any()):
            raise InfcopError(f"pruner '{params['name']}' returned a bad mask for '{n}': it must be a boolean "
                              "tensor of the weight's shape that keeps only surviving weights")
    return out

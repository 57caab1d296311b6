"""Information flow, gradient flow, CKA and similarity to dense, measured in one streaming pass over the
probe set (eval mode). Nothing holds all activations: only running sums per layer and per layer pair.

Conv activations enter as spatial means (the study's) and, for CKA and the `positions` connectivity,
with spatial positions as samples, subsampled on a fixed grid of at most `max_positions` per image so
that the cost stays bounded."""
from __future__ import annotations

import math
import weakref
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field

import torch
from torch import nn

from .data import Split
from .models import flow_layers


@dataclass
class Flows:
    layers: list[str]
    connectivity: list[float]  # one per consecutive layer pair: signed mean of the Pearson matrix
    abs_connectivity: list[float] = field(default_factory=list)  # the same matrix's mean |r|
    gradflow: list[float] = field(default_factory=list)  # one per layer
    similarity: list[float] = field(default_factory=list)  # one per layer; empty without a reference
    cka: list[float] = field(default_factory=list)  # one per layer; empty without a reference
    positions: dict = field(default_factory=dict)  # {'connectivity': [...], 'abs_connectivity': [...]}

    @property
    def pairs(self) -> list[str]:
        return [f"{a}→{b}" for a, b in zip(self.layers, self.layers[1:])]

    def vectors(self) -> dict:
        """Every per-layer vector by its record name ('connectivity@positions' for the positions mode)."""
        out = {"connectivity": self.connectivity, "abs_connectivity": self.abs_connectivity,
               "gradflow": self.gradflow, "similarity": self.similarity, "cka": self.cka}
        out.update({f"{k}@positions": v for k, v in self.positions.items()})
        return out


def _grid(x: torch.Tensor, max_positions: int) -> torch.Tensor:
    """(N, C, H, W) or (N, C, L) -> (N * P, C): positions on a fixed grid of stride s, P <= max_positions."""
    if x.dim() == 3:  # a 1-D signal (Conv1d)
        x = x[:, :, ::max(1, math.ceil(x.shape[-1] / max_positions))]
        return x.permute(0, 2, 1).reshape(-1, x.shape[1])
    h, w = x.shape[-2:]
    stride = max(1, math.ceil(math.sqrt(h * w / max_positions)))
    x = x[:, :, ::stride, ::stride]
    return x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])


def _spatial_mean(x: torch.Tensor) -> torch.Tensor:
    return x.mean(dim=tuple(range(2, x.dim()))) if x.dim() > 2 else x


def _pair_positions(a: torch.Tensor, b: torch.Tensor, max_positions: int):
    """Paired samples of two consecutive layers with positions as samples: the finer map is average-pooled
    to the coarser one's grid; a linear layer has no positions, so a pair with one uses spatial means."""
    if a.dim() != b.dim() or a.dim() not in (3, 4):
        return _spatial_mean(a), _spatial_mean(b)
    spatial = a.dim() - 2
    size = tuple(min(x, y) for x, y in zip(a.shape[2:], b.shape[2:]))
    pool = nn.functional.adaptive_avg_pool1d if spatial == 1 else nn.functional.adaptive_avg_pool2d
    a = pool(a, size) if tuple(a.shape[2:]) != size else a
    b = pool(b, size) if tuple(b.shape[2:]) != size else b
    return _grid(a, max_positions), _grid(b, max_positions)


@contextmanager
def capture_activations(model: nn.Module):
    """Collect each flow layer's output (detached) per forward call."""
    layers = flow_layers(model)
    acts: list = [None] * len(layers)
    handles = []
    for i, (_, m) in enumerate(layers):
        def hook(_m, _inp, out, i=i):
            acts[i] = out.detach()
        handles.append(m.register_forward_hook(hook))
    try:
        yield [n for n, _ in layers], acts
    finally:
        for h in handles:
            h.remove()


class _PairStats:
    """Running sums for the Pearson correlation between every unit of layer a and every unit of b."""

    def __init__(self):
        self.n = 0
        self.sa = self.sb = self.saa = self.sbb = self.sab = None

    def add(self, a: torch.Tensor, b: torch.Tensor):
        a, b = a.double(), b.double()
        if self.sa is None:
            self.sa, self.sb = a.sum(0), b.sum(0)
            self.saa, self.sbb, self.sab = (a * a).sum(0), (b * b).sum(0), a.T @ b
        else:
            self.sa += a.sum(0)
            self.sb += b.sum(0)
            self.saa += (a * a).sum(0)
            self.sbb += (b * b).sum(0)
            self.sab += a.T @ b
        self.n += a.shape[0]

    def correlations(self) -> torch.Tensor:
        n = self.n
        ma, mb = self.sa / n, self.sb / n
        va = (self.saa / n - ma * ma).clamp_min(0)
        vb = (self.sbb / n - mb * mb).clamp_min(0)
        cov = self.sab / n - torch.outer(ma, mb)
        sd = torch.outer(va.sqrt(), vb.sqrt())
        # a constant unit (e.g. one whose weights are all pruned) has no defined correlation: count it 0
        corr = torch.where(sd > 1e-12, cov / sd.clamp_min(1e-300), torch.zeros_like(cov))
        return corr.clamp(-1, 1)


class _CKAStats:
    """Running sums for linear CKA between two representations of the same samples (feature space:
    memory p x p, not n x n)."""

    def __init__(self):
        self.n = 0
        self.sx = self.sy = self.xx = self.yy = self.yx = None

    def add(self, x: torch.Tensor, y: torch.Tensor):
        x, y = x.double(), y.double()
        parts = (x.sum(0), y.sum(0), x.T @ x, y.T @ y, y.T @ x)
        if self.sx is None:
            self.sx, self.sy, self.xx, self.yy, self.yx = parts
        else:
            for mine, new in zip((self.sx, self.sy, self.xx, self.yy, self.yx), parts):
                mine += new
        self.n += x.shape[0]

    def value(self) -> float:
        n = self.n
        mx, my = self.sx / n, self.sy / n
        cxx = self.xx - n * torch.outer(mx, mx)
        cyy = self.yy - n * torch.outer(my, my)
        cyx = self.yx - n * torch.outer(my, mx)
        denom = torch.linalg.matrix_norm(cxx) * torch.linalg.matrix_norm(cyy)
        # a constant representation (a layer pruned away) shares nothing with the dense one
        return float((torch.linalg.matrix_norm(cyx) ** 2 / denom).clamp(0, 1)) if denom > 1e-300 else 0.0


def _views(out: torch.Tensor, max_positions: int, grid: bool = True) -> tuple:
    """(spatial means, positions on the grid or None) of one layer's output, as float32."""
    out = out.float()
    return _spatial_mean(out), ((_grid(out, max_positions) if out.dim() in (3, 4) else out) if grid else None)


class _ReferenceActivations:
    """The reference network's flow-layer activations on the probe, kept between calls. The reference is
    the dense network, which never changes within a job, while measure_flows runs after every retraining
    epoch: its forward pass over the probe is done once. The entry is used only while everything its
    activations depend on is exactly as when they were recorded: the reference's parameters and buffers
    (compared element by element with a snapshot), the probe's contents, the batch size, the positions
    grid, the autocast context and the thread count; otherwise it is recomputed."""

    def __init__(self, reference: nn.Module, probe: Split, batch_size: int, max_positions: int, autocast,
                 acts: list):
        self.state = {k: v.detach().clone() for k, v in reference.state_dict().items()}
        self.probe_x, self.probe_y = probe.x.detach().clone(), probe.y.detach().clone()
        self.key = (batch_size, max_positions, autocast, torch.get_num_threads())
        self.acts = acts  # per probe batch: one (means, positions) pair per flow layer

    def valid_for(self, reference: nn.Module, probe: Split, batch_size: int, max_positions: int, autocast) -> bool:
        if self.key[:2] != (batch_size, max_positions) or self.key[2] is not autocast \
                or self.key[3] != torch.get_num_threads():
            return False
        if not (_same(probe.x, self.probe_x) and _same(probe.y, self.probe_y)):
            return False
        state = reference.state_dict()
        return state.keys() == self.state.keys() and all(_same(state[k], v) for k, v in self.state.items())


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return (a.shape == b.shape and a.dtype == b.dtype and a.device == b.device
            and bool(torch.equal(a.detach(), b)))


_REFERENCE_CACHE: "weakref.WeakKeyDictionary[nn.Module, _ReferenceActivations]" = weakref.WeakKeyDictionary()


def _reference_activations(reference: nn.Module, probe: Split, batch_size: int, max_positions: int, amp,
                           autocast) -> list:
    """The reference's flow-layer activations per probe batch: from the cache while it is valid,
    computed (no_grad, eval mode, the same batches) and cached otherwise."""
    entry = _REFERENCE_CACHE.get(reference)
    if entry is not None and entry.valid_for(reference, probe, batch_size, max_positions, autocast):
        return entry.acts
    recorded = []
    with capture_activations(reference) as (_, ref_acts):
        for start in range(0, len(probe), batch_size):
            with torch.no_grad(), amp():
                reference(probe.x[start:start + batch_size])
            recorded.append([_views(a, max_positions) for a in ref_acts])
    _REFERENCE_CACHE[reference] = _ReferenceActivations(reference, probe, batch_size, max_positions, autocast,
                                                        recorded)
    return recorded


def measure_flows(model: nn.Module, probe: Split, batch_size: int = 256, reference: nn.Module | None = None,
                  masks: dict | None = None, gradients: bool = True, autocast=None, positions: bool = False,
                  max_positions: int = 16) -> Flows:
    """Connectivity of consecutive flow layers (signed and absolute mean correlation; with `positions`
    also with spatial positions as samples), per-layer mean |dLoss/dW| (a real backward pass of the mean
    loss over the probe; over surviving weights when `masks` is given) and, with `reference`, per-layer
    mean cosine similarity of activations and linear CKA to the reference network (whose activations
    on the probe are computed once and reused while the reference and the probe stay the same)."""
    was_training = model.training
    model.eval()
    if reference is not None:
        reference.eval()
    amp = autocast or nullcontext
    layers = flow_layers(model)
    weights = [m.weight for _, m in layers]
    saved_grads = [w.grad for w in weights]
    for w in weights:
        w.grad = None
    n_pairs = max(len(layers) - 1, 0)
    pairs, pos_pairs = [_PairStats() for _ in range(n_pairs)], [_PairStats() for _ in range(n_pairs)]
    ckas = [_CKAStats() for _ in layers]
    cos_sums = torch.zeros(len(layers), dtype=torch.float64, device=probe.x.device)
    n_total = len(probe)
    ref_batches = (_reference_activations(reference, probe, batch_size, max_positions, amp, autocast)
                   if reference is not None else None)
    with capture_activations(model) as (names, acts):
        for b, start in enumerate(range(0, n_total, batch_size)):
            xb, yb = probe.x[start:start + batch_size], probe.y[start:start + batch_size]
            with torch.set_grad_enabled(gradients), amp():
                out = model(xb)
                if gradients:
                    loss = nn.functional.cross_entropy(out.float(), yb, reduction="sum") / n_total
            if gradients:
                loss.backward()
            views = [_views(a, max_positions, grid=ref_batches is not None) for a in acts]
            for i, st in enumerate(pairs):
                st.add(views[i][0], views[i + 1][0])
                if positions:
                    pos_pairs[i].add(*_pair_positions(acts[i].float(), acts[i + 1].float(), max_positions))
            if ref_batches is not None:
                for i, (mean, pos) in enumerate(views):
                    ref_mean, ref_pos = ref_batches[b][i]
                    cos_sums[i] += nn.functional.cosine_similarity(
                        mean.double().flatten(1), ref_mean.double().flatten(1), dim=1, eps=1e-12).sum()
                    ckas[i].add(pos, ref_pos)
    grad = []
    if gradients:
        prunable_names = {id(m.weight): f"{n}.weight" for n, m in layers}
        for w in weights:
            g = w.grad.detach().abs()
            key = prunable_names[id(w)]
            if masks is not None and key in masks:
                m = masks[key].to(g.device)
                g = g[m] if m.any() else g.new_zeros(1)
            grad.append(float(g.double().mean()))
    for w, g in zip(weights, saved_grads):
        w.grad = g
    model.train(was_training)
    corr = [st.correlations() for st in pairs]
    pos = {}
    if positions:
        pos_corr = [st.correlations() for st in pos_pairs]
        pos = {"connectivity": [float(c.mean()) for c in pos_corr],
               "abs_connectivity": [float(c.abs().mean()) for c in pos_corr]}
    return Flows(layers=names, connectivity=[float(c.mean()) for c in corr],
                 abs_connectivity=[float(c.abs().mean()) for c in corr], gradflow=grad,
                 similarity=(cos_sums / n_total).tolist() if reference is not None else [],
                 cka=[c.value() for c in ckas] if reference is not None else [], positions=pos)


def noise_floors(model: nn.Module, probe: Split, full: Flows, batch_size: int = 256, masks: dict | None = None,
                 autocast=None, kind: str = "l2", resamples: int = 20, quantile: float = 0.95, seed: int = 0,
                 max_positions: int = 16) -> dict:
    """How far a network's flow vectors move when only the probe sample changes: over `resamples` random
    splits of the probe into two disjoint halves, the distance between the halves' vectors, divided by
    sqrt(2) (two independent half-probe estimates differ sqrt(2) times more than two full-probe
    estimates of the same flow would), at the `quantile`. A pruned network's distance below this floor
    is indistinguishable from the dense network's own measurement noise. Per measure key; CKA has none
    (a network's CKA to itself is exactly 1 on any sample)."""
    from .measures import MEASURES, flow_distance, key, vector_key

    g = torch.Generator().manual_seed(3000 + seed)
    half = len(probe) // 2
    keys = [key(e.name, sp) for e in MEASURES if e.info["noise_floor"]
            for sp in (("mean", "positions") if e.info["spatial"] else ("mean",))]
    full_vectors = full.vectors()
    samples: dict = {k: [] for k in keys}
    for _ in range(resamples):
        order = torch.randperm(len(probe), generator=g).to(probe.x.device)
        a, b = (Split(probe.x[idx], probe.y[idx]) for idx in (order[:half], order[half:2 * half]))
        fa, fb = (measure_flows(model, s, batch_size, masks=masks, autocast=autocast, positions=True,
                                max_positions=max_positions).vectors() for s in (a, b))
        for k in keys:
            vec = vector_key(k)
            d = flow_distance(fa[vec], fb[vec], "l2") / math.sqrt(2)
            if kind == "relative":
                norm = math.sqrt(sum(v * v for v in full_vectors[vec]))
                d = d / norm if norm > 0 else d
            samples[k].append(d)
    return {k: float(torch.tensor(v, dtype=torch.float64).quantile(quantile)) for k, v in samples.items()}

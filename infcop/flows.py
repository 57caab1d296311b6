"""Information flow, gradient flow and similarity to dense, measured in one streaming pass over the
probe set (eval mode). Nothing holds all activations: only running sums per layer and per layer pair."""
from __future__ import annotations

from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field

import torch
from torch import nn

from .data import Split
from .models import flow_layers


@dataclass
class Flows:
    layers: list[str]
    connectivity: list[float]  # one per consecutive layer pair
    gradflow: list[float] = field(default_factory=list)  # one per layer
    similarity: list[float] = field(default_factory=list)  # one per layer; empty without a reference

    @property
    def pairs(self) -> list[str]:
        return [f"{a}→{b}" for a, b in zip(self.layers, self.layers[1:])]


@contextmanager
def capture_activations(model: nn.Module):
    """Collect each flow layer's output per forward call, conv outputs averaged over space."""
    layers = flow_layers(model)
    acts: list = [None] * len(layers)
    handles = []
    for i, (_, m) in enumerate(layers):
        def hook(_m, _inp, out, i=i):
            out = out.detach()
            acts[i] = out.mean(dim=tuple(range(2, out.dim()))) if out.dim() > 2 else out
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

    def mean_correlation(self) -> float:
        n = self.n
        ma, mb = self.sa / n, self.sb / n
        va = (self.saa / n - ma * ma).clamp_min(0)
        vb = (self.sbb / n - mb * mb).clamp_min(0)
        cov = self.sab / n - torch.outer(ma, mb)
        sd = torch.outer(va.sqrt(), vb.sqrt())
        # a constant unit (e.g. one whose weights are all pruned) has no defined correlation: count it 0
        corr = torch.where(sd > 1e-12, cov / sd.clamp_min(1e-300), torch.zeros_like(cov))
        return float(corr.clamp(-1, 1).mean())


def measure_flows(model: nn.Module, probe: Split, batch_size: int = 256, reference: nn.Module | None = None,
                  masks: dict | None = None, gradients: bool = True, autocast=None) -> Flows:
    """Connectivity of consecutive flow layers, per-layer mean |dLoss/dW| (a real backward pass of the
    mean loss over the probe; over surviving weights when `masks` is given) and, with `reference`,
    per-layer mean cosine similarity of activations to the reference network."""
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
    pairs = [_PairStats() for _ in range(max(len(layers) - 1, 0))]
    cos_sums = torch.zeros(len(layers), dtype=torch.float64, device=probe.x.device)
    n_total = len(probe)
    with capture_activations(model) as (names, acts):
        ref_ctx = capture_activations(reference) if reference is not None else nullcontext((None, None))
        with ref_ctx as (_, ref_acts):
            for start in range(0, n_total, batch_size):
                xb, yb = probe.x[start:start + batch_size], probe.y[start:start + batch_size]
                with torch.set_grad_enabled(gradients), amp():
                    out = model(xb)
                    if gradients:
                        loss = nn.functional.cross_entropy(out.float(), yb, reduction="sum") / n_total
                if gradients:
                    loss.backward()
                for i, st in enumerate(pairs):
                    st.add(acts[i].float(), acts[i + 1].float())
                if reference is not None:
                    with torch.no_grad(), amp():
                        reference(xb)
                    for i in range(len(layers)):
                        cos_sums[i] += nn.functional.cosine_similarity(
                            acts[i].double().flatten(1), ref_acts[i].double().flatten(1), dim=1, eps=1e-12).sum()
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
    return Flows(layers=names, connectivity=[st.mean_correlation() for st in pairs], gradflow=grad,
                 similarity=(cos_sums / n_total).tolist() if reference is not None else [])

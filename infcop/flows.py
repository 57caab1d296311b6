"""Information flow, gradient flow and similarity to dense, measured in one streaming pass over the
probe set (eval mode). Nothing holds all activations: only running sums per layer and per layer pair."""
from __future__ import annotations

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


class _ReferenceActivations:
    """The reference network's flow-layer activations on the probe, kept between calls. The reference is
    the dense network, which never changes within a job, while measure_flows runs after every retraining
    epoch: its forward pass over the probe (a quarter of the flow time) is done once. The entry is used
    only while everything its activations depend on is exactly as when they were recorded: the
    reference's parameters and buffers (compared element by element with a snapshot), the probe's
    contents, the batch size, the autocast context and the thread count; otherwise it is recomputed."""

    def __init__(self, reference: nn.Module, probe: Split, batch_size: int, autocast, acts: list):
        self.state = {k: v.detach().clone() for k, v in reference.state_dict().items()}
        self.probe_x, self.probe_y = probe.x.detach().clone(), probe.y.detach().clone()
        self.batch_size, self.autocast, self.threads = batch_size, autocast, torch.get_num_threads()
        self.acts = acts  # per probe batch: one tensor per flow layer

    def valid_for(self, reference: nn.Module, probe: Split, batch_size: int, autocast) -> bool:
        if (batch_size != self.batch_size or autocast is not self.autocast
                or torch.get_num_threads() != self.threads):
            return False
        if not (_same(probe.x, self.probe_x) and _same(probe.y, self.probe_y)):
            return False
        state = reference.state_dict()
        return state.keys() == self.state.keys() and all(_same(state[k], v) for k, v in self.state.items())


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return (a.shape == b.shape and a.dtype == b.dtype and a.device == b.device
            and bool(torch.equal(a.detach(), b)))


_REFERENCE_CACHE: "weakref.WeakKeyDictionary[nn.Module, _ReferenceActivations]" = weakref.WeakKeyDictionary()


def _reference_activations(reference: nn.Module, probe: Split, batch_size: int, amp, autocast) -> list:
    """The reference's flow-layer activations per probe batch: from the cache while it is valid,
    computed (no_grad, eval mode, the same batches) and cached otherwise."""
    entry = _REFERENCE_CACHE.get(reference)
    if entry is not None and entry.valid_for(reference, probe, batch_size, autocast):
        return entry.acts
    recorded = []
    with capture_activations(reference) as (_, ref_acts):
        for start in range(0, len(probe), batch_size):
            with torch.no_grad(), amp():
                reference(probe.x[start:start + batch_size])
            recorded.append(list(ref_acts))
    _REFERENCE_CACHE[reference] = _ReferenceActivations(reference, probe, batch_size, autocast, recorded)
    return recorded


def measure_flows(model: nn.Module, probe: Split, batch_size: int = 256, reference: nn.Module | None = None,
                  masks: dict | None = None, gradients: bool = True, autocast=None) -> Flows:
    """Connectivity of consecutive flow layers, per-layer mean |dLoss/dW| (a real backward pass of the
    mean loss over the probe; over surviving weights when `masks` is given) and, with `reference`,
    per-layer mean cosine similarity of activations to the reference network (whose activations on the
    probe are computed once and reused while the reference and the probe stay the same)."""
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
    ref_cached = None
    if reference is not None and reference is not model:
        # the reference's pass is independent of the model's: done first, or taken from the cache
        ref_cached = _reference_activations(reference, probe, batch_size, amp, autocast)
    with capture_activations(model) as (names, acts):
        # a reference that is the model itself (the dense stage) is run after the model, batch by batch
        ref_ctx = capture_activations(reference) if reference is model else nullcontext((None, None))
        with ref_ctx as (_, ref_acts):
            for b, start in enumerate(range(0, n_total, batch_size)):
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
                    if ref_cached is not None:
                        ref_batch = ref_cached[b]
                    else:
                        with torch.no_grad(), amp():
                            reference(xb)
                        ref_batch = ref_acts
                    for i in range(len(layers)):
                        cos_sums[i] += nn.functional.cosine_similarity(
                            acts[i].double().flatten(1), ref_batch[i].double().flatten(1), dim=1, eps=1e-12).sum()
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


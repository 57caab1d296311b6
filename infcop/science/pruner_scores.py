"""What the pruning baselines rank by: LAMP's per-layer scores and the saliencies SNIP (|w * dL/dw| on a
training batch) and SynFlow (|w * dR/dw| of the absolute-valued network) compute on a copy of the network
(scoring_model). Plain tensor functions; the pruners that rank by them are registered in infcop.science.pruners.
Torch loads when one runs."""
from __future__ import annotations


def lamp_scores(w, mask):
    """LAMP scores of a layer's survivors (0 elsewhere): sorted ascending by squared magnitude (ties by
    position), the u-th scores w_(u)^2 / sum over v >= u of w_(v)^2; the largest scores 1."""
    import torch

    alive = mask.reshape(-1).nonzero().flatten()
    sq = w.detach().double().reshape(-1)[alive].pow(2)
    order = torch.sort(sq, stable=True).indices
    ranked = sq[order]
    tail = ranked.flip(0).cumsum(0).flip(0)  # sum over v >= u
    out = torch.zeros(w.numel(), dtype=torch.float64)
    out[alive[order]] = torch.where(tail > 0, ranked / tail.clamp_min(1e-300), torch.zeros_like(ranked))
    return out.view(w.shape)


def snip_scores(model, masks: dict, data, batch_size: int, seed: int) -> dict:
    """SNIP's |w * dL/dw| of each prunable weight: L the mean cross-entropy over `batch_size` training
    examples drawn with `seed` (eval mode, so the batch and the network's buffers decide nothing else)."""
    import torch
    from torch import nn

    from .masks import prunable

    train = data.train
    pick = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:batch_size]
    device = next(model.parameters()).device
    x, y = train.x[pick.to(train.x.device)].to(device), train.y[pick.to(train.y.device)].to(device)
    model.eval()
    ws = [prunable(model, biases=True)[n] for n in masks]
    grads = torch.autograd.grad(nn.functional.cross_entropy(model(x), y), ws)
    return {n: (w * g).detach().abs().cpu() for n, w, g in zip(masks, ws, grads)}


def synflow_scores(model, masks: dict, input_shape) -> dict:
    """SynFlow's |w * dR/dw|: R the summed output, for an input of ones, of the network with every parameter
    and buffer replaced by its absolute value (double precision, eval mode, current masks applied)."""
    import torch

    from .masks import prunable

    model.double().eval()
    ws = [prunable(model, biases=True)[n] for n in masks]
    with torch.no_grad():
        for t in model.state_dict().values():
            if t.is_floating_point():
                t.abs_()
        for w, n in zip(ws, masks):
            w.mul_(masks[n].to(w.device, w.dtype))
    x = torch.ones((1, *input_shape), dtype=torch.float64, device=ws[0].device)
    grads = torch.autograd.grad(model(x).sum(), ws)
    return {n: (w * g).detach().abs().cpu() for n, w, g in zip(masks, ws, grads)}


def scoring_model(model, masks: dict, at: str, rewind: dict | None):
    """A copy of `model` to score: loaded with the rewind point's weights when `at: rewind` and there is one,
    the masks applied (the masks of the earlier iterations hold there too)."""
    import copy

    import torch

    from .masks import prunable

    out = copy.deepcopy(model)
    if at == "rewind" and rewind is not None:
        out.load_state_dict(rewind)
    with torch.no_grad():
        for n, w in prunable(out, biases=True).items():
            if n in masks:
                w.mul_(masks[n].to(w.device, w.dtype))
    return out

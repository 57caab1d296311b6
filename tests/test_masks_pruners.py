import math

import pytest
import torch
from torch import nn

from infcop import InfcopError
from infcop.science.masks import MaskEnforcer, full_masks, prunable, remaining_fraction
from infcop.science.models import build_model
from infcop.science.pruners import pq_index, prune, sap_prune_count
from infcop.science.training import optimizer_for


@pytest.mark.parametrize("spec", ["sgd", {"name": "sgd", "momentum": 0.0}, "adam", {"name": "adamw", "eps": 1e-6}])
def test_optimizers_are_torch_optims_with_the_configured_hyperparameters(spec):
    tr = {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 1e-3}
    opt = optimizer_for(build_model("small_cnn", 1, 10, 8), tr, spec)
    group = opt.param_groups[0]
    name = spec if isinstance(spec, str) else spec["name"]
    assert type(opt) is {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[name]
    assert group["lr"] == 0.05
    if name == "sgd":  # SGD takes training.momentum/nesterov/weight_decay unless the spec sets them
        momentum = 0.0 if isinstance(spec, dict) else 0.8
        assert (group["momentum"], group["nesterov"], group["weight_decay"]) == (momentum, momentum > 0, 1e-3)
    else:  # Adam and AdamW take their own defaults: L2 0 for Adam, decoupled 0.01 for AdamW
        assert group["betas"] == (0.9, 0.999) and group["weight_decay"] == (0.0 if name == "adam" else 0.01)
        assert group["eps"] == (1e-6 if isinstance(spec, dict) else 1e-8)


def test_prunable_are_conv_and_linear_weights_only():
    model = build_model("vgg11", 3, 10, 32)
    names = set(prunable(model))
    assert all(n.endswith(".weight") for n in names)
    assert not any(isinstance(dict(model.named_modules())[n.rsplit(".", 1)[0]], nn.BatchNorm2d) for n in names)
    assert len(names) == 8 + 1


def test_remaining_fraction_counts_prunable_weights_only():
    model = build_model("mlp", 1, 10, 8)
    masks = full_masks(model)
    masks["fc1.weight"][:] = False
    total = sum(m.numel() for m in masks.values())
    assert remaining_fraction(masks) == pytest.approx(1 - 64 * 256 / total)


@pytest.mark.parametrize("spec", [{"name": "sgd", "momentum": 0.9, "nesterov": True, "weight_decay": 0.01},
                                  {"name": "adam", "weight_decay": 0.01}, {"name": "adamw", "weight_decay": 0.1}])
def test_masked_weights_stay_exactly_zero_with_momentum_and_weight_decay(spec):
    torch.manual_seed(0)
    model = build_model("small_cnn", 1, 10, 8)
    masks = prune(model, full_masks(model), {"name": "magnitude", "rate": 0.5, "scope": "layer"})
    enforcer = MaskEnforcer(model, masks)
    enforcer.apply_weights()
    opt = optimizer_for(model, {"lr": 0.01}, spec)
    for _ in range(20):
        loss = model(torch.randn(16, 1, 8, 8)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        enforcer.apply_grads()
        opt.step()
        enforcer.apply_weights()
    params = prunable(model)
    for n, m in masks.items():
        assert torch.all(params[n][~m] == 0)
        assert torch.any(params[n][m] != 0)
        state = opt.state[params[n]]  # the optimizer never accumulates anything for a pruned weight
        first = state["momentum_buffer"] if spec["name"] == "sgd" else state["exp_avg"]
        assert torch.all(first[~m] == 0) and torch.any(first[m] != 0)


def test_pq_index_by_hand():
    w = torch.tensor([3.0, -4.0, 0.0, 1.0])
    # (p, q) = (1, 2): 1 - d^(1/2 - 1) * ||w||_1 / ||w||_2 = 1 - 4^-0.5 * 8 / sqrt(26)
    assert pq_index(w, 1, 2) == pytest.approx(1 - 0.5 * 8 / math.sqrt(26))
    # (p, q) = (0.5, 1): 1 - d^(1 - 2) * ||w||_0.5 / ||w||_1 = 1 - (1/4) * (sqrt3+2+0+1)^2 / 8
    assert pq_index(w, 0.5, 1) == pytest.approx(1 - 0.25 * (math.sqrt(3) + 3) ** 2 / 8)
    assert pq_index(torch.ones(10), 1, 2) == pytest.approx(0.0)


def test_sap_prune_count_by_hand():
    w = torch.tensor([3.0, -4.0, 0.0, 1.0])
    d = 4
    one_minus_i = 0.5 * 8 / math.sqrt(26)
    r = d * one_minus_i ** 2  # (p, q) = (1, 2), eta = 0: exponent qp/(q-p) = 2
    assert sap_prune_count(w, 1, 2) == math.floor(d * min(1 - r / d, 0.9))
    one_minus_i = 0.25 * (math.sqrt(3) + 3) ** 2 / 8
    r = d * 2 ** (-1 / 0.5) * one_minus_i ** 1  # (0.5, 1), eta = 1: (1+eta)^(-q/(q-p)) = 2^-2
    assert sap_prune_count(w, 0.5, 1, eta=1.0) == math.floor(d * min(1 - r / d, 0.9))
    # beta caps the fraction; gamma scales it
    w = torch.zeros(1000)
    w[0] = 1.0
    assert sap_prune_count(w, 1, 2, beta=0.5) == 500
    assert sap_prune_count(w, 1, 2, gamma=0.1, beta=1.0) == math.floor(1000 * 0.1 * (1 - 1 / 1000))


@pytest.mark.parametrize("p,q", [(2, 1), (1, 1)])
def test_p_not_below_q_is_rejected(p, q):
    with pytest.raises(InfcopError, match="p must be < q"):
        sap_prune_count(torch.ones(4), p, q)


def test_magnitude_layer_prunes_rate_of_surviving_smallest():
    model = nn.Sequential(nn.Linear(10, 10, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.arange(100, dtype=torch.float32).reshape(10, 10) - 50)
    masks = full_masks(model)
    masks["0.weight"].view(-1)[50] = False  # |w| = 0 already gone: only survivors are ranked
    new = prune(model, masks, {"name": "magnitude", "rate": 0.2})
    kept = new["0.weight"].view(-1)
    assert int(kept.sum()) == 99 - math.floor(0.2 * 99)
    mags = (torch.arange(100) - 50).abs()
    assert mags[~kept].max() <= mags[kept].min()
    assert masks["0.weight"].sum() == 99  # input masks untouched


def test_global_scope_ranks_across_layers():
    model = nn.Sequential(nn.Linear(4, 4, bias=False), nn.Linear(4, 4, bias=False))
    with torch.no_grad():
        model[0].weight.fill_(0.01)
        model[1].weight.fill_(1.0)
    new = prune(model, full_masks(model), {"name": "magnitude", "rate": 0.25, "scope": "global"})
    assert int(new["0.weight"].sum()) == 8 and int(new["1.weight"].sum()) == 16


def test_sap_pruner_removes_the_sap_count():
    torch.manual_seed(0)
    model = build_model("small_cnn", 1, 10, 8)
    masks = full_masks(model)
    new = prune(model, masks, {"name": "sap", "p": 1, "q": 2, "scope": "layer"})
    for n, w in prunable(model).items():
        assert int((~new[n]).sum()) == sap_prune_count(w.detach().flatten(), 1, 2)


def test_unknown_pruner_and_scope():
    model = build_model("mlp", 1, 10, 8)
    with pytest.raises(InfcopError, match="known: magnitude, sap, random"):
        prune(model, full_masks(model), {"name": "randm"})
    with pytest.raises(InfcopError, match="needs 'shadow'"):
        prune(model, full_masks(model), {"name": "random"})
    with pytest.raises(InfcopError, match="scope"):
        prune(model, full_masks(model), {"name": "magnitude", "rate": 0.2, "scope": "block"})

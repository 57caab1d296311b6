"""SAP as the reference code counts and masks: a transcription of its prune-count rule (the PQ index over
the surviving weights, m = ceil(d (1+eta)^(q/(p-q)) (1-I)^(qp/(q-p))) kept, floor(d min(gamma (1 - m/d),
beta)) pruned, weights below the pivot magnitude removed), compared with infcop's pruner on random
weights (seeded by a checksum of the case, so a failure reproduces), for both scopes, and where weights
tie at the pivot."""
import itertools
import math
import zlib

import pytest
import torch

from infcop.science.masks import full_masks, prunable
from infcop.science.models import build_model
from infcop.science.pruners import prune, sap_prune_count


def reference_index(w: torch.Tensor, d: float, p: float, q: float) -> float:
    """The reference's sparsity index over a whole tensor whose pruned entries are zero."""
    w = w.double().flatten()
    nq, np_ = torch.linalg.norm(w, q), torch.linalg.norm(w, p)
    return float((nq - d ** (1 / q - 1 / p) * np_) / nq)


def reference_count(w: torch.Tensor, d: float, p, q, eta, gamma, beta) -> int:
    si = reference_index(w, d, p, q)
    m = math.ceil(d * (1 + eta) ** (q / (p - q)) * (1 - si) ** ((q * p) / (q - p)))
    ratio = min(max(gamma * (1 - m / d), 0.0), beta)
    return math.floor(d * ratio)


def reference_masks(weights: dict, masks: dict, p, q, eta, gamma, beta, scope) -> dict:
    """Pivot masking as the reference does it: sort the survivors' magnitudes, take the one at index
    num_prune, remove every weight whose magnitude is below it."""
    groups = [[n] for n in weights] if scope == "layer" else [list(weights)]
    new = {}
    for group in groups:
        w_all = torch.cat([weights[n].flatten() for n in group])
        m_all = torch.cat([masks[n].flatten() for n in group])
        d = float(m_all.sum())
        num = reference_count(w_all, d, p, q, eta, gamma, beta)
        pivot = torch.sort(w_all[m_all].abs())[0][num]
        for n in group:
            new[n] = masks[n] & ~(weights[n].abs() < pivot)
    return new


CASES = list(itertools.product([(1, 2), (0.5, 1)], [1.0, 1.2], [0.0, 0.001], ["layer", "global"]))


@pytest.mark.parametrize("pq,gamma,eta,scope", CASES, ids=[f"p{a}q{b}-g{g}-e{e}-{s}" for (a, b), g, e, s in CASES])
def test_counts_and_masks_equal_the_reference(pq, gamma, eta, scope):
    p, q = pq
    torch.manual_seed(zlib.crc32(repr((p, q, gamma, eta, scope)).encode()))  # the same in every process
    model = build_model("small_cnn", 1, 10, 8)
    masks = full_masks(model)
    with torch.no_grad():  # an earlier iteration pruned a random quarter: those weights are zero
        for n, w in prunable(model).items():
            masks[n] &= torch.rand(w.shape) > 0.25
            w.mul_(masks[n])
    weights = {n: w.detach().clone() for n, w in prunable(model).items()}
    spec = {"name": "sap", "p": p, "q": q, "eta": eta, "gamma": gamma, "beta": 0.9, "scope": scope}
    ours = prune(model, masks, spec)
    theirs = reference_masks(weights, masks, p, q, eta, gamma, 0.9, scope)
    for n in weights:
        assert torch.equal(ours[n], theirs[n]), n
    # the count alone, per layer, where the reference's index runs over the whole zero-padded tensor
    for n, w in weights.items():
        d = float(masks[n].sum())
        assert sap_prune_count(w[masks[n]], p, q, eta, gamma, 0.9) == reference_count(w, d, p, q, eta, gamma, 0.9)


def test_ties_at_the_pivot_remove_exactly_the_count_where_the_reference_keeps_every_tie():
    # 40 weights of magnitude 1.0 straddle the pivot: the reference removes only what lies strictly below
    # it; infcop removes exactly the count, the tied weights in index order (deterministic, documented)
    w = torch.cat([torch.linspace(0.01, 0.5, 60), torch.ones(40), torch.linspace(2.0, 3.0, 100)])
    w = w[torch.randperm(200, generator=torch.Generator().manual_seed(zlib.crc32(b"ties")))]
    weights, masks = {"w": w.clone()}, {"w": torch.ones(200, dtype=torch.bool)}
    num = reference_count(w, 200.0, 1, 2, 0.0, 1.0, 0.9)
    assert 60 < num < 100  # the pivot is one of the tied weights
    theirs = reference_masks(weights, masks, 1, 2, 0.0, 1.0, 0.9, "global")["w"]

    class One(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(200, 1, bias=False)
            with torch.no_grad():
                self.fc.weight.copy_(w[None])

    model = One()
    ours = prune(model, {"fc.weight": torch.ones(1, 200, dtype=torch.bool)},
                 {"name": "sap", "p": 1, "q": 2, "scope": "global"})["fc.weight"][0]
    assert int((~ours).sum()) == num and int((~theirs).sum()) == 60  # exact count vs. strictly-below only
    tied = w == 1.0
    assert torch.equal(ours[~tied], theirs[~tied])  # the two agree on every weight off the tie
    removed_ties = (~ours & tied).nonzero().flatten()
    assert torch.equal(removed_ties, tied.nonzero().flatten()[: num - 60])  # the first ties by index


def test_the_ceil_matters_where_the_kept_count_is_fractional():
    torch.manual_seed(0)
    w = torch.randn(1000)
    kept_exact = 1000 * (1 - reference_index(w, 1000, 1, 2)) ** 2
    assert kept_exact != math.floor(kept_exact)  # a fractional kept count: ceil and no ceil differ
    without_ceil = math.floor(1000 * min(1.2 * (1 - kept_exact / 1000), 0.9))
    assert sap_prune_count(w, 1, 2, gamma=1.2) == reference_count(w, 1000, 1, 2, 0.0, 1.2, 0.9) != without_ceil


def test_study_presets_prune_with_global_scope():
    import yaml

    from conftest import ROOT
    cfg = yaml.safe_load((ROOT / "config.yaml").read_text())
    for m in ("sap", "ciap", "giap", "earlystop"):
        assert cfg["methods"][m]["pruner"]["scope"] == "global", m
    assert cfg["methods"]["lth"]["pruner"] == {"name": "magnitude", "rate": 0.2, "scope": "layer"}

"""The pruning baselines a reviewer asks for: LAMP, random pruning at ERK layer densities, SNIP, SynFlow and
target sparsity schedules. Every expected number is computed by hand (in the comments) or by an independent
closed form, never taken from a run of the code under test."""
import math

import pytest
import torch
import yaml
from torch import nn

from conftest import fast_settings
from infcop import InfcopError
from infcop.experiments.config import check_method
from infcop.science.data import Dataset, Split
from infcop.science.masks import full_masks, prunable
from infcop.science.pruner_scores import lamp_scores, scoring_model, snip_scores, synflow_scores
from infcop.science.pruners import PRUNERS, erk_survivors, prune
from infcop.science.pruning_targets import remaining_target


def _linear_net(*weights, bias=None, relu=False):
    """Linear layers (no bias unless `bias` for the first) holding exactly the given weight matrices."""
    layers = []
    for i, w in enumerate(weights):
        w = torch.tensor(w, dtype=torch.float32)
        lin = nn.Linear(w.shape[1], w.shape[0], bias=(i == 0 and bias is not None))
        with torch.no_grad():
            lin.weight.copy_(w)
            if lin.bias is not None:
                lin.bias.copy_(torch.tensor(bias))
        layers += [lin] + ([nn.ReLU()] if relu and i < len(weights) - 1 else [])
    return nn.Sequential(*layers)


def _data(x, y) -> Dataset:
    split = Split(torch.tensor(x, dtype=torch.float32), torch.tensor(y))
    return Dataset("tiny", split, split, split, 2, False)


def _t(rows):
    return torch.tensor(rows, dtype=torch.float64)


def _kept(mask) -> list:
    return mask.flatten().nonzero().flatten().tolist()


# --- LAMP ---------------------------------------------------------------------------------------------------

A = [[1.0, -2.0], [3.0, 0.5]]   # flat [1, -2, 3, 0.5]
B = [[0.1, -4.0], [2.0, 3.0]]   # flat [0.1, -4, 2, 3]


def test_lamp_scores_by_hand():
    ones = torch.ones(2, 2, dtype=torch.bool)
    # A: squares 1, 4, 9, 0.25; ascending 0.25, 1, 4, 9 with tail sums 14.25, 14, 13, 9
    expected_a = torch.tensor([[1 / 14, 4 / 13], [9 / 9, 0.25 / 14.25]], dtype=torch.float64)
    # B: squares 0.01, 16, 4, 9; ascending 0.01, 4, 9, 16 with tail sums 29.01, 29, 25, 16
    expected_b = torch.tensor([[0.01 / 29.01, 16 / 16], [4 / 29, 9 / 25]], dtype=torch.float64)
    torch.testing.assert_close(lamp_scores(torch.tensor(A), ones), expected_a)
    torch.testing.assert_close(lamp_scores(torch.tensor(B), ones), expected_b)
    # an earlier iteration's pruned weight is not ranked: A without its 3 (flat index 2): squares 1, 4, 0.25
    # -> ascending 0.25, 1, 4 with tails 5.25, 5, 4
    mask = torch.tensor([[True, True], [False, True]])
    expected = torch.tensor([[1 / 5, 1.0], [0.0, 0.25 / 5.25]], dtype=torch.float64)
    torch.testing.assert_close(lamp_scores(torch.tensor(A), mask), expected)


def test_lamp_removes_the_lowest_scores_globally_which_is_not_global_magnitude():
    model = _linear_net(A, B)
    masks = full_masks(model)
    out = prune(model, masks, {"name": "lamp", "rate": 0.5})  # floor(0.5 * 8) = 4 go
    # lowest scores: B 0.01/29.01, A 0.25/14.25, A 1/14, B 4/29 (the 2 in B; A's -2 scores 4/13)
    assert _kept(out["0.weight"]) == [1, 2] and _kept(out["1.weight"]) == [1, 3]
    # global magnitude removes 0.1, 0.5, 1 and then A's -2 (the first of the two 2s by position)
    mag = prune(model, masks, {"name": "magnitude", "rate": 0.5, "scope": "global"})
    assert _kept(mag["0.weight"]) == [2] and _kept(mag["1.weight"]) == [1, 2, 3]


def test_lamp_keeps_one_weight_per_layer_and_ranks_only_survivors():
    model = _linear_net(A, B)
    out = prune(model, full_masks(model), {"name": "lamp", "rate": 0.9})  # floor(7.2) = 7, but each layer keeps 1
    assert _kept(out["0.weight"]) == [2] and _kept(out["1.weight"]) == [1]  # each layer's largest (score 1)
    masks = full_masks(model)
    masks["0.weight"][1, 0] = False  # A's 3 was pruned before
    out = prune(model, masks, {"name": "lamp", "rate": 0.5})  # 7 survivors: floor(3.5) = 3 go
    # scores: A 1/5, 1, -, 0.25/5.25 (= 0.048); B 0.000345, 1, 0.138, 0.36 -> B[0], A[3], B[2] go
    assert _kept(out["0.weight"]) == [0, 1] and _kept(out["1.weight"]) == [1, 3]


# --- ERK ----------------------------------------------------------------------------------------------------

def test_erk_survivors_by_hand():
    # Linear 8 -> 4 (dims 4, 8: sum 12, 32 weights) and 4 -> 2 (dims 2, 4: sum 6, 8 weights): eps * sum(dims)
    full = {"a": 32, "b": 8}
    assert erk_survivors({"a": (4, 8), "b": (2, 4)}, full, 18) == {"a": 12, "b": 6}  # eps = 18 / 18 = 1
    # 27 kept: eps = 27/18 = 1.5 gives b 9 > 8, so b is dense (density 1) and eps = (27 - 8)/12: a keeps 19
    assert erk_survivors({"a": (4, 8), "b": (2, 4)}, full, 27) == {"a": 19, "b": 8}
    # kernel dims count: Conv (4, 2, 3) sum 9 and Linear (3, 8) sum 11, 24 weights each; 24 kept: eps = 1.2,
    # 10.8 and 13.2 -> floors 10 + 13 = 23, the larger remainder (0.8) gets the last one
    assert erk_survivors({"c": (4, 2, 3), "l": (3, 8)}, {"c": 24, "l": 24}, 24) == {"c": 11, "l": 13}
    # IMP cannot regrow: b has 5 survivors left; 30 kept: eps = 30/18 gives b 10 > 5, capped at 5, a 25
    assert erk_survivors({"a": (4, 8), "b": (2, 4)}, {"a": 32, "b": 5}, 30) == {"a": 25, "b": 5}


def test_random_erk_takes_the_shadows_total_and_spreads_it_by_erk():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 4, bias=False), nn.ReLU(), nn.Linear(4, 2, bias=False))
    shadow = {"name": "magnitude", "rate": 0.33, "scope": "layer"}
    spec = {"name": "random", "shadow": shadow, "allocation": "erk"}
    out = prune(model, full_masks(model), spec, seed=3)
    # the shadow removes floor(0.33 * 32) = 10 and floor(0.33 * 8) = 2: 28 survive; eps = 28/18 gives the
    # second layer 28/18 * 6 = 9.3 > 8, so it stays dense and eps = 20/12: the first keeps 20 (density 0.625)
    assert int(out["0.weight"].sum()) == 20 and int(out["2.weight"].sum()) == 8
    same = prune(model, full_masks(model), {**spec, "allocation": "shadow"}, seed=3)
    assert int(same["0.weight"].sum()) == 22 and int(same["2.weight"].sum()) == 6


def _random_before_erk(weights, masks, shadow, generator):
    """The random pruner as it was before `allocation` existed (transcribed), to hold the default to it."""
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


def test_random_default_allocation_is_the_old_random_pruner_bit_for_bit():
    from infcop.science.models import build_model

    torch.manual_seed(0)
    model = build_model("small_cnn", 1, 10, 8)
    shadow = {"name": "sap", "p": 1, "q": 2, "eta": 0.0, "gamma": 1.0, "beta": 0.9, "scope": "global"}
    masks = prune(model, full_masks(model), {"name": "magnitude", "rate": 0.3})
    new = prune(model, masks, {"name": "random", "shadow": shadow}, seed=7)
    weights = {n: w.detach() for n, w in prunable(model).items()}
    old = _random_before_erk(weights, {n: m.clone() for n, m in masks.items()}, shadow,
                             torch.Generator().manual_seed(7))
    assert all(torch.equal(new[n], old[n]) for n in masks)


# --- SNIP ---------------------------------------------------------------------------------------------------

W1 = [[1.0, 2.0], [0.5, -1.0]]
W2 = [[1.0, -1.0], [2.0, 0.5]]


def _hand_snip_scores(w1, w2, xs, ys):
    """|w * dL/dw| of a 2-layer linear net z = W2 W1 x, L the mean cross-entropy: dL/dz = (softmax(z) - e_y)/B,
    dL/dW2 = sum g h^T, dL/dW1 = sum (W2^T g) x^T (closed form, no autograd)."""
    w1, w2 = torch.tensor(w1, dtype=torch.float64), torch.tensor(w2, dtype=torch.float64)
    d1, d2 = torch.zeros_like(w1), torch.zeros_like(w2)
    for x, y in zip(torch.tensor(xs, dtype=torch.float64), ys):
        h = w1 @ x
        g = torch.softmax(w2 @ h, 0)
        g[y] -= 1
        g /= len(ys)
        d2 += torch.outer(g, h)
        d1 += torch.outer(w2.T @ g, x)
    return (w1 * d1).abs(), (w2 * d2).abs()


def test_snip_scores_and_mask_by_hand():
    model = _linear_net(W1, W2)
    data = _data([[1.0, 1.0]], [0])
    # h = W1 x = (3, -0.5), z = W2 h = (3.5, 5.75); p1 = sigmoid(2.25), dL/dz = (-p1, p1)
    # dL/dW2 = g h^T -> |W2 * .| = p1 * [[3, 0.5], [6, 0.25]]
    # W2^T g = (p1, 1.5 p1), dL/dW1 = (W2^T g) x^T -> |W1 * .| = p1 * [[1, 2], [0.75, 1.5]]
    p1 = 1 / (1 + math.exp(-2.25))
    scores = snip_scores(scoring_model(model, full_masks(model), "current", None), full_masks(model), data, 128, 0)
    torch.testing.assert_close(scores["0.weight"].double(), p1 * _t([[1, 2], [0.75, 1.5]]))
    torch.testing.assert_close(scores["1.weight"].double(), p1 * _t([[3, 0.5], [6, 0.25]]))
    out = prune(model, full_masks(model), {"name": "snip", "rate": 0.5}, data=data)
    # the 4 lowest: 0.25 (W2[1,1]), 0.5 (W2[0,1]), 0.75 (W1[1,0]), 1 (W1[0,0])
    assert _kept(out["0.weight"]) == [1, 3] and _kept(out["1.weight"]) == [0, 2]
    assert model[0].weight[0, 0] == 1.0  # scored on a copy: the network itself is untouched


def test_snip_scores_with_the_earlier_masks_applied():
    model = _linear_net(W1, W2)
    masks = full_masks(model)
    masks["0.weight"][0, 1] = False
    data = _data([[1.0, 1.0]], [0])
    # W1[0,1] = 0: h = (1, -0.5), z = (1.5, 1.75), p1 = sigmoid(0.25); |W2 * g h^T| = p1 * [[1, 0.5], [2, 0.25]]
    p1 = 1 / (1 + math.exp(-0.25))
    scores = snip_scores(scoring_model(model, masks, "current", None), masks, data, 128, 0)
    torch.testing.assert_close(scores["1.weight"].double(), p1 * _t([[1, 0.5], [2, 0.25]]))


def test_snip_batch_is_drawn_from_the_seed_and_scored_as_the_closed_form_says():
    g = torch.Generator().manual_seed(0)
    xs, ys = torch.randn(20, 2, generator=g).tolist(), torch.randint(0, 2, (20,), generator=g).tolist()
    model, data = _linear_net(W1, W2), _data(xs, ys)
    pick = torch.randperm(20, generator=torch.Generator().manual_seed(5))[:6].tolist()  # the documented draw
    e1, e2 = _hand_snip_scores(W1, W2, [xs[i] for i in pick], [ys[i] for i in pick])
    scores = snip_scores(scoring_model(model, full_masks(model), "current", None), full_masks(model), data, 6, 5)
    torch.testing.assert_close(scores["0.weight"].double(), e1, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(scores["1.weight"].double(), e2, rtol=1e-5, atol=1e-7)
    spec = {"name": "snip", "rate": 0.5, "batch_size": 6}
    a, b = (prune(model, full_masks(model), spec, seed=5, data=data) for _ in range(2))
    assert all(torch.equal(a[n], b[n]) for n in a)


def test_snip_at_rewind_scores_the_rewind_point_and_keeps_only_survivors():
    hand = _linear_net(W1, W2)
    model = _linear_net([[-2.0, 0.1], [1.0, 3.0]], [[0.2, 1.0], [-1.0, 4.0]])  # the trained network: other weights
    data = _data([[1.0, 1.0]], [0])
    spec = {"name": "snip", "rate": 0.5}  # at: rewind by default
    out = prune(model, full_masks(model), spec, data=data, rewind=hand.state_dict())
    assert _kept(out["0.weight"]) == [1, 3] and _kept(out["1.weight"]) == [0, 2]  # the hand example's mask
    current = prune(model, full_masks(model), {**spec, "at": "current"}, data=data, rewind=hand.state_dict())
    assert any(not torch.equal(current[n], out[n]) for n in out)
    again = prune(model, out, spec, data=data, rewind=hand.state_dict())  # 4 survivors: floor(2) = 2 go
    assert sum(int(m.sum()) for m in again.values()) == 2
    assert all(not bool((again[n] & ~out[n]).any()) for n in out)


# --- SynFlow ------------------------------------------------------------------------------------------------

SW1, SB1, SW2 = [[1.0, 3.0], [0.5, -1.0]], [-1.0, 0.5], [[1.0, -3.0], [2.0, 0.5]]


def test_synflow_scores_and_mask_by_hand():
    model = _linear_net(SW1, SW2, bias=SB1, relu=True)
    data = _data([[5.0, -7.0]], [1])  # only its shape is read
    # |theta|, input (1, 1): h = |W1| 1 + |b1| = (4 + 1, 1.5 + 0.5) = (5, 2); R = 1^T |W2| h
    # dR/dW2_ij = h_j -> |W2| * h = [[5, 6], [10, 1]]; dR/dW1_jk = colsum(|W2|)_j = (3, 3.5) -> [[3, 9], [1.75, 3.5]]
    scores = synflow_scores(scoring_model(model, full_masks(model), "current", None), full_masks(model), (2,))
    torch.testing.assert_close(scores["0.weight"], torch.tensor([[3, 9], [1.75, 3.5]], dtype=torch.float64))
    torch.testing.assert_close(scores["2.weight"], torch.tensor([[5, 6], [10, 1]], dtype=torch.float64))
    out = prune(model, full_masks(model), {"name": "synflow", "rate": 0.5, "rounds": 1}, data=data)
    # the 4 lowest: 1 (W2[1,1]), 1.75 (W1[1,0]), 3 (W1[0,0]), 3.5 (W1[1,1])
    assert _kept(out["0.weight"]) == [1] and _kept(out["2.weight"]) == [0, 1, 2]
    assert model[0].bias[0] == -1.0 and model[0].weight.dtype == torch.float32  # the network itself is untouched


def _closed_synflow(w1, b1, w2, m1, m2):
    """SynFlow scores of Linear(b1) -> ReLU -> Linear on |theta| and ones: |W2_ij| h_j, |W1_jk| colsum(|W2|)_j."""
    a1, a2 = w1.abs() * m1, w2.abs() * m2
    return a1 * a2.sum(0)[:, None], a2 * (a1.sum(1) + b1.abs())[None, :]


def test_synflow_rounds_follow_the_exponential_schedule():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 3, bias=False))
    w1, b1, w2 = (model[0].weight.detach().double(), model[0].bias.detach().double(), model[2].weight.detach().double())
    data = _data([[0.0, 0.0, 0.0]], [0])

    def expected(rounds):
        m1, m2 = torch.ones(4, 3, dtype=torch.bool), torch.ones(3, 4, dtype=torch.bool)
        final = 24 - math.floor(0.75 * 24)  # 6 of 24 survive
        for j in range(1, rounds + 1):
            kept = final if j == rounds else math.floor(24 * (final / 24) ** (j / rounds) + 0.5)  # 24 * 0.25^(j/4)
            s1, s2 = _closed_synflow(w1, b1, w2, m1, m2)
            now = int(m1.sum() + m2.sum())
            cut = torch.sort(torch.cat([s1[m1], s2[m2]])).values[now - kept - 1]
            m1, m2 = m1 & (s1 > cut), m2 & (s2 > cut)
        assert m1.any() and m2.any()  # (no layer emptied: the keep-one rule does not enter here)
        return m1, m2

    for rounds in (1, 4):
        out = prune(model, full_masks(model), {"name": "synflow", "rate": 0.75, "rounds": rounds}, data=data)
        m1, m2 = expected(rounds)
        assert torch.equal(out["0.weight"], m1) and torch.equal(out["2.weight"], m2), rounds
    one, four = expected(1), expected(4)
    assert not (torch.equal(one[0], four[0]) and torch.equal(one[1], four[1]))  # here the rounds change the mask


# --- target sparsity schedules ------------------------------------------------------------------------------

def test_target_schedules_by_hand():
    assert [remaining_target({"name": "linear", "final": 0.2}, k, 4) for k in (1, 2, 3, 4)] == \
        pytest.approx([0.8, 0.6, 0.4, 0.2])  # 1 - k * 0.8 / 4
    assert [remaining_target({"name": "geometric", "final": 0.0625}, k, 4) for k in (1, 2, 3, 4)] == \
        pytest.approx([0.5, 0.25, 0.125, 0.0625])  # 0.0625^(k/4)
    assert remaining_target([0.9, 0.7, 0.3], 2, 3) == 0.7
    with pytest.raises(InfcopError, match="needs the iteration"):
        remaining_target([0.9], None, None)


def test_a_target_sets_the_count_of_every_kind_of_pruner():
    model = nn.Sequential(nn.Linear(10, 10, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.arange(100, dtype=torch.float32).reshape(10, 10) - 50)
    geo = {"name": "geometric", "final": 0.04}
    out = prune(model, full_masks(model), {"name": "magnitude", "target": geo}, iteration=2, iterations=4)
    mags = (torch.arange(100) - 50).abs()
    kept = out["0.weight"].flatten()
    assert int(kept.sum()) == 20  # 0.04^(2/4) = 0.2 of 100
    assert mags[~kept].max() <= mags[kept].min()
    masks = full_masks(model)
    masks["0.weight"].view(-1)[:40] = False  # 60 survive; the list asks for 0.5 after iteration 2: 10 go
    out = prune(model, masks, {"name": "lamp", "target": [0.8, 0.5]}, iteration=2, iterations=2)
    assert int(out["0.weight"].sum()) == 50
    out = prune(model, masks, {"name": "magnitude", "target": [0.9, 0.7]}, iteration=1, iterations=2)
    assert int(out["0.weight"].sum()) == 60  # 0.9 already passed: nothing goes


def test_a_target_with_layer_scope_random_erk_and_snip():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 4, bias=False), nn.ReLU(), nn.Linear(4, 2, bias=False))
    out = prune(model, full_masks(model), {"name": "magnitude", "scope": "layer", "target": [0.5, 0.25]},
                iteration=2, iterations=2)
    assert int(out["0.weight"].sum()) == 8 and int(out["2.weight"].sum()) == 2  # 0.25 of 32 and of 8
    spec = {"name": "random", "shadow": {"name": "sap", "p": 1, "q": 2}, "allocation": "erk", "target": [0.675]}
    out = prune(model, full_masks(model), spec, seed=1, iteration=1, iterations=1)
    assert int(out["0.weight"].sum()) == 19 and int(out["2.weight"].sum()) == 8  # 27 of 40 by ERK (above)
    spec = {"name": "random", "shadow": {"name": "magnitude", "rate": 0.5, "scope": "layer"}, "target": [0.75]}
    out = prune(model, full_masks(model), spec, seed=1, iteration=1, iterations=1)
    assert int(out["0.weight"].sum()) == 24 and int(out["2.weight"].sum()) == 6  # the shadow counts to 0.75
    data = _data(torch.randn(4, 8).tolist(), [0, 1, 0, 1])
    out = prune(model, full_masks(model), {"name": "snip", "target": {"name": "linear", "final": 0.5}}, data=data,
                iteration=1, iterations=2)
    assert sum(int(m.sum()) for m in out.values()) == 30  # 1 - 1 * 0.5 / 2 = 0.75 of 40


def _resolve(tmp_path, methods, iterations=3):
    from infcop.experiments.experiment import resolve

    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump({"experiment": {"methods": list(methods), "iterations": iterations},
                                    "methods": methods}))
    return resolve([path])


def test_the_experiment_writes_its_iteration_count_into_a_target_preset(tmp_path):
    t = {"pruner": {"name": "magnitude", "target": {"name": "linear", "final": 0.1}}, "stop": ["budget"]}
    config = _resolve(tmp_path, {"t": t, "lth": {"pruner": {"name": "magnitude", "rate": 0.2}, "stop": ["budget"]}})
    assert config["methods"]["t"]["iterations"] == 3
    assert "iterations" not in config["methods"]["lth"]  # other presets (and their stage keys) stay as they were


@pytest.mark.parametrize("pruner,extra,words", [
    ({"name": "lamp", "target": [0.8, 0.6]}, {}, ["methods.t.pruner.target", "2 fractions", "3 IMP iterations",
                                                   "exactly 3"]),
    ({"name": "lamp", "target": [0.8, 0.6]}, {"iterations": 1}, ["methods.t.pruner.target", "exactly 1"]),
    ({"name": "magnitude", "target": [0.8, 0.8, 0.6]}, {}, ["methods.t.pruner.target", "decrease strictly"]),
    ({"name": "magnitude", "target": [0.8, 0.6, 1.2]}, {}, ["methods.t.pruner.target", "(0, 1)"]),
    ({"name": "magnitude", "target": {"name": "cubic", "final": 0.1}}, {}, ["methods.t.pruner.target", "linear"]),
    ({"name": "magnitude", "rate": 0.2, "target": [0.8, 0.6, 0.4]}, {}, ["methods.t.pruner", "exactly one",
                                                                         "rate and target"]),
    ({"name": "lamp"}, {}, ["methods.t.pruner", "exactly one", "neither"]),
    ({"name": "sap", "p": 1, "q": 2, "target": [0.8, 0.6, 0.4]}, {}, ["methods.t.pruner.target", "takes no",
                                                                        "PQ index"]),
    ({"name": "random", "shadow": {"name": "snip", "rate": 0.2}}, {}, ["methods.t.pruner.shadow",
                                                                        "scores the network", "magnitude"]),
    ({"name": "random", "shadow": {"name": "magnitude", "rate": 0.2, "target": [0.5, 0.4, 0.3]}}, {},
     ["methods.t.pruner.shadow.target", "random pruner itself"]),
    ({"name": "random", "shadow": {"name": "sap", "p": 1, "q": 2}, "target": [0.5, 0.4, 0.3]}, {},
     ["methods.t.pruner.target", "allocation: erk"]),
    ({"name": "snip", "rate": 0.2}, {"stop": [{"name": "mask_stable"}]}, ["methods.t.stop", "mask_stable",
                                                                          "scores the network on data"]),
    ({"name": "magnitude", "target": [0.5, 0.4, 0.3]}, {"stop": [{"name": "mask_stable"}]},
     ["methods.t.stop", "depends on the iteration"]),
    ({"name": "synflow", "rate": 0.2, "at": "start"}, {}, ["methods.t.pruner.at", "rewind, current"]),
])
def test_bad_pruner_options_are_refused_naming_key_problem_and_allowed(tmp_path, pruner, extra, words):
    with pytest.raises(InfcopError) as err:
        _resolve(tmp_path, {"t": {"pruner": pruner, "stop": ["budget"], **extra}})
    for w in words:
        assert w in str(err.value), (w, str(err.value))


def test_snip_and_synflow_need_the_data():
    model = _linear_net(W1, W2)
    with pytest.raises(InfcopError, match="prune\\(\\) got no data"):
        prune(model, full_masks(model), {"name": "snip", "rate": 0.5})


def test_presets_check_and_run_nothing_by_default():
    from conftest import ROOT
    from infcop.experiments.experiment import resolve

    config = resolve([ROOT / "config.yaml"])
    for name in ("lamp", "random_erk", "snip", "synflow"):
        check_method(name, config["methods"][name])
        assert name not in config["experiment"]["methods"]


# --- wired into an IMP iteration ----------------------------------------------------------------------------

def test_imp_iteration_scores_snip_at_the_rewind_point_towards_the_target(tmp_path):
    from infcop.running.checkpoints import load_model_file
    from infcop.running.job import Env, Run
    from infcop.running.steps import imp_iteration, prune_seed, train_dense

    settings = fast_settings()
    dense = tmp_path / "dense"
    train_dense("digits", "small_cnn", 0, settings, dense)
    method = {"pruner": {"name": "snip", "target": [0.6], "batch_size": 32}, "stop": ["budget"], "rewind": "init",
              "iterations": 1, "max_epochs": 0, "min_epochs": 0}
    m = imp_iteration("digits", "small_cnn", 0, "snip", method, settings, 1, dense, dense, tmp_path / "it1")
    masks = load_model_file(tmp_path / "it1" / "model.pt")["masks"]
    total = sum(v.numel() for v in masks.values())
    assert sum(int(v.sum()) for v in masks.values()) == math.floor(0.6 * total + 0.5)
    assert m["remaining_weights"] == pytest.approx(math.floor(0.6 * total + 0.5) / total)
    # the wiring: the init's weights were scored (not the trained dense ones), with the run's data and draw
    env = Env(Run("digits", "small_cnn", 0), settings)
    init, full = env.load(load_model_file(dense / "init.pt"))
    trained, _ = env.load(load_model_file(dense / "model.pt"))
    kw = dict(seed=prune_seed(0, 1), data=env.data, iteration=1, iterations=1)
    at_init = prune(init, full, method["pruner"], **kw)
    at_dense = prune(trained, full, {**method["pruner"], "at": "current"}, **kw)
    assert all(torch.equal(masks[n].cpu(), at_init[n]) for n in masks)
    assert any(not torch.equal(masks[n].cpu(), at_dense[n]) for n in masks)


# --- does the ticket matter? reinit and a random mask drawn once --------------------------------------------

def test_random_mask_drawn_once_is_nested_and_keeps_the_shadows_layer_counts():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 8), nn.ReLU(), nn.Linear(8, 4))
    spec = {"name": "random", "shadow": {"name": "magnitude", "rate": 0.2, "scope": "layer"}, "draw": "once"}
    shadow = {"name": "magnitude", "rate": 0.2, "scope": "layer"}
    masks, ref = full_masks(model), full_masks(model)
    for it in range(1, 5):
        new = prune(model, masks, spec, seed=7)  # draw once: the caller passes the run's seed alone
        ref = prune(model, ref, shadow)
        for n in masks:
            assert not bool((new[n] & ~masks[n]).any())  # nested: nothing revived
            assert int(new[n].sum()) == int(ref[n].sum())  # magnitude's per-layer counts
        masks = new
    # the same seed draws the same order: pruning twice as far at once ends where two steps did
    order_only = prune(model, full_masks(model), {**spec, "shadow": {**shadow, "rate": 0.36}}, seed=7)
    two = prune(model, prune(model, full_masks(model), spec, seed=7), spec, seed=7)
    assert all(torch.equal(order_only[n], two[n]) for n in two)
    # a fresh draw every iteration has no such order: one step and two steps end apart
    each = {**spec, "draw": "each"}
    one = prune(model, full_masks(model), {**each, "shadow": {**shadow, "rate": 0.36}}, seed=7)
    two = prune(model, prune(model, full_masks(model), each, seed=7), each, seed=8)
    assert any(not torch.equal(one[n], two[n]) for n in two)


def test_rewind_reinit_trains_the_same_mask_from_a_fresh_init_of_another_seed(tmp_path):
    from infcop.running.checkpoints import load_model_file
    from infcop.science.models import build_model
    from infcop.running.steps import imp_iteration, reinit_seed, train_dense

    settings = fast_settings()
    dense = tmp_path / "dense"
    train_dense("digits", "small_cnn", 0, settings, dense)
    base = {"pruner": {"name": "magnitude", "rate": 0.2, "scope": "layer"}, "stop": ["budget"], "max_epochs": 0,
            "min_epochs": 0}
    reinit = imp_iteration("digits", "small_cnn", 0, "r", {**base, "rewind": "reinit"}, settings, 1, dense, dense,
                           tmp_path / "reinit")
    init = imp_iteration("digits", "small_cnn", 0, "i", {**base, "rewind": "init"}, settings, 1, dense, dense,
                         tmp_path / "init")
    a = load_model_file(tmp_path / "reinit" / "model.pt")
    b = load_model_file(tmp_path / "init" / "model.pt")
    assert all(torch.equal(a["masks"][n], b["masks"][n]) for n in a["masks"])  # the same mask
    torch.manual_seed(reinit_seed(0))
    fresh = build_model("small_cnn", 1, 10, 8).state_dict()
    original = load_model_file(dense / "init.pt")["state"]
    for n, m in a["masks"].items():  # 0 epochs: the survivors are the fresh init's, not the run's init
        assert torch.equal(a["state"][n], fresh[n] * m)
        assert not torch.equal(a["state"][n], original[n] * m)
    assert reinit["reinit_seed"] == reinit_seed(0) != 0 and init["reinit_seed"] is None


# --- prune_biases --------------------------------------------------------------------------------------------

def test_prune_biases_masks_each_bias_vector_as_a_group_and_keeps_it_zero():
    from infcop.science.masks import MaskEnforcer, remaining_fraction

    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    with torch.no_grad():
        model[0].bias.copy_(torch.tensor([0.5, -0.1, 0.3]))
        model[2].bias.copy_(torch.tensor([-2.0, 0.05]))
    plain = prune(model, full_masks(model), {"name": "magnitude", "rate": 0.5, "scope": "layer"})
    assert set(plain) == {"0.weight", "2.weight"}  # biases are never touched unless asked
    masks = prune(model, full_masks(model), {"name": "magnitude", "rate": 0.5, "scope": "layer", "prune_biases": True})
    assert set(masks) == {"0.weight", "0.bias", "2.weight", "2.bias"}
    # floor(0.5 * 3) = 1 of the first bias goes (|-0.1|), floor(0.5 * 2) = 1 of the second (|0.05|)
    assert masks["0.bias"].tolist() == [True, False, True] and masks["2.bias"].tolist() == [True, False]
    assert torch.equal(masks["0.weight"], plain["0.weight"]) and torch.equal(masks["2.weight"], plain["2.weight"])
    # remaining weights count the biases: (6 + 2 + 3 + 1) of (12 + 3 + 6 + 2)
    assert remaining_fraction(masks) == pytest.approx(12 / 23)
    # global scope ranks biases with the weights: 0.05 and -0.1 are below every weight here
    with torch.no_grad():
        for lin in (model[0], model[2]):
            lin.weight.copy_(torch.full_like(lin.weight, 1.0) + torch.arange(lin.weight.numel()).view_as(lin.weight))
    glob = prune(model, full_masks(model), {"name": "magnitude", "rate": 0.1, "scope": "global", "prune_biases": True})
    assert int((~glob["0.bias"]).sum()) + int((~glob["2.bias"]).sum()) == 2  # floor(0.1 * 23) = 2: both biases
    assert all(bool(glob[n].all()) for n in ("0.weight", "2.weight"))
    # a pruned bias stays exactly zero through training steps
    enforcer = MaskEnforcer(model, masks)
    enforcer.apply_weights()
    opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    for _ in range(5):
        opt.zero_grad()
        model(torch.randn(8, 4)).pow(2).mean().backward()
        enforcer.apply_grads()
        opt.step()
        enforcer.apply_weights()
    assert model[0].bias[1] == 0 and model[2].bias[1] == 0 and model[0].bias[0] != 0.5


def test_prune_biases_through_iterations_evaluation_and_the_ticket(tmp_path):
    from infcop.running.checkpoints import load_model_file
    from infcop.running.steps import evaluate_run, imp_iteration, train_dense

    settings = fast_settings()
    dense = tmp_path / "dense"
    train_dense("digits", "small_cnn", 0, settings, dense)
    method = {"pruner": {"name": "magnitude", "rate": 0.5, "scope": "global", "prune_biases": True},
              "stop": ["budget"], "max_epochs": 1, "rewind": "none", "schedule": "linear", "lr": "allr"}
    dirs = [tmp_path / "it1", tmp_path / "it2"]
    imp_iteration("digits", "small_cnn", 0, "b", method, settings, 1, dense, dense, dirs[0])
    m2 = imp_iteration("digits", "small_cnn", 0, "b", method, settings, 2, dense, dirs[0], dirs[1])
    rec = load_model_file(dirs[1] / "model.pt")
    biases = [n for n in rec["masks"] if n.endswith(".bias")]
    assert biases and any(not bool(rec["masks"][n].all()) for n in biases)
    for n in biases:  # pruned biases are zero in the saved network
        assert torch.all(rec["state"][n][~rec["masks"][n]] == 0)
    total = sum(v.numel() for v in rec["masks"].values())
    assert m2["remaining_weights"] == pytest.approx(sum(int(v.sum()) for v in rec["masks"].values()) / total)
    assert 0 < m2["lr_start"] <= settings["training"]["lr"]
    rows = evaluate_run("digits", "small_cnn", 0, "b", method, settings, dense, dirs, tmp_path / "eval")
    assert [r["iteration"] for r in rows] == [0, 1, 2] and rows[2]["remaining_weights"] == m2["remaining_weights"]

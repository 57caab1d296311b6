"""Flow measures against direct numpy computations: mean |r| connectivity, connectivity with positions
as samples, linear CKA (the sample-space HSIC formula), distances, and the noise floors."""
import math

import numpy as np
import pytest
import torch
from torch import nn

from conftest import autograd_gradflow
from infcop.science.data import Split
from infcop.science.flows import measure_flows, noise_floors
from infcop.science.measures import distance, flow_distance, key, vector_key


class Convs(nn.Module):
    """Two convs at different resolutions, then a linear layer: every pairing case of the positions mode."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(2, 4, 3, padding=1)
        self.c2 = nn.Conv2d(4, 5, 3, padding=1, stride=2)
        self.fc = nn.Linear(5 * 4 * 4, 3)

    def forward(self, x):
        a = torch.relu(self.c1(x))
        b = torch.relu(self.c2(a))
        return self.fc(b.flatten(1))


def _probe(n=48):
    g = torch.Generator().manual_seed(0)
    return Split(torch.randn(n, 2, 8, 8, generator=g), torch.randint(0, 3, (n,), generator=g))


def _acts(model, x):
    with torch.no_grad():
        a = model.c1(x)
        b = model.c2(torch.relu(a))
        c = model.fc(torch.relu(b).flatten(1))
    return a, b, c


def _corr(a, b):
    a, b = a.double().numpy(), b.double().numpy()
    return np.corrcoef(a.T, b.T)[: a.shape[1], a.shape[1]:]


def _assert_connectivity_of_spatial_means(model, probe, acts):
    """Signed and |r| connectivity == numpy's Pearson matrix of consecutive layers' spatially averaged outputs
    (images and 1-D signals alike: every dimension after the channel is averaged)."""
    f = measure_flows(model, probe, batch_size=7)
    means = [x.mean(dim=tuple(range(2, x.dim()))) if x.dim() > 2 else x for x in acts(model, probe.x)]
    for i in range(2):
        r = _corr(means[i], means[i + 1])
        assert f.connectivity[i] == pytest.approx(float(r.mean()), abs=1e-5)
        assert f.abs_connectivity[i] == pytest.approx(float(np.abs(r).mean()), abs=1e-5)


def test_positions_mode_pairs_positions_on_the_coarser_grid():
    torch.manual_seed(0)
    model, probe = Convs(), _probe()
    f = measure_flows(model, probe, batch_size=10, positions=True, max_positions=16)
    a, b, c = _acts(model, probe.x)
    # c1 (8x8) is average-pooled to c2's 4x4 grid; 16 positions fit, so every position is a sample
    pooled = nn.functional.adaptive_avg_pool2d(a, (4, 4))
    samples_a = pooled.permute(0, 2, 3, 1).reshape(-1, 4)
    samples_b = b.permute(0, 2, 3, 1).reshape(-1, 5)
    r = _corr(samples_a, samples_b)
    assert f.positions["connectivity"][0] == pytest.approx(float(r.mean()), abs=1e-5)
    assert f.positions["abs_connectivity"][0] == pytest.approx(float(np.abs(r).mean()), abs=1e-5)
    # a pair with the linear layer has no positions: it uses spatial means, as the default mode does
    assert f.positions["connectivity"][1] == pytest.approx(f.connectivity[1], abs=1e-9)


def _linear_cka_sample_space(x, y):
    """Kornblith et al. (2019): HSIC with linear kernels and the centring matrix H."""
    x, y = x.double().numpy(), y.double().numpy()
    n = x.shape[0]
    h = np.eye(n) - np.ones((n, n)) / n
    kx, ky = h @ x @ x.T @ h, h @ y @ y.T @ h
    return float((kx * ky).sum() / (np.linalg.norm(kx) * np.linalg.norm(ky)))


def _position_samples(x, max_positions: int):
    """A conv output's positions as samples, every stride-th so that at most about `max_positions` stay."""
    if x.dim() == 4:
        stride = max(1, math.ceil(math.sqrt(x.shape[-2] * x.shape[-1] / max_positions)))
        return x[:, :, ::stride, ::stride].permute(0, 2, 3, 1).reshape(-1, x.shape[1])
    if x.dim() == 3:
        stride = max(1, math.ceil(x.shape[-1] / max_positions))
        return x[:, :, ::stride].permute(0, 2, 1).reshape(-1, x.shape[1])
    return x


@pytest.mark.parametrize("net", ["images", "1-d signals"])
def test_cka_equals_the_sample_space_formula_with_positions_as_samples_and_is_one_to_itself(net):
    torch.manual_seed(0)
    if net == "images":
        model, other, probe, acts, max_positions = Convs(), Convs(), _probe(24), _acts, 16
    else:
        model, other, probe, acts, max_positions = Convs1d(), Convs1d(), _probe1d(24), _acts1d, 4
    f = measure_flows(model, probe, batch_size=5, reference=other, max_positions=max_positions)
    mine, ref = acts(model, probe.x), acts(other, probe.x)
    for i in range(3):
        x, y = _position_samples(mine[i], max_positions), _position_samples(ref[i], max_positions)
        assert f.cka[i] == pytest.approx(_linear_cka_sample_space(x, y), abs=1e-6)
    assert measure_flows(model, probe, reference=model).cka == pytest.approx([1.0, 1.0, 1.0], abs=1e-9)
    assert all(0 <= v < 0.999 for v in f.cka)


def test_cka_of_a_layer_pruned_away_is_zero_not_nan():
    torch.manual_seed(0)
    model, probe = Convs(), _probe()
    reference = Convs()
    with torch.no_grad():
        model.c2.weight.zero_()
        model.c2.bias.zero_()
    f = measure_flows(model, probe, reference=reference)
    assert f.cka[1] == 0.0 and all(np.isfinite(f.cka))


def test_distances_of_every_measure():
    rec = {"connectivity": [0.3, 0.1], "abs_connectivity": [0.5, 0.5], "cka": [0.9, 0.6], "gradflow": [1.0, 2.0]}
    ref = {"connectivity": [0.0, 0.1], "abs_connectivity": [0.5, 0.1], "gradflow": [1.0, 0.0]}
    assert distance("signed_mean", rec, ref) == pytest.approx(0.3)
    assert distance("abs_mean", rec, ref) == pytest.approx(0.4)
    assert distance("cka", rec, ref) == pytest.approx(math.sqrt(0.1 ** 2 + 0.4 ** 2))
    assert distance("cka", rec, ref, "relative") == pytest.approx(math.sqrt(0.17) / math.sqrt(2))
    assert distance("gradflow", rec, ref, "relative") == pytest.approx(2.0)
    assert key("abs_mean", "positions") == "abs_mean@positions"
    assert vector_key("abs_mean@positions") == "abs_connectivity@positions"
    assert flow_distance([3.0, 4.0], [0.0, 0.0]) == 5.0


def test_noise_floor_is_the_quantile_of_half_split_distances_over_sqrt2():
    torch.manual_seed(0)
    model, probe = Convs(), _probe(40)
    full = measure_flows(model, probe, batch_size=16, positions=True)
    floors = noise_floors(model, probe, full, batch_size=16, resamples=6, quantile=1.0, seed=3)
    assert set(floors) == {"signed_mean", "signed_mean@positions", "abs_mean", "abs_mean@positions", "gradflow"}
    # by hand: the same splits (same generator seed), the largest distance of the halves / sqrt(2)
    g = torch.Generator().manual_seed(3000 + 3)
    worst = 0.0
    for _ in range(6):
        order = torch.randperm(40, generator=g)
        fa = measure_flows(model, Split(probe.x[order[:20]], probe.y[order[:20]]), 16)
        fb = measure_flows(model, Split(probe.x[order[20:]], probe.y[order[20:]]), 16)
        worst = max(worst, flow_distance(fa.gradflow, fb.gradflow) / math.sqrt(2))
    assert floors["gradflow"] == pytest.approx(worst, rel=1e-9)
    assert all(v > 0 for v in floors.values())
    # more probe, less noise: the floor of a 4x larger probe is lower
    big = _probe(160)
    big_floor = noise_floors(model, big, measure_flows(model, big, 32, positions=True), 32, resamples=6, seed=3)
    assert big_floor["signed_mean"] < noise_floors(model, probe, full, 16, resamples=6, seed=3)["signed_mean"]


# ----------------------------------------------------------------------- the same measures on 1-D nets

class Convs1d(nn.Module):
    """Two 1-D convs at different lengths, then a linear layer (as the MNIST-1D CNN is built)."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv1d(2, 4, 3, padding=1)
        self.c2 = nn.Conv1d(4, 5, 3, padding=1, stride=2)
        self.fc = nn.Linear(5 * 6, 3)

    def forward(self, x):
        return self.fc(torch.relu(self.c2(torch.relu(self.c1(x)))).flatten(1))


def _probe1d(n=48):
    g = torch.Generator().manual_seed(1)
    return Split(torch.randn(n, 2, 12, generator=g), torch.randint(0, 3, (n,), generator=g))


def _acts1d(model, x):
    with torch.no_grad():
        a = model.c1(x)
        b = model.c2(torch.relu(a))
        return a, b, model.fc(torch.relu(b).flatten(1))


@pytest.mark.parametrize("net", ["images", "1-d signals"])
def test_connectivity_is_the_pearson_correlation_of_spatial_means_and_abs_its_mean_absolute(net):
    torch.manual_seed(0)
    model, probe, acts = (Convs(), _probe(), _acts) if net == "images" else (Convs1d(), _probe1d(), _acts1d)
    _assert_connectivity_of_spatial_means(model, probe, acts)


def test_positions_of_a_1d_net_pair_on_the_shorter_length():
    torch.manual_seed(0)
    model, probe = Convs1d(), _probe1d()
    f = measure_flows(model, probe, batch_size=10, positions=True, max_positions=16)
    a, b, _ = _acts1d(model, probe.x)
    pooled = nn.functional.adaptive_avg_pool1d(a, 6)  # c1 (12) pooled to c2's 6 positions
    r = _corr(pooled.permute(0, 2, 1).reshape(-1, 4), b.permute(0, 2, 1).reshape(-1, 5))
    assert f.positions["connectivity"][0] == pytest.approx(float(r.mean()), abs=1e-5)
    assert f.positions["connectivity"][1] == pytest.approx(f.connectivity[1], abs=1e-9)


def test_gradient_flow_and_masks_of_a_1d_net():
    from infcop.science.masks import MaskEnforcer, full_masks

    torch.manual_seed(0)
    model, probe = Convs1d(), _probe1d()
    masks = full_masks(model)
    assert set(masks) == {"c1.weight", "c2.weight", "fc.weight"}  # Conv1d weights are prunable
    masks["c2.weight"][:, :2] = False
    MaskEnforcer(model, masks).apply_weights()
    assert float(model.c2.weight.detach()[:, :2].abs().sum()) == 0.0
    f = measure_flows(model, probe, batch_size=16, masks=masks)
    assert f.gradflow == pytest.approx(autograd_gradflow(model, probe, masks), rel=1e-5)

import numpy as np
import pytest
import torch
from torch import nn

from conftest import autograd_gradflow
from infcop import InfcopError
from infcop.science.data import Split
from infcop.science.flows import measure_flows
from infcop.science.masks import full_masks
from infcop.science.measures import flow_distance
from infcop.science.stopping import criteria_of, decide, normalise_stops


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, padding=1)
        self.fc1 = nn.Linear(3 * 4 * 4, 5)
        self.fc2 = nn.Linear(5, 4)

    def forward(self, x):
        x = torch.relu(self.conv(x))
        return self.fc2(torch.tanh(self.fc1(x.flatten(1))))


def _probe(n=40):
    g = torch.Generator().manual_seed(0)
    return Split(torch.randn(n, 2, 4, 4, generator=g), torch.randint(0, 4, (n,), generator=g))


def test_connectivity_equals_numpy_corrcoef_reference():
    torch.manual_seed(0)
    model, probe = Tiny(), _probe()
    f = measure_flows(model, probe, batch_size=7)  # streaming in uneven batches
    with torch.no_grad():
        a0 = model.conv(probe.x)
        acts = [a0.mean(dim=(2, 3)), model.fc1(torch.relu(a0).flatten(1))]
        acts.append(model.fc2(torch.tanh(acts[1])))
    for i, got in enumerate(f.connectivity):
        a, b = acts[i].double().numpy(), acts[i + 1].double().numpy()
        c = np.corrcoef(a.T, b.T)[: a.shape[1], a.shape[1]:]
        assert got == pytest.approx(float(c.mean()), abs=1e-5)
    assert f.layers == ["conv", "fc1", "fc2"] and f.pairs == ["conv→fc1", "fc1→fc2"]


def test_gradient_flow_equals_autograd_reference_over_surviving_weights():
    torch.manual_seed(0)
    model, probe = Tiny(), _probe()
    masks = full_masks(model)
    masks["fc1.weight"][:, :10] = False
    f = measure_flows(model, probe, batch_size=16, masks=masks)
    assert list(masks) == ["conv.weight", "fc1.weight", "fc2.weight"]
    assert f.gradflow == pytest.approx(autograd_gradflow(model, probe, masks), rel=1e-5)


def test_flows_leave_existing_gradients_and_mode_alone():
    model, probe = Tiny(), _probe()
    model.train()
    model.fc2.weight.grad = torch.ones_like(model.fc2.weight)
    measure_flows(model, probe)
    assert model.training and torch.equal(model.fc2.weight.grad, torch.ones_like(model.fc2.weight))


def test_similarity_to_itself_is_one_and_lower_to_another_network():
    torch.manual_seed(0)
    a, b, probe = Tiny(), Tiny(), _probe()
    assert measure_flows(a, probe, reference=a).similarity == pytest.approx([1.0, 1.0, 1.0])
    sim = measure_flows(a, probe, reference=b).similarity
    assert len(sim) == 3 and all(s < 0.999 for s in sim)


def test_constant_unit_counts_as_zero_correlation_not_nan():
    model, probe = Tiny(), _probe()
    with torch.no_grad():
        model.fc1.weight.zero_()
    f = measure_flows(model, probe)
    assert all(np.isfinite(f.connectivity)) and f.connectivity[1] == 0.0


def test_distance_l2_and_relative():
    assert flow_distance([1.0, 2.0], [1.0, 0.0]) == pytest.approx(2.0)
    assert flow_distance([1.0, 2.0], [1.0, 0.0], "relative") == pytest.approx(2.0)
    assert flow_distance([3.0, 4.0], [0.0, 0.0]) == pytest.approx(5.0)
    with pytest.raises(InfcopError, match="differ in length"):
        flow_distance([1.0], [1.0, 2.0])


def _record(info_distance=0.5, grad_distance=0.5, val_accuracy=0.9, dense_val_accuracy=0.95):
    return ({"distances": {"signed_mean": info_distance, "gradflow": grad_distance}, "val_accuracy": val_accuracy},
            {"val_accuracy": dense_val_accuracy})


def _decide(stops, epoch, **kw):
    return decide(criteria_of(normalise_stops(stops)), epoch, 10, 1, *_record(**kw))


def test_every_criterion_that_held_is_named_and_budget_always_bounds():
    stops = [{"name": "infoflow", "epsilon": 0.1}, {"name": "accuracy", "delta": 0.0}]
    assert _decide(stops, 1) == (False, "")
    assert _decide(stops, 2, info_distance=0.05) == (True, "infoflow")
    assert _decide(stops, 2, val_accuracy=0.96) == (True, "accuracy")
    assert _decide(stops, 2, info_distance=0.05, val_accuracy=0.99) == (True, "infoflow+accuracy")
    assert _decide(stops, 10) == (True, "budget")
    assert _decide(["budget"], 9) == (False, "")
    assert _decide([{"name": "gradflow", "epsilon": 0.6}], 3) == (True, "gradflow")
    assert _decide([{"name": "accuracy", "delta": 0.05}], 3) == (True, "accuracy")


def test_min_epochs_holds_back_every_criterion_but_budget():
    stops = criteria_of(normalise_stops([{"name": "infoflow", "epsilon": 1.0}]))
    kw = _record(info_distance=0.0, grad_distance=0.0, val_accuracy=1.0, dense_val_accuracy=0.0)
    assert decide(stops, 1, 5, 3, *kw) == (False, "")
    assert decide(stops, 3, 5, 3, *kw) == (True, "infoflow")
    assert decide(stops, 2, 2, 3, *kw) == (True, "budget")


@pytest.mark.parametrize("stops,match", [(["sometimes"], "unknown stop criterion"),
                                         ([{"name": "infoflow"}], "needs exactly one threshold form"),
                                         ([{"name": "gradflow", "epsilon": -1}], "epsilon must be"),
                                         ([{"name": "accuracy", "delta": 2}], "delta must be")])
def test_bad_stop_specs(stops, match):
    with pytest.raises(InfcopError, match=match):
        normalise_stops(stops)


@pytest.mark.parametrize("metric,values,stop_at,best_epoch", [
    ("val_accuracy", [0.50, 0.80, 0.85, 0.85, 0.84, 0.90], 4, 2),  # no gain beyond 0.85 for 2 epochs: stop at 4
    ("val_loss", [2.0, 1.0, 0.9, 0.95, 0.91, 0.5], 4, 2),          # lower is better
])
def test_patience_stops_after_p_epochs_without_improvement_and_names_the_best(metric, values, stop_at, best_epoch):
    (c,) = criteria_of(normalise_stops([{"name": "patience", "metric": metric, "patience": 2}]))
    stopped = None
    for epoch, v in enumerate(values):  # epoch 0 (the pruned network) is the first candidate
        if c.holds({"epoch": epoch, metric: v}, {}):
            stopped = epoch
            break
    assert stopped == stop_at and c.best_epoch == best_epoch and c.restores_best == metric
    (strict,) = criteria_of(normalise_stops([{"name": "patience", "patience": 2, "tol": 0.06}]))
    held = [strict.holds({"epoch": e, "val_accuracy": v}, {}) for e, v in enumerate([0.5, 0.55, 0.555])]
    assert held == [False, False, True]  # +0.05 and +0.055 over the best (0.5): neither beyond tol 0.06


@pytest.mark.parametrize("stop,reads", [({"name": "gradflow", "epsilon": "auto"}, True),
                                        ({"name": "gradflow", "recover": 0.5}, True),  # armed by the floor
                                        ({"name": "infoflow", "patience": 2}, True),
                                        ({"name": "infoflow", "measure": "cka", "recover": 0.5}, False),  # no floor
                                        ({"name": "gradflow", "epsilon": 0.5}, False),
                                        ({"name": "patience", "metric": "val_loss"}, False)])
def test_a_criterion_is_charged_the_noise_floor_exactly_when_it_reads_one(stop, reads):
    from infcop.science.stopping import reads_noise_floor

    assert reads_noise_floor(criteria_of(normalise_stops([stop]))[0]) is reads

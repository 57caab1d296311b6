"""Gradual magnitude pruning (Zhu & Gupta 2017): the cubic schedule by hand, the config's refusals, and one
training that prunes as it goes."""
import pytest
import torch

from conftest import fast_settings
from infcop import InfcopError
from infcop.running.checkpoints import load_model_file
from infcop.experiments.config import check_method
from infcop.science.gmp import prune_steps
from infcop.running.steps import imp_iteration, train_dense

GMP = {"pruner": {"name": "magnitude", "target": [0.3], "scope": "layer"}, "stop": ["budget"], "rewind": "dense",
       "iterations": 1, "max_epochs": 2, "gmp": {"start": 0.0, "end": 0.5, "every": 5}}


def test_cubic_schedule_by_hand():
    # 100 steps, prunes at 10, 20, ..., 50 (start 0, end 0.5, every 10): r_j = 0.2 + 0.8 (1 - j/5)^3
    events = prune_steps({"start": 0.0, "end": 0.5, "every": 10}, 100, 1.0, 0.2)
    assert sorted(events) == [10, 20, 30, 40, 50]
    assert [events[t] for t in sorted(events)] == pytest.approx([0.2 + 0.8 * (1 - j / 5) ** 3 for j in range(1, 6)])
    # from an already pruned network, starting later: r_i = 0.5, t0 = 20, t1 = 80, n = round(60 / 25) = 2
    events = prune_steps({"start": 0.2, "end": 0.8, "every": 25}, 100, 0.5, 0.1)
    assert events == pytest.approx({50: 0.1 + 0.4 * 0.5 ** 3, 80: 0.1})


def test_gmp_presets_are_checked():
    assert check_method("g", GMP)["gmp"] == {"start": 0.0, "end": 0.5, "every": 5}
    with pytest.raises(InfcopError, match="iterations.*1 with gmp"):
        check_method("g", {**GMP, "iterations": 3})
    with pytest.raises(InfcopError, match=r"stop.*\[budget\] with gmp"):
        check_method("g", {**GMP, "stop": [{"name": "accuracy", "delta": 0.0}]})
    with pytest.raises(InfcopError, match=r"target.*\[r_f\] with gmp"):
        check_method("g", {**GMP, "pruner": {"name": "magnitude", "rate": 0.2}})
    with pytest.raises(InfcopError, match="gmp.*start 0.6 must be before end 0.5"):
        check_method("g", {**GMP, "gmp": {"start": 0.6, "end": 0.5}})
    with pytest.raises(InfcopError, match="gmp.*allowed"):
        check_method("g", {**GMP, "gmp": {"often": 3}})


def test_gmp_prunes_during_one_training_to_its_target(tmp_path):
    settings = fast_settings()
    dense = tmp_path / "dense"
    train_dense("digits", "small_cnn", 0, settings, dense)
    m = imp_iteration("digits", "small_cnn", 0, "gmp", check_method("gmp", GMP), settings, 1, dense, dense,
                      tmp_path / "it")
    masks = load_model_file(tmp_path / "it" / "model.pt")["masks"]
    for n, mask in masks.items():  # scope layer: each layer at the target, to the nearest weight
        assert int(mask.sum()) == max(1, int(0.3 * mask.numel() + 0.5))
    assert m["remaining_weights"] == pytest.approx(0.3, abs=0.01) and m["epochs_trained"] == 2
    ep = m["epochs"]
    assert ep[0]["epoch"] == 0 and m["stop_reason"] == "budget"
    state = load_model_file(tmp_path / "it" / "model.pt")["state"]
    assert all(torch.all(state[n][~mask] == 0) for n, mask in masks.items())

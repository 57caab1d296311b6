"""The GPU path: data on the device, bf16 autocast, masks exactly zero, deterministic mode. Skipped
without CUDA (bench/gpu_check.sh runs these on a GPU machine)."""
import pytest
import torch

from conftest import fast_settings
from infcop.running.checkpoints import load_model_file
from infcop.running.job import Env, Run
from infcop.running.steps import imp_iteration, train_dense

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (none on this machine)")]
LTH = {"pruner": {"name": "magnitude", "rate": 0.5}, "stop": ["budget"]}


def test_data_and_probe_live_on_the_gpu():
    env = Env(Run("digits", "small_cnn", 0), fast_settings(device="auto"))
    assert env.device.type == "cuda"
    assert env.data.train.x.is_cuda and env.data.test.x.is_cuda and env.probe.x.is_cuda


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_masked_weights_stay_exactly_zero_on_gpu(tmp_path, precision):
    settings = fast_settings(device="cuda", precision=precision, max_epochs=3)
    train_dense("digits", "small_cnn", 0, settings, tmp_path / "dense")
    m = imp_iteration("digits", "small_cnn", 0, "m", LTH, settings, 1, tmp_path / "dense", tmp_path / "dense",
                      tmp_path / "iter1")
    assert m["remaining_weights"] == pytest.approx(0.5, abs=0.01)
    obj = load_model_file(tmp_path / "iter1" / "model.pt")
    for name, mask in obj["masks"].items():
        w = obj["state"][name]
        assert w.dtype == torch.float32  # fp32 master weights under bf16 autocast
        assert torch.all(w[~mask] == 0) and torch.any(w[mask] != 0)


def test_flows_on_gpu_match_cpu():
    from infcop.science.flows import measure_flows
    from infcop.science.models import build_model

    torch.manual_seed(0)
    cpu_env = Env(Run("digits", "small_cnn", 0), fast_settings(device="cpu"))
    model = build_model("small_cnn", 1, 10, 8)
    a = measure_flows(model, cpu_env.probe, reference=model)
    b = measure_flows(model.cuda(), cpu_env.probe.to("cuda"), reference=model)
    assert b.connectivity == pytest.approx(a.connectivity, abs=1e-4)
    assert b.gradflow == pytest.approx(a.gradflow, rel=1e-3)


def test_deterministic_mode_repeats_exactly_on_gpu(tmp_path):
    settings = fast_settings(device="cuda", deterministic=True)
    for name in ("a", "b"):
        train_dense("digits", "small_cnn", 0, settings, tmp_path / name)
    a = load_model_file(tmp_path / "a" / "model.pt")["state"]
    b = load_model_file(tmp_path / "b" / "model.pt")["state"]
    assert all(torch.equal(a[k], b[k]) for k in a)

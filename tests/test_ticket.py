"""Tickets usable outside infcop: infcop.load_ticket gives a network that takes raw inputs and scores, on the
raw test split, exactly the test accuracy the run recorded; any level exports (`infcop ticket --level`); an
architecture from a plugin loads with its plugin; old and bad input is refused by name."""
import csv
import json
import subprocess
import sys

import pytest
import torch

from conftest import fast_settings
from infcop import InfcopError, load_ticket
from infcop.science import plugins
from infcop.running import layout as L
from infcop.running.checkpoints import load_model_file, save_torch
from infcop.experiments.config import check_method
from infcop.science.data import load_dataset
from infcop.science.masks import prunable
from infcop.science.models import ARCHS
from infcop.running.steps import evaluate_run, imp_iteration, train_dense
from workflow_helpers import env

LTH = {"pruner": {"name": "magnitude", "rate": 0.2}, "stop": ["budget"]}
RAW_ACCURACY = """
import json, sys, torch, infcop
from infcop.science.data import load_dataset
model, masks, meta = infcop.load_ticket(sys.argv[1])
test = load_dataset("digits", 0, standardise=False).test
with torch.no_grad():
    print(json.dumps(int((model(test.x).argmax(1) == test.y).sum()) / len(test.y)))
"""


def _run(root, arch="small_cnn", method="lth", iterations=2):
    """A tiny run on digits laid out as the workflow lays it out: dense, iterations, evaluation and ticket."""
    settings = fast_settings()
    train_dense("digits", arch, 0, settings, root / L.DENSE)
    dirs, previous = [], root / L.DENSE
    for k in range(1, iterations + 1):
        dirs.append(root / method / L.iteration_name(k))
        imp_iteration("digits", arch, 0, method, LTH, settings, k, root / L.DENSE, previous, dirs[-1])
        previous = dirs[-1]
    evaluate_run("digits", arch, 0, method, LTH, settings, root / L.DENSE, dirs, root / method)
    return root / method


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("ticket"))


@pytest.fixture(scope="module")
def raw_test():
    return load_dataset("digits", 0, standardise=False).test


def recorded(run_dir) -> dict:
    """evaluation.csv's test accuracy by iteration."""
    with open(run_dir / L.EVALUATION) as f:
        return {int(r["iteration"]): float(r["test_accuracy"]) for r in csv.DictReader(f)}


def raw_accuracy(model, split) -> float:
    with torch.no_grad():
        return int((model(split.x).argmax(1) == split.y).sum()) / len(split.y)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "infcop", *args], capture_output=True, text=True, env=env())


def _ticket_cli(run_dir, out, level=None):
    dense, iterations = run_dir.parent / L.DENSE, sorted(str(d) for d in run_dir.glob("iter*"))
    return _cli("ticket", "--dataset", "digits", "--arch", "small_cnn", "--seed", "0", "--method", "lth",
                "--method-spec", json.dumps(LTH), "--settings", json.dumps(fast_settings()), "--threads", "1",
                "--dense", str(dense), "--iterations", *iterations, *(["--level", level] if level else []),
                "--out", str(out))


def test_loaded_ticket_reproduces_the_recorded_test_accuracy_on_raw_inputs(run, raw_test):
    assert raw_test.x.min() >= 0 and raw_test.x.max() <= 1  # digits as read, /16: not standardised
    model, masks, meta = load_ticket(run / L.TICKET)
    assert isinstance(model, torch.nn.Module) and not model.training
    acc = raw_accuracy(model, raw_test)
    n = len(raw_test.y)
    assert acc == pytest.approx(recorded(run)[2], abs=0.5 / n)  # the same test images right, to the image
    assert acc == pytest.approx(json.loads((run / L.TICKET_INFO).read_text())["test_accuracy"], abs=0.5 / n)
    with torch.no_grad():  # the standardisation is what makes raw inputs work: the bare network differs
        assert not torch.allclose(model(raw_test.x), model.net(raw_test.x))
    for name, w in prunable(model.net).items():
        assert torch.all(w[~masks[name]] == 0), name


def test_ticket_holds_architecture_normalisation_mask_level_and_recipe(run):
    obj = torch.load(run / L.TICKET, weights_only=True)  # plain tensors, dicts, lists, strings and numbers
    meta = obj["meta"]
    assert obj["format"] == "infcop-ticket/2"
    assert meta["architecture"] == {"name": "small_cnn", "plugin": None,
                                    "args": {"in_channels": 1, "num_classes": 10, "image_size": 8}}
    data = load_dataset("digits", 0, fast_settings()["data"]["val_fraction"])
    assert torch.equal(meta["normalisation"]["mean"], data.mean) and torch.equal(meta["normalisation"]["std"], data.std)
    assert meta["normalisation"]["mean"].shape == (1, 1, 1, 1)
    last = load_model_file(run / L.iteration_name(2) / L.MODEL)
    assert all(torch.equal(obj["masks"][k], last["masks"][k]) for k in last["masks"])
    with open(run / L.EVALUATION) as f:
        rows = {int(r["iteration"]): r for r in csv.DictReader(f)}
    assert meta["level"] == {"iteration": 2, "remaining_weights": pytest.approx(float(rows[2]["remaining_weights"]))}
    assert meta["recipe"] == {"method": "lth", "preset": check_method("lth", LTH), "final_epochs": 0}


@pytest.mark.parametrize("level", ["1", "0"])
def test_ticket_level_exports_an_earlier_iteration(run, raw_test, tmp_path, level):
    r = _ticket_cli(run, tmp_path / "out", level)
    assert r.returncode == 0, r.stderr
    model, _, meta = load_ticket(tmp_path / "out" / L.TICKET)
    info = json.loads((tmp_path / "out" / L.TICKET_INFO).read_text())
    assert meta["level"]["iteration"] == info["iteration"] == int(level)
    assert raw_accuracy(model, raw_test) == pytest.approx(recorded(run)[int(level)], abs=0.5 / len(raw_test.y))


@pytest.mark.badinput
@pytest.mark.parametrize("level", ["5", "two", "-1"])
def test_a_level_the_run_does_not_have_is_refused_with_the_allowed_ones(run, tmp_path, level):
    r = _ticket_cli(run, tmp_path / "out", level)
    assert r.returncode == 2 and f"--level '{level}'" in r.stderr and "allowed: 0, 1, 2" in r.stderr, r.stderr
    assert "or last" in r.stderr and not (tmp_path / "out").exists()


@pytest.mark.badinput
def test_an_earlier_level_is_not_written_over_the_runs_own_ticket(run):
    before = (run / L.TICKET).read_bytes()
    r = _ticket_cli(run, run, "1")
    assert r.returncode == 2 and "a directory of its own" in r.stderr, r.stderr
    assert (run / L.TICKET).read_bytes() == before


@pytest.mark.badinput
def test_a_ticket_from_before_the_normalisation_was_recorded_is_refused(run, tmp_path):
    obj = torch.load(run / L.TICKET, weights_only=True)
    for key in ("architecture", "normalisation", "level", "recipe"):
        del obj["meta"][key]
    save_torch({**obj, "format": "infcop-ticket/1"}, tmp_path / L.TICKET)
    with pytest.raises(InfcopError, match=r"before tickets recorded their input normalisation.*`infcop ticket`"):
        load_ticket(tmp_path / L.TICKET)


PLUGIN = """
import torch
from torch import nn
from infcop.science.models import ARCHS


class TinyNet(nn.Module):
    def __init__(self, in_channels, num_classes, image_size):
        super().__init__()
        self.fc1 = nn.Linear(in_channels * image_size * image_size, 32)
        self.fc2 = nn.Linear(32, num_classes)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x.flatten(1))))


ARCHS.add("tiny_net", TinyNet, label="tiny net")
"""


@pytest.fixture
def tiny_net(tmp_path, monkeypatch):
    """An architecture registered by a plugin file, loaded the way INFCOP_PLUGINS loads it."""
    path = tmp_path / "my_archs.py"
    path.write_text(PLUGIN)
    monkeypatch.setenv(plugins.ENV, str(path))
    plugins.load()
    yield path
    ARCHS.remove("tiny_net")
    plugins._loaded.discard(str(path))
    plugins._arch_origins.pop("tiny_net", None)
    sys.modules.pop("infcop_plugin_my_archs", None)


def test_a_plugin_architecture_ticket_loads_with_its_plugin(tiny_net, raw_test, tmp_path):
    run_dir = _run(tmp_path / "run", arch="tiny_net", iterations=1)
    meta = torch.load(run_dir / L.TICKET, weights_only=True)["meta"]
    assert meta["architecture"]["plugin"] == str(tiny_net)
    # a fresh process that never heard of the plugin: load_ticket imports it
    plain = {k: v for k, v in env().items() if k != plugins.ENV}
    r = subprocess.run([sys.executable, "-c", RAW_ACCURACY, str(run_dir / L.TICKET)], capture_output=True, text=True,
                       env=plain, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == pytest.approx(recorded(run_dir)[1], abs=0.5 / len(raw_test.y))
    tiny_net.rename(tmp_path / "moved.py")
    r = subprocess.run([sys.executable, "-c", RAW_ACCURACY, str(run_dir / L.TICKET)], capture_output=True, text=True,
                       env=plain, cwd=tmp_path)
    assert r.returncode != 0 and "comes from plugin" in r.stderr and str(tiny_net) in r.stderr, r.stderr

"""docs/methods.md's "Adding a pruner" and "Adding a stop criterion" (linked from the README), run exactly as
written: the code blocks are loaded as plugins and drive a real IMP iteration."""
import re
import subprocess
import sys

import pytest
import torch
import yaml

from conftest import ROOT, fast_settings
from infcop import InfcopError
from infcop.science import plugins
from infcop.running.checkpoints import load_model_file
from infcop.experiments.config import check_method
from infcop.science.pruners import PRUNERS
from infcop.experiments.schema import validate_config
from infcop.running.steps import imp_iteration, train_dense
from infcop.science.stopping import STOPS
from infcop.judging.tables import method_table


DOC = ROOT / "docs" / "methods.md"


def doc_blocks(heading: str) -> dict:
    """The python and yaml code blocks of one section of docs/methods.md."""
    text = DOC.read_text()
    start = text.index(f"### {heading}\n")
    end = min(i for i in (text.find("\n## ", start + 5), text.find("\n### ", start + 5), len(text)) if i > 0)
    section = text[start:end]
    blocks = re.findall(r"```(python|yaml)\n(.*?)```", section, re.S)
    return {lang: [b for lg, b in blocks if lg == lang] for lang in ("python", "yaml")}


@pytest.fixture(scope="module")
def extensions(tmp_path_factory):
    """Both documented examples written to files and loaded the way INFCOP_PLUGINS loads them."""
    root = tmp_path_factory.mktemp("plugins")
    files, presets = [], {}
    for heading, name in (("Adding a pruner", "my_pruners.py"), ("Adding a stop criterion", "my_criteria.py")):
        blocks = doc_blocks(heading)
        assert len(blocks["python"]) == 1 and blocks["yaml"], heading
        (root / name).write_text(blocks["python"][0])
        files.append(str(root / name))
        for y in blocks["yaml"]:
            presets.update(yaml.safe_load(y)["methods"])
    mp = pytest.MonkeyPatch()
    mp.setenv(plugins.ENV, ",".join(files))
    plugins.load()
    yield files, presets
    mp.undo()
    PRUNERS.remove("random_rate")
    STOPS.remove("loss")
    plugins._loaded.difference_update(files)


@pytest.fixture(scope="module")
def dense(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "dense"
    train_dense("digits", "small_cnn", 0, fast_settings(), out)
    return out


def test_readme_pruner_drives_a_real_iteration(extensions, dense, tmp_path):
    _, presets = extensions
    method = presets["random_imp"]
    assert check_method("random_imp", method)["pruner"] == {"name": "random_rate", "rate": 0.2, "seed": 0}
    m = imp_iteration("digits", "small_cnn", 0, "random_imp", method, fast_settings(), 1, dense, dense,
                      tmp_path / "a")
    masks = load_model_file(tmp_path / "a" / "model.pt")["masks"]
    dense_state = load_model_file(dense / "model.pt")["state"]
    for name, mask in masks.items():
        n = mask.numel()
        assert int(mask.sum()) == n - int(0.2 * n), name  # floor(rate * survivors) removed in every layer
    # random, not magnitude: some pruned weights are larger than some kept ones
    w = dense_state["features.2.weight"].abs()
    kept = masks["features.2.weight"]
    assert w[~kept].max() > w[kept].min()
    again = imp_iteration("digits", "small_cnn", 0, "random_imp", method, fast_settings(), 1, dense, dense,
                          tmp_path / "b")
    assert all(torch.equal(masks[k], load_model_file(tmp_path / "b" / "model.pt")["masks"][k]) for k in masks)
    assert again["remaining_weights"] == m["remaining_weights"]


def test_readme_criterion_stops_retraining(extensions, dense, tmp_path):
    _, presets = extensions
    method = dict(presets["sap_loss"], max_epochs=3)
    fires = dict(method, stop=[{"name": "loss", "below": 100.0}, {"name": "accuracy", "delta": 0.0}])
    m = imp_iteration("digits", "small_cnn", 0, "sap_loss", fires, fast_settings(), 1, dense, dense, tmp_path / "a")
    assert m["stop_reason"].split("+")[0] == "loss" and m["epochs_trained"] == 1
    never = dict(method, stop=[{"name": "loss", "below": 1e-12}])
    m = imp_iteration("digits", "small_cnn", 0, "sap_loss", never, fast_settings(), 1, dense, dense, tmp_path / "b")
    assert m["stop_reason"] == "budget" and m["epochs_trained"] == 3


def test_plugins_reach_config_checks_schema_and_tables(extensions):
    _, presets = extensions
    table = method_table(presets, fast_settings()).set_index("method")
    assert table.loc["sap_loss", "stops"] == "loss+accuracy" and table.loc["sap_loss", "loss_below"] == 0.05
    cfg = {"experiment": {"datasets": ["digits"], "archs": ["small_cnn"], "seeds": [0],
                          "methods": list(presets), "iterations": 1}, "methods": presets}
    validate_config(cfg)  # the schema is generated from the registries, plugins included
    with pytest.raises(InfcopError, match="below must be a number > 0"):
        check_method("bad", dict(presets["sap_loss"], stop=[{"name": "loss", "below": -1}]))
    with pytest.raises(InfcopError, match="'methods.bad.pruner.rat' is unknown"):
        check_method("bad", {"pruner": {"name": "random_rate", "rat": 0.2}, "stop": ["budget"]})


def test_cli_loads_plugins_from_the_environment(extensions, tmp_path):
    files, presets = extensions
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"experiment": {"methods": ["random_imp", "sap_loss"]}, "methods": presets}))
    cmd = [sys.executable, "-m", "infcop", "check-config", str(cfg)]
    without = subprocess.run(cmd, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert without.returncode == 2 and "unknown pruner 'random_rate'" in without.stderr
    with_plugins = subprocess.run(cmd, capture_output=True, text=True,
                                  env={"PATH": "/usr/bin:/bin", plugins.ENV: ",".join(files)})
    assert with_plugins.returncode == 0, with_plugins.stderr
    missing = subprocess.run(cmd, capture_output=True, text=True,
                             env={"PATH": "/usr/bin:/bin", plugins.ENV: "no_such_plugin_module"})
    assert missing.returncode == 2 and "no_such_plugin_module" in missing.stderr


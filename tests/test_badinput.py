"""Bad input is rejected before any training, naming the key, the bad value and what is allowed; exit
non-zero; results/ untouched."""
import copy
import json
import subprocess
import sys

import pytest
import yaml

from conftest import fast_settings, write_idx_mnist
from workflow_helpers import ROOT, TINY, env, snakemake, workdir

pytestmark = pytest.mark.badinput
BASE = yaml.safe_load(TINY.read_text())


def _set(cfg, dotted, value):
    *path, last = dotted.split(".")
    node = cfg
    for p in path:
        node = node.setdefault(p, {}) if not p.isdigit() else node[int(p)]
    if last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value
    return cfg


CASES = [
    # (id, changes, words the message must contain)
    ("unknown-dataset", {"experiment.datasets": ["imagenet"]}, ["imagenet", "digits", "mnist"]),
    ("unknown-arch", {"experiment.archs": ["resnet999"]}, ["resnet999", "small_cnn"]),
    ("unknown-method", {"experiment.methods": ["lth", "nosuch"]}, ["nosuch", "lth"]),
    ("unknown-pruner", {"methods.lth.pruner": {"name": "randm", "rate": 0.2}}, ["randm", "magnitude, sap, random"]),
    ("unknown-stop", {"methods.lth.stop": ["sometimes"]}, ["sometimes", "budget"]),
    ("unknown-rewind", {"methods.lth.rewind": "late"}, ["rewind", "late", "dense, init, reinit, none"]),
    ("p-not-below-q", {"methods.ciap.pruner.p": 2}, ["p must be < q", "p=2"]),
    ("p-not-positive", {"methods.ciap.pruner.p": 0}, ["methods.ciap.pruner.p", "> 0"]),
    ("negative-epsilon", {"methods.ciap.stop.0.epsilon": -0.1}, ["epsilon", "-0.1", "> 0"]),
    ("zero-epsilon", {"methods.ciap.stop.0.epsilon": 0}, ["epsilon", "> 0"]),
    ("rate-above-one", {"methods.lth.pruner.rate": 1.5}, ["methods.lth.pruner.rate", "1.5", "(0, 1)"]),
    ("rate-zero", {"methods.lth.pruner.rate": 0}, ["methods.lth.pruner.rate", "(0, 1)"]),
    ("beta-zero", {"methods.ciap.pruner.beta": 0}, ["beta", "(0, 1]"]),
    ("beta-above-one", {"methods.ciap.pruner.beta": 1.5}, ["beta", "1.5", "(0, 1]"]),
    ("non-integer-epochs", {"dense.epochs": 2.5}, ["dense.epochs", "2.5", "integer"]),
    ("negative-iterations", {"experiment.iterations": -1}, ["experiment.iterations", "-1", "integer >= 1"]),
    ("negative-seed", {"experiment.seeds": [-3]}, ["experiment.seeds", "-3", "integer >= 0"]),
    ("zero-batch-size", {"training.batch_size": 0}, ["training.batch_size", "0", "integer >= 1"]),
    ("string-seed", {"experiment.seeds": ["zero"]}, ["experiment.seeds", "zero"]),
    ("duplicate-seeds", {"experiment.seeds": [0, 0]}, ["experiment.seeds", "duplicates", "0"]),
    ("missing-data-dir", {"experiment.datasets": ["mnist"], "data.data_dir": "no/such/dir"},
     ["data.data_dir", "no/such/dir", "download"]),
    ("preset-missing-key", {"methods.lth": {"pruner": {"name": "magnitude", "rate": 0.2}}},
     ["methods.lth", "missing required key 'stop'"]),
    ("typo-epsilion", {"methods.ciap.stop.0": {"name": "infoflow", "epsilion": 0.1}},
     ["epsilion", "epsilon"]),
    ("typo-section-key", {"training.learning_rate": 0.1}, ["training.learning_rate", "unknown", "lr"]),
    ("typo-top-level", {"trainig": {"lr": 0.1}}, ["trainig"]),
    ("string-for-number", {"training.lr": "fast"}, ["training.lr", "fast", "number"]),
    ("momentum-out-of-range", {"training.momentum": 1.5}, ["training.momentum", "1.5", "[0, 1)"]),
    ("val-fraction-one", {"data.val_fraction": 1}, ["data.val_fraction", "(0, 1)"]),
    ("unknown-device", {"training.device": "tpu"}, ["training.device", "tpu", "auto, cpu, cuda"]),
    ("dotdot-method-name", {"experiment.methods": ["../evil"], "methods.../evil": None}, ["../evil"]),
    ("shell-metachar-method", {"experiment.methods": ["a b;touch pwned"]}, ["a b;touch pwned"]),
    # splits and sizes (digits: 1,222 training and 216 validation images at val_fraction 0.15)
    ("empty-validation-split", {"data.val_fraction": 0.0003}, ["data.val_fraction", "0.0003", "validation split"]),
    ("training-batch-of-one", {"training.batch_size": 3}, ["training.batch_size", "single image", "1222"]),
    ("probe-larger-than-training-split", {"flows.probe_size": 5000}, ["flows.probe_size", "5000", "at most 1222"]),
    ("seed-2**63", {"experiment.seeds": [2**63]}, ["experiment.seeds", str(2**63), "2**43"]),
    ("preset-min-above-max-epochs", {"methods.lth.min_epochs": 5}, ["method 'lth'", "min_epochs 5", "max_epochs 3"]),
    ("reserved-method-name", {"experiment.methods": ["dense"],
                              "methods.dense": {"pruner": {"name": "sap", "p": 1, "q": 2}, "stop": ["budget"]}},
     ["dense", "result folders"]),
]


def _config(changes):
    cfg = copy.deepcopy(BASE)
    for k, v in changes.items():
        if k == "methods.../evil":
            cfg["methods"]["../evil"] = copy.deepcopy(cfg["methods"]["lth"])
            continue
        if k == "methods.a b;touch pwned":
            continue
        _set(cfg, k, v)
    if "a b;touch pwned" in cfg["experiment"]["methods"]:
        cfg["methods"]["a b;touch pwned"] = copy.deepcopy(cfg["methods"]["lth"])
    return cfg


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    wd = workdir(tmp_path_factory.mktemp("bad"))
    (wd / "results").mkdir()
    (wd / "results" / "keep.txt").write_text("an earlier result")
    return wd


@pytest.mark.parametrize("case,changes,words", CASES, ids=[c[0] for c in CASES])
def test_bad_config_is_rejected_before_any_job(scratch, case, changes, words):
    (scratch / "config.yaml").write_text(yaml.safe_dump(_config(changes), sort_keys=False))
    before = sorted(p.relative_to(scratch) for p in (scratch / "results").rglob("*"))
    r = snakemake(scratch, check=False)
    out = r.stdout + r.stderr
    assert r.returncode != 0, out[-2000:]
    for w in words:
        assert w in out, f"{case}: {w!r} not in message:\n{out[-2000:]}"
    assert sorted(p.relative_to(scratch) for p in (scratch / "results").rglob("*")) == before
    assert (scratch / "results" / "keep.txt").read_text() == "an earlier result"
    assert not (scratch / "pwned").exists()
    assert "Traceback" not in out


def test_empty_data_dir_is_rejected(scratch):
    (scratch / "empty").mkdir(exist_ok=True)
    cfg = _config({"experiment.datasets": ["mnist"], "data.data_dir": "empty"})
    (scratch / "config.yaml").write_text(yaml.safe_dump(cfg))
    r = snakemake(scratch, check=False)
    assert r.returncode != 0 and "'empty' is missing or empty" in r.stderr + r.stdout


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "infcop", *args], capture_output=True, text=True, env=env())


def test_corrupt_data_set_is_refused_with_its_path_before_training(tmp_path):
    data = write_idx_mnist(tmp_path / "data")
    img = data / "MNIST" / "raw" / "train-images-idx3-ubyte"
    img.write_bytes(img.read_bytes()[:64])
    settings = json.loads(json.dumps(fast_settings()))
    settings["data"]["data_dir"] = str(data)
    r = _cli("train-dense", "--dataset", "mnist", "--arch", "small_cnn", "--seed", "0", "--settings",
             json.dumps(settings), "--out", str(tmp_path / "out"))
    assert r.returncode == 2 and str(data / "MNIST") in r.stderr and "download" in r.stderr
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def dense_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("dense")
    from infcop.running.steps import train_dense
    train_dense("digits", "small_cnn", 0, fast_settings(), root / "small_cnn")
    train_dense("digits", "mlp", 0, fast_settings(), root / "mlp")
    return root


def _imp(dense, previous, out, arch="small_cnn", dataset="digits"):
    spec = json.dumps({"pruner": {"name": "magnitude", "rate": 0.2}, "stop": ["budget"]})
    return _cli("imp-iteration", "--dataset", dataset, "--arch", arch, "--seed", "0", "--method", "lth",
                "--method-spec", spec, "--settings", json.dumps(fast_settings()), "--iteration", "1",
                "--dense", str(dense), "--previous", str(previous), "--out", str(out))


def test_checkpoint_from_another_architecture_is_refused(dense_dirs, tmp_path):
    r = _imp(dense_dirs / "small_cnn", dense_dirs / "mlp", tmp_path / "o")
    assert r.returncode == 2 and "is for arch 'mlp', not 'small_cnn'" in r.stderr
    assert not (tmp_path / "o").exists()


def test_checkpoint_from_another_data_set_is_refused(dense_dirs, tmp_path):
    r = _imp(dense_dirs / "small_cnn", dense_dirs / "small_cnn", tmp_path / "o", dataset="mnist")
    assert r.returncode == 2 and "is for dataset 'digits', not 'mnist'" in r.stderr


def test_file_that_is_not_a_checkpoint_is_refused(dense_dirs, tmp_path):
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "model.pt").write_text("not a checkpoint")
    r = _imp(dense_dirs / "small_cnn", fake, tmp_path / "o")
    assert r.returncode == 2 and str(fake / "model.pt") in r.stderr and "not a readable checkpoint" in r.stderr


def test_cut_short_metrics_file_is_refused_with_its_path(dense_dirs, tmp_path):
    import shutil
    dense = tmp_path / "dense"
    shutil.copytree(dense_dirs / "small_cnn", dense)
    m = dense / "metrics.json"
    m.write_text(m.read_text()[:200])
    r = _imp(dense, dense, tmp_path / "o")
    assert r.returncode == 2 and str(m) in r.stderr and "not valid JSON" in r.stderr


@pytest.mark.parametrize("args,words", [
    (["--settings", "{not json"], ["--settings", "not valid JSON"]),
    (["--settings", json.dumps({"training": {"lr": -1}})], ["training.lr", "-1"]),
    (["--settings", json.dumps({"trainig": {}})], ["trainig"]),
])
def test_bad_cli_arguments_are_named(args, words, tmp_path):
    r = _cli("train-dense", "--dataset", "digits", "--arch", "small_cnn", "--seed", "0", *args,
             "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and all(w in r.stderr for w in words), r.stderr
    assert not (tmp_path / "o").exists()


def test_data_dir_with_spaces_and_shell_metacharacters_is_passed_safely(tmp_path):
    weird = "my data; touch pwned $(touch pwned2) `touch pwned3`"
    wd = workdir(tmp_path / "wd", experiment__datasets=["mnist"], data__data_dir=weird, dense__epochs=1)
    write_idx_mnist(wd / weird)
    snakemake(wd, "results/mnist/small_cnn/seed0/dense/model.pt")
    assert (wd / "results/mnist/small_cnn/seed0/dense/model.pt").is_file()
    assert not any((wd / n).exists() for n in ("pwned", "pwned2", "pwned3"))


@pytest.mark.badinput
def test_make_names_an_interpreter_too_old_before_it_installs_anything(tmp_path):
    import shutil

    if shutil.which("make") is None:
        pytest.skip("no make on this machine")
    fake = tmp_path / "python3.10"
    fake.write_text('#!/bin/sh\n[ "$1" = "--version" ] && { echo "Python 3.10.12"; exit 0; }\n'
                    '[ "$1" = "-c" ] && exit 1\nexit 0\n')
    fake.chmod(0o755)
    venv = tmp_path / "venv"
    r = subprocess.run(["make", "-C", str(ROOT), "setup", f"PYTHON={fake}", f"VENV={venv}"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "needs Python >= 3.11" in r.stdout and "Python 3.10.12" in r.stdout and "PYTHON=" in r.stdout
    assert not venv.exists(), "a virtual environment was made from an interpreter too old"

import json
import pickle
import subprocess
import sys

import pytest
import torch

from conftest import fast_settings
from infcop import InfcopError, load_ticket
from infcop.running import checkpoints as checkpoints_mod
from infcop.running import steps as steps_mod
from infcop.running.checkpoints import EpochCheckpoint, load_model_file, save_torch
from infcop.running.job import Env, Run
from infcop.science.masks import full_masks, prunable
from infcop.science.models import build_model
from infcop.running.steps import evaluate, export_ticket, imp_iteration, train_dense
from infcop.science.stopping import criteria_of
from infcop.science.training import Schedule, retrain

CIAP = {"pruner": {"name": "sap", "p": 1, "q": 2}, "stop": [{"name": "infoflow", "epsilon": 0.1},
                                                           {"name": "accuracy", "delta": 0.0}]}
LTH = {"pruner": {"name": "magnitude", "rate": 0.2}, "stop": ["budget"]}


class Killed(Exception):
    pass


def _kill_after(monkeypatch, n_saves):
    """Make the n-th epoch checkpoint write the last thing a 'killed' job does."""
    real, count = checkpoints_mod.save_torch, {"n": 0}

    def save(obj, path):
        real(obj, path)
        if obj.get("format") == "infcop-epoch/1":
            count["n"] += 1
            if count["n"] == n_saves:
                raise Killed()
    monkeypatch.setattr(checkpoints_mod, "save_torch", save)


def _train(tmp_path, name, epochs, monkeypatch=None, kill_after=None):
    settings = fast_settings(max_epochs=epochs)
    run = Run("digits", "small_cnn", 0, "test", 1)
    env = Env(run, settings)
    torch.manual_seed(0)
    model = build_model("small_cnn", 1, 10, 8)
    masks = full_masks(model)
    args = (Schedule(criteria_of([{"name": "budget"}]), epochs, epochs), EpochCheckpoint(tmp_path / name, "fixed"))
    kw = dict(measure=False)
    if kill_after:
        _kill_after(monkeypatch, kill_after)
        with pytest.raises(Killed):
            retrain(env, run, model, masks, *args, **kw)
        monkeypatch.undo()
        torch.manual_seed(123)  # a fresh process: nothing carried over in memory
        model = build_model("small_cnn", 1, 10, 8)
        masks = full_masks(model)
    hist = retrain(env, run, model, masks, *args, **kw)["history"]
    return model, hist


def test_training_is_deterministic_on_cpu(tmp_path):
    a, ha = _train(tmp_path, "a.pt", 2)
    b, hb = _train(tmp_path, "b.pt", 2)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k
    assert [h["train_loss"] for h in ha] == [h["train_loss"] for h in hb]


@pytest.mark.faults
def test_resume_from_epoch_checkpoint_equals_straight_run(tmp_path, monkeypatch):
    straight, hs = _train(tmp_path, "s.pt", 6)
    resumed, hr = _train(tmp_path, "r.pt", 6, monkeypatch, kill_after=3)
    for (k, va), vb in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(va, vb), k
    assert [h["train_loss"] for h in hs] == [h["train_loss"] for h in hr]


@pytest.fixture(scope="module")
def dense(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "dense"
    train_dense("digits", "small_cnn", 0, fast_settings(), out)
    return out


def test_dense_stage_outputs(dense):
    m = json.loads((dense / "metrics.json").read_text())
    assert m["epochs_trained"] == 2 and m["remaining_weights"] == 1.0
    assert len(m["connectivity"]) == len(m["layers"]) - 1 == 3 and len(m["gradflow"]) == 4
    assert m["similarity"] == pytest.approx([1.0] * 4)
    assert m["val_accuracy"] == max(e["val_accuracy"] for e in m["epochs"])
    # the final epoch checkpoint stays until the next stage starts (a rerun then finishes at once)
    final = torch.load(dense / "resume.pt", weights_only=True)
    assert final["epoch"] == 2 and final["history"][-1]["stopped"]
    init, trained = load_model_file(dense / "init.pt"), load_model_file(dense / "model.pt")
    assert not torch.equal(init["state"]["features.0.weight"], trained["state"]["features.0.weight"])


def _iterate(dense, out, method, k, previous=None):
    return imp_iteration("digits", "small_cnn", 0, "m", method, fast_settings(), k, dense, previous or dense, out)


def test_imp_iteration_prunes_rewinds_retrains_and_records_every_epoch(dense, tmp_path):
    m1 = _iterate(dense, tmp_path / "iter1", LTH, 1)
    m2 = _iterate(dense, tmp_path / "iter2", LTH, 2, tmp_path / "iter1")
    assert m1["remaining_weights"] == pytest.approx(0.8, abs=0.01)
    assert m2["remaining_weights"] == pytest.approx(0.64, abs=0.01)
    assert m1["stop_reason"] == "budget" and m1["epochs_trained"] == 2
    e = m1["epochs"][0]
    for key in ("train_loss", "val_accuracy", "connectivity", "gradflow", "similarity", "info_distance",
                "grad_distance", "stopped", "stop_reason"):
        assert key in e
    obj = load_model_file(tmp_path / "iter2" / "model.pt")
    for n, mask in obj["masks"].items():
        assert torch.all(obj["state"][n][~mask] == 0)
    saved = json.loads((tmp_path / "iter1" / "metrics.json").read_text())
    assert saved["iteration"] == 1 and saved["method"] == "m"


def test_rewind_dense_init_none(dense, tmp_path):
    base = dict(LTH)
    dense_state = load_model_file(dense / "model.pt")["state"]
    init_state = load_model_file(dense / "init.pt")["state"]
    for rewind, ref in (("dense", dense_state), ("init", init_state)):
        # prune + rewind only: the surviving weights are the rewind point's
        env = Env(Run("digits", "small_cnn", 0, "m", 1), fast_settings())
        model, masks = env.load(load_model_file(dense / "model.pt"))
        from infcop.science.pruners import prune
        new = prune(model, masks, base["pruner"])
        steps_mod.rewinder(steps_mod.rewind_state(rewind, dense, "digits", "small_cnn"),
                           new)(model)
        w = prunable(model)["features.0.weight"]
        assert torch.equal(w, ref["features.0.weight"] * new["features.0.weight"]), rewind


RECIPES = {  # every optimizer, and per-step schedules whose rate depends on where a resumed run takes up
    "sgd_constant": dict(LTH, max_epochs=3),
    "adam_bimp": dict(LTH, max_epochs=3, rewind="none", lr="allr", schedule={"name": "linear", "warmup": 0.1},
                      optimizer="adam"),
    "adamw_step": dict(LTH, max_epochs=3, lr=0.003, schedule="step", optimizer={"name": "adamw", "weight_decay": 0.05}),
    "annealed": dict(LTH, max_epochs=3, stop=[{"name": "accuracy", "delta": 1.0}], schedule="linear",
                     anneal_on_stop=1),
    "gmp": dict(LTH, pruner={"name": "magnitude", "target": [0.5], "scope": "layer"}, iterations=1, max_epochs=3,
                gmp={"start": 0.0, "end": 0.75, "every": 7}),  # masks that change mid-epoch, resumed
}


@pytest.mark.faults
@pytest.mark.parametrize("recipe", list(RECIPES))
def test_killed_iteration_resumes_and_matches_uninterrupted(dense, tmp_path, monkeypatch, recipe):
    method = RECIPES[recipe]
    straight = _iterate(dense, tmp_path / "a", method, 1)
    _kill_after(monkeypatch, 2)
    with pytest.raises(Killed):
        _iterate(dense, tmp_path / "b", method, 1)
    monkeypatch.undo()
    assert (tmp_path / "b" / "resume.pt").exists() and not (tmp_path / "b" / "metrics.json").exists()
    resumed = _iterate(dense, tmp_path / "b", method, 1)
    drop = ("train_seconds", "flow_seconds")
    strip = lambda m: [{k: v for k, v in e.items() if k not in drop} for e in m["epochs"]]
    assert strip(straight) == strip(resumed)
    a = load_model_file(tmp_path / "a" / "model.pt")["state"]
    b = load_model_file(tmp_path / "b" / "model.pt")["state"]
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.faults
def test_stale_epoch_checkpoint_from_other_settings_is_not_resumed(dense, tmp_path, monkeypatch):
    _kill_after(monkeypatch, 1)
    with pytest.raises(Killed):
        _iterate(dense, tmp_path / "c", dict(LTH, max_epochs=3), 1)
    monkeypatch.undo()
    m = _iterate(dense, tmp_path / "c", dict(LTH, max_epochs=2), 1)  # other parameters: start afresh
    assert m["epochs_trained"] == 2 and len(m["epochs"]) == 1 + 2  # epoch 0 (before retraining) + 2


def test_ciap_stops_on_a_named_criterion_and_evaluate_writes_tidy_csv(dense, tmp_path):
    _iterate(dense, tmp_path / "iter1", CIAP, 1)
    rows = evaluate("digits", "small_cnn", 0, "m", fast_settings(), dense, [tmp_path / "iter1"], tmp_path)
    assert [r["iteration"] for r in rows] == [0, 1]
    assert rows[0]["remaining_weights"] == 1.0 and rows[1]["remaining_weights"] < 1.0
    header = (tmp_path / "evaluation.csv").read_text().splitlines()[0]
    assert header.startswith("dataset,arch,method,seed,iteration,remaining_weights,test_accuracy")
    # MACs per input: the dense count at iteration 0, each layer's share of survivors after pruning
    dense_macs = 64 * 32 * 9 + 64 * 64 * 32 * 9 + 1024 * 128 + 128 * 10  # small_cnn on 8x8 (tests/test_models.py)
    assert rows[0]["macs"] == rows[0]["dense_macs"] == rows[1]["dense_macs"] == dense_macs
    assert rows[1]["macs"] < dense_macs
    # the dense noise floors' seconds are recorded apart from its flows (charged to `auto` methods only)
    assert rows[0]["noise_floor_seconds"] > 0 and rows[1]["noise_floor_seconds"] is None
    layers = (tmp_path / "layers.csv").read_text().splitlines()
    assert layers[0] == "dataset,arch,method,seed,iteration,metric,layer,layer_index,value"
    assert len(layers) - 1 == 2 * (3 + 3 + 4 + 4 + 4)  # connectivity, |r|, CKA, gradient flow, similarity


def test_ticket_is_loadable_with_one_call(dense, tmp_path):
    _iterate(dense, tmp_path / "iter1", LTH, 1)
    info = export_ticket("digits", "small_cnn", 0, "m", LTH, fast_settings(final_epochs=1), dense,
                         tmp_path / "iter1", tmp_path)
    model, masks, meta = load_ticket(tmp_path / "ticket.pt")
    assert meta["arch"] == "small_cnn" and meta["dataset"] == "digits" and meta["final_epochs"] == 1
    assert info["remaining_weights"] == pytest.approx(0.8, abs=0.01) and 0 < info["test_accuracy"] <= 1
    for n, w in prunable(model.net).items():  # the architecture behind the input standardisation
        assert torch.all(w[~masks[n]] == 0)


@pytest.mark.badinput
def test_checkpoints_refuse_foreign_truncated_and_pickled_files(dense, tmp_path):
    with pytest.raises(InfcopError, match="is for arch 'small_cnn', not 'mlp'"):
        load_model_file(dense / "model.pt", arch="mlp")
    with pytest.raises(InfcopError, match="is for dataset 'digits', not 'mnist'"):
        load_model_file(dense / "model.pt", dataset="mnist")
    cut = tmp_path / "cut.pt"
    cut.write_bytes((dense / "model.pt").read_bytes()[:1000])
    with pytest.raises(InfcopError, match=str(cut)):
        load_model_file(cut)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(InfcopError, match="is not an infcop-model/1 checkpoint"):
        load_model_file(other)
    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps(Killed()))
    with pytest.raises(InfcopError, match="not a readable checkpoint"):
        load_model_file(evil)


@pytest.mark.faults
def test_atomic_save_leaves_no_partial_file(tmp_path):
    class Boom:
        def __reduce__(self):
            raise RuntimeError("boom")
    target = tmp_path / "x.pt"
    save_torch({"a": 1}, target)
    with pytest.raises(RuntimeError):
        save_torch({"a": Boom()}, target)
    assert torch.load(target, weights_only=True) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["x.pt"]


@pytest.mark.faults
def test_divergence_names_run_and_epoch(dense, tmp_path):
    with pytest.raises(InfcopError, match=r"dataset=digits arch=small_cnn method=m seed=0 iteration=1.*epoch 1"):
        imp_iteration("digits", "small_cnn", 0, "m", LTH, fast_settings(lr=1e12), 1, dense, dense, tmp_path)


def test_cli_help_explains_every_subcommand():
    for cmd in ("train-dense", "imp-iteration", "ticket", "evaluate", "tables", "plot", "summary", "branch", "check-config"):
        out = subprocess.run([sys.executable, "-m", "infcop", cmd, "--help"], capture_output=True, text=True)
        assert out.returncode == 0 and "usage: infcop" in out.stdout
    out = subprocess.run([sys.executable, "-m", "infcop", "--help"], capture_output=True, text=True)
    assert "imp-iteration" in out.stdout and "train-dense" in out.stdout


def test_cli_by_hand_dense_iterations_evaluate(tmp_path):
    settings = json.dumps(fast_settings())
    spec = json.dumps(CIAP)
    def cli(*args):
        r = subprocess.run([sys.executable, "-m", "infcop", *args, "--dataset", "digits", "--arch", "small_cnn",
                            "--seed", "0", "--settings", settings, "--threads", "1"], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    cli("train-dense", "--out", str(tmp_path / "dense"))
    prev = tmp_path / "dense"
    for k in (1, 2):
        cli("imp-iteration", "--method", "ciap", "--method-spec", spec, "--iteration", str(k), "--dense",
            str(tmp_path / "dense"), "--previous", str(prev), "--out", str(tmp_path / f"iter{k}"))
        prev = tmp_path / f"iter{k}"
    cli("evaluate", "--method", "ciap", "--method-spec", spec, "--dense", str(tmp_path / "dense"), "--iterations",
        str(tmp_path / "iter1"), str(tmp_path / "iter2"), "--out", str(tmp_path))
    assert load_ticket(tmp_path / "ticket.pt")[2]["iteration"] == 2  # evaluate exports the run's ticket too
    lines = (tmp_path / "evaluation.csv").read_text().splitlines()
    remaining = [float(line.split(",")[5]) for line in lines[1:]]
    assert remaining[0] == 1.0 and remaining[0] > remaining[1] > remaining[2]


def test_rewind_point_is_the_dense_run_after_k_epochs(tmp_path, monkeypatch):
    """Late rewinding: the dense network after k of its epochs, bit for bit (cosine schedule: the LR
    schedule must span the dense run's epochs, not k)."""
    settings = fast_settings(schedule="cosine")
    settings["dense"]["epochs"] = 3
    states = {}
    real = checkpoints_mod.EpochCheckpoint.save

    def record(self, state):
        states[(self.path.name, state["epoch"])] = {k: v.clone() for k, v in state["state"].items()}
        real(self, state)
    monkeypatch.setattr(checkpoints_mod.EpochCheckpoint, "save", record)
    train_dense("digits", "small_cnn", 0, settings, tmp_path / "dense")
    monkeypatch.undo()
    out = steps_mod.rewind_point("digits", "small_cnn", 0, settings, 2, tmp_path / "dense")
    assert out.name == "epoch2.pt" and not (tmp_path / "dense" / "epoch2_resume.pt").exists()
    got = load_model_file(out)["state"]
    want = states[("resume.pt", 2)]
    assert all(torch.equal(got[k], want[k]) for k in want)
    assert not torch.equal(got["features.0.weight"], states[("resume.pt", 3)]["features.0.weight"])
    # a method that rewinds there starts its retraining from exactly these weights
    new = steps_mod.rewind_state({"epoch": 2}, tmp_path / "dense", "digits", "small_cnn")
    assert all(torch.equal(new[k], want[k]) for k in want)


def test_epoch_0_is_measured_before_any_training_and_may_end_the_iteration(dense, tmp_path):
    calm = {"pruner": {"name": "magnitude", "rate": 0.2}, "stop": [{"name": "accuracy", "delta": 1.0}],
            "min_epochs": 0}
    m = _iterate(dense, tmp_path / "a", calm, 1)
    assert m["epochs_trained"] == 0 and m["stop_reason"] == "accuracy" and len(m["epochs"]) == 1
    e0 = m["epochs"][0]
    assert e0["epoch"] == 0 and e0["train_loss"] is None and e0["criteria"]["accuracy"]["holds"]
    assert m["epoch0_val_accuracy"] == e0["val_accuracy"] and m["stopped_early_vs_accuracy"] is False
    # pruned, rewound, untrained: its weights are the dense network's with the pruned ones zeroed
    dense_w = load_model_file(dense / "model.pt")["state"]["features.0.weight"]
    obj = load_model_file(tmp_path / "a" / "model.pt")
    assert torch.equal(obj["state"]["features.0.weight"], dense_w * obj["masks"]["features.0.weight"])
    held_back = _iterate(dense, tmp_path / "b", dict(calm, min_epochs=1), 1)
    assert held_back["epochs_trained"] == 1 and held_back["epochs"][0]["criteria"]["accuracy"]["holds"]


def test_patience_ends_with_the_best_epochs_weights_and_pays_up_to_where_it_stopped(dense, tmp_path):
    method = {"pruner": {"name": "magnitude", "rate": 0.2, "scope": "layer"}, "max_epochs": 6,
              "stop": [{"name": "patience", "metric": "val_loss", "patience": 1}]}
    m = imp_iteration("digits", "small_cnn", 0, "m", method, fast_settings(lr=0.5), 1, dense, dense, tmp_path / "it")
    losses = [e["val_loss"] for e in m["epochs"]]
    assert all(isinstance(x, float) for x in losses)
    best = min(range(len(losses)), key=lambda i: (losses[i], i))
    assert m["stop_reason"] in ("patience", "budget") and m["epochs_trained"] == m["epochs"][-1]["epoch"]
    # at this rate the loss jumps about: the best epoch is not the last (a case that tests nothing fails here)
    assert best != m["epochs"][-1]["epoch"] and m["stop_reason"] == "patience"
    assert m["restored_epoch"] == best and m["val_accuracy"] == m["epochs"][best]["val_accuracy"]
    from infcop.science.training import accuracy  # the saved model is that epoch's: its validation accuracy says so

    env = Env(Run("digits", "small_cnn", 0, "m", 1), fast_settings())
    model, _ = env.load(load_model_file(tmp_path / "it" / "model.pt"))
    assert accuracy(model, env.data.val) == pytest.approx(m["epochs"][best]["val_accuracy"])


def test_anneal_on_stop_decays_from_where_the_schedule_was_to_zero_and_is_charged(dense, tmp_path):
    from infcop.science.training import steps_per_epoch

    env = Env(Run("digits", "small_cnn", 0, "m", 1), fast_settings())
    n = steps_per_epoch(env.data, fast_settings()["training"]["batch_size"])
    lr = fast_settings()["training"]["lr"]
    m = _iterate(dense, tmp_path / "a", RECIPES["annealed"], 1)  # delta 1: accuracy holds at once, stops at 1
    ep = m["epochs"]
    assert [e["epoch"] for e in ep] == [0, 1, 2] and [bool(e.get("anneal")) for e in ep] == [False, False, True]
    assert m["stop_reason"] == "accuracy" and ep[1]["stopped"] and m["epochs_trained"] == 2
    # epoch 1: linear decay over the 3-epoch horizon, steps 0..n-1; the anneal starts at step n's rate
    assert ep[1]["lr"] == pytest.approx(lr * sum(1 - i / (3 * n) for i in range(n)) / n)
    start = lr * (1 - n / (3 * n))
    assert ep[2]["lr"] == pytest.approx(sum(start * (1 - j / n) for j in range(n)) / n) and ep[2]["steps"] == n
    # a share of the epochs trained: half of epoch 1's steps; a stop at the budget's end is not annealed
    half = _iterate(dense, tmp_path / "b", dict(RECIPES["annealed"], anneal_on_stop={"share": 0.5}), 1)
    assert half["epochs_trained"] == pytest.approx(1 + round(0.5 * n) / n)
    budget = _iterate(dense, tmp_path / "c", dict(RECIPES["annealed"], max_epochs=1), 1)
    assert budget["epochs_trained"] == 1 and not any(e.get("anneal") for e in budget["epochs"])


def test_a_fractional_budget_trains_that_share_of_an_epochs_steps_and_is_charged_for_it(dense, tmp_path):
    from infcop.science.training import steps_per_epoch

    method = {"pruner": {"name": "magnitude", "rate": 0.2, "scope": "layer"}, "stop": ["budget"], "max_epochs": 1.5}
    m = imp_iteration("digits", "small_cnn", 0, "m", method, fast_settings(), 1, dense, dense, tmp_path / "it")
    env = Env(Run("digits", "small_cnn", 0, "m", 1), fast_settings())
    steps = steps_per_epoch(env.data, fast_settings()["training"]["batch_size"])
    last = m["epochs"][-1]
    assert [e["epoch"] for e in m["epochs"]] == [0, 1, 2] and last["stop_reason"] == "budget"
    assert last["fraction"] == round(0.5 * steps) / steps and "fraction" not in m["epochs"][1]
    assert m["epochs_trained"] == pytest.approx(1 + last["fraction"])  # the cost counts steps, not epochs begun
    whole = imp_iteration("digits", "small_cnn", 0, "m", {**method, "max_epochs": 1}, fast_settings(), 1, dense, dense,
                          tmp_path / "whole")
    assert whole["epochs_trained"] == 1 and isinstance(whole["epochs_trained"], int)

"""Results a multi-day study can trust: experiments that do not mix, settings that do not silently change,
recompute only what changed, writers that cannot spoil each other's files. One test (or a few) per finding
of the reliability review, each failing on the behaviour the review found."""
import copy
import errno
import json
import os
import re
import socket
import subprocess
import sys
import threading
from types import SimpleNamespace

import pandas as pd
import pytest
import yaml

from conftest import fast_settings
from workflow_helpers import (TINY, edit_config, infcop, job_counts, killed_run, mtimes, snakemake, workdir)

TARGET = "results/tables/methods.csv"  # every run's files, without the figures
RUN = "results/digits/small_cnn/seed0/lth"
LOGS = "results/logs/digits/small_cnn/seed0/lth"
STUDY = dict(experiment__methods=["lth"], experiment__iterations=2, dense__epochs=1, training__max_epochs=3,
             training__device="cpu")
# Settings that say where or how a result is computed, never what it is: key -> the value the study goes on with
NOT_RESULTS = {"data.data_dir": "scratch/data", "data.download": True, "training.device": "auto",
               "methods.lth.description": "the same method, other words"}


# 1. An experiment file is complete on its own and writes under its own results root ------------------------

@pytest.mark.badinput
@pytest.mark.slow
def test_an_experiment_file_takes_nothing_from_config_yaml(tmp_path):
    from infcop.experiments.experiment import config_stage_settings, key_of, resolve

    cfg = yaml.safe_load(TINY.read_text())
    cfg["methods"]["lth"].update(rewind="init", max_epochs=1)  # an edit meant for the default experiment only
    wd = workdir(tmp_path / "wd", cfg)
    sweep = "workflow/experiments/epsilon_sweep_digits.yaml"
    out = snakemake(wd, "-n", "--configfile", sweep).stdout
    planned = {}  # method -> the settings keys its iteration jobs were planned with
    for method, key in re.findall(r"infcop imp-iteration .*?--method (\S+) .*?--expect (\w+)", out):
        planned.setdefault(method, set()).add(key)
    own = resolve([wd / sweep])
    assert planned["lth"] == {key_of(config_stage_settings(own, "iteration", "lth"))}
    merged = copy.deepcopy(own)
    merged["methods"]["lth"].update(rewind="init", max_epochs=1)
    assert planned["lth"] != {key_of(config_stage_settings(merged, "iteration", "lth"))}  # the edit would show
    assert "results/epsilon_sweep_digits/digits/small_cnn/seed0/lth/iter1/model.pt" in out
    assert "results/epsilon_sweep_digits/tables/summary.csv" in out
    assert not re.search(r"results/(tables|figures)/", out)


# 3. Settings that cannot change the numbers rerun nothing and keep an interrupted iteration resumable ------

@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A study interrupted in lth's second iteration, then continued after every setting that cannot change
    a result was changed (data path, download, device, a description, the job's threads)."""
    wd = workdir(tmp_path_factory.mktemp("study"), **STUDY)
    edit_config(wd, {"methods.lth.description": "iterative magnitude pruning"})
    killed_run(wd, "epoch:2", "lth/iter2", TARGET)  # SIGKILL of Snakemake and the job at iter2's 2nd checkpoint
    assert (wd / RUN / "iter2" / "resume.pt").is_file()
    snakemake(wd, "--unlock")
    first = edit_config(wd, NOT_RESULTS)
    threads = ("--set-threads", "train_dense=2", "imp_iteration=2")
    planned = job_counts(snakemake(wd, TARGET, "-n", *threads).stdout)
    snakemake(wd, TARGET, *threads)  # rerun-incomplete: on in the workflow profile
    return SimpleNamespace(wd=wd, first=first, planned=planned, log=(wd / LOGS / "iter2.log").read_text())


@pytest.mark.faults
@pytest.mark.slow
def test_changing_paths_device_labels_or_threads_keeps_finished_work_and_resumes(study):
    # only the interrupted iteration and what follows it: no dense training, no iteration 1
    assert study.planned["imp_iteration"] == 1 and "train_dense" not in study.planned, study.planned
    resumed = re.search(r"resuming after epoch (\d+) ", study.log)
    assert resumed and int(resumed.group(1)) >= 1, study.log[-2000:]
    done = int(resumed.group(1))
    assert not any(f" epoch {e} loss" in study.log for e in range(1, done + 1))  # nothing trained twice
    assert f" epoch {done + 1} loss" in study.log


@pytest.mark.faults
@pytest.mark.slow
@pytest.mark.parametrize("key", [*NOT_RESULTS, "threads"])
def test_changing_a_setting_that_cannot_change_results_reruns_nothing(study, key):
    wd = study.wd
    if key == "threads":  # the study ran with 2 threads per job; the rules' default is 1
        r = snakemake(wd, TARGET, "-n")
    else:
        changed = edit_config(wd, {key: study.first[key]})
        try:
            r = snakemake(wd, TARGET, "-n")
        finally:
            edit_config(wd, changed)
    assert "Nothing to be done" in r.stdout + r.stderr, f"{key}:\n{r.stdout[-3000:]}"


@pytest.mark.faults
@pytest.mark.slow
def test_changing_a_result_defining_setting_still_reruns_what_it_affects(study):
    changed = edit_config(study.wd, {"training.max_epochs": 2})  # retraining only: the dense network stays
    try:
        counts = job_counts(snakemake(study.wd, TARGET, "-n").stdout)
    finally:
        edit_config(study.wd, changed)
    assert counts["imp_iteration"] == 2 and "train_dense" not in counts, counts


# 1 (continued). Two experiments write separate results: a second one beside the study -----------------------

@pytest.mark.faults
@pytest.mark.slow
def test_two_experiments_write_separate_results(study):
    wd = study.wd
    tables = mtimes(wd, "results/tables/*")
    record = (wd / "results" / "experiment.yaml").read_text()
    other = yaml.safe_load((wd / "config.yaml").read_text())
    other["experiment"]["iterations"] = 1
    other["methods"]["lth"]["rewind"] = "init"
    (wd / "other.yaml").write_text(yaml.safe_dump(other, sort_keys=False))
    snakemake(wd, "results/other/tables/methods.csv", "--configfile", "other.yaml")
    assert mtimes(wd, "results/tables/*") == tables  # the default experiment's tables are untouched
    assert (wd / "results" / "experiment.yaml").read_text() == record
    recorded = yaml.safe_load((wd / "results" / "other" / "experiment.yaml").read_text())
    assert recorded["experiment"]["name"] == "other" and recorded["methods"]["lth"]["rewind"] == "init"
    assert list(pd.read_csv(wd / TARGET)["rewind"]) == ["dense"]
    assert list(pd.read_csv(wd / "results" / "other" / "tables" / "methods.csv")["rewind"]) == ["init"]
    assert (wd / "results" / "other" / "digits" / "small_cnn" / "seed0" / "lth" / "ticket.pt").is_file()
    r = snakemake(wd, TARGET, "-n")
    assert "Nothing to be done" in r.stdout + r.stderr


@pytest.mark.slow
def test_more_seeds_plan_only_the_new_seeds_chains(study):
    wd = study.wd
    before = job_counts(snakemake(wd, TARGET, "-n").stdout)
    changed = edit_config(wd, {"experiment.seeds": [0, 1, 2]})
    try:
        out = snakemake(wd, TARGET, "-n").stdout
    finally:
        edit_config(wd, changed)
    counts = job_counts(out)
    k = 2  # STUDY's iterations, one method
    assert counts.get("train_dense") == 2 and counts.get("imp_iteration") == 2 * k and counts.get("evaluate") == 2
    planned = set(re.findall(r"--seed (\d+)", out))
    assert planned == {"1", "2"}, f"finished seed 0 would run again: {planned} (before: {before})"


def _hashes(root) -> dict:
    import hashlib

    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.faults
@pytest.mark.slow
def test_a_copy_of_config_yaml_never_overwrites_the_default_results(study):
    wd = study.wd
    before = _hashes(wd / "results")
    assert (wd / "results" / "experiment.source").read_text().strip() == "config.yaml"
    copy_ = yaml.safe_load((wd / "config.yaml").read_text())
    copy_["training"]["max_epochs"] = 2  # one changed key
    (wd / "mine.yaml").write_text(yaml.safe_dump(copy_, sort_keys=False))
    dense = "results/mine/digits/small_cnn/seed0/dense/model.pt"
    snakemake(wd, dense, "--configfile", "mine.yaml")  # a new experiment, named after its file
    after = _hashes(wd / "results")
    assert {k: v for k, v in after.items() if not k.startswith("mine/")} == before
    assert (wd / dense).is_file() and (wd / "results" / "mine" / "experiment.source").read_text().strip() == "mine.yaml"
    # a file that names the default experiment explicitly is refused before any job, naming both files
    copy_["experiment"]["name"] = "default"
    (wd / "mine_default.yaml").write_text(yaml.safe_dump(copy_, sort_keys=False))
    r = snakemake(wd, "--configfile", "mine_default.yaml", check=False)
    said = r.stdout + r.stderr
    assert r.returncode != 0 and "'config.yaml'" in said and "'mine_default.yaml'" in said, said[-2000:]
    assert _hashes(wd / "results") == after


def test_a_results_root_from_before_the_record_is_taken_only_by_its_own_file(tmp_path, monkeypatch):
    from infcop import InfcopError
    from infcop.experiments.experiment import check_source, claim_root, source_of

    monkeypatch.chdir(tmp_path)
    for f in ("config.yaml", "other.yaml", "mine.yaml"):
        (tmp_path / f).write_text("{}")
    (tmp_path / "results" / "mine").mkdir(parents=True)
    (tmp_path / "results" / "experiment.yaml").write_text("old")
    (tmp_path / "results" / "mine" / "experiment.yaml").write_text("old")
    check_source("results", source_of([]))  # the default file takes results/
    with pytest.raises(InfcopError, match="'other.yaml'"):
        check_source("results", source_of(["other.yaml"]))
    check_source("results/mine", source_of(["mine.yaml"]))
    with pytest.raises(InfcopError, match="made before"):
        check_source("results/mine", source_of(["other.yaml"]))
    claim_root("results", source_of([str(tmp_path / "config.yaml")]))
    assert (tmp_path / "results" / "experiment.source").read_text() == "config.yaml\n"  # relative: movable


# 6. A failed job shows its log, a retry keeps the failed attempt's log, a corrupt model says how to recover

@pytest.mark.faults
@pytest.mark.slow
def test_corrupt_model_fails_with_its_log_shown_every_attempt_kept_and_a_recovery_that_works(study):
    wd = study.wd
    model, ticket = f"{RUN}/iter2/model.pt", f"{RUN}/ticket.json"
    earlier = {p: p.read_text().count("=== attempt started") for p in (wd / LOGS).glob("*.attempts")}
    data = (wd / model).read_bytes()
    (wd / model).write_bytes(data[: len(data) // 2])  # cut short, as a failing disk would leave it
    r = snakemake(wd, ticket, "--retries", "1", check=False)  # the ticket is made from the last iteration
    out = r.stdout + r.stderr
    assert r.returncode != 0
    hint = f"snakemake --forcerun {model}"
    # show-failed-logs: the job's own error is in Snakemake's output, not only in its log file
    assert "is not a readable checkpoint" in out and hint in out, out[-3000:]
    # both attempts of the retried job are kept; the job's log holds the last one
    log = wd / re.search(r"log: (\S+) \(check log file", out).group(1)
    attempts = log.with_name(log.name + ".attempts")
    text = attempts.read_text()
    assert text.count("=== attempt started") == earlier.get(attempts, 0) + 2
    assert text.count(f"'{model}' is not a readable checkpoint") == 2
    assert log.read_text().count("is not a readable checkpoint") == 1
    snakemake(wd, ticket, "--forcerun", model)  # the recovery the message gives
    import torch
    assert torch.load(wd / model, weights_only=True)["format"] == "infcop-model/1"
    assert json.loads((wd / ticket).read_text())["iteration"] == 2


# 2. Duplicate YAML keys are refused, naming both lines ---------------------------------------------------

DUPLICATES = {
    "section": ("training:\n  lr: 0.1\ndense:\n  epochs: 1\ntraining:\n  max_epochs: 1\n",
                "key 'training' appears twice (lines 1 and 5)"),
    "flow-mapping": ("methods:\n  ciap:\n    pruner: {name: sap, p: 1, q: 2}\n"
                     "    stop: [{name: infoflow, epsilon: 0.1, epsilon: 5.0}]\nexperiment:\n  methods: [ciap]\n",
                     "key 'epsilon' appears twice (lines 4 and 4)"),
}


@pytest.mark.badinput
@pytest.mark.parametrize("case", DUPLICATES)
def test_duplicate_keys_are_refused_by_check_config(tmp_path, case):
    text, words = DUPLICATES[case]
    (tmp_path / "dup.yaml").write_text(text)
    r = infcop("check-config", tmp_path / "dup.yaml")
    assert r.returncode == 2 and words in r.stderr and "Traceback" not in r.stderr, r.stderr


@pytest.mark.badinput
@pytest.mark.slow
@pytest.mark.parametrize("case,how", [("section", "config.yaml"), ("flow-mapping", "--configfile")])
def test_duplicate_keys_are_refused_by_the_workflow(tmp_path, case, how):
    text, words = DUPLICATES[case]
    wd = workdir(tmp_path / "wd")
    if how == "config.yaml":
        (wd / "config.yaml").write_text(text)
        r = snakemake(wd, "-n", check=False)
    else:
        (wd / "dup.yaml").write_text(text)
        r = snakemake(wd, "-n", "--configfile", "dup.yaml", check=False)
    out = r.stdout + r.stderr
    assert r.returncode != 0 and words in out and "Traceback" not in out, out[-2000:]
    assert not (wd / "results").exists()


# 4. Every split and size is checked before any job -------------------------------------------------------

LTH = {"pruner": {"name": "magnitude", "rate": 0.2, "scope": "layer"}, "stop": ["budget"]}
SIZES = [
    # (id, config, words the message must hold); digits: 1,438 training images, 1,222 to train at 0.15
    ("empty-validation-split", {"data": {"val_fraction": 0.0003}},
     ["data.val_fraction", "0.0003", "validation split is not empty", "0 validation images"]),
    ("empty-training-split", {"data": {"val_fraction": 0.9999}}, ["data.val_fraction", "0.9999", "to train on"]),
    ("last-batch-of-one", {"training": {"batch_size": 3}},
     ["training.batch_size", "3", "1222 training", "single image", "e.g. 2 or 4"]),
    ("batch-size-one", {"training": {"batch_size": 1}}, ["training.batch_size", "every batch would hold 1"]),
    ("seed-2**63", {"experiment": {"seeds": [0, 2**63]}}, ["experiment.seeds", str(2**63), "2**43"]),
    ("min-above-max", {"training": {"min_epochs": 4, "max_epochs": 3}},
     ["training.min_epochs", "4", "at most training.max_epochs (3)"]),
    ("preset-min-above-run-max", {"training": {"max_epochs": 3}, "methods": {"lth": {**LTH, "min_epochs": 5}}},
     ["method 'lth'", "min_epochs 5 (from methods.lth.min_epochs)", "max_epochs 3 (from training.max_epochs)"]),
    ("preset-max-below-run-min", {"training": {"min_epochs": 4}, "methods": {"lth": {**LTH, "max_epochs": 2}}},
     ["method 'lth'", "(from training.min_epochs)", "max_epochs 2 (from methods.lth.max_epochs)"]),
    ("probe-larger-than-training-split", {"flows": {"probe_size": 5000}},
     ["flows.probe_size", "5000", "at most 1222", "training split"]),
]


@pytest.mark.badinput
@pytest.mark.parametrize("case,config,words", SIZES, ids=[c[0] for c in SIZES])
def test_unusable_splits_and_sizes_are_refused_before_any_job(tmp_path, case, config, words):
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    r = infcop("check-config", tmp_path / "c.yaml")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    for w in words:
        assert w in r.stderr, f"{case}: {w!r} not in {r.stderr}"


@pytest.mark.badinput
def test_the_size_checks_know_the_real_splits_and_accept_the_edges():
    from infcop.experiments.config import check_config, split_sizes, with_defaults
    from infcop.science.data import load_dataset

    for vf in (0.15, 0.5):
        d = load_dataset("digits", 0, vf)
        assert split_sizes("digits", vf) == {"train": len(d.train), "validation": len(d.val), "test": len(d.test)}
    edge = with_defaults({"training": {"batch_size": 2, "min_epochs": 3, "max_epochs": 3},
                          "flows": {"probe_size": 1222}, "experiment": {"seeds": [2**43 - 1]}})
    check_config(edge)  # 1222 % 2 == 0, min == max, the whole training split as probe, the largest seed


@pytest.mark.badinput
def test_a_data_set_without_declared_sizes_skips_the_size_checks():
    from infcop.experiments.config import check_config, with_defaults
    from infcop.science.data import DATASETS

    DATASETS.add("unsized", lambda data_dir, download: None, bundled=True)
    try:
        check_config(with_defaults({"experiment": {"datasets": ["unsized"]}, "flows": {"probe_size": 10**6}}))
    finally:
        DATASETS.remove("unsized")


@pytest.mark.badinput
def test_every_seed_below_the_limit_gives_generator_seeds_torch_accepts():
    import torch

    from infcop.experiments.config import SEED_LIMIT
    from infcop.science.training import epoch_generator

    seed = SEED_LIMIT - 1
    epoch_generator(seed, 10_000, 10_000)  # the largest derived seed of any plausible run
    torch.Generator().manual_seed(seed + 2000)
    with pytest.raises((RuntimeError, ValueError)):  # what a seed of 2**63 did at job time
        epoch_generator(2**63, 1, 1)


# 5. Concurrent writers cannot delete or overwrite each other's files -------------------------------------

@pytest.mark.faults
def test_concurrent_writers_never_delete_each_others_temp_files(tmp_path):
    from infcop.running.checkpoints import atomic_write, save_text

    target = tmp_path / "resume.pt"
    halfway, go_on, errors = threading.Event(), threading.Event(), []

    def slow(f):
        f.write(b"first writer, part 1;")
        halfway.set()
        go_on.wait(30)
        f.write(b" part 2")

    def first():
        try:
            atomic_write(target, slow)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    t = threading.Thread(target=first)
    t.start()
    assert halfway.wait(30)
    save_text("second writer", target)  # used to delete every temp file of this path, the first's included
    go_on.set()
    t.join(30)
    assert not errors, errors
    assert target.read_bytes() == b"first writer, part 1; part 2"
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.faults
def test_only_temp_files_of_dead_writers_on_this_host_are_cleaned_up(tmp_path):
    from infcop.running.checkpoints import save_json

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    host = socket.gethostname()
    left = tmp_path / f".m.json.{dead}@{host}.abc123.tmp"  # a killed writer's
    live = tmp_path / f".m.json.{os.getppid()}@{host}.def456.tmp"  # a live process's
    remote = tmp_path / f".m.json.{dead}@another-host.ghi789.tmp"  # unknown: another machine's
    for p in (left, live, remote):
        p.write_text("partial")
    save_json({"a": 1}, tmp_path / "m.json")
    assert not left.exists() and live.exists() and remote.exists()
    assert json.loads((tmp_path / "m.json").read_text()) == {"a": 1}


@pytest.mark.faults
@pytest.mark.slow
def test_a_stage_held_by_a_live_job_is_refused_and_a_dead_holders_lock_taken_over(tmp_path):
    out = tmp_path / "dense"
    settings = fast_settings()
    settings["dense"]["epochs"] = 1
    args = ("train-dense", "--dataset", "digits", "--arch", "small_cnn", "--seed", "0", "--settings",
            json.dumps(settings), "--out", out)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom infcop.running.locks import stage_lock\n"
         "with stage_lock(sys.argv[1], 'train-dense'):\n    print('held', flush=True)\n    time.sleep(600)\n",
         str(out)], stdout=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        assert holder.stdout.readline().strip() == "held"
        out.mkdir()
        (out / "model.pt").write_bytes(b"the holder's newer result")
        r = infcop(*args)
        assert r.returncode == 2, r.stderr
        assert f"pid {holder.pid} on host {socket.gethostname()}" in r.stderr and "snakemake --unlock" in r.stderr
        assert "Traceback" not in r.stderr
        assert (out / "model.pt").read_bytes() == b"the holder's newer result"
        assert sorted(p.name for p in out.iterdir()) == ["model.pt"]  # nothing else written either
    finally:
        holder.kill()  # SIGKILL: it never released the lock, which still names it
        holder.wait()
    r = infcop(*args)
    assert r.returncode == 0, r.stderr
    assert "taking over the lock" in r.stderr and f"pid {holder.pid}" in r.stderr
    assert (out / "model.pt").read_bytes()[:2] == b"PK"  # a torch file now


# 6. Smaller findings --------------------------------------------------------------------------------------

@pytest.mark.badinput
@pytest.mark.parametrize("text,rc,words", [
    ("- lth\n- sap\n", 2, ["must hold a mapping", "not a list"]),
    ("hello\n", 2, ["must hold a mapping", "not a str"]),
    ("", 0, ["OK"]),  # every key is optional: an empty file is the default experiment
    ("# nothing but a comment\n", 0, ["OK"]),
], ids=["list", "scalar", "empty", "comment-only"])
def test_check_config_on_a_file_that_is_not_a_mapping(tmp_path, text, rc, words):
    (tmp_path / "c.yaml").write_text(text)
    r = infcop("check-config", tmp_path / "c.yaml")
    out = r.stdout + r.stderr
    assert r.returncode == rc and all(w in out for w in words) and "Traceback" not in out, out


@pytest.mark.badinput
@pytest.mark.parametrize("config,key,value", [
    ({"experiment": {"methods": ["lth\n"]}, "methods": {"lth\n": LTH}}, "methods.lth", "lth"),
    ({"experiment": {"archs": ["torchvision:resnet18\n"]}}, "experiment.archs", "torchvision:resnet18"),
    ({"experiment": {"name": "mine\n"}}, "experiment.name", "mine"),
], ids=["method", "arch", "experiment-name"])
def test_names_with_a_trailing_newline_are_refused(tmp_path, config, key, value):
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    r = infcop("check-config", tmp_path / "c.yaml")
    assert r.returncode == 2 and f"config key '{key}" in r.stderr and f"bad value {value + chr(10)!r}" in r.stderr, \
        r.stderr


class _FullDisk:
    """A file on a disk that fills up after `room` bytes."""

    def __init__(self, f, room=100):
        self._f, self._room = f, room

    def write(self, data):
        if len(data) > self._room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._room -= len(data)
        return self._f.write(data)

    def __getattr__(self, name):
        return getattr(self._f, name)


def _fill_disk(monkeypatch):
    """Every file the atomic writer opens from now on sits on a full disk."""
    from infcop.running import checkpoints

    real = os.fdopen
    monkeypatch.setattr(checkpoints.os, "fdopen", lambda fd, mode: _FullDisk(real(fd, mode)))


@pytest.mark.faults
def test_a_full_disk_is_reported_by_path_and_the_old_file_kept(tmp_path, monkeypatch):
    import torch

    from infcop import InfcopError
    from infcop.running.checkpoints import save_json, save_torch

    old = {"epoch": 1, "state": torch.zeros(4)}
    save_torch(old, tmp_path / "resume.pt")
    save_json({"old": True}, tmp_path / "metrics.json")
    _fill_disk(monkeypatch)
    for path, save, obj in ((tmp_path / "resume.pt", save_torch, {"state": torch.zeros(10_000)}),
                            (tmp_path / "metrics.json", save_json, {"x": "y" * 1000})):
        with pytest.raises(InfcopError, match=f"no space left on device at '{re.escape(str(path))}'"):
            save(obj, path)
    monkeypatch.undo()
    assert torch.equal(torch.load(tmp_path / "resume.pt", weights_only=True)["state"], old["state"])
    assert json.loads((tmp_path / "metrics.json").read_text()) == {"old": True}
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.faults
def test_a_full_disk_stops_a_stage_with_a_message_not_a_traceback(tmp_path, monkeypatch, capsys):
    from infcop.cli import main

    _fill_disk(monkeypatch)
    settings = fast_settings()
    rc = main(["train-dense", "--dataset", "digits", "--arch", "small_cnn", "--seed", "0", "--settings",
               json.dumps(settings), "--out", str(tmp_path / "dense")])
    err = capsys.readouterr().err
    assert rc == 2 and f"no space left on device at '{tmp_path / 'dense' / 'init.pt'}'" in err, err
    assert "Traceback" not in err


@pytest.mark.faults
def test_a_corrupt_model_names_the_command_that_rebuilds_it(tmp_path):
    from infcop import InfcopError
    from infcop.running.checkpoints import EpochCheckpoint, load_json, load_model_file

    model, metrics, resume = tmp_path / "model.pt", tmp_path / "metrics.json", tmp_path / "resume.pt"
    for p in (model, metrics, resume):
        p.write_bytes(b"\x00cut short")
    for load, p in ((load_model_file, model), (load_json, metrics)):
        with pytest.raises(InfcopError, match=re.escape(f"snakemake --forcerun {p}")):
            load(p)
    assert EpochCheckpoint(resume, "x").load() is None  # an epoch checkpoint is only ignored: the stage restarts


def test_finished_stages_drop_their_final_checkpoint_unfinished_ones_keep_it(tmp_path):
    from infcop.running import layout as L

    finished, unfinished, dense = tmp_path / "m" / "iter1", tmp_path / "m" / "iter2", tmp_path / "dense"
    for d in (finished, unfinished, dense):
        d.mkdir(parents=True)
        (d / L.RESUME).write_bytes(b"checkpoint")
    for d in (finished, dense):
        (d / L.MODEL).write_bytes(b"model")
        (d / L.METRICS).write_text("{}")
    (unfinished / L.MODEL).write_bytes(b"model")  # outputs half written: still resumes from its checkpoint
    assert L.drop_finished_checkpoints(tmp_path) == 2
    assert not (finished / L.RESUME).exists() and not (dense / L.RESUME).exists()
    assert (unfinished / L.RESUME).read_bytes() == b"checkpoint"

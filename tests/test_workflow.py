"""End-to-end runs of the Snakemake workflow on the tiny digits config."""
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from workflow_helpers import (BIN, ROOT, comparable_tables, env, job_counts, mtimes, snakemake, workdir)

pytestmark = pytest.mark.slow


OUTPUT = {}  # what the tiny run's two Snakemake calls printed


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """First only similarity.pdf (what a user asks for), then everything (with the shell commands)."""
    wd = workdir(tmp_path_factory.mktemp("tiny"))
    OUTPUT["single"] = snakemake(wd, "results/figures/similarity.pdf").stderr
    single = {p.name for p in (wd / "results" / "figures").iterdir()}
    OUTPUT["rest"] = snakemake(wd, "--printshellcmds").stderr
    return wd, single


def test_a_run_prints_a_progress_line_per_finished_job_and_shell_commands_on_request(tiny_run):
    wd, _ = tiny_run
    single = OUTPUT["single"]
    lines = re.findall(r"^\[\s*(\d+)/(\d+)\s+(\d+)%\s+(\d+):(\d\d):(\d\d)\] (.*)$", single, re.M)
    total = int(lines[0][1])
    assert [int(done) for done, *_ in lines] == list(range(1, total + 1)), single[-3000:]
    assert lines[-1][2] == "100" and lines[-1][6] == "similarity"
    jobs = [line[6] for line in lines]
    assert any(re.fullmatch(r"imp_iteration +digits small_cnn seed 0 (lth|ciap) iteration 2", j) for j in jobs), jobs
    assert any(re.fullmatch(r"evaluate +digits small_cnn seed 0 (lth|ciap)", j) for j in jobs), jobs
    assert "infcop imp-iteration" not in single and "Finished jobid" not in single and "Select jobs" not in single
    # the log file keeps Snakemake's full account; --printshellcmds shows the commands instead of progress lines
    newest = max((wd / ".snakemake" / "log").glob("*.snakemake.log"), key=lambda p: p.stat().st_mtime)
    assert "Finished jobid" in newest.read_text()
    assert "infcop plot " in OUTPUT["rest"], OUTPUT["rest"][-3000:]
    assert not re.search(r"^\[\s*\d+/\d+ ", OUTPUT["rest"], re.M)


def test_single_target_builds_just_that_figure(tiny_run):
    _, single = tiny_run
    assert single == {"similarity.pdf", "similarity-lth.png", "similarity-ciap.png"}


def test_every_declared_output_exists_and_is_well_formed(tiny_run):
    wd, _ = tiny_run
    summary = snakemake(wd, "--summary").stdout.splitlines()
    files = [line.split("\t")[0] for line in summary[1:] if line.strip() and "\t" in line]
    assert len(files) >= 30
    for f in files:
        p = wd / f
        assert p.is_file() and p.stat().st_size > 0, f
        if p.name == "contrasts.csv":  # rows only with an early-stopping and a flow method in one group
            from infcop.judging.compare import CONTRAST_COLUMNS

            assert list(pd.read_csv(p).columns) == CONTRAST_COLUMNS
        elif p.suffix == ".csv":
            assert len(pd.read_csv(p)) > 0, f
        elif p.suffix == ".json":
            json.loads(p.read_text())
        elif p.suffix == ".pt":
            obj = torch.load(p, weights_only=True)
            assert obj["format"].startswith("infcop-"), f
        elif p.suffix == ".pdf":
            assert p.read_bytes()[:4] == b"%PDF", f
        elif p.suffix == ".png":
            assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f
    run = wd / "results" / "digits" / "small_cnn" / "seed0"
    for m in ("lth", "ciap"):
        assert (run / m / "iter2" / "model.pt").is_file()
    # a successful run drops every finished stage's final epoch checkpoint (kept until then for retries)
    assert not list((wd / "results").rglob("resume.pt"))
    assert list((wd / "results" / "logs").rglob("*.log")) and list((wd / "results" / "benchmarks").rglob("*.tsv"))
    again = snakemake(wd, "-n")
    assert "Nothing to be done" in again.stdout + again.stderr


def test_changed_method_parameters_rerun_only_that_branch(tiny_run, tmp_path):
    wd, _ = tiny_run
    cfg = yaml.safe_load((wd / "config.yaml").read_text())
    cfg["methods"]["lth"]["pruner"]["rate"] = 0.3
    (wd / "config.yaml").write_text(yaml.safe_dump(cfg))
    try:
        counts = job_counts(snakemake(wd, "-n").stdout)
    finally:
        cfg["methods"]["lth"]["pruner"]["rate"] = 0.2
        (wd / "config.yaml").write_text(yaml.safe_dump(cfg))
    # lth's two iterations, its evaluation (with its ticket), then the tables, the summary page and the figures
    # (the tiny experiment's 6 with something to draw, infcop.showing.plots.plan); no dense, no ciap
    assert counts == {"imp_iteration": 2, "evaluate": 1, "tables": 1, "summary_page": 1, "figure": 6, "similarity": 1,
                      "all": 1}


def test_rerun_one_method_leaves_dense_and_other_methods_untouched(tiny_run):
    wd, _ = tiny_run
    untouched = {**mtimes(wd, "results/*/*/*/dense/*"), **mtimes(wd, "results/*/*/*/ciap/**/*")}
    before_lth = mtimes(wd, "results/*/*/*/lth/**/*")
    branch = subprocess.run([str(BIN / "infcop"), "branch", "lth"], cwd=wd, env=env(), capture_output=True,
                            text=True, check=True).stdout.split()
    assert branch == ["results/digits/small_cnn/seed0/lth/iter1/model.pt"]
    snakemake(wd, "--forcerun", *branch)
    assert {**mtimes(wd, "results/*/*/*/dense/*"), **mtimes(wd, "results/*/*/*/ciap/**/*")} == untouched
    after_lth = mtimes(wd, "results/*/*/*/lth/**/*")
    assert all(after_lth[f] > before_lth[f] for f in before_lth)


def test_ready_made_experiments_plan_the_studys_grid(tmp_path):
    wd = workdir(tmp_path / "exp")
    (wd / "data").mkdir()
    (wd / "data" / "placeholder").write_text("x")  # the data set's presence is checked at run time
    for name, runs in (("vgg16_mnist.yaml", 3 * 8), ("resnet18_cifar10.yaml", 3 * 8), ("study_vgg16_mnist.yaml", 3 * 9)):
        counts = job_counts(snakemake(wd, "-n", "--configfile", f"workflow/experiments/{name}").stdout)
        assert counts["train_dense"] == 3 and counts["imp_iteration"] == runs * 15, name
    counts = job_counts(snakemake(wd, "-n", "--configfile", "workflow/experiments/epsilon_sweep_digits.yaml").stdout)
    assert counts["imp_iteration"] == 3 * 10 * 5
    counts = job_counts(snakemake(wd, "-n", "--configfile", "workflow/experiments/criteria_study_digits.yaml").stdout)
    assert counts["imp_iteration"] == 3 * 42 * 5 and counts["rewind_point"] == 3  # late rewinding: epoch 1, per seed
    counts = job_counts(snakemake(wd, "-n", "--configfile", "workflow/experiments/peers_mnist1d.yaml").stdout)
    assert counts["imp_iteration"] == 3 * (35 * 5 + 1)  # 35 methods of 5 iterations, one-shot of 1
    assert counts["evaluate"] == 3 * 36
    counts = job_counts(snakemake(wd, "-n", "--configfile", "workflow/experiments/baselines_mnist1d.yaml").stdout)
    assert counts["imp_iteration"] == 3 * (14 * 5 + 5) and counts["evaluate"] == 3 * 19  # 5 one-shot/GMP methods


def _kill_when(wd: Path, proc, path_glob: str, timeout=300, containing: str = ""):
    """SIGKILL the workflow once a file matching `path_glob` exists (and contains `containing`)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if any(containing in (p.read_text(errors="replace") if containing else "") for p in wd.glob(path_glob)):
            os.killpg(proc.pid, signal.SIGKILL)  # the whole job tree, as a cluster kill would
            proc.wait()
            return
        if proc.poll() is not None:
            raise AssertionError("the workflow finished before it could be killed")
        time.sleep(0.02)
    raise AssertionError(f"{path_glob} never appeared")


def test_killed_iteration_resumes_from_its_last_epoch_with_identical_numbers(tmp_path):
    changes = dict(experiment__methods=["lth"], experiment__iterations=2, training__max_epochs=12)
    straight = workdir(tmp_path / "straight", **changes)
    snakemake(straight)
    wd = workdir(tmp_path / "killed", **changes)
    proc = subprocess.Popen([str(BIN / "snakemake")], cwd=wd, env=env(), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run = "results/digits/small_cnn/seed0/lth"
    # after iteration 2's epoch 2 has begun: its epoch-1 checkpoint (past epoch 0) is on disk
    _kill_when(wd, proc, "results/logs/digits/small_cnn/seed0/lth/iter2.log", containing=" epoch 2 loss")
    def outputs(k):  # an iteration's declared outputs (its final epoch checkpoint goes once the run succeeds)
        return {f: t for f, t in mtimes(wd, f"{run}/iter{k}/*").items() if not f.endswith("resume.pt")}

    iter1 = outputs(1)
    assert not (wd / run / "iter2" / "metrics.json").exists()
    snakemake(wd, "--unlock")  # a SIGKILLed Snakemake leaves its lock behind
    snakemake(wd, "--rerun-incomplete")
    log = (wd / "results" / "logs" / "digits" / "small_cnn" / "seed0" / "lth" / "iter2.log").read_text()
    assert "resuming after epoch" in log
    resumed_from = int(log.split("resuming after epoch ")[1].split()[0])
    assert resumed_from >= 1
    assert log.count(" epoch 1 loss") == 0  # epochs before the kill were not trained again
    assert outputs(1) == iter1 and iter1  # finished iterations are never recomputed
    assert comparable_tables(wd / "results") == comparable_tables(straight / "results")
    a = torch.load(straight / run / "iter2" / "model.pt", weights_only=True)["state"]
    b = torch.load(wd / run / "iter2" / "model.pt", weights_only=True)["state"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_tables_have_their_columns_and_row_counts(tiny_run):
    wd, _ = tiny_run
    t = wd / "results" / "tables"
    it = pd.read_csv(t / "iterations.csv")
    assert list(it.columns) == ["dataset", "arch", "method", "seed", "iteration", "remaining_weights",
                                "test_accuracy", "val_accuracy", "epochs_trained", "stop_reason", "train_seconds",
                                "flow_seconds", "noise_floor_seconds", "mask_seconds", "flows_charged", "lr_start",
                                "epoch0_val_accuracy", "stopped_early_vs_accuracy", "macs", "dense_macs"]
    assert it["mask_seconds"].fillna(0).eq(0).all()  # no method of tiny reads would-be masks: nothing charged
    assert (it.loc[it["iteration"] > 0, "lr_start"] == 0.05).all()  # training.lr: no preset sets its own
    assert len(it) == 2 * 1 * (2 + 1)  # methods x seeds x (iterations + dense)
    per_net = 3 + 3 + 4 + 4 + 4  # small_cnn: connectivity and |r| per pair; CKA, gradient flow, similarity per layer
    layers = pd.read_csv(t / "layers.csv")
    assert set(layers["metric"]) == {"connectivity", "abs_connectivity", "cka", "gradflow", "similarity"}
    assert len(layers) == len(it) * per_net
    epochs = pd.read_csv(t / "epochs.csv")
    retrained = it[it["iteration"] > 0]
    assert len(epochs) == int(retrained["epochs_trained"].sum()) + len(retrained)  # + epoch 0 of every iteration
    assert (epochs.groupby(["method", "iteration"])["epoch"].min() == 0).all()
    assert epochs.groupby(["method", "iteration"])["stopped"].sum().eq(1).all()
    assert {"holds_infoflow", "holds_accuracy"} <= set(epochs.columns)
    assert epochs.loc[epochs["method"] == "lth", "holds_infoflow"].isna().all()  # lth has no such criterion
    epoch_layers = pd.read_csv(t / "epoch_layers.csv")
    assert len(epoch_layers) == len(epochs) * per_net
    assert list(epoch_layers.columns) == ["dataset", "arch", "method", "seed", "iteration", "epoch", "metric",
                                          "layer", "layer_index", "value"]
    criteria = pd.read_csv(t / "criteria.csv")
    ciap_epochs = epochs[epochs["method"] == "ciap"]
    assert len(criteria) == 2 * len(ciap_epochs)  # infoflow and accuracy, at every epoch of ciap
    summary = pd.read_csv(t / "summary.csv")
    assert {"level", "level_label", "test_accuracy_mean", "epochs_mean", "train_seconds_mean", "flow_seconds_mean",
            "cost_epoch_equivalents_mean", "margin_pp", "verdict", "delta", "delta_lo", "delta_hi",
            "identical_to"} <= set(summary.columns)
    lth = summary[summary["method"] == "lth"].set_index("level")
    assert (lth["verdict"] == "control").all()
    assert lth["epochs_mean"].max() == 2 * 3  # at its deepest level lth retrained 2 iterations x 3 epochs
    assert (lth["cost_epoch_equivalents_mean"] == lth["epochs_mean"]).all()  # no flows, no train-dense share
    assert (summary["margin_pp"] == 0.5).all()  # compare.margin_pp; one digits image (0.28 pp) is less
    assert len(pd.read_csv(t / "tickets.csv")) == 2 and len(pd.read_csv(t / "methods.csv")) == 2
    md = (t / "summary.md").read_text()
    assert md.startswith("# Summary") and "every method at" in md


def test_report_and_summary_command(tiny_run):
    wd, _ = tiny_run
    snakemake(wd, "--report", "results/report.html")
    html = (wd / "results" / "report.html").read_text(errors="replace")
    assert len(html) > 10_000 and "similarity" in html
    out = subprocess.run([str(BIN / "infcop"), "summary"], cwd=wd, env=env(), capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout == (wd / "results" / "tables" / "summary.md").read_text()
    missing = subprocess.run([str(BIN / "infcop"), "summary", "nowhere"], cwd=wd, env=env(), capture_output=True,
                             text=True)
    assert missing.returncode == 2 and "nowhere/tables/summary.md" in missing.stderr


def _rule_edges(dot: str) -> set:
    """The rule graph's edges by rule name (node numbers and colours differ between runs)."""
    import re as _re

    names = dict(_re.findall(r"^\s*(\d+)\[label = \"([^\"]+)\"", dot, flags=_re.M))
    edges = {(names[a], names[b]) for a, b in _re.findall(r"^\s*(\d+) -> (\d+)", dot, flags=_re.M)}
    return edges | {("node", n) for n in names.values()}


def test_the_documented_rule_graph_is_the_workflows(tmp_path):
    wd = workdir(tmp_path / "wd", yaml.safe_load((ROOT / "config.yaml").read_text()))
    live = snakemake(wd, "--rulegraph").stdout
    committed = (ROOT / "docs" / "rulegraph.dot").read_text()
    assert _rule_edges(live) == _rule_edges(committed), "docs/rulegraph.* is stale: run `make rulegraph`"
    assert ("node", "summary_page") in _rule_edges(committed)

"""Faults: kills at every kind of moment, cut-short files, divergence, determinism. Nothing is lost, no
finished epoch or iteration is recomputed, and the tables equal an uninterrupted run's."""
import subprocess
from pathlib import Path

import pytest

from conftest import fast_settings
from workflow_helpers import BIN, comparable_tables, env, mtimes, snakemake, workdir

pytestmark = [pytest.mark.faults, pytest.mark.slow]
FAULT_CONFIG = dict(experiment__methods=["lth"], experiment__iterations=2, training__max_epochs=4)
RUN = "results/digits/small_cnn/seed0"
LOGS = "results/logs/digits/small_cnn/seed0"


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    wd = workdir(tmp_path_factory.mktemp("reference"), **FAULT_CONFIG)
    snakemake(wd)
    return wd


def test_two_runs_from_scratch_warm_and_cold_give_identical_tables_and_models(reference, tmp_path):
    # the reference's jobs were forked by the warm-start server; this run starts every job afresh
    jobs = [line for line in (reference / ".snakemake" / "infcop" / "warm-start.log").read_text().splitlines()
            if ": pid " in line]
    assert {j.split()[0] for j in jobs} == {"train-dense", "imp-iteration", "evaluate", "tables", "plot", "summary"}
    assert sum(j.startswith("imp-iteration") for j in jobs) == 2 and all("status 0," in j for j in jobs)
    wd = workdir(tmp_path / "again", **FAULT_CONFIG)
    snakemake(wd, extra_env={"INFCOP_WARM_START": "off"})
    assert not (wd / ".snakemake" / "infcop" / "warm-start.log").exists()
    assert comparable_tables(wd / "results") == comparable_tables(reference / "results")
    for model in (reference / RUN).rglob("model.pt"):
        assert model.read_bytes() == (wd / model.relative_to(reference)).read_bytes(), model


def _killed_run(wd: Path, at: str, where: str):
    e = env()
    e.update(INFCOP_KILL_AT=at, INFCOP_KILL_WHERE=where)
    proc = subprocess.run([str(BIN / "snakemake")], cwd=wd, env=e, start_new_session=True, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == -9, f"not killed at {at} {where}: {proc.returncode}\n{proc.stderr[-2000:]}"


def _log(wd, name):
    return (wd / LOGS / name).read_text()


KILLS = [
    # (moment, INFCOP_KILL_AT, INFCOP_KILL_WHERE, stage log whose resume we check, epoch resumed after)
    ("during dense training", "epoch:2", "dense", "dense.log", 2),
    # an IMP iteration checkpoints epoch 0 (pruned, rewound, measured) first: its 3rd checkpoint is epoch 2's
    ("during an IMP iteration's epoch", "epoch:3", "lth/iter2", "lth/iter2.log", 2),
    ("while an epoch checkpoint is written", "write:4", "lth/iter1/resume.pt", "lth/iter1.log", 2),
    ("while a declared output is written", "write:1", "lth/iter2/model.pt", "lth/iter2.log", 4),
    ("between jobs: outputs written, not yet recorded", "done:1", "lth/iter1", "lth/iter1.log", 4),
    ("during evaluate", "evaluate:2", "lth", None, None),
    ("during plotting", "plot:1", "similarity", None, None),
]


@pytest.mark.parametrize("moment,at,where,log,resumed", KILLS, ids=[k[0] for k in KILLS])
def test_kill_anywhere_then_rerun_completes_with_nothing_recomputed(reference, tmp_path, moment, at, where, log,
                                                                      resumed):
    wd = workdir(tmp_path / "wd", **FAULT_CONFIG)
    _killed_run(wd, at, where)
    finished = {f: t for f, t in mtimes(wd, f"{RUN}/**/*").items()
                if f.endswith(("model.pt", "metrics.json")) and "resume" not in f}
    snakemake(wd, "--unlock")
    snakemake(wd, "--rerun-incomplete")
    after = mtimes(wd, f"{RUN}/**/*")
    if log is not None:
        text = _log(wd, log)
        assert f"resuming after epoch {resumed} " in text, text[-2000:]
        for e in range(1, resumed + 1):  # the epochs finished before the kill were not trained again
            assert f" epoch {e} loss" not in text
    # iterations whose outputs were complete and recorded before the kill were never rewritten
    stage = where.split("/")[-1] if "/" in where else None
    for f, t in finished.items():
        if stage is None or f"/{stage}/" not in f:
            if not (at.startswith("done") and f"/{where}/" in f"/{f}"):
                assert after[f] == t, f"{f} was recomputed after a kill {moment}"
    assert comparable_tables(wd / "results") == comparable_tables(reference / "results")
    assert not list((wd / "results").rglob("*.tmp")) or at.startswith("write")


def test_divergence_fails_that_branch_with_a_clear_message_and_others_finish(tmp_path):
    import yaml
    wd = workdir(tmp_path / "div", **FAULT_CONFIG)
    cfg = yaml.safe_load((wd / "config.yaml").read_text())
    cfg["experiment"]["methods"] = ["lth", "boom"]
    cfg["methods"]["boom"] = dict(cfg["methods"]["lth"], lr=1.0e12)
    (wd / "config.yaml").write_text(yaml.safe_dump(cfg))
    r = snakemake(wd, "--keep-going", check=False)
    assert r.returncode != 0
    text = _log(wd, "boom/iter1.log")
    assert "dataset=digits arch=small_cnn method=boom seed=0 iteration=1" in text
    assert "in epoch 1" in text and ("nan" in text or "inf" in text)
    assert (wd / RUN / "lth" / "ticket.pt").is_file() and (wd / RUN / "lth" / "evaluation.csv").is_file()
    assert not (wd / RUN / "boom" / "iter1" / "model.pt").exists()


def test_cut_short_epoch_checkpoint_is_detected_and_the_stage_restarts(tmp_path, caplog):
    from infcop.running.steps import imp_iteration, train_dense
    dense = tmp_path / "dense"
    train_dense("digits", "small_cnn", 0, fast_settings(), dense)
    lth = {"pruner": {"name": "magnitude", "rate": 0.2}, "stop": ["budget"]}
    clean = imp_iteration("digits", "small_cnn", 0, "m", lth, fast_settings(), 1, dense, dense, tmp_path / "a")
    out = tmp_path / "b"
    out.mkdir()
    good = (tmp_path / "a" / "resume.pt").read_bytes()
    (out / "resume.pt").write_bytes(good[: len(good) // 3])
    with caplog.at_level("WARNING", logger="infcop"):
        again = imp_iteration("digits", "small_cnn", 0, "m", lth, fast_settings(), 1, dense, dense, out)
    assert str(out / "resume.pt") in caplog.text and "starting this stage afresh" in caplog.text
    strip = lambda m: [{k: v for k, v in e.items() if not k.endswith("seconds")} for e in m["epochs"]]
    assert strip(again) == strip(clean)

"""The SLURM profile against a real SLURM cluster (the throwaway one of ci/slurm-up.sh in CI)."""
import os
import re
import shutil
import subprocess
import time

import pytest

from workflow_helpers import BIN, comparable_tables, env, snakemake, workdir

pytestmark = [pytest.mark.slurm, pytest.mark.slow]
RUN = "results/digits/small_cnn/seed0"
GPU_RULES = ("train_dense", "imp_iteration", "evaluate", "ticket")
# Only what the CI cluster needs beyond the profile: its partition, and squeue as the status command
# because it runs without accounting (sacct never sees a job finish there).
CI_FLAGS = ["--profile", "profiles/slurm", "--slurm-status-command", "squeue",
            "--slurm-init-seconds-before-status-checks", "5", "--slurm-keep-successful-logs"]


def _cluster_answers() -> str:
    if shutil.which("sinfo") is None:
        return "no `sinfo` on PATH"
    try:
        r = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=10)
    except subprocess.TimeoutExpired:
        return "sinfo did not answer in 10 s"
    states = r.stdout.split()
    if r.returncode != 0 or not any(s.rstrip("*") in ("idle", "mix", "alloc") for s in states):
        return f"no usable SLURM node (sinfo: {r.stdout.strip() or r.stderr.strip()})"
    return ""


@pytest.fixture(scope="module", autouse=True)
def cluster():
    why = _cluster_answers()
    if why:
        if os.environ.get("INFCOP_REQUIRE_SLURM") == "1":
            pytest.fail(f"SLURM cluster required (INFCOP_REQUIRE_SLURM=1) but {why}")
        pytest.skip(f"no SLURM cluster answers: {why}; start one with ci/slurm-up.sh")


def slurm_env():
    e = env()
    e["INFCOP_SLURM_PARTITION"] = os.environ.get("INFCOP_SLURM_PARTITION", "debug")
    return e


def _run(wd, *extra, timeout=1500):
    cmd = ["timeout", "-k", "30", str(timeout), str(BIN / "snakemake"), *CI_FLAGS, *extra]
    r = subprocess.run(cmd, cwd=wd, env=slurm_env(), capture_output=True, text=True, timeout=timeout + 60)
    assert r.returncode == 0, f"{r.returncode}\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}"
    return r


def _job_ids(wd, rule):
    logs = wd / ".snakemake" / "slurm_logs" / f"rule_{rule}"
    return sorted({int(p.stem) for p in logs.rglob("*.log") if p.stem.isdigit()})


def _tres(job_id):
    r = subprocess.run(["scontrol", "show", "job", str(job_id)], capture_output=True, text=True)
    return r.stdout


@pytest.fixture(scope="module")
def local_reference(tmp_path_factory):
    wd = workdir(tmp_path_factory.mktemp("local"))
    snakemake(wd)
    return wd


def test_workflow_runs_under_slurm_with_gpu_requests_for_gpu_rules(tmp_path, local_reference):
    wd = workdir(tmp_path / "slurm")
    t0 = time.time()
    r = _run(wd)
    print(f"SLURM workflow run: {time.time() - t0:.0f} s")
    out = r.stdout + r.stderr
    assert re.search(r"SLURM jobid \d+|jobid \d+", out), out[-2000:]
    for rule in GPU_RULES + ("tables", "figure"):
        assert _job_ids(wd, rule), f"no SLURM job log for {rule}"
    # GPU rules asked SLURM for a GPU, CPU rules did not (scontrol remembers finished jobs MinJobAge s)
    for rule in GPU_RULES:
        text = _tres(_job_ids(wd, rule)[0])
        assert "gpu" in text.lower(), f"{rule} job without a GPU request:\n{text}"
    for rule in ("tables", "figure"):
        text = _tres(_job_ids(wd, rule)[0])
        assert "TresPerNode" not in text and "gres/gpu" not in text and "TresPerJob" not in text, text
    for f in ("results/tables/summary.csv", "results/figures/similarity.pdf", f"{RUN}/lth/ticket.pt"):
        assert (wd / f).is_file()
    assert comparable_tables(wd / "results") == comparable_tables(local_reference / "results")


def test_cancelled_job_is_resubmitted_and_resumes_from_its_last_epoch(tmp_path):
    changes = dict(experiment__methods=["lth"], experiment__iterations=1, training__max_epochs=40)
    reference = workdir(tmp_path / "reference", **changes)
    snakemake(reference)
    wd = workdir(tmp_path / "cancel", **changes)
    cmd = ["timeout", "-k", "30", "1500", str(BIN / "snakemake"), *CI_FLAGS]
    proc = subprocess.Popen(cmd, cwd=wd, env=slurm_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    resume = wd / RUN / "lth" / "iter1" / "resume.pt"
    deadline = time.time() + 900
    while not resume.exists():
        assert proc.poll() is None, proc.stdout.read()[-3000:]
        assert time.time() < deadline, "iteration 1 never wrote an epoch checkpoint"
        time.sleep(0.2)
    running = subprocess.run(["squeue", "-h", "-t", "R", "-o", "%i"], capture_output=True, text=True).stdout.split()
    assert running
    subprocess.run(["scancel", *running], check=True)
    output, _ = proc.communicate(timeout=1600)
    assert proc.returncode == 0, output[-4000:]
    assert "Trying to restart" in output or "restart" in output.lower()
    log = (wd / "results/logs/digits/small_cnn/seed0/lth/iter1.log").read_text()
    assert "resuming after epoch" in log, log[-2000:]
    assert comparable_tables(wd / "results") == comparable_tables(reference / "results")

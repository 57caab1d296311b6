"""The SLURM profile against a real SLURM cluster (the throwaway one of ci/slurm-up.sh in CI).

`.ci/run` runs this module on a cluster without accounting, then the quick-start, status and signal
tests again on one with (ci/slurm-up.sh --accounting): the profile must pick the job-status source that
answers, and Snakemake must never wait forever on either."""
import math
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml
import yte

from infcop.running import cluster as infcop_cluster
from infcop.experiments.config import with_defaults
from workflow_helpers import BIN, ROOT, TINY, comparable_tables, env, snakemake, workdir

pytestmark = [pytest.mark.slurm, pytest.mark.slow]
RUN = "results/digits/small_cnn/seed0"
GPU_RULES = ("train_dense", "rewind_point", "imp_iteration", "evaluate")
SUBMITTED = re.compile(r"has been submitted with SLURM jobid (\d+)")
REPORT = "rule_report_figure_similarity_summary_page_tables"  # the group of the tables, summary page, figures
TIMEOUT = 1500  # s for one workflow run; far above its few minutes, so a hang fails instead of blocking CI


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


def accounting() -> bool:
    """What the cluster is configured with, asked independently of the profile's own probe."""
    out = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, timeout=30).stdout
    m = re.search(r"^AccountingStorageType\s*=\s*(\S+)", out, re.M)
    return bool(m) and m.group(1) != "accounting_storage/none"


def slurm_env(**extra) -> dict:
    e = env()
    e.setdefault("INFCOP_SLURM_POLL_SECONDS", "5")  # the profile's 40 s first poll would only make tests slow
    e.update(extra)
    return e


def profile() -> dict:
    return yte.process_yaml((ROOT / "profiles/slurm/config.yaml").read_text(), require_use_yte=True)


def quickstart_block() -> str:
    """The first bash block of docs/slurm.md (the README's SLURM page): the quick-start, which must run as
    written."""
    text = (ROOT / "docs" / "slurm.md").read_text()
    section = text[text.index("# Running on a SLURM cluster"):]
    return re.search(r"```bash\n(.*?)```", section, re.S).group(1)


class Jobs:
    """Every SLURM job seen while a run goes on: id -> comment, time limit, GRES, CPUs, memory, state.
    `squeue --states=all` still lists finished jobs for MinJobAge (300 s), so polling every second
    misses none."""

    FIELDS = ("id", "comment", "timelimit", "gres", "cpus", "mem", "state", "used")

    def __init__(self):
        self.seen, self._stop = {}, threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self):
        while not self._stop.is_set():
            self.snapshot()
            self._stop.wait(1)

    def snapshot(self):
        r = subprocess.run(["squeue", "--states=all", "-h", "-o", "%i|%k|%l|%b|%C|%m|%T|%M"], capture_output=True,
                           text=True, timeout=30)
        for line in r.stdout.splitlines():
            job = dict(zip(self.FIELDS, line.split("|")))
            if job["id"] in self.ids:
                self.seen[job["id"]] = job

    def __enter__(self):
        self.ids = set()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def track(self, output: str) -> list[dict]:
        """The jobs this Snakemake output says it submitted, in submission order."""
        ids = SUBMITTED.findall(output)
        self.ids.update(ids)
        self.snapshot()
        missing = [i for i in ids if i not in self.seen]
        assert not missing, f"jobs {missing} were submitted but squeue never showed them"
        return [self.seen[i] for i in ids]


def run_workflow(wd: Path, *args, cmd=None, extra_env=None, jobs: Jobs | None = None) -> tuple[str, list[dict]]:
    """A workflow run through the profile (or `cmd` run by bash); its whole output and its SLURM jobs."""
    command = ["bash", "-c", cmd] if cmd else [str(BIN / "snakemake"), "--profile", "profiles/slurm", *args]
    own = jobs is None
    jobs = jobs or Jobs()
    if own:
        jobs.__enter__()
    try:
        jobs.ids = set()  # filled from the output; jobs of other runs on the cluster are never counted
        proc = subprocess.Popen(command, cwd=wd, env=slurm_env(**(extra_env or {})), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        # ids are read as they come, so that the poller records each job while squeue still shows it
        lines = []
        for line in proc.stdout:
            lines.append(line)
            jobs.ids.update(SUBMITTED.findall(line))
        proc.wait(timeout=TIMEOUT)
        out = "".join(lines)
        assert proc.returncode == 0, f"exit {proc.returncode}\n{out[-6000:]}"
        return out, jobs.track(out)
    finally:
        if own:
            jobs.__exit__()


@pytest.fixture(scope="module")
def local_reference(tmp_path_factory):
    wd = workdir(tmp_path_factory.mktemp("local"))
    snakemake(wd)
    return wd


def _runs(config: dict) -> list[str]:
    e = config["experiment"]
    return [f"run_{d}_{a}_seed{s}_{m}" for d in e["datasets"] for a in e["archs"] for s in e["seeds"]
            for m in e["methods"]]


def _minutes(limit: str) -> int:
    """squeue's time limit (D-HH:MM:SS, HH:MM:SS or MM:SS) in minutes."""
    days, _, rest = limit.rpartition("-")
    parts = [int(p) for p in rest.split(":")]
    while len(parts) < 3:
        parts.insert(0, 0)
    return int(days or 0) * 1440 + parts[0] * 60 + parts[1] + (parts[2] > 0)


def _request(rule: str, cfg: dict, wildcards: dict, gpu: bool) -> infcop_cluster.Request:
    """What infcop.running.cluster asks for one job of the tiny experiment (no benchmark files in a fresh workdir)."""
    return infcop_cluster.request(rule, with_defaults(cfg), wildcards, 1, gpu=gpu)


def _table_bound(rule: str, cfg: dict, wildcards: dict, device: str) -> int:
    """Minutes: the safety factor times start-up plus the rule's epochs at the table's seconds per epoch."""
    full = with_defaults(cfg)
    epochs = infcop_cluster.job_epochs(rule, full, wildcards)
    seconds = epochs * infcop_cluster.epoch_seconds(wildcards["arch"], wildcards["dataset"], full["data"], device)
    return math.ceil(infcop_cluster.SAFETY * (infcop_cluster.STARTUP_S + seconds) / 60)


NO_GRES = ("N/A", "(null)", "")


# GPU mode (the default) with an experiment that leaves the device to the node (auto): the training rules ask
# for gres gpu:1 as before; CPU mode (INFCOP_SLURM_GPUS=0 filled into the quick-start, as a user with a small
# network would): no job asks for a GPU. Both finish with the tables of a local run.
@pytest.mark.parametrize("mode", ["gpu", "cpu"])
def test_quickstart_block_runs_one_job_per_run_with_tables_of_a_local_run(tmp_path, local_reference, mode):
    gres = subprocess.run(["sinfo", "-h", "-o", "%G"], capture_output=True, text=True, timeout=30).stdout
    if mode == "gpu" and "gpu" not in gres:
        pytest.skip("this cluster has no GPU (ci/slurm-up.sh --no-gpu): GPU mode runs on the one with a GPU")
    if os.environ.get("INFCOP_REQUIRE_NO_GPU") == "1":  # .ci/run's last phase: CPU mode on a CPU-only cluster
        assert "gpu" not in gres, f"the cluster has a GPU: {gres}"
    wd = workdir(tmp_path / "quickstart", training__device="auto" if mode == "gpu" else "cpu")
    (wd / ".venv").symlink_to(ROOT / ".venv")  # what `make setup` leaves in a clone
    block = quickstart_block()
    assert "export INFCOP_SLURM_GPUS=" in block, block
    if mode == "cpu":
        block = block.replace("export INFCOP_SLURM_GPUS=", "export INFCOP_SLURM_GPUS=0", 1)
    out, jobs = run_workflow(wd, cmd=block)
    status = "sacct" if accounting() else "squeue"
    assert f"infcop SLURM profile: job status from {status}" in out, out[:3000]
    assert ("GPU gpu:1 per training job" if mode == "gpu" else "CPUs only: no GPU") in out, out[:3000]
    assert "infcop SLURM requests (" + ("GPU gpu:1" if mode == "gpu" else "CPUs only") in out, out[:3000]

    cfg = yaml.safe_load((wd / "config.yaml").read_text())
    k = cfg["experiment"]["iterations"]
    by_comment = {j["comment"]: j for j in jobs}
    # one job per dense network, one per run, one for tables, summary page and figures (16 without groups)
    dense = "rule_train_dense_wildcards_digits_small_cnn_0"
    groups = [f"rule_{r}_evaluate_imp_iteration" for r in _runs(cfg)]
    assert sorted(by_comment) == sorted([dense, *groups, REPORT]), [j["comment"] for j in jobs]
    assert len(jobs) == 4
    gres = "gres:gpu:1" if mode == "gpu" else None
    w = {"dataset": "digits", "arch": "small_cnn", "seed": "0"}
    for name, method in zip(groups, cfg["experiment"]["methods"]):
        job = by_comment[name]
        # runtime covers the chain: K iterations one after another, then evaluate (which exports the ticket),
        # each sized to its work; below the table's bound, and far below the hour per job asked for before
        it = {**w, "method": method, "k": "1"}
        ev = {**w, "method": method}
        requested = _minutes(job["timelimit"])
        assert requested == (k * _request("imp_iteration", cfg, it, mode == "gpu").runtime
                             + _request("evaluate", cfg, ev, mode == "gpu").runtime), job
        device = "gpu" if mode == "gpu" else "cpu"
        assert requested <= k * _table_bound("imp_iteration", cfg, it, device) + _table_bound("evaluate", cfg, ev, device)
        assert requested < k * 60 + 60, job
        print(f"REQUESTED {mode} {name}: {requested} min, used {job['used']}")
        assert (job["gres"] == gres) if gres else job["gres"] in NO_GRES, job  # one GPU for the chain, or none
        mem = _request("imp_iteration", cfg, it, mode == "gpu").mem_mb
        assert (int(job["cpus"]), job["mem"]) == (1, f"{mem}M"), job  # its jobs never overlap
    dense_job = by_comment[dense]
    assert _minutes(dense_job["timelimit"]) == _request("train_dense", cfg, w, mode == "gpu").runtime, dense_job
    print(f"REQUESTED {mode} {dense}: {_minutes(dense_job['timelimit'])} min, used {dense_job['used']}")
    assert (dense_job["gres"] == gres) if gres else dense_job["gres"] in NO_GRES, dense_job
    assert by_comment[REPORT]["gres"] in NO_GRES, by_comment
    for m in cfg["experiment"]["methods"]:
        for i in range(1, k + 1):  # every iteration is still its own rule job with its own outputs and log
            assert (wd / RUN / m / f"iter{i}" / "model.pt").is_file()
            assert f"iteration={i} epoch 1 loss" in (wd / f"results/logs/digits/small_cnn/seed0/{m}/iter{i}.log").read_text()
    assert (wd / "results/figures/similarity.pdf").is_file()
    assert comparable_tables(wd / "results") == comparable_tables(local_reference / "results")
    assert not _locks(wd)


def test_one_knob_changes_one_rule_and_the_profile_says_so(tmp_path):
    """INFCOP_SLURM_RUNTIME_<rule> / INFCOP_SLURM_MEM_MB_<rule>: that rule's request, every other one as
    derived; a malformed value is refused before anything is submitted (dry runs: nothing is submitted)."""
    wd = workdir(tmp_path / "knob")

    def dry(**extra):
        return subprocess.run([str(BIN / "snakemake"), "--profile", "profiles/slurm", "-n"], cwd=wd,
                              env=slurm_env(**extra), capture_output=True, text=True, timeout=300)

    def resources(out: str, rule: str) -> list[str]:
        """The `resources:` line of every job of `rule` in a dry run's listing (groups indent theirs)."""
        found, current = [], None
        for line in out.splitlines():
            m = re.match(r"\s*rule (\w+):$", line)
            current = m.group(1) if m else current
            if current == rule and line.strip().startswith("resources: "):
                found.append(line.strip()[len("resources: "):] + ",")
        assert found, f"no job of {rule} listed:\n{out[-3000:]}"
        return found

    r = dry(INFCOP_SLURM_RUNTIME_imp_iteration="7", INFCOP_SLURM_MEM_MB_evaluate="1234")
    assert r.returncode == 0, r.stderr[-3000:]
    out = r.stdout + r.stderr
    assert "per-rule overrides: evaluate mem_mb 1234, imp_iteration runtime 7" in out, out[:3000]
    cfg = yaml.safe_load((wd / "config.yaml").read_text())
    w = {"dataset": "digits", "arch": "small_cnn", "seed": "0"}
    derived = _request("imp_iteration", cfg, {**w, "method": "lth", "k": "1"}, gpu=False)
    assert all("runtime=7," in x and f"mem_mb={derived.mem_mb}," in x for x in resources(out, "imp_iteration")), out
    ev = _request("evaluate", cfg, {**w, "method": "lth"}, gpu=False)
    assert all("mem_mb=1234," in x and f"runtime={ev.runtime}," in x for x in resources(out, "evaluate")), out
    dense = _request("train_dense", cfg, w, gpu=False)
    assert all(f"runtime={dense.runtime}," in x for x in resources(out, "train_dense")), out
    for bad, message in ((dict(INFCOP_SLURM_RUNTIME_imp_iteration="30m"), "must be a whole number of minutes"),
                         (dict(INFCOP_SLURM_MEM_MB_evalute="2000"), "no rule 'evalute'"),
                         (dict(INFCOP_SLURM_GPUS="yes"), "INFCOP_SLURM_GPUS must be 0")):
        r = dry(**bad)
        assert r.returncode != 0 and message in r.stderr, r.stderr[-2000:]


def test_groups_off_submits_one_job_per_rule_and_gpu_only_for_gpu_rules(tmp_path, local_reference):
    wd = workdir(tmp_path / "per_rule", training__device="auto")  # GPU mode: the device is left to the node
    out, jobs = run_workflow(wd, extra_env={"INFCOP_SLURM_GROUPS": "off"})
    assert "one job per rule" in out
    rules = [re.match(r"rule_(train_dense|imp_iteration|evaluate|tables|summary_page|figure|similarity)_",
                      j["comment"] + "_")
             for j in jobs]
    assert all(rules), [j["comment"] for j in jobs]
    counts = {}
    for r, j in zip(rules, jobs):
        counts[r.group(1)] = counts.get(r.group(1), 0) + 1
        assert (j["gres"] == "gres:gpu:1") == (r.group(1) in GPU_RULES), j
    # the tiny experiment has no fixed-budget curve and no threshold sweep: 6 figures (infcop.showing.plots.plan)
    assert counts == {"train_dense": 1, "imp_iteration": 4, "evaluate": 2, "tables": 1, "summary_page": 1, "figure": 6,
                      "similarity": 1}
    assert any(j["comment"] == "rule_imp_iteration_wildcards_digits_small_cnn_0_lth_2" for j in jobs)
    assert comparable_tables(wd / "results") == comparable_tables(local_reference / "results")


def test_cancelled_group_job_is_resubmitted_skips_finished_iterations_and_resumes(tmp_path):
    changes = dict(experiment__methods=["lth"], experiment__iterations=2, training__max_epochs=40)
    reference = workdir(tmp_path / "reference", **changes)
    snakemake(reference)
    wd = workdir(tmp_path / "cancel", **changes)
    logs = wd / "results/logs/digits/small_cnn/seed0/lth"
    with Jobs() as jobs:
        proc = subprocess.Popen([str(BIN / "snakemake"), "--profile", "profiles/slurm"], cwd=wd, env=slurm_env(),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines = []
        reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
        reader.start()
        # cancel the run's group job in the middle of its second iteration, after a few epochs
        deadline = time.time() + 900
        # (once epoch 4 is logged, epoch 3's checkpoint is on disk; the log also has an "epoch 0" line)
        while not (logs / "iter2.log").is_file() or " epoch 4 loss" not in (logs / "iter2.log").read_text():
            jobs.ids.update(SUBMITTED.findall("".join(lines)))
            assert proc.poll() is None, "".join(lines)[-3000:]
            assert time.time() < deadline, "iteration 2 never got going"
            time.sleep(0.2)
        group = [i for i in SUBMITTED.findall("".join(lines))][-1]
        subprocess.run(["scancel", group], check=True)
        proc.wait(timeout=TIMEOUT)
        reader.join()
        out = "".join(lines)
        assert proc.returncode == 0, out[-4000:]
        submitted = jobs.track(out)
    assert jobs.seen[group]["state"] == "CANCELLED"
    assert "Trying to restart job" in out
    # dense, the group, the group again, the report
    assert [j["comment"].split("_wildcards")[0] for j in submitted] == [
        "rule_train_dense", *["rule_run_digits_small_cnn_seed0_lth_evaluate_imp_iteration"] * 2,
        REPORT]
    iter1 = (logs / "iter1.log").read_text()  # the resubmitted group's log of iteration 1
    assert "resuming after epoch 40" in iter1 and " epoch 1 loss" not in iter1, (
        "the finished iteration 1 was trained again after the group was resubmitted (infcop must keep a "
        "finished iteration's final epoch checkpoint while its group may be retried):\n" + iter1[-2000:])
    resumed = re.search(r"iteration=2: resuming after epoch (\d+)", (logs / "iter2.log").read_text())
    assert resumed and int(resumed.group(1)) >= 3, (logs / "iter2.log").read_text()[-2000:]
    assert comparable_tables(wd / "results") == comparable_tables(reference / "results")


def test_profile_picks_the_status_source_that_answers(tmp_path):
    wd = workdir(tmp_path / "status")

    def line(**extra):
        r = subprocess.run([str(BIN / "snakemake"), "--profile", "profiles/slurm", "-n"], cwd=wd,
                           env=slurm_env(**extra), capture_output=True, text=True, timeout=300)
        found = re.search(r"infcop SLURM profile: job status from (\w+) \(([^)]*)\).*first poll after (\d+) s",
                          r.stderr)
        return r, found

    r, found = line()
    assert r.returncode == 0 and found, r.stderr[-3000:]
    assert found.group(1) == ("sacct" if accounting() else "squeue"), found.group(0)
    r, found = line(INFCOP_SLURM_STATUS="squeue")
    assert found, r.stderr[-3000:]
    assert found.group(1, 2) == ("squeue", "INFCOP_SLURM_STATUS")
    r, _ = line(INFCOP_SLURM_STATUS="scontrol")
    assert r.returncode != 0 and "INFCOP_SLURM_STATUS must be sacct or squeue" in r.stderr
    # an accounting daemon that does not answer (sacct hangs) must not hang the start: squeue, within 15 s
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "sacct").write_text("#!/bin/sh\nexec sleep 600\n")
    (fake / "sacct").chmod(0o755)
    path = f"{fake}{os.pathsep}{slurm_env()['PATH']}"
    t0 = time.time()
    r, found = line(PATH=path)
    assert found, r.stderr[-3000:]
    assert found.group(1) == "squeue" and "sacct does not answer" in found.group(2), r.stderr[-2000:]
    assert time.time() - t0 < 300
    # squeue forgets finished jobs after MinJobAge: the first poll must stay under a third of it (else the
    # plugin swaps squeue for sacct, which never answers here), with a warning below the 180 s poll pause
    (fake / "scontrol").write_text("#!/bin/sh\necho 'MinJobAge               = 30 sec'\n")
    (fake / "scontrol").chmod(0o755)
    r, found = line(PATH=path, INFCOP_SLURM_POLL_SECONDS="40")
    assert found, r.stderr[-3000:]
    assert found.group(1) == "squeue" and found.group(3) == "10", found.group(0)
    assert "WARNING: MinJobAge is 30 s" in r.stderr


def _locks(wd: Path) -> list[Path]:
    return list((wd / ".snakemake" / "locks").glob("*"))


def _interrupt(wd: Path, sig: int, jobs: Jobs) -> tuple[subprocess.Popen, str, str]:
    """Start the workflow, send `sig` to Snakemake once its first SLURM job runs; its output and that job."""
    # Ctrl-C as in a terminal: a test run started in the background by a non-interactive shell inherits
    # SIGINT ignored, and Snakemake would keep ignoring it
    proc = subprocess.Popen([str(BIN / "snakemake"), "--profile", "profiles/slurm"], cwd=wd, env=slurm_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    deadline = time.time() + 600
    while True:
        ids = SUBMITTED.findall("".join(lines))
        jobs.ids.update(ids)
        jobs.snapshot()
        if ids and jobs.seen.get(ids[0], {}).get("state") == "RUNNING":
            break
        assert proc.poll() is None, "".join(lines)[-3000:]
        assert time.time() < deadline, "no SLURM job started"
        time.sleep(0.5)
    assert _locks(wd), "no lock while Snakemake runs: is the lock folder still .snakemake/locks?"
    proc.send_signal(sig)
    try:
        proc.wait(timeout=300)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"Snakemake did not exit within 300 s of signal {sig}:\n{''.join(lines)[-3000:]}")
    reader.join()
    return proc, "".join(lines), ids[0]


def test_ctrl_c_cancels_running_jobs_exits_at_once_and_leaves_no_lock(tmp_path):
    wd = workdir(tmp_path / "sigint")
    with Jobs() as jobs:
        proc, out, job = _interrupt(wd, signal.SIGINT, jobs)
        assert proc.returncode != 0
        for _ in range(30):  # scancel is asynchronous
            jobs.snapshot()
            if jobs.seen[job]["state"] == "CANCELLED":
                break
            time.sleep(1)
    assert jobs.seen[job]["state"] == "CANCELLED", jobs.seen[job]
    assert len(SUBMITTED.findall(out)) == 1
    assert not _locks(wd), "stale lock after Ctrl-C"
    assert not (wd / RUN / "dense/model.pt").exists()


def test_sigterm_finishes_running_jobs_submits_no_more_and_leaves_no_lock(tmp_path):
    wd = workdir(tmp_path / "sigterm")
    with Jobs() as jobs:
        proc, out, job = _interrupt(wd, signal.SIGTERM, jobs)
        jobs.snapshot()
    assert jobs.seen[job]["state"] == "COMPLETED", jobs.seen[job]
    assert len(SUBMITTED.findall(out)) == 1, "a job was submitted after SIGTERM"
    assert (wd / RUN / "dense/model.pt").is_file()
    assert not _locks(wd), "stale lock after SIGTERM"
    assert "Will exit after finishing currently running jobs" in out

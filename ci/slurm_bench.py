"""SLURM overhead of the tiny config: grouped (one job per run) against one job per rule.

Runs tests/configs/tiny.yaml through `--profile profiles/slurm` with the profile's defaults, grouped and
with INFCOP_SLURM_GROUPS=off, interleaved (G P P G ...) so that the noise of a shared machine hits both
alike, and reports per variant: sbatch submissions, workflow wall time, and where a 1-epoch
imp_iteration job's time goes (SLURM job start to end from squeue, the `infcop` process from Snakemake's
benchmark file, training + flows from the iteration's metrics.json). Needs a SLURM cluster that
answers (ci/slurm-up.sh); run it with the project's environment:

    .venv/bin/python ci/slurm_bench.py [--repeats 2] [--poll SECONDS]
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from _common import SCRATCH, env, machine, result, save_json, tool, workdir  # noqa: E402

SUBMITTED = re.compile(r"has been submitted with SLURM jobid (\d+)")
VARIANTS = {"grouped": {}, "per_rule": {"INFCOP_SLURM_GROUPS": "off"}}


def _squeue(ids: set) -> dict:
    r = subprocess.run(["squeue", "--states=all", "-h", "-o", "%i|%k|%V|%S|%e|%T"], capture_output=True,
                       text=True, timeout=30)
    jobs = {}
    for line in r.stdout.splitlines():
        i, comment, submit, start, end, state = line.split("|")
        if i in ids:
            jobs[i] = dict(comment=comment, submit=submit, start=start, end=end, state=state)
    return jobs


def _seconds(a: str, b: str) -> float:
    f = "%Y-%m-%dT%H:%M:%S"
    return (datetime.datetime.strptime(b, f) - datetime.datetime.strptime(a, f)).total_seconds()


def one_run(name: str, i: int, poll: int | None) -> dict:
    wd = workdir(SCRATCH / f"slurm-{name}-{i}", yaml.safe_load((ROOT / "tests/configs/tiny.yaml").read_text()))
    e = {**env(), **VARIANTS[name]}
    if poll:
        e["INFCOP_SLURM_POLL_SECONDS"] = str(poll)
    ids, seen, stop = set(), {}, threading.Event()

    def watch():  # squeue lists finished jobs for MinJobAge (300 s): polling every 2 s misses none
        while not stop.is_set():
            seen.update(_squeue(ids))
            stop.wait(2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    t0 = time.perf_counter()
    proc = subprocess.Popen([tool("snakemake"), "--profile", "profiles/slurm"], cwd=wd, env=e,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        ids.update(SUBMITTED.findall(line))
    proc.wait()
    wall = time.perf_counter() - t0
    stop.set()
    watcher.join()
    seen.update(_squeue(ids))
    out = "".join(lines)
    if proc.returncode != 0:
        sys.exit(f"{name} run {i} failed:\n{out[-4000:]}")
    (wd / "snakemake.out").write_text(out)
    jobs = [seen[j] for j in SUBMITTED.findall(out)]
    # a 1-epoch iteration: ciap stops after its first epoch on the tiny config
    one_epoch = []
    run = wd / "results/digits/small_cnn/seed0"
    for k in (1, 2):
        m = json.loads((run / f"ciap/iter{k}/metrics.json").read_text())
        if m["epochs_trained"] != 1:
            continue
        proc_s = float((wd / f"results/benchmarks/digits/small_cnn/seed0/ciap/iter{k}.tsv").read_text()
                       .splitlines()[1].split("\t")[0])
        job = next((j for j in jobs if j["comment"].endswith(f"_ciap_{k}")), None)
        one_epoch.append(dict(science=m["train_seconds"] + m["flow_seconds"], process=proc_s,
                              job=_seconds(job["start"], job["end"]) if job else None))
    return dict(variant=name, repeat=i, wall=wall, submissions=len(jobs),
                queue_wait=sum(_seconds(j["submit"], j["start"]) for j in jobs),
                job_seconds=sum(_seconds(j["start"], j["end"]) for j in jobs), one_epoch=one_epoch,
                comments=[j["comment"] for j in jobs])


def _medians(records, *keys):
    """The median of each of `keys` over `records`."""
    return [statistics.median(o[k] for o in records) for k in keys]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=2, help="runs per variant (interleaved)")
    ap.add_argument("--poll", type=int, default=None,
                    help="INFCOP_SLURM_POLL_SECONDS (default: the profile's own, 40 s)")
    args = ap.parse_args()
    names = list(VARIANTS)
    runs = []
    load0 = os.getloadavg()[0]
    for r in range(args.repeats):
        order = names if r % 2 == 0 else names[::-1]
        for n in order:
            rec = one_run(n, r, args.poll)
            print(f"{n} #{r}: {rec['wall']:.0f} s wall, {rec['submissions']} submissions, "
                  f"{rec['job_seconds']:.0f} s in jobs, {rec['queue_wait']:.0f} s queued", flush=True)
            runs.append(rec)
    load1 = os.getloadavg()[0]
    save_json({"machine": machine(), "load": [load0, load1], "runs": runs}, SCRATCH / "slurm_bench.json")
    by = {n: [x for x in runs if x["variant"] == n] for n in names}
    med = {n: statistics.median(x["wall"] for x in by[n]) for n in names}
    subs = {n: by[n][0]["submissions"] for n in names}
    print(f"{machine()}; 1-min load average {load0:.1f} before, {load1:.1f} after; "
          f"first status poll {args.poll or 'profile default'}")
    print(result("slurm_submissions_tiny",
                 f"grouped {subs['grouped']}, one per rule {subs['per_rule']} "
                 f"({subs['per_rule'] / subs['grouped']:.1f}x fewer: one per run, one per dense network, one for tables and figures)"))
    jobs_s = {n: statistics.median(x["job_seconds"] for x in by[n]) for n in names}
    print(result("slurm_job_seconds_tiny",
                 f"grouped {jobs_s['grouped']:.0f} s, one per rule {jobs_s['per_rule']:.0f} s summed over the "
                 f"SLURM jobs, start to end (median of {args.repeats} each): per rule / grouped = "
                 f"{jobs_s['per_rule'] / jobs_s['grouped']:.2f}"))
    print(result("slurm_wall_tiny",
                 f"grouped {med['grouped']:.0f} s, one per rule {med['per_rule']:.0f} s "
                 f"(median of {args.repeats} each, interleaved): per rule / grouped = "
                 f"{med['per_rule'] / med['grouped']:.2f}"))
    one = [o for x in by["per_rule"] for o in x["one_epoch"] if o["job"]]
    if one:
        job, process, science = _medians(one, "job", "process", "science")
        print(result("slurm_one_epoch_iteration_job",
                     f"{1 - science / job:.0%} of a 1-epoch imp_iteration SLURM job is start-up: job {job:.0f} s "
                     f"(start to end, 1 s resolution) = Snakemake in the job {job - process:.1f} s + infcop "
                     f"process {process:.1f} s, of which training + flows {science:.2f} s (median of {len(one)})"))
    inner = [o for x in by["grouped"] for o in x["one_epoch"]]
    if inner:
        process, science = _medians(inner, "process", "science")
        print(result("slurm_one_epoch_iteration_in_group",
                     f"{1 - science / process:.0%} of a 1-epoch iteration inside a group job is start-up: "
                     f"infcop process {process:.1f} s, training + flows {science:.2f} s "
                     f"(the group's own SLURM and Snakemake start-up is paid once per run)"))


if __name__ == "__main__":
    main()

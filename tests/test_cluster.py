"""infcop.running.cluster: what a training job asks a cluster for (table, benchmark files, retries), the GPU or
CPU mode, and the per-rule override variables of the SLURM profile. No cluster needed."""
import json
import math

import pytest
import yte

from conftest import ROOT
from infcop import InfcopError
from infcop.running import cluster
from infcop.experiments.config import with_defaults

W = {"dataset": "mnist1d", "arch": "mnist1d_cnn", "seed": "0"}


def experiment(**sections) -> dict:
    cfg = with_defaults({"experiment": {"datasets": ["mnist1d"], "archs": ["mnist1d_cnn"], "methods": ["lth", "short"],
                                        "iterations": 5},
                         "data": {"num_samples": 25000},
                         "methods": {"lth": {"pruner": {"name": "magnitude", "rate": 0.2}, "stop": ["budget"]},
                                     "short": {"pruner": {"name": "magnitude", "rate": 0.2}, "stop": ["budget"],
                                               "max_epochs": 1}}})
    for name, values in sections.items():
        cfg[name] = {**cfg[name], **values}
    return cfg


def test_the_table_sizes_a_small_network_in_minutes_on_a_cpu_and_cifar_networks_in_hours():
    cfg = experiment(dense={"epochs": 30})
    dense = cluster.request("train_dense", cfg, W)
    iteration = cluster.request("imp_iteration", cfg, {**W, "method": "lth", "k": "1"})
    assert dense.source == iteration.source == "table"
    # the default network: start-up and 30 epochs of under a second, times the safety factor
    assert dense.runtime == math.ceil(cluster.SAFETY * (cluster.STARTUP_S + 30 * cluster.epoch_seconds(
        "mnist1d_cnn", "mnist1d", cfg["data"], "cpu")) / 60)
    assert dense.runtime <= 10 and iteration.runtime <= 5, (dense, iteration)
    assert iteration.mem_mb == 2000
    big = experiment(experiment={"datasets": ["cifar10"], "archs": ["vgg16"]}, dense={"epochs": 160})
    w = {"dataset": "cifar10", "arch": "vgg16", "seed": "0"}
    on_cpu, on_gpu = (cluster.request("train_dense", big, w, gpu=g) for g in (False, True))
    assert on_gpu.runtime > 60 and on_cpu.runtime > 10 * on_gpu.runtime, (on_cpu, on_gpu)
    assert on_gpu.mem_mb > on_cpu.mem_mb >= 2000
    # an architecture the table does not know (torchvision:<name>) is taken to be large
    unknown = cluster.request("train_dense", big, {**w, "arch": "torchvision:resnet50"}, gpu=True)
    assert unknown.runtime > on_gpu.runtime


def test_epochs_per_rule_follow_the_experiment():
    cfg = experiment(dense={"epochs": 7}, training={"max_epochs": 4, "final_epochs": 3})
    assert cluster.job_epochs("train_dense", cfg, W) == 7
    assert cluster.job_epochs("rewind_point", cfg, {**W, "epoch": "2"}) == 2
    assert cluster.job_epochs("imp_iteration", cfg, {**W, "method": "lth", "k": "1"}) == 4  # training.max_epochs
    assert cluster.job_epochs("imp_iteration", cfg, {**W, "method": "short", "k": "1"}) == 1  # the preset's
    assert 3 < cluster.job_epochs("evaluate", cfg, {**W, "method": "lth"}) < 5  # final_epochs + test passes
    longer = cluster.request("imp_iteration", cfg, {**W, "method": "lth", "k": "1"})
    shorter = cluster.request("imp_iteration", cfg, {**W, "method": "short", "k": "1"})
    assert longer.runtime >= shorter.runtime
    with pytest.raises(InfcopError, match="no size for rule 'tables'"):
        cluster.job_epochs("tables", cfg, W)


def test_a_retry_asks_for_attempt_times_the_first_request():
    cfg = experiment()
    first, second, third = (cluster.request("imp_iteration", cfg, {**W, "method": "lth", "k": "2"}, attempt=a)
                            for a in (1, 2, 3))
    assert (second.runtime, second.mem_mb) == (2 * first.runtime, 2 * first.mem_mb)
    assert (third.runtime, third.mem_mb) == (3 * first.runtime, 3 * first.mem_mb)
    with pytest.raises(InfcopError, match="attempt must be >= 1"):
        cluster.request("imp_iteration", cfg, {**W, "method": "lth", "k": "2"}, attempt=0)


def _bench(path, seconds, rss=500.0):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("s\th:m:s\tmax_rss\tmax_vms\n" f"{seconds}\t0:00:00\t{rss}\t900\n")


def _dense_metrics(root, device):
    d = root / "mnist1d" / "mnist1d_cnn" / "seed0" / "dense"
    d.mkdir(parents=True, exist_ok=True)
    (d / "metrics.json").write_text(json.dumps({"device": device}))


def test_benchmark_files_of_a_previous_run_replace_the_table_with_the_safety_factor(tmp_path):
    cfg = experiment()
    root = tmp_path / "results"
    it = {**W, "method": "lth", "k": "3"}
    table = cluster.request("imp_iteration", cfg, it, root=str(root))
    assert table.source == "table"  # nothing measured yet
    _dense_metrics(root, "cpu")
    bench = root / "benchmarks" / "mnist1d" / "mnist1d_cnn"
    # another seed's iterations of the same method: the largest of them
    _bench(bench / "seed1" / "lth" / "iter1.tsv", 300.0)
    _bench(bench / "seed1" / "lth" / "iter2.tsv", 500.0, rss=6000.0)
    _bench(bench / "seed1" / "sap" / "iter1.tsv", 5000.0)  # another method: not this job's measurement
    r = cluster.request("imp_iteration", cfg, it, root=str(root))
    assert r.source == "benchmarks (2 files)"
    assert r.runtime == math.ceil(cluster.SAFETY * (cluster.STARTUP_S + 500.0) / 60)
    assert r.mem_mb == math.ceil(cluster.MEM_SAFETY * 6000 / cluster.MEM_STEP_MB) * cluster.MEM_STEP_MB
    # the job's own file from the previous run wins over the others
    _bench(bench / "seed0" / "lth" / "iter3.tsv", 60.0)
    own = cluster.request("imp_iteration", cfg, it, root=str(root))
    assert own.source == "benchmarks (1 file)"
    assert own.runtime == math.ceil(cluster.SAFETY * (cluster.STARTUP_S + 60.0) / 60)
    assert own.mem_mb == table.mem_mb  # a small measured peak never lowers the table's memory
    assert cluster.request("imp_iteration", cfg, it, attempt=2, root=str(root)).runtime == 2 * own.runtime
    # a broken file is skipped, not fatal
    (bench / "seed0" / "lth" / "iter3.tsv").write_text("garbage\n")
    assert cluster.request("imp_iteration", cfg, it, root=str(root)).source == "benchmarks (2 files)"


def test_a_cpu_job_ignores_benchmarks_of_a_run_on_a_gpu(tmp_path):
    cfg = experiment()
    root = tmp_path / "results"
    _dense_metrics(root, "cuda:0")
    _bench(root / "benchmarks" / "mnist1d" / "mnist1d_cnn" / "seed0" / "dense.tsv", 5.0)
    assert cluster.request("train_dense", cfg, W, root=str(root)).source == "table"  # too short for a CPU
    assert cluster.request("train_dense", cfg, W, gpu=True, root=str(root)).source == "benchmarks (1 file)"


def test_gpu_mode_and_gres():
    assert cluster.gpu_mode({}) and cluster.gpu_mode({"INFCOP_SLURM_GPUS": "1"})
    assert not cluster.gpu_mode({"INFCOP_SLURM_GPUS": " 0 "})
    with pytest.raises(InfcopError, match="INFCOP_SLURM_GPUS must be 0 .* not 'two'"):
        cluster.gpu_mode({"INFCOP_SLURM_GPUS": "two"})
    assert cluster.gpu_gres({}) == "gpu:1"
    assert cluster.gpu_gres({"INFCOP_SLURM_GPU_MODEL": "a100"}) == "gpu:a100:1"
    with pytest.raises(InfcopError, match="INFCOP_SLURM_GPU_MODEL must be a GPU type"):
        cluster.gpu_gres({"INFCOP_SLURM_GPU_MODEL": "a100 --x"})
    auto, cpu = experiment(training={"device": "auto"}), experiment(training={"device": "cpu"})
    assert cluster.gres(auto, {"INFCOP_SLURM_GRES": "gpu:1"}) == "gpu:1"
    assert cluster.gres(cpu, {"INFCOP_SLURM_GRES": "gpu:1"}) is None  # the experiment trains on the CPU
    assert cluster.gres(auto, {"INFCOP_SLURM_GRES": ""}) is None  # CPU mode
    assert cluster.gres(auto, {}) is None  # no profile: a local run
    assert cluster.job_device(cpu, gpu=True) == "cpu" and cluster.job_device(auto, gpu=True) == "gpu"


def test_override_variables_one_rule_one_resource():
    env = {"INFCOP_SLURM_RUNTIME_imp_iteration": "30", "INFCOP_SLURM_MEM_MB_evaluate": " 2000 ",
           "INFCOP_SLURM_RUNTIME_figure": "", "INFCOP_SLURM_PARTITION": "gpu", "INFCOP_SLURM_GPUS": "0",
           "PATH": "/bin"}
    assert cluster.parse_overrides(env) == {"imp_iteration": {"runtime": 30}, "evaluate": {"mem_mb": 2000}}
    assert cluster.parse_overrides({}) == {}


@pytest.mark.parametrize("name, value, message", [
    ("INFCOP_SLURM_RUNTIME_imp_iteration", "30m", "INFCOP_SLURM_RUNTIME_imp_iteration must be a whole number of "
                                                  "minutes >= 1, not '30m'"),
    ("INFCOP_SLURM_RUNTIME_imp_iteration", "0", "whole number of minutes >= 1, not '0'"),
    ("INFCOP_SLURM_MEM_MB_evaluate", "2G", "INFCOP_SLURM_MEM_MB_evaluate must be a whole number of MB >= 1"),
    ("INFCOP_SLURM_MEM_MB_evalute", "2000", "INFCOP_SLURM_MEM_MB_evalute: no rule 'evalute'; rules: train_dense"),
    ("INFCOP_SLURM_RUNTIME_", "10", "no rule ''"),
    ("INFCOP_SLURM_RUNTME_evaluate", "10", "INFCOP_SLURM_RUNTME_evaluate is not a variable of the SLURM profile"),
])
def test_a_malformed_override_is_refused_naming_the_variable(name, value, message):
    with pytest.raises(InfcopError, match=message.replace("(", r"\(").replace(")", r"\)")):
        cluster.parse_overrides({name: value})


def _render(monkeypatch, **env):
    for name in list(__import__("os").environ):
        if name.startswith("INFCOP_SLURM_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("INFCOP_SLURM_STATUS", "squeue")  # no probe of a cluster
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return yte.process_yaml((ROOT / "profiles/slurm/config.yaml").read_text(), require_use_yte=True)


def test_the_profile_gpu_mode_by_default_cpu_mode_and_one_knob(monkeypatch, capsys):
    import os

    prof = _render(monkeypatch)
    res = prof["set-resources"]
    assert os.environ["INFCOP_SLURM_GRES"] == "gpu:1"  # GPU mode: what the training rules ask for, as before
    assert all(res[r] == {"gpu": 0} for r in cluster.TRAINING_RULES), res  # their runtime/mem come from the rules
    assert res["figure"] == {"runtime": 5, "mem_mb": 2000}
    assert "GPU gpu:1 per training job" in capsys.readouterr().err
    _render(monkeypatch, INFCOP_SLURM_GPU_MODEL="h100")
    assert os.environ["INFCOP_SLURM_GRES"] == "gpu:h100:1"
    prof = _render(monkeypatch, INFCOP_SLURM_GPUS="0", INFCOP_SLURM_RUNTIME_imp_iteration="30",
                   INFCOP_SLURM_MEM_MB_figure="500")
    assert os.environ["INFCOP_SLURM_GRES"] == ""  # CPU mode: no GRES for any rule
    res = prof["set-resources"]
    assert res["imp_iteration"] == {"gpu": 0, "runtime": 30}
    assert res["figure"] == {"runtime": 5, "mem_mb": 500}
    assert res["evaluate"] == {"gpu": 0} and res["similarity"] == {"runtime": 5, "mem_mb": 2000}
    err = capsys.readouterr().err
    assert "CPUs only: no GPU" in err and "per-rule overrides: figure mem_mb 500, imp_iteration runtime 30" in err
    with pytest.raises(SystemExit, match="no rule 'imp'"):
        _render(monkeypatch, INFCOP_SLURM_RUNTIME_imp="30")


def test_the_start_line_names_the_device_and_each_training_rules_request(monkeypatch, tmp_path):
    cfg = experiment()
    cfg["experiment"]["seeds"] = [0]
    jobs = {"train_dense": [W], "imp_iteration": [{**W, "method": m, "k": "1"} for m in ("lth", "short")],
            "evaluate": [{**W, "method": m} for m in ("lth", "short")]}
    monkeypatch.setenv(cluster.GRES_VAR, "gpu:1")
    line = cluster.start_line(cfg, str(tmp_path))
    assert line.startswith("infcop SLURM requests (GPU gpu:1;")
    for rule, ws in jobs.items():
        req = max((cluster.request(rule, cfg, w, gpu=True, root=str(tmp_path)) for w in ws),
                  key=lambda r: (r.runtime, r.mem_mb))
        assert f"mnist1d/mnist1d_cnn {rule} {req.runtime} min {req.mem_mb} MB (table)" in line
    monkeypatch.setenv(cluster.GRES_VAR, "")
    assert cluster.start_line(cfg, str(tmp_path)).startswith("infcop SLURM requests (CPUs only (INFCOP_SLURM_GPUS=0);")
    cfg["training"]["device"] = "cpu"
    monkeypatch.setenv(cluster.GRES_VAR, "gpu:1")
    assert "(CPUs only (training.device: cpu);" in cluster.start_line(cfg, str(tmp_path))

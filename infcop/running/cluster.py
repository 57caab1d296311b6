"""What a workflow job asks a cluster for: wall time and memory sized to the work, a GPU or not, and the
per-rule overrides of the SLURM profile (profiles/slurm/config.yaml, docs/slurm.md).

- `request` sizes one job of a training rule (train_dense, rewind_point, imp_iteration, evaluate) from
  the experiment: the epochs the job can train (dense.epochs, the method's retraining budget, the rewind
  epoch, evaluate's test passes and final_epochs), the data set's training examples and input size, and
  the architecture's seconds per epoch (`ARCH_COSTS`, one CPU core or one GPU). When a previous run of the
  same experiment left Snakemake benchmark files (`<root>/benchmarks/`), their measured seconds and
  memory replace the table's estimate. The estimate is multiplied by a safety factor, and a resubmitted
  job (Snakemake's `attempt`) asks for `attempt` times the first request.
- `gpu_mode` reads INFCOP_SLURM_GPUS (the profile's GPU or CPU mode) and `gres` says what a training job
  asks for: the profile's GRES in GPU mode unless the experiment trains on the CPU (training.device: cpu).
- `parse_overrides` reads INFCOP_SLURM_RUNTIME_<rule> and INFCOP_SLURM_MEM_MB_<rule>: one knob per rule
  and resource, refused with a clear message when malformed.

Nothing here imports Snakemake or torch."""
from __future__ import annotations

import csv
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

from .. import InfcopError
from .layout import METRICS, Layout
from ..experiments.method import resolve_method

TRAINING_RULES = ("train_dense", "rewind_point", "imp_iteration", "evaluate")
REPORT_RULES = ("tables", "summary_page", "figure", "similarity")
RULES = TRAINING_RULES + REPORT_RULES

# --- the table -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArchCost:
    """Seconds of one training epoch per 10,000 training examples at the architecture's reference input
    (1-D networks: an MNIST-1D signal of 40 positions; image networks: a 3 x 32 x 32 CIFAR image), batch
    size 64, on one CPU core and on one GPU; and the memory (MB) its activations and optimiser add to a
    job at that input."""

    cpu_s: float
    gpu_s: float
    mem_mb: int


# CPU: measured once for this table (one thread of a 2.5 GHz Xeon, plain SGD steps on random data,
# rounded up); GPU: estimates for an older data-centre GPU at batch size 64, where small networks are
# bound by the per-step overhead. Configuration, not results: the safety factor and the benchmark files
# of a previous run (below) absorb the difference to your cluster.
ARCH_COSTS = {
    "mnist1d_mlp": ArchCost(cpu_s=0.2, gpu_s=1, mem_mb=50),
    "mnist1d_cnn": ArchCost(cpu_s=0.5, gpu_s=1, mem_mb=50),
    "mlp": ArchCost(cpu_s=1, gpu_s=1, mem_mb=100),
    "lenet5": ArchCost(cpu_s=3, gpu_s=1, mem_mb=100),
    "small_cnn": ArchCost(cpu_s=30, gpu_s=1, mem_mb=300),
    "resnet20": ArchCost(cpu_s=50, gpu_s=3, mem_mb=800),
    "vgg11": ArchCost(cpu_s=120, gpu_s=2, mem_mb=800),
    "vgg16": ArchCost(cpu_s=200, gpu_s=3, mem_mb=1200),
    "resnet18": ArchCost(cpu_s=400, gpu_s=5, mem_mb=1500),
}
UNKNOWN_ARCH = ArchCost(cpu_s=1000, gpu_s=10, mem_mb=3000)  # torchvision:<name> and plugins: assume large
ONE_D_POSITIONS, IMAGE_POSITIONS = 40, 32 * 32  # the reference inputs of ArchCost
# Input positions (signal length, or height x width) and values per example of the registered data sets;
# a data set not listed here (a plugin) is taken to be CIFAR-sized with 50,000 training examples.
DATASET_INPUTS = {"mnist1d": (40, 40), "digits": (64, 64), "mnist": (784, 784), "fashion_mnist": (784, 784),
                  "cifar10": (1024, 3072), "cifar100": (1024, 3072)}
UNKNOWN_DATASET = (1024, 3072)
UNKNOWN_TRAIN_EXAMPLES = 50_000
MIN_EPOCH_S = {"cpu": 0.5, "gpu": 0.5}  # per 10,000 examples: the per-step overhead of tiny inputs
EVAL_SHARE = 0.5          # validation, flows and stop decisions, as a share of an epoch's training time
STARTUP_S = 40            # a job before its first epoch: Snakemake in the job, `import torch`, the data
SAFETY = 3                # the first attempt asks for SAFETY x the estimate (runtime)
MEM_SAFETY = 1.5          # ... and MEM_SAFETY x the memory estimate
BASE_MEM_MB = {"cpu": 1000, "gpu": 3000}  # Python, PyTorch (and the CUDA runtime) before any data
MEM_STEP_MB = 500         # memory requests are rounded up to this


def arch_cost(arch: str) -> ArchCost:
    return ARCH_COSTS.get(arch, UNKNOWN_ARCH)


def _positions(arch: str) -> int:
    from ..science.models import arch_signal

    return ONE_D_POSITIONS if arch in ARCH_COSTS and arch_signal(arch) == 1 else IMAGE_POSITIONS


def train_examples(dataset: str, data: dict) -> int:
    """Training examples per epoch (the training split after validation is carved out)."""
    from ..experiments.config import split_sizes
    from ..science.data import DATASETS

    if dataset not in DATASETS:
        return UNKNOWN_TRAIN_EXAMPLES
    sizes = split_sizes(dataset, data)
    return sizes["train"] if sizes else UNKNOWN_TRAIN_EXAMPLES


def test_examples(dataset: str, data: dict) -> int:
    from ..experiments.config import split_sizes
    from ..science.data import DATASETS

    sizes = split_sizes(dataset, data) if dataset in DATASETS else None
    return (sizes or {}).get("test") or UNKNOWN_TRAIN_EXAMPLES // 5


def epoch_seconds(arch: str, dataset: str, data: dict, device: str, passes: int = 1) -> float:
    """Estimated seconds of one training epoch (with its validation and flow measurements) from the table."""
    cost = arch_cost(arch)
    per_10k = cost.gpu_s if device == "gpu" else cost.cpu_s
    positions = DATASET_INPUTS.get(dataset, UNKNOWN_DATASET)[0]
    per_10k = max(per_10k * positions / _positions(arch), MIN_EPOCH_S[device])
    return per_10k * train_examples(dataset, data) / 10_000 * passes * (1 + EVAL_SHARE)


def job_epochs(rule: str, config: dict, wildcards: dict) -> float:
    """Epochs of training (epoch-equivalents) that one job of `rule` can do at most."""
    tr = config["training"]
    if rule == "train_dense":
        return config["dense"]["epochs"]
    if rule == "rewind_point":
        return int(wildcards["epoch"])
    if rule not in ("imp_iteration", "evaluate"):
        raise InfcopError(f"no size for rule '{rule}': known {', '.join(TRAINING_RULES)}")
    method = resolve_method(wildcards["method"], config["methods"][wildcards["method"]], tr)
    if rule == "imp_iteration":
        budget, anneal = float(method.max_epochs), method.recipe.anneal or {}
        extra = anneal["share"] * budget if "share" in anneal else float(anneal.get("epochs", 0))
        return math.ceil(budget + extra)
    # evaluate: every iteration on the test split (a forward pass: about a third of a training step), the
    # ticket, and final_epochs of retraining when asked for
    iterations = method.iterations or config["experiment"]["iterations"]
    test = test_examples(wildcards["dataset"], config["data"])
    train = train_examples(wildcards["dataset"], config["data"])
    return (iterations + 1) * test / max(train, 1) / 3 + tr.get("final_epochs", 0)


# --- the benchmark files of a previous run --------------------------------------------------------------


@dataclass(frozen=True)
class Measured:
    seconds: float
    max_rss_mb: float
    files: int


def read_benchmark(path) -> tuple[float, float] | None:
    """(seconds, max RSS in MB) of a Snakemake benchmark file, the largest over its repeats; None if it
    cannot be read."""
    try:
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh, delimiter="\t"))
        s = max(float(r["s"]) for r in rows)
        rss = max((float(r["max_rss"]) for r in rows if r.get("max_rss") not in (None, "", "NA", "-")),
                  default=0.0)
        return s, rss
    except (OSError, KeyError, ValueError, TypeError):
        return None


# each training rule's stage in the results layout (infcop.running.layout), and its job-specific wildcard
STAGES = {"train_dense": ("dense", None), "rewind_point": ("rewind", "epoch"),
          "imp_iteration": ("iteration", "k"), "evaluate": ("evaluate", None)}


def benchmark_patterns(root: str, rule: str, wildcards: dict) -> list[str]:
    """Where a previous run of the same experiment measured this job, most specific first: the job's own
    benchmark file, then those of the same rule for the same data set and architecture (and method)."""
    if rule not in STAGES:
        return []
    stage, own = STAGES[rule]
    w, layout = wildcards, Layout(root)
    k = w.get(own) if own else None
    return [layout.benchmark(w["dataset"], w["arch"], w["seed"], stage, w.get("method"), k),
            layout.benchmark(w["dataset"], w["arch"], "*", stage, w.get("method"), "*" if rule == "imp_iteration" else k)]


def _recorded_device(root: str, wildcards: dict) -> str | None:
    """The device the run's dense network was trained on ('cpu', 'cuda:0', ...), from its metrics.json."""
    import json

    w = wildcards
    path = Path(Layout(root).dense(w["dataset"], w["arch"], w["seed"])) / METRICS
    try:
        return str(json.loads(path.read_text()).get("device") or "") or None
    except (OSError, ValueError, AttributeError):
        return None


def measured(root: str, rule: str, wildcards: dict, device: str) -> Measured | None:
    """The previous run's measurement of this job (the largest of the most specific files found), or None.
    For a CPU job only a measurement of a run on the CPU counts (one on a GPU would be far too short); a
    GPU job takes any (a CPU measurement is longer, never too short)."""
    if device == "cpu":
        recorded = _recorded_device(root, wildcards)
        if recorded is None or not recorded.startswith("cpu"):
            return None
    import glob

    for pattern in benchmark_patterns(root, rule, wildcards):
        found = [m for m in (read_benchmark(p) for p in sorted(glob.glob(pattern))) if m is not None]
        if found:
            return Measured(max(s for s, _ in found), max(r for _, r in found), len(found))
    return None


# --- the request ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    runtime: int   # minutes (sbatch -t)
    mem_mb: int    # sbatch --mem
    source: str    # "table" or "benchmarks (n files)"


def job_device(config: dict, gpu: bool) -> str:
    """'gpu' when the job gets a GPU (GPU mode and training.device is not cpu), else 'cpu'."""
    return "gpu" if gpu and config["training"].get("device") != "cpu" else "cpu"


def request(rule: str, config: dict, wildcards: dict, attempt: int = 1, gpu: bool = False,
            root: str | None = None) -> Request:
    """Wall time and memory of one job of a training rule: SAFETY x (STARTUP_S + the work) seconds, the work
    from the previous run's benchmark files under `root` when there are any, else from the table; memory
    from the table, or MEM_SAFETY x the measured peak if that is more. Attempt n asks for n times both."""
    if attempt < 1:
        raise InfcopError(f"attempt must be >= 1, not {attempt}")
    device = job_device(config, gpu)
    arch, dataset, data = wildcards["arch"], wildcards["dataset"], config["data"]
    work = job_epochs(rule, config, wildcards) * epoch_seconds(arch, dataset, data, device,
                                                               config["training"].get("passes", 1))
    positions, values = DATASET_INPUTS.get(dataset, UNKNOWN_DATASET)
    data_mb = (train_examples(dataset, data) * 1.2 + test_examples(dataset, data)) * values * 4 * 2 / 1e6
    mem = BASE_MEM_MB[device] + data_mb + arch_cost(arch).mem_mb * max(positions / _positions(arch), 0.1)
    source = "table"
    m = measured(root, rule, wildcards, device) if root else None
    if m is not None:
        work, source = m.seconds, f"benchmarks ({m.files} file{'s' if m.files > 1 else ''})"
        mem = max(mem, m.max_rss_mb)
    runtime = math.ceil(SAFETY * (STARTUP_S + work) / 60)
    mem_mb = math.ceil(MEM_SAFETY * mem / MEM_STEP_MB) * MEM_STEP_MB
    return Request(runtime=runtime * attempt, mem_mb=mem_mb * attempt, source=source)


# --- the profile's GPU or CPU mode, and the GRES a training job asks for ----------------------------------

GPUS_VAR = "INFCOP_SLURM_GPUS"
GRES_VAR = "INFCOP_SLURM_GRES"  # set by the profile for the workflow: the GRES of a training job, "" = none


def gpu_mode(environ=None) -> bool:
    """INFCOP_SLURM_GPUS: unset, empty or 1 = GPU mode (one GPU per training job), 0 = CPU mode."""
    value = (environ if environ is not None else os.environ).get(GPUS_VAR, "").strip()
    if value in ("", "1"):
        return True
    if value == "0":
        return False
    raise InfcopError(f"{GPUS_VAR} must be 0 (CPUs only) or 1 (one GPU per training job; the default), "
                      f"not {value!r}")


def gpu_gres(environ=None) -> str:
    """The GRES string of GPU mode: gpu:1, or gpu:<INFCOP_SLURM_GPU_MODEL>:1."""
    model = (environ if environ is not None else os.environ).get("INFCOP_SLURM_GPU_MODEL", "").strip()
    if model and not re.fullmatch(r"[A-Za-z0-9_.-]+", model):
        raise InfcopError(f"INFCOP_SLURM_GPU_MODEL must be a GPU type such as a100 (letters, digits, '_', '.', "
                          f"'-'), not {model!r}")
    return f"gpu:{model}:1" if model else "gpu:1"


def gres(config: dict, environ=None) -> str | None:
    """What a training job asks SLURM for besides CPUs: the profile's GRES (INFCOP_SLURM_GRES) unless the
    experiment trains on the CPU; None (no --gres) without the profile, in CPU mode, or with device cpu."""
    value = (environ if environ is not None else os.environ).get(GRES_VAR, "").strip()
    if not value or config["training"].get("device") == "cpu":
        return None
    return value


# --- one knob per rule ------------------------------------------------------------------------------------

OVERRIDE = re.compile(r"INFCOP_SLURM_(RUNTIME|MEM_MB)_(.*)")
OVERRIDE_UNITS = {"RUNTIME": "minutes", "MEM_MB": "MB"}
PROFILE_VARS = ("INFCOP_SLURM_PARTITION", "INFCOP_SLURM_ACCOUNT", "INFCOP_SLURM_GPU_MODEL", "INFCOP_SLURM_GROUPS",
                "INFCOP_SLURM_STATUS", "INFCOP_SLURM_POLL_SECONDS", GPUS_VAR, GRES_VAR)


def parse_overrides(environ=None, rules=RULES) -> dict[str, dict[str, int]]:
    """{rule: {"runtime"|"mem_mb": value}} from INFCOP_SLURM_RUNTIME_<rule> (minutes) and
    INFCOP_SLURM_MEM_MB_<rule> (MB); an empty value is no override. A value that is not a positive whole
    number, an unknown rule, or any other INFCOP_SLURM_ variable the profile does not know is refused,
    naming the variable and what is allowed."""
    environ = environ if environ is not None else os.environ
    out: dict[str, dict[str, int]] = {}
    for name in sorted(environ):
        if not name.startswith("INFCOP_SLURM_") or name in PROFILE_VARS:
            continue
        m = OVERRIDE.fullmatch(name)
        if not m:
            raise InfcopError(f"{name} is not a variable of the SLURM profile (a typo?); known: "
                              f"{', '.join(PROFILE_VARS[:-1])}, INFCOP_SLURM_RUNTIME_<rule>, "
                              "INFCOP_SLURM_MEM_MB_<rule>")
        kind, rule = m.groups()
        if rule not in rules:
            raise InfcopError(f"{name}: no rule '{rule}'; rules: {', '.join(rules)} "
                              f"(e.g. INFCOP_SLURM_{kind}_imp_iteration)")
        value = environ[name].strip()
        if not value:
            continue
        if not re.fullmatch(r"\d+", value) or int(value) < 1:
            raise InfcopError(f"{name} must be a whole number of {OVERRIDE_UNITS[kind]} >= 1, not {value!r}")
        out.setdefault(rule, {})[kind.lower()] = int(value)
    return out


def describe(rule: str, req: Request) -> str:
    return f"{rule} {req.runtime} min {req.mem_mb} MB ({req.source})"


def start_line(config: dict, root: str) -> str:
    """What the training rules ask for, said once at the start of a run under the SLURM profile: per data set
    and architecture, the largest first-attempt request over the experiment's methods."""
    exp, asked = config["experiment"], gres(config)
    device = job_device(config, asked is not None)
    why = (f"GPU {asked}" if device == "gpu" else "CPUs only (training.device: cpu)"
           if config["training"].get("device") == "cpu" else f"CPUs only ({GPUS_VAR}=0)")
    parts = []
    for dataset in exp["datasets"]:
        for arch in exp["archs"]:
            run = {"dataset": dataset, "arch": arch, "seed": str(exp["seeds"][0])}
            jobs = {"train_dense": [run],
                    "imp_iteration": [{**run, "method": m, "k": "1"} for m in exp["methods"]],
                    "evaluate": [{**run, "method": m} for m in exp["methods"]]}
            for rule, wildcards in jobs.items():
                reqs = [request(rule, config, w, 1, gpu=asked is not None, root=root) for w in wildcards]
                parts.append(f"{dataset}/{arch} " + describe(rule, max(reqs, key=lambda r: (r.runtime, r.mem_mb))))
    return (f"infcop SLURM requests ({why}; first attempt, attempt n asks n x; a group asks for the sum of its "
            "jobs' runtimes): " + "; ".join(parts))

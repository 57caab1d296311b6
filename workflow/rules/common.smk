# The experiment (resolved and checked once), wildcard constraints, paths (from infcop.running.layout) and the
# input functions shared by the rules.
import functools
import os
import shutil
import sys

from infcop import InfcopError
from infcop.running import cluster as infcop_cluster
from infcop.running import layout as L
from infcop.running.checkpoints import save_text
from infcop.showing.plots import FIGURES, figure_outputs
from infcop.experiments.method import resolve_method
from infcop.science.data import DATASETS
from infcop.experiments.experiment import (
    RECORD,
    check_source,
    claim_root,
    config_stage_settings,
    key_of,
    record_text,
    resolve,
    root_of,
    source_of,
)
from infcop.science.plugins import load as load_plugins
from infcop.experiments.schema import validate_config
from infcop.judging import tables as infcop_tables

try:
    load_plugins()  # your own pruners, stop criteria, ... (INFCOP_PLUGINS) before the config is checked
    # infcop's checks come first: their messages name the key, the bad value and what is allowed; the
    # schema (generated from the registries, plugins included) is the second net. Duplicate YAML keys
    # are refused; an experiment file given with --configfile is not merged over config.yaml.
    _experiment = resolve(
        [str(f) for f in workflow.config_settings.configfiles], dict(workflow.config_settings.config), check=False
    )
    try:
        from infcop.experiments.config import check_config

        check_config(_experiment)  # a relative data_dir is taken from the working directory, where jobs run
    except (TypeError, KeyError, AttributeError):
        pass  # a structural problem: the schema names it
    validate_config(_experiment)
    # one results root, one configuration file: a copy of config.yaml never overwrites the default results
    _SOURCE = source_of([str(f) for f in workflow.config_settings.configfiles])
    check_source(root_of(_experiment), _SOURCE)
except InfcopError as exc:
    sys.exit(f"infcop: invalid config: {exc}")
config.clear()
config.update(_experiment)

# Rules call the `infcop` command. Snakemake run as .venv/bin/snakemake, without the environment
# activated, still finds the one installed beside the interpreter running this workflow.
_bin = os.path.dirname(sys.executable)
if shutil.which("infcop") is None and os.path.exists(os.path.join(_bin, "infcop")):
    os.environ["PATH"] = _bin + os.pathsep + os.environ.get("PATH", "")

EXP = config["experiment"]
METHODS = {m: config["methods"][m] for m in EXP["methods"]}
K = EXP["iterations"]
LAYOUT = L.Layout(root_of(config))
W = ("{dataset}", "{arch}", "{seed}")  # the wildcards of one run
DENSE = LAYOUT.dense(*W)
RUN_DIR = LAYOUT.method(*W, "{method}")
ITERATION = LAYOUT.iteration(*W, "{method}", "{k}")
# The experiment as resolved, recorded when a run starts (Snakefile's onstart: not in dry runs or lint):
# every job reads its settings from it (short command lines) and checks them against the key
# Snakemake planned it with.
EXPERIMENT_RECORD = f"{LAYOUT.root}/{RECORD}"


def drop_finished_checkpoints():
    """After a successful run (main Snakemake only: jobs run with --no-hooks): finished stages'
    final epoch checkpoints go (see infcop.running.layout.drop_finished_checkpoints)."""
    L.drop_finished_checkpoints(LAYOUT.root)


_WARM_START = None


def start_warm_start():
    """Local runs: one process imports torch once and forks each job (infcop.running.warm_start); jobs on a
    cluster start as usual. INFCOP_WARM_START=off turns it off."""
    global _WARM_START
    if workflow.local_exec and not workflow.remote_exec and not workflow.subprocess_exec:
        from infcop.running import warm_start

        # notices: a refusal of a kind of job (another installation, a GPU) is said once on Snakemake's output
        _WARM_START = warm_start.start(os.path.join(".snakemake", "infcop", "warm-start.log"), notices=sys.stderr)


def show_progress_lines():
    """Local runs print one line per finished job (infcop.running.progress) unless --printshellcmds or --verbose."""
    if workflow.local_exec and not workflow.remote_exec and not workflow.subprocess_exec:
        import logging
        from infcop.running import progress

        settings = workflow.output_settings
        progress.install(
            logging.getLogger("snakemake.logging"), printshellcmds=settings.printshellcmds, verbose=settings.verbose
        )


def stop_warm_start():
    from infcop.running import warm_start

    warm_start.stop(_WARM_START)


def record_experiment():
    claim_root(LAYOUT.root, _SOURCE)
    text = record_text(config)
    if not os.path.exists(EXPERIMENT_RECORD) or open(EXPERIMENT_RECORD).read() != text:
        save_text(text, EXPERIMENT_RECORD)


wildcard_constraints:
    dataset="|".join(DATASETS.names()),
    arch=r"(torchvision:)?[A-Za-z0-9_][A-Za-z0-9_.-]*",
    method=r"[A-Za-z0-9_][A-Za-z0-9_.-]*",
    seed=r"\d+",
    k=r"\d+",
    epoch=r"\d+",
    figure="|".join(f for f, spec in FIGURES.items() if spec.pngs == "first"),


def logged(command):
    """The shell of a job that runs `command` with its output in the job's log. Snakemake deletes a job's
    log before every attempt, so each attempt also appends its output, under a header, to
    '<log>.attempts', a file Snakemake does not know and never deletes: a retried or rerun job keeps the
    logs of the attempts that failed or were killed. The exit status is the command's (pipefail)."""
    header = 'echo "=== attempt started $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -n) ===" >> {log:q}.attempts'
    return f"{header}; {command} 2>&1 | tee -a {{log:q}}.attempts > {{log:q}}"


def stage_key(stage):
    """Params value of a stage: the hash of the settings that can change its numbers (only those
    trigger a rerun), passed to the job as --expect."""
    return lambda wc: key_of(config_stage_settings(config, stage, getattr(wc, "method", None)))


@functools.lru_cache(maxsize=None)
def method_of(name):
    """The method `name`, resolved once (infcop.experiments.method): what the rules plan from."""
    return resolve_method(name, config["methods"][name], config["training"])


def rewind_input(wildcards):
    """The dense network after k epochs, for a method that rewinds there ({epoch: k}); else nothing."""
    k = method_of(wildcards.method).recipe.rewind_epoch
    return [f"{LAYOUT.dense(wildcards.dataset, wildcards.arch, wildcards.seed)}/{L.rewind_file(k)}"] if k else []


def runs():
    return LAYOUT.runs(EXP)


def previous_model(wildcards):
    w = (wildcards.dataset, wildcards.arch, wildcards.seed)
    return f"{LAYOUT.previous(*w, wildcards.method, int(wildcards.k))}/{L.MODEL}"


def iterations_of(method):
    """A method's IMP iterations: its own (one-shot: 1), else the experiment's."""
    return method_of(method).iterations or K


def iteration_dirs(wildcards):
    return LAYOUT.iterations(
        wildcards.dataset, wildcards.arch, wildcards.seed, wildcards.method, iterations_of(wildcards.method)
    )


def run_files():
    files = []
    for r in runs():
        k_max = iterations_of(os.path.basename(r))
        files += [f"{r}/{L.EVALUATION}", f"{r}/{L.LAYERS}", f"{r}/{L.TICKET_INFO}"]
        files += [f"{r}/{L.iteration_name(k)}/{L.METRICS}" for k in range(1, k_max + 1)]
    return files


TABLES = list(infcop_tables.TABLES)


def planned_figures():
    """The figures this experiment has something to draw in (infcop.showing.plots.plan): no placeholder figure is
    requested, nor shown in the report. Asked for by name, any figure is still drawn."""
    from infcop.experiments.config import settings_of
    from infcop.showing.plots.plan import planned

    return planned(METHODS, settings_of(config), len(EXP["seeds"]))


def all_targets():
    return (
        [f"{LAYOUT.tables}/{t}" for t in TABLES]
        + [f"{LAYOUT.tables}/{L.SUMMARY_HTML}"]
        + [str(p) for f in planned_figures() for p in figure_outputs(f, f"{LAYOUT.figures}/{f}.pdf", EXP["methods"])]
        + [f"{r}/{L.TICKET}" for r in runs()]
    )


# ---- Cluster requests (infcop.running.cluster; docs/slurm.md#resources) -----------------------------------------
# The training rules' wall time and memory, sized to the work: the network, data set and epochs of the job
# (a per-architecture table), or a previous run's benchmark files; attempt n (a resubmission) asks for n
# times the first request. Their GRES: the SLURM profile's GPU (INFCOP_SLURM_GRES, which the profile sets)
# unless the experiment trains on the CPU (training.device: cpu). The profile's per-rule overrides
# (INFCOP_SLURM_RUNTIME_<rule>, INFCOP_SLURM_MEM_MB_<rule>) replace these values.
@functools.lru_cache(maxsize=None)
def _cluster_request(rule_name, wildcards, attempt):
    gpu = infcop_cluster.gres(config) is not None
    return infcop_cluster.request(rule_name, config, dict(wildcards), attempt, gpu=gpu, root=LAYOUT.root)


def cluster_runtime(rule_name):
    return lambda wildcards, attempt: _cluster_request(rule_name, tuple(wildcards.items()), attempt).runtime


def cluster_mem_mb(rule_name):
    return lambda wildcards, attempt: _cluster_request(rule_name, tuple(wildcards.items()), attempt).mem_mb


def cluster_gres(wildcards):
    return infcop_cluster.gres(config)


if infcop_cluster.GRES_VAR in os.environ and workflow.is_main_process:  # under the SLURM profile
    try:
        print(infcop_cluster.start_line(config, LAYOUT.root), file=sys.stderr)
    except InfcopError as exc:
        sys.exit(f"infcop: {exc}")

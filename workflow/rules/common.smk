# Config checks, wildcard constraints, paths and the input functions shared by the rules.
import json
import os
import shutil
import sys

from infcop import InfcopError
from infcop.config import DATASETS, check_config, settings_of, with_defaults
from infcop.cli import FIGURES

from snakemake.utils import validate

try:
    # Defaults are filled in one place (infcop.config.DEFAULTS). infcop's checks come first because
    # their messages name the key, the bad value and what is allowed; the schema is the second net.
    config.update(with_defaults(config))
    check_config(config)  # a relative data_dir is taken from the working directory, where jobs run
except InfcopError as exc:
    sys.exit(f"infcop: invalid config: {exc}")
except (TypeError, KeyError, AttributeError):
    pass  # a structural problem: the schema below names it
validate(config, "../schemas/config.schema.yaml")

# Rules call the `infcop` command. Snakemake run as .venv/bin/snakemake, without the environment
# activated, still finds the one installed beside the interpreter running this workflow.
_bin = os.path.dirname(sys.executable)
if shutil.which("infcop") is None and os.path.exists(os.path.join(_bin, "infcop")):
    os.environ["PATH"] = _bin + os.pathsep + os.environ.get("PATH", "")

EXP = config["experiment"]
METHODS = {m: config["methods"][m] for m in EXP["methods"]}
K = EXP["iterations"]
RUN = "results/{dataset}/{arch}/seed{seed}"


wildcard_constraints:
    dataset="|".join(DATASETS),
    arch=r"(torchvision:)?[A-Za-z0-9_][A-Za-z0-9_.-]*",
    method=r"[A-Za-z0-9_][A-Za-z0-9_.-]*",
    seed=r"\d+",
    k=r"\d+",
    figure="|".join(FIGURES),


def _dumps(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


SETTINGS = settings_of(config)
# The dense stage ignores the retraining keys: changing them must not retrain the dense networks.
DENSE_SETTINGS = {**SETTINGS, "training": {k: v for k, v in SETTINGS["training"].items()
                                           if k not in ("max_epochs", "min_epochs", "final_epochs")}}
SETTINGS_JSON = _dumps(SETTINGS)
DENSE_SETTINGS_JSON = _dumps(DENSE_SETTINGS)


def method_json(wildcards):
    return _dumps(config["methods"][wildcards.method])


def runs():
    return [
        f"results/{d}/{a}/seed{s}/{m}"
        for d in EXP["datasets"]
        for a in EXP["archs"]
        for s in EXP["seeds"]
        for m in EXP["methods"]
    ]


def previous_model(wildcards):
    k = int(wildcards.k)
    if k == 1:
        return f"{RUN}/dense/model.pt".format(**wildcards)
    return f"{RUN}/{{method}}/iter{k - 1}/model.pt".format(**wildcards)


def iteration_dirs(wildcards):
    return [f"{RUN}/{{method}}/iter{k}".format(**wildcards) for k in range(1, K + 1)]


def run_files():
    files = []
    for r in runs():
        files += [f"{r}/evaluation.csv", f"{r}/layers.csv", f"{r}/ticket.json"]
        files += [f"{r}/iter{k}/metrics.json" for k in range(1, K + 1)]
    return files


TABLES = ["iterations.csv", "layers.csv", "epochs.csv", "epoch_layers.csv", "methods.csv", "tickets.csv",
          "summary.csv", "summary.md"]


def all_targets():
    return (
        [f"results/tables/{t}" for t in TABLES]
        + [f"results/figures/{f}.{ext}" for f in FIGURES for ext in ("pdf", "png")]
        + [f"{r}/ticket.pt" for r in runs()]
    )

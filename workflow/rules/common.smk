# Config checks, wildcard constraints, paths and the input functions shared by the rules.
import json
import sys

from infcop import InfcopError
from infcop.config import DATASETS, check_config, settings_of, with_defaults
from infcop.cli import FIGURES

try:
    # defaults filled here, in one place (infcop.config.DEFAULTS), then every meaning-level check
    config.update(with_defaults(config))
    check_config(config)  # relative data_dir: from the working directory, where the jobs run
except InfcopError as exc:
    sys.exit(f"infcop: invalid config: {exc}")

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

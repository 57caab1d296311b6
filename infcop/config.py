"""Meaning-level checks of an experiment config and of one method preset. Cheap to import (no torch):
the Snakefile runs `check_config` at parse time so that bad input fails before any job starts."""
from __future__ import annotations

import re
from pathlib import Path

from . import InfcopError
from .stopping import DISTANCES, normalise_stops

DATASETS = ("digits", "mnist", "fashion_mnist", "cifar10", "cifar100")
BUILTIN_ARCHS = ("mlp", "lenet5", "small_cnn", "vgg11", "vgg16", "resnet20", "resnet18")
PRUNERS = ("magnitude", "sap")
SCOPES = ("global", "layer")
REWINDS = ("dense", "init", "none")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("fp32", "bf16")
SCHEDULES = ("constant", "cosine")
# Names become path parts and shell words: letters, digits, '_', '-', '.', never '..' or a leading '.'.
NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
ARCH = re.compile(r"^(torchvision:)?[A-Za-z0-9_][A-Za-z0-9_.-]*$")


def _fail(key, value, allowed):
    raise InfcopError(f"config key '{key}': bad value {value!r}; allowed: {allowed}")


def _int(key, value, minimum):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        _fail(key, value, f"an integer >= {minimum}")


def _number(key, value, lo=None, hi=None, lo_open=True, hi_open=False, text=""):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        _fail(key, value, f"a number {text}".strip())
    if lo is not None and (value <= lo if lo_open else value < lo):
        _fail(key, value, f"a number {text}".strip())
    if hi is not None and (value >= hi if hi_open else value > hi):
        _fail(key, value, f"a number {text}".strip())


def check_name(key, value, pattern=NAME):
    if not isinstance(value, str) or not pattern.match(value) or ".." in value:
        _fail(key, value, "a name of letters, digits, '_', '-' and '.' (no '..', no leading '.', no spaces)")


def check_sap(p, q, eta=0.0, gamma=1.0, beta=0.9, key="pruner"):
    _number(f"{key}.p", p, 0, text="> 0")
    _number(f"{key}.q", q, 0, text="> 0")
    if not p < q:
        raise InfcopError(f"config key '{key}': p must be < q (the PQ index needs p < q), got p={p}, q={q}")
    _number(f"{key}.eta", eta, 0, lo_open=False, text=">= 0")
    _number(f"{key}.gamma", gamma, 0, text="> 0")
    _number(f"{key}.beta", beta, 0, 1, text="in (0, 1]")


METHOD_KEYS = ("pruner", "stop", "rewind", "max_epochs", "min_epochs", "lr", "description")
PRUNER_KEYS = {"magnitude": ("name", "rate", "scope"), "sap": ("name", "p", "q", "eta", "gamma", "beta", "scope")}
RESERVED = ("dense", "tables", "figures", "logs", "benchmarks")


def check_method(name: str, method: dict) -> dict:
    """Check one preset and return it with defaults filled in."""
    key = f"methods.{name}"
    check_name(key, name)
    if name in RESERVED:
        _fail("methods", name, f"any name but {', '.join(RESERVED)} (they are result folders)")
    if not isinstance(method, dict):
        _fail(key, method, "a mapping with 'pruner' and 'stop'")
    unknown = sorted(set(method) - set(METHOD_KEYS))
    if unknown:
        raise InfcopError(f"config key '{key}.{unknown[0]}' is unknown (a typo?); allowed: {', '.join(METHOD_KEYS)}")
    for required in ("pruner", "stop"):
        if required not in method:
            raise InfcopError(f"config key '{key}': missing required key '{required}'")
    pruner = dict(method["pruner"]) if isinstance(method["pruner"], dict) else None
    if pruner is None or pruner.get("name") not in PRUNERS:
        got = pruner.get("name") if pruner else method["pruner"]
        _fail(f"{key}.pruner.name", got, ", ".join(PRUNERS))
    allowed = PRUNER_KEYS[pruner["name"]]
    unknown = sorted(set(pruner) - set(allowed))
    if unknown:
        raise InfcopError(f"config key '{key}.pruner.{unknown[0]}' is unknown (a typo?); allowed for "
                          f"{pruner['name']}: {', '.join(allowed)}")
    pruner.setdefault("scope", "layer")
    if pruner["scope"] not in SCOPES:
        _fail(f"{key}.pruner.scope", pruner["scope"], ", ".join(SCOPES))
    if pruner["name"] == "magnitude":
        if "rate" not in pruner:
            raise InfcopError(f"config key '{key}.pruner': missing required key 'rate'")
        _number(f"{key}.pruner.rate", pruner["rate"], 0, 1, hi_open=True, text="in (0, 1)")
    else:
        for k in ("p", "q"):
            if k not in pruner:
                raise InfcopError(f"config key '{key}.pruner': missing required key '{k}'")
        pruner.setdefault("eta", 0.0)
        pruner.setdefault("gamma", 1.0)
        pruner.setdefault("beta", 0.9)
        check_sap(pruner["p"], pruner["q"], pruner["eta"], pruner["gamma"], pruner["beta"], f"{key}.pruner")
    try:
        stops = normalise_stops(method["stop"])
    except InfcopError as exc:
        raise InfcopError(f"config key '{key}.stop': {exc}") from None
    out = dict(method, pruner=pruner, stop=stops)
    out.setdefault("rewind", "dense")
    if out["rewind"] not in REWINDS:
        _fail(f"{key}.rewind", out["rewind"], ", ".join(REWINDS))
    for k, minimum in (("max_epochs", 1), ("min_epochs", 0)):
        if k in out:
            _int(f"{key}.{k}", out[k], minimum)
    if "lr" in out:
        _number(f"{key}.lr", out["lr"], 0, text="> 0")
    return out


def check_settings(s: dict) -> None:
    """The run-wide settings (data, dense, training, flows) as passed to every command."""
    data, dense, tr, fl = s["data"], s["dense"], s["training"], s["flows"]
    for k, v in (("data.download", data["download"]), ("training.nesterov", tr["nesterov"]),
                 ("training.deterministic", tr["deterministic"])):
        if not isinstance(v, bool):
            _fail(k, v, "true or false")
    if not isinstance(data["data_dir"], str) or not data["data_dir"]:
        _fail("data.data_dir", data["data_dir"], "a directory path")
    _number("data.val_fraction", data["val_fraction"], 0, 1, hi_open=True, text="in (0, 1)")
    _int("dense.epochs", dense["epochs"], 1)
    for k, minimum in (("batch_size", 1), ("max_epochs", 1), ("min_epochs", 0), ("final_epochs", 0)):
        _int(f"training.{k}", tr[k], minimum)
    _number("training.lr", tr["lr"], 0, text="> 0")
    _number("training.momentum", tr["momentum"], 0, 1, lo_open=False, hi_open=True, text="in [0, 1)")
    _number("training.weight_decay", tr["weight_decay"], 0, lo_open=False, text=">= 0")
    for k, allowed in (("schedule", SCHEDULES), ("device", DEVICES), ("precision", PRECISIONS)):
        if tr[k] not in allowed:
            _fail(f"training.{k}", tr[k], ", ".join(allowed))
    _int("flows.probe_size", fl["probe_size"], 2)
    _int("flows.batch_size", fl["batch_size"], 1)
    if fl["distance"] not in DISTANCES:
        _fail("flows.distance", fl["distance"], ", ".join(DISTANCES))


SETTING_SECTIONS = ("data", "dense", "training", "flows")


def settings_of(config: dict) -> dict:
    return {k: config[k] for k in SETTING_SECTIONS}


def complete_settings(settings: dict) -> dict:
    """Settings with every missing key taken from DEFAULTS; unknown sections or keys are refused."""
    unknown = sorted(set(settings) - set(SETTING_SECTIONS))
    if unknown:
        raise InfcopError(f"settings: unknown section '{unknown[0]}'; allowed: {', '.join(SETTING_SECTIONS)}")
    out = {}
    for sec in SETTING_SECTIONS:
        given = settings.get(sec) or {}
        bad = sorted(set(given) - set(DEFAULTS[sec]))
        if bad:
            raise InfcopError(f"config key '{sec}.{bad[0]}' is unknown (a typo?); allowed in '{sec}': "
                              f"{', '.join(DEFAULTS[sec])}")
        out[sec] = {**DEFAULTS[sec], **given}
    check_settings(out)
    return out


def check_config(config: dict, root: Path | str = ".") -> None:
    """Everything a JSON schema cannot say: ranges, p < q, known names, duplicates, data paths."""
    unknown = sorted(set(config) - set(DEFAULTS))
    if unknown:
        raise InfcopError(f"config key '{unknown[0]}' is unknown (a typo?); allowed top-level keys: "
                          f"{', '.join(DEFAULTS)}")
    for section, default in DEFAULTS.items():
        if section == "methods":
            continue
        if not isinstance(config.get(section), dict):
            _fail(section, config.get(section), "a mapping")
        unknown = sorted(set(config[section]) - set(default))
        if unknown:
            raise InfcopError(f"config key '{section}.{unknown[0]}' is unknown (a typo?); allowed in "
                              f"'{section}': {', '.join(default)}")
    exp = config["experiment"]
    for k in ("datasets", "archs", "seeds", "methods"):
        if not isinstance(exp[k], list):
            _fail(f"experiment.{k}", exp[k], "a list")
    if not isinstance(config["methods"], dict):
        _fail("methods", config["methods"], "a mapping of method name -> preset")
    for k, known in (("datasets", DATASETS),):
        for v in exp[k]:
            if v not in known:
                _fail(f"experiment.{k}", v, ", ".join(known))
    for v in exp["archs"]:
        check_name("experiment.archs", v, ARCH)
        if not v.startswith("torchvision:") and v not in BUILTIN_ARCHS:
            _fail("experiment.archs", v, ", ".join(BUILTIN_ARCHS) + ", or torchvision:<model name>")
    for k in ("datasets", "archs", "seeds", "methods"):
        if not exp[k]:
            _fail(f"experiment.{k}", exp[k], "a non-empty list")
        dupes = sorted({str(v) for v in exp[k] if exp[k].count(v) > 1})
        if dupes:
            _fail(f"experiment.{k}", exp[k], f"a list without duplicates (repeated: {', '.join(dupes)})")
    for seed in exp["seeds"]:
        _int("experiment.seeds", seed, 0)
    _int("experiment.iterations", exp["iterations"], 1)
    methods = config.get("methods") or {}
    for m in exp["methods"]:
        if m not in methods:
            _fail("experiment.methods", m, "a preset defined under 'methods': " + ", ".join(methods))
    for name, preset in methods.items():
        check_method(name, preset)
    check_settings(settings_of(config))
    torchvision_sets = [d for d in exp["datasets"] if d != "digits"]
    if torchvision_sets and not config["data"]["download"]:
        data_dir = Path(root) / config["data"]["data_dir"]
        if not data_dir.is_dir() or not any(data_dir.iterdir()):
            raise InfcopError(
                f"config key 'data.data_dir': '{config['data']['data_dir']}' is missing or empty, but "
                f"datasets {', '.join(torchvision_sets)} are read from it; put the torchvision data sets "
                "there or set data.download: true on a machine with internet access")


DEFAULTS = {
    "experiment": {"datasets": ["digits"], "archs": ["small_cnn"], "seeds": [0], "methods": ["lth"],
                   "iterations": 5},
    "data": {"data_dir": "data", "download": False, "val_fraction": 0.15},
    "dense": {"epochs": 15},
    "training": {"batch_size": 64, "lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4,
                 "schedule": "constant", "max_epochs": 10, "min_epochs": 1, "final_epochs": 0,
                 "device": "auto", "precision": "fp32", "deterministic": False},
    "flows": {"probe_size": 256, "batch_size": 256, "distance": "l2"},
    "methods": {},
}


def with_defaults(config: dict) -> dict:
    """A copy of `config` with every missing key of DEFAULTS filled in (one level of sections)."""
    out = {}
    for section, default in DEFAULTS.items():
        given = config.get(section)
        if isinstance(default, dict) and section != "methods":
            out[section] = {**default, **(given or {})}
        else:
            out[section] = given if given is not None else default
    for k, v in config.items():
        out.setdefault(k, v)
    return out


def load_config(path) -> dict:
    import yaml

    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise InfcopError(f"config file '{path}' does not exist") from None
    except yaml.YAMLError as exc:
        raise InfcopError(f"config file '{path}' is not valid YAML: {exc}") from None
    unknown = sorted(set(raw) - set(DEFAULTS))
    if unknown:
        raise InfcopError(f"config file '{path}': unknown top-level keys {unknown}; allowed: {', '.join(DEFAULTS)}")
    config = with_defaults(raw)
    check_config(config)  # data_dir is relative to where the command runs, as in the workflow
    return config

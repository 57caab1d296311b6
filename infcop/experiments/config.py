"""Meaning-level checks of an experiment config and of one method preset, read from the registries and
the settings spec (infcop.experiments.settings_spec), and the config completed with its defaults. Cheap to import (no
torch): the Snakefile runs `check_config` at parse time so that bad input fails before any job starts."""
from __future__ import annotations

import copy
from pathlib import Path

from .. import InfcopError
from ..science.data import DATASETS
from ..running.layout import RESERVED
from ..science.models import ARCHS, allowed_archs
from ..science.pruners import PRUNERS
from ..science.gmp import GmpParam
from ..science.registry import Param
from .settings_spec import (ARCH, DEFAULTS, METHOD_KEYS, METHOD_PARAMS, NAME, SETTING_SECTIONS, SETTINGS,
                            rewind_epoch)
from ..science.stopping import normalise_stops


def _fail(key, value, allowed):
    raise InfcopError(f"config key '{key}': bad value {value!r}; allowed: {allowed}")


def check_name(key, value, pattern=NAME):
    if not isinstance(value, str) or not pattern.match(value) or ".." in value:
        _fail(key, value, "a name of letters, digits, '_', '-' and '.' (no '..', no leading '.', no spaces)")


def check_method(name: str, method: dict) -> dict:
    """Check one preset and return it with defaults filled in (pruner and stop parameters included)."""
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
    out = dict(method, pruner=PRUNERS.resolve(f"{key}.pruner", method["pruner"]),
               stop=normalise_stops(method["stop"], f"{key}.stop"))
    for p in METHOD_PARAMS:
        if p.name in out:
            p.check(f"{key}.{p.name}", out[p.name])
    out.setdefault("rewind", "dense")
    _check_recipe(key, out)
    _check_pruner(key, out)
    return out


def _check_pruner(key: str, m: dict) -> None:
    """A target list as long as the method's iterations (when the preset says them); no pruner that needs data
    or the iteration under a criterion that re-runs it every epoch."""
    from ..science.pruning_targets import check_target_length
    from ..science.stopping import criteria_of, mask_window

    pruner = m["pruner"]
    if pruner.get("target") is not None and "iterations" in m:
        check_target_length(f"{key}.pruner.target", pruner["target"], m["iterations"])
    why = ("scores the network on data" if PRUNERS.get(pruner["name"]).info.get("needs_model")
           else "has a target, which depends on the iteration" if pruner.get("target") is not None else None)
    if why and mask_window(criteria_of(m["stop"])):
        fit = ", ".join(e.name for e in PRUNERS if not e.info.get("needs_model"))
        raise InfcopError(f"config key '{key}.stop': a criterion that reads would-be masks (mask_stable) re-runs the "
                          f"method's pruner every epoch, and pruner '{pruner['name']}' {why}; allowed: such a "
                          f"criterion with a pruner among {fit} and without 'target'")


def _check_gmp(key: str, m: dict) -> None:
    """Gradual pruning trains once to a final fraction: one iteration, the budget alone, a pruner that ranks
    the current weights and takes a one-entry target list."""
    from ..science.stopping import criteria_of

    m["gmp"] = GmpParam("gmp", "choice").resolved(f"{key}.gmp", m["gmp"])
    if m.get("iterations") != 1:
        _fail(f"{key}.iterations", m.get("iterations"), "1 with gmp (it prunes during one training)")
    if not all(c.name == "budget" for c in criteria_of(m["stop"])):
        _fail(f"{key}.stop", m["stop"], "[budget] with gmp (its length is its budget)")
    entry = PRUNERS.get(m["pruner"]["name"])
    target = m["pruner"].get("target")
    if entry.info.get("needs_model") or "target" not in entry.param_names():
        _fail(f"{key}.pruner.name", m["pruner"]["name"], "a pruner that ranks the current weights and takes a "
              "target, with gmp: " + ", ".join(e.name for e in PRUNERS if "target" in e.param_names()
                                                and not e.info.get("needs_model")))
    if not (isinstance(target, list) and len(target) == 1):
        _fail(f"{key}.pruner.target", target, "[r_f] with gmp: the remaining fraction after the training")


def _check_recipe(key: str, m: dict) -> None:
    """Refuse what would be silently ignored or meaningless in a retraining recipe."""
    from ..science.schedules import resolve_schedule
    from ..science.stopping import criteria_of, restore_metric

    sched = resolve_schedule(f"{key}.schedule", m["schedule"])["name"] if "schedule" in m else None
    if sched == "replay" and "lr" in m:
        _fail(f"{key}.lr", m["lr"], "no 'lr' with schedule: replay (it replays the dense run's rates)")
    if m.get("lr") == "allr" and m["rewind"] != "none":
        _fail(f"{key}.lr", "allr", "'allr' only with rewind: none (ALLR sets the rate from how far the prune "
              f"moved the trained weights; rewind {m['rewind']!r} discards them), or a number, or final")
    if "gmp" in m:
        _check_gmp(key, m)
    if "anneal_on_stop" in m:
        crits = criteria_of(m["stop"])
        if all(c.name == "budget" for c in crits):
            _fail(f"{key}.anneal_on_stop", m["anneal_on_stop"], "a stop criterion besides budget to anneal after "
                  "(a fixed budget already ends where its schedule does)")
        if restore_metric(crits):
            _fail(f"{key}.anneal_on_stop", m["anneal_on_stop"], "no anneal_on_stop with a criterion that restores "
                  "its best epoch (patience)")
        a = m["anneal_on_stop"]
        m["anneal_on_stop"] = a if isinstance(a, dict) else {"epochs": a}


def check_settings(s: dict) -> None:
    """The run-wide settings (data, dense, training, flows) as passed to every command."""
    for sec, params in SETTINGS.items():
        for p in params:
            p.check(f"{sec}.{p.name}", s[sec][p.name])
    if not s["data"]["data_dir"]:
        _fail("data.data_dir", s["data"]["data_dir"], "a directory path")


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


def _check_experiment(exp: dict) -> None:
    if exp.get("name") is not None:
        check_name("experiment.name", exp["name"])
        if exp["name"] in RESERVED or exp["name"] in DATASETS:
            _fail("experiment.name", exp["name"], "any name but a data set's or "
                  f"{', '.join(RESERVED)} (they are folders of the default experiment's results)")
    for k in ("datasets", "archs", "seeds", "methods"):
        if not isinstance(exp[k], list):
            _fail(f"experiment.{k}", exp[k], "a list")
    for v in exp["datasets"]:
        if v not in DATASETS:
            _fail("experiment.datasets", v, ", ".join(DATASETS.names()))
    for v in exp["archs"]:
        check_name("experiment.archs", v, ARCH)
        if not v.startswith("torchvision:") and v not in ARCHS:
            _fail("experiment.archs", v, allowed_archs())
    for k in ("datasets", "archs", "seeds", "methods"):
        if not exp[k]:
            _fail(f"experiment.{k}", exp[k], "a non-empty list")
        dupes = sorted({str(v) for v in exp[k] if exp[k].count(v) > 1})
        if dupes:
            _fail(f"experiment.{k}", exp[k], f"a list without duplicates (repeated: {', '.join(dupes)})")
    _check_signals(exp)
    for seed in exp["seeds"]:
        Param("seeds", "integer", lo=0).check("experiment.seeds", seed)
    Param("iterations", "integer", lo=1).check("experiment.iterations", exp["iterations"])


def _check_signals(exp: dict) -> None:
    """Every arch takes every data set's inputs: networks of images for image sets, of 1-D signals for 1-D."""
    from ..science.models import arch_signal

    kinds = {1: "1-D signals", 2: "images"}
    for d in exp["datasets"]:
        signal = DATASETS.get(d).info.get("signal", 2)
        for a in exp["archs"]:
            if arch_signal(a) != signal:
                fitting = [n for n in ARCHS.names() if ARCHS.get(n).info.get("signal", 2) == signal]
                _fail("experiment.archs", a, f"architectures for {kinds[signal]}, as data set '{d}' holds "
                      f"({', '.join(fitting)}); '{a}' takes {kinds[arch_signal(a)]}")


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
    if not isinstance(config["methods"], dict):
        _fail("methods", config["methods"], "a mapping of method name -> preset")
    exp = config["experiment"]
    _check_experiment(exp)
    methods = config.get("methods") or {}
    for m in exp["methods"]:
        if m not in methods:
            _fail("experiment.methods", m, "a preset defined under 'methods': " + ", ".join(methods))
    for name, preset in methods.items():
        checked = check_method(name, preset)
        if checked["pruner"].get("target") is not None and "iterations" not in preset:
            from ..science.pruning_targets import check_target_length
            check_target_length(f"methods.{name}.pruner.target", checked["pruner"]["target"], exp["iterations"])
        k = rewind_epoch(checked)
        if k is not None and k > config["dense"]["epochs"]:
            _fail(f"methods.{name}.rewind", preset["rewind"], f"{{epoch: k}} with k <= dense.epochs "
                  f"({config['dense']['epochs']}): the dense network's state after k of its epochs")
    check_settings(settings_of(config))
    check_sizes(config)
    file_sets = [d for d in exp["datasets"] if not DATASETS.get(d).info.get("bundled")]
    if file_sets and not config["data"]["download"]:
        data_dir = Path(root) / config["data"]["data_dir"]
        if not data_dir.is_dir() or not any(data_dir.iterdir()):
            raise InfcopError(
                f"config key 'data.data_dir': '{config['data']['data_dir']}' is missing or empty, but "
                f"datasets {', '.join(file_sets)} are read from it; put the torchvision data sets "
                "there or set data.download: true on a machine with internet access")


# Every run derives generator seeds as seed * 1_000_003 + stage * 1009 + epoch (infcop.science.training); below
# this limit they stay under 2**63, inside the 64-bit range torch accepts (2**63 itself overflowed there).
SEED_LIMIT = 2**43


def split_sizes(dataset: str, data: dict | float) -> dict | None:
    """Images in the train, validation and test splits of a registered data set, from its registry info
    (train_size, test_size: numbers, or functions of the `data` settings for a generated set), without
    loading it; None when the data set does not declare its sizes. `data`: the data settings (or just
    val_fraction)."""
    data = data if isinstance(data, dict) else {"val_fraction": data}
    info = DATASETS.get(dataset).info
    if "train_size" not in info:
        return None
    train, test = (v(data) if callable(v) else v for v in (info["train_size"], info.get("test_size")))
    val = int(round(train * data["val_fraction"]))  # as infcop.science.data carves it
    return {"train": train - val, "validation": val, "test": test}


def check_split_sizes(dataset: str, sizes: dict, settings: dict) -> None:
    """The splits of `dataset` (sizes: train, validation, test; test None = unknown) against the settings:
    no empty split, no training batch of a single image, a probe that fits in the training split."""
    train, val, test = sizes["train"], sizes["validation"], sizes.get("test")
    vf = settings["data"]["val_fraction"]
    whole = train + val
    split = f"{dataset}: {train} training and {val} validation images at data.val_fraction {vf:g}"
    if val < 1:
        _fail("data.val_fraction", vf, f"at least {1 / whole:.2g}, so that the validation split is not empty "
              f"({split}; the dense model selection and every stop decision read it)")
    if train < 2:
        _fail("data.val_fraction", vf, f"at most {(whole - 2) / whole:.6g}, so that at least 2 images are left "
              f"to train on ({split})")
    if test is not None and test < 1:
        raise InfcopError(f"data set '{dataset}' declares an empty test split: nothing could be evaluated")
    bs = settings["training"]["batch_size"]
    if bs == 1 or train % bs == 1:
        near = sorted(range(2, train + 1), key=lambda b: (abs(b - bs), b))
        ok = [b for b in near if train % b != 1][:2]
        _fail("training.batch_size", bs, f"a batch size that leaves no training batch of a single image, e.g. "
              f"{' or '.join(map(str, sorted(ok)))} ({split}, so {'every' if bs == 1 else 'the last'} batch would "
              "hold 1 image; batch-norm networks cannot train on one image, so it is refused for every "
              "architecture)")
    probe = settings["flows"]["probe_size"]
    if probe > train:
        _fail("flows.probe_size", probe, f"at most {train}: the probe is drawn from the training split ({split})")


def check_sizes(config: dict) -> None:
    """Every size before any job: seeds in range, min_epochs <= max_epochs (run-wide and for every preset,
    overrides included), and each data set's splits against the batch and probe sizes (data sets that do
    not declare their sizes are skipped)."""
    for seed in config["experiment"]["seeds"]:
        if seed >= SEED_LIMIT:
            _fail("experiment.seeds", seed, f"integers in [0, 2**43) = [0, {SEED_LIMIT}) (seeds derive generator "
                  "seeds seed x 1000003 + ..., which must stay below 2**63)")
    tr = config["training"]
    if tr["min_epochs"] > tr["max_epochs"]:
        _fail("training.min_epochs", tr["min_epochs"], f"at most training.max_epochs ({tr['max_epochs']}): "
              "retraining always ends at max_epochs")
    for name, preset in (config.get("methods") or {}).items():
        lo, hi = preset.get("min_epochs", tr["min_epochs"]), preset.get("max_epochs", tr["max_epochs"])
        if lo > hi:
            lo_from = f"methods.{name}.min_epochs" if "min_epochs" in preset else "training.min_epochs"
            hi_from = f"methods.{name}.max_epochs" if "max_epochs" in preset else "training.max_epochs"
            raise InfcopError(f"method '{name}': min_epochs {lo} (from {lo_from}) is larger than max_epochs {hi} "
                              f"(from {hi_from}); retraining always ends at max_epochs; allowed: min_epochs <= "
                              "max_epochs")
    for dataset in config["experiment"]["datasets"]:
        sizes = split_sizes(dataset, config["data"])
        if sizes is not None:
            check_split_sizes(dataset, sizes, settings_of(config))


def with_defaults(config: dict) -> dict:
    """A copy of `config` with every missing key of DEFAULTS filled in (one level of sections)."""
    out = {}
    for section, default in DEFAULTS.items():
        given = config.get(section)
        if isinstance(default, dict) and section != "methods":
            out[section] = {**default, **(given or {})}
        else:
            out[section] = given if given is not None else copy.deepcopy(default)
    for k, v in config.items():
        out.setdefault(k, v)
    return out

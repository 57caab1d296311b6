"""An experiment: one config, complete on its own, resolved once and recorded in its own results root.

- `read_yaml` refuses duplicate keys (naming both lines) and anything but a mapping at the top.
- `resolve` builds the experiment from its files (the given experiment files, or config.yaml when none
  is given: an experiment file is never merged over config.yaml), command-line overrides and the
  defaults, and checks it.
- `root_of` names its results root: `results/` for the default experiment (config.yaml), `results/<name>/`
  for any other (its `experiment.name`, else its file's stem), and `check_source` / `claim_root` keep a
  root to the configuration file that made it, so two experiments never write each other's tables.
- `stage_settings` is the part of the config that can change a stage's numbers. Only it enters the
  stage's Snakemake params and its resume fingerprint: paths, the device, labels and thread counts
  do not, so changing them reruns nothing."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from .. import InfcopError

DEFAULT_FILE = "config.yaml"
DEFAULT_NAME = "default"
RECORD = "experiment.yaml"  # the resolved config, written once per run into the experiment's root
SOURCE = "experiment.source"  # which configuration file(s) made a results root: no other may write there

# Settings that say how or where a result is computed, never what it is.
NOT_RESULT_DEFINING = {"data": ("data_dir", "download"), "training": ("device", "deterministic")}
# Retraining keys the dense stage never reads: changing them must not retrain the dense networks.
RETRAINING_ONLY = ("max_epochs", "min_epochs", "final_epochs")


def read_yaml(path) -> dict:
    """A YAML mapping; duplicate keys are refused with both line numbers."""
    import yaml

    class StrictLoader(yaml.SafeLoader):
        pass

    def mapping(loader, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=deep)
            if key in seen:
                raise InfcopError(f"config file '{path}': key '{key}' appears twice (lines {seen[key]} and "
                                  f"{key_node.start_mark.line + 1}); keep one")
            seen[key] = key_node.start_mark.line + 1
        return loader.construct_mapping(node, deep=deep)

    StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise InfcopError(f"config file '{path}' does not exist") from None
    except (IsADirectoryError, UnicodeDecodeError, PermissionError) as exc:
        raise InfcopError(f"config file '{path}' cannot be read: {exc}") from None
    try:
        data = yaml.load(text, Loader=StrictLoader)
    except yaml.YAMLError as exc:
        raise InfcopError(f"config file '{path}' is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InfcopError(f"config file '{path}' must hold a mapping of sections (experiment, data, dense, "
                          f"training, flows, methods), not a {type(data).__name__}")
    return data


def deep_merge(base: dict, update: dict) -> dict:
    """`update` over `base`, mappings merged key by key (as Snakemake merges config files)."""
    out = dict(base)
    for k, v in update.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def resolve(files=(), overrides: dict | None = None, default_file=DEFAULT_FILE, check: bool = True) -> dict:
    """The experiment of `files` (config.yaml when none), with `overrides` on top and defaults filled
    in. Every file is complete on its own: nothing is taken from config.yaml when files are given. The
    experiment's name is its `experiment.name`, else 'default' for the workflow's own config.yaml, else
    the file's stem (a copy of config.yaml under another name is another experiment)."""
    from .config import check_config, with_defaults

    files = [Path(f) for f in files] or [Path(default_file)]
    raw: dict = {}
    for f in files:
        raw = deep_merge(raw, read_yaml(f))
    raw = deep_merge(raw, dict(overrides or {}))
    config = with_defaults(raw)
    _pin_target_iterations(config)
    if isinstance(config.get("experiment"), dict) and not config["experiment"].get("name"):
        stem = files[0].stem
        config["experiment"] = dict(config["experiment"],  # the defaults hold name: None
                                    name=DEFAULT_NAME if _same_file(files[0], default_file) else stem)
    if check:
        check_config(config)
    return config


def _pin_target_iterations(config: dict) -> None:
    """A preset whose pruner has a `target` gets experiment.iterations written in when it sets no `iterations`:
    the target's schedule depends on the count, so the jobs read it from the preset and its stage key (and
    with it the need to rerun) changes with it. Other presets are left as they are."""
    exp, methods = config.get("experiment"), config.get("methods")
    if not isinstance(exp, dict) or not isinstance(methods, dict):
        return  # a structural problem: the checks name it
    config["methods"] = {name: {**p, "iterations": exp.get("iterations")}
                         if isinstance(p, dict) and isinstance(p.get("pruner"), dict) and "target" in p["pruner"]
                         and "iterations" not in p else p for name, p in methods.items()}


def _same_file(a, b) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


def source_of(files=(), default_file=DEFAULT_FILE) -> str:
    """The configuration file(s) an experiment comes from, as recorded in its root: relative to the working
    directory when inside it (the record survives moving the checkout), else absolute."""
    here = os.path.realpath(os.getcwd())
    names = []
    for f in [Path(f) for f in files] or [Path(default_file)]:
        full = os.path.realpath(f)
        relative = os.path.relpath(full, here)
        names.append(full if relative.startswith("..") else relative)
    return "\n".join(names)


def check_source(root: str, source: str, default_file=DEFAULT_FILE) -> None:
    """Refuse (InfcopError, before any job) to write into a results root that another configuration file
    made. A root made before roots recorded their file is taken only by the file that would have made it
    (config.yaml for `results/`, a file of the same stem for `results/<stem>/`)."""
    owner_file = Path(root) / SOURCE
    if owner_file.exists():
        owner = owner_file.read_text().strip()
        if owner == source:
            return
        raise InfcopError(
            f"results root '{root}/' holds the results of {_files(owner)}; {_files(source)} resolves to the same "
            f"root (its experiment.name, or its file name). Give it an experiment.name of its own (it would then "
            f"write under results/<name>/), or, to hand '{root}/' to it, delete '{owner_file}'.")
    if (Path(root) / RECORD).exists():  # results from before roots recorded their file
        first = source.split("\n")[0]
        expected = _same_file(first, default_file) if Path(root) == Path("results") else Path(first).stem == Path(root).name
        if not expected:
            raise InfcopError(
                f"results root '{root}/' holds results made before infcop recorded which configuration file made "
                f"a root, and {_files(source)} would not have made it. Give the experiment an experiment.name of "
                f"its own, or, if '{root}/' is indeed this file's, write its name into '{owner_file}'.")


def claim_root(root: str, source: str) -> None:
    """Record `source` as the maker of `root` (at the start of a run; `check_source` has passed)."""
    from ..running.checkpoints import save_text

    path = Path(root) / SOURCE
    if not path.exists() or path.read_text().strip() != source:
        save_text(source + "\n", str(path))


def _files(source: str) -> str:
    names = source.split("\n")
    return ("configuration file " if len(names) == 1 else "configuration files ") + ", ".join(f"'{n}'" for n in names)


def name_of(config: dict) -> str:
    return config["experiment"].get("name") or DEFAULT_NAME


def root_of(config: dict, results: str = "results") -> str:
    """`results` for the default experiment, `results/<name>` for any other."""
    name = name_of(config)
    return results if name == DEFAULT_NAME else f"{results}/{name}"


def _without(section: dict, keys) -> dict:
    return {k: v for k, v in section.items() if k not in keys}


def stage_settings(settings: dict, stage: str, preset: dict | None = None) -> dict:
    """What can change the numbers of one stage ('dense', 'iteration', 'ticket', 'evaluate' or 'tables'),
    from the run-wide settings and the method's preset (every preset, for 'tables'). Descriptions are
    labels: they never enter."""
    s = {sec: _without(v, NOT_RESULT_DEFINING.get(sec, ())) for sec, v in settings.items() if sec != "compare"}
    if stage == "dense":
        return {**s, "training": _without(s["training"], RETRAINING_ONLY)}
    if stage == "tables":  # preset = every method's preset: the methods table and the comparisons
        return {"methods": {m: _without(p, ("description",)) for m, p in preset.items()},
                "training": {k: s["training"][k] for k in ("max_epochs", "min_epochs")},
                "compare": settings.get("compare", {}), "data": s["data"]}  # the margin; the test split's size
    if stage not in ("iteration", "ticket", "evaluate"):  # evaluate also exports the ticket
        raise ValueError(f"unknown stage '{stage}'")
    if stage == "iteration":
        s["training"] = _without(s["training"], ("final_epochs",))
    return {**s, "method": _without(preset, ("description",))}


def config_stage_settings(config: dict, stage: str, method: str | None = None) -> dict:
    """stage_settings of an experiment config; 'tables' depends on the methods' presets only."""
    from .config import settings_of

    if stage == "tables":
        return stage_settings(settings_of(config), stage,
                              {m: config["methods"][m] for m in config["experiment"]["methods"]})
    return stage_settings(settings_of(config), stage, config["methods"][method] if method else None)


def key_of(settings: dict) -> str:
    """A short, stable hash of a stage's result-defining settings (what `--expect` checks)."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def record_text(config: dict) -> str:
    import yaml

    return ("# The resolved experiment, written by the workflow at the start of every run; the jobs read\n"
            "# their settings from it. Edit the experiment's own config file, not this one.\n"
            + yaml.safe_dump(config, sort_keys=False))

"""The settings spec: every key an experiment config and a method preset may hold, with its type, range,
default and help (the Param tables SETTINGS and METHOD_PARAMS, their DEFAULTS), the name patterns, and the
Param kinds only these keys use (rewind, schedule, optimizer, anneal_on_stop). Data, not checks: the checks
that read it live in infcop.experiments.config, the JSON schema that is generated from it in infcop.experiments.schema. Cheap to
import (no torch)."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ..science.gmp import GmpParam
from ..science.measures import DISTANCES
from ..science.registry import Param, SpecParam

# Names become path parts and shell words: letters, digits, '_', '-', '.', never '..' or a leading '.'.
# \Z, not $: '$' also matches before a trailing newline.
NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*\Z")
ARCH = re.compile(r"^(torchvision:)?[A-Za-z0-9_][A-Za-z0-9_.-]*\Z")
REWINDS = ("dense", "init", "reinit", "none")


class RewindParam(Param):
    """`rewind`: dense | init | reinit (a fresh init from another seed) | none | {epoch: k} (the dense network
    after k epochs: late rewinding)."""

    def valid(self, value) -> bool:
        if isinstance(value, dict):
            k = value.get("epoch")
            return set(value) == {"epoch"} and isinstance(k, int) and not isinstance(k, bool) and k >= 1
        return value in REWINDS

    def allowed(self) -> str:
        return ", ".join(REWINDS) + ", or {epoch: k} with an integer k >= 1"

    def json_schema(self) -> dict:
        return {"oneOf": [{"enum": list(REWINDS)}, {"type": "object", "additionalProperties": False,
                                                    "required": ["epoch"],
                                                    "properties": {"epoch": {"type": "integer", "minimum": 1}}}]}


@dataclass(frozen=True)
class ScheduleParam(SpecParam):
    """A learning-rate schedule: a name or {name: ..., params} of infcop.science.schedules (`dense`: the dense run's,
    which may not replay a dense run)."""
    dense: bool = False

    def resolved(self, key: str, value) -> dict:
        from ..science.schedules import check_dense_schedule, resolve_schedule

        return (check_dense_schedule if self.dense else resolve_schedule)(key, value)

    def names(self) -> list[str]:
        from ..science.schedules import SCHEDULES

        return [e.name for e in SCHEDULES if not (self.dense and e.info.get("needs_dense"))]

    def allowed(self) -> str:
        return f"a schedule name ({', '.join(self.names())}) or a mapping with 'name' and its parameters"

    def json_schema(self) -> dict:
        from ..science.schedules import SCHEDULES

        return {"oneOf": [{"enum": self.names()}, SCHEDULES.json_schema()]}


@dataclass(frozen=True)
class OptimizerParam(SpecParam):
    """An optimizer: a name or {name: ..., params} of infcop.science.optimizers."""

    def resolved(self, key: str, value) -> dict:
        from ..science.optimizers import OPTIMIZERS

        return OPTIMIZERS.resolve(key, value)

    def allowed(self) -> str:
        from ..science.optimizers import OPTIMIZERS

        return f"an optimizer name ({', '.join(OPTIMIZERS.names())}) or a mapping with 'name' and its parameters"

    def json_schema(self) -> dict:
        from ..science.optimizers import OPTIMIZERS

        return {"oneOf": [{"enum": OPTIMIZERS.names()}, OPTIMIZERS.json_schema()]}


class AnnealParam(Param):
    """`anneal_on_stop`: k epochs (a number > 0, fractions allowed) or {share: s}, s in (0, 1]: the share of
    the epochs trained until the stop."""

    def valid(self, value) -> bool:
        if isinstance(value, dict):
            if len(value) != 1 or set(value) - {"share", "epochs"}:
                return False
            (key, v), = value.items()
            return self.valid(v) and (key == "epochs" or v <= 1)
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0

    def allowed(self) -> str:
        return ("a number of epochs > 0, {epochs: k}, or {share: s} with s in (0, 1] (of the epochs trained "
                "until the stop)")

    def json_schema(self) -> dict:
        return {"oneOf": [{"type": "number", "exclusiveMinimum": 0},
                          {"type": "object", "additionalProperties": False, "required": ["epochs"],
                           "properties": {"epochs": {"type": "number", "exclusiveMinimum": 0}}},
                          {"type": "object", "additionalProperties": False, "required": ["share"],
                           "properties": {"share": {"type": "number", "exclusiveMinimum": 0, "maximum": 1}}}]}


def rewind_epoch(method: dict) -> int | None:
    """k of a preset's `rewind: {epoch: k}`, else None."""
    r = method.get("rewind")
    return r["epoch"] if isinstance(r, dict) else None


def rewind_label(rewind) -> str:
    return f"epoch {rewind['epoch']}" if isinstance(rewind, dict) else str(rewind)


# The run-wide settings every command gets, by section: each key's type, range and default.
SETTINGS = {
    "data": (Param("data_dir", "string", "data", help="where torchvision data sets live (and mnist1d is cached)"),
             Param("download", "bool", False), Param("val_fraction", "number", 0.15, lo=0, hi=1, lo_open=True,
                                                     hi_open=True),
             Param("num_samples", "integer", 5000, lo=20,
                   help="mnist1d: samples generated (train 80%, test 20%); 5000 is the package's reference split"),
             Param("seed", "integer", 42, lo=0, words=("per_run",),
                   help="mnist1d: the generator's seed, the same data for every run; per_run: each run seed s "
                        "generates its own data set (generator seed s), so intervals over seeds cover the data")),
    "dense": (Param("epochs", "integer", 15, lo=1),),
    "training": (Param("batch_size", "integer", 64, lo=1), Param("lr", "number", 0.05, lo=0, lo_open=True),
                 Param("momentum", "number", 0.9, lo=0, hi=1, hi_open=True), Param("nesterov", "bool", True),
                 Param("weight_decay", "number", 5e-4, lo=0),
                 OptimizerParam("optimizer", "choice", "sgd",
                                help="sgd (momentum, nesterov, weight_decay above), adam or adamw, or a mapping "
                                     "with 'name' and its parameters"),
                 ScheduleParam("schedule", "choice", "constant", dense=True,
                               help="the dense run's schedule, and every retraining's unless its preset sets one"),
                 Param("max_epochs", "integer", 10, lo=1), Param("min_epochs", "integer", 1, lo=0),
                 Param("final_epochs", "integer", 0, lo=0),
                 Param("device", "choice", "auto", choices=("auto", "cpu", "cuda")),
                 Param("precision", "choice", "fp32", choices=("fp32", "bf16")),
                 Param("deterministic", "bool", False),
                 Param("passes", "integer", 1, lo=1, help="passes over the training split per epoch")),
    "flows": (Param("probe_size", "integer", 256, lo=2), Param("batch_size", "integer", 256, lo=1),
              Param("distance", "choice", "l2", choices=DISTANCES),
              Param("max_positions", "integer", 16, lo=1, help="conv positions per image (CKA, positions mode)"),
              Param("noise_resamples", "integer", 20, lo=2, help="probe half-splits for the noise floors"),
              Param("noise_quantile", "number", 0.95, lo=0, hi=1, lo_open=True)),
    # How the tables judge (never what is trained): the equivalence margin of every verdict, never below
    # one test image.
    "compare": (Param("margin_pp", "number", 0.5, lo=0,
                      help="accuracy differences (pp) within +-margin count as equivalent; the margin used is "
                           "the larger of this and one test image"),
                Param("adjust", "choice", "holm", choices=("holm", "none"),
                      help="the verdicts of a run are one family: Holm's step-down adjustment over it, or none")),
}
SETTING_SECTIONS = tuple(SETTINGS)
# Keys a method preset may have besides pruner and stop: each overrides the run-wide value for it.
METHOD_PARAMS = (RewindParam("rewind", "choice", "dense"),
                 Param("max_epochs", "number", lo=0,
                       help="retraining epochs per iteration; a fraction (e.g. 0.5) trains the last epoch's first "
                            "steps only: a budget between two whole ones, where the control curve is steep"),
                 Param("min_epochs", "integer", lo=0),
                 Param("lr", "number", lo=0, lo_open=True, words=("allr", "final"),
                       help="the retraining's (start) rate; allr: set from how much the prune moved the weights "
                            "(BIMP, needs rewind: none); final: the dense run's last rate (fine-tuning)"),
                 ScheduleParam("schedule", "choice", help="the retraining's learning-rate schedule"),
                 AnnealParam("anneal_on_stop", "number",
                             help="once a stop criterion fires before the schedule ends, train on this many epochs "
                                  "(or {share: s} of those trained) with the rate decaying linearly to 0"),
                 OptimizerParam("optimizer", "choice", help="the retraining's optimizer (default training.optimizer)"),
                 GmpParam("gmp", "choice", help="gradual magnitude pruning during one training (Zhu & Gupta 2017): "
                                                "{start, end, every} of its cubic schedule"),
                 Param("iterations", "integer", lo=1,
                       help="this method's IMP iterations (default: experiment.iterations); 1 with a pruner "
                            "that reaches the final sparsity at once is one-shot pruning"),
                 Param("description", "string"))
METHOD_KEYS = ("pruner", "stop", *(p.name for p in METHOD_PARAMS))

DEFAULTS = {
    "experiment": {"name": None, "datasets": ["digits"], "archs": ["small_cnn"], "seeds": [0],
                   "methods": ["lth"], "iterations": 5},
    **{sec: {p.name: p.default for p in params} for sec, params in SETTINGS.items()},
    # the preset of the default experiment.methods, so that an empty file is a complete experiment
    "methods": {"lth": {"pruner": {"name": "magnitude", "rate": 0.2, "scope": "layer"}, "stop": ["budget"]}},
}

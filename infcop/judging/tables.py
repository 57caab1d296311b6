"""Tidy tables across every run, and the summary a paper would show: their columns and row builders.
The comparisons themselves (matched sparsity, the frontier) are in infcop.judging.compare."""
from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from .. import InfcopError
from ..science.data import DATASETS
from ..running import layout as L
from ..running.checkpoints import load_json, save_text

RUN_KEYS = ["dataset", "arch", "method", "seed"]
ITERATION_COLUMNS = RUN_KEYS + ["iteration", "remaining_weights", "test_accuracy", "val_accuracy", "epochs_trained",
                                "stop_reason", "train_seconds", "flow_seconds", "noise_floor_seconds", "mask_seconds",
                                "flows_charged", "lr_start", "epoch0_val_accuracy", "stopped_early_vs_accuracy",
                                "macs", "dense_macs"]
LAYER_COLUMNS = RUN_KEYS + ["iteration", "metric", "layer", "layer_index", "value"]
EPOCH_COLUMNS = RUN_KEYS + ["iteration", "epoch", "train_loss", "val_accuracy", "info_distance", "abs_distance",
                            "cka_distance", "grad_distance", "mask_distance", "stopped", "stop_reason",
                            "remaining_weights", "lr", "steps", "anneal", "train_seconds", "flow_seconds",
                            "mask_seconds"]
EPOCH_LAYER_COLUMNS = RUN_KEYS + ["iteration", "epoch", "metric", "layer", "layer_index", "value"]
CRITERIA_COLUMNS = RUN_KEYS + ["iteration", "epoch", "criterion", "name", "measure", "form", "value", "threshold",
                               "holds", "status"]
# Per-layer vectors of a network: connectivity per consecutive layer pair, the rest per layer.
LAYER_METRICS = (("connectivity", "pairs"), ("abs_connectivity", "pairs"), ("cka", "layers"), ("gradflow", "layers"),
                 ("similarity", "layers"))
TABLES = ("iterations.csv", "layers.csv", "epochs.csv", "epoch_layers.csv", "criteria.csv", "methods.csv",
          "tickets.csv", "frontier.csv", "summary.csv", "contrasts.csv", "summary.md")


def csv_text(rows: list[dict], columns: list[str]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def _csv(df, path: Path):
    save_text(df.to_csv(index=False, lineterminator="\n"), path)


def layer_rows(base: dict, names: list[str], pairs: list[str], vectors: dict) -> list[dict]:
    """Tidy rows of a network's per-layer vectors (those it has: similarity and CKA need a reference)."""
    labels = {"pairs": pairs, "layers": names}
    rows = []
    for metric, kind in LAYER_METRICS:
        for i, (label, v) in enumerate(zip(labels[kind], vectors.get(metric) or [])):
            rows.append({**base, "metric": metric, "layer": label, "layer_index": i, "value": v})
    return rows


def threshold_columns() -> list[tuple[str, str, str]]:
    """(column, criterion, parameter) for every numeric parameter of every registered stop criterion,
    e.g. ('infoflow_epsilon', 'infoflow', 'epsilon'): the methods table's threshold columns."""
    from ..science.stopping import STOPS

    return [(f"{e.name}_{p.name}", e.name, p.name) for e in STOPS for p in e.params
            if p.kind in ("number", "integer") and (p.required or p.optional)]


def recipe(r, settings: dict | None = None) -> str:
    """A method's retraining recipe (a Method's `recipe`): rewind point, learning-rate schedule, (start) rate,
    the optimizer when it is not SGD, and gradual pruning."""
    from ..experiments.method import thaw
    from ..experiments.settings_spec import rewind_label
    from ..science.optimizers import OPTIMIZERS
    from ..science.schedules import resolve_schedule

    tr = (settings or {}).get("training", {})
    sched = resolve_schedule("schedule", thaw(r.schedule) if r.schedule is not None else tr.get("schedule", "constant"))

    def text(v):
        return "/".join(f"{x:g}" for x in v) if isinstance(v, (list, tuple)) else f"{v:g}"
    extra = ",".join(f"{k}={text(v)}" for k, v in sorted(sched.items()) if k != "name" and v)
    lr = r.lr if r.lr is not None else tr.get("lr")
    lr_text = "" if lr is None or sched["name"] == "replay" else f" lr {lr if isinstance(lr, str) else f'{lr:g}'}"
    opt = OPTIMIZERS.resolve("optimizer", thaw(r.optimizer) if r.optimizer is not None else tr.get("optimizer", "sgd"))
    opt_text = "" if opt["name"] == "sgd" else ", " + opt["name"] + "".join(
        f" {k}={v:g}" for k, v in sorted(opt.items()) if k != "name" and v != OPTIMIZERS.get(opt["name"]).params[
            OPTIMIZERS.get(opt["name"]).param_names().index(k)].default)
    gmp = r.gmp
    gmp_text = "" if not gmp else (f", gmp(start={gmp.get('start', 0.0):g},end={gmp.get('end', 0.75):g},"
                                   f"every={gmp.get('every', 100)})")
    return (f"rewind {rewind_label(thaw(r.rewind))}, {sched['name']}{f'({extra})' if extra else ''}{lr_text}{opt_text}"
            f"{gmp_text}")


def pruner_label(spec: dict) -> str:
    """A pruner as `sap(p=1,q=2,scope=global)`: its parameters that differ from their defaults."""
    from ..science.pruners import PRUNERS

    defaults = {p.name: p.default for p in PRUNERS.get(spec["name"]).params} if spec["name"] in PRUNERS else {}

    def text(v):
        return pruner_label(v) if isinstance(v, dict) else str(v)
    args = ",".join(f"{k}={text(v)}" for k, v in sorted(spec.items())
                    if k != "name" and (k not in defaults or defaults[k] != v or k == "scope"))
    return f"{spec['name']}({args})"


def control_group(method, settings: dict | None = None) -> str:
    """What a method's fixed-budget controls must share with it: the pruner and the retraining recipe."""
    from ..experiments.method import thaw

    return f"{pruner_label(thaw(method.pruner))} {recipe(method.recipe, settings)}"


def _threshold_text(s: dict) -> str:
    if s.get("epsilon") == "auto":
        return "auto (noise floor)"
    for form in ("epsilon", "recover", "patience"):
        if s.get(form) is not None:
            return f"ε = {s[form]:g}" if form == "epsilon" else f"{form} {s[form]:g}"
    return ""


def method_table(methods: dict, settings: dict, effective: dict | None = None):
    """One row per preset: its pruner, criteria, thresholds (as given and as used) and effective budget."""
    import pandas as pd

    from ..experiments.method import resolve_method, thaw
    from ..experiments.settings_spec import rewind_label
    from ..science.stopping import criteria_of, mask_window, reads_noise_floor

    rows = []
    for name, preset in methods.items():
        m = resolve_method(name, preset, settings["training"])
        stop = thaw(m.stop)
        by = {s["name"]: s for s in stop}
        crits = criteria_of(stop)
        row = {"method": name, "description": m.preset.get("description", ""), "pruner": m.pruner["name"],
               "scope": m.pruner.get("scope", ""), "stops": "+".join(s["name"] for s in stop)}
        for column, criterion, param in threshold_columns():
            v = by.get(criterion, {}).get(param, math.nan)
            row[column] = v if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan
        for crit in ("infoflow", "gradflow"):
            row[f"{crit}_threshold"] = _threshold_text(by[crit]) if crit in by else ""
            row[f"{crit}_epsilon_effective"] = (effective or {}).get((name, crit), math.nan)
        row["infoflow_measure"] = by["infoflow"].get("measure", "") if "infoflow" in by else ""
        control = all(c.name == "budget" for c in crits)
        row.update({"max_epochs": m.max_epochs, "min_epochs": m.min_epochs,
                    "rewind": rewind_label(thaw(m.recipe.rewind)), "recipe": recipe(m.recipe, settings),
                    "control": control,
                    "control_group": control_group(m, settings), "mask_window": mask_window(crits),
                    "needs_flows": any(c.needs_flows for c in crits),
                    # what else only this method pays for at train-dense: noise floors, a rewind point
                    # (`auto` compares with the floor; `recover` and `patience` on flows are armed by it)
                    "needs_noise_floor": any(reads_noise_floor(c) for c in crits),
                    "rewind_epochs": m.recipe.rewind_epoch,
                    "early_stopping": bool(crits) and all(c.name in ("accuracy", "patience", "budget") for c in crits)
                                      and any(c.name in ("accuracy", "patience") for c in crits),
                    "spec": json.dumps(thaw(m.pruner), sort_keys=True)})
        rows.append(row)
    return pd.DataFrame(rows)


def _epoch_rows(metrics: dict):
    """epochs.csv, epoch_layers.csv and criteria.csv rows of one iteration's records."""
    base = {k: metrics[k] for k in ("dataset", "arch", "method", "seed", "iteration")}
    rows, lrows, crows = [], [], []
    for e in metrics["epochs"]:
        row = {**base, **{k: e.get(k) for k in EPOCH_COLUMNS if k in e},
               "remaining_weights": metrics["remaining_weights"]}
        for cid, v in (e.get("criteria") or {}).items():
            row[f"holds_{cid}"] = v["holds"]
            crows.append({**base, "epoch": e["epoch"], "criterion": cid, **v})
        rows.append(row)
        lrows += [{**r, "epoch": e["epoch"]} for r in layer_rows(base, metrics["layers"], metrics["pairs"], e)]
    return rows, lrows, crows


def _effective_thresholds(crows: list[dict]) -> dict:
    """(method, criterion) -> mean threshold actually used (calibrated ε for 'auto')."""
    sums: dict = {}
    for r in crows:
        if r["form"] in ("epsilon", "auto") and r["threshold"] is not None and r["name"] in ("infoflow", "gradflow"):
            s = sums.setdefault((r["method"], r["name"]), [0.0, 0])
            s[0] += r["threshold"]
            s[1] += 1
    return {k: v[0] / v[1] for k, v in sums.items()}


def write_tables(runs: list, methods: dict, settings: dict, out_dir) -> None:
    import pandas as pd

    from .compare import frontier_and_summary
    from .summary import summary_markdown

    out = Path(out_dir)
    its, layers, epochs, epoch_layers, crit_rows, tickets = [], [], [], [], [], []
    for run in map(Path, runs):
        if not (run / L.EVALUATION).is_file():
            raise InfcopError(f"run '{run}' has no {L.EVALUATION}; evaluate it first")
        ev = pd.read_csv(run / L.EVALUATION)
        its.append(ev)
        layers.append(pd.read_csv(run / L.LAYERS))
        for k in sorted(int(i) for i in ev["iteration"] if i > 0):
            rows, lrows, crows = _epoch_rows(load_json(run / L.iteration_name(k) / L.METRICS))
            epochs += rows
            epoch_layers += lrows
            crit_rows += crows
        tickets.append(load_json(run / L.TICKET_INFO))
    iterations = pd.concat(its, ignore_index=True)
    holds = sorted({k for r in epochs for k in r if k.startswith("holds_")})
    methods_df = method_table(methods, settings, _effective_thresholds(crit_rows))
    from ..experiments.config import split_sizes

    test_sizes = {}
    for ds in sorted(set(iterations["dataset"])):
        sizes = split_sizes(ds, settings["data"]) if ds in DATASETS else None
        if sizes is not None and sizes.get("test"):
            test_sizes[ds] = sizes["test"]
    judge = settings.get("compare", {})
    frontier, summary, contrasts = frontier_and_summary(iterations, methods_df, judge.get("margin_pp", 0.5),
                                                        test_sizes, judge.get("adjust", "holm"))
    _csv(iterations, out / "iterations.csv")
    _csv(pd.concat(layers, ignore_index=True), out / "layers.csv")
    _csv(pd.DataFrame(epochs, columns=EPOCH_COLUMNS + holds), out / "epochs.csv")
    _csv(pd.DataFrame(epoch_layers, columns=EPOCH_LAYER_COLUMNS), out / "epoch_layers.csv")
    criteria = pd.DataFrame(crit_rows, columns=CRITERIA_COLUMNS)
    _csv(criteria, out / "criteria.csv")
    _csv(methods_df, out / "methods.csv")
    _csv(pd.DataFrame(tickets), out / "tickets.csv")
    _csv(frontier, out / "frontier.csv")
    _csv(summary, out / "summary.csv")
    _csv(contrasts, out / "contrasts.csv")
    from ..science.data import variance_sources

    variance = {ds: variance_sources(ds, settings["data"].get("seed", 42)) for ds in sorted(set(iterations["dataset"]))}
    save_text(summary_markdown(summary, iterations, methods_df, criteria, test_sizes, contrasts, variance),
              out / "summary.md")

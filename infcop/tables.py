"""Tidy tables across every run, and the summary a paper would show: their columns and row builders."""
from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from . import InfcopError
from . import layout as L
from .checkpoints import load_json, save_text

ITERATION_COLUMNS = ["dataset", "arch", "method", "seed", "iteration", "remaining_weights", "test_accuracy",
                     "val_accuracy", "epochs_trained", "stop_reason", "train_seconds", "flow_seconds"]
LAYER_COLUMNS = ["dataset", "arch", "method", "seed", "iteration", "metric", "layer", "layer_index", "value"]
EPOCH_COLUMNS = ["dataset", "arch", "method", "seed", "iteration", "epoch", "train_loss", "val_accuracy",
                 "info_distance", "grad_distance", "stopped", "stop_reason", "remaining_weights", "train_seconds",
                 "flow_seconds"]
EPOCH_LAYER_COLUMNS = ["dataset", "arch", "method", "seed", "iteration", "epoch", "metric", "layer",
                       "layer_index", "value"]
KEYS = ["dataset", "arch", "method"]


def csv_text(rows: list[dict], columns: list[str]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def _csv(df, path: Path):
    save_text(df.to_csv(index=False, lineterminator="\n"), path)


LAYER_METRICS = (("connectivity", "pairs"), ("gradflow", "layers"), ("similarity", "layers"))


def layer_rows(base: dict, names: list[str], pairs: list[str], conn, grad, sim) -> list[dict]:
    """Tidy rows of the per-layer vectors (connectivity per layer pair, gradient flow and similarity per
    layer) of one network."""
    labels = {"pairs": pairs, "layers": names}
    values = {"connectivity": conn, "gradflow": grad, "similarity": sim}
    rows = []
    for metric, kind in LAYER_METRICS:
        for i, (label, v) in enumerate(zip(labels[kind], values[metric])):
            rows.append({**base, "metric": metric, "layer": label, "layer_index": i, "value": v})
    return rows


def threshold_columns() -> list[tuple[str, str, str]]:
    """(column, criterion, parameter) for every numeric parameter of every registered stop criterion,
    e.g. ('infoflow_epsilon', 'infoflow', 'epsilon'): the methods table's threshold columns."""
    from .stopping import STOPS

    return [(f"{e.name}_{p.name}", e.name, p.name) for e in STOPS for p in e.params
            if p.kind in ("number", "integer")]


def method_table(methods: dict):
    import pandas as pd
    from .config import check_method

    rows = []
    for name, preset in methods.items():
        m = check_method(name, preset)
        by = {s["name"]: s for s in m["stop"]}
        row = {"method": name, "pruner": m["pruner"]["name"], "stops": "+".join(s["name"] for s in m["stop"])}
        for column, criterion, param in threshold_columns():
            row[column] = by.get(criterion, {}).get(param, math.nan)
        row.update({"max_epochs": m.get("max_epochs", math.nan), "rewind": m["rewind"],
                    "spec": json.dumps(m["pruner"], sort_keys=True)})
        rows.append(row)
    return pd.DataFrame(rows)


def _epoch_rows(metrics: dict):
    base = {k: metrics[k] for k in ("dataset", "arch", "method", "seed", "iteration")}
    rows, lrows = [], []
    for e in metrics["epochs"]:
        rows.append({**base, **{k: e.get(k) for k in EPOCH_COLUMNS if k in e},
                     "remaining_weights": metrics["remaining_weights"]})
        lrows += [{**r, "epoch": e["epoch"]} for r in layer_rows(
            base, metrics["layers"], metrics["pairs"], e.get("connectivity", []), e.get("gradflow", []),
            e.get("similarity", []))]
    return rows, lrows


def summarise(iterations, tickets):
    """One row per (dataset, arch, method): the final ticket's remaining weights and test accuracy, and
    the whole search's retraining cost (epochs, and seconds with flow time), mean and std over seeds."""
    import pandas as pd

    it = iterations[iterations["iteration"] > 0].copy()
    it["seconds"] = it["train_seconds"] + it["flow_seconds"]
    cost = it.groupby(KEYS + ["seed"], as_index=False).agg(epochs=("epochs_trained", "sum"),
                                                           seconds=("seconds", "sum"))
    per_seed = cost.merge(tickets[KEYS + ["seed", "remaining_weights", "test_accuracy"]], on=KEYS + ["seed"])
    g = per_seed.groupby(KEYS)
    out = pd.DataFrame({
        "seeds": g["seed"].nunique(),
        "final_remaining_weights": g["remaining_weights"].mean(),
        "test_accuracy_mean": g["test_accuracy"].mean(), "test_accuracy_std": g["test_accuracy"].std(ddof=1),
        "total_epochs_mean": g["epochs"].mean(), "total_epochs_std": g["epochs"].std(ddof=1),
        "total_seconds_mean": g["seconds"].mean(), "total_seconds_std": g["seconds"].std(ddof=1),
    }).reset_index()
    out[["test_accuracy_std", "total_epochs_std", "total_seconds_std"]] = \
        out[["test_accuracy_std", "total_epochs_std", "total_seconds_std"]].fillna(0.0)
    for base in ("lth", "sap"):
        ref = out[out["method"] == base].set_index(["dataset", "arch"])
        for unit in ("epochs", "seconds"):
            col = f"total_{unit}_mean"
            denom = out.apply(lambda r: r[col], axis=1)
            num = out.apply(lambda r: ref[col].get((r["dataset"], r["arch"]), math.nan), axis=1)
            out[f"speedup_{unit}_vs_{base}"] = num / denom.where(denom > 0)
    return out


def summary_markdown(summary) -> str:
    head = ["dataset", "arch", "method", "seeds", "remaining weights", "test accuracy (%)", "retraining epochs",
            "retraining seconds", "speed-up vs lth (epochs / s)", "speed-up vs sap (epochs / s)"]

    def ratio(a, b):
        return "—" if (math.isnan(a) or math.isnan(b)) else f"{a:.2f}× / {b:.2f}×"

    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in summary.itertuples():
        lines.append("| " + " | ".join([
            r.dataset, r.arch, r.method, str(r.seeds), f"{100 * r.final_remaining_weights:.1f}%",
            f"{100 * r.test_accuracy_mean:.2f} ± {100 * r.test_accuracy_std:.2f}",
            f"{r.total_epochs_mean:.1f} ± {r.total_epochs_std:.1f}",
            f"{r.total_seconds_mean:.1f} ± {r.total_seconds_std:.1f}",
            ratio(r.speedup_epochs_vs_lth, r.speedup_seconds_vs_lth),
            ratio(r.speedup_epochs_vs_sap, r.speedup_seconds_vs_sap)]) + " |")
    return "\n".join(lines) + "\n"


def write_tables(runs: list, methods: dict, out_dir) -> None:
    import pandas as pd

    out = Path(out_dir)
    its, layers, epochs, epoch_layers, tickets = [], [], [], [], []
    for run in map(Path, runs):
        if not (run / L.EVALUATION).is_file():
            raise InfcopError(f"run '{run}' has no {L.EVALUATION}; evaluate it first")
        ev = pd.read_csv(run / L.EVALUATION)
        its.append(ev)
        layers.append(pd.read_csv(run / L.LAYERS))
        for k in sorted(int(i) for i in ev["iteration"] if i > 0):
            rows, lrows = _epoch_rows(load_json(run / L.iteration_name(k) / L.METRICS))
            epochs += rows
            epoch_layers += lrows
        tickets.append(load_json(run / L.TICKET_INFO))
    iterations = pd.concat(its, ignore_index=True)
    ticket_df = pd.DataFrame(tickets)
    _csv(iterations, out / "iterations.csv")
    _csv(pd.concat(layers, ignore_index=True), out / "layers.csv")
    _csv(pd.DataFrame(epochs, columns=EPOCH_COLUMNS), out / "epochs.csv")
    _csv(pd.DataFrame(epoch_layers, columns=EPOCH_LAYER_COLUMNS), out / "epoch_layers.csv")
    _csv(method_table(methods), out / "methods.csv")
    _csv(ticket_df, out / "tickets.csv")
    summary = summarise(iterations, ticket_df)
    save_text(summary_markdown(summary), out / "summary.md")
    _csv(summary, out / "summary.csv")

"""A synthetic but realistic Inf-CoP experiment, written as the tables of the table contract
(iterations, epochs, epoch_layers, layers, criteria, methods, tickets, frontier, summary), for the
figure tests; and a test that it keeps to that contract.

The numbers imitate the digits runs of issues 12 and 13: with ``rewind: dense`` the flow distances
are small at epoch 0 and grow slowly during retraining, so the study's absolute ε hold at once;
the calibrated (``auto``) CKA criterion and the accuracy criterion take a few epochs.
"""

from __future__ import annotations

import json
import math
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

# ---------------------------------------------------------------------------
# Method presets: pruner, scope, stop criteria (name, measure, form, parameter), budget, rewind
# ---------------------------------------------------------------------------

ACC0 = ("accuracy", "val_accuracy", "delta", 0.0)


def _m(pruner="sap", crits=(), max_epochs=10, min_epochs=1, rewind="dense", scope=None):
    return dict(pruner=pruner, scope=scope or ("layer" if pruner == "magnitude" else "global"),
                crits=tuple(crits), max_epochs=max_epochs, min_epochs=min_epochs, rewind=rewind)


METHODS = {
    "lth": _m("magnitude"),
    "sap": _m(),
    "ciap": _m(crits=[("infoflow", "signed_mean", "epsilon", 0.1), ACC0]),
    "giap": _m(crits=[("gradflow", "gradflow", "epsilon", 0.5), ACC0]),
    "earlystop": _m(crits=[ACC0]),
    "ciap_auto": _m(crits=[("infoflow", "cka", "auto", None), ACC0]),
    "ciap_rec": _m(crits=[("infoflow", "signed_mean", "recover", 0.5)], rewind="epoch 1"),
    "ciap_pat": _m(crits=[("infoflow", "abs_mean", "patience", 2), ACC0]),
    "sap_fixed1": _m(max_epochs=1, min_epochs=1),
    "sap_fixed2": _m(max_epochs=2, min_epochs=2),
    "sap_fixed3": _m(max_epochs=3, min_epochs=3),
    "sap_fixed5": _m(max_epochs=5, min_epochs=5),
    "fastprune": _m(crits=[("infoflow", "signed_mean", "epsilon", 0.15), ("accuracy", "val_accuracy", "delta", 0.01)],
                    max_epochs=6),  # a user-defined method with its own budget
    "ciap_e0.08": _m(crits=[("infoflow", "signed_mean", "epsilon", 0.08), ACC0]),
    "ciap_e0.12": _m(crits=[("infoflow", "signed_mean", "epsilon", 0.12), ACC0]),
}
CONTROLS_SAP = ("sap_fixed1", "sap_fixed2", "sap_fixed3", "sap_fixed5", "sap")
DEFAULT_METHODS = ("lth", "ciap", "giap", "earlystop", "ciap_auto") + CONTROLS_SAP

_MEASURE_COLUMN = {"signed_mean": "info_distance", "abs_mean": "abs_distance", "cka": "cka_distance",
                   "gradflow": "grad_distance", "val_accuracy": "val_accuracy"}

CONTRACT = {
    "iterations": "dataset arch method seed iteration remaining_weights test_accuracy val_accuracy epochs_trained "
                  "stop_reason train_seconds flow_seconds flows_charged epoch0_val_accuracy "
                  "stopped_early_vs_accuracy",
    "epochs": "dataset arch method seed iteration epoch train_loss val_accuracy info_distance abs_distance "
              "cka_distance grad_distance stopped stop_reason remaining_weights lr train_seconds flow_seconds",
    "epoch_layers": "dataset arch method seed iteration epoch metric layer layer_index value",
    "layers": "dataset arch method seed iteration metric layer layer_index value",
    "criteria": "dataset arch method seed iteration epoch criterion name measure form value threshold holds",
    "methods": "method description pruner scope stops infoflow_epsilon gradflow_epsilon accuracy_delta "
               "infoflow_threshold gradflow_threshold infoflow_measure infoflow_epsilon_effective "
               "gradflow_epsilon_effective max_epochs min_epochs rewind control control_group needs_flows spec",
    "tickets": "dataset arch method seed iteration remaining_weights test_accuracy val_accuracy final_epochs "
               "train_seconds",
    "frontier": "dataset arch control_group level method seed role budget cum_epochs cost_epoch_equivalents "
                "test_accuracy train_seconds flow_seconds",
    "summary": "dataset arch method level level_label control_group seeds margin_pp test_accuracy_mean "
               "test_accuracy_std epochs_mean epochs_std train_seconds_mean train_seconds_std flow_seconds_mean "
               "flow_seconds_std cost_epoch_equivalents_mean cost_epoch_equivalents_std identical_to "
               "verdict delta delta_lo delta_hi seeds_needed note",
}
CONTRACT = {k: v.split() for k, v in CONTRACT.items()}


def _crit_ids(crits) -> list[str]:
    ids, seen = [], {}
    for name, *_ in crits:
        seen[name] = seen.get(name, 0) + 1
        ids.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return ids


def _threshold_text(form, value) -> str:
    return {"epsilon": f"ε = {value:g}" if value is not None else "", "auto": "auto (noise floor)",
            "recover": f"recover {value:g}" if value is not None else "",
            "patience": f"patience {value:g}" if value is not None else ""}.get(form, "")


def control_group(spec) -> str:
    pr = "magnitude(rate=0.2,layer)" if spec["pruner"] == "magnitude" else f"sap(p=1,q=2,{spec['scope']})"
    return f"{pr} rewind {spec['rewind']}"


def layer_names(n: int, style: str = "vgg") -> list[str]:
    if style == "resnet":  # long names, as a torchvision ResNet's
        convs = ["conv1"] + [f"layer{b}.{u}.conv{c}" for b in range(1, 5) for u in (0, 1) for c in (1, 2)]
        names = (convs * (1 + n // len(convs)))[: n - 1]
        return [f"{x}" if i < len(convs) else f"{x}.{i}" for i, x in enumerate(names)] + ["fc"]
    return [f"features.{3 * i}" for i in range(n - 1)] + ["classifier"]


# ---------------------------------------------------------------------------
# The experiment
# ---------------------------------------------------------------------------


def make_tables(root: Path, methods=DEFAULT_METHODS, datasets=("digits",), archs=("lenet5",), seeds=(0, 1, 2),
                iterations: int = 3, layers: int = 4, layer_style: str = "vgg", empty: bool = False,
                copies: dict | None = None, specs: dict | None = None) -> Path:
    """Write the contract's CSVs of a fake experiment into ``root``.

    ``copies`` maps a new method name to an existing one whose rows it repeats exactly (identical
    curves); ``specs`` adds or overrides method presets.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    allspecs = {**METHODS, **(specs or {})}
    copies = copies or {}
    names = layer_names(layers, layer_style)
    pairs = [f"{a}→{b}" for a, b in zip(names[:-1], names[1:])]
    layer_sets = {"connectivity": pairs, "abs_connectivity": pairs, "cka": names, "gradflow": names,
                  "similarity": names}
    holds_cols = sorted({f"holds_{i}" for m in methods for i in _crit_ids(allspecs[m]["crits"])})
    T = {k: [] for k in CONTRACT}
    noise_floor = {}
    for ds in datasets:
        for arch in archs:
            drng = np.random.default_rng(zlib.crc32(f"{ds}{arch}".encode()))
            dense_acc = 0.95 + 0.02 * drng.random()
            dense_vec = {"connectivity": 0.05 + 0.3 * np.arange(len(pairs)) / max(1, len(pairs) - 1),
                         "abs_connectivity": 0.2 + 0.3 * np.arange(len(pairs)) / max(1, len(pairs) - 1),
                         "cka": np.ones(len(names)), "gradflow": 1e-3 * 2.0 ** np.arange(len(names)),
                         "similarity": np.ones(len(names))}
            for method in methods:
                spec = allspecs[method]
                ids = _crit_ids(spec["crits"])
                for seed in seeds:
                    src = copies.get(method, method)
                    rng = np.random.default_rng(zlib.crc32(f"{ds}{arch}{src}{seed}".encode()))
                    srng = np.random.default_rng(zlib.crc32(f"{ds}{arch}{seed}".encode()))  # shared by a seed
                    base = dict(dataset=ds, arch=arch, method=method, seed=seed)
                    d_val = dense_acc + srng.normal(0, 0.003)
                    floor = 0.004 + 0.002 * srng.random()  # the CKA noise floor of this seed's dense network
                    noise_floor[(ds, arch, method, seed)] = floor
                    T["iterations"].append(dict(base, iteration=0, remaining_weights=1.0, test_accuracy=d_val - 0.003,
                                                val_accuracy=d_val, epochs_trained=0, stop_reason="dense",
                                                train_seconds=40.0, flow_seconds=0.5, flows_charged=False,
                                                epoch0_val_accuracy=np.nan, stopped_early_vs_accuracy=""))
                    for metric, ln in layer_sets.items():
                        for li, name in enumerate(ln):
                            T["layers"].append(dict(base, iteration=0, metric=metric, layer=name, layer_index=li,
                                                    value=dense_vec[metric][li]))
                    rw = 1.0
                    for k in range(1, iterations + 1):
                        rw *= 0.8 if spec["pruner"] == "magnitude" else rng.uniform(0.62, 0.72)
                        drop = 0.03 + 0.04 * k + rng.uniform(0, 0.01)  # accuracy lost by pruning
                        rows, stop, reason = [], None, "budget"
                        dense_rewind = spec["rewind"] == "dense"
                        for e in range(0, spec["max_epochs"] + 1):
                            dec = math.exp(-e / 1.5)
                            grow = math.sqrt(e) if dense_rewind else -0.8 * (1 - dec) * 8
                            rec = dict(
                                val=d_val - drop * dec + 0.004 * (1 - dec) - 0.002 * k + rng.normal(0, 0.0015),
                                info=max(1e-4, 0.009 + 0.004 * k + 0.0015 * grow + rng.uniform(0, 0.002)),
                                cka=floor + (0.02 + 0.01 * k) * dec + 0.002 * rng.random(),
                                grad=(1 + k) * 1e-4 * (1 + 0.5 * dec) * rng.uniform(0.9, 1.1),
                            )
                            rec["abs"] = 1.4 * rec["info"] + 0.002 * rng.random()
                            values = {"signed_mean": rec["info"], "abs_mean": rec["abs"], "cka": rec["cka"],
                                      "gradflow": rec["grad"], "val_accuracy": rec["val"]}
                            verdicts = []
                            for cid, (name, measure, form, par) in zip(ids, spec["crits"]):
                                v = values[measure]
                                if form == "delta":
                                    thr, h = d_val - par, v >= d_val - par
                                elif form == "epsilon":
                                    thr, h = par, v < par
                                elif form == "auto":
                                    thr, h = floor, v < floor
                                elif form == "recover":
                                    v0 = rows[0]["values"][measure] if rows else v
                                    thr, h = par * v0, e > 0 and v <= par * v0
                                else:  # patience: the distance has not improved for `par` epochs
                                    hist = [r["values"][measure] for r in rows] + [v]
                                    thr, h = np.nan, len(hist) > par and min(hist[-par:]) >= min(hist[:-par])
                                verdicts.append((cid, name, measure, form, v, thr, bool(h)))
                            rec.update(values=values, verdicts=verdicts)
                            rows.append(rec)
                            held = [c for c, *_, h in verdicts if h]
                            if e >= spec["min_epochs"] and (held or e == spec["max_epochs"]):
                                stop, reason = e, "+".join(held) if held else "budget"
                                break
                        for e, rec in enumerate(rows):
                            stopped = e == stop
                            hv = {f"holds_{c}": h for c, *_, h in rec["verdicts"]}
                            T["epochs"].append(dict(
                                base, iteration=k, epoch=e, train_loss=np.nan if e == 0 else 0.2 + 0.5 * math.exp(-e),
                                val_accuracy=rec["val"], info_distance=rec["info"], abs_distance=rec["abs"],
                                cka_distance=rec["cka"], grad_distance=rec["grad"], stopped=stopped,
                                stop_reason=reason if stopped else "", remaining_weights=rw, lr=0.01,
                                train_seconds=0.0 if e == 0 else 3.0 + 0.2 * rng.random(), flow_seconds=0.4,
                                **{c: hv.get(c, "") for c in holds_cols}))
                            for cid, name, measure, form, v, thr, h in rec["verdicts"]:
                                T["criteria"].append(dict(base, iteration=k, epoch=e, criterion=cid, name=name,
                                                          measure=measure, form=form, value=v, threshold=thr,
                                                          holds=h))
                            for metric, ln in layer_sets.items():
                                for li, name in enumerate(ln):
                                    dev = (1 + 0.3 * li) * math.exp(-e / 1.5) * (0.15 + 0.05 * k)
                                    drift = 0.02 * k * (1 + 0.2 * li) * (1 + 0.1 * e)
                                    v = dense_vec[metric][li]
                                    v = v * (1 + dev + 2 * drift) if metric == "gradflow" else \
                                        v - 0.3 * dev - 0.5 * drift
                                    T["epoch_layers"].append(dict(base, iteration=k, epoch=e, metric=metric,
                                                                  layer=name, layer_index=li, value=v))
                                    if stopped:
                                        T["layers"].append(dict(base, iteration=k, metric=metric, layer=name,
                                                                layer_index=li, value=v))
                        last = rows[stop]
                        acc_ids = [c for c, (n, *_) in zip(ids, spec["crits"]) if n == "accuracy"]
                        early = "" if not acc_ids else not any(h for c, *_, h in last["verdicts"] if c in acc_ids)
                        needs = any(n in ("infoflow", "gradflow") for n, *_ in spec["crits"])
                        T["iterations"].append(dict(
                            base, iteration=k, remaining_weights=rw, test_accuracy=last["val"] - 0.003,
                            val_accuracy=last["val"], epochs_trained=stop, stop_reason=reason,
                            train_seconds=3.1 * stop, flow_seconds=0.4 * (stop + 1), flows_charged=needs,
                            epoch0_val_accuracy=rows[0]["val"], stopped_early_vs_accuracy=early))
                    T["tickets"].append(dict(base, iteration=iterations, remaining_weights=rw,
                                             test_accuracy=last["val"] - 0.003, val_accuracy=last["val"],
                                             final_epochs=stop, train_seconds=3.1 * stop))
    T["methods"] = [_method_row(m, allspecs[m], noise_floor) for m in methods]
    frontier, summary = _frontier_and_summary(pd.DataFrame(T["iterations"]), T["methods"], allspecs)
    T["frontier"], T["summary"] = frontier, summary
    for name, rows in T.items():
        cols = CONTRACT[name] + (holds_cols if name == "epochs" else [])
        df = pd.DataFrame(rows, columns=cols)
        if empty:
            df = df.iloc[0:0]
        df.to_csv(root / f"{name}.csv", index=False)
    return root


def _method_row(m, spec, noise_floor) -> dict:
    crits = {n: (meas, form, par) for n, meas, form, par in spec["crits"]}
    row = dict(method=m, description=f"synthetic {m}", pruner=spec["pruner"], scope=spec["scope"],
               stops="+".join(n for n, *_ in spec["crits"]) or "budget",
               max_epochs=spec["max_epochs"], min_epochs=spec["min_epochs"], rewind=spec["rewind"],
               control=not spec["crits"], control_group=control_group(spec),
               needs_flows=bool({"infoflow", "gradflow"} & set(crits)),
               spec=json.dumps({"name": spec["pruner"], "scope": spec["scope"]}))
    for n in ("infoflow", "gradflow"):
        meas, form, par = crits.get(n, (None, None, None))
        row[f"{n}_epsilon"] = par if form == "epsilon" else np.nan
        row[f"{n}_threshold"] = _threshold_text(form, par)
        floors = [v for (_, _, mm, _), v in noise_floor.items() if mm == m]
        auto = np.mean(floors) if form == "auto" and floors else np.nan
        row[f"{n}_epsilon_effective"] = par if form == "epsilon" else auto
    row["infoflow_measure"] = crits.get("infoflow", ("",))[0]
    row["accuracy_delta"] = crits["accuracy"][2] if "accuracy" in crits else np.nan
    return row


def _at_level(run: pd.DataFrame, level: float) -> dict:
    """Cumulative cost and test accuracy at `level`, interpolated on log remaining weights."""
    r = run.sort_values("iteration")
    x = -np.log(r["remaining_weights"].to_numpy(float))
    retrain = (r["iteration"] > 0).to_numpy()
    cum = {"cum_epochs": np.cumsum(np.where(retrain, r["epochs_trained"], 0.0)),
           "train_seconds": np.cumsum(np.where(retrain, r["train_seconds"], 0.0)),
           "flow_seconds": np.cumsum(np.where(retrain & r["flows_charged"].astype(bool), r["flow_seconds"], 0.0)),
           "test_accuracy": r["test_accuracy"].to_numpy(float)}
    out = {k: float(np.interp(-math.log(level), x, v)) for k, v in cum.items()}
    out["cost_epoch_equivalents"] = out["cum_epochs"] + out["flow_seconds"] / 3.1  # 3.1 s per synthetic epoch
    return out


MARGIN = 0.005  # the synthetic tables' equivalence margin (0.5 pp)


def _t95(n):
    """One-sided 95% t quantiles by sample size."""
    return {2: 6.314, 3: 2.920, 4: 2.353, 5: 2.132, 6: 2.015}.get(n, 1.9)


def _frontier_and_summary(it: pd.DataFrame, method_rows: list, specs: dict):
    if it.empty:
        return [], []
    meth = pd.DataFrame(method_rows).set_index("method")
    frontier, summary = [], []
    for (ds, arch), p in it.groupby(["dataset", "arch"]):
        final = p.sort_values("iteration").groupby(["method", "seed"]).tail(1)
        reached = final["remaining_weights"].max()
        levels = [0.8 ** j for j in range(1, 40) if 0.8 ** j >= reached][-2:]
        per = {}  # (method, seed, level) -> values
        for (m, s), run in p.groupby(["method", "seed"]):
            for lv in levels:
                per[(m, s, lv)] = _at_level(run, lv)
        groups = {}
        for m in p["method"].unique():
            groups.setdefault(meth.loc[m, "control_group"], []).append(m)
        verdicts = {}
        for g, ms in groups.items():
            controls = [m for m in ms if meth.loc[m, "control"]]
            if not controls or len(ms) < 2:
                continue
            for lv in levels:
                for m in ms:
                    role = "control" if m in controls else "method"
                    for s in sorted(p[p["method"] == m]["seed"].unique()):
                        v = per[(m, s, lv)]
                        frontier.append(dict(dataset=ds, arch=arch, control_group=g, level=lv, method=m, seed=s,
                                             role=role, budget=meth.loc[m, "max_epochs"] if role == "control"
                                             else np.nan, **v))
                    if role == "method":
                        deltas = []
                        for s in sorted(p[p["method"] == m]["seed"].unique()):
                            cx = sorted((per[(c, s, lv)]["cost_epoch_equivalents"], per[(c, s, lv)]["test_accuracy"])
                                        for c in controls if (c, s, lv) in per)
                            v = per[(m, s, lv)]
                            deltas.append(v["test_accuracy"] - np.interp(v["cost_epoch_equivalents"], *zip(*cx)))
                        d = np.asarray(deltas)
                        h = _t95(len(d)) * d.std(ddof=1) / math.sqrt(len(d)) if len(d) > 1 else np.inf
                        lo, hi = d.mean() - h, d.mean() + h
                        word = ("better" if lo > MARGIN else "worse" if hi < -MARGIN else
                                "equivalent" if -MARGIN < lo and hi < MARGIN else "inconclusive")
                        verdicts[(m, lv)] = (word, d.mean(), lo, hi)
                    else:
                        verdicts[(m, lv)] = ("control", np.nan, np.nan, np.nan)
        for m in p["method"].unique():
            for lv in levels:
                vals = pd.DataFrame([per[(m, s, lv)] for s in p[p["method"] == m]["seed"].unique()])
                verdict, delta, lo, hi = verdicts.get((m, lv), ("n/a", np.nan, np.nan, np.nan))
                row = dict(dataset=ds, arch=arch, method=m, level=lv, level_label=f"{100 * lv:.3g}%",
                           control_group=meth.loc[m, "control_group"], seeds=len(vals), margin_pp=100 * MARGIN,
                           identical_to="", verdict=verdict, delta=delta, delta_lo=lo, delta_hi=hi,
                           seeds_needed=np.nan, note="")
                for c, col in (("test_accuracy", "test_accuracy"), ("cum_epochs", "epochs"),
                               ("train_seconds", "train_seconds"), ("flow_seconds", "flow_seconds"),
                               ("cost_epoch_equivalents", "cost_epoch_equivalents")):
                    row[f"{col}_mean"], row[f"{col}_std"] = vals[c].mean(), vals[c].std()
                summary.append(row)
    return frontier, summary


# ---------------------------------------------------------------------------
# The generator keeps to the contract
# ---------------------------------------------------------------------------


def test_synthetic_tables_keep_to_the_contract(tmp_path):
    t = make_tables(tmp_path, methods=DEFAULT_METHODS + ("ciap_rec", "ciap_pat"))
    for name, cols in CONTRACT.items():
        df = pd.read_csv(t / f"{name}.csv")
        extra = [c for c in df.columns if c not in cols]
        assert list(df.columns[: len(cols)]) == cols, name
        assert all(c.startswith("holds_") for c in extra) and (name == "epochs" or not extra), name
        assert len(df), name
    ep = pd.read_csv(t / "epochs.csv")
    assert (ep.groupby(["method", "seed", "iteration"])["epoch"].min() == 0).all()
    assert ep[ep["epoch"] == 0]["train_loss"].isna().all()
    assert {"holds_infoflow", "holds_gradflow", "holds_accuracy"} <= set(ep.columns)
    assert ep[ep["method"] == "sap"]["holds_accuracy"].isna().all()
    it = pd.read_csv(t / "iterations.csv")
    assert "infoflow+accuracy" in set(it["stop_reason"]) or "infoflow" in set(it["stop_reason"])
    assert set(it[it["method"] == "sap_fixed3"]["epochs_trained"]) == {0, 3}
    fr = pd.read_csv(t / "frontier.csv")
    assert set(fr[fr["role"] == "control"]["method"]) == set(CONTROLS_SAP)
    m = pd.read_csv(t / "methods.csv").set_index("method")
    assert m["max_epochs"].notna().all() and np.isnan(m.loc["ciap_auto", "infoflow_epsilon"])
    assert m.loc["ciap_auto", "infoflow_epsilon_effective"] > 0
    s = pd.read_csv(t / "summary.csv")
    assert set(s["verdict"].fillna("n/a")) <= {"better", "equivalent", "worse", "inconclusive", "control", "n/a"}
    assert (s[s["method"].isin(CONTROLS_SAP)]["verdict"] == "control").all()


# ---------------------------------------------------------------------------
# Helpers shared by the figure tests
# ---------------------------------------------------------------------------


def method_rows(names, specs: dict | None = None) -> pd.DataFrame:
    """methods.csv rows of the presets ``names`` (without running them)."""
    allspecs = {**METHODS, **(specs or {})}
    return pd.DataFrame([_method_row(m, allspecs[m], {}) for m in names])


def png_size(path: Path) -> tuple[int, int]:
    import struct

    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def pdf_pages(path: Path) -> int:
    import re

    return len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", path.read_bytes()))


def all_texts(fig) -> str:
    return "\n".join(t.get_text() for t in fig.findobj(lambda o: hasattr(o, "get_text")))


def lines(ax, gid=None) -> list:
    return [ln for ln in ax.get_lines() if gid is None or ln.get_gid() == gid]


def has_band(fig) -> bool:
    """Whether some axes of ``fig`` has a filled band (a PolyCollection, as fill_between draws)."""
    from matplotlib.collections import PolyCollection

    return any(isinstance(c, PolyCollection) for ax in fig.axes for c in ax.collections)

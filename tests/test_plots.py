"""Tests for infcop.plots: every figure renders from synthetic but realistic tables."""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from infcop import plots

# ---------------------------------------------------------------------------
# Synthetic experiment
# ---------------------------------------------------------------------------

# method -> (pruner, stops, infoflow_epsilon, gradflow_epsilon, accuracy_delta)
METHOD_SPECS = {
    "lth": ("magnitude", "budget", np.nan, np.nan, np.nan),
    "sap": ("sap", "budget", np.nan, np.nan, np.nan),
    "ciap": ("sap", "infoflow", 0.10, np.nan, np.nan),
    "giap": ("sap", "gradflow", np.nan, 0.004, np.nan),
    "earlystop": ("sap", "accuracy", np.nan, np.nan, 0.005),
    "fastprune": ("sap", "infoflow+accuracy", 0.15, np.nan, 0.01),  # a user-defined method
    "ciap_e0.08": ("sap", "infoflow", 0.08, np.nan, np.nan),
    "ciap_e0.12": ("sap", "infoflow", 0.12, np.nan, np.nan),
}


def make_tables(
    root: Path,
    methods=("lth", "fastprune"),
    datasets=("cifar10", "mnist"),
    archs=("vgg11",),
    seeds=(0, 1),
    iterations: int = 3,
    layers: int = 3,
    max_epochs: int = 6,
    empty: bool = False,
) -> Path:
    """Write iterations/layers/epochs/epoch_layers/methods/summary CSVs of a fake experiment into ``root``."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    names = [f"features.{3 * i}" for i in range(layers - 1)] + ["classifier"]
    pairs = [f"{a}→{b}" for a, b in zip(names[:-1], names[1:])]
    layer_sets = {"connectivity": pairs, "gradflow": names, "similarity": names}
    its, lys, eps, els, summ = [], [], [], [], []
    for ds in datasets:
        for arch in archs:
            dense_rng = np.random.default_rng(zlib.crc32(f"{ds}{arch}".encode()))
            dense_acc = 0.9 + 0.02 * dense_rng.random()
            dense_vec = {
                "connectivity": 0.3 + 0.4 * np.arange(len(pairs)) / max(1, len(pairs) - 1),
                "gradflow": 1e-3 * 2.0 ** np.arange(len(names)),  # spans decades: log axis
                "similarity": np.ones(len(names)),
            }
            for method in methods:
                pruner, stops, e_info, e_grad, delta = METHOD_SPECS[method]
                crit = set(stops.split("+")) - {"budget"}
                for seed in seeds:
                    rng = np.random.default_rng(zlib.crc32(f"{ds}{arch}{method}{seed}".encode()))
                    base = dict(dataset=ds, arch=arch, method=method, seed=seed)
                    d_acc = dense_acc + rng.normal(0, 0.003)
                    its.append(dict(base, iteration=0, remaining_weights=1.0, test_accuracy=d_acc - 0.004,
                                    val_accuracy=d_acc, epochs_trained=0, stop_reason="dense",
                                    train_seconds=300.0, flow_seconds=4.0))
                    for metric, lnames in layer_sets.items():
                        for li, ln in enumerate(lnames):
                            lys.append(dict(base, iteration=0, metric=metric, layer=ln, layer_index=li,
                                            value=dense_vec[metric][li]))
                    rw = 1.0
                    for k in range(1, iterations + 1):
                        rw *= 0.8 if pruner == "magnitude" else 1 - rng.uniform(0.2, 0.35)
                        drop = 0.02 * k + rng.uniform(0, 0.01)
                        dev0 = 0.3 + 0.08 * k
                        stop_epoch, reason = max_epochs, "budget"
                        rows = []
                        for e in range(1, max_epochs + 1):
                            decay = np.exp(-e / 1.8)
                            info_d = dev0 * decay + rng.uniform(0.01, 0.03)
                            grad_d = 0.03 * decay + rng.uniform(0.0005, 0.001)
                            val = d_acc - drop * decay - 0.002 * k + rng.normal(0, 0.002)
                            rows.append((e, info_d, grad_d, val, decay))
                            if "infoflow" in crit and info_d < e_info:
                                stop_epoch, reason = e, "infoflow"
                            elif "gradflow" in crit and grad_d < e_grad:
                                stop_epoch, reason = e, "gradflow"
                            elif "accuracy" in crit and val >= d_acc - delta:
                                stop_epoch, reason = e, "accuracy"
                            if reason != "budget":
                                break
                        for e, info_d, grad_d, val, decay in rows:
                            stopped = e == stop_epoch
                            eps.append(dict(base, iteration=k, epoch=e, train_loss=0.3 + decay, val_accuracy=val,
                                            info_distance=info_d, grad_distance=grad_d, stopped=stopped,
                                            stop_reason=reason if stopped else "", remaining_weights=rw))
                            for metric, lnames in layer_sets.items():
                                for li, ln in enumerate(lnames):
                                    dev = (1 + 0.3 * li) * decay * (0.15 + 0.05 * k)  # transient
                                    drift = 0.04 * k * (1 + 0.2 * li)  # persistent, grows with sparsity
                                    v = dense_vec[metric][li]
                                    if metric == "gradflow":
                                        v = v * (1 + dev + 2 * drift)
                                    elif metric == "connectivity":
                                        v = v - 0.5 * dev - 0.5 * drift
                                    else:
                                        v = v - 0.6 * dev - drift
                                    els.append(dict(base, iteration=k, epoch=e, metric=metric, layer=ln,
                                                    layer_index=li, value=v))
                                    if e == stop_epoch:
                                        lys.append(dict(base, iteration=k, metric=metric, layer=ln,
                                                        layer_index=li, value=v))
                        _, _, _, val, _ = rows[-1]
                        flow = 2.0 * stop_epoch if crit & {"infoflow", "gradflow"} else 0.0
                        its.append(dict(base, iteration=k, remaining_weights=rw, test_accuracy=val - 0.004,
                                        val_accuracy=val, epochs_trained=stop_epoch, stop_reason=reason,
                                        train_seconds=30.0 * stop_epoch + rng.uniform(0, 5), flow_seconds=flow))
    it = pd.DataFrame(its)
    meth = pd.DataFrame([dict(method=m, pruner=METHOD_SPECS[m][0], stops=METHOD_SPECS[m][1],
                              infoflow_epsilon=METHOD_SPECS[m][2], gradflow_epsilon=METHOD_SPECS[m][3],
                              accuracy_delta=METHOD_SPECS[m][4], max_epochs=max_epochs) for m in methods])
    if not it.empty:
        last = it.sort_values("iteration").groupby(["dataset", "arch", "method", "seed"]).tail(1)
        tot = it.groupby(["dataset", "arch", "method", "seed"]).agg(
            ep=("epochs_trained", "sum"), sec=("train_seconds", "sum")).reset_index()
        for (ds, arch, m), g in last.groupby(["dataset", "arch", "method"]):
            t = tot[(tot.dataset == ds) & (tot.arch == arch) & (tot.method == m)]
            summ.append(dict(dataset=ds, arch=arch, method=m, seeds=len(g),
                             final_remaining_weights=g.remaining_weights.mean(),
                             test_accuracy_mean=g.test_accuracy.mean(), test_accuracy_std=g.test_accuracy.std(),
                             total_epochs_mean=t.ep.mean(), total_epochs_std=t.ep.std(),
                             total_seconds_mean=t.sec.mean(), total_seconds_std=t.sec.std(),
                             speedup_epochs_vs_lth=np.nan, speedup_seconds_vs_lth=np.nan,
                             speedup_epochs_vs_sap=np.nan, speedup_seconds_vs_sap=np.nan))
    tables = {"iterations": it, "layers": pd.DataFrame(lys), "epochs": pd.DataFrame(eps),
              "epoch_layers": pd.DataFrame(els), "methods": meth, "summary": pd.DataFrame(summ)}
    for name, df in tables.items():
        if empty:
            df = df.iloc[0:0]
        df.to_csv(root / f"{name}.csv", index=False)
    return root


@pytest.fixture(scope="module")
def tables(tmp_path_factory) -> Path:
    return make_tables(tmp_path_factory.mktemp("tables"))


@pytest.fixture(scope="module")
def rendered(tables, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("figures")
    for name in plots.FIGURES:
        plots.make_figure(name, tables, out / f"{name}.pdf")
    return out


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def pdf_pages(path: Path) -> int:
    return len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", path.read_bytes()))


def all_texts(fig) -> str:
    return "\n".join(t.get_text() for t in fig.findobj(lambda o: hasattr(o, "get_text")))


# ---------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------


def test_figure_names():
    assert set(plots.FIGURES) == {"similarity", "connectivity", "gradient", "comparison",
                                  "accuracy", "epochs", "cost", "ablation"}


@pytest.mark.parametrize("name", sorted(plots.FIGURES))
def test_every_figure_writes_pdf_and_png(rendered, name):
    pdf, png = rendered / f"{name}.pdf", rendered / f"{name}.png"
    assert pdf.is_file() and png.is_file()
    assert pdf.read_bytes().startswith(b"%PDF")
    assert pdf.stat().st_size > 2000
    w, h = png_size(png)
    assert w > 200 and h > 200
    import matplotlib.image

    img = matplotlib.image.imread(png)
    assert img.shape[:2] == (h, w)
    assert img.std() > 0.01, "PNG is blank"


def test_no_temporary_files_left(rendered):
    leftovers = sorted(p.name for p in rendered.iterdir()
                       if p.suffix not in (".pdf", ".png"))
    assert leftovers == []
    assert len(list(rendered.iterdir())) == 2 * len(plots.FIGURES)


def test_similarity_has_one_page_per_dataset_arch_method(rendered):
    # 2 datasets x 1 arch x 2 methods
    assert pdf_pages(rendered / "similarity.pdf") == 4
    assert pdf_pages(rendered / "comparison.pdf") == 1


def test_similarity_pages_match_groups(tmp_path):
    t = make_tables(tmp_path / "t", methods=("lth", "ciap", "giap"), datasets=("cifar10",), seeds=(0,))
    figs = plots.FIGURES["similarity"](t)
    assert len(figs) == 3
    titles = [f.get_suptitle() for f in figs]
    assert [re.search(r"— (\S+):", s).group(1) for s in titles] == ["lth", "ciap", "giap"]
    # one row per IMP iteration, each with the five panels
    row_titles = [t.get_text() for t in figs[0].texts if (t.get_gid() or "").startswith("row-title")]
    assert [r.split(" · ")[0] for r in row_titles] == ["iteration 1", "iteration 2", "iteration 3"]
    assert len(figs[0].axes) == 3 * 5 + 1  # + the colorbar
    out = tmp_path / "sim.pdf"
    plots.make_figure("similarity", t, out)
    assert pdf_pages(out) == 3


def test_similarity_marks_epsilon_and_dense_reference(tables):
    fig = plots.FIGURES["similarity"](tables)[1]  # pages: (cifar10, lth), (cifar10, fastprune), (mnist, ...)
    assert "fastprune" in fig.get_suptitle()
    panel = {ax.get_label(): ax for ax in fig.axes}
    ys = [tuple(l.get_ydata()) for l in panel["iteration 1: distance"].get_lines()]
    assert (0.15, 0.15) in ys, "infoflow epsilon of fastprune is drawn as a horizontal line"
    # fastprune stops on infoflow: only the information-flow distance is drawn; lth (no flow stop) shows both
    def distance_colors(f):
        ax = next(a for a in f.axes if a.get_label() == "iteration 1: distance")
        return {l.get_color() for l in ax.get_lines() if l.get_marker() == "o"}

    assert distance_colors(fig) == {"black"}
    assert distance_colors(plots.FIGURES["similarity"](tables)[0]) == {"black", "0.45"}
    for metric in ("connectivity", "gradflow", "similarity"):
        ax = panel[f"iteration 2: {metric}"]
        assert any(l.get_linestyle() == "--" and l.get_color() == "black" for l in ax.get_lines()), metric
        assert len(ax.get_lines()) >= 2, "one curve per epoch plus the dense reference"
    title = next(t.get_text() for t in fig.texts if t.get_gid() == "row-title-1")
    assert re.match(r"iteration 1 · \d+(\.\d+)?% weights remaining · stopped at", title), title
    assert "infoflow" in title


def test_panels_one_row_per_dataset_arch(tables):
    fig = plots.FIGURES["comparison"](tables)[0]
    titles = [ax.get_title() for ax in fig.axes]
    assert sum(t.startswith("cifar10 / vgg11") for t in titles) == 3
    assert sum(t.startswith("mnist / vgg11") for t in titles) == 3
    fig = plots.FIGURES["accuracy"](tables)[0]
    assert sorted(ax.get_title() for ax in fig.axes if ax.get_visible() and ax.axison) == \
        ["cifar10 / vgg11", "mnist / vgg11"]


def test_method_colors_stable():
    a = plots.method_colors(["lth", "sap", "ciap", "giap", "earlystop", "zeta", "alpha"])
    b = plots.method_colors(["alpha", "earlystop", "zeta", "giap", "ciap", "sap", "lth"])
    assert a == b
    assert plots.method_colors(["lth"])["lth"] == a["lth"] == plots.CANONICAL_COLORS["lth"]
    for m in plots.CANONICAL_METHODS:
        assert plots.method_colors([m, "custom"])[m] == plots.CANONICAL_COLORS[m]
    assert len(set(a.values())) == len(a), "every method gets its own colour"
    many = plots.method_colors([f"m{i}" for i in range(30)] + list(plots.CANONICAL_METHODS))
    assert len(set(many.values())) == len(many)
    assert plots.method_order(["zeta", "ciap", "alpha", "lth"]) == ["lth", "ciap", "alpha", "zeta"]


def test_figures_use_the_method_colors(tables):
    from matplotlib.colors import to_hex

    colors = plots.method_colors(pd.read_csv(tables / "methods.csv")["method"])
    for name in ("comparison", "accuracy", "cost"):
        fig = plots.FIGURES[name](tables)[0]
        legend = {t.get_text(): to_hex(h.get_color())
                  for t, h in zip(fig.legends[0].get_texts(), fig.legends[0].legend_handles)
                  if t.get_text() in colors}
        assert legend == {m: colors[m].lower() for m in ("lth", "fastprune")}, name
        line_colors = {to_hex(l.get_color()) for ax in fig.axes for l in ax.get_lines()}
        assert colors["fastprune"].lower() in line_colors
        assert colors["lth"].lower() in line_colors


def test_epsilon_sweep_detection():
    rows = [dict(method=m, pruner=p, stops=s, infoflow_epsilon=ei, gradflow_epsilon=eg, accuracy_delta=d,
                 max_epochs=6) for m, (p, s, ei, eg, d) in plots_specs(
        ["lth", "sap", "ciap", "ciap_e0.08", "ciap_e0.12", "giap"]).items()]
    sweeps = plots.find_epsilon_sweeps(pd.DataFrame(rows))
    assert len(sweeps) == 1
    sw = sweeps[0]
    assert sw.parameter == "infoflow_epsilon"
    assert sw.methods == ("ciap_e0.08", "ciap", "ciap_e0.12")
    assert sw.values == (0.08, 0.10, 0.12)
    no_sweep = [r for r in rows if not r["method"].startswith("ciap_e")]
    assert plots.find_epsilon_sweeps(pd.DataFrame(no_sweep)) == []
    # different pruners are not a sweep
    rows2 = [dict(r) for r in no_sweep] + [dict(method="magciap", pruner="magnitude", stops="infoflow",
                                                 infoflow_epsilon=0.2, gradflow_epsilon=np.nan,
                                                 accuracy_delta=np.nan, max_epochs=6)]
    assert plots.find_epsilon_sweeps(pd.DataFrame(rows2)) == []
    # same pruner name but different pruner settings (spec column) are not a sweep either
    rows3 = [dict(r, spec='{"name": "sap", "q": 1}') for r in rows]
    rows3[[r["method"] for r in rows3].index("ciap_e0.12")]["spec"] = '{"name": "sap", "q": 2}'
    (sw3,) = plots.find_epsilon_sweeps(pd.DataFrame(rows3))
    assert sw3.methods == ("ciap_e0.08", "ciap")


def plots_specs(names):
    return {m: METHOD_SPECS[m] for m in names}


def test_ablation_with_and_without_sweep(tables, tmp_path):
    fig = plots.FIGURES["ablation"](tables)[0]
    assert "no epsilon sweep in this experiment" in all_texts(fig)
    t = make_tables(tmp_path / "sweep", methods=("sap", "ciap", "ciap_e0.08", "ciap_e0.12"),
                    datasets=("cifar10",), iterations=2)
    fig = plots.FIGURES["ablation"](t)[0]
    text = all_texts(fig)
    assert "no epsilon sweep" not in text
    assert "ciap_e0.08" in text
    xs = {x for ax in fig.axes for l in ax.get_lines() for x in np.atleast_1d(l.get_xdata())}
    assert {0.08, 0.10, 0.12} <= {round(float(x), 6) for x in xs}
    plots.make_figure("ablation", t, tmp_path / "abl.pdf")
    assert (tmp_path / "abl.png").is_file()


def test_unknown_figure_name(tables, tmp_path):
    with pytest.raises(ValueError) as err:
        plots.make_figure("nonsense", tables, tmp_path / "x.pdf")
    for name in plots.FIGURES:
        assert name in str(err.value)
    assert not (tmp_path / "x.pdf").exists()


def test_empty_tables_give_no_data_figures(tmp_path):
    t = make_tables(tmp_path / "empty", empty=True)
    for name in plots.FIGURES:
        fig = plots.FIGURES[name](t)[0]
        text = all_texts(fig)
        assert "no data" in text or "no epsilon sweep" in text, name
        plots.make_figure(name, t, tmp_path / "out" / f"{name}.pdf")
        assert (tmp_path / "out" / f"{name}.pdf").read_bytes().startswith(b"%PDF")
        assert png_size(tmp_path / "out" / f"{name}.png")[0] > 200


def test_zero_byte_tables(tmp_path):
    for name in ("iterations", "layers", "epochs", "epoch_layers", "methods", "summary"):
        (tmp_path / f"{name}.csv").write_text("")
    plots.make_figure("comparison", tmp_path, tmp_path / "c.pdf")
    assert (tmp_path / "c.pdf").read_bytes().startswith(b"%PDF")


def test_missing_column_is_reported(tables, tmp_path):
    from infcop import InfcopError

    t = make_tables(tmp_path / "t", datasets=("cifar10",), seeds=(0,))
    it = pd.read_csv(t / "iterations.csv").drop(columns="test_accuracy")
    it.to_csv(t / "iterations.csv", index=False)
    with pytest.raises(InfcopError, match="test_accuracy"):
        plots.make_figure("accuracy", t, tmp_path / "a.pdf")


def test_overwrite_existing_output(tables, tmp_path):
    out = tmp_path / "acc.pdf"
    out.write_bytes(b"stale")
    out.with_suffix(".png").write_bytes(b"stale")
    plots.make_figure("accuracy", tables, out)
    assert out.read_bytes().startswith(b"%PDF")
    assert png_size(out.with_suffix(".png"))[0] > 200


def test_mean_ci_t_interval():
    df = pd.DataFrame({"g": [1, 1, 1, 2], "v": [1.0, 2.0, 3.0, 5.0]})
    a = plots.mean_ci(df, "g", "v").set_index("g")
    assert a.loc[1, "mean"] == pytest.approx(2.0)
    assert a.loc[1, "hi"] - a.loc[1, "mean"] == pytest.approx(4.303 / np.sqrt(3), rel=1e-3)
    assert a.loc[2, "lo"] == a.loc[2, "hi"] == 5.0  # one seed: no band
    assert a.loc[1, "n"] == 3


def test_parse_stops():
    assert plots.parse_stops("infoflow+accuracy") == ("accuracy", "infoflow")
    assert plots.parse_stops("budget") == ()
    assert plots.parse_stops(float("nan")) == ()
    assert plots.parse_stops("") == ()


def test_import_is_cheap_and_names_are_registered_once():
    import importlib.util
    import subprocess
    import sys

    code = ("import sys, infcop.plots as p; names = list(p.FIGURES); "
            "print(sorted(m for m in ('matplotlib', 'seaborn', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    for name, spec in plots.FIGURES.items():
        assert spec.name == name and spec.description and callable(spec.load())
    assert importlib.util.find_spec("infcop.plots.__main__") is None, "the CLI is the only entry point"


def test_figure_outputs_match_what_make_figure_writes(tables, tmp_path):
    for name in ("accuracy", "similarity"):
        out = tmp_path / name / f"{name}.pdf"
        plots.make_figure(name, tables, out)
        assert sorted(plots.figure_outputs(name, out, ["lth", "fastprune"])) == sorted(out.parent.iterdir())

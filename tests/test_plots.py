"""Tests for infcop.showing.plots: the registry and writer, and every figure on synthetic tables of the
table contract (tests/test_plots_tables.py); the dashboard and the frontier have their own files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from infcop.showing import plots
from test_plots_tables import METHODS, all_texts, has_band, lines, make_tables, method_rows, pdf_pages, png_size

TWO = ("lth", "fastprune")


@pytest.fixture(scope="module")
def tables(tmp_path_factory) -> Path:
    return make_tables(tmp_path_factory.mktemp("tables"), methods=TWO, datasets=("cifar10", "mnist"),
                       archs=("vgg11",), seeds=(0, 1), iterations=2, layers=3)


@pytest.fixture(scope="module")
def rendered(tables, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("figures")
    for name in plots.FIGURES:
        plots.make_figure(name, tables, out / f"{name}.pdf")
    return out


# ---------------------------------------------------------------------------
# Registry and writer
# ---------------------------------------------------------------------------


def test_figure_names():
    assert set(plots.FIGURES) == {"similarity", "connectivity", "gradient", "comparison",
                                  "accuracy", "epochs", "cost", "ablation", "frontier", "verdicts"}


def test_import_is_cheap_and_names_are_registered_once():
    import importlib.util
    import subprocess
    import sys

    code = ("import sys, infcop.showing.plots as p; names = list(p.FIGURES); "
            "print(sorted(m for m in ('matplotlib', 'seaborn', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    for name, spec in plots.FIGURES.items():
        assert spec.name == name and spec.description and callable(spec.load())
    assert importlib.util.find_spec("infcop.showing.plots.__main__") is None, "the CLI is the only entry point"


@pytest.mark.parametrize("name", sorted(plots.FIGURES))
def test_every_figure_writes_what_figure_outputs_says(rendered, name):
    files = plots.figure_outputs(name, rendered / f"{name}.pdf", TWO)
    pdf, pngs = files[0], files[1:]
    assert pdf.read_bytes().startswith(b"%PDF") and pdf.stat().st_size > 2000
    if name == "similarity":
        assert [p.name for p in pngs] == ["similarity-lth.png", "similarity-fastprune.png"]
        assert not (rendered / "similarity.png").exists(), "no PNG of page 1 only"
    else:
        assert [p.name for p in pngs] == [f"{name}.png"]
    import matplotlib.image

    for png in pngs:
        w, h = png_size(png)
        assert w > 200 and h > 200
        img = matplotlib.image.imread(png)
        assert img.shape[:2] == (h, w)
        assert img.std() > 0.01, f"{png.name} is blank"


def test_no_other_files_written(rendered):
    expected = {p.name for n in plots.FIGURES for p in plots.figure_outputs(n, rendered / f"{n}.pdf", TWO)}
    assert {p.name for p in rendered.iterdir()} == expected  # no temporary files left either


def test_unknown_figure_name(tables, tmp_path):
    with pytest.raises(ValueError) as err:
        plots.make_figure("nonsense", tables, tmp_path / "x.pdf")
    for name in plots.FIGURES:
        assert name in str(err.value)
    assert not (tmp_path / "x.pdf").exists()
    with pytest.raises(ValueError):
        plots.figure_outputs("nonsense", tmp_path / "x.pdf", TWO)


def test_empty_tables_give_no_data_figures(tmp_path):
    t = make_tables(tmp_path / "empty", empty=True)
    for name in plots.FIGURES:
        fig = plots.FIGURES[name](t)[0]
        text = all_texts(fig)
        assert "no data" in text or "no epsilon sweep" in text, name
        out = tmp_path / "out" / f"{name}.pdf"
        plots.make_figure(name, t, out)
        assert out.read_bytes().startswith(b"%PDF")
        for png in plots.figure_outputs(name, out, [])[1:]:
            assert png_size(png)[0] > 200


def test_zero_byte_tables(tmp_path):
    for name in ("iterations", "layers", "epochs", "epoch_layers", "methods", "summary", "criteria", "frontier"):
        (tmp_path / f"{name}.csv").write_text("")
    for name in ("comparison", "frontier", "similarity"):
        plots.make_figure(name, tmp_path, tmp_path / f"{name}.pdf")
        assert (tmp_path / f"{name}.pdf").read_bytes().startswith(b"%PDF")


def test_missing_column_is_reported(tmp_path):
    from infcop import InfcopError

    t = make_tables(tmp_path / "t", methods=TWO, seeds=(0,))
    it = pd.read_csv(t / "iterations.csv").drop(columns="test_accuracy")
    it.to_csv(t / "iterations.csv", index=False)
    with pytest.raises(InfcopError, match="test_accuracy"):
        plots.make_figure("accuracy", t, tmp_path / "a.pdf")
    (t / "frontier.csv").unlink()
    with pytest.raises(InfcopError, match="frontier.csv"):
        plots.make_figure("frontier", t, tmp_path / "f.pdf")


def test_overwrite_existing_output(tables, tmp_path):
    out = tmp_path / "acc.pdf"
    out.write_bytes(b"stale")
    out.with_suffix(".png").write_bytes(b"stale")
    plots.make_figure("accuracy", tables, out)
    assert out.read_bytes().startswith(b"%PDF")
    assert png_size(out.with_suffix(".png"))[0] > 200


# ---------------------------------------------------------------------------
# Shared conventions
# ---------------------------------------------------------------------------


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
    assert plots.method_order(["sap_fixed10", "sap_fixed5", "sap"]) == ["sap", "sap_fixed5", "sap_fixed10"]


def test_figures_use_the_method_colors(tables):
    from matplotlib.colors import to_hex

    colors = plots.method_colors(pd.read_csv(tables / "methods.csv")["method"])
    for name in ("comparison", "accuracy", "cost"):
        fig = plots.FIGURES[name](tables)[0]
        legend = {t.get_text(): to_hex(h.get_color())
                  for t, h in zip(fig.legends[0].get_texts(), fig.legends[0].legend_handles)
                  if t.get_text() in colors}
        assert legend == {m: colors[m].lower() for m in TWO}, name
        line_colors = {to_hex(ln.get_color()) for ax in fig.axes for ln in ax.get_lines()}
        assert colors["fastprune"].lower() in line_colors
        assert colors["lth"].lower() in line_colors


@pytest.mark.parametrize("name", ["comparison", "accuracy", "cost", "ablation"])
def test_few_seeds_drawn_as_seeds_many_as_a_band(tmp_path, name):
    """< 5 seeds: each seed a thin line under the mean, no t-band (it would cover the panel); 5+: the band."""
    methods = ("sap", "ciap", "ciap_e0.08", "ciap_e0.12") if name == "ablation" else ("lth", "ciap")
    for seeds, band in (((0, 1, 2), False), ((0, 1, 2, 3, 4), True)):
        t = make_tables(tmp_path / f"s{len(seeds)}", methods=methods, seeds=seeds, iterations=2, layers=3)
        fig = plots.FIGURES[name](t)[0]
        seed_lines = [ln for ax in fig.axes for ln in lines(ax, "seed")]
        assert has_band(fig) is band, (name, len(seeds))
        if band:
            assert not seed_lines
        else:
            assert seed_lines and all(ln.get_linewidth() < 1 for ln in seed_lines)
            assert all(ln.get_linewidth() >= 1 for ax in fig.axes for ln in lines(ax, "mean"))
        assert ("t-interval" in fig.get_suptitle()) is band


def test_epochs_figure_shows_seeds_as_dots_with_few_seeds(tmp_path):
    t = make_tables(tmp_path, methods=("lth", "ciap"), seeds=(0, 1, 2), iterations=2)
    fig = plots.FIGURES["epochs"](t)[0]
    dots = np.concatenate([c.get_offsets() for c in fig.axes[0].collections if len(c.get_offsets())])
    it = pd.read_csv(t / "iterations.csv")
    assert len(dots) == len(it[it["iteration"] > 0])  # one dot per run and iteration
    assert sorted(dots[:, 1]) == sorted(it[it["iteration"] > 0]["epochs_trained"])


def test_identical_methods_stay_distinguishable(tmp_path):
    t = make_tables(tmp_path, methods=("ciap", "ciap_twin"), copies={"ciap_twin": "ciap"},
                    specs={"ciap_twin": METHODS["ciap"]}, seeds=(0,), iterations=3)
    for name in ("comparison", "accuracy"):
        fig = plots.FIGURES[name](t)[0]
        ax = fig.axes[0]
        a, b = lines(ax, "mean")[:2]
        assert np.allclose(a.get_ydata(), b.get_ydata()), "the same numbers"
        assert a.get_marker() != b.get_marker(), name
        assert not np.allclose(a.get_xdata(), b.get_xdata()), f"{name}: a small x dodge"
        assert np.allclose(a.get_xdata(), b.get_xdata(), rtol=0.05, atol=0.2), "but a small one"


def test_epoch_budget_line_is_each_methods_own(tmp_path):
    """lth and ciap train up to 10 epochs, fastprune's preset says 6: no single 'epoch budget (6)' for all."""
    t = make_tables(tmp_path / "mixed", methods=("lth", "ciap", "fastprune"), seeds=(0,), iterations=2)
    for name, ax_index in (("comparison", 1), ("epochs", 0)):
        fig = plots.FIGURES[name](t)[0]
        labels = [x.get_text() for x in fig.legends[0].get_texts()]
        budget = [x for x in labels if x.startswith("epoch budget")]
        assert sorted(budget) == ["epoch budget 10: lth, ciap", "epoch budget 6: fastprune"], (name, labels)
        ys = sorted(ln.get_ydata()[0] for ln in lines(fig.axes[ax_index], "budget"))
        assert ys == [6, 10], name
    t = make_tables(tmp_path / "same", methods=("lth", "sap"), seeds=(0,), iterations=2)
    fig = plots.FIGURES["comparison"](t)[0]
    assert "epoch budget (10)" in [x.get_text() for x in fig.legends[0].get_texts()]
    # fixed-budget controls show their budget by their own curves: no line of their own
    t = make_tables(tmp_path / "controls", methods=("sap", "sap_fixed1", "sap_fixed3"), seeds=(0,), iterations=2)
    fig = plots.FIGURES["comparison"](t)[0]
    assert lines(fig.axes[1], "budget") == []


# ---------------------------------------------------------------------------
# Ablation
# ---------------------------------------------------------------------------


def test_epsilon_sweep_detection():
    rows = method_rows(["lth", "sap", "ciap", "ciap_e0.08", "ciap_e0.12", "giap"])
    sweeps = plots.find_epsilon_sweeps(rows)
    assert len(sweeps) == 1
    sw = sweeps[0]
    assert sw.parameter == "infoflow_epsilon"
    assert sw.methods == ("ciap_e0.08", "ciap", "ciap_e0.12")
    assert sw.values == (0.08, 0.10, 0.12)
    no_sweep = rows[~rows["method"].str.startswith("ciap_e")]
    assert plots.find_epsilon_sweeps(no_sweep) == []
    # different pruners are not a sweep
    mag = method_rows(["ciap"]).assign(method="magciap", pruner="magnitude", infoflow_epsilon=0.2,
                                       infoflow_threshold="ε = 0.2")
    assert plots.find_epsilon_sweeps(pd.concat([no_sweep, mag])) == []
    # same pruner name but different pruner settings (spec column) are not a sweep either
    rows3 = rows.copy()
    rows3.loc[rows3["method"] == "ciap_e0.12", "spec"] = '{"name": "sap", "q": 2}'
    (sw3,) = plots.find_epsilon_sweeps(rows3)
    assert sw3.methods == ("ciap_e0.08", "ciap")


def test_sweeps_with_thresholds_that_are_not_absolute():
    """auto thresholds (empty ε) are never swept nor mixed into an ε sweep; recover α can be swept."""
    specs = {"ciap_rec25": dict(METHODS["ciap_rec"],
                                crits=(("infoflow", "signed_mean", "recover", 0.25),))}
    rows = method_rows(["ciap", "ciap_e0.08", "ciap_auto", "ciap_pat", "ciap_rec", "ciap_rec25"], specs)
    got = {(s.parameter, s.methods, s.values) for s in plots.find_epsilon_sweeps(rows)}
    assert got == {("infoflow_epsilon", ("ciap_e0.08", "ciap"), (0.08, 0.1)),
                   ("infoflow_recover", ("ciap_rec25", "ciap_rec"), (0.25, 0.5))}
    # a CKA measure with an absolute ε is not a sweep with the signed-mean ε methods
    cka = method_rows(["ciap"]).assign(method="ciap_cka", infoflow_measure="cka", infoflow_epsilon=0.3,
                                       infoflow_threshold="ε = 0.3")
    assert plots.find_epsilon_sweeps(pd.concat([method_rows(["ciap"]), cka])) == []


def test_ablation_with_and_without_sweep(tables, tmp_path):
    fig = plots.FIGURES["ablation"](tables)[0]
    assert "no epsilon sweep in this experiment" in all_texts(fig)
    t = make_tables(tmp_path / "sweep", methods=("sap", "sap_fixed1", "ciap", "ciap_e0.08", "ciap_e0.12",
                                                 "ciap_auto"), iterations=2, seeds=(0, 1))
    fig = plots.FIGURES["ablation"](t)[0]
    text = all_texts(fig)
    assert "no epsilon sweep" not in text
    assert "ciap_e0.08" in text and "ciap_auto" not in text
    assert "sap (fixed budget 10, no early stop)" in text and "sap_fixed1" not in text  # same budget only
    xs = {x for ax in fig.axes for ln in ax.get_lines() for x in np.atleast_1d(ln.get_xdata())}
    assert {0.08, 0.10, 0.12} <= {round(float(x), 6) for x in xs}
    plots.make_figure("ablation", t, tmp_path / "abl.pdf")
    assert (tmp_path / "abl.png").is_file()


# ---------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------


def test_mean_ci_t_interval():
    df = pd.DataFrame({"g": [1, 1, 1, 2], "v": [1.0, 2.0, 3.0, 5.0]})
    a = plots.mean_ci(df, "g", "v").set_index("g")
    assert a.loc[1, "mean"] == pytest.approx(2.0)
    assert a.loc[1, "hi"] - a.loc[1, "mean"] == pytest.approx(4.303 / np.sqrt(3), rel=1e-3)
    assert a.loc[2, "lo"] == a.loc[2, "hi"] == 5.0  # one seed: no band
    assert a.loc[1, "n"] == 3


def test_seaborn_errorbar_is_the_same_deterministic_t_interval():
    from infcop.showing.plots.stats import t_errorbar

    v = [1.0, 2.0, 3.0]
    lo, hi = t_errorbar()(v)
    assert (lo, hi) == pytest.approx((2 - 4.303 / np.sqrt(3), 2 + 4.303 / np.sqrt(3)), rel=1e-3)
    assert t_errorbar(clip=(1.5, None))(v)[0] == 1.5
    assert t_errorbar()(v) == t_errorbar()(v)


def test_parse_stops():
    assert plots.parse_stops("infoflow+accuracy") == ("accuracy", "infoflow")
    assert plots.parse_stops("budget") == ()
    assert plots.parse_stops(float("nan")) == ()
    assert plots.parse_stops("") == ()


def test_pdf_pages_helper(rendered):
    assert pdf_pages(rendered / "comparison.pdf") == 1


@pytest.mark.parametrize("width", [6.0, 11.0, 15.0])
def test_legend_below_the_panels_stays_inside_the_figure(width):
    """The default run's legend: 11 methods and one long budget label (it once ran off both edges)."""
    from matplotlib.lines import Line2D

    from infcop.showing.plots.style import legend_below, new_figure

    fig = new_figure(width, 4.0)
    fig.add_subplot().plot([0, 1], [0, 1])
    names = ["lth", "sap", "ciap", "giap", "earlystop", "giap_auto"] + [f"sap_fixed{n}" for n in (0, 1, 2, 3, 5)]
    handles = [Line2D([], [], marker="o", label=n) for n in names]
    handles.append(Line2D([], [], ls=":", label="epoch budget 10: lth, sap, ciap, giap, earlystop, giap_auto"))
    legend_below(fig, handles)
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    (legend,) = fig.legends
    box = legend.get_window_extent(canvas.get_renderer())
    assert box.x0 >= 0 and box.x1 <= fig.bbox.width, (box, fig.bbox.width)
    assert len(legend.get_texts()) == len(handles)

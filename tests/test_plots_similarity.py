"""The similarity dashboard: epoch 0, each criterion's distance and effective threshold, the method's
own remaining weights, one PNG per method, readable tick labels, seeds or bands."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from infcop.showing import plots
from test_plots_tables import has_band, lines, make_tables, pdf_pages, png_size


def page(figs, method, dataset=None):
    for f in figs:
        if f.get_label() == method and (dataset is None or f.get_suptitle().startswith(dataset)):
            return f
    raise AssertionError(f"no page for {method}")


def panel(fig, k, key):
    return next(ax for ax in fig.axes if ax.get_label() == f"iteration {k}: {key}")


def row_title(fig, k):
    return next(t.get_text() for t in fig.texts if t.get_gid() == f"row-title-{k}")


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """lth, ciap (study ε), giap, ciap_auto (calibrated CKA), ciap_rec (recover), 3 seeds."""
    t = make_tables(tmp_path_factory.mktemp("study"), methods=("lth", "ciap", "giap", "ciap_auto", "ciap_rec"),
                    seeds=(0, 1, 2), iterations=3, layers=4)
    return t, plots.FIGURES["similarity"](t)


def test_one_page_per_dataset_arch_method_in_order(tmp_path):
    t = make_tables(tmp_path / "t", methods=("lth", "ciap", "giap"), datasets=("cifar10", "mnist"), seeds=(0,),
                    iterations=2, layers=3)
    figs = plots.FIGURES["similarity"](t)
    titles = [f.get_suptitle() for f in figs]
    assert [re.match(r"(\S+) / \S+ — (\S+):", s).groups() for s in titles] == \
        [(d, m) for d in ("cifar10", "mnist") for m in ("lth", "ciap", "giap")]
    assert [f.get_label() for f in figs] == ["lth", "ciap", "giap"] * 2
    row_titles = [x.get_text() for x in figs[0].texts if (x.get_gid() or "").startswith("row-title")]
    assert [r.split(" · ")[0] for r in row_titles] == ["iteration 1", "iteration 2"]
    assert len(figs[0].axes) == 2 * 5 + 1  # + the colorbar


def test_row_titles_give_the_methods_own_remaining_weights(study):
    """The old dashboard averaged remaining weights over all methods (lth iteration 1 read 51%, not 80%)."""
    t, figs = study
    it = pd.read_csv(t / "iterations.csv")
    for m in ("lth", "ciap"):
        for k in (1, 2, 3):
            rw = it[(it["method"] == m) & (it["iteration"] == k)]["remaining_weights"].mean()
            assert f" · {100 * rw:.3g}% weights remaining · " in row_title(page(figs, m), k), (m, k)
    assert "iteration 1 · 80% weights remaining" in row_title(page(figs, "lth"), 1)


def test_every_panel_starts_at_epoch_0(study):
    t, figs = study
    fig = page(figs, "ciap_auto")
    for k in (1, 2, 3):
        for key in ("distance", "val_accuracy"):
            ax = panel(fig, k, key)
            assert ax.get_xlim()[0] < 0 <= ax.get_xlim()[1]
            assert min(ln.get_xdata()[0] for ln in lines(ax, "mean")) == 0, (k, key)
        for key in ("connectivity", "gradflow", "similarity"):
            assert lines(panel(fig, k, key), "epoch-0"), (k, key)
            assert lines(panel(fig, k, key), "dense"), "the dense network's vector, dashed"
    # epoch 0 holds the pruned network's accuracy, far below the dense network's
    ep = pd.read_csv(t / "epochs.csv")
    e0 = ep[(ep["method"] == "ciap_auto") & (ep["iteration"] == 1) & (ep["epoch"] == 0)]["val_accuracy"].mean()
    acc = lines(panel(fig, 1, "val_accuracy"), "mean")[0]
    assert acc.get_ydata()[0] == pytest.approx(100 * e0)


def test_distance_of_each_criterion_with_its_effective_threshold(study):
    t, figs = study
    cr = pd.read_csv(t / "criteria.csv")
    for method, crit in (("ciap", "infoflow"), ("giap", "gradflow"), ("ciap_auto", "infoflow"),
                         ("ciap_rec", "infoflow")):
        fig = page(figs, method)
        c = cr[(cr["method"] == method) & (cr["criterion"] == crit)]
        thresholds = []
        for k in (1, 2, 3):
            ck = c[c["iteration"] == k]
            ax = panel(fig, k, "distance")
            (mean,) = lines(ax, "mean")
            assert np.allclose(mean.get_ydata(), ck.groupby("epoch")["value"].mean()), (method, k)
            (thr,) = lines(ax, f"threshold-{crit}")
            want = ck.groupby("seed")["threshold"].mean().mean()
            assert thr.get_ydata()[0] == pytest.approx(want), (method, k)
            thresholds.append(want)
        legend = [x.get_text() for x in fig.legends[0].get_texts()]
        if method == "ciap_auto":
            assert "infoflow threshold: dense noise floor (auto), mean over seeds" in legend
            assert any("CKA" in x for x in legend)
        if method == "ciap_rec":
            assert "infoflow threshold: 0.5 × epoch-0 distance, mean over seeds" in legend
            assert len(set(np.round(thresholds, 9))) == 3, "recover thresholds follow each iteration's epoch 0"
        if method == "giap":
            assert "gradflow threshold: ε = 0.5 (absolute)" in legend


def test_accuracy_target_stop_epochs_and_reasons(study, tmp_path):
    t, figs = study
    cr = pd.read_csv(t / "criteria.csv")
    ep = pd.read_csv(t / "epochs.csv")
    fig = page(figs, "ciap_auto")
    for k in (1, 2):
        acc = cr[(cr["method"] == "ciap_auto") & (cr["criterion"] == "accuracy") & (cr["iteration"] == k)]
        (target,) = lines(panel(fig, k, "val_accuracy"), "accuracy-target")
        assert target.get_ydata()[0] == pytest.approx(100 * acc.groupby("seed")["threshold"].mean().mean())
        stops = ep[(ep["method"] == "ciap_auto") & (ep["iteration"] == k) & ep["stopped"]]
        drawn = {ln.get_xdata()[0] for ln in lines(panel(fig, k, "distance"), "stop")}
        assert drawn == set(stops["epoch"])
    # stop reasons as the data gives them, and which flow criteria held before any retraining
    title = row_title(page(figs, "ciap"), 1)
    assert "held at epoch 0: infoflow 3/3 seeds" in title
    ep.loc[(ep["method"] == "ciap") & ep["stopped"], "stop_reason"] = "infoflow+accuracy"
    ep.to_csv(t / "epochs.csv", index=False)
    try:
        assert "(infoflow+accuracy)" in row_title(page(plots.FIGURES["similarity"](t), "ciap"), 1)
    finally:
        make_tables(t, methods=("lth", "ciap", "giap", "ciap_auto", "ciap_rec"), seeds=(0, 1, 2), iterations=3,
                    layers=4)


def test_one_png_per_method_stacking_its_pages(tmp_path):
    t = make_tables(tmp_path / "t", methods=("lth", "ciap"), datasets=("cifar10", "mnist"), seeds=(0,),
                    iterations=2, layers=3)
    out = tmp_path / "fig" / "similarity.pdf"
    plots.make_figure("similarity", t, out)
    files = plots.figure_outputs("similarity", out, ["lth", "ciap"])
    assert sorted(files) == sorted(out.parent.iterdir())
    assert pdf_pages(out) == 4
    one = make_tables(tmp_path / "one", methods=("lth", "ciap"), datasets=("cifar10",), seeds=(0,), iterations=2,
                      layers=3)
    plots.make_figure("similarity", one, tmp_path / "one" / "similarity.pdf")
    w1, h1 = png_size(tmp_path / "one" / "similarity-lth.png")
    w2, h2 = png_size(out.with_name("similarity-lth.png"))
    assert w2 == w1 and h2 == 2 * h1, "both (dataset, arch) pages of lth, one below the other"


def text_boxes(fig, axes):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    r = FigureCanvasAgg(fig).get_renderer()
    fig.draw(r)
    return [(ax.get_label(), t.get_text(), t.get_window_extent(r)) for ax in axes
            for t in ax.get_xticklabels() if t.get_visible() and t.get_text()]


def test_dashboard_tick_labels_do_not_overlap(tmp_path):
    """Twenty layers with long names, as a ResNet's: no two x tick labels on the page overlap."""
    t = make_tables(tmp_path, methods=("ciap",), seeds=(0,), iterations=2, layers=20, layer_style="resnet")
    fig = plots.FIGURES["similarity"](t)[0]
    boxes = text_boxes(fig, fig.axes)
    assert len(boxes) > 20
    clashes = [(a[:2], b[:2]) for i, a in enumerate(boxes) for b in boxes[i + 1:] if a[2].overlaps(b[2])]
    assert clashes == []
    # nor do they run into the legend below
    legend = fig.legends[0].get_window_extent(fig.canvas.get_renderer())
    assert not any(b[2].overlaps(legend) for b in boxes)


@pytest.mark.parametrize("seeds", [(0, 1, 2), (0, 1, 2, 3, 4)])
def test_dashboard_seeds_or_band(tmp_path, seeds):
    t = make_tables(tmp_path, methods=("ciap_auto",), seeds=seeds, iterations=1, layers=3)
    fig = plots.FIGURES["similarity"](t)[0]
    seed_lines = lines(panel(fig, 1, "distance"), "seed") + lines(panel(fig, 1, "val_accuracy"), "seed")
    if len(seeds) < 5:
        assert len(seed_lines) == 2 * len(seeds) and not has_band(fig)
        assert "thin lines: single seeds" in fig.get_suptitle()
    else:
        assert not seed_lines and has_band(fig)
        assert "95% t-interval" in fig.get_suptitle()


def test_method_without_rows_gets_a_no_data_page_and_png(tmp_path):
    t = make_tables(tmp_path, methods=("lth", "ciap"), seeds=(0,), iterations=1, layers=3)
    ep = pd.read_csv(t / "epochs.csv")
    ep[ep["method"] != "ciap"].to_csv(t / "epochs.csv", index=False)
    out = tmp_path / "similarity.pdf"
    plots.make_figure("similarity", t, out)
    assert all(p.is_file() for p in plots.figure_outputs("similarity", out, ["lth", "ciap"]))
    assert pdf_pages(out) == 2


def test_dense_reference_from_another_run_when_a_method_has_none(tmp_path):
    t = make_tables(tmp_path, methods=("lth", "ciap"), seeds=(0,), iterations=1, layers=3)
    for name in ("layers", "iterations"):
        df = pd.read_csv(t / f"{name}.csv")
        df[~((df["method"] == "ciap") & (df["iteration"] == 0))].to_csv(t / f"{name}.csv", index=False)
    fig = page(plots.FIGURES["similarity"](t), "ciap")
    for key in ("connectivity", "gradflow", "similarity", "val_accuracy"):
        assert lines(panel(fig, 1, key), "dense"), key

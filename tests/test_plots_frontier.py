"""The frontier figure: test accuracy against the full cost (epoch-equivalents) at matched sparsity; and the
verdicts forest plot."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from infcop.showing import plots
from test_plots_tables import CONTROLS_SAP, all_texts, lines, make_tables

METHODS = ("lth", "ciap", "giap", "earlystop", "ciap_auto") + CONTROLS_SAP


@pytest.fixture(scope="module", params=[(0, 1, 2), (0, 1, 2, 3, 4)], ids=["3 seeds", "5 seeds"])
def frontier(request, tmp_path_factory):
    t = make_tables(tmp_path_factory.mktemp("frontier"), methods=METHODS, seeds=request.param, iterations=3,
                    layers=3, datasets=("digits", "mnist"))
    return t, plots.FIGURES["frontier"](t)[0], len(request.param)


def test_one_panel_per_dataset_arch_level_group(frontier):
    t, fig, _ = frontier
    fr = pd.read_csv(t / "frontier.csv")
    keys = fr.groupby(["dataset", "arch", "level", "control_group"]).ngroups
    shown = [ax for ax in fig.axes if ax.axison]
    assert len(shown) == keys == 4  # 2 data sets x 2 matched levels x 1 control group
    for (ds, arch, level, group), _ in fr.groupby(["dataset", "arch", "level", "control_group"]):
        title = f"{ds} / {arch} — {100 * level:.3g}% weights remaining\n{group}"
        assert sum(ax.get_title() == title for ax in shown) == 1, title


def _panel_data(t, ax):
    fr = pd.read_csv(t / "frontier.csv")
    for (ds, arch, level), f in fr.groupby(["dataset", "arch", "level"]):
        if ax.get_title().startswith(f"{ds} / {arch} — {100 * level:.3g}% "):
            return f, level
    raise AssertionError(ax.get_title())


def test_points_are_the_means_of_frontier_csv(frontier):
    t, fig, n = frontier
    for ax in (a for a in fig.axes if a.axison):
        f, _ = _panel_data(t, ax)
        means = f.groupby("method")[["cost_epoch_equivalents", "test_accuracy"]].mean()
        for m in f[f["role"] == "method"]["method"].unique():
            (pt,) = lines(ax, f"method-{m}")
            assert pt.get_xdata()[0] == pytest.approx(means.loc[m, "cost_epoch_equivalents"])
            assert pt.get_ydata()[0] == pytest.approx(100 * means.loc[m, "test_accuracy"])
            (c,) = [c for c in ax.collections if c.get_gid() == f"seeds-{m}"]  # every seed's point, always
            got = sorted(map(tuple, np.round(c.get_offsets(), 9)))
            want = f[f["method"] == m][["cost_epoch_equivalents", "test_accuracy"]].to_numpy() * [1, 100]
            assert got == sorted(map(tuple, np.round(want, 9)))
        assert not any(type(c).__name__ == "ErrorbarContainer" for c in ax.containers)  # no t-intervals
        assert ax.get_xlim()[0] >= -0.06 * (ax.get_xlim()[1] - ax.get_xlim()[0]) and ax.get_ylim()[1] <= 100.5


def test_control_curve_sorted_by_budget_and_labelled(frontier):
    t, fig, _ = frontier
    for ax in (a for a in fig.axes if a.axison):
        f, _ = _panel_data(t, ax)
        c = f[f["role"] == "control"].groupby("method").agg(budget=("budget", "first"),
                                                            x=("cost_epoch_equivalents", "mean"),
                                                            y=("test_accuracy", "mean")).sort_values("budget")
        (curve,) = lines(ax, "control-curve")
        assert np.allclose(curve.get_xdata(), c["x"]) and np.allclose(curve.get_ydata(), 100 * c["y"])
        assert list(c["budget"]) == [1, 2, 3, 5, 10]
        assert [x.get_text() for x in ax.texts] == ["1", "2", "3", "5", "10"]


def test_labels_carry_the_summarys_verdict(frontier):
    t, fig, _ = frontier
    su = pd.read_csv(t / "summary.csv", keep_default_na=False)
    for ax in (a for a in fig.axes if a.axison):
        f, level = _panel_data(t, ax)
        labels = [x.get_text() for x in ax.get_legend().get_texts()]
        for m in f[f["role"] == "method"]["method"].unique():
            r = su[(su["method"] == m) & np.isclose(pd.to_numeric(su["level"]), level)
                   & (su["dataset"] == f["dataset"].iloc[0])].iloc[0]
            (label,) = [x for x in labels if x.startswith(f"{m}: ")]
            assert label.startswith(f"{m}: {r['verdict']} (Δ {100 * float(r['delta']):+.2f} pp"), label


def _with_verdicts(tmp_path):
    t = make_tables(tmp_path, methods=("ciap", "giap") + CONTROLS_SAP, seeds=(0, 1, 2), iterations=2, layers=3)
    su = pd.read_csv(t / "summary.csv")
    su["verdict"] = su["verdict"].astype(object)
    for m, rows in (("ciap", [["better", 0.02, 0.01, 0.03], ["worse", -0.02, -0.03, -0.01]]),
                    ("giap", [["equivalent", 0.001, -0.002, 0.004], ["inconclusive", 0.01, -0.03, 0.05]])):
        i = su.index[su["method"] == m]
        for k, row in zip(i, rows):
            su.loc[k, ["verdict", "delta", "delta_lo", "delta_hi"]] = row
    su.to_csv(t / "summary.csv", index=False)
    return t, su


def test_verdict_words_in_the_frontier_legend(tmp_path):
    t, _ = _with_verdicts(tmp_path)
    text = all_texts(plots.FIGURES["frontier"](t)[0])
    assert "ciap: better (Δ +2.00 pp [+1.00, +3.00], margin 0.5 pp)" in text
    assert "ciap: worse (Δ -2.00 pp [-3.00, -1.00], margin 0.5 pp)" in text


def test_the_verdicts_forest_plot_draws_each_difference_its_bounds_the_margin_and_the_word(tmp_path):
    t, su = _with_verdicts(tmp_path)
    (fig,) = plots.FIGURES["verdicts"](t)
    (ax,) = [a for a in fig.axes if a.axison]
    judged = su[~su["verdict"].isin(["control"])]
    words = [x.get_text() for x in ax.texts if x.get_text() in ("better", "worse", "equivalent", "inconclusive")]
    assert sorted(words) == sorted(judged["verdict"])  # one word per (level, method)
    for r in judged.itertuples():
        bounds = [ln for ln in lines(ax, f"bounds-{r.method}") if np.allclose(ln.get_xdata(), [100 * r.delta_lo,
                                                                                               100 * r.delta_hi])]
        assert len(bounds) == 1, (r.method, r.verdict)
    (band,) = [p for p in ax.patches if p.get_gid() == "margin"]
    x0, x1 = (band.get_x(), band.get_x() + band.get_width()) if hasattr(band, "get_width") else \
        (band.get_xy()[:, 0].min(), band.get_xy()[:, 0].max())
    assert (x0, x1) == pytest.approx((-0.5, 0.5))
    assert {lab.get_text() for lab in ax.get_yticklabels()} == {"ciap", "giap"}


def test_the_frontier_legend_carries_the_contrast_with_early_stopping(tmp_path):
    t, su = _with_verdicts(tmp_path)
    lv = sorted(pd.to_numeric(su["level"]).unique())[0]
    ds, arch = su["dataset"].iloc[0], su["arch"].iloc[0]
    pd.DataFrame([dict(dataset=ds, arch=arch, level=lv, method="ciap", against="earlystop",
                       accuracy_verdict="worse", accuracy_delta=-0.0102,
                       cost_delta_epoch_equivalents=-3.5)]).to_csv(t / "contrasts.csv", index=False)
    fig = plots.FIGURES["frontier"](t)[0]
    per_panel = [[x.get_text() for x in ax.get_legend().get_texts()] for ax in fig.axes if ax.axison]
    with_contrast = [labels for labels in per_panel if any("vs earlystop:" in x for x in labels)]
    assert len(with_contrast) == 1  # only the panel of that level (and data set)
    (label,) = [x for x in with_contrast[0] if "vs earlystop:" in x]
    assert label.startswith("ciap: ") and label.endswith("vs earlystop: less accurate (-1.02 pp, -3.5 epoch-eq.)")  # never better/worse alone


def test_a_zero_epoch_control_far_below_is_marked_at_the_edge_not_used_for_the_range(tmp_path):
    t = make_tables(tmp_path, methods=("ciap",) + CONTROLS_SAP, seeds=(0, 1, 2), iterations=2, layers=3)
    fr = pd.read_csv(t / "frontier.csv")
    low = fr[fr["method"] == CONTROLS_SAP[0]].assign(method="sap_fixed0", budget=0, cost_epoch_equivalents=0.0,
                                                     test_accuracy=0.30)
    pd.concat([fr, low]).to_csv(t / "frontier.csv", index=False)
    methods = pd.read_csv(t / "methods.csv")
    zero = methods[methods["method"] == CONTROLS_SAP[0]].assign(method="sap_fixed0", max_epochs=0)
    pd.concat([methods, zero]).to_csv(t / "methods.csv", index=False)
    fig = plots.FIGURES["frontier"](t)[0]
    for ax in (a for a in fig.axes if a.axison):
        f, _ = _panel_data(t, ax)
        others = f[f["method"] != "sap_fixed0"]["test_accuracy"].min() * 100
        assert ax.get_ylim()[0] > 30 and ax.get_ylim()[0] <= others  # the range is the retrained runs'
        assert lines(ax, "below-sap_fixed0"), "the 0-epoch control is not marked at the lower edge"
        assert any("0 epochs: 30.0% (below)" in x.get_text() for x in ax.texts)


def test_the_accuracy_panels_take_their_range_from_the_retrained_runs(tmp_path):
    t = make_tables(tmp_path, methods=("ciap",) + CONTROLS_SAP, seeds=(0, 1, 2), iterations=2, layers=3)
    it = pd.read_csv(t / "iterations.csv")
    zero = it[it["method"] == CONTROLS_SAP[0]].copy()
    zero["method"] = "sap_fixed0"
    zero.loc[zero["iteration"] > 0, ["test_accuracy", "epochs_trained"]] = [0.30, 0]
    pd.concat([it, zero]).to_csv(t / "iterations.csv", index=False)
    methods = pd.read_csv(t / "methods.csv")
    pd.concat([methods, methods[methods["method"] == CONTROLS_SAP[0]].assign(method="sap_fixed0", max_epochs=0)]) \
        .to_csv(t / "methods.csv", index=False)
    fig = plots.FIGURES["comparison"](t)[0]
    acc = [ax for ax in fig.axes if ax.get_title().endswith("test accuracy")]
    # accuracy.pdf, against remaining weights and MACs, the same
    acc += [ax for ax in plots.FIGURES["accuracy"](t)[0].axes if ax.get_ylabel() == "test accuracy (%)"]
    assert len(acc) >= 2 and all(ax.get_ylim()[0] > 30 for ax in acc)
    assert all(any(x.get_text().startswith("below: sap_fixed0") for x in ax.texts) for ax in acc)

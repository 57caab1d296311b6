"""The frontier figure: test accuracy against cumulative retraining epochs at matched sparsity."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from infcop import plots
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
        means = f.groupby("method")[["cum_epochs", "test_accuracy"]].mean()
        for m in f[f["role"] == "method"]["method"].unique():
            (pt,) = lines(ax, f"method-{m}")
            assert pt.get_xdata()[0] == pytest.approx(means.loc[m, "cum_epochs"])
            assert pt.get_ydata()[0] == pytest.approx(100 * means.loc[m, "test_accuracy"])
            seeds = [c for c in ax.collections if c.get_gid() == f"seeds-{m}"]
            if n < 5:  # few seeds: every seed's point too
                (c,) = seeds
                got = sorted(map(tuple, np.round(c.get_offsets(), 9)))
                want = f[f["method"] == m][["cum_epochs", "test_accuracy"]].to_numpy() * [1, 100]
                assert got == sorted(map(tuple, np.round(want, 9)))
            else:
                assert not seeds


def test_control_curve_sorted_by_budget_and_labelled(frontier):
    t, fig, _ = frontier
    for ax in (a for a in fig.axes if a.axison):
        f, _ = _panel_data(t, ax)
        c = f[f["role"] == "control"].groupby("method").agg(budget=("budget", "first"), x=("cum_epochs", "mean"),
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
            assert label.startswith(f"{m}: {r['frontier_verdict']} the control curve"), label
            assert f"Δ {100 * float(r['frontier_delta']):+.2f} pp" in label


def test_verdict_above_and_below(tmp_path):
    t = make_tables(tmp_path, methods=("ciap",) + CONTROLS_SAP, seeds=(0, 1), iterations=2, layers=3)
    su = pd.read_csv(t / "summary.csv")
    su["frontier_verdict"] = su["frontier_verdict"].astype(object)
    i = su.index[su["method"] == "ciap"]
    su.loc[i[0], ["frontier_verdict", "frontier_delta", "frontier_ci_lo", "frontier_ci_hi"]] = ["above", 0.02, 0.01,
                                                                                               0.03]
    su.loc[i[1], ["frontier_verdict", "frontier_delta", "frontier_ci_lo", "frontier_ci_hi"]] = ["below", -0.02,
                                                                                               -0.03, -0.01]
    su.to_csv(t / "summary.csv", index=False)
    text = all_texts(plots.FIGURES["frontier"](t)[0])
    assert "ciap: above the control curve (Δ +2.00 pp, 95% CI +1.00 … +3.00)" in text
    assert "ciap: below the control curve (Δ -2.00 pp, 95% CI -3.00 … -1.00)" in text

"""summary.md: what a reader of the results needs first, readable. Every comparison is at matched
sparsity; every method with a stop criterion is placed against the fixed-budget controls."""
from __future__ import annotations

import math


def _f(v, fmt="{:.2f}", none="—"):
    return none if v is None or (isinstance(v, float) and not math.isfinite(v)) else fmt.format(v)


def _pm(mean, std, scale=1.0, digits=2):
    return f"{_f(mean * scale, '{:.%df}' % digits)} ± {_f(std * scale, '{:.%df}' % digits)}"


def _ratio(a, b):
    return "—" if not (math.isfinite(a) and math.isfinite(b)) else f"{a:.2f}× / {b:.2f}×"


def _matched(summary, ds, arch) -> list[str]:
    s = summary[(summary.dataset == ds) & (summary.arch == arch) & summary.common_to_all_methods]
    if s.empty:
        return []
    level = s["level"].min()
    s = s[s["level"] == level]
    lines = [f"### {ds} / {arch}: every method at {s['level_label'].iloc[0]} weights remaining", "",
             "| method | seeds | test accuracy (%) | retraining epochs | train s | flow s (charged) | "
             "speed-up vs lth (epochs / s) | speed-up vs sap (epochs / s) |", "|" + "---|" * 8]
    for r in s.itertuples():
        lines.append(f"| {r.method} | {r.seeds} | {_pm(r.test_accuracy_mean, r.test_accuracy_std, 100)} | "
                     f"{_pm(r.epochs_mean, r.epochs_std, 1, 1)} | {_pm(r.train_seconds_mean, r.train_seconds_std, 1, 1)} | "
                     f"{_pm(r.flow_seconds_mean, r.flow_seconds_std, 1, 1)} | "
                     f"{_ratio(r.speedup_epochs_vs_lth, r.speedup_seconds_vs_lth)} | "
                     f"{_ratio(r.speedup_epochs_vs_sap, r.speedup_seconds_vs_sap)} |")
    return lines + [""]


def _frontier(summary, ds, arch) -> list[str]:
    s = summary[(summary.dataset == ds) & (summary.arch == arch)]
    lines = []
    for group, g in s.groupby("control_group", sort=True):
        if (g["frontier_verdict"] == "control").sum() < 2 or (g["frontier_verdict"] != "control").sum() == 0:
            continue  # no curve, or nothing to place on it
        level = g["level"].min()
        g = g[g["level"] == level].sort_values(["frontier_verdict", "epochs_mean"])
        lines += [f"### {ds} / {arch}: against the fixed-budget controls of {group}, at {g['level_label'].iloc[0]} "
                  "weights remaining", "",
                  "| method | retraining epochs | test accuracy (%) | accuracy − control curve at that cost (pp), "
                  "95% CI | verdict |", "|" + "---|" * 5]
        for r in g.itertuples():
            ci = ("—" if r.frontier_verdict == "control" else
                  f"{_f(100 * r.frontier_delta, '{:+.2f}')} [{_f(100 * r.frontier_ci_lo, '{:+.2f}')}, "
                  f"{_f(100 * r.frontier_ci_hi, '{:+.2f}')}]")
            lines.append(f"| {r.method} | {_pm(r.epochs_mean, r.epochs_std, 1, 1)} | "
                         f"{_pm(r.test_accuracy_mean, r.test_accuracy_std, 100)} | {ci} | {r.frontier_verdict} |")
        lines.append("")
    return lines


def _held_at_epoch0(criteria, method: str) -> str:
    """Per criterion of `method`: in how many iterations it already held before any retraining."""
    if criteria is None or criteria.empty:
        return "—"
    e0 = criteria[(criteria["method"] == method) & (criteria["epoch"] == 0)]
    if e0.empty:
        return "—"
    held = e0.groupby("criterion", sort=True)["holds"].agg(
        lambda h: (int(h.astype(str).str.lower().eq("true").sum()), len(h)))
    return ", ".join(f"{c} {n} of {t}" for c, (n, t) in held.items())


def _stops(iterations, methods, criteria=None) -> list[str]:
    it = iterations[iterations["iteration"] > 0]
    flow_methods = set(methods.loc[~methods["control"].astype(bool), "method"])
    it = it[it["method"].isin(flow_methods)]
    if it.empty:
        return []
    lines = ["### How the stop criteria decided (every IMP iteration of every seed)", "",
             "A criterion that already holds at epoch 0 (the pruned, rewound network, before any retraining) "
             "cannot tell retraining from none.", "",
             "| method | iterations | retraining epochs per iteration | held at epoch 0 | stopped at epoch 0 | "
             "stop reasons | stopped before the accuracy criterion held |", "|" + "---|" * 7]
    for m, g in it.groupby("method", sort=True):
        reasons = g["stop_reason"].value_counts()
        early = g["stopped_early_vs_accuracy"].dropna()
        early_txt = "—" if early.empty else f"{int(early.astype(str).str.lower().eq('true').sum())} of {len(early)}"
        lines.append(f"| {m} | {len(g)} | {g['epochs_trained'].mean():.1f} (min {g['epochs_trained'].min()}, max "
                     f"{g['epochs_trained'].max()}) | {_held_at_epoch0(criteria, m)} | "
                     f"{int((g['epochs_trained'] == 0).sum())} | "
                     + ", ".join(f"{k} ×{v}" for k, v in reasons.items()) + f" | {early_txt} |")
    return lines + [""]


def resolution_lines(test_sizes: dict | None) -> list[str]:
    """What a test accuracy can resolve: the test split's size and the value of one image, per data set."""
    if not test_sizes:
        return []
    return ["**Resolution.** " + "; ".join(
        f"{ds}: {n:,} test images, so one image is {100 / n:.3g} pp of test accuracy" for ds, n in test_sizes.items())
        + ". A difference smaller than one image is no difference.", ""]


def summary_markdown(summary, iterations, methods, criteria=None, test_sizes: dict | None = None) -> str:
    """`criteria` (criteria.csv: every criterion's verdict at every epoch) adds how often each criterion
    held at epoch 0; `test_sizes` (data set -> test images) the resolution of every accuracy."""
    head = ["# Summary", "",
            "Methods are compared at matched sparsity: at remaining-weight levels that every compared run "
            "reached, each run's curve interpolated on log remaining weights. Costs are the cumulative "
            "retraining up to that level; flow seconds are charged only to methods whose stop criteria need "
            "flows. Mean ± standard deviation over seeds. A method lies *above* / *below* the fixed-budget "
            "controls when the 95% interval of its seed-paired accuracy difference to the control curve, at "
            "its own cost, is above / below zero; *on* otherwise.", "", *resolution_lines(test_sizes)]
    if summary.empty:
        return "\n".join(head + ["No comparable runs.", ""])
    body = []
    for (ds, arch), _ in summary.groupby(["dataset", "arch"], sort=True):
        body += _matched(summary, ds, arch) + _frontier(summary, ds, arch)
    return "\n".join(head + body + _stops(iterations, methods, criteria))

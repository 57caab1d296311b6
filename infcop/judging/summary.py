"""summary.md: what a reader of the results needs first, readable. It leads with the decision: every method
with a stop criterion against the fixed-budget controls at every matched level, on the full-cost axis,
as one of four verdicts with the margin it was judged by; then the paired contrasts with early stopping,
the costs, and how the criteria decided."""
from __future__ import annotations

import math
from types import SimpleNamespace


def _f(v, fmt="{:.2f}", none="—"):
    return none if v is None or (isinstance(v, float) and not math.isfinite(v)) else fmt.format(v)


def _pm(mean, std, scale=1.0, digits=2):
    return f"{_f(mean * scale, '{:.%df}' % digits)} ± {_f(std * scale, '{:.%df}' % digits)}"


def _ratio(med, lo, hi) -> str:
    """A speed-up as its median over seeds and range, two significant digits (never a ratio of means)."""
    if not all(isinstance(x, (int, float)) and math.isfinite(x) for x in (med, lo, hi)):
        return "—"
    return f"{med:.2g}× [{lo:.2g}–{hi:.2g}]"


def _seeds(n) -> str:
    if n is None or (isinstance(n, float) and not math.isfinite(n)):
        return "no number of seeds up to 1000 would resolve it at this spread, at 80% power"
    return f"≈{int(n)} seeds would resolve it at 80% power"


def _text(x) -> str:
    return x if isinstance(x, str) else ""


def verdict_cell(r) -> str:
    if r.verdict in ("n/a", "control"):
        return r.verdict
    against = _text(getattr(r, "verdict_against", ""))
    if r.verdict == "identical":
        return f"**identical** to `{against}` ({_text(r.note).split(', ')[-1]})"
    cell = (f"**{r.verdict}**" + (f" by `{against}`" if r.verdict == "dominated" and against else "")
            + f" {_f(100 * r.delta, '{:+.2f}')} [{_f(100 * r.delta_lo, '{:+.2f}')}, {_f(100 * r.delta_hi, '{:+.2f}')}]")
    if r.verdict == "inconclusive":
        why = "; ".join(x for x in (_text(r.note), _text(getattr(r, "resolve_by", ""))) if x)
        cell += f" ({why})" if why else f" ({_seeds(r.seeds_needed)})"
    return cell


def family_lines(summary, variance: dict | None = None) -> list[str]:
    """How many comparisons the run's verdicts are, how they were adjusted, which are underpowered, and what
    the intervals cover."""
    if summary.empty or "comparisons" not in summary:
        return []
    n = int(summary["comparisons"].max()) if summary["comparisons"].notna().any() else 0
    holm = "adjustment" not in summary or (summary["adjustment"] == "holm").any()
    changed = int(summary["note"].astype(str).str.contains("before Holm's adjustment").sum())
    inconclusive = summary[summary["verdict"] == "inconclusive"]
    lost = inconclusive["note"].astype(str).str.contains("before Holm's adjustment")
    by_budget = inconclusive["resolve_by"].astype(str).str.startswith("a control between") if "resolve_by" in inconclusive \
        else lost & False
    unresolved = int((inconclusive["seeds_needed"].isna() & ~lost & ~by_budget).sum())
    family = (f"**Multiplicity.** The {n} verdicts against the controls above are one family: "
              + ("each verdict's own test (one-sided, 5%) is taken under Holm's step-down adjustment over all of "
                 "them (`compare.adjust: holm`; a verdict that does not survive it is inconclusive and says so; "
                 + (f"{changed} did not survive it here)" if changed else "every one survived it here)") if holm else
                 "each verdict's own test (one-sided, 5%) is taken alone (`compare.adjust: none`): among "
                 f"{n} comparisons some false verdicts are to be expected")
              + ". The strongest-recipe verdicts are a second family. "
              f"{len(inconclusive)} of {n} are inconclusive"
              + (f" ({int(lost.sum())} of them only after the adjustment)" if lost.any() else "")
              + (f"; {int(by_budget.sum())} need a control between two budgets" if by_budget.any() else "")
              + (f"; {unresolved} would need more than 1000 seeds at this spread" if unresolved else "")
              + "; the seeds given would resolve a verdict with 80% power at its observed mean and spread, for "
              "one comparison (the family's adjustment asks for more).")
    covers = ("; ".join(f"{ds}: {text}" for ds, text in sorted(variance.items())) if variance else
              "initialisation, batch order and the validation split; not the data set itself")
    return [family, "", f"**What the intervals cover.** The intervals over seeds cover {covers}.", ""]


def resolution_lines(test_sizes: dict | None) -> list[str]:
    """What a test accuracy can resolve: the test split's size and the value of one image, per data set."""
    if not test_sizes:
        return []
    return ["**Resolution.** " + "; ".join(
        f"{ds}: {n:,} test images, so one image is {100 / n:.3g} pp of test accuracy" for ds, n in test_sizes.items())
        + ". No verdict is better or worse by less than one image: the margin is never below it.", ""]


def held_at_epoch0(criteria, method: str) -> str:
    """Per criterion of `method`: in how many iterations it already held before any retraining."""
    if criteria is None or criteria.empty:
        return "—"
    e0 = criteria[(criteria["method"] == method) & (criteria["epoch"] == 0)]
    if e0.empty:
        return "—"
    held = e0.groupby("criterion", sort=True)["holds"].agg(
        lambda h: (int(h.astype(str).str.lower().eq("true").sum()), len(h)))
    return ", ".join(f"{c} {n} of {t}" for c, (n, t) in held.items())


def _verdicts(summary, criteria, ds, arch) -> list[str]:
    s = summary[(summary.dataset == ds) & (summary.arch == arch)]
    lines = []
    for group, g in s.groupby("control_group", sort=True):
        controls = g[g["verdict"] == "control"]["method"].unique()
        judged = g[g["verdict"] != "control"]
        if len(controls) < 2:
            for m in sorted(g["method"].unique()):
                lines.append(f"- `{m}` ({group}): no verdict — the only fixed budget of its pruner and retraining recipe "
                             "(no control curve to place it on).")
            continue
        if judged.empty:
            continue
        levels = sorted(judged["level"].unique(), reverse=True)
        labels = [judged[judged["level"] == lv]["level_label"].iloc[0] for lv in levels]
        lines += ["", f"**{ds} / {arch}, against the controls of {group}** ({', '.join(sorted(controls))}): "
                  "accuracy − the lower bound of the control curve at the method's full cost (pp), one-sided 95% "
                  "bounds.", "",
                  "| method | held at epoch 0 | " + " | ".join(f"{lb} weights" for lb in labels) + " |",
                  "|" + "---|" * (2 + len(levels))]
        for m, mg in judged.groupby("method", sort=True):
            name = f"`{m}`" + (f" (identical to `{mg['identical_to'].iloc[0]}`)" if mg["identical_to"].iloc[0] else "")
            cells = []
            for lv in levels:
                r = mg[mg["level"] == lv]
                cells.append(verdict_cell(next(r.itertuples())) if not r.empty else "—")
            lines.append(f"| {name} | {held_at_epoch0(criteria, m)} | " + " | ".join(cells) + " |")
    return lines + [""] if lines else []


def _best_recipes(summary, ds, arch) -> list[str]:
    """Every method (and every control, against the other recipes) against the strongest fixed-budget recipe
    of its pruner at its cost."""
    if "best_recipe" not in summary:
        return []
    s = summary[(summary.dataset == ds) & (summary.arch == arch)]
    s = s[s["best_recipe"].astype(str).str.len() > 0]
    s = s[s["best_recipe"].astype(str) != "nan"]
    if s.empty:
        return []
    if (s["best_recipe"] == s["control_group"]).all():  # one recipe only: the same verdicts again would add nothing
        return ["", f"**{ds} / {arch}**: every method's controls share one retraining recipe, so the verdicts above "
                "are also those against the strongest recipe run here; other recipes (linear decay from ALLR's "
                "start rate, learning-rate rewinding), each with its own controls, are compared in "
                "`workflow/experiments/peers_mnist1d.yaml`.", ""]
    lines = ["", f"**{ds} / {arch}, against the strongest fixed-budget recipe at its cost**: of every recipe "
             "(rewind point, learning-rate schedule, rate) with fixed-budget controls of the same pruner, the one "
             "whose control curve is highest at the method's full cost; a control is compared with the other "
             "recipes. Accuracy − that curve (pp), one-sided 95% bounds.", "",
             "| method | weights | its own recipe | strongest recipe at its cost | verdict against it |",
             "|" + "---|" * 5]
    s = s.assign(_control=s["verdict"].eq("control"))  # the methods first, then the controls
    for r in s.sort_values(["_control", "method", "level"], ascending=[True, True, False]).itertuples():
        b = SimpleNamespace(verdict=r.best_recipe_verdict, delta=r.best_recipe_delta, delta_lo=r.best_recipe_delta_lo,
                            delta_hi=r.best_recipe_delta_hi, note=r.best_recipe_note,
                            seeds_needed=r.best_recipe_seeds_needed,
                            verdict_against=getattr(r, "best_recipe_verdict_against", ""),
                            resolve_by=getattr(r, "best_recipe_resolve_by", ""))
        own = "control" if r.verdict == "control" else r.verdict
        cell = verdict_cell(b)
        if isinstance(b.note, str) and b.note and b.verdict != "inconclusive":
            cell += f" ({b.note})"
        lines.append(f"| `{r.method}` | {r.level_label} | {own} | {r.best_recipe} | {cell} |")
    return lines + [""]


def _contrasts(contrasts, ds, arch) -> list[str]:
    if contrasts is None or contrasts.empty:
        return []
    c = contrasts[(contrasts.dataset == ds) & (contrasts.arch == arch)]
    if c.empty:
        return []
    lines = [f"### {ds} / {arch}: each flow method against early stopping", "",
             "Seed-paired, same level: does a flow criterion add anything beyond validation accuracy? Accuracy "
             "difference (pp, one-sided 95% bounds) judged as above, *for accuracy alone*: read it with the cost "
             "difference beside it (epoch-equivalents, mean [min, max] over seeds; negative: the flow method "
             "was cheaper). More accurate at a higher cost is a trade, not a win.", "",
             "| method | against | weights | accuracy Δ (pp) | accuracy | cost Δ (epoch-eq.) |", "|" + "---|" * 6]
    for r in c.sort_values(["method", "level"], ascending=[True, False]).itertuples():
        word = {"better": "more accurate", "worse": "less accurate"}.get(r.accuracy_verdict, r.accuracy_verdict)
        verdict = word + (f" ({_seeds(r.seeds_needed)})" if r.accuracy_verdict == "inconclusive" else "")
        lines.append(f"| `{r.method}` | `{r.against}` | {r.level_label} | {_f(100 * r.accuracy_delta, '{:+.2f}')} "
                     f"[{_f(100 * r.accuracy_delta_lo, '{:+.2f}')}, {_f(100 * r.accuracy_delta_hi, '{:+.2f}')}] | "
                     f"{verdict} | {_f(r.cost_delta_epoch_equivalents, '{:+.1f}')} [{_f(r.cost_delta_min, '{:+.1f}')}, "
                     f"{_f(r.cost_delta_max, '{:+.1f}')}] |")
    return lines + [""]


def _matched(summary, ds, arch, iterations=None) -> list[str]:
    s = summary[(summary.dataset == ds) & (summary.arch == arch) & summary.common_to_all_methods]
    if s.empty:
        return []
    dense_macs = None
    if iterations is not None and "dense_macs" in iterations:
        d = iterations[(iterations.dataset == ds) & (iterations.arch == arch)]["dense_macs"].dropna()
        dense_macs = float(d.iloc[0]) if not d.empty and float(d.iloc[0]) > 0 else None
    level = s["level"].min()
    s = s[s["level"] == level]
    lines = [f"### {ds} / {arch}: every method at {s['level_label'].iloc[0]} weights remaining (costs)", "",
             "Full cost: retraining, flow measurements where the stop criteria need them, and the train-dense "
             "work only the method needs (noise floors for `epsilon: auto`, a late-rewinding point). Speed-ups "
             "are medians over seeds of per-seed ratios [min–max]: the stop rule's share is its own full-budget "
             "control's cost over its cost (same pruner); the pruner's share is lth's cost over sap's (same "
             "full budget, other pruner); a cost under half an epoch gives no ratio.", "",
             "MACs: theoretical multiply-accumulates of one forward pass of the pruned network (conv and linear "
             "layers, dense count × each layer's remaining share), as a share of the dense network's.", "",
             "| method | seeds | test accuracy (%) | MACs (% of dense) | retraining epochs | full cost (epoch-eq.) | "
             "full cost (s) | flow s | train-dense share (s) | speed-up of the stop rule | "
             "speed-up of the pruner (lth / sap) |",
             "|" + "---|" * 11]
    for r in s.itertuples():
        stop = _ratio(getattr(r, "stop_rule_speedup", math.nan), getattr(r, "stop_rule_speedup_min", math.nan),
                      getattr(r, "stop_rule_speedup_max", math.nan))
        if stop != "—":
            stop += f" vs `{r.speedup_reference}`"
        macs = _f(100 * r.macs_mean / dense_macs, "{:.1f}") if dense_macs else "—"
        lines.append(f"| {r.method} | {r.seeds} | {_pm(r.test_accuracy_mean, r.test_accuracy_std, 100)} | {macs} | "
                     f"{_pm(r.epochs_mean, r.epochs_std, 1, 1)} | "
                     f"{_pm(r.cost_epoch_equivalents_mean, r.cost_epoch_equivalents_std, 1, 1)} | "
                     f"{_pm(r.cost_seconds_mean, r.cost_seconds_std, 1, 2)} | "
                     f"{_pm(r.flow_seconds_mean, r.flow_seconds_std, 1, 2)} | {_f(r.once_seconds_mean, '{:.2f}')} | "
                     f"{stop} | {_ratio(r.pruner_speedup, r.pruner_speedup_min, r.pruner_speedup_max)} |")
    return lines + [""]


def _frontier(summary, ds, arch) -> list[str]:
    s = summary[(summary.dataset == ds) & (summary.arch == arch)]
    lines = []
    for group, g in s.groupby("control_group", sort=True):
        if (g["verdict"] == "control").sum() < 2 or (g["verdict"] != "control").sum() == 0:
            continue  # no curve, or nothing to place on it
        level = g["level"].min()
        g = g[g["level"] == level].sort_values(["verdict", "cost_epoch_equivalents_mean"])
        lines += [f"### {ds} / {arch}: against the fixed-budget controls of {group}, at {g['level_label'].iloc[0]} "
                  "weights remaining", "",
                  "| method | full cost (epoch-eq.) | test accuracy (%) | accuracy − the curve's lower bound at that "
                  "cost (pp), one-sided 95% bounds | verdict |", "|" + "---|" * 5]
        for r in g.itertuples():
            ci = ("—" if r.verdict in ("control", "identical") else
                  f"{_f(100 * r.delta, '{:+.2f}')} [{_f(100 * r.delta_lo, '{:+.2f}')}, {_f(100 * r.delta_hi, '{:+.2f}')}]")
            lines.append(f"| {r.method} | {_pm(r.cost_epoch_equivalents_mean, r.cost_epoch_equivalents_std, 1, 1)} | "
                         f"{_pm(r.test_accuracy_mean, r.test_accuracy_std, 100)} | {ci} | {r.verdict}"
                         + ({"dominated": " by", "identical": " to"}.get(r.verdict, "") + f" `{r.verdict_against}`"
                            if _text(getattr(r, "verdict_against", "")) else "") + " |")
        lines.append("")
    return lines


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
        lines.append(f"| {m} | {len(g)} | {g['epochs_trained'].mean():.1f} (min {g['epochs_trained'].min():g}, max "
                     f"{g['epochs_trained'].max():g}) | {held_at_epoch0(criteria, m)} | "
                     f"{int((g['epochs_trained'] == 0).sum())} | "
                     + ", ".join(f"{k} ×{v}" for k, v in reasons.items()) + f" | {early_txt} |")
    return lines + [""]


def summary_markdown(summary, iterations, methods, criteria=None, test_sizes: dict | None = None,
                     contrasts=None, variance: dict | None = None) -> str:
    """`criteria` (criteria.csv) adds how often each criterion held at epoch 0; `test_sizes` (data set ->
    test images) the resolution; `contrasts` the paired comparisons with early stopping."""
    margins = sorted(set(summary["margin_pp"].round(6))) if not summary.empty and "margin_pp" in summary else []
    margin_txt = " / ".join(f"{m:.3g} pp" for m in margins) or "—"
    head = ["# Summary", "",
            "## The verdicts", "",
            "Every method with a stop criterion against the fixed-budget controls of its pruner and retraining "
            "recipe (the same pruner, rewind point, learning-rate schedule and rate, retrained exactly n epochs per "
            "iteration), at every remaining-weight level that all of them reached (each run's curve "
            "interpolated on log remaining weights between pruned iterations: no run stands at a level it never "
            "trained at), at the method's **full cost** (retraining epochs, plus its flow measurements and the "
            "train-dense work only it needs, converted to epoch-equivalents at the controls' median seconds per "
            "epoch). Between two budgets the control curve is not known, so per seed it is *bracketed*: its "
            "lower bound is the best of the straight line between the neighbouring budgets and of every control "
            "that costs no more; its upper bound is the most a concave curve through the controls could reach "
            "there. The method's accuracy minus each bound, mean and one-sided 95% bounds over seeds, is judged "
            f"against an equivalence margin of **{margin_txt}** (`compare.margin_pp`, never below one test "
            "image): **better** (it clears the upper bound by the margin *and* beats the next dearer control), "
            "**dominated by X** (a control X that cost less in every seed is at least as accurate: the method "
            "is not better than it by the margin), **worse** (below the lower bound by the margin), "
            "**equivalent** (within the margin of both bounds), **identical to X** (the same masks and "
            "accuracies as control X in every seed and iteration: only its extra cost is given, no verdict "
            "from timing), **inconclusive** (the data cannot tell; the seeds that would resolve it at 80% "
            "power, or the budget between two controls that would narrow the bracket). The Δ shown is against "
            "the lower bound. Then the same, against the **strongest fixed-budget "
            "recipe** at the method's cost (of every recipe — rewind point, learning-rate schedule and rate — "
            "that has controls of its pruner), and which recipe that was.", "", *resolution_lines(test_sizes),
            *family_lines(summary, variance)]
    if summary.empty:
        return "\n".join(head + ["No comparable runs.", ""])
    body, rest = [], []
    for (ds, arch), _ in summary.groupby(["dataset", "arch"], sort=True):
        body += _verdicts(summary, criteria, ds, arch) + _best_recipes(summary, ds, arch)
        rest += (_contrasts(contrasts, ds, arch) + _matched(summary, ds, arch, iterations)
                 + _frontier(summary, ds, arch))
    return "\n".join(head + body + ["## The details", ""] + rest + _stops(iterations, methods, criteria))

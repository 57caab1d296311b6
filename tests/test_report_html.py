"""The report's own pieces: summary.md as a self-contained HTML page, where items go in the report, which
figures an experiment requests, and the captions' method list."""
import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from infcop.showing.report_html import (DASHBOARDS, DIAGNOSTICS, RESULTS, FORMAT_LABELS, markdown_to_html, report_place,
                                summary_page)
from workflow_helpers import ROOT, TINY, infcop

SUMMARY = """# Summary

## The verdicts

Judged against a margin of **0.5 pp** (`compare.margin_pp`): **better** *and* more; a < b & c.

- `lth` (magnitude(rate=0.2,scope=layer) rewind dense): no verdict — the only fixed budget.
- `ciap`: judged
  on two lines.

**digits / small_cnn, against the controls of sap(p=1,q=2)** (sap, sap_fixed1): accuracy − curve (pp).

| method | held at epoch 0 | 64% weights | 51% weights |
|---|---|---|---|
| `ciap` | infoflow 2 of 2 | **better** +1.20 [+0.70, +1.70] | **inconclusive** +0.10 [-0.40, +0.60] (≈7 seeds would resolve it) |
| `giap` | — | **worse** -2.00 [-2.50, -1.50] | **equivalent** +0.01 [-0.20, +0.22] |
| `a\\|b` | `x|y` | control | n/a |

### digits / small_cnn: every method at 64% weights remaining

| method | seeds | test accuracy (%) |
|---|---|---|
| lth | 3 | 97.49 ± 0.10 |
"""


class _Tree(HTMLParser):
    """Tags, attributes and text of a page; fails on unbalanced tags."""

    VOID = {"meta", "br", "hr", "img", "link", "input"}

    def __init__(self):
        super().__init__()
        self.stack, self.tags, self.attrs, self.text = [], [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += attrs
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, (tag, self.stack)
        self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def _parse(page: str) -> _Tree:
    t = _Tree()
    t.feed(page)
    t.close()
    assert not t.stack, t.stack
    return t


def test_summary_page_renders_headings_lists_and_tables_with_verdict_words():
    page = summary_page(SUMMARY)
    t = _parse(page)
    text = " ".join(t.text)
    assert page.startswith("<!DOCTYPE html>") and "<title>Summary</title>" in page
    assert t.tags.count("h1") == 1 and t.tags.count("h2") == 1 and t.tags.count("h3") == 1
    assert t.tags.count("table") == 2 and t.tags.count("th") == 4 + 3 and t.tags.count("ul") == 1
    assert t.tags.count("li") == 2 and "judged on two lines." in text  # a continuation line joins its item
    body = markdown_to_html(SUMMARY)
    assert "<strong>0.5 pp</strong>" in body and "<code>compare.margin_pp</code>" in body and "<em>and</em>" in body
    assert "a &lt; b &amp; c" in body  # text is escaped
    # every verdict word is visible as text, as a badge at the start of its cell
    for word in ("better", "worse", "equivalent", "inconclusive", "control", "n/a"):
        assert re.search(rf'<span class="verdict verdict-{word.replace("/", "")}">{re.escape(word)}</span>', body), word
    assert "(≈7 seeds would resolve it)" in text
    # a pipe escaped or inside a code span stays in its cell: the row keeps its 4 cells
    row = re.search(r"<tr><td><code>a\|b</code></td>(.*?)</tr>", body)
    assert row and row.group(1).count("<td") == 3 and "<code>x|y</code>" in row.group(1)
    assert '<td class="num">97.49 ± 0.10</td>' in body  # numbers align right


def test_summary_page_is_self_contained():
    page = summary_page(SUMMARY + "\n[the study](https://arxiv.org/abs/2501.15592)\n")
    t = _parse(page)
    assert "style" in t.tags and not {"script", "link", "img", "iframe", "object", "embed"} & set(t.tags)
    assert [v for k, v in t.attrs if k == "src"] == []
    assert "@import" not in page and "url(" not in page  # the CSS loads nothing either
    assert [v for k, v in t.attrs if k == "href"] == ["https://arxiv.org/abs/2501.15592"]  # a link, not a resource


def test_summary_command_writes_the_page_atomically(tmp_path):
    tables = tmp_path / "res" / "tables"
    tables.mkdir(parents=True)
    (tables / "summary.md").write_text(SUMMARY)
    out = tmp_path / "summary.html"
    r = infcop("summary", tmp_path / "res", "--html", out)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "" and out.read_text() == summary_page(SUMMARY)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["res", "summary.html"]  # no temp file left behind
    missing = infcop("summary", tmp_path / "nowhere", "--html", out)
    assert missing.returncode == 2 and "no summary at" in missing.stderr


def test_report_places_results_first_then_dashboards_then_diagnostics():
    from infcop.showing.plots import FIGURES

    # Snakemake's report sorts category and subcategory names alphabetically: the numbers give the order
    assert sorted([DIAGNOSTICS, RESULTS, DASHBOARDS]) == [RESULTS, DASHBOARDS, DIAGNOSTICS]
    order = ["verdicts", "frontier", "summary"]
    assert [report_place(i)[0] for i in order] == [RESULTS] * 3
    assert sorted(order, key=lambda i: report_place(i)[1]) == order
    assert report_place("similarity")[0] == DASHBOARDS
    others = set(FIGURES) - {"verdicts", "frontier", "similarity"}
    assert others and {report_place(f) for f in others} == {(DIAGNOSTICS, "Figures")}
    # the format toggle shows the PNG first (the report starts with the alphabetically first value)
    assert sorted(FORMAT_LABELS.values())[0] == FORMAT_LABELS[".png"]


def _experiment(path) -> tuple:
    from infcop.experiments.config import settings_of
    from infcop.experiments.experiment import resolve

    c = resolve([str(path)])
    methods = {m: c["methods"][m] for m in c["experiment"]["methods"]}
    return methods, settings_of(c), len(c["experiment"]["seeds"])


def test_only_figures_with_something_to_draw_are_planned():
    from infcop.showing.plots.plan import missing, planned

    tiny = _experiment(TINY)  # lth and ciap: different pruners, so no fixed-budget curve; one seed
    assert set(missing(*tiny)) == {"ablation", "frontier", "verdicts"}
    assert planned(*tiny) == ["similarity", "connectivity", "gradient", "comparison", "accuracy", "epochs", "cost"]
    default = _experiment(ROOT / "config.yaml")  # sap and its sap_fixed* controls: a curve; 3 seeds
    assert {"frontier", "verdicts"} <= set(planned(*default))
    sweep = _experiment(ROOT / "workflow" / "experiments" / "epsilon_sweep_digits.yaml")
    assert "ablation" in planned(*sweep)
    methods, settings, _ = tiny
    lth = methods["lth"]
    controls = {**methods, "lth_1": {**lth, "max_epochs": 1}, "flow": {**methods["ciap"], "pruner": lth["pruner"]}}
    assert "frontier" in planned(controls, settings, 1)
    assert "verdicts" not in planned(controls, settings, 1) and "verdicts" in planned(controls, settings, 2)


def _rendered_methods(config: dict) -> list[str]:
    """workflow.rst rendered as Snakemake's report renders it: the method bullets' names, in order."""
    from types import SimpleNamespace

    import jinja2

    rst = (ROOT / "workflow" / "report" / "workflow.rst").read_text()
    text = jinja2.Template(rst).render(snakemake=SimpleNamespace(config=config))
    block = text[text.index("Each method, as this experiment defines it"):]
    return [re.match(r"- ``([^`]+)``:", line).group(1) for line in block.splitlines() if line.startswith("- ``")]


@pytest.mark.parametrize("config_file", ["config.yaml", "tests/configs/tiny.yaml",
                                         "workflow/experiments/peers_mnist1d.yaml"])
def test_the_reports_workflow_page_lists_its_own_experiments_methods(config_file):
    from infcop.experiments.experiment import resolve

    config = resolve([ROOT / config_file], default_file=ROOT / "config.yaml")
    assert _rendered_methods(config) == list(config["experiment"]["methods"])
    assert "95% confidence bands" not in (ROOT / "workflow" / "report" / "workflow.rst").read_text()


def test_captions_match_what_the_report_shows():
    report = ROOT / "workflow" / "report"
    figure = (report / "figure.rst").read_text()
    from infcop.showing.plots import FIGURES

    assert set(re.findall(r'snakemake\.wildcards\.figure == "(\w+)"', figure)) == set(FIGURES) - {"similarity"}
    assert "just says so" not in figure  # no placeholder ablation any more
    rules = (ROOT / "workflow" / "rules" / "report.smk").read_text()
    for rst in re.findall(r'caption="\.\./report/(\w+\.rst)"', rules):
        assert (report / rst).is_file(), rst
    assert "summary.csv" in (report / "tables.rst").read_text()

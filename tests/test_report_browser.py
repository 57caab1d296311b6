"""The Snakemake report as a person sees it: built from a small workflow run and opened in headless Chromium.

The run is the tiny experiment plus a second fixed-budget control of lth's pruner (``lth_1``) and ciap on that
pruner, so that the report has a cost-accuracy frontier to show (the tiny experiment itself has no
fixed-budget curve, so the workflow makes no frontier figure for it). One seed: ~30 s on two cores.

The report is one HTML file, a React app whose items are embedded as data URIs in a ``var results = {...}``
script. The test reads that data, then lets Chromium run the app: a small harness added to a copy of the
page records every uncaught error and clicks through the menu to the summary page, as a reader would
(1. Results, then the summary's eye button), then Chromium's DOM dump and a screenshot are checked.
Without Chromium the test is skipped, unless INFCOP_REQUIRE_BROWSER=1 (as in CI), where it fails.
"""
import base64
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from infcop.showing.report_html import DASHBOARDS, DIAGNOSTICS, RESULTS, report_place
from workflow_helpers import TINY, snakemake, workdir

pytestmark = [pytest.mark.browser, pytest.mark.slow]

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
WINDOW = (1400, 1000)

# Added first in <head>: every uncaught error and unhandled rejection of the page, recorded.
ERRORS = """<script>window.__infcop_errors = [];
window.addEventListener("error", function (e) { window.__infcop_errors.push("error: " + e.message); });
window.addEventListener("unhandledrejection", function (e) { window.__infcop_errors.push("rejection: " + e.reason); });
</script>"""

# Added before </body>: after load, click "1. Results", its "3. Summary" subcategory (when the category has
# several; with one the report opens it directly), then the eye button of the summary page's row; then a
# <pre id="infcop-harness"> with the outcome and the recorded errors, for the DOM dump.
CLICKS = """<script>
(function () {
  function finish(state) {
    var p = document.createElement("pre");
    p.id = "infcop-harness"; p.setAttribute("data-state", state);
    p.textContent = JSON.stringify(window.__infcop_errors);
    document.body.appendChild(p);
  }
  function link(text) {
    return Array.from(document.querySelectorAll("#app a")).find(function (a) { return a.textContent.trim() === text; });
  }
  var steps = [
    function () { var a = link(%(category)s); if (!a) throw new Error("no menu item " + %(category)s); a.click(); },
    function () { var a = link(%(subcategory)s); if (a) a.click(); },
    function () {
      var row = Array.from(document.querySelectorAll("#app tr")).find(function (tr) {
        return tr.textContent.indexOf(%(row)s) >= 0; });
      if (!row) throw new Error("no row " + %(row)s);
      row.querySelector("a[type=button]").click();
    }];
  function run(i) {
    if (i === steps.length) { setTimeout(function () { finish("shown"); }, 500); return; }
    try { steps[i](); } catch (e) { window.__infcop_errors.push("harness: " + e.message); finish("failed"); return; }
    setTimeout(function () { run(i + 1); }, 400);
  }
  window.addEventListener("load", function () { setTimeout(function () { run(0); }, 400); });
})();
</script>"""


def find_browser() -> str | None:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="module")
def browser():
    path = find_browser()
    if path is None:
        reason = f"no headless browser ({', '.join(BROWSERS)}) on PATH; `apt-get install chromium` brings one"
        if os.environ.get("INFCOP_REQUIRE_BROWSER") == "1":
            pytest.fail(reason + " (INFCOP_REQUIRE_BROWSER=1)")
        pytest.skip(reason)
    return path


@pytest.fixture(scope="module")
def report(browser, tmp_path_factory):
    """(working directory, report.html) of the small workflow with a frontier."""
    cfg = yaml.safe_load(TINY.read_text())
    lth = cfg["methods"]["lth"]
    cfg["methods"]["lth_1"] = {"pruner": dict(lth["pruner"]), "stop": ["budget"], "max_epochs": 1}
    cfg["methods"]["ciap"]["pruner"] = dict(lth["pruner"])
    cfg["experiment"]["methods"] = ["lth", "lth_1", "ciap"]
    wd = workdir(tmp_path_factory.mktemp("browser"), cfg)
    snakemake(wd, "--cores", "2")
    snakemake(wd, "--report", "results/report.html")
    return wd, wd / "results" / "report.html"


def _script_var(html: str, name: str):
    m = re.search(rf'<script id="{name}">\s*var \w+ = (.*?);\s*</script>', html, re.S)
    assert m, f"no {name} in the report"
    return json.loads(m.group(1))


def _data(uri: str) -> bytes:
    head, _, b64 = uri.partition(";base64,")
    assert head.startswith("data:") and b64, uri[:100]
    return base64.b64decode(b64)


def _chromium(browser: str, page: Path, profile: Path, *mode) -> subprocess.CompletedProcess:
    return subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                           "--no-first-run", "--hide-scrollbars", f"--user-data-dir={profile}",
                           "--enable-logging=stderr", "--v=0", "--virtual-time-budget=15000",
                           f"--window-size={WINDOW[0]},{WINDOW[1]}", *mode, page.as_uri()],
                          capture_output=True, text=True, timeout=120)


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_report_embeds_the_summary_page_and_the_frontier_in_reading_order(report):
    wd, path = report
    html = path.read_text()
    results, categories = _script_var(html, "results"), _script_var(html, "categories")
    assert sorted(categories) == [RESULTS, DASHBOARDS, DIAGNOSTICS]
    assert sorted(categories[RESULTS]) == [report_place("frontier")[1], report_place("summary")[1]]
    by_name = {Path(p).name: (p, r) for p, r in results.items()}
    # the summary page: shown inline (text/html), the very file the workflow wrote, with its tables and verdicts
    p, summary = by_name["summary.html"]
    assert p in categories[RESULTS][report_place("summary")[1]] and summary["mime_type"] == "text/html"
    page = _data(summary["data_uri"])
    assert page == (wd / "results" / "tables" / "summary.html").read_bytes()
    assert b"<table>" in page and b'class="verdict verdict-control">control<' in page
    # ciap stops where the 1-epoch control does, in every iteration: named identical to it, no timing verdict
    assert b'class="verdict verdict-identical">identical<' in page and b"lth_1" in page
    # summary.csv stays, as a download beside it
    assert by_name["summary.csv"][0] in categories[RESULTS][report_place("summary")[1]]
    # the frontier: its PNG and PDF, the PNG the file the workflow drew
    p, frontier = by_name["frontier.png"]
    assert p in categories[RESULTS][report_place("frontier")[1]] and frontier["mime_type"] == "image/png"
    assert _data(frontier["data_uri"]) == (wd / "results" / "figures" / "frontier.png").read_bytes()
    assert by_name["frontier.pdf"][0] in categories[RESULTS][report_place("frontier")[1]]
    # nothing to draw, nothing made: no threshold sweep, one seed (no verdicts)
    assert not {"ablation.png", "verdicts.png"} & set(by_name)
    assert not list((wd / "results" / "figures").glob("ablation*")) + list((wd / "results" / "figures").glob("verdicts*"))
    dashboards = categories[DASHBOARDS]
    assert sorted(Path(f).name for fs in dashboards.values() for f in fs) == [
        "similarity-ciap.png", "similarity-lth.png", "similarity-lth_1.png", "similarity.pdf"]
    assert {Path(f).stem for fs in categories[DIAGNOSTICS].values() for f in fs} == {
        "connectivity", "gradient", "comparison", "accuracy", "epochs", "cost"}


def test_report_opens_in_chromium_without_errors_and_shows_the_summary(report, browser, tmp_path):
    _, path = report
    html = path.read_text()
    summary_row = "page (summary.md, rendered)"
    clicks = CLICKS % {"category": json.dumps(RESULTS), "subcategory": json.dumps(report_place("summary")[1]),
                       "row": json.dumps(summary_row)}
    page = html.replace("<head>", "<head>" + ERRORS, 1)
    end = page.rindex("</body>")
    harness = tmp_path / "report.html"
    harness.write_text(page[:end] + clicks + page[end:])
    dom = _chromium(browser, harness, tmp_path / "profile", "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-3000:]
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line]
    assert not [line for line in console if "Uncaught" in line], "\n".join(console)
    m = re.search(r'<pre id="infcop-harness" data-state="(\w+)">(.*?)</pre>', dom.stdout, re.S)
    assert m, "the page's scripts never finished: " + dom.stderr[-2000:]
    assert (m.group(1), json.loads(m.group(2).replace("&quot;", '"'))) == ("shown", [])
    app = dom.stdout[dom.stdout.index('<div id="app">'):]
    menu = [app.index(f">{c}<") for c in (RESULTS, DASHBOARDS, DIAGNOSTICS)]
    assert menu == sorted(menu), "the report's menu is not in reading order"
    assert summary_row in app and "table (summary.csv, download)" in app
    assert re.search(r'<iframe src="data:text/html;charset=utf8;filename=summary\.html;base64,', app), \
        "the summary page is not shown inline"
    shot = tmp_path / "summary.png"
    r = _chromium(browser, harness, tmp_path / "profile", f"--screenshot={shot}")
    assert r.returncode == 0 and shot.is_file(), r.stderr[-3000:]
    data = shot.read_bytes()
    assert _png_size(data) == WINDOW and len(data) > 50_000  # text, tables and the menu: far from a blank page
    from matplotlib.image import imread

    pixels = imread(shot)[..., :3]
    assert pixels.std() > 0.1 and (pixels > 0.9).all(axis=-1).mean() > 0.3  # much white page, much ink on it

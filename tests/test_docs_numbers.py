"""Words match numbers: every figure that README.md and every page of docs/ give as a result (a difference
in pp, a percentage, a ratio, "k of n") appears in BENCHMARKS.md, where the benchmark scripts' tables and
RESULT lines put it; a number edited in one place and not the other fails here. A page states settings and
formulas in words ("half its epoch-0 value"), so that what the pattern finds is a measurement."""
import re

import pytest

from conftest import ROOT

QUOTED = re.compile(r"(?<![\w.])[+−-]?\d+(?:\.\d+)?(?:\s?(?:pp|%|x|×))|\b\d+ of \d+\b")
PAGES = ["README.md"] + sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))


def _norm(s: str) -> str:
    return s.replace("−", "-").replace("×", "x").replace(" pp", "pp").replace(" %", "%")


def _quoted(text: str) -> list[str]:
    """The quoted figures of a page, code blocks left out (they are commands, not results)."""
    return QUOTED.findall(re.sub(r"```.*?```", "", text, flags=re.S))


@pytest.mark.parametrize("page", PAGES)
def test_every_number_a_page_quotes_from_the_studies_is_in_benchmarks(page):
    text = (ROOT / page).read_text()
    bench = _norm((ROOT / "BENCHMARKS.md").read_text())
    quoted = _quoted(text)
    missing = [tok for tok in quoted if _norm(tok) not in bench and _norm(tok).lstrip("+") not in bench]
    assert not missing, f"quoted in {page} but in no table of BENCHMARKS.md: " + ", ".join(missing)


def test_every_docs_page_is_read():
    """A new page (or a renamed one) is read without editing this file; the pages that quote the studies
    are among them and still quote figures (if the pattern stopped matching, this would be empty)."""
    pages = set(PAGES)
    assert {"README.md", "docs/choosing-a-criterion.md", "docs/datasets.md"} <= pages
    assert len(pages) == 1 + len(list((ROOT / "docs").glob("*.md")))
    for page in ("README.md", "docs/choosing-a-criterion.md", "docs/datasets.md"):
        assert _quoted((ROOT / page).read_text()), f"{page} quotes no figures: has the text moved?"

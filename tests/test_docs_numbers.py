"""Words match numbers: every figure that README.md (the whole file) and the docs pages that quote the
studies (docs/choosing-a-criterion.md, docs/datasets.md) give as a result appears in BENCHMARKS.md, where
the benchmark scripts' tables and RESULT lines put it; a number edited in one place and not the other
fails here."""
import re

import pytest

from conftest import ROOT

QUOTED = re.compile(r"(?<![\w.])[+−-]?\d+(?:\.\d+)?(?:\s?(?:pp|%|x|×))|\b\d+ of \d+\b")
PAGES = ("README.md", "docs/choosing-a-criterion.md", "docs/datasets.md")


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
    assert quoted, f"{page} quotes no figures: has the text moved?"
    missing = [tok for tok in quoted if _norm(tok) not in bench and _norm(tok).lstrip("+") not in bench]
    assert not missing, f"quoted in {page} but in no table of BENCHMARKS.md: " + ", ".join(missing)

"""Words match numbers: every figure the README quotes from the studies (its "Choosing a criterion" and
"Data sets" sections) appears in BENCHMARKS.md, where the benchmark scripts' tables and RESULT lines
put it; a number edited in one place and not the other fails here."""
import re

from conftest import ROOT

QUOTED = re.compile(r"(?<![\w.])[+−-]?\d+(?:\.\d+)?(?:\s?(?:pp|%|x|×))|\b\d+ of \d+\b")
SECTIONS = ("## Choosing a criterion", "## Data sets")


def _section(text: str, heading: str) -> str:
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    return text[start:end if end > 0 else None]


def _norm(s: str) -> str:
    return s.replace("−", "-").replace("×", "x").replace(" pp", "pp").replace(" %", "%")


def test_every_number_the_readme_quotes_from_the_studies_is_in_benchmarks():
    readme = (ROOT / "README.md").read_text()
    bench = _norm((ROOT / "BENCHMARKS.md").read_text())
    missing = []
    for heading in SECTIONS:
        for token in QUOTED.findall(_section(readme, heading)):
            t = _norm(token)
            if t not in bench and t.lstrip("+") not in bench:
                missing.append(f"{heading}: {token}")
    assert not missing, "quoted in README but in no table of BENCHMARKS.md: " + ", ".join(missing)

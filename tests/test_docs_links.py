"""The front door stays a front door: README.md is short, every docs page is reachable from it and links
back, and no relative link in README.md or docs/*.md points at a file or a heading that is not there."""
import re
from pathlib import Path

import pytest

from conftest import ROOT

README = ROOT / "README.md"
PAGES = sorted((ROOT / "docs").glob("*.md"))
MAX_README_LINES = 160
LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(([^)\s]+)\)")


def _prose(text: str) -> str:
    """The text outside fenced code blocks and inline code spans (links there are not links)."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text, lower-cased, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading counts by its text
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a Markdown file, with GitHub's -1, -2 ... for repeated headings."""
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.S | re.M)
    seen: dict[str, int] = {}
    out = set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", text, flags=re.M):
        s = slug(heading)
        n = seen.get(s, 0)
        seen[s] = n + 1
        out.add(s if n == 0 else f"{s}-{n}")
    return out


def links(path: Path) -> list[str]:
    return LINK.findall(_prose(path.read_text()))


def test_slug_matches_githubs_anchors():
    assert slug("Extending: your own pruner or stop criterion") == "extending-your-own-pruner-or-stop-criterion"
    assert slug("The `infcop` command") == "the-infcop-command"
    assert slug("`snakemake --unlock` while another Snakemake still runs") == \
        "snakemake---unlock-while-another-snakemake-still-runs"
    assert slug("An experiment is one file, complete on its own") == "an-experiment-is-one-file-complete-on-its-own"


def test_readme_is_short():
    n = len(README.read_text().splitlines())
    assert n <= MAX_README_LINES, f"README.md has {n} lines; move detail to a page under docs/ and link it"


@pytest.mark.parametrize("path", [README, *PAGES], ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(path):
    broken = []
    for target in links(path):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto: ... not checked here
            continue
        file, _, anchor = target.partition("#")
        dest = (path.parent / file).resolve() if file else path
        if not dest.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target} (no heading '#{anchor}' in {dest.relative_to(ROOT)})")
    assert not broken, f"{path.relative_to(ROOT)}: " + ", ".join(broken)


def test_every_docs_page_is_linked_from_the_readme_and_links_back():
    assert PAGES, "no pages under docs/"
    linked = {(README.parent / t.partition("#")[0]).resolve() for t in links(README)}
    assert [p.name for p in PAGES if p.resolve() not in linked] == [], "docs pages the README does not link"
    for page in PAGES:
        lines = page.read_text().splitlines()
        assert lines[0].startswith("# "), f"{page.name}: starts with its title"
        head = "\n".join(lines[1:4])  # the one line that says what the page is, with the way back
        assert "](../README.md)" in head, f"{page.name}: no link back to README.md under its title"

"""The Snakemake report's pieces that infcop makes: summary.md as a self-contained HTML page (shown inline by
the report, where a .md or .csv file is only a download), and where every item goes in the report.

The page has no external resources (inline CSS, no scripts, images or fonts from elsewhere). The converter
knows the Markdown that infcop.judging.summary writes: ATX headings, paragraphs, ``-``/``*``/``1.`` lists, pipe
tables, fenced code, and inline ``code``, **bold**, *italic* and [links](url). Verdict words (better, worse,
equivalent, inconclusive, control, n/a) at the start of a table cell are shown as coloured badges, the word
itself kept as text.
"""
from __future__ import annotations

import html
import re
from pathlib import Path

from ..running.checkpoints import save_text

# Snakemake's report lists categories, subcategories and the rows of a subcategory in alphabetical order
# (String.localeCompare in the report's JavaScript): numbered names keep the reading order.
RESULTS = "1. Results"
DASHBOARDS = "2. Method dashboards"
DIAGNOSTICS = "3. Diagnostics"
REPORT_PLACES = {  # figure or item -> (category, subcategory)
    "verdicts": (RESULTS, "1. Verdicts"),
    "frontier": (RESULTS, "2. Frontier"),
    "summary": (RESULTS, "3. Summary"),
    "similarity": (DASHBOARDS, "Similarity during retraining, per method"),
}
DIAGNOSTIC_FIGURES = (DIAGNOSTICS, "Figures")
# The PNG/PDF pair of a figure is one row with a toggle; the first value (alphabetically) is shown first.
FORMAT_LABELS = {".png": "quick look (PNG)", ".pdf": "vector (PDF)"}


def report_place(item: str) -> tuple[str, str]:
    """(category, subcategory) of a figure name or 'summary' in the Snakemake report."""
    return REPORT_PLACES.get(item, DIAGNOSTIC_FIGURES)


def figure_labels(name: str, suffix: str) -> dict:
    """The report labels of a figure's file: its name, and its format (.png or .pdf) for the toggle."""
    return {"figure": name, "format": FORMAT_LABELS[suffix]}


VERDICTS = ("better", "worse", "equivalent", "inconclusive", "control", "n/a")

CSS = """
:root { color-scheme: light; }
body { font: 15px/1.5 -apple-system, "Segoe UI", Roboto, "DejaVu Sans", Helvetica, Arial, sans-serif;
       color: #1f2328; background: #ffffff; margin: 0; padding: 1.5rem 2rem 3rem; }
main { max-width: 82rem; margin: 0 auto; }
h1, h2, h3, h4 { line-height: 1.25; margin: 1.6em 0 0.6em; }
h1 { font-size: 1.8em; border-bottom: 1px solid #d0d7de; padding-bottom: .3em; margin-top: 0; }
h2 { font-size: 1.4em; border-bottom: 1px solid #d8dee4; padding-bottom: .25em; }
h3 { font-size: 1.15em; }
p, ul, ol { margin: 0 0 1em; }
li { margin: .2em 0; }
code { font: 0.88em/1.4 "DejaVu Sans Mono", Menlo, Consolas, monospace; background: #f0f2f4;
       padding: .1em .3em; border-radius: 4px; }
pre { background: #f6f8fa; padding: .8em 1em; overflow-x: auto; border-radius: 6px; }
pre code { background: none; padding: 0; }
.table-wrap { overflow-x: auto; margin: 0 0 1.2em; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border: 1px solid #d0d7de; padding: .35em .6em; text-align: left; vertical-align: top; }
th { background: #f6f8fa; font-weight: 600; }
tbody tr:nth-child(even) td { background: #fafbfc; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.verdict { display: inline-block; font-weight: 700; padding: 0 .45em; border-radius: 1em; white-space: nowrap; }
.verdict-better { background: #dafbe1; color: #116329; }
.verdict-worse { background: #ffebe9; color: #a40e26; }
.verdict-equivalent { background: #ddf4ff; color: #0550ae; }
.verdict-inconclusive { background: #fff8c5; color: #7d4e00; }
.verdict-dominated { background: #f6e8d5; color: #6b3d06; }
.verdict-identical { background: #eaeef2; color: #24292f; }
.verdict-control, .verdict-na { background: #eaeef2; color: #57606a; font-weight: 600; }
"""


def _inline(text: str) -> str:
    """Escape `text` and render code spans, links, bold and italic."""
    parts = re.split(r"(`[^`]+`)", text)
    out = []
    for i, part in enumerate(parts):
        if i % 2:  # a code span: taken literally
            out.append(f"<code>{html.escape(part[1:-1], quote=False)}</code>")
            continue
        s = html.escape(part, quote=False)
        s = re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)",
                   lambda m: f'<a href="{html.escape(m.group(2), quote=True)}">{m.group(1)}</a>', s)
        s = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", s)
        s = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"<em>\1</em>", s)
        out.append(s)
    return "".join(out)


def _cells(line: str) -> list[str]:
    """The cells of a pipe-table row; a `|` inside a code span or escaped as `\\|` is not a separator."""
    s = line.strip()
    if s.startswith("|"):
        s = s[1:]
    if s.endswith("|") and not s.endswith("\\|"):
        s = s[:-1]
    cells, cur, in_code = [], [], False
    i = 0
    while i < len(s):
        ch = s[i]
        if ch == "\\" and i + 1 < len(s) and s[i + 1] == "|":
            cur.append("|")
            i += 2
            continue
        if ch == "`":
            in_code = not in_code
        if ch == "|" and not in_code:
            cells.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
        i += 1
    cells.append("".join(cur).strip())
    return cells


_SEPARATOR = re.compile(r"^\s*\|?\s*:?-{1,}:?\s*(\|\s*:?-{1,}:?\s*)*\|?\s*$")
_NUMBER = re.compile(r"^[−+\-]?[\d.,]+(\s*±\s*[\d.,]+)?\s*%?$")


def _cell_html(text: str) -> tuple[str, str]:
    """(HTML, class) of a table cell: a leading verdict word becomes a badge; numbers align right."""
    m = re.match(r"^(\*\*)?(better|worse|equivalent|inconclusive|dominated|identical|control|n/a)(\*\*)?(?=$|[\s(,;:])", text)
    if m:
        word = m.group(2)
        badge = f'<span class="verdict verdict-{word.replace("/", "")}">{html.escape(word)}</span>'
        return badge + _inline(text[m.end():]), ""
    return _inline(text), "num" if _NUMBER.match(text) else ""


def _table(rows: list[str]) -> str:
    head = _cells(rows[0])
    out = ['<div class="table-wrap"><table>', "<thead><tr>"]
    out += [f"<th>{_inline(c)}</th>" for c in head]
    out.append("</tr></thead>")
    out.append("<tbody>")
    for row in rows[1:]:
        cells = _cells(row)
        cells += [""] * (len(head) - len(cells))
        out.append("<tr>")
        for c in cells[:len(head)]:
            body, cls = _cell_html(c)
            out.append(f'<td class="{cls}">{body}</td>' if cls else f"<td>{body}</td>")
        out.append("</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def _slug(text: str, seen: dict) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"
    n = seen.get(base, 0)
    seen[base] = n + 1
    return base if n == 0 else f"{base}-{n}"


def markdown_to_html(text: str) -> str:
    """The HTML body of a Markdown text (the subset described in the module's docstring)."""
    lines = text.splitlines()
    out: list[str] = []
    para: list[str] = []
    slugs: dict = {}
    i = 0

    def flush():
        if para:
            out.append(f"<p>{_inline(' '.join(p.strip() for p in para))}</p>")
            para.clear()

    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if not stripped:
            flush()
            i += 1
            continue
        if stripped.startswith("```"):
            flush()
            j = i + 1
            while j < len(lines) and not lines[j].strip().startswith("```"):
                j += 1
            out.append(f"<pre><code>{html.escape(chr(10).join(lines[i + 1:j]), quote=False)}</code></pre>")
            i = j + 1
            continue
        m = re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", stripped)
        if m:
            flush()
            level = len(m.group(1))
            out.append(f'<h{level} id="{_slug(m.group(2), slugs)}">{_inline(m.group(2))}</h{level}>')
            i += 1
            continue
        if stripped.startswith("|") and i + 1 < len(lines) and _SEPARATOR.match(lines[i + 1]):
            flush()
            rows = [line]
            j = i + 2
            while j < len(lines) and lines[j].strip().startswith("|"):
                rows.append(lines[j])
                j += 1
            out.append(_table(rows))
            i = j
            continue
        lm = re.match(r"^(\s*)([-*+]|\d+[.)])\s+(.*)$", line)
        if lm and not para:
            ordered = lm.group(2)[0].isdigit()
            tag = "ol" if ordered else "ul"
            items: list[list[str]] = []
            j = i
            while j < len(lines):
                cur = re.match(r"^(\s*)([-*+]|\d+[.)])\s+(.*)$", lines[j])
                if cur and cur.group(2)[0].isdigit() == ordered:
                    items.append([cur.group(3)])
                elif lines[j].strip() and lines[j].startswith((" ", "\t")) and items:
                    items[-1].append(lines[j].strip())  # a continuation line of the item
                else:
                    break
                j += 1
            out.append(f"<{tag}>" + "".join(f"<li>{_inline(' '.join(it))}</li>" for it in items) + f"</{tag}>")
            i = j
            continue
        para.append(line)
        i += 1
    flush()
    return "\n".join(out)


def summary_page(markdown: str, title: str = "infcop summary") -> str:
    """A complete, self-contained HTML document of `markdown` (inline CSS, nothing loaded from elsewhere)."""
    m = re.search(r"^#\s+(.+)$", markdown, re.M)
    heading = m.group(1).strip() if m else title
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{html.escape(heading)}</title>\n<style>{CSS}</style>\n</head>\n"
            f"<body>\n<main>\n{markdown_to_html(markdown)}\n</main>\n</body>\n</html>\n")


def write_summary_page(md_path, out_path) -> None:
    """Render `md_path` (summary.md) as a self-contained HTML page at `out_path`, written atomically."""
    from .. import InfcopError

    md_path = Path(md_path)
    try:
        text = md_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InfcopError(f"missing file '{md_path}'") from None
    save_text(summary_page(text), out_path)

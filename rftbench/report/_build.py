"""Build a report folder: ``index.html`` + ``report.md`` + ``figures/*.png``, self-contained.

Every string that comes from the inputs is escaped where it is rendered: jinja2 with autoescape for
the HTML, :func:`md` (HTML entities and Markdown's special characters) for the Markdown.
"""

from __future__ import annotations

import html
import re
import shutil
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import jinja2
import markupsafe

from .. import __version__
from ..errors import RftbenchError
from ..results import atomic_write_text
from . import _analyses as an
from ._load import Loaded, load_inputs

#: Written into every report folder; a non-empty folder without it is not overwritten.
MARKER = ".rftbench-report"


@dataclass
class Report:
    out: Path
    index: Path
    markdown: Path
    sections: list[an.Section]
    rows: int
    missing: list[str] = field(default_factory=list)
    seconds: float = 0.0


def analyse(loaded: Loaded, figures: an.Figures) -> list[an.Section]:
    """Every section of the report for the loaded rows (figures are drawn into ``figures``)."""
    sections = [an.overview(loaded)]
    published = [r for r in loaded.rows if r.origin == "published"]
    local = [r for r in loaded.rows if r.origin != "published"]
    if published:
        sections.append(an.reference_study(published, figures, "published",
                                           f"The reference study's analyses — published results ({len(published)})"))
    if local:
        sections.append(an.reference_study(local, figures, "local",
                                           f"The reference study's analyses — local results ({len(local)})"))
    if not published and not local:
        empty = an.Section("reference", "The reference study's analyses")
        empty.missing.append("no results to analyse")
        sections.append(empty)
    sections += [an.epsilon_scheduling(loaded.rows, figures, loaded.cards.classes),
                 an.robustness_transfer(loaded.rows, loaded.probes, figures),
                 an.training_cost(loaded.rows, figures),
                 an.union_section(loaded.rows),
                 an.in_training(loaded.rows, figures),
                 an.cost_of_results(loaded.rows, figures),
                 an.results_table(loaded.rows)]
    return sections


# ---------------------------------------------------------------------------------- rendering

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]|#])")


def md(value: object) -> str:
    """A string from the inputs, safe in Markdown table cells and paragraphs (no HTML, no markup, no pipes)."""
    return _MD_SPECIAL.sub(r"\\\1", html.escape(str(value).replace("\n", " "), quote=False))


def _md_inline(value: object) -> str:
    """Our own prose: `code` spans kept, everything else escaped like :func:`md`."""
    parts = str(value).split("`")
    return "".join(f"`{p.replace('`', '')}`" if i % 2 else md(p) for i, p in enumerate(parts))


def _html_inline(value: object) -> markupsafe.Markup:
    """Our own prose for HTML: escaped, then `code` spans as <code>."""
    parts = str(value).split("`")
    return markupsafe.Markup("".join(
        f"<code>{html.escape(p)}</code>" if i % 2 else html.escape(p) for i, p in enumerate(parts)))


def _flatten(sections: Iterable[an.Section]) -> list[tuple[int, an.Section]]:
    out = []
    for s in sections:
        out.append((2, s))
        out.extend((3, sub) for sub in s.subsections)
    return out


HTML = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="rftbench {{ version }}">
<title>{{ title }}</title>
<style>
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1280px; padding: 1rem 2rem 4rem; color: #1b1f24; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { border-bottom: 1px solid #d0d7de; padding-bottom: .2rem; margin-top: 2.4rem; }
h3 { margin-top: 1.8rem; } nav ul { columns: 2; } .meta { color: #57606a; }
table { border-collapse: separate; border-spacing: 0; font-size: .85rem; }
.table-title { font-weight: 600; padding: .2rem 0; margin-top: .6rem; }
.table-scroll { overflow: auto; max-height: 75vh; margin: 0 0 1.2rem; border: 1px solid #d0d7de; }
.table-scroll.more-right { box-shadow: inset -14px 0 10px -10px rgba(0, 0, 0, .25); }
.scroll-hint { color: #0969da; font-size: .85rem; text-align: right; margin: 0; }
th, td { border-right: 1px solid #d0d7de; border-bottom: 1px solid #d0d7de; padding: .2rem .5rem; text-align: left; white-space: nowrap; background: #fff; }
th { background: #f6f8fa; position: sticky; top: 0; z-index: 1; } tr:nth-child(even) td { background: #fbfcfd; }
/* the first (identity) column stays in view while the rest scrolls sideways */
th:first-child, td:first-child { position: sticky; left: 0; z-index: 1; box-shadow: 3px 0 5px -3px rgba(0, 0, 0, .2); }
th:first-child { z-index: 2; }
figure { margin: 1rem 0; } figure img { max-width: 100%; border: 1px solid #eaeef2; } figcaption { color: #57606a; font-size: .9rem; }
.missing { background: #fff8c5; border-left: 4px solid #d4a72c; padding: .4rem .8rem; margin: .6rem 0; }
.missing li { margin: .15rem 0; } code { background: #f6f8fa; padding: 0 .2rem; border-radius: 3px; }
</style>
</head>
<body data-sections="{{ flat|length }}" data-rows="{{ rows }}" data-missing="{{ missing_count }}">
<h1>{{ title }}</h1>
<p class="meta">Generated {{ generated }} by rftbench {{ version }} from {{ rows }} result(s). Accuracies in %.</p>
<nav><ul>{% for level, s in flat %}{% if level == 2 %}<li><a href="#{{ s.id }}">{{ s.title }}</a></li>{% endif %}{% endfor %}</ul></nav>
{% for level, s in flat %}
<section id="{{ s.id }}" class="level{{ level }}">
<h{{ level }}>{{ s.title }}</h{{ level }}>
{% if s.intro %}<p>{{ s.intro|prose }}</p>{% endif %}
{% for p in s.paragraphs %}<p>{{ p|prose }}</p>{% endfor %}
{% if s.missing %}<div class="missing"><strong>Not drawn or left out:</strong><ul>{% for m in s.missing %}<li>{{ m|prose }}</li>{% endfor %}</ul></div>{% endif %}
{% for f in s.figures %}<figure><img src="{{ f.file }}" alt="{{ f.caption }}"><figcaption>{{ f.caption }}</figcaption></figure>{% endfor %}
{% for t in s.tables %}<div class="table-title">{{ t.caption }}</div><p class="scroll-hint" hidden></p>
<div class="table-scroll"><table aria-label="{{ t.caption }}">
<thead><tr>{% for h in t.header %}<th>{{ h }}</th>{% endfor %}</tr></thead>
<tbody>{% for row in t.rows %}<tr>{% for cell in row %}<td>{{ cell }}</td>{% endfor %}</tr>{% endfor %}</tbody></table></div>
{% endfor %}
</section>
{% endfor %}
<script>
// A table wider than the page scrolls inside its box (first column and header kept); say so above it.
document.querySelectorAll(".table-scroll").forEach(function (box) {
  var hint = box.previousElementSibling;
  function update() {
    var more = box.scrollWidth - box.clientWidth > 1, atEnd = box.scrollLeft + box.clientWidth >= box.scrollWidth - 1;
    hint.hidden = !more;
    hint.textContent = atEnd ? "← scroll back for the first columns" : "more columns to the right → scroll the table sideways";
    box.classList.toggle("more-right", more && !atEnd);
  }
  box.addEventListener("scroll", update);
  window.addEventListener("resize", update);
  update();
});
</script>
</body>
</html>
"""


def render_html(sections: Sequence[an.Section], *, title: str, rows: int, generated: str) -> str:
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    env.filters["prose"] = _html_inline
    flat = _flatten(sections)
    missing = sum(len(s.missing) for _, s in flat)
    return env.from_string(HTML).render(title=title, flat=flat, rows=rows, generated=generated, version=__version__,
                                        missing_count=missing)


def render_markdown(sections: Sequence[an.Section], *, title: str, rows: int, generated: str) -> str:
    lines = [f"# {md(title)}", "", f"Generated {generated} by rftbench {__version__} from {rows} result(s). Accuracies in %.", ""]
    for level, s in _flatten(sections):
        lines += [f"{'#' * level} {md(s.title)}", ""]
        if s.intro:
            lines += [_md_inline(s.intro), ""]
        for p in s.paragraphs:
            lines += [_md_inline(p), ""]
        if s.missing:
            lines += ["**Not drawn or left out:**", ""] + [f"- {_md_inline(m)}" for m in s.missing] + [""]
        for f in s.figures:
            lines += [f"![{md(f.caption)}]({f.file})", ""]
        for t in s.tables:
            lines += [f"*{md(t.caption)}*", "", "| " + " | ".join(md(h) for h in t.header) + " |",
                      "|" + "---|" * len(t.header)]
            lines += ["| " + " | ".join(md(c) for c in row) + " |" for row in t.rows]
            lines.append("")
    return "\n".join(lines)


def _prepare(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise RftbenchError(f"{out}: exists and is not a folder; choose another -o")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise RftbenchError(f"{out}: the folder is not empty and holds no earlier report; choose another -o or empty it")
    out.mkdir(parents=True, exist_ok=True)
    figures = out / "figures"
    if figures.is_dir():
        shutil.rmtree(figures)  # figures of an earlier report that this one may not draw again
    (out / MARKER).write_text("written by `rftbench report`; the folder is rewritten by the next report\n")


def build_report(inputs: Iterable[str], out: str | Path, *, title: str = "rftbench report",
                 generated: datetime | None = None) -> Report:
    """Read ``inputs`` (results folders, records, entries, entry collections, sweep files, ``guide2025``) and write the report."""
    start = time.perf_counter()
    inputs = list(inputs)
    if not inputs:
        raise RftbenchError("give at least one input: a results folder, a result record, an entry file, a sweep file or guide2025")
    loaded = load_inputs(inputs)
    out = Path(out)
    _prepare(out)
    sections = analyse(loaded, an.Figures(out))
    stamp = (generated or datetime.now(timezone.utc)).replace(microsecond=0).isoformat()
    index, markdown = out / "index.html", out / "report.md"
    atomic_write_text(index, render_html(sections, title=title, rows=len(loaded.rows), generated=stamp))
    atomic_write_text(markdown, render_markdown(sections, title=title, rows=len(loaded.rows), generated=stamp))
    missing = [m for _, s in _flatten(sections) for m in s.missing]
    return Report(out, index, markdown, sections, len(loaded.rows), missing, time.perf_counter() - start)

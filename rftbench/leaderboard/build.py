"""The static leaderboard site: one self-contained HTML page rendered with jinja2.

The page needs no server and no internet: the stylesheet and script in ``leaderboard/static``
are inlined, the table is rendered by the template (so it reads without JavaScript), and the
script adds sorting, filters and the plots (inline SVG drawn from the table's own rows):

- clean vs robust accuracy with the Pareto front (the robust axis is selectable);
- per-protocol and per-loss comparisons (mean accuracy under each threat model), with the
  share of matched pairs in which one loss beats the other on ``sum``.

Next to ``index.html`` the build writes ``README.md`` (the front matter that makes the folder a
static Hugging Face Space) and ``entries.jsonl`` (every entry shown, for download).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import jinja2

from .. import __version__
from ..results import atomic_write_text
from .collect import ORIGINS
from .entry import Entry, threat_sort_key
from .urls import safe_href

#: The filters of the table, in order: (row attribute, label).
FILTERS: tuple[tuple[str, str], ...] = (
    ("dataset", "dataset"),
    ("protocol", "protocol"),
    ("loss", "loss"),
    ("family", "family"),
    ("pretraining", "pretraining"),
    ("origin", "origin"),
)
NORM_TITLES = {"linf": "L∞", "l2": "L2", "l1": "L1", "corruption": "corruptions", "other": ""}

SPACE_FRONT_MATTER = """---
title: rftbench leaderboard
emoji: 🛡️
colorFrom: indigo
colorTo: green
sdk: static
app_file: index.html
pinned: false
short_description: Robust fine-tuning of pretrained image classifiers
---
"""


@dataclass(frozen=True)
class Column:
    """A threat-model column of the table."""

    label: str
    title: str


def _threat_title(label: str) -> str:
    norm, _, budget = label.partition(":")
    prefix = {"linf": "L∞", "l2": "L2", "l1": "L1", "corruptions": "corr."}.get(norm, norm)
    return f"{prefix} {budget}"


def protocol_label(entry: Entry) -> str:
    """``FFT-50``, ``LP-50``: the protocol with its epoch budget, as the reference study writes it."""
    return f"{entry.setup.protocol.upper()}-{entry.setup.epochs}"


def pareto_front(points: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    """The points not dominated in both coordinates (higher is better), sorted by x.

    The site's script draws the same front; the browser test compares the two.
    """
    front: list[tuple[float, float]] = []
    best_y = -math.inf
    for x, y in sorted(set(points), key=lambda p: (-p[0], -p[1])):
        if y > best_y:
            front.append((x, y))
            best_y = y
    return sorted(front)


def _row(origin: str, entry: Entry, columns: Sequence[Column]) -> dict[str, Any]:
    m = entry.metrics
    verified = entry.verification.status if entry.verification else ""
    return {
        "id": entry.id,
        "representation": entry.setup.representation,
        "short_name": entry.model.short_name or "",
        "dataset": entry.setup.dataset,
        "protocol": protocol_label(entry),
        "loss": entry.setup.loss,
        "family": entry.model.family or "unknown",
        "pretraining": entry.model.pretraining or "unknown",
        "size": entry.model.size or "",
        "origin": origin,
        "verified": verified,
        "unreliable": m.reliable is False,
        "clean": m.clean_acc,
        "threats": [m.acc(c.label) for c in columns],
        "sum": m.sum,
        "geom": m.geom,
        "er": m.expected_robustness,
        "full_suite": all(m.acc(c.label) is not None for c in columns),
        "submitter": entry.submitter or (entry.source.reference.split(",")[0] if entry.source.reference else ""),
        "source_url": safe_href(entry.source.url),
        "checkpoint": safe_href(f"https://huggingface.co/{entry.checkpoint.repo}/tree/{entry.checkpoint.revision}") if entry.checkpoint else "",
        "pair": f"{entry.setup.representation}|{entry.setup.dataset}|{protocol_label(entry)}",
    }


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}"


def _geom(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.4f}" if value >= 1e-3 or value == 0 else f"{value:.2e}"


def _attr(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def environment(templates: Path | None = None) -> jinja2.Environment:
    """The jinja2 environment of the site (autoescaping on; filters for numbers)."""
    from rftbench_leaderboard import TEMPLATES_DIR

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates or TEMPLATES_DIR)),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(pct=_pct, geom=_geom, attr=_attr)
    return env


def _inline_script(text: str) -> str:
    """Make our own script safe inside a <script> element (no premature ``</script>``)."""
    return text.replace("</", "<\\/")


def _inline_json(data: Any) -> str:
    """JSON for a ``<script type="application/json">`` element that no string can end or comment out.

    ``<``, ``>``, ``&`` and the JavaScript line separators become ``\\uXXXX`` escapes, which
    ``JSON.parse`` reads back as the same characters; nothing HTML's script parser looks for remains.
    """
    text = json.dumps(data, ensure_ascii=False)
    for char in ("<", ">", "&", "\u2028", "\u2029"):
        text = text.replace(char, f"\\u{ord(char):04x}")
    return text


def render_site(entries: Sequence[tuple[str, Entry]], *, title: str = "rftbench leaderboard", generated: datetime | None = None,
                templates: Path | None = None, static: Path | None = None) -> str:
    """The page's HTML for ``(origin, entry)`` pairs; origin is ``published``, ``submitted`` or ``local``."""
    from rftbench_leaderboard import STATIC_DIR

    static = static or STATIC_DIR
    labels = sorted({label for _, e in entries for label in e.metrics.threats}, key=threat_sort_key)
    columns = [Column(label, _threat_title(label)) for label in labels]
    rows = sorted((_row(o, e, columns) for o, e in entries), key=lambda r: (-r["sum"], r["id"]))
    options = {key: sorted({r[key] for r in rows}) for key, _ in FILTERS}
    sources = sorted({(e.source.reference, e.source.url) for _, e in entries if e.source.kind == "imported" and e.source.reference})
    config = {"threats": [{"label": c.label, "title": c.title} for c in columns], "filters": [k for k, _ in FILTERS]}
    template = environment(templates).get_template("index.html.j2")
    return template.render(
        title=title,
        rows=rows,
        columns=columns,
        filters=[(key, label, options[key]) for key, label in FILTERS],
        counts={o: sum(1 for r in rows if r["origin"] == o) for o in ORIGINS},
        sources=[(reference, safe_href(url)) for reference, url in sources],
        generated=(generated or datetime.now(timezone.utc)).strftime("%Y-%m-%d %H:%M UTC"),
        version=__version__,
        css=(static / "style.css").read_text(),
        script=_inline_script((static / "app.js").read_text()),
        config_json=_inline_json(config),
    )


def build_site(entries: Sequence[tuple[str, Entry]], out: str | Path, **kwargs: Any) -> Path:
    """Write ``index.html``, ``README.md`` (static Space front matter) and ``entries.jsonl`` into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    html = render_site(entries, **kwargs)
    atomic_write_text(out / "index.html", html)
    readme = environment(kwargs.get("templates")).get_template("space_readme.md.j2")
    atomic_write_text(out / "README.md", SPACE_FRONT_MATTER + readme.render(n=len(entries), version=__version__))
    atomic_write_text(out / "entries.jsonl", "".join(e.model_dump_json() + "\n" for _, e in entries))
    return out / "index.html"

"""The static leaderboard site: one self-contained HTML page rendered with jinja2.

The page needs no server and no internet: the stylesheet and script in ``leaderboard/static``
are inlined, the table is rendered by the template (so it reads without JavaScript), and the
script adds sorting, filters and the plots (inline SVG drawn from the table's own rows):

- clean vs robust accuracy with the Pareto front of each dataset (a front never mixes datasets;
  the robust axis is selectable);
- per-protocol and per-loss comparisons (mean accuracy under each threat model), with the
  share of matched pairs in which one loss beats the other on ``sum``.

Every accuracy is shown with its Wilson 95% interval, from the entry's number of test images
(``metrics.n_eval``; for imported results the study's, 1,000 for the reference study). Sorting by
an accuracy column marks, within each dataset, the best entry shown and those statistically
indistinguishable from it (:func:`ties_with_best`: Newcombe's interval of the difference
contains 0); the script computes the same marks as Python. The marks compare single entries —
one trained model each — and cover the sampling of test images only, not seed-to-seed
variation (the page says so): they are not a comparison of recipes (``rftbench compare`` with
groups of seeds is).

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
from ..stats import accuracy_interval
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


#: The union-accuracy columns (entry field, title): unknown (—) for entries without per-threat outcomes, never 0.
UNION_COLUMNS: tuple[tuple[str, str], ...] = (("union", "union"), ("union_all", "union (all)"))


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


def pareto_fronts(points: Iterable[tuple[str, float, float]]) -> dict[str, list[tuple[float, float]]]:
    """The Pareto front of each dataset: ``(dataset, x, y)`` points → dataset → its front.

    The site draws one front per dataset, so a digits mini model never sits on the same
    front as a ConvNeXt on Flowers-102.
    """
    groups: dict[str, list[tuple[float, float]]] = {}
    for dataset, x, y in points:
        groups.setdefault(dataset, []).append((x, y))
    return {d: pareto_front(pts) for d, pts in sorted(groups.items())}


def ties_with_best(values: Sequence[tuple[str, float | None, float | None, float | None]]) -> list[str]:
    """Per row ``(dataset, accuracy, ci_low, ci_high)``: ``best``, ``tie`` or ``""``.

    Within each dataset the highest accuracy is ``best``; a row is ``tie`` (statistically
    indistinguishable from it) when Newcombe's hybrid score interval of best − row, built from
    the two Wilson intervals, reaches 0: ``(best − acc) − √((best − best_low)² + (acc_high − acc)²) ≤ 0``.
    Rows without an interval (unknown n) are left unmarked. The site's script applies the same rule.
    Each row is one entry (one trained model): the rule covers test-point sampling, not seeds.
    """
    best: dict[str, tuple[float, float]] = {}
    for dataset, acc, low, _high in values:
        if acc is not None and low is not None and (dataset not in best or acc > best[dataset][0]):
            best[dataset] = (acc, low)
    marks = []
    for dataset, acc, _low, high in values:
        if acc is None or high is None or dataset not in best:
            marks.append("")
            continue
        top, top_low = best[dataset]
        if acc == top:
            marks.append("best")
        else:
            marks.append("tie" if (top - acc) - math.sqrt((top - top_low) ** 2 + (high - acc) ** 2) <= 0 else "")
    return marks


def _interval(acc: float | None, n: int | None) -> tuple[float, float] | None:
    return None if acc is None else accuracy_interval(acc, n)


def _row(origin: str, entry: Entry, columns: Sequence[Column]) -> dict[str, Any]:
    m = entry.metrics
    n = entry.n_eval
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
        "collapsed": "robust-collapse" in (entry.training_warnings or []),
        "training_warnings": ", ".join(entry.training_warnings or []),
        "clean": m.clean_acc,
        "threats": [m.acc(c.label) for c in columns],
        "n": n,
        "clean_ci": _interval(m.clean_acc, n),
        "threat_cis": [_interval(m.acc(c.label), n) for c in columns],
        "unions": [getattr(m, name).acc if getattr(m, name) is not None else None for name, _ in UNION_COLUMNS],
        "union_cis": [_interval(getattr(m, name).acc, n) if getattr(m, name) is not None else None for name, _ in UNION_COLUMNS],
        "sum": m.sum,
        "geom": m.geom,
        "er": m.expected_robustness,
        "auc": m.pareto_auc,
        "flops": entry.cost.flops if entry.cost else None,
        "device_seconds": entry.cost.device_seconds if entry.cost else None,
        "device_unit": (entry.cost.device_seconds_unit or "") if entry.cost else "",
        "peak_memory": entry.cost.peak_memory_bytes if entry.cost else None,
        "trainable": entry.parameters.trainable if entry.parameters else None,
        "trainable_share": entry.parameters.share if entry.parameters else None,
        "total_parameters": entry.parameters.total if entry.parameters else None,
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


def _count(value: float | None, unit: str = "") -> str:
    """``1.2 G`` for a count; ``unknown`` when absent (a result without cost is unknown, never 0)."""
    if value is None:
        return "unknown"
    for factor, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}".rstrip()


def _attr(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def _ci(interval: tuple[float, float] | None) -> str:
    return "" if interval is None else f"{100 * interval[0]:.1f}–{100 * interval[1]:.1f}"


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
    env.filters.update(pct=_pct, geom=_geom, attr=_attr, ci=_ci, count=_count)
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

"""The static site: rendered with jinja2, self-contained, with every entry as a table row."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest

from hub_server import WRITE_TOKEN, fake_hub, hub_env  # noqa: F401 - fixtures
from leaderboard_helpers import make_entry, make_record
from rftbench.cli import main
from rftbench.leaderboard.entry import Verification
from rftbench.leaderboard.build import build_site, pareto_front, pareto_fronts, render_site, ties_with_best
from rftbench.leaderboard.hub import HubPublisher
from rftbench.results import write_record


class Page(HTMLParser):
    """Collects rows, selects and every external reference of a page."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.rows: list[dict[str, str]] = []
        self.filters: dict[str, list[str]] = {}
        self.refs: list[str] = []
        self._select: str | None = None
        self._in_body = False
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "tbody":
            self._in_body = True
        if tag == "tr" and self._in_body:
            self.rows.append(a)
        if tag == "select" and "data-filter" in a:
            self._select = a["data-filter"]
            self.filters[self._select] = []
        if tag == "option" and self._select:
            self.filters[self._select].append(a.get("value", ""))
        for key in ("src", "href"):
            if key in a and tag in ("script", "link", "img", "iframe"):
                self.refs.append(a[key])

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None
        if tag == "tbody":
            self._in_body = False


def entries():
    return [
        ("local", make_entry("a" * 16)),
        ("local", make_entry("b" * 16, clean=0.9, linf=0.1, loss={"name": "classic_at"})),
        ("submitted", make_entry("c" * 16, clean=0.5, linf=0.45, protocol="lp")),
    ]


def test_rows_filters_and_columns():
    html = render_site(entries())
    page = Page(html)
    assert len(page.rows) == 3
    assert [r["data-id"] for r in page.rows] == [e.id for _, e in sorted(entries(), key=lambda oe: -oe[1].metrics.sum)]
    assert page.filters["protocol"] == ["", "FFT-3", "LP-3"]
    assert page.filters["loss"] == ["", "classic_at", "trades"]
    assert page.filters["origin"] == ["", "local", "submitted"]
    assert set(page.filters) == {"dataset", "protocol", "loss", "family", "pretraining", "origin"}
    assert ">L∞ 4/255</th>" in html and ">L2 0.5</th>" in html
    assert "3 entries" in html and "(0 published, 1 submitted, 2 local)" in html


def test_page_is_self_contained():
    html = render_site(entries())
    page = Page(html)
    assert page.refs == [] or all(not re.match(r"^(https?:)?//", r) for r in page.refs)
    assert "<link" not in html  # stylesheet inlined
    assert "function paretoFront" in html and "font: 14px" in html  # script and css inlined
    config = json.loads(re.search(r'<script type="application/json" id="board-config">(.*?)</script>', html, re.S).group(1))
    assert [t["label"] for t in config["threats"]] == ["linf:4/255", "l2:0.5"]


def test_badges_for_verified_and_unreliable_entries():
    entry = make_entry("d" * 16)
    flagged = entry.resealed(metrics={**entry.metrics.model_dump(), "reliable": False})
    verified = make_entry("e" * 16).model_copy(update={"verification": Verification(
        status="verified", tolerance=0.01, n_eval=64, measured={}, claimed={}, date="2025-09-02T00:00:00Z")})
    html = render_site([("local", flagged), ("submitted", verified)])
    assert html.count('class="badge warn"') == 1 and html.count('class="badge ok"') == 1


def test_text_is_escaped():
    evil = make_entry("d" * 16, representation="<script>alert(1)</script>")
    html = render_site([("local", evil)])
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_build_writes_a_static_space(tmp_path):
    index = build_site(entries(), tmp_path / "site")
    readme = (tmp_path / "site" / "README.md").read_text()
    assert readme.startswith("---\n") and "sdk: static" in readme and "app_file: index.html" in readme
    lines = (tmp_path / "site" / "entries.jsonl").read_text().splitlines()
    assert len(lines) == 3 and index.read_text().startswith("<!doctype html>")


@pytest.mark.parametrize(
    ("points", "front"),
    [
        ([(0.9, 0.1), (0.5, 0.5), (0.4, 0.4), (0.1, 0.9), (0.9, 0.05)], [(0.1, 0.9), (0.5, 0.5), (0.9, 0.1)]),
        ([(0.5, 0.5), (0.5, 0.5)], [(0.5, 0.5)]),
        ([(0.5, 0.5), (0.5, 0.6)], [(0.5, 0.6)]),
        ([], []),
    ],
)
def test_pareto_front(points, front):
    assert pareto_front(points) == front


def test_cli_build_from_results_entries_and_the_hub(fake_hub, tmp_path, capsys, monkeypatch, fresh_manager):
    monkeypatch.setenv("HF_TOKEN", WRITE_TOKEN)
    HubPublisher("org/board", endpoint=fake_hub.url).publish(make_entry("e" * 16))
    fake_hub.merge("org/board", 1)
    write_record(make_record("f" * 16), tmp_path / "runs" / "r1.json")
    write_record(make_record("0" * 16).model_copy(update={"status": "failed"}), tmp_path / "runs" / "r2.json")
    (tmp_path / "runs" / "notes.json").write_text('{"not": "a record"}')
    (tmp_path / "entries").mkdir()
    (tmp_path / "entries" / "x.json").write_text(make_entry("1" * 16).to_json())
    out = tmp_path / "site"
    try:
        main(["leaderboard", "build", "--no-published", "--repo", "org/board", "--endpoint", fake_hub.url,
              "--results", str(tmp_path / "runs"), "--entries", str(tmp_path / "entries"), "--out", str(out), "--json"])
    except SystemExit as exit_:
        assert not exit_.code
    summary = json.loads(capsys.readouterr().out)
    assert summary["entries"] == 3 and summary["submitted"] == 2 and summary["local"] == 1
    assert any("status 'failed'" in p for p in summary["problems"])
    rows = Page((out / "index.html").read_text()).rows
    assert sorted(r["data-origin"] for r in rows) == ["local", "submitted", "submitted"]


def test_cli_build_with_nothing_to_show(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["leaderboard", "build", "--no-published", "--out", str(tmp_path / "site")])
    assert exit_.value.code == 2 and "no entries to show" in capsys.readouterr().err


def test_pareto_fronts_never_mix_datasets():
    points = [("digits", 0.99, 0.9), ("flowers", 0.6, 0.3), ("flowers", 0.5, 0.4), ("flowers", 0.4, 0.2)]
    fronts = pareto_fronts(points)
    # one front for everything would keep only the digits model
    assert pareto_front([(x, y) for _, x, y in points]) == [(0.99, 0.9)]
    assert fronts == {"digits": [(0.99, 0.9)], "flowers": [(0.5, 0.4), (0.6, 0.3)]}


def test_ties_with_best_by_hand():
    from rftbench.stats import wilson

    def row(dataset, acc, n=1000):
        return (dataset, acc, *wilson(acc * n, n))

    values = [row("a", 0.50), row("a", 0.48), row("a", 0.44), row("b", 0.30), ("a", 0.49, None, None)]
    marks = ties_with_best(values)
    # best − 0.48 = 0.02: Newcombe lower bound < 0 → tie; best − 0.44 = 0.06 → lower bound > 0 → not
    l1 = wilson(500, 1000)[0]
    u2 = wilson(480, 1000)[1]
    assert 0.02 - ((0.5 - l1) ** 2 + (u2 - 0.48) ** 2) ** 0.5 < 0
    assert marks == ["best", "tie", "", "best", ""]


def test_accuracies_are_shown_with_their_interval():
    from rftbench.leaderboard.entry import read_entries_jsonl
    from rftbench.stats import wilson
    from rftbench_leaderboard import ENTRIES_DIR

    published = read_entries_jsonl(ENTRIES_DIR / "guide2025.jsonl")[:2]
    html = render_site([("published", e) for e in published] + entries())
    e = published[0]
    low, high = wilson(e.metrics.clean_acc * 1000, 1000)  # the reference study evaluated 1,000 test images
    assert f'data-lo="{low!r}" data-hi="{high!r}"' in html
    assert f"{100 * low:.1f}–{100 * high:.1f}" in html and "n = 1000 test images" in html
    assert "n = 64 test images" in html  # local entries: their own n_eval
    assert 'id="tie-note"' in html
    assert "compare single entries — one trained model each" in html  # the ≈ marks are not a comparison of recipes, and say so

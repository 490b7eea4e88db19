"""The built site in a real headless browser (Debian's chromium driven by selenium).

Skipped, with the reason, when no browser is installed: `bash scripts/install-browser.sh`.
The screenshot is saved as a test artefact in build/test-artifacts/leaderboard-site.png
(or $RFTBENCH_ARTIFACTS).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from browser_helpers import BROWSER_TEST, headless_chrome

from leaderboard_helpers import make_entry
from rftbench.leaderboard.build import build_site, pareto_front, pareto_fronts, ties_with_best
from rftbench.stats import accuracy_interval
from rftbench.leaderboard.entry import read_entries_jsonl
from rftbench_leaderboard import ENTRIES_DIR

pytestmark = BROWSER_TEST
ARTIFACTS = Path(os.environ.get("RFTBENCH_ARTIFACTS", Path(__file__).resolve().parents[1] / "build" / "test-artifacts"))


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    published = [("published", e) for e in read_entries_jsonl(ENTRIES_DIR / "guide2025.jsonl")]
    local = [("local", make_entry(f"{i:016x}", clean=0.5 + i / 20, linf=0.3)) for i in range(3)]
    entries = published + local
    index = build_site(entries, tmp_path_factory.mktemp("site"))
    return index, entries


@pytest.fixture(scope="module")
def browser():
    yield from headless_chrome("1400,1800")


def visible_rows(driver) -> list[dict]:
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('#leaderboard tbody tr')).filter(tr => !tr.hidden)"
        ".map(tr => ({id: tr.dataset.id, dataset: tr.dataset.dataset, clean: tr.cells[7].dataset.v}));"
    )


def svg_data(driver, plot: str) -> dict:
    return driver.execute_script(f"return Object.assign({{}}, document.querySelector('#{plot} svg').dataset);")


def test_site_in_a_headless_browser(site, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    index, entries = site
    browser.get(index.as_uri())
    WebDriverWait(browser, 30).until(lambda d: d.execute_script("return document.body.dataset.ready === '1'"))
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == [], errors  # no script error, no failed load

    # every imported row is in the table
    rows = visible_rows(browser)
    assert len(rows) == len(entries) == 1443
    origins = browser.execute_script("return Array.from(document.querySelectorAll('#leaderboard tbody tr')).map(tr => tr.dataset.origin)")
    assert origins.count("published") == 1440

    # plots are present: the scatter has one point per entry and the same Pareto front as Python's
    linf = [(e.metrics.clean_acc, e.metrics.acc("linf:4/255")) for _, e in entries]
    data = svg_data(browser, "plot-pareto")
    assert int(data["points"]) == len(linf)
    fronts = pareto_fronts((e.setup.dataset, e.metrics.clean_acc, e.metrics.acc("linf:4/255")) for _, e in entries)
    assert int(data["front"]) == sum(map(len, fronts.values())) and int(data["fronts"]) == len(fronts) == 7
    assert len(browser.find_elements(By.CSS_SELECTOR, "#plot-pareto path.front")) == 7
    assert len(browser.find_elements(By.CSS_SELECTOR, "#plot-pareto circle.point")) == len(linf)
    assert browser.find_elements(By.CSS_SELECTOR, "#plot-pareto path.front")
    assert int(svg_data(browser, "plot-protocol")["groups"]) == 4  # FFT-3 (local), FFT-5, FFT-50, LP-50
    assert len(browser.find_elements(By.CSS_SELECTOR, "#plot-loss rect.bar")) > 0
    assert "trades beats classic_at on sum" in browser.find_element(By.ID, "loss-note").text

    # sorting: clean descending, then ascending
    header = browser.find_element(By.CSS_SELECTOR, "th[data-key=clean]")
    header.click()
    cleans = [float(r["clean"]) for r in visible_rows(browser)]
    assert cleans == sorted(cleans, reverse=True) and header.get_attribute("aria-sort") == "descending"
    # sorted by clean accuracy: the best of each dataset and the entries indistinguishable from it are marked, as in Python
    marks = browser.execute_script(
        "return Object.fromEntries(Array.from(document.querySelectorAll('#leaderboard tbody tr'))"
        ".map(tr => [tr.dataset.id, tr.cells[7].classList.contains('best') ? 'best' : tr.cells[7].classList.contains('tie') ? 'tie' : '']));"
    )
    values = []
    for _, e in entries:
        ci = accuracy_interval(e.metrics.clean_acc, e.n_eval)
        values.append((e.setup.dataset, e.metrics.clean_acc, *(ci or (None, None))))
    expected_marks = dict(zip((e.id for _, e in entries), ties_with_best(values)))
    assert marks == expected_marks and "best" in marks.values() and "tie" in marks.values()
    assert "statistically indistinguishable" in browser.find_element(By.ID, "tie-note").text
    first = browser.find_element(By.CSS_SELECTOR, "#leaderboard tbody tr:not([hidden]) td:nth-child(8)")
    assert first.find_element(By.CSS_SELECTOR, "small.ci").text.count("–") == 1
    header.click()
    cleans = [float(r["clean"]) for r in visible_rows(browser)]
    assert cleans == sorted(cleans)
    assert browser.find_element(By.CSS_SELECTOR, "#leaderboard tbody tr:not([hidden]) td").text == "1"

    # filtering: dataset and loss; the plots follow the filter
    Select(browser.find_element(By.ID, "filter-dataset")).select_by_value("caltech101")
    Select(browser.find_element(By.ID, "filter-loss")).select_by_value("trades")
    expected = [e for _, e in entries if e.setup.dataset == "caltech101" and e.setup.loss == "trades"]
    rows = visible_rows(browser)
    assert len(rows) == len(expected) == 120 and {r["dataset"] for r in rows} == {"caltech101"}
    assert browser.find_element(By.ID, "shown").text == "120 shown"
    WebDriverWait(browser, 10).until(lambda d: svg_data(d, "plot-pareto")["points"] == "120")
    front = pareto_front([(e.metrics.clean_acc, e.metrics.acc("linf:4/255")) for e in expected])
    assert int(svg_data(browser, "plot-pareto")["front"]) == len(front)
    assert "#dataset=caltech101&loss=trades" in browser.current_url

    # switch the robust axis to L1, then search; then reset
    Select(browser.find_element(By.ID, "robust-axis")).select_by_visible_text("L1 75")
    l1_front = pareto_front([(e.metrics.clean_acc, e.metrics.acc("l1:75")) for e in expected])
    assert int(svg_data(browser, "plot-pareto")["front"]) == len(l1_front)
    browser.find_element(By.ID, "search").send_keys("convnext_base.fb_in22k")
    assert {r["id"] for r in visible_rows(browser)} == {
        e.id for e in expected if "convnext_base.fb_in22k" in e.setup.representation
    }
    browser.find_element(By.ID, "reset").click()
    assert len(visible_rows(browser)) == 1443

    Select(browser.find_element(By.ID, "filter-protocol")).select_by_value("FFT-50")
    total = browser.find_element(By.CSS_SELECTOR, "th[data-key=sum]")
    while total.get_attribute("aria-sort") != "descending":
        total.click()
    assert [e["level"] for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "leaderboard-site.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000


def test_hostile_entries_leave_the_page_working_and_their_links_inert(tmp_path, browser):
    """Issue 12: a threat label that would comment out the script, links that would run script."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from test_hardening import labelled_entry

    hostile_label = labelled_entry("<!--<script>:1")
    base = make_entry("f" * 16, clean=0.7)
    # a link that skipped the schema (the site must not trust the schema alone)
    js_link = base.model_copy(update={"source": base.source.model_copy(update={"url": "javascript:window.__pwned=1"})})
    entries = [("local", hostile_label), ("submitted", js_link)] + [("local", make_entry(f"{i:016x}", clean=0.5 + i / 20)) for i in range(3)]
    index = build_site(entries, tmp_path / "site")
    browser.get(index.as_uri())
    WebDriverWait(browser, 30).until(lambda d: d.execute_script("return document.body.dataset.ready === '1'"))
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []
    assert len(visible_rows(browser)) == len(entries)
    labels = browser.execute_script("return JSON.parse(document.getElementById('board-config').textContent).threats.map(t => t.label)")
    assert "<!--<script>:1" in labels  # the label arrives intact as data
    hrefs = browser.execute_script("return Array.from(document.querySelectorAll('a')).map(a => a.getAttribute('href') || '')")
    assert not [h for h in hrefs if not h.startswith(("https://", "http://", "entries.jsonl", "#"))], hrefs
    for cell in browser.find_elements(By.CSS_SELECTOR, "td[data-v=submitted], td[data-v=local]"):
        cell.click()
        for link in cell.find_elements(By.TAG_NAME, "a"):
            link.click()
    assert browser.execute_script("return window.__pwned === undefined")
    header = browser.find_element(By.CSS_SELECTOR, "th[data-key=clean]")  # the script still sorts
    browser.execute_script("document.getElementById('board').scrollLeft = 0")  # clicking `origin` scrolled it under the sticky columns
    header.click()
    cleans = [float(r["clean"]) for r in visible_rows(browser)]
    assert cleans == sorted(cleans, reverse=True)

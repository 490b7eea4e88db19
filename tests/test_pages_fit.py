"""The leaderboard and the report at 1280×800 in a real headless browser: the accuracy columns are in view, or the
table visibly scrolls with its identity columns kept; the datasets' Pareto fronts can be told apart.

Screenshots are written to build/test-artifacts/ (or $RFTBENCH_ARTIFACTS): look at them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from browser_helpers import BROWSER_TEST, headless_chrome

from leaderboard_helpers import make_entry
from report_helpers import study
from rftbench.leaderboard.build import build_site
from rftbench.leaderboard.entry import read_entries_jsonl
from rftbench.report import build_report
from rftbench_leaderboard import ENTRIES_DIR

pytestmark = BROWSER_TEST
ARTIFACTS = Path(os.environ.get("RFTBENCH_ARTIFACTS", Path(__file__).resolve().parents[1] / "build" / "test-artifacts"))

RECT = "var r = arguments[0].getBoundingClientRect(); return {left: r.left, right: r.right, top: r.top, bottom: r.bottom};"


@pytest.fixture(scope="module")
def browser():
    driver = headless_chrome("1280,800")
    chrome = next(driver)
    chrome.set_window_size(1280, 800)
    yield chrome
    next(driver, None)


def _viewport(browser) -> dict:
    return browser.execute_script("return {w: document.documentElement.clientWidth, h: window.innerHeight};")


def _check_box(browser, box, identity_cells, far_cells) -> str:
    """A table box fits, or scrolls sideways visibly with its identity cells kept in view: returns which."""
    view = _viewport(browser)
    fits = browser.execute_script("return arguments[0].scrollWidth <= arguments[0].clientWidth + 1;", box)
    rect = browser.execute_script(RECT, box)
    assert rect["right"] <= view["w"] + 1  # the box itself never runs off the page
    for cell in far_cells:  # the last columns (accuracies, sum, geom …)
        if fits:
            assert browser.execute_script(RECT, cell)["right"] <= rect["right"] + 1
    if fits:
        return "fits"
    # scrollable: the box's scrollbar is on screen with it (the box is shorter than the viewport) and a hint says so
    assert rect["bottom"] - rect["top"] <= view["h"]
    hint = browser.execute_script("return arguments[0].previousElementSibling;", box) if box.get_attribute("id") != "board" else \
        browser.find_element("id", "scroll-hint")
    assert hint.is_displayed() and "scroll" in hint.text
    for cell in far_cells:  # scrolled sideways to each far column in turn …
        browser.execute_script("arguments[0].scrollIntoView({block: 'nearest', inline: 'end'});"
                               "arguments[1].dispatchEvent(new Event('scroll'));", cell, box)
        rect = browser.execute_script(RECT, box)
        r = browser.execute_script(RECT, cell)
        assert rect["left"] - 1 <= r["left"] and r["right"] <= rect["right"] + 1, (cell.text, r, rect)
        kept = [browser.execute_script(RECT, c) for c in identity_cells]
        for c, k in zip(identity_cells, kept):  # … the identity columns are still there, at the box's left edge …
            assert rect["left"] - 1 <= k["left"] <= rect["left"] + 200 and k["right"] <= rect["right"], (c.text, k, rect)
        assert r["left"] >= max(k["right"] for k in kept) - 1  # … and the column is not hidden under them
    browser.execute_script("arguments[0].scrollLeft = arguments[0].scrollWidth; arguments[0].dispatchEvent(new Event('scroll'));", box)
    return "scrolls"


def test_leaderboard_at_1280x800(tmp_path, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    published = [("published", e) for e in read_entries_jsonl(ENTRIES_DIR / "guide2025.jsonl")]
    local = [("local", make_entry(f"{i:016x}", clean=0.5 + i / 20, linf=0.3)) for i in range(3)]
    index = build_site(published + local, tmp_path / "site")
    browser.get(index.as_uri())
    WebDriverWait(browser, 30).until(lambda d: d.execute_script("return document.body.dataset.ready === '1'"))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    # the seven datasets' Pareto fronts: each its own colour and dash, each named in the legend
    fronts = browser.find_elements(By.CSS_SELECTOR, "#plot-pareto path.front")
    styles = {f.get_attribute("style") for f in fronts}
    datasets = {f.get_attribute("data-dataset") for f in fronts}
    assert len(fronts) == 7 and len(styles) == 7 and len(datasets) == 7
    legend = {t.get_attribute("data-dataset") for t in browser.find_elements(By.CSS_SELECTOR, "#plot-pareto .front-legend text")}
    assert legend == datasets
    browser.execute_script("document.getElementById('plot-pareto').scrollIntoView()")
    assert browser.save_screenshot(str(ARTIFACTS / "leaderboard-1280-pareto.png"))

    board = browser.find_element(By.ID, "board")
    browser.execute_script("window.scrollTo(0, document.getElementById('scroll-hint').getBoundingClientRect().top + window.scrollY - 90)")
    assert browser.save_screenshot(str(ARTIFACTS / "leaderboard-1280-table.png"))
    first = board.find_element(By.CSS_SELECTOR, "tbody tr:not([hidden])")
    identity = [first.find_elements(By.TAG_NAME, "td")[i] for i in (0, 1)] + \
        [board.find_element(By.CSS_SELECTOR, "thead th[data-key='representation']")]
    far = [board.find_element(By.CSS_SELECTOR, f"thead th[data-key='{k}']") for k in ("clean", "sum", "geom", "er")]
    assert _check_box(browser, board, identity, far) == "scrolls"  # 1280 px cannot hold every column of this board
    assert browser.save_screenshot(str(ARTIFACTS / "leaderboard-1280-table-scrolled.png"))
    assert "scroll back" in browser.find_element(By.ID, "scroll-hint").text


def test_report_at_1280x800(tmp_path, browser):
    from selenium.webdriver.common.by import By

    report = build_report(["guide2025", str(study(tmp_path / "runs"))], tmp_path / "report")
    browser.get(report.index.as_uri())
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    boxes = browser.find_elements(By.CSS_SELECTOR, ".table-scroll")
    assert len(boxes) >= 10
    outcomes = []
    for box in boxes:
        browser.execute_script("arguments[0].scrollIntoView()", box)
        first_row = box.find_element(By.CSS_SELECTOR, "tbody tr")
        identity = [first_row.find_element(By.CSS_SELECTOR, "td:first-child"), box.find_element(By.CSS_SELECTOR, "th:first-child")]
        far = [box.find_element(By.CSS_SELECTOR, "th:last-child"), first_row.find_element(By.CSS_SELECTOR, "td:last-child")]
        outcomes.append(_check_box(browser, box, identity, far))
    assert "scrolls" in outcomes and "fits" in outcomes  # the results table is wider than the page; most fit
    results = browser.find_element(By.CSS_SELECTOR, "#results .table-scroll")
    browser.execute_script("arguments[0].scrollLeft = 0; arguments[0].dispatchEvent(new Event('scroll'));"
                           "window.scrollTo(0, arguments[0].getBoundingClientRect().top + window.scrollY - 120)", results)
    assert browser.save_screenshot(str(ARTIFACTS / "report-1280-results.png"))
    heat = browser.find_element(By.CSS_SELECTOR, "img[src*='ranks']")
    browser.execute_script("arguments[0].scrollIntoView()", heat)
    assert browser.save_screenshot(str(ARTIFACTS / "report-1280-heatmap.png"))

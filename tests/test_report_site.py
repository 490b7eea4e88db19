"""The report folder in a real headless browser (Debian's chromium driven by selenium).

Skipped, with the reason, when no browser is installed: `bash scripts/install-browser.sh`.
The screenshot is saved as a test artefact under pytest's temporary folder (`--basetemp` to
choose it), or in $RFTBENCH_ARTIFACTS when set; its path is printed (`pytest -s` shows it).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from browser_helpers import BROWSER_TEST, headless_chrome

from report_helpers import record, study
from rftbench.report import build_report

pytestmark = BROWSER_TEST


@pytest.fixture(scope="module")
def browser():
    yield from headless_chrome("1300,2400")


def test_report_in_a_headless_browser(tmp_path, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    runs = study(tmp_path / "runs")
    evil = record("e" * 16, representation='<img src=x onerror="document.title=\'pwned\'">', dataset="textures")
    (runs / f"{'e' * 16}.json").write_text(__import__("json").dumps(evil))
    report = build_report(["guide2025", str(runs)], tmp_path / "report", title="rftbench report <b>test</b>")
    browser.get(report.index.as_uri())
    assert browser.execute_script("return document.readyState") == "complete"
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []  # no failed load (images included)
    assert browser.title == "rftbench report <b>test</b>"  # shown as text, not markup; the hostile img did not run

    # every figure is a loaded image with pixels; every section the report wrote is on the page
    images = browser.execute_script(
        "return Array.from(document.images).map(i => ({src: i.getAttribute('src'), w: i.naturalWidth, ok: i.complete}))")
    drawn = sorted(f.file for s in report.sections for f in s.figures + [g for sub in s.subsections for g in sub.figures])
    assert sorted(i["src"] for i in images) == drawn and len(drawn) >= 10
    WebDriverWait(browser, 30).until(lambda d: d.execute_script("return Array.from(document.images).every(i => i.complete)"))
    images = browser.execute_script("return Array.from(document.images).map(i => i.naturalWidth)")
    assert all(w >= 400 for w in images), images
    sections = browser.find_elements(By.CSS_SELECTOR, "section")
    assert len(sections) == int(browser.find_element(By.TAG_NAME, "body").get_attribute("data-sections"))
    assert browser.find_element(By.ID, "published-pairs").text.count("FFT-50") == 1
    missing = browser.find_elements(By.CSS_SELECTOR, ".missing li")
    assert len(missing) == len(report.missing) and len(missing) > 0
    assert not browser.find_elements(By.CSS_SELECTOR, "section img[src=x]")  # the record's markup is text
    assert "<img src=x" in browser.find_element(By.ID, "results").text

    # the navigation links reach their sections
    link = browser.find_element(By.CSS_SELECTOR, "nav a[href='#epsilon-scheduling']")
    link.click()
    assert browser.execute_script("return location.hash") == "#epsilon-scheduling"

    folder = Path(os.environ.get("RFTBENCH_ARTIFACTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    shot = folder / "report.png"
    browser.execute_script("window.scrollTo(0, 0)")
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    print(f"\nreport screenshot: {shot}")

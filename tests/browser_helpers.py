"""The headless Chromium the site and report tests drive (Debian's chromium + chromedriver, selenium).

Without them those tests are skipped, naming ``scripts/install-browser.sh`` as the fix.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

BROWSER = next((b for b in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if b), None)
DRIVER = shutil.which("chromedriver")
try:
    import selenium  # noqa: F401

    HAVE_SELENIUM = True
except ImportError:
    HAVE_SELENIUM = False

#: ``pytestmark`` of a browser test module: slow, and skipped with the fix when no browser is installed.
BROWSER_TEST = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (BROWSER and DRIVER and HAVE_SELENIUM),
        reason="no headless browser (needs chromium, chromedriver and selenium): run scripts/install-browser.sh",
    ),
]


def headless_chrome(window_size: str) -> Iterator:
    """A headless Chrome driver (browser console logged) for a module-scoped fixture; quits afterwards."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = BROWSER
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", f"--window-size={window_size}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()

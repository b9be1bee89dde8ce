"""Issue 10: the recommendation tables read without horizontal scrolling at 1440 px, in real Chromium.

The Retirement candidates and the Maintenance ranking carry the one recommendation per app; each
of their grids must fit its container (the grid's scroller is no wider than its viewport).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.browser.test_browser import CHROMIUM, CHROMIUM_ARGS, _wait_rendered
from tests.browser.test_browser import dashboard as dashboard  # noqa: F401 - the module's server fixture

PAGES = {"retirement": "Retirement", "maintenance": "Maintenance"}

OVERFLOW = """
() => Array.from(document.querySelectorAll('[data-testid="stDataFrame"]')).map((frame) => {
  const scroller = frame.querySelector('.dvn-scroller');
  return scroller ? [scroller.scrollWidth, scroller.clientWidth] : [0, 0];
})
"""


@pytest.mark.browser
def test_recommendation_tables_fit_at_1440_px(dashboard: str, tmp_path: Path) -> None:  # noqa: F811 - the fixture
    if not Path(CHROMIUM).is_file() or not shutil.which(CHROMIUM):
        pytest.fail(f"Debian's Chromium is required at {CHROMIUM}; it is missing")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_context(viewport={"width": 1440, "height": 1000}).new_page()
            for path, title in PAGES.items():
                page.goto(f"{dashboard}/{path}", wait_until="domcontentloaded")
                _wait_rendered(page, title)
                page.wait_for_selector('[data-testid="stDataFrame"] .dvn-scroller', timeout=30_000)
                page.wait_for_timeout(500)  # the grid sizes its columns after the first paint
                sizes = page.evaluate(OVERFLOW)
                page.screenshot(path=str(tmp_path / f"{path}.png"), full_page=True)
                recommendation_grid = sizes[0] if path == "retirement" else sizes[1]
                scroll, client = recommendation_grid
                assert client > 0, f"{title}: no grid found ({sizes})"
                assert scroll <= client + 1, f"{title}: the recommendation table scrolls sideways ({scroll} > {client} px)"
        finally:
            browser.close()

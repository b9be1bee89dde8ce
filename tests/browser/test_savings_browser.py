"""Issue 13 in a real browser: the demo's retirement verified on the bill, its leftover spend, and a
business case against actual, on ``streamlit run app.py`` driven by Playwright in Debian's Chromium."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.test_browser import CHROMIUM, CHROMIUM_ARGS, _wait_rendered, dashboard  # noqa: F401 (fixture)


@pytest.mark.browser
def test_retirement_ledger_leftover_spend_and_plan_in_chromium(dashboard: str) -> None:  # noqa: F811
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"Debian's Chromium is required at {CHROMIUM} (apt-get install chromium); it is missing")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_context(viewport={"width": 1600, "height": 1400}).new_page()
            for path, title, texts in (
                ("retirement", "Retirement", ["Retirement ledger: savings verified on the bill",
                                              "1 retired app(s) still bill", "Leftover spend"]),
                ("app?app=visual-search-v1", "App", ["Retirement verified on the bill",
                                                     "billed after the grace period"]),
                ("app?app=route-optimizer", "App", ["Plan versus actual", "ahead of plan"]),
                ("", "Portfolio", ["Hard value", "Soft value", "Value lost to downtime", "Savings realised 2026"]),
            ):  # fmt: skip
                page.goto(f"{dashboard}/{path}", wait_until="domcontentloaded")
                _wait_rendered(page, title)
                body = page.inner_text("body")
                for text in texts:
                    assert text in body, f"{path or 'portfolio'}: {text!r} not shown"
                bad = page.locator('[data-testid="stException"], [data-testid="stAlertContentError"]')
                assert bad.count() == 0, bad.first.inner_text()
        finally:
            browser.close()

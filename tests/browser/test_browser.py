"""The real thing: ``streamlit run app.py`` on the demo database, driven by Playwright in Debian's Chromium.

Opens every page, waits until the script has finished rendering, and fails on any exception or
error box the page shows. Takes a screenshot of the Portfolio page: into docs/screenshot.png (the
README's) when MLP_SCREENSHOT=1, else into the test's temporary folder, so a test run leaves the tree clean.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import DEMO_AS_OF

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TODAY = DEMO_AS_OF
#: url path -> the page's title (its h1)
PAGES = {
    "": "Portfolio",
    "app?app=email-send-time": "App",
    "finance": "Finance",
    "maintenance": "Maintenance",
    "retirement": "Retirement",
    "health": "Data health",
    "ledger": "Value ledger upload",
}
README_SCREENSHOT = ROOT / "docs" / "screenshot.png"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            raise RuntimeError(f"streamlit exited with {proc.returncode}:\n{out[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"streamlit did not answer {url}/_stcore/health within {timeout}s")


@pytest.fixture(scope="module")
def dashboard(demo_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Streamlit server on a loopback port, serving a copy of the demo database as of TODAY."""
    folder = tmp_path_factory.mktemp("browser")
    shutil.copy(demo_db, folder / "demo.db")
    url = f"sqlite:///{folder / 'demo.db'}"

    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTFOLIO_")}
    env.update(PORTFOLIO_DB_URL=url, PORTFOLIO_DEMO="1", PORTFOLIO_TODAY=TODAY)
    port = _free_port()
    cmd = [
        sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"),
        "--server.headless", "true", "--server.port", str(port), "--server.address", "127.0.0.1",
        "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
    ]
    proc = subprocess.Popen(cmd, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base, proc)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def _wait_rendered(page, title: str) -> None:  # type: ignore[no-untyped-def]
    """Until the page's title is shown and the script has stopped running (twice in a row)."""
    page.wait_for_selector(f'h1:has-text("{title}")', timeout=60_000)
    deadline = time.monotonic() + 60
    quiet = 0
    while time.monotonic() < deadline:
        state = page.get_attribute('[data-testid="stApp"]', "data-test-script-state")
        quiet = quiet + 1 if state == "notRunning" else 0
        if quiet >= 3:
            return
        page.wait_for_timeout(300)
    raise AssertionError(f"{title}: the script was still running after 60 s")


@pytest.mark.browser
def test_every_page_renders_in_chromium(dashboard: str, tmp_path: Path) -> None:
    shot = README_SCREENSHOT if os.environ.get("MLP_SCREENSHOT") == "1" else tmp_path / "portfolio.png"
    if not Path(CHROMIUM).is_file() or not shutil.which(CHROMIUM):
        pytest.fail(f"Debian's Chromium is required at {CHROMIUM} (apt-get install chromium); it is missing")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": 1600, "height": 1400})
            page = context.new_page()
            console_errors: list[str] = []
            page.on("pageerror", lambda exc: console_errors.append(str(exc)))
            foreign: list[str] = []
            own = urlsplit(dashboard).netloc
            page.on("request", lambda req: foreign.append(req.url) if urlsplit(req.url).netloc not in ("", own) else None)
            for path, title in PAGES.items():
                page.goto(f"{dashboard}/{path}", wait_until="domcontentloaded")
                _wait_rendered(page, title)
                exceptions = page.locator('[data-testid="stException"]')
                errors = page.locator('[data-testid="stAlertContentError"]')
                assert exceptions.count() == 0, f"{title}: {exceptions.first.inner_text()}"
                assert errors.count() == 0, f"{title}: {errors.first.inner_text()}"
                if title == "Portfolio":
                    metrics = page.locator('[data-testid="stMetric"]')
                    assert metrics.count() >= 6, f"Portfolio shows {metrics.count()} metrics"
                    assert "$" in metrics.first.inner_text()
                    page.wait_for_selector('[data-testid="stVegaLiteChart"], .vega-embed', timeout=30_000)
                    shot.parent.mkdir(parents=True, exist_ok=True)
                    page.screenshot(path=str(shot), full_page=True)
                if title == "App":
                    assert page.locator('code:has-text("email-send-time")').count() >= 1, "App page did not open ?app="
            assert not console_errors, console_errors
            # air-gapped installs: nothing may be fetched from any host but the dashboard's own
            assert not foreign, f"requests to other hosts: {sorted(set(foreign))}"
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000


RESTATED = "app_id,month,kind,amount,currency,attribution,evidence\ncard-fraud,2026-05,cost_avoidance,260000.00,USD,1,experiment\n"


@pytest.mark.browser
def test_upload_over_a_demo_row_in_chromium(dashboard: str, tmp_path: Path) -> None:
    """Issue 10, as a user does it: a restated month uploaded over the demo's figure says what it
    replaces, commits, and Data health lists the demo's row as overridden (runs after the page tour:
    it writes to the module's database copy)."""
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"Debian's Chromium is required at {CHROMIUM} (apt-get install chromium); it is missing")
    from playwright.sync_api import sync_playwright

    restated = tmp_path / "restated.csv"
    restated.write_text(RESTATED)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_context(viewport={"width": 1440, "height": 1400}).new_page()
            page.goto(f"{dashboard}/ledger", wait_until="domcontentloaded")
            _wait_rendered(page, "Value ledger upload")
            page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(restated))
            page.wait_for_selector("text=replaces 1 row(s) from demo", timeout=60_000)
            _wait_rendered(page, "Value ledger upload")
            body = page.inner_text("body")
            assert "card-fraud 2026-05 cost_avoidance 253,957.54 → 260,000.00" in body  # markdown draws -> as an arrow
            assert "every row is new" not in body
            page.get_by_role("button", name="Commit 1 row(s)").click()
            page.wait_for_selector("text=1 row(s) written", timeout=60_000)
            page.goto(f"{dashboard}/health", wait_until="domcontentloaded")
            _wait_rendered(page, "Data health")
            page.wait_for_selector("text=1 value row(s) do not count", timeout=60_000)
            errors = page.locator('[data-testid="stAlertContentError"], [data-testid="stException"]')
            assert errors.count() == 0, errors.first.inner_text()
        finally:
            browser.close()


@pytest.mark.browser
def test_a_eur_chart_reads_euros_in_chromium() -> None:
    """The chart locale (charts._in_currency) reaches Vega in the browser: axis labels read €, not $."""
    import re

    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTFOLIO_")}
    cmd = [
        sys.executable, "-m", "streamlit", "run", str(Path(__file__).with_name("eur_chart_app.py")),
        "--server.headless", "true", "--server.port", str(port), "--server.address", "127.0.0.1",
        "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        _wait_healthy(f"http://127.0.0.1:{port}", proc)
        from playwright.sync_api import sync_playwright

        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            try:
                page = browser.new_page(viewport={"width": 900, "height": 600})
                page.goto(f"http://127.0.0.1:{port}/", wait_until="domcontentloaded")
                page.wait_for_selector(".vega-embed svg text", timeout=60_000)
                page.wait_for_timeout(500)
                labels = set(re.findall(r">([^<]*\d[^<]*)<", page.locator(".vega-embed").inner_html()))
            finally:
                browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert {"€1,000", "€2,000"} <= labels, sorted(labels)
    assert not any("$" in label for label in labels), sorted(labels)


@pytest.mark.browser
def test_search_and_pages_of_the_apps_table_in_chromium(dashboard: str) -> None:
    """Issue 15 as a user does it: type in the Portfolio table's search box, the table narrows; the
    Maintenance page keeps a sane height (its KLO chart shows the top 15 and all others)."""
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"Debian's Chromium is required at {CHROMIUM} (apt-get install chromium); it is missing")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_context(viewport={"width": 1600, "height": 1200}).new_page()
            page.goto(f"{dashboard}/", wait_until="domcontentloaded")
            _wait_rendered(page, "Portfolio")
            page.wait_for_selector("text=/Apps 1–\\d+ of \\d+/", timeout=60_000)
            search = page.locator(".st-key-portfolio_apps_search input")
            search.fill("fraud")
            search.press("Enter")
            page.wait_for_selector("text=/matching “fraud”/", timeout=60_000)
            _wait_rendered(page, "Portfolio")
            caption = page.locator("text=/matching “fraud”/").first.inner_text()
            shown = int(caption.split(" of ")[1].split(" ")[0])
            assert 0 < shown < 10, caption
            page.goto(f"{dashboard}/maintenance", wait_until="domcontentloaded")
            _wait_rendered(page, "Maintenance")
            page.wait_for_selector(".vega-embed svg", timeout=60_000)
            charts = page.locator(".vega-embed").all_inner_texts() + [page.locator(".vega-embed").first.inner_html()]
            assert any("All others (" in c for c in charts)
            height = page.evaluate("document.scrollingElement.scrollHeight")
            assert height < 5000, f"the Maintenance page is {height} px tall"
        finally:
            browser.close()

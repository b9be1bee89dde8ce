"""Untrusted text rendered by Streamlit's Markdown stays text: no image loads, no link renders.

An app's name, owner and description (the inventory a connector or config fills) and a connector's
error text (what a source answered) carry Markdown images and links, a bare URL, raw HTML and
Streamlit's own ``:red[...]`` / ``:material/...:`` directives, all pointing at a real local "pixel"
server that counts requests. The App and Data health pages are loaded in Debian's Chromium
(Playwright) from a real ``streamlit run app.py``: the pixel server must see zero requests and the
pages must hold no ``<a>`` to it. AppTest checks the Markdown sources are the escaped text.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from portfolio import records, safe, storage
from tests.browser.test_browser import CHROMIUM, CHROMIUM_ARGS, _free_port, _wait_healthy, _wait_rendered
from tests.conftest import DEMO_AS_OF
from tests.dashboard.test_pages import PAGES
from tests.servers import PayloadServer, Reply

ROOT = Path(__file__).resolve().parents[2]
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
APP_ID = "pixel-app"
#: markup that still works: a "](", "<img", ":red[" or "http:" without a backslash before it
UNESCAPED = re.compile(r"(?<!\\)(\]\(|<img|:red\[|http:)")


@pytest.fixture
def pixel() -> Iterator[PayloadServer]:
    with PayloadServer(lambda method, path, headers, body: Reply(200, PNG, {"Content-Type": "image/png"})) as srv:
        yield srv


def payload(base: str, tag: str) -> str:
    return (
        f"{tag} ![{tag}]({base}/{tag}.png) [click {tag}]({base}/{tag}-link) <img src=\"{base}/{tag}-html.png\"> "
        f"{base}/{tag}-bare :red[{tag} red] :material/home: *{tag}*"
    )


@pytest.fixture
def poisoned(demo_copy_url: str, pixel: PayloadServer, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The demo plus one app whose name, owner and description, and one connector whose error, carry markup."""
    base = pixel.url
    texts = {
        "name": payload(base, "name"),
        "owner": payload(base, "owner"),
        "description": payload(base, "description") + "\n\n# heading\n- list item",
        "error": payload(base, "error"),
    }
    engine = storage.make_engine(demo_copy_url)
    with engine.begin() as conn:
        storage.upsert(conn, records.App, [records.App(
            app_id=APP_ID, name=texts["name"], team="search", owner=texts["owner"], sponsor=texts["owner"],
            description=texts["description"], launched=date(2025, 1, 1),
        )])  # fmt: skip
        storage.upsert(conn, records.OutcomeRecord, [records.OutcomeRecord(
            source="upload", app_id=APP_ID, month=date(2026, 5, 1), kind="cost_avoidance", amount=Decimal("100"),
            note=texts["name"],
        )])  # fmt: skip
    now = datetime(2026, 6, 14, 12, tzinfo=UTC)
    storage.add(engine, records.SyncRun(connector="pixel-source", connector_type="github_issues", started=now,
                                        finished=now, status="failed", error=texts["error"]))
    storage.dispose_all()
    monkeypatch.setenv("PORTFOLIO_DB_URL", demo_copy_url)
    monkeypatch.setenv("PORTFOLIO_DEMO", "1")
    monkeypatch.setenv("PORTFOLIO_TODAY", DEMO_AS_OF)
    return texts


def _markdown_sources(at: AppTest) -> list[str]:
    out = [e.value for kind in ("markdown", "caption", "header", "subheader", "title", "error", "info", "warning", "success")
           for e in at.get(kind)]
    return [str(v) for v in out]


def test_app_and_health_pages_render_escaped_markdown(poisoned: dict[str, str]) -> None:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params["app"] = APP_ID
    at.switch_page(PAGES["app"]).run()
    assert not at.exception, [e.value for e in at.exception]
    sources = _markdown_sources(at)
    assert safe.md(poisoned["name"]) in sources  # the header
    assert safe.md(poisoned["description"]) in sources
    assert any(safe.md(poisoned["owner"]) in s for s in sources)  # the caption
    for s in sources:
        assert not UNESCAPED.search(s), s

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.switch_page(PAGES["health"]).run()
    errors = [e.value for e in at.error]
    assert any(safe.md(poisoned["error"]) in e for e in errors), errors
    for e in errors:
        assert not UNESCAPED.search(e), e


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("![x](http://h/p.png)", "\\!\\[x\\]\\(http\u2060\\://h/p.png\\)", id="image"),
        pytest.param("[a](HTTPS://h)", "\\[a\\]\\(HTTPS\u2060\\://h\\)", id="link"),
        pytest.param("<b>x</b>", "\\<b\\>x\\</b\\>", id="html"),
        pytest.param(":material/home: :red[x]", "\\:material/home\\: \\:red\\[x\\]", id="streamlit-directives"),
        pytest.param("$x^2$", "\\$x\\^2\\$", id="math"),
        pytest.param("a@b.com www.h.com", "a\u2060\\@b.com www\u2060.h.com", id="autolinks-get-a-word-joiner"),
        pytest.param("- a\n1. b\n# c", "\\- a\n1\\. b\n\\# c", id="line-starts"),
        pytest.param("churn-predictor v1.2", "churn-predictor v1.2", id="plain-text-stays-readable"),
        pytest.param(None, "", id="none"),
    ],
)
def test_md(text: str | None, expected: str) -> None:
    assert safe.md(text) == expected


def test_md_code_cannot_be_closed() -> None:
    assert safe.md_code("a`b") == "``a`b``"
    assert safe.md_code("`x`") == "`` `x` ``"


@pytest.mark.browser
def test_no_request_and_no_link_to_the_pixel_server_in_chromium(
    poisoned: dict[str, str], pixel: PayloadServer, tmp_path: Path
) -> None:
    if not Path(CHROMIUM).is_file() or not shutil.which(CHROMIUM):
        pytest.fail(f"Debian's Chromium is required at {CHROMIUM} (apt-get install chromium); it is missing")
    from playwright.sync_api import sync_playwright

    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTFOLIO_")}
    env.update(PORTFOLIO_DB_URL=os.environ["PORTFOLIO_DB_URL"], PORTFOLIO_DEMO="1", PORTFOLIO_TODAY=DEMO_AS_OF)
    port = _free_port()
    cmd = [
        sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"),
        "--server.headless", "true", "--server.port", str(port), "--server.address", "127.0.0.1",
        "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    host = pixel.url.removeprefix("http://")
    try:
        _wait_healthy(base, proc)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            try:
                page = browser.new_context(viewport={"width": 1600, "height": 1400}).new_page()
                for path, title, shown in [(f"app?app={APP_ID}", "App", "name"), ("health", "Data health", "error")]:
                    page.goto(f"{base}/{path}", wait_until="domcontentloaded")
                    _wait_rendered(page, title)
                    page.wait_for_timeout(1500)  # time for any image to be fetched
                    links = page.locator(f'a[href*="{host}"]')
                    assert links.count() == 0, f"{title}: a link to the pixel server: {links.first.get_attribute('href')}"
                    assert page.locator(f'img[src*="{host}"]').count() == 0, title
                    text = page.locator('[data-testid="stMain"]').inner_text().replace("\u2060", "")
                    assert f"![{shown}]({pixel.url}/{shown}.png)" in text, f"{title}: the text is not shown as written"
            finally:
                browser.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    assert pixel.requests == [], [p for _, p, _, _ in pixel.requests]

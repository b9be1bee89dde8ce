"""Issue 11, sign-in and roles, for real: ``mlportfolio up`` / ``streamlit run app.py`` as real
processes, Debian's Chromium driven by Playwright, and the OpenID Connect provider of
tests/browser/test_oidc.py (oidc-provider-mock) on loopback.

- Signed out, each page URL opened directly as the first page request after a fresh start shows
  only "Sign in" (the old ``pages/`` folder made Streamlit serve those files without the gate).
- An identity whose e-mail is not verified, and one that matches no rule, see a page naming the
  admin to ask and no figure; a viewer's sign-in cookie lives ``session_hours`` (8), not 30 days.
- ``/_stcore/metrics`` answers 404.
- Without sign-in, a page opened through a foreign name that resolves to 127.0.0.1 (DNS
  rebinding: Chromium's --host-resolver-rules) renders no figure, while localhost does; a bare
  ``streamlit run app.py`` listens on loopback only, refuses such a Host itself, and refuses a
  client that is not on this machine when it is told to listen on every interface.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.browser.test_browser import CHROMIUM, CHROMIUM_ARGS, ROOT, _free_port, _wait_rendered
from tests.browser.test_oidc import (  # noqa: F401 - deployment is a fixture
    USERS,
    WAIT_MS,
    _call,
    _idle,
    _stop,
    _tail,
    _up,
    _wait_http,
    deployment,
)
from tests.conftest import DEMO_AS_OF

DIRECT = ["retirement", "finance", "health", "ledger", "maintenance", "app"]
#: what a page that shows the portfolio has; none of it may show before the gate lets a session in
FIGURES = (
    '[data-testid="stMetric"], [data-testid="stDataFrame"], [data-testid="stDownloadButton"], '
    '[data-testid="stFileUploader"], [data-testid="stVegaLiteChart"], .vega-embed, [data-testid="stForm"]'
)
REFUSED = {
    "unverified-1": {"email": "carl@example.com", "email_verified": False, "name": "Carl Unverified"},
    "stranger-1": {"email": "eve@elsewhere.org", "email_verified": True, "name": "Eve Stranger"},
}


def _chromium_required() -> None:
    if not Path(CHROMIUM).is_file() or not shutil.which(CHROMIUM):
        pytest.fail(f"Debian's Chromium is required at {CHROMIUM} (apt-get install chromium); it is missing")


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def _no_figures(page) -> None:  # type: ignore[no-untyped-def]
    figures = page.locator(FIGURES)
    assert figures.count() == 0, f"{page.url} shows {figures.count()} figures before the gate"


def _sign_in(page, provider: str, base: str, subject: str) -> None:  # type: ignore[no-untyped-def]
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{provider}/oauth2/authorize?**", timeout=WAIT_MS)
    page.fill('input[name="sub"]', subject)
    page.get_by_role("button", name="Authorize", exact=True).click()
    page.wait_for_url(f"{base}/", timeout=WAIT_MS)


@pytest.mark.browser
def test_sign_in_gate_direct_urls_roles_cookie_and_metrics(deployment: dict[str, Any]) -> None:  # noqa: F811
    _chromium_required()
    from playwright.sync_api import Route, sync_playwright

    folder: Path = deployment["folder"]
    provider: str = deployment["provider"]
    base = f"http://127.0.0.1:{deployment['port']}"
    for sub, claims in REFUSED.items():
        _call("PUT", f"{provider}/users/{sub}", claims)
    config: Path = deployment["config"]
    text = config.read_text(encoding="utf-8")
    assert 'default_role = "none"\n' in text
    # the new default (no access for an identity no rule matches), and an admin to ask
    config.write_text(text.replace('default_role = "none"\n', 'admins = ["boss@example.com"]\n'), encoding="utf-8")

    def loopback_only(route: Route) -> None:
        if urlsplit(route.request.url).hostname in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            route.abort()

    with _up(folder, config, deployment["port"], deployment["env"]) as proc, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1200})
            context.route("**/*", loopback_only)
            page = context.new_page()
            # the first page requests after the start: each page's URL, directly, signed out
            for path in DIRECT:
                page.goto(f"{base}/{path}", wait_until="domcontentloaded")
                page.wait_for_selector('button:has-text("Sign in")', timeout=WAIT_MS)
                _idle(page)
                _no_figures(page)
                buttons = [b.strip() for b in page.locator('[data-testid="stButton"] button').all_inner_texts()]
                assert buttons == ["Sign in"], (path, buttons)

            assert _status(f"{base}/_stcore/metrics") == 404
            assert _status(f"{base}/_stcore/health") == 200

            # signed in, but no role: an unverified e-mail, then an identity no rule matches
            for subject, why in (("unverified-1", True), ("stranger-1", False)):
                _sign_in(page, provider, base, subject)
                refusal = page.locator('[data-testid="stAlertContentError"]')
                refusal.wait_for(timeout=WAIT_MS)
                _idle(page)
                message = refusal.inner_text()
                assert f"{REFUSED[subject]['email']} is signed in but has no role in this portfolio" in message
                assert "boss@example.com" in message
                assert ("does not say this e-mail is verified" in message) is why
                _no_figures(page)
                page.goto(f"{base}/finance", wait_until="domcontentloaded")  # a page URL does not help
                page.locator('[data-testid="stAlertContentError"]').wait_for(timeout=WAIT_MS)
                _idle(page)
                _no_figures(page)
                context.clear_cookies()  # signed out (the OIDC sign-out itself is test_oidc's)
                page.goto(base, wait_until="domcontentloaded")
                page.wait_for_selector('button:has-text("Sign in")', timeout=WAIT_MS)

            # a viewer gets in; the sign-in cookie lives session_hours (8), not Streamlit's 30 days
            _sign_in(page, provider, base, "viewer-1")
            page.locator('[data-testid="stSidebar"]').get_by_text(f"{USERS['viewer-1']['email']} — viewer").wait_for(timeout=WAIT_MS)
            _wait_rendered(page, "Portfolio")
            assert page.locator('[data-testid="stMetric"]').count() >= 6
            cookies = {c["name"]: c for c in context.cookies(base) if c["name"].startswith("_streamlit_user")}
            assert "_streamlit_user" in cookies, list(cookies)
            for cookie in cookies.values():
                left = cookie["expires"] - time.time()
                assert 8 * 3600 - 600 < left <= 8 * 3600 + 60, (cookie["name"], left / 3600)
        finally:
            browser.close()
        _stop(proc)
        assert proc.returncode == 0, _tail(folder / "up.err")


def _demo_config(demo_db: Path, folder: Path) -> Path:
    shutil.copy(demo_db, folder / "demo.db")
    text = (ROOT / "portfolio" / "demo.toml").read_text(encoding="utf-8")
    text = text.replace('"sqlite:///demo-portfolio.db"', f'"sqlite:///{folder / "demo.db"}"')
    text = text.replace('# as_of = "2026-11-23"', f'as_of = "{DEMO_AS_OF}"')
    config = folder / "portfolio.toml"
    config.write_text(text, encoding="utf-8")
    return config


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PORTFOLIO_", "MLP_OIDC_"))}
    env["PORTFOLIO_TODAY"] = DEMO_AS_OF
    return env


def _outside_address() -> str:
    """This machine's address on its network (not loopback): where another machine would connect."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing interface
        except OSError as exc:
            pytest.fail(f"this test needs a network interface besides loopback: {exc}")
        address = str(s.getsockname()[0])
    assert not address.startswith("127."), address
    return address


@contextmanager
def _streamlit_run(folder: Path, config: Path, port: int, *extra: str) -> Iterator[subprocess.Popen[bytes]]:
    """A bare ``streamlit run app.py`` from the source tree, as the first-run message suggests."""
    env = _env()
    env["PORTFOLIO_CONFIG"] = str(config)
    cmd = [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port", str(port), *extra]
    log = folder / f"streamlit-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=folder)
    try:
        _wait_http(f"http://127.0.0.1:{port}/_stcore/health", proc, log)
        yield proc
    finally:
        _stop(proc)


def _open(browser, url: str):  # type: ignore[no-untyped-def]
    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    page.goto(url, wait_until="domcontentloaded")
    return page


def _refused(page, text: str) -> None:  # type: ignore[no-untyped-def]
    page.get_by_text(text).wait_for(timeout=WAIT_MS)
    _idle(page)
    _no_figures(page)
    assert page.locator('h1:has-text("Finance")').count() == 0


@pytest.mark.browser
def test_without_sign_in_only_this_machine_and_local_names_are_answered(demo_db: Path, tmp_path: Path) -> None:
    _chromium_required()
    from playwright.sync_api import sync_playwright

    config = _demo_config(demo_db, tmp_path)
    outside = _outside_address()
    rebinding = [*CHROMIUM_ARGS, "--host-resolver-rules=MAP evil.test 127.0.0.1"]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=rebinding, headless=True)
        try:
            # `mlportfolio up`: Streamlit itself refuses the websocket of a foreign Host
            port = _free_port()
            with _up(tmp_path, config, port, _env()):
                page = _open(browser, f"http://evil.test:{port}/finance")
                page.wait_for_timeout(8000)  # long enough for the page to render, were it served
                _no_figures(page)
                assert page.locator('h1:has-text("Finance")').count() == 0
                page = _open(browser, f"http://localhost:{port}/finance")
                _wait_rendered(page, "Finance")
                assert page.locator('[data-testid="stMetric"]').count() >= 5

            # a bare `streamlit run app.py`: loopback only (the shipped .streamlit/config.toml) ...
            port = _free_port()
            with _streamlit_run(tmp_path, config, port):
                with pytest.raises(OSError), socket.create_connection((outside, port), timeout=5):
                    pass
                # ... and the dashboard refuses a foreign Host itself
                page = _open(browser, f"http://evil.test:{port}/finance")
                _refused(page, "This address is not one this dashboard answers on")
                page = _open(browser, f"http://localhost:{port}/finance")
                _wait_rendered(page, "Finance")
                assert page.locator('[data-testid="stMetric"]').count() >= 5

            # told to listen on every interface without sign-in: a client from elsewhere is refused
            port = _free_port()
            with _streamlit_run(tmp_path, config, port, "--server.address", "0.0.0.0"):
                page = _open(browser, f"http://{outside}:{port}/finance")
                _refused(page, "answers only on the machine it runs on")
                page = _open(browser, f"http://127.0.0.1:{port}/finance")
                _wait_rendered(page, "Finance")
        finally:
            browser.close()
    logs = "".join(p.read_text(encoding="utf-8", errors="replace") for p in tmp_path.glob("streamlit-*.log"))
    assert "refused a session for Host 'evil.test:" in logs
    assert f"refused a session from {outside}" in logs

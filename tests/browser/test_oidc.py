"""Sign-in for real: ``mlportfolio up`` with its OIDC client in portfolio.toml, a real OpenID Connect
provider on loopback (oidc-provider-mock: Authlib + Flask) and Debian's Chromium driven by Playwright.

The client is registered at the provider, which then checks its secret at the token exchange, so
signing in works only if the secret really went from the environment variable named in
portfolio.toml to Streamlit. A viewer signs in, sees the portfolio but no decision form, signs out;
an editor signs in and records a decision whose author in the database is the signed-in identity.
The secrets never show on a page, in the dashboard's output or in the database, and the secrets
file ``up`` wrote for Streamlit is gone once it stops. The browser reaches loopback only.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from portfolio import records, storage
from tests.browser.test_browser import CHROMIUM, CHROMIUM_ARGS, ROOT, _free_port, _wait_rendered
from tests.conftest import DEMO_AS_OF

AUTH = """
[auth]
enabled = true
client_id = "{client_id}"
client_secret_env = "MLP_OIDC_CLIENT_SECRET"
cookie_secret_env = "MLP_OIDC_COOKIE_SECRET"
server_metadata_url = "{provider}/.well-known/openid-configuration"
redirect_uri = "http://127.0.0.1:{{port}}/oauth2callback"
editors = ["@finance.example.com"]
viewers = ["@example.com"]
default_role = "none"
"""
#: subject at the provider -> the claims it signs into the ID token (the role comes from the e-mail)
USERS = {
    "viewer-1": {"email": "bob@example.com", "email_verified": True, "name": "Bob Viewer"},
    "editor-1": {"email": "ann@finance.example.com", "email_verified": True, "name": "Ann Editor"},
}
WAIT_MS = 60_000  # every browser wait is bounded by this


def _tail(path: Path, n: int = 3000) -> str:
    return path.read_text(encoding="utf-8", errors="replace")[-n:] if path.exists() else ""


def _wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}:\n{_tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {timeout}s:\n{_tail(log)}")


def _call(method: str, url: str, body: dict[str, Any]) -> dict[str, Any]:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        raw = resp.read()
    return dict(json.loads(raw)) if raw else {}


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


@contextmanager
def _provider(folder: Path) -> Iterator[str]:
    """oidc-provider-mock on a free loopback port; clients must register (so their secret is checked)."""
    port = _free_port()
    log = folder / "provider.log"
    cmd = [sys.executable, "-m", "oidc_provider_mock", "--host", "127.0.0.1", "--port", str(port), "--require-registration"]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=folder)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_http(f"{base}/.well-known/openid-configuration", proc, log, timeout=60)
        yield base
    finally:
        _stop(proc)


@contextmanager
def _up(folder: Path, config: Path, port: int, env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """``mlportfolio up`` as a real process (scheduler + dashboard); stdout/stderr into files."""
    cmd = [sys.executable, "-m", "portfolio.cli", "up", "--config", str(config), "--port", str(port), "--address", "127.0.0.1"]
    with (folder / "up.out").open("wb") as out, (folder / "up.err").open("wb") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=folder)
    try:
        _wait_http(f"http://127.0.0.1:{port}/_stcore/health", proc, folder / "up.err")
        yield proc
    finally:
        _stop(proc)


def _idle(page) -> None:  # type: ignore[no-untyped-def]
    """Until the Streamlit script has stopped running (three looks in a row)."""
    deadline = time.monotonic() + WAIT_MS / 1000
    quiet = 0
    while time.monotonic() < deadline:
        state = page.get_attribute('[data-testid="stApp"]', "data-test-script-state")
        quiet = quiet + 1 if state == "notRunning" else 0
        if quiet >= 3:
            return
        page.wait_for_timeout(300)
    raise AssertionError("the script was still running after 60 s")


def _assert_clean(page) -> None:  # type: ignore[no-untyped-def]
    exceptions = page.locator('[data-testid="stException"]')
    errors = page.locator('[data-testid="stAlertContentError"]')
    assert exceptions.count() == 0, exceptions.first.inner_text()
    assert errors.count() == 0, errors.first.inner_text()


def _sign_in_at_provider(page, provider: str, base: str, subject: str, keep: Callable[[], None]) -> str:  # type: ignore[no-untyped-def]
    """From the signed-out dashboard: "Sign in" -> the provider's authorize page -> back on the
    Portfolio page, signed in as ``subject``'s e-mail (its claim). Returns the sidebar's identity line
    (after its icon's name)."""
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{provider}/oauth2/authorize?**", timeout=WAIT_MS)
    keep()
    page.fill('input[name="sub"]', subject)
    page.get_by_role("button", name="Authorize", exact=True).click()
    page.wait_for_url(f"{base}/", timeout=WAIT_MS)
    identity = page.locator('[data-testid="stSidebar"]').get_by_text(f"{USERS[subject]['email']} — ")
    identity.wait_for(timeout=WAIT_MS)  # the signed-out page has an h1 "ML Portfolio" too: wait for who
    _wait_rendered(page, "Portfolio")
    _assert_clean(page)
    keep()
    return str(identity.inner_text())


def _wait_signed_out(page) -> None:  # type: ignore[no-untyped-def]
    page.wait_for_selector('button:has-text("Sign in")', timeout=WAIT_MS)
    _idle(page)
    _assert_clean(page)
    buttons = [b.strip() for b in page.locator('[data-testid="stButton"] button').all_inner_texts()]
    assert buttons == ["Sign in"], buttons
    assert page.locator('[data-testid="stMetric"]').count() == 0  # no numbers before sign-in


@pytest.fixture
def deployment(demo_db: Path, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The provider, a registered client and its users, and a copy of the demo portfolio with [auth]."""
    shutil.copy(demo_db, tmp_path / "demo.db")
    with _provider(tmp_path) as provider:
        port = _free_port()
        client = _call(
            "POST", f"{provider}/oauth2/clients", {"redirect_uris": [f"http://127.0.0.1:{port}/oauth2callback"]}
        )
        for sub, claims in USERS.items():
            _call("PUT", f"{provider}/users/{sub}", claims)
        text = (ROOT / "portfolio" / "demo.toml").read_text(encoding="utf-8")
        text = text.replace('"sqlite:///demo-portfolio.db"', f'"sqlite:///{tmp_path / "demo.db"}"')
        text = text.replace('# as_of = "2026-11-23"', f'as_of = "{DEMO_AS_OF}"')  # a scheduled re-sync changes nothing
        config = tmp_path / "portfolio.toml"
        config.write_text(text + AUTH.format(client_id=client["client_id"], provider=provider), encoding="utf-8")
        private_tmp = tmp_path / "tmp"  # where `up` writes Streamlit's secrets file
        private_tmp.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PORTFOLIO_", "MLP_OIDC_"))}
        env.update(
            PORTFOLIO_TODAY=DEMO_AS_OF,
            MLP_OIDC_CLIENT_SECRET=str(client["client_secret"]),
            MLP_OIDC_COOKIE_SECRET=secrets.token_urlsafe(32),
            TMPDIR=str(private_tmp),
        )
        yield {"provider": provider, "port": port, "config": config, "env": env, "folder": tmp_path, "tmp": private_tmp}


@pytest.mark.browser
def test_oidc_round_trip_viewer_then_editor(deployment: dict[str, Any]) -> None:
    if not Path(CHROMIUM).is_file() or not shutil.which(CHROMIUM):
        pytest.fail(f"Debian's Chromium is required at {CHROMIUM} (apt-get install chromium); it is missing")
    from playwright.sync_api import Route, sync_playwright

    folder: Path = deployment["folder"]
    provider: str = deployment["provider"]
    env: dict[str, str] = deployment["env"]
    secret_values = [env["MLP_OIDC_CLIENT_SECRET"], env["MLP_OIDC_COOKIE_SECRET"]]
    base = f"http://127.0.0.1:{deployment['port']}"
    seen_html: list[tuple[str, str]] = []

    def loopback_only(route: Route) -> None:  # the provider's CDN stylesheet, Streamlit's icon font: not fetched
        if urlsplit(route.request.url).hostname in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            route.abort()

    with _up(folder, deployment["config"], deployment["port"], env) as proc, sync_playwright() as pw:
        assert list(deployment["tmp"].glob("mlportfolio-auth-*/secrets.toml")), "up wrote no secrets file"
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1200})
            context.route("**/*", loopback_only)
            page = context.new_page()
            page_errors: list[str] = []
            page.on("pageerror", lambda exc: page_errors.append(str(exc)))

            def keep_html() -> None:
                seen_html.append((page.url, page.content()))

            # signed out: only "Sign in"
            page.goto(base, wait_until="domcontentloaded")
            _wait_signed_out(page)
            keep_html()

            # the viewer signs in at the provider and comes back signed in
            assert _sign_in_at_provider(page, provider, base, "viewer-1", keep_html).endswith("bob@example.com — viewer")
            sidebar = page.locator('[data-testid="stSidebar"]')
            assert page.locator('[data-testid="stMetric"]').count() >= 6
            page.screenshot(path=str(folder / "viewer.png"), full_page=True)

            # the viewer cannot record a decision (a new page load: the sign-in cookie carries over)
            page.goto(f"{base}/retirement", wait_until="domcontentloaded")
            _wait_rendered(page, "Retirement")
            _assert_clean(page)
            assert "bob@example.com — viewer" in sidebar.inner_text()
            page.get_by_text("Your role (viewer) cannot record decisions").wait_for(timeout=WAIT_MS)
            page.get_by_text(re.compile(r"^Decision log \(\d+\)$")).wait_for(timeout=WAIT_MS)  # shown after the form
            assert page.locator('[data-testid="stForm"]').count() == 0
            assert page.get_by_role("button", name="Record decision").count() == 0
            keep_html()

            # sign out: the provider's end-session page, then signed out on the dashboard
            page.locator('[data-testid="stSidebar"] button:has-text("Sign out")').click()
            page.wait_for_url(f"{provider}/oauth2/end_session?**", timeout=WAIT_MS)
            keep_html()
            page.get_by_role("button", name="End session").click()
            page.wait_for_url(f"{base}/", timeout=WAIT_MS)
            _wait_signed_out(page)
            keep_html()

            # the editor signs in and records a decision
            assert _sign_in_at_provider(page, provider, base, "editor-1", keep_html).endswith("ann@finance.example.com — editor")
            page.goto(f"{base}/retirement", wait_until="domcontentloaded")
            _wait_rendered(page, "Retirement")
            _assert_clean(page)
            by = page.get_by_label("Decided by")
            by.wait_for(timeout=WAIT_MS)  # widgets mount a moment after the script has finished
            # what the viewer's page lacks: the lifecycle proposal form and the decision form
            assert page.locator('[data-testid="stForm"]').count() == 2
            assert by.input_value() == "ann@finance.example.com" and by.is_disabled()  # not free text
            page.get_by_label("Rationale").fill("OIDC round trip: recorded by the signed-in editor")
            page.get_by_role("button", name="Record decision").click()
            # the author is escaped like all text from outside (safe.md: an invisible word joiner before @)
            page.get_by_text(re.compile(r"^Recorded: .* by ann\u2060?@finance\.example\.com")).wait_for(timeout=WAIT_MS)
            _idle(page)
            _assert_clean(page)
            keep_html()
            page.screenshot(path=str(folder / "editor.png"), full_page=True)
            assert not page_errors, page_errors
        finally:
            browser.close()
        engine = storage.make_engine(f"sqlite:///{folder / 'demo.db'}")
        decisions = storage.read_frame(engine, records.Decision)
        storage.dispose_all()
        _stop(proc)
        assert proc.returncode == 0, _tail(folder / "up.err")

    mine = decisions[decisions.rationale.str.startswith("OIDC round trip")]
    assert mine.decided_by.tolist() == ["ann@finance.example.com"], decisions[["app_id", "decided_by"]]
    assert not (decisions.decided_by == "bob@example.com").any()

    # the secrets were never shown, printed or stored, and up removed Streamlit's secrets file
    seen = {urlsplit(url).path for url, _ in seen_html}
    assert seen == {"/", "/retirement", "/oauth2/authorize", "/oauth2/end_session"}, seen
    output = {name: (folder / name).read_text(encoding="utf-8", errors="replace") for name in ("up.out", "up.err")}
    assert "dashboard: http://127.0.0.1" in output["up.out"]
    stored = b"".join(p.read_bytes() for p in folder.glob("demo.db*"))
    for value in secret_values:
        for url, html in seen_html:
            assert value not in html, f"a secret shows on {url}"
        for name, text in output.items():
            assert value not in text, f"a secret is in the dashboard's {name}"
        assert value.encode() not in stored, "a secret is in the database"
    assert not any(deployment["tmp"].iterdir()), list(deployment["tmp"].iterdir())

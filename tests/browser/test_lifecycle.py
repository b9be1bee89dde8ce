"""The retirement lifecycle for real: ``mlportfolio up`` with sign-in against the real OIDC provider
the sign-in tests use (oidc-provider-mock), Debian's Chromium driven by Playwright.

An editor signs in and proposes retiring an app with a planned date (the page shows the projection
first); an approver signs in and approves it; the App page shows it "retiring" with its planned
date. Then the dashboard is started again as of the planned date and the same App page shows
"retired" — derived from the planned date, no job moved it. The database holds the proposal by the
editor's identity, the approval by the approver's (not self-approved), and the stage event.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from portfolio import lifecycle, records, storage
from portfolio.facts import load_facts
from tests.browser.test_browser import CHROMIUM, CHROMIUM_ARGS, ROOT, _free_port, _wait_rendered
from tests.browser.test_oidc import WAIT_MS, _assert_clean, _call, _idle, _provider, _up
from tests.conftest import DEMO_AS_OF

AUTH = """
[auth]
enabled = true
client_id = "{client_id}"
client_secret_env = "MLP_OIDC_CLIENT_SECRET"
cookie_secret_env = "MLP_OIDC_COOKIE_SECRET"
server_metadata_url = "{provider}/.well-known/openid-configuration"
redirect_uri = "http://127.0.0.1:{{port}}/oauth2callback"
approvers = ["carl@approve.example.com"]
editors = ["@finance.example.com"]
default_role = "none"
"""
USERS = {
    "editor-1": {"email": "ann@finance.example.com", "email_verified": True, "name": "Ann Editor"},
    "approver-1": {"email": "carl@approve.example.com", "email_verified": True, "name": "Carl Approver"},
}
TODAY = date.fromisoformat(DEMO_AS_OF)
PLANNED = TODAY + timedelta(days=30)  # the proposal form's default planned date
PREFERRED = ("legacy-image-tagger", "email-send-time", "churn-predictor")


def _app_to_retire(db: Path) -> str:
    """A production app of the demo with no proposal waiting (the demo may seed one)."""
    facts = load_facts(storage.make_engine(f"sqlite:///{db}"), today=TODAY)
    storage.dispose_all()
    waiting = set(lifecycle.open_proposals(facts)["app_id"])
    for app_id in PREFERRED:
        if app_id not in waiting and lifecycle.current_stage(facts, app_id, TODAY) == "production":
            return app_id
    raise AssertionError(f"none of {PREFERRED} is a production app without a waiting proposal in the demo")


@pytest.fixture
def deployment(demo_db: Path, tmp_path: Path) -> Iterator[dict[str, Any]]:
    shutil.copy(demo_db, tmp_path / "demo.db")
    with _provider(tmp_path) as provider:
        port = _free_port()
        client = _call("POST", f"{provider}/oauth2/clients", {"redirect_uris": [f"http://127.0.0.1:{port}/oauth2callback"]})
        for sub, claims in USERS.items():
            _call("PUT", f"{provider}/users/{sub}", claims)
        text = (ROOT / "portfolio" / "demo.toml").read_text(encoding="utf-8")
        text = text.replace('"sqlite:///demo-portfolio.db"', f'"sqlite:///{tmp_path / "demo.db"}"')
        text = text.replace('# as_of = "2026-11-23"', f'as_of = "{DEMO_AS_OF}"')  # a scheduled re-sync changes nothing
        config = tmp_path / "portfolio.toml"
        config.write_text(text + AUTH.format(client_id=client["client_id"], provider=provider), encoding="utf-8")
        private_tmp = tmp_path / "tmp"
        private_tmp.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PORTFOLIO_", "MLP_OIDC_"))}
        env.update(
            PORTFOLIO_TODAY=DEMO_AS_OF,
            MLP_OIDC_CLIENT_SECRET=str(client["client_secret"]),
            MLP_OIDC_COOKIE_SECRET=secrets.token_urlsafe(32),
            TMPDIR=str(private_tmp),
        )
        yield {"provider": provider, "port": port, "config": config, "env": env, "folder": tmp_path,
               "app": _app_to_retire(tmp_path / "demo.db")}  # fmt: skip


def _sign_in(page, provider: str, base: str, subject: str) -> None:  # type: ignore[no-untyped-def]
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{provider}/oauth2/authorize?**", timeout=WAIT_MS)
    page.fill('input[name="sub"]', subject)
    page.get_by_role("button", name="Authorize", exact=True).click()
    page.wait_for_url(f"{base}/**", timeout=WAIT_MS)
    page.locator('[data-testid="stSidebar"]').get_by_text(f"{USERS[subject]['email']} — ").wait_for(timeout=WAIT_MS)
    _idle(page)
    _assert_clean(page)


def _sign_out(page, provider: str, base: str) -> None:  # type: ignore[no-untyped-def]
    page.locator('[data-testid="stSidebar"] button:has-text("Sign out")').click()
    page.wait_for_url(f"{provider}/oauth2/end_session?**", timeout=WAIT_MS)
    page.get_by_role("button", name="End session").click()
    page.wait_for_url(f"{base}/", timeout=WAIT_MS)
    page.wait_for_selector('button:has-text("Sign in")', timeout=WAIT_MS)


def _stage_caption(page, app_id: str) -> str:  # type: ignore[no-untyped-def]
    caption = page.locator('[data-testid="stCaptionContainer"]').filter(has_text=re.compile(r"stage: ")).first
    caption.wait_for(timeout=WAIT_MS)
    return str(caption.inner_text())


@pytest.mark.browser
def test_editor_proposes_approver_approves_then_retiring_then_retired(deployment: dict[str, Any]) -> None:
    if not Path(CHROMIUM).is_file() or not shutil.which(CHROMIUM):
        pytest.fail(f"Debian's Chromium is required at {CHROMIUM} (apt-get install chromium); it is missing")
    from playwright.sync_api import Route, sync_playwright

    folder: Path = deployment["folder"]
    provider: str = deployment["provider"]
    app_id: str = deployment["app"]
    base = f"http://127.0.0.1:{deployment['port']}"

    def loopback_only(route: Route) -> None:
        if urlsplit(route.request.url).hostname in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            route.abort()

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1400})
            context.route("**/*", loopback_only)
            page = context.new_page()
            page_errors: list[str] = []
            page.on("pageerror", lambda exc: page_errors.append(str(exc)))
            with _up(folder, deployment["config"], deployment["port"], deployment["env"]) as proc:
                # the editor proposes the retirement; the projection is on the page before submitting
                page.goto(base, wait_until="domcontentloaded")
                _sign_in(page, provider, base, "editor-1")
                page.goto(f"{base}/retirement?propose={app_id}", wait_until="domcontentloaded")
                _wait_rendered(page, "Retirement")
                _assert_clean(page)
                page.get_by_text("Projected annual savings").first.wait_for(timeout=WAIT_MS)
                by = page.get_by_label("Proposed by")
                by.wait_for(timeout=WAIT_MS)
                assert by.input_value() == "ann@finance.example.com" and by.is_disabled()  # not free text
                shown_date = [page.get_by_role("spinbutton", name=f"{part}, Planned retirement date").get_attribute("aria-valuenow")
                              for part in ("year", "month", "day")]  # fmt: skip
                assert shown_date == [str(PLANNED.year), str(PLANNED.month), str(PLANNED.day)]  # the default: today + 30 days
                page.get_by_label("Why").fill("Browser test: no requests for months, the endpoint still bills")
                page.get_by_label("Evidence link").fill("https://tickets.example.com/ML-77")
                page.get_by_role("button", name="Submit proposal").click()
                page.get_by_text(re.compile(r"^Proposed: retire .* by ann\u2060?@finance\.example\.com")).wait_for(timeout=WAIT_MS)
                _idle(page)
                _assert_clean(page)
                assert page.get_by_role("button", name=f"Approve ({app_id})").count() == 0  # an editor does not approve
                page.get_by_text("cannot approve or reject proposals: an approver can").wait_for(timeout=WAIT_MS)
                page.screenshot(path=str(folder / "proposed.png"), full_page=True)
                _sign_out(page, provider, base)

                # the approver signs in and approves
                _sign_in(page, provider, base, "approver-1")
                page.goto(f"{base}/retirement", wait_until="domcontentloaded")
                _wait_rendered(page, "Retirement")
                approve = page.get_by_role("button", name=f"Approve ({app_id})")
                approve.wait_for(timeout=WAIT_MS)
                # the newest proposal's box: the demo's own waiting proposal (issue 13) is listed first, oldest first
                page.get_by_label("Comment").last.fill("Approved in the browser test")
                approve.click()
                page.get_by_text(re.compile(rf"^Approved: retire .* by carl\u2060?@approve\.example\.com; .* is retiring, planned {PLANNED}")).wait_for(timeout=WAIT_MS)
                _idle(page)
                _assert_clean(page)

                # the App page: retiring, with its planned date and the history
                page.goto(f"{base}/app?app={app_id}", wait_until="domcontentloaded")
                _wait_rendered(page, "App")
                _assert_clean(page)
                assert f"stage: retiring (planned {PLANNED.isoformat()})" in _stage_caption(page, app_id)
                page.get_by_role("heading", name="Lifecycle").wait_for(timeout=WAIT_MS)
                page.screenshot(path=str(folder / "retiring.png"), full_page=True)
            assert proc.returncode == 0, (folder / "up.err").read_text(encoding="utf-8", errors="replace")[-3000:]

            # the same dashboard as of the planned date: retired, derived from the date
            env = {**deployment["env"], "PORTFOLIO_TODAY": PLANNED.isoformat()}
            with _up(folder, deployment["config"], deployment["port"], env) as proc:
                page.goto(f"{base}/app?app={app_id}", wait_until="domcontentloaded")
                page.wait_for_selector('h1:has-text("App"), button:has-text("Sign in")', timeout=WAIT_MS)
                if page.get_by_role("button", name="Sign in").count():  # the cookie did not outlive the restart
                    _sign_in(page, provider, base, "approver-1")
                    page.goto(f"{base}/app?app={app_id}", wait_until="domcontentloaded")
                _wait_rendered(page, "App")
                _assert_clean(page)
                caption = _stage_caption(page, app_id)
                assert "stage: retired" in caption and "retiring" not in caption, caption
                page.screenshot(path=str(folder / "retired.png"), full_page=True)
            assert not page_errors, page_errors
        finally:
            browser.close()

    engine = storage.make_engine(f"sqlite:///{folder / 'demo.db'}")
    events = storage.read_frame(engine, records.LifecycleEvent)
    storage.dispose_all()
    mine = events[events["app_id"] == app_id].set_index("kind")
    assert (mine.loc["proposal", "actor"], bool(mine.loc["proposal", "authenticated"])) == ("ann@finance.example.com", True)
    assert mine.loc["proposal", "evidence"] == "https://tickets.example.com/ML-77"
    assert (mine.loc["approval", "actor"], bool(mine.loc["approval", "self_approved"])) == ("carl@approve.example.com", False)
    assert mine.loc["approval", "rationale"] == "Approved in the browser test"
    assert (mine.loc["stage", "stage"], mine.loc["stage", "planned"]) == ("retiring", PLANNED)
    # and the command line agrees, as of the day before and the planned date
    cli = [sys.executable, "-m", "portfolio.cli", "lifecycle", app_id, "--config", str(deployment["config"])]
    env = {**deployment["env"], "PYTHONPATH": str(ROOT)}
    before = subprocess.run([*cli, "--today", (PLANNED - timedelta(days=1)).isoformat()], capture_output=True, text=True, env=env, timeout=120)
    after = subprocess.run([*cli, "--today", PLANNED.isoformat()], capture_output=True, text=True, env=env, timeout=120)
    assert before.stdout.startswith(f"{app_id}: retiring on"), before.stderr
    assert after.stdout.startswith(f"{app_id}: retired on {PLANNED.isoformat()}"), after.stderr

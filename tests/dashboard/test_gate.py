"""The sign-in gate by construction (issue 11), with Streamlit's AppTest on the demo database:
a page script run without the gate shows no data; an identity with an unverified e-mail or no
matching rule sees a page naming whom to ask; a sign-in older than ``session_hours`` is signed
out; a page that fails shows a short error with a reference id and no traceback (that goes to the
log). The real-browser versions (direct page URLs right after a start, Host checks) are in
tests/browser/test_gate.py."""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from portfolio.dashboard import PAGES, page_path
from tests.dashboard.test_pages import ROOT, TODAY, app_test, assert_clean, open_page

AUTH = """
[auth]
enabled = true
admins = ["boss@example.com", "@ops.example.com"]
editors = ["@finance.example.com"]
viewers = ["@example.com"]
session_hours = 8
"""


@pytest.fixture
def signed_in_deployment(_clean_environment: None, demo_copy_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The demo config with sign-in (default_role left at its default), on a private copy of the demo database."""
    text = (ROOT / "portfolio" / "demo.toml").read_text(encoding="utf-8")
    cfg_file = tmp_path / "portfolio.toml"
    cfg_file.write_text(text.replace('"sqlite:///demo-portfolio.db"', f'"{demo_copy_url}"') + AUTH, encoding="utf-8")
    monkeypatch.setenv("PORTFOLIO_CONFIG", str(cfg_file))
    monkeypatch.setenv("PORTFOLIO_TODAY", TODAY.isoformat())
    return demo_copy_url


@pytest.fixture
def demo_env(_clean_environment: None, demo_copy_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The demo without sign-in (everyone local is an editor)."""
    monkeypatch.setenv("PORTFOLIO_DB_URL", demo_copy_url)
    monkeypatch.setenv("PORTFOLIO_DEMO", "1")
    monkeypatch.setenv("PORTFOLIO_TODAY", TODAY.isoformat())
    return demo_copy_url


def _as(claims: dict[str, object] | None, page: str) -> AppTest:
    at = app_test()
    at.user = {"is_logged_in": False} if claims is None else {"is_logged_in": True, **claims}
    return open_page(page, at)


def _shows_data(at: AppTest) -> bool:
    return bool(at.metric or at.dataframe or at.get("download_button") or at.get("plotly_chart") or at.get("arrow_vega_lite_chart"))


@pytest.mark.parametrize("file", [f for f, *_ in PAGES], ids=[p for _, _, p, *_ in PAGES])
def test_a_page_script_run_without_the_gate_shows_no_data(demo_env: str, file: str) -> None:
    """What Streamlit did with the old pages/ folder: run the page file as the app itself.
    Even without sign-in configured, the data access path wants the gate's mark of this run."""
    at = AppTest.from_file(str(page_path(file)), default_timeout=60)
    at.query_params["app"] = "email-send-time"
    at.run()
    assert_clean(at)
    assert not _shows_data(at)
    assert any("Sign in to see the portfolio" in i.value for i in at.info)


def test_through_the_gate_the_same_pages_show_data(demo_env: str) -> None:
    at = open_page("finance")
    assert_clean(at)
    assert at.metric


def test_the_gates_mark_lasts_one_run(demo_env: str) -> None:
    from portfolio.dashboard import signin

    at = open_page("finance")
    assert signin.PASSED not in at.session_state  # cleared once the page has run


@pytest.mark.parametrize(
    ("claims", "why"),
    [
        pytest.param({"email": "bob@example.com", "email_verified": False}, True, id="unverified-email"),
        pytest.param({"email": "boss@example.com"}, True, id="no-email_verified-claim"),
        pytest.param({"email": "eve@elsewhere.org", "email_verified": True}, False, id="no-rule-matches"),
    ],
)
def test_no_role_sees_nothing_and_whom_to_ask(signed_in_deployment: str, claims: dict[str, object], why: bool) -> None:
    for page in ("portfolio", "finance"):
        at = _as(claims, page)
        assert_clean(at)
        assert not _shows_data(at)
        (error,) = [e.value for e in at.error]
        shown = str(claims["email"]).replace("@", "\\@")  # escaped Markdown source
        assert f"{shown} is signed in but has no role in this portfolio" in error
        assert "Ask an admin of this portfolio to give you a role: boss@example.com." in error
        assert ("does not say this e-mail is verified" in error) is why
        assert [b.label for b in at.button] == ["Sign out"]


def test_a_verified_email_gets_its_role(signed_in_deployment: str) -> None:
    at = _as({"email": "bob@example.com", "email_verified": True}, "finance")
    assert_clean(at)
    assert not at.error and at.metric
    assert any("bob\\@example.com — viewer" in c.value for c in at.sidebar.caption)  # escaped Markdown source


def test_a_sign_in_older_than_session_hours_is_signed_out(signed_in_deployment: str) -> None:
    old = int(time.time()) - 8 * 3600 - 60
    at = _as({"email": "bob@example.com", "email_verified": True, "iat": old}, "finance")
    assert_clean(at)
    assert not _shows_data(at)
    assert any("older than 8 hours: sign in again" in i.value for i in at.info)
    fresh = _as({"email": "bob@example.com", "email_verified": True, "iat": int(time.time()) - 7 * 3600}, "finance")
    assert fresh.metric


def test_a_failing_page_shows_a_reference_not_a_traceback(
    demo_env: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from portfolio.dashboard import cache

    def broken(*_args: object, **_kwargs: object) -> object:
        raise RuntimeError("secret-ish detail: boom at /srv/portfolio.db")

    monkeypatch.setattr(cache, "app_pnl", broken)
    with caplog.at_level(logging.ERROR, logger="portfolio.dashboard"):
        at = open_page("finance")
    assert not at.exception, [e.value for e in at.exception]  # Streamlit's traceback box
    (error,) = [e.value for e in at.error]
    ref = re.search(r"reference ([0-9a-f]{8})", error)
    assert ref, error
    page_text = " ".join(str(getattr(el, "value", "")) for el in at.main) + error
    assert "boom" not in page_text and "Traceback" not in page_text and "RuntimeError" not in page_text
    logged = [r for r in caplog.records if ref.group(1) in r.getMessage()]
    assert logged and logged[0].exc_info is not None and "boom" in str(logged[0].exc_info[1])

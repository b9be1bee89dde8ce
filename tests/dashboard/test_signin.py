"""Sign-in and roles on one shared deployment: a viewer sees everything but cannot record a
decision, upload a ledger or sync; an editor's decision is authored by the signed-in identity."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from portfolio import records, storage
from tests.dashboard.test_pages import ROOT, TODAY, app_test, assert_clean, open_page

AUTH = """
[auth]
enabled = true
editors = ["@finance.example.com"]
viewers = ["@example.com"]
default_role = "none"
"""


@pytest.fixture
def signed_in_deployment(_clean_environment: None, demo_copy_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The demo config with sign-in, on a private copy of the demo database; returns its URL."""
    text = (ROOT / "portfolio" / "demo.toml").read_text(encoding="utf-8")
    assert '"sqlite:///demo-portfolio.db"' in text
    cfg_file = tmp_path / "portfolio.toml"
    cfg_file.write_text(text.replace('"sqlite:///demo-portfolio.db"', f'"{demo_copy_url}"') + AUTH, encoding="utf-8")
    monkeypatch.setenv("PORTFOLIO_CONFIG", str(cfg_file))
    monkeypatch.setenv("PORTFOLIO_TODAY", TODAY.isoformat())
    return demo_copy_url


def _as(email: str | None, page: str):  # type: ignore[no-untyped-def]
    at = app_test()
    at.user = {"is_logged_in": False} if email is None else {"is_logged_in": True, "email": email, "email_verified": True}
    return open_page(page, at)


def test_signed_out_sees_only_the_sign_in_button(signed_in_deployment: str) -> None:
    at = _as(None, "portfolio")
    assert_clean(at)
    assert [b.label for b in at.button] == ["Sign in"]
    assert not at.metric  # no numbers before sign-in


def test_unknown_identity_is_refused(signed_in_deployment: str) -> None:
    at = _as("eve@elsewhere.org", "portfolio")
    assert_clean(at)
    assert any("has no role" in e.value for e in at.error)
    assert not at.metric


@pytest.mark.parametrize("page", ["portfolio", "finance", "maintenance", "retirement", "health", "app"])
def test_viewer_sees_every_page(signed_in_deployment: str, page: str) -> None:
    at = _as("bob@example.com", page)
    assert_clean(at)
    assert not at.error, [e.value for e in at.error]
    assert any("bob\\@example.com — viewer" in c.value for c in at.sidebar.caption)  # Markdown source: the name is escaped


def test_viewer_cannot_record_a_decision_or_sync(signed_in_deployment: str) -> None:
    at = _as("bob@example.com", "retirement")
    assert_clean(at)
    assert "FormSubmitter:decision-Record decision" not in [b.key for b in at.button]
    assert any("cannot record decisions" in i.value for i in at.info)
    at = _as("bob@example.com", "health")
    assert "Sync now" not in [b.label for b in at.button]
    assert any("cannot start a sync" in i.value for i in at.info)


def test_editor_decision_is_authored_by_the_signed_in_identity(signed_in_deployment: str) -> None:
    engine = storage.make_engine(signed_in_deployment)
    before = len(storage.read_frame(engine, records.Decision))
    at = _as("ann@finance.example.com", "retirement")
    assert_clean(at)
    assert at.text_input(key="decision_by").value == "ann@finance.example.com"
    at.selectbox(key="decision_app").set_value("email-send-time")
    at.radio(key="decision_kind").set_value("review")
    at.date_input(key="decision_next_review").set_value(TODAY + timedelta(days=30))
    at.button(key="FormSubmitter:decision-Record decision").click().run()
    assert_clean(at)
    frame = storage.read_frame(engine, records.Decision)
    assert len(frame) == before + 1
    newest = frame.sort_values("decided_at").iloc[-1]
    assert (newest.app_id, newest.decided_by) == ("email-send-time", "ann@finance.example.com")


def test_the_signed_in_name_is_escaped_but_an_email_stays_readable() -> None:
    """The provider's name claim is typed by its owner: no image, link or directive renders from it."""
    from portfolio.dashboard.signin import _who

    assert _who("bob@example.com") == "bob\\@example.com"  # renders as bob@example.com
    shown = _who("![x](http://127.0.0.1:9/p.png) :red[admin]")
    assert "![" not in shown and "](" not in shown and ":red[" not in shown

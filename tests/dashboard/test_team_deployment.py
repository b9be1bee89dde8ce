"""Issue 6's "done when": two users with different roles use one deployment on PostgreSQL while the
scheduler syncs in the background; the viewer cannot record a decision, the editor can; nothing is lost."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest

from portfolio import config as config_mod
from portfolio import records, scheduler, storage, sync
from tests.conftest import DEMO_AS_OF
from tests.dashboard.test_pages import ROOT, TODAY, app_test, assert_clean, open_page

AUTH = """
[auth]
enabled = true
editors = ["lead@example.com"]
viewers = ["@example.com"]
default_role = "none"
"""


def _as(email: str, page: str):  # type: ignore[no-untyped-def]
    at = app_test()
    at.user = {"is_logged_in": True, "email": email, "email_verified": True}
    return open_page(page, at)


@pytest.fixture
def deployment(_clean_environment: None, postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    text = (ROOT / "portfolio" / "demo.toml").read_text(encoding="utf-8")
    text = text.replace('"sqlite:///demo-portfolio.db"', f'"{postgres_url}"')
    text = text.replace('# as_of = "2026-11-23"', f'as_of = "{DEMO_AS_OF}"')
    text = text.replace('schedule = "0 6 * * *"', 'schedule = "* * * * *"')  # every minute
    cfg_file = tmp_path / "portfolio.toml"
    cfg_file.write_text(text + AUTH, encoding="utf-8")
    monkeypatch.setenv("PORTFOLIO_CONFIG", str(cfg_file))
    monkeypatch.setenv("PORTFOLIO_TODAY", TODAY.isoformat())
    cfg = config_mod.load(cfg_file)
    assert sync.sync(cfg).ok
    return str(cfg_file)


def test_two_roles_share_a_postgres_deployment_while_the_scheduler_syncs(deployment: str) -> None:
    cfg = config_mod.load(deployment)
    engine = storage.make_engine(cfg.database_url)
    counts_before = {m.__name__: len(storage.read_frame(engine, m)) for m in (records.CostRecord, records.UsageRecord)}
    sched = scheduler.start(cfg, run_now=True)  # the demo connector re-syncs in the background
    try:
        viewer = _as("bob@example.com", "retirement")
        assert_clean(viewer)
        assert "FormSubmitter:decision-Record decision" not in [b.key for b in viewer.button]
        assert any("cannot record decisions" in i.value for i in viewer.info)

        editor = _as("lead@example.com", "retirement")
        assert_clean(editor)
        editor.selectbox(key="decision_app").set_value("email-send-time")
        editor.radio(key="decision_kind").set_value("retire")
        editor.date_input(key="decision_next_review").set_value(TODAY + timedelta(days=30))
        editor.button(key="FormSubmitter:decision-Record decision").click().run()
        assert_clean(editor)

        deadline = time.monotonic() + 120  # the scheduled run finishes (it restates nothing)
        runs = storage.read_frame(engine, records.SyncRun)
        while time.monotonic() < deadline and not (runs.status == "success").sum() >= 2:
            time.sleep(0.5)
            runs = storage.read_frame(engine, records.SyncRun)
    finally:
        sched.shutdown(wait=True)
    assert (runs.status == "success").sum() >= 2, runs[["connector", "status", "error"]]
    assert not (runs.status == "failed").any(), runs.error.tolist()
    decisions = storage.read_frame(engine, records.Decision)
    mine = decisions[decisions.decided_by == "lead@example.com"]
    assert mine[["app_id", "decision"]].values.tolist() == [["email-send-time", "retire"]]
    assert not (decisions.decided_by == "bob@example.com").any()
    counts_after = {m.__name__: len(storage.read_frame(engine, m)) for m in (records.CostRecord, records.UsageRecord)}
    assert counts_after == counts_before  # the background re-sync lost and duplicated nothing

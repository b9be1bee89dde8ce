"""The lifecycle on the dashboard (AppTest, on a private copy of the demo, either backend): the
Retirement page's review queue and proposal form (its projection shown before submitting, from
the domain), approval and rejection, roles with sign-in, and the App page's lifecycle history."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from portfolio import lifecycle, records, retirement, safe, storage
from portfolio.dashboard import fmt
from portfolio.facts import load_facts
from tests.dashboard.test_pages import ROOT, TODAY, _use, app_test, assert_clean, demo_cfg, metrics, open_page

APP_ID = "legacy-image-tagger"
PLANNED = TODAY + timedelta(days=10)
SUBMIT = "FormSubmitter:proposal-Submit proposal"
AUTH = """
[auth]
enabled = true
approvers = ["carl@approve.example.com"]
admins = ["root@example.com"]
editors = ["@finance.example.com"]
viewers = ["@example.com"]
default_role = "none"
"""


@pytest.fixture
def own_demo_url(_clean_environment: None, demo_copy_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A private copy of the demo (either backend), wired in as the dashboard's database."""
    _use(monkeypatch, demo_copy_url)
    return demo_copy_url


def _events(url: str):  # type: ignore[no-untyped-def]
    """The events these tests write: the demo's own trail (ids "demo-...", issue 13) left out."""
    ev = storage.read_frame(storage.make_engine(url), records.LifecycleEvent)
    return ev[~ev["id"].astype(str).str.startswith("demo-")].reset_index(drop=True)


def _propose_on_page(at, rationale: str = "No requests for months; the GPU still bills.", by: str | None = "ann@example.com"):  # type: ignore[no-untyped-def]
    at.selectbox(key="proposal_app").set_value(APP_ID).run()
    at.radio(key="proposal_action").set_value("retire").run()
    at.date_input(key="proposal_planned").set_value(PLANNED)
    at.text_area(key="proposal_rationale").set_value(rationale)
    at.text_input(key="proposal_evidence").set_value("https://tickets.example.com/ML-42")
    if by is not None:
        at.text_input(key="proposal_by").set_value(by)
    at.button(key=SUBMIT).click().run()
    assert_clean(at)
    return at


def test_the_review_queue_and_the_projection_are_the_domains(own_demo_url: str) -> None:
    f = load_facts(storage.make_engine(own_demo_url), today=TODAY)
    cfg = demo_cfg(own_demo_url)
    queue = retirement.review_queue(f, cfg)
    at = open_page("retirement")
    assert_clean(at)
    m = metrics(at)
    assert m["Proposals waiting"][0] == str(len(lifecycle.open_proposals(f)))
    assert m["Reviews overdue"][0] == str(int((queue["status"] == "overdue").sum()))
    assert m["Reviews due in 30 days"][0] == str(int((queue["status"] == "due").sum()))
    assert m["Snoozed"][0] == str(int(queue["snoozed_until"].notna().sum()))
    at.selectbox(key="proposal_app").set_value(APP_ID).run()
    p = lifecycle.project(f, cfg, APP_ID)
    m = metrics(at)
    assert p.annual_savings > 0  # the demo's zombie: it costs money
    assert m["Projected annual savings"][0] == fmt.money(p.annual_savings)
    assert m["Value at risk"][0] == fmt.money(p.value_at_risk)
    assert m["Net effect"][0] == fmt.money(p.net_effect)
    assert m["Freed hours / yr"][0] == fmt.hours(p.freed_hours_per_year)


def test_local_user_proposes_and_approves_their_own_and_the_record_says_so(own_demo_url: str) -> None:
    at = _propose_on_page(open_page("retirement"), by=None)  # no name typed: the local user
    assert any("Proposed: retire" in s.value for s in at.success), [s.value for s in at.success]
    (prop,) = _events(own_demo_url).itertuples()
    f = load_facts(storage.make_engine(own_demo_url), today=TODAY)
    p = lifecycle.project(f, demo_cfg(own_demo_url), APP_ID)
    assert (prop.kind, prop.app_id, prop.actor, prop.planned, prop.authenticated) == ("proposal", APP_ID, "local user", PLANNED, False)
    assert (prop.projected_annual_savings, prop.value_at_risk, prop.net_effect) == (p.annual_savings, p.value_at_risk, p.net_effect)
    assert metrics(at)["Proposals waiting"][0] == "2"  # and the demo's own waiting proposal (issue 13)

    at.button(key=f"approve_{prop.id}").click().run()
    assert_clean(at)
    assert any("Approved" in s.value and "self-approved" in s.value and "is retiring" in s.value for s in at.success)
    ev = _events(own_demo_url).set_index("kind")
    assert bool(ev.loc["approval", "self_approved"]) is True and ev.loc["approval", "actor"] == "local user"
    assert (ev.loc["stage", "stage"], ev.loc["stage", "planned"]) == ("retiring", PLANNED)
    assert metrics(at)["Proposals waiting"][0] == "1"  # the demo's own

    app = app_test()
    app.query_params["app"] = APP_ID
    app = open_page("app", app)
    assert_clean(app)
    shown = f"stage: {safe.md(f'retiring (planned {PLANNED.isoformat()})')}"  # Markdown source: escaped like all data
    assert any(shown in c.value for c in app.caption), [c.value for c in app.caption]
    history = next(d.value for d in app.dataframe if "self_approved" in d.value.columns)
    assert list(history["kind"])[-1] == "proposal" and "stage" in set(history["kind"])


def test_an_invalid_proposal_is_refused_and_nothing_is_written(own_demo_url: str) -> None:
    at = _propose_on_page(open_page("retirement"), rationale="  ")
    assert any("rationale\\: say why" in e.value for e in at.error), [e.value for e in at.error]
    assert _events(own_demo_url).empty


@pytest.fixture
def signed_in(_clean_environment: None, demo_copy_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    text = (ROOT / "portfolio" / "demo.toml").read_text(encoding="utf-8")
    cfg_file = tmp_path / "portfolio.toml"
    cfg_file.write_text(text.replace('"sqlite:///demo-portfolio.db"', f'"{demo_copy_url}"') + AUTH, encoding="utf-8")
    monkeypatch.setenv("PORTFOLIO_CONFIG", str(cfg_file))
    monkeypatch.setenv("PORTFOLIO_TODAY", TODAY.isoformat())
    return demo_copy_url


def _as(email: str, page: str):  # type: ignore[no-untyped-def]
    at = app_test()
    at.user = {"is_logged_in": True, "email": email, "email_verified": True}
    return open_page(page, at)


def test_with_sign_in_the_editor_proposes_as_themselves_and_an_approver_decides(signed_in: str) -> None:
    at = _as("ann@finance.example.com", "retirement")
    assert_clean(at)
    assert at.text_input(key="proposal_by").value == "ann@finance.example.com"  # not free text
    assert at.text_input(key="proposal_by").disabled
    _propose_on_page(at, by=None)
    (prop,) = _events(signed_in).itertuples()
    assert (prop.actor, prop.authenticated) == ("ann@finance.example.com", True)
    # the editor sees it waiting but has no Approve button
    assert f"approve_{prop.id}" not in [b.key for b in at.button]
    assert any("cannot approve or reject proposals: an approver can" in i.value for i in at.info)
    # a viewer cannot propose
    viewer = _as("bob@example.com", "retirement")
    assert SUBMIT not in [b.key for b in viewer.button]
    assert any("cannot propose lifecycle changes" in i.value for i in viewer.info)
    # the approver rejects without a comment: refused; with one: recorded
    carl = _as("carl@approve.example.com", "retirement")
    carl.button(key=f"reject_{prop.id}").click().run()
    assert any("comment\\: say why" in e.value for e in carl.error), [e.value for e in carl.error]
    carl = _as("carl@approve.example.com", "retirement")
    carl.text_input(key=f"comment_{prop.id}").set_value("Keep it until the Q3 migration")
    carl.button(key=f"reject_{prop.id}").click().run()
    assert_clean(carl)
    ev = _events(signed_in).set_index("kind")
    assert (ev.loc["rejection", "actor"], ev.loc["rejection", "authenticated"], ev.loc["rejection", "rationale"]) == (
        "carl@approve.example.com", True, "Keep it until the Q3 migration")
    assert "stage" not in ev.index


def test_with_sign_in_an_approver_does_not_approve_their_own_proposal(signed_in: str) -> None:
    at = _as("carl@approve.example.com", "retirement")  # an approver may propose too (approver > editor)
    _propose_on_page(at, by=None)
    (prop,) = _events(signed_in).itertuples()
    at = _as("carl@approve.example.com", "retirement")
    assert f"approve_{prop.id}" not in [b.key for b in at.button]
    assert any("You proposed this: another approver decides it." in c.value for c in at.caption)
    root = _as("root@example.com", "retirement")  # an admin decides; not self-approved
    root.button(key=f"approve_{prop.id}").click().run()
    assert_clean(root)
    ev = _events(signed_in).set_index("kind")
    assert (ev.loc["approval", "actor"], bool(ev.loc["approval", "self_approved"])) == ("root@example.com", False)
    assert ev.loc["stage", "stage"] == "retiring"


def test_many_waiting_proposals_show_five_cards_and_a_list_for_the_rest(own_demo_url: str) -> None:
    """Issue 15 at scale (a 1,000-app demo has dozens waiting; the page was 32,130 px tall): five
    cards, and any other waiting proposal picked from a list gets its card."""
    from datetime import UTC, datetime, time

    engine = storage.make_engine(own_demo_url)
    cfg = demo_cfg(own_demo_url)
    now = datetime.combine(TODAY, time(9, 0), tzinfo=UTC)
    apps = ["search-ranking", "homepage-recs", "query-autocomplete", "card-fraud", "credit-risk-score", "aml-triage"]
    for app in apps:
        lifecycle.propose(engine, cfg, app, "retire", "ann@example.com", "Test at scale.", planned=PLANNED, now=now)
    waiting = lifecycle.open_proposals(load_facts(engine, today=TODAY))
    assert len(waiting) == 7  # and the demo's own

    def approve_buttons(at):  # type: ignore[no-untyped-def]
        return [b for b in at.button if str(b.key or "").startswith("approve_")]

    at = open_page("retirement")
    assert_clean(at)
    assert len(approve_buttons(at)) == 5
    pick = at.selectbox(key="proposal_pick")
    assert len(pick.options) == 2
    carded = {str(b.key)[len("approve_"):] for b in approve_buttons(at)}
    other = sorted(set(waiting["id"].astype(str)) - carded)[0]
    pick.set_value(other).run()
    assert_clean(at)
    assert len(approve_buttons(at)) == 6

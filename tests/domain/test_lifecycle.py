"""The lifecycle (portfolio/lifecycle.py): proposals with their frozen projection, approval rules,
stages as events (retiring -> retired after the planned date, derived), retirements; on both backends.

The books of every test: app "churn" (team ml, 100/h) in April, May and June 2026 (the three full
months before the last complete day, 2026-07-14) has infra 100.10 a month, 2 maintenance hours a
month (200.00 of people cost) and value 50.00 a month. Run-rate = 3 months × 4:
annual savings = (100.10 + 200.00) × 3 × 4 = 3601.20; value at risk = 50 × 12 = 600.00;
net effect = 3001.20; freed hours = 2 × 12 = 24.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from portfolio import lifecycle, records, retirement, storage
from portfolio.facts import load_facts
from portfolio.lifecycle import LifecycleError
from tests.domain import build

TODAY = build.TODAY  # 2026-07-15
NOW = datetime(2026, 7, 15, 9, 30, tzinfo=UTC)
PLANNED = date(2026, 8, 31)
MONTHS = (date(2026, 4, 1), date(2026, 5, 1), date(2026, 6, 1))
CFG = build.config()


@pytest.fixture
def db(engine):
    build.stored(
        engine,
        apps=[build.app("churn", name="Churn predictor", launched=date(2025, 1, 1), review_every_days=30),
              build.app("idle", launched=date(2025, 1, 1))],
        costs=[build.cost("churn", m.replace(day=10), 100.10) for m in MONTHS],
        outcomes=[build.outcome("churn", m, 50.0) for m in MONTHS],
        maintenance=[build.work("churn", m.replace(day=12), 2.0) for m in MONTHS],
    )  # fmt: skip
    return engine


def _propose(db, **kw):
    args = {"app_id": "churn", "action": "retire", "by": "ann@example.com", "rationale": "zombie since spring",
            "planned": PLANNED, "evidence": "https://tickets.example.com/ML-1", "now": NOW} | kw  # fmt: skip
    return lifecycle.propose(db, CFG, **args)


def _events(db):
    return storage.read_frame(db, records.LifecycleEvent)


def test_a_proposal_freezes_the_projection_hand_computed(db):
    p = lifecycle.project(load_facts(db, today=TODAY), CFG, "churn")
    assert (p.annual_savings, p.value_at_risk, p.net_effect, p.freed_hours_per_year) == (
        Decimal("3601.20"), Decimal("600.00"), Decimal("3001.20"), 24.0)
    saved = _propose(db)
    assert saved.kind == "proposal" and saved.action == "retire" and saved.planned == PLANNED
    facts = load_facts(db, today=TODAY)
    waiting = lifecycle.open_proposals(facts)
    assert list(waiting["id"]) == [saved.id]
    row = waiting.iloc[0]
    assert (row["projected_annual_savings"], row["value_at_risk"], row["net_effect"], row["freed_hours_per_year"]) == (
        Decimal("3601.200000"), Decimal("600.000000"), Decimal("3001.200000"), 24.0)
    assert row["currency"] == "USD" and row["name"] == "Churn predictor" and row["actor"] == "ann@example.com"
    assert lifecycle.current_stage(facts, "churn", TODAY) == "production"  # a proposal changes no stage


def test_approved_retirement_is_retiring_then_retired_after_its_date(db):
    prop = _propose(db)
    written = lifecycle.approve(db, prop.id, "boss@example.com", "agreed with the sponsor", role="approver",
                                now=NOW + timedelta(hours=2))  # fmt: skip
    assert [e.kind for e in written] == ["approval", "stage"]
    assert written[0].self_approved is False and written[0].authenticated is True
    assert (written[1].stage, written[1].effective, written[1].planned) == ("retiring", TODAY, PLANNED)
    facts = load_facts(db, today=TODAY)
    assert lifecycle.current_stage(facts, "churn", TODAY) == "retiring"
    assert lifecycle.current_stage(facts, "churn", PLANNED - timedelta(days=1)) == "retiring"
    assert lifecycle.current_stage(facts, "churn", PLANNED) == "retired"  # derived: no job moved it
    assert lifecycle.current_stage(facts, "churn", TODAY - timedelta(days=1)) == "production"
    assert lifecycle.open_proposals(facts).empty
    assert lifecycle.retirements(facts) == []  # not retired yet on 2026-07-15
    # its Decision: retire, snoozing the findings until the planned date
    decision = storage.read_frame(db, records.Decision).iloc[0]
    assert (decision["decision"], decision["decided_by"], decision["next_review"]) == ("retire", "boss@example.com", PLANNED)
    assert "agreed with the sponsor" in decision["rationale"]
    # history: newest first, the approval and the stage event after the proposal
    history = lifecycle.stage_history(facts, "churn")
    assert list(history["kind"]) == ["stage", "approval", "proposal"]  # one instant: the consequence is newer

    after = load_facts(db, today=PLANNED + timedelta(days=1))
    (r,) = lifecycle.retirements(after)
    assert (r.app_id, r.retired_on, r.planned_on, r.proposed_by, r.approved_by) == (
        "churn", PLANNED, PLANNED, "ann@example.com", "boss@example.com")
    assert r.approved_at == NOW + timedelta(hours=2) and r.proposal_id == prop.id and r.source == "lifecycle"
    assert (r.projected_annual_savings, r.value_at_risk, r.net_effect) == (
        Decimal("3601.200000"), Decimal("600.000000"), Decimal("3001.200000"))
    assert (r.freed_hours_per_year, r.freed_hours_per_month, r.currency) == (24.0, 2.0, "USD")
    # a retired app is never a retirement candidate again
    found = retirement.retirement_findings(after, CFG, include_snoozed=True)
    assert "churn" not in set(found["app_id"])


def test_a_recorded_stop_date_wins_over_the_planned_date(db):
    prop = _propose(db)
    lifecycle.approve(db, prop.id, "boss@example.com", role="approver", now=NOW)
    later = datetime(2026, 8, 20, 8, tzinfo=UTC)
    lifecycle.change_stage(db, "churn", "retired", "ann@example.com", "endpoint deleted early", effective=date(2026, 8, 19),
                           evidence="https://tickets.example.com/ML-9", authenticated=True, now=later)  # fmt: skip
    facts = load_facts(db, today=date(2026, 8, 20))
    assert lifecycle.current_stage(facts, "churn", date(2026, 8, 19)) == "retired"
    (r,) = lifecycle.retirements(facts)
    assert (r.retired_on, r.planned_on, r.approved_by) == (date(2026, 8, 19), PLANNED, "boss@example.com")


def test_inventory_retirements_are_dated_only_when_a_date_is_known(engine):
    build.stored(engine, apps=[build.app("old", stage="retired", retired_on=date(2025, 3, 31)),
                               build.app("older", stage="retired")])  # fmt: skip
    facts = load_facts(engine, today=TODAY)
    dated, undated = lifecycle.retirements(facts)
    assert (dated.app_id, dated.retired_on, dated.source, dated.projected_annual_savings) == ("old", date(2025, 3, 31), "inventory", None)
    assert (undated.app_id, undated.retired_on) == ("older", None)
    assert "no date" in undated.note


@pytest.mark.parametrize(
    "kwargs, message",
    [
        pytest.param({"app_id": "nope"}, "'nope' is not in the inventory", id="unknown-app"),
        pytest.param({"action": "archive"}, "expected one of retire, invest, keep", id="unknown-action"),
        pytest.param({"by": "  "}, "proposed by: say who", id="no-author"),
        pytest.param({"rationale": " "}, "rationale: say why", id="no-rationale"),
        pytest.param({"planned": date(2026, 7, 14)}, "planned date 2026-07-14 is in the past", id="planned-in-the-past"),
        pytest.param({"planned": None}, "needs the day it is planned to stop", id="retire-without-date"),
        pytest.param({"action": "keep"}, "only a retirement has one", id="keep-with-planned-date"),
        pytest.param({"evidence": "javascript:alert(1)"}, "expected an http\\(s\\) link", id="evidence-not-a-link"),
        pytest.param({"now": datetime(2026, 7, 15, 9)}, "tz-aware", id="naive-now"),
    ],
)
def test_proposal_validation(db, kwargs, message):
    with pytest.raises(LifecycleError, match=message):
        _propose(db, **kwargs)
    assert _events(db).empty  # nothing written


def test_one_waiting_proposal_per_app(db):
    first = _propose(db)
    with pytest.raises(LifecycleError, match=f"already has a proposal waiting \\(retire by ann@example.com, id {first.id}\\)"):
        _propose(db, action="invest", planned=None, by="bob@example.com")
    assert len(_events(db)) == 1


@pytest.mark.parametrize(
    "by, role, message",
    [
        pytest.param("ann@example.com", "approver", "you proposed this yourself", id="own-proposal-signed-in"),
        pytest.param("bob@example.com", "editor", "your role \\(editor\\) cannot approve", id="editor"),
        pytest.param("bob@example.com", "viewer", "your role \\(viewer\\) cannot approve", id="viewer"),
        pytest.param(" ", "approver", "approved by: say who", id="no-approver"),
    ],
)
def test_who_may_not_approve(db, by, role, message):
    prop = _propose(db)
    with pytest.raises(LifecycleError, match=message):
        lifecycle.approve(db, prop.id, by, role=role, now=NOW)
    assert list(_events(db)["kind"]) == ["proposal"]
    assert storage.read_frame(db, records.Decision).empty


@pytest.mark.parametrize(
    "role, authenticated", [pytest.param(None, False, id="local-user-without-sign-in"), pytest.param("admin", True, id="admin")]
)
def test_own_approval_is_allowed_without_sign_in_or_to_an_admin_and_flagged(db, role, authenticated):
    prop = _propose(db, by="local user")
    approval = lifecycle.approve(db, prop.id, " Local User ", role=role, now=NOW)[0]
    assert (approval.self_approved, approval.authenticated) == (True, authenticated)
    stored = _events(db).set_index("kind").loc["approval"]
    assert bool(stored["self_approved"]) is True


def test_a_decided_proposal_cannot_be_decided_again(db):
    prop = _propose(db)
    lifecycle.reject(db, prop.id, "boss@example.com", "value at risk understated", role="approver", now=NOW)
    with pytest.raises(LifecycleError, match="was rejected already, by boss@example.com on 2026-07-15"):
        lifecycle.approve(db, prop.id, "carol@example.com", role="approver", now=NOW)
    with pytest.raises(LifecycleError, match="no such proposal"):
        lifecycle.approve(db, "nope", "carol@example.com", role="approver", now=NOW)
    facts = load_facts(db, today=TODAY)
    assert lifecycle.current_stage(facts, "churn", PLANNED) == "production"  # a rejection changes nothing
    assert lifecycle.open_proposals(facts).empty
    assert storage.read_frame(db, records.Decision).empty
    # and a new proposal may follow
    assert _propose(db, by="carol@example.com").kind == "proposal"


def test_a_rejection_needs_a_comment(db):
    prop = _propose(db)
    with pytest.raises(LifecycleError, match="comment: say why"):
        lifecycle.reject(db, prop.id, "boss@example.com", "  ", role="approver", now=NOW)


def test_approving_after_the_planned_date_is_refused(db):
    prop = _propose(db)
    with pytest.raises(LifecycleError, match="the planned date 2026-08-31 has passed"):
        lifecycle.approve(db, prop.id, "boss@example.com", role="approver", now=datetime(2026, 9, 1, tzinfo=UTC))


def test_approved_keep_records_a_decision_that_snoozes_like_today(db):
    prop = _propose(db, action="keep", planned=None)
    written = lifecycle.approve(db, prop.id, "boss@example.com", role="approver", now=NOW)
    assert [e.kind for e in written] == ["approval"]
    decision = storage.read_frame(db, records.Decision).iloc[0]
    # no next review in the proposal: the app's cadence (30 days) from the approval day
    assert (decision["decision"], decision["next_review"]) == ("keep", date(2026, 8, 14))
    facts = load_facts(db, today=TODAY)
    assert retirement.snoozed_until(facts).to_dict() == {"churn": date(2026, 8, 14)}
    assert lifecycle.current_stage(facts, "churn", TODAY) == "production"


def test_pause_and_resume_are_stage_events(db):
    lifecycle.change_stage(db, "churn", "paused", "ann@example.com", "sponsor on leave", now=NOW)
    resumed = lifecycle.change_stage(db, "churn", "production", "ann@example.com", "back", effective=date(2026, 8, 1),
                                     now=NOW + timedelta(minutes=1))  # fmt: skip
    facts = load_facts(db, today=TODAY)
    assert lifecycle.current_stage(facts, "churn", TODAY) == "paused"
    assert lifecycle.current_stage(facts, "churn", date(2026, 8, 1)) == "production"  # from its effective day
    assert resumed.effective == date(2026, 8, 1)
    assert list(lifecycle.stage_history(facts, "churn")["stage"]) == ["production", "paused"]


def test_stages_of_every_app_in_one_pass_agree_with_current_stage(db):
    """lifecycle.stages (one pass over the trail: the Retirement page at 1,000 apps) gives each app
    the stage current_stage gives it, on every day around paused, resumed and retiring."""
    lifecycle.change_stage(db, "idle", "paused", "ann@example.com", "sponsor on leave", now=NOW)
    lifecycle.change_stage(db, "idle", "production", "ann@example.com", "back", effective=date(2026, 8, 1),
                           now=NOW + timedelta(minutes=1))  # fmt: skip
    prop = _propose(db)
    lifecycle.approve(db, prop.id, "boss@example.com", role="approver", now=NOW + timedelta(minutes=2))
    facts = load_facts(db, today=TODAY)
    for on in (TODAY - timedelta(days=1), TODAY, date(2026, 8, 1), PLANNED - timedelta(days=1), PLANNED):
        want = {a: lifecycle.current_stage(facts, a, on) for a in ("churn", "idle")}
        assert lifecycle.stages(facts, on).to_dict() == want, on
        # the retired set and mask read the same one pass
        assert lifecycle.retired_ids(facts, on) == {a for a, s in want.items() if s == "retired"}, on
        mask = lifecycle.retired_mask(facts.apps, facts, on)
        assert dict(zip(facts.apps["app_id"], mask, strict=True)) == {a: s == "retired" for a, s in want.items()}, on
    assert lifecycle.stages(facts, PLANNED).to_dict() == {"churn": "retired", "idle": "production"}


@pytest.mark.parametrize(
    "stage, kwargs, message",
    [
        pytest.param("retired", {}, "is production: it can move to pilot, paused, not retired", id="production-to-retired"),
        pytest.param("retiring", {}, "starts retiring when an approver approves", id="retiring-by-hand"),
        pytest.param("production", {}, "is production already", id="same-stage"),
        pytest.param("archived", {}, "expected one of pilot, production, retiring, retired, paused", id="unknown-stage"),
        pytest.param("paused", {"effective": date(2026, 7, 1)}, "2026-07-01 is in the past", id="pause-in-the-past"),
        pytest.param("paused", {"rationale": ""}, "rationale: say why", id="no-rationale"),
        pytest.param("paused", {"app_id": "nope"}, "'nope' is not in the inventory", id="unknown-app"),
    ],
)
def test_stage_change_validation(db, stage, kwargs, message):
    args = {"app_id": "churn", "by": "ann@example.com", "rationale": "why", "now": NOW} | kwargs
    with pytest.raises(LifecycleError, match=message):
        lifecycle.change_stage(db, stage=stage, **args)
    assert _events(db).empty


def test_retired_date_not_before_retiring_nor_in_the_future(db):
    prop = _propose(db)
    lifecycle.approve(db, prop.id, "boss@example.com", role="approver", now=NOW)
    with pytest.raises(LifecycleError, match="before it started retiring \\(2026-07-15\\)"):
        lifecycle.change_stage(db, "churn", "retired", "ann", "stopped", effective=date(2026, 7, 10), now=NOW)
    with pytest.raises(LifecycleError, match="in the future"):
        lifecycle.change_stage(db, "churn", "retired", "ann", "stopped", effective=date(2026, 7, 20), now=NOW)
    # calling it off: back to production, and its findings count again after the planned date
    lifecycle.change_stage(db, "churn", "production", "ann", "sponsor found budget", now=NOW + timedelta(hours=1))
    facts = load_facts(db, today=PLANNED + timedelta(days=1))
    assert lifecycle.current_stage(facts, "churn", PLANNED) == "production"
    assert lifecycle.retirements(facts) == []


def test_model_version_live_at_each_event_is_recorded(engine):
    version_at = datetime(2026, 6, 30, 12, tzinfo=UTC)
    build.stored(engine, apps=[build.app("churn", last_model_version_at=version_at, source="mlflow")])
    saved = lifecycle.change_stage(engine, "churn", "paused", "ann", "drift", now=NOW)
    assert saved.model_version_at == version_at
    assert _events(engine).iloc[0]["model_version_at"] == version_at


def test_current_stage_without_events_is_the_inventorys_and_unknown_apps_are_an_error():
    facts = build.facts(apps=[build.app("p", stage="pilot")])
    assert lifecycle.current_stage(facts, "p", TODAY) == "pilot"
    with pytest.raises(LifecycleError, match="'x' is not in the inventory"):
        lifecycle.current_stage(facts, "x", TODAY)
    assert lifecycle.stage_history(facts).empty and list(lifecycle.stage_history(facts).columns) == lifecycle.HISTORY_COLUMNS


def test_review_queue_hand_computed():
    """As of 2026-07-15: "late" is due 30 days after its launch (2026-07-01: 14 days overdue); "soon"
    has a decision whose next review is 2026-07-25 (due in 10 days, snoozed until then); "later"
    is snoozed until 2026-12-31 (169 days); "fine" is due 2027-07-01; "gone" is retired."""
    facts = build.facts(
        apps=[build.app("late", review_every_days=30), build.app("soon"), build.app("later"),
              build.app("fine", launched=date(2026, 7, 1)), build.app("gone", stage="retired")],
        decisions=[build.decision("soon", date(2026, 7, 1), date(2026, 7, 25)),
                   build.decision("later", date(2026, 7, 1), date(2026, 12, 31))],
    )  # fmt: skip
    queue = retirement.review_queue(facts, CFG)
    assert list(queue.columns) == retirement.QUEUE_COLUMNS
    rows = queue[["app_id", "review_due", "days_left", "status", "snoozed_until"]].to_dict("records")
    assert rows == [
        {"app_id": "late", "review_due": date(2026, 7, 1), "days_left": -14, "status": "overdue", "snoozed_until": None},
        {"app_id": "soon", "review_due": date(2026, 7, 25), "days_left": 10, "status": "due", "snoozed_until": date(2026, 7, 25)},
        {"app_id": "later", "review_due": date(2026, 12, 31), "days_left": 169, "status": "snoozed",
         "snoozed_until": date(2026, 12, 31)},
    ]  # fmt: skip

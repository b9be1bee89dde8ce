from datetime import UTC, date, datetime, timedelta

import pytest

from portfolio import decisions, records, storage
from portfolio.decisions import InvalidDecision, record_decision
from portfolio.facts import load_facts

NOW = datetime(2026, 7, 15, 9, 30, tzinfo=UTC)


@pytest.fixture
def db(engine):
    storage.add(engine, records.App(app_id="churn", name="Churn predictor", team="ml", owner="jane"))
    return engine


def test_record_decision_stores_an_audit_row_and_snoozes(db):
    saved = record_decision(db, "churn", "keep", "  Jane  ", "still earns", date(2026, 10, 1), now=NOW)
    assert len(saved.id) == 32 and int(saved.id, 16) >= 0  # uuid4 hex
    later = record_decision(db, "churn", "review", "Bob", "", None, now=NOW + timedelta(days=1))
    assert later.id != saved.id
    facts = load_facts(db, today=date(2026, 7, 20))
    assert len(facts.decisions) == 2
    log = decisions.decision_log(facts)
    assert list(log.columns) == decisions.LOG_COLUMNS
    assert list(log["decision"]) == ["review", "keep"]  # newest first
    first = log.iloc[1]
    assert (first["decided_by"], first["rationale"], first["next_review"], first["name"]) == (
        "Jane", "still earns", date(2026, 10, 1), "Churn predictor")
    assert first["decided_at"] == NOW
    assert decisions.decision_log(facts, "other").empty


@pytest.mark.parametrize(
    "kwargs, message",
    [
        pytest.param({"decision": "archive"}, "expected one of keep, invest, retire, review", id="unknown-decision"),
        pytest.param({"app_id": "nope"}, "'nope' is not in the inventory", id="unknown-app"),
        pytest.param({"decided_by": "   "}, "decided_by", id="blank-author"),
        pytest.param({"next_review": date(2026, 7, 14)}, "before the decision date", id="review-in-the-past"),
        pytest.param({"next_review": datetime(2026, 9, 1, tzinfo=UTC)}, "expected a date", id="datetime-not-date"),
        pytest.param({"now": datetime(2026, 7, 15, 9, 30)}, "tz-aware", id="naive-now"),
    ],
)
def test_record_decision_validation(db, kwargs, message):
    args = {"app_id": "churn", "decision": "retire", "decided_by": "jane", "rationale": "r",
            "next_review": date(2026, 8, 1), "now": NOW} | kwargs  # fmt: skip
    with pytest.raises(InvalidDecision, match=message):
        record_decision(db, **args)
    assert storage.read_frame(db, records.Decision).empty  # nothing written


def test_invalid_decision_is_a_value_error(db):
    with pytest.raises(ValueError):
        record_decision(db, "churn", "maybe", "jane", "", None, now=NOW)


def test_review_on_the_decision_day_is_allowed(db):
    saved = record_decision(db, "churn", "invest", "jane", "", NOW.date(), now=NOW)
    assert saved.next_review == NOW.date()

"""One recommendation per app (issue 10): hand-computed cases, the retire-all net effect, one answer everywhere.

As of 2026-07-15: run-rate = (Apr + May + Jun 2026) × 4; underwater and maintenance_sink look at
Jan..Jun; decaying compares Apr..Jun with Jan..Mar. Costs fall on the 5th, outside the zombie
window (Jun 15 .. Jul 14), so no zombie fires unless a case wants it.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from portfolio import maintenance, recommend, retirement
from portfolio.books import Books
from portfolio.periods import Period

from .build import app, config, cost, facts, outcome, stored, work

H1 = [date(2026, m, 1) for m in range(1, 7)]
Q2 = Period(date(2026, 4, 1), date(2026, 6, 30))


def case(kind: str) -> dict[str, list[dict[str, Any]]]:
    """The facts of one app ``kind`` (its id is the kind)."""
    a = kind
    if kind == "loser":  # costs 1,000 a month Apr..Jun, brings 300: underwater
        return {"apps": [app(a)], "costs": [cost(a, m.replace(day=5), 1000) for m in H1[3:]],
                "outcomes": [outcome(a, m, 300) for m in H1[3:]], "maintenance": []}  # fmt: skip
    if kind == "sink":  # brings 10,000 a month, 60 h x $100 of upkeep: a maintenance sink that makes money
        return {"apps": [app(a)], "costs": [], "outcomes": [outcome(a, m, 10_000) for m in H1],
                "maintenance": [work(a, m.replace(day=5), 60) for m in H1]}  # fmt: skip
    if kind == "fragile":  # no rule fires, one incident a month in Apr..Jun
        return {"apps": [app(a)], "costs": [cost(a, m.replace(day=5), 1000) for m in H1],
                "outcomes": [outcome(a, m, 10_000) for m in H1],
                "maintenance": [work(a, m.replace(day=6), 0, "incident", incidents=1, ttr_hours=2.0) for m in H1[3:]]}  # fmt: skip
    if kind == "grower":  # value up 20% quarter over quarter
        return {"apps": [app(a)], "costs": [cost(a, m.replace(day=5), 100) for m in H1],
                "outcomes": [outcome(a, m, 1000 if m < date(2026, 4, 1) else 1200) for m in H1], "maintenance": []}  # fmt: skip
    if kind == "steady":
        return {"apps": [app(a)], "costs": [cost(a, m.replace(day=5), 100) for m in H1],
                "outcomes": [outcome(a, m, 1000) for m in H1], "maintenance": []}  # fmt: skip
    if kind == "ownerless":  # profitable but nobody owns it: orphaned
        return {"apps": [app(a, owner=None)], "costs": [cost(a, m.replace(day=5), 100) for m in H1],
                "outcomes": [outcome(a, m, 1000) for m in H1], "maintenance": []}  # fmt: skip
    if kind == "pilot":  # no rule fires, but at run-rate it costs 1,800 a year for 1,200 of value
        return {"apps": [app(a, stage="pilot")], "costs": [cost(a, m.replace(day=5), 150) for m in H1[3:]],
                "outcomes": [outcome(a, m, 100) for m in H1], "maintenance": []}  # fmt: skip
    raise AssertionError(kind)


def portfolio(*kinds: str, engine: Any = None) -> Any:
    """The facts of the ``kinds`` together; through a real database when ``engine`` is given."""
    rows: dict[str, list[dict[str, Any]]] = {"apps": [], "costs": [], "outcomes": [], "maintenance": []}
    for k in kinds:
        for name, r in case(k).items():
            rows[name] += r
    rows = {k: v for k, v in rows.items() if v}
    return stored(engine, **rows) if engine is not None else facts(**rows)


@pytest.mark.parametrize(
    "kind, action, rules, savings, at_risk, reason_part",
    [
        pytest.param("loser", "retire", "underwater", 12_000, 3_600, "raise portfolio net by 8,400 USD", id="retire-loses-money"),
        pytest.param("sink", "harden", "maintenance_sink", 72_000, 120_000, "makes 48,000 USD a year net", id="harden-profitable-sink"),
        pytest.param("fragile", "harden", "", 12_000, 120_000, "1.0 incidents a month", id="harden-breaks-monthly"),
        pytest.param("grower", "invest", "", 1_200, 14_400, "value grew 20%", id="invest-growing"),
        pytest.param("steady", "keep", "", 1_200, 12_000, "no retirement rule fires", id="keep-steady"),
        pytest.param("ownerless", "review", "orphaned", 1_200, 12_000, "no owner", id="review-orphaned-but-profitable"),
        pytest.param("pilot", "review", "", 1_800, 1_200, "costs more than it brings", id="review-loses-at-run-rate"),
    ],
)  # fmt: skip
def test_one_action_per_app(kind, action, rules, savings, at_risk, reason_part):
    recs = recommend.recommendations(portfolio(kind), config())
    assert list(recs.columns) == recommend.RECOMMENDATION_COLUMNS
    assert len(recs) == 1
    r = recs.iloc[0]
    assert (r["app_id"], r["action"], r["rules"]) == (kind, action, rules)
    assert (r["annual_savings"], r["value_at_risk"], r["net_effect"]) == (savings, at_risk, savings - at_risk)
    assert reason_part in r["reason"], r["reason"]


def test_retire_all_net_effect_is_hand_computed_and_matches_what_if(engine):
    f = portfolio("loser", "sink", "ownerless", "steady", engine=engine)
    cfg = config()
    books = Books(f, cfg)
    cands = retirement.candidates(retirement.retirement_findings(f, cfg, books=books))
    # sorted by net effect: retiring "loser" raises net, the other two lower it
    assert list(cands["app_id"]) == ["loser", "ownerless", "sink"]
    assert list(cands["net_effect"]) == [12_000 - 3_600, 1_200 - 12_000, 72_000 - 120_000]
    assert cands["annual_savings"].sum() == 12_000 + 72_000 + 1_200 == 85_200
    assert cands["value_at_risk"].sum() == 3_600 + 120_000 + 12_000 == 135_600
    assert cands["net_effect"].sum() == 85_200 - 135_600 == -50_400  # retiring every candidate LOWERS net
    totals = recommend.retire_all(recommend.recommendations(f, cfg, books=books))
    assert totals["candidates_net_effect"] == -50_400
    assert (totals["retire_savings"], totals["retire_value_at_risk"], totals["retire_net_effect"]) == (12_000, 3_600, 8_400)
    w = retirement.what_if(f, cfg, Q2, list(cands["app_id"]), books=books)
    assert w["delta"]["net"] == -50_400


def test_maintenance_page_shows_the_same_recommendation():
    f = portfolio("loser", "sink", "fragile", "steady")
    cfg = config()
    recs = recommend.recommendations(f, cfg).set_index("app_id")
    load = maintenance.maintenance_load(f, cfg, Q2).set_index("app_id")
    assert set(load.index) == {"loser", "sink", "fragile", "steady"}
    for a in load.index:
        assert (load.at[a, "recommendation"], load.at[a, "reason"]) == (recs.at[a, "action"], recs.at[a, "reason"])
    # the old Maintenance view said "drop" for a sink that makes 48,000 a year net
    assert load.at["sink", "recommendation"] == "harden"


def test_a_decision_snooze_is_named_and_its_findings_do_not_decide():
    from .build import decision

    f = facts(**case("loser"), decisions=[decision("loser", date(2026, 7, 1), date(2026, 9, 1))])
    r = recommend.recommendations(f, config()).iloc[0]
    assert r["rules"] == "" and r["snoozed_until"] == date(2026, 9, 1)
    assert "snoozes underwater until 2026-09-01" in r["reason"]
    assert r["action"] == "review"  # it still costs more than it brings, so a person looks again

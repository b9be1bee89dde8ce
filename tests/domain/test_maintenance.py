import math
from datetime import date

import pytest

from portfolio import maintenance
from portfolio.periods import Period

from .build import app, config, facts, outcome, work

Q1 = Period(date(2026, 1, 1), date(2026, 3, 31))


def test_monthly_klo_includes_incidents_and_mttr():
    f = facts(
        apps=[app("a"), app("b", "data")],
        maintenance=[
            work("a", date(2026, 2, 2), 10, "klo"),
            work("a", date(2026, 2, 3), 4, "incident", incidents=2, ttr_hours=3.0),
            work("a", date(2026, 2, 4), 2, "incident", incidents=1, ttr_hours=6.0),
            work("a", date(2026, 2, 5), 5, "improvement"),
            work("a", date(2026, 3, 5), 1, "klo"),
            work("b", date(2026, 2, 5), 8, "improvement"),
        ],
    )
    m = maintenance.maintenance_monthly(f, config())
    assert list(m.columns) == maintenance.MONTHLY_COLUMNS
    got = {(r.app_id, r.month): r for r in m.itertuples()}
    feb = got[("a", date(2026, 2, 1))]
    assert (feb.klo_hours, feb.incident_hours, feb.improvement_hours, feb.hours) == (16, 6, 5, 21)
    assert (feb.incidents, feb.mttr_hours, feb.people_cost, feb.team) == (3, 4.5, 2100, "ml")
    mar = got[("a", date(2026, 3, 1))]
    assert mar.klo_hours == 1 and math.isnan(mar.mttr_hours)  # no incident: MTTR unknown, not 0
    b = got[("b", date(2026, 2, 1))]
    assert (b.klo_hours, b.improvement_hours, b.people_cost) == (0, 8, 400)  # data team rate 50


@pytest.mark.parametrize(
    "klo, incidents, value",
    [
        pytest.param(10, 0, 0, id="no-value"),
        pytest.param(10, 0, 1999, id="people-cost-over-half-of-value"),
        pytest.param(10, 3, 2000, id="three-incidents"),
        pytest.param(48, 0, 100_000, id="ten-percent-of-capacity"),
    ],
)
def test_maintenance_load_figures(klo, incidents, value):
    # issue 10: the recommendation is no longer this view's own (drop/harden/watch/ok) but the one of
    # portfolio.recommend, asserted in test_recommend.py; the figures are unchanged
    rows = [work("a", date(2026, 1, 5), klo, "klo")]
    if incidents:
        rows.append(work("a", date(2026, 2, 5), 0, "incident", incidents=incidents, ttr_hours=2.0))
    outcomes = [outcome("a", date(2026, 1, 1), value)] if value else []
    f = facts(apps=[app("a")], maintenance=rows, outcomes=outcomes)
    load = maintenance.maintenance_load(f, config(), Q1)
    assert list(load.columns) == maintenance.LOAD_COLUMNS
    r = load.iloc[0]
    assert r["people_cost"] == klo * 100
    assert r["klo_share_of_team"] == pytest.approx(klo / (160 * 3))  # ml capacity 160 h/month x 3 months
    assert r["incidents"] == incidents
    assert r["recommendation"] in ("retire", "harden", "review", "invest", "keep") and r["reason"]
    if value:
        assert r["maintenance_to_value"] == pytest.approx(klo * 100 / value)


@pytest.mark.parametrize(
    "hours, booked_people, people_cost",
    [
        pytest.param(10, 0, 1000, id="hours-only"),
        pytest.param(10, 500, 1500, id="hours-and-people-spend"),
        pytest.param(0, 500, 500, id="people-spend-only"),
    ],
)
def test_people_cost_has_one_definition(hours, booked_people, people_cost):
    """issue 10: the maintenance view counted hours x rate only; the P&L also counts "people" spend."""
    from portfolio import pnl

    from .build import cost

    f = facts(
        apps=[app("a")],
        maintenance=[work("a", date(2026, 2, 3), hours)] if hours else [],
        costs=[cost("a", date(2026, 2, 4), booked_people, "people")] if booked_people else [],
    )
    mm = maintenance.maintenance_monthly(f, config())
    pm = pnl.monthly_pnl(f, config())
    assert list(mm["people_cost"]) == [people_cost]
    assert list(pm["people_cost"]) == [people_cost]
    if hours:  # the load lists apps with hours or value
        assert maintenance.maintenance_load(f, config(), Q1).iloc[0]["people_cost"] == people_cost


def test_team_load_capacity_share():
    f = facts(
        apps=[app("a"), app("b", "data")],
        maintenance=[work("a", date(2026, 1, 5), 40, "klo"), work("a", date(2026, 2, 5), 8, "incident", incidents=1, ttr_hours=5),
                     work("a", date(2026, 3, 5), 20, "improvement"), work("b", date(2026, 2, 5), 30, "klo"),
                     work("a", date(2025, 12, 5), 999, "klo")],
    )  # fmt: skip
    t = maintenance.team_load(f, config(), Q1).set_index("team")
    assert list(t.reset_index().columns) == maintenance.TEAM_COLUMNS
    assert (t.loc["ml", "klo_hours"], t.loc["ml", "improvement_hours"], t.loc["ml", "capacity_hours"]) == (48, 20, 480)
    assert t.loc["ml", "klo_share"] == pytest.approx(0.1)
    assert (t.loc["ml", "incidents"], t.loc["ml", "mttr_hours"]) == (1, 5)
    assert (t.loc["data", "klo_hours"], t.loc["data", "capacity_hours"], t.loc["data", "klo_share"]) == (30, 300, 0.1)
    assert math.isnan(t.loc["data", "mttr_hours"])


def test_empty_maintenance():
    f = facts()
    assert list(maintenance.maintenance_monthly(f, config()).columns) == maintenance.MONTHLY_COLUMNS
    assert list(maintenance.maintenance_load(f, config(), Q1).columns) == maintenance.LOAD_COLUMNS
    teams = maintenance.team_load(f, config(), Q1)  # configured teams still show, with zero load
    assert sorted(teams["team"]) == ["data", "ml"] and teams["klo_hours"].sum() == 0

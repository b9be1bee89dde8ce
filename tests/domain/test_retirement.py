import json
from datetime import date, timedelta

import pytest

from portfolio import retirement
from portfolio.periods import Period
from portfolio.records import UNALLOCATED

from .build import TODAY, app, config, cost, days, decision, facts, outcome, requests, uptime, work

LAST = TODAY - timedelta(days=1)  # 2026-07-14; full months end with June 2026


def fired(f, cfg=None, include_snoozed=False):
    found = retirement.retirement_findings(f, cfg or config(), include_snoozed=include_snoozed)
    return {(a, r) for a, r in zip(found["app_id"], found["rule"], strict=True)}, found


# --- zombie: mean daily requests <= 10 over 30 days and spend >= 100 x 30/30 in the window -----------------

WINDOW = days(date(2026, 6, 15), LAST)  # the 30 days ending at the last complete day


@pytest.mark.parametrize(
    "total_requests, window_cost, outside_cost, fires",
    [
        pytest.param(300, 100.0, 0, True, id="fires-at-both-edges"),
        pytest.param(301, 100.0, 0, False, id="just-above-request-threshold"),
        pytest.param(300, 99.99, 0, False, id="just-below-cost-threshold"),
        pytest.param(0, 99.99, 500, False, id="spend-before-window-does-not-count"),
        pytest.param(0, 5000, 0, True, id="no-usage-data-counts-as-zero"),
    ],
)
def test_zombie(total_requests, window_cost, outside_cost, fires):
    usage = [requests("a", WINDOW[0], total_requests)] if total_requests else []
    usage.append(requests("a", date(2026, 6, 14), 10_000))  # the day before the window
    costs = [cost("a", WINDOW[0], window_cost), cost("a", date(2026, 6, 14), outside_cost),
             cost("a", LAST, 10_000, "people")]  # people cost is not "spend" for zombie  # fmt: skip
    hits, found = fired(facts(apps=[app("a")], usage=usage, costs=costs))
    assert (("a", "zombie") in hits) is fires
    if fires:
        z = found[found["rule"] == "zombie"].iloc[0]
        assert z["numbers"]["mean_daily_requests"] == round(total_requests / 30, 2)
        assert z["numbers"]["cost"] == window_cost
        assert "requests a day" in z["reason"]


# --- underwater: net over Jan..Jun < 0 ------------------------------------------------------------------


@pytest.mark.parametrize(
    "june_cost, december_cost, fires",
    [
        pytest.param(1000.00, 0, False, id="net-exactly-zero"),
        pytest.param(1000.01, 0, True, id="net-minus-a-cent"),
        pytest.param(1000.00, 5000, False, id="month-before-window-ignored"),
    ],
)
def test_underwater(june_cost, december_cost, fires):
    f = facts(
        apps=[app("a")],
        outcomes=[outcome("a", date(2026, 1, 1), 1000), outcome("a", date(2026, 7, 1), -99999)],  # July is not full
        costs=[cost("a", date(2026, 6, 30), june_cost), cost("a", date(2025, 12, 31), december_cost)],
    )
    hits, found = fired(f)
    assert (("a", "underwater") in hits) is fires
    if fires:
        u = found[found["rule"] == "underwater"].iloc[0]
        assert u["numbers"]["net"] == -0.01 and u["numbers"]["from"] == "2026-01-01" and u["numbers"]["to"] == "2026-06-01"


# --- decaying: Apr..Jun value < 0.75 x Jan..Mar value ----------------------------------------------------


@pytest.mark.parametrize(
    "earlier, recent, fires",
    [
        pytest.param(1000, 750, False, id="drop-exactly-25-percent"),
        pytest.param(1000, 749.99, True, id="drop-just-over-25-percent"),
        pytest.param(0, 0, False, id="no-earlier-value"),
        pytest.param(1000, 1000, False, id="flat"),
    ],
)
def test_decaying(earlier, recent, fires):
    f = facts(apps=[app("a")], outcomes=[outcome("a", date(2026, 2, 1), earlier), outcome("a", date(2026, 5, 1), recent)])
    hits, found = fired(f)
    assert (("a", "decaying") in hits) is fires
    if fires:
        d = found[found["rule"] == "decaying"].iloc[0]
        assert (d["numbers"]["earlier_value"], d["numbers"]["recent_value"]) == (earlier, recent)
        assert "quarter over quarter" in d["reason"]


# --- maintenance_sink: people cost over Jan..Jun > 0.5 x value ------------------------------------------


@pytest.mark.parametrize(
    "hours, value, fires",
    [
        pytest.param(5.0, 1000, False, id="people-exactly-half-of-value"),
        pytest.param(5.1, 1000, True, id="people-over-half-of-value"),
        pytest.param(1.0, 0, True, id="people-cost-and-no-value"),
        pytest.param(0.0, 0, False, id="nothing-at-all"),
    ],
)
def test_maintenance_sink(hours, value, fires):
    f = facts(
        apps=[app("a")],
        maintenance=[work("a", date(2026, 3, 3), hours)] if hours else [],
        outcomes=[outcome("a", date(2026, 3, 1), value)] if value else [],
    )
    hits, found = fired(f)
    assert (("a", "maintenance_sink") in hits) is fires
    if fires:
        s = found[found["rule"] == "maintenance_sink"].iloc[0]
        assert s["numbers"]["people_cost"] == pytest.approx(hours * 100)


# --- unreliable: monthly availability < SLO in >= 2 of Apr..Jun ------------------------------------------


@pytest.mark.parametrize(
    "availability, fires",
    [
        pytest.param({4: [0.98], 5: [0.99], 6: [1.0]}, False, id="one-miss-other-exactly-at-slo"),
        pytest.param({4: [0.98], 5: [0.989], 6: [1.0]}, True, id="two-misses"),
        pytest.param({4: [0.98, 1.0], 5: [0.98, 1.0], 6: [0.5]}, False, id="monthly-mean-of-days-at-slo"),
        pytest.param({3: [0.5], 4: [0.5], 7: [0.5]}, False, id="months-outside-window-ignored"),
    ],
)
def test_unreliable(availability, fires):
    rows = [uptime("a", date(2026, m, 1 + i), v) for m, vals in availability.items() for i, v in enumerate(vals)]
    hits, found = fired(facts(apps=[app("a")], uptime=rows))
    assert (("a", "unreliable") in hits) is fires
    if fires:
        u = found[found["rule"] == "unreliable"].iloc[0]
        assert u["numbers"]["missed"] == 2 and "2026-04 98.00%" in u["reason"]


# --- orphaned: no owner, or review overdue by more than 30 days --------------------------------------------


@pytest.mark.parametrize(
    "owner, launched, decisions, fires, words",
    [
        pytest.param(None, date(2026, 6, 1), [], True, "no owner", id="no-owner"),
        pytest.param("  ", date(2026, 6, 1), [], True, "no owner", id="blank-owner"),
        # launched + 90 days = due; today 2026-07-15 > due + 30 <=> due < 2026-06-15
        pytest.param("me", date(2026, 3, 17), [], False, None, id="due-2026-06-15-within-grace"),
        pytest.param("me", date(2026, 3, 16), [], True, "review overdue", id="due-2026-06-14-past-grace"),
        pytest.param("me", date(2020, 1, 1), [decision("a", date(2026, 1, 1), date(2026, 6, 15))], False, None,
                     id="decision-review-date-within-grace"),
        pytest.param("me", date(2020, 1, 1), [decision("a", date(2026, 1, 1), date(2026, 6, 14))], True, "2026-06-14",
                     id="decision-review-date-past-grace"),
        pytest.param("me", None, [], False, None, id="no-launch-no-decision-no-due-date"),
    ],
)  # fmt: skip
def test_orphaned(owner, launched, decisions, fires, words):
    f = facts(apps=[app("a", owner=owner, launched=launched, review_every_days=90)], decisions=decisions)
    hits, found = fired(f)
    assert (("a", "orphaned") in hits) is fires
    if fires:
        assert words in found[found["rule"] == "orphaned"].iloc[0]["reason"]


# --- scope, snooze, savings ------------------------------------------------------------------------------


def underwater_facts(**kw):
    """App a: 600/month infra Apr..Jun, 10 h/month maintenance, value 300/month: underwater."""
    base = dict(
        apps=[app("a"), app("old", stage="retired")],
        costs=[cost("a", date(2026, m, 10), 600) for m in (4, 5, 6)]
        + [cost(UNALLOCATED, date(2026, m, 10), 10_000) for m in (4, 5, 6)]
        + [cost("old", date(2026, 5, 10), 10_000)],
        maintenance=[work("a", date(2026, m, 11), 10) for m in (4, 5, 6)],
        outcomes=[outcome("a", date(2026, m, 1), 300) for m in (4, 5, 6)],
    )
    base.update(kw)
    return facts(**base)


def test_retired_and_unallocated_never_flagged_and_annual_savings_excludes_shared():
    hits, found = fired(underwater_facts())
    assert {a for a, _ in hits} == {"a"}
    assert ("a", "underwater") in hits
    r = found.iloc[0]
    # (600 infra + 10 h x 100) x 3 months x 4
    assert r["annual_savings"] == (600 + 1000) * 3 * 4
    assert r["value_at_risk"] == 300 * 3 * 4
    assert r["freed_hours"] == 10 * 3 * 4
    assert r["snoozed_until"] is None
    json.dumps(list(found["numbers"]))  # the numbers are JSON-serialisable
    assert list(found.columns) == retirement.FINDING_COLUMNS


@pytest.mark.parametrize(
    "next_review, snoozed",
    [
        pytest.param(TODAY, True, id="review-today-snoozes"),
        pytest.param(date(2026, 9, 1), True, id="future-review-snoozes"),
        pytest.param(TODAY - timedelta(days=1), False, id="past-review-does-not"),
        pytest.param(None, False, id="no-review-date-does-not"),
    ],
)
def test_snooze_by_decision(next_review, snoozed):
    f = underwater_facts(decisions=[decision("a", date(2026, 7, 1), next_review)])
    hits, _ = fired(f)
    assert (("a", "underwater") in hits) is not snoozed
    hits_all, found_all = fired(f, include_snoozed=True)
    assert ("a", "underwater") in hits_all
    assert found_all.iloc[0]["snoozed_until"] == (next_review if snoozed else None)


def test_candidates_one_row_per_app_sorted_by_savings():
    f = facts(
        apps=[app("big", owner=None), app("small", owner=None)],
        costs=[cost("big", date(2026, 5, 5), 3000), cost("small", date(2026, 5, 5), 30)],
    )
    found = retirement.retirement_findings(f, config())
    c = retirement.candidates(found)
    assert list(c.columns) == retirement.CANDIDATE_COLUMNS
    assert list(c["app_id"]) == ["big", "small"]
    assert c.iloc[0]["rules"] == "underwater, orphaned"
    assert c.iloc[0]["annual_savings"] == 3000 * 4
    assert "no owner" in c.iloc[0]["reasons"]
    assert list(found["app_id"]) == ["big", "big", "small", "small"]


def test_what_if_deltas():
    f = underwater_facts()
    p = Period(date(2026, 1, 1), LAST)
    w = retirement.what_if(f, config(), p, ["a"])
    before, after, delta = w["before"], w["after"], w["delta"]
    assert before["cost"] == (600 + 1000 + 10_000) * 12 + 10_000 * 4  # a, shared, and the retired app's May cost
    assert before["value"] == 300 * 12
    assert after["cost"] == 10_000 * 12 + 10_000 * 4
    assert after["value"] == 0
    assert delta["cost"] == -(600 + 1000) * 12
    assert delta["value"] == -3600
    assert delta["net"] == (600 + 1000 - 300) * 12
    assert (before["maintenance_hours"], after["maintenance_hours"], delta["maintenance_hours"]) == (120, 0, -120)
    assert (before["apps"], after["apps"]) == (1, 0)
    assert before["roi"] == pytest.approx((3600 - before["cost"]) / before["cost"])
    assert retirement.what_if(f, config(), p, [])["delta"]["net"] == 0
    with pytest.raises(ValueError, match="unknown app"):
        retirement.what_if(f, config(), p, ["nope"])
    with pytest.raises(ValueError, match="shared spend"):
        retirement.what_if(f, config(), p, [UNALLOCATED])


def test_no_findings_gives_empty_frames_with_columns():
    f = facts(apps=[app("a")], outcomes=[outcome("a", date(2026, 5, 1), 100)])
    found = retirement.retirement_findings(f, config())
    assert found.empty and list(found.columns) == retirement.FINDING_COLUMNS
    assert list(retirement.candidates(found).columns) == retirement.CANDIDATE_COLUMNS
    assert retirement.retirement_findings(facts(), config()).empty


def test_thresholds_come_from_config():
    f = facts(apps=[app("a")], costs=[cost("a", date(2026, 6, 30), 1)], outcomes=[outcome("a", date(2026, 2, 1), 100)])
    assert ("a", "underwater") not in fired(f)[0]  # six months: 100 - 1 > 0
    assert ("a", "underwater") in fired(f, config("[rules]\nunderwater_months = 2\n"))[0]  # May..Jun: -1


def test_every_rule_on_one_app_with_json_numbers():
    f = facts(
        apps=[app("z", owner=None)],
        costs=[cost("z", date(2026, 6, 20), 600)],  # in the zombie window, no requests at all
        outcomes=[outcome("z", date(2026, 2, 1), 1000), outcome("z", date(2026, 5, 1), 100)],
        maintenance=[work("z", date(2026, 5, 5), 10)],  # 10 h x 100 = 1,000 people cost
        uptime=[uptime("z", date(2026, 4, 2), 0.5), uptime("z", date(2026, 5, 2), 0.5)],
    )
    hits, found = fired(f)
    assert hits == {("z", r) for r in retirement.RULES}
    numbers = dict(zip(found["rule"], found["numbers"], strict=True))
    assert numbers["underwater"]["net"] == 1100 - 600 - 1000
    assert numbers["decaying"]["drop"] == 0.9
    assert numbers["maintenance_sink"]["share"] == round(1000 / 1100, 4)
    assert numbers["unreliable"]["availability"] == {"2026-04": 0.5, "2026-05": 0.5}
    assert numbers["zombie"]["cost"] == 600
    json.loads(json.dumps(numbers))
    assert set(found["annual_savings"]) == {(600 + 1000) * 4}

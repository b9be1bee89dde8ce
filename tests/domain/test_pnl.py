import math
from datetime import date

import pytest

from portfolio import pnl
from portfolio.periods import Period
from portfolio.records import UNALLOCATED

from .build import app, config, cost, facts, outcome, work

Q1 = Period(date(2026, 1, 1), date(2026, 3, 31))


def row(frame, app_id):
    rows = frame[frame["app_id"] == app_id]
    assert len(rows) == 1, f"{app_id}: {len(rows)} rows"
    return rows.iloc[0]


def test_worked_example_ten_million_saved_for_three_million():
    """DESIGN.md: saves $10M of losses (cost avoidance) and costs $3M to build and run -> net +$7M."""
    f = facts(
        apps=[app("anomaly", launched=date(2026, 1, 1))],
        outcomes=[outcome("anomaly", date(2026, 2, 1), 10_000_000, attribution=1.0)],
        costs=[cost("anomaly", date(2026, 1, 10), 1_500_000), cost("anomaly", date(2026, 3, 10), 500_000, "vendor")],
        maintenance=[work("anomaly", date(2026, 2, 3), 10_000, "improvement")],  # 10,000 h x $100 = $1M
    )
    r = row(pnl.app_pnl(f, config(), Q1), "anomaly")
    assert r["cost_avoidance"] == 10_000_000 and r["revenue_capture"] == 0
    assert (r["infra_cost"], r["vendor_cost"], r["other_cost"], r["people_cost"]) == (1_500_000, 500_000, 500_000, 1_000_000)
    assert r["cost"] == 3_000_000
    assert r["net"] == 7_000_000
    assert round(r["roi"], 2) == 2.33
    # issue 10: no opening figures in the config, so no payback month is claimed and the
    # cumulative net is labelled with the month it counts from
    assert r["payback_month"] is None and r["cumulative_since"] == "2026-01"
    assert r["cumulative_net"] == 7_000_000


@pytest.mark.parametrize(
    "amount, attribution, low, high, value, value_low, value_high",
    [
        pytest.param(1000, 1.0, None, None, 1000, 1000, 1000, id="no-bounds-are-the-value"),
        pytest.param(1000, 0.5, 800, None, 500, 400, 500, id="half-attributed-low-bound"),
        pytest.param(1000, 0.25, 600, 2000, 250, 150, 500, id="both-bounds-attributed"),
        pytest.param(1000, None, None, 1200, 1000, 1000, 1200, id="missing-attribution-is-one"),
        pytest.param(1000, 1.5, None, None, 1000, 1000, 1000, id="attribution-clipped-to-one"),
        pytest.param(1000, -0.2, None, None, 0, 0, 0, id="negative-attribution-clipped-to-zero"),
        pytest.param(1000, 1.0, 1100, 900, 1000, 1000, 1000, id="inverted-bounds-still-bracket-value"),
    ],
)
def test_attribution_and_bounds(amount, attribution, low, high, value, value_low, value_high):
    f = facts(apps=[app("a")], outcomes=[outcome("a", date(2026, 2, 1), amount, attribution=attribution, low=low, high=high)])
    r = row(pnl.monthly_pnl(f, config()), "a")
    assert (r["value"], r["value_low"], r["value_high"]) == pytest.approx((value, value_low, value_high))


def test_value_split_by_kind_and_evidence():
    f = facts(
        apps=[app("a", value_kind="both")],
        outcomes=[
            outcome("a", date(2026, 2, 1), 300, "revenue_capture", evidence="experiment"),
            outcome("a", date(2026, 2, 1), 200, "cost_avoidance", evidence="estimate", attribution=0.5),
            outcome("a", date(2026, 3, 1), 50, "cost_avoidance", evidence="observational", source="other"),
        ],
    )
    r = row(pnl.app_pnl(f, config(), Q1), "a")
    assert (r["revenue_capture"], r["cost_avoidance"], r["value"]) == (300, 150, 450)
    assert (r["value_experiment"], r["value_observational"], r["value_estimate"]) == (300, 50, 100)
    ev = pnl.value_by_evidence(f, config(), Q1)
    got = {(k, e): v for k, e, v in zip(ev["kind"], ev["evidence"], ev["value"], strict=True)}
    assert got == {("revenue_capture", "experiment"): 300, ("cost_avoidance", "estimate"): 100,
                   ("cost_avoidance", "observational"): 50}  # fmt: skip
    assert set(ev["team"]) == {"ml"}


@pytest.mark.parametrize(
    "team, hours, booked_people, people_cost",
    [
        pytest.param("ml", 12, 0, 1200, id="ml-team-rate-100"),
        pytest.param("data", 12, 0, 600, id="data-team-rate-50"),
        pytest.param("nobody", 12, 0, 1200, id="unknown-team-default-rate-100"),
        pytest.param("data", 10, 300, 800, id="people-cost-records-add-to-hours"),
    ],
)
def test_people_cost_is_hours_times_team_rate(team, hours, booked_people, people_cost):
    costs = [cost("a", date(2026, 2, 2), booked_people, "people")] if booked_people else []
    f = facts(apps=[app("a", team)], maintenance=[work("a", date(2026, 2, 2), hours)], costs=costs)
    r = row(pnl.monthly_pnl(f, config()), "a")
    assert r["people_cost"] == people_cost
    assert r["maintenance_hours"] == hours
    assert r["cost"] == people_cost
    assert r["month"] == date(2026, 2, 1)


def test_unallocated_row_and_columns_sum_to_the_bill():
    f = facts(
        apps=[app("a"), app("b", "data")],
        costs=[
            cost("a", date(2026, 2, 1), 100.10),
            cost("a", date(2026, 2, 2), 20.20, "vendor"),
            cost("b", date(2026, 2, 3), 5.05, "other"),
            cost(UNALLOCATED, date(2026, 2, 4), 30.30),
            cost(UNALLOCATED, date(2026, 2, 5), 1.01, "other"),
        ],
        billing_totals=[{"source": "bill", "billing_period": "2026-02", "currency": "USD", "total": 156.66}],
    )
    monthly = pnl.monthly_pnl(f, config())
    assert list(monthly.columns) == pnl.MONTHLY_COLUMNS
    shared = row(monthly, UNALLOCATED)
    assert shared["team"] == "_shared"
    assert (shared["infra_cost"], shared["other_cost"], shared["cost"]) == pytest.approx((30.30, 1.01, 31.31))
    assert row(monthly, "a")["other_cost"] == pytest.approx(20.20)  # vendor is part of other_cost
    assert row(monthly, "a")["vendor_cost"] == pytest.approx(20.20)
    assert row(monthly, "b")["other_cost"] == pytest.approx(5.05)
    spend = monthly["infra_cost"] + monthly["other_cost"]
    assert spend.sum() == pytest.approx(156.66)
    assert (monthly["cost"] == monthly["infra_cost"] + monthly["other_cost"] + monthly["people_cost"]).all()
    rec = pnl.reconciliation(f)
    r = rec.iloc[0]
    assert (r["allocated"], r["unallocated"], r["recorded"], r["billed"]) == pytest.approx((125.35, 31.31, 156.66, 156.66))
    assert r["ok"] is True and r["difference"] == 0 and r["status"] == "ok"
    per_app = pnl.app_pnl(f, config(), Q1)
    assert UNALLOCATED in set(per_app["app_id"])
    assert per_app["cost"].sum() == pytest.approx(156.66)


def test_unallocated_row_absent_without_shared_cost():
    f = facts(apps=[app("a")], costs=[cost("a", date(2026, 2, 1), 10)])
    assert UNALLOCATED not in set(pnl.app_pnl(f, config(), Q1)["app_id"])


@pytest.mark.parametrize(
    "bill_rows, cost_rows, expected",
    [
        pytest.param([("bill", "2026-02", "USD", 100.00)], [("a", date(2026, 2, 3), 60.0, "2026-02"), (UNALLOCATED, date(2026, 2, 4), 40.0, "2026-02")],
                     [("bill", "2026-02", 60.0, 40.0, 100.0, 100.0, 0.0, True, "ok")], id="ok"),
        pytest.param([("bill", "2026-02", "USD", 100.00)], [("a", date(2026, 2, 3), 60.0, "2026-02"), (UNALLOCATED, date(2026, 2, 4), 39.99, "2026-02")],
                     [("bill", "2026-02", 60.0, 39.99, 99.99, 100.0, -0.01, False, "mismatch")], id="mismatch-by-a-cent"),
        pytest.param([("bill", "2026-03", "USD", 60.0)], [("a", date(2026, 2, 27), 60.0, "2026-03")],
                     [("bill", "2026-03", 60.0, 0.0, 60.0, 60.0, 0.0, True, "ok")], id="billing-period-not-day"),
        pytest.param([], [("a", date(2026, 2, 27), 60.0, None)],
                     [("bill", "2026-02", 60.0, 0.0, 60.0, math.nan, math.nan, None, "no bill total")], id="no-bill-uses-month-of-day"),
        pytest.param([("bill", "2026-04", "USD", 70.0)], [],
                     [("bill", "2026-04", 0.0, 0.0, 0.0, 70.0, -70.0, False, "mismatch")], id="bill-without-rows"),
    ],
)  # fmt: skip
def test_reconciliation(bill_rows, cost_rows, expected):
    f = facts(
        apps=[app("a")],
        costs=[cost(a, d, amt, billing_period=bp) for a, d, amt, bp in cost_rows],
        billing_totals=[{"source": s, "billing_period": p, "currency": c, "total": t} for s, p, c, t in bill_rows],
    )
    rec = pnl.reconciliation(f)
    assert list(rec.columns) == pnl.RECONCILIATION_COLUMNS
    got = list(rec[["source", "billing_period", "allocated", "unallocated", "recorded", "billed", "difference", "ok", "status"]].itertuples(index=False, name=None))
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        assert g[:2] == e[:2] and g[7:] == e[7:]
        assert g[2:7] == pytest.approx(e[2:7], nan_ok=True)


def test_costs_in_another_currency_are_excluded_and_reported():
    f = facts(apps=[app("a")], costs=[cost("a", date(2026, 2, 1), 100), cost("a", date(2026, 2, 2), 70, currency="EUR"),
                                      cost("a", date(2026, 2, 3), 30, currency="EUR", service="x")])  # fmt: skip
    assert row(pnl.monthly_pnl(f, config()), "a")["cost"] == 100
    issues = pnl.currency_issues(f, config())
    assert list(issues.itertuples(index=False, name=None)) == [("bill", "EUR", 100.0, 2)]


def test_run_rate_is_trailing_three_full_months_times_four():
    f = facts(
        apps=[app("a")],
        costs=[cost("a", date(2026, 3, 31), 5000), cost("a", date(2026, 4, 1), 100), cost("a", date(2026, 5, 15), 200),
               cost("a", date(2026, 6, 30), 300), cost("a", date(2026, 7, 14), 1000), cost("a", date(2026, 7, 15), 99999)],
        outcomes=[outcome("a", date(2026, 5, 1), 900), outcome("a", date(2026, 7, 1), 5000)],
    )  # fmt: skip
    p = Period(date(2026, 1, 1), date(2026, 7, 14))
    r = row(pnl.app_pnl(f, config(), p), "a")
    assert r["run_rate_cost"] == (100 + 200 + 300) * 4
    assert r["run_rate_value"] == 900 * 4
    assert r["run_rate_net"] == (900 - 600) * 4
    # the day after the last complete day (today) is not counted
    assert r["cost"] == 5000 + 100 + 200 + 300 + 1000


@pytest.mark.parametrize(
    "monthly_net, launched, payback",
    [
        pytest.param([-300, 100, 150, 100], date(2026, 1, 1), date(2026, 4, 1), id="pays-back-in-april"),
        pytest.param([-300, 100, 150, 50], date(2026, 1, 1), date(2026, 4, 1), id="exactly-zero-counts"),
        pytest.param([-300, 100, 150, 49], date(2026, 1, 1), None, id="never"),
        pytest.param([-300, 100, 150, 100], date(2026, 2, 1), date(2026, 2, 1), id="cost-before-launch-ignored"),
    ],
)
def test_payback_month(monthly_net, launched, payback):
    outcomes, costs = [], []
    for i, net in enumerate(monthly_net):
        month = date(2026, 1 + i, 1)
        if net >= 0:
            outcomes.append(outcome("a", month, net))
        else:
            costs.append(cost("a", month, -net))
    f = facts(apps=[app("a", launched=launched)], outcomes=outcomes, costs=costs)
    # issue 10: a payback month is claimed only from launch, i.e. with opening figures (build_cost 0 here)
    cfg = config(f'[[apps]]\nid = "a"\nteam = "ml"\nlaunched = {launched.isoformat()}\nbuild_cost = 0\n')
    r = row(pnl.app_pnl(f, cfg, Period(date(2026, 1, 1), date(2026, 6, 30))), "a")
    assert r["payback_month"] == payback and r["cumulative_since"] == "launch"
    assert row(pnl.app_pnl(f, config(), Period(date(2026, 1, 1), date(2026, 6, 30))), "a")["payback_month"] is None
    expected_cum = sum(n for i, n in enumerate(monthly_net) if date(2026, 1 + i, 1) >= launched)
    assert r["cumulative_net"] == expected_cum


def test_previous_period_and_unit_economics():
    f = facts(
        apps=[app("a")],
        costs=[cost("a", date(2025, 11, 5), 400), cost("a", date(2026, 2, 5), 1000)],
        outcomes=[outcome("a", date(2025, 12, 1), 1000), outcome("a", date(2026, 3, 1), 3000)],
        usage=[{"source": "p", "app_id": "a", "day": date(2026, 2, 1), "metric": "requests", "value": 20_000},
               {"source": "p", "app_id": "a", "day": date(2026, 2, 1), "metric": "predictions", "value": 7}],
        uptime=[{"source": "p", "app_id": "a", "day": date(2026, 2, d), "availability": a} for d, a in ((1, 0.98), (2, 1.0))],
    )  # fmt: skip
    r = row(pnl.app_pnl(f, config(), Q1), "a")
    assert (r["value"], r["cost"], r["net"]) == (3000, 1000, 2000)
    assert (r["prev_value"], r["prev_cost"], r["prev_net"], r["net_change"]) == (1000, 400, 600, 1400)
    assert r["requests"] == 20_000
    assert r["cost_per_1k_requests"] == pytest.approx(50.0)
    assert r["value_per_request"] == pytest.approx(0.15)
    assert r["availability"] == pytest.approx(0.99) and r["slo"] == 0.99
    k = pnl.kpis(f, config(), Q1)
    assert (k["value"], k["cost"], k["net"], k["roi"]) == (3000, 1000, 2000, 2.0)
    assert (k["prev_value"], k["prev_cost"], k["prev_net"], k["prev_roi"]) == (1000, 400, 600, 1.5)
    assert k["apps"] == 1


def test_roi_is_nan_without_cost_and_months_only_with_facts():
    f = facts(apps=[app("a")], outcomes=[outcome("a", date(2026, 2, 1), 10), outcome("a", date(2026, 8, 1), 10)])
    monthly = pnl.monthly_pnl(f, config())
    assert list(monthly["month"]) == [date(2026, 2, 1)]  # August is after the last complete day
    assert math.isnan(monthly["roi"].iloc[0])


def test_rollup_recomputes_roi_and_team_filter():
    f = facts(
        apps=[app("a", value_kind="revenue_capture"), app("b"), app("c", "data")],
        outcomes=[outcome("a", date(2026, 1, 1), 300, "revenue_capture"), outcome("b", date(2026, 1, 1), 100),
                  outcome("c", date(2026, 1, 1), 50)],
        costs=[cost("a", date(2026, 1, 2), 100), cost("b", date(2026, 1, 2), 100), cost("c", date(2026, 1, 2), 100),
               cost(UNALLOCATED, date(2026, 1, 2), 10)],
    )  # fmt: skip
    frame = pnl.app_pnl(f, config(), Q1)
    by_team = pnl.rollup(frame, "team").set_index("team")
    assert by_team.loc["ml", "value"] == 400 and by_team.loc["ml", "cost"] == 200 and by_team.loc["ml", "apps"] == 2
    assert by_team.loc["ml", "roi"] == 1.0  # (400 - 200) / 200, not the mean of 2.0 and 0.0
    assert by_team.loc["data", "roi"] == -0.5
    assert by_team.loc["_shared", "cost"] == 10
    by_kind = pnl.rollup(frame, "value_kind").set_index("value_kind")
    assert by_kind.loc["revenue_capture", "net"] == 200 and by_kind.loc["cost_avoidance", "net"] == -50
    only_data = pnl.app_pnl(f, config(), Q1, team="data")
    assert list(only_data["app_id"]) == ["c"]
    assert pnl.net_range(f, config(), Q1, team="data") == {"net": -50.0, "net_low": -50.0, "net_high": -50.0}
    with pytest.raises(ValueError, match="rollup by"):
        pnl.rollup(frame, "owner")


def test_net_range_uses_value_bounds():
    f = facts(apps=[app("a")], outcomes=[outcome("a", date(2026, 1, 1), 1000, low=600, high=1500, attribution=0.5)],
              costs=[cost("a", date(2026, 1, 2), 200)])  # fmt: skip
    assert pnl.net_range(f, config(), Q1) == {"net": 300.0, "net_low": 100.0, "net_high": 550.0}


def test_apps_only_in_config_and_unknown_app_ids_keep_their_money():
    cfg = config('[[apps]]\nid = "cfg-only"\nname = "From config"\nteam = "data"\n')
    f = facts(costs=[cost("cfg-only", date(2026, 1, 2), 10), cost("ghost", date(2026, 1, 2), 7)])
    frame = pnl.app_pnl(f, cfg, Q1).set_index("app_id")
    assert frame.loc["cfg-only", "name"] == "From config" and frame.loc["cfg-only", "team"] == "data"
    # issue 10: an unregistered id is never a new app; its spend is unallocated (money is never dropped)
    assert "ghost" not in frame.index and frame.loc[UNALLOCATED, "cost"] == 7
    discovered = pnl.app_pnl(f, config('[[apps]]\nid = "cfg-only"\nteam = "data"\n', top="discover_apps = true\n"), Q1)
    discovered = discovered.set_index("app_id")
    assert discovered.loc["ghost", "team"] == "_unknown" and discovered.loc["ghost", "cost"] == 7


def test_retired_app_without_facts_is_left_out():
    f = facts(apps=[app("old", stage="retired"), app("live")], costs=[cost("live", date(2026, 1, 2), 1)])
    assert list(pnl.app_pnl(f, config(), Q1)["app_id"]) == ["live"]


def test_empty_input_gives_empty_frames_with_columns():
    f = facts()
    cfg = config()
    assert list(pnl.monthly_pnl(f, cfg).columns) == pnl.MONTHLY_COLUMNS
    assert list(pnl.app_pnl(f, cfg, Q1).columns) == pnl.APP_COLUMNS
    assert list(pnl.value_by_evidence(f, cfg, Q1).columns) == pnl.EVIDENCE_COLUMNS
    assert list(pnl.reconciliation(f).columns) == pnl.RECONCILIATION_COLUMNS
    assert list(pnl.currency_issues(f, cfg).columns) == pnl.CURRENCY_COLUMNS
    assert list(pnl.rollup(pnl.app_pnl(f, cfg, Q1), "team").columns)[:2] == ["team", "apps"]
    assert all(len(x) == 0 for x in (pnl.monthly_pnl(f, cfg), pnl.app_pnl(f, cfg, Q1), pnl.reconciliation(f)))
    k = pnl.kpis(f, cfg, Q1)
    assert (k["value"], k["cost"], k["apps"], k["candidates"]) == (0, 0, 0, 0) and math.isnan(k["roi"])


def test_results_follow_the_facts_not_a_stale_cache():
    cfg = config()
    first = facts(apps=[app("a")], costs=[cost("a", date(2026, 1, 2), 10)])
    out = pnl.monthly_pnl(first, cfg)
    out.loc[0, "cost"] = -1  # a caller mutating its copy changes nothing for the next caller
    assert pnl.monthly_pnl(first, cfg)["cost"].tolist() == [10]
    second = facts(apps=[app("a")], costs=[cost("a", date(2026, 1, 2), 20)])
    assert pnl.monthly_pnl(second, cfg)["cost"].tolist() == [20]
    del first, out
    third = facts(apps=[app("a")], costs=[cost("a", date(2026, 1, 2), 30)], maintenance=[work("a", date(2026, 1, 3), 1)])
    assert pnl.monthly_pnl(third, cfg)["cost"].tolist() == [130]
    cheaper = config()
    cheaper.teams["ml"].hourly_rate = 1.0  # same facts, another config: recomputed
    assert pnl.monthly_pnl(third, cheaper)["cost"].tolist() == [31]

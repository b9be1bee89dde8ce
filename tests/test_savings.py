"""Issue 13: value lost to downtime, plan versus actual, hard and soft value, leftover spend and
savings realised against projected — hand-computed, on both backends (facts written through the
sync writer into the ``engine`` fixture's database and read back)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from portfolio import config, plan, pnl, report, sync, verify
from portfolio.books import Books
from portfolio.facts import load_facts
from portfolio.records import App, CostRecord, MaintenanceRecord, OutcomeRecord, UptimeRecord

TODAY = date(2026, 7, 15)  # last complete day 2026-07-14; full months up to June 2026

CONFIG = """
currency = "USD"
default_hourly_rate = 100

[plan.business_case.ahead]
expected_annual_value = 100000
expected_annual_run_cost = 20000
build_cost = 50000
approved_by = "cfo@example.com"
approved_on = 2025-06-01

[plan.business_case.behind]
expected_annual_value = 200000
expected_annual_run_cost = 10000

[plan.assumptions.pilot-uplift]
app = "behind"
owner = "pm@example.com"
approver = "cfo@example.com"
expires = 2026-03-31

[plan.assumptions.unsigned]
app = "ahead"
kind = "revenue_capture"
owner = "pm@example.com"
"""


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _app(
    app_id: str, launched: date = date(2024, 1, 1), slo: float = 0.99, stage: str = "production",
    retired_on: date | None = None,
) -> App:
    return App(
        app_id=app_id,
        retired_on=retired_on,
        name=app_id.title(),
        team="ml",
        stage=stage,
        launched=launched,
        slo_availability=slo,
        source="",
    )


def _months(first: date, n: int) -> list[date]:
    out, d = [], first
    for _ in range(n):
        out.append(d)
        d = date(d.year + (d.month == 12), d.month % 12 + 1, 1)
    return out


def _facts(engine: Engine) -> Books:
    items: list[object] = [
        _app("ahead"),
        _app("behind"),
        # the inventory's retirement dates (as RETIRED below): the facts keep these apps' cost daily
        # around them (portfolio.facts reads the rest per month)
        _app("retired-a", stage="retired", retired_on=date(2026, 4, 1)),
        _app("retired-b", stage="retired", retired_on=date(2026, 6, 20)),
    ]
    year = _months(date(2025, 7, 1), 12)  # July 2025 .. June 2026: the plan's 12 full months
    for m in year:
        items.append(
            OutcomeRecord(
                source="",
                app_id="ahead",
                month=m,
                kind="cost_avoidance",
                amount=Decimal("10000"),
                evidence="experiment",
            )
        )
        items.append(
            CostRecord(
                source="", app_id="ahead", day=m, category="infra", service="compute", amount=Decimal("1500")
            )
        )
        items.append(
            OutcomeRecord(
                source="",
                app_id="behind",
                month=m,
                kind="cost_avoidance",
                amount=Decimal("5000"),
                evidence="estimate",
            )
        )
        items.append(
            CostRecord(
                source="", app_id="behind", day=m, category="infra", service="compute", amount=Decimal("2000")
            )
        )
    # downtime: "ahead" misses its 99% SLO in June 2026 (95%), meets it in May (99.5%)
    items += [
        UptimeRecord(source="", app_id="ahead", day=d, availability=0.95, samples=1440)
        for d in _days(date(2026, 6, 1), date(2026, 6, 30))
    ]
    items += [
        UptimeRecord(source="", app_id="ahead", day=d, availability=0.995, samples=1440)
        for d in _days(date(2026, 5, 1), date(2026, 5, 31))
    ]
    # retired-a: 10.00 a day for the 90 days before 2026-04-01; after it, the GPU endpoint still bills 2.00 a day
    items += [CostRecord(source="", app_id="retired-a", day=d, category="infra", service="compute", amount=Decimal("10.00"))
              for d in _days(date(2026, 1, 1), date(2026, 3, 31))]  # fmt: skip
    items += [CostRecord(source="", app_id="retired-a", day=d, category="infra", service="gpu-endpoint", amount=Decimal("2.00"))
              for d in _days(date(2026, 4, 1), date(2026, 7, 14))]  # fmt: skip
    items.append(
        MaintenanceRecord(
            source="", app_id="retired-a", day=date(2026, 2, 2), ref="T-1", hours=36.0, kind="klo"
        )
    )
    items += [OutcomeRecord(source="", app_id="retired-a", month=m, kind="cost_avoidance", amount=Decimal("3000"), evidence="observational")
              for m in _months(date(2026, 1, 1), 3)]  # fmt: skip
    # retired-b: retired 2026-06-20, only 18 days after its grace period by the last complete day
    items += [CostRecord(source="", app_id="retired-b", day=d, category="infra", service="compute", amount=Decimal("5.00"))
              for d in _days(date(2026, 3, 22), date(2026, 6, 19))]  # fmt: skip
    sync.write_records(engine, "bill", items, connector_type="test")
    cfg = config.loads(CONFIG)
    return Books(load_facts(engine, today=TODAY), cfg)


RETIRED = [
    verify.Retired("retired-a", date(2026, 4, 1), approved_by="approver@example.com", projected_annual_savings=Decimal("18250"),
                   freed_hours_per_month=10.0, value_at_risk=Decimal("30000")),
    verify.Retired("retired-b", date(2026, 6, 20), projected_annual_savings=Decimal("1825")),
]  # fmt: skip


@pytest.fixture
def books(engine: Engine) -> Books:
    return _facts(engine)


def test_value_lost_to_downtime_is_value_times_shortfall(books: Books) -> None:
    loss = verify.downtime_loss(books)
    assert list(loss["app_id"]) == ["ahead"] and list(loss["month"]) == [date(2026, 6, 1)]
    row = loss.iloc[0]
    assert row["availability"] == pytest.approx(0.95)
    assert row["shortfall"] == pytest.approx(0.04)
    assert row["value_lost"] == pytest.approx(400.00, abs=1e-6)  # 10,000 x (0.99 - 0.95)
    assert verify.downtime_by_app(loss)["ahead"] == pytest.approx(400.0)
    assert verify.downtime_loss(books, end=date(2026, 5, 31)).empty  # May met the SLO


def test_plan_against_actual_variance_and_percent_of_plan(books: Books) -> None:
    frame = plan.plan_vs_actual(books).set_index("app_id")
    a = frame.loc["ahead"]
    assert a["months"] == 12
    assert a["actual_annual_value"] == Decimal("120000") and a["actual_annual_run_cost"] == Decimal("18000")
    assert a["value_variance"] == Decimal("20000") and a["value_pct_of_plan"] == pytest.approx(1.2)
    assert a["run_cost_variance"] == Decimal("-2000") and a["run_cost_pct_of_plan"] == pytest.approx(0.9)
    assert a["actual_annual_net"] == Decimal("102000") and a["expected_annual_net"] == Decimal("80000")
    assert a["net_variance"] == Decimal("22000") and a["status"] == "ahead of plan"
    assert a["approved_by"] == "cfo@example.com" and a["build_cost"] == Decimal("50000")
    b = frame.loc["behind"]
    assert b["actual_annual_value"] == Decimal("60000") and b["value_pct_of_plan"] == pytest.approx(0.3)
    assert b["net_variance"] == Decimal("36000") - Decimal("190000") and b["status"] == "behind plan"
    # the export foots: variance = actual - plan, net = value - run cost, to the cent
    rows = {r["app_id"]: r for r in report.exact_rows(plan.plan_vs_actual(books))}
    assert rows["behind"]["net_variance"] == Decimal("-154000.000000")


def test_hard_and_soft_value_and_flagged_assumptions(books: Books) -> None:
    period_apps = pnl.app_pnl(books.facts, books.cfg, _period(), books=books).set_index("app_id")
    assert (
        period_apps.loc["ahead", "value_hard"] == pytest.approx(120000)
        and period_apps.loc["ahead", "value_soft"] == 0
    )
    assert (
        period_apps.loc["behind", "value_soft"] == pytest.approx(60000)
        and period_apps.loc["behind", "value_hard"] == 0
    )
    k = pnl.kpis(books.facts, books.cfg, _period(), books=books)
    assert k["hard_value"] == pytest.approx(120000 + 9000) and k["soft_value"] == pytest.approx(60000)
    frame = plan.assumptions(books).set_index("assumption")
    assert frame.loc["pilot-uplift", "status"] == "expired"  # expired 2026-03-31, as of 2026-07-14
    assert frame.loc["pilot-uplift", "value"] == pytest.approx(60000)
    assert (
        frame.loc["unsigned", "status"] == "unapproved" and frame.loc["unsigned", "value"] == 0
    )  # no revenue rows
    assert set(plan.flagged_assumptions(books)["assumption"]) == {"pilot-uplift", "unsigned"}
    # the P&L export shows hard and soft, and they foot
    csv_rows = report.exact_rows(pnl.monthly_pnl(books.facts, books.cfg, books=books))
    assert all(r["value_hard"] == r["value_experiment"] + r["value_observational"] for r in csv_rows)


def _period() -> object:
    from portfolio.periods import Period

    return Period(date(2025, 7, 1), date(2026, 6, 30))


def test_leftover_spend_after_the_grace_period_per_service(books: Books) -> None:
    left = verify.leftover_spend(books, RETIRED)
    assert len(left) == 1
    row = left.iloc[0]
    assert (row["app_id"], row["service"], row["source"]) == ("retired-a", "gpu-endpoint", "bill")
    assert row["grace_until"] == date(2026, 4, 8)
    assert row["leftover_spend"] == pytest.approx(196.00)  # 2026-04-08 .. 2026-07-14: 98 days x 2.00
    assert (row["first_day"], row["last_day"], row["days"]) == (date(2026, 4, 8), date(2026, 7, 14), 98)
    assert row["daily_rate"] == pytest.approx(2.00)


def test_realised_against_projected_savings(books: Books) -> None:
    led = verify.retirement_ledger(books, RETIRED).set_index("app_id")
    a = led.loc["retired-a"]
    assert a["status"] == "verified" and (a["days_before"], a["days_after"]) == (90, 90)
    # before: 900.00 of spend + 36 h x 100 (default rate) = 4,500.00 over 90 days, x 365
    assert a["before_annual_cost"] == Decimal("18250")
    assert a["after_annual_cost"] == Decimal("730")  # 04-08 .. 07-06: 180.00 (the GPU endpoint) / 90 days x 365
    assert a["realised_annual_savings"] == Decimal("17520")
    assert a["savings_variance"] == Decimal("-730") and a["realised_pct"] == pytest.approx(0.96)
    assert a["freed_hours_per_month"] == pytest.approx(36 / 90 * 365 / 12)
    assert a["value_before_annual"] == Decimal("36000") and a["value_after_annual"] == Decimal("0")
    assert a["value_gone_annual"] == Decimal("36000")
    assert a["leftover_spend"] == Decimal("196")
    b = led.loc["retired-b"]
    assert b["status"] == "not enough history: 18 of 30 days after the grace period"
    assert b["realised_annual_savings"] is None and b["days_after"] == 18
    totals = verify.year_totals(verify.retirement_ledger(books, RETIRED), 2026)
    assert totals["retirements"] == 2 and totals["verified"] == 1 and totals["pending"] == 1
    assert totals["projected"] == Decimal("20075") and totals["realised"] == Decimal("17520")
    assert totals["projected_verified"] == Decimal("18250")


def test_business_case_file_errors_name_file_row_and_column(tmp_path: Path) -> None:
    path = tmp_path / "business_case.csv"
    path.write_text(
        "app_id,expected_annual_value,expected_annual_run_cost,approved_on\n"
        "ahead,100000,20000,2025-06-01\n"
        "ahead,1,2,2025-06-01\n"
        "nope,12x,,\n"
        "behind,,,\n"
        "behind,-5,10,31/12/2025\n",
        encoding="utf-8",
    )
    cfg = config.loads(f'[plan]\nbusiness_case_file = "{path.name}"\n', base_dir=str(tmp_path))
    with pytest.raises(plan.PlanError) as err:
        plan.business_cases(cfg, {"ahead", "behind"})
    text = str(err.value)
    assert "file business_case.csv, row 3, column 'app_id' (value 'ahead'): duplicate of row 2" in text
    assert "row 4, column 'app_id' (value 'nope'): no registered app 'nope'" in text
    assert "row 4, column 'expected_annual_value' (value '12x'): not a decimal number" in text
    assert "row 5, column 'expected_annual_value'" in text and "needs expected_annual_value or" in text
    assert "row 6, column 'expected_annual_value' (value '-5'): negative" in text
    assert "row 6, column 'approved_on' (value '31/12/2025'): not a date: expected YYYY-MM-DD" in text
    path.write_text("app_id,expected_value\nahead,1\n", encoding="utf-8")
    with pytest.raises(plan.PlanError, match="row 1, column 'expected_value'.*unknown column"):
        plan.business_cases(cfg)
    path.write_text("app_id,expected_annual_value\nahead,1\n", encoding="utf-8")
    both = config.loads(f'[plan]\nbusiness_case_file = "{path.name}"\n[plan.business_case.ahead]\nexpected_annual_value = 2\n',
                        base_dir=str(tmp_path))  # fmt: skip
    with pytest.raises(plan.PlanError, match="both in portfolio.toml"):
        plan.business_cases(both)
    assert plan.business_cases(cfg)["ahead"].expected_annual_value == Decimal("1")


def test_business_case_config_errors() -> None:
    with pytest.raises(config.ConfigError, match="plan.business_case.x: Value error, a business case needs"):
        config.loads("[plan.business_case.x]\napproved_by = 'me'\n")
    with pytest.raises(config.ConfigError, match="savings.grace_days"):
        config.loads("[savings]\ngrace_days = -1\n")


def test_the_ledger_reads_the_lifecycle_projection_frozen_at_approval(engine: Engine) -> None:
    """Propose, approve and record the stop with portfolio.lifecycle; the ledger takes the projected
    savings frozen in the proposal and measures the bill around the recorded day."""
    from datetime import UTC, datetime

    from portfolio import lifecycle

    cfg = config.loads(CONFIG)
    items: list[object] = [_app("old")]
    items += [CostRecord(source="", app_id="old", day=d, category="infra", service="endpoint", amount=Decimal("20.00"))
              for d in _days(date(2026, 1, 1), date(2026, 3, 31))]  # fmt: skip
    sync.write_records(engine, "bill", items, connector_type="test")
    prop = lifecycle.propose(engine, cfg, "old", "retire", "editor@example.com", "nobody calls it",
                             planned=date(2026, 4, 1), now=datetime(2026, 3, 1, 9, tzinfo=UTC))  # fmt: skip
    # frozen as of 2026-02-28: trailing full months Dec, Jan, Feb = 0 + 620 + 560, x 4
    assert prop.projected_annual_savings == Decimal("4720")
    lifecycle.approve(engine, prop.id, "approver@example.com", "ok", now=datetime(2026, 3, 2, 9, tzinfo=UTC))
    # no stage change recorded: a retiring app is retired from its planned date on
    books = Books(load_facts(engine, today=TODAY), cfg)
    (r,) = verify.retirements(books)
    assert (r.app_id, r.retired_on, r.approved_by) == ("old", date(2026, 4, 1), "approver@example.com")
    row = verify.retirement_ledger(books).iloc[0]
    assert row["projected_annual_savings"] == Decimal("4720")
    assert row["before_annual_cost"] == Decimal("7300")  # 1,800.00 over 2026-01-01 .. 03-31 (90 days) x 365
    assert row["after_annual_cost"] == Decimal("0") and row["realised_annual_savings"] == Decimal("7300")
    assert row["savings_variance"] == Decimal("2580") and row["status"] == "verified"
    assert verify.leftover_spend(books).empty  # the bill stopped


def test_the_demo_shows_every_part(demo_copy_url: str) -> None:
    """The demo (as of tests/conftest.py's DEMO_AS_OF, 2026-06-15): a retirement of last year whose bill
    stopped, a retired app whose GPU endpoint still bills, a proposal waiting, two business cases
    (ahead, behind), an expired assumption, value lost to downtime."""
    from portfolio import lifecycle, storage

    cfg = config.demo_config(demo_copy_url)
    books = Books(load_facts(storage.make_engine(demo_copy_url), today=date(2026, 6, 15)), cfg)
    led = verify.retirement_ledger(books).set_index("app_id")
    spam, visual = led.loc["spam-filter-v1"], led.loc["visual-search-v1"]
    assert spam["retired_on"] == date(2025, 12, 1) and spam["status"] == "verified"
    assert 0.85 < spam["realised_pct"] < 1.15 and spam["leftover_spend"] == 0  # the bill stopped
    assert visual["retired_on"] == date(2026, 4, 1) and visual["status"] == "verified"
    assert visual["realised_pct"] < 0.6 and visual["leftover_spend"] > 10_000  # the GPU endpoint still bills
    left = verify.leftover_spend(books)
    assert set(zip(left["app_id"], left["service"], strict=True)) == {("visual-search-v1", "gpu")}
    assert list(lifecycle.open_proposals(books.facts)["app_id"]) == ["email-send-time"]
    status = plan.plan_vs_actual(books).set_index("app_id")["status"].to_dict()
    assert status == {"route-optimizer": "ahead of plan", "support-copilot": "behind plan"}
    flagged = plan.flagged_assumptions(books)
    assert list(flagged["assumption"]) == ["send-time-uplift"] and list(flagged["status"]) == ["expired"]
    assert "kyc-doc-check" in set(verify.downtime_loss(books)["app_id"])  # the unreliable app
    t = verify.year_totals(verify.retirement_ledger(books), 2026)
    assert (t["retirements"], t["verified"]) == (1, 1) and t["realised"] < t["projected"]


def test_the_ledger_names_the_assumption_behind_an_estimate_row(engine: Engine) -> None:
    import pandas as pd

    from portfolio import ledger

    frame = pd.DataFrame(
        [["ahead", "2026-05", "cost_avoidance", "100", "estimate", "pilot-uplift"],
         ["ahead", "2026-06", "cost_avoidance", "100", "experiment", "pilot-uplift"],
         ["ahead", "2026-04", "cost_avoidance", "100", "estimate", "x" * 201]],
        columns=["app_id", "month", "kind", "amount", "evidence", "assumption"], dtype=object,
    )  # fmt: skip
    rows, errors = ledger.validate_ledger(frame)
    assert rows == []
    text = ledger.describe_errors(errors, file="value.csv")
    assert "file value.csv, row 3, column 'assumption' (value 'pilot-uplift'): an assumption stands behind estimate rows only" in text
    assert "row 4, column 'assumption'" in text and "at most 200" in text
    rows, errors = ledger.validate_ledger(frame.iloc[:1])
    assert errors.empty and rows[0].assumption == "pilot-uplift"
    # written through the sync writer, read back on this backend: the row's own name wins over the config's match
    cfg = config.loads(CONFIG)
    sync.write_records(engine, "bill", [_app("ahead"), _app("behind")], connector_type="test")
    ledger.commit(engine, [*rows, OutcomeRecord(source="", app_id="behind", month=date(2026, 5, 1), kind="cost_avoidance",
                                                 amount=Decimal("70"), evidence="estimate", assumption="ghost")])  # fmt: skip
    books = Books(load_facts(engine, today=TODAY), cfg)
    frame = plan.assumptions(books).set_index("assumption")
    assert frame.loc["pilot-uplift", "value"] == 100 and frame.loc["pilot-uplift", "app_id"] == "behind"
    assert frame.loc["ghost", "status"] == "undeclared" and frame.loc["ghost", "value"] == 70
    assert set(plan.flagged_assumptions(books)["assumption"]) == {"pilot-uplift", "ghost", "unsigned"}

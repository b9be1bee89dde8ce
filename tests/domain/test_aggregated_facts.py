"""Issue 15: the facts are aggregated in the database (SQL GROUP BY per app and month), and every
figure is the one the daily rows give.

Each test reads the same database twice, once aggregated (``load_facts``, what the CLI and the
dashboard read) and once row by row as stored (``aggregate=False``), on SQLite and PostgreSQL, and
compares the domain's answers: the monthly P&L to the cent, the reconciliation, the retirement
findings (the zombie rule's 30-day window is inside a split month), the maintenance views, the
freshness of each fact and the unregistered spend. The demo copy gets a few rows that make the
aggregation work for its keep: spend tagged with an unregistered app long ago, a second uptime
source on some days, GenAI rows (a bill and a gateway estimate on the same day) and a row after the
last complete day.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pandas as pd
import pytest
import sqlalchemy as sa

from portfolio import config, health, maintenance, periods, pnl, records, retirement, rollup, storage
from portfolio.books import Books
from portfolio.facts import Facts, load_app_facts, load_facts
from tests.conftest import DEMO_AS_OF

TODAY = date.fromisoformat(DEMO_AS_OF)
LAST = TODAY - timedelta(days=1)


def _extra_rows(url: str) -> None:
    engine = storage.make_engine(url)
    costs = storage.table_of(records.CostRecord)
    uptime = storage.table_of(records.UptimeRecord)
    with engine.begin() as conn:
        conn.execute(
            costs.insert(),
            [
                # unregistered spend in an old month and in the recent window
                {"source": "cloud", "app_id": "ghost-app", "day": date(2025, 3, 4), "category": "infra", "service": "gpu",
                 "amount": Decimal("100.125"), "currency": "USD", "billing_period": "2025-03", "model": "", "estimated": False},
                {"source": "cloud", "app_id": "ghost-app", "day": LAST - timedelta(days=2), "category": "infra",
                 "service": "gpu", "amount": Decimal("0.333333"), "currency": "USD", "billing_period": f"{LAST:%Y-%m}",
                 "model": "", "estimated": False},
                # a GenAI bill and a gateway's estimate for the same app and day, in an old month
                {"source": "openai", "app_id": "support-copilot", "day": date(2025, 10, 7), "category": "vendor",
                 "service": "openai", "amount": Decimal("12.50"), "currency": "USD", "billing_period": "2025-10-07",
                 "model": "gpt-4o", "estimated": False},
                {"source": "litellm", "app_id": "support-copilot", "day": date(2025, 10, 7), "category": "vendor",
                 "service": "litellm", "amount": Decimal("13.10"), "currency": "USD", "billing_period": "2025-10",
                 "model": "gpt-4o", "estimated": True},
                # spend in another currency (left out of every sum, listed)
                {"source": "cloud", "app_id": "card-fraud", "day": date(2025, 5, 5), "category": "infra", "service": "cpu",
                 "amount": Decimal("7.77"), "currency": "EUR", "billing_period": "2025-05", "model": "", "estimated": False},
                # a row dated after the last complete day: never counted
                {"source": "cloud", "app_id": "card-fraud", "day": TODAY + timedelta(days=1), "category": "infra",
                 "service": "cpu", "amount": Decimal("999"), "currency": "USD", "billing_period": f"{TODAY:%Y-%m}",
                 "model": "", "estimated": False},
            ],
        )  # fmt: skip
        conn.execute(
            uptime.insert(),
            [
                {"source": "probe2", "app_id": "kyc-doc-check", "day": LAST - timedelta(days=40 + i),
                 "availability": 0.5 + i / 100, "samples": 10}
                for i in range(5)
            ],
        )  # fmt: skip
        # rows written by hand, past the writers that keep the monthly rollups: the check says so
        out_of_step = rollup.differences(conn)
        assert any("costrecord of source 'cloud'" in d for d in out_of_step), out_of_step
        assert any("uptimerecord" in d for d in out_of_step), out_of_step
        rollup.rebuild(conn)
        assert rollup.differences(conn) == []


@pytest.fixture
def both(demo_copy_url: str) -> tuple[Facts, Facts, config.Config]:
    _extra_rows(demo_copy_url)
    cfg = config.demo_config(demo_copy_url)
    engine = storage.make_engine(demo_copy_url)
    aggregated = load_facts(engine, today=TODAY, cfg=cfg)
    daily = load_facts(engine, today=TODAY, cfg=cfg, aggregate=False)
    return aggregated, daily, cfg


def _same(a: pd.DataFrame, b: pd.DataFrame, keys: list[str]) -> None:
    a = a.sort_values(keys).reset_index(drop=True)
    b = b.sort_values(keys).reset_index(drop=True)
    assert list(a.columns) == list(b.columns)
    for col in a.columns:
        x, y = a[col], b[col]
        if pd.api.types.is_float_dtype(x) or pd.api.types.is_float_dtype(y):
            bad = ~((x.astype(float) - y.astype(float)).abs().fillna(0) < 1e-6) | (x.isna() != y.isna())
            assert not bad.any(), (col, x[bad].head(3).tolist(), y[bad].head(3).tolist(), a.loc[bad, keys].head(3).values.tolist())
        else:
            assert x.tolist() == y.tolist(), col


def test_far_fewer_rows_read(both: tuple[Facts, Facts, config.Config]) -> None:
    aggregated, daily, _ = both
    assert aggregated.split_at == LAST - timedelta(days=29) and daily.split_at is None
    for name in ("costs", "usage", "uptime"):
        assert len(getattr(aggregated, name)) * 5 < len(getattr(daily, name)), name
    # every aggregate says how many rows it sums: together, all of them
    assert aggregated.costs["rows"].sum() == len(daily.costs)
    assert aggregated.usage["rows"].sum() == len(daily.usage)


def test_monthly_pnl_and_reconciliation_to_the_cent(both: tuple[Facts, Facts, config.Config]) -> None:
    aggregated, daily, cfg = both
    a, d = pnl.monthly_pnl(aggregated, cfg), pnl.monthly_pnl(daily, cfg)
    assert len(a) == len(d) > 0
    _same(a, d, ["app_id", "month"])
    ra, rd = pnl.reconciliation(aggregated, cfg), pnl.reconciliation(daily, cfg)
    _same(ra, rd, ["source", "billing_period", "currency"])
    assert rd["unregistered"].sum() == pytest.approx(100.458333)
    _same(pnl.currency_issues(aggregated, cfg), pnl.currency_issues(daily, cfg), ["source", "currency"])


def test_period_views_rules_and_maintenance_agree(both: tuple[Facts, Facts, config.Config]) -> None:
    aggregated, daily, cfg = both
    period = periods.default_period(TODAY)
    _same(pnl.app_pnl(aggregated, cfg, period), pnl.app_pnl(daily, cfg, period), ["app_id"])
    fa = retirement.retirement_findings(aggregated, cfg, include_snoozed=True)
    fd = retirement.retirement_findings(daily, cfg, include_snoozed=True)
    assert fa[["app_id", "rule", "reason"]].values.tolist() == fd[["app_id", "rule", "reason"]].values.tolist()
    assert {"zombie", "unreliable"} <= set(fd["rule"])
    _same(
        maintenance.maintenance_load(aggregated, cfg, period), maintenance.maintenance_load(daily, cfg, period), ["app_id"]
    )


def test_freshness_and_unregistered_keep_their_days_and_counts(both: tuple[Facts, Facts, config.Config]) -> None:
    aggregated, daily, cfg = both
    _same(health.freshness(aggregated), health.freshness(daily), ["app_id"])
    ua, ud = Books(aggregated, cfg).unregistered_spend(), Books(daily, cfg).unregistered_spend()
    _same(ua, ud, ["tag_value", "currency"])
    ghost = ud.set_index("tag_value").loc["ghost-app"]
    assert (ghost["rows"], ghost["first_day"], ghost["last_day"]) == (2, date(2025, 3, 4), LAST - timedelta(days=2))


def test_the_app_page_reads_one_app_daily(demo_copy_url: str) -> None:
    engine = storage.make_engine(demo_copy_url)
    one = load_app_facts(engine, "churn-predictor", today=TODAY)
    assert set(one.costs["app_id"]) == {"churn-predictor"} and set(one.usage["app_id"]) == {"churn-predictor"}
    with engine.connect() as conn:
        t = storage.table_of(records.UsageRecord)
        stored = conn.execute(sa.select(sa.func.count()).select_from(t).where(t.c.app_id == "churn-predictor")).scalar()
    assert len(one.usage) == stored and one.usage["day"].nunique() > 300  # daily, every row
    assert len(one.apps) > 1  # the inventory stays whole

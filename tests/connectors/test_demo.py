"""The demo connector: a deterministic, realistic portfolio in which every retirement rule fires.

The portfolio is synced once per module through the real sync into a real database (a SQLite file,
or PostgreSQL on the suite's PostgreSQL pass), then read back with load_facts row by row as stored
(``aggregate=False``), so these tests see the connector's own daily rows; that the aggregated read
gives the same figures is tests/domain/test_aggregated_facts.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from connectors import demo
from connectors.base import Replace, Rows
from portfolio import config, genai, pnl, records, retirement, storage, sync
from portfolio.books import Books
from portfolio.config import SettingsError
from portfolio.facts import Facts, load_facts

AS_OF = date(2026, 11, 23)
LAST = AS_OF - timedelta(days=1)
WINDOW_START = date(2024, 12, 1)  # 24 calendar months ending in November 2026
TABLES = (
    records.App,
    records.CostRecord,
    records.UsageRecord,
    records.UptimeRecord,
    records.OutcomeRecord,
    records.MaintenanceRecord,
    records.BillingTotal,
    records.Decision,
    records.LifecycleEvent,  # issue 13: the demo's lifecycle trail
)

#: the apps built to trip one rule each (the zombie also runs underwater and has lost its value)
RULE_BREAKERS = {
    "zombie": {"legacy-image-tagger"},
    "underwater": {"email-send-time", "legacy-image-tagger"},
    "decaying": {"promo-uplift", "legacy-image-tagger"},
    "maintenance_sink": {"eta-predictor"},
    "unreliable": {"kyc-doc-check"},
    "orphaned": {"social-sentiment", "warehouse-slotting"},
}
WINNERS = ("search-ranking", "card-fraud", "demand-forecast", "churn-predictor", "support-copilot", "credit-risk-score")


def demo_cfg(url: str, **params: Any) -> config.Config:
    """The embedded demo config with extra params for the demo connector."""
    cfg = config.demo_config(url)
    lines = [f"{k} = {v!r}" for k, v in {"as_of": AS_OF.isoformat(), **params}.items()]
    conn = config.loads("[connectors.demo]\ntype = 'demo'\n" + "\n".join(lines)).connectors["demo"]
    conn.apps = cfg.apps
    cfg.connectors["demo"] = conn
    return cfg


def table_rows(engine: Engine, model: type) -> list[tuple[Any, ...]]:
    """Every row of a table without its surrogate id, sorted: for before/after comparisons."""
    frame = storage.read_frame(engine, model)
    if "id" in frame.columns and "id" not in model.NATURAL_KEY:  # type: ignore[attr-defined]
        frame = frame.drop(columns="id")
    frame = frame.astype(object).where(frame.notna(), None)  # NaN != NaN would make equal tables differ
    return sorted(frame.itertuples(index=False, name=None), key=repr)


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            m.__name__: conn.execute(sa.select(sa.func.count()).select_from(storage.table_of(m))).scalar_one()
            for m in TABLES
        }


@pytest.fixture(scope="module")
def synced(make_db_url: Callable[[str], str]) -> Iterator[tuple[config.Config, Facts, dict[str, pd.DataFrame]]]:
    """The demo synced once (24 months as of AS_OF); its facts row by row as stored (load_facts aggregate=False), plus raw frames."""
    url = make_db_url("demo")
    cfg = demo_cfg(url)
    engine = storage.make_engine(url)
    outcome = sync.sync(cfg, engine)
    assert [r.status for r in outcome.runs] == ["success"], outcome.runs[0].error
    facts = load_facts(engine, today=AS_OF, aggregate=False)  # the connector's daily rows as stored
    raw = {m.__name__: storage.read_frame(engine, m) for m in (records.CostRecord, records.BillingTotal)}
    storage.dispose_all()
    yield cfg, facts, raw


# ----------------------------------------------------------------------------- the portfolio


def test_inventory_is_a_realistic_portfolio(synced: tuple[config.Config, Facts, Any]) -> None:
    cfg, facts, _ = synced
    apps = facts.apps.set_index("app_id")
    assert len(apps) >= 20
    assert set(apps.team) == set(cfg.teams), "every team the apps name is configured in demo.toml, and vice versa"
    assert set(apps.stage) == {"pilot", "production", "retired"}
    assert set(apps.value_kind) == set(records.VALUE_KINDS)
    assert apps.owner.isna().loc["social-sentiment"]
    assert apps.drop(index="social-sentiment").owner.str.fullmatch(r"[a-z.]+@example\.com").all()
    assert apps.sponsor.notna().all() and apps.description.notna().all()
    assert ((apps.slo_availability >= 0.99) & (apps.slo_availability < 1)).all()
    launched_in_window = apps[apps.launched > WINDOW_START]
    assert {"price-elasticity", "support-copilot", "ticket-router"} <= set(launched_in_window.index)
    assert (facts.apps.source == "demo").all()


@pytest.mark.parametrize(
    ("rule", "expected"),
    [pytest.param(rule, apps, id=rule) for rule, apps in RULE_BREAKERS.items()],
)
def test_every_rule_flags_its_app(synced: tuple[config.Config, Facts, Any], rule: str, expected: set[str]) -> None:
    cfg, facts, _ = synced
    findings = retirement.retirement_findings(facts, cfg)
    flagged = set(findings.loc[findings.rule == rule, "app_id"])
    assert flagged == expected
    assert findings.loc[findings.rule == rule, "snoozed_until"].isna().all(), "no decision snoozes a rule-breaker"


def test_winners_and_retired_apps_trigger_nothing(synced: tuple[config.Config, Facts, Any]) -> None:
    cfg, facts, _ = synced
    everything = retirement.retirement_findings(facts, cfg, include_snoozed=True)
    flagged = set(everything.app_id)
    clean = set(facts.apps.app_id) - flagged
    assert set(WINNERS) <= clean
    assert "spam-filter-v1" in clean  # retired apps are never flagged
    assert flagged == set().union(*RULE_BREAKERS.values())
    assert len(clean) >= 12


def test_data_ends_at_the_last_complete_day_and_starts_at_launch(synced: tuple[config.Config, Facts, Any]) -> None:
    _, facts, _ = synced
    launched = facts.apps.set_index("app_id").launched
    for name in ("costs", "usage", "uptime", "maintenance"):
        frame = getattr(facts, name)
        assert frame.day.max() <= LAST, name
        apps = frame[frame.app_id != records.UNALLOCATED]
        first = apps.groupby("app_id").day.min()
        assert (first >= launched[first.index]).all(), f"{name}: data before launch"
    for name in ("costs", "usage", "uptime"):
        assert getattr(facts, name).day.max() == LAST
        assert getattr(facts, name).day.min() == WINDOW_START
    # an app launched inside the window starts exactly on its launch day
    copilot = facts.usage[facts.usage.app_id == "support-copilot"]
    assert copilot.day.min() == launched["support-copilot"]
    # the retired app has no data after the month before its retirement
    retired = facts.costs[facts.costs.app_id == "spam-filter-v1"]
    assert retired.day.max() == date(2026, 4, 30)
    assert facts.outcomes.month.max() == date(2026, 11, 1)


def test_costs_reconcile_with_the_bill_to_the_cent(synced: tuple[config.Config, Facts, dict[str, pd.DataFrame]]) -> None:
    _, facts, raw = synced
    costs, bills = raw["CostRecord"], raw["BillingTotal"]
    assert all(a == a.quantize(Decimal("0.01")) for a in costs.amount)
    # the LLM gateway's estimates are no bill lines: no billing period, never in the bill's total
    estimates = costs[costs.estimated.astype(bool)]
    assert len(estimates) > 300 and estimates.billing_period.isna().all() and set(estimates.service) == {"llm-gateway"}
    costs = costs[~costs.estimated.astype(bool)]
    assert (costs.billing_period == costs.day.map(lambda d: f"{d:%Y-%m}")).all()
    by_period: dict[str, Decimal] = {}
    for period, amount in zip(costs.billing_period, costs.amount, strict=True):
        by_period[period] = by_period.get(period, Decimal(0)) + amount
    lines = costs.groupby("billing_period").size()
    bill = bills.set_index("billing_period")
    assert len(bill) == 24
    assert bill.total.to_dict() == by_period
    assert (bill.lines == lines[bill.index]).all()
    rec = pnl.reconciliation(facts)
    assert len(rec) == 24 and rec.ok.astype(bool).all()


def test_cost_usage_uptime_content(synced: tuple[config.Config, Facts, Any]) -> None:
    _, facts, _ = synced
    costs = facts.costs
    assert set(costs.category) == {"infra", "vendor", "other"}
    assert {"compute", "gpu", "storage", "network"} <= set(costs[costs.category == "infra"].service)
    assert "llm-api" in set(costs[costs.category == "vendor"].service)
    shared = costs[costs.app_id == records.UNALLOCATED]
    assert shared.day.nunique() == (LAST - WINDOW_START).days + 1
    assert (costs.currency == "USD").all() and (costs.amount > 0).all()
    usage = facts.usage[facts.usage.model == ""]  # the model rows: test_llm_apps
    assert set(usage.metric) == {"requests", "predictions"}
    per_day = usage.groupby(["app_id", "day"]).metric.nunique()
    assert (per_day == 2).all()
    uptime = facts.uptime
    assert (uptime.samples == 1440).all()
    assert uptime.availability.between(0, 1).all()


def test_outcomes_and_maintenance_content(synced: tuple[config.Config, Facts, Any]) -> None:
    _, facts, _ = synced
    out = facts.outcomes
    assert set(out.kind) == set(records.OUTCOME_KINDS)
    assert set(out.evidence) == set(records.EVIDENCE)
    assert (out.attribution < 1).any() and (out.attribution == 1).any()
    assert ((out.low <= out.amount) & (out.amount <= out.high)).all()
    assert (out.month.map(lambda d: d.day) == 1).all()
    both = out[out.app_id == "credit-risk-score"].groupby("month").kind.nunique()
    assert (both == 2).all()
    m = facts.maintenance
    assert set(m.kind) == set(records.MAINTENANCE_KINDS)
    incidents = m[m.kind == "incident"]
    assert (incidents.incidents == 1).all() and incidents.ttr_hours.notna().all() and (incidents.ttr_hours > 0).all()
    assert (m[m.kind != "incident"].incidents == 0).all()
    assert m.ref.str.fullmatch(r"[A-Z]+-\d+").all()
    assert (m.url == "https://tracker.example.com/browse/" + m.ref).all()
    assert (m.hours > 0).all()


def test_decisions_have_stable_ids_and_leave_rule_breakers_awake(synced: tuple[config.Config, Facts, Any]) -> None:
    _, facts, _ = synced
    d = facts.decisions
    for decision_id, app_id in zip(d.id, d.app_id, strict=True):
        assert re.fullmatch(rf"demo-{re.escape(app_id)}-\d", decision_id)
    assert set(d.decision) == set(records.DECISIONS)
    breakers = set().union(*RULE_BREAKERS.values())
    awake = d[d.app_id.isin(breakers)]
    assert (awake.next_review.dropna() < AS_OF).all()
    assert {"search-ranking", "card-fraud"} <= set(d[d.next_review.notna() & (d.next_review >= AS_OF)].app_id)
    assert d.decided_at.map(lambda t: t.tzinfo is not None and t <= datetime.combine(AS_OF, datetime.min.time(), UTC)).all()


# ----------------------------------------------------------------------------- determinism and windows


def pulled(**params: Any) -> dict[str, Any]:
    """One pull, by kind: Rows frames by table name, record lists by class name, Replace markers."""
    since = params.pop("_since", None)
    cfg = demo_cfg("sqlite://", **params).connectors["demo"]
    out: dict[str, Any] = {"replace": []}
    for item in demo.pull(cfg, since):
        if isinstance(item, Rows):
            out[item.table.__name__] = item.frame
        elif isinstance(item, Replace):
            out["replace"].append(item)
        else:
            out.setdefault(type(item).__name__, []).append(item.model_dump())
    return out


def test_same_seed_same_portfolio_other_seed_other_numbers() -> None:
    a, b, c = pulled(months=3), pulled(months=3), pulled(months=3, seed=8)
    assert a["CostRecord"].equals(b["CostRecord"]) and a["OutcomeRecord"] == b["OutcomeRecord"]
    assert a["MaintenanceRecord"] == b["MaintenanceRecord"]
    assert not a["CostRecord"].amount.equals(c["CostRecord"].amount)
    assert [x["app_id"] for x in a["App"]] == [x["app_id"] for x in c["App"]]


def test_a_later_day_in_the_same_month_restates_nothing_already_there() -> None:
    early = pulled(months=2, as_of="2026-11-10")
    later = pulled(months=2, as_of="2026-11-15")
    for table in ("CostRecord", "UsageRecord", "UptimeRecord"):
        old = later[table][later[table].day < date(2026, 11, 10)].reset_index(drop=True)
        assert old.equals(early[table]), table
    new_days = sorted(set(later["UsageRecord"].day) - set(early["UsageRecord"].day))
    assert new_days == [date(2026, 11, d) for d in range(10, 15)]


@pytest.mark.parametrize(
    ("since", "start"),
    [
        pytest.param(None, date(2026, 9, 1), id="full"),
        pytest.param(datetime(2026, 11, 19, 6, 0, tzinfo=UTC), date(2026, 11, 19), id="incremental"),
        pytest.param(datetime(2020, 1, 1, tzinfo=UTC), date(2026, 9, 1), id="since-before-window"),
        pytest.param(datetime(2027, 1, 1, tzinfo=UTC), LAST, id="since-after-last-day"),
    ],
)
def test_replace_windows_cover_exactly_what_is_yielded(since: datetime | None, start: date) -> None:
    out = pulled(_since=since, months=3)
    windows = {(r.table.__name__, r.field): (r.start, r.end) for r in out["replace"]}
    for table in ("CostRecord", "UsageRecord", "UptimeRecord", "MaintenanceRecord"):
        assert windows[(table, "day")] == (start, LAST)
    assert windows[("OutcomeRecord", "month")] == (start.replace(day=1), date(2026, 11, 1))
    assert out["CostRecord"].day.min() == start and out["CostRecord"].day.max() == LAST
    assert min((r["day"] for r in out.get("MaintenanceRecord", [])), default=start) >= start
    assert min(r["month"] for r in out["OutcomeRecord"]) == start.replace(day=1)
    assert len(out["App"]) == len(demo.APPS)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        pytest.param({"as_of": "2026-13-01"}, "connectors.demo.as_of: input should be a valid date", id="bad-date"),
        pytest.param({"seed": "seven"}, "connectors.demo.seed: input should be a valid integer", id="seed-text"),
        pytest.param({"months": 0}, "connectors.demo.months: input should be greater than or equal to 1", id="months-zero"),
    ],
)
def test_bad_params_raise_a_clear_error(params: dict[str, Any], message: str) -> None:
    """Issue 12: bad settings are refused when portfolio.toml is loaded, by key, value not echoed."""
    with pytest.raises(SettingsError) as exc:
        demo_cfg("sqlite://", **params)
    assert str(exc.value).startswith(f"portfolio.toml: invalid connector settings\n  {message}")
    assert (exc.value.connector, exc.value.key) == ("demo", next(iter(params)))
    assert str(next(iter(params.values()))) not in str(exc.value).replace("1-12", "")


# ----------------------------------------------------------------------------- through sync


def test_sync_twice_same_rows(db_url: str) -> None:
    url = db_url
    cfg = demo_cfg(url, months=3)
    engine = storage.make_engine(url)
    first = sync.sync(cfg, engine).runs[0]
    before = {m.__name__: table_rows(engine, m) for m in TABLES}
    second = sync.sync(cfg, engine).runs[0]
    third = sync.sync(cfg, engine, full=True).runs[0]
    assert first.status == second.status == third.status == "success"
    assert first.rows_written == sum(len(v) for v in before.values())
    assert (second.rows_written, second.rows_deleted) == (0, 0)
    assert second.since is not None  # the second pull was incremental
    assert (third.rows_written, third.rows_deleted) == (0, 0)
    assert {m.__name__: table_rows(engine, m) for m in TABLES} == before


def test_bad_input_clear_error_nothing_lost(db_url: str) -> None:
    """A setting changed after the load (the dashboard edits a loaded config) is checked again by
    the pull: the run fails naming the key, and the data stays."""
    url = db_url
    engine = storage.make_engine(url)
    assert sync.sync(demo_cfg(url, months=2), engine).ok
    before = counts(engine)
    cfg = demo_cfg(url, months=2)
    assert cfg.connectors["demo"].model_extra is not None
    cfg.connectors["demo"].model_extra["as_of"] = "23/11/2026"
    run = sync.sync(cfg, engine).runs[0]
    assert run.status == "failed"
    assert run.error is not None and run.error.startswith("connectors.demo.as_of: input should be a valid date")
    assert "23/11/2026" not in run.error
    assert counts(engine) == before
    ledger = storage.read_frame(engine, records.SyncRun).sort_values("id")
    assert ledger.status.tolist() == ["success", "failed"]


def test_the_embedded_demo_config_syncs_on_postgres(postgres_url: str) -> None:
    """demo.toml as shipped (seed, schedule, rules at defaults) on PostgreSQL; two months keep it quick."""
    shipped = config.demo_config(postgres_url)
    assert shipped.connectors["demo"].get("seed") == 7 and shipped.connectors["demo"].type == "demo"
    assert shipped.rules == config.Rules()
    assert shipped.currency == "USD" and len(shipped.teams) >= 4 and not shipped.apps
    cfg = demo_cfg(postgres_url, months=2)
    engine = storage.make_engine(postgres_url)
    first, second = sync.sync(cfg, engine).runs[0], sync.sync(cfg, engine).runs[0]
    assert first.status == "success" and first.rows_written > 5_000
    assert second.rows_written == 0
    totals = storage.read_frame(engine, records.BillingTotal)
    costs = storage.read_frame(engine, records.CostRecord)
    for _, bill in totals.iterrows():
        assert sum(costs[costs.billing_period == bill.billing_period].amount, Decimal(0)) == bill.total


def test_llm_apps(synced: tuple[config.Config, Facts, Any]) -> None:
    """Issue 14: two LLM apps, one bought through an API behind a gateway (support-copilot), one
    self-hosted with an API overflow (contract-clauses): tokens per model, the gateway's estimates
    beside the bill (drift, some days flagged), self-hosted against API side by side; the P&L
    counts the bill, never the estimate too."""
    cfg, facts, raw = synced
    models = facts.usage[facts.usage.model != ""]
    assert set(models.app_id) == {"support-copilot", "contract-clauses"}
    assert set(models.metric) == {"input_tokens", "cached_input_tokens", "output_tokens", "requests"}
    assert set(zip(models.app_id, models.model, strict=True)) == {
        ("support-copilot", "gpt-4o-mini-2024-07-18"),
        ("contract-clauses", "meta-llama/Llama-3.1-8B-Instruct"),
        ("contract-clauses", "gpt-4o-mini-2024-07-18"),
    }
    costs = facts.costs
    llama = costs[costs.model == "meta-llama/Llama-3.1-8B-Instruct"]
    assert set(llama.category) == {"infra"} and set(llama.service) == {"gpu-llm"}
    # every model day with cost has its tokens, and the other way round
    cost_days = set(zip(costs[costs.model != ""].app_id, costs[costs.model != ""].day, strict=True))
    assert cost_days == set(zip(models.app_id, models.day, strict=True))
    drift = genai.drift(costs)
    assert set(drift.app_id) == {"support-copilot"} and 0 < drift.flagged.sum() < len(drift) / 4
    assert drift[~drift.flagged].drift.between(0, 0.05).all()
    # the P&L's vendor cost of support-copilot is the bill: the estimates are left out
    billed = costs[(costs.app_id == "support-copilot") & (costs.category == "vendor") & ~costs.estimated.astype(bool)]
    kept = genai.pnl_costs(costs)
    kept = kept[(kept.app_id == "support-copilot") & (kept.category == "vendor")]
    assert round(kept.amount.sum(), 2) == round(billed.amount.sum(), 2) > 0
    side = genai.hosting(facts.usage, costs)
    row = side[(side.scope == "app") & (side.key == "contract-clauses")].iloc[0]
    assert row.self_hosted_per_1m > row.api_per_1m > 0  # self-hosting at low volume is dearer per token
    # the app's own request count is its traffic: the model calls are not added to it
    books = Books(facts, cfg)
    own = facts.usage[(facts.usage.app_id == "contract-clauses") & (facts.usage.metric == "requests") & (facts.usage.model == "")]
    got = books.requests()
    assert got[got.app_id == "contract-clauses"].requests.sum() == own[own.day <= books.last_day].value.sum()


def test_app_usage_chart_leaves_tokens_to_the_tokens_section(synced: tuple[config.Config, Facts, Any]) -> None:
    """The App page's daily usage chart plots the app's own metrics; tokens (billions a day) and calls
    per model would flatten it and have their own section."""
    from portfolio.dashboard import views
    from portfolio.periods import Period

    cfg, facts, _ = synced
    view = views.app_view(facts, cfg, "contract-clauses", Period(WINDOW_START, LAST))
    assert set(view.usage.metric) == {"requests", "predictions"}

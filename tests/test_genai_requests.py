"""An app's requests are counted once in the P&L's unit economics (issue 14): a vendor's and a
gateway's count of the same model calls are one count, and model calls made while serving an app's
own requests are not more requests. Seeded in the database (both backends), read through Books."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy.engine import Engine

from portfolio import config, pnl, records, storage
from portfolio.books import Books
from portfolio.facts import load_facts

D1, D2, D3 = date(2026, 10, 5), date(2026, 10, 6), date(2026, 11, 2)
MINI = "gpt-4o-mini"


def usage(source: str, app: str, day: date, metric: str, value: float, model: str = "") -> records.UsageRecord:
    return records.UsageRecord(source=source, app_id=app, day=day, metric=metric, model=model, value=value)


def test_requests_counted_once(engine: Engine) -> None:
    with engine.begin() as conn:
        storage.upsert(conn, records.CostRecord, [
            records.CostRecord(source="oai", app_id="bot", day=D1, category="vendor", service=f"{MINI}, input",
                               amount=Decimal("1.00"), billing_period="2026-10", model=MINI),
            records.CostRecord(source="gw", app_id="bot", day=D1, category="vendor", service=MINI,
                               amount=Decimal("0.90"), model=MINI, estimated=True),
            records.CostRecord(source="gw", app_id="bot", day=D2, category="vendor", service=MINI,
                               amount=Decimal("0.80"), model=MINI, estimated=True),
        ])  # fmt: skip
        storage.upsert(conn, records.UsageRecord, [
            # bot, day 1: the vendor bills and counts 40 calls, the gateway estimates and counts the same 40
            usage("oai", "bot", D1, "input_tokens", 1000.0, MINI), usage("oai", "bot", D1, "requests", 40.0, MINI),
            usage("gw", "bot", D1, "input_tokens", 1000.0, MINI), usage("gw", "bot", D1, "requests", 40.0, MINI),
            # bot, day 2: only the gateway saw it: 30
            usage("gw", "bot", D2, "input_tokens", 800.0, MINI), usage("gw", "bot", D2, "requests", 30.0, MINI),
            # search, day 1: its own 500 requests (Prometheus) made 120 LLM calls: 500 requests, not 620
            usage("prom", "search", D1, "requests", 500.0), usage("oai", "search", D1, "requests", 120.0, MINI),
            usage("oai", "search", D1, "input_tokens", 9000.0, MINI),
            # search, day 2: its own count covers October (the facts hold it per month): 9 calls are not requests
            usage("oai", "search", D2, "requests", 9.0, MINI), usage("oai", "search", D2, "input_tokens", 90.0, MINI),
            # search in November: no own count: the 7 model calls are its traffic
            usage("oai", "search", D3, "requests", 7.0, MINI), usage("oai", "search", D3, "input_tokens", 70.0, MINI),
        ])  # fmt: skip
    cfg = config.loads(f'database_url = "{engine.url}"\n[[apps]]\nid = "bot"\nteam = "cx"\n[[apps]]\nid = "search"\nteam = "core"\n')
    books = Books(load_facts(engine), cfg)
    got = books.requests(end=D3).groupby("app_id", observed=True)["requests"].sum().to_dict()
    # by hand: bot = 40 (day 1, once) + 30 (day 2) = 70; search = 500 (October) + 7 (November) = 507
    assert got == {"bot": 70.0, "search": 507.0}


def test_estimates_are_no_bill_lines(engine: Engine) -> None:
    """One source bringing a bill and a gateway's estimates of it (the demo does): the bill
    reconciles with the billed rows alone, and the P&L counts the bill once."""
    with engine.begin() as conn:
        storage.upsert(conn, records.CostRecord, [
            records.CostRecord(source="demo", app_id="bot", day=D1, category="vendor", service="llm-api",
                               amount=Decimal("10.00"), billing_period="2026-10", model=MINI),
            records.CostRecord(source="demo", app_id="bot", day=D1, category="vendor", service="llm-gateway",
                               amount=Decimal("10.90"), model=MINI, estimated=True),
            records.CostRecord(source="demo", app_id="_unallocated", day=D1, category="infra", service="shared",
                               amount=Decimal("2.50"), billing_period="2026-10"),
        ])  # fmt: skip
        storage.upsert(conn, records.BillingTotal, [
            records.BillingTotal(source="demo", billing_period="2026-10", total=Decimal("12.50"), lines=2)
        ])
    cfg = config.loads(f'database_url = "{engine.url}"\n[[apps]]\nid = "bot"\nteam = "cx"\n')
    facts = load_facts(engine)
    rec = pnl.reconciliation(facts, cfg)
    assert rec[["source", "billing_period", "status"]].values.tolist() == [["demo", "2026-10", "ok"]]
    assert float(rec["recorded"].iloc[0]) == 12.50  # 10.00 billed + 2.50 shared; the 10.90 estimate is not added
    assert Books(facts, cfg).costs()["amount"].sum() == 12.50

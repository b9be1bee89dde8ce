"""Small builders of fact frames for the domain tests (record field names, money as numbers)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd

from portfolio.config import Config, loads
from portfolio.facts import Facts

#: as-of date of most tests: last complete day 2026-07-14, full months up to June 2026
TODAY = date(2026, 7, 15)

CONFIG = """
currency = "USD"
default_hourly_rate = 100
default_capacity_hours = 640

[teams.ml]
hourly_rate = 100
capacity_hours = 160

[teams.data]
hourly_rate = 50
capacity_hours = 100
"""


def config(extra: str = "", top: str = "") -> Config:
    """The test config; ``top`` holds top-level keys (they must come before the tables), ``extra`` tables."""
    return loads(top + CONFIG + extra)


def app(app_id: str, team: str = "ml", **kw: Any) -> dict[str, Any]:
    row = {
        "app_id": app_id, "name": app_id.title(), "team": team, "owner": "owner@example.com",
        "stage": "production", "value_kind": "cost_avoidance", "launched": date(2026, 6, 1),
        "slo_availability": 0.99, "review_every_days": 365,
    }  # fmt: skip
    row.update(kw)
    return row


def cost(app_id: str, day: date, amount: float, category: str = "infra", **kw: Any) -> dict[str, Any]:
    row = {"source": "bill", "app_id": app_id, "day": day, "category": category,
           "service": kw.pop("service", f"{category}-svc"), "amount": amount, "currency": "USD"}  # fmt: skip
    row.update(kw)
    return row


def outcome(app_id: str, month: date, amount: float, kind: str = "cost_avoidance", **kw: Any) -> dict[str, Any]:
    row = {"source": "ledger", "app_id": app_id, "month": month, "kind": kind, "amount": amount,
           "currency": "USD", "attribution": 1.0, "evidence": "experiment", "low": None, "high": None}  # fmt: skip
    row.update(kw)
    return row


def work(app_id: str, day: date, hours: float, kind: str = "klo", **kw: Any) -> dict[str, Any]:
    row = {"source": "tickets", "app_id": app_id, "day": day, "ref": kw.pop("ref", f"{app_id}-{day}-{kind}-{hours}"),
           "hours": hours, "kind": kind, "incidents": 0, "ttr_hours": None}  # fmt: skip
    row.update(kw)
    return row


def requests(app_id: str, day: date, value: float) -> dict[str, Any]:
    return {"source": "prom", "app_id": app_id, "day": day, "metric": "requests", "value": value}


def uptime(app_id: str, day: date, availability: float) -> dict[str, Any]:
    return {"source": "prom", "app_id": app_id, "day": day, "availability": availability, "samples": 1440}


def decision(app_id: str, decided: date, next_review: date | None, decision: str = "keep") -> dict[str, Any]:
    return {"id": f"{app_id}-{decided}", "app_id": app_id, "decision": decision, "decided_by": "lead",
            "rationale": "", "next_review": next_review,
            "decided_at": datetime(decided.year, decided.month, decided.day, 12, tzinfo=UTC)}  # fmt: skip


def days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def facts(today: date = TODAY, **rows: list[dict[str, Any]]) -> Facts:
    frames = {name: pd.DataFrame(r) for name, r in rows.items() if r is not None}
    return Facts.from_frames(today=today, **frames)


def stored(engine: Any, today: date = TODAY, **rows: list[dict[str, Any]]) -> Facts:
    """The same rows written to a real portfolio database (either backend) and read back as Facts."""
    from portfolio import records, storage
    from portfolio.facts import load_facts

    models = {"apps": records.App, "costs": records.CostRecord, "usage": records.UsageRecord,
              "uptime": records.UptimeRecord, "outcomes": records.OutcomeRecord,
              "maintenance": records.MaintenanceRecord, "decisions": records.Decision,
              "billing_totals": records.BillingTotal}  # fmt: skip
    with engine.begin() as conn:
        for name, items in rows.items():
            model = models[name]
            objs = [model(**{k: v for k, v in r.items() if v is not None or k in ("owner",)}) for r in items]
            if objs:
                storage.upsert(conn, model, objs)
    return load_facts(engine, today=today)

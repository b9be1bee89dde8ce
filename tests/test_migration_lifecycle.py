"""Migration 0005 (lifecycle): a database from before it upgrades with its apps and decisions intact
(retired_on empty, no lifecycle events: every app keeps its inventory stage), the LifecycleEvent
table takes events with exact money, and it downgrades."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import sqlalchemy as sa
from alembic import command

from portfolio import lifecycle, records, storage
from portfolio.facts import load_facts


def test_upgrade_keeps_apps_and_decisions_then_takes_events_and_downgrades(db_url: str) -> None:
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        command.upgrade(storage.alembic_config(conn), "0004")
        conn.execute(sa.text("INSERT INTO app (app_id, name, team, stage, value_kind, slo_availability, review_every_days, "
                             "cost_tags, source) VALUES ('old', 'Old', 'ml', 'retired', 'cost_avoidance', 0.99, 90, '', 'config')"))
        conn.execute(sa.text("INSERT INTO decision (id, app_id, decided_at, decision, decided_by, rationale) "
                             "VALUES ('d1', 'old', '2026-01-02 10:00:00', 'retire', 'jane', 'unused')"))
    with engine.begin() as conn:
        command.upgrade(storage.alembic_config(conn), "head")
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT app_id, stage, retired_on FROM app")).all() == [("old", "retired", None)]
        assert conn.execute(sa.text("SELECT id, decision FROM decision")).all() == [("d1", "retire")]
    facts = load_facts(engine, today=date(2026, 7, 1))
    assert lifecycle.current_stage(facts, "old", date(2026, 7, 1)) == "retired"
    (r,) = lifecycle.retirements(facts)
    assert (r.app_id, r.retired_on, r.source) == ("old", None, "inventory")  # no date known: not guessed
    with engine.begin() as conn:
        storage.upsert(conn, records.LifecycleEvent, [records.LifecycleEvent(
            id="p1", app_id="old", at=datetime(2026, 7, 1, 9, tzinfo=UTC), kind="proposal", actor="ann", action="keep",
            currency="USD", projected_annual_savings=Decimal("1234.56"), value_at_risk=Decimal("0.01"),
            net_effect=Decimal("1234.55"), freed_hours_per_year=12.5,
        )], insert_only=True)  # fmt: skip
    events = storage.read_frame(engine, records.LifecycleEvent)
    assert (events.iloc[0]["projected_annual_savings"], events.iloc[0]["net_effect"]) == (Decimal("1234.56"), Decimal("1234.55"))
    assert bool(events.iloc[0]["self_approved"]) is False
    with engine.begin() as conn:
        command.downgrade(storage.alembic_config(conn), "0004")
    with engine.connect() as conn:
        inspector = sa.inspect(conn)
        assert "lifecycleevent" not in inspector.get_table_names()
        assert "retired_on" not in {c["name"] for c in inspector.get_columns("app")}
        assert conn.execute(sa.text("SELECT app_id FROM app")).all() == [("old",)]

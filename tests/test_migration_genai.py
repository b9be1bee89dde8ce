"""Migration 0004 (GenAI): a database with usage and cost rows from before it upgrades with them
intact (model "", estimated false), the usage natural key gains ``model``, and it downgrades."""

from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa
from alembic import command

from portfolio import records, storage


def test_upgrade_keeps_old_rows_and_adds_model_to_the_usage_key(db_url: str) -> None:
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        command.upgrade(storage.alembic_config(conn), "0002")
        conn.execute(sa.text("INSERT INTO usagerecord (source, app_id, day, metric, value) VALUES ('prom', 'a', '2026-01-01', 'requests', 5)"))
        conn.execute(sa.text("INSERT INTO costrecord (source, app_id, day, category, service, amount, currency) "
                             "VALUES ('k8s', 'a', '2026-01-01', 'infra', 'cpu', 1, 'USD')"))
    with engine.begin() as conn:
        command.upgrade(storage.alembic_config(conn), "head")
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT source, metric, value, model FROM usagerecord")).all() == [("prom", "requests", 5.0, "")]
        assert [tuple(r) for r in conn.execute(sa.text("SELECT service, model, estimated FROM costrecord")).all()] in (
            [("cpu", "", False)], [("cpu", "", 0)])
    with engine.begin() as conn:  # the same app, day and metric for two models: two rows now
        storage.upsert(conn, records.UsageRecord, [
            records.UsageRecord(source="oai", app_id="a", day=date(2026, 1, 1), metric="input_tokens", model=m, value=1.0)
            for m in ("gpt-4o", "gpt-4o-mini")
        ])
        with pytest.raises(sa.exc.IntegrityError), conn.begin_nested():
            conn.execute(sa.text("INSERT INTO usagerecord (source, app_id, day, metric, value, model) "
                                 "VALUES ('oai', 'a', '2026-01-01', 'input_tokens', 2, 'gpt-4o')"))
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM usagerecord WHERE source = 'oai'"))
        command.downgrade(storage.alembic_config(conn), "0002")
    with engine.connect() as conn:
        assert "model" not in {c["name"] for c in sa.inspect(conn).get_columns("usagerecord")}

"""The bulk cost path (issue 15): CostRecord keyed by its natural key (WITHOUT ROWID on SQLite,
migration 0007), restatement deleting stale rows in SQL (no key read back into Python), and
PostgreSQL's plain inserts through COPY. Runs on both backends (``engine``/``db_url`` fixtures)."""

from __future__ import annotations

import csv
import gzip
import re
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.engine import Engine

from portfolio import records, storage
from tests.connectors.test_focus import _split_sample, costs, make_config, run

D = Decimal


def _statements(engine: Engine) -> list[str]:
    seen: list[str] = []

    def listen(_conn, _cursor, statement, _params, _context, _many) -> None:  # noqa: ANN001
        seen.append(" ".join(statement.split()))

    sa.event.listen(engine, "before_cursor_execute", listen)
    return seen


def test_restating_one_period_writes_only_it_and_reads_no_key_back(tmp_path: Path, engine: Engine, shared_data: Path) -> None:
    sample = shared_data / "focus" / "focus-1.0-sample.csv"
    files = _split_sample(sample, tmp_path / "exports")
    cfg = make_config(tmp_path, engine, 'path = "exports"\ncost_column = "BilledCost"\napp_tag_keys = ["application"]')
    assert run(cfg, engine).status == "success"
    before = costs(engine)
    september = {k: v for k, v in before.items() if v[2] == "2024-09"}
    assert september and any(v[2] == "2024-10" for v in before.values())

    # 2024-09 re-exported: the BrightLensMatrix lines are gone, every other amount is doubled
    with gzip.open(files["2024-09"], "rt", newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    cost, tags = rows[0].index("BilledCost"), rows[0].index("Tags")
    restated = [rows[0]] + [
        r[:cost] + [str(D(r[cost]) * 2)] + r[cost + 1 :] for r in rows[1:] if "BrightLensMatrix" not in r[tags]
    ]
    with gzip.open(files["2024-09"], "wt", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(restated)

    statements = _statements(engine)
    result = run(cfg, engine)
    statements = list(statements)  # the sync's own statements (not the reads of this test below)
    assert result.status == "success", result.error
    after = costs(engine)

    gone = set(september) - set(after)  # the BrightLensMatrix rows (and rows whose share now rounds to 0)
    assert {k for k in september if k[0] == "BrightLensMatrix"} <= gone
    assert result.rows_deleted == len(gone)
    # only the restated period was written: its rows changed (doubled), October's did not
    new = {k: v for k, v in after.items() if v[2] == "2024-09"}
    assert 0 < result.rows_written <= len(new) + 1  # (and its one USD bill total; a few rows came out the same)
    assert {k: v for k, v in after.items() if v[2] == "2024-10"} == {k: v for k, v in before.items() if v[2] == "2024-10"}
    # reconciled to the cent (to the micro-unit): the restated rows add up to the restated file's total
    assert sum(v[0] for v in new.values()) == sum((D(r[cost]) for r in restated[1:]), D(0)).quantize(D("0.000001"), ROUND_HALF_UP)

    # stale rows found in the database: one DELETE ... NOT EXISTS against the run's seen keys; no
    # SELECT of cost rows' keys (only counts and an existence probe read the table)
    reads = [s for s in statements if s.upper().startswith("SELECT") and re.search(r"\bFROM costrecord\b", s)]
    assert reads, statements
    for s in reads:
        assert re.search(r"count\(|LIMIT", s, re.IGNORECASE), f"reads cost rows back: {s}"
    deletes = [s for s in statements if s.upper().startswith("DELETE FROM COSTRECORD")]
    assert deletes and all("_seen_costrecord" in s and "NOT (EXISTS" in s for s in deletes), deletes


def test_costs_are_keyed_by_their_natural_key(engine: Engine) -> None:
    """No surrogate id, the natural key is the primary key, no other index (SQLite: WITHOUT ROWID)."""
    insp = sa.inspect(engine)
    assert insp.get_pk_constraint("costrecord")["constrained_columns"] == list(records.CostRecord.NATURAL_KEY)
    assert "id" not in {c["name"] for c in insp.get_columns("costrecord")}
    assert insp.get_indexes("costrecord") == []
    assert [u for u in insp.get_unique_constraints("costrecord")] == []
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            ddl = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE name = 'costrecord'").scalar()
        assert ddl is not None and ddl.rstrip().upper().endswith("WITHOUT ROWID")


def test_upgrade_from_0004_keeps_every_cost_row(db_url: str) -> None:
    plain = sa.create_engine(db_url)
    with plain.begin() as conn:
        command.upgrade(storage.alembic_config(conn), "0004")
        conn.execute(sa.text(
            "INSERT INTO costrecord (source, app_id, day, category, service, amount, currency, billing_period, model, estimated) "
            "VALUES (:s, :a, :d, :c, :v, :m, :cur, :bp, :model, :e)"
        ), [
            {"s": "bill", "a": "b-app", "d": date(2026, 1, 2), "c": "infra", "v": "ec2", "m": 1_234_567 if conn.dialect.name == "sqlite" else D("1.234567"),
             "cur": "USD", "bp": "2026-01", "model": "", "e": False},
            {"s": "bill", "a": "a-app", "d": date(2026, 1, 1), "c": "infra", "v": "s3", "m": 5_000_000 if conn.dialect.name == "sqlite" else D("5"),
             "cur": "EUR", "bp": "2026-01", "model": "", "e": False},
            {"s": "oai", "a": "a-app", "d": date(2026, 1, 1), "c": "vendor", "v": "openai", "m": 10_000 if conn.dialect.name == "sqlite" else D("0.01"),
             "cur": "USD", "bp": "2026-01-01", "model": "gpt-4o", "e": True},
        ])  # fmt: skip
    plain.dispose()
    engine = storage.make_engine(db_url)  # what a process does: migrate to head
    frame = storage.read_frame(engine, records.CostRecord).sort_values(["source", "app_id"], ignore_index=True)
    assert list(frame.columns) == ["source", "app_id", "day", "category", "service", "amount", "currency",
                                   "billing_period", "model", "estimated"]  # fmt: skip
    assert [tuple(r) for r in frame.itertuples(index=False)] == [
        ("bill", "a-app", date(2026, 1, 1), "infra", "s3", D("5.000000"), "EUR", "2026-01", "", False),
        ("bill", "b-app", date(2026, 1, 2), "infra", "ec2", D("1.234567"), "USD", "2026-01", "", False),
        ("oai", "a-app", date(2026, 1, 1), "vendor", "openai", D("0.010000"), "USD", "2026-01-01", "gpt-4o", True),
    ]
    # the upgraded table takes upserts by natural key and refuses a repeated key
    with engine.begin() as conn:
        changed = storage.upsert(conn, records.CostRecord, [
            records.CostRecord(source="bill", app_id="a-app", day=date(2026, 1, 1), category="infra", service="s3",
                               amount=D("6"), currency="EUR", billing_period="2026-01"),
        ])  # fmt: skip
    assert changed == 1
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM costrecord")).scalar() == 3
    # and goes back down with its rows
    with engine.begin() as conn:
        command.downgrade(storage.alembic_config(conn), "0004")
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM costrecord")).scalar() == 3
        assert "id" in {c["name"] for c in sa.inspect(conn).get_columns("costrecord")}
    storage.dispose_all()


def _frame(n: int) -> pd.DataFrame:
    return pd.DataFrame({
        "source": ["bill"] * n,
        "app_id": [f"app-{i % 7}" for i in range(n)],
        "day": pd.array([date(2026, 1, 1 + i // 7) for i in range(n)], dtype=pd.ArrowDtype(pa.date32())),
        "category": ["infra"] * n,
        "service": ["compute"] * n,
        "amount": pd.array([D(i) / 1000 for i in range(n)], dtype=pd.ArrowDtype(pa.decimal128(38, 6))),
        "currency": ["USD"] * n,
        "billing_period": ["2026-01"] * n,
    })  # fmt: skip


def test_first_write_is_a_plain_bulk_insert_and_refuses_a_repeated_key(engine: Engine) -> None:
    """A source's first rows go in with plain inserts (COPY on PostgreSQL), exactly as the upsert would store them."""
    frame = _frame(70)
    sql, rows = storage.prepare_frame(engine.dialect, records.CostRecord, frame, insert_only=True)
    assert sql.startswith("COPY " if engine.dialect.name == "postgresql" else "INSERT INTO ")
    with engine.begin() as conn:
        assert storage.execute_prepared(conn, sql, rows) == 70
    bulk = storage.read_frame(engine, records.CostRecord)
    with engine.begin() as conn:
        conn.execute(sa.delete(storage.table_of(records.CostRecord)))
        storage.upsert_frame(conn, records.CostRecord, frame)
    assert bulk.equals(storage.read_frame(engine, records.CostRecord))
    assert bulk["amount"].sum() == sum(D(i) / 1000 for i in range(70))
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        storage.execute_prepared(conn, sql, rows[:1])

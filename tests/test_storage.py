"""portfolio.storage on both databases it supports: SQLite (WAL) and Debian's real PostgreSQL.

Money is exact (integer micro-units on SQLite, NUMERIC on PostgreSQL), instants come back tz-aware
UTC, upserts by natural key are idempotent and let restated figures overwrite, and a reader is
never blocked by (nor sees) a sync's open transaction.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from portfolio import records, storage
from portfolio.errors import StorageError

DAY = date(2026, 1, 1)


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, sqlite_url: str) -> Engine:
    """An empty database of each kind, schema created by make_engine."""
    url = sqlite_url if request.param == "sqlite" else str(request.getfixturevalue("postgres_url"))
    return storage.make_engine(url)


def cost(day: date = DAY, amount: str | Decimal | float = "1.00", **kw: Any) -> records.CostRecord:
    # table models skip validation, so a str or float amount reaches the Money column as given
    fields: dict[str, Any] = {"source": "bill", "app_id": "a", "category": "infra", "service": "compute", **kw}
    return records.CostRecord(day=day, amount=amount, **fields)  # type: ignore[arg-type]


def upsert(engine: Engine, objs: list[Any]) -> int:
    with engine.begin() as conn:
        return storage.upsert(conn, type(objs[0]), objs)


def costs(engine: Engine) -> list[tuple[Any, ...]]:
    f = storage.read_frame(engine, records.CostRecord)
    f = f.astype(object).where(f.notna(), None)
    return sorted(zip(f.app_id, f.day, f.service, f.amount, f.currency, f.billing_period, strict=True))


# ----------------------------------------------------------------------------- money


@pytest.mark.parametrize(
    ("amounts", "total"),
    [
        pytest.param(["0.10"] * 1000, "100.000000", id="a-thousand-dimes"),
        pytest.param(["0.1", "0.2", "-0.3"], "0.000000", id="float-trap-cancels"),
        # beyond 2**53 micro-units and 15 significant digits: a float anywhere on the way would round it
        pytest.param(["987654321098.765432", "0.000009"], "987654321098.765441", id="eighteen-digits"),
        pytest.param([0.1, 0.2], "0.300000", id="floats-go-through-str"),
        pytest.param(["-19.99", "19.989999"], "-0.000001", id="negative-credit"),
    ],
)
def test_money_is_exact(db: Engine, amounts: list[Any], total: str) -> None:
    rows = [cost(DAY + timedelta(days=i), a) for i, a in enumerate(amounts)]
    assert upsert(db, rows) == len(rows)
    back = storage.read_frame(db, records.CostRecord).sort_values("day").amount.tolist()
    assert back == [Decimal(str(a)).quantize(Decimal("0.000001")) for a in amounts]
    assert all(isinstance(a, Decimal) for a in back)
    table = storage.table_of(records.CostRecord)
    with db.connect() as conn:
        summed = conn.execute(sa.select(sa.func.sum(table.c.amount))).scalar_one()
    assert summed == Decimal(total)


def test_money_column_is_exact_in_the_database_itself(db: Engine) -> None:
    upsert(db, [cost(amount="1234.567891")])
    with db.connect() as conn:
        if db.dialect.name == "sqlite":
            kind, raw = conn.execute(sa.text("select typeof(amount), amount from costrecord")).one()
            assert (kind, raw) == ("integer", 1_234_567_891)  # micro-units
        else:
            kind, scale = conn.execute(
                sa.text(
                    "select data_type, numeric_scale from information_schema.columns "
                    "where table_name = 'costrecord' and column_name = 'amount'"
                )
            ).one()
            assert (kind, scale) == ("numeric", 6)
            assert conn.execute(sa.text("select amount::text from costrecord")).scalar_one() == "1234.567891"


# ----------------------------------------------------------------------------- instants


@pytest.mark.parametrize(
    "started",
    [
        pytest.param(datetime(2026, 3, 29, 1, 30, tzinfo=UTC), id="utc"),
        pytest.param(datetime(2026, 3, 29, 3, 30, tzinfo=timezone(timedelta(hours=2))), id="plus-two"),
        pytest.param(datetime(2026, 3, 28, 20, 30, tzinfo=timezone(timedelta(hours=-5))), id="minus-five"),
    ],
)
def test_instants_come_back_tz_aware_utc(db: Engine, started: datetime) -> None:
    run = storage.add(db, records.SyncRun(connector="c", started=started, finished=started + timedelta(seconds=90)))
    frame = storage.read_frame(db, records.SyncRun)
    back = frame.started.iloc[0]
    assert back == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    assert back.utcoffset() == timedelta(0)
    assert frame.finished.iloc[0] - back == timedelta(seconds=90)
    assert isinstance(run, records.SyncRun) and run.id is not None


def test_naive_instants_are_refused(db: Engine) -> None:
    with pytest.raises(sa.exc.StatementError, match="naive datetime"):
        storage.add(db, records.SyncRun(connector="c", started=datetime(2026, 1, 1, 12, 0)))


# ----------------------------------------------------------------------------- upsert


@pytest.mark.parametrize(
    ("second", "changed", "after"),
    [
        pytest.param([cost(), cost(service="gpu")], 0, None, id="same-rows-change-nothing"),
        pytest.param(
            [cost(amount="1.05"), cost(service="gpu")], 1,
            [("a", DAY, "compute", Decimal("1.050000"), "USD", None), ("a", DAY, "gpu", Decimal("1.000000"), "USD", None)],
            id="restated-amount-overwrites",
        ),
        pytest.param(
            [cost(billing_period="2026-01")], 1,
            [("a", DAY, "compute", Decimal("1.000000"), "USD", "2026-01"), ("a", DAY, "gpu", Decimal("1.000000"), "USD", None)],
            id="null-to-value-is-a-change",
        ),
        pytest.param(
            [cost(currency="EUR"), cost(service="gpu", day=DAY + timedelta(days=1))], 2,
            [
                ("a", DAY, "compute", Decimal("1.000000"), "EUR", None),
                ("a", DAY, "gpu", Decimal("1.000000"), "USD", None),
                ("a", DAY + timedelta(days=1), "gpu", Decimal("1.000000"), "USD", None),
            ],
            id="changed-and-new",
        ),
        pytest.param([cost(amount="1.0000001")], 0, None, id="below-a-micro-is-no-change"),
    ],
)
def test_upsert_is_idempotent_and_restatements_overwrite(
    db: Engine, second: list[records.CostRecord], changed: int, after: list[tuple[Any, ...]] | None
) -> None:
    first = [cost(), cost(service="gpu")]
    assert upsert(db, first) == 2
    before = costs(db)
    assert upsert(db, second) == changed
    assert costs(db) == (after if after is not None else before)


def test_value_to_null_is_a_change(db: Engine) -> None:
    upsert(db, [cost(billing_period="2026-01")])
    assert upsert(db, [cost(billing_period=None)]) == 1
    assert costs(db)[0][5] is None


def test_upsert_frame_is_the_same_upsert(db: Engine) -> None:
    frame = pd.DataFrame(
        {
            "source": ["bill"] * 3,
            "app_id": ["a", "a", "b"],
            "day": [DAY, DAY + timedelta(days=1), DAY],
            "category": ["infra", "vendor", "other"],
            "service": ["compute", "llm-api", "labeling"],
            "amount": [Decimal("0.01"), Decimal("2.50"), Decimal("3")],
        }
    )
    with db.begin() as conn:
        assert storage.upsert_frame(conn, records.CostRecord, frame) == 3
    with db.begin() as conn:
        assert storage.upsert_frame(conn, records.CostRecord, frame) == 0
        assert storage.upsert_frame(conn, records.CostRecord, frame.iloc[:0]) == 0
    assert [r[3] for r in costs(db)] == [Decimal("0.010000"), Decimal("2.500000"), Decimal("3.000000")]
    assert costs(db)[0][4] == "USD", "columns the frame lacks take the model default"
    with pytest.raises(StorageError, match=r"CostRecord: unknown columns \['colour'\]"), db.begin() as conn:
        storage.upsert_frame(conn, records.CostRecord, frame.assign(colour="red"))



@pytest.mark.parametrize("scale", [6, 12], ids=["scale-6", "scale-12-rounds-half-even"])
def test_arrow_backed_money_and_days_store_what_python_values_store(db: Engine, scale: int) -> None:
    """A billing connector hands amounts and days over Arrow-backed (converted vectorised on
    SQLite); the database must end up holding exactly what the per-value path writes."""
    import pyarrow as pa

    amounts = [Decimal("987654321098.765432"), Decimal("-0.000001"), Decimal("0.0000005"), Decimal("0.0000015"), Decimal("0")]
    days = [DAY + timedelta(days=i) for i in range(len(amounts))]
    plain = pd.DataFrame({"source": "bill", "app_id": [f"a{i}" for i in range(5)], "day": days,
                          "category": "infra", "service": "compute", "amount": amounts})
    arrow = plain.assign(
        day=pd.Series(pa.array(days, pa.date32()), dtype=pd.ArrowDtype(pa.date32())),
        amount=pd.Series(pa.array([a.quantize(Decimal(10) ** -scale) for a in amounts], pa.decimal128(38, scale)), dtype=pd.ArrowDtype(pa.decimal128(38, scale))),
    )
    with db.begin() as conn:
        assert storage.upsert_frame(conn, records.CostRecord, plain) == 5
    expected = costs(db)
    with db.begin() as conn:
        assert storage.upsert_frame(conn, records.CostRecord, arrow) == 0, "same values: no row changes"
        conn.execute(sa.delete(storage.table_of(records.CostRecord)))
    with db.begin() as conn:
        assert storage.upsert_frame(conn, records.CostRecord, arrow, insert_only=True) == 5
    assert costs(db) == expected
    if scale == 12:  # half-even at the 6th place, as Decimal.quantize does
        assert [r[3] for r in expected][2:4] == [Decimal("0.000000"), Decimal("0.000002")]

def test_postgres_upsert_roundtrip(postgres_url: str) -> None:
    """The PostgreSQL path end to end: ON CONFLICT ... WHERE IS DISTINCT FROM, NUMERIC back as Decimal."""
    engine = storage.make_engine(postgres_url)
    assert engine.dialect.name == "postgresql"
    rows = [cost(amount=Decimal("1.25"))]
    assert upsert(engine, rows) == 1
    assert upsert(engine, rows) == 0
    assert upsert(engine, [cost(amount=Decimal("1.26"))]) == 1
    assert storage.read_frame(engine, records.CostRecord).amount.tolist() == [Decimal("1.260000")]
    with engine.connect() as conn:
        assert conn.execute(sa.text("select count(*) from costrecord")).scalar() == 1


# ----------------------------------------------------------------------------- concurrency, WAL


def test_readers_see_committed_data_while_a_sync_writes(db: Engine) -> None:
    upsert(db, [cost(amount="1.00")])
    with db.begin() as writer:
        storage.upsert(writer, records.CostRecord, [cost(amount="2.00"), cost(service="gpu")])
        during = storage.read_frame(db, records.CostRecord)  # another connection, not blocked
        assert during.amount.tolist() == [Decimal("1.000000")]
    assert [r[3] for r in costs(db)] == [Decimal("2.000000"), Decimal("1.000000")]


@pytest.mark.sqlite_only(reason="WAL journal mode and busy timeout are SQLite settings")
def test_sqlite_runs_in_wal_mode(sqlite_url: str) -> None:
    engine = storage.make_engine(sqlite_url)  # SQLite by definition, on either test pass
    with engine.connect() as conn:
        assert conn.execute(sa.text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(sa.text("PRAGMA busy_timeout")).scalar() == 30000
    upsert(engine, [cost()])
    db_file = Path(str(sa.engine.make_url(sqlite_url).database))
    assert Path(f"{db_file}-wal").exists()


def test_postgres_has_a_write_ahead_log(postgres_url: str) -> None:
    engine = storage.make_engine(postgres_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("show wal_level")).scalar() in ("replica", "logical", "minimal")


def test_an_unreachable_database_names_no_password() -> None:
    with pytest.raises(StorageError) as exc:
        storage.make_engine("postgresql+psycopg://portfolio:hunter2pass@127.0.0.1:1/nowhere")
    assert str(exc.value).startswith("cannot open database: ")
    assert "hunter2pass" not in str(exc.value)

"""Issue 15: the cost rollup of a source's first bulk write is summed from the frames written
(:class:`portfolio.rollup.FirstSyncCost`) instead of a GROUP BY over the rows just written. It must
give exactly what that GROUP BY gives: the same rows, sums, counts, first and last days, and (on
SQLite) the same storage class of every value, whatever the frames hold: GenAI rows kept per day (a
model, or a gateway's estimate), no billing period, amounts with more than six decimals (rounded
half to even as the write rounds them), negative amounts, and one month's rows spread over several
frames."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pandas as pd
import pyarrow as pa
import sqlalchemy as sa

from connectors.base import Rows
from portfolio import records, rollup, storage, sync


def _frame(rows: list[tuple[Any, ...]], genai: bool = True) -> pd.DataFrame:
    """Arrow-backed like the FOCUS connector's frames: text keys as categoricals, days date32,
    amounts decimal128(38, 12)."""
    cols = ["app_id", "day", "category", "service", "currency", "billing_period", "amount", "model", "estimated"]
    data = {c: [r[i] for r in rows] for i, c in enumerate(cols)}
    frame = pd.DataFrame(
        {
            **{c: pd.Series(data[c], dtype="category") for c in ("app_id", "category", "service", "currency", "billing_period")},
            "day": pd.array(pa.array(data["day"], pa.date32()), dtype=pd.ArrowDtype(pa.date32())),
            "amount": pd.array(pa.array(data["amount"], pa.decimal128(38, 12)), dtype=pd.ArrowDtype(pa.decimal128(38, 12))),
        }
    )
    if genai:
        frame["model"] = data["model"]
        frame["estimated"] = data["estimated"]
    return frame


D = Decimal
ROWS_1 = [
    ("app-a", date(2026, 1, 3), "infra", "gpu", "USD", "2026-01", D("10.0000005"), "", False),  # half to even: 10.000000
    ("app-a", date(2026, 1, 4), "infra", "gpu", "USD", "2026-01", D("0.0000015"), "", False),  # -> 0.000002
    ("app-a", date(2026, 1, 31), "infra", "gpu", "USD", "2026-01", D("-2.25"), "", False),  # a credit
    ("app-a", date(2026, 2, 1), "infra", "gpu", "USD", "2026-01", D("1.5"), "", False),  # late charge, next month
    ("app-b", date(2026, 1, 3), "vendor", "openai", "USD", None, D("3.333333333"), "gpt-4o", False),  # per day
    ("app-b", date(2026, 1, 4), "vendor", "openai", "USD", None, D("1"), "gpt-4o", False),
    ("app-b", date(2026, 1, 3), "vendor", "gateway", "USD", "2026-01", D("3.5"), "", True),  # an estimate: per day
    ("app-c", date(2026, 1, 9), "infra", "cpu", "EUR", "2026-01", D("7.77"), "", False),
]
ROWS_2 = [  # the same months and keys as ROWS_1 on other days: the frames' partial sums merge
    ("app-a", date(2026, 1, 20), "infra", "gpu", "USD", "2026-01", D("4.000001"), "", False),
    ("app-b", date(2026, 1, 3), "vendor", "openai-batch", "USD", None, D("0.5"), "gpt-4o", False),
    ("app-c", date(2026, 1, 10), "infra", "cpu", "EUR", "2026-01", D("0.23"), "", False),
    ("app-c", date(2026, 3, 1), "infra", "cpu", "EUR", "2026-03", D("1"), "", False),
]


def _stored(conn: Any) -> list[tuple[Any, ...]]:
    m = records.COST_MONTH
    cols = [m.c[c.name] for c in m.columns]
    if conn.dialect.name == "sqlite":
        cols += [sa.func.typeof(m.c[c.name]) for c in m.columns]
    return sorted(conn.execute(sa.select(*cols)).all(), key=repr)


def _apps(engine: Any) -> None:
    with engine.begin() as conn:
        storage.upsert(conn, records.App, [records.App(app_id=a, name=a, team="t") for a in ("app-a", "app-b", "app-c")])


def test_summed_from_the_frames_is_the_group_by_of_the_rows(engine, monkeypatch):
    _apps(engine)
    used: list[bool] = []
    original = rollup.FirstSyncCost.rows  # what rollup.refresh stores instead of its GROUP BY
    monkeypatch.setattr(rollup.FirstSyncCost, "rows", lambda self: (used.append(True), original(self))[1])
    written = sync.write_records(engine, "bill", [Rows(records.CostRecord, _frame(ROWS_1)), Rows(records.CostRecord, _frame(ROWS_2))])
    assert written.written == len(ROWS_1) + len(ROWS_2)
    with engine.begin() as conn:
        summed = _stored(conn)
        rollup.refresh(conn, records.CostRecord, "bill")
        assert _stored(conn) == summed
        assert rollup.differences(conn) == []
    assert used == ([True] if engine.dialect.name == "sqlite" else [])
    # hand-computed: app-a's gpu in January is 10.000000 + 0.000002 - 2.25 + 4.000001 over 4 daily rows
    m = records.COST_MONTH
    with engine.connect() as conn:
        amount, rows, first, last = conn.execute(
            sa.select(m.c.amount, m.c.rows, m.c.first_day, m.c.last_day).where(
                m.c.app_id == "app-a", m.c.day == date(2026, 1, 1), m.c.service == "gpu"
            )
        ).one()
        per_day = conn.execute(sa.select(sa.func.count()).select_from(m).where(m.c.app_id == "app-b")).scalar()
    assert Decimal(amount) == Decimal("11.750003")
    assert (rows, str(first), str(last)) == (4, "2026-01-03", "2026-01-31")
    assert per_day == 4  # GenAI rows stay per day: openai on the 3rd and 4th, the batch and the estimate


def test_records_one_by_one_fall_back_to_the_group_by(engine, monkeypatch):
    """A fresh source that also yields records one by one: its rollup is read back from the rows."""
    _apps(engine)
    used: list[bool] = []
    original = rollup.FirstSyncCost.rows  # what rollup.refresh stores instead of its GROUP BY
    monkeypatch.setattr(rollup.FirstSyncCost, "rows", lambda self: (used.append(True), original(self))[1])
    one = records.CostRecord(
        source="", app_id="app-c", day=date(2026, 1, 9), category="infra", service="disk", amount=D("2"), currency="EUR",
        billing_period="2026-01",
    )
    sync.write_records(engine, "bill", [Rows(records.CostRecord, _frame(ROWS_1, genai=False)), one])
    with engine.begin() as conn:
        assert rollup.differences(conn) == []
        got = _stored(conn)
        rollup.refresh(conn, records.CostRecord, "bill")
        assert _stored(conn) == got
    assert used == []

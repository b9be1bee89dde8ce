"""Monthly rollups of the daily fact tables, kept up to date by every writer (issue 15).

:mod:`portfolio.facts` reads cost, usage and uptime per app and month. Summing millions of daily
rows at every read (5.2 million at 1,000 apps x 36 months: about 16 s of SQLite's time per report
or cold dashboard page) is work the data does not ask for twice: a month's figures change only
when a sync writes that month. So each write also rewrites the rollup rows of the months it
touched, in the same transaction, with set-based SQL:

- ``costmonth``: per source, app, category, service, currency, billing period, model and estimated
  flag, per month (a GenAI row, naming a model or an estimate, per day), the exact sum of the
  amounts (integer micro-units on SQLite, NUMERIC on PostgreSQL), the number of daily rows and
  their first and last day;
- ``usagemonth``: per source, app, metric and model, per month (a row naming a model per day);
- ``uptimemonth``: per app and month, the mean over the days of each day's mean over sources,
  the samples, the days and the first and last day.

Each rollup row is exactly the row :mod:`portfolio.facts` would compute from the daily rows of a
whole month, so a reader takes whole months before the current one from the rollup and reads the
rest (the current month, which the zombie window splits; a retiring app's days) from the daily
table. Who writes keeps it: the sync writer (:class:`portfolio.sync._Writer`, for the months and
billing periods of what it wrote or deleted), :func:`portfolio.storage.upsert` and
:func:`~portfolio.storage.upsert_frame` (for the sources and days written), migration 0008 (for
what was there before). :func:`rebuild` rebuilds everything, and :func:`differences` compares the
rollup with the daily tables (``mlportfolio check`` runs it), so a rollup out of step is said,
never read silently.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from portfolio import records

#: the daily tables that have a rollup, and their rollup tables
ROLLUPS: dict[type[SQLModel], sa.Table] = {
    records.CostRecord: records.COST_MONTH,
    records.UsageRecord: records.USAGE_MONTH,
    records.UptimeRecord: records.UPTIME_MONTH,
}


def _table(model: type[SQLModel]) -> sa.Table:
    return model.__table__  # type: ignore[attr-defined,no-any-return]


def month_start(conn: Connection, day: Any) -> Any:
    """The first day of ``day``'s month, in SQL (typed as a date)."""
    if conn.dialect.name == "sqlite":
        return sa.type_coerce(sa.func.date(day, "start of month"), sa.Date)
    return sa.cast(sa.func.date_trunc("month", day), sa.Date)


def as_date(value: Any) -> date:
    """A day as a ``date``: from a date, a datetime or Timestamp, numpy's datetime64 or ISO text."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if hasattr(value, "to_pydatetime"):  # pandas Timestamp
        return value.to_pydatetime().date()  # type: ignore[no-any-return]
    return date.fromisoformat(str(value)[:10])


def first_of_month(day: date) -> date:
    return day.replace(day=1)


def _last_of_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)


def cost_daily(t: Any) -> Any:
    """Cost rows kept per day: GenAI rows (a model, or a gateway's estimate), which the bill/estimate
    rules compare per day."""
    return sa.or_(sa.func.coalesce(t.c.model, "") != "", t.c.estimated == sa.true())


def usage_daily(t: Any) -> Any:
    """Usage rows kept per day: those naming a model (tokens and requests per model)."""
    return sa.func.coalesce(t.c.model, "") != ""


def span(day: Any) -> list[Any]:
    """How many daily rows an aggregate sums, and its first and last day."""
    return [
        sa.func.count().label("rows"),
        sa.type_coerce(sa.func.min(day), sa.Date).label("first_day"),
        sa.type_coerce(sa.func.max(day), sa.Date).label("last_day"),
    ]


def money_sum(conn: Connection, amount: Any) -> Any:
    """``SUM`` of a Money column, exact: integer micro-units on SQLite, NUMERIC on PostgreSQL."""
    if conn.dialect.name == "sqlite":
        return sa.type_coerce(sa.func.sum(amount), sa.BigInteger)
    return sa.func.sum(amount)


COST_KEYS = ("source", "app_id", "category", "service", "currency", "billing_period", "model", "estimated")
USAGE_KEYS = ("source", "app_id", "metric", "model")


def _cost_select(conn: Connection, where: Any) -> Any:
    t = _table(records.CostRecord)
    bucket = sa.type_coerce(sa.case((cost_daily(t), t.c.day), else_=month_start(conn, t.c.day)), sa.Date)
    keys = [t.c[k] for k in COST_KEYS]
    return (
        sa.select(*keys, bucket.label("day"), money_sum(conn, t.c.amount).label("amount"), *span(t.c.day))
        .where(where)
        .group_by(*keys, bucket)
    )


def _usage_select(conn: Connection, where: Any) -> Any:
    t = _table(records.UsageRecord)
    bucket = sa.type_coerce(sa.case((usage_daily(t), t.c.day), else_=month_start(conn, t.c.day)), sa.Date)
    keys = [t.c[k] for k in USAGE_KEYS]
    return (
        sa.select(*keys, bucket.label("day"), sa.func.sum(t.c.value).label("value"), *span(t.c.day))
        .where(where)
        .group_by(*keys, bucket)
    )


def uptime_per_day(where: Any = sa.true()) -> Any:
    """Each app's availability per day: the mean over its sources (as :meth:`portfolio.books.Books.uptime`)."""
    t = _table(records.UptimeRecord)
    return (
        sa.select(
            t.c.app_id,
            t.c.day,
            sa.func.avg(t.c.availability).label("availability"),
            sa.func.sum(t.c.samples).label("samples"),
            sa.func.max(t.c.source).label("source"),
        )
        .where(where)
        .group_by(t.c.app_id, t.c.day)
        .subquery()
    )


def uptime_columns(d: Any, bucket: Any) -> list[Any]:
    """The aggregate of per-day availability rows ``d`` over ``bucket``, in UPTIME_MONTH's column order."""
    return [
        d.app_id,
        bucket.label("day"),
        sa.func.max(d.source).label("source"),
        sa.func.avg(d.availability).label("availability"),
        sa.func.sum(d.samples).label("samples"),
        sa.func.count(d.availability).label("days"),
        *span(d.day),
    ]


def _uptime_select(conn: Connection, where: Any) -> Any:
    d = uptime_per_day(where)
    bucket = month_start(conn, d.c.day)
    return sa.select(*uptime_columns(d.c, bucket)).group_by(d.c.app_id, bucket)


def _scope(model: type[SQLModel], table: Any, source: str | None, days: tuple[date, date] | None, periods: list[str]) -> Any:
    """Rows of ``table`` (the daily table or its rollup) in a refresh's scope: of ``source``, in the
    whole months of ``days`` or (cost) of one of the billing ``periods``; every row of the source
    when both are empty."""
    parts: list[Any] = []
    if days is not None:
        lo, hi = first_of_month(days[0]), _last_of_month(days[1])
        parts.append(sa.and_(table.c.day >= sa.literal(lo, sa.Date), table.c.day <= sa.literal(hi, sa.Date)))
    if periods:
        if model is not records.CostRecord:
            raise ValueError("only cost rows have billing periods")
        parts.extend(table.c.billing_period.in_(periods[i : i + 500]) for i in range(0, len(periods), 500))
    where = [sa.or_(*parts)] if parts else []
    if source is not None:
        where.append(table.c.source == source)
    return sa.and_(sa.true(), *where)


def refresh(
    conn: Connection,
    model: type[SQLModel],
    source: str | None = None,
    *,
    days: tuple[date, date] | None = None,
    periods: Iterable[str] = (),
    summed: FirstSyncCost | None = None,
) -> None:
    """Rewrite ``model``'s rollup rows for ``source`` (None: every source; uptime: always every
    source) in the whole months that ``days`` (first, last) touch and, for cost, the billing
    ``periods``; with neither, all of them.

    Run it in the transaction that wrote the daily rows. Two statements, both set-based: a DELETE
    of the rollup rows in scope and an ``INSERT ... SELECT ... GROUP BY`` of the daily rows in scope
    (uptime: the months of every source, since an app's availability is the mean over sources).
    ``summed``: the rows of the scope are those a first sync's frames summed to (cost on SQLite,
    see :class:`FirstSyncCost`): inserted instead of the ``INSERT ... SELECT``.
    """
    wanted = sorted({str(p) for p in periods})
    if model is records.UptimeRecord:  # an app's availability is the mean over sources: every source's months
        source, wanted = None, []
    rollup = ROLLUPS[model]
    conn.execute(sa.delete(rollup).where(_scope(model, rollup, source, days, wanted)))
    if summed is not None:  # a first sync's rollup, summed from its frames (FirstSyncCost)
        rows = summed.rows()
        if rows:
            q = conn.dialect.identifier_preparer.quote
            names = [c.name for c in rollup.columns]
            conn.exec_driver_sql(
                f"INSERT INTO {q(rollup.name)} ({', '.join(map(q, names))}) VALUES ({', '.join('?' * len(names))})", rows
            )
        return
    where = _scope(model, _table(model), source, days, wanted)
    select = {
        records.CostRecord: _cost_select,
        records.UsageRecord: _usage_select,
        records.UptimeRecord: _uptime_select,
    }[model](conn, where)
    columns = [c.name for c in rollup.columns]
    conn.execute(sa.insert(rollup).from_select(columns, select))


class FirstSyncCost:
    """The cost rollup of a source's first sync, summed from the frames it writes instead of read
    back from the daily table (issue 15: the ``GROUP BY`` of a 10-million-line bill's 2.1 million
    rows took about 4 s of SQLite's time, most of it sorting).

    Only where it is exactly what :func:`refresh` would compute: on SQLite, for a source that had
    no cost row before the run (so the source's rows after it are the rows written, every one a
    plain INSERT that a repeated key fails), every frame Arrow-backed (amounts ``decimal128``, days
    ``date32``: their stored form is :func:`portfolio.storage.micro_units` and ISO text, the same
    conversion the write uses). Anything else — records yielded one by one, another column type —
    sets :attr:`exact` False and the writer refreshes from the daily table as before.
    """

    def __init__(self) -> None:
        self.parts: list[Any] = []
        self.exact = True

    def add(self, frame: Any, micro: Any) -> None:
        """Sum one frame (with its ``source`` column) to the rollup's grain; ``micro``: its amounts
        as stored (:func:`portfolio.storage.micro_units`, None where that does not apply)."""
        if not self.exact:
            return
        import numpy as np
        import pandas as pd
        import pyarrow as pa
        import pyarrow.compute as pc

        day = frame["day"] if "day" in frame.columns else None
        if micro is None or day is None or not (isinstance(day.dtype, pd.ArrowDtype) and pa.types.is_date32(day.dtype.pyarrow_dtype)):
            self.exact, self.parts = False, []
            return
        days = day.array._pa_array  # type: ignore[attr-defined]
        number = pc.cast(days, pa.int32()).to_numpy(zero_copy_only=False)  # days since 1970: grouped as integers
        fields = records.CostRecord.model_fields
        keys = {
            k: frame[k] if k in frame.columns else pd.Series([fields[k].get_default(call_default_factory=True)] * len(frame), index=frame.index)
            for k in COST_KEYS
        }
        estimated = keys["estimated"].astype(bool)
        keys["estimated"] = estimated.astype("int64")  # as SQLite stores a boolean
        named = keys["model"].notna() & (keys["model"] != "") if "model" in frame.columns else False
        daily = (estimated | named).to_numpy(dtype=bool)
        month = pc.cast(pc.floor_temporal(days, unit="month"), pa.int32()).to_numpy(zero_copy_only=False)
        part = pd.DataFrame(
            {
                **{k: v.to_numpy() if k == "estimated" else v.array for k, v in keys.items()},
                "day": np.where(daily, number, month),  # the bucket: the day itself, or its month's first
                "amount": micro.to_numpy(),
                "iso": number,
            }
        )
        self.parts.append(self._sum(part, daily=True))

    @staticmethod
    def _sum(part: Any, daily: bool) -> Any:
        """``part`` summed per rollup key (the COST_KEYS and the bucket ``day``): ``daily`` rows
        (amount, iso day) counted, or partial sums (amount, rows, first_day, last_day) merged."""
        if daily:
            spec = {"amount": ("amount", "sum"), "rows": ("amount", "size"), "first_day": ("iso", "min"), "last_day": ("iso", "max")}
        else:
            spec = {"amount": ("amount", "sum"), "rows": ("rows", "sum"), "first_day": ("first_day", "min"), "last_day": ("last_day", "max")}
        # keys holding one value in all of ``part`` (a bill's frame: its source, currency, billing
        # period, model, estimated flag, often its month) are put back after grouping on the others:
        # the same groups, in less time and memory (10M lines: 17 s / 717 MiB against 20 s / 790 MiB)
        keys = [*COST_KEYS, "day"]
        constant = [k for k in keys if len(part) and not part[k].isna().any() and (part[k].iloc[0] == part[k]).all()]
        by = [k for k in keys if k not in constant]
        if by:
            out = part.groupby(by, observed=True, dropna=False, sort=False).agg(**spec).reset_index()
        else:
            out = part.assign(_all=0).groupby("_all").agg(**spec).reset_index(drop=True)
        for k in constant:
            out[k] = part[k].iloc[:1].repeat(len(out)).to_numpy()
        return out[[*keys, "amount", "rows", "first_day", "last_day"]]

    def rows(self) -> list[tuple[Any, ...]]:
        """The rollup rows, in COST_MONTH's column order, as SQLite stores them."""
        import pandas as pd
        import pyarrow as pa

        if not self.parts:
            return []
        whole = self._sum(pd.concat(self.parts, ignore_index=True), daily=False)
        for c in ("day", "first_day", "last_day"):  # as SQLite stores a date: ISO text
            whole[c] = pa.array(whole[c].to_numpy(dtype="int32")).cast(pa.date32()).cast(pa.string()).to_pylist()
        columns = [c.name for c in records.COST_MONTH.columns]
        out = []
        for c in columns:
            values = whole[c].astype(object)
            out.append(values.where(whole[c].notna(), None).tolist())
        return list(zip(*out, strict=True))


def refresh_written(conn: Connection, model: type[SQLModel], sources: Iterable[str], days: Iterable[Any]) -> None:
    """Refresh the rollup after rows of ``model`` were written for ``sources`` on ``days`` (dates or
    ISO texts): the months between the first and the last day. A model without a rollup: nothing."""
    if model not in ROLLUPS:
        return
    parsed = [as_date(d) for d in days if d is not None]
    if not parsed:
        return
    span_ = (min(parsed), max(parsed))
    for source in sorted(set(sources)):
        refresh(conn, model, source, days=span_)


def rebuild(conn: Connection) -> None:
    """Rebuild every rollup from the daily tables (migration 0008; a test that wrote rows by hand)."""
    for model in ROLLUPS:
        refresh(conn, model)


def differences(conn: Connection) -> list[str]:
    """Where a rollup disagrees with its daily table: per table and source, the row count and the
    sum (cost: exact; usage: to a relative 1e-9). Empty when they agree. One full read of each
    daily table (``mlportfolio check``), not for every report."""
    out: list[str] = []
    for model, rollup in ROLLUPS.items():
        daily = _table(model)
        if model is records.UptimeRecord:  # app-days, and the sum over them of each day's mean
            got_n, got_sum = conn.execute(
                sa.select(sa.func.sum(rollup.c.rows), sa.func.sum(rollup.c.availability * rollup.c.days))
            ).one()
            per_day = uptime_per_day()
            want_n, want_sum = conn.execute(sa.select(sa.func.count(), sa.func.sum(per_day.c.availability))).one()
            if int(got_n or 0) != int(want_n or 0) or not _close(got_sum, want_sum):
                out.append(
                    f"{daily.name}: the monthly rollup holds {int(got_n or 0)} app-days summing {float(got_sum or 0):.6f}, "
                    f"the daily table {int(want_n or 0)} app-days summing {float(want_sum or 0):.6f}"
                )
            continue
        value = "amount" if model is records.CostRecord else "value"
        agg = (money_sum(conn, daily.c[value]) if value == "amount" else sa.func.sum(daily.c[value]))
        agg_r = (money_sum(conn, rollup.c[value]) if value == "amount" else sa.func.sum(rollup.c[value]))
        want_rows = dict(
            (s, (int(n), v)) for s, n, v in conn.execute(sa.select(daily.c.source, sa.func.count(), agg).group_by(daily.c.source))
        )
        got_rows = dict(
            (s, (int(n or 0), v))
            for s, n, v in conn.execute(sa.select(rollup.c.source, sa.func.sum(rollup.c.rows), agg_r).group_by(rollup.c.source))
        )
        for source in sorted(set(want_rows) | set(got_rows)):
            (wn, wv), (gn, gv) = want_rows.get(source, (0, 0)), got_rows.get(source, (0, 0))
            same = _exact(conn, wv) == _exact(conn, gv) if value == "amount" else _close(gv, wv)
            if wn != gn or not same:
                shown = (lambda v: _exact(conn, v)) if value == "amount" else (lambda v: v or 0)  # noqa: E731
                out.append(
                    f"{daily.name} of source {source!r}: the monthly rollup holds {gn} rows summing {shown(gv)}, "
                    f"the daily table {wn} rows summing {shown(wv)}"
                )
    return out


def _close(a: Any, b: Any) -> bool:
    a, b = float(a or 0), float(b or 0)
    return abs(a - b) <= 1e-9 * max(1.0, abs(b))


def _exact(conn: Connection, raw: Any) -> Decimal:
    """A summed Money column as Decimal (SQLite sums integer micro-units)."""
    if raw is None:
        return Decimal(0)
    return Decimal(int(raw)).scaleb(-6) if conn.dialect.name == "sqlite" else Decimal(raw)

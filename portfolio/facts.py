"""Everything the domain needs, read once from the database into DataFrames (the DataFrame edge).

Money becomes ``float`` here and nowhere earlier; days stay ``date``. The one exception is the
lifecycle's audit trail (``lifecycle``): its amounts were frozen when a proposal was made and are
read back, never summed, so they stay ``Decimal``. The domain modules
(:mod:`portfolio.pnl`, :mod:`portfolio.maintenance`, :mod:`portfolio.retirement`) are pure
functions of a :class:`Facts` and the config, so they are tested without a database.

**Aggregated where the data is.** The daily fact tables (cost, usage, uptime) are read through a
SQL ``GROUP BY`` in the database (SQLite and PostgreSQL alike), not row by row: one row per app,
month and the table's other keys, whose ``day`` is the month's first day. The month holding
:attr:`Facts.split_at` (the start of the recent window the zombie rule reads, ``[rules]
zombie_window_days``) is split there: its days before ``split_at`` are one row, its days from
``split_at`` on another (``day`` = ``split_at``), so "the last N days" is exact too. Rows after the
last complete day and GenAI rows (those naming a model, or a gateway's estimate, which the
bill/estimate rules compare per day) stay daily. Money is summed exactly in the database (integer
micro-units on SQLite, NUMERIC on PostgreSQL) and becomes a float once per aggregate. Each
aggregated row carries ``rows`` (how many fact rows it sums), ``first_day`` and ``last_day``, so
counts and freshness stay those of the daily rows; an uptime row carries ``days`` (how many days
its mean availability covers), so a mean over a month or a period weighs each day once.

Every view in whole months (the P&L, the reports, the rules) sees the same figures as it would
from the daily rows; a view that needs one app's daily rows reads them with :func:`load_app_facts`.
Maintenance rows stay one per ticket, without their ref, URL and title (only the App page shows those).
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlmodel import SQLModel

from portfolio import records, rollup, storage
from portfolio.config import Config

MONEY_COLUMNS = {
    "CostRecord": ("amount",),
    "OutcomeRecord": ("amount", "low", "high"),
    "BillingTotal": ("total",),
}


def _columns(model: type[SQLModel]) -> list[str]:
    return [c.name for c in storage.table_of(model).columns]


def empty(model: type[SQLModel]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in _columns(model)})


@dataclass(frozen=True)
class Facts:
    """The portfolio's raw facts as frames; columns are the record fields (see records.py).

    ``today`` is the as-of date: views end at the last complete day, ``today - 1``.
    """

    apps: pd.DataFrame
    costs: pd.DataFrame
    usage: pd.DataFrame
    uptime: pd.DataFrame
    outcomes: pd.DataFrame
    maintenance: pd.DataFrame
    decisions: pd.DataFrame
    billing_totals: pd.DataFrame
    runs: pd.DataFrame
    today: date = field(default_factory=lambda: datetime.now(UTC).date())
    #: LifecycleEvent rows (proposals, approvals, stage changes); money stays Decimal (see above)
    lifecycle: pd.DataFrame = field(default_factory=lambda: empty(records.LifecycleEvent))
    #: cost/usage/uptime are aggregated per month, split at this day (see the module doc); None: all daily
    split_at: date | None = None
    #: the Books last prepared from these facts (portfolio.books.of), by id of its config: shared by the domain's calls
    books: dict[int, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def last_complete_day(self) -> date:
        return self.today - timedelta(days=1)

    @property
    def is_empty(self) -> bool:
        return self.apps.empty and self.costs.empty and self.outcomes.empty

    @classmethod
    def from_frames(cls, today: date | None = None, **frames: pd.DataFrame) -> Facts:
        """Build Facts from some frames (tests); missing ones are empty frames with the right columns."""
        models: dict[str, type[SQLModel]] = {
            "apps": records.App,
            "costs": records.CostRecord,
            "usage": records.UsageRecord,
            "uptime": records.UptimeRecord,
            "outcomes": records.OutcomeRecord,
            "maintenance": records.MaintenanceRecord,
            "decisions": records.Decision,
            "billing_totals": records.BillingTotal,
            "runs": records.SyncRun,
            "lifecycle": records.LifecycleEvent,
        }
        full = {}
        for name, model in models.items():
            frame = frames.get(name)
            base = empty(model)
            if frame is None:
                full[name] = base
            else:
                frame = frame.copy()
                for col in base.columns:
                    if col not in frame.columns:
                        info = model.model_fields.get(col)
                        default = None if info is None or info.is_required() else info.get_default(call_default_factory=True)
                        frame[col] = default
                full[name] = _to_float(model, frame)
        return cls(today=today or datetime.now(UTC).date(), **full)  # type: ignore[arg-type]


def _to_float(model: type[SQLModel], frame: pd.DataFrame) -> pd.DataFrame:
    for col in MONEY_COLUMNS.get(model.__name__, ()):
        if col in frame.columns:
            frame[col] = pd.to_numeric(frame[col].map(lambda v: None if v is None else float(v)), errors="coerce")
    return frame


def load_facts(
    engine: Engine | Connection,
    today: date | None = None,
    *,
    cfg: Config | None = None,
    aggregate: bool = True,
    app_id: str | None = None,
) -> Facts:
    """Read the facts: small tables whole, the daily fact tables aggregated in SQL (see the module doc).

    ``cfg``: the config whose ``[rules] zombie_window_days`` sets :attr:`Facts.split_at` (default
    rules without it). ``aggregate=False``: every row as stored. ``app_id``: only that app's facts,
    every row as stored (the App page); the inventory, decisions, bill totals and runs stay whole.
    """
    today = today or datetime.now(UTC).date()
    last_day = today - timedelta(days=1)
    window = (cfg or Config()).rules.zombie_window_days  # the one sub-month window a rule reads
    split_at = None if app_id is not None or not aggregate else last_day - timedelta(days=max(window, 1) - 1)
    # a Connection too: a writer (portfolio.lifecycle) reads the facts inside its own transaction
    with nullcontext(engine) if isinstance(engine, Connection) else engine.connect() as conn:

        def read(model: type[SQLModel], *where: Any) -> pd.DataFrame:
            return _to_float(model, storage.read_frame(conn, model, *where))

        def of_app(model: type[SQLModel]) -> tuple[Any, ...]:
            return () if app_id is None else (storage.table_of(model).c.app_id == app_id,)

        apps = read(records.App)
        trail = storage.read_frame(conn, records.LifecycleEvent)
        if split_at is None:
            costs = read(records.CostRecord, *of_app(records.CostRecord))
            usage = read(records.UsageRecord, *of_app(records.UsageRecord))
            uptime = read(records.UptimeRecord, *of_app(records.UptimeRecord))
            maintenance = read(records.MaintenanceRecord, *of_app(records.MaintenanceRecord))
        else:
            costs = _costs(conn, split_at, last_day, _retirement_windows(apps, trail))
            usage = _usage(conn, split_at, last_day)
            uptime = _uptime(conn, split_at, last_day)
            maintenance = _tickets(conn)
        return Facts(
            apps=apps,
            costs=costs,
            usage=usage,
            uptime=uptime,
            outcomes=read(records.OutcomeRecord, *of_app(records.OutcomeRecord)),
            maintenance=maintenance,
            decisions=read(records.Decision),
            billing_totals=read(records.BillingTotal),
            runs=read(records.SyncRun),
            lifecycle=trail,
            today=today,
            split_at=split_at,
        )


def load_app_facts(engine: Engine, app_id: str, today: date | None = None) -> Facts:
    """One app's facts, every row as stored (the App page's daily charts and ticket list)."""
    return load_facts(engine, today, app_id=app_id)


# ---- the aggregated reads -------------------------------------------------------------------------
# Whole months before the one holding split_at come from the monthly rollups (portfolio.rollup),
# whose rows are exactly what the GROUP BYs below compute from a whole month's daily rows; the rest
# (that month on, and a retiring app's rows) is aggregated from the daily tables here.


def _bucket(conn: Connection, day: Any, split_at: date, last_day: date, daily: Any = None) -> Any:
    """The aggregate a day belongs to (typed as a date): its month's first day; from ``split_at`` on,
    the later of that and ``split_at``; the day itself after ``last_day`` or where ``daily`` holds."""
    month = rollup.month_start(conn, day)
    split = sa.literal(split_at, sa.Date)
    recent = sa.case((month > split, month), else_=split)
    keep = day > sa.literal(last_day, sa.Date)
    if daily is not None:
        keep = sa.or_(keep, daily)
    return sa.type_coerce(sa.case((keep, day), (day >= split, recent), else_=month), sa.Date)


def _frame(conn: Connection, stmt: Any, columns: list[str]) -> pd.DataFrame:
    return _frames(conn, [stmt], columns)


#: columns read as days (SQLite hands them over as ISO text)
_DAY_COLUMNS = ("day", "first_day", "last_day")


#: rows fetched and turned into a frame at a time: the driver's Python tuples of a whole read would
#: take several times the memory of the frame they become
_CHUNK = 25_000


def _frames(conn: Connection, stmts: list[Any], columns: list[str]) -> pd.DataFrame:
    """The rows of ``stmts`` as one frame, fetched as the driver gives them (no per-value result
    processing: hundreds of thousands of rows at scale) a chunk at a time; days become ``date``
    once per distinct value, booleans ``bool``."""
    parts: list[pd.DataFrame] = []
    for stmt in stmts:
        result = conn.execute(stmt)
        cursor = result.cursor
        while True:
            rows = cursor.fetchmany(_CHUNK) if cursor is not None else result.fetchmany(_CHUNK)
            if not rows:
                break
            parts.append(pd.DataFrame.from_records(rows, columns=columns, coerce_float=False))
            del rows
        result.close()
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in columns})
    frame = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    del parts
    for col in _DAY_COLUMNS:
        if col in frame.columns and len(frame):
            values = frame[col]
            lookup = {v: v if isinstance(v, date) or v is None else date.fromisoformat(str(v)[:10]) for v in pd.unique(values)}
            frame[col] = values.map(lookup).astype(object)
    if "estimated" in frame.columns and len(frame):
        frame["estimated"] = frame["estimated"].map(lambda v: None if v is None else bool(v)).astype(object)
    return frame


#: days before a retirement whose cost stays daily: the savings check's 90-day run-rate before the date
RETIREMENT_DAYS_BEFORE = 100


def _retirement_windows(apps: pd.DataFrame, trail: pd.DataFrame) -> dict[str, date]:
    """Per app retiring or retired (a stage event, or ``retired_on`` in the inventory): the day from
    which its cost stays daily, so leftover spend and realised savings (:mod:`portfolio.verify`),
    which read days around the retirement date, see the daily rows of those few apps."""
    dates: dict[str, date] = {}
    if not trail.empty:
        stages = trail[(trail["kind"] == "stage") & trail["stage"].isin(["retiring", "retired"])]
        for app, eff, planned in zip(stages["app_id"], stages["effective"], stages["planned"], strict=True):
            for d in (eff, planned):
                if isinstance(d, date) and not pd.isna(d):
                    dates[app] = min(d, dates.get(app, d))
    if not apps.empty and "retired_on" in apps.columns:
        for app, d in zip(apps["app_id"], apps["retired_on"], strict=True):
            if isinstance(d, date) and not pd.isna(d):
                dates[app] = min(d, dates.get(app, d))
    return {app: d - timedelta(days=RETIREMENT_DAYS_BEFORE) for app, d in dates.items()}


def _costs(conn: Connection, split_at: date, last_day: date, daily_from: dict[str, date] | None = None) -> pd.DataFrame:
    """Cost rows: per source, app, category, service, currency, billing period, model, estimated and
    month part (GenAI rows daily, and a retiring or retired app's rows from ``daily_from`` on);
    money summed exactly in the database. Whole months before ``split_at``'s from the rollup."""
    t = storage.table_of(records.CostRecord)
    m = records.COST_MONTH
    cut = sa.literal(rollup.first_of_month(split_at), sa.Date)
    keys = [t.c[k] for k in rollup.COST_KEYS]
    sqlite = conn.dialect.name == "sqlite"
    daily_from = daily_from or {}

    def money(col: Any) -> Any:  # integer micro-units on SQLite (one division per aggregate), else a float
        return sa.type_coerce(col, sa.BigInteger) if sqlite else sa.cast(col, sa.Float)

    # Where an app's daily read starts: the month holding split_at, or for a retiring app the month
    # of its first daily day if earlier (its earlier whole months come from the rollup).
    starts = {app: min(rollup.first_of_month(split_at), rollup.first_of_month(d)) for app, d in daily_from.items()}

    def per_app(app: Any, days: dict[str, date], default: Any = None) -> Any:
        return sa.type_coerce(sa.case({a: sa.literal(d, sa.Date) for a, d in days.items()}, value=app, else_=default), sa.Date)

    stored = sa.select(*(m.c[k] for k in rollup.COST_KEYS), m.c.day, money(m.c.amount), m.c.rows, m.c.first_day, m.c.last_day)
    stored = stored.where(m.c.day < (per_app(m.c.app_id, starts, cut) if starts else cut))

    def recent(daily: Any, begin: Any, *which: Any) -> Any:
        """The daily rows from ``begin`` on, aggregated, of the (source, app) pairs the rollup knows
        (``which`` of them): each pair's rows sought by the primary key's prefix, not a scan of all."""
        pairs = sa.select(m.c.source, m.c.app_id).where(*which).distinct().subquery()
        bucket = _bucket(conn, t.c.day, split_at, last_day, daily).label("day")
        on = sa.and_(t.c.source == pairs.c.source, t.c.app_id == pairs.c.app_id, t.c.day >= begin(pairs.c.app_id))
        return (
            sa.select(*keys, bucket, money(rollup.money_sum(conn, t.c.amount)).label("amount"), *rollup.span(t.c.day))
            .select_from(pairs.join(t, on))
            .group_by(*keys, bucket)
        )

    genai = rollup.cost_daily(t)
    retiring = sorted(daily_from)
    stmts = [stored, recent(genai, lambda _app: cut, *([m.c.app_id.not_in(retiring)] if retiring else []))]
    if retiring:  # a retiring app's rows from its daily day on stay daily (the CASE only over its rows)
        daily = sa.or_(genai, t.c.day >= per_app(t.c.app_id, daily_from))
        stmts.append(recent(daily, lambda app: per_app(app, starts), m.c.app_id.in_(retiring)))
    names = ["source", "app_id", "category", "service", "currency", "billing_period", "model", "estimated", "day",
             "amount", "rows", "first_day", "last_day"]  # fmt: skip
    frame = _frames(conn, stmts, names)
    amount = pd.to_numeric(frame["amount"], errors="coerce").astype("float64")
    if sqlite:
        amount = amount / 1_000_000
    frame["amount"] = amount.to_numpy()
    frame["id"] = None
    return frame[[*(c.name for c in t.columns), "rows", "first_day", "last_day"]]


def _usage(conn: Connection, split_at: date, last_day: date) -> pd.DataFrame:
    """Usage rows: per source, app, metric, model and month part (rows naming a model daily);
    whole months before ``split_at``'s from the rollup."""
    t = storage.table_of(records.UsageRecord)
    m = records.USAGE_MONTH
    cut = sa.literal(rollup.first_of_month(split_at), sa.Date)
    bucket = _bucket(conn, t.c.day, split_at, last_day, rollup.usage_daily(t)).label("day")
    keys = [t.c[k] for k in rollup.USAGE_KEYS]
    stored = sa.select(*(m.c[k] for k in rollup.USAGE_KEYS), m.c.day, m.c.value, m.c.rows, m.c.first_day, m.c.last_day)
    recent = (
        sa.select(*keys, bucket, sa.func.sum(t.c.value).label("value"), *rollup.span(t.c.day))
        .where(t.c.day >= cut)
        .group_by(*keys, bucket)
    )
    frame = _frames(
        conn, [stored.where(m.c.day < cut), recent], ["source", "app_id", "metric", "model", "day", "value", "rows", "first_day", "last_day"]
    )
    frame["value"] = pd.to_numeric(frame["value"], errors="coerce").astype("float64")
    frame["id"] = None
    return frame[[*(c.name for c in t.columns), "rows", "first_day", "last_day"]]


def _uptime(conn: Connection, split_at: date, last_day: date) -> pd.DataFrame:
    """Availability: first the mean over sources per app and day (as :meth:`Books.uptime` does), then
    per app and month part its mean over the days (``days`` of them); whole months before
    ``split_at``'s from the rollup."""
    t = storage.table_of(records.UptimeRecord)
    m = records.UPTIME_MONTH
    first = rollup.first_of_month(split_at)
    d = rollup.uptime_per_day(t.c.day >= sa.literal(first, sa.Date)).c
    bucket = _bucket(conn, d.day, split_at, last_day)
    recent = sa.select(*rollup.uptime_columns(d, bucket)).group_by(d.app_id, bucket)
    stored = sa.select(*(m.c[c.name] for c in m.columns)).where(m.c.day < sa.literal(first, sa.Date))
    frame = _frames(
        conn, [stored, recent], ["app_id", "day", "source", "availability", "samples", "days", "rows", "first_day", "last_day"]
    )
    frame["availability"] = pd.to_numeric(frame["availability"], errors="coerce").astype("float64")
    frame["days"] = pd.to_numeric(frame["days"], errors="coerce").astype("float64")
    frame["id"] = None
    return frame[[*(c.name for c in t.columns), "days", "rows", "first_day", "last_day"]]


def _tickets(conn: Connection) -> pd.DataFrame:
    """Maintenance rows, one per ticket, without ref, URL and title (the App page reads those per app)."""
    t = storage.table_of(records.MaintenanceRecord)
    wanted = ["source", "app_id", "day", "hours", "kind", "incidents", "ttr_hours"]
    frame = _frame(conn, sa.select(*(t.c[c] for c in wanted)), wanted)
    for col in ("id", "ref", "url", "title"):
        frame[col] = None
    return frame[[c.name for c in t.columns]]


def weights(frame: pd.DataFrame, column: str = "rows") -> pd.Series:
    """How many daily facts each row stands for (1 for a daily frame)."""
    if column in frame.columns:
        return pd.to_numeric(frame[column], errors="coerce").fillna(1.0)
    return pd.Series(np.ones(len(frame)), index=frame.index)

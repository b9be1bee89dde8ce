"""The data contract: typed SQLModel tables, one per kind of fact (see DESIGN.md, "Records").

Every table has a ``NATURAL_KEY`` mirrored by a unique constraint, so re-running a sync window is
a no-op and restated amounts overwrite the old ones. Money is ``Decimal`` (stored exactly: NUMERIC
on PostgreSQL, integer micro-units on SQLite); days are ``date``; instants are tz-aware UTC.

This is a leaf module: it imports nothing of ours.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlmodel import Field, SQLModel

UNALLOCATED = "_unallocated"

#: an app's stage; "retiring" (with a planned date) and "paused" come from the lifecycle (LifecycleEvent)
STAGES = ("pilot", "production", "retiring", "retired", "paused")
VALUE_KINDS = ("revenue_capture", "cost_avoidance", "both")
OUTCOME_KINDS = ("revenue_capture", "cost_avoidance")
EVIDENCE = ("experiment", "observational", "estimate")
COST_CATEGORIES = ("infra", "people", "vendor", "other")
MAINTENANCE_KINDS = ("klo", "incident", "improvement")
DECISIONS = ("keep", "invest", "retire", "review")
#: what an editor may propose for an app (an approver approves or rejects it)
PROPOSALS = ("retire", "invest", "keep")
#: kinds of LifecycleEvent: a proposal, its approval or rejection, a change of stage
LIFECYCLE_EVENTS = ("proposal", "approval", "rejection", "stage")
USAGE_METRICS = ("requests", "predictions", "active_users")
#: token usage metrics of GenAI apps (UsageRecord.metric, per model): tokens read without the cache,
#: read from the cache, written to the cache, generated; requests are the plain "requests" metric
TOKEN_METRICS = ("input_tokens", "cached_input_tokens", "cache_write_tokens", "output_tokens")

_MICRO = Decimal("0.000001")


class Money(sa.types.TypeDecorator[Decimal]):
    """Exact money: NUMERIC(20, 6) where the database has it, integer micro-units on SQLite.

    SQLite has no decimal type (it would store a float); micro-units keep sums exact to the cent
    and still let SQL ``SUM`` work.
    """

    impl = sa.Numeric(20, 6)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.BigInteger())
        return dialect.type_descriptor(sa.Numeric(20, 6))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        amount = Decimal(str(value)) if not isinstance(value, Decimal) else value
        amount = amount.quantize(_MICRO)
        if dialect.name == "sqlite":
            return int(amount.scaleb(6))
        return amount

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return Decimal(int(value)).scaleb(-6).quantize(_MICRO)
        return Decimal(value).quantize(_MICRO)


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """A timestamp that is always tz-aware UTC in Python (SQLite stores it naive)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: instants must be tz-aware UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _money(nullable: bool = False, default: Any = ...) -> Any:
    return Field(default=default, sa_type=Money, nullable=nullable)


def _instant(nullable: bool = False, default: Any = ...) -> Any:
    return Field(default=default, sa_type=UTCDateTime, nullable=nullable)


def _unique(table: str, *cols: str) -> tuple[sa.UniqueConstraint]:
    return (sa.UniqueConstraint(*cols, name=f"uq_{table}_natural_key"),)


class App(SQLModel, table=True):
    """Inventory: one deployed ML app."""

    NATURAL_KEY: ClassVar[tuple[str, ...]] = ("app_id",)

    app_id: str = Field(primary_key=True)
    name: str
    team: str
    owner: str | None = None
    sponsor: str | None = None
    stage: str = "production"
    value_kind: str = "cost_avoidance"
    launched: date | None = None
    slo_availability: float = 0.99
    review_every_days: int = 90
    cost_tags: str = ""  # comma-separated tag values that identify the app's spend
    description: str | None = None
    last_model_version_at: datetime | None = _instant(nullable=True, default=None)
    source: str = "config"
    # the day it stopped, for an app the inventory says is retired (portfolio.toml ``retired_on``);
    # the lifecycle's own events (LifecycleEvent) take precedence
    retired_on: date | None = None


class CostRecord(SQLModel, table=True):
    """Spend per app, day, category and service. ``app_id = "_unallocated"`` for unclaimed spend.

    The natural key is the primary key and, on SQLite, the table is ``WITHOUT ROWID``: the rows
    live in one B-tree ordered by (source, app_id, day, category, service), so a bill's millions of
    rows written in that order are appended to it, with no rowid table, no second unique index and
    no day index to keep up (issue 15: 46 s -> about 1.5x a plain append for 2.1M rows). Lookups by
    source (and app) are served by the key's prefix; restatement deletes by source and billing
    period (migration 0007).
    """

    NATURAL_KEY: ClassVar[tuple[str, ...]] = ("source", "app_id", "day", "category", "service")
    __table_args__ = {"sqlite_with_rowid": False}

    source: str = Field(primary_key=True)
    app_id: str = Field(primary_key=True)
    day: date = Field(primary_key=True)
    category: str = Field(primary_key=True)  # infra | people | vendor | other
    service: str = Field(primary_key=True)
    amount: Decimal = _money()
    currency: str = "USD"
    billing_period: str | None = None  # YYYY-MM of the bill the amount comes from (a day for daily vendor bills)
    # the model a GenAI vendor charged for ("" for everything else): cost per 1M tokens by model
    model: str = Field(default="", sa_column_kwargs={"server_default": ""})
    # an estimate (a gateway's price table), not a bill: kept apart so a bill is never counted twice
    estimated: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})


class UsageRecord(SQLModel, table=True):
    """Usage per app, day, metric and model: requests, predictions, active users, tokens.

    ``model`` is "" except for GenAI usage (tokens and requests per model, see ``TOKEN_METRICS``).
    """

    NATURAL_KEY: ClassVar[tuple[str, ...]] = ("source", "app_id", "day", "metric", "model")
    __table_args__ = _unique("usagerecord", *NATURAL_KEY)

    id: int | None = Field(default=None, primary_key=True)
    source: str
    app_id: str
    day: date = Field(index=True)
    metric: str
    value: float
    model: str = Field(default="", sa_column_kwargs={"server_default": ""})


class UptimeRecord(SQLModel, table=True):
    """Daily availability 0..1 of an app and the number of samples it rests on."""

    NATURAL_KEY: ClassVar[tuple[str, ...]] = ("source", "app_id", "day")
    __table_args__ = _unique("uptimerecord", *NATURAL_KEY)

    id: int | None = Field(default=None, primary_key=True)
    source: str
    app_id: str
    day: date = Field(index=True)
    availability: float
    samples: int = 0


class OutcomeRecord(SQLModel, table=True):
    """Realised value of an app in a month, with its evidence grade and bounds."""

    NATURAL_KEY: ClassVar[tuple[str, ...]] = ("source", "app_id", "month", "kind")
    __table_args__ = _unique("outcomerecord", *NATURAL_KEY)

    id: int | None = Field(default=None, primary_key=True)
    source: str
    app_id: str
    month: date = Field(index=True)  # first day of the month
    kind: str  # revenue_capture | cost_avoidance
    amount: Decimal = _money()
    currency: str = "USD"
    attribution: float = 1.0
    evidence: str = "estimate"  # experiment | observational | estimate
    low: Decimal | None = _money(nullable=True, default=None)
    high: Decimal | None = _money(nullable=True, default=None)
    note: str | None = None
    # estimate rows: the value assumption behind the figure (its owner, approver and expiry are in
    # portfolio.toml [plan.assumptions.<name>]; see portfolio/plan.py)
    assumption: str | None = None


class MaintenanceRecord(SQLModel, table=True):
    """Engineering time spent on an app: a ticket, an incident, a timesheet line."""

    NATURAL_KEY: ClassVar[tuple[str, ...]] = ("source", "app_id", "day", "ref")
    __table_args__ = _unique("maintenancerecord", *NATURAL_KEY)

    id: int | None = Field(default=None, primary_key=True)
    source: str
    app_id: str
    day: date = Field(index=True)
    ref: str  # ticket key / incident id / timesheet line id
    hours: float = 0.0
    kind: str = "klo"  # klo | incident | improvement
    incidents: int = 0
    ttr_hours: float | None = None  # time to restore, for incidents
    url: str | None = None
    title: str | None = None


class BillingTotal(SQLModel, table=True):
    """What a bill itself says it totals, per billing period and currency: the reconciliation anchor.

    A cost connector that reads a bill records the bill's own total next to the per-app rows it
    derives, so allocated + unallocated can be checked against it to the cent.
    """

    NATURAL_KEY: ClassVar[tuple[str, ...]] = ("source", "billing_period", "currency")
    __table_args__ = _unique("billingtotal", *NATURAL_KEY)

    id: int | None = Field(default=None, primary_key=True)
    source: str
    billing_period: str  # YYYY-MM
    currency: str = "USD"
    total: Decimal = _money()
    lines: int = 0  # how many bill lines the total covers
    detail: str | None = None  # e.g. which files, which cost column


class SyncPartition(SQLModel, table=True):
    """What a source last wrote for one partition of a table (e.g. one billing period of a bill): a
    fingerprint of exactly those rows, and how many there were.

    A connector announces each partition's fingerprint before its rows (``connectors.base.Partition``);
    when it matches, and the table still holds that many rows of the partition, the sync skips them:
    a daily re-sync of two years of unchanged bills then writes nothing and reads no key back.
    """

    NATURAL_KEY: ClassVar[tuple[str, ...]] = ("source", "table_name", "field", "value")
    __table_args__ = _unique("syncpartition", *NATURAL_KEY)

    id: int | None = Field(default=None, primary_key=True)
    source: str
    table_name: str
    field: str
    value: str
    fingerprint: str
    rows: int = 0


class SyncRun(SQLModel, table=True):
    """The ledger of every sync: one row per connector run."""

    NATURAL_KEY: ClassVar[tuple[str, ...]] = ("id",)

    id: int | None = Field(default=None, primary_key=True)
    connector: str = Field(index=True)
    connector_type: str = ""
    started: datetime = _instant()
    finished: datetime | None = _instant(nullable=True, default=None)
    status: str = "running"  # running | success | failed | skipped (another run of it was in progress)
    rows_written: int = 0
    rows_deleted: int = 0
    since: datetime | None = _instant(nullable=True, default=None)
    error: str | None = None
    warnings: str | None = None  # notices of a successful run, one per line (conflicts, skipped items)
    worker: str = ""  # host:pid of the process running it, to tell a live run from a killed one


class Decision(SQLModel, table=True):
    """The audit trail: a recorded decision about an app. Never updated or deleted by the UI."""

    NATURAL_KEY: ClassVar[tuple[str, ...]] = ("id",)

    id: str = Field(primary_key=True)  # uuid4 hex for user decisions; stable ids for seeded ones
    app_id: str = Field(index=True)
    decided_at: datetime = _instant()
    decision: str  # keep | invest | retire | review
    decided_by: str
    rationale: str = ""
    next_review: date | None = None


class LifecycleEvent(SQLModel, table=True):
    """The lifecycle's audit trail: a proposal, its approval or rejection, a change of stage.

    Never updated or deleted (see :mod:`portfolio.lifecycle`, the only writer). A proposal freezes
    the numbers it was made on (projected annual savings, value at risk, net effect, freed hours,
    in ``currency``); an approval or rejection names its proposal; a stage event says which stage
    the app is in from ``effective`` on (``planned`` = the planned retirement date of "retiring").
    """

    NATURAL_KEY: ClassVar[tuple[str, ...]] = ("id",)

    id: str = Field(primary_key=True)  # uuid4 hex for recorded events; stable ids for seeded ones
    app_id: str = Field(index=True)
    at: datetime = _instant()  # when it was recorded
    kind: str  # proposal | approval | rejection | stage
    actor: str  # who: the signed-in identity, else the name given (the local user)
    authenticated: bool = False  # the actor is a signed-in identity (not a name typed without sign-in)
    proposal_id: str | None = None  # approval / rejection: the proposal decided; stage: the approved proposal
    action: str | None = None  # proposal: retire | invest | keep
    stage: str | None = None  # stage event: the stage from ``effective`` on
    effective: date | None = None  # stage event: the day it takes effect (retired: the day it stopped)
    planned: date | None = None  # retire proposal / retiring stage: the planned retirement date
    next_review: date | None = None  # invest / keep proposal: when to look again
    rationale: str = ""  # why (a proposal's rationale, an approver's comment, a stage change's reason)
    evidence: str | None = None  # a link to the evidence
    currency: str | None = None  # of the money below
    projected_annual_savings: Decimal | None = _money(nullable=True, default=None)
    value_at_risk: Decimal | None = _money(nullable=True, default=None)
    net_effect: Decimal | None = _money(nullable=True, default=None)
    freed_hours_per_year: float | None = None
    self_approved: bool = False  # approval: the approver is the proposer (allowed without sign-in, or to an admin)
    model_version_at: datetime | None = _instant(nullable=True, default=None)  # the app's newest model version then (MLflow)


class AlertLog(SQLModel, table=True):
    """Alerts already sent, so each event is announced once (a candidate, an overdue review, a failing connector)."""

    NATURAL_KEY: ClassVar[tuple[str, ...]] = ("key",)

    key: str = Field(primary_key=True)  # e.g. "candidate:churn-predictor:zombie"
    kind: str  # candidate | review_due | connector_failing
    sent_at: datetime = _instant()
    message: str = ""
    delivered: bool = True


#: every table a connector may yield, by class
RECORD_TYPES: tuple[type[SQLModel], ...] = (
    App,
    CostRecord,
    UsageRecord,
    UptimeRecord,
    OutcomeRecord,
    MaintenanceRecord,
    BillingTotal,
    Decision,
    LifecycleEvent,
)


# ---- monthly rollups of the daily fact tables (issue 15; kept by portfolio.rollup) ------------------
# Derived, never written by a connector: one row per month (a GenAI row per day) of what
# portfolio.facts reads, so a report over 1,000 apps x 36 months reads thousands of rows, not
# millions. Plain tables (no ORM class: nothing reads them as records); migration 0008.

COST_MONTH = sa.Table(
    "costmonth",
    SQLModel.metadata,
    sa.Column("source", sa.String(), nullable=False),
    sa.Column("app_id", sa.String(), nullable=False),
    sa.Column("category", sa.String(), nullable=False),
    sa.Column("service", sa.String(), nullable=False),
    sa.Column("currency", sa.String(), nullable=False),
    sa.Column("billing_period", sa.String(), nullable=True),
    sa.Column("model", sa.String(), nullable=False),
    sa.Column("estimated", sa.Boolean(), nullable=False),
    sa.Column("day", sa.Date(), nullable=False),  # the month's first day (a GenAI row: its day)
    sa.Column("amount", Money(precision=20, scale=6), nullable=False),  # the exact sum
    sa.Column("rows", sa.Integer(), nullable=False),
    sa.Column("first_day", sa.Date(), nullable=False),
    sa.Column("last_day", sa.Date(), nullable=False),
    sa.Index("ix_costmonth_source_day", "source", "day"),
)

USAGE_MONTH = sa.Table(
    "usagemonth",
    SQLModel.metadata,
    sa.Column("source", sa.String(), nullable=False),
    sa.Column("app_id", sa.String(), nullable=False),
    sa.Column("metric", sa.String(), nullable=False),
    sa.Column("model", sa.String(), nullable=False),
    sa.Column("day", sa.Date(), nullable=False),  # the month's first day (a row naming a model: its day)
    sa.Column("value", sa.Float(), nullable=False),
    sa.Column("rows", sa.Integer(), nullable=False),
    sa.Column("first_day", sa.Date(), nullable=False),
    sa.Column("last_day", sa.Date(), nullable=False),
    sa.Index("ix_usagemonth_source_day", "source", "day"),
)

UPTIME_MONTH = sa.Table(
    "uptimemonth",
    SQLModel.metadata,
    sa.Column("app_id", sa.String(), nullable=False),
    sa.Column("day", sa.Date(), nullable=False),  # the month's first day
    sa.Column("source", sa.String(), nullable=True),  # the last source by name (as the daily read)
    sa.Column("availability", sa.Float(), nullable=True),  # mean over the days of the per-day means
    sa.Column("samples", sa.BigInteger(), nullable=True),
    sa.Column("days", sa.Integer(), nullable=False),
    sa.Column("rows", sa.Integer(), nullable=False),
    sa.Column("first_day", sa.Date(), nullable=False),
    sa.Column("last_day", sa.Date(), nullable=False),
    sa.Index("ix_uptimemonth_day", "day"),
)

"""Everything the domain needs, read once from the database into DataFrames (the DataFrame edge).

Money becomes ``float`` here and nowhere earlier; days stay ``date``. The one exception is the
lifecycle's audit trail (``lifecycle``): its amounts were frozen when a proposal was made and are
read back, never summed, so they stay ``Decimal``. The domain modules
(:mod:`portfolio.pnl`, :mod:`portfolio.maintenance`, :mod:`portfolio.retirement`) are pure
functions of a :class:`Facts` and the config, so they are tested without a database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import pandas as pd
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from portfolio import records, storage

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
        return cls(today=today or datetime.now(UTC).date(), **full)


def _to_float(model: type[SQLModel], frame: pd.DataFrame) -> pd.DataFrame:
    for col in MONEY_COLUMNS.get(model.__name__, ()):
        if col in frame.columns:
            frame[col] = pd.to_numeric(frame[col].map(lambda v: None if v is None else float(v)), errors="coerce")
    return frame


def load_facts(engine: Engine, today: date | None = None) -> Facts:
    """Read every table (money as float from here on)."""

    def read(model: type[SQLModel]) -> pd.DataFrame:
        return _to_float(model, storage.read_frame(engine, model))

    return Facts(
        apps=read(records.App),
        costs=read(records.CostRecord),
        usage=read(records.UsageRecord),
        uptime=read(records.UptimeRecord),
        outcomes=read(records.OutcomeRecord),
        maintenance=read(records.MaintenanceRecord),
        decisions=read(records.Decision),
        billing_totals=read(records.BillingTotal),
        runs=read(records.SyncRun),
        lifecycle=storage.read_frame(engine, records.LifecycleEvent),
        today=today or datetime.now(UTC).date(),
    )

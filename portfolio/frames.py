"""Small DataFrame helpers shared by the domain modules (typed empty frames, days and months).

No domain knowledge lives here: only how days, months and aggregated keys are shaped at the
DataFrame edge, so :mod:`portfolio.books`, :mod:`portfolio.pnl`, :mod:`portfolio.health` and the
rest shape them the same way.
"""

from __future__ import annotations

import pandas as pd

#: columns that hold text, dates or dicts (everything else in a domain frame is float64)
OBJECT_COLUMNS = {
    "app_id", "month", "team", "name", "stage", "value_kind", "owner", "sponsor", "launched", "payback_month",
    "source", "billing_period", "currency", "ok", "status", "kind", "evidence", "rule", "reason", "numbers",
    "snoozed_until", "rules", "reasons", "recommendation", "connector", "type", "description", "last_run",
    "error", "last_success", "last_cost_day", "last_usage_day", "last_uptime_day", "last_outcome_month",
    "last_maintenance_day", "stale", "id", "decided_at", "decision", "decided_by", "rationale", "next_review",
    "cumulative_since", "action", "tag_value", "sources", "first_day", "last_day", "claim", "signals",
}  # fmt: skip


def empty_frame(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="float64" if c not in OBJECT_COLUMNS else "object") for c in columns})


def to_ts(values: pd.Series) -> pd.Series:
    """Days (``date``, strings or datetimes) as naive datetime64 (vectorised)."""
    out = pd.to_datetime(values, errors="coerce")
    if isinstance(out.dtype, pd.DatetimeTZDtype):
        out = out.dt.tz_convert("UTC").dt.tz_localize(None)
    return out


def month_of(ts: pd.Series) -> pd.Series:
    """The first day of each timestamp's month, as datetime64."""
    return pd.Series(ts.to_numpy().astype("datetime64[M]").astype("datetime64[ns]"), index=ts.index)


def as_dates(ts: pd.Series) -> pd.Series:
    """datetime64 -> python ``date`` objects (None for NaT): the DataFrame edge for days."""
    out = ts.dt.date.astype("object")
    return out.where(ts.notna(), None)


def flat(frame: pd.DataFrame | pd.Series) -> pd.DataFrame:
    """reset_index with categorical key columns back to plain objects (small aggregated frames)."""
    out = frame.reset_index()
    for col in out.columns:
        if isinstance(out[col].dtype, pd.CategoricalDtype):
            out[col] = out[col].astype(object)
    return out


def by_app(series: pd.Series) -> pd.Series:
    """A per-app aggregate with a plain object index (categorical keys do not reindex cleanly)."""
    series.index = pd.Index(series.index.astype(object), name="app_id")
    return series


def ratio(num: pd.Series, den: pd.Series) -> pd.Series:
    """num / den, NaN where den is 0."""
    den = den.astype("float64")
    return (num.astype("float64") / den.where(den != 0)).astype("float64")


def nan_to_none(values: pd.Series) -> pd.Series:
    return values.astype("object").where(values.notna(), None)


__all__ = ["OBJECT_COLUMNS", "as_dates", "by_app", "empty_frame", "flat", "month_of", "nan_to_none", "ratio", "to_ts"]

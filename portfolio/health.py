"""Data health: is every connector running, and is every app's data arriving?

Numbers are only trusted when their inputs are fresh. The Data health page shows, per
connector, its last run and its failures in a row, and, per app, the last day each kind of fact
arrived, flagging apps whose cost or usage stopped more than 3 days before the last complete day.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pandas as pd

from portfolio import frames
from portfolio.config import Config
from portfolio.facts import Facts
from portfolio.records import UNALLOCATED

STATUS_COLUMNS = [
    "connector", "type", "description", "last_run", "status", "rows_written", "error", "last_success",
    "failures_in_a_row",
]  # fmt: skip
FRESHNESS_COLUMNS = [
    "app_id", "name", "last_cost_day", "last_usage_day", "last_uptime_day", "last_outcome_month",
    "last_maintenance_day", "stale",
]  # fmt: skip
STALE_AFTER_DAYS = 3


def _value(x: Any) -> Any:
    return None if x is None or (not isinstance(x, str) and pd.isna(x)) else x


def connector_status(
    facts: Facts, cfg: Config | None = None, describe: Callable[[str], str] = lambda _type: ""
) -> pd.DataFrame:
    """Per connector (configured or seen in the sync ledger): its last run and whether it keeps failing.

    ``describe`` gives a connector type's one-line description (``connectors.describe``, handed
    in by the caller: the domain does not import connectors).

    Columns: connector, type, description (first docstring line of its module), last_run (start
    of the latest run, NaT if never run), status (of the latest run, "never run" if none),
    rows_written (latest run), error (latest run), last_success (end of the latest successful
    run, NaT if none), failures_in_a_row (failed runs since the last success).
    """
    runs = facts.runs
    configured = {name: c.type for name, c in (cfg.connectors.items() if cfg else [])}
    names = list(configured)
    groups: dict[str, pd.DataFrame] = {}
    if not runs.empty:
        ordered = runs.assign(_t=pd.to_datetime(runs["started"], utc=True, errors="coerce"))
        ordered = ordered.sort_values(["_t", "id"], ascending=[False, False])
        groups = {str(k): g for k, g in ordered.groupby("connector", sort=False)}
        names += sorted(k for k in groups if k not in configured)
    if not names:
        return frames.empty_frame(STATUS_COLUMNS)
    rows = []
    for name in names:  # one per connector
        g = groups.get(name)
        type_name = configured.get(name) or (str(g["connector_type"].iloc[0]) if g is not None else "")
        row: dict[str, Any] = {"connector": name, "type": type_name, "description": describe(type_name)}
        if g is None or g.empty:
            row |= {"last_run": None, "status": "never run", "rows_written": 0, "error": None,
                    "last_success": None, "failures_in_a_row": 0}  # fmt: skip
        else:
            latest = g.iloc[0]
            ok = g[g["status"] == "success"]
            statuses = [s for s in g["status"] if s != "running"]
            streak = next((i for i, s in enumerate(statuses) if s != "failed"), len(statuses))
            row |= {
                "last_run": _value(latest["started"]),
                "status": latest["status"],
                "rows_written": int(latest["rows_written"] or 0),
                "error": _value(latest["error"]),
                "last_success": _value(ok.iloc[0]["finished"]) if not ok.empty else None,
                "failures_in_a_row": streak,
            }
        rows.append(row)
    return pd.DataFrame(rows, columns=STATUS_COLUMNS)


def _last(frame: pd.DataFrame, column: str) -> pd.Series:
    if frame.empty:
        return pd.Series(dtype="object")
    # aggregated facts (portfolio.facts): a monthly row's own last day, not its month's first
    ts = frames.to_ts(frame["last_day"] if "last_day" in frame.columns else frame[column])
    return frames.as_dates(ts.groupby(frame["app_id"].astype(str)).max())


def freshness(facts: Facts) -> pd.DataFrame:
    """Per app of the inventory: the last day each kind of fact arrived, and whether it is stale.

    Columns: app_id, name, last_cost_day, last_usage_day, last_uptime_day, last_outcome_month,
    last_maintenance_day (``date`` or None), stale (cost or usage missing or older than 3 days
    before the last complete day; retired apps are never stale).
    """
    apps = facts.apps
    if apps.empty:
        return frames.empty_frame(FRESHNESS_COLUMNS)
    apps = apps[apps["app_id"] != UNALLOCATED]
    out = pd.DataFrame({"app_id": apps["app_id"].astype(str), "name": apps["name"]}).set_index("app_id", drop=False)
    out.index.name = None
    pairs = [
        ("last_cost_day", facts.costs, "day"),
        ("last_usage_day", facts.usage, "day"),
        ("last_uptime_day", facts.uptime, "day"),
        ("last_outcome_month", facts.outcomes, "month"),
        ("last_maintenance_day", facts.maintenance, "day"),
    ]
    for col, frame, field in pairs:
        last = _last(frame, field).reindex(out.index).astype("object")
        out[col] = last.where(last.notna(), None)
    limit = pd.Timestamp(facts.last_complete_day - timedelta(days=STALE_AFTER_DAYS))

    def old(col: str) -> pd.Series:
        ts = pd.to_datetime(out[col], errors="coerce")
        return ts.isna() | (ts < limit)

    stale = old("last_cost_day") | old("last_usage_day")
    out["stale"] = (stale & (apps.set_index("app_id")["stage"].reindex(out.index) != "retired")).astype(bool)
    return out[FRESHNESS_COLUMNS].sort_values("app_id", kind="stable").reset_index(drop=True)

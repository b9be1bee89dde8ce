"""Maintenance load: where the team's hours go, which apps break most, and what to do about it.

The team lead's questions. One vocabulary, used everywhere in the product:

- **KLO hours** (keep the lights on) = hours of kind ``klo`` + hours of kind ``incident``:
  firefighting is part of keeping an app alive. Unknown kinds count as KLO.
- **improvement hours** = hours of kind ``improvement``: new work, not upkeep.
- incidents = the sum of the records' ``incidents``; MTTR = mean ``ttr_hours`` of incident rows
  (kind ``incident`` or ``incidents > 0``) that carry one, NaN when there are none.
- people cost = all hours × the team's loaded hourly rate (config), as in :mod:`portfolio.pnl`.
- KLO share = KLO hours / (team capacity hours per month × months in the period).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from portfolio import pnl
from portfolio.config import Config
from portfolio.facts import Facts
from portfolio.periods import Period
from portfolio.records import UNALLOCATED

MONTHLY_COLUMNS = [
    "app_id", "month", "team", "klo_hours", "incident_hours", "improvement_hours", "hours", "incidents",
    "mttr_hours", "people_cost",
]  # fmt: skip
LOAD_COLUMNS = [
    "app_id", "name", "team", "klo_hours", "improvement_hours", "hours", "incidents", "mttr_hours", "people_cost",
    "value", "maintenance_to_value", "klo_share_of_team", "recommendation", "reason",
]  # fmt: skip
TEAM_COLUMNS = ["team", "klo_hours", "improvement_hours", "capacity_hours", "klo_share", "incidents", "mttr_hours"]

#: an app with at least this many incidents per month on average breaks often (harden it if it pays)
HARDEN_INCIDENTS_PER_MONTH = 1.0
#: an app taking at least this share of its team's capacity in KLO deserves a look
WATCH_KLO_SHARE = 0.10


def _rows(facts: Facts, cfg: Config, start: Any = None, end: Any = None) -> pd.DataFrame:
    """Maintenance rows (day <= last complete day, optionally within [start, end]) with split hours."""
    rows = pnl._maintenance(facts, end or facts.last_complete_day)
    if start is not None:
        rows = rows[rows["ts"] >= pd.Timestamp(start)]
    rows = rows.copy()
    kind = rows["kind"]
    rows["incident_hours"] = rows["hours"].where(kind == "incident", 0.0).astype("float64")
    rows["improvement_hours"] = rows["hours"].where(kind == "improvement", 0.0).astype("float64")
    rows["klo_hours"] = rows["hours"].where(kind != "improvement", 0.0).astype("float64")
    is_incident = (kind == "incident") | (rows["incidents"].astype("float64") > 0)
    rows["ttr"] = rows["ttr_hours"].astype("float64").where(is_incident)
    rows["hours"] = rows["hours"].astype("float64")
    rows["incidents"] = rows["incidents"].astype("float64")
    return rows


def _aggregate(rows: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return rows.groupby(keys).agg(
        klo_hours=("klo_hours", "sum"),
        incident_hours=("incident_hours", "sum"),
        improvement_hours=("improvement_hours", "sum"),
        hours=("hours", "sum"),
        incidents=("incidents", "sum"),
        mttr_hours=("ttr", "mean"),
    )


def maintenance_monthly(facts: Facts, cfg: Config) -> pd.DataFrame:
    """Hours per app and month, split into KLO (klo + incident) and improvement, with incidents and MTTR.

    Why: the trend of upkeep per app shows which apps are getting more expensive to keep alive.
    Columns: app_id, month (``date``, the 1st), team, klo_hours (klo + incident hours),
    incident_hours, improvement_hours, hours, incidents, mttr_hours (NaN without incidents that
    carry a time to restore), people_cost (hours × team hourly rate).
    """
    rows = _rows(facts, cfg)
    if rows.empty:
        return pnl.empty_frame(MONTHLY_COLUMNS)
    out = _aggregate(rows, ["app_id", "month"]).reset_index()
    apps = pnl.inventory(facts, cfg, out["app_id"].unique())
    out["team"] = out["app_id"].map(apps.set_index("app_id")["team"])
    out["people_cost"] = out["hours"] * out["app_id"].map(pnl.hourly_rates(apps, cfg))
    out["month"] = pnl.as_dates(out["month"])
    return out[MONTHLY_COLUMNS].sort_values(["app_id", "month"]).reset_index(drop=True)


def _recommend(row: Any, months: int, share: float) -> tuple[str, str]:
    """harden (worth it, breaks often) | drop (upkeep eats the value) | watch (heavy on the team) | ok."""
    hours, value, people = row.hours, row.value, row.people_cost
    if hours <= 0:
        return "ok", "no maintenance hours recorded"
    if value <= 0 and row.klo_hours > 0:
        return "drop", f"{row.klo_hours:,.0f} KLO hours ({people:,.0f} people cost) and no recorded value"
    ratio = row.maintenance_to_value
    if ratio > share:
        return "drop", f"people cost {people:,.0f} is {ratio:.0%} of its value {value:,.0f} (more than {share:.0%})"
    per_month = row.incidents / months
    if per_month >= HARDEN_INCIDENTS_PER_MONTH:
        return "harden", (
            f"{row.incidents:,.0f} incidents in {months} months (MTTR {_hours(row.mttr_hours)}) "
            f"but its value {value:,.0f} is {1 / ratio if ratio else float('inf'):,.1f}x its people cost: worth hardening"
        )
    if row.klo_share_of_team >= WATCH_KLO_SHARE:
        return "watch", f"KLO takes {row.klo_share_of_team:.0%} of the team's capacity"
    return "ok", f"people cost is {ratio:.0%} of value, {per_month:.1f} incidents a month"


def _hours(x: float) -> str:
    return "n/a" if pd.isna(x) else f"{x:.1f} h"


def maintenance_load(facts: Facts, cfg: Config, period: Period, team: str | None = None) -> pd.DataFrame:
    """Which apps take the team's time, and are they worth hardening or dropping?

    One row per app with maintenance hours or value in the period (``_unallocated`` excluded).
    Columns: app_id, name, team, klo_hours (klo + incident), improvement_hours, hours, incidents,
    mttr_hours, people_cost, value, maintenance_to_value (people_cost / value, NaN when value is 0),
    klo_share_of_team (klo_hours / (team capacity_hours × months in the period)), recommendation
    ("drop": no value or people cost above ``rules.maintenance_sink_share`` of value; "harden": at
    least one incident a month on average yet worth it; "watch": KLO >= 10% of team capacity;
    else "ok"), reason (in words, with the numbers).
    """
    end = min(period.end, facts.last_complete_day)
    rows = _rows(facts, cfg, period.start, end) if end >= period.start else _rows(facts, cfg).iloc[0:0]
    apps = pnl.app_pnl(facts, cfg, period, team)
    apps = apps[apps["app_id"] != UNALLOCATED]
    if not rows.empty:
        agg = _aggregate(rows, ["app_id"])
    else:
        agg = pd.DataFrame(columns=["klo_hours", "incident_hours", "improvement_hours", "hours", "incidents", "mttr_hours"])
    frame = apps[["app_id", "name", "team", "value", "people_cost"]].set_index("app_id").join(agg, how="left")
    frame = frame[(frame["hours"].fillna(0) > 0) | (frame["value"] != 0)]
    if frame.empty:
        return pnl.empty_frame(LOAD_COLUMNS)
    for col in ("klo_hours", "improvement_hours", "hours", "incidents"):
        frame[col] = frame[col].astype("float64").fillna(0.0)
    frame["mttr_hours"] = frame["mttr_hours"].astype("float64")
    months = len(period.months)
    capacity = frame["team"].map(lambda t: cfg.team(t).capacity_hours * months).astype("float64")
    frame["maintenance_to_value"] = pnl._ratio(frame["people_cost"], frame["value"].where(frame["value"] > 0, 0.0))
    frame["klo_share_of_team"] = frame["klo_hours"] / capacity
    share = cfg.rules.maintenance_sink_share
    recs = [_recommend(r, months, share) for r in frame.itertuples()]  # one per app, not per day
    frame["recommendation"] = [r[0] for r in recs]
    frame["reason"] = [r[1] for r in recs]
    frame = frame.reset_index()
    return frame[LOAD_COLUMNS].sort_values(["klo_hours", "app_id"], ascending=[False, True]).reset_index(drop=True)


def team_load(facts: Facts, cfg: Config, period: Period) -> pd.DataFrame:
    """How much of each team's capacity goes to keeping the lights on (vs new work).

    One row per team of the config or with maintenance hours. Columns: team, klo_hours (klo +
    incident), improvement_hours, capacity_hours (monthly capacity × months in the period),
    klo_share (klo_hours / capacity_hours), incidents, mttr_hours.
    """
    end = min(period.end, facts.last_complete_day)
    rows = _rows(facts, cfg, period.start, end) if end >= period.start else _rows(facts, cfg).iloc[0:0]
    teams: list[str] = list(cfg.teams)
    if not rows.empty:
        apps = pnl.inventory(facts, cfg, rows["app_id"].unique())
        rows = rows.assign(team=rows["app_id"].map(apps.set_index("app_id")["team"]))
        agg = _aggregate(rows, ["team"])
        teams += [t for t in agg.index if t not in teams]
    else:
        agg = pd.DataFrame(columns=["klo_hours", "improvement_hours", "incidents", "mttr_hours"])
    if not teams:
        return pnl.empty_frame(TEAM_COLUMNS)
    months = len(period.months)
    out = pd.DataFrame({"team": teams}).set_index("team").join(agg, how="left")
    for col in ("klo_hours", "improvement_hours", "incidents"):
        out[col] = out[col].astype("float64").fillna(0.0)
    out["mttr_hours"] = out["mttr_hours"].astype("float64")
    out["capacity_hours"] = np.array([cfg.team(t).capacity_hours * months for t in out.index], dtype="float64")
    out["klo_share"] = out["klo_hours"] / out["capacity_hours"]
    out = out.reset_index()
    return out[TEAM_COLUMNS].sort_values(["klo_share", "team"], ascending=[False, True]).reset_index(drop=True)

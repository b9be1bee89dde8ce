"""Maintenance load: where the team's hours go, which apps break most, and what to do about it.

The team lead's questions. One vocabulary, used everywhere in the product:

- **KLO hours** (keep the lights on) = hours of kind ``klo`` + hours of kind ``incident``:
  firefighting is part of keeping an app alive. Unknown kinds count as KLO.
- **improvement hours** = hours of kind ``improvement``: new work, not upkeep.
- incidents = the sum of the records' ``incidents``; MTTR = mean ``ttr_hours`` of incident rows
  (kind ``incident`` or ``incidents > 0``) that carry one, NaN when there are none.
- people cost = all hours × the team's loaded hourly rate (config) + spend booked with category
  "people": the one definition, :meth:`portfolio.books.Books.monthly`, as in the P&L.
- KLO share = KLO hours / (team capacity hours per month × months in the period).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from portfolio import pnl, recommend
from portfolio.books import Books
from portfolio.books import of as books_of
from portfolio.config import Config
from portfolio.facts import Facts
from portfolio.frames import as_dates, empty_frame, ratio
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



def _books(facts: Facts, cfg: Config, books: Books | None) -> Books:
    """The caller's books (they must be of these facts and config), else new ones."""
    return books if books is not None else books_of(facts, cfg)


def _rows(books: Books, start: Any = None, end: Any = None) -> pd.DataFrame:
    """Maintenance rows (day <= last complete day, optionally within [start, end]) with split hours."""
    rows = books.maintenance(end or books.last_day)
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


def maintenance_monthly(facts: Facts, cfg: Config, books: Books | None = None) -> pd.DataFrame:
    """Hours per app and month, split into KLO (klo + incident) and improvement, with incidents and MTTR.

    Why: the trend of upkeep per app shows which apps are getting more expensive to keep alive.
    One row per app and month with maintenance hours or people cost. Columns: app_id, month
    (``date``, the 1st), team, klo_hours (klo + incident hours), incident_hours, improvement_hours,
    hours, incidents, mttr_hours (NaN without incidents that carry a time to restore), people_cost
    (the P&L's: hours × team hourly rate + spend booked as "people").
    """
    b = _books(facts, cfg, books)
    rows = _rows(b)
    monthly = b.monthly()
    people = monthly.loc[monthly["people_cost"] != 0, ["app_id", "month", "people_cost"]]
    if rows.empty and people.empty:
        return empty_frame(MONTHLY_COLUMNS)
    if rows.empty:
        out = people.copy()
    else:
        out = _aggregate(rows, ["app_id", "month"]).reset_index().merge(people, on=["app_id", "month"], how="outer")
    for col in ("klo_hours", "incident_hours", "improvement_hours", "hours", "incidents", "people_cost"):
        if col not in out.columns:
            out[col] = 0.0
        out[col] = out[col].astype("float64").fillna(0.0)
    if "mttr_hours" not in out.columns:
        out["mttr_hours"] = float("nan")
    out["team"] = out["app_id"].map(b.inventory().set_index("app_id")["team"])
    out["month"] = as_dates(out["month"])
    return out[MONTHLY_COLUMNS].sort_values(["app_id", "month"]).reset_index(drop=True)


def maintenance_load(
    facts: Facts, cfg: Config, period: Period, team: str | None = None, books: Books | None = None
) -> pd.DataFrame:
    """Which apps take the team's time, and what to do about each.

    One row per app with maintenance hours or value in the period (``_unallocated`` excluded).
    Columns: app_id, name, team, klo_hours (klo + incident), improvement_hours, hours, incidents,
    mttr_hours, people_cost, value, maintenance_to_value (people_cost / value, NaN when value is 0),
    klo_share_of_team (klo_hours / (team capacity_hours × months in the period)), recommendation
    and reason: the app's one recommendation as of the last complete day
    (:func:`portfolio.recommend.recommendations`, the same on every page; None for a retired app).
    """
    b = _books(facts, cfg, books)
    end = min(period.end, facts.last_complete_day)
    rows = _rows(b, period.start, end) if end >= period.start else _rows(b).iloc[0:0]
    apps = pnl.app_pnl(facts, cfg, period, team, books=b)
    apps = apps[apps["app_id"] != UNALLOCATED]
    if not rows.empty:
        agg = _aggregate(rows, ["app_id"])
    else:
        agg = pd.DataFrame(columns=["klo_hours", "incident_hours", "improvement_hours", "hours", "incidents", "mttr_hours"])
    frame = apps[["app_id", "name", "team", "value", "people_cost"]].set_index("app_id").join(agg, how="left")
    frame = frame[(frame["hours"].fillna(0) > 0) | (frame["value"] != 0)]
    if frame.empty:
        return empty_frame(LOAD_COLUMNS)
    for col in ("klo_hours", "improvement_hours", "hours", "incidents"):
        frame[col] = frame[col].astype("float64").fillna(0.0)
    frame["mttr_hours"] = frame["mttr_hours"].astype("float64")
    months = len(period.months)
    capacity = frame["team"].map(lambda t: cfg.team(t).capacity_hours * months).astype("float64")
    frame["maintenance_to_value"] = ratio(frame["people_cost"], frame["value"].where(frame["value"] > 0, 0.0))
    frame["klo_share_of_team"] = frame["klo_hours"] / capacity
    recs = recommend.recommendations(facts, cfg, books=b).set_index("app_id")
    frame["recommendation"] = recs["action"].reindex(frame.index).astype("object")
    frame["reason"] = recs["reason"].reindex(frame.index).astype("object")
    for col in ("recommendation", "reason"):
        frame[col] = frame[col].where(frame[col].notna(), None)
    frame = frame.reset_index()
    return frame[LOAD_COLUMNS].sort_values(["klo_hours", "app_id"], ascending=[False, True]).reset_index(drop=True)


def team_load(facts: Facts, cfg: Config, period: Period, books: Books | None = None) -> pd.DataFrame:
    """How much of each team's capacity goes to keeping the lights on (vs new work).

    One row per team of the config or with maintenance hours. Columns: team, klo_hours (klo +
    incident), improvement_hours, capacity_hours (monthly capacity × months in the period),
    klo_share (klo_hours / capacity_hours), incidents, mttr_hours.
    """
    b = _books(facts, cfg, books)
    end = min(period.end, facts.last_complete_day)
    rows = _rows(b, period.start, end) if end >= period.start else _rows(b).iloc[0:0]
    teams: list[str] = list(cfg.teams)
    if not rows.empty:
        apps = b.inventory()
        rows = rows.assign(team=rows["app_id"].map(apps.set_index("app_id")["team"]))
        agg = _aggregate(rows, ["team"])
        teams += [t for t in agg.index if t not in teams]
    else:
        agg = pd.DataFrame(columns=["klo_hours", "improvement_hours", "incidents", "mttr_hours"])
    if not teams:
        return empty_frame(TEAM_COLUMNS)
    months = len(period.months)
    out = pd.DataFrame({"team": teams}).set_index("team").join(agg, how="left")
    for col in ("klo_hours", "improvement_hours", "incidents"):
        out[col] = out[col].astype("float64").fillna(0.0)
    out["mttr_hours"] = out["mttr_hours"].astype("float64")
    out["capacity_hours"] = np.array([cfg.team(t).capacity_hours * months for t in out.index], dtype="float64")
    out["klo_share"] = out["klo_hours"] / out["capacity_hours"]
    out = out.reset_index()
    return out[TEAM_COLUMNS].sort_values(["klo_share", "team"], ascending=[False, True]).reset_index(drop=True)

"""The app lifecycle: stages as events, proposals that an approver approves or rejects.

Stages: pilot, production, retiring (with a planned date), retired (with the date it stopped) and
paused. Every change is a :class:`portfolio.records.LifecycleEvent` — never updated, never deleted:
the audit trail says who did what, when, why, with a link to the evidence.

- An **editor proposes** retire, invest or keep, with a rationale and an evidence link. The
  proposal freezes the numbers it was made on, from the same books as the Retirement page
  (:meth:`portfolio.books.Books.run_rate`, as of the last complete day): projected annual savings
  (run-rate cost), value at risk (run-rate value), net effect (savings − value at risk) and freed
  maintenance hours a year.
- An **approver approves or rejects** it, with a comment. Approving a retire proposal moves the app
  to "retiring" with the planned date (and records a ``retire`` Decision whose next review is that
  date, which snoozes its findings until then); approving invest or keep records that Decision as
  the Retirement page always has (see :mod:`portfolio.decisions`).
- **Who may approve** (``[auth]``, roles viewer < editor < approver < admin): with sign-in, an
  approver or admin, and not the proposer — except an admin, whose own approval is flagged
  ``self_approved``. Without sign-in the local user may approve their own proposal; the approval
  is flagged ``self_approved`` all the same, and every event records whether its actor was a
  signed-in identity (``authenticated``).
- **Stage changes** (pause, resume, call a retirement off, record the day it actually stopped)
  are events too, with who, why, evidence and the day they take effect.

The current stage is derived, never stored: the latest stage event in effect on a day, else the
inventory's stage (portfolio.toml or an inventory connector). An app "retiring" with planned date
D is "retired" from D on, so it moves without any job running.

Reads are pure functions of :class:`portfolio.facts.Facts`; writers take an engine and write each
change in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pandas as pd

from portfolio import frames
from portfolio.errors import PortfolioError
from portfolio.facts import Facts

HISTORY_COLUMNS = [
    "id", "app_id", "name", "at", "kind", "actor", "authenticated", "proposal_id", "action", "stage", "effective",
    "planned", "next_review", "rationale", "evidence", "currency", "projected_annual_savings", "value_at_risk",
    "net_effect", "freed_hours_per_year", "self_approved", "model_version_at",
]  # fmt: skip
PROPOSAL_COLUMNS = [
    "id", "app_id", "name", "at", "action", "actor", "planned", "next_review", "rationale", "evidence", "currency",
    "projected_annual_savings", "value_at_risk", "net_effect", "freed_hours_per_year",
]  # fmt: skip


class LifecycleError(PortfolioError, ValueError):
    """A lifecycle change that cannot be recorded (unknown app, bad transition, bad date, ...) or an
    unknown app asked about; the message says which and why."""


@dataclass(frozen=True)
class Retirement:
    """A retired app: when it stopped, who proposed and approved it, and what it was projected to free.

    ``retired_on`` is the day it stopped: a recorded "retired" stage event's date, else the planned
    date of its approved retirement (the app is retired from that day on), else for an app the
    inventory says is retired, its ``retired_on`` (portfolio.toml). ``None`` when no date is known:
    ``note`` says so, and nothing is guessed. The money is as frozen in the approved proposal
    (``None`` for an app retired without one), in ``currency``.
    """

    app_id: str
    name: str
    retired_on: date | None
    planned_on: date | None
    proposal_id: str | None
    proposed_by: str | None
    proposed_at: datetime | None
    approved_by: str | None
    approved_at: datetime | None
    self_approved: bool
    currency: str | None
    projected_annual_savings: Decimal | None
    value_at_risk: Decimal | None
    net_effect: Decimal | None
    freed_hours_per_year: float | None
    freed_hours_per_month: float | None
    source: str  # "lifecycle" (events) or "inventory" (the App row says retired, no events)
    note: str = ""


# ---------------------------------------------------------------------------------------------
# reading


def _is_missing(v: Any) -> bool:
    return v is None or (not isinstance(v, str | bytes) and bool(pd.isna(v)))


def _date(v: Any) -> date | None:
    if _is_missing(v):
        return None
    if isinstance(v, datetime):
        return v.date()
    if isinstance(v, date):
        return v
    return pd.Timestamp(str(v)).date()


def _instant(v: Any) -> datetime | None:
    if _is_missing(v):
        return None
    ts = pd.Timestamp(v)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.to_pydatetime()  # type: ignore[no-any-return]


def _decimal(v: Any) -> Decimal | None:
    if _is_missing(v):
        return None
    return v if isinstance(v, Decimal) else Decimal(str(v))


def _float(v: Any) -> float | None:
    return None if _is_missing(v) else float(v)


def _events(facts: Facts) -> pd.DataFrame:
    ev = facts.lifecycle
    if ev is None or ev.empty:
        return frames.empty_frame([c for c in HISTORY_COLUMNS if c != "name"])
    return ev


def _names(facts: Facts) -> dict[str, str]:
    apps = facts.apps
    if apps.empty:
        return {}
    return {str(a): str(n) if not _is_missing(n) and str(n) else str(a) for a, n in zip(apps["app_id"], apps["name"], strict=True)}


def _newest_first(frame: pd.DataFrame) -> pd.DataFrame:
    order = pd.to_datetime(frame["at"], utc=True, errors="coerce")
    return frame.assign(_order=order).sort_values(["_order", "id"], ascending=[False, True]).drop(columns="_order")


def stage_history(facts: Facts, app_id: str | None = None) -> pd.DataFrame:
    """Every lifecycle event (optionally of one app), newest first: the audit trail as recorded.

    Columns: :data:`HISTORY_COLUMNS` — the LifecycleEvent fields and ``name`` (the app's name from
    the inventory, else its id). Money stays ``Decimal``; an empty trail is an empty frame with
    these columns.
    """
    ev = _events(facts)
    if app_id is not None and not ev.empty:
        ev = ev[ev["app_id"] == app_id]
    if ev.empty:
        return frames.empty_frame(HISTORY_COLUMNS)
    names = _names(facts)
    out = ev.copy()
    out["name"] = out["app_id"].map(lambda a: names.get(str(a), str(a)))
    return _newest_first(out)[HISTORY_COLUMNS].reset_index(drop=True)


def _stage_events(ev: pd.DataFrame, app_id: str, on: date) -> pd.DataFrame:
    """The app's stage events in effect on ``on``, latest last (by effective day, then recording time)."""
    rows = ev[(ev["app_id"] == app_id) & (ev["kind"] == "stage")]
    if rows.empty:
        return rows
    eff = rows["effective"].map(_date)
    rows = rows[eff.map(lambda d: d is not None and d <= on)]
    if rows.empty:
        return rows
    return rows.assign(
        _eff=rows["effective"].map(_date), _at=pd.to_datetime(rows["at"], utc=True, errors="coerce")
    ).sort_values(["_eff", "_at", "id"])


def _inventory_stage(facts: Facts, app_id: str) -> str:
    apps = facts.apps
    row = apps[apps["app_id"] == app_id] if not apps.empty else apps
    if row.empty:
        raise LifecycleError(f"app {app_id!r} is not in the inventory")
    stage = row["stage"].iloc[0]
    return "production" if _is_missing(stage) or not str(stage) else str(stage)


def _derived(stage: str, planned: date | None, on: date) -> str:
    # an app retiring with a planned date D is retired from D on: derived, so no job has to move it
    if stage == "retiring" and planned is not None and on >= planned:
        return "retired"
    return stage


def current_stage(facts: Facts, app_id: str, on: date) -> str:
    """The app's stage on day ``on``: the latest stage event in effect then, else the inventory's.

    "retiring" with a planned date on or before ``on`` reads "retired". Raises
    :class:`LifecycleError` for an app that is neither in the inventory nor in the trail.
    """
    ev = _events(facts)
    rows = _stage_events(ev, app_id, on) if not ev.empty else ev
    if not rows.empty:
        last = rows.iloc[-1]
        return _derived(str(last["stage"]), _date(last["planned"]), on)
    return _inventory_stage(facts, app_id)


def stages(facts: Facts, on: date | None = None) -> pd.Series:
    """app_id -> stage on ``on`` (default ``facts.today``) for every app in the inventory."""
    on = on or facts.today
    apps = facts.apps
    if apps.empty:
        return pd.Series(dtype="object")
    return pd.Series({str(a): current_stage(facts, str(a), on) for a in apps["app_id"]}, dtype="object")


def _decision_of(ev: pd.DataFrame, proposal_id: str) -> pd.Series | None:
    """The approval or rejection of a proposal, if it has one (there is at most one)."""
    rows = ev[(ev["proposal_id"] == proposal_id) & ev["kind"].isin(["approval", "rejection"])]
    return None if rows.empty else rows.iloc[0]


def open_proposals(facts: Facts, app_id: str | None = None) -> pd.DataFrame:
    """Proposals waiting for an approver (no approval or rejection yet), oldest first.

    Columns: :data:`PROPOSAL_COLUMNS` (``actor`` = who proposed; money as frozen, Decimal).
    """
    ev = _events(facts)
    if ev.empty:
        return frames.empty_frame(PROPOSAL_COLUMNS)
    props = ev[ev["kind"] == "proposal"]
    if app_id is not None:
        props = props[props["app_id"] == app_id]
    decided = set(ev.loc[ev["kind"].isin(["approval", "rejection"]), "proposal_id"].dropna())
    props = props[~props["id"].isin(decided)]
    if props.empty:
        return frames.empty_frame(PROPOSAL_COLUMNS)
    names = _names(facts)
    out = props.copy()
    out["name"] = out["app_id"].map(lambda a: names.get(str(a), str(a)))
    out = _newest_first(out).iloc[::-1]
    return out[PROPOSAL_COLUMNS].reset_index(drop=True)


def _retirement_from_events(facts: Facts, ev: pd.DataFrame, app_id: str, name: str) -> Retirement:
    rows = _stage_events(ev, app_id, facts.today)
    last = rows.iloc[-1]
    planned: date | None = None
    proposal_id = None if _is_missing(last["proposal_id"]) else str(last["proposal_id"])
    if str(last["stage"]) == "retired":
        retired_on = _date(last["effective"])
        before = rows[rows["stage"] == "retiring"]
        if not before.empty:
            planned = _date(before.iloc[-1]["planned"])
            if proposal_id is None and not _is_missing(before.iloc[-1]["proposal_id"]):
                proposal_id = str(before.iloc[-1]["proposal_id"])
    else:  # retiring, past its planned date
        planned = _date(last["planned"])
        retired_on = planned
    prop = ev[(ev["id"] == proposal_id) & (ev["kind"] == "proposal")] if proposal_id else ev.iloc[0:0]
    p = prop.iloc[0] if not prop.empty else None
    decision = _decision_of(ev, proposal_id) if proposal_id else None
    approval = decision if decision is not None and decision["kind"] == "approval" else None
    per_year = _float(p["freed_hours_per_year"]) if p is not None else None
    return Retirement(
        app_id=app_id,
        name=name,
        retired_on=retired_on,
        planned_on=planned,
        proposal_id=proposal_id if p is not None else None,
        proposed_by=str(p["actor"]) if p is not None else None,
        proposed_at=_instant(p["at"]) if p is not None else None,
        approved_by=str(approval["actor"]) if approval is not None else None,
        approved_at=_instant(approval["at"]) if approval is not None else None,
        self_approved=bool(approval["self_approved"]) if approval is not None else False,
        currency=None if p is None or _is_missing(p["currency"]) else str(p["currency"]),
        projected_annual_savings=_decimal(p["projected_annual_savings"]) if p is not None else None,
        value_at_risk=_decimal(p["value_at_risk"]) if p is not None else None,
        net_effect=_decimal(p["net_effect"]) if p is not None else None,
        freed_hours_per_year=per_year,
        freed_hours_per_month=None if per_year is None else per_year / 12,
        source="lifecycle",
        note="" if p is not None else "retired by a stage event without an approved proposal: no projection was frozen",
    )


def retirements(facts: Facts) -> list[Retirement]:
    """Every app retired as of ``facts.today``, by the day it stopped (undated ones last), then app id.

    From the lifecycle's events where it has them; else an app whose inventory stage is
    "retired", dated by its ``retired_on`` — or undated, with a note saying so.
    """
    ev = _events(facts)
    names = _names(facts)
    staged: list[str] = [str(a) for a in ev.loc[ev["kind"] == "stage", "app_id"]] if not ev.empty else []
    ids = list(dict.fromkeys([*names, *staged]))  # inventory apps, and apps with stage events
    out: list[Retirement] = []
    for app_id in ids:
        if current_stage(facts, app_id, facts.today) != "retired":
            continue
        name = names.get(app_id, app_id)
        if not ev.empty and not _stage_events(ev, app_id, facts.today).empty:
            out.append(_retirement_from_events(facts, ev, app_id, name))
            continue
        row = facts.apps[facts.apps["app_id"] == app_id].iloc[0]
        day = _date(row["retired_on"]) if "retired_on" in row.index else None
        note = "" if day is not None else (
            "retired in the inventory with no date: give retired_on in portfolio.toml or record a 'retired' "
            "stage event, so its savings can be checked"
        )
        out.append(
            Retirement(
                app_id=app_id, name=name, retired_on=day, planned_on=None, proposal_id=None, proposed_by=None,
                proposed_at=None, approved_by=None, approved_at=None, self_approved=False, currency=None,
                projected_annual_savings=None, value_at_risk=None, net_effect=None, freed_hours_per_year=None,
                freed_hours_per_month=None, source="inventory", note=note,
            )
        )  # fmt: skip
    out.sort(key=lambda r: (r.retired_on is None, r.retired_on or date.min, r.app_id))
    return out

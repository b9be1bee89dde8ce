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

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlmodel import SQLModel

from portfolio import auth, frames, records, storage
from portfolio.books import Books
from portfolio.books import of as books_of
from portfolio.config import Config
from portfolio.errors import PortfolioError
from portfolio.facts import Facts, load_facts

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


#: within one instant (an approval and the stage event it causes) the consequence is the newer
_KIND_ORDER = {"proposal": 0, "approval": 1, "rejection": 1, "stage": 2}


def _newest_first(frame: pd.DataFrame) -> pd.DataFrame:
    order = pd.to_datetime(frame["at"], utc=True, errors="coerce")
    rank = frame["kind"].map(_KIND_ORDER).fillna(3)
    return (
        frame.assign(_order=order, _rank=rank)
        .sort_values(["_order", "_rank", "id"], ascending=[False, False, True])
        .drop(columns=["_order", "_rank"])
    )


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
    return _in_effect(ev[ev["app_id"] == app_id], on)


def _in_effect(ev: pd.DataFrame, on: date) -> pd.DataFrame:
    """Every app's stage events in effect on ``on``, latest last (by effective day, then recording
    time), in one frame: 1,000 apps would otherwise filter the trail 1,000 times."""
    rows = ev[ev["kind"] == "stage"] if not ev.empty else ev
    if rows.empty:
        return rows
    eff = rows["effective"].map(_date)
    rows = rows[eff.map(lambda d: d is not None and d <= on)]
    if rows.empty:
        return rows
    return rows.assign(
        _eff=rows["effective"].map(_date), _at=pd.to_datetime(rows["at"], utc=True, errors="coerce")
    ).sort_values(["_eff", "_at", "id"])


def _stage_rows(ev: pd.DataFrame, on: date) -> dict[str, pd.DataFrame]:
    """Per app, its stage events in effect on ``on``, latest last (what :func:`_stage_events` gives one app)."""
    rows = _in_effect(ev, on)
    return {str(a): group for a, group in rows.groupby("app_id", sort=False)} if not rows.empty else {}


def _stages_on(ev: pd.DataFrame, on: date) -> dict[str, str]:
    """Per app with stage events in effect on ``on``, the stage they give it then (what
    :func:`_stage_on` gives of its :func:`_stage_rows`), without a frame per app."""
    rows = _in_effect(ev, on)
    if rows.empty:
        return {}
    last = rows.drop_duplicates("app_id", keep="last")
    return {
        str(a): _derived(str(stage), _date(planned), on)
        for a, stage, planned in zip(last["app_id"], last["stage"], last["planned"], strict=True)
    }


def _inventory_stages(facts: Facts) -> dict[str, str]:
    apps = facts.apps
    if apps.empty:
        return {}
    return {str(a): _stage_text(s) for a, s in zip(apps["app_id"], apps["stage"], strict=True)}


def _stage_text(stage: Any) -> str:
    """An inventory stage as the lifecycle reads it (none given: production)."""
    return "production" if _is_missing(stage) or not str(stage) else str(stage)


def _stage_on(rows: pd.DataFrame, on: date) -> str:
    """The stage that an app's stage events in effect on ``on`` (latest last) give it then."""
    last = rows.iloc[-1]
    return _derived(str(last["stage"]), _date(last["planned"]), on)


def _inventory_stage(facts: Facts, app_id: str) -> str:
    apps = facts.apps
    row = apps[apps["app_id"] == app_id] if not apps.empty else apps
    if row.empty:
        raise LifecycleError(f"app {app_id!r} is not in the inventory")
    return _stage_text(row["stage"].iloc[0])


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
        return _stage_on(rows, on)
    return _inventory_stage(facts, app_id)


def stages(facts: Facts, on: date | None = None) -> pd.Series:
    """app_id -> stage on ``on`` (default ``facts.today``) for every app in the inventory."""
    on = on or facts.today
    apps = facts.apps
    if apps.empty:
        return pd.Series(dtype="object")
    out = _inventory_stages(facts)
    for app, stage in _stages_on(_events(facts), on).items():
        if app in out:
            out[app] = stage
    return pd.Series(out, dtype="object")


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


@dataclass(frozen=True)
class _Trail:
    """The trail's proposals by id and their decisions (approval or rejection) by proposal id:
    looked up per retired app instead of filtering the whole trail for each."""

    proposals: dict[str, pd.Series]
    decisions: dict[str, pd.Series]

    @classmethod
    def of(cls, ev: pd.DataFrame) -> _Trail:
        if ev.empty:
            return cls({}, {})
        props = ev[ev["kind"] == "proposal"]
        decided = ev[ev["kind"].isin(["approval", "rejection"]) & ev["proposal_id"].notna()]
        proposals: dict[str, pd.Series] = {}
        decisions: dict[str, pd.Series] = {}
        for i, (_, row) in zip(props["id"], props.iterrows(), strict=True):
            proposals.setdefault(str(i), row)  # the first, as a filter's iloc[0] would give
        for pid, (_, row) in zip(decided["proposal_id"], decided.iterrows(), strict=True):
            decisions.setdefault(str(pid), row)
        return cls(proposals, decisions)


def _retirement_from_events(facts: Facts, index: _Trail, app_id: str, name: str, rows: pd.DataFrame) -> Retirement:
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
    p = index.proposals.get(proposal_id) if proposal_id else None
    decision = index.decisions.get(proposal_id) if proposal_id else None
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
    in_effect = _stage_rows(ev, facts.today)
    inventory = _inventory_stages(facts)
    trail = _Trail.of(ev)
    out: list[Retirement] = []
    for app_id in ids:
        rows = in_effect.get(app_id)
        if rows is not None:
            stage = _stage_on(rows, facts.today)
        else:
            stage = inventory[app_id] if app_id in inventory else current_stage(facts, app_id, facts.today)  # raises
        if stage != "retired":
            continue
        name = names.get(app_id, app_id)
        if rows is not None:
            out.append(_retirement_from_events(facts, trail, app_id, name, rows))
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


def retired_ids(facts: Facts, on: date | None = None) -> set[str]:
    """App ids retired on ``on`` (default ``facts.today``): by the inventory or by the lifecycle.

    The retirement rules, the recommendation and the what-if leave these apps out.
    """
    on = on or facts.today
    apps = facts.apps
    out = set() if apps.empty else {str(a) for a, s in zip(apps["app_id"], apps["stage"], strict=True) if s == "retired"}
    ev = _events(facts)
    if ev.empty:
        return out
    for app_id, stage in _stages_on(ev, on).items():
        if stage == "retired":
            out.add(app_id)
        else:
            out.discard(app_id)  # events win over the inventory (e.g. brought back from retired)
    return out


# ---------------------------------------------------------------------------------------------
# what a proposal freezes


@dataclass(frozen=True)
class Projection:
    """What retiring the app would change a year, at run-rate (trailing 3 full months × 4) as of
    ``as_of`` (the last complete day): the same numbers as the Retirement page's candidates."""

    app_id: str
    as_of: date
    currency: str
    annual_savings: Decimal  # run-rate cost that would stop (infra + vendor + other + people)
    value_at_risk: Decimal  # run-rate value it brings
    net_effect: Decimal  # annual_savings - value_at_risk
    freed_hours_per_year: float  # run-rate maintenance hours


_CENT = Decimal("0.01")


def _money(x: Any) -> Decimal:
    """A run-rate figure (a float from the books) as exact money to the cent: what a proposal shows
    and freezes, so net effect = savings − value at risk holds exactly in the record."""
    if _is_missing(x):
        return Decimal("0.00")
    return Decimal(repr(float(x))).quantize(_CENT)


def project(facts: Facts, cfg: Config, app_id: str, books: Books | None = None) -> Projection:
    """The projection a proposal for ``app_id`` shows before it is submitted and freezes when it is."""
    b = books if books is not None else books_of(facts, cfg)
    rr = b.run_rate(b.last_day, ["cost", "value", "maintenance_hours"])
    row: dict[Any, Any] = rr.loc[app_id].to_dict() if app_id in rr.index else {}
    savings = _money(row.get("cost"))
    at_risk = _money(row.get("value"))
    hours = 0.0 if _is_missing(row.get("maintenance_hours")) else float(row["maintenance_hours"])
    return Projection(
        app_id=app_id, as_of=b.last_day, currency=cfg.currency, annual_savings=savings, value_at_risk=at_risk,
        net_effect=savings - at_risk, freed_hours_per_year=round(hours, 2),
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------
# writing: one transaction each, checked first (LifecycleError says what is wrong)

#: stage -> the stages a stage change may move it to ("retiring" only by an approved retire proposal)
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "pilot": ("production", "paused"),
    "production": ("pilot", "paused"),
    "paused": ("pilot", "production"),
    "retiring": ("retired", "production", "pilot", "paused"),  # it stopped; or the retirement is called off
    "retired": ("pilot", "production"),  # brought back
}


def _now(now: datetime | None) -> datetime:
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        raise LifecycleError(f"now {now!r}: must be tz-aware UTC")
    return now.astimezone(UTC)


def _who(by: str | None, field: str) -> str:
    if by is None or not str(by).strip():
        raise LifecycleError(f"{field}: say who (a name or e-mail; with sign-in, the signed-in identity)")
    return str(by).strip()


def _day(value: Any, field: str) -> date | None:
    if value is None:
        return None
    if isinstance(value, datetime) or not isinstance(value, date):
        raise LifecycleError(f"{field} {value!r}: expected a date")
    return value


def _evidence(link: str | None) -> str | None:
    """An evidence link is an http(s) URL (it is rendered as a link: no javascript:, no file:)."""
    if link is None or not str(link).strip():
        return None
    link = str(link).strip()
    parts = urlsplit(link)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise LifecycleError(f"evidence {link[:80]!r}: expected an http(s) link (a ticket, a document, a dashboard)")
    return link


def _app_row(conn: Connection, app_id: str) -> Any:
    table = storage.table_of(records.App)
    row = conn.execute(
        sa.select(table.c.app_id, table.c.review_every_days, table.c.last_model_version_at).where(table.c.app_id == app_id)
    ).first()
    if row is None:
        raise LifecycleError(f"app {app_id!r} is not in the inventory")
    return row


def _facts_now(conn: Connection, today: date) -> Facts:
    """The apps and the lifecycle trail as of ``today``, read inside the writer's transaction."""
    return Facts.from_frames(
        today=today,
        apps=storage.read_frame(conn, records.App),
        lifecycle=storage.read_frame(conn, records.LifecycleEvent),
    )


def _write(conn: Connection, rows: list[SQLModel]) -> None:
    for row in rows:  # plain INSERTs: an id that exists already is an error, never an overwrite
        storage.upsert(conn, type(row), [row], insert_only=True)


def propose(
    engine: Engine,
    cfg: Config,
    app_id: str,
    action: str,
    by: str,
    rationale: str,
    *,
    evidence: str | None = None,
    planned: date | None = None,
    next_review: date | None = None,
    authenticated: bool = False,
    now: datetime | None = None,
    facts: Facts | None = None,
) -> records.LifecycleEvent:
    """Record a proposal (retire / invest / keep) with the projection it is made on; returns it.

    ``planned`` (retire only, required): the planned retirement date, today or later.
    ``next_review`` (invest / keep only, optional): when to look again once approved.
    ``facts`` (optional): the facts to project from (else read now, as of today). Refused: an
    unknown app or action, no author, no rationale, a bad date, an app already retiring or retired
    (for retire), and a second proposal for an app that has one waiting.
    """
    if action not in records.PROPOSALS:
        raise LifecycleError(f"proposal {action!r}: expected one of {', '.join(records.PROPOSALS)}")
    by = _who(by, "proposed by")
    if not rationale or not str(rationale).strip():
        raise LifecycleError("rationale: say why (the numbers, the sponsor's view, the evidence)")
    now = _now(now)
    today = now.date()
    planned, next_review = _day(planned, "planned date"), _day(next_review, "next review")
    if action == "retire":
        if planned is None:
            raise LifecycleError("planned date: a retirement needs the day it is planned to stop")
        if planned < today:
            raise LifecycleError(f"planned date {planned.isoformat()} is in the past (today is {today.isoformat()})")
        if next_review is not None:
            raise LifecycleError("next review: a retirement has a planned date instead")
    else:
        if planned is not None:
            raise LifecycleError(f"planned date: only a retirement has one ({action} has a next review)")
        if next_review is not None and next_review < today:
            raise LifecycleError(f"next review {next_review.isoformat()} is in the past (today is {today.isoformat()})")
    link = _evidence(evidence)
    with storage.translated(engine), engine.begin() as conn:
        app = _app_row(conn, app_id)
        trail = _facts_now(conn, today)
        waiting = open_proposals(trail, app_id)
        if not waiting.empty:
            w = waiting.iloc[0]
            raise LifecycleError(
                f"app {app_id!r} already has a proposal waiting ({w['action']} by {w['actor']}, id {w['id']}): "
                "an approver approves or rejects it first"
            )
        stage = current_stage(trail, app_id, today)
        if action == "retire" and stage in ("retiring", "retired"):
            raise LifecycleError(f"app {app_id!r} is {stage} already")
        p = project(facts if facts is not None else _read_all(conn, today), cfg, app_id)
        row = records.LifecycleEvent(
            id=uuid.uuid4().hex, app_id=app_id, at=now, kind="proposal", actor=by, authenticated=authenticated,
            action=action, planned=planned, next_review=next_review, rationale=str(rationale).strip(), evidence=link,
            currency=p.currency, projected_annual_savings=p.annual_savings, value_at_risk=p.value_at_risk,
            net_effect=p.net_effect, freed_hours_per_year=p.freed_hours_per_year,
            model_version_at=app.last_model_version_at,
        )  # fmt: skip
        _write(conn, [row])
    return row


def _read_all(conn: Connection, today: date) -> Facts:
    return load_facts(conn, today=today)  # type: ignore[arg-type]  # read_frame reads from a connection too


def _proposal(conn: Connection, proposal_id: str, today: date) -> tuple[pd.Series, Facts]:
    trail = _facts_now(conn, today)
    ev = _events(trail)
    rows = ev[ev["id"] == proposal_id] if not ev.empty else ev
    if rows.empty or rows.iloc[0]["kind"] != "proposal":
        raise LifecycleError(f"proposal {proposal_id!r}: no such proposal")
    decided = _decision_of(ev, proposal_id)
    if decided is not None:
        verb = "approved" if decided["kind"] == "approval" else "rejected"
        raise LifecycleError(
            f"proposal {proposal_id!r} was {verb} already, by {decided['actor']} on {_instant(decided['at']):%Y-%m-%d}"
        )
    return rows.iloc[0], trail


def _may_decide(role: str | None, by: str, proposer: str) -> bool:
    """Whether ``by`` (with ``role``; None = no sign-in) may approve or reject; returns self_approved."""
    own = by.strip().lower() == proposer.strip().lower()
    if role is None:  # no sign-in: the local user may decide, even their own proposal (flagged)
        return own
    if not auth.can(role, "approve"):
        raise LifecycleError(f"your role ({role}) cannot approve or reject proposals: an approver can")
    if own and role != "admin":
        raise LifecycleError("you proposed this yourself: another approver decides it (an admin may decide their own)")
    return own


def approve(
    engine: Engine,
    proposal_id: str,
    by: str,
    comment: str = "",
    *,
    role: str | None = None,
    now: datetime | None = None,
) -> list[records.LifecycleEvent]:
    """Approve a waiting proposal; returns the events written (the approval, and for a retirement
    the "retiring" stage event). Also records its Decision (retire: next review = the planned date,
    which snoozes its findings until then; invest / keep: the proposal's next review, else the app's
    review cadence from today).

    ``role`` is the signed-in approver's role, ``None`` without sign-in (the local user). Refused:
    an unknown or already decided proposal, no approver, a role below approver, the proposer
    approving their own proposal with sign-in (unless admin), a retirement whose planned date has
    passed or whose app is retiring or retired by now.
    """
    by = _who(by, "approved by")
    now = _now(now)
    today = now.date()
    with storage.translated(engine), engine.begin() as conn:
        prop, trail = _proposal(conn, proposal_id, today)
        own = _may_decide(role, by, str(prop["actor"]))
        app_id, action = str(prop["app_id"]), str(prop["action"])
        app = _app_row(conn, app_id)
        planned = _date(prop["planned"])
        base = {"app_id": app_id, "at": now, "actor": by, "authenticated": role is not None, "proposal_id": proposal_id,
                "model_version_at": app.last_model_version_at}  # fmt: skip
        written = [records.LifecycleEvent(id=uuid.uuid4().hex, kind="approval", rationale=(comment or "").strip(),
                                          self_approved=own, **base)]  # fmt: skip
        if action == "retire":
            if planned is None or planned < today:
                raise LifecycleError(
                    f"the planned date {planned} has passed: reject this proposal and propose again with a new date"
                )
            stage = current_stage(trail, app_id, today)
            if stage in ("retiring", "retired"):
                raise LifecycleError(f"app {app_id!r} is {stage} already")
            written.append(records.LifecycleEvent(
                id=uuid.uuid4().hex, kind="stage", stage="retiring", effective=today, planned=planned,
                rationale=str(prop["rationale"]), evidence=None if _is_missing(prop["evidence"]) else str(prop["evidence"]),
                **base,
            ))  # fmt: skip
            review: date | None = planned
        else:
            review = _date(prop["next_review"])
            if review is None or review < today:
                every = app.review_every_days if app.review_every_days else 90
                review = today + timedelta(days=int(every))
        note = f" (approved by {by}: {comment.strip()})" if comment and comment.strip() else f" (approved by {by})"
        decision = records.Decision(
            id=uuid.uuid4().hex, app_id=app_id, decided_at=now, decision=action, decided_by=by,
            rationale=f"{prop['rationale']}{note}"[:4000], next_review=review,
        )  # fmt: skip
        _write(conn, [*written, decision])
    return written


def reject(
    engine: Engine,
    proposal_id: str,
    by: str,
    comment: str,
    *,
    role: str | None = None,
    now: datetime | None = None,
) -> records.LifecycleEvent:
    """Reject a waiting proposal with a comment (required: the proposer reads why). Same rules of
    who may as :func:`approve`; nothing else changes."""
    by = _who(by, "rejected by")
    if not comment or not str(comment).strip():
        raise LifecycleError("comment: say why it is rejected")
    now = _now(now)
    with storage.translated(engine), engine.begin() as conn:
        prop, _ = _proposal(conn, proposal_id, now.date())
        own = _may_decide(role, by, str(prop["actor"]))
        app = _app_row(conn, str(prop["app_id"]))
        row = records.LifecycleEvent(
            id=uuid.uuid4().hex, app_id=str(prop["app_id"]), at=now, kind="rejection", actor=by,
            authenticated=role is not None, proposal_id=proposal_id, rationale=str(comment).strip(),
            self_approved=own, model_version_at=app.last_model_version_at,
        )  # fmt: skip
        _write(conn, [row])
    return row


def change_stage(
    engine: Engine,
    app_id: str,
    stage: str,
    by: str,
    rationale: str,
    *,
    evidence: str | None = None,
    effective: date | None = None,
    authenticated: bool = False,
    now: datetime | None = None,
) -> records.LifecycleEvent:
    """Move an app to another stage from ``effective`` (default today): pause, resume, promote,
    call a retirement off, or record the day a retiring app actually stopped ("retired": today or
    earlier, not before it started retiring). Other changes take effect today or later. "retiring"
    comes only from an approved retire proposal (:func:`approve`). See :data:`TRANSITIONS`.
    """
    if stage not in records.STAGES:
        raise LifecycleError(f"stage {stage!r}: expected one of {', '.join(records.STAGES)}")
    if stage == "retiring":
        raise LifecycleError("stage 'retiring': an app starts retiring when an approver approves a retire proposal")
    by = _who(by, "changed by")
    if not rationale or not str(rationale).strip():
        raise LifecycleError("rationale: say why the stage changes")
    now = _now(now)
    today = now.date()
    effective = _day(effective, "effective date") or today
    link = _evidence(evidence)
    with storage.translated(engine), engine.begin() as conn:
        app = _app_row(conn, app_id)
        trail = _facts_now(conn, today)
        current = current_stage(trail, app_id, today)
        if stage == current:
            raise LifecycleError(f"app {app_id!r} is {current} already")
        if stage not in TRANSITIONS.get(current, ()):
            allowed = ", ".join(TRANSITIONS.get(current, ())) or "nothing"
            raise LifecycleError(f"app {app_id!r} is {current}: it can move to {allowed}, not {stage}")
        if stage == "retired":
            if effective > today:
                raise LifecycleError(
                    f"effective date {effective.isoformat()} is in the future: record 'retired' once it has stopped"
                )
            rows = _stage_events(_events(trail), app_id, today)
            started = _date(rows.iloc[-1]["effective"]) if not rows.empty else None
            if started is not None and effective < started:
                raise LifecycleError(
                    f"effective date {effective.isoformat()} is before it started retiring ({started.isoformat()})"
                )
        elif effective < today:
            raise LifecycleError(f"effective date {effective.isoformat()} is in the past (today is {today.isoformat()})")
        row = records.LifecycleEvent(
            id=uuid.uuid4().hex, app_id=app_id, at=now, kind="stage", actor=by, authenticated=authenticated,
            stage=stage, effective=effective, rationale=str(rationale).strip(), evidence=link,
            model_version_at=app.last_model_version_at,
        )  # fmt: skip
        _write(conn, [row])
    return row


def retired_mask(apps: pd.DataFrame, facts: Facts, on: date | None = None) -> pd.Series:
    """Per row of an inventory frame (``app_id``, ``stage``): whether the app is retired on ``on``
    (default ``facts.today``) — by its lifecycle events where it has stage events in effect, else
    by the inventory's stage."""
    on = on or facts.today
    ev = _events(facts)
    now = _stages_on(ev, on)  # apps with stage events in effect on ``on``, and the stage they give
    decided = set(now)
    lifecycle_retired = {a for a, stage in now.items() if stage == "retired"}
    ids = apps["app_id"].astype(str)
    by_events = ids.isin(lifecycle_retired)
    by_inventory = (apps["stage"] == "retired") & ~ids.isin(decided)
    return (by_events | by_inventory).astype(bool)

"""Decisions about apps: the audit trail (keep / invest / retire / review) and its log.

A recorded decision is never updated or deleted; it snoozes the app's retirement findings until
its next review date (see :mod:`portfolio.retirement`). This is the only domain module that
writes to the database, and only one row at a time.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from portfolio import frames, records, storage
from portfolio.errors import PortfolioError
from portfolio.facts import Facts

LOG_COLUMNS = ["id", "app_id", "name", "decided_at", "decision", "decided_by", "rationale", "next_review"]


class InvalidDecision(PortfolioError, ValueError):
    """A decision that cannot be recorded: unknown app, unknown decision, no author, bad date."""


def record_decision(
    engine: Engine,
    app_id: str,
    decision: str,
    decided_by: str,
    rationale: str,
    next_review: date | None,
    now: datetime | None = None,
) -> records.Decision:
    """Record one decision (id = uuid4 hex) after checking it; raises :class:`InvalidDecision`.

    Checks: ``decision`` is one of keep / invest / retire / review, the app exists in the App
    table, ``decided_by`` is not blank, ``now`` is tz-aware, ``next_review`` (if any) is a date
    not before the day of the decision.
    """
    if decision not in records.DECISIONS:
        raise InvalidDecision(f"decision {decision!r}: expected one of {', '.join(records.DECISIONS)}")
    if not decided_by or not str(decided_by).strip():
        raise InvalidDecision("decided_by: say who decided (a name or e-mail)")
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        raise InvalidDecision(f"now {now!r}: must be tz-aware UTC")
    if next_review is not None:
        if isinstance(next_review, datetime) or not isinstance(next_review, date):
            raise InvalidDecision(f"next_review {next_review!r}: expected a date")
        if next_review < now.astimezone(UTC).date():
            raise InvalidDecision(
                f"next_review {next_review.isoformat()} is before the decision date {now.astimezone(UTC).date().isoformat()}"
            )
    table = storage.table_of(records.App)
    with engine.connect() as conn:
        found = conn.execute(sa.select(table.c.app_id).where(table.c.app_id == app_id)).first()
    if found is None:
        raise InvalidDecision(f"app {app_id!r} is not in the inventory")
    row = records.Decision(
        id=uuid.uuid4().hex,
        app_id=app_id,
        decided_at=now.astimezone(UTC),
        decision=decision,
        decided_by=str(decided_by).strip(),
        rationale=rationale or "",
        next_review=next_review,
    )
    storage.add(engine, row)
    return row


def decision_log(facts: Facts, app_id: str | None = None) -> pd.DataFrame:
    """Every recorded decision (optionally one app's), newest first: who decided what, and why.

    Columns: id, app_id, name (from the inventory, else the app id), decided_at, decision,
    decided_by, rationale, next_review.
    """
    d = facts.decisions
    if app_id is not None and not d.empty:
        d = d[d["app_id"] == app_id]
    if d.empty:
        return frames.empty_frame(LOG_COLUMNS)
    names = facts.apps.set_index("app_id")["name"] if not facts.apps.empty else pd.Series(dtype="object")
    out = d.copy()
    out["name"] = out["app_id"].map(names)
    out["name"] = out["name"].where(out["name"].notna(), out["app_id"])
    order = pd.to_datetime(out["decided_at"], utc=True, errors="coerce")
    out = out.assign(_order=order).sort_values(["_order", "id"], ascending=[False, True])
    return out[LOG_COLUMNS].reset_index(drop=True)

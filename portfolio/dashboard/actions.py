"""What the dashboard writes: a sync ("Sync now"), a decision, a lifecycle proposal, approval,
rejection or stage change, a value-ledger commit.

Each is the same domain function the CLI and the scheduler call, followed by clearing the cached
reads so the next render shows the new data. Pages call these; they never write themselves.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pandas as pd

from portfolio import decisions, lifecycle, precedence, records, sync
from portfolio.dashboard import cache, signin
from portfolio.dashboard.cache import Source
from portfolio.errors import PortfolioError


def sync_now(src: Source) -> sync.Outcome:
    """One pass over every enabled connector — exactly what the scheduler runs."""
    try:
        return sync.sync(cache.config(src), cache.engine(src.db_url))
    finally:
        cache.clear()


def record_decision(
    src: Source, app_id: str, decision: str, decided_by: str, rationale: str, next_review: date | None
) -> records.Decision:
    """Record it as of the dashboard's date (``PORTFOLIO_TODAY`` fixes it), at the current time of day."""
    now = datetime.combine(src.today, datetime.now(UTC).time(), tzinfo=UTC)
    try:
        return decisions.record_decision(
            cache.engine(src.db_url), app_id, decision, decided_by, rationale, next_review, now=now
        )
    finally:
        cache.clear()


def _now(src: Source) -> datetime:
    return datetime.combine(src.today, datetime.now(UTC).time(), tzinfo=UTC)


def _actor(user: signin.User, typed: str | None) -> str:
    """Who acts: with sign-in the signed-in identity (never a typed name); without, the name typed
    (else the local user)."""
    if user.signed_in:
        return user.name
    return (typed or "").strip() or signin.LOCAL.name


def propose(
    src: Source, user: signin.User, typed_by: str | None, app_id: str, action: str, rationale: str,
    evidence: str | None, planned: date | None, next_review: date | None,
) -> records.LifecycleEvent:
    """A proposal by an editor (refused to a lower role), with the projection shown on the page."""
    if not user.can("propose"):
        raise PortfolioError(f"your role ({user.role}) cannot propose: an editor can")
    try:
        return lifecycle.propose(
            cache.engine(src.db_url), cache.config(src), app_id, action, _actor(user, typed_by), rationale,
            evidence=evidence, planned=planned, next_review=next_review, authenticated=user.signed_in,
            now=_now(src), facts=cache.facts(src),
        )  # fmt: skip
    finally:
        cache.clear()


def decide_proposal(
    src: Source, user: signin.User, typed_by: str | None, proposal_id: str, approve: bool, comment: str
) -> list[records.LifecycleEvent]:
    """Approve or reject: with sign-in by the signed-in approver (their role checked by the domain),
    without sign-in by the local user (who may decide their own proposal: the record says so)."""
    role = user.role if user.signed_in else None
    by = _actor(user, typed_by)
    engine = cache.engine(src.db_url)
    try:
        if approve:
            return lifecycle.approve(engine, proposal_id, by, comment, role=role, now=_now(src))
        return [lifecycle.reject(engine, proposal_id, by, comment, role=role, now=_now(src))]
    finally:
        cache.clear()


def change_stage(
    src: Source, user: signin.User, typed_by: str | None, app_id: str, stage: str, rationale: str,
    evidence: str | None, effective: date | None,
) -> records.LifecycleEvent:
    if not user.can("change_stage"):
        raise PortfolioError(f"your role ({user.role}) cannot change an app's stage: an editor can")
    try:
        return lifecycle.change_stage(
            cache.engine(src.db_url), app_id, stage, _actor(user, typed_by), rationale, evidence=evidence,
            effective=effective, authenticated=user.signed_in, now=_now(src),
        )  # fmt: skip
    finally:
        cache.clear()


def _ledger() -> Any:
    from portfolio import ledger  # written by another helper; the page guards its absence

    return ledger


def read_ledger(src: Source, upload: Any) -> pd.DataFrame:
    """An uploaded file (has ``name`` and ``read()``) as the ledger's text cells.

    Only a role that may upload gets here (the page hides the uploader from the others; this
    refuses them too). The ``[uploads]`` caps are checked before the file is parsed.
    """
    cfg = cache.config(src)
    user = signin.current_user(cfg)
    if not user.can("upload_ledger"):
        raise PortfolioError(f"your role ({user.role}) cannot upload a ledger: an editor can")
    frame: pd.DataFrame = _ledger().read_ledger(upload, max_bytes=cfg.uploads.max_bytes, max_rows=cfg.uploads.max_rows)
    return frame


def validate_ledger(src: Source, frame: pd.DataFrame) -> tuple[list[records.OutcomeRecord], pd.DataFrame]:
    """Valid records and the problems (row, column, value, reason); rows in another currency are refused,
    and so are rows naming an app that is not in the inventory (with a did-you-mean)."""
    cfg = cache.config(src)
    valid, errors = _ledger().validate_ledger(frame, "upload", currency=cfg.currency)
    unknown = _ledger().unknown_app_errors(frame, _ledger().known_apps(cache.engine(src.db_url), (a.id for a in cfg.apps)))
    if unknown.empty:
        return valid, errors
    problems = pd.concat([errors, unknown], ignore_index=True).sort_values(["row", "column"], kind="stable", ignore_index=True)
    return [], problems


def ledger_replaces(src: Source, rows: list[records.OutcomeRecord]) -> pd.DataFrame:
    """What committing ``rows`` would do, per app, month and kind: the sync writer's dry run
    (status new / replaces / unchanged / overridden, the figure that counted and the one that will)."""
    frame: pd.DataFrame = _ledger().replaced_months(
        cache.engine(src.db_url), rows, "upload", precedence.order_of(cache.config(src))
    )
    return frame


def describe_replaces(changes: pd.DataFrame) -> list[str]:
    lines: list[str] = _ledger().describe_changes(changes)
    return lines


def commit_ledger(src: Source, rows: list[records.OutcomeRecord]) -> int:
    """Commit through the sync writer (one transaction, a SyncRun "upload"); returns rows written."""
    try:
        return int(_ledger().commit(cache.engine(src.db_url), rows, "upload", precedence.order_of(cache.config(src))))
    finally:
        cache.clear()


def ledger_template() -> str:
    return str(_ledger().TEMPLATE_CSV)


def ledger_available() -> str | None:
    """None when portfolio.ledger is importable, else why not (shown as a warning)."""
    try:
        module = _ledger()
    except ImportError as exc:
        return f"portfolio.ledger is not available ({exc})"
    missing = [n for n in ("read_ledger", "validate_ledger", "replaced_months", "commit", "TEMPLATE_CSV") if not hasattr(module, n)]
    return f"portfolio.ledger lacks {', '.join(missing)}" if missing else None

"""What the dashboard writes: a sync ("Sync now"), a decision, a value-ledger commit.

Each is the same domain function the CLI and the scheduler call, followed by clearing the cached
reads so the next render shows the new data. Pages call these; they never write themselves.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pandas as pd

from portfolio import decisions, precedence, records, sync
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

"""LiteLLM proxy: estimated spend and tokens per app, day and model from its LiteLLM_SpendLogs table.

Reads the proxy's own PostgreSQL database (``database_url_env`` names the variable holding its
URL, e.g. LiteLLM's ``DATABASE_URL``) through SQLAlchemy. The table is LiteLLM's
``LiteLLM_SpendLogs`` (schema.prisma): one row per request, keyed by ``request_id``, with
``spend`` (dollars, from LiteLLM's price table), ``prompt_tokens``, ``completion_tokens``,
``model``, ``team_id``, ``request_tags`` (a JSON array), ``metadata`` (JSON, holding
``user_api_key_alias`` and ``user_api_key_team_alias``) and ``startTime`` (UTC).

The rows are aggregated in SQL per app, day and model (only the aggregates leave the database):

- a CostRecord of category ``vendor`` with ``estimated = true``, service and model the model name:
  **an estimate, not a bill**. Where a vendor's bill covers the same app and day, the P&L keeps the
  bill and drops the estimate (:func:`portfolio.genai.pnl_costs`) and shows the drift between them.
- UsageRecords ``input_tokens`` (all prompt tokens: the spend log has no cache split),
  ``output_tokens`` and ``requests`` (the number of logged requests).

Apps, first match wins: ``tags`` (a request tag -> app id), ``key_aliases`` (the virtual key's
alias -> app id), ``teams`` (team id or team alias -> app id); anything else is ``_unallocated``,
named in the run's warnings. Days: from the sync cursor (or ``days`` back) to the last complete
UTC day; every day of the window is replaced by what the table holds for it now.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from pydantic import Field, field_validator

from connectors import _genai
from connectors.base import ConnectorError, Replace
from connectors.settings import ConnectorParams
from portfolio import records
from portfolio.config import ConnectorConfig
from portfolio.errors import redact

NAME = "litellm"
log = logging.getLogger(__name__)
#: the record types this connector yields (checked by the connector contract and the standard suite)
RECORDS: tuple[type, ...] = (records.CostRecord, records.UsageRecord)
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Params(ConnectorParams):
    """Settings of a ``litellm`` connector."""

    database_url_env: str = Field(min_length=1, description="environment variable holding the LiteLLM database URL (PostgreSQL)")
    table: str = Field("LiteLLM_SpendLogs", description="the spend-log table (LiteLLM's name by default)")
    db_schema: str = Field("public", description="the PostgreSQL schema holding the table")
    tags: dict[str, str] = Field(default_factory=dict, description="request tag -> app id (checked first)")
    key_aliases: dict[str, str] = Field(default_factory=dict, description="virtual key alias -> app id")
    teams: dict[str, str] = Field(default_factory=dict, description="team id or team alias -> app id")
    days: int = Field(30, ge=1, le=400, description="days read on a first sync (later syncs start at the cursor)")
    timeout_seconds: float = Field(
        30.0, gt=0, le=3600, description="seconds to wait for the database to connect (at least 2) and for the query to answer"
    )

    @field_validator("table", "db_schema")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not _IDENTIFIER.match(value):
            raise ValueError("expected a plain SQL identifier (letters, digits, _)")
        return value


def engine_url(url: str) -> str:
    """LiteLLM's ``postgresql://`` URL with the psycopg (3) driver this package installs."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def connect_args(p: Params) -> dict[str, Any]:
    """libpq's connect timeout (whole seconds, at least 2) and a statement timeout: a database
    that accepts the connection and then says nothing fails the pull instead of holding the sync."""
    return {"connect_timeout": max(2, math.ceil(p.timeout_seconds)), "options": f"-c statement_timeout={int(p.timeout_seconds * 1000)}"}


def app_case(p: Params) -> tuple[str, dict[str, Any]]:
    """The SQL ``CASE`` that names each log row's app, with its bound parameters (never inlined)."""
    whens: list[str] = []
    binds: dict[str, Any] = {"unallocated": records.UNALLOCATED}
    for i, (tag, app) in enumerate(sorted(p.tags.items())):
        whens.append(f"WHEN request_tags @> jsonb_build_array(CAST(:tag{i} AS text)) THEN :tag_app{i}")
        binds |= {f"tag{i}": tag, f"tag_app{i}": app}
    for i, (alias, app) in enumerate(sorted(p.key_aliases.items())):
        whens.append(f"WHEN metadata->>'user_api_key_alias' = :alias{i} THEN :alias_app{i}")
        binds |= {f"alias{i}": alias, f"alias_app{i}": app}
    for i, (team, app) in enumerate(sorted(p.teams.items())):
        whens.append(f"WHEN team_id = :team{i} OR metadata->>'user_api_key_team_alias' = :team{i} THEN :team_app{i}")
        binds |= {f"team{i}": team, f"team_app{i}": app}
    return ("CASE " + " ".join(whens) + " ELSE :unallocated END") if whens else ":unallocated", binds


def query(p: Params) -> tuple[str, dict[str, Any]]:
    case, binds = app_case(p)
    sql = f"""
SELECT app_id, day, model, SUM(spend) AS spend, SUM(prompt_tokens) AS prompt_tokens,
       SUM(completion_tokens) AS completion_tokens, COUNT(*) AS requests
FROM (
  SELECT {case} AS app_id, CAST("startTime" AS date) AS day, COALESCE(model, '') AS model,
         CAST(spend AS numeric) AS spend, prompt_tokens, completion_tokens
  FROM "{p.db_schema}"."{p.table}"
  WHERE "startTime" >= :start AND "startTime" < :end
) AS logs
GROUP BY app_id, day, model
ORDER BY app_id, day, model"""
    return sql, binds


def pull(config: ConnectorConfig, since: datetime | None) -> Iterator[Any]:
    """One aggregate query over the window; yields Replace windows, estimated costs and token usage."""
    p = _genai.params_of(Params, config)
    yield from _genai.undeclared(config, tags=p.tags, key_aliases=p.key_aliases, teams=p.teams)
    url = _genai.secret(config, p.database_url_env, "database_url_env")
    today = datetime.now(UTC).date()
    start, end = _genai.day_window(since, p.days, today)
    if start >= end:
        return
    sql, binds = query(p)
    where = f'table "{p.db_schema}"."{p.table}"'
    try:
        engine = sa.create_engine(engine_url(url), pool_pre_ping=True, connect_args=connect_args(p))
    except Exception as exc:  # a malformed URL: say so without echoing it (it holds the password)
        raise ConnectorError(config.name, f"{p.database_url_env} is not a database URL ({type(exc).__name__})") from None
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(sql), {**binds, "start": datetime(start.year, start.month, start.day), "end": datetime(end.year, end.month, end.day)}
            ).all()
    except sa.exc.ProgrammingError as exc:
        detail = str(getattr(exc, "orig", exc)).splitlines()[0]
        raise ConnectorError(config.name, f"cannot read {where}: {redact(detail, (p.database_url_env,))[:200]}") from None
    except sa.exc.SQLAlchemyError as exc:
        raise ConnectorError(config.name, f"cannot reach the LiteLLM database ({type(exc).__name__}): check {p.database_url_env}") from None
    finally:
        engine.dispose()
    last = end - timedelta(days=1)
    yield Replace(records.CostRecord, start, last)
    yield Replace(records.UsageRecord, start, last)
    unmapped = _genai.Unmapped(config.name, "models used by requests without a mapped tag, key alias or team,")
    for app_id, day, model, spend, prompt, completion, requests in rows:
        amount = Decimal(spend or 0).quantize(_genai.Q6)
        if app_id == records.UNALLOCATED:
            unmapped.add(model or "(no model)", amount)
        if amount:
            yield records.CostRecord(
                source="", app_id=app_id, day=day, category="vendor", service=model or "litellm", amount=amount,
                currency="USD", model=model, estimated=True,
            )
        for metric, value in (("input_tokens", prompt), ("output_tokens", completion), ("requests", requests)):
            if value:
                yield records.UsageRecord(source="", app_id=app_id, day=day, metric=metric, model=model, value=float(value))
    yield from unmapped.notices(log)

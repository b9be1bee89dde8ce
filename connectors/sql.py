"""Realised value from a SQL query against any database SQLAlchemy reaches (a warehouse-kept ledger).

Config::

    [connectors.finance-warehouse]
    type = "sql"
    url_env = "FINANCE_DB_URL"     # env variable holding the URL (with its password), or:
    # database_url = "postgresql+psycopg://reader:${FINANCE_DB_PASSWORD}@db/finance"
    query = "select app_id, month, kind, amount, currency, attribution, evidence, low, high, note from value_ledger"
    currency = "USD"

The query returns the ledger's columns (see :mod:`portfolio.ledger`; ``month`` may be text
``YYYY-MM`` or a date on the 1st). Rows go through the same validation as an uploaded ledger:
any bad row fails the sync with every bad row listed and nothing written. No secret lives in the
file: the URL comes from an environment variable, or names them as ``${VAR}``; no error shows it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pandas as pd
import sqlalchemy as sa
from pydantic import Field

from connectors.base import ConnectorConfig, ConnectorError, Replace
from connectors.settings import ConnectorParams
from portfolio import ledger, records
from portfolio.errors import redact

NAME = "sql"
#: the record types this connector yields (checked by the standard connector suite)
RECORDS: tuple[type, ...] = (records.OutcomeRecord,)


class Params(ConnectorParams):
    """Settings of the SQL outcomes connector."""

    query: str | None = Field(None, description="a SELECT returning the outcomes ledger's columns (required)")
    database_url: str | None = Field(None, description="SQLAlchemy URL; ${VAR} parts are read from the environment")
    url_env: str | None = Field(None, description="variable holding the whole database URL (instead of database_url)")
    currency: str = Field(ledger.DEFAULT_CURRENCY, description="currency of amounts in rows that give none")


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
MAX_LISTED = 200


def _url(config: ConnectorConfig) -> tuple[str, tuple[str, ...]]:
    """The database URL and the names of the environment variables it was built from."""
    env_name = config.get("url_env")
    if env_name:
        url = os.environ.get(str(env_name))
        if not url:
            raise ConnectorError(config.name or NAME, f"environment variable {env_name} (url_env) is not set")
        return url, (str(env_name),)
    raw = config.get("database_url")
    if not raw:
        raise ConnectorError(config.name or NAME, "set url_env (an environment variable holding the URL) or database_url")
    names = tuple(_VAR.findall(str(raw)))
    missing = [n for n in names if n not in os.environ]
    if missing:
        raise ConnectorError(config.name or NAME, f"environment variable(s) {', '.join(missing)} used in database_url not set")
    return _VAR.sub(lambda m: os.environ[m.group(1)], str(raw)), names


def _text(value: Any) -> Any:
    """A database value as the text a ledger cell would hold (Decimal exactly, dates as YYYY-MM)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat() if (value.day, value.hour, value.minute, value.second) != (1, 0, 0, 0) else f"{value:%Y-%m}"
    if isinstance(value, date):
        return f"{value:%Y-%m}" if value.day == 1 else value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float):
        return repr(value)
    return str(value)


def pull(config: ConnectorConfig, since: datetime | None) -> Iterator[Any]:
    """Run the query, validate every row as a ledger row, yield OutcomeRecords and a Replace per month.

    ``since`` is ignored: the query is the ledger, restated in place.
    """
    name = config.name or NAME
    query = config.get("query")
    if not query:
        raise ConnectorError(name, "query: required, a SELECT returning " + ", ".join(ledger.COLUMNS))
    currency = str(config.get("currency", ledger.DEFAULT_CURRENCY)).upper()
    url, names = _url(config)
    secrets = names + config.secret_env_names()
    try:
        engine = sa.create_engine(url, pool_pre_ping=True)
    except Exception as exc:  # bad URL / unknown driver: SQLAlchemy's message may quote the URL
        raise ConnectorError(name, redact(f"cannot use the database URL: {type(exc).__name__}: {exc}", secrets)[:500]) from None
    try:
        with engine.connect() as conn:
            result = conn.execute(sa.text(str(query)))
            columns = [str(c).lower() for c in list(result.keys())]
            rows = [tuple(_text(v) for v in row) for row in result]
    except sa.exc.SQLAlchemyError as exc:
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        raise ConnectorError(name, redact(f"query failed: {' '.join(detail)}", secrets)[:1000]) from None
    finally:
        engine.dispose()
    frame = pd.DataFrame(rows, columns=columns, dtype=object)
    recs, errors = ledger.validate_ledger(frame, source_name="", currency=currency)
    if not errors.empty:
        raise ConnectorError(name, _describe(errors))
    yield from recs
    for month in sorted({r.month for r in recs}):
        yield Replace(records.OutcomeRecord, month, month, field="month")


def _describe(errors: pd.DataFrame) -> str:
    """The ledger's errors in a query's terms: result row 1 is the first row (no header line)."""
    if (errors["row"] == 1).all():  # the column set is wrong: validate_ledger reports only that
        lines = [f"column {e.column!r}: {e.reason}" for e in errors.itertuples(index=False)]
        return "the query's columns are wrong; nothing was written:\n" + "\n".join(lines)
    shown = errors.assign(row=errors["row"] - 1)
    lines = ledger.describe_errors(shown, limit=MAX_LISTED).splitlines()
    return f"{len(errors)} problem(s) in the query result; nothing was written:\n" + "\n".join(
        "result " + line if line.startswith("row ") else line for line in lines
    )

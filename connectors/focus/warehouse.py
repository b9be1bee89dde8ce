"""A FOCUS table in a warehouse: the aggregating query runs there, only per-day totals come back."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from connectors.base import ConnectorError, InputFileError, Notice
from connectors.focus.aggregate import _STAGE1_SCHEMA, finish
from connectors.focus.files import _BAD_GROUPS, _duck, _why
from connectors.focus.settings import CHUNK_ROWS, Settings
from connectors.focus.sql import DuckDialect, PostgresDialect, SqlDialect, resolve_columns, stage1_sql
from portfolio.config import ConnectorConfig
from portfolio.errors import redact


def warehouse_url(config: ConnectorConfig) -> str | None:
    if config.get("database_url_env"):
        url = config.secret("database_url_env")
        if not url:
            raise ConnectorError(config.name, f"environment variable {config.get('database_url_env')} is not set")
        return url
    url = config.get("database_url")
    return str(url) if url else None


def pull_warehouse(config: ConnectorConfig, s: Settings, url: str) -> Iterator[Any]:
    import sqlalchemy as sa

    name = config.name
    table = str(config.get("table", "focus"))
    schema, _, tname = table.rpartition(".")
    secret_envs = config.secret_env_names()
    try:
        engine = sa.create_engine(url)
    except Exception as exc:  # bad URL / missing driver
        raise ConnectorError(name, f"cannot use database_url: {redact(str(exc), secret_envs)[:200]}") from None
    dialects: dict[str, SqlDialect] = {"postgresql": PostgresDialect(), "duckdb": DuckDialect()}
    d = dialects.get(engine.dialect.name)
    if d is None:
        raise ConnectorError(name, f"warehouse dialect {engine.dialect.name!r} not supported yet (supported: {', '.join(dialects)})")
    with _duck(config) as con:
        con.execute(_create_stage1_sql())
        try:
            with engine.connect() as conn:
                info = sa.inspect(conn).get_columns(tname, schema=schema or None)
                if not info:
                    raise InputFileError(name, f"table {table}", "table not found or has no columns")
                types = {c["name"]: ("JSON" if "JSON" in str(c["type"]).upper() else str(c["type"]).upper()) for c in info}
                cols = resolve_columns(list(types))
                for col in s.required():
                    if col not in cols:
                        raise InputFileError(name, f"table {table}", f"missing FOCUS column (needed for {_why(col, s)})", column=col)
                col_types = {canon: types[actual] for canon, actual in cols.items()}
                source = (d.quote(schema) + "." if schema else "") + d.quote(tname) + " AS src"
                sql = stage1_sql(source, cols, col_types, s, d)
                if d.name == "postgresql":
                    conn.exec_driver_sql("SET TIME ZONE 'UTC'")
                # only the per-day aggregate travels, streamed in chunks into the local DuckDB
                result = conn.execution_options(stream_results=True, yield_per=CHUNK_ROWS).exec_driver_sql(
                    sql.replace("%", "%%")
                )
                for part in result.partitions():
                    rows = [dict(zip(_STAGE1_SCHEMA.names, r, strict=True)) for r in part]
                    con.register("batch_", pa.Table.from_pylist(rows, schema=_STAGE1_SCHEMA))
                    con.execute("INSERT INTO stage1 SELECT * FROM batch_")
                    con.unregister("batch_")
                token_lines = 0
                if "ConsumedUnit" in cols:
                    unit = d.text(d.quote(cols["ConsumedUnit"]))
                    count = f"SELECT COUNT(*) FROM {source} WHERE lower({unit}) LIKE '%token%'"
                    token_lines = int(conn.exec_driver_sql(count.replace("%", "%%")).scalar() or 0)
        except ConnectorError:
            raise
        except sa.exc.SQLAlchemyError as exc:
            msg = redact(str(getattr(exc, "orig", None) or exc), secret_envs).strip().splitlines()
            raise InputFileError(name, f"table {table}", f"query failed: {msg[0] if msg else type(exc).__name__}") from None
        finally:
            engine.dispose()
        bad = con.execute(_BAD_GROUPS).fetchone()
        if bad and bad[0]:
            raise InputFileError(
                name,
                f"table {table}",
                f"{bad[0]} group(s) with an empty ChargePeriodStart, BillingPeriodStart or BillingCurrency, "
                "or a date before 2000 or more than a year ahead",
            )
        if token_lines:
            # said, not skipped silently: the token mapping (connectors.focus.sql, tokens=True) is DuckDB SQL
            yield Notice(
                f"{name}: {token_lines} token line(s) (ConsumedUnit) in table {table} are not read as token usage "
                "from a warehouse yet (their cost is counted); export the table to FOCUS files to see tokens per model"
            )
        yield from finish(con, s, name, f"{s.cost_column} of table {table}")


def _create_stage1_sql() -> str:
    types = {
        "bp_start": "DATE",
        "currency": "VARCHAR",
        "day": "DATE",
        "category": "VARCHAR",
        "service": "VARCHAR",
        "tag_value": "VARCHAR",
        "direct_app": "VARCHAR",
        "unused": "BOOLEAN",
        "excluded": "BOOLEAN",
        "amount": "DECIMAL(38,12)",
        "lines": "BIGINT",
    }
    return "CREATE TEMP TABLE stage1 (" + ", ".join(f"{k} {v}" for k, v in types.items()) + ")"

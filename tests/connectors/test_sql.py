"""The sql connector against Debian's real PostgreSQL: a warehouse table holding the value ledger."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from portfolio import config, records, storage, sync

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sql"
SECRET = "pw-Sup3r-s3cret"


@pytest.fixture
def warehouse(postgres_url: str) -> str:
    """A PostgreSQL database holding ``finance.value_ledger`` (tests/fixtures/sql/value_ledger.sql)."""
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.exec_driver_sql((FIXTURES / "value_ledger.sql").read_text())
    engine.dispose()
    return postgres_url


def with_password(url: str, password: str = SECRET) -> str:
    return make_url(url).set(password=password).render_as_string(hide_password=False)


TOML = """
# value rows must name apps of the inventory (issue 10): the apps the fixtures use
[[apps]]
id = "churn"
team = "growth"
[[apps]]
id = "defects"
team = "quality"

[connectors.finance]
type = "sql"
{url_line}
query = \"\"\"{query}\"\"\"
"""
QUERY = (
    "select app_id, month, kind, amount, currency, attribution, evidence, low, high, note "
    "from finance.value_ledger order by app_id, month"
)


def make_cfg(url_line: str, query: str = QUERY) -> config.Config:
    return config.loads(TOML.format(url_line=url_line, query=query))


def outcomes(engine: Engine) -> list[tuple[object, ...]]:
    t = storage.table_of(records.OutcomeRecord)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.c.source, t.c.app_id, t.c.month, t.c.kind, t.c.amount, t.c.attribution, t.c.evidence, t.c.low, t.c.high, t.c.note)
            .order_by(t.c.app_id, t.c.month, t.c.kind)
        ).all()
    return [tuple(r) for r in rows]


EXPECTED = [
    ("finance", "churn", date(2026, 7, 1), "revenue_capture", Decimal("120000.00"), 0.6, "experiment", Decimal("100000.00"), Decimal("150000.00"), "holdout"),
    ("finance", "churn", date(2026, 8, 1), "revenue_capture", Decimal("118500.10"), 0.6, "experiment", None, None, None),
    ("finance", "defects", date(2026, 7, 1), "cost_avoidance", Decimal("0.100001"), 1.0, "observational", None, None, "from the warehouse"),
    ("finance", "defects", date(2026, 8, 1), "cost_avoidance", Decimal("48250.55"), 0.35, "estimate", Decimal("40000.00"), None, None),
]  # fmt: skip


def test_sync_twice_same_rows(warehouse: str, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINANCE_DB_URL", with_password(warehouse))
    cfg = make_cfg('url_env = "FINANCE_DB_URL"')
    first = sync.sync(cfg, engine).runs[0]
    assert (first.status, first.rows_written, first.rows_deleted) == ("success", 4, 0), first.error
    assert outcomes(engine) == EXPECTED
    second = sync.sync(cfg, engine).runs[0]
    assert (second.status, second.rows_written, second.rows_deleted) == ("success", 0, 0)
    assert outcomes(engine) == EXPECTED


def test_database_url_with_env_placeholder(warehouse: str, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINANCE_DB_PASSWORD", SECRET)
    url = with_password(warehouse, "${FINANCE_DB_PASSWORD}").replace("%7B", "{").replace("%7D", "}").replace("%24", "$")
    assert "${FINANCE_DB_PASSWORD}" in url
    run = sync.sync(make_cfg(f'database_url = "{url}"'), engine).runs[0]
    assert (run.status, run.rows_written) == ("success", 4), run.error


def test_restated_month_replaces_rows(warehouse: str, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINANCE_DB_URL", warehouse)
    cfg = make_cfg('url_env = "FINANCE_DB_URL"')
    assert sync.sync(cfg, engine).ok
    src = sa.create_engine(warehouse)
    with src.begin() as conn:
        conn.exec_driver_sql("delete from finance.value_ledger where app_id = 'defects' and month = date '2026-08-01'")
        conn.exec_driver_sql("update finance.value_ledger set amount = 1.23 where app_id = 'churn' and month = date '2026-08-01'")
    src.dispose()
    run = sync.sync(cfg, engine).runs[0]
    assert (run.status, run.rows_written, run.rows_deleted) == ("success", 1, 1)
    restated = ("finance", "churn", date(2026, 8, 1), "revenue_capture", Decimal("1.23"), 0.6, "experiment", None, None, None)
    assert outcomes(engine) == [EXPECTED[0], restated, EXPECTED[2]]


def test_bad_rows_refused_row_by_row_earlier_rows_intact(warehouse: str, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINANCE_DB_URL", warehouse)
    cfg = make_cfg('url_env = "FINANCE_DB_URL"')
    assert sync.sync(cfg, engine).ok
    src = sa.create_engine(warehouse)
    with src.begin() as conn:
        conn.exec_driver_sql(
            "insert into finance.value_ledger (app_id, month, kind, amount, currency, attribution, evidence) values "
            "('zeta', date '2026-09-01', 'savings', 5, 'USD', 1, 'estimate'), "
            "('zeta', date '2026-09-15', 'cost_avoidance', 5, 'USD', 1.2, 'estimate')"
        )
    src.dispose()
    run = sync.sync(cfg, engine).runs[0]
    assert run.status == "failed"
    assert run.error == (
        "finance: 3 problem(s) in the query result; nothing was written:\n"
        "result row 5, column 'kind' (value 'savings'): expected revenue_capture or cost_avoidance\n"
        "result row 6, column 'month' (value '2026-09-15'): not a month: expected YYYY-MM, e.g. 2026-01\n"
        "result row 6, column 'attribution' (value '1.200'): expected a share between 0 and 1 (e.g. 0.6 for 60%)"
    )
    assert outcomes(engine) == EXPECTED


@pytest.mark.parametrize(
    ("query", "error"),
    [
        pytest.param(
            "select app_id, month, kind from finance.value_ledger",
            "finance: the query's columns are wrong; nothing was written:\n"
            "column 'amount': missing column; a ledger needs app_id, month, kind, amount",
            id="missing-column",
        ),
        pytest.param(
            "select * from finance.no_such_table",
            'finance: query failed: relation "finance.no_such_table" does not exist',
            id="postgres-own-message",
        ),
    ],
)
def test_query_errors(warehouse: str, engine: Engine, monkeypatch: pytest.MonkeyPatch, query: str, error: str) -> None:
    monkeypatch.setenv("FINANCE_DB_URL", warehouse)
    run = sync.sync(make_cfg('url_env = "FINANCE_DB_URL"', query), engine).runs[0]
    assert run.status == "failed"
    assert run.error is not None and run.error.startswith(error)
    assert outcomes(engine) == []


def test_connection_error_never_shows_the_password(warehouse: str, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    wrong_db = with_password(make_url(warehouse).set(database="no_such_db").render_as_string(hide_password=False))
    monkeypatch.setenv("FINANCE_DB_URL", wrong_db)
    run = sync.sync(make_cfg('url_env = "FINANCE_DB_URL"'), engine).runs[0]
    assert run.status == "failed"
    assert run.error is not None
    assert run.error.startswith("finance: query failed: ")
    assert 'database "no_such_db" does not exist' in run.error
    assert SECRET not in run.error


@pytest.mark.parametrize(
    ("url_line", "error"),
    [
        pytest.param('url_env = "UNSET_DB_URL"', "finance: environment variable UNSET_DB_URL (url_env) is not set", id="url-env-unset"),
        pytest.param(
            'database_url = "postgresql+psycopg://u:${UNSET_PW}@127.0.0.1:1/x"',
            "finance: environment variable(s) UNSET_PW used in database_url not set",
            id="placeholder-unset",
        ),
        pytest.param("", "finance: set url_env (an environment variable holding the URL) or database_url", id="no-url"),
        pytest.param(
            f'database_url = "nosuchdriver://u:{SECRET}@h/db"',
            "finance: cannot use the database URL: NoSuchModuleError: Can't load plugin: sqlalchemy.dialects:nosuchdriver",
            id="unknown-driver",
        ),
    ],
)
def test_configuration_errors(engine: Engine, url_line: str, error: str) -> None:
    run = sync.sync(make_cfg(url_line), engine).runs[0]
    assert (run.status, run.error) == ("failed", error)

"""The standard connector suite (like the Singer SDK's standard tests), over every registered connector.

Each connector runs on its recorded fixtures (tests/connectors/standard_cases.py: real local servers
for HTTP connectors, files in a temporary folder for file connectors, a table in a real PostgreSQL
database for database connectors) and must:

- yield only the record types it declares (``RECORDS``) and the sync markers;
- give natural keys that are unique and non-null;
- give identical rows on a second pull;
- give money as ``Decimal`` and days from 2000 to a year ahead;
- fail with a :class:`ConnectorError` naming the connector (and the HTTP status) on a 401, a 403, a
  500, a truncated body, a repeated page (paginated connectors) and a stalled answer; file
  connectors on a missing file and a truncated file; database connectors (the same failures, as a
  database gives them) on a login refused, a table it may not read, a missing table, a table of the
  wrong shape and a server that accepts the connection and says nothing;
- have a module docstring whose first line describes it.
"""

from __future__ import annotations

import socket
import threading
import time
import typing
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import connectors
from connectors.base import Notice, Partition, Replace, ReplaceKeys, Rows
from portfolio import config
from portfolio.config import ConnectorConfig
from portfolio.errors import ConnectorError
from tests.connectors.standard_cases import CASES, Case
from tests.servers import PayloadServer, Postgres, Reply

TYPES = sorted(connectors.REGISTRY)
HTTP = [t for t in TYPES if t in CASES and CASES[t].serve]
PAGINATED = [t for t in HTTP if CASES[t].first_page]
FILES = [t for t in TYPES if t in CASES and CASES[t].files]
DATABASES = [t for t in TYPES if t in CASES and CASES[t].database]
MARKERS = (Replace, ReplaceKeys, Partition, Notice)
FIRST_DAY = date(2000, 1, 1)


def make(type_name: str, folder: Path, url: str = "", extra: str = "") -> ConnectorConfig:
    case = CASES[type_name]
    text = f'{case.apps}\n[connectors.src]\ntype = "{type_name}"\n{case.table(url)}\n{extra}\n'
    return config.loads(text, base_dir=str(folder)).connectors["src"]


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # sqlite:///relative.db resolves here
    return tmp_path


def _env(case: Case, monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in case.env.items():
        monkeypatch.setenv(k, v)


def _plain(value: Any) -> Any:
    if hasattr(value, "item") and not isinstance(value, Decimal | date):  # numpy scalar
        value = value.item()
    if hasattr(value, "to_pydatetime"):
        value = value.to_pydatetime()
    return value


def rows_by_table(items: list[Any]) -> dict[type, list[dict[str, Any]]]:
    """What a pull yielded, as plain rows per table; anything that is no record nor marker fails."""
    out: dict[type, list[dict[str, Any]]] = {}
    for item in items:
        if isinstance(item, MARKERS):
            continue
        if isinstance(item, Rows):
            rows = [{k: _plain(v) for k, v in r.items()} for r in item.frame.astype(object).to_dict("records")]
            out.setdefault(item.table, []).extend(rows)
        elif hasattr(type(item), "NATURAL_KEY"):
            out.setdefault(type(item), []).append(item.model_dump())
        else:
            raise AssertionError(f"a pull yielded {type(item).__name__}: neither a record nor a marker")
    return out


def _database(case: Case, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh database on the session's real PostgreSQL holding the case's recorded table; its URL
    (in the URL form the connector's users write, ``postgresql://``) is in ``case.database_env``."""
    assert case.database is not None
    server: Postgres = request.getfixturevalue("postgres")
    url = server.create_database("std")
    case.database(url)
    monkeypatch.setenv(case.database_env, url.replace("postgresql+psycopg://", "postgresql://"))
    return url


def pull(type_name: str, conn: ConnectorConfig) -> list[Any]:
    return list(connectors.load(type_name).pull(conn, None))


@pytest.fixture
def pulled(request: pytest.FixtureRequest, folder: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[list[Any], list[Any]]]:
    """Two pulls of the connector on its recorded fixtures."""
    type_name: str = request.param
    case = CASES[type_name]
    _env(case, monkeypatch)
    if case.files:
        case.files(folder)
    if case.database:
        _database(case, request, monkeypatch)
    if case.serve:
        with case.serve() as server:
            conn = make(type_name, folder, server.url)
            yield pull(type_name, conn), pull(type_name, conn)
    else:
        conn = make(type_name, folder)
        yield pull(type_name, conn), pull(type_name, conn)


def _key_value(table: Any, row: dict[str, Any], key: str) -> Any:
    """A row's natural-key value; a bulk frame (``Rows``) may leave out a key column that has a
    default (UsageRecord.model = ""): it counts as that default, as the sync writer fills it."""
    if key in row:
        return row[key]
    info = table.model_fields.get(key)
    assert info is not None and not info.is_required(), f"{table.__name__}: a row lacks key column {key!r}"
    return info.get_default(call_default_factory=True)


def _decimal_fields(table: type) -> set[str]:
    hints = typing.get_type_hints(table)
    return {k for k, t in hints.items() if t is Decimal or Decimal in typing.get_args(t)}


# ----------------------------------------------------------------------------- every connector


def test_every_registered_connector_has_a_case() -> None:
    assert set(CASES) == set(TYPES), "add the connector's fixtures to tests/connectors/standard_cases.py"


@pytest.mark.parametrize("type_name", TYPES)
def test_docstring_has_its_one_line_description(type_name: str) -> None:
    line = connectors.describe(type_name)
    assert line and len(line) <= 200 and line.endswith((".", ")")), line


@pytest.mark.parametrize("pulled", TYPES, indirect=True)
def test_records(pulled: tuple[list[Any], list[Any]], request: pytest.FixtureRequest) -> None:
    """Declared types only; natural keys unique and non-null; money Decimal; days in range; a
    second pull identical."""
    type_name = request.node.callspec.params["pulled"]
    first, second = pulled
    declared = connectors.load(type_name).RECORDS
    tables = rows_by_table(first)
    assert tables, f"{type_name}: its recorded fixtures gave no records"
    latest = datetime.now(UTC).date() + timedelta(days=366)
    for table, rows in tables.items():
        assert table in declared, f"{type_name} yielded {table.__name__}, not in its RECORDS"
        key = [k for k in table.NATURAL_KEY if k != "source"]  # type: ignore[attr-defined]
        keys = [tuple(_key_value(table, r, k) for k in key) for r in rows]
        assert all(v is not None and v == v for k in keys for v in k), f"{table.__name__}: a null in {key}"
        dupes = {k for k in keys if keys.count(k) > 1}
        assert not dupes, f"{table.__name__}: natural key {key} repeats: {sorted(dupes)[:3]}"
        for fld in _decimal_fields(table):
            bad = [r[fld] for r in rows if fld in r and r[fld] is not None and not isinstance(r[fld], Decimal)]
            assert not bad, f"{table.__name__}.{fld} not Decimal: {bad[:3]}"
            assert all(r[fld].is_finite() for r in rows if isinstance(r.get(fld), Decimal))
        for fld in ("day", "month"):
            days = [r[fld] for r in rows if fld in r]
            assert all(isinstance(d, date) and FIRST_DAY <= d <= latest for d in days), (
                f"{table.__name__}.{fld} out of 2000..{latest}: {[d for d in days if not FIRST_DAY <= d <= latest][:3]}"
            )
    again = rows_by_table(second)
    assert {t: sorted(map(repr, r)) for t, r in again.items()} == {t: sorted(map(repr, r)) for t, r in tables.items()}


# ----------------------------------------------------------------------------- HTTP failures


def _fails(type_name: str, folder: Path, reply: Reply | None = None, handler: Any = None) -> tuple[ConnectorError, list[Any]]:
    case = CASES[type_name]
    with PayloadServer(handler or (lambda *_: reply)) as server:
        conn = make(type_name, folder, server.url, case.fast)
        with pytest.raises(ConnectorError) as exc:
            pull(type_name, conn)
        return exc.value, server.requests


@pytest.mark.parametrize("status", [401, 403, 500])
@pytest.mark.parametrize("type_name", HTTP)
def test_http_error_status(type_name: str, status: int, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _env(CASES[type_name], monkeypatch)
    err, _ = _fails(type_name, folder, Reply(status, {"message": "refused by the test server"}))
    assert str(err).startswith("src:") and f"HTTP {status}" in str(err), str(err)
    assert err.status == status


@pytest.mark.parametrize("type_name", HTTP)
def test_truncated_body(type_name: str, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    case = CASES[type_name]
    _env(case, monkeypatch)
    assert case.body is not None
    body = case.body()
    err, _ = _fails(type_name, folder, Reply(200, body[: len(body) // 2]))
    assert str(err).startswith("src:") and "Traceback" not in str(err), str(err)


@pytest.mark.parametrize("type_name", PAGINATED)
def test_repeated_page_stops_at_once(type_name: str, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    case = CASES[type_name]
    _env(case, monkeypatch)
    assert case.first_page is not None
    holder: dict[str, str] = {}

    def same_page(*_: Any) -> Reply:
        assert case.first_page is not None
        return case.first_page(holder["url"])

    with PayloadServer(same_page) as server:
        holder["url"] = server.url
        conn = make(type_name, folder, server.url, case.fast)
        with pytest.raises(ConnectorError) as exc:
            pull(type_name, conn)
        asked = len(server.requests)
    assert str(exc.value).startswith("src:") and "pagination loop" in str(exc.value), str(exc.value)
    assert asked <= 4  # search pages (and a few per-item requests), not thousands


@pytest.mark.parametrize("type_name", HTTP)
def test_stalled_answer_times_out(type_name: str, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A server that accepts the connection and sends nothing: the read timeout (tiny here) ends it."""
    _env(CASES[type_name], monkeypatch)
    release = threading.Event()

    def stall(*_: Any) -> Reply:
        release.wait(10)
        return Reply(200, b"{}")

    began = time.monotonic()
    try:
        err, _ = _fails(type_name, folder, handler=stall)
    finally:
        release.set()
    assert str(err).startswith("src:"), str(err)
    assert time.monotonic() - began < 8


# ----------------------------------------------------------------------------- file failures


@pytest.mark.parametrize("type_name", FILES)
def test_missing_file(type_name: str, folder: Path) -> None:
    case = CASES[type_name]
    assert case.files is not None
    case.files(folder).unlink()
    with pytest.raises(ConnectorError) as exc:
        pull(type_name, make(type_name, folder))
    assert str(exc.value).startswith("src:"), str(exc.value)


@pytest.mark.parametrize("type_name", FILES)
def test_truncated_file(type_name: str, folder: Path) -> None:
    case = CASES[type_name]
    assert case.files is not None
    main = case.files(folder)
    data = main.read_bytes()
    main.write_bytes(data[: int(len(data) * 0.6)])
    with pytest.raises(ConnectorError) as exc:
        pull(type_name, make(type_name, folder))
    assert str(exc.value).startswith("src:"), str(exc.value)


# ----------------------------------------------------------------------------- database failures
# What a 401, a 403, a 500, a truncated body and a stalled answer are to an HTTP source.


def _db_fails(type_name: str, folder: Path) -> ConnectorError:
    with pytest.raises(ConnectorError) as exc:
        pull(type_name, make(type_name, folder))
    err = exc.value
    assert str(err).startswith("src:") and "Traceback" not in str(err), str(err)
    return err


def _set_url(case: Case, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(case.database_env, url.replace("postgresql+psycopg://", "postgresql://"))


@pytest.mark.parametrize("type_name", DATABASES)
def test_database_login_refused(type_name: str, folder: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A role the server does not know (the 401): named as the database, the password never shown."""
    case = CASES[type_name]
    url = _database(case, request, monkeypatch)
    _set_url(case, url.replace("//portfolio@", "//std_nobody:pw-hunter2@"), monkeypatch)
    err = _db_fails(type_name, folder)
    assert case.database_env in str(err) and "hunter2" not in str(err), str(err)


@pytest.mark.parametrize("type_name", DATABASES)
def test_database_table_not_readable(type_name: str, folder: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A role that may log in but not read the table (the 403): the table is named."""
    case = CASES[type_name]
    url = _database(case, request, monkeypatch)
    eng = sa.create_engine(url)
    try:
        with eng.begin() as conn:
            if not conn.exec_driver_sql("SELECT 1 FROM pg_roles WHERE rolname = 'std_reader'").first():
                conn.exec_driver_sql("CREATE ROLE std_reader LOGIN")
    finally:
        eng.dispose()
    _set_url(case, url.replace("//portfolio@", "//std_reader@"), monkeypatch)
    err = _db_fails(type_name, folder)
    assert case.db_table in str(err) and "permission denied" in str(err), str(err)


@pytest.mark.parametrize("type_name", DATABASES)
def test_database_missing_table(type_name: str, folder: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The database answers but holds no such table (the 500 / 404): the table is named."""
    case = CASES[type_name]
    server: Postgres = request.getfixturevalue("postgres")
    _set_url(case, server.create_database("std_empty"), monkeypatch)
    err = _db_fails(type_name, folder)
    assert case.db_table in str(err), str(err)


@pytest.mark.parametrize("type_name", DATABASES)
def test_database_table_of_the_wrong_shape(type_name: str, folder: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A table of that name holding other columns (the truncated or unexpected body): named, no traceback."""
    case = CASES[type_name]
    server: Postgres = request.getfixturevalue("postgres")
    url = server.create_database("std_shape")
    eng = sa.create_engine(url)
    try:
        with eng.begin() as conn:
            conn.exec_driver_sql(f'CREATE TABLE "{case.db_table}" (request_id TEXT PRIMARY KEY)')
    finally:
        eng.dispose()
    _set_url(case, url, monkeypatch)
    err = _db_fails(type_name, folder)
    assert case.db_table in str(err), str(err)


@pytest.mark.parametrize("type_name", DATABASES)
def test_database_stalled_server_times_out(type_name: str, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A server that accepts the connection and never answers: the connect timeout (2 s) ends it."""
    case = CASES[type_name]
    with socket.socket() as listener:  # the kernel completes the handshake; nobody ever reads or writes
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        monkeypatch.setenv(case.database_env, f"postgresql://portfolio:pw-hunter2@127.0.0.1:{port}/litellm")
        began = time.monotonic()
        err = _db_fails(type_name, folder)
        took = time.monotonic() - began
    assert case.database_env in str(err) and "hunter2" not in str(err), str(err)
    assert took < 8, took

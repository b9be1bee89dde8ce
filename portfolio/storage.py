"""The database: engine (SQLite in WAL mode by default, PostgreSQL for a team), idempotent upsert,
the deletes that make a restated window replace the old one, and reads into DataFrames.

Upserts go by each table's ``NATURAL_KEY`` with ``INSERT ... ON CONFLICT (key) DO UPDATE ... WHERE
<something differs>``, so re-syncing identical data changes no row and counts zero rows written.

Nothing waits for the database forever. ``lock_timeout`` (default 30 s) is how long a write waits for
another writer's lock — SQLite's busy timeout, PostgreSQL's ``lock_timeout`` — and, on PostgreSQL,
``statement_timeout`` (default 10 min) bounds any one statement. Both are set in the database URL in
PostgreSQL's own syntax, e.g. ``postgresql+psycopg://host/db?lock_timeout=10s&statement_timeout=15min``
or ``sqlite:///portfolio.db?lock_timeout=5s``. A database error becomes one line for a person
(:func:`explain`): "locked by another writer", "disk full" — never the SQL statement or its rows.
"""

from __future__ import annotations

import os
import re
import threading
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlmodel import SQLModel

from portfolio import records
from portfolio.errors import StorageError, redact

if TYPE_CHECKING:  # pandas and pyarrow are imported by the functions that take frames (start-up time)
    import pandas as pd

BATCH = 10_000

#: defaults of the database URL's ``lock_timeout`` and (PostgreSQL) ``statement_timeout``, seconds
LOCK_TIMEOUT = 30.0
STATEMENT_TIMEOUT = 600.0
_UNITS = {"ms": 0.001, "s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0}

_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def _sqlite_pragmas(busy_ms: int) -> Any:
    def pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")  # readers never block the writer (dashboard during sync)
        cur.execute("PRAGMA synchronous=NORMAL")  # safe with WAL; a crash loses at most the last commit
        cur.execute(f"PRAGMA busy_timeout={busy_ms}")  # wait for a writer (lock_timeout), then fail 'locked'
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    return pragmas


def parse_duration(key: str, text: str) -> float:
    """A duration in PostgreSQL's syntax ("500ms", "30s", "10min", "1h"; a bare number is
    milliseconds, as in PostgreSQL) as seconds; raises StorageError naming the URL key."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|min|h|d)?\s*", text)
    if not m or float(m.group(1)) <= 0:
        raise StorageError(f"database_url: {key}={text!r} is not a duration such as 500ms, 30s, 10min or 1h")
    return float(m.group(1)) * _UNITS[m.group(2) or "ms"]


def timeouts(url: str) -> tuple[str, float, float]:
    """The URL without our ``lock_timeout`` / ``statement_timeout`` keys, and those two in seconds."""
    parsed = sa.engine.make_url(url)
    query = dict(parsed.query)
    lock = parse_duration("lock_timeout", str(query.pop("lock_timeout"))) if "lock_timeout" in query else LOCK_TIMEOUT
    statement = STATEMENT_TIMEOUT
    if "statement_timeout" in query:
        if parsed.get_backend_name() == "sqlite":
            raise StorageError("database_url: statement_timeout applies to PostgreSQL only (SQLite has lock_timeout)")
        statement = parse_duration("statement_timeout", str(query.pop("statement_timeout")))
    return parsed.set(query=query).render_as_string(hide_password=False), lock, statement


_timeouts: weakref.WeakKeyDictionary[Engine, tuple[float, float]] = weakref.WeakKeyDictionary()


def lock_timeout(engine: Engine) -> float:
    """The engine's lock wait in seconds (``lock_timeout`` of its URL)."""
    return _timeouts.get(engine, (LOCK_TIMEOUT, STATEMENT_TIMEOUT))[0]


def _create_private_file(path: Path) -> None:
    """Create a new SQLite database file readable by its owner only (0600).

    SQLite would create it 0644 (less the umask); an empty file is a valid empty database, and
    SQLite gives the -wal and -shm files it creates later the database file's mode. An existing
    file is left as it is.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)


def make_engine(url: str) -> Engine:
    """Create (or reuse) the engine for ``url`` and make sure the schema exists."""
    with _lock:
        if url in _engines:
            return _engines[url]
        try:
            plain, lock, statement = timeouts(url)
            if url.startswith("sqlite"):
                db = sa.engine.make_url(plain).database
                if db and db != ":memory:" and not db.startswith("file:"):
                    _create_private_file(Path(db).expanduser())
                engine = sa.create_engine(plain, connect_args={"check_same_thread": False, "timeout": lock})
                sa.event.listen(engine, "connect", _sqlite_pragmas(int(lock * 1000)))
            else:
                # the server applies these to every session from its start; a user's own libpq
                # ``options`` in the URL are kept (and win: they come last)
                parsed = sa.engine.make_url(plain)
                own = str(parsed.query.get("options", ""))
                options = f"-c lock_timeout={int(lock * 1000)} -c statement_timeout={int(statement * 1000)} {own}".strip()
                query = {k: v for k, v in parsed.query.items() if k != "options"}
                engine = sa.create_engine(
                    parsed.set(query=query), pool_pre_ping=True, connect_args={"options": options}
                )
            _timeouts[engine] = (lock, statement)
            migrate(engine)
        except sa.exc.SQLAlchemyError as exc:
            raise StorageError(f"cannot open database: {explain(exc)}") from None
        _engines[url] = engine
        return engine


def _seconds(value: float) -> str:
    return f"{value:g} s" if value < 120 else f"{value / 60:g} min"


def explain(exc: BaseException, engine: Engine | None = None) -> str:
    """One line for a person about a database error: what happened and what to do — never the SQL
    statement, its parameters or the rows (SQLAlchemy's own message carries all three)."""
    orig = getattr(exc, "orig", None) or exc.__cause__ or exc
    text = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    lower = text.lower()
    code = getattr(orig, "sqlstate", None) or getattr(getattr(orig, "diag", None), "sqlstate", None)
    lock = lock_timeout(engine) if engine is not None else None
    waited = f" (waited lock_timeout = {_seconds(lock)})" if lock else ""
    if "database is locked" in lower or "database table is locked" in lower or code == "55P03":
        return f"database is locked by another writer{waited}; nothing of this was written — try again when it is done"
    if "database or disk is full" in lower or code == "53100" or "no space left" in lower:
        return "database disk is full (or the database reached its size limit); nothing of this was written — free space and try again"
    if code == "57014" and "statement timeout" in lower:
        return "a database statement ran past statement_timeout and was cancelled; nothing of this was written"
    if "unable to open database" in lower or "readonly database" in lower or "read-only" in lower:
        return f"database cannot be written: {text}"
    if isinstance(exc, sa.exc.OperationalError) and code is not None and code.startswith("08"):
        return "database unreachable (connection failed or lost); nothing of this was written"
    # anything else: the driver's first line, which names the problem but not the statement
    return f"database error ({type(orig).__name__}): {redact(text)[:200]}"


@contextmanager
def translated(engine: Engine | None = None) -> Iterator[None]:
    """Turn a database error inside the block into a StorageError of one line (see :func:`explain`)."""
    try:
        yield
    except sa.exc.DBAPIError as exc:
        if isinstance(exc, sa.exc.IntegrityError):
            raise
        raise StorageError(explain(exc, engine)) from None


MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_MIGRATION_LOCK = 0x6D6C70_6D6967  # "mlp" "mig": one advisory lock key for schema migrations


def alembic_config(connection: Connection | None = None) -> Any:
    """Alembic's config for our migrations, bound to ``connection`` when given."""
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (Alembic; a no-op when it is current)."""
    # Processes starting together on a new database (dashboard, scheduler, CLI) take turns: each
    # migrates inside one transaction that holds a lock to its end, and the next finds the schema
    # at head. PostgreSQL: an advisory lock. SQLite: BEGIN IMMEDIATE (its write lock) on a
    # connection where DDL is transactional — Python's sqlite3 would otherwise commit each CREATE
    # on its own, and two processes would both find no schema and both create it.
    if _at_head(engine):  # every start but the first: a read, no lock (a long sync holds SQLite's)
        return
    from alembic import command  # only when there is something to upgrade (start-up time)

    url = engine.url
    if engine.dialect.name == "sqlite" and url.database not in (None, "", ":memory:"):
        serial = sa.create_engine(url, connect_args={"timeout": 30}, poolclass=sa.pool.NullPool)
        sa.event.listen(serial, "connect", _sqlite_manual_transactions)
        sa.event.listen(serial, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
        try:
            with serial.begin() as conn:
                command.upgrade(alembic_config(conn), "head")
        finally:
            serial.dispose()
        return
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
        command.upgrade(alembic_config(conn), "head")


_REVISION = re.compile(r"^(revision|down_revision)\s*(?::[^=]*)?=\s*(.+)$", re.MULTILINE)


def schema_heads() -> set[str]:
    """The newest migration revision(s), read from the migration files' ``revision`` and
    ``down_revision`` lines: what Alembic's ScriptDirectory answers, without importing Alembic
    (a third of a second that every process start would pay; tests/test_startup.py checks that
    both agree)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (Path(MIGRATIONS) / "versions").glob("*.py"):
        found: dict[str, str] = {m.group(1): m.group(2) for m in _REVISION.finditer(path.read_text(encoding="utf-8"))}
        if "revision" not in found:
            continue
        revisions.add(found["revision"].strip().strip("'\""))
        parents.update(re.findall(r"['\"]([^'\"]+)['\"]", found.get("down_revision", "")))
    return revisions - parents


def _at_head(engine: Engine) -> bool:
    """Whether the database's schema is at the newest migration already (a plain read of
    ``alembic_version``; Alembic itself is imported only when there is something to upgrade)."""
    heads = schema_heads()
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table("alembic_version"):
            return False
        current = {str(v) for v in conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars()}
    return bool(heads) and current == heads


def _sqlite_manual_transactions(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # the driver issues no BEGIN/COMMIT of its own: ours count


def dispose_all() -> None:
    """Close every engine (tests, process shutdown)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def table_of(model: type[SQLModel]) -> sa.Table:
    return model.__table__  # type: ignore[attr-defined,no-any-return]


def _value_columns(model: type[SQLModel]) -> list[sa.Column[Any]]:
    """Columns written by an upsert: all but a surrogate autoincrement id."""
    table = table_of(model)
    key = set(model.NATURAL_KEY)  # type: ignore[attr-defined]
    return [c for c in table.columns if not (c.name == "id" and "id" not in key)]


def _upsert_sql(
    dialect: sa.Dialect, model: type[SQLModel], cols: Sequence[sa.Column[Any]], on_conflict: bool = True
) -> str:
    q = dialect.identifier_preparer.quote
    table = table_of(model)
    key = list(model.NATURAL_KEY)  # type: ignore[attr-defined]
    names = [c.name for c in cols]
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    update = [n for n in names if n not in key]
    sql = (
        f"INSERT INTO {q(table.name)} ({', '.join(q(n) for n in names)}) "
        f"VALUES ({', '.join(mark for _ in names)}) "
    )
    if not on_conflict:  # a plain INSERT: a repeated natural key is an IntegrityError
        if dialect.name == "postgresql":  # the bulk path: COPY (see execute_prepared)
            return f"COPY {q(table.name)} ({', '.join(q(n) for n in names)}) FROM STDIN"
        return sql
    sql += f"ON CONFLICT ({', '.join(q(k) for k in key)}) "
    if not update:
        return sql + "DO NOTHING"
    differs = "IS NOT" if dialect.name == "sqlite" else "IS DISTINCT FROM"
    sql += "DO UPDATE SET " + ", ".join(f"{q(n)} = excluded.{q(n)}" for n in update)
    sql += " WHERE " + " OR ".join(f"{q(table.name)}.{q(n)} {differs} excluded.{q(n)}" for n in update)
    return sql


def _processors(dialect: sa.Dialect, cols: Sequence[sa.Column[Any]]) -> list[Any]:
    # the dialect's own type (Money -> BIGINT micro-units / NUMERIC), not the generic Numeric that
    # would turn every amount into a float on the way in
    return [c.type.dialect_impl(dialect).bind_processor(dialect) for c in cols]


#: a write made ready for the database: the SQL statement and its rows in the database's own form
Prepared = tuple[str, list[tuple[Any, ...]]]


def execute_prepared(conn: Connection, sql: str, rows: Sequence[tuple[Any, ...]]) -> int:
    """Run a prepared write in batches. Returns rows changed.

    A ``COPY ... FROM STDIN`` statement (PostgreSQL's plain inserts, see :func:`_upsert_sql`) streams
    the rows through psycopg's COPY in the connection's transaction: several times faster than
    ``executemany`` for a bill's millions of rows. A repeated key raises IntegrityError as an
    INSERT would."""
    if sql.startswith("COPY "):
        return _copy_rows(conn, sql, rows)
    changed = 0
    for i in range(0, len(rows) if sql else 0, BATCH):
        result = conn.exec_driver_sql(sql, list(rows[i : i + BATCH]))  # type: ignore[arg-type]
        changed += max(result.rowcount, 0)
    return changed


def _copy_rows(conn: Connection, sql: str, rows: Sequence[tuple[Any, ...]]) -> int:
    if not rows:
        return 0
    import psycopg

    raw: Any = conn.connection.driver_connection  # the psycopg connection, inside SQLAlchemy's transaction
    try:
        with raw.cursor() as cur, cur.copy(sql) as copy:
            for row in rows:
                copy.write_row(row)
    except psycopg.IntegrityError as exc:
        raise sa.exc.IntegrityError(sql, None, exc) from None
    except psycopg.Error as exc:
        raise sa.exc.DatabaseError(sql, None, exc) from None
    return len(rows)


def prepare_columns(
    dialect: sa.Dialect,
    model: type[SQLModel],
    columns: Mapping[str, Sequence[Any]],
    length: int,
    *,
    insert_only: bool = False,
    bound: frozenset[str] = frozenset(),
) -> Prepared:
    """The upsert of ``length`` rows given column-wise (field name -> Python values), ready to run.

    Column-wise because the bulk path (a billing export, a year of metrics for 1,000 apps) spends
    its time converting values: each column's bind processor runs over that column only, and
    columns that need none (text, floats on SQLite) are passed through untouched.
    ``insert_only`` writes with a plain INSERT, for rows known to be new (a source's first sync):
    a repeated natural key then raises IntegrityError instead of overwriting.
    ``bound`` names columns whose values are already in the database's own form (converted
    vectorised by :func:`upsert_frame`): their bind processors are skipped.
    """
    if length == 0:
        return "", []
    by_name = {c.name: c for c in _value_columns(model)}
    for name in by_name:
        if name not in columns and name != "id":
            # columns the caller did not give take their model defaults, converted once (not once
            # per row: a bill's 2M rows would pay a bind call each for a constant)
            default = model.model_fields[name].get_default(call_default_factory=True)
            proc = _processors(dialect, [by_name[name]])[0]
            columns = {**columns, name: [proc(default) if proc and default is not None else default] * length}
            bound = bound | {name}
    nk = list(model.NATURAL_KEY)  # type: ignore[attr-defined]
    cols = sorted((by_name[n] for n in columns), key=lambda c: nk.index(c.name) if c.name in nk else len(nk))
    sql = _upsert_sql(dialect, model, cols, on_conflict=not insert_only)
    converted = []
    for col, proc in zip(cols, _processors(dialect, cols), strict=True):
        values = columns[col.name]
        if proc and col.name not in bound:
            converted.append([None if v is None else proc(v) for v in values])
        else:
            converted.append(values if isinstance(values, list) else list(values))
    return sql, list(zip(*converted, strict=True))


def upsert(conn: Connection, model: type[SQLModel], objs: Sequence[SQLModel], *, insert_only: bool = False) -> int:
    """Upsert model instances by natural key. Returns how many rows were inserted or changed.

    A daily fact table's monthly rollup (:mod:`portfolio.rollup`) is rewritten for the sources and
    months written, in the same transaction."""
    changed = execute_prepared(conn, *prepare_objects(conn.dialect, model, objs, insert_only=insert_only))
    if changed:
        _refresh_rollup(conn, model, [getattr(o, "source", "") for o in objs], [getattr(o, "day", None) for o in objs])
    return changed


def _refresh_rollup(conn: Connection, model: type[SQLModel], sources: Iterable[Any], days: Iterable[Any]) -> None:
    from portfolio import rollup  # it imports records only; here to keep storage a low layer

    if model in rollup.ROLLUPS:
        rollup.refresh_written(conn, model, {str(s) for s in sources}, days)


def prepare_objects(dialect: sa.Dialect, model: type[SQLModel], objs: Sequence[SQLModel], *, insert_only: bool = False) -> Prepared:
    """The upsert of model instances, ready to run (see :func:`prepare_columns`)."""
    if not objs:
        return "", []
    names = [c.name for c in _value_columns(model)]
    columns = {n: [getattr(o, n) for o in objs] for n in names}
    return prepare_columns(dialect, model, columns, len(objs), insert_only=insert_only)


def upsert_frame(conn: Connection, model: type[SQLModel], frame: pd.DataFrame, *, insert_only: bool = False) -> int:
    """Upsert a DataFrame whose columns are the model's field names (bulk path for big connectors).
    A daily fact table's rollup is rewritten as by :func:`upsert`."""
    changed = execute_prepared(conn, *prepare_frame(conn.dialect, model, frame, insert_only=insert_only))
    if changed and "source" in frame.columns and "day" in frame.columns:
        _refresh_rollup(conn, model, frame["source"].unique(), [frame["day"].min(), frame["day"].max()])
    return changed


def prepare_frame(dialect: sa.Dialect, model: type[SQLModel], frame: pd.DataFrame, *, insert_only: bool = False) -> Prepared:
    """The upsert of a DataFrame, ready to run (see :func:`prepare_columns`)."""
    if frame.empty:
        return "", []
    names = list(frame.columns)
    check_columns(model, frame)
    table = table_of(model)
    columns: dict[str, Sequence[Any]] = {}
    bound = set()
    for n in names:
        fast = _bound_values(dialect.name, table.c[str(n)], frame[n])
        if fast is not None:
            columns[str(n)] = fast
            bound.add(str(n))
        else:
            columns[str(n)] = _python_values(frame[n])
    return prepare_columns(dialect, model, columns, len(frame), insert_only=insert_only, bound=frozenset(bound))


def check_columns(model: type[SQLModel], frame: pd.DataFrame) -> None:
    """Refuse a frame with a column ``model``'s table does not have."""
    unknown = set(frame.columns) - {c.name for c in _value_columns(model)}
    if unknown:
        raise StorageError(f"{model.__name__}: unknown columns {sorted(unknown)}")


def _bound_values(dialect: str, col: sa.Column[Any], series: pd.Series) -> list[Any] | None:
    """The SQLite form of an Arrow-backed money or date column, converted in one vectorised step
    (a billing export's millions of amounts and days would otherwise go through one Python bind
    call each: most of a big sync's conversion time). None when no fast path applies."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    if dialect != "sqlite" or not isinstance(series.dtype, pd.ArrowDtype):
        return None
    arr = series.array._pa_array  # type: ignore[attr-defined]
    typ = arr.type
    if isinstance(col.type, records.Money) and pa.types.is_decimal(typ):
        return micro_units(series).to_pylist()  # type: ignore[union-attr]
    if isinstance(col.type, sa.Date) and pa.types.is_date32(typ):
        return pc.cast(arr, pa.string()).to_pylist()  # type: ignore[no-any-return]
    return None


def micro_units(series: pd.Series) -> Any:
    """An Arrow-backed decimal money column as SQLite stores it: integer micro-units (an Arrow
    int64 array), rounded half to even to 6 places; None for any other column. The one conversion
    the bulk write and the rollup of a first sync (:class:`portfolio.rollup.FirstSyncCost`) share."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    if not isinstance(series.dtype, pd.ArrowDtype):
        return None
    arr = series.array._pa_array  # type: ignore[attr-defined]
    if not pa.types.is_decimal(arr.type):
        return None
    if arr.type.scale > 6:
        arr = pc.round(arr, ndigits=6, round_mode="half_to_even")
    arr = pc.cast(arr, pa.decimal128(30, 6))  # raises if an amount does not fit NUMERIC(20, 6)-ish
    micro = pc.multiply(arr, pa.scalar(Decimal(1_000_000), pa.decimal128(7, 0)))
    return pc.cast(micro, pa.int64())


def source_has_rows(conn: Connection, model: type[SQLModel], source: str) -> bool:
    """Whether ``source`` has any row in the table (served by the natural key's index)."""
    table = table_of(model)
    return conn.execute(sa.select(sa.literal(1)).where(table.c.source == source).limit(1)).first() is not None


def _python_values(series: pd.Series) -> list[Any]:
    """Plain Python values (no numpy scalars, NaN/NaT -> None) that every DB driver binds."""
    values = series.astype(object).where(series.notna(), None) if series.hasnans else series
    return values.tolist()


# ----------------------------------------------------------------------------- restatement, set-based
#
# A restated partition (a bill's period) replaces what the source held for it: the rows written
# again are upserted, and the rows it no longer has are stale. Which are stale is decided in the
# database: the natural keys written by this run go into a temporary table ("seen"), and one DELETE
# per restated scope removes the source's rows in that scope whose key is not in it. No key is read
# back into Python, and memory does not grow with the bill.


def seen_table(model: type[SQLModel]) -> str:
    return f"_seen_{table_of(model).name}"


def create_seen(conn: Connection, model: type[SQLModel]) -> None:
    """(Re)create the empty temporary table of the natural keys a run wrote into ``model``'s table;
    its unique index refuses a key written twice in one run (IntegrityError)."""
    q = conn.dialect.identifier_preparer.quote
    name, key = seen_table(model), [q(k) for k in model.NATURAL_KEY]  # type: ignore[attr-defined]
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {q(name)}")
    conn.exec_driver_sql(
        f"CREATE TEMPORARY TABLE {q(name)} AS SELECT {', '.join(key)} FROM {q(table_of(model).name)} WHERE 1 = 0"
    )
    conn.exec_driver_sql(f"CREATE UNIQUE INDEX {q(name + '_key')} ON {q(name)} ({', '.join(key)})")


def drop_seen(conn: Connection, model: type[SQLModel]) -> None:
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {conn.dialect.identifier_preparer.quote(seen_table(model))}")


def writes_seen(sql: str) -> bool:
    """Whether a prepared write fills a seen table (bookkeeping: not counted as rows written)."""
    return re.match(r'(INSERT INTO|COPY) "?_seen_', sql) is not None


def prepare_seen(dialect: sa.Dialect, model: type[SQLModel], key_rows: Sequence[tuple[Any, ...]]) -> Prepared:
    """Insert natural keys (already in the database's own form) into the run's seen table."""
    if not key_rows:
        return "", []
    q = dialect.identifier_preparer.quote
    key = [q(k) for k in model.NATURAL_KEY]  # type: ignore[attr-defined]
    if dialect.name == "postgresql":
        return f"COPY {q(seen_table(model))} ({', '.join(key)}) FROM STDIN", list(key_rows)
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    return f"INSERT INTO {q(seen_table(model))} ({', '.join(key)}) VALUES ({', '.join(mark for _ in key)})", list(key_rows)


def key_rows(model: type[SQLModel], prepared: Prepared) -> list[tuple[Any, ...]]:
    """The natural-key part of prepared rows (the key columns come first, see :func:`prepare_columns`)."""
    n = len(model.NATURAL_KEY)  # type: ignore[attr-defined]
    return [r[:n] for r in prepared[1]]


def bind_keys(dialect: sa.Dialect, model: type[SQLModel], keys: Iterable[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Natural keys given as Python values, in the database's own form."""
    table = table_of(model)
    cols = [table.c[k] for k in model.NATURAL_KEY]  # type: ignore[attr-defined]
    procs = _processors(dialect, cols)
    return [tuple(v if p is None or v is None else p(v) for p, v in zip(procs, k, strict=True)) for k in keys]


def delete_unseen(conn: Connection, model: type[SQLModel], source: str, condition: Any) -> int:
    """Delete ``source``'s rows meeting ``condition`` whose natural key this run did not write."""
    table = table_of(model)
    key = list(model.NATURAL_KEY)  # type: ignore[attr-defined]
    seen = sa.table(seen_table(model), *(sa.column(k) for k in key))
    stmt = sa.delete(table).where(
        table.c.source == source,
        condition,
        ~sa.exists().where(*(seen.c[k] == table.c[k] for k in key)),
    )
    return max(conn.execute(stmt).rowcount, 0)


def read_frame(engine: Engine | Connection, model: type[SQLModel], *where: Any) -> pd.DataFrame:
    """All rows of a table (optionally filtered) as a DataFrame of Python values (Decimal money)."""
    table = table_of(model)
    stmt = sa.select(table).where(*where) if where else sa.select(table)
    if isinstance(engine, Engine):
        with engine.connect() as conn:
            rows = conn.execute(stmt).all()
    else:
        rows = engine.execute(stmt).all()
    import pandas as pd

    return pd.DataFrame([tuple(r) for r in rows], columns=[c.name for c in table.columns])


def add(engine: Engine, obj: SQLModel) -> SQLModel:
    """Insert one object (a Decision, a SyncRun) and return it refreshed."""
    from sqlmodel import Session

    with translated(engine), Session(engine, expire_on_commit=False) as session:  # locked / full: one line
        session.add(obj)
        session.commit()
        session.refresh(obj)
    return obj


ALL_TABLES = records.RECORD_TYPES + (records.SyncRun,)

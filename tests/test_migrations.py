"""The Alembic migrations build exactly the schema records.py describes, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command

from portfolio import storage


@pytest.fixture(params=["sqlite", "postgresql"])
def any_url(request: pytest.FixtureRequest, sqlite_url: str) -> str:
    if request.param == "sqlite":
        return sqlite_url
    return str(request.getfixturevalue("postgres_url"))


def test_migrations_match_the_records(any_url: str) -> None:
    """`alembic check` finds nothing to generate: a changed record without a migration fails here."""
    engine = storage.make_engine(any_url)
    with engine.begin() as conn:
        command.check(storage.alembic_config(conn))
        version = conn.execute(sa.text("select version_num from alembic_version")).scalar()
    assert version is not None


def test_migrate_twice_is_a_no_op(any_url: str) -> None:
    engine = storage.make_engine(any_url)
    before = sorted(sa.inspect(engine).get_table_names())
    storage.migrate(engine)
    assert sorted(sa.inspect(engine).get_table_names()) == before
    assert "costrecord" in before and "alembic_version" in before


def test_processes_starting_together_on_a_new_database_all_open_it(any_url: str, tmp_path) -> None:
    """The dashboard, the scheduler and a CLI started at once on a new team database: each process
    migrates, none fails. PostgreSQL: they take turns on an advisory lock (without it one of three
    failed in 1 to 4 of 15 tries with a duplicate ``alembic_version`` type). SQLite: BEGIN IMMEDIATE
    with transactional DDL (without it this test failed 2 of 4 runs with "table ... already exists")."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    code = "import sys; from portfolio import storage; storage.make_engine(sys.argv[1]); print('ok')"
    urls = [any_url] + [any_url.replace("portfolio.db", f"p{i}.db") for i in range(1, 4)]
    if not any_url.startswith("sqlite"):
        base, _, name = any_url.rpartition("/")
        urls = [any_url] + [f"{base}/{name}_{i}" for i in range(1, 4)]
        engine = storage.make_engine(any_url)  # only to create the other three, empty
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for i in range(1, 4):
                conn.exec_driver_sql(f'CREATE DATABASE "{name}_{i}"')
        storage.dispose_all()
    for url in urls[1:]:  # a new, empty database each round
        procs = [
            subprocess.Popen([sys.executable, "-c", code, url], cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(3)
        ]
        results = [p.communicate(timeout=120) for p in procs]
        assert [p.returncode for p in procs] == [0, 0, 0], [err.strip().splitlines()[-1:] for _, err in results]
        engine = storage.make_engine(url)
        with engine.connect() as conn:
            assert conn.execute(sa.text("select count(*) from alembic_version")).scalar() == 1
        storage.dispose_all()


@pytest.mark.sqlite_only(reason="SQLite's single write lock: a sync holds it for its whole transaction")
def test_opening_a_current_database_does_not_wait_for_a_writer(sqlite_url: str) -> None:
    """The dashboard starting while the scheduler syncs: a schema already at head is only read,
    so opening it does not queue behind the sync's write lock (up to the 30 s busy timeout)."""
    import sqlite3
    import threading

    storage.make_engine(sqlite_url)
    storage.dispose_all()
    writer = sqlite3.connect(sa.engine.make_url(sqlite_url).database, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # a long sync's transaction
    opened = threading.Event()
    thread = threading.Thread(target=lambda: (storage.make_engine(sqlite_url), opened.set()), daemon=True)
    try:
        thread.start()
        assert opened.wait(timeout=10), "make_engine waited for the writer's lock"
    finally:
        writer.execute("ROLLBACK")
        writer.close()
        thread.join(timeout=60)

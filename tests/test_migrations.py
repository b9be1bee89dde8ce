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

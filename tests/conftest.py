"""Shared fixtures: a clean environment for every test, temporary databases, real servers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from portfolio import storage
from tests.servers import SHARED_DATA, Postgres


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The developer's environment never leaks into a test: no PORTFOLIO_* variables, no caches."""
    for key in list(os.environ):
        if key.startswith("PORTFOLIO_"):
            monkeypatch.delenv(key, raising=False)
    _clear_streamlit_caches()
    yield
    _clear_streamlit_caches()
    storage.dispose_all()


def _clear_streamlit_caches() -> None:
    try:
        import streamlit as st
    except ImportError:  # pragma: no cover - streamlit is a dependency
        return
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'portfolio.db'}"


#: ``MLP_TEST_DB=postgresql`` runs every test that takes the ``engine`` fixture on a fresh
#: database of the real PostgreSQL instead of SQLite (scripts/test.sh does a second pass so).
TEST_DB = os.environ.get("MLP_TEST_DB", "sqlite")


@pytest.fixture
def engine(request: pytest.FixtureRequest, sqlite_url: str) -> Engine:
    if TEST_DB == "postgresql":
        return storage.make_engine(str(request.getfixturevalue("postgres_url")))
    return storage.make_engine(sqlite_url)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """Debian's real PostgreSQL on a loopback port, for the whole session."""
    server = Postgres.start()
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres: Postgres) -> str:
    """A fresh, empty PostgreSQL database."""
    return postgres.create_database()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        raise RuntimeError(f"{SHARED_DATA} is missing: tests read the real sample files in ../shared/data")
    return SHARED_DATA


DEMO_AS_OF = "2026-06-15"  # tests pin the demo's as-of date so their numbers never drift with the calendar


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo portfolio database built once per session (as of DEMO_AS_OF). Copy it before writing."""
    from portfolio import config, sync

    path = tmp_path_factory.mktemp("demo") / "demo.db"
    cfg = config.demo_config(f"sqlite:///{path}")
    cfg.connectors["demo"].as_of = DEMO_AS_OF  # type: ignore[attr-defined]
    outcome = sync.sync(cfg, only=["demo"])
    assert outcome.ok, [r.error for r in outcome.runs]
    storage.dispose_all()
    return path


@pytest.fixture(scope="session")
def demo_pg_template(postgres: Postgres) -> str:
    """The demo portfolio (as of DEMO_AS_OF) built once in a PostgreSQL database used as a template."""
    from portfolio import config, sync

    url = postgres.create_database("demo_tpl")
    cfg = config.demo_config(url)
    cfg.connectors["demo"].as_of = DEMO_AS_OF  # type: ignore[attr-defined]
    outcome = sync.sync(cfg, only=["demo"])
    assert outcome.ok, [r.error for r in outcome.runs]
    storage.dispose_all()  # a template database must have no open connection
    return url.rsplit("/", 1)[-1]


@pytest.fixture
def demo_pg_copy(postgres: Postgres, demo_pg_template: str) -> str:
    """A private PostgreSQL copy of the demo portfolio; returns its URL."""
    storage.dispose_all()
    return postgres.create_database("demo", template=demo_pg_template)


@pytest.fixture
def demo_copy(demo_db: Path, tmp_path: Path) -> str:
    """A private, writable copy of the demo database; returns its SQLAlchemy URL."""
    import shutil

    target = tmp_path / "demo.db"
    shutil.copy(demo_db, target)
    return f"sqlite:///{target}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On the PostgreSQL pass, run exactly the tests that take their database through ``engine``
    or the dashboard's demo fixtures (the others either do not touch a database or already cover
    both backends themselves)."""
    if TEST_DB != "postgresql":
        return
    uses_db = {"engine", "demo_url", "own_demo_url"}  # the dashboard's demo fixtures switch too
    keep = [i for i in items if uses_db & set(getattr(i, "fixturenames", ()))]
    dropped = [i for i in items if i not in keep]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep

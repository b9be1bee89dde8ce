"""Shared fixtures: a clean environment for every test, temporary databases on either backend, real servers.

The suite runs twice (scripts/test.sh): on SQLite, then with ``MLP_TEST_DB=postgresql`` on a real
PostgreSQL. A test that touches the portfolio database takes it from a fixture that follows the
pass's backend, and so runs on both:

- ``db_url`` / ``engine``: a fresh, empty database for the test (its URL / an engine on it);
- ``make_db_url``: a factory of fresh databases, for module or session fixtures and for tests that
  need more than one database;
- ``demo_copy_url``: a private, writable copy of the demo portfolio as of ``DEMO_AS_OF``.

Every one of them depends on ``db_backend``; that is how the PostgreSQL pass finds its tests (see
``pytest_collection_modifyitems``). ``sqlite_url``, ``demo_db`` and ``demo_copy`` are SQLite files on
both passes, for tests about SQLite itself (WAL, file locking, ...): mark those
``@pytest.mark.sqlite_only(reason=...)``. ``postgres_url`` is PostgreSQL on both passes, for tests
that cover both backends themselves.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from portfolio import storage
from tests.servers import SHARED_DATA, Postgres

#: The backend of this pass: ``sqlite`` (default) or ``postgresql`` (``MLP_TEST_DB=postgresql``).
TEST_DB = os.environ.get("MLP_TEST_DB", "sqlite")
BACKENDS = ("sqlite", "postgresql")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "sqlite_only(reason): a test about SQLite itself (WAL, file locking, ...); the PostgreSQL pass leaves it out",
    )
    if TEST_DB not in BACKENDS:
        raise pytest.UsageError(f"MLP_TEST_DB={TEST_DB!r}: expected one of {', '.join(BACKENDS)}")


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


# ----------------------------------------------------------------------------- one backend per pass


@pytest.fixture(scope="session")
def db_backend() -> str:
    """This pass's backend, ``sqlite`` or ``postgresql``.

    A fixture that follows the backend names this one as an argument (not through
    ``request.getfixturevalue``): the PostgreSQL pass selects the tests whose fixtures reach it.
    """
    return TEST_DB


@pytest.fixture(scope="session")
def make_db_url(
    db_backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], str]:
    """A factory: ``make_db_url(name)`` is the URL of a fresh, empty database on this pass's backend
    (a new SQLite file in its own folder, or a new database of the session's PostgreSQL)."""
    if db_backend == "postgresql":
        server: Postgres = request.getfixturevalue("postgres")

        def on_postgres(name: str = "db") -> str:
            return server.create_database(name)

        return on_postgres

    def on_sqlite(name: str = "db") -> str:
        return f"sqlite:///{tmp_path_factory.mktemp(name) / f'{name}.db'}"

    return on_sqlite


@pytest.fixture
def db_url(db_backend: str, request: pytest.FixtureRequest) -> str:
    """A fresh, empty portfolio database for this test: ``sqlite_url`` on the SQLite pass, a new
    PostgreSQL database (``postgres_url``) on the PostgreSQL pass."""
    return str(request.getfixturevalue("postgres_url" if db_backend == "postgresql" else "sqlite_url"))


@pytest.fixture
def engine(db_url: str) -> Engine:
    """An engine on ``db_url``, its schema created."""
    return storage.make_engine(db_url)


@pytest.fixture
def demo_copy_url(db_backend: str, request: pytest.FixtureRequest) -> str:
    """A private, writable copy of the demo portfolio (as of DEMO_AS_OF) on this pass's backend: a
    copy of ``demo_db`` (``demo_copy``) on SQLite, of ``demo_pg_template`` (``demo_pg_copy``) on PostgreSQL."""
    return str(request.getfixturevalue("demo_pg_copy" if db_backend == "postgresql" else "demo_copy"))


# ----------------------------------------------------------------------------- fixed backends


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite file in the test's folder, on both passes (``db_url`` follows the pass)."""
    return f"sqlite:///{tmp_path / 'portfolio.db'}"


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """Debian's real PostgreSQL on a loopback port, for the whole session."""
    server = Postgres.start()
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres: Postgres) -> str:
    """A fresh, empty PostgreSQL database, on both passes."""
    return postgres.create_database()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        raise RuntimeError(f"{SHARED_DATA} is missing: tests read the real sample files in ../shared/data")
    return SHARED_DATA


DEMO_AS_OF = "2026-06-15"  # tests pin the demo's as-of date so their numbers never drift with the calendar


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo portfolio SQLite file built once per session (as of DEMO_AS_OF). Copy it before writing.

    SQLite on both passes; ``demo_copy_url`` is the demo on this pass's backend.
    """
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
    """A private, writable SQLite copy of the demo database; returns its SQLAlchemy URL."""
    import shutil

    target = tmp_path / "demo.db"
    shutil.copy(demo_db, target)
    return f"sqlite:///{target}"


# ----------------------------------------------------------------------------- the PostgreSQL pass


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Pick the tests of the PostgreSQL pass (``MLP_TEST_DB=postgresql``).

    The rule: a test runs on the PostgreSQL pass exactly when it touches the portfolio database
    through a fixture that follows the backend (``db_url``, ``engine``, ``make_db_url``,
    ``demo_copy_url``, the dashboard's ``demo_url`` and ``own_demo_url``, and any fixture built on
    them), i.e. when ``db_backend`` is in its fixture closure, and it is not marked ``sqlite_only``.
    Everything else is deselected: a test that touches no database would only repeat the first pass
    identically, one on ``sqlite_url`` / ``demo_db`` is about SQLite itself, and one that
    parametrizes over both backends itself (``postgres_url``) has run on PostgreSQL already.
    """
    for item in items:
        mark = item.get_closest_marker("sqlite_only")
        if mark is not None and not (mark.args or mark.kwargs.get("reason")):
            raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.sqlite_only needs a reason=...")
    if TEST_DB != "postgresql":
        return
    def on_postgres(item: pytest.Item) -> bool:
        return "db_backend" in getattr(item, "fixturenames", ()) and item.get_closest_marker("sqlite_only") is None

    keep = [i for i in items if on_postgres(i)]
    dropped = [i for i in items if not on_postgres(i)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep

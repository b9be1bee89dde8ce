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


@pytest.fixture
def engine(sqlite_url: str) -> Engine:
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

"""The SQLite database and its -wal / -shm files are created readable by their owner only (issue 11)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from portfolio import records, storage


@pytest.fixture
def usual_umask() -> Iterator[None]:
    """The common umask 022, under which SQLite's own default makes files 0644."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_sqlite_database_and_its_wal_and_shm_are_0600(tmp_path: Path, usual_umask: None) -> None:
    db = tmp_path / "new" / "portfolio.db"
    url = f"sqlite:///{db}"
    engine = storage.make_engine(url)
    try:
        with engine.begin() as conn:  # a write, so the -wal and -shm files exist while the engine is open
            conn.execute(sa.insert(storage.table_of(records.App)).values(app_id="a", name="A", team="t"))
        files = {p.name: _mode(p) for p in db.parent.iterdir()}
        assert {"portfolio.db", "portfolio.db-wal", "portfolio.db-shm"} <= set(files), files
        assert all(mode == 0o600 for mode in files.values()), {k: oct(v) for k, v in files.items()}
    finally:
        storage.dispose_all()


def test_an_existing_database_is_not_touched(tmp_path: Path, usual_umask: None) -> None:
    db = tmp_path / "shared.db"
    storage.make_engine(f"sqlite:///{db}")
    storage.dispose_all()
    os.chmod(db, 0o640)  # its owner chose to share it with a group
    storage.make_engine(f"sqlite:///{db}")
    storage.dispose_all()
    assert _mode(db) == 0o640

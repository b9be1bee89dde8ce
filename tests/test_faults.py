"""Fault tests: a source down mid-sync, a truncated response, a database held by a long reader,
a process killed mid-sync, concurrent writers and readers. Each: nothing lost, nothing duplicated."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import date, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

import connectors
from portfolio import config, records, storage, sync
from portfolio.facts import load_facts
from tests.servers import PayloadServer, Reply

ROOT = Path(__file__).resolve().parents[1]
DAYS = [date(2026, 1, 1) + timedelta(days=i) for i in range(30)]


def _page(n: int, apps: tuple[str, ...] = ("a", "b"), pages: int = 3) -> dict:
    rows = [{"app_id": app, "day": str(DAYS[(n - 1) * 10 + i]), "requests": 100 * n + i} for app in apps for i in range(10)]
    return {"rows": rows, "next": n + 1 if n < pages else None}


class Source:
    """A paged source whose behaviour can be switched between runs: ok, down from page 2, truncated, garbage."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.server = PayloadServer(self.handle)

    def handle(self, method: str, path: str, headers: dict, body: bytes) -> Reply:
        n = int(path.rsplit("/", 1)[-1])
        if self.mode == "down" and n >= 2:
            return Reply(503, {"error": "upstream maintenance"})
        if self.mode == "truncated" and n >= 2:
            full = json.dumps(_page(n)).encode()
            return Reply(200, full[: len(full) // 2])
        if self.mode == "garbage" and n >= 2:
            return Reply(200, {"unexpected": True})
        return Reply(200, _page(n))


@pytest.fixture
def source():
    src = Source()
    with src.server:
        yield src


@pytest.fixture(params=["sqlite", "postgresql"])
def both_backends_url(request: pytest.FixtureRequest, sqlite_url: str) -> str:
    """A fresh database on each backend in turn, on the first pass of the suite.

    The tests on it cover both backends themselves, so the PostgreSQL pass (which selects by
    ``db_backend``, see tests/conftest.py) leaves them out rather than run them twice.
    """
    return sqlite_url if request.param == "sqlite" else str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def faulty(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(connectors.REGISTRY, "faulty", "tests.fault_connector")


def _cfg(url: str, source_url: str, **extra: object) -> config.Config:
    params = "".join(f"\n{k} = {json.dumps(v)}" for k, v in extra.items())
    return config.loads(f'database_url = "{url}"\n[connectors.src]\ntype = "faulty"\nurl = "{source_url}"{params}\n')


def _usage(url: str) -> list[tuple]:
    frame = storage.read_frame(storage.make_engine(url), records.UsageRecord)
    return sorted(frame[["app_id", "day", "value"]].itertuples(index=False, name=None))


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        pytest.param("down", "HTTP 503 /page/2", id="source-down-mid-sync"),
        pytest.param("truncated", "/page/2", id="truncated-response"),
        pytest.param("garbage", "unexpected payload", id="garbage-payload"),
    ],
)
def test_failure_mid_sync_keeps_earlier_data_and_writes_nothing_of_the_run(
    both_backends_url, source, faulty, mode, message
):
    cfg = _cfg(both_backends_url, source.server.url)
    assert sync.sync(cfg).ok
    before = _usage(both_backends_url)
    assert len(before) == 60
    source.mode = mode
    run = sync.sync(cfg).runs[0]
    assert run.status == "failed"
    assert message in (run.error or "")
    assert run.rows_written == 0
    assert _usage(both_backends_url) == before  # page 1 of the failed run was not written, earlier data intact
    source.mode = "ok"
    assert sync.sync(cfg).ok
    assert _usage(both_backends_url) == before


def test_long_reader_does_not_block_a_sync(both_backends_url, source, faulty):
    cfg = _cfg(both_backends_url, source.server.url)
    engine = storage.make_engine(both_backends_url)
    with engine.connect() as reader:
        tx = reader.begin()
        assert reader.execute(sa.text("select count(*) from usagerecord")).scalar() == 0
        outcome = sync.sync(cfg)  # must not wait for (or fail on) the open read transaction
        assert outcome.ok, outcome.runs[0].error
        tx.rollback()
    assert len(_usage(both_backends_url)) == 60


def test_killed_mid_sync_restart_resumes_without_duplicates(db_url, source, tmp_path):
    """kill -9 a sync process half-way; the next sync marks it interrupted and writes everything once."""
    toml = tmp_path / "portfolio.toml"
    toml.write_text(f'database_url = "{db_url}"\n[connectors.src]\ntype = "faulty"\nurl = "{source.server.url}"\nsleep = 0.05\n')
    script = (
        "import connectors, sys; connectors.REGISTRY['faulty'] = 'tests.fault_connector'\n"
        "from portfolio import config, sync\n"
        f"sync.sync(config.load({str(toml)!r}))\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    engine = storage.make_engine(db_url)
    t = storage.table_of(records.SyncRun)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until the run is under way
        with engine.connect() as conn:
            if conn.execute(sa.select(sa.func.count()).select_from(t).where(t.c.status == "running")).scalar():
                break
        time.sleep(0.1)
    time.sleep(1.0)  # some rows pulled, transaction open
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert _usage(db_url) == []  # the killed run's transaction never committed
    cfg = config.load(toml)
    cfg.connectors["src"].sleep = 0  # type: ignore[attr-defined]
    connectors.REGISTRY["faulty"] = "tests.fault_connector"
    try:
        run = sync.sync(cfg).runs[0]
    finally:
        del connectors.REGISTRY["faulty"]
    assert run.status == "success"
    runs = storage.read_frame(engine, records.SyncRun).sort_values("id")
    assert runs["status"].tolist() == ["failed", "success"]
    assert "interrupted" in runs.iloc[0]["error"]
    usage = _usage(db_url)
    assert len(usage) == 60 and len(set((a, d) for a, d, _ in usage)) == 60


def test_concurrent_writers_and_readers(both_backends_url, source, faulty):
    """Two connectors syncing at once while readers load the facts: every row lands once, no errors."""
    cfg = config.loads(
        f'database_url = "{both_backends_url}"\n'
        f'[connectors.one]\ntype = "faulty"\nurl = "{source.server.url}"\n'
        f'[connectors.two]\ntype = "faulty"\nurl = "{source.server.url}"\n'
    )
    engine = storage.make_engine(both_backends_url)
    errors: list[BaseException] = []
    stop = threading.Event()

    def writer(name: str) -> None:
        try:
            for _ in range(3):
                run = sync.run_connector(cfg, engine, cfg.connectors[name], full=True)
                assert run.status == "success", run.error
        except BaseException as exc:  # noqa: BLE001 - collected and re-raised in the test thread
            errors.append(exc)

    def reader() -> None:
        try:
            while not stop.is_set():
                facts = load_facts(engine, aggregate=False)  # the rows as stored: a run is all or nothing
                assert len(facts.usage) in (0, 60, 120)  # never a half-written run
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in ("one", "two")]
    readers = [threading.Thread(target=reader) for _ in range(2)]
    for th in threads + readers:
        th.start()
    for th in threads:
        th.join(timeout=120)
    stop.set()
    for th in readers:
        th.join(timeout=30)
    assert not errors, errors
    frame = storage.read_frame(engine, records.UsageRecord)
    assert len(frame) == 120
    assert not frame.duplicated(["source", "app_id", "day", "metric"]).any()


def test_a_second_process_skips_while_a_run_is_live(db_url, source, faulty):
    """One run at a time per connector across processes: a live 'running' row of another process → skipped."""
    cfg = _cfg(db_url, source.server.url)
    engine = storage.make_engine(db_url)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        storage.add(
            engine,
            records.SyncRun(connector="src", connector_type="faulty", started=sync.now_utc(), worker=f"{sync.WORKER.rsplit(':', 1)[0]}:{other.pid}"),
        )
        run = sync.sync(cfg).runs[0]
        assert run.status == "skipped" and "already in progress" in (run.error or "")
    finally:
        other.kill()
        other.wait()
    run = sync.sync(cfg).runs[0]  # the other process is gone: its run is reaped, ours goes ahead
    assert run.status == "success"

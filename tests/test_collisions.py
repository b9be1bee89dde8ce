"""One run per connector at a time: two schedulers (two real processes) or two "Sync now" clicks
(two threads of one dashboard process) on one database never run the same connector at once — the
second says "already running" and is recorded as skipped, not failed. Both backends."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest

import connectors
from portfolio import config, records, storage, sync
from tests.servers import PayloadServer, Reply

ROOT = Path(__file__).resolve().parents[1]


def _page(n: int) -> dict:
    rows = [{"app_id": app, "day": f"2026-01-{(n - 1) * 10 + i + 1:02d}", "requests": 100 * n + i} for app in ("a", "b") for i in range(10)]
    return {"rows": rows, "next": n + 1 if n < 3 else None}


@pytest.fixture
def source():
    with PayloadServer(lambda m, path, h, b: Reply(200, _page(int(path.rsplit("/", 1)[-1])))) as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def both_backends_url(request: pytest.FixtureRequest, sqlite_url: str) -> str:
    """A fresh database on each backend in turn (these tests cover both backends themselves)."""
    return sqlite_url if request.param == "sqlite" else str(request.getfixturevalue("postgres_url"))


SCHEDULER = r"""
import json, sys
import connectors
connectors.REGISTRY["faulty"] = "tests.fault_connector"
from portfolio import config, storage, sync
cfg = config.load(sys.argv[1])
storage.make_engine(cfg.database_url)
print("ready", flush=True)
sys.stdin.readline()  # both processes start their sync at the same moment
outcome = sync.sync(cfg)
print(json.dumps([[r.connector, r.status, r.error] for r in outcome.runs]), flush=True)
"""


def _config_file(tmp_path: Path, db_url: str, source_url: str, sleep: float) -> Path:
    toml = tmp_path / "portfolio.toml"
    toml.write_text(f'database_url = "{db_url}"\n[connectors.src]\ntype = "faulty"\nurl = "{source_url}"\nsleep = {sleep}\n')
    return toml


def test_two_processes_never_run_one_connector_at_once(both_backends_url, source, tmp_path):
    """Two schedulers fire the same connector at the same moment, three times over: each time one
    runs and the other is skipped "already running"; no run fails, every row lands once."""
    toml = _config_file(tmp_path, both_backends_url, source.url, sleep=0.02)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for round_ in range(3):
        procs = [
            subprocess.Popen([sys.executable, "-c", SCHEDULER, str(toml)], cwd=ROOT, env=env, text=True,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for _ in range(2)
        ]  # fmt: skip
        for p in procs:
            assert p.stdout is not None and p.stdout.readline().strip() == "ready", p.stderr.read() if p.stderr else ""
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        results = []
        for p in procs:
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0, err[-2000:]
            results.append(json.loads(out.strip().splitlines()[-1])[0])
        statuses = sorted(status for _, status, _ in results)
        assert statuses == ["skipped", "success"], (round_, results)
        skipped = next(r for r in results if r[1] == "skipped")
        assert "already running" in skipped[2]
        assert "Traceback" not in skipped[2]
    engine = storage.make_engine(both_backends_url)
    ledger = storage.read_frame(engine, records.SyncRun)
    assert sorted(ledger.status.value_counts().items()) == [("skipped", 3), ("success", 3)]
    usage = storage.read_frame(engine, records.UsageRecord)
    assert len(usage) == 60 and not usage.duplicated(["source", "app_id", "day", "metric"]).any()


def test_two_threads_of_one_process_never_run_one_connector_at_once(both_backends_url, monkeypatch):
    """Two "Sync now" clicks in one dashboard process: the second, while the first waits on its
    source, is skipped "already running" at once; the first completes."""
    monkeypatch.setitem(connectors.REGISTRY, "faulty", "tests.fault_connector")
    reached = threading.Event()
    go_on = threading.Event()

    def slow(method: str, path: str, headers: dict, body: bytes) -> Reply:
        reached.set()
        go_on.wait(60)
        return Reply(200, _page(int(path.rsplit("/", 1)[-1])))

    with PayloadServer(slow) as server:
        cfg = config.loads(f'database_url = "{both_backends_url}"\n[connectors.src]\ntype = "faulty"\nurl = "{server.url}"\n')
        engine = storage.make_engine(both_backends_url)
        first: list[records.SyncRun] = []
        thread = threading.Thread(target=lambda: first.append(sync.run_connector(cfg, engine, cfg.connectors["src"])))
        thread.start()
        try:
            assert reached.wait(60)
            second = sync.run_connector(cfg, engine, cfg.connectors["src"])
        finally:
            go_on.set()
            thread.join(60)
    assert second.status == "skipped"
    assert second.error == "src: skipped: already running (a run is already in progress in another thread of this process)"
    assert first[0].status == "success", first[0].error
    ledger = storage.read_frame(engine, records.SyncRun).sort_values("id")
    assert sorted(ledger.status) == ["skipped", "success"]
    assert len(storage.read_frame(engine, records.UsageRecord)) == 60


def test_an_expired_lease_does_not_block_forever(db_url, source, monkeypatch):
    """A run left "running" by a process on another host (unknowable whether it lives) blocks the
    connector only until its deadline plus an hour: then it is reaped as interrupted."""
    monkeypatch.setitem(connectors.REGISTRY, "faulty", "tests.fault_connector")
    cfg = config.loads(f'database_url = "{db_url}"\n[connectors.src]\ntype = "faulty"\nurl = "{source.url}"\ntimeout_minutes = 30\n')
    engine = storage.make_engine(db_url)
    other = "some-other-host:4242"
    storage.add(engine, records.SyncRun(connector="src", connector_type="faulty", started=sync.now_utc() - timedelta(minutes=80), worker=other))
    run = sync.sync(cfg, engine).runs[0]
    assert run.status == "skipped" and other in (run.error or "")  # 80 min < 30 min + 1 h: still its lease
    t = storage.table_of(records.SyncRun)
    with engine.begin() as conn:
        conn.execute(t.update().where(t.c.worker == other).values(started=sync.now_utc() - timedelta(minutes=95)))
    run = sync.sync(cfg, engine).runs[0]
    assert run.status == "success", run.error
    ledger = storage.read_frame(engine, records.SyncRun).sort_values("id")
    assert ledger.status.tolist() == ["failed", "skipped", "success"]
    assert "interrupted" in ledger.error.iloc[0]

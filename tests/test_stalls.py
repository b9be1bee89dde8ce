"""Sources that stall, databases that lock, disks that fill: a sync never waits forever, never holds
the write lock while it waits on the network, and says what happened in one line.

Each test runs real parts: a real local HTTP server that trickles bytes (or waits) and the real
prometheus connector; other writers are real processes holding a real lock; both backends.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import connectors
from connectors import base
from portfolio import config, decisions, records, storage, sync
from portfolio.errors import ConnectorError
from tests.servers import PayloadServer, Reply

ROOT = Path(__file__).resolve().parents[1]


class Trickle:
    """A real HTTP server that answers every request with headers at once, then one byte of its
    body every ``gap`` seconds (for at most ``limit`` seconds, so the test itself stays bounded)."""

    def __init__(self, gap: float = 1.0, limit: float = 20.0):
        self.gap = gap
        self.limit = limit
        self.requests: list[str] = []
        self.stop = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                outer.requests.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "100000")
                self.end_headers()
                until = time.monotonic() + outer.limit
                try:
                    while time.monotonic() < until and not outer.stop.is_set():
                        self.wfile.write(b" ")
                        self.wfile.flush()
                        outer.stop.wait(outer.gap)
                except OSError:  # the client hung up: what a deadline does
                    pass
                self.close_connection = True

            do_GET = do_POST = _serve

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> Trickle:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(params=["sqlite", "postgresql"])
def both_backends_url(request: pytest.FixtureRequest, sqlite_url: str) -> str:
    """A fresh database on each backend in turn (these tests cover both backends themselves, so the
    PostgreSQL pass of the suite leaves them out; see tests/conftest.py)."""
    return sqlite_url if request.param == "sqlite" else str(request.getfixturevalue("postgres_url"))


def with_query(url: str, **params: str) -> str:
    return url + ("&" if "?" in url else "?") + "&".join(f"{k}={v}" for k, v in params.items())


# ----------------------------------------------------------------------------- the network


def test_a_request_to_a_trickling_source_ends_at_its_total_deadline() -> None:
    """A byte every second never trips the 60 s read timeout; the total deadline cuts it."""
    with Trickle(gap=1.0) as source:
        session = base.http_session(retries=0, deadline=2.0)
        t0 = time.monotonic()
        with pytest.raises(ConnectorError) as err:
            base.get_json(session, "metrics", "GET", source.url + "/api/v1/query")
        elapsed = time.monotonic() - t0
    assert elapsed < 5, f"the request ran {elapsed:.1f} s past a 2 s deadline"
    assert str(err.value) == "metrics: /api/v1/query stopped waiting: no complete answer within the deadline of 2 s"


def test_a_trickling_tls_source_is_cut_too(tmp_path: Path) -> None:
    """The same over HTTPS: the watchdog shuts the TLS connection's socket down."""
    import ssl

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with Trickle(gap=1.0) as source:
        source.httpd.socket = context.wrap_socket(source.httpd.socket, server_side=True)
        session = base.http_session(retries=0, deadline=2.0)
        t0 = time.monotonic()
        with pytest.raises(ConnectorError, match="no complete answer within the deadline of 2 s"):
            # verify per request: REQUESTS_CA_BUNDLE would override a session's verify
            base.get_json(session, "metrics", "GET", source.url.replace("http:", "https:") + "/api/v1/query", verify=str(cert))
        assert time.monotonic() - t0 < 5
        assert source.requests == ["/api/v1/query"]


def test_requests_end_by_the_run_deadline() -> None:
    with Trickle(gap=0.5) as source:
        session = base.http_session(retries=0)  # its own deadline: 10 minutes
        t0 = time.monotonic()
        with base.run_deadline(time.monotonic() + 1.5), pytest.raises(ConnectorError, match="stopped waiting"):
            base.get_json(session, "metrics", "GET", source.url + "/x")
        assert time.monotonic() - t0 < 4
        with base.run_deadline(time.monotonic() - 1), pytest.raises(ConnectorError, match="deadline has passed"):
            base.get_json(session, "metrics", "GET", source.url + "/x")


def _two_connectors(db_url: str, prom_url: str, tickets_url: str) -> config.Config:
    return config.loads(
        f"""
database_url = "{db_url}"
[[apps]]
id = "churn"
team = "search"
[connectors.metrics]
type = "prometheus"
url = "{prom_url}"
timeout_minutes = 0.05
days = 3
until = "2026-03-10"
[connectors.tickets]
type = "github_issues"
api_url = "{tickets_url}"
repos = ["acme/models"]
"""
    )


ISSUE = {
    "number": 7, "title": "Retrain", "labels": [{"name": "app:churn"}, {"name": "hours:3"}],
    "created_at": "2026-03-02T08:00:00Z", "closed_at": "2026-03-02T11:00:00Z",
    "updated_at": "2026-03-02T11:00:00Z", "state": "closed",
}  # fmt: skip


def test_a_stalled_connector_fails_at_its_deadline_and_the_next_one_runs(both_backends_url: str) -> None:
    """The real prometheus connector against a source sending one byte a second: its run fails at
    timeout_minutes (0.05 = 3 s) naming the connector and the deadline; github_issues then runs."""
    tickets = PayloadServer(lambda m, path, h, b: Reply(200, [ISSUE] if "/issues" in path else []))
    with Trickle(gap=1.0) as source, tickets:
        cfg = _two_connectors(both_backends_url, source.url, tickets.url)
        t0 = time.monotonic()
        metrics, issues = sync.sync(cfg).runs
        elapsed = time.monotonic() - t0
    assert elapsed < 15, f"the pass took {elapsed:.1f} s with a 3 s deadline"
    assert (metrics.connector, metrics.status, metrics.rows_written) == ("metrics", "failed", 0)
    assert metrics.error is not None
    assert metrics.error.startswith("metrics: stopped: the run did not finish within timeout_minutes = 0.05 min = 3 s")
    assert "\n" not in metrics.error
    assert source.requests, "the connector never reached the source"
    assert (issues.connector, issues.status, issues.rows_written) == ("tickets", "success", 1)
    ledger = storage.read_frame(storage.make_engine(both_backends_url), records.SyncRun).sort_values("id")
    assert ledger[["connector", "status"]].values.tolist() == [["metrics", "failed"], ["tickets", "success"]]
    assert ledger.error.iloc[0] == metrics.error


def test_timeout_minutes_is_validated() -> None:
    from portfolio.errors import ConfigError

    with pytest.raises(ConfigError, match="connectors.m.timeout_minutes"):
        config.loads('[connectors.m]\ntype = "prometheus"\nurl = "http://127.0.0.1:9"\ntimeout_minutes = 0\n')
    assert config.loads('[connectors.m]\ntype = "prometheus"\nurl = "http://127.0.0.1:9"\n').connectors["m"].timeout_minutes == 30


# ----------------------------------------------------------------------------- the write lock


class Gate:
    """A real local source whose ``/wait`` answers only when the test opens the gate."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self.open = threading.Event()
        self.server = PayloadServer(self.handle)

    def handle(self, method: str, path: str, headers: dict, body: bytes) -> Reply:
        self.reached.set()
        self.open.wait(60)
        return Reply(200, {"ok": True})


@pytest.fixture
def slow(monkeypatch: pytest.MonkeyPatch) -> Iterator[Gate]:
    monkeypatch.setitem(connectors.REGISTRY, "slow", "tests.slow_connector")
    gate = Gate()
    with gate.server:
        yield gate
        gate.open.set()


def test_a_decision_is_recorded_while_a_sync_waits_on_the_network(both_backends_url: str, slow: Gate) -> None:
    """6,000 rows pulled (more than sync buffers), then the source takes its time: the sync holds no
    write lock meanwhile, so a decision recorded now lands at once (it used to wait for the sync,
    then fail "database is locked")."""
    url = with_query(both_backends_url, lock_timeout="5s")
    cfg = config.loads(
        f'database_url = "{url}"\n[[apps]]\nid = "churn"\nteam = "search"\n'
        f'[connectors.usage]\ntype = "slow"\nurl = "{slow.server.url}"\nrows = 6000\n'
    )
    engine = storage.make_engine(url)
    outcome: list[sync.Outcome] = []
    runner = threading.Thread(target=lambda: outcome.append(sync.sync(cfg, engine)))
    runner.start()
    try:
        assert slow.reached.wait(60), "the connector never reached its slow request"
        t0 = time.monotonic()
        decision = decisions.record_decision(engine, "churn", "keep", "ana@example.com", "still used", None)
        took = time.monotonic() - t0
        assert not slow.open.is_set() and runner.is_alive()  # the sync was waiting all along
    finally:
        slow.open.set()
        runner.join(120)
    assert took < 2, f"recording a decision waited {took:.1f} s for the sync"
    assert decision.app_id == "churn"
    run = outcome[0].runs[0]
    assert (run.status, run.rows_written) == ("success", 6001), run.error
    assert len(storage.read_frame(engine, records.UsageRecord)) == 6001
    assert len(storage.read_frame(engine, records.Decision)) == 1


# ----------------------------------------------------------------------------- another writer

BLOCKER = r"""
import sys, time
url, kind, table = sys.argv[1], sys.argv[2], sys.argv[3]
if kind == "sqlite":
    import sqlite3
    conn = sqlite3.connect(url, isolation_level=None)
    lock = "BEGIN IMMEDIATE"
else:
    import psycopg
    conn = psycopg.connect(url)
    lock = f"LOCK TABLE {table} IN EXCLUSIVE MODE"
print("ready", flush=True)
for line in sys.stdin:
    if line.strip() == "lock":
        conn.execute(lock)
        print("locked", flush=True)
    elif line.strip() == "release":
        conn.rollback() if kind != "sqlite" else conn.execute("ROLLBACK")
        print("released", flush=True)
        break
"""


class Blocker:
    """Another process that takes the database's write lock (SQLite) or a table's lock (PostgreSQL)
    when told, and releases it when told — as a long manual session or a backup would."""

    def __init__(self, db_url: str, table: str):
        parsed = sa.engine.make_url(db_url)
        if parsed.get_backend_name() == "sqlite":
            target, kind = str(parsed.database), "sqlite"
        else:
            target, kind = parsed.set(drivername="postgresql", query={}).render_as_string(hide_password=False), "pg"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", BLOCKER, target, kind, table],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        assert self._read() == "ready"
        self.locked_at: float | None = None

    def _read(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().strip()

    def _say(self, word: str) -> str:
        assert self.proc.stdin is not None
        self.proc.stdin.write(word + "\n")
        self.proc.stdin.flush()
        return self._read()

    def lock(self) -> None:
        assert self._say("lock") == "locked"
        self.locked_at = time.monotonic()

    def release(self) -> None:
        if self.proc.poll() is None and self.locked_at is not None:
            self._say("release")
            self.locked_at = None

    def close(self) -> None:
        self.release()
        self.proc.kill()
        self.proc.wait(10)


class ReleaseOnFailure(logging.Handler):
    """Lets the other writer go as soon as the sync has logged the run's failure (deterministic:
    the run's outcome is then recorded once the lock is free)."""

    def __init__(self, blocker: Blocker):
        super().__init__()
        self.blocker = blocker
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())
        if "failed" in record.getMessage():
            self.blocker.release()


def test_a_database_locked_by_another_writer_fails_the_run_in_one_line(both_backends_url: str) -> None:
    """Another process holds the lock while the run writes: the run fails after lock_timeout with
    one line (no SQL, no rows), is recorded as failed, and the next connector runs."""
    url = with_query(both_backends_url, lock_timeout="1s")
    blocker = Blocker(both_backends_url, "usagerecord")
    pages: list[str] = []

    def source(method: str, path: str, headers: dict, body: bytes) -> Reply:
        pages.append(path)
        if len(pages) == 1:  # the first connector is pulling: now the other writer takes the lock
            blocker.lock()
        n = int(path.rsplit("/", 1)[-1])
        rows = [{"app_id": "a", "day": f"2026-01-{i + 1:02d}", "requests": i} for i in range(10)]
        return Reply(200, {"rows": rows, "next": None if n >= 1 else n + 1})

    handler = ReleaseOnFailure(blocker)
    log = logging.getLogger("portfolio.sync")
    log.addHandler(handler)
    connectors.REGISTRY["faulty"] = "tests.fault_connector"
    try:
        with PayloadServer(source) as server:
            cfg = config.loads(
                f'database_url = "{url}"\n'
                f'[connectors.first]\ntype = "faulty"\nurl = "{server.url}"\n'
                f'[connectors.second]\ntype = "faulty"\nurl = "{server.url}"\n'
            )
            t0 = time.monotonic()
            first, second = sync.sync(cfg).runs
            elapsed = time.monotonic() - t0
    finally:
        log.removeHandler(handler)
        del connectors.REGISTRY["faulty"]
        blocker.close()
    assert first.status == "failed", first.error
    assert first.error == "first: database is locked by another writer (waited lock_timeout = 1 s); nothing of this was written — try again when it is done"
    for leaked in ("INSERT", "SQL", "usagerecord", "2026-01-01", "\n"):
        assert leaked not in first.error
    assert (second.status, second.rows_written) == ("success", 10), second.error
    assert elapsed < 30
    ledger = storage.read_frame(storage.make_engine(url), records.SyncRun).sort_values("id")
    assert ledger[["connector", "status"]].values.tolist() == [["first", "failed"], ["second", "success"]]
    assert ledger.error.iloc[0] == first.error
    assert any("sync first failed: first: database is locked" in line for line in handler.lines)


def test_postgresql_sessions_have_a_lock_and_a_statement_timeout(postgres_url: str) -> None:
    engine = storage.make_engine(postgres_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SHOW lock_timeout")).scalar() == "30s"
        assert conn.execute(sa.text("SHOW statement_timeout")).scalar() == "10min"
    storage.dispose_all()
    engine = storage.make_engine(with_query(postgres_url, lock_timeout="2s", statement_timeout="1s"))
    with engine.connect() as conn:
        assert conn.execute(sa.text("SHOW lock_timeout")).scalar() == "2s"
        assert conn.execute(sa.text("SHOW statement_timeout")).scalar() == "1s"
        t0 = time.monotonic()
        with pytest.raises(sa.exc.OperationalError) as err:
            conn.execute(sa.text("SELECT pg_sleep(30)"))
        assert time.monotonic() - t0 < 10
    assert storage.explain(err.value, engine) == (
        "a database statement ran past statement_timeout and was cancelled; nothing of this was written"
    )


@pytest.mark.parametrize(
    ("value", "seconds"),
    [pytest.param("500ms", 0.5, id="ms"), pytest.param("30s", 30.0, id="s"), pytest.param("10min", 600.0, id="min"),
     pytest.param("1h", 3600.0, id="h"), pytest.param("250", 0.25, id="bare-is-ms-as-in-postgresql")],
)  # fmt: skip
def test_durations_in_the_database_url(value: str, seconds: float) -> None:
    assert storage.parse_duration("lock_timeout", value) == seconds


def test_a_bad_duration_names_the_key() -> None:
    from portfolio.errors import StorageError

    with pytest.raises(StorageError, match=r"database_url: lock_timeout='soon' is not a duration"):
        storage.make_engine("sqlite:////tmp/never.db?lock_timeout=soon")


# ----------------------------------------------------------------------------- a full disk


@pytest.mark.sqlite_only(reason="a full disk simulated with SQLite's PRAGMA max_page_count")
def test_a_full_disk_is_one_line_without_sql_or_rows(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(connectors.REGISTRY, "slow", "tests.slow_connector")
    with PayloadServer(lambda *a: Reply(200, {"ok": True})) as server:
        cfg = config.loads(
            f'database_url = "{sqlite_url}"\n'
            f'[connectors.usage]\ntype = "slow"\nurl = "{server.url}"\nrows = 20000\n'
        )
        engine = storage.make_engine(sqlite_url)
        with engine.connect() as conn:
            pages = conn.exec_driver_sql("PRAGMA page_count").scalar()
        # every new connection may grow the file by a few pages only: the disk is "full"
        sa.event.listen(engine, "connect", lambda c, _r: c.execute(f"PRAGMA max_page_count = {pages + 4}"))
        engine.dispose()
        run = sync.sync(cfg, engine).runs[0]
    assert run.status == "failed"
    assert run.error == (
        "usage: database disk is full (or the database reached its size limit); nothing of this was written"
        " — free space and try again"
    )
    ledger = storage.read_frame(engine, records.SyncRun)
    assert ledger[["status", "error"]].values.tolist() == [["failed", run.error]]
    assert storage.read_frame(engine, records.UsageRecord).empty

"""The scheduler: one cron job per scheduled connector, and a job runs a real sync.

The sync source is the real ``github_issues`` connector reading a real local HTTP server
(:class:`tests.servers.PayloadServer`) that answers like GitHub's issues endpoint.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime

import pytest
from apscheduler.triggers.cron import CronTrigger

from portfolio import config, records, scheduler, storage
from portfolio.errors import ConfigError
from tests.servers import PayloadServer, Reply

ISSUES = [
    {
        "number": 7,
        "title": "Retrain on October data",
        "labels": [{"name": "app:churn"}, {"name": "hours:3"}],
        "created_at": "2026-10-12T08:00:00Z",
        "closed_at": "2026-10-12T11:00:00Z",
        "updated_at": "2026-10-12T11:00:00Z",
        "state": "closed",
    },
    {
        "number": 8,
        "title": "Model server down",
        "labels": [{"name": "app:churn"}, {"name": "incident"}, {"name": "hours:2.5"}],
        "created_at": "2026-10-20T09:00:00Z",
        "closed_at": "2026-10-20T10:30:00Z",
        "updated_at": "2026-10-20T10:30:00Z",
        "state": "closed",
    },
]


def github(method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
    if path.startswith("/repos/acme/models/issues"):
        return Reply(200, ISSUES)
    return Reply(404, {"message": "Not Found"})


def make_config(db_url: str, connectors: str) -> config.Config:
    text = f"""
database_url = "{db_url}"
[teams.search]
hourly_rate = 100
[[apps]]
id = "churn"
team = "search"
{connectors}
"""
    return config.loads(text)


SCHEDULED = """
[connectors.daily]
type = "github_issues"
schedule = "0 6 * * *"
repos = ["acme/models"]
[connectors.weekdays]
type = "github_issues"
schedule = "*/15 8-18 * * 1-5"
repos = ["acme/models"]
[connectors.manual]
type = "github_issues"
repos = ["acme/models"]
[connectors.off]
type = "github_issues"
schedule = "0 * * * *"
enabled = false
repos = ["acme/models"]
"""


def test_one_job_per_enabled_scheduled_connector(db_url: str) -> None:
    sched = scheduler.build_scheduler(make_config(db_url, SCHEDULED))
    jobs = {job.id: job for job in sched.get_jobs()}
    assert sorted(jobs) == ["sync:daily", "sync:weekdays"]
    for job in jobs.values():
        assert isinstance(job.trigger, CronTrigger)
        assert job.max_instances == 1
        assert job.coalesce is True
        assert job.misfire_grace_time == scheduler.MISFIRE_GRACE_SECONDS
        assert job.func is scheduler.run_job
        assert job.args[1] == job.id.removeprefix("sync:")


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        pytest.param("0 6 * * *", datetime(2026, 11, 23, 7, 0, tzinfo=UTC), datetime(2026, 11, 24, 6, 0, tzinfo=UTC), id="daily-after-6-is-tomorrow"),
        pytest.param("0 6 * * *", datetime(2026, 11, 23, 5, 59, tzinfo=UTC), datetime(2026, 11, 23, 6, 0, tzinfo=UTC), id="daily-before-6-is-today"),
        # 2026-11-27 is a Friday: the next weekday slot after Friday 18:45 is Monday 08:00
        pytest.param("*/15 8-18 * * 1-5", datetime(2026, 11, 27, 18, 50, tzinfo=UTC), datetime(2026, 11, 30, 8, 0, tzinfo=UTC), id="weekdays-skip-weekend"),
        pytest.param("30 2 1 * *", datetime(2026, 12, 15, tzinfo=UTC), datetime(2027, 1, 1, 2, 30, tzinfo=UTC), id="monthly-crosses-year"),
    ],
)  # fmt: skip
def test_cron_is_read_in_utc(expression: str, after: datetime, expected: datetime) -> None:
    trigger = scheduler.parse_schedule("x", expression)
    assert trigger.get_next_fire_time(None, after) == expected


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        pytest.param("*", "*", id="any"),
        pytest.param("1-5", "mon,tue,wed,thu,fri", id="weekdays"),
        pytest.param("0", "sun", id="zero-is-sunday"),
        pytest.param("7", "sun", id="seven-is-sunday"),
        pytest.param("0,6", "sun,sat", id="weekend"),
        pytest.param("*/2", "sun,tue,thu,sat", id="step-counts-from-sunday"),
        pytest.param("5-7", "sun,fri,sat", id="range-to-seven"),
        pytest.param("mon-wed,fri", "mon,tue,wed,fri", id="names"),
        pytest.param("1/3", "mon,thu", id="start-with-step"),
    ],
)
def test_crontab_day_of_week_keeps_crontab_numbering(field: str, expected: str) -> None:
    assert scheduler.crontab_day_of_week(field) == expected


@pytest.mark.parametrize(
    "expression",
    [
        pytest.param("every day", id="words"),
        pytest.param("0 6 * *", id="four-fields"),
        pytest.param("61 * * * *", id="minute-out-of-range"),
        pytest.param("0 6 * * 8", id="weekday-out-of-range"),
        pytest.param("0 6 * * 5-1", id="weekday-range-backwards"),
    ],
)
def test_bad_cron_names_the_key(sqlite_url: str, expression: str) -> None:
    cfg = make_config(
        sqlite_url, f'[connectors.nightly]\ntype = "github_issues"\nschedule = "{expression}"\nrepos = ["a/b"]\n'
    )
    with pytest.raises(ConfigError) as err:
        scheduler.build_scheduler(cfg)
    assert "connectors.nightly.schedule" in str(err.value)
    assert repr(expression) in str(err.value)


@pytest.mark.sqlite_only(reason="SQLite has one writer at a time: the scheduler gives it a single worker thread")
def test_sqlite_jobs_share_one_writer_thread(sqlite_url: str) -> None:
    sched = scheduler.build_scheduler(make_config(sqlite_url, SCHEDULED))
    pool = sched._lookup_executor("default")._pool  # type: ignore[attr-defined]
    assert pool._max_workers == 1


def test_postgresql_jobs_run_side_by_side(postgres_url: str) -> None:
    sched = scheduler.build_scheduler(make_config(postgres_url, SCHEDULED))
    pool = sched._lookup_executor("default")._pool  # type: ignore[attr-defined]
    assert scheduler.MAX_WORKERS > 1
    assert pool._max_workers == scheduler.MAX_WORKERS


def _wait_for_run(engine, name: str, timeout: float = 30.0) -> records.SyncRun:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = storage.read_frame(engine, records.SyncRun)
        done = runs[(runs.connector == name) & (runs.status != "running")]
        if len(done):
            row = done.iloc[-1]
            return records.SyncRun(**{k: row[k] for k in ("connector", "status", "rows_written", "error")})
        time.sleep(0.1)
    raise AssertionError(f"no finished SyncRun for {name} after {timeout}s")


def test_a_scheduled_job_runs_a_real_sync(db_url: str) -> None:
    with PayloadServer(github) as server:
        cfg = make_config(
            db_url,
            f"""
[connectors.tickets]
type = "github_issues"
schedule = "0 0 1 1 *"
api_url = "{server.url}"
repos = ["acme/models"]
""",
        )
        sched = scheduler.start(cfg, run_now=True)
        try:
            engine = storage.make_engine(db_url)
            run = _wait_for_run(engine, "tickets")
            job = sched.get_job("sync:tickets")
            assert job is not None
            # after its immediate run the job waits for its cron: 1 January, 00:00 UTC
            next_run = job.next_run_time
        finally:
            sched.shutdown(wait=True)
    assert run.status == "success", run.error
    assert run.rows_written == 2
    assert next_run == datetime(datetime.now(UTC).year + 1, 1, 1, tzinfo=UTC)
    rows = storage.read_frame(engine, records.MaintenanceRecord).sort_values("day")
    assert rows[["app_id", "day", "hours", "kind"]].values.tolist() == [
        ["churn", date(2026, 10, 12), 3.0, "klo"],
        ["churn", date(2026, 10, 20), 2.5, "incident"],
    ]
    # the inventory from portfolio.toml is written when the scheduler starts
    assert storage.read_frame(engine, records.App).app_id.tolist() == ["churn"]


def test_run_job_records_a_failed_run_and_does_not_raise(db_url: str) -> None:
    def down(method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        return Reply(401, {"message": "Bad credentials"})

    with PayloadServer(down) as server:
        cfg = make_config(
            db_url,
            f'[connectors.tickets]\ntype = "github_issues"\nschedule = "0 6 * * *"\napi_url = "{server.url}"\nrepos = ["acme/models"]\n',
        )
        run = scheduler.run_job(cfg, "tickets")
    assert run is not None
    assert run.status == "failed"
    assert "401" in (run.error or "")
    ledger = storage.read_frame(storage.make_engine(db_url), records.SyncRun)
    assert ledger[["connector", "status"]].values.tolist() == [["tickets", "failed"]]


T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("statuses", "expected_wait_hours"),
    [
        pytest.param([], None, id="never-ran"),
        pytest.param(["failed", "failed"], None, id="two-failures-no-backoff"),
        pytest.param(["failed", "failed", "failed"], 1, id="three-failures-1h"),
        pytest.param(["failed"] * 5, 4, id="five-failures-4h"),
        pytest.param(["failed"] * 12, 24, id="capped-at-a-day"),
        pytest.param(["failed", "failed", "success", "failed", "failed"], None, id="streak-broken"),
    ],
)
def test_backoff(statuses: list[str], expected_wait_hours: int | None) -> None:
    from datetime import timedelta

    runs = [(s, T0 - timedelta(minutes=i)) for i, s in enumerate(statuses)]  # newest first
    held = scheduler.backoff(runs, T0)
    if expected_wait_hours is None:
        assert held is None
    else:
        assert held == T0 + timedelta(hours=expected_wait_hours)
        assert scheduler.backoff(runs, held + timedelta(seconds=1)) is None  # after the wait, it tries again


@pytest.mark.parametrize(
    ("last", "now", "expected"),
    [
        pytest.param(None, T0, False, id="never-ran: normal schedule"),
        pytest.param(datetime(2026, 3, 2, 6, 0, tzinfo=UTC), T0, False, id="ran-at-06:00-today"),
        pytest.param(datetime(2026, 3, 1, 6, 0, tzinfo=UTC), T0, True, id="missed-today-06:00"),
        pytest.param(datetime(2026, 3, 1, 6, 0, tzinfo=UTC), datetime(2026, 3, 2, 5, 59, tzinfo=UTC), False, id="not-due-yet"),
    ],
)
def test_missed_run_detected_from_the_ledger(last: datetime | None, now: datetime, expected: bool) -> None:
    trigger = scheduler.parse_schedule("x", "0 6 * * *")
    assert scheduler.missed(trigger, last, now) is expected


def test_failing_connector_backs_off_and_is_not_run(db_url: str) -> None:
    calls: list[str] = []

    def down(method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        calls.append(path)
        return Reply(401, {"message": "Bad credentials"})

    with PayloadServer(down) as server:
        cfg = make_config(
            db_url,
            f'[connectors.tickets]\ntype = "github_issues"\nschedule = "0 6 * * *"\napi_url = "{server.url}"\nrepos = ["acme/models"]\n',
        )
        for _ in range(scheduler.BACKOFF_AFTER):
            assert scheduler.run_job(cfg, "tickets") is not None
        assert len(calls) == scheduler.BACKOFF_AFTER
        assert scheduler.run_job(cfg, "tickets") is None  # backing off: the source is not called
        assert len(calls) == scheduler.BACKOFF_AFTER
    ledger = storage.read_frame(storage.make_engine(db_url), records.SyncRun)
    assert ledger.status.tolist() == ["failed"] * scheduler.BACKOFF_AFTER

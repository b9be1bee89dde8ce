"""The scheduler: runs every connector on its cron ``schedule`` (APScheduler 3.x), headless.

One job per enabled connector that has a ``schedule``; the job calls the same
:func:`portfolio.sync.run_connector` as ``mlportfolio sync`` and the dashboard's "Sync now"
button, so a scheduled run writes the same SyncRun ledger row. Cron expressions are read in UTC
(the ledger and every instant in the database are UTC).

Jobs never pile up: ``max_instances=1`` (a slow sync is not started twice), ``coalesce=True``
(runs missed while the process was busy collapse into one) and a misfire grace time (a run that is
late by less than that still happens). Jobs survive a restart without a job store of their own:
the SyncRun ledger says when each connector last ran, so a fire time missed while the process was
down is run once at start-up (:func:`missed`). A connector that keeps failing backs off
(:func:`backoff`): after ``BACKOFF_AFTER`` failures in a row its scheduled runs are skipped for
1 h, 2 h, 4 h ... up to a day, and the Data health page shows it failing. After every run the
webhook alerts are checked (:mod:`portfolio.alerts`). On SQLite the jobs share one worker thread:
SQLite has one writer at a time (a pull holds no lock, but the write phases would queue).

Nothing here can hang the loop: each run ends by its connector's ``timeout_minutes`` and every
request by its deadline (:mod:`portfolio.sync`); a run that finds the same connector running in
another process (a second scheduler, "Sync now", the CLI) is recorded as skipped, "already running".
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.job import Job
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from portfolio import alerts, records, storage, sync
from portfolio.config import Config
from portfolio.errors import ConfigError, PortfolioError

log = logging.getLogger(__name__)

JOB_PREFIX = "sync:"
#: a run late by less than this (scheduler busy, laptop asleep) still runs; later ones are skipped
MISFIRE_GRACE_SECONDS = 3600
#: worker threads when the database takes concurrent writers (PostgreSQL)
MAX_WORKERS = 4
#: failures in a row before scheduled runs of a connector back off
BACKOFF_AFTER = 3
BACKOFF_MAX = timedelta(hours=24)


_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # crontab numbering: 0 (and 7) = Sunday


def _day_number(token: str) -> int:
    token = token.strip().lower()
    if token[:3] in _DAYS and token.isalpha():
        return _DAYS.index(token[:3])
    number = int(token)
    if not 0 <= number <= 7:
        raise ValueError(f"day of week {token!r} is not 0-7 or sun-sat")
    return number


def crontab_day_of_week(field: str) -> str:
    """A crontab day-of-week field as APScheduler 3 names (``"1-5"`` -> ``"mon,tue,wed,thu,fri"``).

    APScheduler 3 counts weekdays from Monday = 0 while crontab counts from Sunday = 0 (its
    ``from_crontab`` keeps the mismatch for compatibility, issue #286), so ``"1-5"`` there means
    Tuesday to Saturday. Expanding the field to day names keeps the crontab meaning.
    """
    if field in ("*", "?"):
        return "*"
    days: set[int] = set()
    for part in field.split(","):
        span, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError(f"step {step_text!r} must be positive")
        if span == "*":
            lo, hi = 0, 6
        elif "-" in span:
            first, last = span.split("-", 1)
            lo, hi = _day_number(first), _day_number(last)
            if lo > hi:
                raise ValueError(f"day-of-week range {span!r} runs backwards")
        else:
            lo = _day_number(span)
            hi = 6 if step_text else lo
        days.update(d % 7 for d in range(lo, hi + 1, step))
    return ",".join(_DAYS[d] for d in sorted(days))


def parse_schedule(connector: str, expression: str) -> CronTrigger:
    """The trigger of a five-field crontab expression (UTC), or a ConfigError naming the key.

    As in crontab, day of week 0 and 7 are Sunday. Unlike Vixie cron, a schedule restricting both
    day of month and day of week fires only on days matching both.
    """
    try:
        fields = expression.split()
        if len(fields) != 5:
            raise ValueError(f"got {len(fields)} fields")
        minute, hour, day, month, day_of_week = fields
        return CronTrigger(
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=crontab_day_of_week(day_of_week),
            timezone=UTC,
        )
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            f"connectors.{connector}.schedule: {expression!r} is not a cron expression "
            f"(expected five fields: minute hour day-of-month month day-of-week, e.g. \"0 6 * * *\"): {exc}"
        ) from None


def scheduled_connectors(cfg: Config) -> list[str]:
    """Names of the connectors the scheduler runs: enabled and with a schedule."""
    return [name for name, conn in cfg.connectors.items() if conn.enabled and conn.schedule]


def _recent_runs(engine: sa.Engine, name: str, limit: int = 50) -> list[tuple[str, datetime]]:
    """(status, started) of the connector's latest finished runs, newest first."""
    t = storage.table_of(records.SyncRun)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.c.status, t.c.started)
            .where(t.c.connector == name, t.c.status.in_(["success", "failed"]))
            .order_by(t.c.started.desc())
            .limit(limit)
        ).all()
    return [(s, st if st.tzinfo else st.replace(tzinfo=UTC)) for s, st in rows]


def backoff(runs: list[tuple[str, datetime]], now: datetime) -> datetime | None:
    """Until when scheduled runs wait, given the latest runs (newest first); None = run now.

    After ``BACKOFF_AFTER`` failures in a row: 1 h after the last failure, doubling with each
    further failure, at most ``BACKOFF_MAX``. A manual ``mlportfolio sync`` is never held back.
    """
    streak = 0
    for status, _ in runs:
        if status != "failed":
            break
        streak += 1
    if streak < BACKOFF_AFTER:
        return None
    wait = min(timedelta(hours=2 ** (streak - BACKOFF_AFTER)), BACKOFF_MAX)
    until = runs[0][1] + wait
    return until if until > now else None


def missed(trigger: CronTrigger, last_started: datetime | None, now: datetime) -> bool:
    """Whether a fire time of ``trigger`` fell between the last run and now (the process was down)."""
    if last_started is None:
        return False
    nxt = trigger.get_next_fire_time(None, last_started + timedelta(seconds=1))
    return nxt is not None and nxt <= now


def run_job(cfg: Config, name: str) -> records.SyncRun | None:
    """What a scheduled job does: one run of connector ``name`` (recorded in the SyncRun ledger),
    unless the connector is backing off; then the webhook alerts."""
    try:
        engine = storage.make_engine(cfg.database_url)
        now = datetime.now(UTC)
        held = backoff(_recent_runs(engine, name), now)
        if held is not None:
            log.warning("scheduled sync %s skipped: failing repeatedly, backing off until %s", name, f"{held:%Y-%m-%d %H:%M} UTC")
            return None
        run = sync.run_connector(cfg, engine, cfg.connectors[name])
    except PortfolioError as exc:  # the database is unreachable: say so, try again next time
        log.error("scheduled sync %s could not run: %s", name, exc)
        return None
    log.info("scheduled sync %s: %s, %d rows written", name, run.status, run.rows_written)
    try:
        alerts.check_and_send(cfg, engine)
    except Exception as exc:  # alerts must never break the sync loop
        log.error("alerts after %s failed: %s", name, type(exc).__name__)
    return run


def build_scheduler(cfg: Config, *, run_now: bool = False) -> BackgroundScheduler:
    """A configured, not yet started scheduler with one job per scheduled connector.

    ``run_now`` makes every job also run once as soon as the scheduler starts.
    """
    triggers = {name: parse_schedule(name, str(cfg.connectors[name].schedule)) for name in scheduled_connectors(cfg)}
    workers = 1 if cfg.database_url.startswith("sqlite") else MAX_WORKERS
    scheduler = BackgroundScheduler(
        timezone=UTC,
        executors={"default": ThreadPoolExecutor(max_workers=workers)},
        job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": MISFIRE_GRACE_SECONDS},
    )
    engine = storage.make_engine(cfg.database_url)
    now = datetime.now(UTC)
    for name, trigger in triggers.items():
        runs = _recent_runs(engine, name, limit=1)
        catch_up = missed(trigger, runs[0][1] if runs else None, now)
        if catch_up:
            log.info("scheduled sync %s missed a run while the scheduler was down: running it now", name)
        extra = {"next_run_time": now} if run_now or catch_up else {}
        scheduler.add_job(
            run_job,
            trigger,
            args=[cfg, name],
            id=JOB_PREFIX + name,
            name=f"sync {name}",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=MISFIRE_GRACE_SECONDS,
            replace_existing=True,
            **extra,
        )
    return scheduler


def start(cfg: Config, *, run_now: bool = False) -> BackgroundScheduler:
    """Write the configured app inventory, then build and start the scheduler."""
    sync.sync_inventory(cfg, storage.make_engine(cfg.database_url))
    scheduler = build_scheduler(cfg, run_now=run_now)
    scheduler.start()
    return scheduler


def describe(jobs: list[Job]) -> list[str]:
    """One line per job: connector, cron, next run (UTC)."""
    lines = []
    for job in sorted(jobs, key=lambda j: j.id):
        nxt = getattr(job, "next_run_time", None)
        when = nxt.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if nxt else "paused"
        lines.append(f"  {job.id.removeprefix(JOB_PREFIX):<24} {_cron_text(job.trigger):<16} next run {when}")
    return lines


def _cron_text(trigger: object) -> str:
    if isinstance(trigger, CronTrigger):
        fields = {f.name: str(f) for f in trigger.fields}
        return " ".join(fields[k] for k in ("minute", "hour", "day", "month", "day_of_week"))
    return str(trigger)

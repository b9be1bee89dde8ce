"""Runs connectors: owns the cursor, the transaction and the SyncRun ledger of every run.

One connector's pull runs inside one database transaction: either everything it yielded is
written, or — on any error — nothing is, and earlier data stays as it was. One failing connector
never stops the others. The cursor is data: the ``started`` time of the connector's last
successful run, minus its ``lookback_days`` (restated bills), never later than the current run's
start.
"""

from __future__ import annotations

import logging
import os
import socket
from collections import defaultdict
from collections.abc import Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlmodel import SQLModel

import connectors
from connectors.base import Notice, Partition, Replace, ReplaceKeys, Rows
from portfolio import precedence, records, storage
from portfolio.config import Config, ConnectorConfig
from portfolio.errors import (
    ConnectorError,
    PortfolioError,
    StorageError,
    SyncError,
    redact,
    unknown_app_reason,
)

log = logging.getLogger(__name__)

FLUSH_EVERY = 5_000
MAX_UNKNOWN_LISTED = 50  # unknown app ids named in one error (the SyncRun keeps 4,000 characters)
WORKER = f"{socket.gethostname()}:{os.getpid()}"
STALE_AFTER = timedelta(hours=12)  # a run on another host still "running" after this is presumed dead

#: allowed values of enumerated fields, checked before anything is written
_ALLOWED: dict[type[SQLModel], dict[str, tuple[str, ...]]] = {
    records.App: {"stage": records.STAGES, "value_kind": records.VALUE_KINDS},
    records.CostRecord: {"category": records.COST_CATEGORIES},
    records.OutcomeRecord: {"kind": records.OUTCOME_KINDS, "evidence": records.EVIDENCE},
    records.MaintenanceRecord: {"kind": records.MAINTENANCE_KINDS},
    records.Decision: {"decision": records.DECISIONS},
}


@dataclass
class Outcome:
    """What one sync pass did, per connector."""

    runs: list[records.SyncRun]

    @property
    def ok(self) -> bool:
        return all(r.status == "success" for r in self.runs)


def now_utc() -> datetime:
    return datetime.now(UTC)


def cursor(engine: Engine, name: str, lookback_days: int, started: datetime) -> datetime | None:
    """Where the next pull of ``name`` starts: last successful start − look-back, or None (full)."""
    t = records.SyncRun.__table__  # type: ignore[attr-defined]
    with engine.connect() as conn:
        last = conn.execute(
            sa.select(sa.func.max(t.c.started)).where(t.c.connector == name, t.c.status == "success")
        ).scalar()
    if last is None:
        return None
    if last.tzinfo is None:
        last = last.replace(tzinfo=UTC)
    return min(last - timedelta(days=lookback_days), started)


def sync_inventory(cfg: Config, engine: Engine) -> int:
    """Write the apps declared in portfolio.toml (source "config")."""
    apps = [
        records.App(
            app_id=a.id,
            name=a.name or a.id,
            team=a.team,
            owner=a.owner,
            sponsor=a.sponsor,
            stage=a.stage,
            value_kind=a.value_kind,
            launched=a.launched,
            slo_availability=a.slo_availability,
            review_every_days=a.review_every_days,
            cost_tags=",".join(a.cost_tags),
            description=a.description,
            source="config",
        )
        for a in cfg.apps
    ]
    with engine.begin() as conn:
        return storage.upsert(conn, records.App, apps)


class _Writer:
    """Buffers what a pull yields and writes it in batches inside one transaction.

    Value rows (OutcomeRecord) must name apps of the inventory (the App table, which holds the
    config's apps and the apps inventory connectors found, and those this run yields): an unknown
    id fails the run with a did-you-mean instead of becoming an app of team ``_unknown``.
    ``dry_run`` marks a run whose transaction the caller rolls back (:func:`write_records`): it
    writes exactly as a real run, so what it reports is what a real run would do.
    """

    def __init__(self, conn: Connection, source: str, *, dry_run: bool = False):
        self.conn = conn
        self.source = source
        self.dry_run = dry_run
        _RUNNING.set(self)  # for inventory_in_progress(): the pull runs in this context
        # app id -> (month, kind) of the value rows naming it, checked against the inventory at finish
        self.outcome_apps: dict[str, list[tuple[Any, Any]]] = defaultdict(list)
        self.buffers: dict[type[SQLModel], list[SQLModel]] = defaultdict(list)
        self.keys: dict[type[SQLModel], set[tuple[Any, ...]]] = defaultdict(set)
        self.replaces: list[Replace | ReplaceKeys] = []
        self.notices: list[str] = []
        # per table: True when this source had no row in it before this run ("first sync"). Its
        # rows are then written with plain INSERTs (the unique index refuses a repeated key), not
        # tracked in memory, and Replace has nothing stale to delete: what a 10-million-line
        # first bill needs to stay fast and small.
        self.fresh: dict[type[SQLModel], bool] = {}
        # Partition markers: the one whose rows come next, those announced, those found unchanged
        self.partition: Partition | None = None
        self.partitions: list[Partition] = []
        self.unchanged: set[tuple[Any, str, str]] = set()
        self.stored: dict[tuple[Any, str], dict[str, tuple[str, int]]] = {}  # last fingerprints
        self.held: dict[tuple[Any, str], dict[str, int]] = {}
        self.skipped = 0
        self.written = 0
        self.count = 0

    def add(self, item: Any) -> None:
        if isinstance(item, Notice):
            self.notices.append(item.text)
            return
        if isinstance(item, Replace | ReplaceKeys):
            self.replaces.append(item)
            return
        if isinstance(item, Partition):
            self._partition(item)
            return
        if isinstance(item, Rows):
            self._add_rows(item)
            return
        model = type(item)
        if model not in records.RECORD_TYPES:
            raise SyncError(f"{self.source}: connector yielded {model.__name__}, not a record type")
        if "source" in model.model_fields:
            item.source = self.source  # type: ignore[attr-defined]
        key = self._check(model, {k: getattr(item, k) for k in model.model_fields})
        if model is records.OutcomeRecord:
            self.outcome_apps[item.app_id].append((item.month, item.kind))  # type: ignore[attr-defined]
        if key in self.keys[model]:
            raise SyncError(f"{self.source}: {model.__name__} {dict(zip(model.NATURAL_KEY, key, strict=True))} yielded twice")  # type: ignore[attr-defined]
        self.keys[model].add(key)
        buf = self.buffers[model]
        buf.append(item)
        self.count += 1
        if len(buf) >= FLUSH_EVERY:
            self.flush(model)

    def _check(self, model: type[SQLModel], values: dict[str, Any]) -> tuple[Any, ...]:
        key = tuple(values[k] for k in model.NATURAL_KEY)  # type: ignore[attr-defined]
        # "model" is "" for every usage that is not per model (it defaults to "", like the column)
        if any(v is None or (v == "" and k != "model") for k, v in zip(model.NATURAL_KEY, key, strict=True) if k != "id"):  # type: ignore[attr-defined]
            raise SyncError(f"{self.source}: {model.__name__} with an empty natural key field: {values}")
        for field, allowed in _ALLOWED.get(model, {}).items():
            if values.get(field) not in allowed:
                raise SyncError(
                    f"{self.source}: {model.__name__}.{field} = {values.get(field)!r}; expected one of {', '.join(allowed)}"
                )
        return key

    def _is_fresh(self, model: Any) -> bool:
        if model not in self.fresh:
            self.fresh[model] = "source" in model.NATURAL_KEY and not storage.source_has_rows(
                self.conn, model, self.source
            )
        return self.fresh[model]

    def _write(self, model: Any, write: Any) -> None:
        """Run a write; a repeated natural key on a plain INSERT becomes a clear SyncError."""
        try:
            self.written += write()
        except sa.exc.IntegrityError:
            raise SyncError(f"{self.source}: {model.__name__} rows repeat a natural key") from None

    def _partition(self, p: Partition) -> None:
        """Remember the partition whose rows follow; unchanged since the last write -> skip them."""
        self.partition = p
        self.partitions.append(p)
        table = storage.table_of(p.table)
        key = (p.table, p.field)
        if key not in self.stored:  # read once per table and field, not once per partition
            sp = storage.table_of(records.SyncPartition).c
            self.stored[key] = {
                v: (fp, n)
                for v, fp, n in self.conn.execute(
                    sa.select(sp.value, sp.fingerprint, sp.rows).where(
                        sp.source == self.source, sp.table_name == table.name, sp.field == p.field
                    )
                )
            }
        if self.stored[key].get(p.value) != (p.fingerprint, p.rows):
            return
        if key not in self.held:  # rows the table holds per partition value: one grouped count
            col = table.c[p.field]
            counts = self.conn.execute(
                sa.select(col, sa.func.count()).where(table.c.source == self.source).group_by(col)
            ).all()
            self.held[key] = {str(v): int(n) for v, n in counts}
        if self.held[key].get(p.value) == p.rows:  # else rows went missing: write them again
            self.unchanged.add((p.table, p.field, p.value))

    def _add_rows(self, rows: Rows) -> None:
        model: Any = rows.table
        frame = rows.frame
        p = self.partition
        if p is not None and p.table is model:
            if p.field not in frame.columns or not (frame[p.field] == p.value).all():
                raise SyncError(f"{self.source}: {model.__name__} rows after Partition {p.field}={p.value!r} hold other {p.field} values")
            if (model, p.field, p.value) in self.unchanged:
                self.skipped += len(frame)
                return
        if "source" in model.model_fields:
            frame = frame.assign(source=self.source)
        nk = list(model.NATURAL_KEY)
        for k in nk:  # a key column with a default (UsageRecord.model = "") may be left out, as before it existed
            info = model.model_fields.get(k)
            if k not in frame.columns and info is not None and not info.is_required():
                frame = frame.assign(**{k: info.get_default(call_default_factory=True)})
        missing = [k for k in nk if k not in frame.columns and k != "id"]
        if missing:
            raise SyncError(f"{self.source}: {model.__name__} rows lack key columns {missing}")
        if frame[nk].isna().any().any():
            raise SyncError(f"{self.source}: {model.__name__} rows with an empty natural key field")
        for field, allowed in _ALLOWED.get(model, {}).items():
            if field in frame.columns:
                bad = set(frame[field].unique()) - set(allowed)
                if bad:
                    raise SyncError(f"{self.source}: {model.__name__}.{field} values {sorted(map(str, bad))} not in {allowed}")
        self.count += len(frame)
        if model is records.OutcomeRecord:
            for app_id, month, kind in frame[["app_id", "month", "kind"]].itertuples(index=False, name=None):
                self.outcome_apps[str(app_id)].append((month, kind))
        if self._is_fresh(model):
            self._write(model, lambda: storage.upsert_frame(self.conn, model, frame, insert_only=True))
            return
        new_keys = set(frame[nk].itertuples(index=False, name=None))
        if len(new_keys) != len(frame) or new_keys & self.keys[model]:
            raise SyncError(f"{self.source}: {model.__name__} rows repeat a natural key")
        self.keys[model] |= new_keys
        self._write(model, lambda: storage.upsert_frame(self.conn, model, frame))

    def flush(self, model: type[SQLModel] | None = None) -> None:
        for m in [model] if model else list(self.buffers):
            buf = self.buffers[m]
            if buf:
                fresh = self._is_fresh(m)
                self._write(m, lambda m=m, buf=buf, fresh=fresh: storage.upsert(self.conn, m, buf, insert_only=fresh))
                buf.clear()

    def finish(self) -> int:
        """Flush, check value rows name known apps, then apply the Replace windows. Returns the
        number of rows deleted."""
        self.flush()
        self._check_inventory()
        deleted = 0
        for rep in self.replaces:
            if self.fresh.get(rep.table):
                continue  # the source had no row before this run: nothing of it can be stale
            seen = self.keys.get(rep.table, set())
            col = storage.table_of(rep.table).c[rep.field]
            conditions: list[Any]
            if isinstance(rep, ReplaceKeys):  # in chunks: SQLite caps the bound values of one query
                # an unchanged partition's rows were not yielded again: none of them is stale
                values = sorted((v for v in rep.values if (rep.table, rep.field, str(v)) not in self.unchanged), key=str)
                conditions = [col.in_(values[i : i + 500]) for i in range(0, len(values), 500)]
            else:
                conditions = [sa.and_(col >= rep.start, col <= rep.end)]
            existing = (
                k for cond in conditions for k in storage.existing_keys(self.conn, rep.table, self.source, cond)
            )
            stale = [k for k in existing if k not in seen]
            deleted += storage.delete_keys(self.conn, rep.table, stale)
        if self.partitions:  # bookkeeping, not counted as rows written
            storage.upsert(
                self.conn,
                records.SyncPartition,
                [
                    records.SyncPartition(
                        source=self.source, table_name=storage.table_of(p.table).name, field=p.field,
                        value=p.value, fingerprint=p.fingerprint, rows=p.rows,
                    )
                    for p in self.partitions
                ],
            )
        return deleted


    def known_apps(self) -> set[str]:
        """The inventory as this run sees it: the App table in its transaction, and the apps it yielded."""
        t = storage.table_of(records.App)
        known = set(self.conn.execute(sa.select(t.c.app_id)).scalars())
        return known | {str(a.app_id) for a in self.buffers.get(records.App, [])}  # type: ignore[attr-defined]

    def _check_inventory(self) -> None:
        """Refuse value rows whose app id is in no inventory (nothing of the run is written)."""
        if not self.outcome_apps:
            return
        known = self.known_apps()
        unknown = sorted(set(self.outcome_apps) - known)
        if not unknown:
            return
        lines = []
        for app_id in unknown[:MAX_UNKNOWN_LISTED]:
            where = sorted(self.outcome_apps[app_id], key=str)
            first = ", ".join(f"{_month_text(m)} {k}" for m, k in where[:3]) + (f" and {len(where) - 3} more" if len(where) > 3 else "")
            lines.append(f"column 'app_id' (value {app_id!r}; rows {first}): {unknown_app_reason(app_id, known)}")
        if len(unknown) > MAX_UNKNOWN_LISTED:
            lines.append(f"... and {len(unknown) - MAX_UNKNOWN_LISTED} more")
        raise SyncError(
            f"{self.source}: {len(unknown)} app id(s) in its value rows name no app of the inventory; "
            "nothing was written:\n" + "\n".join(lines)
        )


#: the writer whose pull runs in this context (thread), for :func:`inventory_in_progress`
_RUNNING: ContextVar[_Writer | None] = ContextVar("portfolio_sync_writer", default=None)


def inventory_in_progress() -> set[str] | None:
    """The inventory's app ids as the sync running in this context sees them, else None.

    For a connector that checks app ids itself so its error can name the file, row and column
    (``outcomes_file``); the writer refuses unknown ids at the end of every run anyway. None
    outside a run (a connector's ``pull`` called on its own, a finished or failed run).
    """
    writer = _RUNNING.get()
    if writer is None or writer.conn.closed or not writer.conn.in_transaction():
        return None
    return writer.known_apps()


def _month_text(month: Any) -> str:
    return f"{month:%Y-%m}" if hasattr(month, "year") else str(month)[:7]


@dataclass
class Written:
    """What :func:`write_records` did (or, in a dry run, would do)."""

    run: records.SyncRun | None  # the SyncRun recorded; None for a dry run (it records nothing)
    written: int  # rows inserted or changed
    deleted: int
    #: per (app, month, kind) of the value rows given: which figure counted before and which counts
    #: after (see :data:`CHANGE_COLUMNS`); empty when no value row was given
    changes: pd.DataFrame


#: status: "new" (no figure counted for it before), "replaces" (the counted figure changes),
#: "unchanged" (the same figure from the same source), "overridden" (a higher-precedence source's
#: figure counts, before and after: the new row is stored but does not count)
CHANGE_COLUMNS = ["app_id", "month", "kind", "status", "old_source", "old_amount", "new_source", "new_amount"]
_COMPARED = ("source", "amount", "currency", "attribution", "evidence", "low", "high", "note")


def _value_rows(conn: Connection, keys: set[tuple[str, Any, str]]) -> pd.DataFrame:
    """Every source's outcome rows for these (app, month, kind) keys (Decimal money)."""
    t = storage.table_of(records.OutcomeRecord)
    apps = sorted({k[0] for k in keys})
    frames = [
        storage.read_frame(conn, records.OutcomeRecord, t.c.app_id.in_(apps[i : i + 500]))
        for i in range(0, len(apps), 500)
    ]
    rows = pd.concat(frames, ignore_index=True) if frames else storage.read_frame(conn, records.OutcomeRecord, sa.false())
    if rows.empty:
        return rows
    mask = [(a, m, k) in keys for a, m, k in rows[["app_id", "month", "kind"]].itertuples(index=False, name=None)]
    return rows[mask].reset_index(drop=True)


def _counted_by_key(rows: pd.DataFrame, order: Sequence[str]) -> dict[tuple[Any, ...], dict[Any, Any]]:
    counted = precedence.counted(rows, order)
    return {(r["app_id"], r["month"], r["kind"]): r for r in counted.to_dict("records")}


def _changes(
    keys: list[tuple[str, Any, str]], before: pd.DataFrame, after: pd.DataFrame, source: str, order: Sequence[str]
) -> pd.DataFrame:
    old, new = _counted_by_key(before, order), _counted_by_key(after, order)
    out = []
    for key in keys:
        was, now = old.get(key), new.get(key)
        if now is None:  # pragma: no cover - the row was just written
            continue
        if was is None:
            status = "new"
        elif all(_same(was.get(c), now.get(c)) for c in _COMPARED):
            status = "unchanged" if now["source"] == source else "overridden"
        else:
            status = "replaces"
        out.append((
            key[0], _month_text(key[1]), key[2], status,
            None if was is None else was["source"], None if was is None else was["amount"],
            now["source"], now["amount"],
        ))  # fmt: skip
    frame = pd.DataFrame(out, columns=CHANGE_COLUMNS).astype(object)
    frame = frame.where(frame.notna(), None)  # "no figure before" is None, not NaN
    return frame.sort_values(["month", "app_id", "kind"], ignore_index=True)


def _same(a: Any, b: Any) -> bool:
    missing_a = a is None or (isinstance(a, float) and a != a)
    missing_b = b is None or (isinstance(b, float) and b != b)
    return missing_a == missing_b if missing_a or missing_b else bool(a == b)


def write_records(
    engine: Engine,
    source: str,
    items: Iterable[Any],
    *,
    connector_type: str = "upload",
    dry_run: bool = False,
    order: Sequence[str] | None = None,
    now: datetime | None = None,
) -> Written:
    """Write ``items`` (records, Replace, ...) as source ``source`` through the sync writer.

    The same writer, one transaction and the same SyncRun ledger as a connector's sync (connector
    ``source``, type ``connector_type``), so an upload is checked, counted and recorded exactly as
    a sync. ``dry_run`` runs the very same writes and rolls them back: it records no SyncRun and
    returns what a real run would write and, for value rows, which figure each (app, month, kind)
    would count before and after (``order``: the value precedence, see :mod:`portfolio.precedence`).
    A real run puts the replaced figures in its SyncRun's warnings. Raises SyncError (bad records,
    an unknown app) or StorageError (the database refused the write); a failed real run is
    recorded with its error, and nothing of it is written.
    """
    items = list(items)
    order = list(precedence.source_order(precedence.DEFAULT_PRECEDENCE, {})) if order is None else list(order)
    run = records.SyncRun(connector=source, connector_type=connector_type, started=now or now_utc(), worker=WORKER)
    if not dry_run:
        storage.add(engine, run)
    keys = list(dict.fromkeys(
        (i.app_id, i.month, i.kind) for i in items if isinstance(i, records.OutcomeRecord)
    ))  # fmt: skip
    try:
        with engine.connect() as conn:
            transaction = conn.begin()
            try:
                before = _value_rows(conn, set(keys)) if keys else None
                writer = _Writer(conn, source, dry_run=dry_run)
                for item in items:
                    writer.add(item)
                deleted = writer.finish()
                changes = pd.DataFrame(columns=CHANGE_COLUMNS)
                if before is not None:
                    changes = _changes(keys, before, _value_rows(conn, set(keys)), source, order)
            except BaseException:
                transaction.rollback()
                raise
            if writer.dry_run:
                transaction.rollback()
            else:
                transaction.commit()
    except Exception as exc:
        message = str(exc) if isinstance(exc, PortfolioError) else f"{source}: {type(exc).__name__}: {exc}"
        message = redact(message)[:4000]
        if not dry_run:
            run.status, run.error, run.rows_written, run.rows_deleted, run.finished = "failed", message, 0, 0, now_utc()
            _save_run(engine, run)
        if isinstance(exc, PortfolioError):
            raise
        raise StorageError(f"could not write {source}: {message}") from None
    if dry_run:
        return Written(None, writer.written, deleted, changes)
    replaced = changes[changes["status"] == "replaces"]
    notes = [
        f"{r.app_id} {r.month} {r.kind}: replaces {r.old_source} {precedence.amount_text(r.old_amount)}"
        f" -> {r.new_source} {precedence.amount_text(r.new_amount)}"
        for r in replaced.itertuples()
    ] + writer.notices
    run.status, run.rows_written, run.rows_deleted, run.finished = "success", writer.written, deleted, now_utc()
    run.warnings = redact("\n".join(notes))[:4000] or None
    _save_run(engine, run)
    log.info("write %s: %d rows written, %d deleted%s", source, run.rows_written, run.rows_deleted, " (dry run)" if dry_run else "")
    return Written(run, writer.written, deleted, changes)


def _alive(worker: str) -> bool:
    """Whether the process that owns a running SyncRun still exists (only knowable on this host)."""
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_interrupted(engine: Engine, name: str, now: datetime) -> list[str]:
    """Mark runs of ``name`` left "running" by a process that died (killed mid-sync) as failed.

    Their transaction never committed, so none of their rows exist; the next run starts from the
    last successful cursor and writes them. Returns the workers of runs still genuinely in progress.
    """
    t = records.SyncRun.__table__  # type: ignore[attr-defined]
    live = []
    with engine.begin() as conn:
        rows = conn.execute(sa.select(t.c.id, t.c.worker, t.c.started).where(t.c.connector == name, t.c.status == "running")).all()
        for run_id, worker, started in rows:
            started = started if started.tzinfo else started.replace(tzinfo=UTC)
            if worker == WORKER:
                continue  # our own process: a scheduler thread (max_instances=1 keeps these apart)
            if _alive(worker) and now - started < STALE_AFTER:
                live.append(worker)
                continue
            conn.execute(
                sa.update(t)
                .where(t.c.id == run_id)
                .values(status="failed", finished=now, error=f"{name}: interrupted: the process running it ({worker}) ended before it finished; nothing of it was written")
            )
    return live


def run_connector(
    cfg: Config, engine: Engine, conn_cfg: ConnectorConfig, *, full: bool = False, now: datetime | None = None
) -> records.SyncRun:
    """Run one connector once, record it in the ledger, and return its SyncRun (never raises for
    a connector failure: the run's status and error say what happened)."""
    started = now or now_utc()
    live = reap_interrupted(engine, conn_cfg.name, now_utc())
    since = None if full else cursor(engine, conn_cfg.name, conn_cfg.lookback_days, started)
    run = records.SyncRun(
        connector=conn_cfg.name, connector_type=conn_cfg.type, started=started, since=since, worker=WORKER
    )
    if live:  # one run at a time per connector, across processes (scheduler, dashboard, CLI)
        run.status = "skipped"
        run.finished = now_utc()
        run.error = f"{conn_cfg.name}: skipped: a run is already in progress in {', '.join(live)}"
        storage.add(engine, run)
        return run
    storage.add(engine, run)
    secret_envs = conn_cfg.secret_env_names()
    try:
        module = connectors.load(conn_cfg.type)
        with engine.begin() as conn:
            writer = _Writer(conn, conn_cfg.name)
            for item in module.pull(conn_cfg, since):
                writer.add(item)
            run.rows_deleted = writer.finish()
            run.rows_written = writer.written
            run.warnings = redact("\n".join(writer.notices), secret_envs)[:4000] or None
        run.status = "success"
        log.info(
            "sync %s: %d rows written, %d deleted, %d rows of %d unchanged partition(s) skipped",
            conn_cfg.name, run.rows_written, run.rows_deleted, writer.skipped, len(writer.unchanged),
        )
    except Exception as exc:  # one failing connector never stops the others
        run.status = "failed"
        run.rows_written = 0
        run.rows_deleted = 0
        if isinstance(exc, PortfolioError):
            message = str(exc)
        else:
            message = f"{conn_cfg.name}: {type(exc).__name__}: {exc}"
        run.error = redact(message, secret_envs)[:4000]
        level = logging.WARNING if isinstance(exc, ConnectorError | SyncError) else logging.ERROR
        log.log(level, "sync %s failed: %s", conn_cfg.name, run.error)
    run.finished = now_utc()
    _save_run(engine, run)
    return run


def _save_run(engine: Engine, run: records.SyncRun) -> None:
    t = records.SyncRun.__table__  # type: ignore[attr-defined]
    with engine.begin() as conn:
        conn.execute(
            sa.update(t)
            .where(t.c.id == run.id)
            .values(
                status=run.status,
                finished=run.finished,
                rows_written=run.rows_written,
                rows_deleted=run.rows_deleted,
                error=run.error,
                warnings=run.warnings,
            )
        )


def sync(
    cfg: Config,
    engine: Engine | None = None,
    only: Iterable[str] | None = None,
    *,
    full: bool = False,
    now: datetime | None = None,
) -> Outcome:
    """One pass over the configured (enabled) connectors, or only those named."""
    engine = engine or storage.make_engine(cfg.database_url)
    names = list(only) if only else [n for n, c in cfg.connectors.items() if c.enabled]
    unknown = [n for n in names if n not in cfg.connectors]
    if unknown:
        raise SyncError(f"no connector named {', '.join(unknown)} in config; configured: {', '.join(cfg.connectors) or 'none'}")
    sync_inventory(cfg, engine)
    return Outcome([run_connector(cfg, engine, cfg.connectors[n], full=full, now=now) for n in names])

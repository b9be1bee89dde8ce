"""Runs connectors: owns the cursor, the transaction and the SyncRun ledger of every run.

A run has two phases. The *pull*: what the connector yields is checked and staged — converted to
the database's own form and spilled to a temporary file — while the database is only read, so a
source that is slow or waits on the network never holds the write lock (SQLite has one writer at a
time: a decision recorded meanwhile would otherwise wait, then fail "database is locked"). The
*write*: what was staged is applied in one short transaction — either everything the pull yielded is
written, or, on any error, nothing is, and earlier data stays as it was. One failing connector never
stops the others. The cursor is data: the ``started`` time of the connector's last successful run,
minus its ``lookback_days`` (restated bills), never later than the current run's start.

Nothing waits forever. The pull runs in a worker thread with the connector's deadline
(``timeout_minutes``, default 30); every HTTP request it makes ends by then too
(:func:`connectors.base.run_deadline`). Past it the run is recorded as failed, naming the deadline,
and the next connector runs. A database error (locked by another writer, disk full) is one line in
the run's error (:func:`portfolio.storage.explain`), and the run is still recorded.

One run per connector at a time, across threads and processes (scheduler, "Sync now", CLI): a lock
within the process; on PostgreSQL a session advisory lock held for the run; on SQLite the run's
"running" SyncRun row, written under SQLite's write lock (``BEGIN IMMEDIATE``), is a lease — a row
whose process has gone, or older than its deadline plus ``LEASE_GRACE``, is reaped as interrupted.
A run that finds another in progress is recorded as "skipped: already running".
"""

from __future__ import annotations

import contextvars
import logging
import os
import pickle
import socket
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import IO, TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlmodel import SQLModel

import connectors
from portfolio import records, rollup, storage
from portfolio.config import Config, ConnectorConfig
from portfolio.errors import (
    ConnectorError,
    PortfolioError,
    StorageError,
    SyncError,
    redact,
    unknown_app_reason,
)

if TYPE_CHECKING:
    # Imported where used, so that a process that writes nothing starts fast: pandas (and the value
    # precedence, which uses it) where value rows are written; connectors.base (requests) where a
    # connector's items are written.
    import pandas as pd

    from connectors.base import Partition, Replace, ReplaceKeys, Rows

log = logging.getLogger(__name__)

FLUSH_EVERY = 5_000
MAX_UNKNOWN_LISTED = 50  # unknown app ids named in one error (the SyncRun keeps 4,000 characters)
WORKER = f"{socket.gethostname()}:{os.getpid()}"
STALE_AFTER = timedelta(hours=12)  # a run on another host still "running" after this is presumed dead
#: a "running" row older than its connector's deadline plus this is presumed dead (its write phase
#: comes after the deadline, and is short)
LEASE_GRACE = timedelta(hours=1)
#: tries to record a run's outcome while the database is locked by another writer
SAVE_ATTEMPTS = 3
#: staged writes stay in memory up to this many bytes, then spill to a temporary file
STAGE_IN_MEMORY = 16 * 1024 * 1024

#: allowed values of enumerated fields, checked before anything is written
_ALLOWED: dict[type[SQLModel], dict[str, tuple[str, ...]]] = {
    records.App: {"stage": records.STAGES, "value_kind": records.VALUE_KINDS},
    records.CostRecord: {"category": records.COST_CATEGORIES},
    records.OutcomeRecord: {"kind": records.OUTCOME_KINDS, "evidence": records.EVIDENCE},
    records.MaintenanceRecord: {"kind": records.MAINTENANCE_KINDS},
    records.Decision: {"decision": records.DECISIONS},
    records.LifecycleEvent: {"kind": records.LIFECYCLE_EVENTS},
}


@dataclass
class Outcome:
    """What one sync pass did, per connector."""

    runs: list[records.SyncRun]

    @property
    def ok(self) -> bool:
        """Every run succeeded, or was skipped because another run of it was already in progress."""
        return all(r.status in ("success", "skipped") for r in self.runs)


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
            retired_on=a.retired_on,
            source="config",
        )
        for a in cfg.apps
    ]
    with engine.begin() as conn:
        return storage.upsert(conn, records.App, apps)


class _Stage:
    """Writes kept in order in a temporary file — in memory while small — until the write phase
    replays them: prepared writes (SQL and rows in the database's own form), and bulk frames
    (:class:`connectors.base.Rows`) as they came, prepared when replayed. A frame of Arrow and
    categorical columns pickles at memory speed; its million Python row tuples did not (issue 15:
    2.4 s of pickling at 10M lines, for rows the write phase builds in 1.6 s)."""

    def __init__(self) -> None:
        self.file: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=STAGE_IN_MEMORY)  # noqa: SIM115 - closed by close()
        self.count = 0

    def _put(self, record: tuple[Any, ...]) -> None:
        blob = pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL)
        self.file.write(len(blob).to_bytes(8, "little"))
        self.file.write(blob)
        self.count += 1

    def add(self, model: Any, prepared: storage.Prepared) -> None:
        sql, rows = prepared
        for i in range(0, len(rows), storage.BATCH):  # one batch per record: the replay holds one at a time
            self._put(("rows", model, sql, rows[i : i + storage.BATCH]))

    def add_frame(self, model: Any, frame: pd.DataFrame, fresh: bool) -> None:
        """A frame of ``model``'s rows: plain INSERTs when ``fresh`` (the source's first rows), else
        its keys into the seen table and an upsert (as :meth:`_Writer._add_rows` writes directly)."""
        self._put(("frame", model, frame, fresh))

    def replay(self, dialect: sa.Dialect) -> Iterator[tuple[Any, str, list[tuple[Any, ...]]]]:
        self.file.flush()
        self.file.seek(0)
        for _ in range(self.count):
            size = int.from_bytes(self.file.read(8), "little")
            kind, model, *rest = pickle.loads(self.file.read(size))
            if kind == "rows":
                yield model, *rest
                continue
            frame, fresh = rest
            prepared = storage.prepare_frame(dialect, model, frame, insert_only=fresh)
            del frame
            if not fresh:
                yield model, *storage.prepare_seen(dialect, model, storage.key_rows(model, prepared))
            yield model, *prepared

    def close(self) -> None:
        self.file.close()


class _Writer:
    """Checks what a pull yields and writes it: straight into ``conn`` (one transaction the caller
    holds), or — given ``engine`` instead — staged, reading the database on short connections of its
    own, and written by :meth:`finish` in the caller's one short write transaction.

    Value rows (OutcomeRecord) must name apps of the inventory (the App table, which holds the
    config's apps and the apps inventory connectors found, and those this run yields): an unknown
    id fails the run with a did-you-mean instead of becoming an app of team ``_unknown``.
    ``dry_run`` marks a run whose transaction the caller rolls back (:func:`write_records`): it
    writes exactly as a real run, so what it reports is what a real run would do.
    """

    def __init__(
        self,
        conn: Connection | None,
        source: str,
        *,
        engine: Engine | None = None,
        dry_run: bool = False,
        full: bool = False,
    ):
        if conn is None and engine is None:
            raise TypeError("_Writer needs a connection (direct writes) or an engine (staged writes)")
        self.done = False  # finished or closed: inventory_in_progress() no longer answers for it
        self.conn = conn
        self.engine = engine
        self.dialect = conn.dialect if conn is not None else engine.dialect  # type: ignore[union-attr]
        self.stage = _Stage() if conn is None else None
        self.source = source
        self.dry_run = dry_run
        _RUNNING.set(self)  # for inventory_in_progress(): the pull runs in this context
        # app id -> (month, kind) of the value rows naming it, checked against the inventory at finish
        self.outcome_apps: dict[str, list[tuple[Any, Any]]] = defaultdict(list)
        self.buffers: dict[type[SQLModel], list[SQLModel]] = defaultdict(list)
        self.keys: dict[type[SQLModel], set[tuple[Any, ...]]] = defaultdict(set)
        self.seen: set[Any] = set()  # tables whose written keys go to a temporary seen table
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
        self.built_skip: set[tuple[Any, str, str]] = set()  # unchanged partitions the connector did not build
        # the source's last fingerprints: (table name, field) -> value -> (fingerprint, rows)
        self.stored: dict[tuple[str, str], dict[str, tuple[str, int]]] | None = None
        self.held: dict[tuple[Any, str], dict[str, int]] = {}
        self.full = full  # a full re-read: same_inputs() always answers False
        self.inputs: str | None = None  # the pull's input fingerprint (same_inputs), kept by finish()
        self.same = False  # same inputs as the last successful run: nothing was read again
        self.skipped = 0
        self.written = 0
        self.count = 0
        # per table with a monthly rollup (portfolio.rollup): rows it changed, and the first and
        # last day of the rows written (finish() rewrites the rollup of those months)
        self.changed: dict[Any, int] = defaultdict(int)
        self.touched: dict[Any, tuple[Any, Any]] = {}
        # a source's first cost rows on SQLite: their rollup summed from the frames as they are
        # written, not read back from the daily table (rollup.FirstSyncCost says when that is exact)
        self.first_cost = rollup.FirstSyncCost() if self.dialect.name == "sqlite" else None

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        """A connection to read from: the caller's, or (staged) a short one that holds no lock."""
        if self.conn is not None:
            yield self.conn
            return
        assert self.engine is not None
        with storage.translated(self.engine), self.engine.connect() as conn:
            yield conn

    def close(self) -> None:
        self.done = True
        if self.stage is not None:
            self.stage.close()

    def add(self, item: Any) -> None:
        from connectors.base import Notice, Partition, Replace, ReplaceKeys, Rows

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
        if model in rollup.ROLLUPS:
            self._touch(model, item.day, item.day)  # type: ignore[attr-defined]
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

    def _touch(self, model: Any, first: Any, last: Any) -> None:
        """Widen the days of ``model``'s rows written in this run (for its rollup's refresh)."""
        first, last = rollup.as_date(first), rollup.as_date(last)
        lo, hi = self.touched.get(model, (first, last))
        self.touched[model] = (min(lo, first), max(hi, last))

    def _is_fresh(self, model: Any) -> bool:
        if model not in self.fresh:
            if "source" not in model.NATURAL_KEY:
                self.fresh[model] = False
            else:
                with self._reading() as conn:
                    self.fresh[model] = not storage.source_has_rows(conn, model, self.source)
        return self.fresh[model]

    def _write(self, model: Any, prepared: storage.Prepared) -> None:
        """Run a prepared write now (direct) or stage it for :meth:`finish`."""
        if self.stage is not None:
            self.stage.add(model, prepared)
        else:
            assert self.conn is not None
            self._execute(self.conn, model, *prepared)

    def _execute(self, conn: Connection, model: Any, sql: str, rows: list[tuple[Any, ...]]) -> None:
        """Run a write; a repeated natural key on a plain INSERT becomes a clear SyncError."""
        try:
            changed = storage.execute_prepared(conn, sql, rows)
            if not storage.writes_seen(sql):
                self.written += changed
                self.changed[model] += changed
        except sa.exc.IntegrityError:
            raise SyncError(f"{self.source}: {model.__name__} rows repeat a natural key") from None

    def _partition(self, p: Partition) -> None:
        """Remember the partition whose rows follow; unchanged since the last write -> skip them."""
        self.partition = p
        self.partitions.append(p)
        if self.known_rows(p.table, p.field, p.value, p.fingerprint) == p.rows:
            self.unchanged.add((p.table, p.field, p.value))

    def known_rows(self, model: Any, field: str, value: str, fingerprint: str) -> int | None:
        """How many rows this source last wrote for partition ``field`` = ``value`` of ``model``
        when that write had ``fingerprint`` and the table still holds exactly that many of its
        rows; else None (never written, written differently, or rows went missing since)."""
        table = storage.table_of(model)
        key = (model, field)
        stored = self._stored().get((table.name, field), {}).get(value)
        if stored is None or stored[0] != fingerprint:
            return None
        if key not in self.held:  # rows the table holds per partition value: one grouped count
            col = table.c[field]
            with self._reading() as conn:
                counts = conn.execute(
                    sa.select(col, sa.func.count()).where(table.c.source == self.source).group_by(col)
                ).all()
            self.held[key] = {str(v): int(n) for v, n in counts}
        return stored[1] if self.held[key].get(value, 0) == stored[1] else None  # else rows went missing

    def _stored(self) -> dict[tuple[str, str], dict[str, tuple[str, int]]]:
        """The source's SyncPartition rows, read once per run (not once per partition)."""
        if self.stored is None:
            sp = storage.table_of(records.SyncPartition).c
            self.stored = defaultdict(dict)
            with self._reading() as conn:
                for t, f, v, fp, n in conn.execute(
                    sa.select(sp.table_name, sp.field, sp.value, sp.fingerprint, sp.rows).where(sp.source == self.source)
                ):
                    self.stored[(t, f)][v] = (fp, n)
        return self.stored

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
        if model in rollup.ROLLUPS and not frame.empty:
            days = frame["day"]
            self._touch(model, days.min(), days.max())
        if model is records.OutcomeRecord:
            for app_id, month, kind in frame[["app_id", "month", "kind"]].itertuples(index=False, name=None):
                self.outcome_apps[str(app_id)].append((month, kind))
        fresh = self._is_fresh(model)
        if fresh and model is records.CostRecord and self.first_cost is not None:
            self.first_cost.add(frame, storage.micro_units(frame["amount"]) if "amount" in frame.columns else None)
        if self.stage is not None:  # staged as the frame: prepared when finish() writes it
            storage.check_columns(model, frame)  # an unknown column fails the pull, as a direct write does
            if not fresh:
                self._seen(model)
            self.stage.add_frame(model, frame, fresh)
            return
        if fresh:
            self._write(model, storage.prepare_frame(self.dialect, model, frame, insert_only=True))
            return
        # Not the source's first rows: upsert them, and put their keys in the run's "seen" table
        # (its unique index refuses a key repeated in the run; finish() deletes, in SQL, the
        # restated scope's rows whose key is not in it). No key set is kept in memory.
        prepared = storage.prepare_frame(self.dialect, model, frame)
        self._seen(model)
        self._write(model, storage.prepare_seen(self.dialect, model, storage.key_rows(model, prepared)))
        self._write(model, prepared)

    def _seen(self, model: Any) -> None:
        """Make sure the run's seen-keys table of ``model`` exists (direct writes: now; staged: in finish)."""
        if model in self.seen:
            return
        self.seen.add(model)
        if self.conn is not None:
            storage.create_seen(self.conn, model)

    def flush(self, model: type[SQLModel] | None = None) -> None:
        for m in [model] if model else list(self.buffers):
            buf = self.buffers[m]
            if buf:
                if m is records.CostRecord and self.first_cost is not None:
                    self.first_cost.exact = False  # records one by one: the rollup is read back
                self._write(m, storage.prepare_objects(self.dialect, m, buf, insert_only=self._is_fresh(m)))
                buf.clear()

    def finish(self, conn: Connection | None = None) -> int:
        """Flush, write what was staged (into ``conn``, the caller's write transaction, when staged),
        check that value rows name known apps, then apply the Replace windows. Returns the number
        of rows deleted."""
        from connectors.base import ReplaceKeys

        self.flush()
        if self.stage is not None:
            if conn is None:
                raise TypeError("a staged _Writer writes in finish(conn): pass the write transaction's connection")
            for model in self.seen:  # the staged writes fill them
                storage.create_seen(conn, model)
            for model, sql, rows in self.stage.replay(conn.dialect):
                self._execute(conn, model, sql, rows)
        else:
            conn = self.conn
        assert conn is not None
        self.done = True
        self._check_inventory(conn)
        deleted = 0
        for rep in self.replaces:
            if self.fresh.get(rep.table):
                continue  # the source had no row before this run: nothing of it can be stale
            if rep.table not in self.seen:  # records yielded one by one (small sources): their keys are in memory
                self.seen.add(rep.table)
                storage.create_seen(conn, rep.table)
                known = storage.bind_keys(conn.dialect, rep.table, self.keys.get(rep.table, set()))
                self._execute(conn, rep.table, *storage.prepare_seen(conn.dialect, rep.table, known))
            col = storage.table_of(rep.table).c[rep.field]
            conditions: list[Any]
            if isinstance(rep, ReplaceKeys):  # in chunks: SQLite caps the bound values of one query
                # an unchanged partition's rows were not yielded again: none of them is stale
                values = sorted((v for v in rep.values if (rep.table, rep.field, str(v)) not in self.unchanged), key=str)
                conditions = [col.in_(values[i : i + 500]) for i in range(0, len(values), 500)]
            else:
                conditions = [sa.and_(col >= rep.start, col <= rep.end)]
            for cond in conditions:
                gone = storage.delete_unseen(conn, rep.table, self.source, cond)
                deleted += gone
                self.changed[rep.table] += gone
        self._refresh_rollups(conn)
        for model in self.seen:
            storage.drop_seen(conn, model)
        self.seen.clear()
        prints = [
            records.SyncPartition(
                source=self.source,
                table_name=storage.table_of(p.table).name,
                field=p.field,
                value=p.value,
                fingerprint=p.fingerprint,
                rows=p.rows,
            )
            for p in self.partitions
        ]
        if self.inputs is not None:
            table_name, field, value = INPUTS
            prints.append(
                records.SyncPartition(
                    source=self.source,
                    table_name=table_name,
                    field=field,
                    value=value,
                    fingerprint=self.inputs,
                )
            )
        if prints:  # bookkeeping, not counted as rows written
            storage.upsert(conn, records.SyncPartition, prints)
        return deleted

    def same_inputs(self, fingerprint: str) -> bool:
        """See :func:`same_inputs`."""
        self.inputs = fingerprint
        if self.full:
            return False
        table_name, field, value = INPUTS
        stored = self._stored()
        if stored.get((table_name, field), {}).get(value, ("",))[0] != fingerprint:
            return False
        tables = {storage.table_of(m).name: m for m in records.RECORD_TYPES}
        partitions = [(t, f, v, fp, n) for (t, f), by_value in stored.items() for v, (fp, n) in by_value.items()]
        partitions = [p for p in partitions if p[:3] != INPUTS]
        for t, f, v, fp, _ in partitions:
            if t not in tables or self.known_rows(tables[t], f, v, fp) is None:
                return False  # rows of a partition went missing since: read the inputs again
        run = records.SyncRun.__table__  # type: ignore[attr-defined]
        with self._reading() as conn:
            last = conn.execute(
                sa.select(run.c.warnings)
                .where(run.c.connector == self.source, run.c.status == "success")
                .order_by(run.c.id.desc())
                .limit(1)
            ).scalar()
        if last:  # the same inputs give the same notices: say them again
            self.notices.extend(last.split("\n"))
        self.skipped = sum(n for *_, n in partitions)
        self.same = True
        return True

    def _refresh_rollups(self, conn: Connection) -> None:
        """Rewrite the monthly rollups (:mod:`portfolio.rollup`) of the tables this run changed: the
        months of the rows it wrote and of its Replace windows, and (cost) the billing periods it
        restated. Nothing changed (an unchanged re-sync): nothing to do."""
        from connectors.base import ReplaceKeys

        for model in rollup.ROLLUPS:
            if not self.changed.get(model):
                continue
            days = self.touched.get(model)
            periods: set[str] = set()
            whole = False
            for rep in self.replaces:
                if rep.table is not model:
                    continue
                if isinstance(rep, ReplaceKeys):
                    if model is records.CostRecord and rep.field == "billing_period":
                        periods |= {str(v) for v in rep.values if (rep.table, rep.field, str(v)) not in self.unchanged}
                    else:
                        whole = True  # rows of any day may have gone: the source's whole rollup
                elif rep.field == "day":
                    lo, hi = rollup.as_date(rep.start), rollup.as_date(rep.end)
                    days = (min(days[0], lo), max(days[1], hi)) if days else (lo, hi)
                else:
                    whole = True
            if whole:
                days, periods = None, set()
            first = self.first_cost
            summed = first if model is records.CostRecord and self.fresh.get(model) and first and first.exact and first.parts else None
            rollup.refresh(conn, model, self.source, days=days, periods=periods, summed=summed)

    def known_apps(self, conn: Connection | None = None) -> set[str]:
        """The inventory as this run sees it: the App table (in ``conn``, the write transaction, else
        a read of this run's) and the apps it yielded that are not written yet."""
        t = storage.table_of(records.App)
        if conn is not None:
            known = set(conn.execute(sa.select(t.c.app_id)).scalars())
        else:
            with self._reading() as read:
                known = set(read.execute(sa.select(t.c.app_id)).scalars())
        return known | {str(a.app_id) for a in self.buffers.get(records.App, [])}  # type: ignore[attr-defined]

    def _check_inventory(self, conn: Connection) -> None:
        """Refuse value rows whose app id is in no inventory (nothing of the run is written)."""
        if not self.outcome_apps:
            return
        known = self.known_apps(conn)
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
    if writer is None or writer.done:
        return None
    if writer.conn is not None and (writer.conn.closed or not writer.conn.in_transaction()):
        return None
    return writer.known_apps()


#: the SyncPartition (table_name, field, value) under which a source's input fingerprint is kept
INPUTS = ("*", "inputs", "*")


def same_inputs(fingerprint: Callable[[], str]) -> bool:
    """For a connector whose pull is a function of inputs it can fingerprint cheaply (files: their
    content's hash, the settings, the connector's code): whether the running sync's source last
    succeeded with exactly these inputs, and every partition it then wrote is still held whole.
    True: the pull may end here; nothing is written or deleted, and the last run's notices are
    this run's. Either way the fingerprint (``fingerprint()``, called only inside a run) is kept as
    this run's when it succeeds. Always False outside a run and for ``sync --full``."""
    writer = _RUNNING.get()
    if writer is None or writer.done:
        return False
    return writer.same_inputs(fingerprint())


def partition_rows(model: Any, field: str, value: str, fingerprint: str) -> int | None:
    """For a connector, before it builds a partition's rows: how many rows the running sync's
    source last wrote for ``field`` = ``value`` of ``model`` with this ``fingerprint``, when the
    table still holds them all (a :class:`connectors.base.Partition` announced with that count
    is then found unchanged and its rows need not be built); else None, and None outside a run.

    Lets a fingerprint be computed on what the rows are derived from (a bill's exact line sums)
    instead of on the rows themselves, so an unchanged period costs no rounding pass at all."""
    writer = _RUNNING.get()
    if writer is None or writer.done:
        return None
    return writer.known_rows(model, field, value, fingerprint)


def partition_unchanged(partition: Any) -> bool:
    """Whether the sync running in this context found ``partition`` (a :class:`connectors.base.Partition`
    it was just handed) unchanged since its last write: its rows would be skipped, so a connector
    may leave them unbuilt (a daily re-read of two years of bills). False outside a run.

    A connector that leaves the rows out tells the writer nothing more: the rows counted as skipped
    are the partition's ``rows``."""
    writer = _RUNNING.get()
    if writer is None or writer.done:
        return False
    key = (partition.table, partition.field, partition.value)
    if key not in writer.unchanged:
        return False
    if key not in writer.built_skip:
        writer.built_skip.add(key)
        writer.skipped += int(partition.rows)
    return True


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
    import pandas as pd

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
    from portfolio import precedence

    counted = precedence.counted(rows, order)
    return {(r["app_id"], r["month"], r["kind"]): r for r in counted.to_dict("records")}


def _changes(
    keys: list[tuple[str, Any, str]], before: pd.DataFrame, after: pd.DataFrame, source: str, order: Sequence[str]
) -> pd.DataFrame:
    import pandas as pd

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
    import pandas as pd

    from portfolio import precedence

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


def _reap(conn: Connection, name: str, now: datetime, expiry: timedelta) -> list[str]:
    """In ``conn``'s transaction: mark runs of ``name`` left "running" by a process that ended (or
    whose lease expired) as failed; return the workers of the runs still genuinely in progress.

    The caller holds this process's lock for ``name``, so a "running" row of this very process is
    a leftover too (its outcome could not be recorded, or a process with the same host and pid ran
    before: a restarted container).
    """
    t = records.SyncRun.__table__  # type: ignore[attr-defined]
    live = []
    rows = conn.execute(sa.select(t.c.id, t.c.worker, t.c.started).where(t.c.connector == name, t.c.status == "running")).all()
    for run_id, worker, started in rows:
        started = started if started.tzinfo else started.replace(tzinfo=UTC)
        if worker != WORKER and _alive(worker) and now - started < expiry:
            live.append(worker)
            continue
        conn.execute(
            sa.update(t)
            .where(t.c.id == run_id)
            .values(status="failed", finished=now, error=f"{name}: interrupted: the process running it ({worker}) ended before it finished; nothing of it was written")
        )
    return live


def reap_interrupted(engine: Engine, name: str, now: datetime) -> list[str]:
    """Mark runs of ``name`` left "running" by a process that died (killed mid-sync) as failed.

    Their transaction never committed, so none of their rows exist; the next run starts from the
    last successful cursor and writes them. Returns the workers of runs still genuinely in progress.
    """
    with _local_lock(engine, name) as mine:
        if not mine:
            return [WORKER]
        with engine.begin() as conn:
            return _reap(conn, name, now, STALE_AFTER)


# ----------------------------------------------------------------------------- one run at a time

_local: dict[tuple[str, str], threading.Lock] = {}
_local_guard = threading.Lock()


@contextmanager
def _local_lock(engine: Engine, name: str) -> Iterator[bool]:
    """This process's lock for connector ``name`` on this database: yields whether it was free."""
    with _local_guard:
        lock = _local.setdefault((str(engine.url), name), threading.Lock())
    got = lock.acquire(blocking=False)
    try:
        yield got
    finally:
        if got:
            lock.release()


_ADVISORY_CLASS = 0x6D6C70  # "mlp": the first key of our advisory locks; the second is the connector's hash


@contextmanager
def _advisory_lock(engine: Engine, name: str) -> Iterator[bool]:
    """PostgreSQL: a session advisory lock on ``name`` for the whole run (yields whether it was got);
    the server frees it if the process dies. SQLite: always True (the lease row does the work)."""
    if engine.dialect.name != "postgresql":
        yield True
        return
    with storage.translated(engine), engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        got = bool(
            conn.execute(sa.text("SELECT pg_try_advisory_lock(:c, hashtext(:n))"), {"c": _ADVISORY_CLASS, "n": name}).scalar()
        )
        try:
            yield got
        finally:
            if got:
                with storage.translated(engine):
                    conn.execute(sa.text("SELECT pg_advisory_unlock(:c, hashtext(:n))"), {"c": _ADVISORY_CLASS, "n": name})


@contextmanager
def _write_lock(engine: Engine) -> Iterator[Connection]:
    """A transaction that holds the write lock from its start (SQLite: BEGIN IMMEDIATE), so a check
    and the write it decides happen with no other writer in between."""
    with storage.translated(engine), engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")  # the driver sees a transaction open and adds no BEGIN
        try:
            yield conn
        except BaseException:
            conn.rollback()
            raise
        conn.commit()


def _claim(engine: Engine, run: records.SyncRun, expiry: timedelta) -> list[str]:
    """Reap dead runs of the connector and, unless another is live, insert ``run`` as "running" —
    one atomic step (the lease). Returns the workers of live runs (then ``run`` is not inserted)."""
    t = records.SyncRun.__table__  # type: ignore[attr-defined]
    with _write_lock(engine) as conn:
        live = _reap(conn, run.connector, now_utc(), expiry)
        if not live:
            values = {c: getattr(run, c) for c in ("connector", "connector_type", "started", "status", "since", "worker")}
            run.id = conn.execute(sa.insert(t).values(**values)).inserted_primary_key[0]  # type: ignore[index]
    return live


# ----------------------------------------------------------------------------- a run


class _Deadline(SyncError):
    """The run passed its ``timeout_minutes``."""


def _minutes(value: float) -> str:
    seconds = value * 60
    return f"{value:g} min" if seconds >= 120 else f"{value:g} min = {seconds:g} s"


def _pull(module: Any, conn_cfg: ConnectorConfig, since: datetime | None, writer: _Writer, deadline: float) -> None:
    """Run the connector's pull in a worker thread, staging what it yields; past ``deadline`` (a
    ``time.monotonic()``) raise :class:`_Deadline` and leave the worker to stop at its next item
    (its HTTP requests are cut at the same deadline)."""
    stop = threading.Event()
    failure: list[BaseException] = []

    from connectors.base import run_deadline

    def work() -> None:
        with run_deadline(deadline):
            items = module.pull(conn_cfg, since)
            try:
                for item in items:
                    if stop.is_set():
                        return
                    writer.add(item)
            except BaseException as exc:  # noqa: BLE001 - handed to the sync thread
                failure.append(exc)
            finally:
                close = getattr(items, "close", None)
                if close is not None:
                    with suppress(Exception):  # a generator failing to close changes nothing here
                        close()

    ctx = contextvars.copy_context()
    worker = threading.Thread(target=ctx.run, args=(work,), name=f"sync-{conn_cfg.name}", daemon=True)
    worker.start()
    worker.join(max(deadline - time.monotonic(), 0))
    # a failure right at the deadline is the deadline cutting a request, whatever the connector called it
    if worker.is_alive() or (failure and time.monotonic() >= deadline - 1.0):
        stop.set()
        raise _Deadline(
            f"{conn_cfg.name}: stopped: the run did not finish within timeout_minutes = {_minutes(conn_cfg.timeout_minutes)} "
            "(the source was still answering); nothing of it was written"
        )
    if failure:
        raise failure[0]


def run_connector(
    cfg: Config, engine: Engine, conn_cfg: ConnectorConfig, *, full: bool = False, now: datetime | None = None
) -> records.SyncRun:
    """Run one connector once, record it in the ledger, and return its SyncRun (never raises for
    a connector or database failure: the run's status and error say what happened)."""
    started = now or now_utc()
    name = conn_cfg.name
    run = records.SyncRun(connector=name, connector_type=conn_cfg.type, started=started, worker=WORKER)
    expiry = min(timedelta(minutes=conn_cfg.timeout_minutes) + LEASE_GRACE, STALE_AFTER)
    with _local_lock(engine, name) as free:
        if not free:
            return _skip(engine, run, "another thread of this process")
        try:
            with _advisory_lock(engine, name) as got:
                if not got:
                    return _skip(engine, run, "another process (it holds the connector's lock)")
                run.since = None if full else _read(engine, lambda: cursor(engine, name, conn_cfg.lookback_days, started))
                live = _claim(engine, run, expiry)
                if live:
                    return _skip(engine, run, ", ".join(live))
                _execute(engine, conn_cfg, run, full=full)
                _save_run(engine, run)
        except (StorageError, sa.exc.DBAPIError) as exc:  # the ledger itself cannot be read or written
            message = str(exc) if isinstance(exc, StorageError) else storage.explain(exc, engine)
            run.status = "failed"
            run.finished = now_utc()
            run.error = f"{name}: {message}" if not message.startswith(f"{name}:") else message
            log.error("sync %s could not run: %s", name, run.error)
    return run


def _read(engine: Engine, read: Any) -> Any:
    with storage.translated(engine):
        return read()


def _skip(engine: Engine, run: records.SyncRun, where: str) -> records.SyncRun:
    """Record (and return) ``run`` as skipped: another run of the connector is in progress."""
    run.status = "skipped"
    run.finished = now_utc()
    run.error = f"{run.connector}: skipped: already running (a run is already in progress in {where})"
    log.warning("sync %s", run.error)
    try:
        with storage.translated(engine):
            storage.add(engine, run)
    except StorageError as exc:
        log.error("sync %s: could not record the skipped run: %s", run.connector, exc)
    return run


def _execute(engine: Engine, conn_cfg: ConnectorConfig, run: records.SyncRun, *, full: bool = False) -> None:
    """Pull, then write in one short transaction; fill in the run's outcome (never raises)."""
    name = conn_cfg.name
    secret_envs = conn_cfg.secret_env_names()
    deadline = time.monotonic() + conn_cfg.timeout_minutes * 60
    writer: _Writer | None = None
    try:
        module = connectors.load(conn_cfg.type)
        writer = _Writer(None, name, engine=engine, full=full)
        _pull(module, conn_cfg, run.since, writer, deadline)
        with storage.translated(engine), engine.begin() as conn:  # the only write: short, no network inside
            run.rows_deleted = writer.finish(conn)
        run.rows_written = writer.written
        run.warnings = redact("\n".join(writer.notices), secret_envs)[:4000] or None
        run.status = "success"
        if writer.same:
            log.info(
                "sync %s: inputs unchanged since its last successful run (%d rows held): nothing read again",
                name,
                writer.skipped,
            )
        else:
            log.info(
                "sync %s: %d rows written, %d deleted, %d rows of %d unchanged partition(s) skipped",
                name,
                run.rows_written,
                run.rows_deleted,
                writer.skipped,
                len(writer.unchanged),
            )
    except Exception as exc:  # one failing connector never stops the others
        run.status = "failed"
        run.rows_written = 0
        run.rows_deleted = 0
        if isinstance(exc, StorageError):  # one line about our database: say which run it hit
            message = f"{name}: {exc}"
        elif isinstance(exc, PortfolioError):
            message = str(exc)
        elif isinstance(exc, sa.exc.DBAPIError):  # our database, outside translated(): still one line
            message = f"{name}: {storage.explain(exc, engine)}"
        else:
            message = f"{name}: {type(exc).__name__}: {exc}"
        run.error = redact(message, secret_envs)[:4000]
        level = logging.WARNING if isinstance(exc, ConnectorError | SyncError) else logging.ERROR
        log.log(level, "sync %s failed: %s", name, run.error)
    finally:
        if writer is not None:
            writer.close()
    run.finished = now_utc()


def _save_run(engine: Engine, run: records.SyncRun) -> None:
    """Record the run's outcome, trying again while another writer holds the database; if it still
    cannot, say so in one line (the row stays "running" and the next run reaps it)."""
    t = records.SyncRun.__table__  # type: ignore[attr-defined]
    for attempt in range(SAVE_ATTEMPTS):
        try:
            with storage.translated(engine), engine.begin() as conn:
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
            return
        except StorageError as exc:
            if attempt == SAVE_ATTEMPTS - 1:
                log.error("sync %s: %s; could not record its outcome (%s): %s", run.connector, run.status, run.error or "ok", exc)
                return
            time.sleep(0.5 * (attempt + 1))


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
    try:
        with storage.translated(engine):
            sync_inventory(cfg, engine)
    except StorageError as exc:  # the connectors still run: each records (or logs) its own outcome
        log.error("sync: could not write the app inventory from portfolio.toml: %s", exc)
    return Outcome([run_connector(cfg, engine, cfg.connectors[n], full=full, now=now) for n in names])

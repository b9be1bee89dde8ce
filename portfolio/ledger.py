"""The outcomes ledger: realised value per app, month and kind, as a finance partner keeps it.

One row per app, month and value kind::

    app_id, month (YYYY-MM), kind (revenue_capture | cost_avoidance), amount, currency,
    attribution (0..1), evidence (experiment | observational | estimate), low, high, note

Shared by the ``outcomes_file`` and ``sql`` connectors and the dashboard's upload page, so a
ledger is validated the same way wherever it comes from. Validation is all-or-nothing and
lists *every* bad row with its reason, in the row numbers a person sees in a spreadsheet
(header = row 1, first data row = row 2). Money is parsed as :class:`~decimal.Decimal` exactly
from the cell's text (files are read with ``dtype=str``), never through a float.
"""

from __future__ import annotations

import difflib
import io
import re
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO, Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from portfolio import records, storage

COLUMNS = ["app_id", "month", "kind", "amount", "currency", "attribution", "evidence", "low", "high", "note"]
#: columns a ledger must have; the others may be left out (defaults below)
REQUIRED = ["app_id", "month", "kind", "amount"]
DEFAULT_CURRENCY = "USD"
DEFAULT_ATTRIBUTION = 1.0
DEFAULT_EVIDENCE = "estimate"  # the most conservative grade: unproven value is an estimate
ERROR_COLUMNS = ["row", "column", "value", "reason"]
MAX_DECIMALS = 6  # money is stored as NUMERIC(20, 6)

TEMPLATE_CSV = (
    ",".join(COLUMNS)
    + "\n"
    + "churn-predictor,2026-01,revenue_capture,125000.00,USD,0.6,experiment,100000.00,150000.00,"
    + "A/B test: retained customers x margin\n"
    + "defect-detector,2026-01,cost_avoidance,48250.50,USD,1,observational,,,"
    + "scrap avoided vs same month last year\n"
)

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_DECIMAL = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


# ----------------------------------------------------------------------------- reading


def _cell_text(value: Any) -> str | None:
    """A cell as the text a person typed; None when empty.

    Excel stores a month typed as ``2026-01`` as a date: a first-of-month midnight comes back as
    ``YYYY-MM`` so it validates; any other date keeps its full text (and fails as a month).
    """
    if value is None:
        return None
    if isinstance(value, float) and value != value:  # NaN
        return None
    if value is pd.NaT:
        return None
    if isinstance(value, datetime | pd.Timestamp):
        if value.day == 1 and (value.hour, value.minute, value.second) == (0, 0, 0):
            return f"{value.year:04d}-{value.month:02d}"
        return value.isoformat()
    if isinstance(value, date):
        return f"{value.year:04d}-{value.month:02d}" if value.day == 1 else value.isoformat()
    if isinstance(value, float):
        return repr(value)  # shortest text that round-trips: what the cell shows
    text = str(value).strip()
    return text or None


def _drop_blank_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Drop rows with no cell filled, keeping the index (so row numbers stay the file's)."""
    frame = frame.map(_cell_text).astype(object)
    frame = frame.where(frame.notna(), None)
    if frame.empty:
        return frame
    return frame[frame.notna().any(axis=1)]


def read_ledger(path: str | Path | IO[bytes]) -> pd.DataFrame:
    """Read a ledger file (CSV or Excel ``.xlsx``) as text cells.

    ``path`` may be a path or a binary file object with a ``name`` (an upload). The frame's index
    is the 0-based data row, so ``index + 2`` is the row a person sees (header = row 1). Column
    names are stripped and lower-cased; empty cells are None; blank lines are dropped.
    """
    name = str(getattr(path, "name", path))
    suffix = Path(name).suffix.lower()
    source: Any = path
    if not isinstance(path, str | Path):
        data = path.read()
        source = io.BytesIO(data if isinstance(data, bytes) else str(data).encode())
    if suffix in (".xlsx", ".xlsm", ".xls"):
        frame = pd.read_excel(source, dtype=object, sheet_name=0)
    else:
        text = Path(source).read_bytes() if isinstance(source, str | Path) else source.getvalue()
        decoded = text.decode("utf-8-sig")
        first = decoded.split("\n", 1)[0]
        sep = ";" if first.count(";") > first.count(",") else ","  # European spreadsheet exports
        frame = pd.read_csv(io.StringIO(decoded), dtype=str, keep_default_na=False, sep=sep, skip_blank_lines=False)
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    return _drop_blank_rows(frame)


# ----------------------------------------------------------------------------- validation


def _row_number(index: Any) -> int:
    return int(index) + 2


def _parse_decimal(text: str) -> Decimal | None:
    if not _DECIMAL.match(text):
        return None
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - the regex admits only valid literals
        return None


def validate_ledger(
    df: pd.DataFrame, source_name: str = "upload", *, currency: str | None = None
) -> tuple[list[records.OutcomeRecord], pd.DataFrame]:
    """Check a ledger frame (text cells, as :func:`read_ledger` returns) and build its records.

    Returns ``(records, errors)``. ``errors`` has columns row, column, value, reason — one line per
    problem, every bad row listed; when it is not empty, ``records`` is empty (all-or-nothing).
    ``row`` is the row a person counts in the file: the frame's index + 2 (header = row 1).
    ``currency``: when given, rows in any other currency are refused (and empty cells take it).
    Records carry ``source = source_name``.
    """
    errors: list[tuple[int, str, str, str]] = []
    columns = [str(c).strip().lower() for c in df.columns]
    frame = df.copy()
    frame.columns = columns
    for col in REQUIRED:
        if col not in columns:
            errors.append((1, col, "", f"missing column; a ledger needs {', '.join(REQUIRED)}"))
    for col in columns:
        if col not in COLUMNS:
            errors.append((1, col, col, f"unknown column; expected columns: {', '.join(COLUMNS)}"))
    if len(set(columns)) != len(columns):
        dup = sorted({c for c in columns if columns.count(c) > 1})
        errors.append((1, ",".join(dup), "", "column appears more than once"))
    if errors:
        return [], _errors_frame(errors)

    out: list[records.OutcomeRecord] = []
    first_row: dict[tuple[str, date, str], int] = {}
    for index, raw in frame.iterrows():
        row = _row_number(index)
        cell = {c: _cell_text(raw.get(c)) for c in COLUMNS}
        record, bad = _validate_row(row, cell, source_name, currency)
        key: tuple[str, date, str] | None
        if record is not None:
            key = (record.app_id, record.month, record.kind)
        else:
            month = _month(cell["month"])
            ok = cell["app_id"] and month is not None and cell["kind"] in records.OUTCOME_KINDS
            key = (cell["app_id"] or "", month, cell["kind"] or "") if ok and month else None
        if key is not None:
            if key in first_row:
                bad.append(
                    (row, "app_id,month,kind", f"{key[0]},{key[1]:%Y-%m},{key[2]}",
                     f"duplicate of row {first_row[key]}: one row per app, month and kind")
                )
            else:
                first_row[key] = row
        if bad:
            errors.extend(bad)
        elif record is not None:
            out.append(record)
    if errors:
        return [], _errors_frame(errors)
    return out, _errors_frame([])


def _month(text: str | None) -> date | None:
    """``YYYY-MM`` as the first day of that month, or None."""
    m = _MONTH.match(text or "")
    if not m or not 1 <= int(m.group(2)) <= 12:
        return None
    return date(int(m.group(1)), int(m.group(2)), 1)


def _validate_row(
    row: int, cell: dict[str, str | None], source_name: str, currency: str | None
) -> tuple[records.OutcomeRecord | None, list[tuple[int, str, str, str]]]:
    """One data row: its record, or the list of what is wrong with it."""
    bad: list[tuple[int, str, str, str]] = []

    def fail(col: str, reason: str) -> None:
        bad.append((row, col, cell.get(col) or "", reason))

    app_id = cell["app_id"]
    if not app_id:
        fail("app_id", "empty: every row needs the app's id")

    month = _month(cell["month"])
    if not cell["month"]:
        fail("month", "empty: expected a month as YYYY-MM")
    elif month is None:
        fail("month", "not a month: expected YYYY-MM, e.g. 2026-01")

    kind = cell["kind"]
    if kind not in records.OUTCOME_KINDS:
        fail("kind", f"expected {' or '.join(records.OUTCOME_KINDS)}")

    amount: Decimal | None = None
    if not cell["amount"]:
        fail("amount", "empty: expected a decimal amount such as 1250.00")
    else:
        amount = _parseamount_text(cell["amount"], "amount", fail)

    cur = (cell["currency"] or currency or DEFAULT_CURRENCY).upper()
    if not _CURRENCY.match(cur):
        fail("currency", "expected a 3-letter currency code such as USD")
    elif currency and cur != currency.upper():
        fail("currency", f"{cur} is not the reporting currency {currency.upper()}: convert it first")

    attribution = DEFAULT_ATTRIBUTION
    if cell["attribution"]:
        share = _parse_decimal(cell["attribution"])
        if share is None or not Decimal(0) <= share <= Decimal(1):
            fail("attribution", "expected a share between 0 and 1 (e.g. 0.6 for 60%)")
        else:
            attribution = float(share)

    evidence = cell["evidence"] or DEFAULT_EVIDENCE
    if evidence not in records.EVIDENCE:
        fail("evidence", f"expected one of {', '.join(records.EVIDENCE)}")

    low = _parseamount_text(cell["low"], "low", fail) if cell["low"] else None
    high = _parseamount_text(cell["high"], "high", fail) if cell["high"] else None
    if amount is not None:
        if low is not None and low > amount:
            fail("low", f"low bound is above the amount {amount}")
        if high is not None and high < amount:
            fail("high", f"high bound is below the amount {amount}")

    if bad or not app_id or month is None or not kind or amount is None:
        return None, bad
    record = records.OutcomeRecord(
        source=source_name,
        app_id=app_id,
        month=month,
        kind=kind,
        amount=amount,
        currency=cur,
        attribution=attribution,
        evidence=evidence,
        low=low,
        high=high,
        note=cell["note"],
    )
    return record, bad


def _parseamount_text(text: str | None, col: str, fail: Any) -> Decimal | None:
    parsed = _parse_decimal(text or "")
    if parsed is None:
        fail(col, "not a decimal number (use digits and a dot, no thousands separators or currency symbols)")
        return None
    exponent = parsed.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > MAX_DECIMALS:
        fail(col, f"more than {MAX_DECIMALS} decimal places")
        return None
    return parsed


def _errors_frame(errors: Sequence[tuple[int, str, str, str]]) -> pd.DataFrame:
    frame = pd.DataFrame(list(errors), columns=ERROR_COLUMNS)
    return frame.astype({"row": "int64", "column": object, "value": object, "reason": object})


def describe_errors(errors: pd.DataFrame, file: str | None = None, limit: int | None = None) -> str:
    """The errors as lines a person reads: ``file F, row R, column 'c' (value 'v'): reason``."""
    lines = []
    shown = errors if limit is None else errors.head(limit)
    for e in shown.itertuples(index=False):
        where = f"file {file}, " if file else ""
        value = f" (value {e.value!r})" if e.value else ""
        lines.append(f"{where}row {e.row}, column {e.column!r}{value}: {e.reason}")
    if limit is not None and len(errors) > limit:
        lines.append(f"... and {len(errors) - limit} more")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- inventory


def unknown_app_reason(app_id: str, known: Iterable[str]) -> str:
    """Why an app id is refused, with the closest known id when one is near (a typo)."""
    known = sorted(set(known))
    if not known:
        return "no app in the inventory yet: declare it under [[apps]] in portfolio.toml (or sync the inventory connector) first"
    close = difflib.get_close_matches(app_id, known, n=1, cutoff=0.6)
    if close:
        return f"no app {app_id!r} in the inventory: did you mean {close[0]!r}?"
    shown = ", ".join(known[:12]) + (f" and {len(known) - 12} more" if len(known) > 12 else "")
    return f"no app {app_id!r} in the inventory (known: {shown}); declare new apps under [[apps]] in portfolio.toml"


def unknown_app_errors(df: pd.DataFrame, known: Iterable[str]) -> pd.DataFrame:
    """Rows of a ledger frame (as :func:`read_ledger` returns) whose app_id names no known app.

    ``known``: the inventory's app ids (config ``[[apps]]`` and the apps inventory connectors
    found). A separate step from :func:`validate_ledger` (which checks a file on its own): a row
    naming an unknown app is refused with a did-you-mean, never turned into a new app.
    Columns as the errors of :func:`validate_ledger`: row, column, value, reason.
    """
    ids = set(known)
    frame = df.copy()
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    if "app_id" not in frame.columns:
        return _errors_frame([])
    errors = []
    for index, value in frame["app_id"].items():
        app_id = _cell_text(value)
        if app_id and app_id not in ids:
            errors.append((_row_number(index), "app_id", app_id, unknown_app_reason(app_id, ids)))
    return _errors_frame(errors)


def known_apps(engine: Engine | Connection, extra: Iterable[str] = ()) -> set[str]:
    """The inventory's app ids: the App table (config apps once synced, inventory connectors' apps) + ``extra``."""
    t = storage.table_of(records.App)
    if isinstance(engine, Engine):
        with engine.connect() as conn:
            ids = set(conn.execute(sa.select(t.c.app_id)).scalars())
    else:
        ids = set(engine.execute(sa.select(t.c.app_id)).scalars())
    return ids | set(extra)


# ----------------------------------------------------------------------------- writing


def replaced_months(
    engine: Engine,
    records_: Sequence[records.OutcomeRecord],
    source: str = "upload",
    order: Sequence[str] | None = None,
) -> pd.DataFrame:
    """What committing ``records_`` as ``source`` would change: the sync writer's dry run.

    One row per (app, month, kind) of ``records_`` (see :data:`portfolio.sync.CHANGE_COLUMNS`):
    status ``new``, ``replaces`` (the figure that counted, from any source, and the one that will),
    ``unchanged`` or ``overridden`` (a source ranked higher in ``order`` keeps counting). Money is
    exact (Decimal); nothing is written and no SyncRun is recorded.
    """
    from portfolio import sync  # the writer; imported here because sync imports this module

    rows = [r.model_copy(update={"source": source}) for r in records_]
    return sync.write_records(engine, source, rows, dry_run=True, order=order).changes


def describe_changes(changes: pd.DataFrame) -> list[str]:
    """What a commit replaces, one line per source it replaces, for people: ``replaces 1 row from
    demo: 253,957.54 -> 260,000.00``; then the rows that will not count (a higher-ranked source)."""
    lines = []
    replaced = changes[changes["status"] == "replaces"]
    for old_source, group in replaced.groupby("old_source", sort=True):
        pairs = "; ".join(
            f"{r.app_id} {r.month} {r.kind} {amount_text(r.old_amount)} -> {amount_text(r.new_amount)}" for r in group.itertuples()
        )
        lines.append(f"replaces {len(group)} row(s) from {old_source}: {pairs}")
    over = changes[changes["status"] == "overridden"]
    for new_source, group in over.groupby("new_source", sort=True):
        lines.append(
            f"{len(group)} row(s) will not count: {new_source} ranks higher in [value] precedence ("
            + "; ".join(f"{r.app_id} {r.month} {r.kind} stays {amount_text(r.new_amount)}" for r in group.itertuples())
            + ")"
        )
    return lines


def amount_text(amount: Any) -> str:
    """An exact amount for people: thousands separators, 2 decimals (``253,957.54``)."""
    return f"{Decimal(str(amount)):,.2f}"


def commit(
    engine: Engine,
    records_: Sequence[records.OutcomeRecord],
    source: str = "upload",
    order: Sequence[str] | None = None,
) -> int:
    """Write validated records as ``source`` through the sync writer, in one transaction.

    Upsert by app, month and kind: a restated row replaces the same source's earlier one (other
    months and apps of earlier uploads stay). Records a :class:`~portfolio.records.SyncRun`
    (connector ``source``, type "upload") with what it replaced in its warnings; a failure is
    recorded too and raised (SyncError for an unknown app, StorageError for the database).
    Returns the number of rows inserted or changed (0 for the same file again).
    """
    from portfolio import sync

    rows = [r.model_copy(update={"source": source}) for r in records_]
    return sync.write_records(engine, source, rows, order=order).written

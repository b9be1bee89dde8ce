"""The outcomes ledger: realised value per app, month and kind, as a finance partner keeps it.

One row per app, month and value kind::

    app_id, month (YYYY-MM), kind (revenue_capture | cost_avoidance), amount, currency,
    attribution (0..1), evidence (experiment | observational | estimate), low, high, note,
    assumption (an estimate row: the name of the value assumption behind it, declared with its
    owner, approver and expiry in portfolio.toml [plan.assumptions.<name>])

Shared by the ``outcomes_file`` and ``sql`` connectors and the dashboard's upload page, so a
ledger is validated the same way wherever it comes from. Validation is all-or-nothing and
lists *every* bad row with its reason, in the row numbers a person sees in a spreadsheet
(header = row 1, first data row = row 2). Money is parsed as :class:`~decimal.Decimal` exactly
from the cell's text (a CSV is read as text cells), never through a float.

A file is untrusted input: its size and row count are capped before it is parsed, and what a
spreadsheet or a careless export can hold — bytes that are not UTF-8, a row with more cells than
the header, month ``0000-01``, an amount past what the database stores, a NUL — is refused with
the file, row and column named (:class:`LedgerFileError` for the file, the errors frame for cells).
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO, Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from portfolio import records, storage
from portfolio.errors import PortfolioError, unknown_app_reason
from portfolio.precedence import amount_text

COLUMNS = ["app_id", "month", "kind", "amount", "currency", "attribution", "evidence", "low", "high", "note", "assumption"]
#: columns a ledger must have; the others may be left out (defaults below)
REQUIRED = ["app_id", "month", "kind", "amount"]
DEFAULT_CURRENCY = "USD"
DEFAULT_ATTRIBUTION = 1.0
DEFAULT_EVIDENCE = "estimate"  # the most conservative grade: unproven value is an estimate
ERROR_COLUMNS = ["row", "column", "value", "reason"]
MAX_DECIMALS = 6  # money is stored as NUMERIC(20, 6)
#: the largest amount every backend stores: SQLite keeps money as signed 64-bit micro-units
#: (records.Money), so (2**63 - 1) / 10**6; PostgreSQL's NUMERIC(20, 6) would take up to 10**14
MAX_AMOUNT = Decimal(2**63 - 1).scaleb(-MAX_DECIMALS)
#: years a ledger month may have: "0000-01" or "0201-01" is a typo, and a month centuries away
#: would stretch every monthly series to it
MIN_YEAR, MAX_YEAR = 1900, 2199
#: caps of a ledger file, checked before it is parsed ([uploads] in portfolio.toml sets the page's)
DEFAULT_MAX_BYTES = 20_000_000
DEFAULT_MAX_ROWS = 200_000
MAX_TEXT = 4000  # characters in one cell (a note); longer is a pasted document, not a ledger entry
MAX_ASSUMPTION = 200  # characters in an assumption's name (it names a [plan.assumptions.<name>] entry)

TEMPLATE_CSV = (
    ",".join(COLUMNS)
    + "\n"
    + "churn-predictor,2026-01,revenue_capture,125000.00,USD,0.6,experiment,100000.00,150000.00,"
    + "A/B test: retained customers x margin,\n"
    + "defect-detector,2026-01,cost_avoidance,48250.50,USD,1,observational,,,"
    + "scrap avoided vs same month last year,\n"
)

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_DECIMAL = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
# C0 controls but tab and newline (a note may have them), DEL, C1 controls: PostgreSQL refuses NUL
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _shown(text: str, limit: int = 200) -> str:
    """A cell's value as an error message quotes it: at most ``limit`` characters."""
    return text if len(text) <= limit else text[:limit] + "…"


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


class LedgerFileError(PortfolioError):
    """A ledger file that cannot be read as a table: too big, not UTF-8, ragged, not a spreadsheet.

    ``problems`` are (row, column, value, reason) like :func:`validate_ledger`'s errors, so the
    upload page shows them in the same table and the sync lists them the same way.
    """

    def __init__(self, file: str, problems: Sequence[tuple[int, str, str, str]]):
        self.file = file
        self.problems = list(problems)
        super().__init__(describe_errors(_errors_frame(self.problems), file=file, limit=20))

    @property
    def errors(self) -> pd.DataFrame:
        return _errors_frame(self.problems)


def _size(path: str | Path | IO[bytes]) -> int | None:
    """The file's size in bytes without reading it (an upload knows it; a stream is measured by seeking)."""
    if isinstance(path, str | Path):
        return Path(path).stat().st_size
    size = getattr(path, "size", None)  # streamlit's UploadedFile
    if isinstance(size, int):
        return size
    try:
        here = path.tell()
        end = path.seek(0, io.SEEK_END)
        path.seek(here)
        return int(end)
    except (AttributeError, OSError, ValueError):
        return None


def read_ledger(
    path: str | Path | IO[bytes], *, max_bytes: int | None = DEFAULT_MAX_BYTES, max_rows: int | None = DEFAULT_MAX_ROWS
) -> pd.DataFrame:
    """Read a ledger file (CSV or Excel ``.xlsx``) as text cells.

    ``path`` may be a path or a binary file object with a ``name`` (an upload). The frame's index
    is the 0-based data row, so ``index + 2`` is the row a person sees (header = row 1). Column
    names are stripped and lower-cased; empty cells are None; blank lines are dropped.

    The caps are checked before anything is parsed: a file over ``max_bytes`` is refused from its
    size alone, and one over ``max_rows`` data rows once that many rows have been counted (for
    ``.xlsx``, from the sheet's declared dimension, then by counting its rows in the compressed
    stream) — so a huge file costs a fraction of a second, never the minutes and gigabytes a full
    parse would. ``None`` lifts a cap. Raises :class:`LedgerFileError` (file, row, column, reason)
    for a file over a cap, bytes that are not UTF-8, a row with more cells than the header, or a
    file that is not a spreadsheet.
    """
    name = str(path) if isinstance(path, str | Path) else str(getattr(path, "name", None) or "upload")
    shown = Path(name).name or "upload"
    suffix = Path(name).suffix.lower()
    size = _size(path)
    if max_bytes is not None and size is not None and size > max_bytes:
        raise LedgerFileError(shown, [(0, "", "", f"the file is {_mb(size)}, over the {_mb(max_bytes)} limit "
                                       "([uploads] max_bytes): split it or raise the limit")])
    if isinstance(path, str | Path):
        data = Path(path).read_bytes()
    elif isinstance(path, io.BytesIO) and path.tell() == 0:
        data = path.getvalue()  # an upload already in memory: no second copy
    else:
        raw = path.read()
        data = raw if isinstance(raw, bytes) else str(raw).encode()
    if max_bytes is not None and len(data) > max_bytes:  # a stream that could not tell its size
        raise LedgerFileError(shown, [(0, "", "", f"the file is over the {_mb(max_bytes)} limit ([uploads] max_bytes)")])
    if suffix == ".xls":
        raise LedgerFileError(shown, [(0, "", "", "the old Excel .xls format is not read: save it as .xlsx or CSV")])
    if suffix in (".xlsx", ".xlsm"):
        if max_rows is not None:
            _xlsx_rows_over(data, shown, max_rows)
        frame = _read_xlsx(data, shown)
    else:
        if data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]
        if max_rows is not None:
            _csv_rows_over(data, shown, max_rows)
        frame = _read_csv(data, shown)
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    return _drop_blank_rows(frame)


def _mb(size: int) -> str:
    return f"{size / 1_000_000:,.1f} MB"


def _too_many_rows(file: str, max_rows: int, counted: str) -> LedgerFileError:
    return LedgerFileError(file, [(0, "", "", f"the file has {counted} data rows, over the {max_rows:,} row limit "
                                  "([uploads] max_rows): split it or raise the limit")])


_BAD_BYTES = re.compile("[\udc80-\udcff]+")


def _separator(data: bytes) -> str:
    end = data.find(b"\n")
    first = data[: end if end >= 0 else len(data)].decode("utf-8", errors="replace")  # no copy of the rest
    return ";" if first.count(";") > first.count(",") else ","  # European spreadsheet exports


def _csv_rows_over(data: bytes, file: str, max_rows: int) -> None:
    """Refuse CSV bytes with more than ``max_rows`` data rows, before anything is parsed into a table.

    Counting newlines (C speed, no copy) settles nearly every file; only when there are more
    lines than the cap allows are rows counted for real (a quoted cell may hold a newline), as a
    stream that stops at the cap — time and memory stay bounded by the cap, not by the file.
    """
    lines = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    if lines <= max_rows + 1:
        return
    if b'"' not in data and b"\n\n" not in data and b"\n\r\n" not in data:
        # no quoted cell (so no newline inside a cell) and no blank line: every line is a row
        raise _too_many_rows(file, max_rows, f"{lines - 1:,}")
    text = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors="replace", newline="")
    n = 0
    for record in csv.reader(text, delimiter=_separator(data)):
        n += 1 if record else 0  # a blank line is not a row
        if n > max_rows + 1:  # the header + max_rows data rows were fine; this one is over
            raise _too_many_rows(file, max_rows, f"more than {max_rows:,}")


def _read_csv(data: bytes, file: str) -> pd.DataFrame:
    """CSV bytes as a frame of text cells (header = row 1), refusing ragged rows and non-UTF-8 bytes.

    Parsed with the standard ``csv`` module; bytes that are not UTF-8 are kept as surrogates
    until the row and cell that hold them are known, then refused with both named.
    """
    sep = _separator(data)
    try:
        data.decode("utf-8")
        not_utf8 = False
    except UnicodeDecodeError:
        not_utf8 = True
    lines = list(io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors="surrogateescape", newline=""))
    reader = csv.reader(lines, delimiter=sep)
    rows: list[list[str]] = []
    last_from = 0  # the line the last record starts on (0-based)
    try:
        while True:
            before = reader.line_num
            try:
                record = next(reader)
            except StopIteration:
                break
            rows.append(record)
            last_from = before
    except csv.Error as exc:
        raise LedgerFileError(file, [(len(rows) + 1, "", "", f"not a readable CSV row: {exc}")]) from None
    if not rows:
        raise LedgerFileError(file, [(1, "", "", "the file is empty: a ledger needs a header row")])
    header = [h.strip() for h in rows[0]]
    _refuse_open_quote(lines[last_from:], sep, file, len(rows), header, rows[-1])
    problems: list[tuple[int, str, str, str]] = []
    if not_utf8:
        for r, record in enumerate(rows, start=1):
            for c, cell in enumerate(record):
                bad = _BAD_BYTES.search(cell)
                if bad:
                    shown_bytes = " ".join(f"0x{ord(ch) - 0xDC00:02X}" for ch in bad.group(0)[:4])
                    column = header[c] if c < len(header) else f"cell {c + 1}"
                    problems.append((r, column, cell.encode("utf-8", "replace").decode("utf-8", "replace"),
                                     f"bytes {shown_bytes} are not UTF-8: save the file as \"CSV UTF-8\""))
            if len(problems) >= 50:
                break
    width = len(header)
    for r, record in enumerate(rows[1:], start=2):
        extra = record[width:]
        if any(cell.strip() for cell in extra):
            first_extra = next(i for i, cell in enumerate(extra) if cell.strip())
            problems.append((r, f"cell {width + first_extra + 1}", extra[first_extra],
                             f"the row has {len(record)} cells but the header has {width}: "
                             "a value with a comma or semicolon must be quoted"))
    if problems:
        raise LedgerFileError(file, problems)
    body = [(record + [""] * width)[:width] for record in rows[1:]]
    # a header cell left empty over an empty column (a spreadsheet's trailing separator) carries nothing
    keep = [i for i, h in enumerate(header) if h or any(r[i].strip() for r in body)]
    if len(keep) < width:
        header = [header[i] for i in keep]
        body = [[r[i] for i in keep] for r in body]
    return pd.DataFrame(body, columns=header, dtype=object)


def _refuse_open_quote(last: list[str], sep: str, file: str, row: int, header: list[str], record: list[str]) -> None:
    """A file that ends inside a quoted cell (a ``"`` never closed) was cut short, or its quoting is
    broken: the lenient reader would take the rest of the file as that cell. Refused, row named."""
    try:
        for _ in csv.reader(last, delimiter=sep, strict=True):
            pass
    except csv.Error as exc:
        if "unexpected end of data" not in str(exc):
            return  # other odd quoting (text after a closing quote) is read as a spreadsheet reads it
        col = len(record) - 1
        column = header[col] if 0 <= col < len(header) else f"cell {col + 1}"
        raise LedgerFileError(file, [(row, column, _shown(record[col]) if record else "",
                                      'the file ends inside a quoted cell (a " is never closed): '
                                      "it may be cut short; check the file is complete")]) from None


_DIMENSION = re.compile(rb"<(?:\w+:)?dimension\s+ref=\"[A-Z]+\d+:[A-Z]+(\d+)\"")
_ROW_TAG = re.compile(rb"<(?:\w+:)?row[\s>]")


def _first_sheet(book: zipfile.ZipFile) -> str:
    """The part name of the workbook's first sheet (workbook.xml order, through its relationships)."""
    wb = book.read("xl/workbook.xml")
    first = re.search(rb"<(?:\w+:)?sheet\b[^>]*?\br:id=\"([^\"]+)\"", wb) or re.search(rb"<(?:\w+:)?sheet\b[^>]*?\bid=\"([^\"]+)\"", wb)
    rels = book.read("xl/_rels/workbook.xml.rels")
    if first:
        rid = re.escape(first.group(1))
        for rel in re.finditer(rb"<(?:\w+:)?Relationship\b[^>]*>", rels):
            if re.search(rb'\bId="' + rid + rb'"', rel.group(0)):
                target = re.search(rb'\bTarget="([^"]+)"', rel.group(0))
                if target:
                    t = target.group(1).decode()
                    return t.lstrip("/") if t.startswith("/") else "xl/" + t
    return "xl/worksheets/sheet1.xml"


def _count_tag(data: bytes, tag: bytes) -> int:
    return data.count(tag + b" ") + data.count(tag + b">")


def _xlsx_rows_over(data: bytes, file: str, max_rows: int) -> None:
    """Refuse a workbook whose first sheet has more than ``max_rows`` data rows, without openpyxl.

    The sheet's ``<dimension ref="A1:J1000001"/>`` says it at once; it is optional and written by
    the tool that saved the file, so the ``<row>`` elements are then counted in the decompressed
    stream, chunk by chunk, stopping at the cap (memory stays flat whatever the file expands to).
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as book:
            part = _first_sheet(book)
            with book.open(part) as sheet:
                head = sheet.read(65536)
                dim = _DIMENSION.search(head)
                if dim and int(dim.group(1)) - 1 > max_rows:
                    raise _too_many_rows(file, max_rows, f"{int(dim.group(1)) - 1:,}")
                spelt = _ROW_TAG.search(head)  # "<row" or "<x:row": bytes.count is then exact and fast
                tag = spelt.group(0)[:-1] if spelt else b"<row"
                count, tail, chunk = 0, b"", head
                while chunk:
                    window = tail + chunk
                    count += _count_tag(window, tag) - _count_tag(tail, tag)
                    if count - 1 > max_rows:
                        raise _too_many_rows(file, max_rows, f"more than {max_rows:,}")
                    tail = window[-(len(tag) + 1) :]
                    chunk = sheet.read(1 << 20)
    except (zipfile.BadZipFile, KeyError) as exc:
        raise LedgerFileError(file, [(0, "", "", f"not an Excel .xlsx workbook ({type(exc).__name__})")]) from None


def _read_xlsx(data: bytes, file: str) -> pd.DataFrame:
    try:
        frame = pd.read_excel(io.BytesIO(data), dtype=object, sheet_name=0)
    except (ValueError, KeyError, OSError, zipfile.BadZipFile) as exc:
        raise LedgerFileError(file, [(0, "", "", f"not a readable Excel workbook ({type(exc).__name__})")]) from None
    return frame


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
    if not m or not 1 <= int(m.group(2)) <= 12 or not MIN_YEAR <= int(m.group(1)) <= MAX_YEAR:
        return None
    return date(int(m.group(1)), int(m.group(2)), 1)


def _validate_row(
    row: int, cell: dict[str, str | None], source_name: str, currency: str | None
) -> tuple[records.OutcomeRecord | None, list[tuple[int, str, str, str]]]:
    """One data row: its record, or the list of what is wrong with it."""
    bad: list[tuple[int, str, str, str]] = []

    def fail(col: str, reason: str) -> None:
        bad.append((row, col, _shown(cell.get(col) or ""), reason))

    for col in COLUMNS:
        text = cell.get(col)
        if text is None:
            continue
        if len(text) > MAX_TEXT:
            fail(col, f"{len(text):,} characters: a cell holds at most {MAX_TEXT:,}")
            cell[col] = None
        elif _CONTROL.search(text):
            fail(col, "holds a control character (such as NUL): remove it")
            cell[col] = None
    if bad:
        return None, bad

    app_id = cell["app_id"]
    if not app_id:
        fail("app_id", "empty: every row needs the app's id")

    month = _month(cell["month"])
    if not cell["month"]:
        fail("month", "empty: expected a month as YYYY-MM")
    elif month is None:
        m = _MONTH.match(cell["month"])
        if m and 1 <= int(m.group(2)) <= 12:
            fail("month", f"year {m.group(1)} is out of range: expected a year from {MIN_YEAR} to {MAX_YEAR}")
        else:
            fail("month", "not a month: expected YYYY-MM, e.g. 2026-01")

    kind = cell["kind"]
    if kind not in records.OUTCOME_KINDS:
        fail("kind", f"expected {' or '.join(records.OUTCOME_KINDS)}")

    amount: Decimal | None = None
    if not cell["amount"]:
        fail("amount", "empty: expected a decimal amount such as 1250.00")
    else:
        amount = _parse_money(cell["amount"], "amount", fail)

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

    low = _parse_money(cell["low"], "low", fail) if cell["low"] else None
    high = _parse_money(cell["high"], "high", fail) if cell["high"] else None
    if amount is not None:
        if low is not None and low > amount:
            fail("low", f"low bound is above the amount {amount}")
        if high is not None and high < amount:
            fail("high", f"high bound is below the amount {amount}")

    assumption = cell.get("assumption")
    if assumption is not None:
        if evidence != "estimate":
            fail("assumption", f"an assumption stands behind estimate rows only; this row's evidence is {evidence}")
        elif len(assumption) > MAX_ASSUMPTION:
            fail("assumption", f"{len(assumption)} characters: an assumption's name has at most {MAX_ASSUMPTION}")

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
        assumption=assumption,
    )
    return record, bad


def _parse_money(text: str | None, col: str, fail: Any) -> Decimal | None:
    parsed = _parse_decimal(text or "")
    if parsed is None:
        fail(col, "not a decimal number (use digits and a dot, no thousands separators or currency symbols)")
        return None
    exponent = parsed.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > MAX_DECIMALS:
        fail(col, f"more than {MAX_DECIMALS} decimal places")
        return None
    if abs(parsed) > MAX_AMOUNT:
        fail(col, f"out of range: an amount is at most {MAX_AMOUNT:,} in absolute value (what the database stores)")
        return None
    return parsed


def _errors_frame(errors: Sequence[tuple[int, str, str, str]]) -> pd.DataFrame:
    frame = pd.DataFrame(list(errors), columns=ERROR_COLUMNS)
    return frame.astype({"row": "int64", "column": object, "value": object, "reason": object})


def describe_errors(errors: pd.DataFrame, file: str | None = None, limit: int | None = None) -> str:
    """The errors as lines a person reads: ``file F, row R, column 'c' (value 'v'): reason``."""
    lines = []
    shown = errors if limit is None else errors.head(limit)
    for row, column, value, reason in shown.itertuples(index=False, name=None):
        where = [f"file {file}"] if file else []
        if row:  # row 0: the file as a whole (too big, not a workbook)
            where.append(f"row {row}")
        if column:
            where.append(f"column {str(column)!r}")
        quoted = f" (value {str(value)!r})" if value else ""
        lines.append(f"{', '.join(where)}{quoted}: {reason}".removeprefix(": "))
    if limit is not None and len(errors) > limit:
        lines.append(f"... and {len(errors) - limit} more")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- inventory


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

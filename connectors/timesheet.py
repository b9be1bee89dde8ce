"""Timesheet file: maintenance hours per app and week from a CSV or Excel sheet, person-free.

For teams that log time somewhere else: one row per team, app, week and kind of work::

    team,app,week,hours,kind
    search,churn-predictor,2026-01-05,12.5,klo
    risk,fraud-scorer,2026-W02,4,incident

Columns (names case-insensitive, extra columns ignored — the format carries no people):

- ``app`` (or ``app_id``): a configured app's id or name (any non-empty id when portfolio.toml
  declares no apps); required.
- ``week``: the ISO date of the week's Monday (``2026-01-05``, or a date cell in Excel) or an ISO
  week ``2026-W02``; required.
- ``hours``: a number >= 0; required.
- ``kind``: ``klo`` / ``incident`` / ``improvement``; optional column (absent = klo).
- ``team``: optional, shown in the record's title.

Parameters (type ``timesheet``): ``path`` (a ``.csv``, ``.xlsx`` or a glob of them, relative to
portfolio.toml), ``sheet`` (Excel sheet name, default the first), ``delimiter`` (CSV, default
``,``; ``;`` is detected when the header has no comma).

Every bad row of every file is listed (file, row, column, reason) in one error and nothing is
written. Rows with the same app, week and kind are summed (two teams on one app). Each record:
day = the week's Monday, ref = ``<ISO week>:<kind>`` (``2026-W02:klo``). The file is the truth for
the weeks it holds: rows of this source in those weeks that the file no longer has are deleted;
other weeks are left alone.
"""

from __future__ import annotations

import csv
import glob
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import Field

from connectors import _mapping as m
from connectors.base import InputFileError, Replace
from connectors.settings import ConnectorParams
from portfolio.config import ConnectorConfig
from portfolio.records import MAINTENANCE_KINDS, MaintenanceRecord

NAME = "timesheet"
#: the record types this connector yields (checked by the standard connector suite)
RECORDS: tuple[type, ...] = (MaintenanceRecord,)


class Params(ConnectorParams):
    """Settings of the timesheet connector."""

    path: str = Field(description="a .csv or .xlsx file, or a glob of them, relative to portfolio.toml")
    sheet: str | None = Field(None, description="Excel sheet name; default the first sheet")
    delimiter: str | None = Field(None, min_length=1, max_length=1, description="CSV delimiter; default , (; detected)")


EXCEL_SUFFIXES = (".xlsx", ".xlsm")
_ISO_WEEK = re.compile(r"^(\d{4})-?W(\d{1,2})$", re.I)
MAX_LISTED = 200  # a file of garbage should not produce a megabyte of error text


@dataclass(frozen=True)
class _Line:
    file: str
    row: int
    app: str
    monday: date
    hours: float
    kind: str
    team: str


def _files(config: ConnectorConfig) -> list[Path]:
    raw = str(config.get("path") or "")
    path = config.path("path")
    if any(ch in raw for ch in "*?["):
        found = sorted(Path(p) for p in glob.glob(str(path), recursive=True))
        if not found:
            raise InputFileError(config.name or NAME, str(path), "no file matches this pattern")
        return found
    if not path.is_file():
        raise InputFileError(config.name or NAME, str(path), "file not found")
    return [path]


def _read_rows(config: ConnectorConfig, path: Path) -> tuple[list[str], Iterator[tuple[int, list[Any]]]]:
    """Header and ``(row number as a spreadsheet shows it, cells)`` of a CSV or Excel file."""
    name = config.name or NAME
    if path.suffix.lower() in EXCEL_SUFFIXES:
        import openpyxl

        try:
            book = openpyxl.load_workbook(path, read_only=True, data_only=True)
        except Exception as exc:  # zip / xml errors of a damaged or mislabelled file
            raise InputFileError(
                name, str(path), f"not a readable Excel file ({type(exc).__name__})"
            ) from None
        sheet_name = config.get("sheet")
        if sheet_name and sheet_name not in book.sheetnames:
            raise InputFileError(
                name, str(path), f"no sheet {sheet_name!r}; sheets: {', '.join(book.sheetnames)}"
            )
        ws = book[sheet_name] if sheet_name else book.worksheets[0]
        rows = ws.iter_rows(values_only=True)
        header = next(rows, None)
        if header is None:
            raise InputFileError(name, str(path), "the sheet is empty: expected a header row")
        return [str(h or "") for h in header], ((i, list(r)) for i, r in enumerate(rows, start=2))
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise InputFileError(
            name, str(path), "not UTF-8 text: save the timesheet as CSV UTF-8 or .xlsx"
        ) from None
    lines = text.splitlines()
    if not lines:
        raise InputFileError(name, str(path), "the file is empty: expected a header row")
    delimiter = str(config.get("delimiter") or ("," if "," in lines[0] or ";" not in lines[0] else ";"))
    reader = csv.reader(lines, delimiter=delimiter)
    header = next(reader)
    return header, ((i, r) for i, r in enumerate(reader, start=2))


def _blank(v: Any) -> bool:
    return v is None or (isinstance(v, str) and not v.strip())


def parse_week(value: Any) -> date:
    """The Monday of a week given as a Monday's date or an ISO week; ValueError says why not."""
    day: date | None
    if isinstance(value, datetime):
        day = value.date()
    elif isinstance(value, date):
        day = value
    else:
        text = str(value).strip()
        iso = _ISO_WEEK.match(text)
        if iso:
            year, week = int(iso.group(1)), int(iso.group(2))
            try:
                return date.fromisocalendar(year, week, 1)
            except ValueError:
                raise ValueError(f"{text!r} is not a week of {year}") from None
        day = None
        if re.match(r"^\d{4}-\d{2}-\d{2}( 00:00(:00)?)?$", text):
            try:
                day = date.fromisoformat(text[:10])
            except ValueError:
                day = None
        if day is None:
            raise ValueError(f"{text!r} is neither a date YYYY-MM-DD nor an ISO week YYYY-Www")
    if day.weekday() != 0:
        monday = day - timedelta(days=day.weekday())
        raise ValueError(
            f"{day.isoformat()} is a {day:%A}, not a Monday (that week starts on {monday.isoformat()})"
        )
    return day


def _parse_hours(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"not a number ({value!r})")
    if isinstance(value, int | float):
        hours = float(value)
    else:
        try:
            hours = float(str(value).strip())
        except ValueError:
            raise ValueError(f"not a number ({str(value).strip()!r})") from None
    if not math.isfinite(hours) or hours < 0:
        raise ValueError(f"must be a number >= 0 (got {value!r})")
    return hours


def pull(config: ConnectorConfig, since: datetime | None) -> Iterator[Any]:
    """Reads every file whole (``since`` is not used: a timesheet is small and restated freely)."""
    name = config.name or NAME
    resolver = m.AppResolver(config)
    lines: list[_Line] = []
    problems: list[str] = []
    for path in _files(config):
        header, rows = _read_rows(config, path)
        cols = {h.strip().lower(): i for i, h in enumerate(header) if h and h.strip()}
        app_col = "app" if "app" in cols else "app_id"
        missing = [c for c in (app_col, "week", "hours") if c not in cols]
        if missing:
            problems.append(
                f"file {path}: missing column(s) {', '.join(missing)}; the header has {', '.join(cols) or 'nothing'}"
                " (expected team, app, week, hours, kind)"
            )
            continue
        for row_no, cells in rows:
            if all(_blank(c) for c in cells):
                continue

            def cell(col: str, cells: list[Any] = cells, cols: dict[str, int] = cols) -> Any:
                i = cols.get(col)
                return cells[i] if i is not None and i < len(cells) else None

            bad: list[str] = []
            raw_app = cell(app_col)
            app: str | None = None
            if _blank(raw_app):
                bad.append(f"column {app_col!r}: empty")
            else:
                app = resolver.resolve(str(raw_app)) if resolver.restricted else str(raw_app).strip()
                if app is None:
                    known = ", ".join(sorted(a.id for a in config.apps))
                    bad.append(
                        f"column {app_col!r}: unknown app {str(raw_app).strip()!r} (configured: {known})"
                    )
            monday: date | None = None
            if _blank(cell("week")):
                bad.append("column 'week': empty")
            else:
                try:
                    monday = parse_week(cell("week"))
                except ValueError as exc:
                    bad.append(f"column 'week': {exc}")
            hours: float | None = None
            if _blank(cell("hours")):
                bad.append("column 'hours': empty")
            else:
                try:
                    hours = _parse_hours(cell("hours"))
                except ValueError as exc:
                    bad.append(f"column 'hours': {exc}")
            kind = "klo"
            if "kind" in cols:
                raw_kind = cell("kind")
                kind = "" if _blank(raw_kind) else str(raw_kind).strip().lower()
                if kind not in MAINTENANCE_KINDS:
                    bad.append(f"column 'kind': {raw_kind!r} is not one of {', '.join(MAINTENANCE_KINDS)}")
            if bad:
                problems.extend(f"file {path.name}, row {row_no}, {b}" for b in bad)
                continue
            assert app is not None and monday is not None and hours is not None
            team = "" if _blank(cell("team")) else str(cell("team")).strip()
            lines.append(_Line(path.name, row_no, app, monday, hours, kind, team))
    if problems:
        shown = problems[:MAX_LISTED]
        more = f"\n  ... and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
        files = ", ".join(str(p) for p in _files(config))
        raise InputFileError(
            name,
            files,
            f"{len(problems)} problem(s), nothing was written:\n  " + "\n  ".join(shown) + more,
        )

    totals: dict[tuple[str, date, str], float] = {}
    teams: dict[tuple[str, date, str], set[str]] = {}
    for line in lines:
        key = (line.app, line.monday, line.kind)
        totals[key] = totals.get(key, 0.0) + line.hours
        teams.setdefault(key, set()).add(line.team)
    for monday in sorted({line.monday for line in lines}):
        yield Replace(MaintenanceRecord, monday, monday + timedelta(days=6))
    for (app, monday, kind), hours in sorted(totals.items()):
        iso_year, iso_week, _ = monday.isocalendar()
        week = f"{iso_year}-W{iso_week:02d}"
        team_names = ", ".join(sorted(t for t in teams[(app, monday, kind)] if t))
        yield MaintenanceRecord(
            source="",
            app_id=app,
            day=monday,
            ref=f"{week}:{kind}",
            hours=round(hours, 4),
            kind=kind,
            incidents=0,
            ttr_hours=None,
            url=None,
            title=f"timesheet {week} {kind}" + (f" ({team_names})" if team_names else ""),
        )

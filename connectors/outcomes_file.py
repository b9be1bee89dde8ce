"""Realised value from a CSV or Excel outcomes ledger (one row per app, month and value kind).

Config::

    [connectors.value-ledger]
    type = "outcomes_file"
    path = "value/ledger.csv"      # a file, a folder (every .csv/.xlsx in it) or a glob
    currency = "USD"               # the reporting currency; rows in any other are refused
    max_bytes = 20_000_000         # a file over this size is refused before it is read (the default)
    max_rows = 200_000             # ... and one over this many data rows (the default)

All-or-nothing: any bad row in any file fails the sync with every bad row listed (file, row,
column, reason) and nothing is written. A row naming an app that is in no inventory (config
``[[apps]]``, an inventory connector's apps) is a bad row, with a did-you-mean. The file is the truth for the months it holds: for each
month present, this source's rows that the file no longer has are deleted (a :class:`Replace`
per month), so a corrected ledger replaces the old figures.
"""

from __future__ import annotations

import glob
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import Field

from connectors.base import ConnectorConfig, InputFileError, Replace
from connectors.settings import ConnectorParams
from portfolio import ledger, records

NAME = "outcomes_file"
#: the record types this connector yields (checked by the standard connector suite)
RECORDS: tuple[type, ...] = (records.OutcomeRecord,)


class Params(ConnectorParams):
    """Settings of the outcomes ledger file connector."""

    path: str = Field(description="ledger file (.csv/.xlsx), folder or glob, relative to portfolio.toml")
    currency: str = Field(ledger.DEFAULT_CURRENCY, description="currency of amounts in rows that give none")


SUFFIXES = (".csv", ".xlsx", ".xlsm")
MAX_LISTED = 200  # error lines in the message; the SyncRun keeps 4,000 characters anyway


def files(config: ConnectorConfig) -> list[Path]:
    """The ledger files named by ``path``: a file, a folder or a glob (sorted)."""
    base = config.path("path")
    text = str(base)
    if any(ch in text for ch in "*?["):
        found = [Path(p) for p in glob.glob(text, recursive=True)]
    elif base.is_dir():
        found = [p for p in base.rglob("*")]
    elif base.exists():
        return [base]
    else:
        raise InputFileError(config.name or NAME, str(config.get("path")), "no such file or folder")
    matched = sorted(p for p in found if p.is_file() and p.suffix.lower() in SUFFIXES and not p.name.startswith("~$"))
    if not matched:
        raise InputFileError(config.name or NAME, str(config.get("path")), f"no ledger file ({', '.join(SUFFIXES)}) matches")
    return matched


def pull(config: ConnectorConfig, since: datetime | None) -> Iterator[Any]:
    """Yield every row of the ledger as an OutcomeRecord, then one Replace per month present.

    ``since`` is ignored: a ledger is small and restated in place, so it is read whole every time.
    """
    from portfolio import sync  # imported here: portfolio.sync loads the connectors

    currency = str(config.get("currency", ledger.DEFAULT_CURRENCY)).upper()
    known = sync.inventory_in_progress()
    max_bytes = int(config.get("max_bytes", ledger.DEFAULT_MAX_BYTES))
    max_rows = int(config.get("max_rows", ledger.DEFAULT_MAX_ROWS))
    paths = files(config)
    problems: list[str] = []
    first_seen: dict[tuple[str, date, str], str] = {}
    out: list[records.OutcomeRecord] = []
    for path in paths:
        try:
            frame = ledger.read_ledger(path, max_bytes=max_bytes, max_rows=max_rows)
        except ledger.LedgerFileError as exc:  # too big, not UTF-8, ragged: named file, row and column
            problems.extend(ledger.describe_errors(exc.errors, file=path.name).splitlines())
            continue
        except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
            problems.append(f"file {path.name}: cannot read it as a ledger ({type(exc).__name__}: {str(exc)[:200]})")
            continue
        recs, errors = ledger.validate_ledger(frame, source_name="", currency=currency)
        if known is not None:  # an app of no inventory: refused with a did-you-mean, never a new app
            errors = pd.concat([errors, ledger.unknown_app_errors(frame, known)], ignore_index=True)
            errors = errors.sort_values(["row", "column"], kind="stable", ignore_index=True)
        if not errors.empty:
            problems.extend(ledger.describe_errors(errors, file=path.name).splitlines())
            continue
        for rec, row in zip(recs, frame.index, strict=True):
            key = (rec.app_id, rec.month, rec.kind)
            where = f"file {path.name}, row {int(row) + 2}"
            if key in first_seen:
                problems.append(
                    f"{where}, column 'app_id,month,kind': duplicate of {first_seen[key]} "
                    f"({rec.app_id}, {rec.month:%Y-%m}, {rec.kind})"
                )
            else:
                first_seen[key] = where
            out.append(rec)
    if problems:
        listed = problems[:MAX_LISTED]
        if len(problems) > MAX_LISTED:
            listed.append(f"... and {len(problems) - MAX_LISTED} more")
        raise InputFileError(
            config.name or NAME,
            ", ".join(p.name for p in paths),
            f"{len(problems)} problem(s); nothing was written:\n" + "\n".join(listed),
        )
    yield from out
    for month in sorted({r.month for r in out}):
        yield Replace(records.OutcomeRecord, month, month, field="month")

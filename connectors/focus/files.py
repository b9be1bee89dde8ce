"""FOCUS export files: listing, reading with DuckDB, one export per billing period, the first bad line (file, row, column)."""

from __future__ import annotations

import glob
import hashlib
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from connectors.base import ConnectorError, InputFileError, Notice
from connectors.focus.aggregate import finish, token_usage
from connectors.focus.settings import _FILE_COLUMN, _SUFFIXES_CSV, _SUFFIXES_PARQUET, Settings
from connectors.focus.sql import DuckDialect, lit, resolve_columns, stage1_sql
from portfolio.config import ConnectorConfig
from portfolio.errors import redact


def list_files(config: ConnectorConfig) -> list[Path]:
    raw = str(config.get("path"))
    base = config.path("path")
    if any(ch in raw for ch in "*?["):
        matches = [Path(p) for p in glob.glob(str(base), recursive=True)]
        files = sorted(p for p in matches if p.is_file())
    elif base.is_dir():
        files = sorted(p for p in base.rglob("*") if p.is_file() and _kind(p))
    elif base.is_file():
        files = [base]
    else:
        raise ConnectorError(config.name, f"no such file or folder: {base}")
    files = [p for p in files if _kind(p)]
    if not files:
        raise ConnectorError(config.name, f"no FOCUS files (.csv, .csv.gz, .parquet) match {raw!r}")
    return files


def _kind(p: Path) -> str | None:
    n = p.name.lower()
    if n.endswith(_SUFFIXES_PARQUET):
        return "parquet"
    if n.endswith(_SUFFIXES_CSV) or (n.endswith(".gz") and ".csv" in n):
        return "csv"
    return None


def _list_sql(files: Sequence[Path]) -> str:
    return "[" + ", ".join(lit(str(f)) for f in files) + "]"


def _reader(files: Sequence[Path], kind: str, with_file: bool = False) -> str:
    file_col = f", filename = {lit(_FILE_COLUMN)}" if with_file else ""
    if kind == "parquet":
        return f"read_parquet({_list_sql(files)}, union_by_name = true, hive_partitioning = false{file_col})"
    return (
        f"read_csv({_list_sql(files)}, header = true, all_varchar = true, union_by_name = true, "
        f"nullstr = ['NULL', 'null', ''], hive_partitioning = false{file_col})"
    )


@contextmanager
def _duck(config: ConnectorConfig, threads: int | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB with the connector's budget; spills go to a private temp folder
    (removed afterwards) unless ``duckdb_temp_directory`` names one."""
    own = config.get("duckdb_temp_directory")
    tmp = str(own) if own else tempfile.mkdtemp(prefix="mlportfolio-duckdb-")
    con = duckdb.connect(":memory:")
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET enable_progress_bar = false")
        con.execute("SET preserve_insertion_order = true")  # the default; aggregate._rounded relies on it
        con.execute(f"SET memory_limit = {lit(str(config.get('duckdb_memory_limit', '512MB')))}")
        con.execute(f"SET temp_directory = {lit(tmp)}")
        if threads or config.get("duckdb_threads"):
            con.execute(f"SET threads = {int(threads or config.get('duckdb_threads'))}")
        yield con
    finally:
        con.close()
        if not own:
            shutil.rmtree(tmp, ignore_errors=True)


def _describe(con: duckdb.DuckDBPyConnection, source: str) -> dict[str, str]:
    return {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return redact(text[0] if text else type(exc).__name__)[:300]


def _check_columns(name: str, con: duckdb.DuckDBPyConnection, files: Sequence[Path], s: Settings) -> None:
    """Every file must have the columns the connector uses; an unreadable file is named."""
    for f in files:
        kind = _kind(f) or "csv"
        try:
            described = _describe(con, _reader([f], kind))
        except duckdb.Error as exc:
            raise InputFileError(name, str(f), f"cannot be read as {kind.upper()}: {_first_line(exc)}") from None
        cols = resolve_columns(list(described))
        for col in s.required():
            if col not in cols:
                raise InputFileError(name, str(f), f"missing FOCUS column (needed for {_why(col, s)})", column=col)


def _why(col: str, s: Settings) -> str:
    return {
        s.cost_column: "the cost_column setting",
        "ChargePeriodStart": "the day of each charge",
        "BillingCurrency": "the currency",
        "Tags": "app_tag_keys",
        "ResourceId": "resource_patterns",
    }.get(col, "mapping")


def diagnose(name: str, config: ConnectorConfig, files: Sequence[Path], s: Settings, error: BaseException | None) -> InputFileError:
    """Find the first bad line (file, row, column) with TRY_CAST queries, one file at a time."""
    with _duck(config, threads=1) as con:  # one thread: row_number() follows the file's order
        return _first_bad_line(con, name, files, s, error)


def _first_bad_line(
    con: duckdb.DuckDBPyConnection, name: str, files: Sequence[Path], s: Settings, error: BaseException | None
) -> InputFileError:
    for f in files:
        kind = _kind(f) or "csv"
        src = _reader([f], kind)
        try:
            types = _describe(con, src)
            cols = resolve_columns(list(types))
            checks = _value_checks(cols, types, s)
            case = " ".join(f"WHEN {cond} THEN {lit(col + '|' + msg)}" for col, cond, msg in checks)
            raw = " , ".join(f"CAST({_q(cols[col])} AS VARCHAR)" for col, _, _ in checks)
            row = con.execute(
                f"""SELECT rn, problem, raw FROM (
                      SELECT row_number() OVER () AS rn, CASE {case} END AS problem,
                             [{raw}] AS raw, *
                      FROM {src}) AS t
                    WHERE problem IS NOT NULL ORDER BY rn LIMIT 1"""
            ).fetchone()
        except duckdb.Error as exc:
            return InputFileError(name, str(f), f"cannot be read: {_first_line(exc)}")
        if row:
            rn, problem, raw_values = row
            col, msg = problem.split("|", 1)
            value = raw_values[[c for c, _, _ in checks].index(col)]
            where: int | str = f"{rn} (line {rn + 1})" if kind == "csv" else rn
            shown = "" if value is None else f" {str(value)[:80]!r}"
            return InputFileError(name, str(f), f"{msg}{shown}", row=where, column=col)
    reason = _first_line(error) if error else "unexpected content"
    return InputFileError(name, ", ".join(str(f) for f in files[:3]), f"cannot be aggregated: {reason}")


def _q(ident: str) -> str:
    return '"' + ident.replace('"', '""') + '"'


#: dates a FOCUS export may hold: year first, four digits (ISO 8601, and the ``2024/09/18`` some
#: tools write). DuckDB also reads ``4/1/25`` -- as the year 4 -- so anything else is refused.
_ISO_DATE = r"^\s*[0-9]{4}[-/][0-9]{1,2}[-/][0-9]{1,2}([T ]|$)"
NOT_ISO = "not an ISO 8601 date/time (expected YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ)"
OUT_OF_RANGE = "date before 2000 or more than a year ahead"
#: the window of plausible charge and billing dates (a mis-read date lands outside it)
_DAY_RANGE = "DATE '2000-01-01' AND CAST(current_date + INTERVAL 1 YEAR AS DATE)"


def _not_iso(expr: str) -> str:
    return f"NOT regexp_matches({expr}, {lit(_ISO_DATE)})"


def _out_of_range(expr: str) -> str:
    return f"NOT (CAST(TRY_CAST({expr} AS TIMESTAMPTZ) AS DATE) BETWEEN {_DAY_RANGE})"


#: stage1 groups that cannot be booked: a missing or implausible day, currency or billing period
_BAD_GROUPS = (
    "SELECT COUNT(*) FROM stage1 WHERE day IS NULL OR currency IS NULL OR bp_start IS NULL "
    f"OR NOT (day BETWEEN {_DAY_RANGE}) OR NOT (bp_start BETWEEN {_DAY_RANGE})"
)


def _value_checks(cols: dict[str, str], types: dict[str, str], s: Settings) -> list[tuple[str, str, str]]:
    def v(canon: str) -> str:
        return f"CAST({_q(cols[canon])} AS VARCHAR)"

    checks = [
        (s.cost_column, f"{v(s.cost_column)} IS NOT NULL AND TRY_CAST({v(s.cost_column)} AS DECIMAL(38,12)) IS NULL", "not a number"),
        ("ChargePeriodStart", f"{v('ChargePeriodStart')} IS NULL", "empty charge period start"),
        ("ChargePeriodStart", f"TRY_CAST({v('ChargePeriodStart')} AS TIMESTAMPTZ) IS NULL", "not a date/time"),
        ("ChargePeriodStart", _not_iso(v("ChargePeriodStart")), NOT_ISO),
        ("ChargePeriodStart", _out_of_range(v("ChargePeriodStart")), OUT_OF_RANGE),
    ]
    if not s.default_currency:
        checks.append(("BillingCurrency", f"NULLIF(TRIM({v('BillingCurrency')}), '') IS NULL", "empty currency"))
    if "BillingPeriodStart" in cols:
        checks += [
            ("BillingPeriodStart", f"{v('BillingPeriodStart')} IS NULL", "empty billing period start"),
            ("BillingPeriodStart", f"TRY_CAST({v('BillingPeriodStart')} AS TIMESTAMPTZ) IS NULL", "not a date/time"),
            ("BillingPeriodStart", _not_iso(v("BillingPeriodStart")), NOT_ISO),
            ("BillingPeriodStart", _out_of_range(v("BillingPeriodStart")), OUT_OF_RANGE),
        ]
    if s.tag_keys and "Tags" in cols and not types[cols["Tags"]].upper().startswith(("MAP", "STRUCT")):
        checks.append(("Tags", f"{v('Tags')} IS NOT NULL AND NOT coalesce(json_valid({v('Tags')}), false)", "not a JSON object"))
    return [(c, cond, m) for c, cond, m in checks if c in cols]


def inputs_print(files: Sequence[Path], s: Settings) -> str:
    """A fingerprint of everything :func:`pull_files` computes its output from: each file's path
    and content (SHA-256; its modification time too where several export folders are read, since
    the newest folder wins), the settings, and the connector's own code. Equal prints give equal
    pulls, so the sync skips an unchanged export without reading it (``sync --full`` never does)."""
    from connectors import base
    from portfolio import records

    h = hashlib.sha256()
    # the connector's modules, and the record shapes and markers they yield
    for code in [*sorted(Path(__file__).parent.glob("*.py")), Path(base.__file__), Path(records.__file__)]:
        h.update(code.read_bytes())
    h.update(repr(s).encode())
    newest_wins = len({f.parent for f in files}) > 1
    for f in files:
        st = f.stat()
        h.update(f"\0{f.resolve()}\0{st.st_size}\0{st.st_mtime_ns if newest_wins else ''}\0".encode())
        with f.open("rb") as fh:
            h.update(hashlib.file_digest(fh, "sha256").digest())
    return "files:" + h.hexdigest()


def pull_files(config: ConnectorConfig, s: Settings) -> Iterator[Any]:
    name = config.name
    files = list_files(config)
    from portfolio.sync import same_inputs  # the running sync (a module that imports connectors)

    if same_inputs(lambda: inputs_print(files, s)):
        return
    with _duck(config) as con:
        _check_columns(name, con, files, s)
        by_kind: dict[str, list[Path]] = {}
        for f in files:
            by_kind.setdefault(_kind(f) or "csv", []).append(f)
        # several export folders may hold the same billing period twice (Azure writes one folder
        # per export run, AWS one per report version): group by folder, to keep only one
        folders = len({f.parent for f in files}) > 1 and s.duplicate_exports != "sum"
        parts = [f"SELECT * FROM {_reader(fs, kind, folders)}" for kind, fs in sorted(by_kind.items())]
        source = "(" + " UNION ALL BY NAME ".join(parts) + ") AS src"
        types = _describe(con, source)
        cols = resolve_columns([t for t in types if t != _FILE_COLUMN])
        col_types = {canon: types[actual] for canon, actual in cols.items()}
        extra = None
        if folders:
            account = f"NULLIF(TRIM(CAST({_q(cols['BillingAccountId'])} AS VARCHAR)), '')" if "BillingAccountId" in cols else "''"
            extra = {"src": f"parse_dirpath({_q(_FILE_COLUMN)})", "account": f"coalesce({account}, '')"}
        sql = stage1_sql(source, cols, col_types, s, DuckDialect(), extra)
        try:
            con.execute(f"CREATE TEMP TABLE stage1 AS {sql}")
            bad = con.execute(_BAD_GROUPS).fetchone()
        except duckdb.Error as exc:
            raise diagnose(name, config, files, s, exc) from None
        if bad and bad[0]:
            raise diagnose(name, config, files, s, None)
        has_tokens = "ConsumedQuantity" in cols and "ConsumedUnit" in cols
        if has_tokens:
            try:
                con.execute(f"CREATE TEMP TABLE tokens1 AS {stage1_sql(source, cols, col_types, s, DuckDialect(), extra, tokens=True)}")
            except duckdb.Error as exc:
                raise InputFileError(name, ", ".join(str(f) for f in files[:3]), f"token lines cannot be read: {_first_line(exc)}") from None
        if folders:
            yield from _one_export_per_period(con, name, files, s, tokens=has_tokens)
        span = con.execute("SELECT min(day), max(day) FROM stage1").fetchone()
        detail = f"{s.cost_column} of {len(files)} file(s): " + ", ".join(f.name for f in files[:5])
        if len(files) > 5:
            detail += ", ..."
        yield from finish(con, s, name, detail)
        if has_tokens and span and span[0] is not None:
            yield from token_usage(con, s, name, span[0], span[1])


def _one_export_per_period(
    con: duckdb.DuckDBPyConnection, name: str, files: Sequence[Path], s: Settings, *, tokens: bool = False
) -> Iterator[Notice]:
    """Where one billing period of one account comes from several export folders, keep the folder
    written last (its newest file) and drop the others from ``stage1``, saying so; or refuse
    (``duplicate_exports = "error"``). Files of one folder are parts of one export and add up."""
    dupes = con.execute(
        """SELECT strftime(bp_start, '%Y-%m') AS bp, account, list(DISTINCT src ORDER BY src)
           FROM stage1 GROUP BY ALL HAVING count(DISTINCT src) > 1 ORDER BY bp, account"""
    ).fetchall()
    if not dupes:
        return
    written: dict[str, float] = {}
    for f in files:
        written[str(f.parent)] = max(written.get(str(f.parent), 0.0), f.stat().st_mtime)
    for bp, account, folders in dupes:
        of = f"billing period {bp}" + (f" of account {account}" if account else "")
        if s.duplicate_exports == "error":
            raise ConnectorError(
                name,
                f"{of} is in {len(folders)} export folders ({', '.join(folders)}): summing them would count it "
                'twice. Point path at one export, or set duplicate_exports = "newest" (keep the folder written '
                'last) or "sum" (the folders hold different charges)',
            )
        keep = max(folders, key=lambda d: (written.get(d, 0.0), d))
        for table in ("stage1", "tokens1") if tokens else ("stage1",):
            con.execute(
                f"DELETE FROM {table} WHERE strftime(bp_start, '%Y-%m') = ? AND account = ? AND src <> ?", [bp, account, keep]
            )
        stamp = datetime.fromtimestamp(written.get(keep, 0.0), UTC).strftime("%Y-%m-%d %H:%M UTC")
        others = [d for d in folders if d != keep]
        yield Notice(
            f"{name}: {of} is in {len(folders)} export folders; used the one written last, {keep} ({stamp}), "
            f"and ignored {', '.join(others)} (duplicate_exports = \"newest\")"
        )

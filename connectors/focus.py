"""FOCUS billing exports (CSV, gzip CSV, Parquet or a warehouse table): infra cost per app and day, reconciled to the bill.

Reads FOCUS 1.0, 1.1 and 1.2 exports (FOCUS 1.3 and 0.5 column names accepted as aliases) from one file,
a folder (AWS writes ``BILLING_PERIOD=YYYY-MM/`` folders) or a glob, and aggregates them where they
sit with DuckDB: only per billing period, currency, app, day, category and service totals come out,
so memory does not grow with the file. With ``database_url`` (+ ``table``) instead of ``path``, the
same mapping runs as one aggregating SQL query inside the warehouse (PostgreSQL; the dialect hooks
are in :class:`SqlDialect`).

Mapping rules, tried in order (first that claims a line wins):

1. ``app_tag_keys``: the first listed tag key present on the line (keys matched case- and
   whitespace-insensitively; ``Tags`` a JSON string or a Parquet map). The tag VALUE is the app:
   a value listed in an app's ``cost_tags`` (or equal to an app id, case-insensitively) maps to
   that app, any other value is taken as the app id itself.
2. ``sub_accounts``: ``{ "<SubAccountId or SubAccountName>" = "<app id>" }``.
3. ``resource_patterns``: ``[{ glob = "arn:*:sagemaker:*:endpoint/churn*", app = "churn" },
   { regex = "...", app = "..." }]`` matched against ``ResourceId`` (regex: search anywhere).

Spend no rule claims goes to ``_unallocated``, never dropped.

Categories: ``ChargeCategory`` Tax -> ``other``; Usage, Purchase, Credit, Adjustment -> ``infra``
(credits and refunds are negative infra). Service: ``ServiceName``, else ``ServiceCategory``, else
``ProviderName``, else ``unknown``. Day: the UTC date of ``ChargePeriodStart``.

Commitment discounts (FOCUS 1.2 worked examples): with ``EffectiveCost`` the purchase of a
commitment (``ChargeCategory`` Purchase with a ``CommitmentDiscountId``) is amortised into the usage
lines, so the purchase line is not counted again (the spec makes its EffectiveCost 0 anyway; the
BillingTotal detail says how many such lines were set aside). Unused commitment
(``CommitmentDiscountStatus`` Unused) is cost no app claims: ``_unallocated``, service
``unused commitment``.

Reconciliation: costs are summed exactly (DECIMAL(38,12)); per billing period and currency the
rows are rounded to 6 places with cumulative rounding (each row = round(running sum) - round(running
sum before it)), so the rows add up exactly to the bill's own rounded total, which is yielded as a
:class:`~portfolio.records.BillingTotal`. Each billing period present replaces what the source held
for that period (``ReplaceKeys`` on ``billing_period``), so a re-exported (restated) period replaces
the old figures, late charges included. A charge whose day falls outside its billing period (a late
charge) keeps its own row, service suffixed ``(billed YYYY-MM)``, so it never collides with the
other period's rows. Costs in several currencies
are kept per currency; if one (app, day, category, service) has spend in two currencies the sync
fails with an error naming them rather than summing them.

The connector re-reads every file each run (files are the truth, re-syncing identical files writes
nothing); ``since`` is not used.

Settings (``[connectors.<name>]``, ``type = "focus"``):

- ``path``: file, folder (searched recursively for .csv, .csv.gz, .parquet) or glob; or
  ``database_url`` (or ``database_url_env``, the variable holding it) + ``table`` (``focus``).
- ``cost_column``: ``EffectiveCost`` (default), ``BilledCost``, ``ListCost`` or ``ContractedCost``.
- ``app_tag_keys``, ``sub_accounts``, ``resource_patterns``: the mapping rules above.
- ``default_currency``: used when a file has no ``BillingCurrency`` column (the spec's worked
  examples); without it such a file is refused.
- ``duplicate_exports``: when one billing period of one billing account is found in several export
  folders (Azure writes a folder per export run, AWS one per report version, and a folder of
  downloads may hold a month twice), ``newest`` (default) keeps the folder whose files were written
  last and says so in the run's warnings; ``error`` refuses the sync; ``sum`` adds them up (the
  folders hold different charges). Files within one folder are parts of one export and always add up.
- ``duckdb_memory_limit`` (``512MB``), ``duckdb_threads``, ``duckdb_temp_directory``: DuckDB's
  budget; beyond the limit it spills to the temp directory instead of growing.

Validation covers what is used: the cost column, ``ChargePeriodStart``, ``BillingCurrency``,
``BillingPeriodStart`` when present, ``Tags`` with tag rules and ``ResourceId`` with resource
patterns. A missing column, an unreadable file, a non-numeric cost, an unparseable date, an empty
currency or a broken ``Tags`` JSON raise :class:`InputFileError` naming the file, the row (CSV:
data row and line; Parquet: row) and the column — found by a TRY_CAST query over the files, one
at a time, only once the fast aggregation has failed.
"""

from __future__ import annotations

import glob
import logging
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import duckdb
import pandas as pd
import pyarrow as pa
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from connectors.base import ConnectorError, InputFileError, Notice, Partition, ReplaceKeys, Rows
from connectors.settings import ConnectorParams, Regex, StrList
from portfolio import records
from portfolio.config import ConnectorConfig
from portfolio.errors import ConfigError, redact

NAME = "focus"
#: the record types this connector yields (checked by the standard connector suite)
RECORDS: tuple[type, ...] = (records.CostRecord, records.BillingTotal)

log = logging.getLogger(__name__)

COST_COLUMNS = ("EffectiveCost", "BilledCost", "ListCost", "ContractedCost")
#: FOCUS columns the connector may use (canonical spelling)
CANONICAL = COST_COLUMNS + (
    "ChargePeriodStart",
    "BillingCurrency",
    "BillingPeriodStart",
    "ChargeCategory",
    "CommitmentDiscountId",
    "CommitmentDiscountStatus",
    "ServiceName",
    "ServiceCategory",
    "ProviderName",
    "Tags",
    "SubAccountId",
    "SubAccountName",
    "ResourceId",
    "BillingAccountId",
)
#: other spellings -> canonical (FOCUS 1.3 renames, and FOCUS 0.5's names); the canonical
#: column wins when a file has both
ALIASES = {
    "serviceprovidername": "ProviderName",
    "amortizedcost": "EffectiveCost",
    "billedcurrency": "BillingCurrency",
    "chargetype": "ChargeCategory",
}
CHUNK_ROWS = 100_000
_KEY_COLUMNS = ("app_id", "day", "category", "service", "currency", "billing_period")
UNUSED_SERVICE = "unused commitment"
DUPLICATE_POLICIES = ("newest", "error", "sum")
_FILE_COLUMN = "mlp_export_file"
_SUFFIXES_PARQUET = (".parquet", ".parq", ".pq")
_SUFFIXES_CSV = (".csv", ".csv.gz", ".csv.gzip", ".tsv", ".tsv.gz")


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


def _cost_column(value: str) -> str:
    match = [c for c in COST_COLUMNS if c.lower() == value.strip().lower()]
    if not match:
        raise ValueError(f"expected one of {', '.join(COST_COLUMNS)}")
    return match[0]


def _tag_keys(value: list[str]) -> list[str]:
    if not all(k.strip() for k in value):
        raise ValueError("expected a list of non-empty tag keys")
    return value


def _pattern_table(value: Any) -> Any:
    """``{ "<glob>" = "<app>" }`` is the short form of a list of glob rules."""
    return [{"glob": k, "app": v} for k, v in value.items()] if isinstance(value, dict) else value


class ResourcePattern(BaseModel):
    """One ``resource_patterns`` rule: a glob or a regex on ``ResourceId``, and the app it claims."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    glob: str | None = None
    regex: Regex | None = None
    app: str = Field(min_length=1)

    @model_validator(mode="after")
    def _one_pattern(self) -> ResourcePattern:
        if (self.glob is None) == (self.regex is None):
            raise ValueError("expected { glob = ..., app = ... } or { regex = ..., app = ... }")
        return self

    def kind_and_pattern(self) -> tuple[str, str]:
        return ("glob", str(self.glob)) if self.glob is not None else ("regex", str(self.regex))


class Params(ConnectorParams):
    """Settings of the FOCUS connector."""

    path: str | None = Field(None, description="export file, folder (searched recursively) or glob; or database_url")
    database_url: str | None = Field(None, description="warehouse holding the FOCUS table (PostgreSQL), instead of path")
    database_url_env: str | None = Field(None, description="variable holding the warehouse URL (instead of database_url)")
    table: str = Field("focus", description="the FOCUS table in the warehouse ([schema.]name)")
    cost_column: Annotated[str, AfterValidator(_cost_column)] = Field(
        "EffectiveCost", description="EffectiveCost, BilledCost, ListCost or ContractedCost"
    )
    app_tag_keys: Annotated[StrList, AfterValidator(_tag_keys)] = Field(
        default_factory=list, description="tag keys whose value names the app, first present wins"
    )
    sub_accounts: dict[str, str] = Field(default_factory=dict, description="SubAccountId or SubAccountName -> app id")
    resource_patterns: Annotated[list[ResourcePattern], BeforeValidator(_pattern_table)] = Field(
        default_factory=list,
        description='[{ glob = ..., app = ... } or { regex = ..., app = ... }] on ResourceId; or { "<glob>" = "<app>" }',
    )
    default_currency: str | None = Field(None, description="currency of files without a BillingCurrency column (the spec's examples)")
    duplicate_exports: Annotated[Literal["newest", "error", "sum"], BeforeValidator(_lower)] = Field(
        "newest", description="one billing period in several export folders: keep the newest, refuse, or add up"
    )
    duckdb_memory_limit: str = Field("512MB", description="DuckDB's memory budget; beyond it, it spills to disk")
    duckdb_threads: int | None = Field(None, ge=1, description="DuckDB's threads (default: all cores)")
    duckdb_temp_directory: str | None = Field(None, description="where DuckDB spills (default: a private temp folder)")


# ----------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class Pattern:
    kind: str  # glob | regex
    pattern: str
    app: str


@dataclass(frozen=True)
class Settings:
    """The connector's parameters, validated."""

    cost_column: str
    tag_keys: tuple[str, ...]
    sub_accounts: dict[str, str] = field(default_factory=dict)
    patterns: tuple[Pattern, ...] = ()
    tag_to_app: dict[str, str] = field(default_factory=dict)  # lower(tag value) -> app id
    default_currency: str | None = None  # for partial files without BillingCurrency
    duplicate_exports: str = "newest"  # one period of one account in several export folders

    @classmethod
    def from_config(cls, config: ConnectorConfig) -> Settings:
        p = Params.of(config)
        tag_to_app: dict[str, str] = {}
        for app in config.apps:
            tag_to_app.setdefault(app.id.strip().lower(), app.id)
        for app in config.apps:
            for tag in app.cost_tags:
                tag_to_app[tag.strip().lower()] = app.id
        return cls(
            duplicate_exports=p.duplicate_exports,
            cost_column=p.cost_column,
            tag_keys=tuple(dict.fromkeys(k.strip() for k in p.app_tag_keys)),
            sub_accounts={k.strip(): v for k, v in p.sub_accounts.items()},
            patterns=tuple(Pattern(*i.kind_and_pattern(), i.app) for i in p.resource_patterns),
            tag_to_app=tag_to_app,
            default_currency=p.default_currency.strip() if p.default_currency else None,
        )

    def required(self) -> list[str]:
        """Columns that must be present: what the connector uses."""
        cols = [self.cost_column, "ChargePeriodStart"]
        if not self.default_currency:
            cols.append("BillingCurrency")
        if self.tag_keys:
            cols.append("Tags")
        if self.patterns:
            cols.append("ResourceId")
        return cols


# ----------------------------------------------------------------------------- SQL


def lit(value: str) -> str:
    """A SQL string literal (standard SQL quoting: DuckDB and PostgreSQL)."""
    return "'" + value.replace("'", "''") + "'"


def glob_to_like(pattern: str) -> str:
    out = []
    for ch in pattern:
        if ch in "%_\\":
            out.append("\\" + ch)
        elif ch == "*":
            out.append("%")
        elif ch == "?":
            out.append("_")
        else:
            out.append(ch)
    return "".join(out)


class SqlDialect:
    """What differs between SQL engines; everything else in the query is written once."""

    name = "generic"

    def quote(self, ident: str) -> str:
        return '"' + ident.replace('"', '""') + '"'

    def decimal(self, expr: str) -> str:
        return f"CAST({expr} AS DECIMAL(38,12))"

    def text(self, expr: str) -> str:
        return f"CAST({expr} AS VARCHAR)"

    def day(self, expr: str, typ: str = "VARCHAR") -> str:
        """UTC date of a FOCUS timestamp (a string in any ISO-8601 style, or a timestamp)."""
        return f"CAST(CAST({expr} AS TIMESTAMPTZ) AS DATE)"

    def month_start(self, day_expr: str) -> str:
        return f"CAST(date_trunc('month', {day_expr}) AS DATE)"

    def regex(self, expr: str, pattern: str) -> str:
        raise NotImplementedError

    def tag(self, tags: str, tags_type: str, key: str) -> str:
        raise NotImplementedError


class DuckDialect(SqlDialect):
    name = "duckdb"

    def day(self, expr: str, typ: str = "VARCHAR") -> str:
        # Days from epoch microseconds: a TIMESTAMPTZ -> DATE cast goes through ICU's calendar
        # and costs ~20x more (4.5 s per 10M lines). FOCUS timestamps are UTC, so a naive
        # TIMESTAMP is read as UTC; strings are parsed as TIMESTAMPTZ so that offsets count.
        t = typ.upper()
        if t == "DATE":
            return expr
        ts = expr if t.startswith("TIMESTAMP") else f"CAST({expr} AS TIMESTAMPTZ)"
        return f"(DATE '1970-01-01' + CAST(epoch_us({ts}) // 86400000000 AS INTEGER))"

    def regex(self, expr: str, pattern: str) -> str:
        return f"regexp_matches({expr}, {lit(pattern)})"

    def tag(self, tags: str, tags_type: str, key: str) -> str:
        norm = key.strip().lower()
        if tags_type.upper().startswith("MAP"):
            # fast path: the key as written; else scan the entries (case/whitespace tolerant)
            return (
                f"coalesce({tags}[{lit(key)}], "
                f"(list_filter(map_entries({tags}), lambda e: lower(trim(e.key)) = {lit(norm)})[1]).value)"
            )
        text = tags if tags_type.upper() in ("VARCHAR", "JSON") else f"CAST(to_json({tags}) AS VARCHAR)"
        path = '$."' + key.replace('"', '\\"') + '"'
        slow = (
            f"(list_filter(map_entries(CAST(CAST({text} AS JSON) AS MAP(VARCHAR, VARCHAR))), "
            f"lambda e: lower(trim(e.key)) = {lit(norm)})[1]).value"
        )
        # the slow, tolerant lookup only runs where the exact key is absent but the name appears
        return (
            f"coalesce(json_extract_string({text}, {lit(path)}), "
            f"CASE WHEN contains(lower({text}), {lit(norm)}) THEN {slow} END)"
        )


class PostgresDialect(SqlDialect):
    name = "postgresql"

    def decimal(self, expr: str) -> str:
        return f"CAST({expr} AS NUMERIC(38,12))"

    def text(self, expr: str) -> str:
        return f"CAST({expr} AS TEXT)"

    def day(self, expr: str, typ: str = "VARCHAR") -> str:
        # the session runs with TIME ZONE 'UTC' (set by the connector)
        return f"CAST(CAST({expr} AS TIMESTAMPTZ) AS DATE)"

    def regex(self, expr: str, pattern: str) -> str:
        return f"({expr} ~ {lit(pattern)})"

    def tag(self, tags: str, tags_type: str, key: str) -> str:
        norm = key.strip().lower()
        j = f"CAST(NULLIF(NULLIF(TRIM(CAST({tags} AS TEXT)), ''), 'NULL') AS JSONB)"
        return (
            f"coalesce({j} ->> {lit(key)}, "
            f"(SELECT e.value FROM jsonb_each_text({j}) AS e WHERE lower(trim(e.key)) = {lit(norm)} LIMIT 1))"
        )


def resolve_columns(names: Sequence[str]) -> dict[str, str]:
    """canonical FOCUS column -> the column's name in the data (case/space-insensitive, 1.3 aliases)."""
    lower = {c.lower(): c for c in CANONICAL}
    found: dict[str, str] = {}
    aliased: dict[str, str] = {}
    for name in names:
        key = name.strip().lower()
        if key in lower:
            found.setdefault(lower[key], name)
        elif key in ALIASES:
            aliased.setdefault(ALIASES[key], name)
    for canon, name in aliased.items():
        found.setdefault(canon, name)
    return found


def stage1_sql(
    source: str,
    cols: dict[str, str],
    types: dict[str, str],
    s: Settings,
    d: SqlDialect,
    extra: dict[str, str] | None = None,
) -> str:
    """The one aggregating query over the raw lines: per billing period, currency, day, category,
    service and claim (tag value or directly mapped app), the exact cost sum and line count.

    Each raw column is touched once in the innermost query (every per-line function counts at
    10M lines); the mapping runs on those derived columns. ``extra`` (name -> per-line
    expression) adds grouping columns, e.g. the export folder a line comes from.
    """
    extra = extra or {}
    extra_inner = "".join(f",\n           {expr} AS {name}" for name, expr in extra.items())
    extra_cols = "".join(f", {name}" for name in extra)
    null_text = "CAST(NULL AS VARCHAR)" if d.name == "duckdb" else "CAST(NULL AS TEXT)"

    def c(canon: str) -> str:
        return d.quote(cols[canon])

    def txt(canon: str) -> str:
        if canon not in cols:
            return null_text
        typ = types.get(canon, "VARCHAR").upper()
        raw = c(canon) if typ in ("VARCHAR", "TEXT") else d.text(c(canon))
        return f"NULLIF({raw}, '')"

    day = d.day(c("ChargePeriodStart"), types.get("ChargePeriodStart", "VARCHAR"))
    if "BillingPeriodStart" in cols:
        bp = d.day(c("BillingPeriodStart"), types.get("BillingPeriodStart", "VARCHAR"))
    else:
        bp = d.month_start(day)
    currency = f"TRIM({txt('BillingCurrency')})"
    if s.default_currency:
        currency = f"coalesce({currency}, {lit(s.default_currency)})"
    service = f"coalesce({txt('ServiceName')}, {txt('ServiceCategory')}, {txt('ProviderName')}, 'unknown')"
    unused = f"coalesce(lower(TRIM({txt('CommitmentDiscountStatus')})) = 'unused', false)"
    if s.cost_column == "EffectiveCost" and "ChargeCategory" in cols and "CommitmentDiscountId" in cols:
        excluded = (
            f"coalesce(lower(TRIM({txt('ChargeCategory')})) = 'purchase' "
            f"AND TRIM({txt('CommitmentDiscountId')}) <> '', false)"
        )
    else:
        excluded = "false"
    if s.tag_keys:
        found = [f"NULLIF(TRIM({d.tag(c('Tags'), types['Tags'], k)}), '')" for k in s.tag_keys]
        tag = found[0] if len(found) == 1 else "coalesce(" + ", ".join(found) + ")"
    else:
        tag = null_text
    # the middle query sees the mapping columns under their canonical names
    mapping_cols: list[str] = []
    if s.sub_accounts:
        mapping_cols += [k for k in ("SubAccountId", "SubAccountName") if k in cols]
    if s.patterns:
        mapping_cols.append("ResourceId")

    def mid(canon: str) -> str:
        return f"NULLIF(TRIM({d.text(d.quote(canon))}), '')"

    whens = []
    for key, app in s.sub_accounts.items():
        conds = [f"{mid(k)} = {lit(key)}" for k in ("SubAccountId", "SubAccountName") if k in cols]
        if conds:
            whens.append(f"WHEN {' OR '.join(conds)} THEN {lit(app)}")
    for p in s.patterns:
        rid = mid("ResourceId")
        cond = f"{rid} LIKE {lit(glob_to_like(p.pattern))} ESCAPE '\\'" if p.kind == "glob" else d.regex(rid, p.pattern)
        whens.append(f"WHEN {cond} THEN {lit(p.app)}")
    direct = f"CASE {' '.join(whens)} END" if whens else null_text
    carried = "".join(f", {c(k)} AS {d.quote(k)}" for k in mapping_cols)
    return f"""
SELECT bp_start, currency, day, category, service, tag_value, direct_app, unused, excluded,
       SUM(cost) AS amount, COUNT(*) AS lines{extra_cols}
FROM (
  SELECT bp_start, currency, day{extra_cols},
         CASE WHEN lower(TRIM(charge_category)) = 'tax' THEN 'other' ELSE 'infra' END AS category,
         CASE WHEN unused THEN '{UNUSED_SERVICE}' ELSE service END AS service,
         CASE WHEN unused THEN {null_text} ELSE tag_value END AS tag_value,
         CASE WHEN unused OR tag_value IS NOT NULL THEN {null_text} ELSE {direct} END AS direct_app,
         unused, excluded, cost
  FROM (
    SELECT {bp} AS bp_start,
           {currency} AS currency,
           {day} AS day,
           {txt('ChargeCategory')} AS charge_category,
           {service} AS service,
           {unused} AS unused,
           {excluded} AS excluded,
           {tag} AS tag_value,
           {d.decimal(c(s.cost_column))} AS cost{carried}{extra_inner}
    FROM {source}
  ) AS lines_
) AS mapped_
GROUP BY bp_start, currency, day, category, service, tag_value, direct_app, unused, excluded{extra_cols}
"""


# ----------------------------------------------------------------------------- stage 2/3 (DuckDB, shared)

_STAGE1_SCHEMA = pa.schema(
    [
        ("bp_start", pa.date32()),
        ("currency", pa.string()),
        ("day", pa.date32()),
        ("category", pa.string()),
        ("service", pa.string()),
        ("tag_value", pa.string()),
        ("direct_app", pa.string()),
        ("unused", pa.bool_()),
        ("excluded", pa.bool_()),
        ("amount", pa.decimal128(38, 12)),
        ("lines", pa.int64()),
    ]
)


_ARROW_KEPT = {pa.date32(): pd.ArrowDtype(pa.date32()), pa.decimal128(38, 6): pd.ArrowDtype(pa.decimal128(38, 6))}


def _tag_map_sql(s: Settings) -> str:
    if not s.tag_to_app:
        return "tag_value"
    whens = " ".join(f"WHEN {lit(k)} THEN {lit(v)}" for k, v in sorted(s.tag_to_app.items()))
    return f"CASE lower(tag_value) {whens} ELSE tag_value END"


def finish(con: duckdb.DuckDBPyConnection, s: Settings, name: str, detail: str) -> Iterator[Any]:
    """From table ``stage1`` to what the connector yields: ReplaceKeys markers, BillingTotals, CostRecord rows."""
    con.execute(
        f"""
CREATE OR REPLACE TEMP TABLE agg AS
SELECT bp_start, strftime(bp_start, '%Y-%m') AS billing_period, currency, app_id, day, category,
       CASE WHEN day < bp_start OR day > CAST(bp_start + INTERVAL 1 MONTH - INTERVAL 1 DAY AS DATE)
            THEN service || ' (billed ' || strftime(bp_start, '%Y-%m') || ')' ELSE service END AS service,
       SUM(amount) AS amount, SUM(lines) AS lines
FROM (SELECT *, CASE WHEN unused THEN '{records.UNALLOCATED}'
                     ELSE coalesce({_tag_map_sql(s)}, direct_app, '{records.UNALLOCATED}') END AS app_id
      FROM stage1 WHERE NOT excluded) AS m
GROUP BY ALL
"""
    )
    # cheap first (only keys, no lists); the details only for the first clashing key
    clash = con.execute(
        """WITH c AS (SELECT app_id, day, category, service FROM agg GROUP BY app_id, day, category, service
                      HAVING COUNT(*) > 1 ORDER BY app_id, day, category, service LIMIT 1)
           SELECT app_id, day, category, service, list(DISTINCT currency ORDER BY currency),
                  list(DISTINCT billing_period ORDER BY billing_period)
           FROM agg JOIN c USING (app_id, day, category, service) GROUP BY app_id, day, category, service"""
    ).fetchone()
    if clash:
        app_id, day, category, service, currencies, periods = clash
        what = f"currencies {', '.join(currencies)}" if len(currencies) > 1 else f"overlapping billing periods {', '.join(periods)}"
        raise ConnectorError(
            name,
            f"app {app_id!r}, day {day}, {category}/{service!r} has spend in {what}: "
            "costs in different currencies are reported separately, never summed — "
            "split the export per currency or point separate connectors at each",
        )
    periods = con.execute(
        """SELECT billing_period, min(bp_start), currency, round(SUM(amount), 6) AS total, SUM(lines)
           FROM agg GROUP BY billing_period, currency ORDER BY billing_period, currency"""
    ).fetchall()
    excluded = dict(
        ((bp, cur), (n, amt))
        for bp, cur, n, amt in con.execute(
            """SELECT strftime(bp_start, '%Y-%m'), currency, SUM(lines), SUM(amount) FROM stage1
               WHERE excluded GROUP BY ALL"""
        ).fetchall()
    )
    con.execute("DROP TABLE stage1")  # its memory goes to the sort below
    # A billing period read again replaces everything this source holds for it: its rows (late
    # charges dated outside the period's calendar span included) and its per-currency totals.
    billed = frozenset(bp for bp, *_ in periods)
    if billed:
        yield ReplaceKeys(records.CostRecord, "billing_period", billed)
        yield ReplaceKeys(records.BillingTotal, "billing_period", billed)
    for bp, _start, currency, total, lines in periods:
        note = detail
        if (bp, currency) in excluded:
            n, amt = excluded[(bp, currency)]
            note += f"; {n} commitment purchase line(s) ({amt.normalize()}) set aside: amortised in usage"
        yield records.BillingTotal(
            source="",
            billing_period=bp,
            currency=currency,
            total=Decimal(total).quantize(Decimal("0.000001")),
            lines=int(lines),
            detail=note[:2000],
        )
    # cumulative rounding: rows of one bill add up exactly to the bill's rounded total. Any fixed
    # total order works; a hash first makes the sort compare integers, not strings (2x faster).
    con.execute(
        """
CREATE OR REPLACE TEMP TABLE final AS
SELECT app_id, day, category, service, amount, currency, billing_period FROM (
  SELECT app_id, day, category, service, currency, billing_period,
         CAST(round(cum, 6) - round(cum - amount, 6) AS DECIMAL(38,6)) AS amount
  FROM (SELECT *, SUM(amount) OVER (PARTITION BY bp_start, currency
                                    ORDER BY hash(app_id, day, category, service), app_id, day, category, service
                                    ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS cum
        FROM agg) AS w
) AS r WHERE amount <> 0
"""
    )
    con.execute("DROP TABLE agg")
    # One partition per billing period: its fingerprint covers every column written, so a period
    # whose rows come out exactly as last time is skipped by the sync (a daily re-read of two
    # years of exports writes only what changed).
    prints = con.execute(
        """SELECT billing_period, COUNT(*), bit_xor(hash(app_id, day, category, service, amount, currency)),
                  SUM(amount) FROM final GROUP BY billing_period ORDER BY billing_period"""
    ).fetchall()
    for bp, n, digest, amount in prints:
        yield Partition(records.CostRecord, "billing_period", bp, f"{n}:{digest:016x}:{amount}", int(n))
        yield from _rows(con.sql(f"SELECT * FROM final WHERE billing_period = {lit(bp)}").to_arrow_reader(CHUNK_ROWS))


def _rows(reader: pa.RecordBatchReader) -> Iterator[Rows]:
    for batch in reader:
        if batch.num_rows:
            # Text keys as categoricals (every row of a value shares one Python object: the sync
            # may keep every natural key of the pull in memory); day and amount stay Arrow-backed,
            # so the storage converts them in one vectorised step instead of one call per value.
            frame = batch.to_pandas(types_mapper=_ARROW_KEPT.get).astype(
                {c: "category" for c in _KEY_COLUMNS if c != "day"}
            )
            yield Rows(records.CostRecord, frame)


# ----------------------------------------------------------------------------- files


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


def pull_files(config: ConnectorConfig, s: Settings) -> Iterator[Any]:
    name = config.name
    files = list_files(config)
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
        if folders:
            yield from _one_export_per_period(con, name, files, s)
        detail = f"{s.cost_column} of {len(files)} file(s): " + ", ".join(f.name for f in files[:5])
        if len(files) > 5:
            detail += ", ..."
        yield from finish(con, s, name, detail)


def _one_export_per_period(
    con: duckdb.DuckDBPyConnection, name: str, files: Sequence[Path], s: Settings
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
        con.execute(
            "DELETE FROM stage1 WHERE strftime(bp_start, '%Y-%m') = ? AND account = ? AND src <> ?", [bp, account, keep]
        )
        stamp = datetime.fromtimestamp(written.get(keep, 0.0), UTC).strftime("%Y-%m-%d %H:%M UTC")
        others = [d for d in folders if d != keep]
        yield Notice(
            f"{name}: {of} is in {len(folders)} export folders; used the one written last, {keep} ({stamp}), "
            f"and ignored {', '.join(others)} (duplicate_exports = \"newest\")"
        )


# ----------------------------------------------------------------------------- warehouse


def warehouse_url(config: ConnectorConfig) -> str | None:
    if config.get("database_url_env"):
        url = config.secret("database_url_env")
        if not url:
            raise ConnectorError(config.name, f"environment variable {config.get('database_url_env')} is not set")
        return url
    url = config.get("database_url")
    return str(url) if url else None


def pull_warehouse(config: ConnectorConfig, s: Settings, url: str) -> Iterator[Any]:
    import sqlalchemy as sa

    name = config.name
    table = str(config.get("table", "focus"))
    schema, _, tname = table.rpartition(".")
    secret_envs = config.secret_env_names()
    try:
        engine = sa.create_engine(url)
    except Exception as exc:  # bad URL / missing driver
        raise ConnectorError(name, f"cannot use database_url: {redact(str(exc), secret_envs)[:200]}") from None
    dialects: dict[str, SqlDialect] = {"postgresql": PostgresDialect(), "duckdb": DuckDialect()}
    d = dialects.get(engine.dialect.name)
    if d is None:
        raise ConnectorError(name, f"warehouse dialect {engine.dialect.name!r} not supported yet (supported: {', '.join(dialects)})")
    with _duck(config) as con:
        con.execute(_create_stage1_sql())
        try:
            with engine.connect() as conn:
                info = sa.inspect(conn).get_columns(tname, schema=schema or None)
                if not info:
                    raise InputFileError(name, f"table {table}", "table not found or has no columns")
                types = {c["name"]: ("JSON" if "JSON" in str(c["type"]).upper() else str(c["type"]).upper()) for c in info}
                cols = resolve_columns(list(types))
                for col in s.required():
                    if col not in cols:
                        raise InputFileError(name, f"table {table}", f"missing FOCUS column (needed for {_why(col, s)})", column=col)
                col_types = {canon: types[actual] for canon, actual in cols.items()}
                source = (d.quote(schema) + "." if schema else "") + d.quote(tname) + " AS src"
                sql = stage1_sql(source, cols, col_types, s, d)
                if d.name == "postgresql":
                    conn.exec_driver_sql("SET TIME ZONE 'UTC'")
                # only the per-day aggregate travels, streamed in chunks into the local DuckDB
                result = conn.execution_options(stream_results=True, yield_per=CHUNK_ROWS).exec_driver_sql(
                    sql.replace("%", "%%")
                )
                for part in result.partitions():
                    rows = [dict(zip(_STAGE1_SCHEMA.names, r, strict=True)) for r in part]
                    con.register("batch_", pa.Table.from_pylist(rows, schema=_STAGE1_SCHEMA))
                    con.execute("INSERT INTO stage1 SELECT * FROM batch_")
                    con.unregister("batch_")
        except ConnectorError:
            raise
        except sa.exc.SQLAlchemyError as exc:
            msg = redact(str(getattr(exc, "orig", None) or exc), secret_envs).strip().splitlines()
            raise InputFileError(name, f"table {table}", f"query failed: {msg[0] if msg else type(exc).__name__}") from None
        finally:
            engine.dispose()
        bad = con.execute(_BAD_GROUPS).fetchone()
        if bad and bad[0]:
            raise InputFileError(
                name,
                f"table {table}",
                f"{bad[0]} group(s) with an empty ChargePeriodStart, BillingPeriodStart or BillingCurrency, "
                "or a date before 2000 or more than a year ahead",
            )
        yield from finish(con, s, name, f"{s.cost_column} of table {table}")


def _create_stage1_sql() -> str:
    types = {
        "bp_start": "DATE",
        "currency": "VARCHAR",
        "day": "DATE",
        "category": "VARCHAR",
        "service": "VARCHAR",
        "tag_value": "VARCHAR",
        "direct_app": "VARCHAR",
        "unused": "BOOLEAN",
        "excluded": "BOOLEAN",
        "amount": "DECIMAL(38,12)",
        "lines": "BIGINT",
    }
    return "CREATE TEMP TABLE stage1 (" + ", ".join(f"{k} {v}" for k, v in types.items()) + ")"


# ----------------------------------------------------------------------------- entry point


def pull(config: ConnectorConfig, since: datetime | None) -> Iterator[Any]:
    """Yield ReplaceKeys markers, BillingTotals and CostRecord rows for every billing period present."""
    s = Settings.from_config(config)
    url = warehouse_url(config)
    if url and config.get("path"):
        raise ConfigError(f"connectors.{config.name}: give either path or database_url, not both")
    if url:
        yield from pull_warehouse(config, s, url)
    elif config.get("path"):
        yield from pull_files(config, s)
    else:
        raise ConfigError(f"connectors.{config.name}: path (file, folder or glob) or database_url (+ table) is required")


__all__ = ["NAME", "Settings", "pull", "resolve_columns", "stage1_sql"]

"""From the per-line aggregate to records: mapping, cumulative rounding, restatement (ReplaceKeys) and partitions."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from connectors.base import ConnectorError, Notice, Partition, Replace, ReplaceKeys, Rows
from connectors.focus.settings import _KEY_COLUMNS, CHUNK_ROWS, Settings
from connectors.focus.sql import lit
from portfolio import records

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


#: names the cumulative rounding in each billing period's fingerprint (see finish)
_ROUNDING = "r1"

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
    # One partition per billing period, fingerprinted on the exact (unrounded) sums its rows are
    # rounded from: the rounding below is a function of them alone, so a period whose sums come
    # out exactly as at the last write has the same rows and is skipped by the sync without being
    # rounded or built (a daily re-read of two years of exports builds only what changed). The
    # prefix names the rounding: change it when the rounding changes.
    prints = con.execute(
        """SELECT billing_period, COUNT(*), bit_xor(hash(app_id, day, category, service, amount, currency)),
                  SUM(amount) FROM agg GROUP BY billing_period ORDER BY billing_period"""
    ).fetchall()
    # the running sync (a module that imports connectors)
    from portfolio.sync import partition_rows, partition_unchanged

    fingerprints = {bp: f"{_ROUNDING}:{n}:{digest:016x}:{amount}" for bp, n, digest, amount in prints}
    known = {
        bp: partition_rows(records.CostRecord, "billing_period", bp, fp) for bp, fp in fingerprints.items()
    }
    # Cumulative rounding: rows of one bill add up exactly to the bill's rounded total; only the
    # periods to build are read and rounded (unchanged ones never are), see _rounded.
    rounded = _rounded(con, sorted(bp for bp, n in known.items() if n is None))
    for bp, fp in fingerprints.items():
        n = known[bp]
        table = None
        if n is None:
            got, table = next(rounded, (None, None))
            if got != bp:  # cannot happen: both are in billing period order
                raise ConnectorError(name, f"billing period {bp} was not rounded (got {got})")
        rows = table.num_rows if table is not None else n
        assert rows is not None
        partition = Partition(records.CostRecord, "billing_period", bp, fp, int(rows))
        yield partition
        if partition_unchanged(partition):  # the sync skips these rows: do not build them
            continue
        if table is None:  # cannot happen: the sync found it unchanged a moment ago
            raise ConnectorError(
                name, f"billing period {bp} was unchanged and is not any more: run the sync again"
            )
        yield from _rows(table.to_reader(CHUNK_ROWS))
    rounded.close()  # the sorted read is done: its result closes before the tables go
    con.execute("DROP TABLE IF EXISTS agg")
    con.execute("DROP TABLE IF EXISTS rounding")


#: micro-units (1e-6) in the 1e-12 units of the aggregate's DECIMAL(38, 12) amounts
_MICRO = 1_000_000


def _rounded(con: duckdb.DuckDBPyConnection, periods: list[str]) -> Generator[tuple[str, pa.Table], None, None]:
    """Per billing period of ``periods``, in their order: its rows with each amount rounded to 6
    places cumulatively, rows whose amount rounds to zero left out, in natural-key order (app_id,
    day, category, service: the table is keyed by it, WITHOUT ROWID on SQLite, so the rows are
    appended to its B-tree instead of scattered over it).

    The rounding: per bill (billing period start and currency), in a fixed order (a hash of the key
    first, so the sort compares integers, then the key), a row's amount is round(cum, 6) -
    round(cum - amount, 6), cum the running sum of the exact amounts, rounded half away from zero
    (as DuckDB rounds a DECIMAL). So the rows add up exactly to the bill's total rounded once.
    DuckDB sorts every period in one pass; the running sums are numpy's, one period at a time,
    exact in integers: each amount is split into whole micro-units and the 1e-12 units below one
    (0 to 999,999), both int64, whose running sums cannot overflow for any bill under 9 trillion.
    """
    if not periods:
        return
    # sorted into a table of its own and the aggregate dropped before the rows are streamed: DuckDB
    # then holds one copy of the rows while the sync works on them, not the aggregate and the sort
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE rounding AS
            SELECT billing_period, app_id, day, category, service, currency, bp_start AS bp,
                   CAST(floor(amount * {_MICRO}) AS BIGINT) AS micro,
                   CAST((amount * {_MICRO} - floor(amount * {_MICRO})) * {_MICRO} AS BIGINT) AS pico
            FROM agg WHERE billing_period IN ({", ".join(lit(p) for p in periods)})
            ORDER BY billing_period, bp_start, currency, hash(app_id, day, category, service), app_id, day, category, service"""
    )
    con.execute("DROP TABLE agg")
    rel = con.sql("SELECT * FROM rounding")  # in the table's order: the connection preserves insertion order
    assert rel is not None  # a SELECT always gives a relation
    done: list[str] = []
    parts: list[pa.RecordBatch] = []
    for batch in rel.to_arrow_reader(CHUNK_ROWS):
        values = batch.column("billing_period").to_numpy(zero_copy_only=False)
        cuts = [0, *(np.flatnonzero(values[1:] != values[:-1]) + 1).tolist(), len(values)]
        for start, end in zip(cuts[:-1], cuts[1:], strict=True):
            if not done or values[start] != done[-1]:
                if done:
                    yield done[-1], _round_period(pa.Table.from_batches(parts))
                if done and str(values[start]) <= done[-1]:  # the order was lost: the rounding would be too
                    raise RuntimeError(f"billing period {values[start]} read out of order after {done[-1]}")
                done.append(str(values[start]))
                parts = []
            parts.append(batch.slice(start, end - start))
    if done:
        yield done[-1], _round_period(pa.Table.from_batches(parts))
    con.execute("DROP TABLE rounding")


def _round_period(t: pa.Table) -> pa.Table:
    """One period's rows from :func:`_rounded`'s sort, rounded, in natural-key order."""
    n = t.num_rows
    micro = t.column("micro").to_numpy()
    pico = t.column("pico").to_numpy()
    starts = np.ones(n, dtype=bool)  # the first row of each bill
    bill = t.column("bp").to_numpy()
    currency = t.column("currency").combine_chunks().dictionary_encode().indices.to_numpy()
    starts[1:] = (bill[1:] != bill[:-1]) | (currency[1:] != currency[:-1])
    first = np.flatnonzero(starts)
    which = np.cumsum(starts) - 1  # each row's bill

    def running(values: np.ndarray) -> np.ndarray:  # the running sum within each bill
        total = np.cumsum(values)
        before = np.concatenate(([0], total))[first]  # the sum before each bill's first row
        return total - before[which]  # type: ignore[no-any-return]

    units, below = running(micro), running(pico)
    whole = units + below // _MICRO  # floor(cum) in micro-units; below % _MICRO the 1e-12 units above it
    rest = below % _MICRO
    half = _MICRO // 2
    cum = whole + np.where(whole >= 0, rest >= half, rest > half)  # round(cum, 6), half away from zero
    previous = np.concatenate(([0], cum[:-1]))
    previous[first] = 0
    amount = cum - previous
    keep = amount != 0
    table = t.select(["app_id", "day", "category", "service", "currency", "billing_period"]).filter(pa.array(keep))
    table = table.append_column("amount", _decimal6(amount[keep])).select(
        ["app_id", "day", "category", "service", "amount", "currency", "billing_period"]
    )
    return table.sort_by([("app_id", "ascending"), ("day", "ascending"), ("category", "ascending"), ("service", "ascending")])


def _decimal6(micro: np.ndarray) -> pa.Array:
    """int64 micro-units as an Arrow decimal128(38, 6), exactly (the 128-bit little-endian
    two's complement the type stores: the value, then its sign extended)."""
    words = np.empty(2 * len(micro), dtype="<i8")
    words[0::2] = micro
    words[1::2] = micro >> 63
    return pa.Array.from_buffers(pa.decimal128(38, 6), len(micro), [None, pa.py_buffer(words)])


def token_usage(con: duckdb.DuckDBPyConnection, s: Settings, name: str, first: date, last: date) -> Iterator[Any]:
    """From table ``tokens1`` to token usage per app, day, model and metric (the export's whole
    span of days is replaced: the files are the truth). Token lines that name no direction are
    reported, not guessed."""
    yield Replace(records.UsageRecord, first, last)
    rows = con.execute(
        f"""SELECT app_id, day, model, metric, SUM(tokens) FROM (
              SELECT *, coalesce({_tag_map_sql(s)}, direct_app, '{records.UNALLOCATED}') AS app_id FROM tokens1
            ) AS m WHERE metric IS NOT NULL GROUP BY ALL ORDER BY ALL"""
    ).fetchall()
    for app_id, day, model, metric, tokens in rows:
        if tokens:
            yield records.UsageRecord(source="", app_id=app_id, day=day, metric=metric, model=model, value=float(tokens))
    unnamed = con.execute(
        "SELECT SUM(lines), list(DISTINCT model ORDER BY model)[1:5] FROM tokens1 WHERE metric IS NULL"
    ).fetchone()
    if unnamed and unnamed[0]:
        yield Notice(
            f"{name}: {unnamed[0]} token line(s) name neither input, output nor cache in SkuMeter, ChargeDescription "
            f"or SkuId ({', '.join(unnamed[1])}): their tokens are not counted"
        )
    con.execute("DROP TABLE tokens1")


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

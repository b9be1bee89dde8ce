"""Benchmark (issue 15): a whole ``mlportfolio sync`` of a generated FOCUS export against a reference
that does the same work without the product, measured in the same run.

Generates (once, cached in bench/out/, which git ignores) a FOCUS 1.2 export with DuckDB: 1,000
apps x 2 years daily (730 days), ~13.7 lines per app and day at 10M lines, three services per app,
hourly charge periods, DECIMAL costs, credits and tax lines, and a realistic ``Tags`` JSON string
per line (5% of lines carry no application tag, 1% spell the key ``Application``). Parquet
(``--rows``) and gzip CSV (``--csv-rows``). 10M lines write 2.1M per-app/day/category/service rows.

Times, each as a whole process with its peak RSS (GNU time), best of ``--repeat``:

* ``reference``: a DuckDB-only process that reads the same export, maps the app tag, aggregates to
  the same per-app/day/category/service grain and writes it to Parquet;
* ``scan``: a bare DuckDB scan (``count(*), sum(EffectiveCost), max(length(Tags))``);
* ``sync``: ``mlportfolio --config ... sync bill`` into a fresh SQLite file (first sync);
* ``again``: the same sync once more on the same files (the daily re-sync; nothing changed);
* ``floor``: SQLite storing the same rows alone: a fresh file with the same fact and rollup tables
  filled by ``INSERT ... SELECT`` from the synced one (no Python per row). Reference + floor is
  what a sync writing these rows into this schema could take at best (its ratio is printed);
* with ``--pg``: ``sync`` and ``again`` into a fresh database of a throw-away PostgreSQL cluster
  (Debian's server, started like the tests do: tests/servers.py, fsync off).

Targets (issue 15): first sync <= 2x the reference, re-sync <= 1.5x the reference, gzip CSV first
sync <= 1.3x the bare scan of the CSV, PostgreSQL first sync <= 2x the reference, peak < 1 GiB.

    python3 bench/bench_focus.py                                  # 10M-line Parquet + 10M-line gzip CSV
    python3 bench/bench_focus.py --rows 2000000 --csv-rows 2000000 --pg   # smaller, with PostgreSQL
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out" / "focus"
APPS = 1_000
DAYS = 730
SERVICES = [
    "Amazon SageMaker", "Amazon Elastic Compute Cloud", "Amazon Simple Storage Service", "Amazon CloudWatch",
    "AWS Lambda", "Amazon DynamoDB", "Amazon Elastic Container Service", "Amazon Bedrock",
    "AWS Glue", "Amazon Kinesis", "Amazon Relational Database Service", "Elastic Load Balancing",
]  # fmt: skip


def generate_sql(rows: int) -> str:
    """One SELECT producing ``rows`` FOCUS lines (deterministic)."""
    per_day = -(-rows // DAYS)
    services = "[" + ", ".join(f"'{s}'" for s in SERVICES) + "]"
    return f"""
WITH g AS (
  SELECT i, i // {per_day} AS d, i % {per_day} AS k FROM range({rows}) t(i)
), l AS (
  SELECT i, d, k, k % {APPS} AS app, (k // {APPS}) % 3 AS s,
         DATE '2024-01-01' + CAST(d AS INTEGER) AS day, hash(i) AS h FROM g
)
SELECT
  '123456789012' AS BillingAccountId,
  'USD' AS BillingCurrency,
  CAST(date_trunc('month', day) AS TIMESTAMP) AS BillingPeriodStart,
  CAST(date_trunc('month', day) + INTERVAL 1 MONTH AS TIMESTAMP) AS BillingPeriodEnd,
  CAST(day AS TIMESTAMP) + to_hours(CAST(k % 24 AS BIGINT)) AS ChargePeriodStart,
  CAST(day AS TIMESTAMP) + to_hours(CAST(k % 24 + 1 AS BIGINT)) AS ChargePeriodEnd,
  CASE WHEN h % 500 = 0 THEN 'Credit' WHEN h % 250 = 1 THEN 'Tax' ELSE 'Usage' END AS ChargeCategory,
  'Usage-Based' AS ChargeFrequency,
  CAST((h % 100000) / 10000.0 AS DECIMAL(20,10)) AS ListCost,
  CAST((h % 100000) / 12500.0 AS DECIMAL(20,10)) AS BilledCost,
  CAST(CASE WHEN h % 500 = 0 THEN -((h % 1000) / 1000.0) ELSE (h % 100000) / 13000.0 END AS DECIMAL(20,10)) AS EffectiveCost,
  CAST((h % 100000) / 12000.0 AS DECIMAL(20,10)) AS ContractedCost,
  {services}[1 + (app + s) % {len(SERVICES)}] AS ServiceName,
  'AI and Machine Learning' AS ServiceCategory,
  'AWS' AS ProviderName,
  'Amazon Web Services, Inc.' AS PublisherName,
  'us-east-1' AS RegionId,
  'arn:aws:sagemaker:us-east-1:123456789012:endpoint/app-' || lpad(CAST(app AS VARCHAR), 4, '0') || '-' || CAST(h % 7 AS VARCHAR) AS ResourceId,
  'SKU' || CAST(h % 97 AS VARCHAR) AS SkuId,
  CAST(100000000000 + app % 40 AS VARCHAR) AS SubAccountId,
  'team-' || CAST(app % 40 AS VARCHAR) AS SubAccountName,
  CAST(NULL AS VARCHAR) AS CommitmentDiscountId,
  CAST(NULL AS VARCHAR) AS CommitmentDiscountStatus,
  CAST((h % 1000) / 10.0 AS DOUBLE) AS ConsumedQuantity,
  CASE
    WHEN i % 20 = 7 THEN '{{"environment": "shared", "team": "platform", "cost-center": "CC-0001"}}'
    ELSE '{{"' || CASE WHEN i % 100 = 3 THEN 'Application' ELSE 'application' END || '": "app-'
         || lpad(CAST(app AS VARCHAR), 4, '0') || '", "environment": "' || CASE WHEN app % 5 = 0 THEN 'staging' ELSE 'prod' END
         || '", "team": "team-' || CAST(app % 40 AS VARCHAR) || '", "cost-center": "CC-' || CAST(1000 + app % 97 AS VARCHAR)
         || '", "owner": "owner' || CAST(app % 300 AS VARCHAR) || '@example.com"}}'
  END AS Tags
FROM l
"""


def generate(path: Path, rows: int, fmt: str) -> None:
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = false")
    opts = "FORMAT parquet, ROW_GROUP_SIZE 122880" if fmt == "parquet" else "FORMAT csv, HEADER, COMPRESSION gzip"
    t0 = time.perf_counter()
    con.execute(f"COPY ({generate_sql(rows)}) TO '{tmp}' ({opts})")
    os.replace(tmp, path)
    print(f"generated {path.name}: {rows:,} lines, {path.stat().st_size / 2**20:.0f} MiB in {time.perf_counter() - t0:.1f}s", flush=True)


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Run a whole process; return (seconds, peak RSS MiB, output).

    Peak RSS comes from GNU time (``/usr/bin/time -f %M``) when installed: ``ru_maxrss`` of a child
    forked straight from this (large) process would include this process's own RSS at fork time.
    """
    gnu_time = shutil.which("time") or ("/usr/bin/time" if Path("/usr/bin/time").exists() else None)
    rss_file = OUT / ".maxrss"
    full = [gnu_time, "-f", "%M", "-o", str(rss_file), *cmd] if gnu_time else cmd
    t0 = time.perf_counter()
    proc = subprocess.Popen(full, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=ROOT, text=True)
    out, _ = proc.communicate()
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:3])} ... failed ({proc.returncode}):\n{out}")
    if gnu_time:
        peak_kib = float(rss_file.read_text().split()[-1])
    else:  # pragma: no cover - fallback, overstates (see above)
        import resource

        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    lines = out.strip().splitlines()  # (DuckDB may draw a progress bar first)
    return seconds, peak_kib / 1024, lines[-1] if lines else ""


def scan_cmd(path: Path, fmt: str) -> list[str]:
    reader = f"read_parquet('{path}')" if fmt == "parquet" else f"read_csv('{path}')"
    code = (
        "import duckdb; print(duckdb.sql(\"SELECT count(*), sum(EffectiveCost), max(length(Tags)) "
        f"FROM {reader}\").fetchall())"
    )
    return [sys.executable, "-c", code]


REFERENCE = """
import duckdb, sys
src, reader, out = sys.argv[1], sys.argv[2], sys.argv[3]
con = duckdb.connect()
con.execute(f\"\"\"COPY (
  SELECT strftime(BillingPeriodStart, '%Y-%m') AS billing_period,
         coalesce(json_extract_string(Tags, '$.application'), json_extract_string(Tags, '$.Application'),
                  '_unallocated') AS app_id,
         CAST(ChargePeriodStart AS DATE) AS day, 'infra' AS category, ServiceName AS service,
         BillingCurrency AS currency, SUM(EffectiveCost) AS amount
  FROM {reader}('{src}') GROUP BY ALL
) TO '{out}' (FORMAT parquet)\"\"\")
print(con.execute(f"SELECT count(*) FROM read_parquet('{out}')").fetchone()[0], "rows")
"""


def reference_cmd(path: Path, fmt: str) -> list[str]:
    """The same work without the product: read, map the app tag, aggregate to the same grain, write Parquet."""
    return [sys.executable, "-c", REFERENCE, str(path), "read_parquet" if fmt == "parquet" else "read_csv", str(OUT / f"reference-{fmt}.parquet")]


def sync_cmd(cfg: Path) -> tuple[list[str], str]:
    # the console script of the interpreter running the bench (a venv's), not whatever is first on PATH
    own = Path(sys.executable).parent / "mlportfolio"
    exe = str(own) if own.is_file() else shutil.which("mlportfolio")
    if exe:
        return [exe, "--config", str(cfg), "sync", "bill"], "mlportfolio console script"
    code = "import sys; from portfolio.cli import main; sys.exit(main(sys.argv[1:]))"
    return [sys.executable, "-c", code, "--config", str(cfg), "sync", "bill"], "python -c portfolio.cli.main (console script not installed)"


def pull_cmd(cfg: Path) -> list[str]:
    """The connector alone as a whole process: read + aggregate + row frames, nothing written."""
    code = (
        "import sys; from portfolio import config; from connectors import focus; from connectors.base import Rows; "
        "cfg = config.load(sys.argv[1]); "
        "print(sum(len(i.frame) for i in focus.pull(cfg.connectors['bill'], None) if isinstance(i, Rows)), 'rows')"
    )
    return [sys.executable, "-c", code, str(cfg)]


#: SQLite's own cost of storing the rows a sync wrote, with no Python per row: a fresh file with the
#: same two tables (the natural-key WITHOUT ROWID fact table, the monthly rollup and its index)
#: filled by INSERT ... SELECT from the synced database, under the product's pragmas. No sync that
#: writes these rows into this schema can be faster than this plus its reading and aggregating.
FLOOR = """
import sqlite3, sys
src, dst = sys.argv[1], sys.argv[2]
ddl = [r[0] for r in sqlite3.connect(src).execute(
    "SELECT sql FROM sqlite_master WHERE tbl_name IN ('costrecord', 'costmonth') AND sql IS NOT NULL ORDER BY type DESC")]
con = sqlite3.connect(dst, isolation_level=None)
con.execute("PRAGMA journal_mode=WAL"); con.execute("PRAGMA synchronous=NORMAL")
for statement in ddl:
    con.execute(statement)
con.execute("ATTACH ? AS s", (src,))
con.execute("BEGIN")
n = con.execute("INSERT INTO main.costrecord SELECT * FROM s.costrecord").rowcount
m = con.execute("INSERT INTO main.costmonth SELECT * FROM s.costmonth").rowcount
con.execute("COMMIT")
print(n, "rows and", m, "rollup rows stored by SQLite alone")
"""


def _fresh_sqlite(db: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)


def _config(fmt: str, path: Path, url: str, tag: str) -> Path:
    cfg = OUT / f"portfolio-{fmt}-{tag}.toml"
    cfg.write_text(
        f'database_url = "{url}"\n\n[connectors.bill]\ntype = "focus"\npath = "{path}"\n'
        'cost_column = "EffectiveCost"\napp_tag_keys = ["application"]\n'
    )
    return cfg


def bench(fmt: str, path: Path, repeat: int, pg: object | None) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("PORTFOLIO_DB_URL", None)
    db = OUT / f"bench-{fmt}.db"
    cfg = _config(fmt, path, f"sqlite:///{db}", "sqlite")
    command, how = sync_cmd(cfg)
    r: dict[str, float] = {}

    def best(key: str, sec: float, mib: float) -> None:
        if key + "_s" not in r or sec < r[key + "_s"]:
            r[key + "_s"], r[key + "_mib"] = sec, mib
        else:
            r[key + "_mib"] = max(r[key + "_mib"], mib)

    for _ in range(repeat):
        sec, mib, out = timed(reference_cmd(path, fmt), env)
        best("ref", sec, mib)
        print(f"  reference {sec:7.2f}s  peak {mib:6.0f} MiB   {out} (DuckDB only: read, map, aggregate, write Parquet)", flush=True)
        sec, mib, out = timed(scan_cmd(path, fmt), env)
        best("scan", sec, mib)
        print(f"  scan      {sec:7.2f}s  peak {mib:6.0f} MiB   {out}", flush=True)
        _fresh_sqlite(db)
        sec, mib, out = timed(command, env)
        best("sync", sec, mib)
        print(f"  sync      {sec:7.2f}s  peak {mib:6.0f} MiB   {out}   [SQLite, first sync; {how}]", flush=True)
        floor_db = OUT / f"floor-{fmt}.db"
        _fresh_sqlite(floor_db)
        sec, mib, out = timed([sys.executable, "-c", FLOOR, str(db), str(floor_db)], env)
        _fresh_sqlite(floor_db)
        best("floor", sec, mib)
        print(f"  floor     {sec:7.2f}s  peak {mib:6.0f} MiB   {out}   [SQLite's insert of the same rows, no Python per row]", flush=True)
        sec, mib, out = timed(command, env)
        best("again", sec, mib)
        print(f"  again     {sec:7.2f}s  peak {mib:6.0f} MiB   {out}   [SQLite, same files again]", flush=True)
        if pg is not None:
            url = pg.create_database("bench")  # type: ignore[attr-defined]
            pg_command, _ = sync_cmd(_config(fmt, path, url, "pg"))
            sec, mib, out = timed(pg_command, env)
            best("pg", sec, mib)
            print(f"  pg sync   {sec:7.2f}s  peak {mib:6.0f} MiB   {out}   [PostgreSQL, first sync]", flush=True)
            sec, mib, out = timed(pg_command, env)
            best("pg_again", sec, mib)
            print(f"  pg again  {sec:7.2f}s  peak {mib:6.0f} MiB   {out}   [PostgreSQL, same files again]", flush=True)
    import sqlite3

    r["rows"] = sqlite3.connect(db).execute("SELECT count(*) FROM costrecord").fetchone()[0]
    _fresh_sqlite(db)
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000, help="lines of the Parquet export")
    ap.add_argument("--csv-rows", type=int, default=10_000_000, help="lines of the gzip CSV export")
    ap.add_argument("--repeat", type=int, default=2, help="runs of each step; the best counts")
    ap.add_argument("--only", choices=["parquet", "csv"])
    ap.add_argument("--pg", action="store_true", help="also sync into a throw-away PostgreSQL (Parquet only)")
    args = ap.parse_args()
    files = {
        "parquet": (OUT / f"focus-{args.rows}.parquet", args.rows),
        "csv": (OUT / f"focus-{args.csv_rows}.csv.gz", args.csv_rows),
    }
    pg = None
    if args.pg:
        sys.path.insert(0, str(ROOT))
        from tests.servers import Postgres

        pg = Postgres.start()
    results = {}
    try:
        for fmt, (path, rows) in files.items():
            if args.only and fmt != args.only:
                continue
            generate(path, rows, fmt)
            print(f"{fmt}: {rows:,} lines, {path.stat().st_size / 2**20:.0f} MiB", flush=True)
            results[fmt] = bench(fmt, path, args.repeat, pg if fmt == "parquet" else None)
    finally:
        if pg is not None:
            pg.stop()
    print(f"\nbest of {args.repeat}; seconds (peak MiB); ratios against the reference measured in the same run")
    print(f"{'format':<8} {'lines':>11} {'rows out':>10} {'reference':>14} {'scan':>13} {'sync':>14} {'sync/ref':>8} "
          f"{'again':>13} {'again/ref':>9} {'sync/scan':>9} {'floor':>7} {'(ref+floor)/ref':>15}")
    for fmt, r in results.items():
        print(
            f"{fmt:<8} {files[fmt][1]:>11,} {int(r['rows']):>10,} {r['ref_s']:7.2f} ({r['ref_mib']:4.0f}) "
            f"{r['scan_s']:6.2f} ({r['scan_mib']:4.0f}) {r['sync_s']:7.2f} ({r['sync_mib']:4.0f}) {r['sync_s'] / r['ref_s']:8.2f} "
            f"{r['again_s']:6.2f} ({r['again_mib']:4.0f}) {r['again_s'] / r['ref_s']:9.2f} {r['sync_s'] / r['scan_s']:9.2f} "
            f"{r['floor_s']:7.2f} {(r['ref_s'] + r['floor_s']) / r['ref_s']:15.2f}"
        )
        if "pg_s" in r:
            print(
                f"{'  on PG':<8} {'':>11} {'':>10} {'':>14} {'':>13} {r['pg_s']:7.2f} ({r['pg_mib']:4.0f}) {r['pg_s'] / r['ref_s']:8.2f} "
                f"{r['pg_again_s']:6.2f} ({r['pg_again_mib']:4.0f}) {r['pg_again_s'] / r['ref_s']:9.2f}"
            )
    checks = []
    if "parquet" in results:
        p = results["parquet"]
        checks += [("parquet first sync <= 2x reference", p["sync_s"] / p["ref_s"] <= 2.0),
                   ("parquet re-sync <= 1.5x reference", p["again_s"] / p["ref_s"] <= 1.5)]
        if "pg_s" in p:
            checks.append(("PostgreSQL first sync <= 2x reference", p["pg_s"] / p["ref_s"] <= 2.0))
    if "csv" in results:
        checks.append(("gzip CSV first sync <= 1.3x bare scan", results["csv"]["sync_s"] / results["csv"]["scan_s"] <= 1.3))
    peak = max(v for r in results.values() for k, v in r.items() if k.endswith("_mib") and not k.startswith(("ref", "scan")))
    checks.append((f"peak of every sync < 1 GiB ({peak:.0f} MiB)", peak < 1024))
    for name, ok in checks:
        print(f"  {'met    ' if ok else 'NOT met'}  {name}")


if __name__ == "__main__":
    main()

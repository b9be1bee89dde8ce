"""Benchmark: refusing an oversized value-ledger upload, in time and peak memory.

Builds in memory a CSV of 1,000,000 ledger rows (~75 MB) and a 1,000,000-row ``.xlsx`` (written
with openpyxl's write-only mode, cached in bench/out/) and hands each to
:func:`portfolio.ledger.read_ledger` as the upload page does (a file object with a name and a
size), with the default caps (20 MB, 200,000 rows) and with the size cap lifted (so the row cap
has to do the refusing). For each it prints the seconds and the peak memory the call allocated
above the upload's own bytes (``tracemalloc``), and the process's peak RSS.

Before the caps (issue 11) the same CSV took 445 s and 3.9 GB to be parsed and refused.

    python3 bench/bench_ledger_caps.py [--rows 1000000] [--skip-xlsx]
"""

from __future__ import annotations

import argparse
import io
import resource
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from portfolio import ledger  # noqa: E402

OUT = ROOT / "bench" / "out"
HEADER = "app_id,month,kind,amount,currency,attribution,evidence,low,high,note\n"
ROW = "churn-predictor,2026-01,revenue_capture,125000.00,USD,0.6,experiment,100000.00,150000.00,A/B test\n"


def upload(data: bytes, name: str) -> io.BytesIO:
    f = io.BytesIO(data)
    f.name = name  # type: ignore[attr-defined]
    f.size = len(data)  # type: ignore[attr-defined]
    return f


def xlsx(rows: int) -> bytes:
    path = OUT / f"ledger-{rows}.xlsx"
    if not path.exists():
        import openpyxl

        OUT.mkdir(parents=True, exist_ok=True)
        wb = openpyxl.Workbook(write_only=True)
        ws = wb.create_sheet()
        ws.append(HEADER.strip().split(","))
        for i in range(rows):
            ws.append([f"app{i % 1000}", "2026-01", "revenue_capture", 125000, "USD", 0.6, "experiment", None, None, "x"])
        wb.save(path)
    return path.read_bytes()


def measure(label: str, data: bytes, name: str, reference: float | None = None, **caps: int | None) -> float:
    def once() -> str:
        try:
            ledger.read_ledger(upload(data, name), **caps)  # type: ignore[arg-type]
            return "ACCEPTED"
        except ledger.LedgerFileError as exc:
            return "refused: " + str(exc).split(": ", 1)[-1][:60]

    t0 = time.perf_counter()
    outcome = once()
    took = time.perf_counter() - t0
    tracemalloc.start()  # a second run for memory: tracing slows Python down, so it is not timed
    once()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    ratio = f"  {took / reference:6.3f}x the reference" if reference else ""
    print(f"{label:<44} {len(data) / 1e6:7.1f} MB  {took:7.3f} s  peak +{peak / 2**20:7.1f} MiB{ratio}  {outcome}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--skip-xlsx", action="store_true")
    args = parser.parse_args()
    # the reference, measured in this run: reading a ledger exactly at the row cap, which is accepted
    # (what a legitimate upload of the largest allowed size costs); a refusal should cost a fraction
    at_cap = (HEADER + ROW * ledger.DEFAULT_MAX_ROWS).encode()
    ref = measure(f"reference: CSV {ledger.DEFAULT_MAX_ROWS:,} rows (at the cap)", at_cap, "ledger.csv")
    csv_data = (HEADER + ROW * args.rows).encode()
    measure(f"CSV {args.rows:,} rows, default caps", csv_data, "ledger.csv", ref)
    measure(f"CSV {args.rows:,} rows, size cap lifted", csv_data, "ledger.csv", ref, max_bytes=None)
    quoted = (HEADER + ROW.replace("A/B test", '"A/B test, quoted"') * args.rows).encode()
    measure(f"CSV {args.rows:,} quoted rows, size cap lifted", quoted, "ledger.csv", ref, max_bytes=None)
    if not args.skip_xlsx:
        book = xlsx(args.rows)
        measure(f"xlsx {args.rows:,} rows, default caps", book, "ledger.xlsx", ref)
        measure(f"xlsx {args.rows:,} rows, size cap lifted", book, "ledger.xlsx", ref, max_bytes=None)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"process peak RSS {rss:,.0f} MiB (includes the generated files themselves)")


if __name__ == "__main__":
    main()

"""Benchmark: sync 1,000 apps x 365 days of availability and requests from a local Prometheus.

Backfills a year of ``up`` and a request counter for every app into Debian's Prometheus (promtool,
cached between runs), then times

* ``pull``  — the connector alone: its range queries, parsing, building records;
* ``sync``  — ``portfolio.sync.sync`` end to end, into a fresh SQLite database;
* ``curl``  — the floor: the same ``query_range`` calls (same PromQL, range and step), issued
  one after the other by curl, bodies discarded.

and prints the number of queries the server saw (from Prometheus' own
``prometheus_http_requests_total``), seconds, and the ratios to the floor. Best of ``--repeat``.

    python3 bench/bench_prometheus.py [--apps 1000] [--days 365] [--interval 3600] [--repeat 3]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from connectors import prometheus as connector  # noqa: E402
from connectors.base import Rows  # noqa: E402
from portfolio import storage  # noqa: E402
from portfolio.config import loads  # noqa: E402
from portfolio.sync import sync  # noqa: E402
from tests.prom import Counter, Prometheus, Up, backfill, openmetrics_lines, write_openmetrics  # noqa: E402

END = date(2026, 10, 31)  # the last day of the history (pinned: the history is in the past)


def history(apps: int, days: int) -> tuple[dict[str, list[Up]], dict[str, list[Counter]]]:
    """Every app: one target, one outage day (i % 24 hours down), requests growing i % 50 + 1 a sample."""
    ups = [Up({"app": f"app-{i:04d}", "job": "serving"}, down={(i * 7) % days: i % 24}) for i in range(apps)]
    counters = [
        Counter({"app": f"app-{i:04d}", "job": "serving"}, per_sample=i % 50 + 1) for i in range(apps)
    ]
    return {"up": ups}, {"ml_requests_total": counters}


def blocks_for(apps: int, days: int, interval: int) -> Path:
    cache = Path(tempfile.gettempdir()) / f"mlportfolio-bench-prom-{apps}x{days}x{interval}"
    if (cache / "done").exists():
        print(f"reusing backfilled blocks in {cache}")
        return cache / "blocks"
    shutil.rmtree(cache, ignore_errors=True)
    cache.mkdir(parents=True)
    start = END - timedelta(days=days - 1)
    gauges, counters = history(apps, days)
    t0 = time.perf_counter()
    om = write_openmetrics(cache / "history.om", openmetrics_lines(start, days, gauges, counters, interval))
    t1 = time.perf_counter()
    size = om.stat().st_size
    backfill(om, cache / "blocks", timeout=3600)
    t2 = time.perf_counter()
    om.unlink()
    (cache / "done").write_text("ok")
    samples = 2 * apps * days * (86_400 // interval)
    print(
        f"history: {samples:,} samples, {size / 1e6:,.0f} MB OpenMetrics written in {t1 - t0:.1f}s, "
        f"backfilled by promtool in {t2 - t1:.1f}s"
    )
    return cache / "blocks"


def served_queries(url: str) -> int:
    """How many range queries the server has answered (its own /metrics, any status code)."""
    text = requests.get(f"{url}/metrics", timeout=30).text
    return sum(
        int(float(line.rsplit(" ", 1)[1]))
        for line in text.splitlines()
        if line.startswith("prometheus_http_requests_total{") and 'handler="/api/v1/query_range"' in line
    )


def curl_floor(url: str, calls: list[dict[str, str]]) -> float:
    t0 = time.perf_counter()
    for form in calls:
        args = ["curl", "-sS", "-f", "-o", "/dev/null", f"{url}/api/v1/query_range"]
        for k, v in form.items():
            args += ["--data-urlencode", f"{k}={v}"]
        subprocess.run(args, check=True, timeout=600)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--apps", type=int, default=1000)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--interval", type=int, default=3600, help="seconds between samples of the history")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    blocks = blocks_for(args.apps, args.days, args.interval)
    server = Prometheus.start(blocks, timeout=120)
    work = Path(tempfile.mkdtemp(prefix="bench-prom-"))
    try:
        toml = (
            "[connectors.metrics]\n"
            'type = "prometheus"\n'
            f'url = "{server.url}"\n'
            f'until = "{END.isoformat()}"\n'
            f"days = {args.days}\n"
            'requests = "ml_requests_total"\n'
        )
        cfg = loads(toml)
        conn_cfg = cfg.connectors["metrics"]
        start, end = connector.day_window(conn_cfg, None)
        calls = [
            {
                "query": q.promql,
                "start": str(connector.day_end(a)),
                "end": str(connector.day_end(b)),
                "step": str(connector.DAY_SECONDS),
            }
            for q in connector.queries(conn_cfg)
            for a, b in connector.chunks(start, end)
        ]
        curl_floor(server.url, calls)  # warm the page cache and Prometheus' chunk cache

        pulls, syncs, floors, rows = [], [], [], 0
        queries_per_pull = queries_per_sync = 0
        for i in range(args.repeat):
            floors.append(curl_floor(server.url, calls))

            before = served_queries(server.url)
            t0 = time.perf_counter()
            rows = sum(len(it.frame) for it in connector.pull(conn_cfg, None) if isinstance(it, Rows))
            pulls.append(time.perf_counter() - t0)
            queries_per_pull = served_queries(server.url) - before

            engine = storage.make_engine(f"sqlite:///{work / f'portfolio-{i}.db'}")
            before = served_queries(server.url)
            t0 = time.perf_counter()
            outcome = sync(cfg, engine)
            syncs.append(time.perf_counter() - t0)
            queries_per_sync = served_queries(server.url) - before
            run = outcome.runs[0]
            if run.status != "success":
                raise SystemExit(f"sync failed: {run.error}")
            print(
                f"  run {i + 1}: curl {floors[-1]:.2f}s  pull {pulls[-1]:.2f}s  sync {syncs[-1]:.2f}s",
                flush=True,
            )
        floor, pull, full = min(floors), min(pulls), min(syncs)
        print(f"{args.apps:,} apps x {args.days} days (history sampled every {args.interval}s)")
        print(f"rows: {rows:,} (uptime + usage); sync wrote {run.rows_written:,}")
        print(f"queries: connector pull {queries_per_pull}, sync {queries_per_sync}, curl floor {len(calls)}")
        print(f"curl floor      {floor:8.2f} s")
        print(f"connector pull  {pull:8.2f} s   ratio {pull / floor:5.2f}x the floor")
        print(f"sync (+SQLite)  {full:8.2f} s   ratio {full / floor:5.2f}x the floor")
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
        storage.dispose_all()


if __name__ == "__main__":
    main()

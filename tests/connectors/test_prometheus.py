"""The Prometheus connector against Debian's real Prometheus holding a backfilled history.

The history (tests/fixtures/prometheus/README.md) has known outages and known request counts;
every expected table below is computed by hand from it. Everything goes through
``portfolio.sync.sync`` with a Config from ``portfolio.config.loads``.
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests
from sqlalchemy.engine import Engine

from connectors import prometheus as prom_connector
from portfolio import records, storage
from portfolio.config import Config, SettingsError, loads
from portfolio.sync import sync
from tests.prom import Counter, Prometheus, Up, backfilled_blocks
from tests.servers import PayloadServer, Reply

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "prometheus"
START = date(2026, 3, 1)  # day 0 of the history
DAYS = 10
UNTIL = "2026-03-10"  # day 9: the as-of is pinned, the history is in the past
PASSWORD = "prom-test-password"  # fixtures/prometheus/web-basic-auth.yml


def _serving(app: str, instance: str) -> dict[str, str]:
    return {"app": app, "instance": instance, "job": "serving"}


GAUGES = {
    "up": [
        Up(_serving("churn", "c1"), down={2: 72, 5: 1440}),
        Up(_serving("fraud", "f1")),
        Up(_serving("fraud", "f2"), down={3: 720}),
        Up(_serving("search-rank", "s1"), first_day=4),
        Up({"app": "legacy", "instance": "l1", "job": "batch"}, down={1: 144}, last_day=6),
        Up({"instance": "n1", "job": "node"}),  # no app label: not an app
    ],
    "probe_success": [
        Up({"app": "churn", "instance": "https://churn.example/health", "job": "blackbox"}, down={4: 288}),
        Up({"app": "fraud", "instance": "https://fraud.example/health", "job": "blackbox"}),
    ],
}
COUNTERS = {
    "ts_inference_requests_total": [
        Counter(_serving("churn", "c1"), per_sample=3, rate={5: 0}, resets={7: 600}),
        Counter(_serving("fraud", "f1"), per_sample=1, rate={8: 2}),
        Counter(_serving("fraud", "f2"), per_sample=1),
        Counter(_serving("search-rank", "s1"), per_sample=5, first_day=4),
    ],
    "vllm:request_success_total": [
        Counter({"app": "llm-chat", "finished_reason": "stop", "instance": "v1"}, per_sample=2),
        Counter({"app": "llm-chat", "finished_reason": "length", "instance": "v1"}, per_sample=1),
    ],
}

# ------------------------------------------------------------------ expectations, by hand
# uptime: app -> (day indexes, usual availability, samples a day, {day: availability})
UP_TABLE = {
    "churn": (range(0, 10), 1.0, 1440, {2: 1 - 72 / 1440, 5: 0.0}),  # 0.95
    "fraud": (range(0, 10), 1.0, 2880, {3: (1.0 + 0.5) / 2}),  # two targets, one half down
    "search-rank": (range(4, 10), 1.0, 1440, {}),
    "legacy": (range(0, 7), 1.0, 1440, {1: 1 - 144 / 1440}),  # 0.9
}
PROBE_TABLE = {
    "churn": (range(0, 10), 1.0, 1440, {4: 1 - 288 / 1440}),  # 0.8
    "fraud": (range(0, 10), 1.0, 1440, {}),
}
SERVING_TABLE = {k: v for k, v in UP_TABLE.items() if k != "legacy"}
WORST_TARGET_TABLE = {  # min by (app): fraud's worst target on day 3 is half down; no samples query
    "churn": (range(0, 10), 1.0, 0, {2: 0.95, 5: 0.0}),
    "fraud": (range(0, 10), 1.0, 0, {3: 0.5}),
    "search-rank": (range(4, 10), 1.0, 0, {}),
    "legacy": (range(0, 7), 1.0, 0, {1: 0.9}),
}
# usage: app -> (day indexes, usual requests a day, {day: requests})
TORCHSERVE_TABLE = {
    "churn": (range(0, 10), 3 * 1440, {5: 0}),  # the restart on day 7 loses nothing
    "fraud": (range(0, 10), 1440 + 1440, {8: 2 * 1440 + 1440}),
    "search-rank": (range(4, 10), 5 * 1440, {}),
}
F1_TABLE = {"fraud": (range(0, 10), 1440, {8: 2 * 1440})}
VLLM_TABLE: dict[str, Any] = {"llm-chat": (range(0, 10), (2 + 1) * 1440, {})}
PER_MINUTE_TABLE = {  # custom PromQL: requests a minute
    "churn": (range(0, 10), 3, {5: 0}),
    "fraud": (range(0, 10), 2, {8: 3}),
    "search-rank": (range(4, 10), 5, {}),
}


def uptime_rows(table: dict[str, Any]) -> set[tuple[str, date, float, int]]:
    return {
        (app, START + timedelta(days=d), float(special.get(d, usual)), samples)
        for app, (days, usual, samples, special) in table.items()
        for d in days
    }


def usage_rows(table: dict[str, Any]) -> set[tuple[str, date, str, float]]:
    return {
        (app, START + timedelta(days=d), "requests", float(special.get(d, usual)))
        for app, (days, usual, special) in table.items()
        for d in days
    }


# ------------------------------------------------------------------ servers and config


@pytest.fixture(scope="module")
def blocks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return backfilled_blocks(tmp_path_factory.mktemp("prom-history"), START, DAYS, GAUGES, COUNTERS)


@pytest.fixture(scope="module")
def prom(blocks: Path) -> Iterator[Prometheus]:
    server = Prometheus.start(blocks)
    yield server
    server.stop()


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    return json.dumps(str(value))  # a TOML basic string: JSON escapes are valid TOML escapes


def make_config(connectors: dict[str, dict[str, Any]], base_dir: str = ".") -> Config:
    lines = []
    for name, params in connectors.items():
        lines.append(f"[connectors.{name}]")
        merged = {"type": "prometheus", "until": UNTIL, "days": 12, "retries": 0, **params}
        lines += [f"{k} = {_toml(v)}" for k, v in merged.items() if v is not None]
    return loads("\n".join(lines) + "\n", base_dir=base_dir)


def uptime_in_db(engine: Engine, source: str = "metrics") -> set[tuple[Any, ...]]:
    f = storage.read_frame(engine, records.UptimeRecord)
    f = f[f.source == source]
    return {(r.app_id, r.day, r.availability, r.samples) for r in f.itertuples()}


def usage_in_db(engine: Engine, source: str = "metrics") -> set[tuple[Any, ...]]:
    f = storage.read_frame(engine, records.UsageRecord)
    f = f[f.source == source]
    return {(r.app_id, r.day, r.metric, r.value) for r in f.itertuples()}


def run(cfg: Config, engine: Engine, **kwargs: Any) -> dict[str, records.SyncRun]:
    return {r.connector: r for r in sync(cfg, engine, **kwargs).runs}


def forwarder(target: str, token: str | None = None) -> PayloadServer:
    """A real HTTP proxy in front of Prometheus (counts queries; optionally demands a bearer token,
    as an authenticating reverse proxy in front of Prometheus does)."""

    def handler(method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        if token is not None and headers.get("Authorization") != f"Bearer {token}":
            return Reply(401, "Unauthorized\n", {"Content-Type": "text/plain"})
        r = requests.request(
            method,
            target + path,
            data=body,
            headers={"Content-Type": headers.get("Content-Type", "")},
            timeout=30,
        )
        return Reply(
            r.status_code, r.content, {"Content-Type": r.headers.get("Content-Type", "application/json")}
        )

    return PayloadServer(handler)


def query_forms(server: PayloadServer) -> list[dict[str, str]]:
    return [{k: v[0] for k, v in parse_qs(body.decode()).items()} for _m, _p, _h, body in server.requests]


# ------------------------------------------------------------------ pure parts


@pytest.mark.parametrize(
    "params, expected",
    [
        pytest.param(
            {},
            [
                ("availability", "avg by (app) (avg_over_time(up[1d]))"),
                ("samples", "sum by (app) (count_over_time(up[1d]))"),
                ("requests", "round(sum by (app) (increase(http_requests_total[1d])))"),
            ],
            id="defaults",
        ),
        pytest.param(
            {"availability_query": "probe_success", "requests": "triton", "label": "model"},
            [
                ("availability", "avg by (model) (avg_over_time(probe_success[1d]))"),
                ("samples", "sum by (model) (count_over_time(probe_success[1d]))"),
                ("requests", "round(sum by (model) (increase(nv_inference_request_success[1d])))"),
            ],
            id="probe_success-triton-label",
        ),
        pytest.param(
            {"availability_query": 'up{job=~"serving-.*"}', "requests": "vllm"},
            [
                ("availability", 'avg by (app) (avg_over_time(up{job=~"serving-.*"}[1d]))'),
                ("samples", 'sum by (app) (count_over_time(up{job=~"serving-.*"}[1d]))'),
                ("requests", "round(sum by (app) (increase(vllm:request_success_total[1d])))"),
            ],
            id="selector-vllm",
        ),
        pytest.param(
            {"availability_query": "min by (app) (avg_over_time(up[1d]))", "requests": ""},
            [("availability", "min by (app) (avg_over_time(up[1d]))")],
            id="custom-no-samples-no-requests",
        ),
        pytest.param(
            {
                "availability_query": "min by (app) (avg_over_time(up[1d]))",
                "samples_query": "sum by (app) (count_over_time(up[1d]))",
                "requests": "sum by (app) (increase(x_total[1d]))",
            },
            [
                ("availability", "min by (app) (avg_over_time(up[1d]))"),
                ("samples", "sum by (app) (count_over_time(up[1d]))"),
                ("requests", "sum by (app) (increase(x_total[1d]))"),
            ],
            id="custom-everything",
        ),
        pytest.param(
            {"requests": "kserve"},
            [
                ("availability", "avg by (app) (avg_over_time(up[1d]))"),
                ("samples", "sum by (app) (count_over_time(up[1d]))"),
                ("requests", "round(sum by (app) (increase(revision_request_count[1d])))"),
            ],
            id="kserve",
        ),
    ],
)
def test_queries_from_params(params: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    cfg = make_config({"metrics": {"url": "http://127.0.0.1:1", **params}})
    assert [(q.name, q.promql) for q in prom_connector.queries(cfg.connectors["metrics"])] == expected


def test_request_presets_name_the_real_metrics() -> None:
    assert prom_connector.REQUEST_PRESETS == {
        "http": "http_requests_total",
        "kserve": "revision_request_count",
        "triton": "nv_inference_request_success",
        "torchserve": "ts_inference_requests_total",
        "seldon": "seldon_api_executor_server_requests_seconds_count",
        "bentoml": "bentoml_service_request_total",
        "vllm": "vllm:request_success_total",
    }


@pytest.mark.parametrize(
    "start, end, max_points, expected",
    [
        pytest.param(
            date(2026, 1, 1), date(2026, 1, 1), 11_000, [(date(2026, 1, 1), date(2026, 1, 1))], id="one-day"
        ),
        pytest.param(
            date(2025, 1, 1),
            date(2025, 12, 31),
            11_000,
            [(date(2025, 1, 1), date(2025, 12, 31))],
            id="year-one-call",
        ),
        pytest.param(
            date(2026, 1, 1),
            date(2026, 1, 10),
            4,
            [
                (date(2026, 1, 1), date(2026, 1, 4)),
                (date(2026, 1, 5), date(2026, 1, 8)),
                (date(2026, 1, 9), date(2026, 1, 10)),
            ],
            id="ten-days-by-four",
        ),
        pytest.param(
            date(1990, 1, 1),
            date(2026, 1, 1),
            11_000,
            [
                (date(1990, 1, 1), date(2020, 2, 12)),  # 1990-01-01 + 10,999 days
                (date(2020, 2, 13), date(2026, 1, 1)),
            ],
            id="36-years-two-calls",
        ),
        pytest.param(date(2026, 1, 2), date(2026, 1, 1), 10, [], id="empty"),
    ],
)
def test_chunks(start: date, end: date, max_points: int, expected: list[tuple[date, date]]) -> None:
    assert prom_connector.chunks(start, end, max_points) == expected


@pytest.mark.parametrize(
    "params, since, expected",
    [
        pytest.param(
            {"until": None, "days": 90}, None, (date(2026, 8, 23), date(2026, 11, 20)), id="first-run-90-days"
        ),
        pytest.param(
            {"until": None},
            datetime(2026, 11, 18, 6, tzinfo=UTC),
            (date(2026, 11, 18), date(2026, 11, 20)),
            id="since",
        ),
        pytest.param(
            {"until": "2026-03-10", "days": 10}, None, (date(2026, 3, 1), date(2026, 3, 10)), id="until"
        ),
    ],
)
def test_day_window(params: dict[str, Any], since: datetime | None, expected: tuple[date, date]) -> None:
    cfg = make_config({"metrics": {"url": "http://127.0.0.1:1", **params}}).connectors["metrics"]
    assert prom_connector.day_window(cfg, since, today=date(2026, 11, 21)) == expected


# ------------------------------------------------------------------ against the real server


@pytest.mark.parametrize(
    "availability_query, expected",
    [
        pytest.param("up", UP_TABLE, id="preset-up"),
        pytest.param("probe_success", PROBE_TABLE, id="preset-probe_success"),
        pytest.param('up{job="serving"}', SERVING_TABLE, id="selector"),
        pytest.param("min by (app) (avg_over_time(up[1d]))", WORST_TARGET_TABLE, id="custom-promql"),
    ],
)
def test_daily_availability_is_exact(
    prom: Prometheus, engine: Engine, availability_query: str, expected: dict[str, Any]
) -> None:
    cfg = make_config({"metrics": {"url": prom.url, "availability_query": availability_query}})
    runs = run(cfg, engine)
    assert runs["metrics"].status == "success", runs["metrics"].error
    assert uptime_in_db(engine) == uptime_rows(expected)
    assert usage_in_db(engine) == set()  # default counter http_requests_total is not in this history


@pytest.mark.parametrize(
    "requests_param, expected",
    [
        pytest.param("torchserve", TORCHSERVE_TABLE, id="preset-torchserve"),
        pytest.param("vllm", VLLM_TABLE, id="preset-vllm"),
        pytest.param('ts_inference_requests_total{instance="f1"}', F1_TABLE, id="selector"),
        pytest.param(
            "round(sum by (app) (increase(ts_inference_requests_total[1d])) / 1440)",
            PER_MINUTE_TABLE,
            id="custom-promql",
        ),
    ],
)
def test_daily_requests_are_exact(
    prom: Prometheus, engine: Engine, requests_param: str, expected: dict[str, Any]
) -> None:
    cfg = make_config({"metrics": {"url": prom.url, "requests": requests_param}})
    runs = run(cfg, engine)
    assert runs["metrics"].status == "success", runs["metrics"].error
    assert usage_in_db(engine) == usage_rows(expected)
    assert uptime_in_db(engine) == uptime_rows(UP_TABLE)


@pytest.mark.parametrize(
    "max_points, calls_per_query",
    [
        pytest.param(None, 1, id="one-call-per-metric"),
        pytest.param(5, 3, id="twelve-days-in-chunks-of-five"),
    ],
)
def test_one_range_query_per_metric_for_all_apps(
    prom: Prometheus, engine: Engine, max_points: int | None, calls_per_query: int
) -> None:
    with forwarder(prom.url) as proxy:
        cfg = make_config({"metrics": {"url": proxy.url, "requests": "torchserve", "max_points": max_points}})
        runs = run(cfg, engine)
    assert runs["metrics"].status == "success", runs["metrics"].error
    forms = query_forms(proxy)
    assert [p for _m, p, _h, _b in proxy.requests] == ["/api/v1/query_range"] * 3 * calls_per_query
    assert {f["step"] for f in forms} == {"86400"}
    # every point sits at a UTC midnight: the end of the day it covers (12 days: 02-27 .. 03-10)
    covered = sorted({(int(f["start"]), int(f["end"])) for f in forms})
    assert covered[0][0] == int(datetime(2026, 2, 28, tzinfo=UTC).timestamp())
    assert covered[-1][1] == int(datetime(2026, 3, 11, tzinfo=UTC).timestamp())
    assert sum((e - s) // 86400 + 1 for s, e in covered) == 12
    assert uptime_in_db(engine) == uptime_rows(UP_TABLE)
    assert usage_in_db(engine) == usage_rows(TORCHSERVE_TABLE)


def test_sync_twice_same_rows(prom: Prometheus, engine: Engine) -> None:
    cfg = make_config({"metrics": {"url": prom.url, "requests": "torchserve"}})
    first = run(cfg, engine, full=True, now=datetime(2026, 3, 11, 5, tzinfo=UTC))["metrics"]
    assert first.status == "success", first.error
    assert first.rows_written == len(uptime_rows(UP_TABLE)) + len(usage_rows(TORCHSERVE_TABLE))
    before = (uptime_in_db(engine), usage_in_db(engine))
    again = run(cfg, engine, full=True, now=datetime(2026, 3, 11, 5, tzinfo=UTC))["metrics"]
    assert (again.status, again.rows_written, again.rows_deleted) == ("success", 0, 0)
    # an incremental run re-reads the look-back window only, and changes nothing either
    later = run(cfg, engine, now=datetime(2026, 3, 12, 6, tzinfo=UTC))["metrics"]
    assert later.since == datetime(2026, 3, 8, 5, tzinfo=UTC)  # last success - lookback_days (3)
    assert (later.status, later.rows_written, later.rows_deleted) == ("success", 0, 0)
    assert (uptime_in_db(engine), usage_in_db(engine)) == before


def test_rows_the_server_no_longer_has_are_replaced(prom: Prometheus, engine: Engine) -> None:
    cfg = make_config({"metrics": {"url": prom.url, "requests": "torchserve"}})
    assert run(cfg, engine)["metrics"].status == "success"
    ghost_day, outside = date(2026, 3, 5), date(2026, 1, 1)  # in the window / before it
    with engine.begin() as conn:
        storage.upsert(
            conn,
            records.UptimeRecord,
            [
                records.UptimeRecord(
                    source="metrics", app_id="ghost", day=ghost_day, availability=0.5, samples=1
                ),
                records.UptimeRecord(
                    source="metrics", app_id="ghost", day=outside, availability=0.5, samples=1
                ),
                records.UptimeRecord(
                    source="other", app_id="ghost", day=ghost_day, availability=0.5, samples=1
                ),
            ],
        )
        storage.upsert(
            conn,
            records.UsageRecord,
            [
                records.UsageRecord(
                    source="metrics", app_id="ghost", day=ghost_day, metric="requests", value=1
                )
            ],
        )
    again = run(cfg, engine, full=True)["metrics"]
    assert (again.status, again.rows_deleted) == ("success", 2)
    assert uptime_in_db(engine) == uptime_rows(UP_TABLE) | {("ghost", outside, 0.5, 1)}
    assert uptime_in_db(engine, "other") == {("ghost", ghost_day, 0.5, 1)}
    assert usage_in_db(engine) == usage_rows(TORCHSERVE_TABLE)


@pytest.mark.parametrize(
    "params, expected_in_error",
    [
        pytest.param(
            {"availability_query": "avg by (app) (avg_over_time(up[1d])"},
            "metrics: HTTP 400 /api/v1/query_range availability query failed: bad_data: ",
            id="bad-promql",
        ),
        pytest.param(
            {"requests": "rate(ts_inference_requests_total)"},
            "metrics: HTTP 400 /api/v1/query_range requests query failed: bad_data: ",
            id="bad-requests-promql",
        ),
        pytest.param(
            {"availability_query": "sum by (app) (count_over_time(up[1d]))"},
            "availability query returned 1440.0 for app='churn' on 2026-03-01: expected 0..1",
            id="not-a-ratio",
        ),
        pytest.param(
            {"availability_query": "avg_over_time(up[1d])"},
            "the availability query returned several series for app='fraud': aggregate it by (app)",
            id="not-aggregated",
        ),
        pytest.param(
            {"label": "app name"}, "label 'app name' is not a Prometheus label name", id="bad-label"
        ),
    ],
)
def test_bad_input_clear_error_nothing_lost(
    prom: Prometheus, engine: Engine, params: dict[str, Any], expected_in_error: str
) -> None:
    good = make_config({"metrics": {"url": prom.url, "requests": "torchserve"}})
    assert run(good, engine)["metrics"].status == "success"
    before = (uptime_in_db(engine), usage_in_db(engine))
    bad = make_config({"metrics": {"url": prom.url, "requests": "torchserve", **params}})
    failed = run(bad, engine, full=True)["metrics"]
    assert failed.status == "failed"
    assert expected_in_error in (failed.error or "")
    assert (failed.rows_written, failed.rows_deleted) == (0, 0)
    assert (uptime_in_db(engine), usage_in_db(engine)) == before


def test_bad_until_is_refused_when_the_config_loads() -> None:
    """Issue 12: a date that is not YYYY-MM-DD was refused by the pull; it is now refused with the
    other settings when portfolio.toml is loaded, naming the key and not echoing the value."""
    with pytest.raises(SettingsError) as exc:
        make_config({"metrics": {"url": "http://127.0.0.1:9", "until": "10/03/2026"}})
    assert (exc.value.connector, exc.value.key) == ("metrics", "until")
    assert "connectors.metrics.until: input should be a valid date" in str(exc.value)
    assert "10/03/2026" not in str(exc.value)


def test_prometheus_error_body_is_verbatim_in_the_ledger(prom: Prometheus, engine: Engine) -> None:
    bad_query = "avg by (app) (avg_over_time(up[1d])"
    # what Prometheus itself answers to that query
    answer = requests.post(
        f"{prom.url}/api/v1/query_range",
        data={"query": bad_query, "start": 0, "end": 86400, "step": 86400},
        timeout=10,
    ).json()
    assert answer["status"] == "error"
    cfg = make_config({"metrics": {"url": prom.url, "availability_query": bad_query}})
    failed = run(cfg, engine)["metrics"]
    ledger = storage.read_frame(engine, records.SyncRun)
    assert ledger.error.tolist() == [failed.error]
    assert f"{answer['errorType']}: {answer['error']}" in (failed.error or "")


def test_server_down_fails_this_connector_only(blocks: Path, prom: Prometheus, engine: Engine) -> None:
    own = Prometheus.start(blocks)
    try:
        cfg = make_config(
            {
                "metrics": {"url": own.url, "requests": "torchserve"},
                "metrics-b": {"url": prom.url, "requests": "torchserve"},
            }
        )
        runs = run(cfg, engine)
        assert {n: r.status for n, r in runs.items()} == {"metrics": "success", "metrics-b": "success"}
        own.stop()  # the server goes away between two syncs
        runs = run(cfg, engine, full=True)
    finally:
        own.stop()
    assert runs["metrics"].status == "failed"
    assert runs["metrics"].error == (
        "metrics: /api/v1/query_range Prometheus unreachable (ConnectionError) running the availability query"
    )
    assert runs["metrics-b"].status == "success"
    assert uptime_in_db(engine) == uptime_rows(UP_TABLE)  # the earlier rows are intact
    assert usage_in_db(engine) == usage_rows(TORCHSERVE_TABLE)


def test_basic_auth(blocks: Path, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    server = Prometheus.start(blocks, web_config=(FIXTURES / "web-basic-auth.yml").read_text())
    try:
        monkeypatch.setenv("PROM_PASSWORD", PASSWORD)
        monkeypatch.setenv("WRONG_PASSWORD", "not-the-password")
        cfg = make_config(
            {
                "metrics": {"url": server.url, "username": "reader", "password_env": "PROM_PASSWORD"},
                "wrong": {"url": server.url, "username": "reader", "password_env": "WRONG_PASSWORD"},
                "unset": {"url": server.url, "username": "reader", "password_env": "NOT_SET_ANYWHERE"},
                "anonymous": {"url": server.url},
            }
        )
        runs = run(cfg, engine)
    finally:
        server.stop()
    assert runs["metrics"].status == "success", runs["metrics"].error
    assert uptime_in_db(engine) == uptime_rows(UP_TABLE)
    assert runs["wrong"].error == (
        "wrong: HTTP 401 /api/v1/query_range authentication refused: check username/password_env or token_env"
    )
    assert runs["anonymous"].error == (runs["wrong"].error or "").replace("wrong:", "anonymous:")
    assert runs["unset"].error == "unset: environment variable NOT_SET_ANYWHERE (password_env) is not set"
    ledger = storage.read_frame(engine, records.SyncRun).to_json(date_format="iso")
    assert PASSWORD not in ledger and "not-the-password" not in ledger


def test_bearer_token(prom: Prometheus, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    token = "tok-3f9a7c1e55d2"
    monkeypatch.setenv("PROM_TOKEN", token)
    monkeypatch.setenv("OLD_TOKEN", "tok-revoked-0000")
    with forwarder(prom.url, token=token) as proxy:
        cfg = make_config(
            {
                "metrics": {"url": proxy.url, "token_env": "PROM_TOKEN", "headers": {"X-Scope-OrgID": "ml"}},
                "revoked": {"url": proxy.url, "token_env": "OLD_TOKEN"},
                "unset": {"url": proxy.url, "token_env": "NOT_SET_ANYWHERE"},
            }
        )
        runs = run(cfg, engine)
    assert runs["metrics"].status == "success", runs["metrics"].error
    assert uptime_in_db(engine) == uptime_rows(UP_TABLE)
    assert runs["revoked"].error == (
        "revoked: HTTP 401 /api/v1/query_range authentication refused: check username/password_env or token_env"
    )
    assert runs["unset"].error == "unset: environment variable NOT_SET_ANYWHERE (token_env) is not set"
    sent = [h for _m, path, h, _b in proxy.requests if token not in path]
    assert len(sent) == len(proxy.requests) > 0  # the token never travels in the URL
    good = [h for h in sent if h.get("Authorization") == f"Bearer {token}"]
    assert len(good) == 3 and all(h.get("X-Scope-OrgID") == "ml" for h in good)
    assert token not in storage.read_frame(engine, records.SyncRun).to_json(date_format="iso")


@pytest.mark.filterwarnings(
    "ignore::urllib3.exceptions.InsecureRequestWarning"
)  # tls_verify = false, on purpose
def test_tls_verify(blocks: Path, engine: Engine, tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    web = f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n"
    server = Prometheus.start(blocks, web_config=web, scheme="https")
    try:
        cfg = make_config(
            {
                # tls_verify = a CA bundle, relative to the config file's folder
                "metrics": {"url": server.url, "tls_verify": "cert.pem"},
                "insecure": {"url": server.url, "tls_verify": False},
                "verified": {"url": server.url},
            },
            base_dir=str(tmp_path),
        )
        runs = run(cfg, engine)
    finally:
        server.stop()
    assert runs["metrics"].status == "success", runs["metrics"].error
    assert runs["insecure"].status == "success", runs["insecure"].error
    assert uptime_in_db(engine) == uptime_in_db(engine, "insecure") == uptime_rows(UP_TABLE)
    assert runs["verified"].error == (
        "verified: /api/v1/query_range TLS verification failed (SSLError) running the availability query: "
        "set tls_verify to the server's CA bundle, or to false"
    )


class _Exporter:
    """A tiny real exporter: /metrics serves a counter that grows by 7 at every scrape."""

    def __init__(self) -> None:
        template = (FIXTURES / "exporter.prom").read_text()
        self.scrapes = 0
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.scrapes += 1
                body = template.replace("{value}", str(7 * outer.scrapes)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.target = f"127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_live_scrape_of_a_local_exporter(engine: Engine) -> None:
    exporter = _Exporter()
    server = Prometheus.start(
        scrape=[
            {
                "job_name": "live",
                "targets": [exporter.target],
                "labels": {"app": "live-app"},
                "scrape_interval": "1s",
            }
        ],
        scrape_interval="1s",
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # bounded: wait for a few scrapes to be queryable
            r = requests.get(
                f"{server.url}/api/v1/query",
                params={"query": 'count_over_time(up{app="live-app"}[1m])'},
                timeout=5,
            ).json()
            if r["data"]["result"] and float(r["data"]["result"][0]["value"][1]) >= 2:  # increase needs 2
                break
            time.sleep(0.25)
        else:
            raise AssertionError(f"prometheus never scraped the exporter: {server.log()[-1000:]}")
        today = datetime.now(UTC).date()
        cfg = make_config(
            {
                "metrics": {
                    "url": server.url,
                    "until": today.isoformat(),
                    "days": 2,
                    "requests": "demo_inference_requests_total",
                }
            }
        )
        runs = run(cfg, engine)
    finally:
        server.stop()
        exporter.stop()
    assert runs["metrics"].status == "success", runs["metrics"].error
    uptime = uptime_in_db(engine)
    assert {app for app, *_ in uptime} == {"live-app"}
    assert all(avail == 1.0 for _app, _day, avail, _n in uptime)  # a non-zero `up`: the target answered
    assert sum(n for *_rest, n in uptime) >= 2
    usage = usage_in_db(engine)
    assert {app for app, *_ in usage} == {"live-app"}
    assert sum(v for *_rest, v in usage) >= 7


def test_slow_server_times_out_with_a_clear_error(prom: Prometheus, engine: Engine) -> None:
    good = make_config({"metrics": {"url": prom.url}})
    assert run(good, engine)["metrics"].status == "success"

    # a server that accepts connections (the kernel's backlog) but never answers
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        failed = run(make_config({"metrics": {"url": url, "timeout": 0.3}}), engine, full=True)["metrics"]
    assert failed.error == (
        "metrics: /api/v1/query_range Prometheus did not answer the availability query within 0.3s (ReadTimeout): "
        "raise timeout, or lower max_points to split the range"
    )
    assert uptime_in_db(engine) == uptime_rows(UP_TABLE)


def test_a_label_no_series_has_is_noticed(prom: Prometheus, engine: Engine) -> None:
    cfg = make_config({"metrics": {"url": prom.url, "label": "model", "requests": "torchserve"}})
    done = run(cfg, engine)["metrics"]
    assert (done.status, done.rows_written) == ("success", 0)
    assert done.warnings == "\n".join(
        f"the {q} query returned 1 series, none with the label 'model': check label, or aggregate the query by (model)"
        for q in ("availability", "samples", "requests")
    )


def test_prometheus_warnings_are_kept_in_the_ledger(engine: Engine) -> None:
    # the documented envelope of a partial answer (Thanos / Mimir front ends add "warnings")
    day_end = int(datetime(2026, 3, 10, tzinfo=UTC).timestamp())
    payload = {
        "status": "success",
        "warnings": ["partial response: store 10.0.0.7:10901 unavailable"],
        "data": {
            "resultType": "matrix",
            "result": [{"metric": {"app": "churn"}, "values": [[day_end, "0.5"]]}],
        },
    }
    with PayloadServer(lambda *_: Reply(200, payload)) as server:
        cfg = make_config({"metrics": {"url": server.url, "requests": "", "until": "2026-03-09", "days": 1}})
        done = run(cfg, engine)["metrics"]
    assert done.status == "success", done.error
    assert done.warnings == (
        "Prometheus warning on the availability query: partial response: store 10.0.0.7:10901 unavailable\n"
        "Prometheus warning on the samples query: partial response: store 10.0.0.7:10901 unavailable"
    )
    assert uptime_in_db(engine) == {("churn", date(2026, 3, 9), 0.5, 0)}

"""Anthropic connector against a real local HTTP server (tests/servers.PayloadServer) serving the
documented cost report and messages usage report (tests/fixtures/anthropic/, from Anthropic's API
reference) with each test's values: two pages joined by ``next_page``, empty buckets, unknown
extra fields, and Anthropic's error bodies for 401, 429 (``retry-after``) and 500."""

from __future__ import annotations

import copy
import json
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy.engine import Engine

from connectors import anthropic
from portfolio import config, pnl, records, storage, sync
from portfolio.errors import ConnectorError
from portfolio.facts import load_facts
from tests.servers import PayloadServer, Reply

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "anthropic"
COST = json.loads((FIX / "cost_report.example.json").read_text())
USAGE = json.loads((FIX / "usage_report_messages.example.json").read_text())
U = records.UNALLOCATED
D = Decimal
KEY = "sk-ant-admin01-TESTKEY-zyxw987654"
TODAY = datetime.now(UTC).date()
DAY1, DAY2 = TODAY - timedelta(days=2), TODAY - timedelta(days=1)
WS_SUP, WS_DOC = "wrkspc_01JwQvzr7rXLA5AGx3HKfFUJ", "wrkspc_docs"
SONNET = "claude-sonnet-4-20250514"


def bucket(example: dict[str, Any], d: date, results: list[dict[str, Any]]) -> dict[str, Any]:
    template = example["data"][0]
    out = copy.deepcopy(template)
    out.update(starting_at=f"{d.isoformat()}T00:00:00Z", ending_at=f"{(d + timedelta(days=1)).isoformat()}T00:00:00Z")
    out["results"] = [{**copy.deepcopy(template["results"][0]), **r} for r in results]
    return out


def page(example: dict[str, Any], buckets: list[dict[str, Any]], next_page: str | None = None) -> dict[str, Any]:
    out = copy.deepcopy(example)
    out.update(data=buckets, has_more=next_page is not None, next_page=next_page, some_new_field=[1, 2])
    return out


def line(cents: str, workspace: str | None, description: str, model: str | None = SONNET) -> dict[str, Any]:
    return {"amount": cents, "workspace_id": workspace, "description": description, "model": model, "unknown": True}


IN, OUT = "Claude Sonnet 4 Usage - Input Tokens", "Claude Sonnet 4 Usage - Output Tokens"
# day 1: support workspace 123.78912 + 50 cents; docs workspace 1000 cents; the Default Workspace
# (id null, unmapped) 7 cents. Day 2: support 1 cent. Day 3... none (an empty bucket).
GROUPED_P1 = page(COST, [bucket(COST, DAY1, [
    line("123.78912", WS_SUP, IN), line("50", WS_SUP, OUT), line("1000", WS_DOC, IN), line("7", None, IN),
])], next_page="page_CCC")
GROUPED_P2 = page(COST, [bucket(COST, DAY2, [line("1", WS_SUP, IN)]), {**bucket(COST, TODAY - timedelta(days=3), []), "results": []}])
TOTALS = page(COST, [bucket(COST, DAY1, [{"amount": "1180.78912", "workspace_id": None, "description": None, "model": None}]),
                     bucket(COST, DAY2, [{"amount": "1", "workspace_id": None, "description": None, "model": None}])])
USAGE_P1 = page(USAGE, [bucket(USAGE, DAY1, [{}])], next_page="page_DDD")  # the documented numbers, workspace WS_SUP
USAGE_P2 = page(USAGE, [bucket(USAGE, DAY2, [
    {"workspace_id": WS_DOC, "api_key_id": "apikey_docs", "uncached_input_tokens": 10, "cache_read_input_tokens": 0,
     "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0}, "output_tokens": 20},
    {"workspace_id": None, "api_key_id": None, "uncached_input_tokens": 7, "cache_read_input_tokens": 0,
     "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0}, "output_tokens": 0},
])])


def default_routes(path: str, q: dict[str, list[str]]) -> Reply:
    if path == "/v1/organizations/cost_report":
        if "group_by[]" not in q:
            return Reply(200, TOTALS)
        return Reply(200, GROUPED_P2 if q.get("page") == ["page_CCC"] else GROUPED_P1)
    if path == "/v1/organizations/usage_report/messages":
        return Reply(200, USAGE_P2 if q.get("page") == ["page_DDD"] else USAGE_P1)
    return Reply(404, {"type": "error", "error": {"type": "not_found_error", "message": "Not found"}})


def serve(routes=default_routes) -> PayloadServer:
    def handler(method: str, path: str, headers: dict[str, str], _body: bytes) -> Reply:
        u = urlsplit(path)
        return routes(u.path, parse_qs(u.query))

    return PayloadServer(handler)


def make_config(engine: Engine, url: str, extra: str = "") -> config.Config:
    return config.loads(f"""database_url = "{engine.url}"
[[apps]]
id = "support-bot"
team = "cx"
[[apps]]
id = "docs-qa"
team = "core"

[connectors.claude]
type = "anthropic"
url = "{url}"
admin_key_env = "ANTHROPIC_ADMIN_KEY"
days = 3
retries = 1
workspaces = {{ {WS_SUP} = "support-bot", {WS_DOC} = "docs-qa" }}
{extra}
""")


def run(cfg: config.Config, engine: Engine, **kw: Any) -> records.SyncRun:
    return sync.sync(cfg, engine, only=["claude"], **kw).runs[0]


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_ADMIN_KEY", KEY)


def test_cents_become_exact_dollars_per_app_and_days_reconcile(engine: Engine) -> None:
    with serve() as server:
        result = run(make_config(engine, server.url), engine)
        sent = [(urlsplit(p).path, parse_qs(urlsplit(p).query), h) for _, p, h, _ in server.requests]
    assert result.status == "success", result.error
    frame = storage.read_frame(engine, records.CostRecord)
    got = {(r.app_id, r.day, r.service): (r.amount, r.model, r.billing_period, r.category) for r in frame.itertuples()}
    assert got == {
        ("support-bot", DAY1, IN): (D("1.237891"), SONNET, DAY1.isoformat(), "vendor"),  # 123.78912 cents, to the micro-dollar
        ("support-bot", DAY1, OUT): (D("0.5"), SONNET, DAY1.isoformat(), "vendor"),
        ("docs-qa", DAY1, IN): (D("10"), SONNET, DAY1.isoformat(), "vendor"),
        (U, DAY1, IN): (D("0.07"), SONNET, DAY1.isoformat(), "vendor"),
        ("support-bot", DAY2, IN): (D("0.01"), SONNET, DAY2.isoformat(), "vendor"),
    }
    # per app to the cent, by hand: support $1.2378912 + $0.50 + $0.01 = $1.75; docs $10.00
    per_app = frame.groupby("app_id")["amount"].sum()
    assert {k: v.quantize(D("0.01")) for k, v in per_app.items()} == {"support-bot": D("1.75"), "docs-qa": D("10.00"), U: D("0.07")}
    assert "default (0.07)" in (result.warnings or "")  # the Default Workspace is unmapped: 7 cents, reported
    rec = pnl.reconciliation(load_facts(engine))
    rec = rec[rec.source == "claude"]
    assert list(rec.status) == ["ok", "ok"] and list(rec.billed) == [11.807891, 0.01]
    assert all(h["x-api-key"] == KEY and h["anthropic-version"] == "2023-06-01" for _, _, h in sent)
    grouped = [q for path, q, _ in sent if path == "/v1/organizations/cost_report" and "group_by[]" in q]
    assert [q.get("page") for q in grouped] == [None, ["page_CCC"]]
    assert grouped[0]["group_by[]"] == ["workspace_id", "description"] and grouped[0]["bucket_width"] == ["1d"]
    assert grouped[0]["starting_at"] == [f"{(TODAY - timedelta(days=3)).isoformat()}T00:00:00Z"]
    assert grouped[0]["ending_at"] == [f"{TODAY.isoformat()}T00:00:00Z"]


def test_tokens_per_app_day_and_model(engine: Engine) -> None:
    with serve() as server:
        result = run(make_config(engine, server.url, 'api_keys = { apikey_docs = "support-bot" }'), engine)
    assert result.status == "success", result.error
    frame = storage.read_frame(engine, records.UsageRecord)
    assert {(r.app_id, r.day, r.model, r.metric): r.value for r in frame.itertuples()} == {
        # the documented result: 1500 uncached, 200 cache reads, 1000 + 500 cache writes, 500 output
        ("support-bot", DAY1, SONNET, "input_tokens"): 1500,
        ("support-bot", DAY1, SONNET, "cached_input_tokens"): 200,
        ("support-bot", DAY1, SONNET, "cache_write_tokens"): 1500,
        ("support-bot", DAY1, SONNET, "output_tokens"): 500,
        # the API key mapping wins over the workspace (docs-qa)
        ("support-bot", DAY2, SONNET, "input_tokens"): 10,
        ("support-bot", DAY2, SONNET, "output_tokens"): 20,
        (U, DAY2, SONNET, "input_tokens"): 7,
    }


def test_sync_twice_same_rows(engine: Engine) -> None:
    with serve() as server:
        cfg = make_config(engine, server.url)
        assert run(cfg, engine).status == "success"
        before = {t: storage.read_frame(engine, t).drop(columns="id", errors="ignore") for t in (records.CostRecord, records.UsageRecord, records.BillingTotal)}
        second = run(cfg, engine, full=True)
    assert (second.status, second.rows_written, second.rows_deleted) == ("success", 0, 0)
    for t, frame in before.items():
        assert storage.read_frame(engine, t).drop(columns="id", errors="ignore").equals(frame)


def failing(status: int, kind: str, message: str, headers: dict[str, str] | None = None, times: int = 10**6):
    calls = {"n": 0}
    body = {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy"}

    def routes(path: str, q: dict[str, list[str]]) -> Reply:
        calls["n"] += 1
        return Reply(status, body, headers or {}) if calls["n"] <= times else default_routes(path, q)

    return routes, calls


def test_bad_key_names_the_connector_never_the_key(engine: Engine) -> None:
    routes, _ = failing(401, "authentication_error", "invalid x-api-key")
    with serve(routes) as server:
        result = run(make_config(engine, server.url), engine)
    assert result.status == "failed"
    assert result.error.startswith("claude: HTTP 401 /v1/organizations/cost_report authentication refused")
    assert KEY not in result.error


def test_rate_limit_retry_after_then_success_and_errors_after_retries(engine: Engine) -> None:
    routes, _ = failing(429, "rate_limit_error", "Number of requests has exceeded your rate limit", {"retry-after": "1"}, times=1)
    with serve(routes) as server:
        t0 = time.monotonic()
        result = run(make_config(engine, server.url), engine)
        assert time.monotonic() - t0 >= 1.0
    assert result.status == "success", result.error
    routes, calls = failing(429, "rate_limit_error", "Number of requests has exceeded your rate limit", {"retry-after": "0"})
    with serve(routes) as server:
        result = run(make_config(engine, server.url), engine, full=True)
    assert result.status == "failed" and calls["n"] == 2
    assert "HTTP 429" in result.error and "rate_limit_error: Number of requests has exceeded" in result.error
    routes, _ = failing(500, "api_error", "Internal server error")
    with serve(routes) as server:
        result = run(make_config(engine, server.url), engine, full=True)
    assert result.error == "claude: HTTP 500 /v1/organizations/cost_report api_error: Internal server error"
    assert storage.read_frame(engine, records.CostRecord).amount.sum() == D("11.817891")  # the earlier good sync intact


def test_dollars_of_cents_exact() -> None:
    assert anthropic.dollars("123.45", "c", "/") == D("1.2345")
    assert anthropic.dollars("0.00001", "c", "/") == D("0.0000001")
    with pytest.raises(ConnectorError, match="not a decimal string"):
        anthropic.dollars("12,5", "c", "/")

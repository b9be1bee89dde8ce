"""OpenAI connector against a real local HTTP server (tests/servers.PayloadServer) serving OpenAI's
documented Costs and Usage API answers (../shared/data/recorded/openai/*.example.json, shaped by
its official OpenAPI description) with the values of each test put in: two pages joined by
``next_page``, empty buckets, unknown extra fields, and OpenAI's error bodies for 401, 429, 500."""

from __future__ import annotations

import copy
import json
import re
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy.engine import Engine

from connectors import openai
from portfolio import config, pnl, records, storage, sync
from portfolio.facts import load_facts
from tests.servers import SHARED_DATA, PayloadServer, Reply

REC = SHARED_DATA / "recorded" / "openai"
COSTS = json.loads((REC / "organization_costs.example.json").read_text())
COMPLETIONS = json.loads((REC / "organization_usage_completions.example.json").read_text())
EMBEDDINGS = json.loads((REC / "organization_usage_embeddings.example.json").read_text())
U = records.UNALLOCATED
D = Decimal
KEY = "sk-admin-TESTKEY-abcdef123456"

TODAY = datetime.now(UTC).date()
DAY1, DAY2 = TODAY - timedelta(days=2), TODAY - timedelta(days=1)


def ts(d: date) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp())


def bucket(example: dict[str, Any], d: date, results: list[dict[str, Any]]) -> dict[str, Any]:
    """A bucket of ``example``'s shape for day ``d`` whose results are the example's result with ``results`` applied."""
    template = example["data"][0]
    out = copy.deepcopy(template)
    out.update(start_time=ts(d), end_time=ts(d + timedelta(days=1)))
    out["results"] = [{**copy.deepcopy(template["results"][0]), **r} for r in results]
    return out


def page(example: dict[str, Any], buckets: list[dict[str, Any]], next_page: str | None = None) -> dict[str, Any]:
    out = copy.deepcopy(example)
    out.update(data=buckets, has_more=next_page is not None, next_page=next_page)
    out["unknown_top_level_field"] = {"added": "later"}  # the API may add fields
    return out


def cost(value: str, project: str | None, line: str | None) -> dict[str, Any]:
    """A cost result whose ``amount.value`` is the JSON number ``value`` written exactly as given."""
    return {"amount": {"value": f"__num:{value}", "currency": "usd"}, "project_id": project, "line_item": line, "new_field": 1}


def as_json(body: Any) -> bytes:
    return re.sub(r'"__num:([-0-9.eE+]+)"', r"\1", json.dumps(body)).encode()


# day 1: support (proj_sup) 0.1 + 0.2 (exact 0.30), search (proj_srch) 1.25, an unmapped project 0.05
# day 2: support 2.000001; nothing else. Page 1 holds day 1, page 2 day 2 (joined by next_page).
GROUPED_P1 = page(COSTS, [bucket(COSTS, DAY1, [
    cost("0.1", "proj_sup", "gpt-4o-mini-2024-07-18, input"),
    cost("0.2", "proj_sup", "gpt-4o-mini-2024-07-18, output"),
    cost("1.25", "proj_srch", "text-embedding-3-small, input"),
    cost("0.05", "proj_other", "gpt-4o-2024-08-06, input"),
])], next_page="page_AAA")
GROUPED_P2 = page(COSTS, [bucket(COSTS, DAY2, [cost("2.000001", "proj_sup", "gpt-4o-mini-2024-07-18, input")])])
# OpenAI's own daily totals (no group_by): what the grouped rows must add up to
TOTALS = page(COSTS, [bucket(COSTS, DAY1, [cost("1.6", None, None)]), bucket(COSTS, DAY2, [cost("2.000001", None, None)])])

COMPLETIONS_P1 = page(COMPLETIONS, [bucket(COMPLETIONS, DAY1, [
    {"project_id": "proj_sup", "model": "gpt-4o-mini-2024-07-18"},  # the documented numbers: 500/400/100/500, 5 requests
])], next_page="page_BBB")
COMPLETIONS_P2 = page(COMPLETIONS, [bucket(COMPLETIONS, DAY2, [
    {"project_id": "proj_sup", "model": "gpt-4o-mini-2024-07-18", "input_tokens": 3000, "input_cached_tokens": 1000,
     "input_cache_write_tokens": 0, "input_uncached_tokens": 2000, "output_tokens": 700, "num_model_requests": 9},
])])
EMBED = page(EMBEDDINGS, [bucket(EMBEDDINGS, DAY1, [{"project_id": "proj_srch", "model": "text-embedding-3-small", "input_tokens": 16000}]),
                          {**bucket(EMBEDDINGS, DAY2, []), "results": []}])  # an empty bucket
MODERATIONS_EMPTY = page(EMBEDDINGS, [])


def default_routes(path: str, q: dict[str, list[str]]) -> Reply:
    if path == "/v1/organization/costs":
        if "group_by" not in q:
            return Reply(200, TOTALS)
        return Reply(200, GROUPED_P2 if q.get("page") == ["page_AAA"] else GROUPED_P1)
    if path == "/v1/organization/usage/completions":
        return Reply(200, COMPLETIONS_P2 if q.get("page") == ["page_BBB"] else COMPLETIONS_P1)
    if path == "/v1/organization/usage/embeddings":
        return Reply(200, EMBED)
    if path == "/v1/organization/usage/moderations":
        return Reply(200, MODERATIONS_EMPTY)
    return Reply(404, {"error": {"message": "not found", "type": "invalid_request_error"}})


def serve(routes=default_routes) -> PayloadServer:
    def handler(method: str, path: str, headers: dict[str, str], _body: bytes) -> Reply:
        u = urlsplit(path)
        reply = routes(u.path, parse_qs(u.query))
        return Reply(reply.status, as_json(reply.body), reply.headers)

    return PayloadServer(handler)


def make_config(engine: Engine, url: str, extra: str = "") -> config.Config:
    return config.loads(f"""database_url = "{engine.url}"
[[apps]]
id = "support-bot"
team = "cx"
[[apps]]
id = "search"
team = "core"

[connectors.oai]
type = "openai"
url = "{url}/v1"
admin_key_env = "OPENAI_ADMIN_KEY"
days = 2
retries = 1
projects = {{ proj_sup = "support-bot", proj_srch = "search" }}
{extra}
""")


def run(cfg: config.Config, engine: Engine, **kw: Any) -> records.SyncRun:
    return sync.sync(cfg, engine, only=["oai"], **kw).runs[0]


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_ADMIN_KEY", KEY)


def test_costs_per_app_to_the_cent_and_daily_totals_reconcile(engine: Engine) -> None:
    with serve() as server:
        result = run(make_config(engine, server.url), engine)
        sent = [(urlsplit(p).path, parse_qs(urlsplit(p).query), h) for _, p, h, _ in server.requests]
    assert result.status == "success", result.error
    frame = storage.read_frame(engine, records.CostRecord)
    got = {(r.app_id, r.day, r.service): (r.amount, r.model, r.billing_period, r.category, bool(r.estimated)) for r in frame.itertuples()}
    mini = "gpt-4o-mini-2024-07-18"
    assert got == {
        ("support-bot", DAY1, f"{mini}, input"): (D("0.1"), mini, DAY1.isoformat(), "vendor", False),
        ("support-bot", DAY1, f"{mini}, output"): (D("0.2"), mini, DAY1.isoformat(), "vendor", False),
        ("search", DAY1, "text-embedding-3-small, input"): (D("1.25"), "text-embedding-3-small", DAY1.isoformat(), "vendor", False),
        (U, DAY1, "gpt-4o-2024-08-06, input"): (D("0.05"), "gpt-4o-2024-08-06", DAY1.isoformat(), "vendor", False),
        ("support-bot", DAY2, f"{mini}, input"): (D("2.000001"), mini, DAY2.isoformat(), "vendor", False),
    }
    # per app, by hand: support 0.1 + 0.2 + 2.000001 = 2.300001; search 1.25; unallocated 0.05
    per_app = frame.groupby("app_id")["amount"].sum().to_dict()
    assert per_app == {"support-bot": D("2.300001"), "search": D("1.25"), U: D("0.05")}
    assert "proj_other (0.05)" in (result.warnings or "")
    # each day's rows add up to OpenAI's own total of that day
    rec = pnl.reconciliation(load_facts(engine))
    rec = rec[rec.source == "oai"]
    assert list(rec.billing_period) == [DAY1.isoformat(), DAY2.isoformat()]
    assert list(rec.status) == ["ok", "ok"]
    assert list(rec.billed) == [1.6, 2.000001]
    # what was asked: daily buckets, grouped by project and line item, both pages, bearer key in a header only
    grouped = [q for path, q, _ in sent if path == "/v1/organization/costs" and "group_by" in q]
    assert [q.get("page") for q in grouped] == [None, ["page_AAA"]]
    assert grouped[0]["group_by"] == ["project_id", "line_item"] and grouped[0]["bucket_width"] == ["1d"]
    assert grouped[0]["start_time"] == [str(ts(DAY1))] and grouped[0]["end_time"] == [str(ts(TODAY))]
    assert all(h["Authorization"] == f"Bearer {KEY}" for _, _, h in sent)
    assert not any(KEY in json.dumps(q) for _, q, _ in sent)


def test_tokens_per_app_day_and_model(engine: Engine) -> None:
    with serve() as server:
        result = run(make_config(engine, server.url), engine)
    assert result.status == "success", result.error
    frame = storage.read_frame(engine, records.UsageRecord)
    got = {(r.app_id, r.day, r.model, r.metric): r.value for r in frame.itertuples()}
    mini = "gpt-4o-mini-2024-07-18"
    assert got == {
        # the documented completions result: input 1000 = 500 uncached + 400 cached + 100 cache writes
        ("support-bot", DAY1, mini, "input_tokens"): 500,
        ("support-bot", DAY1, mini, "cached_input_tokens"): 400,
        ("support-bot", DAY1, mini, "cache_write_tokens"): 100,
        ("support-bot", DAY1, mini, "output_tokens"): 500,
        ("support-bot", DAY1, mini, "requests"): 5,
        ("support-bot", DAY2, mini, "input_tokens"): 2000,
        ("support-bot", DAY2, mini, "cached_input_tokens"): 1000,
        ("support-bot", DAY2, mini, "output_tokens"): 700,
        ("support-bot", DAY2, mini, "requests"): 9,
        ("search", DAY1, "text-embedding-3-small", "input_tokens"): 16000,
        ("search", DAY1, "text-embedding-3-small", "requests"): 2,
    }


def test_sync_twice_same_rows(engine: Engine) -> None:
    with serve() as server:
        cfg = make_config(engine, server.url)
        first = run(cfg, engine)
        assert first.status == "success", first.error
        before = {t: storage.read_frame(engine, t).drop(columns="id", errors="ignore") for t in (records.CostRecord, records.UsageRecord, records.BillingTotal)}
        second = run(cfg, engine, full=True)
    assert (second.status, second.rows_written, second.rows_deleted) == ("success", 0, 0)
    for t, frame in before.items():
        assert storage.read_frame(engine, t).drop(columns="id", errors="ignore").equals(frame)


def test_api_key_mapping_wins_over_project(engine: Engine) -> None:
    def routes(path: str, q: dict[str, list[str]]) -> Reply:
        if path == "/v1/organization/costs" and "group_by" in q:
            assert q["group_by"] == ["project_id", "line_item", "api_key_id"]
            return Reply(200, page(COSTS, [bucket(COSTS, DAY1, [
                {**cost("0.7", "proj_sup", "gpt-4o, input"), "api_key_id": "key_search"},
                {**cost("0.9", "proj_sup", "gpt-4o, input"), "api_key_id": "key_other"},
            ])]))
        return default_routes(path, q)

    with serve(routes) as server:
        result = run(make_config(engine, server.url, 'api_keys = { key_search = "search" }'), engine)
    assert result.status == "success", result.error
    frame = storage.read_frame(engine, records.CostRecord)
    assert frame.groupby("app_id")["amount"].sum().to_dict() == {"search": D("0.7"), "support-bot": D("0.9")}


def error_routes(status: int, body: dict[str, Any], headers: dict[str, str] | None = None, times: int = 10**6):
    calls = {"n": 0}

    def routes(path: str, q: dict[str, list[str]]) -> Reply:
        calls["n"] += 1
        if calls["n"] <= times:
            return Reply(status, body, headers or {})
        return default_routes(path, q)

    return routes, calls


def test_bad_key_clear_error_naming_connector_never_the_key(engine: Engine) -> None:
    body = {"error": {"message": f"Incorrect API key provided: {KEY[:10]}****{KEY[-4:]}. You can find your API key at https://platform.openai.com/account/api-keys.",
                      "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}}
    routes, _ = error_routes(401, body)
    with serve(routes) as server:
        result = run(make_config(engine, server.url), engine)
    assert result.status == "failed"
    assert result.error.startswith("oai: HTTP 401 /v1/organization/costs authentication refused")
    assert "admin_key_env" in result.error
    assert KEY not in result.error and KEY[-4:] not in result.error and "sk-admin" not in result.error


def test_missing_key_variable_names_it(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_ADMIN_KEY")
    result = run(make_config(engine, "http://127.0.0.1:9"), engine)
    assert result.status == "failed" and "OPENAI_ADMIN_KEY" in result.error and "oai" in result.error


def test_rate_limited_once_waits_retry_after_then_succeeds(engine: Engine) -> None:
    body = {"error": {"message": "Rate limit reached for requests", "type": "requests", "param": None, "code": "rate_limit_exceeded"}}
    routes, calls = error_routes(429, body, {"retry-after": "1"}, times=1)
    with serve(routes) as server:
        t0 = time.monotonic()
        result = run(make_config(engine, server.url), engine)
        took = time.monotonic() - t0
    assert result.status == "success", result.error
    assert took >= 1.0  # it honoured retry-after
    assert storage.read_frame(engine, records.CostRecord).amount.sum() == D("3.600001")


def test_rate_limited_after_retries_and_server_error_say_so(engine: Engine) -> None:
    body = {"error": {"message": "Rate limit reached for requests", "type": "requests", "param": None, "code": "rate_limit_exceeded"}}
    routes, calls = error_routes(429, body, {"retry-after": "0"})
    with serve(routes) as server:
        result = run(make_config(engine, server.url), engine)
    assert result.status == "failed"
    assert "HTTP 429" in result.error and "retry-after 0s" in result.error and "Rate limit reached" in result.error
    assert calls["n"] == 2  # the request and its one retry
    body500 = {"error": {"message": "The server had an error while processing your request.", "type": "server_error", "param": None, "code": None}}
    routes, _ = error_routes(500, body500)
    with serve(routes) as server:
        result = run(make_config(engine, server.url), engine)
    assert result.status == "failed"
    assert result.error == "oai: HTTP 500 /v1/organization/costs server_error: The server had an error while processing your request."
    assert storage.read_frame(engine, records.CostRecord).empty  # nothing half-written


def test_bad_settings_name_the_key_not_the_value(engine: Engine) -> None:
    # settings are checked when portfolio.toml loads (issue 12), before any sync can start
    with pytest.raises(config.SettingsError) as exc:
        make_config(engine, "http://127.0.0.1:9", 'admin_key = "sk-admin-PASTED-SECRET"')
    assert "connectors.oai.admin_key: unknown setting" in str(exc.value)
    assert "PASTED" not in str(exc.value)


def test_model_of_line_item() -> None:
    assert openai.model_of_line_item("gpt-4o-2024-08-06, input") == "gpt-4o-2024-08-06"
    assert openai.model_of_line_item("gpt-4o-mini, cached input") == "gpt-4o-mini"
    assert openai.model_of_line_item("Web search tool calls") == ""


def test_mapping_to_an_undeclared_app_is_reported(engine: Engine) -> None:
    with serve() as server:
        result = run(make_config(engine, server.url, 'api_keys = { key_x = "serch" }'), engine)
    assert result.status == "success", result.error
    assert "connectors.oai.api_keys names apps not declared in [[apps]]: serch" in (result.warnings or "")

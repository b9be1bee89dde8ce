"""OpenAI: billed daily cost per project and line item (Costs API), tokens and requests per model (Usage APIs).

Reads the organization's admin endpoints with an admin key (``admin_key_env`` names the variable):

- ``GET {url}/organization/costs`` with ``bucket_width=1d``, ``group_by=project_id,line_item``
  (and ``api_key_id`` when ``api_keys`` maps keys to apps): each result becomes a CostRecord of
  category ``vendor``; ``service`` is the line item (e.g. ``gpt-4o-2024-08-06, input``) and
  ``model`` the part of it before the last ", ". ``amount.value`` is parsed from the JSON text as
  a Decimal, so dollars stay exact (stored to the micro-dollar).
- The same endpoint without ``group_by`` gives the vendor's own total of each day: a BillingTotal
  whose ``billing_period`` is the day (``YYYY-MM-DD``, also the cost rows' ``billing_period``), so
  the reconciliation checks every day's allocated + unallocated against OpenAI's total to the cent.
- ``GET {url}/organization/usage/{endpoint}`` for each of ``usage_endpoints`` (completions,
  embeddings, moderations by default), ``bucket_width=1d``, ``group_by=project_id,model``: tokens
  per app, day and model as UsageRecords ``input_tokens`` (uncached input), ``cached_input_tokens``,
  ``cache_write_tokens``, ``output_tokens`` and ``requests`` (``num_model_requests``).

Apps: ``api_keys`` (API key id -> app id) wins over ``projects`` (project id -> app id); a project
no rule claims is unallocated vendor spend (``_unallocated``), listed in the run's warnings. Pages
are followed through ``next_page``. Days: from the sync cursor (or ``days`` back on a first run) up
to the last complete UTC day; each day read replaces what the source held for it.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import Field

from connectors import _genai
from connectors.base import ConnectorError, Replace, ReplaceKeys, http_session
from connectors.settings import ConnectorParams
from portfolio import records
from portfolio.config import ConnectorConfig

NAME = "openai"
log = logging.getLogger(__name__)
#: the record types this connector yields (checked by the connector contract and the standard suite)
RECORDS: tuple[type, ...] = (records.CostRecord, records.BillingTotal, records.UsageRecord)

#: usage endpoint -> (input tokens field, output tokens field); None when the endpoint has none
USAGE_ENDPOINTS = ("completions", "embeddings", "moderations")


class Params(ConnectorParams):
    """Settings of an ``openai`` connector."""

    admin_key_env: str = Field(min_length=1, description="environment variable holding the organization admin key (sk-admin-...)")
    url: str = Field("https://api.openai.com/v1", description="API base URL (a proxy or a test server)")
    projects: dict[str, str] = Field(default_factory=dict, description="OpenAI project id -> app id")
    api_keys: dict[str, str] = Field(default_factory=dict, description="OpenAI API key id -> app id (wins over projects)")
    days: int = Field(30, ge=1, le=400, description="days read on a first sync (later syncs start at the cursor)")
    usage_endpoints: list[str] = Field(
        default_factory=lambda: list(USAGE_ENDPOINTS),
        description="Usage API endpoints read for tokens and requests (completions, embeddings, moderations)",
    )
    retries: int = Field(3, ge=0, le=10, description="retries of a request answered 429 (after retry-after) or 5xx")
    timeout_seconds: float = Field(60.0, gt=0, le=600, description="seconds to wait for an answer to start (read timeout)")


def _day(bucket: dict[str, Any], connector: str, path: str) -> date:
    start = bucket.get("start_time")
    if isinstance(start, bool) or not isinstance(start, int | Decimal):
        raise ConnectorError(connector, "unexpected payload shape: a bucket has no start_time", path=path)
    return datetime.fromtimestamp(int(start), UTC).date()


def _amount(result: dict[str, Any], connector: str, path: str) -> tuple[Decimal, str]:
    amount = result.get("amount") or {}
    if not isinstance(amount, dict):
        raise ConnectorError(connector, "unexpected payload shape: amount is not an object", path=path)
    value = amount.get("value", 0)
    if isinstance(value, bool) or not isinstance(value, int | Decimal) or not Decimal(value).is_finite():
        raise ConnectorError(connector, "unexpected payload shape: amount.value is not a number", path=path)
    return Decimal(value), str(amount.get("currency") or "usd").upper()


def model_of_line_item(line_item: str) -> str:
    """``"gpt-4o-2024-08-06, input"`` -> ``"gpt-4o-2024-08-06"``; "" when the line names no model."""
    head, sep, _ = line_item.rpartition(", ")
    return head.strip() if sep else ""


class _App:
    def __init__(self, p: Params):
        self.keys = p.api_keys
        self.projects = p.projects

    def __call__(self, result: dict[str, Any]) -> str | None:
        key, project = result.get("api_key_id"), result.get("project_id")
        if key and key in self.keys:
            return self.keys[key]
        if project and project in self.projects:
            return self.projects[project]
        return None


def pull(config: ConnectorConfig, since: datetime | None) -> Iterator[Any]:
    """Costs (grouped, then the daily totals), then usage of each endpoint, for the days of the window."""
    p = _genai.params_of(Params, config)
    yield from _genai.undeclared(config, projects=p.projects, api_keys=p.api_keys)
    key = _genai.secret(config, p.admin_key_env, "admin_key_env")
    today = datetime.now(UTC).date()
    start, end = _genai.day_window(since, p.days, today)
    if start >= end:
        return
    base = p.url.rstrip("/")
    headers = {"Authorization": f"Bearer {key}", "Accept": "application/json"}
    window = [
        ("start_time", int(datetime(start.year, start.month, start.day, tzinfo=UTC).timestamp())),
        ("end_time", int(datetime(end.year, end.month, end.day, tzinfo=UTC).timestamp())),
        ("bucket_width", "1d"),
    ]
    kw: dict[str, Any] = {
        "key_setting": "admin_key_env", "secret_envs": config.secret_env_names(),
        "timeout": (min(5.0, p.timeout_seconds), p.timeout_seconds),
    }
    app_of = _App(p)
    session = http_session(retries=p.retries)
    try:
        url = f"{base}/organization/costs"
        path = "/organization/costs"
        group = ["project_id", "line_item"] + (["api_key_id"] if p.api_keys else [])
        costs: dict[tuple[str, date, str, str], Decimal] = defaultdict(Decimal)
        models: dict[tuple[str, date, str, str], str] = {}
        lines: dict[tuple[date, str], int] = defaultdict(int)
        unmapped = _genai.Unmapped(config.name, "OpenAI projects")
        days: set[date] = set()
        query = window + [("limit", 180)] + [("group_by", g) for g in group]
        for bucket in _genai.buckets(session, config.name, url, query, headers, **kw):
            day = _day(bucket, config.name, path)
            days.add(day)
            for result in bucket.get("results") or []:
                amount, currency = _amount(result, config.name, path)
                line = str(result.get("line_item") or "openai")
                app = app_of(result)
                if app is None:
                    app = records.UNALLOCATED
                    unmapped.add(str(result.get("project_id") or "(no project)"), amount)
                costs[(app, day, line, currency)] += amount
                models[(app, day, line, currency)] = model_of_line_item(line) if result.get("line_item") else ""
                lines[(day, currency)] += 1
        totals: dict[tuple[date, str], Decimal] = defaultdict(Decimal)
        for bucket in _genai.buckets(session, config.name, url, window + [("limit", 180)], headers, **kw):
            day = _day(bucket, config.name, path)
            days.add(day)
            for result in bucket.get("results") or []:
                amount, currency = _amount(result, config.name, path)
                totals[(day, currency)] += amount
        periods = frozenset(d.isoformat() for d in days)
        yield ReplaceKeys(records.CostRecord, "billing_period", periods)
        yield ReplaceKeys(records.BillingTotal, "billing_period", periods)
        for (app, day, line, currency), amount in sorted(costs.items()):
            yield records.CostRecord(
                source="", app_id=app, day=day, category="vendor", service=line, amount=amount.quantize(_genai.Q6),
                currency=currency, billing_period=day.isoformat(), model=models[(app, day, line, currency)],
            )
        for (day, currency), total in sorted(totals.items()):
            yield records.BillingTotal(
                source="", billing_period=day.isoformat(), currency=currency, total=total.quantize(_genai.Q6),
                lines=lines.get((day, currency), 0), detail="OpenAI Costs API: the day's organization total (no group_by)",
            )
        yield from unmapped.notices(log)
        yield Replace(records.UsageRecord, start, end - timedelta(days=1))
        yield from _usage(session, config.name, base, p, window, headers, app_of, kw)
    finally:
        session.close()


def _usage(
    session: Any, connector: str, base: str, p: Params, window: list[tuple[str, Any]],
    headers: dict[str, str], app_of: _App, kw: dict[str, Any],
) -> Iterator[records.UsageRecord]:
    totals: dict[tuple[str, date, str, str], int] = defaultdict(int)
    group = ["project_id", "model"] + (["api_key_id"] if p.api_keys else [])
    for endpoint in p.usage_endpoints:
        path = f"/organization/usage/{endpoint}"
        query = window + [("limit", 31)] + [("group_by", g) for g in group]
        for bucket in _genai.buckets(session, connector, base + path, query, headers, **kw):
            day = _day(bucket, connector, path)
            for r in bucket.get("results") or []:
                app = app_of(r) or records.UNALLOCATED
                model = str(r.get("model") or "")
                n = {f: _genai.integer(r, f, connector, path) for f in (
                    "input_tokens", "input_cached_tokens", "input_cache_write_tokens", "output_tokens", "num_model_requests")}
                if r.get("input_uncached_tokens") is not None:
                    uncached = _genai.integer(r, "input_uncached_tokens", connector, path)
                else:  # input_tokens counts cached and cache-write tokens too
                    uncached = n["input_tokens"] - n["input_cached_tokens"] - n["input_cache_write_tokens"]
                for metric, value in (
                    ("input_tokens", uncached),
                    ("cached_input_tokens", n["input_cached_tokens"]),
                    ("cache_write_tokens", n["input_cache_write_tokens"]),
                    ("output_tokens", n["output_tokens"]),
                    ("requests", n["num_model_requests"]),
                ):
                    totals[(app, day, model, metric)] += value
    for (app, day, model, metric), value in sorted(totals.items()):
        if value:
            yield records.UsageRecord(source="", app_id=app, day=day, metric=metric, model=model, value=float(value))

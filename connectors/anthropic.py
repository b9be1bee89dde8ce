"""Anthropic: billed daily cost per workspace and cost line (cost report), tokens per model (usage report).

Reads the organization's Usage and Cost Admin API with an admin key (``admin_key_env`` names the
variable; sent as ``x-api-key`` with ``anthropic-version: 2023-06-01``, the version the connector
speaks):

- ``GET {url}/v1/organizations/cost_report`` with ``bucket_width=1d``,
  ``group_by[]=workspace_id&group_by[]=description``: each result becomes a CostRecord of category
  ``vendor``; ``service`` is the cost line's description (e.g. ``Claude Sonnet 4 Usage - Input
  Tokens``) and ``model`` its model. ``amount`` is a decimal string in cents ("123.78912" is
  $1.2378912), converted exactly (stored to the micro-dollar).
- The same report without ``group_by`` gives Anthropic's own total of each day: a BillingTotal whose
  ``billing_period`` is the day (``YYYY-MM-DD``, also the cost rows'), the reconciliation anchor.
- ``GET {url}/v1/organizations/usage_report/messages`` with ``bucket_width=1d``, grouped by
  ``workspace_id``, ``api_key_id`` and ``model``: UsageRecords per app, day and model of
  ``input_tokens`` (uncached input), ``cached_input_tokens`` (cache reads), ``cache_write_tokens``
  (cache creation, 5-minute and 1-hour) and ``output_tokens``. The report has no request count.

Apps: ``workspaces`` maps a workspace id to an app (``default`` names the Default Workspace, whose
id is null); ``api_keys`` maps an API key id to an app for usage (the cost report cannot be grouped
by key, so cost follows workspaces). Spend of a workspace no rule claims is unallocated vendor
spend, listed in the run's warnings. Pages are followed through ``next_page``; days run from the
sync cursor (or ``days`` back) to the last complete UTC day, each day read replacing the old one.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import Field

from connectors import _genai
from connectors.base import ConnectorError, Replace, ReplaceKeys, http_session
from connectors.settings import ConnectorParams
from portfolio import records
from portfolio.config import ConnectorConfig

NAME = "anthropic"
API_VERSION = "2023-06-01"
DEFAULT_WORKSPACE = "default"
log = logging.getLogger(__name__)
#: the record types this connector yields (checked by the connector contract and the standard suite)
RECORDS: tuple[type, ...] = (records.CostRecord, records.BillingTotal, records.UsageRecord)


class Params(ConnectorParams):
    """Settings of an ``anthropic`` connector."""

    admin_key_env: str = Field(min_length=1, description="environment variable holding the Admin API key (sk-ant-admin...)")
    url: str = Field("https://api.anthropic.com", description="API base URL (a proxy or a test server)")
    workspaces: dict[str, str] = Field(
        default_factory=dict, description='workspace id -> app id; "default" is the Default Workspace'
    )
    api_keys: dict[str, str] = Field(default_factory=dict, description="API key id -> app id (usage only; wins over workspaces)")
    days: int = Field(30, ge=1, le=400, description="days read on a first sync (later syncs start at the cursor)")
    retries: int = Field(3, ge=0, le=10, description="retries of a request answered 429 (after retry-after) or 5xx")
    timeout_seconds: float = Field(60.0, gt=0, le=600, description="seconds to wait for an answer to start (read timeout)")


def _rfc3339(d: date) -> str:
    return f"{d.isoformat()}T00:00:00Z"


def _day(bucket: dict[str, Any], connector: str, path: str) -> date:
    try:
        return datetime.fromisoformat(str(bucket["starting_at"]).replace("Z", "+00:00")).astimezone(UTC).date()
    except (KeyError, ValueError):
        raise ConnectorError(connector, "unexpected payload shape: a bucket has no starting_at timestamp", path=path) from None


def dollars(amount: Any, connector: str, path: str) -> Decimal:
    """``"123.78912"`` (cents, a decimal string) -> ``Decimal("1.2378912")`` dollars, exactly."""
    try:
        cents = Decimal(str(amount))
    except InvalidOperation:
        raise ConnectorError(connector, "unexpected payload shape: amount is not a decimal string", path=path) from None
    if not cents.is_finite():
        raise ConnectorError(connector, "unexpected payload shape: amount is not a finite number", path=path)
    return cents.scaleb(-2)


def pull(config: ConnectorConfig, since: datetime | None) -> Iterator[Any]:
    """Cost report (grouped, then the daily totals), then the messages usage report, for the window's days."""
    p = _genai.params_of(Params, config)
    yield from _genai.undeclared(config, workspaces=p.workspaces, api_keys=p.api_keys)
    key = _genai.secret(config, p.admin_key_env, "admin_key_env")
    today = datetime.now(UTC).date()
    start, end = _genai.day_window(since, p.days, today)
    if start >= end:
        return
    base = p.url.rstrip("/")
    headers = {"x-api-key": key, "anthropic-version": API_VERSION, "Accept": "application/json"}
    window = [("starting_at", _rfc3339(start)), ("ending_at", _rfc3339(end)), ("bucket_width", "1d"), ("limit", 31)]
    kw: dict[str, Any] = {
        "key_setting": "admin_key_env", "secret_envs": config.secret_env_names(),
        "timeout": (min(5.0, p.timeout_seconds), p.timeout_seconds),
    }
    session = http_session(retries=p.retries)
    try:
        path = "/v1/organizations/cost_report"
        url = base + path
        costs: dict[tuple[str, date, str, str], Decimal] = defaultdict(Decimal)
        models: dict[tuple[str, date, str, str], set[str]] = defaultdict(set)
        lines: dict[tuple[date, str], int] = defaultdict(int)
        unmapped = _genai.Unmapped(config.name, "Anthropic workspaces")
        days: set[date] = set()
        query = window + [("group_by[]", "workspace_id"), ("group_by[]", "description")]
        for bucket in _genai.buckets(session, config.name, url, query, headers, **kw):
            day = _day(bucket, config.name, path)
            days.add(day)
            for r in bucket.get("results") or []:
                amount = dollars(r.get("amount", "0"), config.name, path)
                currency = str(r.get("currency") or "USD").upper()
                workspace = r.get("workspace_id") or DEFAULT_WORKSPACE
                app = p.workspaces.get(workspace)
                if app is None:
                    app = records.UNALLOCATED
                    unmapped.add(workspace, amount)
                service = str(r.get("description") or r.get("cost_type") or "anthropic")
                costs[(app, day, service, currency)] += amount
                models[(app, day, service, currency)].add(str(r.get("model") or ""))
                lines[(day, currency)] += 1
        totals: dict[tuple[date, str], Decimal] = defaultdict(Decimal)
        for bucket in _genai.buckets(session, config.name, url, window, headers, **kw):
            day = _day(bucket, config.name, path)
            days.add(day)
            for r in bucket.get("results") or []:
                totals[(day, str(r.get("currency") or "USD").upper())] += dollars(r.get("amount", "0"), config.name, path)
        periods = frozenset(d.isoformat() for d in days)
        yield ReplaceKeys(records.CostRecord, "billing_period", periods)
        yield ReplaceKeys(records.BillingTotal, "billing_period", periods)
        for k, amount in sorted(costs.items()):
            app, day, service, currency = k
            model = next(iter(models[k])) if len(models[k]) == 1 else ""  # one line, one model; else none claimed
            yield records.CostRecord(
                source="", app_id=app, day=day, category="vendor", service=service, amount=amount.quantize(_genai.Q6),
                currency=currency, billing_period=day.isoformat(), model=model,
            )
        for (day, currency), total in sorted(totals.items()):
            yield records.BillingTotal(
                source="", billing_period=day.isoformat(), currency=currency, total=total.quantize(_genai.Q6),
                lines=lines.get((day, currency), 0), detail="Anthropic cost report: the day's organization total (no group_by)",
            )
        yield from unmapped.notices(log)
        yield Replace(records.UsageRecord, start, end - timedelta(days=1))
        yield from _usage(session, config.name, base, p, window, headers, kw)
    finally:
        session.close()


def _usage(
    session: Any, connector: str, base: str, p: Params, window: list[tuple[str, Any]], headers: dict[str, str], kw: dict[str, Any]
) -> Iterator[records.UsageRecord]:
    path = "/v1/organizations/usage_report/messages"
    query = window + [("group_by[]", g) for g in ("workspace_id", "api_key_id", "model")]
    totals: dict[tuple[str, date, str, str], int] = defaultdict(int)
    for bucket in _genai.buckets(session, connector, base + path, query, headers, **kw):
        day = _day(bucket, connector, path)
        for r in bucket.get("results") or []:
            key_id = r.get("api_key_id")
            app = (p.api_keys.get(key_id) if key_id else None) or p.workspaces.get(r.get("workspace_id") or DEFAULT_WORKSPACE)
            app = app or records.UNALLOCATED
            creation = r.get("cache_creation") or {}
            if not isinstance(creation, dict):
                raise ConnectorError(connector, "unexpected payload shape: cache_creation is not an object", path=path)
            writes = sum(_genai.integer(creation, f, connector, path) for f in creation if str(f).endswith("_input_tokens"))
            model = str(r.get("model") or "")
            for metric, value in (
                ("input_tokens", _genai.integer(r, "uncached_input_tokens", connector, path)),
                ("cached_input_tokens", _genai.integer(r, "cache_read_input_tokens", connector, path)),
                ("cache_write_tokens", writes),
                ("output_tokens", _genai.integer(r, "output_tokens", connector, path)),
            ):
                totals[(app, day, model, metric)] += value
    for (app, day, model, metric), value in sorted(totals.items()):
        if value:
            yield records.UsageRecord(source="", app_id=app, day=day, metric=metric, model=model, value=float(value))

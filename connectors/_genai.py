"""Shared helpers of the GenAI vendor connectors (``openai``, ``anthropic``, ``litellm``).

Typed settings validated into a connector's ``Params`` (errors name the connector and the key,
never a value); the day window of a pull; requests to a vendor's admin API that keep money exact
(JSON numbers parsed as ``Decimal``), follow ``next_page`` cursors with a loop guard, and turn a
vendor's error body into a short message that never carries the key; and the unmapped-spend notice.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import requests

from connectors.base import DEFAULT_TIMEOUT, Notice, safe_path
from connectors.settings import ConnectorParams
from portfolio.config import ConnectorConfig
from portfolio.errors import ConnectorError, redact

P = TypeVar("P", bound=ConnectorParams)
MAX_PAGES = 1_000
Q6 = Decimal("0.000001")


def params_of(model: type[P], config: ConnectorConfig) -> P:
    """``config.params`` validated into ``model`` (a :class:`~connectors.settings.ConnectorParams`):
    a SettingsError names the connector and the key, never the value (it may be a pasted secret)."""
    return model.of(config)


def secret(config: ConnectorConfig, var: str, key: str) -> str:
    """The value of the environment variable ``var`` named by setting ``key``; an error names both, not the value."""
    import os

    value = os.environ.get(var)
    if not value:
        raise ConnectorError(config.name, f"environment variable {var} (connectors.{config.name}.{key}) is not set")
    return value


def day_window(since: datetime | None, days: int, today: date) -> tuple[date, date]:
    """(first day, day after the last) of a pull: from the cursor (or ``days`` back on a first run)
    up to the last complete day (UTC). Empty (first == end) when there is nothing complete to read."""
    start = since.astimezone(UTC).date() if since else today - timedelta(days=days)
    start = min(start, today)
    return start, today


def days_between(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days)]


def _vendor_message(resp: requests.Response) -> str:
    """The ``error.message`` of an OpenAI / Anthropic error body (both nest it under ``error``)."""
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:300].strip()
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            kind = err.get("type") or err.get("code")
            msg = str(err.get("message") or "").strip()
            return f"{kind}: {msg}" if kind and msg else msg or str(kind or "")
        if isinstance(err, str):
            return err
    return resp.text[:300].strip()


def get_exact(
    session: requests.Session,
    connector: str,
    url: str,
    *,
    params: Any,
    headers: dict[str, str],
    key_setting: str,
    secret_envs: tuple[str, ...],
    timeout: tuple[float, float] = DEFAULT_TIMEOUT,
) -> Any:
    """GET a vendor's JSON with numbers as ``Decimal``. Retries (429 with ``retry-after``, 5xx) are
    the session's; what still fails becomes a ConnectorError naming the connector, the status and
    the path, and the vendor's own message except on 401/403 (some vendors echo part of the key)."""
    path = safe_path(url)
    try:
        resp = session.get(url, params=params, headers=headers, timeout=timeout)
    except requests.RequestException as exc:
        raise ConnectorError(connector, f"source unreachable ({type(exc).__name__})", path=path) from None
    if resp.status_code in (401, 403):
        raise ConnectorError(
            connector, f"authentication refused: check the admin key in the variable named by {key_setting}",
            status=resp.status_code, path=path,
        )
    if resp.status_code >= 400:
        message = redact(_vendor_message(resp), secret_envs)[:300] or resp.reason or "error"
        if resp.status_code == 429:
            wait = resp.headers.get("retry-after")
            message = f"rate limited{f' (retry-after {wait}s)' if wait else ''}, still after retries: {message}"
        raise ConnectorError(connector, message, status=resp.status_code, path=path)
    try:
        return json.loads(resp.text, parse_float=Decimal)
    except ValueError:
        raise ConnectorError(connector, "answer is not JSON", status=resp.status_code, path=path) from None


def buckets(
    session: requests.Session,
    connector: str,
    url: str,
    params: list[tuple[str, Any]],
    headers: dict[str, str],
    *,
    key_setting: str,
    secret_envs: tuple[str, ...],
    timeout: tuple[float, float] = DEFAULT_TIMEOUT,
) -> Iterator[dict[str, Any]]:
    """Every time bucket of a paged ``{data: [bucket], has_more, next_page}`` answer (OpenAI's and
    Anthropic's admin reports share this shape), following ``next_page`` until there is none."""
    seen: set[str] = set()
    page: str | None = None
    path = safe_path(url)
    for _ in range(MAX_PAGES):
        query = params + ([("page", page)] if page else [])
        body = get_exact(
            session, connector, url, params=query, headers=headers, key_setting=key_setting, secret_envs=secret_envs, timeout=timeout
        )
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            raise ConnectorError(connector, "unexpected payload shape: expected {\"data\": [buckets], \"has_more\", \"next_page\"}", path=path)
        for bucket in body["data"]:
            if not isinstance(bucket, dict) or not isinstance(bucket.get("results", []), list):
                raise ConnectorError(connector, "unexpected payload shape: a bucket is not an object with results", path=path)
            yield bucket
        nxt = body.get("next_page")
        if not body.get("has_more") or not nxt:
            return
        if nxt in seen:
            raise ConnectorError(connector, "pagination loop: a next_page cursor repeats", path=path)
        seen.add(str(nxt))
        page = str(nxt)
    raise ConnectorError(connector, f"more than {MAX_PAGES} pages: stopping", path=path)


def integer(result: dict[str, Any], field: str, connector: str, path: str) -> int:
    value = result.get(field)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | Decimal) or value != int(value) or value < 0:
        raise ConnectorError(connector, f"unexpected payload shape: {field} is not a whole number >= 0", path=path)
    return int(value)


class Unmapped:
    """Spend of vendor projects / workspaces that no app claims: kept as ``_unallocated`` and named
    in one notice (the run's warnings) with its amount, so nobody has to guess where it went."""

    def __init__(self, connector: str, what: str):
        self.connector = connector
        self.what = what
        self.amounts: dict[str, Decimal] = defaultdict(Decimal)

    def add(self, key: str, amount: Decimal) -> None:
        self.amounts[key] += amount

    def notices(self, logger: logging.Logger) -> Iterator[Notice]:
        if not self.amounts:
            return
        items = sorted(self.amounts.items(), key=lambda kv: (-kv[1], kv[0]))
        shown = ", ".join(f"{k} ({v.quantize(Decimal('0.01'))})" for k, v in items[:10])
        more = f" and {len(items) - 10} more" if len(items) > 10 else ""
        text = (
            f"{len(items)} {self.what} not mapped to any app: their spend is unallocated vendor spend: {shown}{more}"
        )
        logger.warning("%s: %s", self.connector, text)
        yield Notice(text)


def undeclared(config: ConnectorConfig, **mappings: dict[str, str]) -> Iterator[Notice]:
    """A notice for each mapping that names an app portfolio.toml does not declare (when it declares
    apps): its spend is then shown as unregistered, not as that app's, and a typo is found early."""
    known = {a.id for a in config.apps}
    if not known:
        return
    for key, mapping in mappings.items():
        bad = sorted({app for app in mapping.values() if app not in known})
        if bad:
            yield Notice(f"connectors.{config.name}.{key} names apps not declared in [[apps]]: {', '.join(bad)}")

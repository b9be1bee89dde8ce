"""Test-only connector: ``rows`` usage records, then one request to a source that takes its time,
then one more record (registered by tests/test_stalls.py only).

``GET {url}/wait`` is the slow request: the source answers when the test lets it. What the connector
yields before it is more than sync buffers (5,000 rows), so a sync that wrote as it went would be
holding the database's write lock while it waits.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

from connectors.base import ConnectorConfig, get_json, http_session
from portfolio.records import UsageRecord

NAME = "slow"


def pull(config: ConnectorConfig, since: datetime | None) -> Iterator[Any]:
    first = date(2026, 1, 1)
    apps = int(config.get("apps", 10))
    rows = int(config.get("rows", 6000))
    for i in range(rows):
        yield UsageRecord(source="", app_id=f"app-{i % apps}", day=first + timedelta(days=i // apps), metric="requests", value=float(i))
    get_json(http_session(retries=0), config.name, "GET", f"{config.get('url')}/wait")
    yield UsageRecord(source="", app_id="app-0", day=first - timedelta(days=1), metric="requests", value=1.0)

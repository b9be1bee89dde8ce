"""Test-only connector: pages of usage rows from an HTTP source (registered by the fault tests only).

Each page ``GET {url}/page/{n}`` answers ``{"rows": [{"app_id", "day", "requests"}], "next": n+1 | null}``.
``sleep`` (seconds per row) makes it slow enough to kill mid-sync.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

from connectors.base import ConnectorConfig, ConnectorError, get_json, http_session
from portfolio.records import UsageRecord

NAME = "faulty"


def pull(config: ConnectorConfig, since: datetime | None) -> Iterator[Any]:
    session = http_session(retries=0)
    page: int | None = 1
    pause = float(config.get("sleep", 0))
    while page is not None:
        data, _ = get_json(session, config.name, "GET", f"{config.get('url')}/page/{page}")
        if not isinstance(data, dict) or "rows" not in data:
            raise ConnectorError(config.name, "unexpected payload: no 'rows'", path=f"/page/{page}")
        for row in data["rows"]:
            if pause:
                time.sleep(pause)
            yield UsageRecord(
                source="", app_id=row["app_id"], day=date.fromisoformat(row["day"]), metric="requests", value=row["requests"]
            )
        page = data.get("next")

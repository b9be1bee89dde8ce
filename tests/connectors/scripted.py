"""Scripted test connector: yields the cost rows its config lists, then fails the way it is told.

Used by tests/test_sync.py through a temporary ``connectors.REGISTRY["scripted"]`` entry, so the
sync machinery (ledger, cursor, transactions, Replace, redaction) is exercised by a real module
with ``NAME`` and ``pull`` like every connector. Params:

``days``      list of "YYYY-MM-DD": one CostRecord (infra / compute) per day for ``app``
``amount``    the amount of each row (string, default "1.00"); ``category`` default "infra"
``replace``   ["start", "end"]: yield a Replace marker for CostRecord over that window
``replace_days`` list of "YYYY-MM-DD": yield ReplaceKeys(CostRecord, "day", those days)
``fail``      raise ConnectorError with this text after yielding (``{token}`` = the secret)
``crash``     raise RuntimeError with this text after yielding (a bug, not a source failure)
``repeat``    yield the first day twice (a connector bug sync must refuse)
``partitioned`` a fingerprint: yield the rows as ``Rows`` per billing period instead, each after a
              ``Partition`` marker with that fingerprint, plus ``ReplaceKeys`` on billing_period
              (``mixed = true``: the first frame also holds the next period's rows, a connector bug)
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pandas as pd

from connectors.base import ConnectorConfig, ConnectorError, Partition, Replace, ReplaceKeys, Rows
from portfolio.records import CostRecord

NAME = "scripted"


def _partitioned(config: ConnectorConfig, days: list[date]) -> Iterator[Any]:
    frame = pd.DataFrame(
        {
            "app_id": config.get("app", "app-a"),
            "day": days,
            "category": "infra",
            "service": "compute",
            "amount": Decimal(str(config.get("amount", "1.00"))),
            "billing_period": [f"{d:%Y-%m}" for d in days],
        }
    )
    periods = sorted(set(frame.billing_period))
    yield ReplaceKeys(CostRecord, "billing_period", frozenset(periods))
    for i, bp in enumerate(periods):
        part = frame[frame.billing_period == bp]
        if config.get("mixed") and i == 0:
            part = frame
        yield Partition(CostRecord, "billing_period", bp, str(config.get("partitioned")), len(part))
        yield Rows(CostRecord, part.reset_index(drop=True))

#: (connector name, since) of every pull, for the cursor tests
CALLS: list[tuple[str, datetime | None]] = []


def pull(config: ConnectorConfig, since: datetime | None) -> Iterator[Any]:
    CALLS.append((config.name, since))
    days = [date.fromisoformat(d) for d in config.get("days", [])]
    if config.get("repeat") and days:
        days.append(days[0])
    if config.get("partitioned"):
        yield from _partitioned(config, days)
        days = []
    for day in days:
        yield CostRecord(
            source="",
            app_id=config.get("app", "app-a"),
            day=day,
            category=config.get("category", "infra"),
            service="compute",
            amount=Decimal(str(config.get("amount", "1.00"))),
            billing_period=f"{day:%Y-%m}",
        )
    window = config.get("replace")
    if window:
        yield Replace(CostRecord, date.fromisoformat(window[0]), date.fromisoformat(window[1]))
    if config.get("replace_days"):
        yield ReplaceKeys(CostRecord, "day", frozenset(date.fromisoformat(d) for d in config.get("replace_days")))
    token = config.secret("token_env") or ""
    if config.get("fail"):
        raise ConnectorError(config.name, str(config.get("fail")).format(token=token))
    if config.get("crash"):
        raise RuntimeError(str(config.get("crash")).format(token=token))

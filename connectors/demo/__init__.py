"""Demo portfolio: 24 synthetic ML apps with two years of cost, usage, uptime, value and tickets.

The embedded demo (``mlportfolio demo``) runs on this connector. It generates a realistic,
deterministic portfolio relative to an as-of date (param ``as_of``, ``YYYY-MM-DD``, default today
UTC; data ends at the last complete day, ``as_of - 1``) from ``random.Random`` seeded by ``seed``
(default 7). ``months`` (default 24) is how many calendar months of history it covers; ``apps``
(default: the 22 written specs) is how many apps: a larger portfolio adds derived variants of the
specs (own ids, 20 teams, varied sizes; see :func:`connectors.demo.generate.portfolio_specs`), so
``apps = 1000`` and ``months = 36`` reproduce the scale the benchmarks measure.

What is in it, so every page and every retirement rule has something to show:

* clear winners in five teams (search ranking, card fraud, demand forecast, ...), each with a
  recent keep / invest decision;
* one app per retirement rule that trips it with the default thresholds of
  :class:`portfolio.config.Rules`: a zombie (``legacy-image-tagger``: GPU still reserved, traffic
  moved away), underwater (``email-send-time``), decaying (``promo-uplift``), a maintenance sink
  (``eta-predictor``), unreliable (``kyc-doc-check``), and two orphans (``social-sentiment`` has no
  owner, ``warehouse-slotting`` was never reviewed);
* two retired apps: ``spam-filter-v1`` (its bill stopped: realised savings match the projection)
  and ``visual-search-v1`` (retired two months ago, its GPU endpoint still bills: leftover spend),
  each with its lifecycle trail (proposal with the projection it froze, approval, retiring, retired),
  and a retire proposal for ``email-send-time`` waiting for an approver;
  a pilot, an app launched inside the window (no data before its launch), shared ``_unallocated``
  spend, and a bill total per month that reconciles to the cent;
* two LLM apps, so every view shows token economics: ``support-copilot`` buys ``gpt-4o-mini``
  through an LLM gateway (tokens per model, the bill, and the gateway's estimate of it beside it:
  the drift, flagged on about one day in twelve; estimates are never counted in the P&L nor
  reconciled with the bill), and ``contract-clauses`` runs a self-hosted Llama on a GPU node pool
  (infra cost tagged with the model) and overflows long contracts to the API (self-hosted against
  API, side by side).

Random draws are keyed by (seed, app, calendar month), so a later sync in the same month restates
nothing that was already there; the shapes (growth, decay, degradation) are anchored on the month
of the last complete day. With ``since`` (incremental sync) only days from ``since`` on are
yielded, together with ``Replace`` markers for exactly that window.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
from pydantic import Field

from connectors.base import ConnectorConfig, Replace, Rows
from connectors.demo.apps import APPS
from connectors.demo.generate import _add_months, _generate, lifecycle, portfolio_specs
from connectors.settings import ConnectorParams
from portfolio.records import (
    App,
    BillingTotal,
    CostRecord,
    Decision,
    LifecycleEvent,
    MaintenanceRecord,
    OutcomeRecord,
    UptimeRecord,
    UsageRecord,
)

NAME = "demo"
#: the record types this connector yields (checked by the standard connector suite)
RECORDS: tuple[type, ...] = (
    App, CostRecord, UsageRecord, UptimeRecord, OutcomeRecord, MaintenanceRecord, BillingTotal, Decision, LifecycleEvent,
)

DEFAULT_SEED = 7
DEFAULT_MONTHS = 24
MAX_APPS = 5000


class Params(ConnectorParams):
    """Settings of the demo connector."""

    seed: int = Field(DEFAULT_SEED, description="random seed: the same seed gives the same portfolio")
    as_of: date | None = Field(None, description="last day of the generated history (YYYY-MM-DD); default today")
    months: int = Field(DEFAULT_MONTHS, ge=1, le=120, description="months of history to generate (1 to 120)")
    apps: int | None = Field(
        None,
        ge=1,
        le=MAX_APPS,
        description=f"how many apps (1 to {MAX_APPS}); default: the demo's own specs; more adds derived variants",
    )


def _parse_params(config: ConnectorConfig) -> tuple[int, date, int, int | None]:
    p = Params.of(config)  # types and ranges checked by the settings model
    return p.seed, p.as_of or datetime.now(UTC).date(), p.months, p.apps


def pull(config: ConnectorConfig, since: datetime | None) -> Iterator[Any]:
    """Yield the demo portfolio: apps, decisions, and the facts from ``since`` (or the whole window)."""
    seed, as_of, months, n_apps = _parse_params(config)
    last = as_of - timedelta(days=1)
    window_start = _add_months(last, -(months - 1))
    start = window_start if since is None else min(max(window_start, since.date()), last)
    frames, totals, apps, decisions = _generate(seed, as_of, months, start, n_apps)
    yield from apps
    yield from decisions
    yield from lifecycle(as_of, portfolio_specs(n_apps, seed))
    yield Rows(
        CostRecord,
        pd.DataFrame(
            frames.costs,
            columns=["app_id", "day", "category", "service", "amount", "currency", "billing_period"],
        ),
    )
    yield Rows(
        CostRecord,
        pd.DataFrame(
            frames.model_costs,
            columns=["app_id", "day", "category", "service", "amount", "currency", "billing_period", "model", "estimated"],
        ),
    )
    yield Rows(UsageRecord, pd.DataFrame(frames.usage, columns=["app_id", "day", "metric", "value"]))
    yield Rows(UsageRecord, pd.DataFrame(frames.model_usage, columns=["app_id", "day", "metric", "model", "value"]))
    yield Rows(
        UptimeRecord, pd.DataFrame(frames.uptime, columns=["app_id", "day", "availability", "samples"])
    )
    yield from frames.maintenance
    yield from frames.outcomes
    yield from totals
    for table in (CostRecord, UsageRecord, UptimeRecord, MaintenanceRecord):
        yield Replace(table, start, last)
    yield Replace(OutcomeRecord, _add_months(start, 0), _add_months(last, 0), field="month")


__all__ = ["APPS", "NAME", "RECORDS", "Params", "portfolio_specs", "pull"]

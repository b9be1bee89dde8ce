"""PagerDuty: incidents per app, their time to restore and the hours of firefighting they cost.

``GET {api_url}/incidents?since=...&until=...&statuses[]=resolved&limit=100&offset=...`` with
``Authorization: Token token=<token_env>`` (REST API v2, classic ``offset`` / ``limit`` / ``more``
pagination, https://developer.pagerduty.com/api-reference/9d0b4b12e36f9-list-incidents). The
``since``/``until`` range filters on the incident's creation and may span at most six months, so
longer ranges are asked for in windows of ``MAX_RANGE_DAYS``.

Parameters (type ``pagerduty``):

- ``token_env`` (required), ``api_url`` (default ``https://api.pagerduty.com``).
- ``services``: ``{"<service id or name>" = "app-id"}``; a service named like a configured app's
  id or name needs no entry. Incidents of other services are skipped, counted in the log and in the run's warnings (Data health).
- ``until``: read incidents created up to this ISO date/time instead of now (a backfill).
- ``history_days`` (default 180): how far back a full sync reads; ``incident_window_days``
  (default 7): how far before the cursor an incremental sync starts, so an incident opened
  before the cursor and resolved after it is not missed.
- Hours (documented rule): ``min(ttr_hours, max_hours) × responders × hours_per_incident`` where
  ``responders`` = distinct users among the incident's assignments, acknowledgements and
  ``incidents_responders`` (at least 1), ``max_hours`` (default 24) caps the restore time an
  incident is charged for (an incident left open over a weekend is not 60 hours of work), and
  ``hours_per_incident`` (default 1.0) scales it (e.g. 1.5 to add the post-mortem).

One MaintenanceRecord per resolved incident: kind ``incident``, ``incidents = 1``, ``ttr_hours`` =
``resolved_at`` (or ``last_status_change_at`` on accounts that do not send it) − ``created_at``,
day = the day it was resolved, ref = the incident id. A full sync replaces this source's rows from
``history start + incident_window_days`` to today, so a service moved to another app moves its
incidents too.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pydantic import Field, NonNegativeFloat

from connectors import _mapping as m
from connectors.base import ConnectorError, PageGuard, Replace, get_json, http_session
from connectors.settings import ConnectorParams
from portfolio.config import ConnectorConfig
from portfolio.records import MaintenanceRecord

NAME = "pagerduty"
#: the record types this connector yields (checked by the standard connector suite)
RECORDS: tuple[type, ...] = (MaintenanceRecord,)

log = logging.getLogger(__name__)

DEFAULT_API = "https://api.pagerduty.com"


class Params(ConnectorParams):
    """Settings of the PagerDuty connector."""

    token_env: str | None = Field(None, description="variable holding the REST API token (required)")
    api_url: str = Field(DEFAULT_API, description="PagerDuty's REST API (EU accounts: https://api.eu.pagerduty.com)")
    services: dict[str, str] = Field(default_factory=dict, description='service id or name -> app id, e.g. { "PSCORE1" = "fraud-scorer" }')
    history_days: NonNegativeFloat = Field(180.0, description="days read on a first run")
    incident_window_days: NonNegativeFloat = Field(7.0, description="an incremental sync starts this many days before the cursor")
    max_hours: NonNegativeFloat | None = Field(24.0, description="cap on one incident's time to restore, in hours")
    hours_per_incident: NonNegativeFloat = Field(1.0, description="hours charged per responder per hour of time to restore")
    until: datetime | date | None = Field(None, description="fixed end of the period read (ISO date or time), for a backfill; default now")
    timeout_seconds: float = Field(60.0, gt=0, description="seconds to wait for an answer to start (read timeout)")
    retries: int = Field(3, ge=0, description="retries on 429/5xx and broken connections")


PATH = "/incidents"
MAX_RANGE_DAYS = 179  # PagerDuty refuses since/until ranges longer than six months
PAGE = 100
MAX_PAGES = 10_000


def _ts(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def responders(incident: dict[str, Any]) -> int:
    """Distinct users who held, acknowledged or joined the incident (at least 1)."""
    users: set[str] = set()
    for a in incident.get("assignments") or []:
        users.add(str((a.get("assignee") or {}).get("id") or ""))
    for a in incident.get("acknowledgements") or []:
        users.add(str((a.get("acknowledger") or {}).get("id") or ""))
    for r in incident.get("incidents_responders") or []:
        if r.get("state", "joined") == "joined":
            users.add(str((r.get("user") or {}).get("id") or ""))
    users.discard("")
    return max(len(users), 1)


def pull(config: ConnectorConfig, since: datetime | None) -> Iterator[Any]:
    name = config.name or NAME
    token_env = config.get("token_env")
    if not token_env:
        raise m.param_error(config, "token_env", "the name of the variable holding the API token", token_env)
    token = config.secret("token_env")
    if not token:
        raise ConnectorError(name, f"environment variable {token_env} (token_env) is not set or empty")
    api_url = str(config.get("api_url", DEFAULT_API)).rstrip("/")
    resolver = m.AppResolver(config, m.str_map(config, "services"), prefix="")
    history_days = m.positive_number(config, "history_days", 180.0) or 180.0
    window_days = m.positive_number(config, "incident_window_days", 7.0) or 0.0
    max_hours = m.positive_number(config, "max_hours", 24.0)
    factor = m.positive_number(config, "hours_per_incident", 1.0)
    factor = 1.0 if factor is None else factor

    until = datetime.now(UTC)
    if config.get("until"):  # a fixed end, for a backfill of a past period
        try:
            until = datetime.fromisoformat(str(config.get("until")).replace("Z", "+00:00"))
        except ValueError:
            raise m.param_error(config, "until", "an ISO date or datetime", config.get("until")) from None
        until = until.replace(tzinfo=until.tzinfo or UTC).astimezone(UTC)
    if since is None:
        start = until - timedelta(days=history_days)
        yield Replace(MaintenanceRecord, (start + timedelta(days=window_days)).date(), until.date())
    else:
        start = since.astimezone(UTC) - timedelta(days=window_days)

    p = Params.of(config)
    session = http_session(retries=p.retries)
    session.headers["Accept"] = "application/vnd.pagerduty+json;version=2"
    headers = {"Authorization": f"Token token={token}"}
    secret_envs = config.secret_env_names()
    skipped = m.Skipped(name, "incidents")
    seen: set[str] = set()

    window_start = start
    while window_start < until:
        window_end = min(window_start + timedelta(days=MAX_RANGE_DAYS), until)
        offset = 0
        guard = PageGuard(name, PATH, MAX_PAGES)
        while True:
            guard.ask(offset)
            params: list[tuple[str, str | int]] = [
                ("since", _iso(window_start)),
                ("until", _iso(window_end)),
                ("statuses[]", "resolved"),
                ("time_zone", "UTC"),
                ("limit", PAGE),
                ("offset", offset),
            ]
            body, resp = get_json(
                session,
                name,
                "GET",
                api_url + PATH,
                secret_envs=secret_envs,
                headers=headers,
                params=params,
                timeout=(min(5.0, p.timeout_seconds), p.timeout_seconds),
            )
            incidents = body.get("incidents") if isinstance(body, dict) else None
            if not isinstance(incidents, list):
                raise ConnectorError(name, "answer has no incidents list", status=resp.status_code, path=PATH)
            for inc in incidents:
                if not isinstance(inc, dict) or str(inc.get("id")) in seen:
                    continue
                rec = _record(inc, resolver, max_hours, factor)
                if rec is None:
                    skipped.add(str(inc.get("id")))
                    continue
                seen.add(rec.ref)
                yield rec
            if not body.get("more"):
                break
            if not incidents:
                raise ConnectorError(name, "pagination loop: more=true on an empty page", path=PATH)
            guard.answered(incidents)
            offset += len(incidents)
        window_start = window_end
    yield from skipped.notices(log)


def _record(
    inc: dict[str, Any], resolver: m.AppResolver, max_hours: float | None, factor: float
) -> MaintenanceRecord | None:
    service = inc.get("service") or {}
    app = resolver.first([str(service.get("id") or ""), str(service.get("summary") or "")])
    if app is None:
        return None
    created = _ts(inc.get("created_at"))
    resolved = _ts(inc.get("resolved_at")) or _ts(inc.get("last_status_change_at"))
    if created is None or resolved is None:
        return None
    ttr = m.hours_between(created, resolved)
    charged = min(ttr, max_hours) if max_hours is not None else ttr
    return MaintenanceRecord(
        source="",
        app_id=app,
        day=resolved.date(),
        ref=str(inc.get("id")),
        hours=round(charged * responders(inc) * factor, 4),
        kind="incident",
        incidents=1,
        ttr_hours=round(ttr, 4),
        url=inc.get("html_url"),
        title=(str(inc.get("summary") or inc.get("title") or "")[:500]) or None,
    )

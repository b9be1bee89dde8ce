"""Jira Cloud: maintenance hours per app from logged work on issues (enhanced JQL search).

``POST {url}/rest/api/3/search/jql`` with ``{jql, fields, maxResults, nextPageToken}``; the answer
is ``{issues: [...], nextPageToken, isLast}`` and the next page is asked for with the token until
``isLast`` is true or no token comes back (Jira Cloud leaves the key out on the last page). See
https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issue-search/.
Authentication is HTTP basic with ``email`` and the API token in the variable ``api_token_env``.

Parameters (type ``jira``):

- ``url``: the site, e.g. ``https://your-domain.atlassian.net``; ``jql`` (a bounded query) or
  ``projects = ["ML"]``; an incremental sync adds ``updated >= "<cursor>"``.
- App of an issue, first match wins: the custom field ``app_field`` (e.g. ``customfield_10042``:
  text, a select option or a list of options), then its components, then its labels; each value
  through ``app_map`` (``{value = "app-id"}``), the ``app:`` prefix, or a configured app's id/name.
  Issues no app claims are skipped, counted in the log and in the run's warnings (Data health).
- Kind: labels (``incident_labels`` / ``improvement_labels`` / ``klo_labels``) first, then the
  issue type (``incident_types`` default ["Incident"], ``improvement_types`` default ["Story",
  "New Feature", "Improvement", "Epic"], ``klo_types`` default ["Bug"]), else ``default_kind``.
- Hours: the sum of the issue's worklogs (``fields.worklog.worklogs[].timeSpentSeconds``); when
  the search answer holds only part of them (``total`` > the ones listed, Jira embeds at most 20)
  the issue's ``timespent`` (seconds, all worklogs) is used, or if it is missing the worklogs are
  read from ``GET /rest/api/3/issue/{key}/worklog``; an issue with no logged time counts
  ``default_hours`` of its kind (set them to 0 to count logged time only).
- Incidents: an issue of kind incident counts 1; time to restore = ``resolutiondate - created``.
- Day: the resolution day, or the creation day while the issue is unresolved.

A full sync replaces every earlier row of this source (so an issue first counted while open is
not counted again on its resolution day); an incremental sync upserts the issues updated since.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import quote

from pydantic import Field

from connectors import _mapping as m
from connectors.base import ConnectorError, PageGuard, Replace, ReplaceKeys, get_json, http_session, safe_path
from connectors.settings import StrList
from portfolio.config import ConnectorConfig
from portfolio.records import MaintenanceRecord

NAME = "jira"
#: the record types this connector yields (checked by the standard connector suite)
RECORDS: tuple[type, ...] = (MaintenanceRecord,)

log = logging.getLogger(__name__)

SEARCH_PATH = "/rest/api/3/search/jql"
BASE_FIELDS = [
    "summary",
    "issuetype",
    "labels",
    "components",
    "created",
    "resolutiondate",
    "timespent",
    "worklog",
]
TYPE_DEFAULTS = {
    "incident": ("Incident",),
    "improvement": ("Story", "New Feature", "Improvement", "Epic"),
    "klo": ("Bug",),
}
MAX_PAGES = 10_000


class Params(m.TicketParams):
    """Settings of the Jira connector."""

    url: str | None = Field(None, description="the Jira site, e.g. https://your-domain.atlassian.net (required)")
    email: str | None = Field(None, description="the account's e-mail (basic auth with the API token; required)")
    api_token_env: str | None = Field(None, description="variable holding the API token (required)")
    jql: str | None = Field(None, description="the issues to read (JQL); or projects")
    projects: StrList = Field(default_factory=list, description='project keys, e.g. ["ML"] (instead of jql)')
    app_field: str | None = Field(None, description="a custom field holding the app (e.g. customfield_10042)")
    app_map: dict[str, str] = Field(default_factory=dict, description="label, component or field value -> app id")
    app_label_prefix: str = Field("app:", description="a label app:<app id> names the app")
    max_results: int = Field(100, ge=1, description="issues per search page")
    incident_types: StrList = Field(list(TYPE_DEFAULTS["incident"]), description="issue types that are incidents")
    improvement_types: StrList = Field(list(TYPE_DEFAULTS["improvement"]), description="issue types that are improvements")
    klo_types: StrList = Field(list(TYPE_DEFAULTS["klo"]), description="issue types that are keep-the-lights-on work")
    timeout_seconds: float = Field(60.0, gt=0, description="seconds to wait for an answer to start (read timeout)")
    retries: int = Field(3, ge=0, description="retries on 429/5xx and broken connections")


FULL_WINDOW = (date(1970, 1, 1), date(9999, 12, 31))
_ORDER_BY = re.compile(r"\border\s+by\b", re.I)


def _ts(value: Any) -> datetime | None:
    """Jira timestamps look like ``2025-03-03T09:15:00.000+0000``."""
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)


def _jql(config: ConnectorConfig, since: datetime | None) -> str:
    jql = config.get("jql")
    if not jql:
        projects = m.str_list(config, "projects")
        if not projects:
            raise m.param_error(config, "jql", 'a JQL query (or projects = ["KEY"])', jql)
        jql = "project in (" + ", ".join(f'"{p}"' for p in projects) + ")"
    jql = str(jql)
    if since is None:
        return jql
    # JQL dates are read in the Jira user's time zone; the sync look-back absorbs the offset.
    where, order = (_ORDER_BY.split(jql, maxsplit=1) + [""])[:2]
    bound = f'({where.strip()}) AND updated >= "{since.astimezone(UTC):%Y-%m-%d %H:%M}"'
    return f"{bound} ORDER BY {order.strip()}" if order.strip() else bound


def _values(raw: Any) -> list[str]:
    """Text out of a field value: a string, a select option ``{value}``, ``{name}``, or a list of them."""
    if raw is None:
        return []
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, dict):
        for key in ("value", "name", "key"):
            if isinstance(raw.get(key), str):
                return [raw[key]]
        return []
    if isinstance(raw, list):
        return [v for item in raw for v in _values(item)]
    return []


class _Jira:
    def __init__(self, config: ConnectorConfig):
        self.name = config.name or NAME
        url = config.get("url")
        if not url or not str(url).startswith(("http://", "https://")):
            raise m.param_error(config, "url", "the Jira site, e.g. https://your-domain.atlassian.net", url)
        self.url = str(url).rstrip("/")
        email = config.get("email")
        if not email:
            raise m.param_error(
                config, "email", "the Atlassian account e-mail the API token belongs to", email
            )
        token_env = config.get("api_token_env")
        if not token_env:
            raise m.param_error(
                config, "api_token_env", "the name of the variable holding the API token", token_env
            )
        token = config.secret("api_token_env")
        if not token:
            raise ConnectorError(
                self.name, f"environment variable {token_env} (api_token_env) is not set or empty"
            )
        self.auth = (str(email), token)
        self.secret_envs = config.secret_env_names()
        p = Params.of(config)
        self.timeout = (min(5.0, p.timeout_seconds), p.timeout_seconds)
        self.session = http_session(retries=p.retries)
        self.session.headers["Accept"] = "application/json"

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        body, _ = get_json(
            self.session,
            self.name,
            method,
            self.url + path,
            secret_envs=self.secret_envs,
            auth=self.auth,
            timeout=self.timeout,
            **kwargs,
        )
        if not isinstance(body, dict):
            raise ConnectorError(self.name, "expected a JSON object", path=safe_path(path))
        return body

    def search(self, jql: str, fields: list[str], page_size: int) -> Iterator[dict[str, Any]]:
        token: str | None = None
        guard = PageGuard(self.name, SEARCH_PATH, MAX_PAGES)
        while True:
            guard.ask(token)
            payload: dict[str, Any] = {"jql": jql, "fields": fields, "maxResults": page_size}
            if token:
                payload["nextPageToken"] = token
            body = self.call("POST", SEARCH_PATH, json=payload)
            issues = body.get("issues")
            if not isinstance(issues, list):
                raise ConnectorError(self.name, "answer has no issues list", path=SEARCH_PATH)
            yield from (i for i in issues if isinstance(i, dict))
            token = body.get("nextPageToken")
            if body.get("isLast") is True or not token:
                return
            guard.answered(issues)

    def worklog_seconds(self, key: str) -> float:
        """All worklogs of one issue (``startAt`` / ``total`` pagination)."""
        path = f"/rest/api/3/issue/{quote(key)}/worklog"
        total_seconds = 0.0
        start = 0
        guard = PageGuard(self.name, path, MAX_PAGES)
        while True:
            guard.ask(start)
            body = self.call("GET", path, params={"startAt": start, "maxResults": 1000})
            logs = body.get("worklogs") or []
            total_seconds += sum(float(w.get("timeSpentSeconds") or 0) for w in logs if isinstance(w, dict))
            start += len(logs)
            if not logs or start >= int(body.get("total") or 0):
                return total_seconds
            guard.answered(logs)


def pull(config: ConnectorConfig, since: datetime | None) -> Iterator[Any]:
    jira = _Jira(config)
    jql = _jql(config, since)
    app_field = config.get("app_field")
    fields = BASE_FIELDS + ([str(app_field)] if app_field else [])
    page_size = int(m.positive_number(config, "max_results", 100) or 100)
    resolver = m.AppResolver(
        config, m.str_map(config, "app_map"), prefix=str(config.get("app_label_prefix", "app:"))
    )
    classifier = m.Classifier.from_config(config, TYPE_DEFAULTS)
    per_kind = m.default_hours(config)
    skipped = m.Skipped(jira.name, "issues")
    seen: set[str] = set()
    touched: set[str] = set()  # every issue this pull saw, mapped or not
    if since is None:
        yield Replace(MaintenanceRecord, *FULL_WINDOW)
    for issue in jira.search(jql, fields, page_size):
        key = str(issue.get("key") or issue.get("id") or "")
        f = issue.get("fields") or {}
        if not key or not isinstance(f, dict) or key in seen:
            continue
        labels = [v for v in f.get("labels") or [] if isinstance(v, str)]
        components = _values(f.get("components"))
        app = (
            (resolver.first(_values(f.get(str(app_field)))) if app_field else None)
            or resolver.first(components)
            or resolver.first(labels)
        )
        touched.add(key)
        if app is None:
            skipped.add(key)
            continue
        created = _ts(f.get("created"))
        if created is None:
            raise ConnectorError(jira.name, f"issue {key} has no created date", path=SEARCH_PATH)
        resolved = _ts(f.get("resolutiondate"))
        kind = classifier.kind(
            labels, _values(f.get("issuetype"))[0] if _values(f.get("issuetype")) else None
        )
        seconds = _logged_seconds(jira, key, f)
        hours = seconds / 3600.0 if seconds else per_kind[kind]
        is_incident = kind == "incident"
        seen.add(key)
        yield MaintenanceRecord(
            source="",
            app_id=app,
            day=(resolved or created).date(),
            ref=key,
            hours=round(hours, 4),
            kind=kind,
            incidents=1 if is_incident else 0,
            ttr_hours=round(m.hours_between(created, resolved), 4) if is_incident and resolved else None,
            url=f"{jira.url}/browse/{key}",
            title=(str(f.get("summary") or "")[:500]) or None,
        )
    if since is not None:
        # an issue seen again (e.g. resolved since) replaces its earlier row, whatever day that had
        yield ReplaceKeys(MaintenanceRecord, "ref", frozenset(touched))
    yield from skipped.notices(log)


def _logged_seconds(jira: _Jira, key: str, fields: dict[str, Any]) -> float:
    worklog = fields.get("worklog")
    if isinstance(worklog, dict) and isinstance(worklog.get("worklogs"), list):
        logs = [w for w in worklog["worklogs"] if isinstance(w, dict)]
        total = int(worklog.get("total") or len(logs))
        if total <= len(logs):
            return sum(float(w.get("timeSpentSeconds") or 0) for w in logs)
        if fields.get("timespent") is not None:  # the embedded list is cut; timespent covers them all
            return float(fields["timespent"])
        return jira.worklog_seconds(key)
    if fields.get("timespent") is not None:
        return float(fields["timespent"])
    return 0.0

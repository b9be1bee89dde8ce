"""GitHub issues: maintenance hours and incidents per app from the issues of your repositories.

``GET /repos/{owner}/{repo}/issues?state=all&per_page=100&since=...`` for every repository in
``repos``; pull requests are not work items and are skipped, counted in the run's warnings. A pull
request is an item whose ``pull_request`` object carries a URL: older payloads give issues a
``"pull_request": {"html_url": null, ...}``, and those are issues.
Pages are followed through the ``Link: <...>; rel="next"`` header, verbatim (GitHub's own
cursor URLs, see https://docs.github.com/en/rest/using-the-rest-api/using-pagination-in-the-rest-api).

Parameters (``[connectors.<name>]``, type ``github_issues``):

- ``repos``: ``["owner/name", ...]``; ``api_url`` (default ``https://api.github.com``);
  ``token_env``: the variable holding a token, sent as ``Authorization: Bearer``.
- App of an issue, first match wins: a label in ``app_labels`` (``{label = "app-id"}``), a label
  ``app:<app-id>`` (prefix ``app_label_prefix``), a title prefix ``[app-id]``, then
  ``repo_apps`` (``{"owner/name" = "app-id"}``, every issue of a repo that belongs to one app).
  Issues no app claims are skipped, counted in the log and in the run's warnings (Data health).
- Kind: labels in ``incident_labels`` / ``improvement_labels`` / ``klo_labels`` (see
  :mod:`connectors._mapping`), else ``default_kind`` (klo).
- Hours: a label matching ``hours_label_regex`` (default ``hours:3``, ``hours: 1.5``); else, when
  ``hours_rule = "time_to_close"``, the time from opening to closing capped at ``max_hours``
  (default 8); else ``default_hours`` per kind ({klo: 2, incident: 4, improvement: 8}).
- Incidents: an issue of kind incident counts 1 incident; its time to restore is
  ``closed_at - created_at`` (None while open).
- Day: the day the issue was closed, or the day it was opened while it is still open.
- Rate limits: ``X-RateLimit-Remaining: 0`` with ``X-RateLimit-Reset`` (on a 403/429, or on the
  page before the next one) waits until the reset when it is within ``max_wait_seconds``
  (default 60), otherwise stops with an error saying when the limit resets; a 403/429 with
  ``Retry-After`` waits that long under the same bound.

A full sync (no cursor) replaces every earlier row of this source, so issues that were relabelled,
moved to another app, or closed since they were counted as open are not counted twice. An
incremental sync only upserts the issues updated since the cursor.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any, Literal
from urllib.parse import quote, urlsplit

import requests
from pydantic import Field, NonNegativeFloat

from connectors import _mapping as m
from connectors.base import (
    ConnectorError,
    Notice,
    PageGuard,
    Replace,
    ReplaceKeys,
    get_json,
    http_session,
    safe_path,
)
from connectors.settings import Regex, StrList
from portfolio.config import ConnectorConfig
from portfolio.records import MaintenanceRecord

NAME = "github_issues"
#: the record types this connector yields (checked by the standard connector suite)
RECORDS: tuple[type, ...] = (MaintenanceRecord,)

log = logging.getLogger(__name__)

DEFAULT_API = "https://api.github.com"
DEFAULT_HOURS_REGEX = r"^hours?\s*[:=]\s*(\d+(?:\.\d+)?)\s*h?$"


class Params(m.TicketParams):
    """Settings of the GitHub issues connector."""

    repos: StrList = Field(description='repositories, e.g. ["owner/name"]')
    api_url: str = Field(DEFAULT_API, description="GitHub's REST API (GitHub Enterprise: https://<host>/api/v3)")
    token_env: str | None = Field(None, description="variable holding a token, sent as Authorization: Bearer")
    app_labels: dict[str, str] = Field(default_factory=dict, description='label -> app id, e.g. { "model-serving" = "fraud-scorer" }')
    app_label_prefix: str = Field("app:", description="a label app:<app id> names the app")
    repo_apps: dict[str, str] = Field(default_factory=dict, description='repository -> app id for every issue of a one-app repo')
    hours_rule: Literal["default", "time_to_close"] = Field("default", description="hours of an unlabelled issue: default_hours, or the time to close")
    max_hours: NonNegativeFloat = Field(8.0, description="cap on time_to_close hours")
    hours_label_regex: Regex = Field(DEFAULT_HOURS_REGEX, description="a label giving hours (one group: the number)")
    max_wait_seconds: NonNegativeFloat = Field(60.0, description="longest wait for a rate-limit reset before failing")
    rate_limit_margin_seconds: NonNegativeFloat = Field(1.0, description="extra wait after a rate-limit reset")
    timeout_seconds: float = Field(60.0, gt=0, description="seconds to wait for an answer to start (read timeout)")
    retries: int = Field(3, ge=0, description="retries on 429/5xx and broken connections")


MAX_RATE_LIMIT_WAITS = 5  # per request: a limit that keeps coming back is a stop, not a loop
FULL_WINDOW = (date(1970, 1, 1), date(9999, 12, 31))


class _RateLimited(Exception):
    """Raised from the response hook so the rate-limit headers reach :func:`_fetch`."""

    def __init__(self, status: int, wait: float, reset: datetime | None):
        self.status = status
        self.wait = wait
        self.reset = reset


def _rate_limit_wait(resp: requests.Response, margin: float) -> tuple[float, datetime | None] | None:
    """Seconds to wait (and when the limit resets) if ``resp`` says the rate limit is exhausted."""
    retry_after = resp.headers.get("Retry-After")
    if retry_after is not None:
        try:
            return max(float(retry_after), 0.0), None
        except ValueError:
            return 60.0, None
    if resp.headers.get("X-RateLimit-Remaining") == "0":
        try:
            reset_epoch = float(resp.headers.get("X-RateLimit-Reset", ""))
        except ValueError:
            return 60.0, None
        reset = datetime.fromtimestamp(reset_epoch, UTC)
        return max(reset_epoch - time.time(), 0.0) + margin, reset
    return None


def _too_long(
    connector: str, wait: float, reset: datetime | None, max_wait: float, path: str, status: int | None
) -> ConnectorError:
    when = f"resets at {reset:%Y-%m-%d %H:%M:%S} UTC" if reset else f"asks to retry after {wait:.0f} s"
    return ConnectorError(
        connector,
        f"GitHub rate limit exhausted: the limit {when}, beyond max_wait_seconds = {max_wait:g}; "
        "sync again after that (or raise max_wait_seconds, or use a token with a higher limit)",
        status=status,
        path=path,
    )


class _Client:
    def __init__(self, config: ConnectorConfig):
        self.name = config.name or NAME
        self.api_url = str(config.get("api_url", DEFAULT_API)).rstrip("/")
        self.host = urlsplit(self.api_url).netloc
        self.max_wait = m.positive_number(config, "max_wait_seconds", 60.0) or 0.0
        self.margin = m.positive_number(config, "rate_limit_margin_seconds", 1.0) or 0.0
        self.secret_envs = config.secret_env_names()
        p = Params.of(config)
        self.timeout = (min(5.0, p.timeout_seconds), p.timeout_seconds)
        self.session = http_session(retries=p.retries)
        # 429 is ours to handle (bounded by max_wait_seconds): urllib3 would sleep any Retry-After.
        for adapter in self.session.adapters.values():
            retry = adapter.max_retries  # type: ignore[attr-defined]
            adapter.max_retries = retry.new(status_forcelist=(500, 502, 503, 504))  # type: ignore[attr-defined]
        self.session.headers["Accept"] = "application/vnd.github+json"
        self.session.headers["X-GitHub-Api-Version"] = "2022-11-28"
        token_env = config.get("token_env")
        self.token: str | None = None
        if token_env:
            self.token = config.secret("token_env")
            if not self.token:
                raise ConnectorError(
                    self.name, f"environment variable {token_env} (token_env) is not set or empty"
                )

    def _hook(self, resp: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
        if resp.status_code in (403, 429):
            limited = _rate_limit_wait(resp, self.margin)
            if limited is not None:
                raise _RateLimited(resp.status_code, limited[0], limited[1])
        return resp

    def fetch(self, url: str) -> tuple[Any, requests.Response]:
        if urlsplit(url).netloc != self.host:
            # a Link pointing elsewhere must not receive the token
            raise ConnectorError(
                self.name, f"a page link leaves {self.host}: refusing to follow it", path=safe_path(url)
            )
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        for _ in range(MAX_RATE_LIMIT_WAITS + 1):
            try:
                return get_json(
                    self.session,
                    self.name,
                    "GET",
                    url,
                    secret_envs=self.secret_envs,
                    headers=headers,
                    timeout=self.timeout,
                    hooks={"response": [self._hook]},
                )
            except _RateLimited as rl:
                if rl.wait > self.max_wait:
                    raise _too_long(
                        self.name, rl.wait, rl.reset, self.max_wait, safe_path(url), rl.status
                    ) from None
                log.warning("%s: rate limited (HTTP %d), waiting %.1f s", self.name, rl.status, rl.wait)
                time.sleep(rl.wait)
        raise ConnectorError(
            self.name, "still rate limited after waiting several times: stopping", path=safe_path(url)
        )

    def before_next_page(self, resp: requests.Response, next_url: str) -> None:
        """A page that used the last request of the window: wait for the reset before the next page."""
        if resp.headers.get("X-RateLimit-Remaining") != "0":
            return
        limited = _rate_limit_wait(resp, self.margin)
        if limited is None:
            return
        wait, reset = limited
        if wait > self.max_wait:
            raise _too_long(self.name, wait, reset, self.max_wait, safe_path(next_url), None)
        log.warning("%s: rate limit used up, waiting %.1f s for the reset", self.name, wait)
        time.sleep(wait)


def _ts(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)


def pull(config: ConnectorConfig, since: datetime | None) -> Iterator[Any]:
    repos = m.str_list(config, "repos")
    if not repos or not all(re.fullmatch(r"[\w.-]+/[\w.-]+", r) for r in repos):
        raise m.param_error(config, "repos", 'a list like ["owner/name"]', config.get("repos"))
    client = _Client(config)
    app_labels = m.str_map(config, "app_labels")
    repo_apps = m.str_map(config, "repo_apps")
    resolver = m.AppResolver(config, app_labels, prefix=str(config.get("app_label_prefix", "app:")))
    classifier = m.Classifier.from_config(config)
    per_kind = m.default_hours(config)
    rule = config.get("hours_rule", "default")
    if rule not in ("default", "time_to_close"):
        raise m.param_error(config, "hours_rule", '"default" or "time_to_close"', rule)
    max_hours = m.positive_number(config, "max_hours", 8.0) or 0.0
    try:
        hours_re = re.compile(str(config.get("hours_label_regex", DEFAULT_HOURS_REGEX)), re.I)
    except re.error as exc:
        raise m.param_error(
            config, "hours_label_regex", "a regular expression with one group", str(exc)
        ) from None
    skipped = m.Skipped(client.name, "issues")
    pulls = _Counted("pull requests skipped (not work items)")
    not_items = _Counted("items skipped (not a JSON object)")
    seen: set[str] = set()
    touched: set[str] = set()  # every issue this pull saw, mapped or not

    if since is None:
        yield Replace(MaintenanceRecord, *FULL_WINDOW)
    for repo in repos:
        owner, name = repo.split("/")
        url = f"{client.api_url}/repos/{quote(owner)}/{quote(name)}/issues?state=all&per_page=100"
        if since is not None:
            url += "&since=" + since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        guard = PageGuard(client.name, safe_path(url))
        page_url: str | None = url
        while page_url:
            guard.path = safe_path(page_url)
            guard.ask(page_url)
            body, resp = client.fetch(page_url)
            if not isinstance(body, list):
                raise ConnectorError(
                    client.name,
                    "expected a JSON list of issues",
                    status=resp.status_code,
                    path=safe_path(page_url),
                )
            for item in body:
                if not isinstance(item, dict):
                    not_items.add(f"{repo} item {type(item).__name__}")
                    continue
                if _is_pull_request(item):
                    pulls.add(f"{repo}#{item.get('number')}")
                    continue
                rec = _record(
                    item, repo, resolver, repo_apps, classifier, per_kind, rule, max_hours, hours_re
                )
                ref = f"{repo}#{item.get('number')}"
                touched.add(ref)
                if rec is None:
                    skipped.add(ref)
                    continue
                if ref in seen:  # an issue updated while we paged can show up twice
                    continue
                seen.add(ref)
                yield rec
            next_url = resp.links.get("next", {}).get("url")
            if next_url:
                guard.answered(body)  # a server repeating a page under new links
                client.before_next_page(resp, next_url)
            page_url = next_url
    if since is not None:
        # an issue seen again (e.g. closed since) replaces its earlier row, whatever day that had
        yield ReplaceKeys(MaintenanceRecord, "ref", frozenset(touched))
    for counted in (pulls, not_items):
        if counted.refs:
            yield Notice(counted.text())
    yield from skipped.notices(log)


class _Counted:
    """Items left out of a pull for a reason: their count, and a few examples, for the run's warnings."""

    def __init__(self, why: str):
        self.why = why
        self.refs: list[str] = []

    def add(self, ref: str) -> None:
        self.refs.append(ref)

    def text(self) -> str:
        return f"{len(self.refs)} {self.why} (e.g. {', '.join(self.refs[:3])})"


def _is_pull_request(item: dict[str, Any]) -> bool:
    """GitHub lists pull requests among issues; one is an item whose ``pull_request`` has a URL."""
    pr = item.get("pull_request")
    return isinstance(pr, dict) and any(pr.get(k) for k in ("url", "html_url"))


def _record(
    item: dict[str, Any],
    repo: str,
    resolver: m.AppResolver,
    repo_apps: dict[str, str],
    classifier: m.Classifier,
    per_kind: dict[str, float],
    rule: str,
    max_hours: float,
    hours_re: re.Pattern[str],
) -> MaintenanceRecord | None:
    labels = [lab.get("name", "") if isinstance(lab, dict) else str(lab) for lab in item.get("labels") or []]
    title = str(item.get("title") or "")
    app = (
        resolver.first(labels)
        or resolver.title_prefix(title)
        or (resolver.check(repo_apps[repo]) if repo in repo_apps else None)
    )
    if app is None:
        return None
    created = _ts(item.get("created_at"))
    closed = _ts(item.get("closed_at"))
    if created is None:
        return None
    kind = classifier.kind(labels)
    hours: float | None = None
    for label in labels:
        hit = hours_re.match(label.strip())
        if hit:
            hours = float(hit.group(1))
            break
    if hours is None:
        if rule == "time_to_close" and closed is not None:
            hours = min(m.hours_between(created, closed), max_hours)
        else:
            hours = per_kind[kind]
    is_incident = kind == "incident"
    return MaintenanceRecord(
        source="",
        app_id=app,
        day=(closed or created).date(),
        ref=f"{repo}#{item.get('number')}",
        hours=round(hours, 4),
        kind=kind,
        incidents=1 if is_incident else 0,
        ttr_hours=round(m.hours_between(created, closed), 4) if is_incident and closed else None,
        url=item.get("html_url"),
        title=title[:500] or None,
    )

"""Prometheus: daily availability and request counts per app, one range query per metric for all apps.

Apps are told apart by a label (``label``, default ``app``). Each metric is a single
``/api/v1/query_range`` call for every app at once (``... by (app)``, step 1 day), evaluated at the
end of each UTC day, so each point covers exactly that day (``[1d]`` ending at the next midnight).
Histories longer than Prometheus' 11,000 points per series are split into several calls.

``portfolio.toml``::

    [connectors.metrics]
    type = "prometheus"
    url = "http://prometheus:9090"          # a path prefix (http://host/prometheus) is kept
    label = "app"                           # the label holding the app id
    availability_query = "up"               # preset "up" / "probe_success", a 0/1 gauge selector
                                            # such as 'up{job=~"serving-.*"}', or full PromQL
    requests = "torchserve"                 # preset, a counter selector, full PromQL, or "" (off);
                                            # presets: http (default), kserve, triton, torchserve,
                                            # seldon, bentoml, vllm (see REQUEST_PRESETS)
    days = 90                               # history read on the first run
    # timeout = 120, retries = 3, max_points = 11000           (per call; chunk size in days)
    # until = "2026-03-10"                  # last day to read (default: the last complete day)
    # username = "reader"  + password_env = "PROM_PASSWORD"   (basic auth)
    # token_env = "PROM_TOKEN"                                 (bearer token)
    # tls_verify = true | false | "path/to/ca.pem"
    # headers = { "X-Scope-OrgID" = "ml" }                     (Mimir / Cortex / Thanos tenants)

A selector ``S`` (or preset) for availability becomes ``avg by (app) (avg_over_time(S[1d]))`` —
the mean over the app's targets of each target's share of successful scrapes that day — plus
``sum by (app) (count_over_time(S[1d]))`` for the number of samples it rests on. A counter ``C``
for requests becomes ``round(sum by (app) (increase(C[1d])))``. A full PromQL expression is used
as written and must return one series per app (``samples_query`` may give the sample count).

Availability is rounded to 6 decimals (86 ms of a day): the digits beyond are float noise of
``avg_over_time``. The window ``[1d]`` at 00:00 of day D+1 holds day D's samples (Prometheus 2
includes a sample sitting exactly on either midnight; Prometheus 3 only the later one).

Prometheus' own error (``errorType`` and ``error`` of its JSON body) is carried verbatim into the
ConnectorError, hence into the sync ledger; its ``warnings`` (partial answers) become notices.
Rows go to the database as one DataFrame per table, and a ``Replace`` window per table makes the
days read exactly what Prometheus says now.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import requests
import urllib3
from pydantic import Field

from connectors.base import ConnectorConfig, ConnectorError, Notice, Replace, Rows, http_session, safe_path
from connectors.settings import ConnectorParams
from portfolio.errors import redact
from portfolio.records import UptimeRecord, UsageRecord

NAME = "prometheus"
#: the record types this connector yields (checked by the standard connector suite)
RECORDS: tuple[type, ...] = (UptimeRecord, UsageRecord)

log = logging.getLogger(__name__)

DAY_SECONDS = 86_400
#: Prometheus refuses a range query whose (end - start) / step exceeds 11,000 points per series
MAX_POINTS = 11_000
DEFAULT_DAYS = 90
DEFAULT_TIMEOUT = 120.0

#: 0/1 gauges: share of successful scrapes (``up``) or blackbox probes (``probe_success``)
AVAILABILITY_PRESETS: dict[str, str] = {
    "up": "up",
    "probe_success": "probe_success",
}

#: request counters of the common serving stacks (names as they export them)
REQUEST_PRESETS: dict[str, str] = {
    "http": "http_requests_total",  # the Prometheus naming guide's conventional HTTP counter
    "kserve": "revision_request_count",  # Knative queue-proxy, in front of every KServe predictor
    "triton": "nv_inference_request_success",  # NVIDIA Triton, per model and version
    "torchserve": "ts_inference_requests_total",  # TorchServe frontend (metrics_mode=prometheus)
    "seldon": "seldon_api_executor_server_requests_seconds_count",  # Seldon Core executor
    "bentoml": "bentoml_service_request_total",  # BentoML API server
    "vllm": "vllm:request_success_total",  # vLLM OpenAI server, by finished_reason
}
DEFAULT_REQUESTS = "http"


class Params(ConnectorParams):
    """Settings of the Prometheus connector."""

    url: str = Field(description="Prometheus (or Thanos / Mimir / VictoriaMetrics) query API base URL")
    label: str = Field("app", description="the label that tells apps apart")
    availability_query: str = Field("up", description="preset (up, probe_success), a selector or PromQL giving 0..1 per app and day")
    samples_query: str = Field("", description="PromQL counting availability samples per app and day (with a PromQL availability_query)")
    requests: str | bool = Field(DEFAULT_REQUESTS, description="preset, counter selector or PromQL of requests per app and day; false: none")
    days: int = Field(DEFAULT_DAYS, ge=1, description="days read on a first run")
    until: date | None = Field(None, description="last day to read (YYYY-MM-DD), for a backfill; default yesterday")
    retries: int = Field(3, ge=0, description="retries on 429/5xx")
    timeout: float = Field(DEFAULT_TIMEOUT, gt=0, description="seconds to wait for one query")
    max_points: int = Field(MAX_POINTS, ge=1, description="points per series per query (Prometheus refuses more than 11,000)")
    token_env: str | None = Field(None, description="variable holding a bearer token")
    username: str | None = Field(None, description="basic-auth user name")
    password_env: str | None = Field(None, description="variable holding the basic-auth password")
    tls_verify: bool | str = Field(True, description="false, or a CA bundle file to verify the server with")
    headers: dict[str, str] = Field(default_factory=dict, description='extra HTTP headers, e.g. { "X-Scope-OrgID" = "ml" }')


_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
# a plain series selector: metric name with optional {matchers}, or only {matchers}
_SELECTOR = re.compile(r"^\s*(?:[a-zA-Z_:][a-zA-Z0-9_:]*\s*(?:\{.*\})?|\{.*\})\s*$", re.S)
_AVAILABILITY_DECIMALS = 6  # 1e-6 of a day is 86 ms; finer digits are float noise of avg_over_time


@dataclass(frozen=True)
class Query:
    """One PromQL expression evaluated once per day."""

    name: str  # availability | samples | requests
    promql: str


def is_selector(text: str) -> bool:
    return bool(_SELECTOR.match(text))


def queries(config: ConnectorConfig) -> list[Query]:
    """The range queries this connector issues, from its params (presets expanded)."""
    label = str(config.get("label", "app"))
    if not _LABEL.match(label):
        raise ConnectorError(config.name, f"label {label!r} is not a Prometheus label name")
    out: list[Query] = []

    avail = str(config.get("availability_query", "up")).strip()
    if not avail:
        raise ConnectorError(
            config.name,
            "availability_query is empty: give a preset (up, probe_success), a selector or PromQL",
        )
    avail = AVAILABILITY_PRESETS.get(avail, avail)
    if is_selector(avail):
        out.append(Query("availability", f"avg by ({label}) (avg_over_time({avail}[1d]))"))
        out.append(Query("samples", f"sum by ({label}) (count_over_time({avail}[1d]))"))
    else:
        out.append(Query("availability", avail))
        samples = str(config.get("samples_query", "") or "").strip()
        if samples:
            out.append(Query("samples", samples))

    reqs = config.get("requests", DEFAULT_REQUESTS)
    reqs = "" if reqs is None or reqs is False else str(reqs).strip()
    if reqs:
        reqs = REQUEST_PRESETS.get(reqs, reqs)
        if is_selector(reqs):
            out.append(Query("requests", f"round(sum by ({label}) (increase({reqs}[1d])))"))
        else:
            out.append(Query("requests", reqs))
    return out


def _as_day(value: Any, key: str, connector: str) -> date:
    if isinstance(value, datetime):
        return value.astimezone(UTC).date() if value.tzinfo else value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ConnectorError(connector, f"{key} = {value!r}: expected a date YYYY-MM-DD") from None


def day_window(
    config: ConnectorConfig, since: datetime | None, today: date | None = None
) -> tuple[date, date]:
    """First and last UTC day to read: from ``since`` (or ``days`` back) to ``until`` (or the last
    complete day)."""
    today = today or datetime.now(UTC).date()
    until = config.get("until")
    end = _as_day(until, "until", config.name) if until else today - timedelta(days=1)
    if since is not None:
        start = (since.astimezone(UTC) if since.tzinfo else since.replace(tzinfo=UTC)).date()
    else:
        try:
            days = int(config.get("days", DEFAULT_DAYS))
        except (TypeError, ValueError):
            raise ConnectorError(
                config.name, f"days = {config.get('days')!r}: expected a whole number of days"
            ) from None
        if days < 1:
            raise ConnectorError(config.name, f"days = {days}: expected at least 1")
        start = end - timedelta(days=days - 1)
    return start, end


def chunks(start: date, end: date, max_points: int = MAX_POINTS) -> list[tuple[date, date]]:
    """Split the days ``start..end`` into runs of at most ``max_points`` days (one point per day)."""
    if max_points < 1:
        raise ValueError("max_points must be at least 1")
    out = []
    first = start
    while first <= end:
        last = min(end, first + timedelta(days=max_points - 1))
        out.append((first, last))
        first = last + timedelta(days=1)
    return out


def day_end(day: date) -> int:
    """The evaluation instant of ``day``: 00:00 UTC of the next day, in epoch seconds."""
    nxt = day + timedelta(days=1)
    return int(datetime(nxt.year, nxt.month, nxt.day, tzinfo=UTC).timestamp())


def _session(config: ConnectorConfig) -> requests.Session:
    session = http_session(retries=int(config.get("retries", 3)))
    token_var = config.get("token_env")
    user = config.get("username")
    if token_var:
        token = config.secret("token_env")
        if not token:
            raise ConnectorError(config.name, f"environment variable {token_var} (token_env) is not set")
        session.headers["Authorization"] = f"Bearer {token}"
    if user:
        pw_var = config.get("password_env")
        password = config.secret("password_env") if pw_var else ""
        if pw_var and password is None:
            raise ConnectorError(config.name, f"environment variable {pw_var} (password_env) is not set")
        session.auth = (str(user), password or "")
    verify = config.get("tls_verify", True)
    if isinstance(verify, str) and verify.lower() not in ("true", "false"):
        session.verify = str(config.path("tls_verify"))  # a CA bundle
    else:
        session.verify = verify if isinstance(verify, bool) else verify.lower() == "true"
    headers = config.get("headers") or {}
    if not isinstance(headers, dict):
        raise ConnectorError(
            config.name, 'headers: expected a table, e.g. headers = { "X-Scope-OrgID" = "ml" }'
        )
    for k, v in headers.items():
        session.headers[str(k)] = str(v)
    return session


def _read_timeout(exc: requests.RequestException) -> bool:
    """A read timeout, whether requests raised it as such or (after retries) wrapped in a ConnectionError."""
    if isinstance(exc, requests.ReadTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, urllib3.exceptions.ReadTimeoutError)


def query_range(
    session: requests.Session,
    config: ConnectorConfig,
    query: Query,
    start: date,
    end: date,
) -> tuple[list[dict[str, Any]], list[str]]:
    """One ``/api/v1/query_range`` call: the ``matrix`` result for days ``start..end``, and the
    warnings Prometheus (or a Thanos / Mimir front end: partial answers) attached to it."""
    url = str(config.get("url") or "").rstrip("/")
    endpoint = f"{url}/api/v1/query_range"
    path = safe_path(endpoint)
    secrets = config.secret_env_names()
    timeout = float(config.get("timeout", DEFAULT_TIMEOUT))
    form = {
        "query": query.promql,
        "start": str(day_end(start)),
        "end": str(day_end(end)),
        "step": str(DAY_SECONDS),
    }
    try:
        # POST (form-encoded): long expressions never hit URL length limits
        # verify passed per request: requests lets REQUESTS_CA_BUNDLE override a session's verify
        resp = session.post(endpoint, data=form, timeout=(5.0, timeout), verify=session.verify)
    except requests.exceptions.SSLError:
        raise ConnectorError(
            config.name,
            f"TLS verification failed (SSLError) running the {query.name} query: "
            "set tls_verify to the server's CA bundle, or to false",
            path=path,
        ) from None
    except requests.RequestException as exc:
        if not _read_timeout(exc):
            raise ConnectorError(
                config.name,
                f"Prometheus unreachable ({type(exc).__name__}) running the {query.name} query",
                path=path,
            ) from None
        raise ConnectorError(
            config.name,
            f"Prometheus did not answer the {query.name} query within {timeout:g}s (ReadTimeout): "
            "raise timeout, or lower max_points to split the range",
            path=path,
        ) from None
    try:
        body = resp.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("status") == "error":
        # Prometheus' own words, verbatim: errorType (bad_data, execution, timeout, ...) and error
        msg = f"{query.name} query failed: {body.get('errorType', '')}: {body.get('error', '')}"
        raise ConnectorError(config.name, redact(msg, secrets), status=resp.status_code, path=path)
    if resp.status_code in (401, 403):
        raise ConnectorError(
            config.name,
            "authentication refused: check username/password_env or token_env",
            status=resp.status_code,
            path=path,
        )
    if resp.status_code >= 400:
        text = redact(resp.text[:500], secrets).strip()
        raise ConnectorError(config.name, text or resp.reason or "error", status=resp.status_code, path=path)
    if not isinstance(body, dict):
        raise ConnectorError(
            config.name,
            "answer is not JSON (is url the Prometheus server?)",
            status=resp.status_code,
            path=path,
        )
    data = body.get("data")
    if body.get("status") != "success" or not isinstance(data, dict) or data.get("resultType") != "matrix":
        raise ConnectorError(
            config.name,
            f"unexpected answer to the {query.name} query: expected status success and a matrix",
            path=path,
        )
    warnings = [f"Prometheus warning on the {query.name} query: {w}" for w in body.get("warnings") or []]
    result = data.get("result")
    if not isinstance(result, list):
        raise ConnectorError(
            config.name, f"unexpected answer to the {query.name} query: result is not a list", path=path
        )
    return result, warnings


def daily_frame(result: list[dict[str, Any]], label: str, query: Query, connector: str) -> pd.DataFrame:
    """``app_id, day, value`` from a matrix whose points sit at day ends: NaN points are dropped,
    series without the label (or with it empty) are ignored. Vectorised: a year of 1,000 apps is
    365,000 points per query."""
    apps: list[str] = []
    stamps: list[Any] = []
    raw: list[Any] = []
    seen: set[str] = set()
    for series in result:
        app = (series.get("metric") or {}).get(label)
        if not app:
            continue
        if app in seen:
            raise ConnectorError(
                connector,
                f"the {query.name} query returned several series for {label}={app!r}: aggregate it by ({label})",
            )
        seen.add(app)
        points = series.get("values") or []
        if points:
            ts, vs = zip(*points, strict=True)
            apps.extend([app] * len(points))
            stamps.extend(ts)
            raw.extend(vs)
    if not apps:
        return pd.DataFrame({"app_id": [], "day": [], "value": []})
    values = np.asarray(raw, dtype=str).astype(float)
    unique, inverse = np.unique(np.asarray(stamps, dtype=float), return_inverse=True)
    # the point at 00:00 UTC of day D+1 covers day D
    days = np.array([datetime.fromtimestamp(t - DAY_SECONDS, UTC).date() for t in unique], dtype=object)
    frame = pd.DataFrame({"app_id": apps, "day": days[inverse], "value": values})
    return frame[~np.isnan(values)]


def _collect(frames: list[pd.DataFrame]) -> pd.DataFrame:
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def pull(config: ConnectorConfig, since: datetime | None) -> Iterator[Any]:
    if not config.get("url"):
        raise ConnectorError(
            config.name, "url is required (the Prometheus server, e.g. http://localhost:9090)"
        )
    label = str(config.get("label", "app"))
    plan = queries(config)
    start, end = day_window(config, since)
    if start > end:
        return
    max_points = int(config.get("max_points", MAX_POINTS))
    if not 1 <= max_points <= MAX_POINTS:
        raise ConnectorError(config.name, f"max_points = {max_points}: expected 1..{MAX_POINTS}")
    session = _session(config)
    values: dict[str, pd.DataFrame] = {}
    notices: list[str] = []
    with session:
        for q in plan:
            frames: list[pd.DataFrame] = []
            unlabelled = 0
            for first, last in chunks(start, end, max_points):
                result, warnings = query_range(session, config, q, first, last)
                notices += warnings
                frames.append(daily_frame(result, label, q, config.name))
                unlabelled += sum(1 for series in result if not (series.get("metric") or {}).get(label))
            values[q.name] = _collect(frames)
            if unlabelled and values[q.name].empty:
                notices.append(
                    f"the {q.name} query returned {unlabelled} series, none with the label {label!r}: "
                    f"check label, or aggregate the query by ({label})"
                )
    for text in dict.fromkeys(notices):
        log.warning("%s: %s", config.name, text)
        yield Notice(text)

    # one DataFrame per table (the bulk path): a year of 1,000 apps is 730,000 rows, and a model
    # object per row would cost more than the queries themselves
    avail = values["availability"].sort_values(["app_id", "day"], ignore_index=True)
    bad = avail[(avail.value < -1e-9) | (avail.value > 1 + 1e-9)]
    if len(bad):
        first_bad = bad.iloc[0]
        raise ConnectorError(
            config.name,
            f"availability query returned {first_bad.value} for {label}={first_bad.app_id!r} "
            f"on {first_bad.day}: expected 0..1",
        )
    uptime = avail.rename(columns={"value": "availability"})
    uptime["availability"] = uptime.availability.clip(0.0, 1.0).round(_AVAILABILITY_DECIMALS)
    if "samples" in values and len(values["samples"]):
        counts = values["samples"].rename(columns={"value": "samples"})
        uptime = uptime.merge(counts, on=["app_id", "day"], how="left")
        finite = np.isfinite(uptime.samples)
        uptime["samples"] = uptime.samples.where(finite, 0).astype("int64")
    else:
        uptime["samples"] = 0
    if len(uptime):
        yield Rows(UptimeRecord, uptime[["app_id", "day", "availability", "samples"]])
    yield Replace(UptimeRecord, start, end)
    if "requests" in values:
        usage = values["requests"].sort_values(["app_id", "day"], ignore_index=True)
        usage.insert(2, "metric", "requests")
        if len(usage):
            yield Rows(UsageRecord, usage[["app_id", "day", "metric", "value"]])
        yield Replace(UsageRecord, start, end)

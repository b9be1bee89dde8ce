"""OpenCost (Kubernetes): daily cluster cost per app label — CPU, GPU, RAM, storage, network, load balancers, idle.

Pulls OpenCost's allocation API (``GET {url}/allocation/compute``, or ``path = "/allocation"``) one
day at a time: ``window=YYYY-MM-DDT00:00:00Z,YYYY-MM-DDT00:00:00Z`` (next day),
``aggregate=label:<label>`` (``label = "app"`` by default), ``accumulate=false``,
``includeIdle=true``. See https://opencost.io/docs/integrations/api.

Each allocation's cost components become services of category ``infra``: ``cpu``, ``gpu``,
``ram``, ``storage`` (persistent volumes), ``network``, ``load balancer``, plus ``shared`` and
``external`` when present; the ``*CostAdjustment`` fields are added to their component, so the
services add up to OpenCost's ``totalCost``. The label value is the app (or, through an app's
``cost_tags``, that app). OpenCost's own buckets, named ``__<kind>__``, are spend no app claims
and go to ``_unallocated``: ``__unallocated__`` (workloads without the label) with its services as
they are; any other bucket -- ``__idle__`` (capacity nobody requested), ``__unmounted__``
(volumes no pod mounts), ... -- keeps its kind in the service (``idle cpu``, ``unmounted storage``).

Each allocation's ``window`` must be the day asked for: a server answering another window (a
proxy cache, a misconfigured OpenCost that always returns the same day) is refused, never booked
on the day requested.

Days: from ``since`` (the sync cursor) or, on a first run, the last ``days`` days (30 by default),
up to the last complete day (UTC). Every day that returned allocations is a ``Replace`` window, so
a re-pulled day replaces its old figures; a day OpenCost returns nothing for is left as it was
(an empty answer usually means missing metrics, not zero cost). There is no bill behind OpenCost's
figures, so no BillingTotal. Token (optional): ``token_env`` names the variable holding a bearer
token for an OpenCost behind an authenticating proxy.

Inference cost (``inference = true``, off by default; OpenCost 1.121 and later): the same day is
also read from ``GET {url}/inferenceCost/total`` (``aggregate=namespace,model_name``, cost basis
``allocation``), whose ``inferenceCosts`` give each self-hosted model's cost and its prompt and
generation tokens per namespace. The namespace is the app as a label value is (the app id or one
of its ``cost_tags``). Each model's cost becomes an ``infra`` row ``inference <model>`` with
``model`` set, and its tokens ``input_tokens`` / ``output_tokens`` usage of that model. That cost is
the allocation of the serving pods, already inside the label allocation, so it is carved out of
it rather than added: taken from the app's services in the order gpu, cpu, ram, storage, network,
load balancer, shared, external, then from the unlabelled workloads (``__unallocated__``), whose
pods may carry no app label. An inference cost larger than both is refused (the namespace does
not name the app the pods' label does), never booked twice.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import Field

from connectors.base import ConnectorError, Replace, get_json, http_session
from connectors.settings import ConnectorParams
from portfolio import records
from portfolio.config import ConnectorConfig
from portfolio.errors import ConfigError

NAME = "opencost"
#: the record types this connector yields (checked by the standard connector suite)
RECORDS: tuple[type, ...] = (records.CostRecord, records.UsageRecord)

#: service name -> the allocation fields summed into it
SERVICES: dict[str, tuple[str, ...]] = {
    "cpu": ("cpuCost", "cpuCostAdjustment"),
    "gpu": ("gpuCost", "gpuCostAdjustment"),
    "ram": ("ramCost", "ramCostAdjustment"),
    "storage": ("pvCost", "pvCostAdjustment"),
    "network": ("networkCost", "networkCostAdjustment"),
    "load balancer": ("loadBalancerCost", "loadBalancerCostAdjustment"),
    "shared": ("sharedCost",),
    "external": ("externalCost",),
}
IDLE = "__idle__"
UNALLOCATED = "__unallocated__"
_Q6 = Decimal("0.000001")


class Params(ConnectorParams):
    """Settings of the OpenCost connector."""

    url: str = Field(description="OpenCost's API, e.g. http://opencost.opencost:9003")
    path: str = Field("/allocation/compute", description="the allocation endpoint (/allocation on older releases)")
    label: str = Field("app", description="the Kubernetes label naming the app (aggregate=label:<label>)")
    currency: str = Field("USD", description="the currency OpenCost's prices are in")
    days: int = Field(30, ge=1, description="days read on a first run")
    max_days: int = Field(400, ge=1, description="never read further back than this many days")
    include_idle: bool = Field(True, description="ask for idle capacity (booked as unallocated, service idle ...)")
    retries: int = Field(3, ge=0, description="retries on 429/5xx")
    token_env: str | None = Field(None, description="variable holding a bearer token (OpenCost behind an authenticating proxy)")
    timeout_seconds: float = Field(60.0, gt=0, description="seconds to wait for an answer to start (read timeout)")
    inference: bool = Field(False, description="also read /inferenceCost/total (OpenCost 1.121+): self-hosted models' cost and tokens per namespace")


def _days(config: ConnectorConfig, since: datetime | None, today: date) -> list[date]:
    try:
        lookback = int(config.get("days", 30))
    except (TypeError, ValueError):
        raise ConfigError(f"connectors.{config.name}.days: expected a whole number of days") from None
    if lookback < 1:
        raise ConfigError(f"connectors.{config.name}.days: expected at least 1")
    start = since.astimezone(UTC).date() if since else today - timedelta(days=lookback)
    start = max(start, today - timedelta(days=int(config.get("max_days", 400))))
    return [start + timedelta(days=i) for i in range((today - start).days)]


def _window(day: date) -> str:
    nxt = day + timedelta(days=1)
    return f"{day.isoformat()}T00:00:00Z,{nxt.isoformat()}T00:00:00Z"


_BUCKET = re.compile(r"^__([a-z0-9_]+?)__$", re.I)


def _app_of(name: str, label: str, tag_to_app: dict[str, str]) -> tuple[str, str | None]:
    """(app id, bucket kind) for an allocation name of a label aggregation.

    The kind is None for an app and for ``__unallocated__``; ``idle``, ``unmounted``, ... for
    OpenCost's other buckets -- "__idle__", or "<cluster>/__idle__" with idleByNode/cluster splits.
    """
    last = name.strip().rsplit("/", 1)[-1]
    bucket = _BUCKET.match(last)
    if bucket:
        kind = bucket.group(1).lower()
        return records.UNALLOCATED, None if kind == "unallocated" else kind
    if not name.strip():
        return records.UNALLOCATED, None
    value = name.strip()
    if value.startswith(f"{label}="):  # Kubecost-style "app=churn"
        value = value[len(label) + 1 :]
    return tag_to_app.get(value.lower(), value), None


def _instant(value: Any) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _check_window(alloc: dict[str, Any], asked: tuple[datetime, datetime], connector: str, path: str) -> None:
    """Refuse an allocation whose window is not the one requested (it would be booked on the wrong day)."""
    window = alloc.get("window")
    if not isinstance(window, dict):
        return  # older OpenCost answers carry no window: nothing to compare
    got = (_instant(window.get("start")), _instant(window.get("end")))
    if got != asked:
        shown = f"{str(window.get('start'))[:40]} .. {str(window.get('end'))[:40]}"
        raise ConnectorError(
            connector,
            f"OpenCost answered the window {shown} to a request for {asked[0]:%Y-%m-%d} "
            f"({asked[0]:%Y-%m-%dT%H:%M:%SZ} .. {asked[1]:%Y-%m-%dT%H:%M:%SZ}): refused, "
            "it would book those costs on the day asked",
            path=path,
        )


def _number(alloc: dict[str, Any], field: str, connector: str, path: str) -> Decimal:
    value = alloc.get(field)
    if value is None:
        return Decimal(0)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConnectorError(connector, f"unexpected payload shape: {field} is {type(value).__name__}, not a number", path=path)
    if value != value or value in (float("inf"), float("-inf")):  # NaN / inf: OpenCost bug, not a cost
        raise ConnectorError(connector, f"unexpected payload shape: {field} is {value}", path=path)
    return Decimal(repr(float(value)))


def parse(
    body: Any,
    *,
    connector: str,
    path: str,
    label: str,
    tag_to_app: dict[str, str],
    window: tuple[datetime, datetime] | None = None,
) -> dict[tuple[str, str], Decimal]:
    """Allocation sets of one day -> {(app id, service): amount}. Empty when OpenCost has no data.

    With ``window`` (the requested start and end), an allocation answering another window is refused.
    """
    if not isinstance(body, dict) or not isinstance(body.get("data", []), list):
        raise ConnectorError(connector, "unexpected payload shape: expected {\"code\": 200, \"data\": [ {name: allocation} ]}", path=path)
    code = body.get("code", 200)
    if code != 200:
        message = str(body.get("message") or body.get("status") or "error")[:300]
        raise ConnectorError(connector, f"OpenCost answered code {code}: {message}", path=path)
    out: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for allocation_set in body.get("data") or []:
        if allocation_set is None:
            continue
        if not isinstance(allocation_set, dict):
            raise ConnectorError(connector, "unexpected payload shape: an allocation set is not an object", path=path)
        for name, alloc in allocation_set.items():
            if not isinstance(alloc, dict):
                raise ConnectorError(connector, f"unexpected payload shape: allocation {str(name)[:60]!r} is not an object", path=path)
            if window is not None:
                _check_window(alloc, window, connector, path)
            app, kind = _app_of(str(alloc.get("name") or name), label, tag_to_app)
            for service, fields in SERVICES.items():
                amount = sum((_number(alloc, f, connector, path) for f in fields), Decimal(0))
                if amount:
                    out[(app, f"{kind} {service}" if kind else service)] += amount
    return dict(out)


INFERENCE_PATH = "/inferenceCost/total"
#: the order in which a model's inference cost is carved out of its app's allocation
_CARVE_ORDER = tuple(SERVICES)


class Inference(dict[tuple[str, str], tuple[Decimal, float, float]]):
    """{(app id, model): (cost, prompt tokens, generation tokens)} of one day."""


def parse_inference(
    body: Any,
    *,
    connector: str,
    tag_to_app: dict[str, str],
    window: tuple[datetime, datetime] | None = None,
) -> Inference:
    """An ``/inferenceCost/total`` answer -> cost and tokens per (app, model).

    The answer is ``{"code": 200, "data": {"inferenceCosts": {key: {"properties": {"modelName",
    "namespace", ...}, "totalCost", "promptTokens", "generationTokens", ...}}, "window": ...}}``.
    """
    path = INFERENCE_PATH
    if not isinstance(body, dict):
        raise ConnectorError(connector, "unexpected payload shape: expected {\"code\": 200, \"data\": {\"inferenceCosts\": {...}}}", path=path)
    code = body.get("code", 200)
    if code != 200:
        message = str(body.get("message") or body.get("status") or "error")[:300]
        raise ConnectorError(connector, f"OpenCost answered code {code}: {message}", path=path)
    data = body.get("data")
    if data is None:
        return Inference()
    if not isinstance(data, dict) or not isinstance(data.get("inferenceCosts") or {}, dict):
        raise ConnectorError(connector, "unexpected payload shape: data.inferenceCosts is not an object", path=path)
    costs = data.get("inferenceCosts") or {}
    if costs and window is not None and isinstance(data.get("window"), dict):
        _check_window(data, window, connector, path)
    out = Inference()
    for key, entry in costs.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("properties") or {}, dict):
            raise ConnectorError(connector, f"unexpected payload shape: inference cost {str(key)[:60]!r} is not an object", path=path)
        props = entry.get("properties") or {}
        model = str(props.get("modelName") or "").strip()
        if not model:
            raise ConnectorError(connector, f"inference cost {str(key)[:60]!r} names no model (properties.modelName)", path=path)
        namespace = str(props.get("namespace") or "").strip()
        app, _ = _app_of(namespace, "", tag_to_app) if namespace else (records.UNALLOCATED, None)
        cost = _number(entry, "totalCost", connector, path)
        prompt = float(_number(entry, "promptTokens", connector, path))
        generation = float(_number(entry, "generationTokens", connector, path))
        if cost < 0 or prompt < 0 or generation < 0:
            raise ConnectorError(connector, f"inference cost {str(key)[:60]!r}: negative cost or tokens", path=path)
        old = out.get((app, model), (Decimal(0), 0.0, 0.0))
        out[(app, model)] = (old[0] + cost, old[1] + prompt, old[2] + generation)
    return out


def carve(amounts: dict[tuple[str, str], Decimal], inference: Inference, *, connector: str, day: date) -> dict[tuple[str, str], Decimal]:
    """The label allocation with each app's inference cost taken out of it (it is booked per model).

    Taken from the app's services in ``_CARVE_ORDER``, then from ``__unallocated__``; refused when
    both together hold less than the app's inference cost.
    """
    out = dict(amounts)
    per_app: dict[str, Decimal] = defaultdict(Decimal)
    for (app, _model), (cost, _p, _g) in inference.items():
        per_app[app] += cost
    for app, due in sorted(per_app.items()):
        left = due
        for owner in dict.fromkeys((app, records.UNALLOCATED)):
            for service in _CARVE_ORDER:
                have = out.get((owner, service), Decimal(0))
                if left <= 0 or have <= 0:
                    continue
                take = min(have, left)
                out[(owner, service)] = have - take
                left -= take
        if left > _Q6:
            raise ConnectorError(
                connector,
                f"{day}: the inference cost of app {app!r} ({due.quantize(_Q6)}) exceeds its allocation and the "
                f"unlabelled workloads' ({(due - left).quantize(_Q6)}): the namespace must name the app the "
                "serving pods' label names (its id or one of its cost_tags); refused rather than booked twice",
                path=INFERENCE_PATH,
            )
    return {key: amount for key, amount in out.items() if amount}


def pull(config: ConnectorConfig, since: datetime | None) -> Iterator[Any]:
    """One allocation query per day; yields a Replace window and the CostRecords of each day."""
    base = config.get("url")
    if not base:
        raise ConfigError(f"connectors.{config.name}.url: required, e.g. http://opencost.opencost:9003")
    path = "/" + str(config.get("path", "/allocation/compute")).strip("/")
    url = str(base).rstrip("/") + path
    label = str(config.get("label", "app")).strip()
    currency = str(config.get("currency", "USD"))
    headers: dict[str, str] = {"Accept": "application/json"}
    if config.get("token_env"):
        token = config.secret("token_env")
        if not token:
            raise ConnectorError(config.name, f"environment variable {config.get('token_env')} is not set")
        headers["Authorization"] = f"Bearer {token}"
    tag_to_app = {a.id.lower(): a.id for a in config.apps}
    for app_cfg in config.apps:
        for tag in app_cfg.cost_tags:
            tag_to_app[tag.strip().lower()] = app_cfg.id
    p = Params.of(config)
    session = http_session(retries=p.retries)
    today = datetime.now(UTC).date()
    try:
        for day in _days(config, since, today):
            params = {
                "window": _window(day),
                "aggregate": f"label:{label}",
                "accumulate": "false",
                "includeIdle": str(bool(config.get("include_idle", True))).lower(),
            }
            body, _ = get_json(
                session,
                config.name,
                "GET",
                url,
                params=params,
                headers=headers,
                secret_envs=config.secret_env_names(),
                timeout=(min(5.0, p.timeout_seconds), p.timeout_seconds),
            )
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            amounts = parse(
                body,
                connector=config.name,
                path=path,
                label=label,
                tag_to_app=tag_to_app,
                window=(start, start + timedelta(days=1)),
            )
            if not amounts:
                continue
            inference = Inference()
            if p.inference:
                answer, _ = get_json(
                    session,
                    config.name,
                    "GET",
                    str(base).rstrip("/") + INFERENCE_PATH,
                    params={"window": _window(day), "aggregate": "namespace,model_name", "costBasis": "allocation"},
                    headers=headers,
                    secret_envs=config.secret_env_names(),
                    timeout=(min(5.0, p.timeout_seconds), p.timeout_seconds),
                )
                inference = parse_inference(
                    answer, connector=config.name, tag_to_app=tag_to_app, window=(start, start + timedelta(days=1))
                )
                amounts = carve(amounts, inference, connector=config.name, day=day)
            yield Replace(records.CostRecord, day, day)
            if p.inference:
                yield Replace(records.UsageRecord, day, day)
            for (app, model), (cost, prompt, generation) in sorted(inference.items()):
                if cost.quantize(_Q6):
                    yield records.CostRecord(
                        source="", app_id=app, day=day, category="infra", service=f"inference {model}",
                        amount=cost.quantize(_Q6), currency=currency, model=model,
                    )
                for metric, value in (("input_tokens", prompt), ("output_tokens", generation)):
                    if value:
                        yield records.UsageRecord(source="", app_id=app, day=day, metric=metric, model=model, value=value)
            for (app, service), amount in sorted(amounts.items()):
                if not amount.quantize(_Q6):
                    continue
                yield records.CostRecord(
                    source="",
                    app_id=app,
                    day=day,
                    category="infra",
                    service=service,
                    amount=amount.quantize(_Q6),
                    currency=currency,
                )
    finally:
        session.close()

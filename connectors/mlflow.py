"""App inventory from the MLflow Model Registry: owners, teams, production aliases and stages, last model version.

Config::

    [connectors.registry]
    type = "mlflow"
    url = "http://mlflow.internal:5000"
    token_env = "MLFLOW_TRACKING_TOKEN"      # bearer token, or basic auth:
    # username_env = "MLFLOW_TRACKING_USERNAME"
    # password_env = "MLFLOW_TRACKING_PASSWORD"
    app_id_tag = "app"          # registered-model tag holding the app id (else the model's name)
    team_tag = "team"
    owner_tag = "owner"         # else the registered model's user_id
    production_alias = ["production", "champion"]   # an alias among these => stage "production"
    default_team = "unassigned"

Reads ``GET /api/2.0/mlflow/registered-models/search`` page by page (``max_results``,
``page_token``; https://mlflow.org/docs/latest/rest-api.html#search-registeredmodels). Its
registered models carry ``tags``, ``aliases`` (``[{alias, version}]``, which
``model-versions/search`` does not return) and ``latest_versions`` (the newest version per
stage; the newest of those is the model's last version). For a registry whose search answer
lacks aliases, ``fetch_aliases = true`` asks ``registered-models/get`` per model; when
``latest_versions`` is missing, ``model-versions/search`` (newest first, one result) gives the
last version (and the stages of the newest versions).

Stage of the app: ``production`` when a model has an alias listed in ``production_alias`` or a
version in the classic stage ``Production`` (still used by many registries; stages are deprecated
in MLflow 2.9 but kept); ``retired`` when every version of every model of the app is
``Archived``; else ``pilot`` (a model without versions too).

Apps declared in portfolio.toml win: an MLflow model mapping to a declared app id is not
written (sync writes declared apps with source "config"), and a differing team or owner is
reported as a conflict (logged as a warning) instead of being silently resolved.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import requests
from pydantic import Field

from connectors.base import ConnectorConfig, ConnectorError, Notice, PageGuard, http_session, safe_path
from connectors.settings import ConnectorParams, StrList
from portfolio import records
from portfolio.config import AppConfig
from portfolio.errors import redact

NAME = "mlflow"
#: the record types this connector yields (checked by the standard connector suite)
RECORDS: tuple[type, ...] = (records.App,)

log = logging.getLogger(__name__)

API = "/api/2.0/mlflow"
PAGE_SIZE = 100
MAX_PAGES = 10_000
DEFAULT_PRODUCTION_ALIASES = ("production", "champion")


class Params(ConnectorParams):
    """Settings of the MLflow registry connector."""

    url: str | None = Field(None, description="the MLflow tracking server, e.g. http://mlflow:5000 (required)")
    tracking_uri: str | None = Field(None, description="another name for url")
    token_env: str | None = Field(None, description="variable holding a bearer token")
    username_env: str | None = Field(None, description="variable holding the basic-auth user")
    password_env: str | None = Field(None, description="variable holding the basic-auth password")
    app_id_tag: str = Field("app", description="registered-model tag holding the app id (else the model's name)")
    team_tag: str = Field("team", description="registered-model tag holding the team")
    owner_tag: str = Field("owner", description="registered-model tag holding the owner (else the model's user_id)")
    value_kind_tag: str = Field("value_kind", description="registered-model tag holding revenue_capture or cost_avoidance")
    production_alias: StrList = Field(list(DEFAULT_PRODUCTION_ALIASES), description="aliases that make a model production")
    default_team: str = Field("unassigned", description="team of a model without a team tag")
    fetch_aliases: bool = Field(False, description="ask registered-models/get per model (registries whose search lacks aliases)")
    page_size: int = Field(PAGE_SIZE, ge=1, description="models per search page")
    timeout_seconds: float = Field(30, gt=0, description="seconds to wait for one answer")
    verify_tls: bool | str = Field(True, description="false, or a CA bundle file to verify the server with")
    retries: int = Field(3, ge=0, description="retries on 429/5xx and broken connections")


@dataclass
class _Model:
    """What one registered model says about its app."""

    name: str
    app_id: str
    team: str | None
    owner: str | None
    aliases: set[str] = field(default_factory=set)
    #: the classic stage of each version seen ("None", "Staging", "Production", "Archived")
    stages: list[str] = field(default_factory=list)
    last_version_at: datetime | None = None
    created: date | None = None
    description: str | None = None
    value_kind: str | None = None


class _Client:
    """The registry's REST API, with MLflow's own error messages on failure."""

    def __init__(self, config: ConnectorConfig):
        self.name = config.name or NAME
        url = config.get("url") or config.get("tracking_uri")
        if not url:
            raise ConnectorError(self.name, "url: required, the MLflow tracking server (e.g. http://mlflow:5000)")
        self.base = str(url).rstrip("/")
        self.secret_envs = config.secret_env_names()
        self.session = http_session(retries=Params.of(config).retries)
        verify = config.get("verify_tls", True)
        self.session.verify = verify if isinstance(verify, bool | str) else True
        token = config.secret("token_env")
        user, password = config.secret("username_env"), config.secret("password_env")
        if config.get("token_env") and not token:
            raise ConnectorError(self.name, f"environment variable {config.get('token_env')} (token_env) is not set")
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        elif user is not None and password is not None:
            self.session.auth = (user, password)
        timeout = float(config.get("timeout_seconds", 30))
        self.timeout = (min(5.0, timeout), timeout)

    def get(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.base}{API}/{path}"
        where = safe_path(url)
        try:
            resp = self.session.get(url, params=params, timeout=self.timeout)
        except requests.RequestException as exc:
            raise ConnectorError(self.name, f"MLflow server unreachable ({type(exc).__name__})", path=where) from None
        try:
            body = resp.json()
        except ValueError:
            body = None
        if resp.status_code >= 400:
            if resp.status_code in (401, 403) and not isinstance(body, dict):
                message = "authentication refused: check token_env / username_env, password_env"
            elif isinstance(body, dict) and body.get("message"):
                # MLflow's own error: {"error_code": "INVALID_PARAMETER_VALUE", "message": "..."}
                message = f"{body.get('error_code', 'error')}: {body['message']}"
            else:
                message = resp.text[:300].strip() or resp.reason or "error"
            raise ConnectorError(self.name, redact(message, self.secret_envs), status=resp.status_code, path=where)
        if not isinstance(body, dict):
            raise ConnectorError(self.name, "answer is not a JSON object", status=resp.status_code, path=where)
        return body

    def registered_models(self, page_size: int) -> Iterator[dict[str, Any]]:
        token: str | None = None
        guard = PageGuard(self.name, f"{API}/registered-models/search", MAX_PAGES)
        while True:
            guard.ask(token)
            params: dict[str, Any] = {"max_results": page_size}
            if token:
                params["page_token"] = token
            body = self.get("registered-models/search", params)
            models = body.get("registered_models", [])
            if not isinstance(models, list):
                raise ConnectorError(self.name, "registered_models is not a list", path=f"{API}/registered-models/search")
            yield from models
            token = body.get("next_page_token") or None
            if not token:
                return
            guard.answered(models)

    def aliases(self, model: str) -> list[dict[str, Any]]:
        body = self.get("registered-models/get", {"name": model})
        return list(body.get("registered_model", {}).get("aliases", []) or [])

    def newest_versions(self, model: str) -> list[dict[str, Any]]:
        """The model's newest versions (up to one page, newest first): last version and stages."""
        escaped = model.replace("'", "\\'")
        body = self.get(
            "model-versions/search",
            {"filter": f"name='{escaped}'", "max_results": PAGE_SIZE, "order_by": "creation_timestamp DESC"},
        )
        return [v for v in body.get("model_versions") or [] if isinstance(v, dict)]


def _instant(ms: Any) -> datetime | None:
    if ms is None or ms == "":
        return None
    return datetime.fromtimestamp(int(ms) / 1000, tz=UTC)


def _tags(model: dict[str, Any]) -> dict[str, str]:
    tags = model.get("tags") or []
    if isinstance(tags, dict):  # some gateways return a mapping
        return {str(k): str(v) for k, v in tags.items()}
    return {str(t.get("key")): str(t.get("value", "")) for t in tags if isinstance(t, dict) and t.get("key")}


def _production_aliases(config: ConnectorConfig) -> set[str]:
    raw = config.get("production_alias", list(DEFAULT_PRODUCTION_ALIASES))
    return {raw} if isinstance(raw, str) else {str(a) for a in raw}


def read_models(config: ConnectorConfig) -> list[_Model]:
    """Every registered model, as what it says about its app."""
    client = _Client(config)
    page_size = int(config.get("page_size", PAGE_SIZE))
    app_tag = str(config.get("app_id_tag", "app"))
    team_tag = str(config.get("team_tag", "team"))
    owner_tag = str(config.get("owner_tag", "owner"))
    kind_tag = str(config.get("value_kind_tag", "value_kind"))
    fetch_aliases = bool(config.get("fetch_aliases", False))
    out = []
    for rm in client.registered_models(page_size):
        name = rm.get("name")
        if not name:
            raise ConnectorError(client.name, "a registered model without a name", path=f"{API}/registered-models/search")
        tags = _tags(rm)
        aliases = client.aliases(name) if fetch_aliases else rm.get("aliases") or []
        # latest_versions: the newest version of each stage, so "all Archived" shows there too
        versions = (rm.get("latest_versions") or []) if "latest_versions" in rm else client.newest_versions(name)
        stamps = [v.get("creation_timestamp") for v in versions if isinstance(v, dict)]
        ms = max((int(s) for s in stamps if s is not None), default=None)
        created = _instant(rm.get("creation_timestamp"))
        kind = tags.get(kind_tag)
        out.append(
            _Model(
                name=name,
                app_id=tags.get(app_tag) or name,
                team=tags.get(team_tag) or None,
                owner=tags.get(owner_tag) or rm.get("user_id") or None,
                aliases={str(a.get("alias")) for a in aliases if isinstance(a, dict)},
                stages=[str(v.get("current_stage") or "None") for v in versions if isinstance(v, dict)],
                last_version_at=_instant(ms),
                created=created.date() if created else None,
                description=rm.get("description") or None,
                value_kind=kind if kind in records.VALUE_KINDS else None,
            )
        )
    return out


def _stage(group: Sequence[_Model], production: set[str]) -> str:
    """production (an alias or a version in stage Production), retired (only Archived versions), else pilot."""
    if any(m.aliases & production or any(st.lower() == "production" for st in m.stages) for m in group):
        return "production"
    if all(m.stages and all(st.lower() == "archived" for st in m.stages) for m in group):
        return "retired"
    return "pilot"


def to_apps(models: Sequence[_Model], config: ConnectorConfig) -> list[records.App]:
    """One App per app id; several models of one app merge (newest version, production if any is)."""
    production = _production_aliases(config)
    default_team = str(config.get("default_team", "unassigned"))
    by_app: dict[str, list[_Model]] = {}
    for m in sorted(models, key=lambda m: m.name):
        by_app.setdefault(m.app_id, []).append(m)
    apps = []
    for app_id, group in sorted(by_app.items()):
        stamps = [m.last_version_at for m in group if m.last_version_at]
        created = [m.created for m in group if m.created]
        apps.append(
            records.App(
                app_id=app_id,
                name=group[0].name if len(group) == 1 else app_id,
                team=next((m.team for m in group if m.team), default_team),
                owner=next((m.owner for m in group if m.owner), None),
                stage=_stage(group, production),
                value_kind=next((m.value_kind for m in group if m.value_kind), "cost_avoidance"),
                launched=min(created) if created else None,
                description=next((m.description for m in group if m.description), None),
                last_model_version_at=max(stamps) if stamps else None,
                source="",
            )
        )
    return apps


def conflicts(config_apps: Sequence[AppConfig], mlflow_apps: Sequence[records.App]) -> list[str]:
    """Apps both declared in portfolio.toml and found in MLflow whose team or owner differ.

    portfolio.toml wins (its apps are what sync writes); each difference is a sentence naming the
    app, the field and both values, so a person can fix one side.
    """
    declared = {a.id: a for a in config_apps}
    out = []
    for app in mlflow_apps:
        cfg = declared.get(app.app_id)
        if cfg is None:
            continue
        for fld, ours, theirs in (("team", cfg.team, app.team), ("owner", cfg.owner, app.owner)):
            if theirs and (ours or None) != theirs:
                out.append(
                    f"app {app.app_id}: {fld} is {ours!r} in portfolio.toml but {theirs!r} in MLflow "
                    f"(model {app.name}); portfolio.toml wins"
                )
    return out


def pull(config: ConnectorConfig, since: datetime | None) -> Iterator[Any]:
    """Yield an App per app id found in the registry, except apps declared in portfolio.toml.

    ``since`` is ignored: the inventory is small and read whole (a model may lose its alias).
    """
    apps = to_apps(read_models(config), config)
    found = conflicts(config.apps, apps)
    for line in found:
        log.warning("%s: conflict: %s", config.name or NAME, line)
        yield Notice(f"conflict with portfolio.toml: {line}")
    declared = {a.id for a in config.apps}
    for app in apps:
        if app.app_id not in declared:
            yield app

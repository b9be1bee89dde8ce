"""portfolio.toml + environment: the one place settings come from.

Path: ``--config``, else ``PORTFOLIO_CONFIG``, else ``./portfolio.toml``. ``PORTFOLIO_DB_URL``
overrides ``database_url``. Secrets are never in the file: a key ending in ``_env`` names an
environment variable (``token_env = "GITHUB_TOKEN"``), read with :meth:`ConnectorConfig.secret`.
Validation errors name the key and what was expected.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy.engine import make_url

from portfolio.errors import ConfigError

DEFAULT_PATH = "portfolio.toml"
#: value sources, best first (see portfolio.precedence): finance warehouse (sql connector) > hand
#: upload on the dashboard ("upload") > ledger file > every other source, by name
DEFAULT_PRECEDENCE: tuple[str, ...] = ("sql", "upload", "outcomes_file")


class Team(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hourly_rate: float = Field(120.0, ge=0, description="loaded cost of one engineer-hour")
    capacity_hours: float = Field(640.0, gt=0, description="engineer-hours available per month")
    name: str | None = None


class AppConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    name: str | None = None
    team: str = Field(min_length=1)
    owner: str | None = None
    sponsor: str | None = None
    stage: Literal["pilot", "production", "retired", "paused"] = "production"
    retired_on: date | None = Field(None, description="with stage = \"retired\": the day it stopped (checks its savings on the bill)")
    value_kind: Literal["revenue_capture", "cost_avoidance", "both"] = "cost_avoidance"
    launched: date | None = None
    slo_availability: float = Field(0.99, ge=0, le=1)
    review_every_days: int = Field(90, gt=0)
    cost_tags: list[str] = Field(default_factory=list)
    description: str | None = None
    # Opening figures: what the app cost and earned before the facts begin, so cumulative net,
    # payback and lifetime ROI start at launch (portfolio.books.since_launch).
    build_cost: float | None = Field(None, ge=0, description="capitalised cost of building the app, booked at launch")
    opening_net: float | None = Field(None, description="net from launch up to opening_net_until (value - cost)")
    opening_net_until: date | None = Field(None, description="last day opening_net covers; facts up to it are not counted again")

    @model_validator(mode="after")
    def _opening_figures(self) -> AppConfig:
        _check_opening(f"app {self.id!r}", self.launched, self.opening_net, self.opening_net_until, need_launch=True)
        if self.retired_on is not None and self.stage != "retired":
            raise ValueError(f"app {self.id!r}: retired_on goes with stage = \"retired\" (it is {self.stage!r})")
        return self

    @property
    def has_opening(self) -> bool:
        """True when build_cost or opening_net is given: cumulative figures can start at launch."""
        return self.build_cost is not None or self.opening_net is not None


def _check_opening(
    where: str, launched: date | None, opening_net: float | None, until: date | None, need_launch: bool
) -> None:
    if (opening_net is None) != (until is None):
        raise ValueError(f"{where}: opening_net and opening_net_until go together (give both or neither)")
    if need_launch and opening_net is not None and launched is None:
        raise ValueError(f"{where}: opening_net needs `launched` (the date it counts from)")
    if until is not None and launched is not None and until < launched:
        raise ValueError(f"{where}: opening_net_until {until} is before launched {launched}")


class Opening(BaseModel):
    """Opening figures of an app the config does not declare (it comes from an inventory connector):
    ``[finance.opening.<app id>]``. ``launched`` defaults to the inventory's launch date."""

    model_config = ConfigDict(extra="forbid")

    build_cost: float | None = Field(None, ge=0, description="capitalised cost of building the app, booked at launch")
    opening_net: float | None = Field(None, description="net from launch up to opening_net_until (value - cost)")
    opening_net_until: date | None = Field(None, description="last day opening_net covers")
    launched: date | None = Field(None, description="overrides the inventory's launch date")

    @model_validator(mode="after")
    def _opening_figures(self) -> Opening:
        _check_opening("opening", self.launched, self.opening_net, self.opening_net_until, need_launch=False)
        return self

    @property
    def has_opening(self) -> bool:
        return self.build_cost is not None or self.opening_net is not None


class Rules(BaseModel):
    """Thresholds of the retirement rules. Every rule has a default."""

    model_config = ConfigDict(extra="forbid")

    zombie_max_daily_requests: float = Field(10, ge=0)
    zombie_window_days: int = Field(30, gt=0)
    zombie_min_monthly_cost: float = Field(100, ge=0)
    underwater_months: int = Field(6, gt=0)
    decaying_min_drop: float = Field(0.25, gt=0, le=1, description="quarter-over-quarter value drop share")
    maintenance_sink_share: float = Field(0.5, gt=0, description="people cost / value above this")
    maintenance_sink_months: int = Field(6, gt=0)
    unreliable_window_months: int = Field(3, gt=0)
    unreliable_min_missed: int = Field(2, gt=0)
    orphan_grace_days: int = Field(30, ge=0, description="review overdue by more than this")


class Alerts(BaseModel):
    """Webhook alerts (Slack-compatible JSON ``{"text": ...}``)."""

    model_config = ConfigDict(extra="forbid")

    webhook_url_env: str | None = Field(None, description="env variable holding the webhook URL (a secret)")
    connector_failures: int = Field(3, gt=0, description="alert when a connector failed this many runs in a row")
    dashboard_url: str | None = Field(None, description="link put in alert messages")


class Uploads(BaseModel):
    """Caps on a value-ledger file uploaded in the dashboard, checked before the file is parsed."""

    model_config = ConfigDict(extra="forbid")

    max_bytes: int = Field(20_000_000, gt=0, description="largest file accepted, in bytes")
    max_rows: int = Field(200_000, gt=0, description="most data rows accepted")


class GenAI(BaseModel):
    """Token economics of GenAI apps (see portfolio/genai.py)."""

    model_config = ConfigDict(extra="forbid")

    drift_threshold: float = Field(
        0.05, ge=0, description="flag a gateway estimate that differs from the vendor bill of the same app and day by more than this share"
    )


class Auth(BaseModel):
    """Sign-in and roles. Sign-in itself is Streamlit's OIDC (``st.login``); this maps identities to roles.

    The OIDC client is given either here — ``client_id``, ``server_metadata_url``, ``redirect_uri``
    and the *names* of the environment variables that hold the client secret and the cookie secret;
    ``mlportfolio up`` hands them to Streamlit (:meth:`streamlit_secrets`) — or by hand in
    ``.streamlit/secrets.toml`` ([auth] section) when these keys are left out.
    """

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    provider: str | None = Field(None, description="name of the [auth.<provider>] section in secrets.toml, if several")
    client_id: str | None = Field(None, description="the OIDC client's id at the provider (not a secret)")
    client_secret_env: str | None = Field(None, description="env variable holding the OIDC client secret")
    cookie_secret_env: str | None = Field(None, description="env variable holding the key that signs the sign-in cookie")
    server_metadata_url: str | None = Field(None, description="the provider's /.well-known/openid-configuration URL")
    redirect_uri: str | None = Field(None, description="this dashboard's URL + /oauth2callback ({port} = its port)")
    admins: list[str] = Field(default_factory=list, description="e-mails, or @domain, or group names")
    approvers: list[str] = Field(
        default_factory=list, description="approve or reject lifecycle proposals (and all an editor does)"
    )
    editors: list[str] = Field(default_factory=list)
    viewers: list[str] = Field(default_factory=list)
    default_role: Literal["none", "viewer", "editor", "approver", "admin"] = Field(
        "none", description="role of a signed-in identity that matches no entry (none: a page saying whom to ask)"
    )
    group_claim: str = "groups"
    require_email_verified_claim: bool = Field(
        True,
        description="an e-mail counts only when the identity says email_verified = true; false: also when the "
        "claim is absent (providers that never send it, e.g. Microsoft Entra ID); email_verified = false never counts",
    )
    session_hours: float = Field(
        8, gt=0, le=24 * 30, description="a sign-in lasts this long (from the ID token's issue time), then sign in again"
    )

    @model_validator(mode="before")
    @classmethod
    def _no_secret_values(cls, data: Any) -> Any:
        # Streamlit's docs put these in secrets.toml; pasted here they would be echoed by the
        # "extra key" error, so refuse them by name only
        if isinstance(data, dict):
            for key in ("client_secret", "cookie_secret"):
                if key in data:
                    raise ValueError(
                        f"auth.{key}: a secret never goes in portfolio.toml; put it in an environment "
                        f"variable and name that variable with {key}_env"
                    )
        return data

    @model_validator(mode="after")
    def _client_complete(self) -> Auth:
        given = {key: getattr(self, key) for key in OIDC_CLIENT_KEYS}
        if any(given.values()):
            missing = [f"auth.{key}" for key, value in given.items() if not value]
            if missing:
                raise ValueError(
                    f"{', '.join(missing)} required too: an OIDC client given in portfolio.toml needs "
                    f"all of {', '.join(OIDC_CLIENT_KEYS)}"
                )
            if not str(self.redirect_uri).endswith("/oauth2callback"):
                raise ValueError("auth.redirect_uri must end with /oauth2callback (Streamlit's sign-in callback)")
        return self

    @property
    def has_client(self) -> bool:
        """Whether the OIDC client is given here (else in ``.streamlit/secrets.toml``)."""
        return bool(self.client_id)

    def secret_env_names(self) -> tuple[str, ...]:
        return tuple(n for n in (self.client_secret_env, self.cookie_secret_env) if n)

    def streamlit_secrets(self) -> dict[str, Any]:
        """The ``auth`` section of Streamlit's secrets for ``st.login``, secrets read from the environment.

        With ``provider`` the client keys go under ``auth.<provider>``. Raises :class:`ConfigError`
        naming the variable (never a value) when a secret's variable is unset or empty.
        """
        if not self.has_client:
            raise ConfigError("auth: portfolio.toml gives no OIDC client (client_id, ...); it is in .streamlit/secrets.toml")
        values = {}
        for key in ("client_secret_env", "cookie_secret_env"):
            var = str(getattr(self, key))
            value = os.environ.get(var)
            if not value:
                raise ConfigError(f"auth.{key}: environment variable {var} is not set")
            values[key.removesuffix("_env")] = value
        client = {
            "client_id": self.client_id,
            "client_secret": values["client_secret"],
            "server_metadata_url": self.server_metadata_url,
        }
        section: dict[str, Any] = {"redirect_uri": self.redirect_uri, "cookie_secret": values["cookie_secret"]}
        if self.provider:
            section[self.provider] = client
        else:
            section.update(client)
        return section


#: the keys of an OIDC client given in ``[auth]`` (all or none)
OIDC_CLIENT_KEYS = ("client_id", "client_secret_env", "cookie_secret_env", "server_metadata_url", "redirect_uri")


class Server(BaseModel):
    """How the dashboard answers: which ``Host`` names it serves (DNS-rebinding protection)."""

    model_config = ConfigDict(extra="forbid")

    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="host names the dashboard answers besides localhost, 127.0.0.1, ::1 and its bind address "
        "(and, with sign-in, the host of auth.redirect_uri); '*.example.com' matches its subdomains",
    )

    @field_validator("allowed_hosts")
    @classmethod
    def _plain_host_names(cls, hosts: list[str]) -> list[str]:
        cleaned = []
        for i, host in enumerate(hosts):
            name = host.strip().lower().rstrip(".").removeprefix("[").removesuffix("]")
            if ":" in name:  # only an IPv6 address may hold colons (a port is not part of a host name)
                try:
                    name = str(ipaddress.IPv6Address(name))
                except ValueError:
                    name = ""
            if not name or any(c in name for c in "/@ ?#\\"):
                raise ValueError(f"allowed_hosts[{i}] {host!r}: expected a host name without scheme, port or path")
            cleaned.append(name)
        return cleaned


class Value(BaseModel):
    """How value figures from several sources combine (see :mod:`portfolio.precedence`)."""

    model_config = ConfigDict(extra="forbid")

    precedence: list[str] = Field(
        default_factory=lambda: list(DEFAULT_PRECEDENCE),
        description=(
            "value sources, best first: a source name (a connector's name, or 'upload' for the dashboard's "
            "ledger upload) or a connector type (every connector of that type). For each app, month and kind "
            "only the best-ranked source's figure counts; sources not listed rank after the listed ones, "
            "alphabetically. Default: sql (a finance warehouse), upload, outcomes_file"
        ),
    )

    @field_validator("precedence")
    @classmethod
    def _distinct(cls, entries: list[str]) -> list[str]:
        for i, entry in enumerate(entries):
            if not entry.strip():
                raise ValueError(f"value.precedence[{i}] is empty; expected a source name or a connector type")
            if entry in entries[:i]:
                raise ValueError(f"value.precedence[{i}] {entry!r} is listed twice")
        return entries


class SettingsError(ConfigError):
    """A connector's settings are wrong: names the connector and the key, never the value.

    ``problems`` holds (connector name, key, what is wrong) per problem; ``connector`` and ``key``
    are the first one's.
    """

    def __init__(self, problems: list[tuple[str, str, str]], where: str | None = None):
        self.problems = problems
        self.connector, self.key = (problems[0][0], problems[0][1]) if problems else ("", "")
        lines = [f"connectors.{conn}.{key}: {what}" for conn, key, what in problems]
        if where:
            text = f"{where}: invalid connector settings\n" + "\n".join(f"  {line}" for line in lines)
        else:
            text = "\n".join(lines)
        super().__init__(text)


#: keys every ``[connectors.<name>]`` table may have, whatever its type
COMMON_CONNECTOR_KEYS = ("type", "schedule", "enabled", "lookback_days", "timeout_minutes")


class ConnectorConfig(BaseModel):
    """One ``[connectors.<name>]`` table. Keys other than the common ones are the connector's params,
    declared and validated by the connector's settings model (:mod:`connectors.settings`)."""

    model_config = ConfigDict(extra="allow")

    name: str = ""
    type: str = Field(min_length=1)
    schedule: str | None = Field(None, description="cron expression used by `mlportfolio up`")
    enabled: bool = True
    lookback_days: int = Field(3, ge=0, description="re-read this many days before the cursor (restated data)")
    timeout_minutes: float = Field(
        30, gt=0, description="a run still pulling after this long fails and the next connector runs"
    )
    # filled by Config so connectors can map spend / tickets to apps without touching the DB; never read
    # from the table (the alias no TOML key can spell), so a connector may have its own `apps` setting
    # (the demo's size)
    apps: list[AppConfig] = Field(default_factory=list, exclude=True, validation_alias="\x00registered-apps")
    base_dir: str = Field(".", exclude=True)

    @property
    def params(self) -> dict[str, Any]:
        """The connector-specific keys."""
        return dict(self.model_extra or {})

    def get(self, key: str, default: Any = None) -> Any:
        return (self.model_extra or {}).get(key, default)

    def secret(self, key: str) -> str | None:
        """Value of the environment variable named by ``key`` (e.g. ``token_env``), or None."""
        var = self.get(key)
        if not var:
            return None
        return os.environ.get(str(var))

    def secret_env_names(self) -> tuple[str, ...]:
        return tuple(str(v) for k, v in (self.model_extra or {}).items() if k.endswith("_env") and v)

    def path(self, key: str = "path") -> Path:
        """A path parameter resolved against the config file's folder."""
        raw = self.get(key)
        if raw is None:
            raise ConfigError(f"connectors.{self.name}.{key}: required, expected a file path")
        p = Path(str(raw)).expanduser()
        return p if p.is_absolute() else Path(self.base_dir) / p


class Finance(BaseModel):
    """How money over time is valued."""

    model_config = ConfigDict(extra="forbid")

    discount_rate: float = Field(
        0.10, ge=0, lt=1, description="annual rate for NPV; discounted monthly at (1 + rate) ** (1/12) - 1"
    )
    opening: dict[str, Opening] = Field(
        default_factory=dict, description="opening figures of apps not declared in [[apps]], by app id"
    )


class Savings(BaseModel):
    """How a retirement is verified on the bill (see :mod:`portfolio.verify`)."""

    model_config = ConfigDict(extra="forbid")

    grace_days: int = Field(7, ge=0, description="spend of a retired app from this many days after its retirement date on is leftover spend")
    before_days: int = Field(90, gt=0, description="run-rate before retirement: the days just before the retirement date")
    after_days: int = Field(90, gt=0, description="run-rate after retirement: at most this many days from the end of the grace period")
    min_after_days: int = Field(30, gt=0, description="fewer days than this after the grace period: realised savings are not claimed yet")


class BusinessCase(BaseModel):
    """An app's business case: what it was expected to earn and cost a year, as approved (plan vs actual)."""

    model_config = ConfigDict(extra="forbid")

    expected_annual_value: float | None = Field(None, ge=0, description="value a year the plan expects")
    expected_annual_run_cost: float | None = Field(None, ge=0, description="run cost a year the plan expects (people included)")
    build_cost: float | None = Field(None, ge=0, description="build cost in the plan")
    approved_by: str | None = None
    approved_on: date | None = None

    @model_validator(mode="after")
    def _something_planned(self) -> BusinessCase:
        if self.expected_annual_value is None and self.expected_annual_run_cost is None:
            raise ValueError("a business case needs expected_annual_value or expected_annual_run_cost")
        return self


class Assumption(BaseModel):
    """A named value assumption: the estimate rows it stands behind, who owns it, who approved it, until when."""

    model_config = ConfigDict(extra="forbid")

    app: str = Field(min_length=1, description="the app whose estimate rows it covers")
    kind: Literal["revenue_capture", "cost_avoidance"] | None = Field(None, description="only this value kind (default both)")
    first_month: date | None = Field(None, description="first month covered (default: all)")
    last_month: date | None = Field(None, description="last month covered (default: all)")
    owner: str | None = None
    approver: str | None = Field(None, description="who approved it; missing = unapproved (flagged)")
    expires: date | None = Field(None, description="the assumption must be re-approved after this day (flagged once past)")
    note: str | None = None


class Plan(BaseModel):
    """Plan versus actual: business cases and value assumptions (see :mod:`portfolio.plan`)."""

    model_config = ConfigDict(extra="forbid")

    business_case_file: str | None = Field(
        None,
        description="CSV/xlsx ledger of business cases (app_id, expected_annual_value, expected_annual_run_cost, "
        "build_cost, approved_by, approved_on), relative to the config file",
    )
    business_case: dict[str, BusinessCase] = Field(default_factory=dict, description="business cases by app id")
    assumptions: dict[str, Assumption] = Field(default_factory=dict, description="value assumptions by name")


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    database_url: str = "sqlite:///portfolio.db"
    currency: str = "USD"
    default_hourly_rate: float = Field(100.0, ge=0)
    default_capacity_hours: float = Field(640.0, gt=0)
    teams: dict[str, Team] = Field(default_factory=dict)
    apps: list[AppConfig] = Field(default_factory=list)
    connectors: dict[str, ConnectorConfig] = Field(default_factory=dict)
    rules: Rules = Field(default_factory=Rules)
    alerts: Alerts = Field(default_factory=Alerts)
    genai: GenAI = Field(default_factory=GenAI)
    auth: Auth = Field(default_factory=Auth)
    server: Server = Field(default_factory=Server)
    value: Value = Field(default_factory=Value)
    uploads: Uploads = Field(default_factory=Uploads)
    finance: Finance = Field(default_factory=Finance)
    savings: Savings = Field(default_factory=Savings)
    plan: Plan = Field(default_factory=Plan)
    discover_apps: bool = Field(
        False, description="treat app ids met in the facts but registered nowhere as apps (a first look at a bill)"
    )
    source_path: str | None = Field(None, exclude=True)
    base_dir: str = Field(".", exclude=True)

    @field_validator("apps")
    @classmethod
    def _unique_app_ids(cls, apps: list[AppConfig]) -> list[AppConfig]:
        seen: set[str] = set()
        for i, app in enumerate(apps):
            if app.id in seen:
                raise ValueError(f"apps[{i}].id {app.id!r} is declared twice")
            seen.add(app.id)
        return apps

    def team(self, name: str) -> Team:
        return self.teams.get(name) or Team(
            hourly_rate=self.default_hourly_rate, capacity_hours=self.default_capacity_hours
        )

    def hourly_rates(self) -> dict[str, float]:
        return {k: t.hourly_rate for k, t in self.teams.items()}

    def capacity(self) -> dict[str, float]:
        return {k: t.capacity_hours for k, t in self.teams.items()}


def _format_errors(exc: ValidationError, where: str) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        got = err.get("input")
        got_s = "" if isinstance(got, dict | list) else f" (got {got!r})"
        lines.append(f"  {loc}: {err['msg']}{got_s}")
    return f"{where}: invalid configuration\n" + "\n".join(lines)


def parse(data: dict[str, Any], *, where: str = "portfolio.toml", base_dir: str = ".") -> Config:
    """Validate a parsed TOML document into a :class:`Config`."""
    try:
        cfg = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, where)) from None
    env_url = os.environ.get("PORTFOLIO_DB_URL")
    if env_url:
        cfg.database_url = env_url
    else:
        cfg.database_url = resolve_sqlite_path(cfg.database_url, base_dir)
    for name, conn in cfg.connectors.items():
        conn.name = name
        conn.apps = cfg.apps
        conn.base_dir = base_dir
    _validate_connector_settings(cfg, where)
    cfg.source_path = where
    cfg.base_dir = base_dir
    return cfg


def resolve_sqlite_path(url: str, base_dir: str) -> str:
    """A SQLite URL with a relative file path, resolved against ``base_dir`` (the config file's folder).

    ``sqlite:///portfolio.db`` in ``/srv/ml/portfolio.toml`` means ``/srv/ml/portfolio.db`` whatever
    the current directory of the process that reads it (the CLI, the scheduler, the dashboard).
    Other URLs, absolute paths and in-memory databases are returned as they are.
    """
    if not url.startswith("sqlite"):
        return url
    try:
        parsed = make_url(url)
    except Exception:  # a malformed URL is reported when the engine is made
        return url
    db = parsed.database
    if not db or db == ":memory:" or db.startswith("file:"):
        return url
    p = Path(db).expanduser()
    if p.is_absolute():
        return url
    return parsed.set(database=str((Path(base_dir) / p).resolve())).render_as_string(hide_password=False)


def _validate_connector_settings(cfg: Config, where: str) -> None:
    """Every connector's table against its settings model; all problems in one SettingsError."""
    from connectors import settings  # connectors import this module: resolved at call time

    problems: list[tuple[str, str, str]] = []
    for conn in cfg.connectors.values():
        try:
            settings.validate(conn)
        except SettingsError as exc:
            problems += exc.problems
        except ImportError:
            continue  # a connector that cannot be loaded: `check` and sync say so by name
    if problems:
        raise SettingsError(problems, where)


def load(path: str | os.PathLike[str] | None = None) -> Config:
    """Load and validate portfolio.toml (``path`` > ``PORTFOLIO_CONFIG`` > ``./portfolio.toml``)."""
    p = Path(path or os.environ.get("PORTFOLIO_CONFIG") or DEFAULT_PATH)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{p}: config file not found (use --config, PORTFOLIO_CONFIG, or `mlportfolio demo`)") from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read config file ({exc.strerror})") from None
    return loads(text, where=str(p), base_dir=str(p.resolve().parent))


def loads(text: str, *, where: str = "portfolio.toml", base_dir: str = ".") -> Config:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML: {exc}") from None
    return parse(data, where=where, base_dir=base_dir)


def demo_config(database_url: str) -> Config:
    """The embedded demo portfolio's configuration, pointed at ``database_url``."""
    text = resources.files("portfolio").joinpath("demo.toml").read_text(encoding="utf-8")
    cfg = loads(text, where="<embedded demo.toml>")
    cfg.database_url = database_url
    return cfg

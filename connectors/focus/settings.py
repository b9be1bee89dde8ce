"""The FOCUS connector's settings: the typed model, and the validated form the queries use."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from connectors.settings import ConnectorParams, Regex, StrList
from portfolio.config import ConnectorConfig

COST_COLUMNS = ("EffectiveCost", "BilledCost", "ListCost", "ContractedCost")
#: FOCUS columns the connector may use (canonical spelling)
CANONICAL = COST_COLUMNS + (
    "ChargePeriodStart",
    "BillingCurrency",
    "BillingPeriodStart",
    "ChargeCategory",
    "CommitmentDiscountId",
    "CommitmentDiscountStatus",
    "ServiceName",
    "ServiceCategory",
    "ProviderName",
    "Tags",
    "SubAccountId",
    "SubAccountName",
    "ResourceId",
    "BillingAccountId",
    "PublisherName",
    "ConsumedQuantity",
    "ConsumedUnit",
    "SkuId",
    "SkuMeter",
    "ChargeDescription",
)
#: other spellings -> canonical (FOCUS 1.3 renames, and FOCUS 0.5's names); the canonical
#: column wins when a file has both
ALIASES = {
    "serviceprovidername": "ProviderName",
    "hostprovidername": "PublisherName",
    "amortizedcost": "EffectiveCost",
    "billedcurrency": "BillingCurrency",
    "chargetype": "ChargeCategory",
}
CHUNK_ROWS = 100_000
_KEY_COLUMNS = ("app_id", "day", "category", "service", "currency", "billing_period")
UNUSED_SERVICE = "unused commitment"
DUPLICATE_POLICIES = ("newest", "error", "sum")
_FILE_COLUMN = "mlp_export_file"
_SUFFIXES_PARQUET = (".parquet", ".parq", ".pq")
_SUFFIXES_CSV = (".csv", ".csv.gz", ".csv.gzip", ".tsv", ".tsv.gz")


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


def _cost_column(value: str) -> str:
    match = [c for c in COST_COLUMNS if c.lower() == value.strip().lower()]
    if not match:
        raise ValueError(f"expected one of {', '.join(COST_COLUMNS)}")
    return match[0]


def _tag_keys(value: list[str]) -> list[str]:
    if not all(k.strip() for k in value):
        raise ValueError("expected a list of non-empty tag keys")
    return value


def _pattern_table(value: Any) -> Any:
    """``{ "<glob>" = "<app>" }`` is the short form of a list of glob rules."""
    return [{"glob": k, "app": v} for k, v in value.items()] if isinstance(value, dict) else value


class ResourcePattern(BaseModel):
    """One ``resource_patterns`` rule: a glob or a regex on ``ResourceId``, and the app it claims."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    glob: str | None = None
    regex: Regex | None = None
    app: str = Field(min_length=1)

    @model_validator(mode="after")
    def _one_pattern(self) -> ResourcePattern:
        if (self.glob is None) == (self.regex is None):
            raise ValueError("expected { glob = ..., app = ... } or { regex = ..., app = ... }")
        return self

    def kind_and_pattern(self) -> tuple[str, str]:
        return ("glob", str(self.glob)) if self.glob is not None else ("regex", str(self.regex))


class Params(ConnectorParams):
    """Settings of the FOCUS connector."""

    path: str | None = Field(None, description="export file, folder (searched recursively) or glob; or database_url")
    database_url: str | None = Field(None, description="warehouse holding the FOCUS table (PostgreSQL), instead of path")
    database_url_env: str | None = Field(None, description="variable holding the warehouse URL (instead of database_url)")
    table: str = Field("focus", description="the FOCUS table in the warehouse ([schema.]name)")
    cost_column: Annotated[str, AfterValidator(_cost_column)] = Field(
        "EffectiveCost", description="EffectiveCost, BilledCost, ListCost or ContractedCost"
    )
    app_tag_keys: Annotated[StrList, AfterValidator(_tag_keys)] = Field(
        default_factory=list, description="tag keys whose value names the app, first present wins"
    )
    sub_accounts: dict[str, str] = Field(default_factory=dict, description="SubAccountId or SubAccountName -> app id")
    resource_patterns: Annotated[list[ResourcePattern], BeforeValidator(_pattern_table)] = Field(
        default_factory=list,
        description='[{ glob = ..., app = ... } or { regex = ..., app = ... }] on ResourceId; or { "<glob>" = "<app>" }',
    )
    default_currency: str | None = Field(None, description="currency of files without a BillingCurrency column (the spec's examples)")
    duplicate_exports: Annotated[Literal["newest", "error", "sum"], BeforeValidator(_lower)] = Field(
        "newest", description="one billing period in several export folders: keep the newest, refuse, or add up"
    )
    duckdb_memory_limit: str = Field("512MB", description="DuckDB's memory budget; beyond it, it spills to disk")
    duckdb_threads: int | None = Field(None, ge=1, description="DuckDB's threads (default: all cores)")
    duckdb_temp_directory: str | None = Field(None, description="where DuckDB spills (default: a private temp folder)")


@dataclass(frozen=True)
class Pattern:
    kind: str  # glob | regex
    pattern: str
    app: str


@dataclass(frozen=True)
class Settings:
    """The connector's parameters, validated."""

    cost_column: str
    tag_keys: tuple[str, ...]
    sub_accounts: dict[str, str] = field(default_factory=dict)
    patterns: tuple[Pattern, ...] = ()
    tag_to_app: dict[str, str] = field(default_factory=dict)  # lower(tag value) -> app id
    default_currency: str | None = None  # for partial files without BillingCurrency
    duplicate_exports: str = "newest"  # one period of one account in several export folders

    @classmethod
    def from_config(cls, config: ConnectorConfig) -> Settings:
        p = Params.of(config)
        tag_to_app: dict[str, str] = {}
        for app in config.apps:
            tag_to_app.setdefault(app.id.strip().lower(), app.id)
        for app in config.apps:
            for tag in app.cost_tags:
                tag_to_app[tag.strip().lower()] = app.id
        return cls(
            duplicate_exports=p.duplicate_exports,
            cost_column=p.cost_column,
            tag_keys=tuple(dict.fromkeys(k.strip() for k in p.app_tag_keys)),
            sub_accounts={k.strip(): v for k, v in p.sub_accounts.items()},
            patterns=tuple(Pattern(*i.kind_and_pattern(), i.app) for i in p.resource_patterns),
            tag_to_app=tag_to_app,
            default_currency=p.default_currency.strip() if p.default_currency else None,
        )

    def required(self) -> list[str]:
        """Columns that must be present: what the connector uses."""
        cols = [self.cost_column, "ChargePeriodStart"]
        if not self.default_currency:
            cols.append("BillingCurrency")
        if self.tag_keys:
            cols.append("Tags")
        if self.patterns:
            cols.append("ResourceId")
        return cols

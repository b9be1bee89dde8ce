"""FOCUS billing exports (CSV, gzip CSV, Parquet or a warehouse table): infra cost per app and day, reconciled to the bill.

Reads FOCUS 1.0, 1.1 and 1.2 exports (FOCUS 1.3 and 0.5 column names accepted as aliases) from one file,
a folder (AWS writes ``BILLING_PERIOD=YYYY-MM/`` folders) or a glob, and aggregates them where they
sit with DuckDB: only per billing period, currency, app, day, category and service totals come out,
so memory does not grow with the file. With ``database_url`` (+ ``table``) instead of ``path``, the
same mapping runs as one aggregating SQL query inside the warehouse (PostgreSQL; the dialect hooks
are in :class:`SqlDialect`).

Mapping rules, tried in order (first that claims a line wins):

1. ``app_tag_keys``: the first listed tag key present on the line (keys matched case- and
   whitespace-insensitively; ``Tags`` a JSON string or a Parquet map). The tag VALUE is the app:
   a value listed in an app's ``cost_tags`` (or equal to an app id, case-insensitively) maps to
   that app, any other value is taken as the app id itself.
2. ``sub_accounts``: ``{ "<SubAccountId or SubAccountName>" = "<app id>" }``.
3. ``resource_patterns``: ``[{ glob = "arn:*:sagemaker:*:endpoint/churn*", app = "churn" },
   { regex = "...", app = "..." }]`` matched against ``ResourceId`` (regex: search anywhere).

Spend no rule claims goes to ``_unallocated``, never dropped.

Categories: ``ChargeCategory`` Tax -> ``other``; Usage, Purchase, Credit, Adjustment -> ``infra``
(credits and refunds are negative infra). Service: ``ServiceName``, else ``ServiceCategory``, else
``ProviderName``, else ``unknown``. Day: the UTC date of ``ChargePeriodStart``.

Commitment discounts (FOCUS 1.2 worked examples): with ``EffectiveCost`` the purchase of a
commitment (``ChargeCategory`` Purchase with a ``CommitmentDiscountId``) is amortised into the usage
lines, so the purchase line is not counted again (the spec makes its EffectiveCost 0 anyway; the
BillingTotal detail says how many such lines were set aside). Unused commitment
(``CommitmentDiscountStatus`` Unused) is cost no app claims: ``_unallocated``, service
``unused commitment``.

Reconciliation: costs are summed exactly (DECIMAL(38,12)); per billing period and currency the
rows are rounded to 6 places with cumulative rounding (each row = round(running sum) - round(running
sum before it)), so the rows add up exactly to the bill's own rounded total, which is yielded as a
:class:`~portfolio.records.BillingTotal`. Each billing period present replaces what the source held
for that period (``ReplaceKeys`` on ``billing_period``), so a re-exported (restated) period replaces
the old figures, late charges included. A charge whose day falls outside its billing period (a late
charge) keeps its own row, service suffixed ``(billed YYYY-MM)``, so it never collides with the
other period's rows. Costs in several currencies
are kept per currency; if one (app, day, category, service) has spend in two currencies the sync
fails with an error naming them rather than summing them.

The connector re-reads every file each run (files are the truth, re-syncing identical files writes
nothing); ``since`` is not used.

Settings (``[connectors.<name>]``, ``type = "focus"``):

- ``path``: file, folder (searched recursively for .csv, .csv.gz, .parquet) or glob; or
  ``database_url`` (or ``database_url_env``, the variable holding it) + ``table`` (``focus``).
- ``cost_column``: ``EffectiveCost`` (default), ``BilledCost``, ``ListCost`` or ``ContractedCost``.
- ``app_tag_keys``, ``sub_accounts``, ``resource_patterns``: the mapping rules above.
- ``default_currency``: used when a file has no ``BillingCurrency`` column (the spec's worked
  examples); without it such a file is refused.
- ``duplicate_exports``: when one billing period of one billing account is found in several export
  folders (Azure writes a folder per export run, AWS one per report version, and a folder of
  downloads may hold a month twice), ``newest`` (default) keeps the folder whose files were written
  last and says so in the run's warnings; ``error`` refuses the sync; ``sum`` adds them up (the
  folders hold different charges). Files within one folder are parts of one export and always add up.
- ``duckdb_memory_limit`` (``512MB``), ``duckdb_threads``, ``duckdb_temp_directory``: DuckDB's
  budget; beyond the limit it spills to the temp directory instead of growing.

Token usage (files; FOCUS 1.2/1.3 exports of Bedrock, Azure OpenAI, Vertex AI): a line whose
``ConsumedUnit`` counts tokens (``Tokens``, ``1K Tokens``, ``1000 Tokens``, ``1M Tokens``, ...) also
becomes usage: ``ConsumedQuantity`` times the unit's size, per app (the same mapping rules), day,
model and metric. The metric comes from the words of ``SkuMeter``, ``ChargeDescription`` and
``SkuId``: cache read/hit -> ``cached_input_tokens``, cache write -> ``cache_write_tokens``,
output/completion -> ``output_tokens``, input/prompt -> ``input_tokens``; a token line naming none
is reported in the run's warnings, not counted. The model is ``SkuMeter`` (else ``SkuId``) without
its direction, unit and deployment words (``gpt-4o-mini-0718-Inp-glbl Tokens`` -> ``gpt-4o-mini-0718``).
The lines' cost stays infra cost as before. FOCUS 1.3's ``ServiceProviderName`` and
``HostProviderName`` are read as ``ProviderName`` and ``PublisherName`` (service fallbacks).

Validation covers what is used: the cost column, ``ChargePeriodStart``, ``BillingCurrency``,
``BillingPeriodStart`` when present, ``Tags`` with tag rules and ``ResourceId`` with resource
patterns. A missing column, an unreadable file, a non-numeric cost, an unparseable date, an empty
currency or a broken ``Tags`` JSON raise :class:`InputFileError` naming the file, the row (CSV:
data row and line; Parquet: row) and the column — found by a TRY_CAST query over the files, one
at a time, only once the fast aggregation has failed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from connectors.focus.files import pull_files
from connectors.focus.settings import Params, Settings
from connectors.focus.sql import resolve_columns, stage1_sql
from connectors.focus.warehouse import pull_warehouse, warehouse_url
from portfolio import records
from portfolio.config import ConnectorConfig
from portfolio.errors import ConfigError

NAME = "focus"
#: the record types this connector yields (checked by the standard connector suite)
RECORDS: tuple[type, ...] = (records.CostRecord, records.BillingTotal, records.UsageRecord)

log = logging.getLogger(__name__)


def pull(config: ConnectorConfig, since: datetime | None) -> Iterator[Any]:
    """Yield ReplaceKeys markers, BillingTotals and CostRecord rows for every billing period present."""
    s = Settings.from_config(config)
    url = warehouse_url(config)
    if url and config.get("path"):
        raise ConfigError(f"connectors.{config.name}: give either path or database_url, not both")
    if url:
        yield from pull_warehouse(config, s, url)
    elif config.get("path"):
        yield from pull_files(config, s)
    else:
        raise ConfigError(f"connectors.{config.name}: path (file, folder or glob) or database_url (+ table) is required")


__all__ = ["NAME", "RECORDS", "Params", "Settings", "pull", "resolve_columns", "stage1_sql"]

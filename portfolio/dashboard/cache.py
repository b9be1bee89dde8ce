"""The only place the dashboard caches: the engine, the facts and the books (``st.cache_resource``,
shared, never copied) and every read of the domain (``st.cache_data``), keyed by plain widget values.

Where the data lives is a :class:`Source`, resolved from the environment on every run:

- ``PORTFOLIO_DEMO=1``: the embedded demo config pointed at ``PORTFOLIO_DB_URL`` (what
  ``mlportfolio demo`` sets);
- else ``PORTFOLIO_CONFIG`` or ``./portfolio.toml`` (its ``database_url``; ``PORTFOLIO_DB_URL``
  overrides it);
- else ``PORTFOLIO_DB_URL`` alone with default settings;
- else nothing: the pages show the first-run message instead of a traceback.

``PORTFOLIO_TODAY=YYYY-MM-DD`` fixes the as-of date (tests, reproducible screenshots).

**Freshness without expiry.** :func:`source_or_stop` stamps the Source with the data's
:func:`data_version` (a few indexed reads of the sync ledger and the decision log, plus the config
file's modification time), and every cache is keyed by the Source. A sync, an upload, a decision or
an edit of portfolio.toml changes the version, so the next run reads afresh; while nothing changes
the cached facts stay, however long the dashboard sits idle (no time-to-live turns a click after a
pause into a full rebuild). The facts are aggregated in the database (:func:`portfolio.facts.load_facts`)
and held once per version in ``st.cache_resource`` (not pickled on every rerun); the App page reads
its one app's daily rows on its own (:func:`app_view`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd
import streamlit as st
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from portfolio import config as config_mod
from portfolio import (
    decisions,
    health,
    lifecycle,
    maintenance,
    periods,
    pnl,
    precedence,
    recommend,
    retirement,
    safe,
    storage,
)
from portfolio import facts as facts_mod
from portfolio import review as review_mod
from portfolio.books import Books
from portfolio.config import Config
from portfolio.dashboard import views
from portfolio.errors import ConfigError, PortfolioError, redact
from portfolio.periods import Period

#: the config (a file an admin may edit) is re-read at most this often; everything else is keyed by the data version
TTL = 60
ENTRIES = 64

FIRST_RUN = """\
**Welcome to ML Portfolio — there is no data to show yet.**

- To explore with the embedded demo portfolio, run `mlportfolio demo` (it writes a demo database,
  syncs it and opens this dashboard).
- To use your own data, write a `portfolio.toml` (see the README), then run
  `mlportfolio sync --config portfolio.toml` and `streamlit run app.py` with
  `PORTFOLIO_CONFIG=portfolio.toml` (or start from the folder that holds `portfolio.toml`).
"""


class Source(NamedTuple):
    """Where the dashboard reads from; hashable, so it keys every cached call."""

    db_url: str
    config_path: str  # "" when there is no config file
    demo: bool
    today: date
    version: tuple[Any, ...] = ()  # the data version (see data_version); () before it is read

    @property
    def label(self) -> str:
        return redact(self.db_url)


class NotConfigured(Exception):
    """Neither a config file nor a database URL: show the first-run message."""


def resolve_source(environ: Mapping[str, str] | None = None, cwd: Path | None = None) -> Source:
    """Read where the data is from the environment. Raises NotConfigured, ConfigError, ValueError."""
    env = os.environ if environ is None else environ
    today = periods.as_of(env.get("PORTFOLIO_TODAY"))
    url = env.get("PORTFOLIO_DB_URL", "").strip()
    if env.get("PORTFOLIO_DEMO", "").strip().lower() in ("1", "true", "yes"):
        if not url:
            raise NotConfigured("PORTFOLIO_DEMO is set but PORTFOLIO_DB_URL is not")
        return Source(url, "", True, today)
    path = env.get("PORTFOLIO_CONFIG", "").strip()
    if not path:
        default = (cwd or Path.cwd()) / config_mod.DEFAULT_PATH
        path = str(default) if default.is_file() else ""
    if path:
        cfg = config_mod.load(path)  # ConfigError names the file and the key
        return Source(url or cfg.database_url, str(Path(path).resolve()), False, today)
    if url:
        return Source(url, "", False, today)
    raise NotConfigured("no PORTFOLIO_CONFIG, no ./portfolio.toml and no PORTFOLIO_DB_URL")


def source_or_stop() -> Source:
    """The Source of this run, or the first-run message / a readable error and ``st.stop()``.

    Refuses (shows nothing, stops) a run that did not pass the sign-in gate: page scripts run only
    through :func:`portfolio.dashboard.run`, and this keeps it so even if one is run another way.
    """
    from portfolio.dashboard import signin

    if not signin.passed():
        st.info("Sign in to see the portfolio.")
        st.stop()
    try:
        src = resolve_source()
        config(src)  # a bad config shows here, once, as a readable error
        src = src._replace(version=data_version(src))
        empty = is_empty(src)
    except NotConfigured:
        st.info(FIRST_RUN)
        st.stop()
    except (ConfigError, ValueError) as exc:
        st.error(f"Configuration problem: {exc}")  # the admin's own portfolio.toml: shown as written
        st.stop()
    except (PortfolioError, SQLAlchemyError) as exc:
        st.error(f"Cannot read the database: {safe.md(redact(str(exc))[:500])}")  # may quote stored values
        st.stop()
    if empty:
        st.info(FIRST_RUN + f"\n\nThe database `{src.label}` is empty: run a sync first.")
        st.stop()
    return src


def clear() -> None:
    """Forget every cached read (after a sync, a decision or a ledger commit). The engine stays.

    (The data version changes with each of those anyway; this frees the memory of the old version.)"""
    st.cache_data.clear()
    books.clear()
    facts.clear()


def data_version(src: Source) -> tuple[Any, ...]:
    """What changes whenever the data does: the sync ledger (every sync and upload adds a run and
    finishes it), the decision log (append-only) and the config file's modification time.

    A handful of aggregate reads of two small tables: cheap enough for every run of every page."""
    import sqlalchemy as sa

    from portfolio import records

    runs, made = storage.table_of(records.SyncRun), storage.table_of(records.Decision)
    with engine(src.db_url).connect() as conn:
        run = conn.execute(sa.select(sa.func.count(), sa.func.max(runs.c.id), sa.func.max(runs.c.finished))).one()
        dec = conn.execute(sa.select(sa.func.count(), sa.func.max(made.c.decided_at))).one()
    mtime = Path(src.config_path).stat().st_mtime_ns if src.config_path and Path(src.config_path).exists() else 0
    return (*(str(x) for x in run), *(str(x) for x in dec), mtime)


@st.cache_data(max_entries=ENTRIES, show_spinner=False)
def is_empty(src: Source) -> bool:
    """No app, no cost and no outcome in the database (one indexed probe each, no facts read)."""
    import sqlalchemy as sa

    from portfolio import records

    with engine(src.db_url).connect() as conn:
        for model in (records.App, records.CostRecord, records.OutcomeRecord):
            table = storage.table_of(model)
            if conn.execute(sa.select(sa.literal(1)).select_from(table).limit(1)).first() is not None:
                return False
    return True


@st.cache_resource(show_spinner=False)
def engine(url: str) -> Engine:
    return storage.make_engine(url)


@st.cache_data(max_entries=ENTRIES, show_spinner=False)  # keep: version needs config path only
def config(src: Source) -> Config:
    if src.demo:
        cfg = config_mod.demo_config(src.db_url)
        for conn in cfg.connectors.values():
            if conn.type == "demo" and conn.get("as_of") is None:
                setattr(conn, "as_of", src.today.isoformat())  # noqa: B010 - "Sync now" keeps the as-of date
        return cfg
    if src.config_path:
        cfg = config_mod.load(src.config_path)
        cfg.database_url = src.db_url
        return cfg
    return Config(database_url=src.db_url)


@st.cache_resource(max_entries=2, show_spinner="Reading the portfolio…")
def facts(src: Source) -> facts_mod.Facts:
    """The facts of this data version, aggregated in the database; shared by every session and never
    copied (callers must not mutate them), so a rerun costs nothing."""
    return facts_mod.load_facts(engine(src.db_url), today=src.today, cfg=config(src))


@st.cache_resource(max_entries=2, show_spinner=False)
def books(src: Source) -> Books:
    """The books of the source: the facts read once and shared by every domain read below (not copied)."""
    return Books(facts(src), config(src))


def _b(src: Source) -> Books:
    return books(src)


def _period(start: date, end: date, vs: tuple[date, date] | None = None) -> Period:
    """The period ``start .. end`` compared with ``vs`` (None: the months just before)."""
    return Period(start, end, Period(*vs) if vs else None)


# ---- P&L -------------------------------------------------------------------------------------


@st.cache_data(max_entries=ENTRIES, show_spinner=False)
def kpis(src: Source, start: date, end: date, team: str | None, vs: tuple[date, date] | None = None) -> dict[str, Any]:
    return pnl.kpis(facts(src), config(src), _period(start, end, vs), team=team, books=_b(src))


@st.cache_data(max_entries=ENTRIES, show_spinner=False)
def app_pnl(src: Source, start: date, end: date, team: str | None, vs: tuple[date, date] | None = None) -> pd.DataFrame:
    return pnl.app_pnl(facts(src), config(src), _period(start, end, vs), team=team, books=_b(src))


@st.cache_data(max_entries=ENTRIES, show_spinner=False)
def monthly_pnl(src: Source) -> pd.DataFrame:
    return pnl.monthly_pnl(facts(src), config(src), books=_b(src))


@st.cache_data(max_entries=ENTRIES, show_spinner=False)
def rollup(
    src: Source, start: date, end: date, team: str | None, by: str, vs: tuple[date, date] | None = None
) -> pd.DataFrame:
    return pnl.rollup(app_pnl(src, start, end, team, vs), by)


@st.cache_data(max_entries=ENTRIES, show_spinner=False)
def value_by_evidence(src: Source, start: date, end: date, team: str | None) -> pd.DataFrame:
    return pnl.value_by_evidence(facts(src), config(src), _period(start, end), team=team, books=_b(src))


@st.cache_data(max_entries=ENTRIES, show_spinner=False)
def net_range(src: Source, start: date, end: date, team: str | None) -> dict[str, float]:
    return pnl.net_range(facts(src), config(src), _period(start, end), team=team, books=_b(src))


@st.cache_data(max_entries=ENTRIES, show_spinner=False)
def reconciliation(src: Source) -> pd.DataFrame:
    return pnl.reconciliation(facts(src), config(src), books=_b(src))


@st.cache_data(max_entries=ENTRIES, show_spinner=False)
def currency_issues(src: Source) -> pd.DataFrame:
    return pnl.currency_issues(facts(src), config(src))


# ---- maintenance ------------------------------------------------------------------------------


@st.cache_data(max_entries=ENTRIES, show_spinner=False)
def maintenance_monthly(src: Source) -> pd.DataFrame:
    return maintenance.maintenance_monthly(facts(src), config(src), books=_b(src))


@st.cache_data(max_entries=ENTRIES, show_spinner=False)
def maintenance_load(src: Source, start: date, end: date, team: str | None) -> pd.DataFrame:
    return maintenance.maintenance_load(facts(src), config(src), _period(start, end), team=team, books=_b(src))


@st.cache_data(max_entries=ENTRIES, show_spinner=False)
def team_load(src: Source, start: date, end: date) -> pd.DataFrame:
    return maintenance.team_load(facts(src), config(src), _period(start, end), books=_b(src))


# ---- retirement & decisions -------------------------------------------------------------------


@st.cache_data(max_entries=ENTRIES, show_spinner=False)
def findings(src: Source, include_snoozed: bool = False) -> pd.DataFrame:
    return retirement.retirement_findings(facts(src), config(src), include_snoozed=include_snoozed, books=_b(src))


@st.cache_data(max_entries=ENTRIES, show_spinner=False)
def candidates(src: Source) -> pd.DataFrame:
    return retirement.candidates(findings(src))


@st.cache_data(max_entries=ENTRIES, show_spinner=False)
def what_if(src: Source, start: date, end: date, retire: tuple[str, ...]) -> dict[str, dict[str, float]]:
    return retirement.what_if(facts(src), config(src), _period(start, end), list(retire), books=_b(src))


@st.cache_data(max_entries=ENTRIES, show_spinner=False)
def recommendations(src: Source) -> pd.DataFrame:
    """One recommendation per app (the same on the Retirement, Maintenance and App pages and the CLI)."""
    return recommend.recommendations(facts(src), config(src), books=_b(src))


@st.cache_data(max_entries=ENTRIES, show_spinner=False)
def review(src: Source, quarter: str, fmt: str) -> str:
    """The quarterly review document (md or html), the same as `mlportfolio report review`."""
    return review_mod.render(facts(src), config(src), quarter, fmt)


@st.cache_data(max_entries=ENTRIES, show_spinner=False)
def decision_log(src: Source, app_id: str | None = None) -> pd.DataFrame:
    return decisions.decision_log(facts(src), app_id)


@st.cache_data(max_entries=ENTRIES, show_spinner=False)  # keyed by the data version (in src): no TTL
def review_queue(src: Source) -> pd.DataFrame:
    return retirement.review_queue(facts(src), config(src), books=_b(src))


@st.cache_data(max_entries=ENTRIES, show_spinner=False)  # keyed by the data version (in src): no TTL
def open_proposals(src: Source) -> pd.DataFrame:
    return lifecycle.open_proposals(facts(src))


@st.cache_data(max_entries=ENTRIES, show_spinner=False)  # keyed by the data version (in src): no TTL
def projection(src: Source, app_id: str) -> lifecycle.Projection:
    """What a proposal for the app would freeze (shown before it is submitted)."""
    return lifecycle.project(facts(src), config(src), app_id, books=_b(src))


@st.cache_data(max_entries=ENTRIES, show_spinner=False)  # keyed by the data version (in src): no TTL
def stage_history(src: Source, app_id: str | None = None) -> pd.DataFrame:
    return lifecycle.stage_history(facts(src), app_id)


@st.cache_data(max_entries=ENTRIES, show_spinner=False)  # keyed by the data version: no TTL needed
def stages(src: Source) -> dict[str, str]:
    """Every app's lifecycle stage today, in one pass (one cached call, not one per app of 1,000)."""
    return {str(a): str(s) for a, s in lifecycle.stages(facts(src), src.today).items()}


@st.cache_data(max_entries=ENTRIES, show_spinner=False)  # keyed by the data version (in src): no TTL
def stage(src: Source, app_id: str) -> tuple[str, Any]:
    """The app's lifecycle stage today and, when retiring, its planned date (else None)."""
    f = facts(src)
    now = lifecycle.current_stage(f, app_id, src.today)
    planned = None
    if now == "retiring":
        ev = lifecycle.stage_history(f, app_id)
        rows = ev[(ev["kind"] == "stage") & (ev["stage"] == "retiring")]
        planned = rows.iloc[0]["planned"] if not rows.empty else None
    return now, planned


# ---- data health ------------------------------------------------------------------------------


@st.cache_data(max_entries=ENTRIES, show_spinner=False)
def connector_status(src: Source) -> pd.DataFrame:
    import connectors

    return health.connector_status(facts(src), config(src), connectors.describe)


@st.cache_data(max_entries=ENTRIES, show_spinner=False)
def unregistered_spend(src: Source) -> pd.DataFrame:
    return _b(src).unregistered_spend().copy()


@st.cache_data(max_entries=ENTRIES, show_spinner=False)
def unregistered_facts(src: Source) -> pd.DataFrame:
    return _b(src).unregistered_facts().copy()


@st.cache_data(max_entries=ENTRIES, show_spinner=False)
def freshness(src: Source) -> pd.DataFrame:
    return health.freshness(facts(src))


@st.cache_data(max_entries=ENTRIES, show_spinner=False)
def value_overrides(src: Source) -> pd.DataFrame:
    """Value rows that do not count: another source ranks higher for the same app, month and kind."""
    return precedence.resolve(facts(src).outcomes, precedence.order_of(config(src)))[1]


@st.cache_data(max_entries=ENTRIES, show_spinner=False)
def sync_history(src: Source, limit: int = 50) -> pd.DataFrame:
    return views.sync_history(facts(src), limit)


# ---- views of one app and of the period (dashboard-only shapes) --------------------------------


@st.cache_data(max_entries=ENTRIES, show_spinner=False)
def apps(src: Source) -> pd.DataFrame:
    return views.apps(facts(src))


@st.cache_data(max_entries=ENTRIES, show_spinner=False)
def teams(src: Source) -> list[str]:
    return views.teams(facts(src), config(src))


@st.cache_data(max_entries=ENTRIES, show_spinner=False)
def portfolio_monthly(src: Source, start: date, end: date, team: str | None) -> pd.DataFrame:
    return views.portfolio_monthly(monthly_pnl(src), _period(start, end), team)


@st.cache_data(max_entries=ENTRIES, show_spinner=False)
def data_months(src: Source) -> list[str]:
    """``YYYY-MM`` of the months with any value or cost (what the month pickers offer)."""
    return views.data_months(monthly_pnl(src))


@st.cache_data(max_entries=ENTRIES, show_spinner=False)
def has_data(src: Source, start: date, end: date, team: str | None) -> bool:
    """Whether any app (of ``team``) has value or cost in ``start .. end``."""
    return views.has_data(monthly_pnl(src), _period(start, end), team)


@st.cache_data(max_entries=ENTRIES, show_spinner=False)
def sparklines(src: Source, start: date, end: date) -> dict[str, list[float]]:
    return views.sparklines(monthly_pnl(src), _period(start, end))


@st.cache_data(max_entries=ENTRIES, show_spinner=False)
def app_view(src: Source, app_id: str, start: date, end: date) -> views.AppView:
    """One app's daily facts, read for that app alone (the portfolio's facts are monthly aggregates)."""
    one = facts_mod.load_app_facts(engine(src.db_url), app_id, today=src.today)
    return views.app_view(one, config(src), app_id, _period(start, end))


@st.cache_data(max_entries=ENTRIES, show_spinner=False)
def incidents_by_month(src: Source, start: date, end: date, team: str | None) -> pd.DataFrame:
    return views.incidents_by_month(maintenance_monthly(src), _period(start, end), team)

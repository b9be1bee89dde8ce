"""``mlportfolio``: the command line — demo, check, sync, report, up, scheduler, and the lifecycle
(propose, approve, reject, stage, lifecycle).

Exit codes: 0 done; 1 something failed (a connector, the database, the dashboard); 2 the
configuration or the command line is wrong (the message names the key and what was expected);
130 interrupted. Expected errors print one message on stderr, never a traceback and never a
secret.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from glob import glob as glob_paths
from glob import has_magic
from pathlib import Path
from typing import TYPE_CHECKING, Any

# Only what every command needs is imported here; the database layer (SQLModel, Alembic), pandas,
# DuckDB and the connectors are imported by the commands that use them, so that `--help`, `check`
# or an empty `sync` start in a fraction of a second (tests/test_startup.py guards this).
from portfolio import config as config_mod
from portfolio import periods
from portfolio.config import Config
from portfolio.errors import ConfigError, PortfolioError, redact

# records.PROPOSALS and records.STAGES, spelled here so that building the parser imports no
# database layer (start-up, issue 15); tests/test_cli_lifecycle.py keeps them equal
_PROPOSALS = ("retire", "invest", "keep")
_STAGES = ("pilot", "production", "retiring", "retired", "paused")

if TYPE_CHECKING:
    from portfolio import sync

log = logging.getLogger("portfolio.cli")

DEFAULT_PORT = 8501
STARTUP_TIMEOUT = 90.0  # seconds for the dashboard to answer its health check
APP_NAME = "ml-portfolio"


class UsageError(PortfolioError):
    """The command line is wrong (bad date, bad month): exit 2 like a configuration error."""


# ----------------------------------------------------------------------------- helpers


def _today(raw: str | None) -> date:
    """The as-of date: ``--today``, else ``PORTFOLIO_TODAY``, else today's UTC date."""
    try:
        return periods.as_of(raw or os.environ.get("PORTFOLIO_TODAY"), "--today" if raw else "PORTFOLIO_TODAY")
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _load_config(args: argparse.Namespace) -> Config:
    cfg = config_mod.load(args.config)
    if args.db:
        cfg.database_url = args.db
    args.loaded_config = cfg  # so main() can redact the values of this config's secret variables
    return cfg


def _secret_names(cfg: Config | None) -> list[str]:
    if cfg is None:
        return []
    return [n for c in cfg.connectors.values() for n in c.secret_env_names()] + list(cfg.auth.secret_env_names())


def demo_database_url(explicit: str | None = None) -> str:
    """Where the demo lives: ``--db``, else ``PORTFOLIO_DB_URL``, else ``<user data dir>/demo.db``."""
    if explicit:
        return explicit
    env = os.environ.get("PORTFOLIO_DB_URL")
    if env:
        return env
    import platformdirs

    folder = Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
    return f"sqlite:///{folder / 'demo.db'}"


def database_location(url: str) -> str:
    """A SQLite database's file path, or the URL without credentials."""
    if url.startswith("sqlite"):
        import sqlalchemy as sa

        db = sa.engine.make_url(url).database
        if db and db != ":memory:":
            return str(Path(db).expanduser().resolve())
    return redact(url)


def build_demo(
    url: str, today: date | None = None, *, apps: int | None = None, months: int | None = None
) -> tuple[Config, sync.Outcome]:
    """Create or refresh the demo database at ``url`` from the embedded demo portfolio.

    ``today`` (``--today`` / ``PORTFOLIO_TODAY``) is the demo's as-of date: its data ends the day before.
    ``apps`` and ``months`` (``--apps`` / ``--months``) size it; default: the demo as shipped.
    """
    from portfolio import storage, sync  # imported where used: start-up time

    cfg = config_mod.demo_config(url)
    extra = {"as_of": None if today is None else today.isoformat(), "apps": apps, "months": months}
    for conn in cfg.connectors.values():
        if conn.type == "demo":
            for key, value in extra.items():
                if value is not None:
                    # a connector param (validated by the connector); `apps` is also the name of the
                    # registered-apps field, so write the param itself, not the attribute
                    assert conn.__pydantic_extra__ is not None  # extra="allow"
                    conn.__pydantic_extra__[key] = value
    engine = storage.make_engine(url)
    outcome = sync.sync(cfg, engine, full=True)
    failed = [r for r in outcome.runs if r.status != "success"]
    if failed:
        raise PortfolioError("demo: could not build the demo data: " + "; ".join(str(r.error) for r in failed))
    return cfg, outcome


def _has_apps(url: str) -> bool:
    import sqlalchemy as sa

    from portfolio import records, storage  # imported where used: start-up time

    engine = storage.make_engine(url)
    with engine.connect() as conn:
        return bool(conn.execute(sa.select(sa.func.count()).select_from(storage.table_of(records.App))).scalar())


# ----------------------------------------------------------------------------- dashboard process


def dashboard_entry() -> Path:
    """The installed file ``streamlit run`` starts (``portfolio/dashboard/main.py``)."""
    path = Path(__file__).resolve().parent / "dashboard" / "main.py"
    if not path.is_file():
        raise PortfolioError(f"the dashboard entry {path} is missing: reinstall ml-portfolio")
    return path


def upload_limit_mb(max_bytes: int) -> int:
    """Streamlit's server-wide upload limit (whole MB) for a ``[uploads] max_bytes`` cap: a bigger
    file is refused by the server before any of it is held in memory, not only by the page."""
    return max(1, -(-max_bytes // 2**20))


def streamlit_command(
    port: int,
    address: str = "127.0.0.1",
    secrets_file: str | None = None,
    allowed_hosts: Sequence[str] = (),
    max_upload_mb: int | None = None,
) -> list[str]:
    # Always headless: a non-headless first run asks for an e-mail on the terminal and blocks;
    # the browser is opened by us once the server answers (webbrowser), unless --no-browser.
    # Started through portfolio.dashboard.serve (Streamlit's CLI with /_stcore/metrics refused).
    # Tracebacks stay in the log (client.showErrorDetails); allowed_hosts: Streamlit refuses the
    # websocket of a request whose Host is not one of them (DNS rebinding), before any script runs.
    hosts = [arg for host in allowed_hosts for arg in ("--server.allowedHosts", host)]
    secrets = ["--secrets.files", secrets_file] if secrets_file else []
    uploads = ["--server.maxUploadSize", str(max_upload_mb)] if max_upload_mb else []
    return [
        sys.executable, "-c", "from portfolio.dashboard import serve; serve()", "run", str(dashboard_entry()),
        "--server.port", str(port),
        "--server.address", address,
        "--server.headless", "true",
        "--client.toolbarMode", "viewer",
        "--client.showErrorDetails", "none",
        "--server.fileWatcherType", "none",
        "--server.runOnSave", "false",
        "--browser.gatherUsageStats", "false",
        *uploads,
        *hosts,
        *secrets,
    ]  # fmt: skip


def served_host_names(cfg: Config | None, address: str) -> list[str]:
    """The ``Host`` names the dashboard answers (``--server.allowedHosts``); [] = any.

    Without sign-in: localhost, the bind address and ``[server] allowed_hosts``. With sign-in:
    those plus the host of ``auth.redirect_uri`` when ``allowed_hosts`` is set, else any host
    (the sign-in guards the data; a reverse proxy may use names this process does not know).
    """
    from portfolio import auth

    if cfg is not None and cfg.auth.enabled and not cfg.server.allowed_hosts:
        return []
    allowed = cfg.server.allowed_hosts if cfg is not None else []
    return auth.allowed_host_names(address, allowed, cfg.auth if cfg is not None else None)


def dashboard_env(database_url: str, *, demo: bool, config_path: str | None) -> dict[str, str]:
    """The environment of the dashboard process: which database (and config) it reads."""
    env = dict(os.environ)
    env["PORTFOLIO_DB_URL"] = database_url
    if demo:
        env["PORTFOLIO_DEMO"] = "1"
    else:
        env.pop("PORTFOLIO_DEMO", None)
    if config_path and Path(config_path).is_file():
        env["PORTFOLIO_CONFIG"] = str(Path(config_path).resolve())
    return env


def _healthy(port: int) -> bool:
    import urllib.error  # the dashboard's health check only (start-up time)
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


def serve_dashboard(
    database_url: str,
    *,
    port: int,
    open_browser: bool,
    demo: bool,
    config_path: str | None = None,
    timeout: float = STARTUP_TIMEOUT,
    address: str = "127.0.0.1",
    secrets_file: str | None = None,
    allowed_hosts: Sequence[str] = (),
    max_upload_bytes: int = config_mod.Uploads().max_bytes,
) -> int:
    """Run the Streamlit dashboard until it exits or Ctrl-C; the child never outlives us."""
    cmd = streamlit_command(port, address, secrets_file, allowed_hosts, upload_limit_mb(max_upload_bytes))
    if _port_in_use(port):
        raise PortfolioError(f"port {port} on 127.0.0.1 is already in use: choose another with --port")
    proc = subprocess.Popen(cmd, env=dashboard_env(database_url, demo=demo, config_path=config_path))
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while proc.poll() is None and not _healthy(port) and time.monotonic() < deadline:
            time.sleep(0.25)
        if proc.poll() is not None:
            raise PortfolioError(f"the dashboard (streamlit) exited with code {proc.returncode} before it answered on {url}")
        if _healthy(port):
            print(f"dashboard: {url}   (Ctrl-C stops it)", flush=True)
            if open_browser:
                import webbrowser

                webbrowser.open(url)
        else:
            print(f"warning: the dashboard does not answer on {url} after {timeout:.0f}s; still waiting", file=sys.stderr)
        code = proc.wait()
        if code != 0:
            raise PortfolioError(f"the dashboard (streamlit) exited with code {code}")
        return 0
    except KeyboardInterrupt:
        print("stopping the dashboard", file=sys.stderr)
        return 0
    finally:
        _stop(proc)


def _toml_string(value: str) -> str:
    """A TOML basic string: JSON's string escapes (quotes, backslashes, control characters) are
    TOML's; TOML also wants DEL escaped."""
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def secrets_toml(auth_section: dict[str, Any]) -> str:
    """Streamlit's secrets.toml holding ``auth_section`` (string values, one level of sub-tables)."""
    lines = ["[auth]"]
    tables = []
    for key, value in auth_section.items():
        if isinstance(value, dict):
            name = key if key.replace("-", "").replace("_", "").isalnum() and key.isascii() else _toml_string(key)
            tables.append(f"\n[auth.{name}]")
            tables.extend(f"{k} = {_toml_string(str(v))}" for k, v in value.items())
        else:
            lines.append(f"{key} = {_toml_string(str(value))}")
    return "\n".join(lines + tables) + "\n"


@contextmanager
def auth_secrets_file(cfg: Config) -> Iterator[str | None]:
    """Streamlit's sign-in secrets for the dashboard process, from the environment variables named in ``[auth]``.

    ``streamlit run`` reads the OIDC client of ``st.login`` only from secrets files, so the values
    live for the dashboard's lifetime in a file only this user can read, in a fresh private folder
    removed when it stops (``--secrets.files`` points the dashboard at it).
    Yields None (Streamlit reads ``.streamlit/secrets.toml`` as usual) when sign-in is off or
    the client is not given in portfolio.toml.
    """
    if not (cfg.auth.enabled and cfg.auth.has_client):
        yield None
        return
    text = secrets_toml(cfg.auth.streamlit_secrets())  # ConfigError naming an unset variable, before any file
    folder = tempfile.mkdtemp(prefix="mlportfolio-auth-")  # mode 0700
    try:
        path = os.path.join(folder, "secrets.toml")  # Streamlit reads a secrets file only if it ends in .toml
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (service managers, ``kill``) stops a long-running command like Ctrl-C does."""

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (embedded use): leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# ----------------------------------------------------------------------------- commands


def cmd_demo(args: argparse.Namespace) -> int:
    url = demo_database_url(args.db)
    today = _today(None) if os.environ.get("PORTFOLIO_TODAY") else None
    print(f"building the demo portfolio in {database_location(url)} ...", file=sys.stderr, flush=True)
    _, outcome = build_demo(url, today, apps=args.apps, months=args.months)
    rows = sum(r.rows_written for r in outcome.runs)
    print(f"demo data ready ({rows} rows written)", file=sys.stderr, flush=True)
    if args.no_serve:
        print(database_location(url))
        return 0
    with _sigterm_as_interrupt():
        return serve_dashboard(
            url, port=args.port, open_browser=not args.no_browser, demo=True,
            allowed_hosts=served_host_names(None, "127.0.0.1"),
        )  # fmt: skip


def validate(cfg: Config) -> tuple[list[str], list[str]]:
    """What ``check`` finds beyond the schema: (errors, warnings), each naming the key."""
    import connectors

    errors: list[str] = []
    warnings: list[str] = []
    for i, app in enumerate(cfg.apps):
        if cfg.teams and app.team not in cfg.teams:
            warnings.append(
                f"apps[{i}].team: team {app.team!r} has no [teams.{app.team}] table; "
                f"its hours cost default_hourly_rate = {cfg.default_hourly_rate:g}/h"
            )
    for name, conn in cfg.connectors.items():
        key = f"connectors.{name}"
        if conn.type not in connectors.REGISTRY:
            errors.append(f"{key}.type: unknown connector type {conn.type!r}; expected one of {', '.join(sorted(connectors.REGISTRY))}")
        else:
            try:
                connectors.load(conn.type)
            except ImportError as exc:
                errors.append(f"{key}.type: the {conn.type!r} connector cannot be loaded ({exc})")
        if conn.schedule:
            from portfolio import scheduler  # APScheduler: only for a connector that has a schedule

            try:
                scheduler.parse_schedule(name, conn.schedule)
            except ConfigError as exc:
                errors.append(str(exc))
        for param, value in conn.params.items():
            if param.endswith("_env") and value and not os.environ.get(str(value)):
                warnings.append(f"{key}.{param}: environment variable {value} is not set")
        if conn.get("path") is not None:
            path = conn.path("path")
            if has_magic(str(path)):
                if not glob_paths(str(path), recursive=True):
                    warnings.append(f"{key}.path: no file matches {path} yet")
            elif not path.exists():
                errors.append(f"{key}.path: {path} does not exist (expected a file or folder, relative to the config file)")
    if cfg.auth.enabled and cfg.auth.has_client:
        for param in ("client_secret_env", "cookie_secret_env"):
            var = getattr(cfg.auth, param)
            if not os.environ.get(var):
                warnings.append(f"auth.{param}: environment variable {var} is not set (`mlportfolio up` refuses to start)")
    return errors, warnings


def _would_sync(cfg: Config) -> dict[str, str]:
    """Per connector, what the next sync reads: the cursor, or the full history."""
    from portfolio import storage, sync  # imported where used: start-up time

    url = cfg.database_url
    if not cfg.connectors:
        return {}
    if url.startswith("sqlite") and not Path(database_location(url)).exists():
        return dict.fromkeys(cfg.connectors, "full history (database not created yet)")
    try:
        engine = storage.make_engine(url)
    except PortfolioError as exc:
        return dict.fromkeys(cfg.connectors, f"unknown ({exc})")
    now = datetime.now(UTC)
    out = {}
    for name, conn in cfg.connectors.items():
        since = sync.cursor(engine, name, conn.lookback_days, now)
        if since is None:
            out[name] = "full history (never synced successfully)"
        else:
            out[name] = f"since {since:%Y-%m-%d %H:%M} UTC (last success − {conn.lookback_days} d look-back)"
    return out


UNREGISTERED_SHOWN = 10


def _unregistered_spend(cfg: Config) -> list[tuple[str, str, Any, int]]:
    """(tag value, currency, amount, rows) of spend naming no registered app, largest first (the
    definition of :meth:`portfolio.books.Books.unregistered_spend`, summed in the database)."""
    import sqlalchemy as sa

    from portfolio import records, storage  # imported where used: start-up time

    url = cfg.database_url
    if cfg.discover_apps or (url.startswith("sqlite") and not Path(database_location(url)).exists()):
        return []
    try:
        engine = storage.make_engine(url)
        months, apps = records.COST_MONTH, storage.table_of(records.App)
        with engine.connect() as conn:
            registered = {str(a) for a in conn.execute(sa.select(apps.c.app_id)).scalars()}
            rows = conn.execute(  # the monthly rollup: the same sums, a fraction of the rows
                sa.select(months.c.app_id, months.c.currency, sa.func.sum(months.c.amount), sa.func.sum(months.c.rows))
                .group_by(months.c.app_id, months.c.currency)
            ).all()
    except (PortfolioError, sa.exc.SQLAlchemyError) as exc:
        print(f"warning: unregistered spend not checked: cannot read the database: {redact(str(exc))[:200]}", file=sys.stderr)
        return []
    registered |= {a.id for a in cfg.apps} | {records.UNALLOCATED}
    odd = [(str(a), str(c), amount, int(n)) for a, c, amount, n in rows if a is not None and str(a) not in registered]
    return sorted(odd, key=lambda r: (-abs(float(r[2] or 0)), r[0]))


def _print_unregistered(cfg: Config) -> None:
    odd = _unregistered_spend(cfg)
    if not odd:
        return
    from portfolio.books import claim_snippet  # the domain (pandas): only when there is something to show

    print(f"unregistered spend ({len(odd)} tag value(s) naming no registered app; counted as unallocated):")
    for tag, currency, amount, n in odd[:UNREGISTERED_SHOWN]:
        print(f"  {tag:<24} {float(amount or 0):>16,.2f} {currency}  ({n} cost rows)")
    if len(odd) > UNREGISTERED_SHOWN:
        print(f"  ... and {len(odd) - UNREGISTERED_SHOWN} more")
    print("the [[apps]] entries that would claim them (set the team):")
    for tag, *_ in odd[:UNREGISTERED_SHOWN]:
        print("\n".join("  " + line for line in claim_snippet(tag).splitlines()))
        print()


def _rollup_check(cfg: Config, *, rebuild: bool) -> list[str]:
    """The monthly rollups against the daily rows they sum (:func:`portfolio.rollup.differences`):
    one read of each daily table. ``rebuild``: rebuild them first. Returns the differences as errors."""
    url = cfg.database_url
    if url.startswith("sqlite") and not Path(database_location(url)).exists():
        return []
    import sqlalchemy as sa

    from portfolio import rollup, storage  # imported where used: start-up time

    try:
        engine = storage.make_engine(url)
        storage.migrate(engine)
        if rebuild:
            with storage.translated(engine), engine.begin() as conn:
                rollup.rebuild(conn)
            print("monthly rollups rebuilt from the daily rows")
        with storage.translated(engine), engine.connect() as conn:
            found = rollup.differences(conn)
    except (PortfolioError, sa.exc.SQLAlchemyError) as exc:
        print(f"warning: monthly rollups not checked: cannot read the database: {redact(str(exc))[:200]}", file=sys.stderr)
        return []
    if not found:
        print("monthly rollups: in step with the daily rows")
        return []
    return [f"monthly rollup out of step: {d} (run `mlportfolio check --rebuild-rollups`)" for d in found]


def cmd_check(args: argparse.Namespace) -> int:
    cfg = _load_config(args)
    errors, warnings = validate(cfg)
    print(f"config: {cfg.source_path}")
    print(f"database: {database_location(cfg.database_url)}")
    print(f"currency: {cfg.currency}")
    if cfg.teams:
        print("teams:")
        for name, team in cfg.teams.items():
            print(f"  {name:<24} {team.hourly_rate:g}/h, {team.capacity_hours:g} h/month capacity")
    print(f"apps ({len(cfg.apps)}):")
    for app in cfg.apps:
        print(
            f"  {app.id:<24} team={app.team} stage={app.stage} value_kind={app.value_kind} "
            f"owner={app.owner or '-'} slo={app.slo_availability:g}"
        )
    print(f"connectors ({len(cfg.connectors)}):")
    would = _would_sync(cfg)
    for name, conn in cfg.connectors.items():
        state = "" if conn.enabled else " (disabled)"
        schedule = f'"{conn.schedule}" UTC' if conn.schedule else "manual"
        line = f"  {name:<24} type={conn.type} schedule={schedule}{state}"
        if name in would:
            line += f"\n  {'':<24} would sync: {would[name]}"
        print(line)
    rollup_errors = _rollup_check(cfg, rebuild=getattr(args, "rebuild_rollups", False))  # migrates first
    _print_unregistered(cfg)
    errors += rollup_errors
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    for e in errors:
        print(f"error: {e}", file=sys.stderr)
    if errors:
        print(f"{cfg.source_path}: {len(errors)} error(s)", file=sys.stderr)
        return 2
    print("configuration OK")
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    from portfolio import storage, sync  # imported where used: start-up time

    cfg = _load_config(args)
    engine = storage.make_engine(cfg.database_url)
    outcome = sync.sync(cfg, engine, only=args.connectors or None, full=args.full)
    width = max([len(r.connector) for r in outcome.runs] + [8])
    for run in outcome.runs:
        took = ""
        if run.finished and run.started:
            took = f" in {(run.finished - run.started).total_seconds():.1f}s"
        if run.status == "success":
            detail = f"{run.rows_written} rows written, {run.rows_deleted} deleted{took}"
        else:
            detail = f"error: {run.error}"
        print(f"{run.connector:<{width}}  {run.status:<7}  {detail}")
        for notice in (run.warnings or "").splitlines():  # skipped items, the export folder chosen, …
            if notice.strip():
                print(f"{'':<{width}}  warning: {notice.strip()}")
    if not outcome.runs:
        print("no enabled connector in the config", file=sys.stderr)
    return 0 if outcome.ok else 1


def _recommendations_text(facts: Any, cfg: Config, frame: Any) -> str:
    """The one recommendation per app (as on the dashboard) for the apps of a report, and the retire-all effect."""
    from portfolio import recommend

    recs = recommend.recommendations(facts, cfg)
    ids = list(dict.fromkeys(frame["app_id"])) if not frame.empty else []
    text = recommend.render_text(recs, cfg.currency, ids)
    cands = recs[recs["app_id"].isin(ids) & (recs["rules"] != "")]
    if not cands.empty:
        total = recommend.retire_all(cands)
        text += (
            f"retiring every candidate: savings {total['candidates_savings']:,.0f} {cfg.currency}/yr, value at risk "
            f"{total['candidates_value_at_risk']:,.0f} {cfg.currency}/yr, net effect "
            f"{total['candidates_net_effect']:+,.0f} {cfg.currency}/yr\n"
        )
    return text


def cmd_report(args: argparse.Namespace) -> int:
    from portfolio import (
        periods,
        report,
        storage,  # imported where used: start-up time
    )
    from portfolio.facts import load_facts

    today = _today(args.today)
    if args.format is None:
        args.format = "md" if args.kind == "review" else "table"
    if args.demo:
        url = demo_database_url(args.db)
        if not _has_apps(url):
            print(f"building the demo portfolio in {database_location(url)} ...", file=sys.stderr, flush=True)
            build_demo(url, today)
        cfg = config_mod.demo_config(url)
    else:
        cfg = _load_config(args)
    if args.kind == "review":
        from portfolio import review

        if args.format not in ("md", "html"):
            raise UsageError("report review: --format must be md or html")
        facts = load_facts(storage.make_engine(cfg.database_url), today=today, cfg=cfg)
        try:
            sys.stdout.write(review.render(facts, cfg, args.quarter, args.format))
        except ValueError as exc:
            raise UsageError(f"--quarter: {exc}") from None
        return 0
    if args.format in ("md", "html"):
        raise UsageError(f"report {args.kind}: --format must be table, csv or json")
    period = None
    if args.kind != "retirement":
        period = _report_period(args, today)
    facts = load_facts(storage.make_engine(cfg.database_url), today=today, cfg=cfg)
    if args.team is not None:
        _check_team(args.team, facts, cfg)
    if args.kind == "tokens" and period is not None:
        sys.stdout.write(_tokens_report(facts, cfg, period, args.format, args.team))
        return 0
    if args.kind in SAVINGS_REPORTS and period is not None:
        sys.stdout.write(_savings_report(args.kind, facts, cfg, period, args.format, args.team))
        return 0
    if period is None:
        frame = report.retirement_report(facts, cfg, args.team, include_snoozed=args.include_snoozed)
        header = f"retirement findings as of {today.isoformat()}"
    elif args.kind == "pnl":
        frame = report.pnl_report(facts, cfg, period, args.team)
        header = f"P&L per app and month, {period.label} ({cfg.currency})"
    else:
        frame = report.maintenance_report(facts, cfg, period, args.team)
        header = f"maintenance per app and month, {period.label}"
    _warn_left_out(facts, cfg)
    text = report.render(frame, args.kind, args.format)
    if args.format == "table":
        text = f"{header}{' — team ' + args.team if args.team else ''}\n\n{text}"
        if args.kind in ("retirement", "maintenance"):
            text += "\n" + _recommendations_text(facts, cfg, frame)
        if args.kind == "pnl" and period is not None and not frame.empty:
            text += report.comparison_line(facts, cfg, period, args.team) + "\n"
        mtd = periods.month_to_date(today)
        if mtd is not None and period is not None:
            text += f"{mtd.start:%Y-%m} is in progress (month to date, to {mtd.end.isoformat()}): not included\n"
    sys.stdout.write(text)
    return 0


def _now_on(today: date) -> datetime:
    """The time now on the as-of day (``--today`` / ``PORTFOLIO_TODAY`` fix the day, as on the dashboard)."""
    return datetime.combine(today, datetime.now(UTC).time(), tzinfo=UTC)


def cmd_propose(args: argparse.Namespace) -> int:
    """Propose retire / invest / keep for an app: prints the projection frozen with it and its id."""
    from portfolio import lifecycle, storage
    from portfolio.facts import load_facts

    cfg = _load_config(args)
    today = _today(args.today)
    engine = storage.make_engine(cfg.database_url)
    facts = load_facts(engine, today=today)
    saved = lifecycle.propose(
        engine, cfg, args.app, args.action, args.by, args.rationale, evidence=args.evidence,
        planned=date.fromisoformat(args.planned) if args.planned else None,
        next_review=date.fromisoformat(args.next_review) if args.next_review else None, now=_now_on(today), facts=facts,
    )  # fmt: skip
    cur = saved.currency or cfg.currency
    print(f"proposed: {saved.action} {saved.app_id} by {saved.actor}" + (f", planned {saved.planned}" if saved.planned else ""))
    print(f"  projected annual savings {saved.projected_annual_savings:,.2f} {cur}, value at risk {saved.value_at_risk:,.2f} {cur}, "
          f"net effect {saved.net_effect:+,.2f} {cur}, freed hours {saved.freed_hours_per_year:,.1f}/yr")  # fmt: skip
    print(f"  id {saved.id}: an approver runs `mlportfolio approve {saved.id} --by NAME` (or reject)")
    return 0


def cmd_decide(args: argparse.Namespace) -> int:
    """``approve`` / ``reject`` a waiting proposal. The command line has no sign-in: the actor is the
    name given, recorded as not signed in (and flagged self_approved when it is the proposer's)."""
    from portfolio import lifecycle, storage

    cfg = _load_config(args)
    today = _today(args.today)
    engine = storage.make_engine(cfg.database_url)
    if args.command == "approve":
        written = lifecycle.approve(engine, args.proposal, args.by, args.comment or "", now=_now_on(today))
        stage = next((e for e in written if e.kind == "stage"), None)
        extra = f"; {stage.app_id} is retiring, planned {stage.planned}" if stage is not None else ""
        own = " (self-approved: the proposer's own proposal)" if written[0].self_approved else ""
        print(f"approved {args.proposal} by {written[0].actor}{own}{extra}")
    else:
        row = lifecycle.reject(engine, args.proposal, args.by, args.comment or "", now=_now_on(today))
        print(f"rejected {args.proposal} by {row.actor}")
    return 0


def cmd_stage(args: argparse.Namespace) -> int:
    from portfolio import lifecycle, storage

    cfg = _load_config(args)
    today = _today(args.today)
    engine = storage.make_engine(cfg.database_url)
    row = lifecycle.change_stage(
        engine, args.app, args.stage, args.by, args.rationale, evidence=args.evidence,
        effective=date.fromisoformat(args.effective) if args.effective else None, now=_now_on(today),
    )  # fmt: skip
    print(f"{row.app_id}: {row.stage} from {row.effective} (by {row.actor})")
    return 0


def cmd_lifecycle(args: argparse.Namespace) -> int:
    """The lifecycle history (every event, newest first), the current stage and waiting proposals."""
    from portfolio import lifecycle, report, storage
    from portfolio.facts import load_facts

    cfg = _load_config(args)
    today = _today(args.today)
    facts = load_facts(storage.make_engine(cfg.database_url), today=today)
    if args.app is not None:
        try:
            stage = lifecycle.current_stage(facts, args.app, today)
        except lifecycle.LifecycleError as exc:
            raise UsageError(str(exc)) from None
    history = lifecycle.stage_history(facts, args.app)
    shown = ["at", "app_id", "kind", "action", "stage", "effective", "planned", "actor", "self_approved", "rationale",
             "evidence", "projected_annual_savings", "value_at_risk", "net_effect", "freed_hours_per_year", "id",
             "proposal_id"]  # fmt: skip
    if args.format == "json":  # exact money, as the reports write it
        sys.stdout.write(report.to_json(history[shown]) + "\n")
        return 0
    if args.format == "csv":
        sys.stdout.write(report.to_csv(history[shown]))
        return 0
    if args.app is not None:
        print(f"{args.app}: {stage} on {today.isoformat()}")
    waiting = lifecycle.open_proposals(facts, args.app)
    for _, p in waiting.iterrows():
        print(f"waiting for an approver: {p['action']} {p['app_id']} by {p['actor']} (id {p['id']})")
    if history.empty:
        print("no lifecycle events recorded")
        return 0
    table = ["at", "app_id", "kind", "action", "stage", "effective", "planned", "actor", "self_approved",
             "projected_annual_savings", "net_effect", "rationale"]  # fmt: skip
    cents = {c: history[c].map(lambda v: v.quantize(Decimal("0.01")) if isinstance(v, Decimal) else v)
             for c in ("projected_annual_savings", "net_effect")}  # fmt: skip
    print(report.to_table(history.assign(at=history["at"].map(lambda t: f"{t:%Y-%m-%d %H:%M}"), **cents), table))
    return 0


def _tokens_report(facts: Any, cfg: config_mod.Config, period: Any, fmt: str, team: str | None) -> str:
    """``report tokens``: per app and model, tokens, cost per 1M tokens and per request (portfolio.genai),
    then the days where a gateway's estimate and the vendor's bill of one app differ (table and json)."""
    from portfolio import genai, report

    end = min(period.end, facts.last_complete_day)
    frame = genai.economics(facts.usage, facts.costs, period.start, end, cfg.currency)
    drift = genai.drift(periods.within(facts.costs, "day", period.start, end), cfg.genai.drift_threshold, cfg.currency)
    usage, costs = facts.usage, facts.costs
    if team:
        ids = set(facts.apps.loc[facts.apps["team"] == team, "app_id"])
        frame, drift = frame[frame["app_id"].isin(ids)], drift[drift["app_id"].isin(ids)]
        usage = usage[usage["app_id"].isin(ids)] if not usage.empty else usage
        costs = costs[costs["app_id"].isin(ids)] if not costs.empty else costs
    hosting = genai.hosting(usage, costs, period.start, end, cfg.currency)
    if fmt == "csv":
        return report.to_csv(frame)
    if fmt == "json":
        tokens = json.loads(report.to_json(frame))
        return json.dumps({"tokens": tokens, "drift": json.loads(report.to_json(drift)),
                           "self_hosted_vs_api": json.loads(report.to_json(hosting))}, indent=2) + "\n"
    shown = frame.copy()
    for col in ("tokens", "input_tokens", "cached_input_tokens", "cache_write_tokens", "output_tokens", "requests"):
        shown[col] = [f"{v:,.0f}" for v in shown[col]]
    for col, digits in (("cost", 2), ("cost_per_1m_tokens", 4), ("cost_per_request", 6)):
        shown[col] = [None if v != v else f"{v:,.{digits}f}" for v in shown[col]]
    cols = ["app_id", "model", "tokens", "input_tokens", "cached_input_tokens", "cache_write_tokens", "output_tokens",
            "requests", "cost", "cost_per_1m_tokens", "cost_per_request"]
    out = [f"tokens and cost per app and model, {period.label} ({cfg.currency}){' — team ' + team if team else ''}", "",
           report.to_table(shown, cols), ""]
    threshold = cfg.genai.drift_threshold
    out.append(f"billed against estimated (a gateway's estimate vs the vendor's bill, same app and day; flag over {threshold:.0%})")
    if drift.empty:
        out.append("(no day with both a bill and an estimate)")
    else:
        d = drift.assign(billed=[f"{v:,.2f}" for v in drift["billed"]], estimated=[f"{v:,.2f}" for v in drift["estimated"]],
                         drift=[f"{v:+.1%}" for v in drift["drift"]], flagged=["FLAG" if f else "" for f in drift["flagged"]])
        out.append(report.to_table(d, ["app_id", "day", "billed", "estimated", "drift", "flagged"]))
    out += ["", "self-hosted against API (cost per 1M tokens; self-hosted: infra cost of a model, API: vendor cost)"]
    if hosting.empty:
        out.append("(no app or model with both a self-hosted and an API model)")
    else:
        h = hosting.copy()
        for side in ("self_hosted", "api"):
            h[f"{side}_tokens"] = [f"{v:,.0f}" for v in h[f"{side}_tokens"]]
            h[f"{side}_per_1m"] = [None if v != v else f"{v:,.4f}" for v in h[f"{side}_per_1m"]]
        out.append(report.to_table(h, ["scope", "key", "self_hosted_tokens", "self_hosted_per_1m", "api_tokens", "api_per_1m"]))
    return "\n".join(out) + "\n"


#: issue 13's reports: value lost to downtime, plan vs actual, leftover spend, the retirement ledger
SAVINGS_REPORTS = ("downtime", "plan", "leftover", "retirements")
_SAVINGS_TABLES = {
    "downtime": ["app_id", "month", "availability", "slo", "shortfall", "value", "value_lost"],
    "plan": ["app_id", "months", "expected_annual_value", "actual_annual_value", "value_variance", "value_pct_of_plan",
             "expected_annual_run_cost", "actual_annual_run_cost", "run_cost_variance", "net_variance", "status"],
    "leftover": ["app_id", "retired_on", "grace_until", "source", "category", "service", "leftover_spend", "days",
                 "last_day", "daily_rate"],
    "retirements": ["app_id", "retired_on", "projected_annual_savings", "realised_annual_savings", "savings_variance",
                    "freed_hours_per_month", "value_gone_annual", "leftover_spend", "status"],
}  # fmt: skip


def _savings_report(kind: str, facts: Any, cfg: config_mod.Config, period: Any, fmt: str, team: str | None) -> str:
    """``report downtime|plan|leftover|retirements`` (portfolio.verify and portfolio.plan): a table
    with its totals, or the exact rows as CSV / JSON."""
    from portfolio import money, plan, report, verify
    from portfolio.books import of as books_of

    books = books_of(facts, cfg)
    end = min(period.end, facts.last_complete_day)
    if kind == "downtime":
        frame = verify.downtime_loss(books, period.start, end)
        header = f"value lost to downtime (months below the availability SLO: value x shortfall), {period.label} ({cfg.currency})"
        sums = ["value_lost"]
    elif kind == "plan":
        frame = plan.plan_vs_actual(books, end)
        header = f"business cases: actual (last 12 full months to {end}) against plan, a year ({cfg.currency})"
        sums = ["expected_annual_value", "actual_annual_value", "value_variance", "expected_annual_run_cost",
                "actual_annual_run_cost", "run_cost_variance", "net_variance"]  # fmt: skip
    elif kind == "leftover":
        frame = verify.leftover_spend(books)
        header = (f"leftover spend: cost of retired apps from {cfg.savings.grace_days} days after the retirement date, "
                  f"to {facts.last_complete_day} ({cfg.currency})")  # fmt: skip
        sums = ["leftover_spend"]
    else:
        frame = verify.retirement_ledger(books)
        header = (f"retirement ledger: savings projected at approval against realised on the bill (run-rate "
                  f"{cfg.savings.before_days} days before against up to {cfg.savings.after_days} days after the grace "
                  f"period, a year; {cfg.currency})")  # fmt: skip
        sums = ["projected_annual_savings", "realised_annual_savings", "leftover_spend"]
    if team and not frame.empty:
        ids = set(books.inventory().loc[lambda f: f["team"] == team, "app_id"])
        frame = frame[frame["app_id"].isin(ids)].reset_index(drop=True)
    if fmt == "csv":
        return report.to_csv(frame)
    if fmt == "json":
        return report.to_json(frame) + "\n"
    out = [f"{header}{' — team ' + team if team else ''}", "", report.to_table(frame, _SAVINGS_TABLES[kind])]
    if not frame.empty:
        out.append(report.totals_line(frame, sums))
    if kind == "retirements":
        t = verify.year_totals(frame, facts.last_complete_day.year)
        out.append(
            f"{t['year']}: {t['retirements']} retirement(s) carried out; savings realised {money.fmt(t['realised'], cfg.currency)}"
            f"/yr of {money.fmt(t['projected_verified'], cfg.currency)}/yr projected for the {t['verified']} verified "
            f"({money.fmt(t['projected'], cfg.currency)}/yr projected in all; {t['pending']} not verifiable yet)"
        )
    if kind == "plan":
        flagged = plan.flagged_assumptions(books, period.start, end)
        if not flagged.empty:
            out += ["", "value assumptions expired, unapproved or undeclared (soft value):",
                    report.to_table(flagged, ["assumption", "app_id", "owner", "approver", "expires", "status", "value"])]
    return "\n".join(out) + "\n"


def _report_period(args: argparse.Namespace, today: date) -> periods.Period:
    """The report's period: ``--from``/``--to`` (a custom period) or the ``--period`` preset, full months only."""
    custom = args.from_month is not None or args.to_month is not None
    if custom and args.period not in (None, "custom"):
        raise UsageError(f"--period {args.period} and --from/--to: give one or the other")
    if args.period == "custom" and not custom:
        raise UsageError("--period custom: give --from YYYY-MM and/or --to YYYY-MM")
    try:
        if custom:
            return periods.period_between(args.from_month, args.to_month, today, args.compare)
        return periods.preset_period(args.period or periods.DEFAULT_PRESET, today, args.compare)
    except ValueError as exc:
        raise UsageError(f"--from/--to: {exc}" if custom else f"--period: {exc}") from None


def _check_team(team: str, facts: Any, cfg: Config) -> None:
    """``--team`` must name a team of the config or of the inventory (a typo is not an empty report)."""
    known = set(cfg.teams) | {a.team for a in cfg.apps}
    if not facts.apps.empty and "team" in facts.apps.columns:
        known |= {str(t) for t in facts.apps["team"].dropna()}
    if team not in known:
        listed = ", ".join(sorted(known)) or "none (no app in the inventory yet)"
        raise UsageError(f"--team {team!r}: no such team; known teams: {listed}")


def _warn_left_out(facts: Any, cfg: Config) -> None:
    """Say on stderr when rows in another currency were left out of every sum (never converted)."""
    from portfolio import money, pnl

    issues = pnl.currency_issues(facts, cfg)
    for r in issues.to_dict("records"):
        print(
            f"warning: {int(r['rows'])} row(s) from {r['source']} in {r['currency']} "
            f"({money.fmt(r['amount'], str(r['currency']), 2)}) are left out: this report is in {cfg.currency}",
            file=sys.stderr,
        )


def _print_jobs(sched: Any) -> None:
    from portfolio import scheduler

    jobs = sched.get_jobs()
    if jobs:
        print("scheduled syncs:")
        print("\n".join(scheduler.describe(jobs)), flush=True)


def bind_address(cfg: config_mod.Config, requested: str | None) -> str:
    """Where the dashboard listens: localhost only unless sign-in is configured (then 0.0.0.0 or --address)."""
    if not cfg.auth.enabled:
        if requested and requested not in ("127.0.0.1", "localhost"):
            raise ConfigError(
                f"--address {requested}: sign-in is not configured ([auth] enabled = true in {cfg.source_path}), "
                "so the dashboard serves on localhost only"
            )
        print("sign-in is not configured: the dashboard serves on localhost (127.0.0.1) only", file=sys.stderr)
        return "127.0.0.1"
    return requested or "0.0.0.0"


def cmd_up(args: argparse.Namespace) -> int:
    from portfolio import (
        scheduler,
        storage,  # imported where used: start-up time
    )

    cfg = _load_config(args)
    storage.make_engine(cfg.database_url)
    with _sigterm_as_interrupt(), auth_secrets_file(cfg) as secrets_file:
        sched = scheduler.start(cfg, run_now=args.sync_now)
        try:
            if not sched.get_jobs():
                print("warning: no connector has a schedule; only the dashboard runs", file=sys.stderr)
            _print_jobs(sched)
            address = bind_address(cfg, args.address)
            return serve_dashboard(
                cfg.database_url, port=args.port, open_browser=False, demo=False, config_path=cfg.source_path,
                address=address, secrets_file=secrets_file, allowed_hosts=served_host_names(cfg, address),
                max_upload_bytes=cfg.uploads.max_bytes,
            )
        finally:
            print("stopping the scheduler (waiting for a running sync to finish)", file=sys.stderr, flush=True)
            sched.shutdown(wait=True)


def cmd_scheduler(args: argparse.Namespace) -> int:
    from portfolio import scheduler

    cfg = _load_config(args)
    if not scheduler.scheduled_connectors(cfg):
        raise ConfigError(
            f"{cfg.source_path}: no enabled connector has a schedule "
            '(expected e.g. schedule = "0 6 * * *" in a [connectors.<name>] table)'
        )
    with _sigterm_as_interrupt():
        sched = scheduler.start(cfg, run_now=args.sync_now)
        _print_jobs(sched)
        try:
            while sched.running:
                time.sleep(0.5)
        except KeyboardInterrupt:
            print("stopping the scheduler (waiting for a running sync to finish)", file=sys.stderr, flush=True)
        finally:
            if sched.running:
                sched.shutdown(wait=True)
    return 0


# ----------------------------------------------------------------------------- parser


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number (1-65535)")
    return port


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"{n} must be at least 1")
    return n


def _month(text: str) -> str:
    try:
        datetime.strptime(text, "%Y-%m")
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a month (expected YYYY-MM)") from None
    return text


def _day(text: str) -> str:
    try:
        date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (expected YYYY-MM-DD)") from None
    return text


def build_parser() -> argparse.ArgumentParser:
    # global options work before or after the command: the sub-parsers share them with
    # SUPPRESS defaults, so a value given before the command is not reset by the sub-parser
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS,
                        help="portfolio.toml (default: $PORTFOLIO_CONFIG or ./portfolio.toml)")
    common.add_argument("--db", metavar="URL", default=argparse.SUPPRESS,
                        help="database URL, overrides database_url and $PORTFOLIO_DB_URL")
    common.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS,
                        help="more log output (-vv: debug)")

    parser = argparse.ArgumentParser(
        prog="mlportfolio",
        description="ML Portfolio: the P&L of your ML apps — value, full cost, maintenance load, retirement.",
        parents=[common],
    )
    from portfolio import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("demo", parents=[common], help="build the demo portfolio and open its dashboard")
    p.add_argument("--port", type=_port, default=DEFAULT_PORT, help=f"dashboard port (default {DEFAULT_PORT})")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser (headless server)")
    p.add_argument("--no-serve", action="store_true", help="only build the demo database and print its path")
    p.add_argument("--apps", type=_positive, metavar="N", help="size: this many apps (default: the demo's 22); more adds derived variants")
    p.add_argument("--months", type=_positive, metavar="N", help="months of history (default 24)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("check", parents=[common], help="validate the config; list apps and connectors")
    p.add_argument(
        "--rebuild-rollups", action="store_true",
        help="rebuild the monthly rollups from the daily rows (when check finds them out of step)",
    )
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("sync", parents=[common], help="run connectors once (all enabled ones, or those named)")
    p.add_argument("connectors", nargs="*", metavar="CONNECTOR", help="connector names (default: all enabled)")
    p.add_argument("--full", action="store_true", help="ignore the cursor and re-read the full history")
    p.set_defaults(func=cmd_sync)

    p = sub.add_parser("report", parents=[common], help="print a report: pnl, maintenance, retirement, review, tokens, downtime, plan, leftover or retirements")
    p.add_argument("kind", choices=["pnl", "maintenance", "retirement", "review", "tokens", *SAVINGS_REPORTS])
    p.add_argument("--quarter", metavar="YYYYQn", help="review: the quarter, e.g. 2026Q3 (default: the last complete quarter)")
    p.add_argument(
        "--period", choices=list(periods.PRESETS), default=None,
        help="last-12 (default: the last 12 full months), last-month, last-quarter, ytd (full months), "
        "custom (with --from/--to); the month in progress is never included",
    )
    p.add_argument(
        "--compare", choices=list(periods.COMPARISONS), default=periods.DEFAULT_COMPARISON,
        help="compare with the same months a year earlier (year, default) or the period just before (previous)",
    )
    p.add_argument("--from", dest="from_month", type=_month, metavar="YYYY-MM", help="first month of a custom period (default: 12 months back)")
    p.add_argument("--to", dest="to_month", type=_month, metavar="YYYY-MM", help="last month of a custom period (default: the last full month)")
    p.add_argument("--team", help="only this team's apps")
    p.add_argument(
        "--format", choices=["table", "csv", "json", "md", "html"], default=None,
        help="table|csv|json (default table); review: md|html (default md)",
    )
    p.add_argument("--today", type=_day, metavar="YYYY-MM-DD", help="as-of date (default: $PORTFOLIO_TODAY or today, UTC)")
    p.add_argument("--demo", action="store_true", help="report on the demo database")
    p.add_argument("--include-snoozed", action="store_true", help="retirement: also findings snoozed by a decision")
    p.set_defaults(func=cmd_report)

    today_help = "as-of date (default: $PORTFOLIO_TODAY or today, UTC)"
    p = sub.add_parser("propose", parents=[common], help="propose retire / invest / keep for an app (an approver decides)")
    p.add_argument("app", metavar="APP")
    p.add_argument("action", choices=list(_PROPOSALS))
    p.add_argument("--by", required=True, help="who proposes (name or e-mail)")
    p.add_argument("--rationale", required=True, help="why")
    p.add_argument("--planned", type=_day, metavar="YYYY-MM-DD", help="retire: the planned retirement date (required)")
    p.add_argument("--next-review", type=_day, metavar="YYYY-MM-DD", help="invest / keep: when to look again")
    p.add_argument("--evidence", metavar="URL", help="a link to the evidence (http or https)")
    p.add_argument("--today", type=_day, metavar="YYYY-MM-DD", help=today_help)
    p.set_defaults(func=cmd_propose)

    for name, what in (("approve", "approve a waiting proposal"), ("reject", "reject a waiting proposal (with a comment)")):
        p = sub.add_parser(name, parents=[common], help=what)
        p.add_argument("proposal", metavar="PROPOSAL_ID")
        p.add_argument("--by", required=True, help="who decides (name or e-mail)")
        p.add_argument("--comment", help="the approver's comment (required to reject)")
        p.add_argument("--today", type=_day, metavar="YYYY-MM-DD", help=today_help)
        p.set_defaults(func=cmd_decide)

    p = sub.add_parser("stage", parents=[common], help="change an app's stage: pause, resume, promote, record it retired")
    p.add_argument("app", metavar="APP")
    p.add_argument("stage", choices=[s for s in _STAGES if s != "retiring"])
    p.add_argument("--by", required=True, help="who (name or e-mail)")
    p.add_argument("--rationale", required=True, help="why")
    p.add_argument("--effective", type=_day, metavar="YYYY-MM-DD", help="the day it takes effect (retired: the day it stopped)")
    p.add_argument("--evidence", metavar="URL", help="a link to the evidence (http or https)")
    p.add_argument("--today", type=_day, metavar="YYYY-MM-DD", help=today_help)
    p.set_defaults(func=cmd_stage)

    p = sub.add_parser("lifecycle", parents=[common], help="the lifecycle history (of one app, or all), newest first")
    p.add_argument("app", metavar="APP", nargs="?")
    p.add_argument("--format", choices=["table", "csv", "json"], default="table")
    p.add_argument("--today", type=_day, metavar="YYYY-MM-DD", help=today_help)
    p.set_defaults(func=cmd_lifecycle)

    p = sub.add_parser("up", parents=[common], help="run the scheduler and the dashboard together")
    p.add_argument("--port", type=_port, default=DEFAULT_PORT, help=f"dashboard port (default {DEFAULT_PORT})")
    p.add_argument("--sync-now", action="store_true", help="also run every scheduled connector once at start")
    p.add_argument("--address", help="listen address when sign-in is configured (default 0.0.0.0); else 127.0.0.1 only")
    p.set_defaults(func=cmd_up)

    p = sub.add_parser("scheduler", parents=[common], help="run the scheduler only (headless)")
    p.add_argument("--sync-now", action="store_true", help="also run every scheduled connector once at start")
    p.set_defaults(func=cmd_scheduler)
    return parser  # fmt: skip


def _setup_logging(verbosity: int, long_running: bool) -> None:
    """Log to stderr: errors only for one-shot commands, INFO for the long-running ones, more with -v.

    When the process already has logging set up (main() called from a program or a test run),
    its configuration is left alone.
    """
    if logging.getLogger().handlers:
        return
    level = {0: logging.INFO if long_running else logging.ERROR, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.DEBUG if verbosity >= 2 else logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors (argparse says what is wrong)
        return int(exc.code or 0) if not isinstance(exc.code, str) else 2
    for name, default in (("config", None), ("db", None), ("verbose", 0)):
        if not hasattr(args, name):
            setattr(args, name, default)
    _setup_logging(args.verbose, long_running=args.command in ("up", "scheduler"))
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except (ConfigError, UsageError) as exc:
        print(f"error: {redact(str(exc), _secret_names(getattr(args, 'loaded_config', None)))}", file=sys.stderr)
        return 2
    except PortfolioError as exc:
        print(f"error: {redact(str(exc), _secret_names(getattr(args, 'loaded_config', None)))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

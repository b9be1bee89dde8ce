"""Webhook alerts: tell the team when something needs a decision, once per event.

Three events (DESIGN: findings are only useful if someone hears about them):

- an app **newly becomes a retirement candidate** (it had no active finding at the last check);
- a recorded decision's **review date passes** (the snooze ended: time to decide again);
- a connector **keeps failing** (``alerts.connector_failures`` runs in a row).

Messages are Slack-compatible JSON (``{"text": ...}``), POSTed to the URL held in the environment
variable that ``[alerts] webhook_url_env`` names. What was sent is kept in ``AlertLog`` so a restart
does not repeat it; an app that stops being a candidate is forgotten, so a relapse alerts again. A
webhook that fails is retried at the next check (nothing is logged as sent).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd
import requests
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from portfolio import money, records, storage
from portfolio.config import Config
from portfolio.errors import redact
from portfolio.facts import Facts, load_facts

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Alert:
    key: str  # what makes it "the same event": sent once per key
    kind: str  # candidate | review_due | connector_failing
    text: str


def _money(x: float, currency: str = "USD") -> str:
    return money.fmt(x, currency)


def candidate_alerts(findings: pd.DataFrame, currency: str = "USD") -> list[Alert]:
    """One alert per app with active findings (snoozed findings are not passed in); amounts in ``currency``."""
    out = []
    for app_key, group in findings.groupby("app_id", sort=True):
        app_id = str(app_key)
        rules = ", ".join(sorted(group["rule"].unique()))
        first: dict[Any, Any] = group.iloc[0].to_dict()
        reasons = "; ".join(group["reason"].astype(str))
        out.append(
            Alert(
                key=f"candidate:{app_id}",
                kind="candidate",
                text=(
                    f":warning: *{first.get('name') or app_id}* ({app_id}, team {first.get('team')}) is now a "
                    f"retirement candidate — {rules}. {reasons}. Retiring it would save "
                    f"{_money(float(first['annual_savings']), currency)}/yr, "
                    f"value at risk {_money(float(first['value_at_risk']), currency)}/yr."
                ),
            )
        )
    return out


def review_due_alerts(decisions: pd.DataFrame, today: date) -> list[Alert]:
    """One alert per app whose latest decision's next review date has passed."""
    if decisions.empty:
        return []
    latest = decisions.sort_values("decided_at").groupby("app_id").tail(1)
    out = []
    for row in latest.to_dict("records"):
        due: Any = row["next_review"]
        if due is None or pd.isna(due) or due >= today:
            continue
        out.append(
            Alert(
                key=f"review_due:{row['app_id']}:{due}",
                kind="review_due",
                text=(
                    f":alarm_clock: Review of *{row['app_id']}* was due on {due} (last decision: {row['decision']} by "
                    f"{row['decided_by']}). Record a new decision on the Retirement page."
                ),
            )
        )
    return out


def failing_connector_alerts(runs: pd.DataFrame, threshold: int) -> list[Alert]:
    """One alert per connector whose last ``threshold`` finished runs all failed (one per failure streak)."""
    if runs.empty:
        return []
    out = []
    done = runs[runs["status"].isin(["success", "failed"])].sort_values("started")
    for name, group in done.groupby("connector", sort=True):
        statuses = group["status"].tolist()
        streak = 0
        for s in reversed(statuses):
            if s != "failed":
                break
            streak += 1
        if streak < threshold:
            continue
        first_failed: dict[Any, Any] = group.iloc[len(statuses) - streak].to_dict()
        last: dict[Any, Any] = group.iloc[-1].to_dict()
        out.append(
            Alert(
                key=f"connector_failing:{name}:{first_failed['id']}",
                kind="connector_failing",
                text=(
                    f":rotating_light: Connector *{name}* failed {streak} runs in a row (since "
                    f"{first_failed['started']:%Y-%m-%d %H:%M} UTC). Last error: {last['error']}"
                ),
            )
        )
    return out


def pending(facts: Facts, cfg: Config, findings: pd.DataFrame) -> list[Alert]:
    """Every alert the current facts call for (before de-duplication against what was sent)."""
    return (
        candidate_alerts(findings, cfg.currency)
        + review_due_alerts(facts.decisions, facts.today)
        + failing_connector_alerts(facts.runs, cfg.alerts.connector_failures)
    )


def post(url: str, alert: Alert, dashboard_url: str | None = None, timeout: float = 10.0) -> None:
    """POST one Slack-compatible message; raises requests.RequestException on failure."""
    text = alert.text + (f"\n<{dashboard_url}|Open ML Portfolio>" if dashboard_url else "")
    resp = requests.post(url, json={"text": text}, timeout=timeout)
    resp.raise_for_status()


def check_and_send(cfg: Config, engine: Engine, *, today: date | None = None) -> list[Alert]:
    """Evaluate alerts, send the new ones, remember them. Returns the alerts sent.

    Without a webhook configured (or its variable unset) nothing is sent and nothing remembered.
    """
    from portfolio import retirement  # the domain; imported here to keep this module light to import

    var = cfg.alerts.webhook_url_env
    url = os.environ.get(var) if var else None
    if not url:
        return []
    facts = load_facts(engine, today=today)
    findings = retirement.retirement_findings(facts, cfg)
    alerts = pending(facts, cfg, findings)
    log_t = storage.table_of(records.AlertLog)
    with engine.connect() as conn:
        sent = {r[0] for r in conn.execute(sa.select(log_t.c.key))}
    # forget candidates that recovered, so a relapse alerts again
    current = {a.key for a in alerts if a.kind == "candidate"}
    recovered = [k for k in sent if k.startswith("candidate:") and k not in current]
    if recovered:
        with engine.begin() as conn:
            conn.execute(sa.delete(log_t).where(log_t.c.key.in_(recovered)))
    delivered = []
    for alert in alerts:
        if alert.key in sent:
            continue
        try:
            post(url, alert, cfg.alerts.dashboard_url)
        except requests.RequestException as exc:
            log.warning("alert webhook failed (%s); will retry at the next check", redact(type(exc).__name__, [var or ""]))
            break
        storage.add(
            engine,
            records.AlertLog(key=alert.key, kind=alert.kind, sent_at=datetime.now(UTC), message=alert.text),
        )
        delivered.append(alert)
    return delivered

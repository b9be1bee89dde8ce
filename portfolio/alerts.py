"""Webhook alerts: tell the team when something needs a decision, once per event.

Three events (DESIGN: findings are only useful if someone hears about them):

- an app **newly becomes a retirement candidate** (it had no active finding at the last check);
- a recorded decision's **review date passes** (the snooze ended: time to decide again);
- a connector **keeps failing** (``alerts.connector_failures`` runs in a row).

Messages are Slack-compatible JSON (``{"text": ...}``), POSTed to the URL held in the environment
variable that ``[alerts] webhook_url_env`` names. What was sent is kept in ``AlertLog`` so a restart
does not repeat it; an app that stops being a candidate is forgotten, so a relapse alerts again.

Delivery: a webhook that answers 5xx (or cannot be reached) is retried with backoff, a few times
within one check (``SEND_ATTEMPTS``); if it still fails, the remaining alerts wait for the next
check (nothing is logged as sent). A webhook that *rejects* one alert (4xx: a message it refuses)
would refuse it again: that alert is kept in ``AlertLog`` with ``delivered = false`` and the next
alerts are still sent — one bad message never blocks the others.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd
import requests
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from portfolio import money, records, safe, storage
from portfolio.config import Config
from portfolio.errors import redact
from portfolio.facts import Facts, load_facts

log = logging.getLogger(__name__)

#: tries per alert while the webhook answers 5xx or cannot be reached; the waits between them
SEND_ATTEMPTS = 3
SEND_BACKOFF_SECONDS = (1.0, 4.0)
#: total seconds one POST may take (a webhook that trickles its answer never holds the scheduler)
SEND_DEADLINE_SECONDS = 30.0


class Rejected(Exception):
    """The webhook refused this message (HTTP 4xx): sending it again would not help."""

    def __init__(self, status: int):
        self.status = status
        super().__init__(f"HTTP {status}")


@dataclass(frozen=True)
class Alert:
    key: str  # what makes it "the same event": sent once per key
    kind: str  # candidate | review_due | connector_failing | leftover_spend
    text: str


def _money(x: float, currency: str = "USD") -> str:
    return money.fmt(x, currency)


def candidate_alerts(findings: pd.DataFrame, currency: str = "USD") -> list[Alert]:
    """One alert per app with active findings (snoozed findings are not passed in); amounts in ``currency``."""
    out = []
    for app_key, group in findings.groupby("app_id", sort=True):
        app_id = str(app_key)
        rules = ", ".join(sorted(group["rule"].unique()))
        esc = safe.slack  # names, teams and reasons come from the data: no <!channel>, no <url|text>
        first: dict[Any, Any] = group.iloc[0].to_dict()
        reasons = "; ".join(group["reason"].astype(str))
        out.append(
            Alert(
                key=f"candidate:{app_id}",
                kind="candidate",
                text=(
                    f":warning: *{esc(first.get('name') or app_id)}* ({esc(app_id)}, team {esc(first.get('team'))}) is now a "
                    f"retirement candidate — {esc(rules)}. {esc(reasons)}. Retiring it would save "
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
                    f":alarm_clock: Review of *{safe.slack(row['app_id'])}* was due on {due} (last decision: "
                    f"{safe.slack(row['decision'])} by {safe.slack(row['decided_by'])}). Record a new decision on the "
                    "Retirement page."
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
                    f":rotating_light: Connector *{safe.slack(name)}* failed {streak} runs in a row (since "
                    f"{first_failed['started']:%Y-%m-%d %H:%M} UTC). Last error: {safe.slack(last['error'])}"
                ),
            )
        )
    return out


def leftover_alerts(leftover: pd.DataFrame, currency: str = "USD") -> list[Alert]:
    """One alert per retired app's resource (source, service) still billing after the grace period,
    once per month it bills in (:func:`portfolio.verify.leftover_spend`): the endpoint nobody deleted."""
    out = []
    for row in leftover.to_dict("records"):
        esc = safe.slack
        month = f"{row['last_day']:%Y-%m}"
        out.append(
            Alert(
                key=f"leftover:{row['app_id']}:{row['source']}:{row['service']}:{month}",
                kind="leftover_spend",
                text=(
                    f":money_with_wings: *{esc(row['app_id'])}* was retired on {row['retired_on']} but "
                    f"{esc(row['category'])}/{esc(row['service'])} from {esc(row['source'])} still bills: "
                    f"{money.fmt(row['leftover_spend'], currency, 2)} since {row['grace_until']} (the end of the "
                    f"grace period), about {money.fmt(row['daily_rate'], currency, 2)} a day, last on {row['last_day']}."
                ),
            )
        )
    return out


def pending(facts: Facts, cfg: Config, findings: pd.DataFrame) -> list[Alert]:
    """Every alert the current facts call for (before de-duplication against what was sent)."""
    from portfolio import verify  # the domain; imported here to keep this module light to import
    from portfolio.books import of as books_of

    return (
        candidate_alerts(findings, cfg.currency)
        + review_due_alerts(facts.decisions, facts.today)
        + failing_connector_alerts(facts.runs, cfg.alerts.connector_failures)
        + leftover_alerts(verify.leftover_spend(books_of(facts, cfg)), cfg.currency)
    )


def post(url: str, alert: Alert, dashboard_url: str | None = None, timeout: float = 10.0) -> None:
    """POST one Slack-compatible message; raises requests.RequestException on failure."""
    from connectors.base import http_session  # the session whose requests have a total deadline

    text = alert.text + (f"\n<{dashboard_url}|Open ML Portfolio>" if dashboard_url else "")
    # retries are deliver()'s; a hook that trickles its answer is cut at SEND_DEADLINE_SECONDS
    with http_session(retries=0, deadline=SEND_DEADLINE_SECONDS) as session:
        resp = session.post(url, json={"text": text}, timeout=timeout)
    resp.raise_for_status()


def deliver(url: str, alert: Alert, dashboard_url: str | None = None) -> None:
    """POST one alert, retrying 5xx answers and network errors with backoff (``SEND_ATTEMPTS`` tries).

    Raises :class:`Rejected` for a 4xx answer (not retried: the hook refuses this message) and
    requests.RequestException when the hook is still failing after the last try.
    """
    for attempt in range(SEND_ATTEMPTS):
        try:
            post(url, alert, dashboard_url)
            return
        except requests.HTTPError as exc:
            status = exc.response.status_code if exc.response is not None else 0
            if 400 <= status < 500 and status != 429:  # 429 = slow down: retried like a 5xx
                raise Rejected(status) from None
            if attempt == SEND_ATTEMPTS - 1:
                raise
        except requests.RequestException:
            if attempt == SEND_ATTEMPTS - 1:
                raise
        time.sleep(SEND_BACKOFF_SECONDS[min(attempt, len(SEND_BACKOFF_SECONDS) - 1)])


def check_and_send(cfg: Config, engine: Engine, *, today: date | None = None) -> list[Alert]:
    """Evaluate alerts, send the new ones, remember them. Returns the alerts sent.

    Without a webhook configured (or its variable unset) nothing is sent and nothing remembered.
    """
    from portfolio import retirement  # the domain; imported here to keep this module light to import

    var = cfg.alerts.webhook_url_env
    url = os.environ.get(var) if var else None
    if not url:
        return []
    facts = load_facts(engine, today=today, cfg=cfg)
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
            deliver(url, alert, cfg.alerts.dashboard_url)
        except Rejected as exc:  # kept as not delivered, so it is not sent again; the next ones go on
            log.warning("alert %s refused by the webhook (%s); not retried, the next alerts are still sent", alert.key, exc)
            storage.add(
                engine,
                records.AlertLog(key=alert.key, kind=alert.kind, sent_at=datetime.now(UTC), message=alert.text, delivered=False),
            )
            continue
        except requests.RequestException as exc:
            log.warning(
                "alert webhook failed after %d tries (%s); will retry at the next check",
                SEND_ATTEMPTS, redact(type(exc).__name__, [var or ""]),
            )
            break
        storage.add(
            engine,
            records.AlertLog(key=alert.key, kind=alert.kind, sent_at=datetime.now(UTC), message=alert.text),
        )
        delivered.append(alert)
    return delivered

"""The quarterly review and the webhook alerts carry untrusted text as text.

A rationale typed in the dashboard and an app's team can hold newlines (which would end a Markdown
table row and forge new ones), ``|`` (a new cell), HTML and Markdown images; a connector's error text
can hold Slack's ``<!channel>`` and ``<url|text>``. The review is rendered from a real demo database;
the alerts go through ``check_and_send`` to a real local receiver.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest
import sqlalchemy as sa

from portfolio import alerts, config, decisions, records, review, safe, storage
from portfolio.facts import load_facts
from tests.conftest import DEMO_AS_OF
from tests.servers import PayloadServer, Reply

TODAY = date.fromisoformat(DEMO_AS_OF)
FORGED = "ok\n| forged-app | x | $9,999,999 |\r\n<img src=x onerror=alert(1)> ![p](http://127.0.0.1:9/p.png) a|b"


def _section(md: str, title: str) -> list[str]:
    """The table lines of one section of the Markdown review (its heading starts with ``title``, at any level)."""
    lines = md.split("\n")
    start = next(i for i, line in enumerate(lines) if line.lstrip("#").strip().startswith(title) and line.startswith("##"))
    out = []
    for line in lines[start + 1 :]:
        if line.startswith("#"):
            break
        if line.startswith("|"):
            out.append(line)
    return out


def test_markdown_review_keeps_one_row_per_decision_and_escapes_html(demo_copy_url: str) -> None:
    engine = storage.make_engine(demo_copy_url)
    app_id = storage.read_frame(engine, records.App)["app_id"].iloc[0]
    with engine.begin() as conn:  # a team name from an inventory, with a newline and a pipe in it
        conn.execute(sa.update(storage.table_of(records.App)).where(storage.table_of(records.App).c.app_id == app_id)
                     .values(team=FORGED))  # fmt: skip
    decided = datetime(2026, 5, 4, 10, tzinfo=UTC)
    decisions.record_decision(engine, app_id, "keep", "x@example.com", FORGED, TODAY + timedelta(days=90), now=decided)
    cfg = config.demo_config(demo_copy_url)
    facts = load_facts(engine, TODAY)
    md = review.render(facts, cfg, "2026Q2", "md")
    rows = _section(md, "Decisions taken this quarter")
    taken = review.build(facts, cfg, "2026Q2").decisions
    assert FORGED in set(taken["rationale"])
    assert len(rows) == 2 + len(taken), rows  # header, delimiter, one line per decision
    assert all(row.count("|") - row.count("\\|") == 7 for row in rows), rows  # six cells each
    assert len([r for r in rows if "forged-app" in r]) == 1
    assert "<img" not in md and "&lt;img" in md
    assert "![p](" not in md and "\\!\\[p\\]" in md
    apps = _section(md, "P&L by app")
    assert not [r for r in apps if r.startswith("| forged-app")], "a newline in a team forged a row"
    assert all(r.count("|") - r.count("\\|") == 9 for r in apps), apps
    teams = _section(md, "By team")  # issue 15: the summary by team carries the team's name too
    assert len([r for r in teams if "forged-app" in r]) == 1 and not [r for r in teams if r.startswith("| forged-app")]
    assert all(r.count("|") - r.count("\\|") == 7 for r in teams), teams

    page = review.render(facts, cfg, "2026Q2", "html")
    assert "<img" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page


def test_md_cell() -> None:
    assert safe.md_cell("a|b\nc\r\nd") == "a\\|b c d"
    assert safe.md_cell("<b>&") == "&lt;b&gt;&amp;"
    assert safe.md_cell("churn-predictor") == "churn-predictor"


PING = "<!channel> <!here> <@U123> <http://evil.example|your bank> & more"


def test_alert_texts_escape_slack_markup() -> None:
    findings = pd.DataFrame([{
        "app_id": "<!channel>", "name": "<http://evil.example|Pay here>", "team": "<!here>", "rule": "zombie",
        "reason": PING, "annual_savings": 1200.0, "value_at_risk": 0.0,
    }])  # fmt: skip
    decided = pd.DataFrame([{"app_id": "<!everyone>", "decided_at": datetime(2026, 1, 1, tzinfo=UTC),
                             "next_review": date(2026, 2, 1), "decision": "keep", "decided_by": "<@U999>"}])
    runs = pd.DataFrame([{"id": i, "connector": "<!channel>", "status": "failed", "error": PING,
                          "started": datetime(2026, 1, i, tzinfo=UTC)} for i in (1, 2, 3)])
    texts = [a.text for a in alerts.candidate_alerts(findings) + alerts.review_due_alerts(decided, date(2026, 3, 1))
             + alerts.failing_connector_alerts(runs, 3)]  # fmt: skip
    assert len(texts) == 3
    for text in texts:
        assert "<" not in text and ">" not in text, text
    assert "&lt;!channel&gt;" in texts[0] and "&lt;http://evil.example|Pay here&gt;" in texts[0]
    assert "&amp; more" in texts[2]


def test_a_connector_error_reaches_the_webhook_escaped(demo_copy_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = storage.make_engine(demo_copy_url)
    for i in range(3):
        t = datetime(2026, 6, 10 + i, tzinfo=UTC)
        storage.add(engine, records.SyncRun(connector="jira", connector_type="jira", started=t, finished=t,
                                            status="failed", error=PING))
    with PayloadServer(lambda *a: Reply(200, b"ok", {"Content-Type": "text/plain"})) as receiver:
        monkeypatch.setenv("PORTFOLIO_TEST_HOOK", receiver.url + "/hook")
        cfg = config.demo_config(demo_copy_url)
        cfg.alerts.webhook_url_env = "PORTFOLIO_TEST_HOOK"
        cfg.alerts.dashboard_url = "http://portfolio.example"
        sent = alerts.check_and_send(cfg, engine, today=TODAY)
        texts = [json.loads(body)["text"] for _, _, _, body in receiver.requests]
    failing = [t for a, t in zip(sent, texts, strict=True) if a.kind == "connector_failing"]
    assert len(failing) == 1
    assert "<!channel>" not in failing[0] and "&lt;!channel&gt; &lt;!here&gt; &lt;@U123&gt;" in failing[0]
    assert failing[0].endswith("<http://portfolio.example|Open ML Portfolio>")  # our own link still works

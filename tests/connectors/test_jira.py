"""jira against payloads built to Jira Cloud's documented shapes (tests/fixtures/jira), served by a
real local HTTP server: page tokens followed, worklog hours summed, apps from field/component/label."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy.engine import Engine

from connectors import jira
from portfolio import storage
from portfolio.config import SettingsError, loads
from portfolio.records import MaintenanceRecord
from portfolio.sync import sync
from tests.servers import PayloadServer, Reply

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "jira"
TOKEN = "ATATT3xFfGF0-fixture-token-0123456789"
EMAIL = "ml-bot@example.com"


def _load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


class JiraSite:
    def __init__(self, first: Reply | None = None):
        self.first = first
        self.server = PayloadServer(self.handle)

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        if self.first is not None:
            reply, self.first = self.first, None
            return reply
        url = urlsplit(path)
        if method == "POST" and url.path == "/rest/api/3/search/jql":
            token = json.loads(body).get("nextPageToken")
            if token is None:
                return Reply(200, _load("search_page1.json"))
            if token == "CAEaAggD":
                return Reply(200, _load("search_page2.json"))
            return Reply(400, {"errorMessages": ["Invalid nextPageToken"], "errors": {}})
        if method == "GET" and url.path == "/rest/api/3/issue/ML-105/worklog":
            start = parse_qs(url.query).get("startAt", ["0"])[0]
            return Reply(200, _load(f"worklog_ML-105_start{start}.json"))
        return Reply(
            404, {"errorMessages": ["Issue does not exist or you do not have permission to see it."]}
        )

    def searches(self) -> list[dict[str, Any]]:
        return [json.loads(b) for m, p, _, b in self.server.requests if m == "POST"]


@pytest.fixture
def site() -> Iterator[JiraSite]:
    s = JiraSite()
    with s.server:
        yield s


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("JIRA_FIXTURE_TOKEN", TOKEN)
    return TOKEN


def _config(url: str, extra: str = "") -> Any:
    return loads(
        f"""
[[apps]]
id = "churn-predictor"
team = "search"

[[apps]]
id = "fraud-scorer"
name = "Fraud Scorer"
team = "risk"

[connectors.tickets]
type = "jira"
url = "{url}"
email = "{EMAIL}"
api_token_env = "JIRA_FIXTURE_TOKEN"
jql = "project = ML ORDER BY updated ASC"
app_field = "customfield_10042"
{extra}
"""
    )


def _rows(engine: Engine) -> Any:
    return storage.read_frame(engine, MaintenanceRecord).sort_values("ref").reset_index(drop=True)


# Hand-computed from the fixtures (see tests/fixtures/jira/README.md):
#   ML-101 custom field churn-predictor; worklogs 3600 + 5400 s (all listed) = 2.5 h; resolved 03-05
#   ML-102 component fraud-scorer; type Incident; 2 of 3 worklogs listed -> timespent 10800 s = 3 h;
#          22:00 -> 01:30 = 3.5 h to restore
#   ML-103 label app:churn-predictor; Story; no time logged -> improvement default 8 h; open: created 03-12
#   ML-104 no app anywhere -> skipped
#   ML-105 custom field [Fraud Scorer] (app name); label incident beats type Bug; 2 of 3 worklogs listed
#          and no timespent -> worklog endpoint: 3600 + 3600 + 1800 s = 2.5 h; 10:00 -> 12:45 = 2.75 h
#   ML-106 custom field fraud-scorer wins over component churn-predictor; no worklog field,
#          timespent 4500 s = 1.25 h
EXPECTED = {
    "ML-101": ("churn-predictor", date(2025, 3, 5), "klo", 2.5, 0, None),
    "ML-102": ("fraud-scorer", date(2025, 3, 11), "incident", 3.0, 1, 3.5),
    "ML-103": ("churn-predictor", date(2025, 3, 12), "improvement", 8.0, 0, None),
    "ML-105": ("fraud-scorer", date(2025, 3, 20), "incident", 2.5, 1, 2.75),
    "ML-106": ("fraud-scorer", date(2025, 3, 25), "klo", 1.25, 0, None),
}


def test_pages_followed_hours_summed_apps_mapped(
    site: JiraSite, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="connectors.jira"):
        run = sync(_config(site.server.url), engine).runs[0]
    assert run.status == "success", run.error
    frame = _rows(engine)
    got = {
        r.ref: (
            r.app_id,
            r.day,
            r.kind,
            r.hours,
            r.incidents,
            None if r.ttr_hours != r.ttr_hours else r.ttr_hours,
        )
        for r in frame.itertuples()
    }
    assert got == EXPECTED
    assert frame.hours.sum() == pytest.approx(17.25)
    assert frame.set_index("ref").loc["ML-101", "url"] == f"{site.server.url}/browse/ML-101"
    assert "1 issues not mapped to any app were skipped (e.g. ML-104)" in caplog.text
    assert run.warnings == "1 issues not mapped to any app were skipped (e.g. ML-104)"
    searches = site.searches()
    assert [s.get("nextPageToken") for s in searches] == [None, "CAEaAggD"]
    for s in searches:
        assert s["jql"] == "project = ML ORDER BY updated ASC"  # full sync: the query as configured
        assert "worklog" in s["fields"] and "timespent" in s["fields"] and "customfield_10042" in s["fields"]
        assert s["maxResults"] == 100
    worklog_pages = [p for m, p, _, _ in site.server.requests if m == "GET"]
    assert [parse_qs(urlsplit(p).query)["startAt"] for p in worklog_pages] == [["0"], ["2"]]
    basic = "Basic " + base64.b64encode(f"{EMAIL}:{TOKEN}".encode()).decode()
    for _, path, headers, body in site.server.requests:
        assert headers["Authorization"] == basic
        assert TOKEN not in path and TOKEN.encode() not in body


def test_sync_twice_same_rows(site: JiraSite, engine: Engine) -> None:
    cfg = _config(site.server.url)
    first = sync(cfg, engine, full=True).runs[0]
    before = _rows(engine)
    second = sync(cfg, engine, full=True).runs[0]
    assert (first.status, second.status) == ("success", "success")
    assert (first.rows_written, second.rows_written, second.rows_deleted) == (5, 0, 0)
    assert _rows(engine).drop(columns="id").equals(before.drop(columns="id"))


def test_incremental_sync_bounds_jql_by_updated(site: JiraSite, engine: Engine) -> None:
    cfg = _config(site.server.url)
    sync(cfg, engine, now=datetime(2025, 4, 1, 6, 30, tzinfo=UTC))
    sync(cfg, engine, now=datetime(2025, 4, 2, 6, 30, tzinfo=UTC))
    last = site.searches()[-1]
    # cursor = 2025-04-01 06:30 - lookback 3 days; ORDER BY stays at the end
    assert last["jql"] == '(project = ML) AND updated >= "2025-03-29 06:30" ORDER BY updated ASC'
    assert len(_rows(engine)) == 5


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        pytest.param(
            'jql = "project = ML"', '(project = ML) AND updated >= "2025-03-01 00:00"', id="no-order-by"
        ),
        pytest.param(
            'jql = "labels = klo order by created DESC"',
            '(labels = klo) AND updated >= "2025-03-01 00:00" ORDER BY created DESC',
            id="order-by-kept-last",
        ),
        pytest.param(
            'projects = ["ML", "DS"]',
            '(project in ("ML", "DS")) AND updated >= "2025-03-01 00:00"',
            id="projects",
        ),
    ],
)
def test_jql_bound(params: str, expected: str) -> None:
    cfg = loads(f'[connectors.t]\ntype = "jira"\n{params}')
    assert jira._jql(cfg.connectors["t"], datetime(2025, 3, 1, tzinfo=UTC)) == expected


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        pytest.param(
            Reply(
                400,
                {
                    "errorMessages": [
                        "Field 'projct' does not exist or you do not have permission to view it."
                    ]
                },
            ),
            "tickets: HTTP 400 /rest/api/3/search/jql",
            id="bad-jql",
        ),
        pytest.param(Reply(401, {"message": "Client must be authenticated"}), "HTTP 401", id="bad-token"),
        pytest.param(Reply(200, {"issues": "nope"}), "answer has no issues list", id="bad-shape"),
    ],
)
def test_bad_answer_clear_error_nothing_lost(
    reply: Reply, message: str, site: JiraSite, engine: Engine
) -> None:
    assert sync(_config(site.server.url), engine).runs[0].status == "success"
    before = _rows(engine)
    bad = JiraSite(first=reply)
    with bad.server:
        run = sync(_config(bad.server.url), engine, full=True).runs[0]
    assert run.status == "failed" and run.rows_written == 0 and run.rows_deleted == 0
    assert message in (run.error or "")
    assert TOKEN not in (run.error or "")
    assert _rows(engine).drop(columns="id").equals(before.drop(columns="id"))


def test_missing_token_or_jql_is_a_clear_error(
    site: JiraSite, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JIRA_FIXTURE_TOKEN")
    run = sync(_config(site.server.url), engine).runs[0]
    assert run.error == "tickets: environment variable JIRA_FIXTURE_TOKEN (api_token_env) is not set or empty"
    cfg = loads(
        '[connectors.t]\ntype = "jira"\nurl = "https://x.atlassian.net"\nemail = "a@b.c"\napi_token_env = "X"'
    )
    # issue 12: one error type for a bad setting (was ConnectorError, with the value echoed)
    with pytest.raises(SettingsError, match="connectors.t.jql: expected a JQL query"):
        jira._jql(cfg.connectors["t"], None)


def test_maintenance_view_klo_hours_match_the_tickets(site: JiraSite, engine: Engine) -> None:
    """Done-when of issue 5: the Maintenance page's KLO hours (klo + incident) are the tickets' hours."""
    from portfolio.facts import load_facts
    from portfolio.maintenance import maintenance_monthly

    cfg = _config(site.server.url)
    assert sync(cfg, engine).runs[0].status == "success"
    monthly = maintenance_monthly(load_facts(engine, today=date(2025, 4, 15)), cfg).set_index("app_id")
    # churn-predictor, March 2025: ML-101 klo 2.5 h; ML-103 improvement 8 h
    churn = monthly.loc["churn-predictor"]
    assert (churn.month, churn.klo_hours, churn.improvement_hours, churn.incidents) == (
        date(2025, 3, 1),
        2.5,
        8.0,
        0,
    )
    # fraud-scorer: ML-102 incident 3 h + ML-105 incident 2.5 h + ML-106 klo 1.25 h; MTTR (3.5 + 2.75) / 2
    fraud = monthly.loc["fraud-scorer"]
    assert (fraud.klo_hours, fraud.incident_hours, fraud.incidents) == (6.75, 5.5, 2)
    assert fraud.mttr_hours == pytest.approx(3.125)
    assert fraud.people_cost == pytest.approx(6.75 * cfg.team("risk").hourly_rate)

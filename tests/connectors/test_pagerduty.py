"""pagerduty against payloads built to PagerDuty's documented ``GET /incidents`` shape
(tests/fixtures/pagerduty), served by a real local HTTP server: offset pages followed, services
mapped to apps, time to restore and hours hand-computed."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from sqlalchemy.engine import Engine

from connectors import pagerduty
from connectors.base import Notice, Replace
from portfolio import storage
from portfolio.config import loads
from portfolio.records import MaintenanceRecord
from portfolio.sync import sync
from tests.servers import PayloadServer, Reply

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "pagerduty"
TOKEN = "u+pdFixtureToken_0123456789"


class PagerDuty:
    def __init__(self, first: Reply | None = None, empty: bool = False):
        self.first = first
        self.empty = empty
        self.server = PayloadServer(self.handle)

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        if self.first is not None:
            reply, self.first = self.first, None
            return reply
        url = urlsplit(path)
        if url.path != "/incidents":
            return Reply(404, {"error": {"message": "Not Found", "code": 2100}})
        if self.empty:
            return Reply(200, {"incidents": [], "limit": 100, "offset": 0, "total": None, "more": False})
        offset = dict(parse_qsl(url.query))["offset"]
        return Reply(200, json.loads((FIXTURES / f"incidents_offset{offset}.json").read_text()))

    def queries(self) -> list[list[tuple[str, str]]]:
        return [parse_qsl(urlsplit(p).query) for _, p, _, _ in self.server.requests]


@pytest.fixture
def pd() -> Iterator[PagerDuty]:
    p = PagerDuty()
    with p.server:
        yield p


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("PD_FIXTURE_TOKEN", TOKEN)
    return TOKEN


def _config(url: str, extra: str = "", history_days: int = 60) -> Any:
    return loads(
        f"""
[[apps]]
id = "churn-predictor"
team = "search"

[[apps]]
id = "fraud-scorer"
team = "risk"

[connectors.oncall]
type = "pagerduty"
api_url = "{url}"
token_env = "PD_FIXTURE_TOKEN"
services = {{ "PSCORE1" = "fraud-scorer", "churn batch" = "churn-predictor" }}
until = "2025-04-01T00:00:00Z"
history_days = {history_days}
{extra}
"""
    )


def _rows(engine: Engine) -> Any:
    return storage.read_frame(engine, MaintenanceRecord).sort_values("ref").reset_index(drop=True)


# Hand-computed from the fixtures:
#   Q1AAA1 service PSCORE1 (by id) -> fraud-scorer; 10:00 -> 11:30 = 1.5 h; acknowledged by 1 user
#   Q1BBB2 service "churn batch" (by name) -> churn-predictor; 23:00 -> 01:00 next day = 2 h;
#          responders: PUSER01 (ack) + PUSER02 (joined); PUSER03 only pending -> 2
#   Q1CCC3 no resolved_at: last_status_change_at; 03-10 08:00 -> 03-11 14:00 = 30 h; nobody recorded -> 1
#   Q1DDD4 service legacy-etl: no app -> skipped
@pytest.mark.parametrize(
    ("extra", "hours"),
    [
        pytest.param("", {"Q1AAA1": 1.5, "Q1BBB2": 4.0, "Q1CCC3": 24.0}, id="defaults-cap-24h"),
        pytest.param(
            "hours_per_incident = 1.5\nmax_hours = 12",
            {"Q1AAA1": 2.25, "Q1BBB2": 6.0, "Q1CCC3": 18.0},
            id="multiplier-and-cap",
        ),
    ],
)
def test_incidents_pages_followed_ttr_and_hours(
    extra: str, hours: dict[str, float], pd: PagerDuty, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="connectors.pagerduty"):
        items = list(pagerduty.pull(_config(pd.server.url, extra).connectors["oncall"], None))
    # full sync: rows from history start (2025-01-31) + 7 days to the end are replaced
    assert items[0] == Replace(MaintenanceRecord, date(2025, 2, 7), date(2025, 4, 1))
    recs = {r.ref: r for r in items if isinstance(r, MaintenanceRecord)}
    assert items[-1] == Notice("1 incidents not mapped to any app were skipped (e.g. Q1DDD4)")
    expected = {
        "Q1AAA1": ("fraud-scorer", date(2025, 3, 3), 1.5),
        "Q1BBB2": ("churn-predictor", date(2025, 3, 6), 2.0),
        "Q1CCC3": ("fraud-scorer", date(2025, 3, 11), 30.0),
    }
    assert set(recs) == set(expected)
    for ref, (app, day, ttr) in expected.items():
        r = recs[ref]
        assert (r.app_id, r.day, r.kind, r.incidents, r.ttr_hours) == (app, day, "incident", 1, ttr)
        assert r.hours == pytest.approx(hours[ref])
        assert r.url == f"https://subdomain.pagerduty.com/incidents/{ref}"
    assert recs["Q1AAA1"].title == "[#1201] fraud-scoring-api p99 latency above 2 s"
    assert "1 incidents not mapped to any app were skipped (e.g. Q1DDD4)" in caplog.text
    queries = pd.queries()
    assert [dict(q)["offset"] for q in queries] == ["0", "2"]
    for q in queries:
        assert ("statuses[]", "resolved") in q and ("limit", "100") in q
        assert dict(q)["since"] == "2025-01-31T00:00:00Z" and dict(q)["until"] == "2025-04-01T00:00:00Z"
    for _, path, headers, _ in pd.server.requests:
        assert headers["Authorization"] == f"Token token={TOKEN}"
        assert headers["Accept"] == "application/vnd.pagerduty+json;version=2"
        assert TOKEN not in path


def test_long_ranges_are_asked_in_six_month_windows() -> None:
    p = PagerDuty(empty=True)
    with p.server:
        items = list(pagerduty.pull(_config(p.server.url, history_days=400).connectors["oncall"], None))
    assert len(items) == 1  # only the Replace marker
    windows = [(dict(q)["since"], dict(q)["until"]) for q in p.queries()]
    # 2025-04-01 - 400 days = 2024-02-26; windows of 179 days
    assert windows == [
        ("2024-02-26T00:00:00Z", "2024-08-23T00:00:00Z"),
        ("2024-08-23T00:00:00Z", "2025-02-18T00:00:00Z"),
        ("2025-02-18T00:00:00Z", "2025-04-01T00:00:00Z"),
    ]


def test_sync_twice_same_rows(pd: PagerDuty, engine: Engine) -> None:
    cfg = _config(pd.server.url)
    first = sync(cfg, engine, full=True).runs[0]
    before = _rows(engine)
    second = sync(cfg, engine, full=True).runs[0]
    assert (first.status, second.status) == ("success", "success")
    assert (first.rows_written, second.rows_written, second.rows_deleted) == (3, 0, 0)
    assert _rows(engine).drop(columns="id").equals(before.drop(columns="id"))
    assert before.hours.sum() == pytest.approx(1.5 + 4.0 + 24.0)
    assert second.warnings == "1 incidents not mapped to any app were skipped (e.g. Q1DDD4)"


def test_incremental_sync_starts_an_incident_window_before_the_cursor(pd: PagerDuty, engine: Engine) -> None:
    from datetime import UTC, datetime

    cfg = _config(pd.server.url)
    sync(cfg, engine, now=datetime(2025, 3, 20, 6, 0, tzinfo=UTC))
    sync(cfg, engine, now=datetime(2025, 3, 21, 6, 0, tzinfo=UTC))
    # cursor 2025-03-20 06:00 - lookback 3 days - incident window 7 days
    assert dict(pd.queries()[-1])["since"] == "2025-03-10T06:00:00Z"
    assert len(_rows(engine)) == 3


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        pytest.param(
            Reply(401, {"error": {"message": "Unauthorized", "code": 2006}}),
            "oncall: HTTP 401 /incidents authentication refused",
            id="bad-token",
        ),
        pytest.param(
            Reply(
                400,
                {
                    "error": {
                        "message": "Invalid Input Provided",
                        "code": 2001,
                        "errors": ["Since is invalid"],
                    }
                },
            ),
            "oncall: HTTP 400 /incidents",
            id="bad-request",
        ),
        pytest.param(Reply(200, {"incident": []}), "answer has no incidents list", id="bad-shape"),
    ],
)
def test_bad_answer_clear_error_nothing_lost(
    reply: Reply, message: str, pd: PagerDuty, engine: Engine
) -> None:
    assert sync(_config(pd.server.url), engine).runs[0].status == "success"
    before = _rows(engine)
    bad = PagerDuty(first=reply)
    with bad.server:
        run = sync(_config(bad.server.url), engine, full=True).runs[0]
    assert run.status == "failed" and run.rows_written == 0 and run.rows_deleted == 0
    assert message in (run.error or "") and TOKEN not in (run.error or "")
    assert _rows(engine).drop(columns="id").equals(before.drop(columns="id"))


def test_missing_token_is_a_clear_error(
    pd: PagerDuty, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PD_FIXTURE_TOKEN")
    run = sync(_config(pd.server.url), engine).runs[0]
    assert run.error == "oncall: environment variable PD_FIXTURE_TOKEN (token_env) is not set or empty"
    assert pd.server.requests == []


def test_a_server_repeating_its_first_page_is_stopped_at_once(pd: PagerDuty, engine: Engine) -> None:
    """Issue 12: a server that ignores ``offset`` and answers page 1 with ``more: true`` forever was
    paged 2,500 times in 2 minutes (and would have gone on to 10,000). The shared loop guard stops
    at the second, identical page; nothing is written and earlier rows stay."""
    assert sync(_config(pd.server.url), engine).runs[0].status == "success"
    before = _rows(engine)
    page = json.loads((FIXTURES / "incidents_offset0.json").read_text())
    assert page["more"] is True
    with PayloadServer(lambda *_: Reply(200, page)) as server:
        run = sync(_config(server.url), engine, full=True).runs[0]
        asked = len(server.requests)
    assert (run.status, run.rows_written, run.rows_deleted) == ("failed", 0, 0)
    assert run.error == (
        "oncall: /incidents pagination loop: page 2 is the same as page 1 although more were announced; stopping"
    )
    assert asked == 2
    assert _rows(engine).drop(columns="id").equals(before.drop(columns="id"))

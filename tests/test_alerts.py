"""Webhook alerts against a real local HTTP receiver: sent once per event, retried when the hook fails."""

from __future__ import annotations

import json
import time
from datetime import UTC, date, datetime

import pytest

from portfolio import alerts, config, records, retirement, storage
from portfolio.facts import Facts, load_facts
from tests.conftest import DEMO_AS_OF
from tests.servers import PayloadServer, Reply

TODAY = date.fromisoformat(DEMO_AS_OF)


@pytest.fixture
def receiver():
    with PayloadServer(lambda method, path, headers, body: Reply(200, b"ok", {"Content-Type": "text/plain"})) as srv:
        yield srv


def _cfg(url: str) -> config.Config:
    cfg = config.demo_config(url)
    cfg.alerts.webhook_url_env = "PORTFOLIO_TEST_HOOK"
    return cfg


def test_candidates_are_announced_once(demo_copy_url, receiver, monkeypatch):
    monkeypatch.setenv("PORTFOLIO_TEST_HOOK", receiver.url + "/hook")
    cfg = _cfg(demo_copy_url)
    engine = storage.make_engine(demo_copy_url)
    expected_apps = set(retirement.retirement_findings(load_facts(engine, TODAY), cfg)["app_id"])
    sent = alerts.check_and_send(cfg, engine, today=TODAY)
    candidate_keys = {a.key for a in sent if a.kind == "candidate"}
    assert candidate_keys == {f"candidate:{a}" for a in expected_apps}
    assert len(receiver.requests) == len(sent)
    method, path, headers, body = receiver.requests[0]
    assert (method, path) == ("POST", "/hook")
    assert set(json.loads(body)) == {"text"}  # Slack-compatible
    # the same facts again: nothing new to say
    assert alerts.check_and_send(cfg, engine, today=TODAY) == []
    assert len(receiver.requests) == len(sent)


@pytest.fixture(autouse=True)
def _quick_backoff(monkeypatch):
    monkeypatch.setattr(alerts, "SEND_BACKOFF_SECONDS", (0.05, 0.1), raising=False)


def test_failing_hook_is_retried_next_time(demo_copy_url, monkeypatch):
    with PayloadServer(lambda *a: Reply(500, b"boom")) as broken:
        monkeypatch.setenv("PORTFOLIO_TEST_HOOK", broken.url + "/hook")
        cfg = _cfg(demo_copy_url)
        engine = storage.make_engine(demo_copy_url)
        assert alerts.check_and_send(cfg, engine, today=TODAY) == []
        assert storage.read_frame(engine, records.AlertLog).empty
    with PayloadServer(lambda *a: Reply(200, b"ok")) as fixed:
        monkeypatch.setenv("PORTFOLIO_TEST_HOOK", fixed.url + "/hook")
        assert alerts.check_and_send(cfg, engine, today=TODAY)


def test_a_rejected_alert_does_not_block_the_next_ones(demo_copy_url, monkeypatch):
    """The hook refuses one message (4xx): it is kept as not delivered, every other alert still goes out,
    and the refused one is not sent again at the next check."""
    texts: list[str] = []

    def hook(method, path, headers, body):
        text = json.loads(body)["text"]
        texts.append(text)
        if len(texts) == 1:  # the first message is refused, as Slack does with "invalid_blocks"
            return Reply(400, b"invalid_payload", {"Content-Type": "text/plain"})
        return Reply(200, b"ok", {"Content-Type": "text/plain"})

    with PayloadServer(hook) as server:
        monkeypatch.setenv("PORTFOLIO_TEST_HOOK", server.url + "/hook")
        cfg = _cfg(demo_copy_url)
        engine = storage.make_engine(demo_copy_url)
        expected = alerts.pending(load_facts(engine, TODAY), cfg, retirement.retirement_findings(load_facts(engine, TODAY), cfg))
        assert len(expected) >= 3
        sent = alerts.check_and_send(cfg, engine, today=TODAY)
        assert len(texts) == len(expected)  # one try each: a 4xx is not retried
        assert [a.key for a in sent] == [a.key for a in expected[1:]]
        log_rows = storage.read_frame(engine, records.AlertLog).set_index("key")
        assert log_rows.loc[expected[0].key, "delivered"] == False  # noqa: E712 - a numpy bool
        assert log_rows.drop(expected[0].key)["delivered"].all()
        assert alerts.check_and_send(cfg, engine, today=TODAY) == []
        assert len(texts) == len(expected)  # the refused message is not sent again


def test_a_5xx_is_retried_with_backoff_within_one_check(demo_copy_url, monkeypatch):
    answers = [503, 502]  # the hook is briefly unwell, then answers

    def hook(method, path, headers, body):
        status = answers.pop(0) if answers else 200
        return Reply(status, b"x", {"Content-Type": "text/plain"})

    with PayloadServer(hook) as server:
        monkeypatch.setenv("PORTFOLIO_TEST_HOOK", server.url + "/hook")
        cfg = _cfg(demo_copy_url)
        engine = storage.make_engine(demo_copy_url)
        sent = alerts.check_and_send(cfg, engine, today=TODAY)
        assert sent and len(server.requests) == len(sent) + 2
        assert storage.read_frame(engine, records.AlertLog)["delivered"].all()


def test_a_hook_still_failing_after_the_last_try_stops_the_check(demo_copy_url, monkeypatch):
    with PayloadServer(lambda *a: Reply(503, b"down")) as server:
        monkeypatch.setenv("PORTFOLIO_TEST_HOOK", server.url + "/hook")
        cfg = _cfg(demo_copy_url)
        assert alerts.check_and_send(cfg, storage.make_engine(demo_copy_url), today=TODAY) == []
        assert len(server.requests) == alerts.SEND_ATTEMPTS  # bounded: one alert tried, the rest wait


def test_a_trickling_hook_is_cut_at_its_deadline(demo_copy_url, monkeypatch):
    from tests.test_stalls import Trickle

    monkeypatch.setattr(alerts, "SEND_DEADLINE_SECONDS", 1.0, raising=False)
    with Trickle(gap=0.5, limit=60) as hook:
        monkeypatch.setenv("PORTFOLIO_TEST_HOOK", hook.url + "/hook")
        cfg = _cfg(demo_copy_url)
        t0 = time.monotonic()
        assert alerts.check_and_send(cfg, storage.make_engine(demo_copy_url), today=TODAY) == []
        assert time.monotonic() - t0 < 30  # (reading the facts included); uncut, one try alone is 60 s
        assert len(hook.requests) == 3  # SEND_ATTEMPTS tries of the first alert, each cut after 1 s


def test_no_webhook_configured_sends_nothing(demo_copy_url):
    cfg = config.demo_config(demo_copy_url)
    assert alerts.check_and_send(cfg, storage.make_engine(demo_copy_url), today=TODAY) == []


def _runs(statuses: list[str]) -> Facts:
    import pandas as pd

    rows = [
        {"id": i + 1, "connector": "bill", "status": s, "started": datetime(2026, 1, i + 1, tzinfo=UTC), "error": f"err {i}"}
        for i, s in enumerate(statuses)
    ]
    return Facts.from_frames(today=date(2026, 2, 1), runs=pd.DataFrame(rows))


@pytest.mark.parametrize(
    ("statuses", "threshold", "expected_keys"),
    [
        pytest.param(["success", "failed", "failed", "failed"], 3, ["connector_failing:bill:2"], id="three-in-a-row"),
        pytest.param(["failed", "failed", "success", "failed", "failed"], 3, [], id="streak-broken"),
        pytest.param(["failed", "failed"], 2, ["connector_failing:bill:1"], id="threshold-2"),
        pytest.param(["success"], 1, [], id="healthy"),
    ],
)
def test_failing_connector_streaks(statuses, threshold, expected_keys):
    facts = _runs(statuses)
    assert [a.key for a in alerts.failing_connector_alerts(facts.runs, threshold)] == expected_keys


def test_review_due_only_after_the_date():
    import pandas as pd

    decisions = pd.DataFrame(
        [
            {"app_id": "a", "decided_at": datetime(2026, 1, 1, tzinfo=UTC), "decision": "keep", "decided_by": "x", "next_review": date(2026, 3, 1)},
            {"app_id": "b", "decided_at": datetime(2026, 1, 1, tzinfo=UTC), "decision": "keep", "decided_by": "x", "next_review": date(2026, 4, 1)},
            # a newer decision for "a" with a later date supersedes the overdue one
            {"app_id": "c", "decided_at": datetime(2026, 1, 1, tzinfo=UTC), "decision": "keep", "decided_by": "x", "next_review": date(2026, 2, 1)},
            {"app_id": "c", "decided_at": datetime(2026, 2, 15, tzinfo=UTC), "decision": "invest", "decided_by": "y", "next_review": date(2026, 9, 1)},
        ]
    )
    keys = [a.key for a in alerts.review_due_alerts(decisions, date(2026, 3, 15))]
    assert keys == ["review_due:a:2026-03-01"]


def test_leftover_spend_is_announced_once_a_month(demo_copy_url, receiver, monkeypatch):
    """Issue 13: the demo's visual-search-v1 was retired on 2026-04-01 and its GPU endpoint still bills."""
    monkeypatch.setenv("PORTFOLIO_TEST_HOOK", receiver.url + "/hook")
    cfg = _cfg(demo_copy_url)
    engine = storage.make_engine(demo_copy_url)
    sent = [a for a in alerts.check_and_send(cfg, engine, today=TODAY) if a.kind == "leftover_spend"]
    assert [a.key for a in sent] == ["leftover:visual-search-v1:demo:gpu:2026-06"]
    assert "*visual-search-v1* was retired on 2026-04-01 but infra/gpu from demo still bills" in sent[0].text
    texts = [json.loads(body)["text"] for _, _, _, body in receiver.requests]
    assert sent[0].text in texts
    assert alerts.check_and_send(cfg, engine, today=TODAY) == []  # deduped: once per resource and month
    later = [a.key for a in alerts.check_and_send(cfg, engine, today=date(2026, 7, 2)) if a.kind == "leftover_spend"]
    assert later == []  # the demo's data ends 2026-06-14: no July spend, nothing new

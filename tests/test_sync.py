"""portfolio.sync: the SyncRun ledger, idempotency, Replace windows, failure isolation, redaction,
the cursor, and config validation — driven through a real connector module (tests/connectors/scripted.py)
registered for the duration of each test.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

import connectors
from portfolio import config, records, storage, sync
from portfolio.errors import ConfigError, SyncError
from tests.connectors import scripted

T1 = datetime(2026, 11, 1, 6, 0, tzinfo=UTC)
DAYS = ["2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04", "2026-01-05"]


@pytest.fixture(autouse=True)
def scripted_registered(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setitem(connectors.REGISTRY, "scripted", "tests.connectors.scripted")
    scripted.CALLS.clear()
    yield
    scripted.CALLS.clear()


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(v)


def make_cfg(**conns: dict[str, Any]) -> config.Config:
    """A Config with one scripted connector per keyword: ``name={param: value}``."""
    text = ""
    for name, params in conns.items():
        text += f"[connectors.{name}]\n" + "".join(
            f"{k} = {toml_value(v)}\n" for k, v in {"type": "scripted", **params}.items()
        )
    return config.loads(text)


def cost_rows(engine: Engine) -> list[tuple[str, str, date, Decimal]]:
    frame = storage.read_frame(engine, records.CostRecord)
    return sorted(zip(frame.source, frame.app_id, frame.day, frame.amount, strict=True))


def ledger(engine: Engine) -> list[tuple[Any, ...]]:
    frame = storage.read_frame(engine, records.SyncRun).sort_values("id")
    return list(zip(frame.connector, frame.status, frame.rows_written, frame.rows_deleted, strict=True))


# ----------------------------------------------------------------------------- ledger


def test_every_run_is_in_the_ledger(engine: Engine) -> None:
    cfg = make_cfg(good={"days": DAYS[:3]}, bad={"days": DAYS[:2], "fail": "HTTP 503 upstream down"})
    outcome = sync.sync(cfg, engine, now=T1)
    assert not outcome.ok
    assert [(r.connector, r.status, r.rows_written) for r in outcome.runs] == [("good", "success", 3), ("bad", "failed", 0)]
    frame = storage.read_frame(engine, records.SyncRun).sort_values("id")
    assert frame.connector_type.tolist() == ["scripted", "scripted"]
    assert frame.status.tolist() == ["success", "failed"]
    assert frame.rows_written.tolist() == [3, 0]
    assert frame.error.isna().tolist() == [True, False]
    assert frame.error.iloc[1] == "bad: HTTP 503 upstream down"
    assert (frame.started == T1).all()
    assert all(f.tzinfo is not None and f >= T1 for f in frame.finished)


# ----------------------------------------------------------------------------- idempotency


def test_sync_twice_writes_nothing_the_second_time(engine: Engine) -> None:
    cfg = make_cfg(a={"days": DAYS, "amount": "12.34"})
    first = sync.sync(cfg, engine, now=T1).runs[0]
    before = cost_rows(engine)
    second = sync.sync(cfg, engine, now=T1 + timedelta(hours=1)).runs[0]
    assert (first.rows_written, second.rows_written, second.rows_deleted) == (5, 0, 0)
    assert second.status == "success"
    assert cost_rows(engine) == before
    assert [r[3] for r in before] == [Decimal("12.34")] * 5


def test_restated_amounts_overwrite(engine: Engine) -> None:
    sync.sync(make_cfg(a={"days": DAYS, "amount": "10.00"}), engine, now=T1)
    run = sync.sync(make_cfg(a={"days": DAYS[1:3], "amount": "10.05"}), engine, now=T1 + timedelta(days=1)).runs[0]
    assert run.rows_written == 2
    assert [r[3] for r in cost_rows(engine)] == [Decimal(x) for x in ("10.00", "10.05", "10.05", "10.00", "10.00")]


# ----------------------------------------------------------------------------- Replace


@pytest.mark.parametrize(
    ("window", "yielded", "kept", "deleted"),
    [
        pytest.param(["2026-01-01", "2026-01-03"], ["2026-01-02"], ["01-02", "01-04", "01-05"], 2, id="drops-stale-in-window"),
        pytest.param(["2026-01-02", "2026-01-04"], DAYS[1:4], ["01-01", "01-02", "01-03", "01-04", "01-05"], 0, id="nothing-stale"),
        pytest.param(["2026-01-01", "2026-01-05"], [], [], 5, id="empty-window-pull"),
        pytest.param(["2026-01-04", "2026-01-09"], ["2026-01-08"], ["01-01", "01-02", "01-03", "01-08"], 2, id="window-past-old-data"),
        pytest.param(["2025-12-01", "2025-12-31"], [], DAYS, 0, id="window-before-data"),
    ],
)
def test_replace_deletes_stale_rows_only_in_its_window(
    engine: Engine, window: list[str], yielded: list[str], kept: list[str], deleted: int
) -> None:
    sync.sync(make_cfg(a={"days": DAYS}, other={"days": DAYS, "app": "app-b"}), engine, now=T1)
    run = sync.sync(make_cfg(a={"days": yielded, "replace": window}), engine, now=T1 + timedelta(days=1)).runs[0]
    assert run.status == "success" and run.rows_deleted == deleted
    rows = cost_rows(engine)
    assert [r[2].strftime("%m-%d") for r in rows if r[0] == "a"] == [k[-5:] for k in kept]
    assert [r[2] for r in rows if r[0] == "other"] == [date.fromisoformat(d) for d in DAYS], "another source is untouched"


# ----------------------------------------------------------------------------- failures


@pytest.mark.parametrize(
    ("params", "error"),
    [
        pytest.param({"fail": "HTTP 401 /api/costs authentication refused"}, "a: HTTP 401 /api/costs authentication refused", id="connector-error"),
        pytest.param({"crash": "list index out of range"}, "a: RuntimeError: list index out of range", id="bug-in-connector"),
        pytest.param({"category": "hardware"}, "a: CostRecord.category = 'hardware'; expected one of infra, people, vendor, other", id="bad-enum"),
        pytest.param({"repeat": True}, "a: CostRecord {'source': 'a', 'app_id': 'app-a', 'day': datetime.date(2026, 1, 3), 'category': 'infra', 'service': 'compute'} yielded twice", id="duplicate-key"),
        pytest.param({"type": "nope"}, "unknown connector type 'nope'; known types: ", id="unknown-type"),
    ],
)
def test_a_failing_connector_keeps_earlier_data_and_does_not_stop_the_others(
    engine: Engine, params: dict[str, Any], error: str
) -> None:
    sync.sync(make_cfg(a={"days": DAYS[:2]}, b={"days": DAYS[:2], "app": "app-b"}), engine, now=T1)
    before = [r for r in cost_rows(engine) if r[0] == "a"]
    # a now yields three new days before failing: none of them may land
    cfg = make_cfg(a={"days": DAYS[2:], "amount": "9.99", **params}, b={"days": DAYS[:3], "app": "app-b"})
    runs = sync.sync(cfg, engine, now=T1 + timedelta(days=1)).runs
    assert [(r.connector, r.status) for r in runs] == [("a", "failed"), ("b", "success")]
    assert runs[0].error is not None and runs[0].error.startswith(error)
    assert [r for r in cost_rows(engine) if r[0] == "a"] == before
    assert [r[2].day for r in cost_rows(engine) if r[0] == "b"] == [1, 2, 3]
    assert ledger(engine)[-2:] == [("a", "failed", 0, 0), ("b", "success", 1, 0)]


def test_secrets_never_reach_the_error_the_ledger_or_the_log(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "tok-9f8e7d6c5b4a"
    monkeypatch.setenv("SCRIPTED_API_KEY", secret)
    fail = "GET https://svc:hunter2pass@costs.example.com/v1?token={token} refused token {token}"
    cfg = make_cfg(a={"token_env": "SCRIPTED_API_KEY", "fail": fail}, b={"token_env": "SCRIPTED_API_KEY", "crash": "bad {token}"})
    with caplog.at_level(logging.INFO):
        runs = sync.sync(cfg, engine, now=T1).runs
    assert runs[0].error == "a: GET https://***@costs.example.com/v1?token=*** refused token ***"
    assert runs[1].error == "b: RuntimeError: bad ***"
    stored = " ".join(storage.read_frame(engine, records.SyncRun).error.astype(str))
    for leaked in (secret, "hunter2pass"):
        assert leaked not in stored
        assert leaked not in caplog.text
    assert "refused token ***" in caplog.text


# ----------------------------------------------------------------------------- cursor


@pytest.mark.parametrize(
    ("history", "lookback", "now", "full", "since"),
    [
        pytest.param([], 3, T1, False, None, id="first-run-is-full"),
        pytest.param([(T1, None)], 3, T1 + timedelta(days=1), False, T1 - timedelta(days=3), id="last-success-minus-lookback"),
        pytest.param([(T1, None)], 0, T1 + timedelta(days=1), False, T1, id="no-lookback"),
        pytest.param(
            [(T1, None), (T1 + timedelta(days=1), "down")], 2, T1 + timedelta(days=2), False, T1 - timedelta(days=2),
            id="failed-run-does-not-move-it",
        ),
        pytest.param(
            [(T1, None), (T1 + timedelta(days=5), None)], 1, T1 + timedelta(days=6), False, T1 + timedelta(days=4),
            id="latest-success-wins",
        ),
        pytest.param([(T1, None)], 3, T1 + timedelta(days=1), True, None, id="full-resync"),
        pytest.param([(T1, None)], 0, T1 - timedelta(hours=2), False, T1 - timedelta(hours=2), id="never-after-run-start"),
    ],
)
def test_cursor_is_last_successful_start_minus_lookback(
    engine: Engine,
    history: list[tuple[datetime, str | None]],
    lookback: int,
    now: datetime,
    full: bool,
    since: datetime | None,
) -> None:
    for started, fail in history:
        params: dict[str, Any] = {"days": DAYS[:1], "lookback_days": lookback}
        if fail:
            params["fail"] = fail
        sync.sync(make_cfg(a=params), engine, now=started)
    scripted.CALLS.clear()
    run = sync.sync(make_cfg(a={"days": DAYS[:1], "lookback_days": lookback}), engine, full=full, now=now).runs[0]
    assert [("a", since)] == scripted.CALLS
    assert run.since == since
    stored = storage.read_frame(engine, records.SyncRun).sort_values("id").since.iloc[-1]
    assert pd.isna(stored) if since is None else stored == since


# ----------------------------------------------------------------------------- selection and config


def test_only_and_enabled_select_connectors(engine: Engine) -> None:
    cfg = make_cfg(a={"days": DAYS[:1]}, b={"days": DAYS[:1], "enabled": False}, c={"days": DAYS[:1]})
    assert [r.connector for r in sync.sync(cfg, engine).runs] == ["a", "c"]
    assert [r.connector for r in sync.sync(cfg, engine, only=["b"]).runs] == ["b"]
    with pytest.raises(SyncError, match="no connector named zz in config; configured: a, b, c"):
        sync.sync(cfg, engine, only=["zz"])


@pytest.mark.parametrize(
    ("text", "names"),
    [
        pytest.param("[teams.search]\nhourly_rate = 'lots'\n", "teams.search.hourly_rate", id="team-rate-type"),
        pytest.param("[teams.search]\ncapacity_hours = 0\n", "teams.search.capacity_hours", id="team-capacity-zero"),
        pytest.param("[connectors.bill]\npath = 'x.csv'\n", "connectors.bill.type", id="connector-without-type"),
        pytest.param("[connectors.bill]\ntype = 'focus'\nlookback_days = -1\n", "connectors.bill.lookback_days", id="negative-lookback"),
        pytest.param("[rules]\nzombie_window_days = 0\n", "rules.zombie_window_days", id="rule-zero"),
        pytest.param("[rules]\nzombie_days = 3\n", "rules.zombie_days", id="unknown-rule"),
        pytest.param("[[apps]]\nid = 'a'\nteam = 't'\nstage = 'beta'\n", "apps.0.stage", id="app-stage"),
        pytest.param("[[apps]]\nid = 'a'\nteam = 't'\n[[apps]]\nid = 'a'\nteam = 't'\n", "apps[1].id 'a' is declared twice", id="duplicate-app"),
        pytest.param("curency = 'EUR'\n", "curency", id="misspelt-top-level-key"),
        pytest.param("currency = \n", "not valid TOML", id="not-toml"),
    ],
)
def test_config_errors_name_the_key(text: str, names: str) -> None:
    with pytest.raises(ConfigError) as exc:
        config.loads(text, where="portfolio.toml")
    assert str(exc.value).startswith("portfolio.toml: ")
    assert names in str(exc.value)


def test_replace_keys_deletes_stale_rows_of_those_keys_only(engine: Engine) -> None:
    """A ticket that moved day (opened -> closed) replaces its earlier row; other rows stay."""
    sync.sync(make_cfg(a={"days": DAYS[:3]}), engine, now=T1)
    # the row of DAYS[1] now belongs to another app (same day, new natural key); days 0 and 2 not re-read
    run = sync.sync(make_cfg(a={"days": [DAYS[1]], "app": "app-b", "replace_days": [DAYS[1]]}), engine, now=T1 + timedelta(days=1)).runs[0]
    assert (run.status, run.rows_written, run.rows_deleted) == ("success", 1, 1)
    assert [(r[1], str(r[2])) for r in cost_rows(engine)] == [("app-a", DAYS[0]), ("app-a", DAYS[2]), ("app-b", DAYS[1])]


# ----------------------------------------------------------------------------- partitions

JAN_FEB = ["2026-01-01", "2026-01-02", "2026-02-01"]


def partitions(engine: Engine) -> list[tuple[str, str, int]]:
    frame = storage.read_frame(engine, records.SyncPartition)
    return sorted(zip(frame.value, frame.fingerprint, frame.rows, strict=True))


def test_unchanged_partitions_are_skipped_changed_ones_rewritten(engine: Engine) -> None:
    first = sync.sync(make_cfg(bill={"days": JAN_FEB, "partitioned": "fp-1"}), engine, now=T1).runs[0]
    assert (first.status, first.rows_written) == ("success", 3)
    assert partitions(engine) == [("2026-01", "fp-1", 2), ("2026-02", "fp-1", 1)]

    # Same fingerprint, different amounts: the sync trusts the fingerprint and skips the rows — the
    # only way to see that nothing was re-read or replaced (a connector's fingerprint covers its rows)
    same = sync.sync(make_cfg(bill={"days": JAN_FEB, "partitioned": "fp-1", "amount": "9"}), engine, now=T1).runs[0]
    assert (same.status, same.rows_written, same.rows_deleted) == ("success", 0, 0)
    assert {r[3] for r in cost_rows(engine)} == {Decimal("1.000000")}

    # a new fingerprint: that period is written again, and its rows no longer yielded are deleted
    changed = sync.sync(make_cfg(bill={"days": JAN_FEB[1:], "partitioned": "fp-2", "amount": "2"}), engine, now=T1).runs[0]
    assert (changed.status, changed.rows_written, changed.rows_deleted) == ("success", 2, 1)
    assert [(str(r[2]), r[3]) for r in cost_rows(engine)] == [("2026-01-02", Decimal("2.000000")), ("2026-02-01", Decimal("2.000000"))]
    assert partitions(engine) == [("2026-01", "fp-2", 1), ("2026-02", "fp-2", 1)]


def test_a_partition_whose_rows_went_missing_is_written_again(engine: Engine) -> None:
    sync.sync(make_cfg(bill={"days": JAN_FEB, "partitioned": "fp-1"}), engine, now=T1)
    table = storage.table_of(records.CostRecord)
    with engine.begin() as conn:  # rows deleted behind the sync's back (a restore, a manual fix)
        conn.execute(sa.delete(table).where(table.c.day == date(2026, 1, 1)))
    run = sync.sync(make_cfg(bill={"days": JAN_FEB, "partitioned": "fp-1"}), engine, now=T1).runs[0]
    assert (run.status, run.rows_written) == ("success", 1)
    assert len(cost_rows(engine)) == 3


def test_rows_of_another_partition_after_a_marker_are_refused(engine: Engine) -> None:
    run = sync.sync(make_cfg(bill={"days": JAN_FEB, "partitioned": "fp-1", "mixed": True}), engine, now=T1).runs[0]
    assert run.status == "failed"
    assert "after Partition billing_period='2026-01' hold other billing_period values" in run.error
    assert cost_rows(engine) == [] and partitions(engine) == []

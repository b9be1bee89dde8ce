"""OpenCost connector against a real local HTTP server (tests/servers.PayloadServer) serving the
recorded real ``/allocation/compute`` answer from OpenCost's API docs, and variants derived from it
(tests/fixtures/opencost/: a label aggregation with ``__idle__`` and ``__unallocated__``; error
status, empty window, garbage built in the tests)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy.engine import Engine

from connectors import opencost
from portfolio import config, records, storage, sync
from portfolio.errors import ConnectorError
from tests.servers import SHARED_DATA, PayloadServer, Reply

RECORDED = SHARED_DATA / "recorded" / "opencost" / "allocation_compute_window2d_aggregate_namespace.json"
LABEL_APP = Path(__file__).resolve().parents[1] / "fixtures" / "opencost" / "allocation_compute_label_app.json"
U = records.UNALLOCATED
D = Decimal


def answered_for(body: Any, window: str) -> Any:
    """``body`` as OpenCost answers a request for ``window``: each allocation's window is the one
    asked (the recorded answer is of 2023-01-18..20)."""
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        return body
    start, end = window.split(",")
    out = copy.deepcopy(body)
    for allocation_set in out["data"]:
        for alloc in (allocation_set or {}).values():
            if isinstance(alloc, dict) and "window" in alloc:
                alloc["window"] = {"start": start, "end": end}
                alloc["start"], alloc["end"] = start, end
    return out


def serve(body: object, status: int = 200, headers: dict[str, str] | None = None, *, same_window: bool = False) -> PayloadServer:
    """A real server answering ``body`` for the window asked (``same_window``: always as recorded)."""

    def handler(method: str, path: str, hdrs: dict[str, str], _body: bytes) -> Reply:
        if not urlsplit(path).path.startswith("/allocation"):
            return Reply(404, {"code": 404, "message": "not found"})
        window = parse_qs(urlsplit(path).query).get("window", [""])[0]
        return Reply(status, body if same_window or not window else answered_for(body, window), headers or {})

    return PayloadServer(handler)


def make_config(engine: Engine, url: str, extra: str = "", apps: str = "", days: int = 2):
    text = f"""database_url = "{engine.url}"
{apps}
[connectors.k8s]
type = "opencost"
url = "{url}"
days = {days}
retries = 0
{extra}
"""
    return config.loads(text)


def run(cfg, engine: Engine, **kw) -> records.SyncRun:
    return sync.sync(cfg, engine, only=["k8s"], **kw).runs[0]


def costs(engine: Engine) -> dict[Any, Any]:
    frame = storage.read_frame(engine, records.CostRecord)
    assert set(frame.category) <= {"infra"}
    return {(r.app_id, r.day, r.service): r.amount for r in frame.itertuples()}


def last_days(n: int) -> list[date]:
    today = datetime.now(UTC).date()
    return [today - timedelta(days=i) for i in range(n, 0, -1)]


APPS = """
[[apps]]
id = "churn-predictor"
team = "growth"
cost_tags = ["churn"]
"""


@pytest.mark.parametrize(
    ("payload", "per_day"),
    [
        pytest.param(
            RECORDED,
            {
                ("kube-system", "cpu"): "0.408822",
                ("kube-system", "ram"): "0.016647",
                ("opencost", "cpu"): "0.018170",
                ("opencost", "ram"): "0.012474",
                # prometheus: every cost 0 -> no rows
            },
            id="recorded-namespaces",
        ),
        pytest.param(
            LABEL_APP,
            {
                (U, "idle cpu"): "0.408822",
                (U, "idle ram"): "0.016647",
                ("churn-predictor", "cpu"): "0.018170",  # label value "churn" -> app via cost_tags
                ("churn-predictor", "ram"): "0.012474",
                ("fraud", "cpu"): "0.123457",  # 0.123456789; its ram 1.23e-7 rounds to nothing
                ("fraud", "shared"): "0.050000",
                (U, "cpu"): "0.190000",  # 0.2 + adjustment -0.01
                (U, "gpu"): "1.000000",
                (U, "storage"): "0.500000",
                (U, "network"): "0.250000",
                (U, "load balancer"): "0.100000",
            },
            id="label-app-idle-unallocated",
        ),
    ],
)
def test_allocation_days_to_cost_records(engine, payload, per_day):
    body = json.loads(payload.read_text())
    with serve(body) as server:
        result = run(make_config(engine, server.url, apps=APPS), engine)
        assert result.status == "success", result.error
        sent = [urlsplit(p) for _, p, _, _ in server.requests]
    days = last_days(2)
    assert costs(engine) == {(app, d, svc): D(v) for d in days for (app, svc), v in per_day.items()}
    assert [u.path for u in sent] == ["/allocation/compute"] * 2
    queries = [parse_qs(u.query) for u in sent]
    assert [q["window"] for q in queries] == [
        [f"{d.isoformat()}T00:00:00Z,{(d + timedelta(days=1)).isoformat()}T00:00:00Z"] for d in days
    ]
    assert {(q["aggregate"][0], q["accumulate"][0]) for q in queries} == {("label:app", "false")}


def test_path_label_token_are_configurable(engine, monkeypatch):
    monkeypatch.setenv("OPENCOST_TOKEN", "s3cr3t-token-value")
    body = json.loads(LABEL_APP.read_text())
    with serve(body) as server:
        extra = 'path = "/allocation"\nlabel = "team"\ntoken_env = "OPENCOST_TOKEN"'
        result = run(make_config(engine, server.url, extra, days=1), engine)
        assert result.status == "success", result.error
        (_, path, headers, _), = server.requests
    assert urlsplit(path).path == "/allocation"
    assert parse_qs(urlsplit(path).query)["aggregate"] == ["label:team"]
    assert headers["Authorization"] == "Bearer s3cr3t-token-value"
    assert "s3cr3t" not in path


def test_sync_twice_same_rows(engine):
    body = json.loads(LABEL_APP.read_text())
    with serve(body) as server:
        cfg = make_config(engine, server.url, apps=APPS)
        first = run(cfg, engine)
        assert first.status == "success" and first.rows_written == 22
        before = storage.read_frame(engine, records.CostRecord)
        second = run(cfg, engine, full=True)
    assert (second.status, second.rows_written, second.rows_deleted) == ("success", 0, 0)
    assert storage.read_frame(engine, records.CostRecord).equals(before)


def test_restated_day_replaces_old_rows(engine):
    body = json.loads(LABEL_APP.read_text())
    with serve(body) as server:
        assert run(make_config(engine, server.url, apps=APPS), engine).status == "success"
    del body["data"][0]["fraud"]
    body["data"][0]["churn"]["cpuCost"] = 1.5
    with serve(body) as server:
        result = run(make_config(engine, server.url, apps=APPS), engine, full=True)
    assert (result.status, result.rows_deleted) == ("success", 4)  # fraud cpu + shared, two days
    got = costs(engine)
    assert not any(app == "fraud" for app, _, _ in got)
    assert {got[("churn-predictor", d, "cpu")] for d in last_days(2)} == {D("1.500000")}


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        pytest.param(Reply(500, "upstream prometheus timed out", {"Content-Type": "text/plain"}),
                     "k8s: HTTP 500 /allocation/compute upstream prometheus timed out", id="error-500"),
        pytest.param(Reply(401, {"message": "no"}), "k8s: HTTP 401 /allocation/compute authentication refused: check the token variable", id="unauthorised"),
        pytest.param(Reply(200, "<html>oops</html>", {"Content-Type": "text/html"}),
                     "k8s: HTTP 200 /allocation/compute answer is not JSON", id="garbage-html"),
        pytest.param(Reply(200, {"code": 200, "data": {"kube-system": {}}}),
                     'k8s: /allocation/compute unexpected payload shape: expected {"code": 200, "data": [ {name: allocation} ]}', id="data-not-a-list"),
        pytest.param(Reply(200, {"code": 200, "data": [{"a": {"name": "a", "cpuCost": "1.5"}}]}),
                     "k8s: /allocation/compute unexpected payload shape: cpuCost is str, not a number", id="cost-not-a-number"),
        pytest.param(Reply(200, {"code": 500, "message": "bad window"}),
                     "k8s: /allocation/compute OpenCost answered code 500: bad window", id="error-code-in-body"),
    ],
)
def test_bad_answers_clear_error_nothing_lost(engine, reply, error):
    good = json.loads(RECORDED.read_text())
    with serve(good) as server:
        assert run(make_config(engine, server.url), engine).status == "success"
    before = storage.read_frame(engine, records.CostRecord)
    assert len(before) == 8

    server = PayloadServer(lambda *_: reply)
    with server:
        result = run(make_config(engine, server.url), engine, full=True)
    assert result.status == "failed"
    assert result.error == error
    assert storage.read_frame(engine, records.CostRecord).equals(before)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"code": 200, "status": "success", "data": []}, id="no-sets"),
        pytest.param({"code": 200, "status": "success", "data": [{}]}, id="empty-set"),
        pytest.param({"code": 200, "status": "success", "data": [None]}, id="null-set"),
    ],
)
def test_empty_window_writes_nothing_and_keeps_earlier_rows(engine, body):
    with serve(json.loads(RECORDED.read_text())) as server:
        assert run(make_config(engine, server.url), engine).status == "success"
    before = storage.read_frame(engine, records.CostRecord)
    with serve(body) as server:
        result = run(make_config(engine, server.url), engine, full=True)
    assert (result.status, result.rows_written, result.rows_deleted) == ("success", 0, 0)
    assert storage.read_frame(engine, records.CostRecord).equals(before)


@pytest.mark.parametrize(
    ("since", "days", "expected"),
    [
        pytest.param(None, 3, 3, id="first-run-lookback"),
        pytest.param(timedelta(days=5), 30, 5, id="since-cursor"),
        pytest.param(timedelta(hours=2), 30, 0, id="since-today-nothing-complete"),
    ],
)
def test_days_pulled(since, days, expected):
    now = datetime.now(UTC)
    cfg = config.loads(f'[connectors.k8s]\ntype = "opencost"\nurl = "http://x"\ndays = {days}').connectors["k8s"]
    got = opencost._days(cfg, None if since is None else now - since, now.date())
    assert len(got) == expected
    assert all(d < now.date() for d in got)
    assert got == sorted(got)


def test_unreachable_server_is_a_connector_error():
    cfg = config.loads('[connectors.k8s]\ntype = "opencost"\nurl = "http://127.0.0.1:9"\ndays = 1\nretries = 0').connectors["k8s"]
    with pytest.raises(ConnectorError, match=r"k8s: /allocation/compute source unreachable"):
        list(opencost.pull(cfg, None))


def test_unmounted_and_other_buckets_are_unallocated_of_their_kind(engine):
    """``__unmounted__`` (volumes no pod mounts) was booked as an app named "__unmounted__" with
    team ``_unknown``; every ``__...__`` bucket is unallocated spend, its kind kept in the service."""
    body = json.loads(LABEL_APP.read_text())
    allocations = body["data"][0]
    unmounted = copy.deepcopy(allocations["__unallocated__"])
    for field in list(unmounted):
        if field.endswith(("Cost", "CostAdjustment")):
            unmounted[field] = 0.0
    unmounted.update(name="__unmounted__", pvCost=0.75, totalCost=0.75)
    allocations["__unmounted__"] = unmounted
    allocations["cluster-one/__idle__"] = {**copy.deepcopy(unmounted), "name": "cluster-one/__idle__", "pvCost": 0.0, "gpuCost": 2.0}
    with serve(body) as server:
        result = run(make_config(engine, server.url, apps=APPS, days=1), engine)
    assert result.status == "success", result.error
    got = {(app, svc): amount for (app, _, svc), amount in costs(engine).items()}
    assert got[(U, "unmounted storage")] == D("0.750000")
    assert got[(U, "idle gpu")] == D("2.000000")
    assert got[(U, "storage")] == D("0.500000")  # __unallocated__ keeps its plain services
    assert {app for app, _ in got} == {U, "churn-predictor", "fraud"}


def test_an_answer_for_another_window_is_refused(engine):
    """A server answering every day's request with the same (recorded) window booked that day's
    costs on each day asked: refused, naming the window, and nothing written."""
    with serve(json.loads(RECORDED.read_text())) as server:
        assert run(make_config(engine, server.url), engine).status == "success"
    before = storage.read_frame(engine, records.CostRecord)
    with serve(json.loads(RECORDED.read_text()), same_window=True) as server:
        result = run(make_config(engine, server.url, days=3), engine, full=True)
    day = last_days(3)[0]
    assert result.status == "failed"
    assert result.error == (
        "k8s: /allocation/compute OpenCost answered the window 2023-01-18T11:38:45Z .. 2023-01-20T11:38:45Z "
        f"to a request for {day} ({day}T00:00:00Z .. {day + timedelta(days=1)}T00:00:00Z): refused, "
        "it would book those costs on the day asked"
    )
    assert storage.read_frame(engine, records.CostRecord).equals(before)

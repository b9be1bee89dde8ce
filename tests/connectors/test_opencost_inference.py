"""OpenCost inference cost (``inference = true``): ``/inferenceCost/total`` beside the allocation
API, both from a real local HTTP server. The inference answer (tests/fixtures/opencost/
inference_cost_total.json) is shaped as opencost/opencost's ``pkg/inferencecost`` writes it:
``protocol.WriteData`` of an ``InferenceCostSet`` -- ``{"inferenceCosts": {key: InferenceCostResponse},
"window": ...}`` -- aggregated by namespace and model_name (a namespace-less entry keeps
``namespace: ""``). Expectations are computed by hand."""

from __future__ import annotations

import copy
import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy.engine import Engine

from portfolio import records, storage
from tests.connectors import test_opencost as oc
from tests.servers import PayloadServer, Reply

INFERENCE = Path(__file__).resolve().parents[1] / "fixtures" / "opencost" / "inference_cost_total.json"
U = records.UNALLOCATED
D = Decimal
LLAMA, MISTRAL, QWEN = "meta-llama/Llama-3.1-8B-Instruct", "mistralai/Mistral-7B-Instruct-v0.3", "Qwen/Qwen2.5-7B-Instruct"


def for_window(body: Any, window: str) -> Any:
    """The inference answer for the window asked (the fixture is of 2023-01-18)."""
    if not isinstance(body.get("data"), dict):
        return body
    start, end = window.split(",")
    out = copy.deepcopy(body)
    out["data"]["window"] = {"start": start, "end": end}
    for entry in out["data"]["inferenceCosts"].values():
        entry["window"] = {"start": start, "end": end}
    return out


def serve(allocation: Any, inference: Any, *, inference_window_as_recorded: bool = False) -> PayloadServer:
    def handler(method: str, path: str, hdrs: dict[str, str], _body: bytes) -> Reply:
        parts = urlsplit(path)
        window = parse_qs(parts.query).get("window", [""])[0]
        if parts.path.startswith("/allocation"):
            return Reply(200, oc.answered_for(allocation, window))
        if parts.path == "/inferenceCost/total":
            return Reply(200, inference if inference_window_as_recorded else for_window(inference, window))
        return Reply(404, {"code": 404, "message": "not found"})

    return PayloadServer(handler)


def usage(engine: Engine) -> dict[Any, float]:
    frame = storage.read_frame(engine, records.UsageRecord)
    return {(r.app_id, r.day, r.metric, r.model): r.value for r in frame.itertuples()}


def cost_models(engine: Engine) -> dict[Any, str]:
    frame = storage.read_frame(engine, records.CostRecord)
    return {(r.app_id, r.service): r.model for r in frame.itertuples()}


def test_inference_cost_per_model_carved_out_of_allocation(engine):
    allocation = json.loads(oc.LABEL_APP.read_text())
    inference = json.loads(INFERENCE.read_text())
    with serve(allocation, inference) as server:
        cfg = oc.make_config(engine, server.url, "inference = true", apps=oc.APPS)
        result = oc.run(cfg, engine)
        assert result.status == "success", result.error
        sent = [urlsplit(p) for _, p, _, _ in server.requests]
    days = oc.last_days(2)
    per_day = {
        (U, "idle cpu"): "0.408822",
        (U, "idle ram"): "0.016647",
        # churn's inference 0.02 + 0.005 = 0.025 comes out of its gpu (0), cpu 0.01817 (all), ram 0.012474 - 0.00683
        ("churn-predictor", "ram"): "0.005644",
        ("churn-predictor", f"inference {LLAMA}"): "0.020000",
        ("churn-predictor", f"inference {MISTRAL}"): "0.005000",
        ("fraud", "cpu"): "0.123457",
        ("fraud", "shared"): "0.050000",
        # the namespace-less Qwen 1.5 comes out of the unlabelled workloads: gpu 1.0, cpu 0.19, storage 0.5 - 0.31
        (U, "storage"): "0.190000",
        (U, "network"): "0.250000",
        (U, "load balancer"): "0.100000",
        (U, f"inference {QWEN}"): "1.500000",
    }
    got = oc.costs(engine)
    assert got == {(app, d, svc): D(v) for d in days for (app, svc), v in per_day.items()}
    # nothing booked twice: each day still adds up to OpenCost's allocation total
    allocation_total = D("0.408822") + D("0.016647") + D("0.018170") + D("0.012474") + D("0.123457") + D("0.05") \
        + D("0.19") + D("1") + D("0.5") + D("0.25") + D("0.1")
    for d in days:
        assert sum(v for (_, day, _), v in got.items() if day == d) == allocation_total
    models = cost_models(engine)
    assert models[("churn-predictor", f"inference {LLAMA}")] == LLAMA
    assert models[(U, f"inference {QWEN}")] == QWEN
    assert models[("churn-predictor", "ram")] == ""
    assert usage(engine) == {
        key: value
        for d in days
        for key, value in {
            ("churn-predictor", d, "input_tokens", LLAMA): 1_200_000.0,
            ("churn-predictor", d, "output_tokens", LLAMA): 300_000.0,
            ("churn-predictor", d, "input_tokens", MISTRAL): 100_000.0,
            ("churn-predictor", d, "output_tokens", MISTRAL): 50_000.0,
            (U, d, "input_tokens", QWEN): 2_000_000.0,
            (U, d, "output_tokens", QWEN): 500_000.0,
        }.items()
    }
    inference_queries = [parse_qs(u.query) for u in sent if u.path == "/inferenceCost/total"]
    assert [q["window"] for q in inference_queries] == [
        [f"{d.isoformat()}T00:00:00Z,{(d + timedelta(days=1)).isoformat()}T00:00:00Z"] for d in days
    ]
    assert {(q["aggregate"][0], q["costBasis"][0]) for q in inference_queries} == {("namespace,model_name", "allocation")}


def test_resync_same_rows_and_off_by_default(engine):
    allocation = json.loads(oc.LABEL_APP.read_text())
    inference = json.loads(INFERENCE.read_text())
    with serve(allocation, inference) as server:
        cfg = oc.make_config(engine, server.url, "inference = true", apps=oc.APPS)
        first = oc.run(cfg, engine)
        assert first.status == "success", first.error
        second = oc.run(cfg, engine, full=True)
        assert (second.status, second.rows_written, second.rows_deleted) == ("success", 0, 0)
        # switched off: the allocation alone, no inference request, the model rows replaced
        plain = oc.run(oc.make_config(engine, server.url, apps=oc.APPS), engine, full=True)
        assert plain.status == "success", plain.error
        paths = [urlsplit(p).path for _, p, _, _ in server.requests]
    assert paths.count("/inferenceCost/total") == 4
    assert not any(svc.startswith("inference") for (_, _, svc) in oc.costs(engine))
    assert {v for (app, _, svc), v in oc.costs(engine).items() if (app, svc) == ("churn-predictor", "cpu")} == {D("0.018170")}


@pytest.mark.parametrize(
    ("change", "error"),
    [
        pytest.param(
            lambda b: b["data"]["inferenceCosts"]["churn/meta-llama/Llama-3.1-8B-Instruct"].update(totalCost=9.0),
            "the inference cost of app 'churn-predictor' (9.005000) exceeds its allocation and the unlabelled "
            "workloads' (0.570644)",  # churn 0.030644 + unlabelled 2.04 less Qwen's 1.5 taken first
            id="more-than-allocated",
        ),
        pytest.param(
            lambda b: b["data"]["inferenceCosts"]["churn/meta-llama/Llama-3.1-8B-Instruct"].update(promptTokens="many"),
            "k8s: /inferenceCost/total unexpected payload shape: promptTokens is str, not a number",
            id="tokens-not-a-number",
        ),
        pytest.param(
            lambda b: b["data"]["inferenceCosts"]["churn/meta-llama/Llama-3.1-8B-Instruct"]["properties"].update(modelName=""),
            "k8s: /inferenceCost/total inference cost 'churn/meta-llama/Llama-3.1-8B-Instruct' names no model",
            id="no-model",
        ),
        pytest.param(
            lambda b: b.update(data=[]),
            "k8s: /inferenceCost/total unexpected payload shape: data.inferenceCosts is not an object",
            id="data-not-an-object",
        ),
    ],
)
def test_bad_inference_answers_refused_earlier_data_intact(engine, change, error):
    allocation = json.loads(oc.LABEL_APP.read_text())
    with serve(allocation, json.loads(INFERENCE.read_text())) as server:
        assert oc.run(oc.make_config(engine, server.url, "inference = true", apps=oc.APPS), engine).status == "success"
    before = storage.read_frame(engine, records.CostRecord)
    bad = json.loads(INFERENCE.read_text())
    change(bad)
    with serve(allocation, bad) as server:
        result = oc.run(oc.make_config(engine, server.url, "inference = true", apps=oc.APPS), engine, full=True)
    assert result.status == "failed"
    assert error in (result.error or "")
    assert storage.read_frame(engine, records.CostRecord).equals(before)


def test_inference_answer_for_another_window_refused(engine):
    allocation = json.loads(oc.LABEL_APP.read_text())
    with serve(allocation, json.loads(INFERENCE.read_text()), inference_window_as_recorded=True) as server:
        result = oc.run(oc.make_config(engine, server.url, "inference = true", apps=oc.APPS, days=1), engine)
    assert result.status == "failed"
    assert "k8s: /inferenceCost/total OpenCost answered the window 2023-01-18T00:00:00Z .. 2023-01-19T00:00:00Z" in (result.error or "")
    assert storage.read_frame(engine, records.CostRecord).empty

"""The App page's Tokens section (Streamlit AppTest on a private copy of the demo database with
the token usage and vendor costs the GenAI connectors write: a bill, and a gateway estimate of it)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from streamlit.testing.v1 import AppTest

from portfolio import records, storage
from tests.dashboard.test_pages import TODAY, assert_clean, open_page, own_demo_url  # noqa: F401 (fixture)

APP_ID = "email-send-time"
MODEL = "gpt-4o-mini-2024-07-18"


def add_genai_rows(url: str) -> None:
    day = TODAY.replace(day=1) - timedelta(days=10)  # inside the default period (the last full months)
    engine = storage.make_engine(url)
    with engine.begin() as conn:
        storage.upsert(conn, records.CostRecord, [
            records.CostRecord(source="oai", app_id=APP_ID, day=day, category="vendor", service=f"{MODEL}, input",
                               amount=Decimal("3.00"), billing_period=day.isoformat(), model=MODEL),
            records.CostRecord(source="gw", app_id=APP_ID, day=day, category="vendor", service="gpt-4o-mini",
                               amount=Decimal("3.60"), model="gpt-4o-mini", estimated=True),
        ])
        storage.upsert(conn, records.UsageRecord, [
            records.UsageRecord(source="oai", app_id=APP_ID, day=day, metric=m, model=MODEL, value=v)
            for m, v in (("input_tokens", 1_500_000.0), ("output_tokens", 500_000.0), ("requests", 2_000.0))
        ])


def test_tokens_section_shows_unit_cost_and_flags_the_drift(own_demo_url: str) -> None:  # noqa: F811
    add_genai_rows(own_demo_url)
    at = AppTest.from_file(str(open_page.__globals__["APP"]), default_timeout=60)
    at.query_params["app"] = APP_ID
    open_page("app", at)
    assert_clean(at)
    assert "Tokens" in [s.value for s in at.subheader]
    table = next(d.value for d in at.dataframe if "cost_per_1m_tokens" in d.value.columns)
    row = table.set_index("model").loc[MODEL]
    assert (row["tokens"], row["requests"], row["cost"]) == (2_000_000, 2_000, 3.0)
    assert row["cost_per_1m_tokens"] == 1.5 and row["cost_per_request"] == 0.0015
    assert "gpt-4o-mini" not in set(table["model"])  # the estimate a bill covers is not counted
    warning = " ".join(w.value for w in at.warning)
    assert "+20.0%" in warning and "estimated $3.60 against billed $3.00" in warning


def test_app_without_tokens_has_no_tokens_section(own_demo_url: str) -> None:  # noqa: F811
    at = AppTest.from_file(str(open_page.__globals__["APP"]), default_timeout=60)
    at.query_params["app"] = APP_ID
    open_page("app", at)
    assert_clean(at)
    assert "Tokens" not in [s.value for s in at.subheader]


LLAMA = "meta-llama/Llama-3.1-8B-Instruct"


def test_self_hosted_against_api_line(own_demo_url: str) -> None:  # noqa: F811
    add_genai_rows(own_demo_url)
    day = TODAY.replace(day=1) - timedelta(days=10)
    engine = storage.make_engine(own_demo_url)
    with engine.begin() as conn:  # OpenCost's inference cost of a self-hosted Llama in the same app
        storage.upsert(conn, records.CostRecord, [
            records.CostRecord(source="k8s", app_id=APP_ID, day=day, category="infra", service=f"inference {LLAMA}",
                               amount=Decimal("0.80"), model=LLAMA),
        ])
        storage.upsert(conn, records.UsageRecord, [
            records.UsageRecord(source="k8s", app_id=APP_ID, day=day, metric=m, model=LLAMA, value=v)
            for m, v in (("input_tokens", 3_000_000.0), ("output_tokens", 1_000_000.0))
        ])
    at = AppTest.from_file(str(open_page.__globals__["APP"]), default_timeout=60)
    at.query_params["app"] = APP_ID
    open_page("app", at)
    assert_clean(at)
    line = next(m.value for m in at.markdown if "Self-hosted against API" in m.value).replace("\\", "")  # markdown escapes
    # self-hosted 0.80 / 4M tokens = $0.20 per 1M; API: the bill 3.00 / 2M tokens = $1.50 per 1M
    assert "self-hosted models $0.2000 per 1M tokens (4,000,000 tokens)" in line
    assert "API models $1.5000 per 1M tokens (2,000,000 tokens)" in line


def test_no_self_hosted_line_with_api_models_only(own_demo_url: str) -> None:  # noqa: F811
    add_genai_rows(own_demo_url)
    at = AppTest.from_file(str(open_page.__globals__["APP"]), default_timeout=60)
    at.query_params["app"] = APP_ID
    open_page("app", at)
    assert_clean(at)
    assert not any("Self-hosted against API" in m.value for m in at.markdown)

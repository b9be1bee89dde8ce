"""FOCUS token lines as token usage: Bedrock, Azure OpenAI and Vertex AI lines of a FOCUS 1.2 export
and a FOCUS 1.3 one (``ServiceProviderName``/``HostProviderName``), hand-written in the shape those
providers' exports take (tests/fixtures/focus/genai_tokens_focus1{2,3}.csv: ``ConsumedQuantity`` in
``ConsumedUnit`` ``1K Tokens``/``1000 Tokens``/``Tokens``/``1M Tokens``, direction and model in
``SkuId``/``SkuMeter``/``ChargeDescription``). The shared samples (/work/shared/data/focus) hold no
token line. Expected figures computed by hand; synced into a real database (both backends)."""

from __future__ import annotations

import shutil
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy.engine import Engine

from portfolio import records, storage
from tests.connectors.test_focus import FIXTURES, costs, make_config, run, totals

D = Decimal
U = records.UNALLOCATED
HAIKU, GPT, GEMINI, SONNET = "USE1-Claude3Haiku", "gpt-4o-mini-0718", "Gemini 2.0 Flash", "USE1-Claude3.5Sonnet"


def usage(engine: Engine) -> dict[Any, float]:
    frame = storage.read_frame(engine, records.UsageRecord)
    return {(r.app_id, r.day, r.model, r.metric): r.value for r in frame.itertuples()}


def test_bedrock_azure_vertex_token_lines_become_usage(tmp_path, engine):
    shutil.copy(FIXTURES / "genai_tokens_focus12.csv", tmp_path / "bill.csv")
    cfg = make_config(tmp_path, engine, 'path = "bill.csv"\napp_tag_keys = ["application"]')
    result = run(cfg, engine)
    assert result.status == "success", result.error
    d1, d2 = date(2025, 3, 1), date(2025, 3, 2)
    assert usage(engine) == {
        ("support-bot", d1, HAIKU, "input_tokens"): 1_500_000.0,  # 1500 x "1K Tokens"
        ("support-bot", d1, HAIKU, "output_tokens"): 200_000.0,
        ("support-bot", d1, HAIKU, "cached_input_tokens"): 800_000.0,  # "cache read" in SkuId/description
        ("support-bot", d2, HAIKU, "input_tokens"): 1_000_000.0,
        (U, d2, HAIKU, "input_tokens"): 200_000.0,  # untagged: unallocated, never dropped
        ("search-assist", d1, GPT, "input_tokens"): 2_000_000.0,  # 2000 x "1000 Tokens", meter "...-Inp-glbl Tokens"
        ("search-assist", d1, GPT, "output_tokens"): 500_000.0,
        ("search-assist", d1, GEMINI, "input_tokens"): 3_000_000.0,  # unit "Tokens"
        ("search-assist", d1, GEMINI, "output_tokens"): 250_000.0,
        # the grounding line (1 x "1M Tokens") names no direction: reported, not counted; EC2 hours are no tokens
    }
    assert any("1 token line(s) name neither input, output nor cache" in w and "Gemini 2.0 Flash Grounding" in w
               for w in (result.warnings or "").splitlines()), result.warnings
    # the cost side is unchanged: every line is infra cost, the bill reconciles
    assert totals(engine) == {("2025-03", "USD"): D("4.384000")}
    got = costs(engine)
    assert got[("support-bot", d1, "infra", "Amazon Bedrock")][0] == D("0.649000")  # 0.375 + 0.25 + 0.024
    assert got[("search-assist", d1, "infra", "Vertex AI")][0] == D("0.435000")  # 0.30 + 0.10 + 0.035


def test_resync_same_rows_and_token_lines_removed_from_export(tmp_path, engine):
    shutil.copy(FIXTURES / "genai_tokens_focus12.csv", tmp_path / "bill.csv")
    cfg = make_config(tmp_path, engine, 'path = "bill.csv"\napp_tag_keys = ["application"]')
    assert run(cfg, engine).status == "success"
    before = usage(engine)
    again = run(cfg, engine, full=True)
    assert again.status == "success", again.error
    assert usage(engine) == before
    lines = (tmp_path / "bill.csv").read_text().splitlines()
    (tmp_path / "bill.csv").write_text("\n".join(line for line in lines if "Claude3Haiku-output" not in line) + "\n")
    assert run(cfg, engine, full=True).status == "success"
    after = usage(engine)
    assert ("support-bot", date(2025, 3, 1), HAIKU, "output_tokens") not in after
    assert len(after) == len(before) - 1


def test_focus_13_service_and_host_provider_with_tokens(tmp_path, engine):
    shutil.copy(FIXTURES / "genai_tokens_focus13.csv", tmp_path / "bill.csv")
    cfg = make_config(tmp_path, engine, 'path = "bill.csv"\napp_tag_keys = ["application"]')
    result = run(cfg, engine)
    assert result.status == "success", result.error
    day = date(2025, 4, 5)
    assert usage(engine) == {
        ("support-bot", day, SONNET, "input_tokens"): 400_000.0,
        ("support-bot", day, SONNET, "output_tokens"): 60_000.0,
    }
    assert costs(engine) == {
        # ServiceProviderName read as ProviderName; where it is empty, HostProviderName (as PublisherName)
        ("support-bot", day, "infra", "Anthropic"): (D("1.200000"), "USD", "2025-04"),
        ("support-bot", day, "infra", "AWS"): (D("0.900000"), "USD", "2025-04"),
    }


def test_bad_token_quantity_refused_naming_the_file(tmp_path, engine):
    text = (FIXTURES / "genai_tokens_focus13.csv").read_text().replace(",400,1K Tokens", ",four hundred,1K Tokens")
    (tmp_path / "bill.csv").write_text(text)
    cfg = make_config(tmp_path, engine, 'path = "bill.csv"\napp_tag_keys = ["application"]')
    result = run(cfg, engine)
    assert result.status == "failed"
    assert "bill.csv" in (result.error or "") and "token lines cannot be read" in (result.error or "")
    assert storage.read_frame(engine, records.UsageRecord).empty

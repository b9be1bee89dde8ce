"""Token economics (portfolio/genai.py) over hand-made facts frames, every figure computed by hand."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from portfolio import genai
from portfolio.facts import Facts

D1, D2 = date(2026, 10, 5), date(2026, 10, 6)
MINI, SONNET = "gpt-4o-mini", "claude-sonnet-4"


def cost(source: str, app: str, day: date, amount: float, model: str = "", estimated: bool = False, category: str = "vendor", service: str = "") -> dict:
    return {"source": source, "app_id": app, "day": day, "category": category, "service": service or model or "x",
            "amount": amount, "currency": "USD", "model": model, "estimated": estimated}


def use(source: str, app: str, day: date, metric: str, value: float, model: str) -> dict:
    return {"source": source, "app_id": app, "day": day, "metric": metric, "value": value, "model": model}


def facts() -> Facts:
    costs = pd.DataFrame([
        cost("oai", "support-bot", D1, 2.00, MINI, service="gpt-4o-mini, input"),
        cost("oai", "support-bot", D1, 1.00, MINI, service="gpt-4o-mini, output"),
        cost("gw", "support-bot", D1, 3.30, MINI, estimated=True),   # a bill covers it: drift +10%
        cost("gw", "support-bot", D2, 1.00, MINI, estimated=True),   # no bill that day: it counts
        cost("claude", "docs-qa", D1, 10.00, SONNET),
        cost("gw", "docs-qa", D1, 10.40, SONNET, estimated=True),    # drift +4%: under 5%
        cost("k8s", "support-bot", D1, 5.00, category="infra", service="cpu"),
        cost("sendgrid", "mailer", D1, 50.00, service="email api"),     # a vendor bill that names no model
        cost("gw", "mailer", D1, 0.40, "gpt-4o-mini", estimated=True),   # ... does not cover an LLM estimate
    ])
    usage = pd.DataFrame([
        use("oai", "support-bot", D1, "input_tokens", 1_000_000, MINI),
        use("oai", "support-bot", D1, "cached_input_tokens", 500_000, MINI),
        use("oai", "support-bot", D1, "output_tokens", 500_000, MINI),
        use("oai", "support-bot", D1, "requests", 1000, MINI),
        use("gw", "support-bot", D1, "input_tokens", 2_000_000, MINI),  # the same traffic, seen by the gateway
        use("gw", "support-bot", D1, "requests", 1000, MINI),
        use("gw", "support-bot", D2, "input_tokens", 400_000, MINI),
        use("gw", "support-bot", D2, "output_tokens", 100_000, MINI),
        use("gw", "support-bot", D2, "requests", 500, MINI),
        use("claude", "docs-qa", D1, "input_tokens", 1_000_000, SONNET),
        use("claude", "docs-qa", D1, "cache_write_tokens", 250_000, SONNET),
        use("claude", "docs-qa", D1, "output_tokens", 250_000, SONNET),
        use("gw", "docs-qa", D1, "input_tokens", 1_500_000, SONNET),
        use("prom", "support-bot", D1, "requests", 999, ""),  # not per model: not token economics
    ])
    return Facts.from_frames(today=date(2026, 11, 1), costs=costs, usage=usage)


def test_pnl_costs_keep_the_bill_and_drop_the_estimates_it_covers() -> None:
    f = facts()
    kept = genai.pnl_costs(f.costs)
    assert sorted(zip(kept.source, kept.app_id, kept.day, kept.amount, strict=True)) == sorted([
        ("oai", "support-bot", D1, 2.0), ("oai", "support-bot", D1, 1.0), ("gw", "support-bot", D2, 1.0),
        ("claude", "docs-qa", D1, 10.0), ("k8s", "support-bot", D1, 5.0),
        ("sendgrid", "mailer", D1, 50.0), ("gw", "mailer", D1, 0.4),
    ])
    # per app, by hand: support 2 + 1 (bill) + 1 (estimate, no bill that day) + 5 (infra) = 9; docs 10
    assert kept.groupby("app_id")["amount"].sum().to_dict() == {"support-bot": 9.0, "docs-qa": 10.0, "mailer": 50.4}
    assert f.costs.amount.sum() == pytest.approx(83.1)  # what adding everything would have said


def test_drift_figure_and_flag() -> None:
    out = genai.drift(facts().costs)
    assert list(out.app_id) == ["docs-qa", "support-bot"]
    assert out.drift.tolist() == pytest.approx([10.40 / 10.00 - 1, 3.30 / 3.00 - 1])  # +4%, +10%
    assert out.flagged.tolist() == [False, True]
    assert genai.drift(facts().costs, threshold=0.03).flagged.tolist() == [True, True]


def test_economics_per_app_and_model() -> None:
    f = facts()
    out = genai.economics(f.usage, f.costs, date(2026, 10, 1), date(2026, 10, 31)).set_index(["app_id", "model"])
    s = out.loc[("support-bot", MINI)]
    # tokens: 1M + 0.5M cached + 0.5M output (vendor, day 1; the gateway's count of day 1 dropped) + 0.4M + 0.1M (day 2)
    assert (s.input_tokens, s.cached_input_tokens, s.output_tokens, s.tokens, s.requests) == (1_400_000, 500_000, 600_000, 2_500_000, 1500)
    assert (s.billed_cost, s.estimated_cost, s.cost) == pytest.approx((3.0, 1.0, 4.0))
    assert s.cost_per_1m_tokens == pytest.approx(4.0 / 2.5)  # 1.60 per 1M tokens
    assert s.cost_per_request == pytest.approx(4.0 / 1500)
    assert s.sources == "gw, oai"
    d = out.loc[("docs-qa", SONNET)]
    assert (d.tokens, d.cache_write_tokens, d.cost) == (1_500_000, 250_000, 10.0)
    assert d.cost_per_1m_tokens == pytest.approx(10.0 / 1.5)
    assert pd.isna(d.cost_per_request)  # Anthropic reports no request count
    assert "support-bot" not in set(out.reset_index().query("model == ''").app_id)  # infra and plain usage stay out


def test_window_and_trend() -> None:
    f = facts()
    only_d2 = genai.economics(f.usage, f.costs, D2, D2)
    assert only_d2[["app_id", "model", "tokens", "cost"]].values.tolist() == [["support-bot", MINI, 500_000, 1.0]]
    t = genai.trend(f.usage, f.costs, last_complete_day=date(2026, 10, 31))
    row = t[(t.app_id == "support-bot")].iloc[0]
    assert (row.month, bool(row.complete), row.tokens, row.cost) == (date(2026, 10, 1), True, 2_500_000, 4.0)
    assert row.cost_per_1m_tokens == pytest.approx(1.6)
    in_progress = genai.trend(f.usage, f.costs, last_complete_day=D1)
    assert not in_progress.complete.any()  # October is month to date on Oct 5
    assert in_progress[in_progress.app_id == "support-bot"].tokens.tolist() == [2_000_000]


def test_empty_frames() -> None:
    f = Facts.from_frames(today=date(2026, 11, 1))
    assert genai.economics(f.usage, f.costs).empty
    assert genai.drift(f.costs).empty
    assert genai.trend(f.usage, f.costs, date(2026, 10, 31)).empty
    assert genai.pnl_costs(f.costs).empty


LLAMA = "meta-llama/Llama-3.1-8B-Instruct"


def hosting_facts() -> tuple[pd.DataFrame, pd.DataFrame]:
    """support-bot runs Llama on its own GPUs (OpenCost inference cost, infra) and buys gpt-4o-mini
    through an API; docs-qa buys Llama through an API (a model name on both sides across apps);
    search has only an API model (no comparison)."""
    costs = pd.DataFrame([
        cost("k8s", "support-bot", D1, 6.00, LLAMA, category="infra", service=f"inference {LLAMA}"),
        cost("k8s", "support-bot", D2, 2.00, LLAMA, category="infra", service=f"inference {LLAMA}"),
        cost("k8s", "support-bot", D1, 9.00, category="infra", service="gpu"),  # no model: not unit cost
        cost("oai", "support-bot", D1, 3.00, MINI),
        cost("gw", "docs-qa", D1, 0.50, LLAMA, estimated=True),
        cost("claude", "search", D1, 4.00, SONNET),
    ])
    usage = pd.DataFrame([
        use("k8s", "support-bot", D1, "input_tokens", 30_000_000, LLAMA),
        use("k8s", "support-bot", D1, "output_tokens", 6_000_000, LLAMA),
        use("k8s", "support-bot", D2, "input_tokens", 4_000_000, LLAMA),
        use("oai", "support-bot", D1, "input_tokens", 1_500_000, MINI),
        use("oai", "support-bot", D1, "output_tokens", 500_000, MINI),
        use("gw", "docs-qa", D1, "input_tokens", 2_000_000, LLAMA),
        use("claude", "search", D1, "input_tokens", 1_000_000, SONNET),
    ])
    return usage, costs


def test_self_hosted_against_api_per_app_and_model():
    usage, costs = hosting_facts()
    got = genai.hosting(usage, costs, D1, D2, "USD").set_index(["scope", "key"])
    assert list(got.index) == [("app", "support-bot"), ("model", LLAMA)]
    app = got.loc[("app", "support-bot")]
    # self-hosted: Llama 6 + 2 = 8.00 over 30M + 6M + 4M = 40M tokens -> 0.20 per 1M
    assert (app["self_hosted_tokens"], app["self_hosted_cost"]) == (40_000_000, 8.0)
    assert app["self_hosted_per_1m"] == pytest.approx(0.20)
    # API: gpt-4o-mini 3.00 over 2M tokens -> 1.50 per 1M
    assert (app["api_tokens"], app["api_cost"], app["api_per_1m"]) == (2_000_000, 3.0, pytest.approx(1.5))
    model = got.loc[("model", LLAMA)]
    # Llama self-hosted by support-bot (0.20 per 1M) against Llama bought by docs-qa: 0.50 / 2M = 0.25 per 1M
    assert model["self_hosted_per_1m"] == pytest.approx(0.20) and model["api_per_1m"] == pytest.approx(0.25)


def test_self_hosted_against_api_needs_both_sides():
    usage, costs = hosting_facts()
    only_api = costs[costs["category"] == "vendor"]
    assert genai.hosting(usage, only_api, D1, D2, "USD").empty
    assert genai.hosting(usage, costs, D2, D2, "USD").empty  # day 2: only the self-hosted Llama
    assert list(genai.hosting(usage.iloc[0:0], costs.iloc[0:0]).columns) == genai.HOSTING_COLUMNS

"""Token economics of GenAI apps: tokens, cost per 1M tokens and per request, billed against estimated.

Pure functions over the facts frames (:class:`portfolio.facts.Facts`: money is float there). The
connectors ``openai`` and ``anthropic`` bring **billed** vendor cost (CostRecord category
``vendor``, ``estimated`` false) and ``litellm`` a gateway's **estimates** (``estimated`` true);
all three bring tokens as UsageRecords per model (``records.TOKEN_METRICS`` and ``requests``).

One rule keeps a cost from being counted twice: where a billed GenAI vendor cost (a vendor row that
names a model) and an estimate cover the same app and day, the bill counts and the estimate does not (:func:`pnl_costs`, which the P&L
uses); the gap between them is the **drift** (estimate / billed − 1), flagged above
``[genai] drift_threshold`` (5% by default). Tokens follow the same rule: a source that reports
estimates (a gateway) gives way, for an app and day, to a billing source that reports tokens too.

Self-hosted against API (:func:`hosting`): a model whose cost is ``infra`` (OpenCost's inference
cost of a self-hosted model) is self-hosted, one whose cost is ``vendor`` (a bill or a gateway's
estimate) is bought through an API; where an app, or a model name, has both, the cost per 1M tokens
of each side is put side by side. A model with cost on both sides, or with tokens but no cost,
takes no side (nothing to divide).
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

from portfolio.records import TOKEN_METRICS

DEFAULT_DRIFT_THRESHOLD = 0.05
USAGE_COLUMNS = [*TOKEN_METRICS, "requests"]
ECONOMICS_COLUMNS = [
    "app_id", "model", *TOKEN_METRICS, "tokens", "requests", "billed_cost", "estimated_cost", "cost",
    "cost_per_1m_tokens", "cost_per_request", "sources",
]  # fmt: skip
TREND_COLUMNS = ["app_id", "model", "month", "complete", "tokens", "requests", "cost", "cost_per_1m_tokens", "cost_per_request"]
DRIFT_COLUMNS = ["app_id", "day", "billed", "estimated", "drift", "flagged"]
HOSTING_COLUMNS = [
    "scope", "key", "self_hosted_tokens", "self_hosted_cost", "self_hosted_per_1m", "api_tokens", "api_cost", "api_per_1m",
]  # fmt: skip
SELF_HOSTED, API = "self_hosted", "api"


def _estimated(costs: pd.DataFrame) -> pd.Series:
    if "estimated" not in costs.columns:
        return pd.Series(False, index=costs.index)
    return costs["estimated"].fillna(False).astype(bool)


def _days(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values).dt.date


def _months(values: pd.Series) -> list[tuple[int, int]]:
    days = pd.to_datetime(values)
    return list(zip(days.dt.year, days.dt.month, strict=True))


def _between(frame: pd.DataFrame, start: date | None, end: date | None) -> pd.DataFrame:
    if frame.empty:
        return frame
    days = _days(frame["day"])
    keep = pd.Series(True, index=frame.index)
    if start is not None:
        keep &= days >= start
    if end is not None:
        keep &= days <= end
    return frame[keep]


def _covered(frame: pd.DataFrame, keys: set[tuple[str, date]]) -> pd.Series:
    pairs = zip(frame["app_id"].astype(str), _days(frame["day"]), strict=True)
    return pd.Series([p in keys for p in pairs], index=frame.index, dtype=bool)


def _billed_days(costs: pd.DataFrame) -> set[tuple[str, date]]:
    """(app, day) pairs that a billed (not estimated) GenAI vendor cost covers: a bill that names a
    model (an email API's invoice does not cover an LLM gateway's estimate)."""
    if costs.empty:
        return set()
    billed = costs[(~_estimated(costs)) & (costs["category"] == "vendor") & (costs["model"].fillna("") != "")]
    return set(zip(billed["app_id"].astype(str), _days(billed["day"]), strict=True))


def pnl_costs(costs: pd.DataFrame) -> pd.DataFrame:
    """The cost rows the P&L counts: every row, except estimates for an app and day that a billed
    vendor cost covers (the bill counts; the estimate is only compared with it, see :func:`drift`)."""
    if costs.empty:
        return costs
    est = _estimated(costs)
    if not est.any():
        return costs
    # only the estimates can be dropped: their (app, day) pairs are the only ones looked up
    drop = est.to_numpy(dtype=bool).copy()
    drop[drop] = _covered(costs[est], _billed_days(costs)).to_numpy(dtype=bool)
    return costs[~drop]


def pnl_requests(usage: pd.DataFrame, costs: pd.DataFrame) -> pd.DataFrame:
    """The "requests" usage rows the P&L counts (unit economics): one count per app and day.

    An app's own request count (a row without a model: Prometheus, the demo, a warehouse) is the
    app's traffic; where it exists for an app in a calendar month, the model calls a vendor or a
    gateway counted in that month are left out (they are LLM calls made while serving those
    requests, not more requests; a month, because the facts hold an app's own counts per month, see
    :mod:`portfolio.facts`). Without it, the model calls are the app's traffic, counted once: a
    gateway's count gives way to a billing source's for the same app and day, as in :func:`token_usage`.
    """
    if usage.empty:
        return usage
    u = usage[usage["metric"] == "requests"]
    if u.empty or "model" not in u.columns:
        return u
    has_model = u["model"].fillna("") != ""
    if not has_model.any():
        return u
    own = u[~has_model]
    own_keys = set(zip(own["app_id"].astype(str), _months(own["day"]), strict=True))
    calls = u[has_model]
    in_own = [k in own_keys for k in zip(calls["app_id"].astype(str), _months(calls["day"]), strict=True)]
    calls = calls[~pd.Series(in_own, index=calls.index, dtype=bool)]
    return pd.concat([own, _billing_source_wins(calls, usage, costs)])


def _billing_source_wins(rows: pd.DataFrame, usage: pd.DataFrame, costs: pd.DataFrame) -> pd.DataFrame:
    """``rows`` without a gateway's (a source reporting estimates) for an app and day whose tokens a
    billing source reports: the same traffic, counted once (tokens and requests alike)."""
    estimate_sources = set(costs.loc[_estimated(costs), "source"]) if not costs.empty else set()
    gateway = rows["source"].isin(estimate_sources)
    if not gateway.any():
        return rows
    billed = usage[(usage["model"].fillna("") != "") & usage["metric"].isin(TOKEN_METRICS) & ~usage["source"].isin(estimate_sources)]
    keys = set(zip(billed["app_id"].astype(str), _days(billed["day"]), strict=True))
    return rows[~(gateway & _covered(rows, keys))]


def token_usage(usage: pd.DataFrame, costs: pd.DataFrame) -> pd.DataFrame:
    """Tokens and requests per app, day and model (columns app_id, day, model, the token metrics,
    tokens = their sum, requests), summed over sources, without a gateway's count for an app and
    day that a billing source's tokens cover (the same traffic, counted once)."""
    cols = ["app_id", "day", "model", *USAGE_COLUMNS, "tokens"]
    if usage.empty:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in cols})
    u = usage[(usage["model"].fillna("") != "") & usage["metric"].isin(USAGE_COLUMNS)].copy()
    if u.empty:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in cols})
    u = _billing_source_wins(u, usage, costs).copy()
    u["day"] = _days(u["day"])
    u["value"] = pd.to_numeric(u["value"], errors="coerce").fillna(0.0).astype(float)
    out = u.pivot_table(index=["app_id", "day", "model"], columns="metric", values="value", aggfunc="sum", fill_value=0.0)
    out = out.reindex(columns=USAGE_COLUMNS, fill_value=0.0).reset_index()
    out.columns.name = None
    out["tokens"] = out[list(TOKEN_METRICS)].sum(axis=1)
    return out[cols]


def _ratio(num: pd.Series, den: pd.Series, scale: float = 1.0) -> pd.Series:
    den = pd.to_numeric(den, errors="coerce")
    return pd.Series(np.where(den > 0, pd.to_numeric(num, errors="coerce") * scale / den.where(den > 0, 1.0), np.nan), index=num.index)


def _genai_costs(costs: pd.DataFrame, currency: str | None) -> pd.DataFrame:
    """The P&L's cost rows that carry a model (the GenAI vendors'), with billed/estimated split."""
    c = pnl_costs(costs)
    if c.empty:
        return c.assign(billed_cost=[], estimated_cost=[])
    c = c[c["model"].fillna("") != ""]
    if currency:
        c = c[c["currency"].fillna("").str.upper() == currency.upper()]
    est = _estimated(c)
    amount = pd.to_numeric(c["amount"], errors="coerce").fillna(0.0)
    return c.assign(billed_cost=amount.where(~est, 0.0), estimated_cost=amount.where(est, 0.0), day=_days(c["day"]))


def economics(
    usage: pd.DataFrame, costs: pd.DataFrame, start: date | None = None, end: date | None = None, currency: str | None = None
) -> pd.DataFrame:
    """Per app and model over ``start..end``: tokens by kind, requests, billed and estimated cost
    (as the P&L counts them), cost per 1M tokens and per request (NaN without tokens / requests)."""
    tokens = token_usage(_between(usage, start, end), _between(costs, start, end))
    c = _between(_genai_costs(costs, currency), start, end)
    t = tokens.groupby(["app_id", "model"], as_index=False)[[*USAGE_COLUMNS, "tokens"]].sum() if not tokens.empty else None
    if not c.empty:
        m = c.groupby(["app_id", "model"], as_index=False).agg(
            billed_cost=("billed_cost", "sum"), estimated_cost=("estimated_cost", "sum"),
            sources=("source", lambda s: ", ".join(sorted(set(map(str, s))))),
        )
    else:
        m = None
    if t is None and m is None:
        return pd.DataFrame({col: pd.Series(dtype="object") for col in ECONOMICS_COLUMNS})
    if t is None:
        out = m.assign(**{k: 0.0 for k in [*USAGE_COLUMNS, "tokens"]})  # type: ignore[union-attr]
    elif m is None:
        out = t.assign(billed_cost=0.0, estimated_cost=0.0, sources="")
    else:
        out = t.merge(m, on=["app_id", "model"], how="outer")
    out[[*USAGE_COLUMNS, "tokens", "billed_cost", "estimated_cost"]] = out[
        [*USAGE_COLUMNS, "tokens", "billed_cost", "estimated_cost"]
    ].fillna(0.0)
    out["sources"] = out["sources"].fillna("")
    out["cost"] = out["billed_cost"] + out["estimated_cost"]
    out["cost_per_1m_tokens"] = _ratio(out["cost"], out["tokens"], 1_000_000.0)
    out["cost_per_request"] = _ratio(out["cost"], out["requests"])
    return out[ECONOMICS_COLUMNS].sort_values(["app_id", "model"]).reset_index(drop=True)


def trend(usage: pd.DataFrame, costs: pd.DataFrame, last_complete_day: date, currency: str | None = None) -> pd.DataFrame:
    """Per app, model and calendar month up to ``last_complete_day``: tokens, requests, cost, cost
    per 1M tokens and per request. ``complete`` is false for the month in progress (month to date:
    shown apart, never compared with whole months)."""
    usage, costs = _between(usage, None, last_complete_day), _between(costs, None, last_complete_day)
    tokens = token_usage(usage, costs)
    c = _genai_costs(costs, currency)
    frames = []
    if not tokens.empty:
        frames.append(tokens.assign(cost=0.0)[["app_id", "model", "day", "tokens", "requests", "cost"]])
    if not c.empty:
        frames.append(c.assign(tokens=0.0, requests=0.0, cost=c["billed_cost"] + c["estimated_cost"])[
            ["app_id", "model", "day", "tokens", "requests", "cost"]])
    if not frames:
        return pd.DataFrame({col: pd.Series(dtype="object") for col in TREND_COLUMNS})
    rows = pd.concat(frames, ignore_index=True)
    rows["month"] = [date(d.year, d.month, 1) for d in _days(rows["day"])]
    out = rows.groupby(["app_id", "model", "month"], as_index=False)[["tokens", "requests", "cost"]].sum()
    # a month is complete when the last complete day is its last day or later
    out["complete"] = [(m.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1) <= last_complete_day for m in out["month"]]
    out["cost_per_1m_tokens"] = _ratio(out["cost"], out["tokens"], 1_000_000.0)
    out["cost_per_request"] = _ratio(out["cost"], out["requests"])
    return out[TREND_COLUMNS].sort_values(["app_id", "model", "month"]).reset_index(drop=True)


def drift(costs: pd.DataFrame, threshold: float = DEFAULT_DRIFT_THRESHOLD, currency: str | None = None) -> pd.DataFrame:
    """Where a vendor bill and a gateway estimate cover the same app and day: billed, estimated,
    ``drift`` = estimated / billed − 1, and ``flagged`` when ``abs(drift) > threshold``."""
    if costs.empty:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in DRIFT_COLUMNS})
    c = costs[(costs["category"] == "vendor") & (costs["model"].fillna("") != "")]
    if currency:
        c = c[c["currency"].fillna("").str.upper() == currency.upper()]
    est = _estimated(c)
    c = c.assign(day=_days(c["day"]), amount=pd.to_numeric(c["amount"], errors="coerce").fillna(0.0))
    billed = c[~est].groupby(["app_id", "day"], as_index=False).agg(billed=("amount", "sum"))
    estimated = c[est].groupby(["app_id", "day"], as_index=False).agg(estimated=("amount", "sum"))
    out = billed.merge(estimated, on=["app_id", "day"], how="inner")
    out = out[out["billed"] > 0]
    out["drift"] = out["estimated"] / out["billed"] - 1.0
    out["flagged"] = out["drift"].abs() > threshold
    return out[DRIFT_COLUMNS].sort_values(["app_id", "day"]).reset_index(drop=True)


def hosting(
    usage: pd.DataFrame, costs: pd.DataFrame, start: date | None = None, end: date | None = None, currency: str | None = None
) -> pd.DataFrame:
    """Self-hosted against API over ``start..end``: for each app (``scope`` "app") and each model
    name (``scope`` "model", across apps) that has both self-hosted (``infra``) and API
    (``vendor``) models, tokens, cost and cost per 1M tokens of each side (NaN without tokens)."""
    empty = pd.DataFrame({col: pd.Series(dtype="object") for col in HOSTING_COLUMNS})
    econ = economics(usage, costs, start, end, currency)
    c = _between(_genai_costs(costs, currency), start, end)
    if econ.empty or c.empty:
        return empty
    kinds: dict[tuple[str, str], set[str]] = {}
    for a, m, cat in zip(c["app_id"].astype(str), c["model"].astype(str), c["category"].astype(str), strict=True):
        kinds.setdefault((a, m), set()).add(cat)
    side = {key: SELF_HOSTED if k == {"infra"} else API if k == {"vendor"} else "" for key, k in kinds.items()}
    econ = econ.assign(side=[side.get((str(a), str(m)), "") for a, m in zip(econ["app_id"], econ["model"], strict=True)])
    econ = econ[econ["side"] != ""]
    frames = []
    for scope, by in (("app", "app_id"), ("model", "model")):
        sums = econ.groupby([by, "side"])[["tokens", "cost"]].sum().unstack("side")
        if SELF_HOSTED not in sums["cost"].columns or API not in sums["cost"].columns:
            continue
        both = sums[sums["cost"][SELF_HOSTED].notna() & sums["cost"][API].notna()]
        if both.empty:
            continue
        out = pd.DataFrame({"scope": scope, "key": both.index.astype(str)})
        for name, col in ((SELF_HOSTED, "self_hosted"), (API, "api")):
            out[f"{col}_tokens"] = both["tokens"][name].to_numpy()
            out[f"{col}_cost"] = both["cost"][name].to_numpy()
            out[f"{col}_per_1m"] = _ratio(out[f"{col}_cost"], out[f"{col}_tokens"], 1_000_000.0)
        frames.append(out)
    if not frames:
        return empty
    return pd.concat(frames, ignore_index=True)[HOSTING_COLUMNS]

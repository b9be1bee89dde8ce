"""Page sections shared by several pages: the one recommendation per app, the retire-all effect,
unregistered spend, since-launch figures. Pages call these so each answer is drawn one way only.

Text that comes from the data (app names, tag values, reasons quoting them) is escaped before it
is written as Markdown.
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd
import streamlit as st

from portfolio import recommend
from portfolio.dashboard import cache, fmt, views

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+\-.!|~$])")

ACTION_HELP = (
    "One recommendation per app, the same on the Retirement, Maintenance and App pages and in "
    "`mlportfolio report`: retire (a retirement rule fires and retiring it does not lower portfolio net), "
    "harden (it makes money but breaks or its upkeep is heavy), review (a person decides), invest (growing, "
    "nothing fires), keep."
)
NET_EFFECT_HELP = "Change of annual portfolio net if retired: annual savings − value at risk (run-rate)."


def md(text: Any) -> str:
    """``text`` with Markdown's special characters escaped."""
    return _MD_SPECIAL.sub(r"\\\1", str(text))


def recommendation_columns(cur: str) -> dict[str, Any]:
    return {
        "name": st.column_config.TextColumn("App"),
        "action": st.column_config.TextColumn("Recommendation", help=ACTION_HELP),
        "recommendation": st.column_config.TextColumn("Recommendation", help=ACTION_HELP),
        "net_effect": fmt.money_column("Net effect / yr", cur, help=NET_EFFECT_HELP),
        "annual_savings": fmt.money_column("Savings / yr", cur, help="Run-rate cost that would stop"),
        "value_at_risk": fmt.money_column("Value at risk / yr", cur, help="Run-rate value the app brings"),
        "rules": st.column_config.TextColumn("Rules that fire"),
    }


def reasons(recs: pd.DataFrame, title: str = "Why, app by app") -> None:
    """The reasons behind each recommendation, as wrapped text (no wide table column)."""
    if recs.empty:
        return
    with st.expander(title):
        for r in recs.to_dict("records"):
            st.markdown(f"**{md(r['name'])}** (`{md(r['app_id'])}`) — **{r['action']}**: {md(r['reason'])}")


def recommendation_of(src: cache.Source, app_id: str) -> dict[str, Any] | None:
    recs = cache.recommendations(src)
    mine = recs[recs["app_id"] == app_id]
    return None if mine.empty else dict(mine.iloc[0])


def app_recommendation(src: cache.Source, app_id: str, cur: str) -> None:
    """The App page's line: the app's one recommendation and its reasons."""
    r = recommendation_of(src, app_id)
    if r is None:
        return
    effect = fmt.money(r["net_effect"], cur)
    st.info(f"**Recommendation: {r['action']}** (net effect of retiring it: {md(effect)} a year) — {md(r['reason'])}")


def retire_all_metrics(src: cache.Source, cands: pd.DataFrame, cur: str) -> None:
    """Savings, value at risk and the net effect side by side, over every candidate."""
    total = recommend.retire_all(cache.recommendations(src))
    c = st.columns(5)
    c[0].metric("Candidates", f"{len(cands)}")
    c[1].metric("Savings / yr if all retired", fmt.money(total["candidates_savings"], cur))
    c[2].metric("Value at risk / yr", fmt.money(total["candidates_value_at_risk"], cur))
    c[3].metric(
        "Net effect / yr if all retired", fmt.money(total["candidates_net_effect"], cur), help=NET_EFFECT_HELP,
    )
    c[4].metric("Freed hours / yr", fmt.hours(cands["freed_hours"].sum() if not cands.empty else 0))
    effect = total["candidates_net_effect"]
    if effect < 0:
        st.warning(
            f"Retiring every candidate would **lower** portfolio net by {md(fmt.money(-effect, cur))} a year: "
            f"some of them make money. Retiring only the apps recommended for retirement changes net by "
            f"{md(fmt.money(total['retire_net_effect'], cur))} a year."
        )


def unregistered(src: cache.Source, cur: str, where: str) -> None:
    """Unregistered spend (its own line, with the tag value) and other facts naming no registered app."""
    spend = cache.unregistered_spend(src)
    other = cache.unregistered_facts(src)
    if spend.empty and other.empty:
        if where == "health":
            st.caption("Every cost, outcome and ticket names a registered app.")
        return
    if not spend.empty:
        st.warning(
            f"**Unregistered spend: {md(fmt.money(spend[spend['currency'] == cur]['amount'].sum(), cur))}** in "
            f"{len(spend)} tag value(s) that name no registered app. It is counted as unallocated (so the bill "
            "still reconciles), never as a new app. Declare the app (`[[apps]]` with `cost_tags`) to claim it."
        )
        shown = spend[["tag_value", "currency", "amount", "rows", "sources", "first_day", "last_day"]]
        st.dataframe(
            shown, hide_index=True,
            column_config={"tag_value": st.column_config.TextColumn("Tag value"), "amount": fmt.money_column("Amount", cur),
                           "rows": st.column_config.NumberColumn("Rows", format="%d")},
        )  # fmt: skip
        st.download_button(
            "Download unregistered spend (CSV)", views.to_csv(spend), f"unregistered-spend-{where}.csv", "text/csv",
            on_click="ignore",
        )
        if where == "health":
            with st.expander("The `[[apps]]` entries that would claim it"):
                st.code("\n\n".join(spend["claim"].head(10)), language="toml")
    if not other.empty and where == "health":
        st.warning(f"{int(other['rows'].sum())} outcome/maintenance/usage/uptime row(s) name no registered app: they count for no app.")
        st.dataframe(other, hide_index=True, column_config={"rows": st.column_config.NumberColumn("Rows", format="%d")})


def since_label(row: Any) -> str:
    since = row.get("cumulative_since") if hasattr(row, "get") else None
    return "since launch" if since in (None, "launch") else f"since {since}"

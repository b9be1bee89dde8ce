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


#: reasons written out one by one; past it, the table's search narrows them (the CSV has them all)
REASONS_SHOWN = 25


def reasons(recs: pd.DataFrame, title: str = "Why, app by app", limit: int = REASONS_SHOWN) -> None:
    """The reasons behind each recommendation, as wrapped text (no wide table column).

    At most ``limit`` apps, in the order given (the table's order), then how many more there are:
    a page with 1,000 apps stays one page, not 1,000 paragraphs.
    """
    if recs.empty:
        return
    with st.expander(title):
        for r in recs.head(limit).to_dict("records"):
            st.markdown(f"**{md(r['name'])}** (`{md(r['app_id'])}`) — **{r['action']}**: {md(r['reason'])}")
        if len(recs) > limit:
            st.caption(f"… and {len(recs) - limit:,} other apps: search the table above to read one, or download the CSV.")


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


#: rows per page of a long table (the first that fits the whole table is used when it is short)
PAGE_SIZES = (10, 25, 50, 100, 250)
PAGE_SIZE = 50
AS_LISTED = "(as listed)"


def table(
    frame: pd.DataFrame,
    key: str,
    *,
    column_config: dict[str, Any] | None = None,
    search_in: list[str] | None = None,
    noun: str = "rows",
    **dataframe_args: Any,
) -> pd.DataFrame:
    """A table that stays usable at 1,000 rows: a search box, a sort over the whole table, pages.

    ``search_in``: the columns the search box reads (default: every column); ``st.dataframe``'s
    own header sort orders only the rows of the page shown, so "Sort by" orders the whole table
    first. The page's rows are drawn with ``st.dataframe`` (``column_config`` and
    ``dataframe_args`` as for it). Returns the rows that match the search, in the order shown.
    Widget keys start with ``key``.
    """
    query_col, sort_col, desc_col, size_col, page_col = st.columns([3, 2, 1, 1, 1], vertical_alignment="bottom")
    query = query_col.text_input(
        "Search", key=f"{key}_search", placeholder="any part of a name, id, team…",
        help="Rows with every word of the search in one of their cells (case does not matter)",
    )  # fmt: skip
    matched = views.search(frame, query, search_in)
    sortable = [AS_LISTED, *map(str, frame.columns)]
    by = sort_col.selectbox("Sort by", sortable, key=f"{key}_sort", format_func=lambda c: c if c == AS_LISTED else fmt.label(c))
    descending = desc_col.toggle("Descending", value=True, key=f"{key}_desc")
    ordered = views.sort_rows(matched, None if by == AS_LISTED else by, descending)
    size = int(size_col.selectbox("Rows per page", PAGE_SIZES, index=PAGE_SIZES.index(PAGE_SIZE), key=f"{key}_size"))
    pages = max(1, -(-len(ordered) // size))
    page_key = f"{key}_page"
    if int(st.session_state.get(page_key, 1)) > pages:  # a narrower search has fewer pages
        st.session_state[page_key] = pages
    page = page_col.number_input("Page", min_value=1, max_value=pages, step=1, key=page_key, disabled=pages == 1)
    shown, pages = views.page_of(ordered, int(page), size)
    st.dataframe(shown, hide_index=True, column_config=column_config, **dataframe_args)
    first = (int(page) - 1) * size + 1 if len(ordered) else 0
    st.caption(
        f"{noun.capitalize()} {first:,}–{first + len(shown) - 1 if len(shown) else 0:,} of {len(ordered):,}"
        + (f" matching “{md(query.strip())}” ({len(frame):,} in all)" if query and query.strip() else "")
        + (f" · page {int(page)} of {pages}" if pages > 1 else "")
    )
    return ordered

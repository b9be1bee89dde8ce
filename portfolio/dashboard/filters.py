"""Period and team filters shared by every page.

The chosen values live in ``st.session_state`` under the ``STORE`` keys (which outlive a page
switch, unlike widget keys, which Streamlit forgets on a page that does not draw the widget) and
are mirrored into ``st.query_params`` (``?from=2025-12&to=2026-11&team=search``), so a link
carries them and a fresh session starts from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import streamlit as st

from portfolio.periods import (
    Period,
    add_months,
    default_period,
    last_complete_day,
    month_start,
    period_between,
)

ALL_TEAMS = "All teams"
HISTORY_MONTHS = 36

#: persistent value key -> (widget key, query parameter)
STORE = {
    "filter_from": ("w_filter_from", "from"),
    "filter_to": ("w_filter_to", "to"),
    "filter_team": ("w_filter_team", "team"),
}


@dataclass(frozen=True)
class Filters:
    period: Period
    team: str | None

    @property
    def start(self) -> date:
        return self.period.start

    @property
    def end(self) -> date:
        return self.period.end


def month_options(today: date, history: int = HISTORY_MONTHS) -> list[str]:
    """``YYYY-MM`` of the ``history`` months up to the last complete day's month, newest first."""
    last = month_start(last_complete_day(today))
    return [add_months(last, -i).strftime("%Y-%m") for i in range(history)]


def _remember(store: str) -> None:
    """on_change: copy the widget's value to the persistent key."""
    widget, _ = STORE[store]
    st.session_state[store] = st.session_state[widget]


def _prepare(store: str, options: list[str], default: str) -> str:
    """Make the persistent value valid (from query params on a fresh session) and seed the widget."""
    widget, param = STORE[store]
    if store not in st.session_state:
        wanted = st.query_params.get(param)
        st.session_state[store] = wanted if wanted in options else default
    if st.session_state[store] not in options:
        st.session_state[store] = default
    st.session_state[widget] = st.session_state[store]
    return widget


def sidebar(today: date, teams: list[str], *, team: bool = True) -> Filters:
    """Draw the filters in the sidebar and return the chosen period and team."""
    options = month_options(today)
    default = default_period(today)
    from_key = _prepare("filter_from", options, default.start.strftime("%Y-%m"))
    to_key = _prepare("filter_to", options, options[0])
    team_options = [ALL_TEAMS, *teams]
    team_key = _prepare("filter_team", team_options, ALL_TEAMS)

    with st.sidebar:
        st.subheader("Filters")
        c1, c2 = st.columns(2)
        c1.selectbox("From", options, key=from_key, on_change=_remember, args=("filter_from",))
        c2.selectbox("To", options, key=to_key, on_change=_remember, args=("filter_to",))
        if team:
            st.selectbox("Team", team_options, key=team_key, on_change=_remember, args=("filter_team",))

    start, end = st.session_state["filter_from"], st.session_state["filter_to"]
    if start > end:  # "YYYY-MM" sorts like the months it names
        st.sidebar.warning(f"From {start} is after To {end}: showing {end} only.")
        start = end
    period = period_between(start, end, today)
    chosen_team = st.session_state["filter_team"]
    chosen = None if chosen_team == ALL_TEAMS or not team else chosen_team
    _write_query(start, end, chosen_team)
    st.sidebar.caption(f"Period {period.label} · ends {period.end.isoformat()} (last complete day)")
    return Filters(period, chosen)


def _write_query(start: str, end: str, team: str) -> None:
    updates = {"from": start, "to": end}
    for key, value in updates.items():
        if st.query_params.get(key) != value:
            st.query_params[key] = value
    if team == ALL_TEAMS:
        if "team" in st.query_params:
            del st.query_params["team"]
    elif st.query_params.get("team") != team:
        st.query_params["team"] = team


def link_params(filters: Filters) -> dict[str, str]:
    """Query parameters that carry the filters to another page (``st.switch_page``, links)."""
    params = {"from": filters.period.start.strftime("%Y-%m"), "to": filters.period.end.strftime("%Y-%m")}
    if filters.team:
        params["team"] = filters.team
    return params

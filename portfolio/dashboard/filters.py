"""Period, comparison and team filters shared by every page.

The period is a preset (last 12 full months — the default —, last full month, last full quarter,
year to date, custom from/to) of full months only, compared with the same months a year earlier or
with the period just before (:mod:`portfolio.periods`). The month in progress is never part of it:
pages show it apart as month to date.

The chosen values live in ``st.session_state`` under the ``STORE`` keys (which outlive a page
switch, unlike widget keys, which Streamlit forgets on a page that does not draw the widget) and
are mirrored into ``st.query_params`` (``?period=ytd&vs=year&team=search``, or
``?period=custom&from=2025-12&to=2026-11``), so a link carries them and a fresh session starts
from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import streamlit as st

from portfolio.periods import (
    COMPARISONS,
    DEFAULT_COMPARISON,
    DEFAULT_PRESET,
    PRESETS,
    Period,
    add_months,
    last_full_month,
    month_to_date,
    period_between,
    preset_period,
)

ALL_TEAMS = "All teams"
HISTORY_MONTHS = 36
CUSTOM = "custom"

#: persistent value key -> (widget key, query parameter)
STORE = {
    "filter_preset": ("w_filter_preset", "period"),
    "filter_compare": ("w_filter_compare", "vs"),
    "filter_from": ("w_filter_from", "from"),
    "filter_to": ("w_filter_to", "to"),
    "filter_team": ("w_filter_team", "team"),
}


@dataclass(frozen=True)
class Filters:
    period: Period  # full months; period.previous() is the chosen comparison
    team: str | None
    preset: str = DEFAULT_PRESET
    comparison: str = DEFAULT_COMPARISON
    month_to_date: Period | None = None  # the month in progress, shown apart, never compared

    @property
    def start(self) -> date:
        return self.period.start

    @property
    def end(self) -> date:
        return self.period.end

    @property
    def vs(self) -> tuple[date, date]:
        """(start, end) of the period compared with: a plain cache key."""
        prev = self.period.previous()
        return prev.start, prev.end


def month_options(today: date, history: int = HISTORY_MONTHS, with_data: list[str] | None = None) -> list[str]:
    """``YYYY-MM`` of the full months a custom period can start or end on, newest first.

    ``with_data``: the months that have any value or cost; only those are offered (a month without
    data would show an empty page). Without it (or when it is empty): the ``history`` full months up
    to the last full month. The month in progress is never offered: it is month to date.
    """
    last = last_full_month(today)
    if with_data:
        limit = last.strftime("%Y-%m")
        return sorted({m for m in with_data if m <= limit}, reverse=True) or [limit]
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


def sidebar(today: date, teams: list[str], *, team: bool = True, months: list[str] | None = None) -> Filters:
    """Draw the filters in the sidebar and return the chosen period, comparison and team.

    ``months``: the ``YYYY-MM`` months that have data (the custom period's pickers offer only those).
    A link with ``?from=…&to=…`` and no ``period`` opens the custom period it names.
    """
    linked_custom = "period" not in st.query_params and ("from" in st.query_params or "to" in st.query_params)
    preset_key = _prepare("filter_preset", list(PRESETS), CUSTOM if linked_custom else DEFAULT_PRESET)
    compare_key = _prepare("filter_compare", list(COMPARISONS), DEFAULT_COMPARISON)
    options = month_options(today, with_data=months)
    default = preset_period(DEFAULT_PRESET, today)
    first = default.start.strftime("%Y-%m")
    from_key = _prepare("filter_from", options, first if first in options else options[-1])
    to_key = _prepare("filter_to", options, options[0])
    team_options = [ALL_TEAMS, *teams]
    team_key = _prepare("filter_team", team_options, ALL_TEAMS)
    preset = st.session_state["filter_preset"]
    comparison = st.session_state["filter_compare"]

    with st.sidebar:
        st.subheader("Filters")
        st.selectbox("Period", list(PRESETS), format_func=PRESETS.__getitem__, key=preset_key,
                     on_change=_remember, args=("filter_preset",))  # fmt: skip
        if preset == CUSTOM:
            c1, c2 = st.columns(2)
            c1.selectbox("From", options, key=from_key, on_change=_remember, args=("filter_from",))
            c2.selectbox("To", options, key=to_key, on_change=_remember, args=("filter_to",))
        st.selectbox("Compare with", list(COMPARISONS), format_func=COMPARISONS.__getitem__, key=compare_key,
                     on_change=_remember, args=("filter_compare",))  # fmt: skip
        if team:
            st.selectbox("Team", team_options, key=team_key, on_change=_remember, args=("filter_team",))

    start = end = None
    if preset == CUSTOM:
        start, end = st.session_state["filter_from"], st.session_state["filter_to"]
        if start > end:  # "YYYY-MM" sorts like the months it names
            st.sidebar.warning(f"From {start} is after To {end}: showing {end} only.")
            start = end
        period = period_between(start, end, today, comparison)
    else:
        period = preset_period(preset, today, comparison)
    chosen_team = st.session_state["filter_team"]
    chosen = None if chosen_team == ALL_TEAMS or not team else chosen_team
    _write_query(preset, comparison, start, end, chosen_team)
    mtd = month_to_date(today)
    st.sidebar.caption(
        f"{period.label} (full months) compared with {period.previous().label}"
        + (f" · month to date ({mtd.start.isoformat()} – {mtd.end.isoformat()}) is shown apart" if mtd else "")
    )
    return Filters(period, chosen, preset, comparison, mtd)


def _write_query(preset: str, comparison: str, start: str | None, end: str | None, team: str) -> None:
    updates = {"period": preset, "vs": comparison}
    if preset == CUSTOM and start and end:
        updates |= {"from": start, "to": end}
    else:
        for key in ("from", "to"):
            if key in st.query_params:
                del st.query_params[key]
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
    params = {"period": filters.preset, "vs": filters.comparison}
    if filters.preset == CUSTOM:
        params |= {"from": filters.period.start.strftime("%Y-%m"), "to": filters.period.end.strftime("%Y-%m")}
    if filters.team:
        params["team"] = filters.team
    return params

"""Data health: every connector's last sync, status, rows and error; freshness per app; Sync now."""

import streamlit as st

from portfolio import safe
from portfolio.dashboard import actions, cache, fmt, sections, signin, views

STALE_NAMED = 20  # apps named in the warning; the table lists every one

st.title("Data health")
src = cache.source_or_stop()
st.caption(f"Database `{src.label}` · as of {src.today.isoformat()} (views end at the previous day)")

flash = st.session_state.pop("health_flash", None)
if flash:
    kind, text = flash
    (st.success if kind == "ok" else st.warning)(text)

if signin.require(signin.current_user(cache.config(src)), "sync", "start a sync") and st.button(
    "Sync now", type="primary", help="Run every enabled connector once — what the scheduler runs"
):
    with st.spinner("Syncing…"):
        outcome = actions.sync_now(src)
    lines = [
        f"- {safe.md(r.connector)}: {r.status}, {r.rows_written} rows written"
        + (f" — {safe.md(r.error)}" if r.error else "")  # a source's error text is not ours: shown as text
        for r in outcome.runs
    ]
    st.session_state["health_flash"] = (
        "ok" if outcome.ok else "failed",
        ("Sync finished:\n" if outcome.ok else "Sync finished with failures:\n") + "\n".join(lines or ["- no connector configured"]),
    )
    st.rerun()

st.subheader("Connectors")
status = cache.connector_status(src)
if status.empty:
    st.info("No connector is configured and none has run yet.")
else:
    failing = status[status["status"] == "failed"]
    for r in failing.itertuples():
        st.error(f"**{safe.md(r.connector)}** failed its last sync ({r.failures_in_a_row} in a row): {safe.md(r.error)}")
    st.dataframe(
        status,
        hide_index=True,
        column_config={
            "description": st.column_config.TextColumn("What it reads", width="large"),
            "last_run": st.column_config.DatetimeColumn("Last run", format="YYYY-MM-DD HH:mm"),
            "last_success": st.column_config.DatetimeColumn("Last success", format="YYYY-MM-DD HH:mm"),
            "rows_written": st.column_config.NumberColumn("Rows written", format="%d"),
            "error": st.column_config.TextColumn("Error", width="large"),
        },
    )
    st.download_button("Download connector status (CSV)", views.to_csv(status), "connectors.csv", "text/csv", on_click="ignore")

st.subheader("Freshness per app")
fresh = cache.freshness(src)
if fresh.empty:
    st.info("No app in the inventory.")
else:
    stale = fresh[fresh["stale"] == True]  # noqa: E712 - a bool column that may hold None
    if not stale.empty:
        named = stale["app_id"].astype(str).head(STALE_NAMED)
        st.warning(f"{len(stale)} app(s) have cost or usage older than 3 days before the last complete day: "
                   + ", ".join(named.map(safe.md))
                   + (f" and {len(stale) - len(named):,} more (sort the table below by Stale)" if len(stale) > len(named) else ""))
    sections.table(
        fresh, "health_freshness", noun="apps",
        column_config=fmt.columns(fresh, stale=st.column_config.CheckboxColumn("Stale")),
    )  # fmt: skip
    st.download_button("Download freshness (CSV)", views.to_csv(fresh), "freshness.csv", "text/csv", on_click="ignore")

st.subheader("Overridden value rows")
overrides = cache.value_overrides(src)
order = ", ".join(cache.config(src).value.precedence)
if overrides.empty:
    st.caption(f"Every app, month and kind has its value from one source (precedence: {order}).")
else:
    conflicts = int(overrides["conflict"].sum())
    st.warning(
        f"{len(overrides)} value row(s) do not count because a source ranked higher in `[value] precedence` "
        f"({order}) gives the same app, month and kind; {conflicts} of them disagree with the figure that counts."
    )
    st.dataframe(overrides, hide_index=True, column_config={
        "month": st.column_config.DateColumn("Month", format="YYYY-MM"),
        "source": "Overridden source",
        "amount": st.column_config.NumberColumn("Overridden amount", format="%,.2f"),
        "counted_source": "Counted source",
        "counted_amount": st.column_config.NumberColumn("Counted amount", format="%,.2f"),
        "conflict": st.column_config.CheckboxColumn("Amounts differ"),
    })
    st.download_button("Download overridden value rows (CSV)", views.to_csv(overrides), "value-overrides.csv", "text/csv",
                       on_click="ignore")

st.subheader("Unregistered spend and ids")
sections.unregistered(src, cache.config(src).currency, "health")

st.subheader("Sync history")
history = cache.sync_history(src)
st.dataframe(history, hide_index=True, column_config=fmt.columns(history))
st.download_button("Download sync history (CSV)", views.to_csv(history), "sync-history.csv", "text/csv", on_click="ignore")

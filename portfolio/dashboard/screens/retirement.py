"""Retirement: which apps to retire, why, what it saves and risks; the review queue; proposals
(editors propose, approvers approve or reject); record a decision; what-if."""

from datetime import timedelta

import pandas as pd
import streamlit as st

from portfolio import safe
from portfolio.dashboard import actions, cache, charts, filters, fmt, savings, sections, signin, views
from portfolio.errors import PortfolioError
from portfolio.records import DECISIONS, PROPOSALS, UNALLOCATED

st.title("Retirement")
src = cache.source_or_stop()
cur = cache.config(src).currency
f = filters.sidebar(src.today, cache.teams(src), team=False, months=cache.data_months(src))

flash = st.session_state.pop("retirement_flash", None)
if flash:
    st.success(flash)

found = cache.findings(src)
cands = cache.candidates(src)
sections.retire_all_metrics(src, cands, cur)

money = {
    "annual_savings": fmt.money_column("Annual savings", cur, help="Run-rate cost that would stop (shared cost excluded)"),
    "value_at_risk": fmt.money_column("Value at risk", cur, help="Run-rate value the app brings"),
    "net_effect": fmt.money_column("Net effect", cur, help=sections.NET_EFFECT_HELP),
    "freed_hours": fmt.hours_column("Freed hours / yr"),
}
shown_ids: list[str] = []
if cands.empty:
    st.success("No app trips a retirement rule (snoozed findings are listed below).")
else:
    st.subheader("Candidates, by net effect of retiring them")
    recs = cache.recommendations(src).set_index("app_id")
    table = cands.assign(action=cands["app_id"].map(recs["action"]))
    rules_of = {a: {r.strip() for r in str(rules).split(",")} for a, rules in zip(cands["app_id"], cands["rules"], strict=True)}
    team_col, rule_col = st.columns(2)
    pick_teams = team_col.multiselect(
        "Teams", sorted({str(t) for t in cands["team"].dropna()}), key="retirement_teams", placeholder="All teams"
    )
    pick_rules = rule_col.multiselect(
        "Rules", sorted(set().union(*rules_of.values())), key="retirement_rules", placeholder="Any rule",
        help="Candidates for which at least one of these rules fires",
    )  # fmt: skip
    if pick_teams:
        table = table[table["team"].isin(pick_teams)]
    if pick_rules:
        table = table[table["app_id"].map(lambda a: bool(rules_of[a] & set(pick_rules)))]
    shown_ids = table["app_id"].tolist()
    if pick_teams or pick_rules:
        st.caption(
            f"{len(table):,} of {len(cands):,} candidates: savings {safe.md(fmt.money(table['annual_savings'].sum(), cur))}, "
            f"value at risk {safe.md(fmt.money(table['value_at_risk'].sum(), cur))}, net effect "
            f"{safe.md(fmt.money(table['net_effect'].sum(), cur))} a year if all of them were retired"
        )
    order = ["name", "app_id", "action", "net_effect", "annual_savings", "value_at_risk", "rules"]
    listed = sections.table(
        table[order], "retirement_candidates", search_in=["name", "app_id", "action", "rules"], noun="candidates",
        column_config={**sections.recommendation_columns(cur), "app_id": st.column_config.TextColumn("App id")},
    )  # fmt: skip
    sections.reasons(recs.loc[list(listed["app_id"])].reset_index())
    st.download_button("Download candidates (CSV)", views.csv_later(table), "retirement-candidates.csv", "text/csv", on_click="ignore")
    with st.expander("Findings, with the numbers behind them"):
        order = ["app_id", "name", "rule", "annual_savings", "value_at_risk", "net_effect", "reason", "numbers", "team", "freed_hours"]
        mine = found[found["app_id"].isin(shown_ids)]
        if pick_rules:
            mine = mine[mine["rule"].isin(pick_rules)]
        shown = views.clean_for_display(mine[[c for c in order if c in mine.columns]])
        sections.table(
            shown, "retirement_findings", search_in=["app_id", "name", "rule", "reason", "team"], noun="findings",
            column_config={**money, "reason": st.column_config.TextColumn("Reason", width="large")},
        )  # fmt: skip
        st.download_button("Download findings (CSV)", views.csv_later(shown), "retirement-findings.csv", "text/csv", on_click="ignore")

everything = cache.findings(src, include_snoozed=True)
snoozed = everything[everything["snoozed_until"].notna()] if not everything.empty else everything
if not snoozed.empty:
    with st.expander(f"Snoozed by a decision ({snoozed['app_id'].nunique()} app(s))"):
        shown = views.clean_for_display(snoozed)
        sections.table(shown, "retirement_snoozed", column_config=fmt.columns(shown, cur, **money), noun="findings")
        st.download_button("Download snoozed findings (CSV)", views.csv_later(shown), "snoozed-findings.csv", "text/csv", on_click="ignore")

inventory = cache.apps(src)
inventory = inventory[inventory["app_id"] != UNALLOCATED]
# one entry per app id ("name (id)" where names repeat); candidates first (by net effect), then every app by name
names = dict(zip(inventory["app_id"], views.app_labels(inventory), strict=True))
by_name = sorted(names, key=lambda a: (names[a].lower(), a))
ordered = list(dict.fromkeys([*cands["app_id"].tolist(), *by_name])) if not cands.empty else by_name

user = signin.current_user(cache.config(src))
stages = cache.stages(src)
live = [a for a in ordered if stages.get(a) not in ("retired",)]

# ---- review queue: reviews overdue or due, snoozes, proposals waiting --------------------------
st.subheader("Review queue")
queue = cache.review_queue(src)
waiting = cache.open_proposals(src)
q = st.columns(4)
q[0].metric("Proposals waiting", len(waiting), help="Proposed by an editor, waiting for an approver")
q[1].metric("Reviews overdue", int((queue["status"] == "overdue").sum()) if not queue.empty else 0)
q[2].metric("Reviews due in 30 days", int((queue["status"] == "due").sum()) if not queue.empty else 0)
q[3].metric("Snoozed", int(queue["snoozed_until"].notna().sum()) if not queue.empty else 0,
            help="Apps whose findings a decision snoozes until its next review")  # fmt: skip
if not queue.empty:
    st.dataframe(
        queue, hide_index=True,
        column_config=fmt.columns(
            queue, cur, review_due=st.column_config.DateColumn("Review due"),
            days_left=st.column_config.NumberColumn("Days left", help="Negative: overdue by that many days"),
            snoozed_until=st.column_config.DateColumn("Snoozed until"),
        ),
    )  # fmt: skip

SHOWN_PROPOSALS = 5
st.markdown("**Proposals waiting for approval**")
may_approve = user.can("approve") or not user.signed_in  # without sign-in the local user may approve
if waiting.empty:
    st.caption("None: an editor proposes below.")
else:
    approver_name = None
    if may_approve and not user.signed_in:
        approver_name = st.text_input("Approver (name or e-mail)", value=signin.LOCAL.name, key="approver_name")
    elif not may_approve:
        signin.require(user, "approve", "approve or reject proposals")
    # a card per proposal, SHOWN_PROPOSALS at most (a large portfolio can have dozens waiting): any
    # other is picked from a searchable list and gets its card too
    shown = waiting.head(SHOWN_PROPOSALS)
    if len(waiting) > SHOWN_PROPOSALS:
        rest = waiting.iloc[SHOWN_PROPOSALS:]
        labels = {
            str(r["id"]): f"{r['action']} {names.get(r['app_id'], r['app_id'])} ({r['app_id']}), by {r['actor']}"
            for _, r in rest.iterrows()
        }
        st.caption(f"{len(waiting):,} proposals wait: the first {SHOWN_PROPOSALS} are shown; pick any other below.")
        picked = st.selectbox(
            f"Another waiting proposal ({len(rest):,})", sorted(labels, key=labels.__getitem__), index=None,
            format_func=labels.__getitem__, key="proposal_pick", placeholder="type to search",
        )
        if picked is not None:
            shown = pd.concat([shown, rest[rest["id"].astype(str) == picked]])
    for _, p in shown.iterrows():
        pid, pname = str(p["id"]), names.get(p["app_id"], p["app_id"])
        with st.container(border=True):
            when = f", planned for {p['planned']}" if pd.notna(p["planned"]) else ""
            st.markdown(
                f"**{safe.md(p['action'])} {safe.md(pname)}**{when} — proposed by {safe.md(p['actor'])} "
                f"on {p['at']:%Y-%m-%d}"
            )
            st.markdown(safe.md(p["rationale"]))
            pcur = p["currency"] or cur
            st.caption(safe.md(  # safe.md: "$" would start math
                f"Projected at proposal: annual savings {fmt.money(p['projected_annual_savings'], pcur)}, "
                f"value at risk {fmt.money(p['value_at_risk'], pcur)}, net effect {fmt.money(p['net_effect'], pcur)}, "
                f"freed hours {fmt.hours(p['freed_hours_per_year'])} a year"
            ))
            link = p["evidence"]
            if isinstance(link, str) and link.startswith(("https://", "http://")):
                st.link_button("Evidence", link)
            if not may_approve:
                continue
            own = user.signed_in and str(p["actor"]).strip().lower() == user.name.strip().lower()
            if own and user.role != "admin":
                st.caption("You proposed this: another approver decides it.")
                continue
            comment = st.text_input("Comment", key=f"comment_{pid}", placeholder="required to reject")
            left, right = st.columns(2)
            yes = left.button(f"Approve ({p['app_id']})", key=f"approve_{pid}", type="primary")
            no = right.button(f"Reject ({p['app_id']})", key=f"reject_{pid}")
            if yes or no:
                try:
                    done = actions.decide_proposal(src, user, approver_name, pid, bool(yes), comment)
                except (PortfolioError, ValueError) as exc:
                    st.error(f"Not recorded: {safe.md(exc)}")
                    st.stop()
                first = done[0]
                verb = "Approved" if yes else "Rejected"
                then = next((f"; {safe.md(pname)} is retiring, planned {e.planned}" for e in done if e.kind == "stage"), "")
                flag = " (self-approved: the proposer's own proposal)" if first.self_approved and yes else ""
                st.session_state["retirement_flash"] = f"{verb}: {safe.md(p['action'])} {safe.md(pname)} by {safe.md(first.actor)}{flag}{then}."
                st.rerun()

# ---- propose ------------------------------------------------------------------------------------
st.subheader("Propose retire, invest or keep")
if signin.require(user, "propose", "propose lifecycle changes") and live:
    wanted = st.query_params.get("propose")  # a link "propose for this app" (…/retirement?propose=<app id>)
    if wanted in live and st.session_state.get("_proposal_link") != wanted:
        st.session_state["proposal_app"] = st.session_state["_proposal_link"] = wanted
    a, b = st.columns(2)
    p_app = a.selectbox("App to propose for", live, format_func=lambda x: names.get(x, x), key="proposal_app")
    p_action = b.radio("Proposal", PROPOSALS, horizontal=True, key="proposal_action")
    if p_app is not None:
        proj = cache.projection(src, p_app)
        m = st.columns(4)
        m[0].metric("Projected annual savings", fmt.money(proj.annual_savings, proj.currency), help="Run-rate cost that would stop")
        m[1].metric("Value at risk", fmt.money(proj.value_at_risk, proj.currency), help="Run-rate value the app brings")
        m[2].metric("Net effect", fmt.money(proj.net_effect, proj.currency), help=sections.NET_EFFECT_HELP)
        m[3].metric("Freed hours / yr", fmt.hours(proj.freed_hours_per_year))
        st.caption(f"Run-rate as of {proj.as_of.isoformat()} (trailing 3 full months × 4): frozen with the proposal.")
    with st.form("proposal", clear_on_submit=False):
        planned = next_review_p = None
        if p_action == "retire":
            planned = st.date_input("Planned retirement date", value=src.today + timedelta(days=30), min_value=src.today,
                                    key="proposal_planned")  # fmt: skip
        else:
            next_review_p = st.date_input("Next review", value=src.today + timedelta(days=90), key="proposal_review")
        p_rationale = st.text_area("Why", key="proposal_rationale", placeholder="The numbers, the sponsor's view…")
        a, b = st.columns(2)
        p_evidence = a.text_input("Evidence link", key="proposal_evidence", placeholder="https://…")
        if user.signed_in:  # the proposer is the signed-in identity, not a free text
            p_by = b.text_input("Proposed by", value=user.name, key="proposal_by", disabled=True)
        else:
            p_by = b.text_input("Proposed by", key="proposal_by", placeholder="name or e-mail")
        proposed = st.form_submit_button("Submit proposal", type="primary")
    if proposed and p_app is not None:
        try:
            saved_p = actions.propose(src, user, p_by, p_app, p_action, p_rationale, p_evidence, planned, next_review_p)
        except (PortfolioError, ValueError) as exc:
            st.error(f"Not recorded: {safe.md(exc)}")
            st.stop()
        st.session_state["retirement_flash"] = (
            f"Proposed: {safe.md(saved_p.action)} {safe.md(names.get(p_app, p_app))} by {safe.md(saved_p.actor)}"
            + (f", planned {saved_p.planned.isoformat()}" if saved_p.planned else "") + ". An approver decides it."
        )
        st.rerun()

st.subheader("Record a decision")
may_decide = signin.require(user, "record_decision", "record decisions")
submitted = False
if may_decide:
    with st.form("decision", clear_on_submit=False):
        a, b = st.columns(2)
        app_id = a.selectbox("App", ordered, format_func=lambda x: names.get(x, x), key="decision_app")
        decision = b.radio("Decision", DECISIONS, horizontal=True, key="decision_kind")
        rationale = st.text_area("Rationale", key="decision_rationale", placeholder="Why — the numbers, the sponsor's view…")
        a, b = st.columns(2)
        next_review = a.date_input("Next review", value=src.today + timedelta(days=90), key="decision_next_review")
        if user.signed_in:  # the author is the signed-in identity, not a free text
            decided_by = b.text_input("Decided by", value=user.name, key="decision_by", disabled=True)
        else:
            decided_by = b.text_input("Decided by", key="decision_by", placeholder="name or e-mail")
        submitted = st.form_submit_button("Record decision", type="primary")
if submitted:
    if user.signed_in:
        decided_by = user.name
    if not decided_by.strip():
        st.error("Say who decided (Decided by) — every decision stays in the audit trail.")
    elif app_id is None:
        st.error("Choose an app.")
    else:
        try:
            saved = actions.record_decision(src, app_id, decision, decided_by.strip(), rationale.strip(), next_review)
        except (PortfolioError, ValueError) as exc:
            st.error(f"Not recorded: {safe.md(exc)}")
            st.stop()
        st.session_state["retirement_flash"] = (
            f"Recorded: {safe.md(saved.decision)} {safe.md(names.get(app_id, app_id))} by {safe.md(saved.decided_by)}"
            + (f", next review {saved.next_review.isoformat()}" if saved.next_review else "")
            + ". Its findings are snoozed until then."
        )
        st.rerun()

log = cache.decision_log(src)
if not log.empty:
    with st.expander(f"Decision log ({len(log)})"):
        st.dataframe(log, hide_index=True, column_config=fmt.columns(log, cur))
        st.download_button("Download decision log (CSV)", views.csv_later(log), "decisions.csv", "text/csv", on_click="ignore")

savings.retirement_sections(src, cur)  # issue 13: the retirement ledger and leftover spend

st.subheader("What if we retire…")
st.caption("Annual run-rate (trailing 3 full months × 4) of the whole portfolio, before and after.")
scope = st.radio(
    "Retire", ["chosen", "shown"], horizontal=True, key="what_if_scope",
    format_func=lambda x: "the apps I choose" if x == "chosen" else f"every candidate shown above ({len(shown_ids):,})",
)  # fmt: skip
if scope == "shown":
    retire = list(shown_ids)
    st.caption(f"{len(retire):,} candidate(s): the Teams and Rules filters above choose them.")
else:
    retire = st.multiselect(
        "Apps to retire", ordered, format_func=lambda x: names.get(x, x), key="what_if_apps", default=None,
        placeholder="Type to search apps by name or id", help="Candidates first, then every app by name",
    )  # fmt: skip
result = cache.what_if(src, f.start, f.end, tuple(sorted(retire)))
before, after, delta = result["before"], result["after"], result["delta"]
c = st.columns(4)
c[0].metric("Net", fmt.money(after["net"], cur), fmt.money_delta(delta["net"], cur))
c[1].metric("Cost", fmt.money(after["cost"], cur), fmt.money_delta(delta["cost"], cur), delta_color="inverse")
c[2].metric("Value", fmt.money(after["value"], cur), fmt.money_delta(delta["value"], cur))
c[3].metric(
    "Freed maintenance hours",
    fmt.hours(-delta["maintenance_hours"]),
    help=f"Maintenance hours before: {fmt.hours(before['maintenance_hours'])}, after: {fmt.hours(after['maintenance_hours'])}",
)
table = pd.DataFrame(
    [{"measure": m, "before": before[m], "after": after[m], "delta": delta[m]} for m in ["value", "cost", "net"]]
)
if retire:
    long = table.melt(id_vars="measure", value_vars=["before", "after"], var_name="scenario", value_name="amount")
    st.altair_chart(charts.what_if(long, cur))
st.dataframe(table, hide_index=True, column_config=fmt.columns(table, cur, measure="Measure", delta=fmt.money_column("Change", cur)))
st.download_button("Download what-if (CSV)", views.csv_later(table), "what-if.csv", "text/csv", on_click="ignore")

"""Value ledger upload: a finance partner's CSV / Excel of outcomes -> checked -> previewed -> committed."""

import pandas as pd
import streamlit as st

from portfolio import safe
from portfolio.dashboard import actions, cache, signin, views
from portfolio.errors import PortfolioError

st.title("Value ledger upload")
src = cache.source_or_stop()

missing = actions.ledger_available()
if missing:
    st.warning(f"Uploading a value ledger is not available in this build: {missing}.")
    st.stop()

flash = st.session_state.pop("ledger_flash", None)
if flash:
    st.success(flash)

st.write(
    "One row per app, month and kind (revenue capture / cost avoidance): the amount, the share of it the app "
    "earns (attribution), the evidence grade and optional low / high bounds. Every app must be in the "
    "inventory. A commit replaces what earlier uploads said for the same app, month and kind; where a "
    "connector gives the same app, month and kind, one figure counts, by `[value] precedence` (the "
    "preview below says which)."
)
st.download_button("Download the template (CSV)", actions.ledger_template().encode("utf-8"), "value-ledger-template.csv",
                   "text/csv", on_click="ignore")

if not signin.require(signin.current_user(cache.config(src)), "upload_ledger", "upload a ledger"):
    st.stop()  # the uploader is for editors only: a viewer never gets a file parsed
caps = cache.config(src).uploads
upload = st.file_uploader(
    "Ledger file", type=["csv", "xlsx"], key="ledger_file", max_upload_size=max(1, -(-caps.max_bytes // 2**20)),
    help=f"At most {caps.max_bytes / 1_000_000:,.1f} MB and {caps.max_rows:,} rows ([uploads] in portfolio.toml).",
)
if upload is None:
    st.info("Choose a CSV or Excel file to check it; nothing is written until you commit.")
    st.stop()

try:
    frame = actions.read_ledger(src, upload)
except PortfolioError as exc:  # over a cap, not UTF-8, ragged: file, row and column named
    st.error(safe.md(f"{upload.name}: not read, nothing was written. {exc}"))
    problems = getattr(exc, "errors", None)
    if isinstance(problems, pd.DataFrame) and len(problems) > 1:
        st.dataframe(problems, hide_index=True)
    st.stop()
except Exception as exc:  # a broken file is the user's input, not a crash
    st.error(safe.md(f"{upload.name}: cannot read it as a CSV or Excel ledger ({type(exc).__name__})"))
    st.stop()

valid, errors = actions.validate_ledger(src, frame)
c = st.columns(3)
c[0].metric("Rows in file", f"{len(frame)}")
c[1].metric("Valid rows", f"{len(valid)}")
c[2].metric("Rejected rows", f"{errors['row'].nunique() if not errors.empty else 0}")

if not errors.empty:
    st.error(f"{len(errors)} problem(s) found; these rows will not be committed:")
    st.dataframe(errors, hide_index=True)
    st.download_button("Download the problems (CSV)", views.to_csv(errors), "ledger-problems.csv", "text/csv", on_click="ignore")

if not valid:
    st.info("No valid row to commit.")
    st.stop()

preview = pd.DataFrame([r.model_dump() for r in valid])
preview = preview[[c for c in ["app_id", "month", "kind", "amount", "currency", "attribution", "evidence", "low", "high", "note"]
                   if c in preview.columns]]
for col in ("amount", "low", "high"):
    if col in preview.columns:
        preview[col] = pd.to_numeric(preview[col].map(lambda v: None if v is None else float(v)))
st.subheader("Preview")
st.dataframe(preview, hide_index=True, column_config={
    "amount": st.column_config.NumberColumn("Amount", format="%,.2f"),
    "attribution": st.column_config.NumberColumn("Attribution", format="percent"),
})
st.download_button("Download the preview (CSV)", views.to_csv(preview), "ledger-preview.csv", "text/csv", on_click="ignore")

try:
    changes = actions.ledger_replaces(src, valid)  # the sync writer's dry run: nothing is written
except PortfolioError as exc:
    st.error(f"These rows cannot be committed: {exc}")
    st.stop()
st.subheader("What it replaces")
unchanged = changes[changes["status"] == "unchanged"]
lines = actions.describe_replaces(changes)
if changes.empty or (changes["status"] == "new").all():
    st.caption("Nothing: every row is new (no source gives a figure for these apps, months and kinds yet).")
for line in lines:
    (st.info if line.startswith("replaces") else st.warning)(line)
if not unchanged.empty:
    st.caption(f"{len(unchanged)} row(s) are already in the database as they are: committing them writes nothing.")
if not changes.empty:
    shown = changes.assign(**{c: pd.to_numeric(changes[c].map(lambda v: None if v is None else float(v)))
                              for c in ("old_amount", "new_amount")})  # exact in the CSV, floats on screen
    st.dataframe(shown, hide_index=True, column_config={
        "status": "Status",
        "old_source": "Counted now (source)",
        "old_amount": st.column_config.NumberColumn("Counted now", format="%,.2f"),
        "new_source": "Counted after (source)",
        "new_amount": st.column_config.NumberColumn("Counted after", format="%,.2f"),
    })
    st.download_button("Download what it replaces (CSV)", views.to_csv(changes), "ledger-replaces.csv", "text/csv", on_click="ignore")

if signin.require(signin.current_user(cache.config(src)), "upload_ledger", "commit a ledger") and st.button(
    f"Commit {len(valid)} row(s)", type="primary"
):
    try:
        written = actions.commit_ledger(src, valid)
    except PortfolioError as exc:
        st.error(f"Nothing was committed: {exc}")
        st.stop()
    st.session_state["ledger_flash"] = " ".join(
        [f"Committed {safe.md(upload.name)}: {written} row(s) written."] + [line[0].upper() + line[1:] + "." for line in lines]
    )
    st.rerun()

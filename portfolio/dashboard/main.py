"""The installed entry file `mlportfolio demo` / `up` hand to `streamlit run` (app.py is the source-tree one)."""

from portfolio.dashboard import run

run()

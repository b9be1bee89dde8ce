"""`streamlit run app.py` entry point: the dashboard itself lives in portfolio.dashboard."""

from portfolio.dashboard import run

run()

"""A one-chart Streamlit script for the browser test: the monthly series of a EUR portfolio."""

import pandas as pd
import streamlit as st

from portfolio.dashboard import charts

frame = pd.DataFrame(
    {"month": ["2026-01-01", "2026-02-01"], "value": [1500.0, 2500.0], "cost": [100.0, 200.0], "net": [1400.0, 2300.0]}
)
st.altair_chart(charts.monthly_series(frame, "EUR"))

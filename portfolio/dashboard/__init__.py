"""The Streamlit dashboard: the only package of ML Portfolio that imports streamlit.

``run()`` is what ``streamlit run app.py`` executes: it registers the pages (thin scripts in
``pages/``) with ``st.navigation`` and runs the one the user asked for. Caching lives in
:mod:`.cache`, charts in :mod:`.charts`, filters in :mod:`.filters`, writes in :mod:`.actions`.
"""

from __future__ import annotations

from pathlib import Path

PAGES_DIR = Path(__file__).resolve().parent / "pages"
#: the browser tab's icon, served by the dashboard itself: a ``:material/…:`` page icon makes the
#: browser fetch an SVG from fonts.gstatic.com (and an emoji one from a CDN), which an air-gapped
#: install cannot reach and no finance page should leak its visits to
ICON = Path(__file__).resolve().parent / "icon.png"

#: (file, title, url path, icon, section) in navigation order; the first is the default page
PAGES: tuple[tuple[str, str, str, str, str], ...] = (
    ("portfolio.py", "Portfolio", "portfolio", ":material/dashboard:", "Portfolio"),
    ("app.py", "App", "app", ":material/apps:", "Portfolio"),
    ("finance.py", "Finance", "finance", ":material/account_balance:", "Portfolio"),
    ("maintenance.py", "Maintenance", "maintenance", ":material/build:", "Portfolio"),
    ("retirement.py", "Retirement", "retirement", ":material/delete_sweep:", "Portfolio"),
    ("health.py", "Data health", "health", ":material/monitor_heart:", "Data"),
    ("ledger.py", "Value ledger upload", "ledger", ":material/upload_file:", "Data"),
)


def page_path(file: str) -> Path:
    return PAGES_DIR / file


def page(url_path: str):  # type: ignore[no-untyped-def]
    """The ``st.Page`` of a registered page (for ``st.switch_page`` and ``st.page_link``)."""
    import streamlit as st

    for file, title, path, icon, _ in PAGES:
        if path == url_path:
            return st.Page(page_path(file), title=title, url_path=path, icon=icon, default=path == PAGES[0][2])
    raise KeyError(url_path)


def run() -> None:
    """Entry point of ``streamlit run app.py``."""
    import streamlit as st

    st.set_page_config(page_title="ML Portfolio", page_icon=str(ICON), layout="wide")
    sections: dict[str, list[object]] = {}
    for _file, _title, path, _icon, section in PAGES:
        sections.setdefault(section, []).append(page(path))
    current = st.navigation(sections)  # type: ignore[arg-type]
    st.sidebar.caption("ML Portfolio — the P&L of ML")
    from portfolio.dashboard import cache, signin

    try:
        cfg = cache.config(cache.resolve_source())
    except Exception:  # no or broken config: the page itself shows the first-run message / error
        cfg = None
    st.session_state["user"] = signin.gate(cfg)
    current.run()

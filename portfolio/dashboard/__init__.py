"""The Streamlit dashboard: the only package of ML Portfolio that imports streamlit.

``run()`` is what ``streamlit run app.py`` executes: it registers the pages (thin scripts in
``screens/``) with ``st.navigation`` and runs the one the user asked for. Caching lives in
:mod:`.cache`, charts in :mod:`.charts`, filters in :mod:`.filters`, writes in :mod:`.actions`.
"""

from __future__ import annotations

from pathlib import Path

PAGES_DIR = Path(__file__).resolve().parent / "screens"
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


def _refuse_metrics() -> None:
    """Answer ``/_stcore/metrics`` with 404: Streamlit 1.67 always serves it and has no option to turn it off.

    Its routes are built when the server starts, from ``create_metrics_routes`` looked up in the
    module that builds the app, so this must run before ``streamlit run`` starts the server.
    """
    try:
        from starlette.responses import PlainTextResponse
        from starlette.routing import Route
        from streamlit.web.server.starlette import starlette_app
        from streamlit.web.server.starlette.starlette_routes import ROUTE_METRICS, _with_base
    except ImportError:  # another Streamlit layout: nothing to refuse here
        return

    async def not_found(_request: object) -> PlainTextResponse:
        return PlainTextResponse("Not found", status_code=404)

    def no_metrics(_runtime: object, base_url: str | None) -> list[Route]:
        return [Route(_with_base(ROUTE_METRICS, base_url), not_found, methods=["GET", "OPTIONS"])]

    starlette_app.create_metrics_routes = no_metrics  # type: ignore[assignment]


def serve() -> None:
    """``streamlit`` 's command line (argv as for ``streamlit``), with ``/_stcore/metrics`` refused.

    ``mlportfolio up`` / ``demo`` start the dashboard as
    ``python -c "from portfolio.dashboard import serve; serve()" run .../main.py --server...``.
    """
    import sys

    from streamlit.web import cli as streamlit_cli

    _refuse_metrics()
    sys.argv = ["streamlit", *sys.argv[1:]]
    streamlit_cli.main(prog_name="streamlit")


def _limit_sign_in_cookie(hours: float) -> None:
    """Make Streamlit's sign-in cookie expire after ``hours`` instead of its fixed 30 days.

    Streamlit 1.67 sets the cookie's Max-Age from a module constant of its Starlette auth routes
    and offers no option for it; the constant is read when a sign-in completes, in this process,
    so setting it here (before anyone can press "Sign in") shortens every cookie issued from now
    on. The server-side check (:func:`portfolio.dashboard.signin.gate`, from the ID token's issue
    time) is what enforces the lifetime; this only keeps browsers from holding older cookies.
    """
    try:
        from streamlit.web.server.starlette import starlette_auth_routes as routes
    except ImportError:  # another Streamlit layout: the server-side check still applies
        return
    if hasattr(routes, "AUTH_COOKIE_MAX_AGE_SECONDS"):
        routes.AUTH_COOKIE_MAX_AGE_SECONDS = int(hours * 3600)  # type: ignore[misc]


def _show_error(exc: Exception) -> None:
    """A short message with a reference id on the page; the traceback goes to the log only."""
    import logging
    import secrets

    import streamlit as st

    ref = secrets.token_hex(4)
    logging.getLogger("portfolio.dashboard").error("page error, reference %s", ref, exc_info=exc)
    st.error(
        f"Something went wrong on this page (reference {ref}). The details are in the dashboard's log "
        "under this reference; nothing was changed by the failed step."
    )


def run() -> None:
    """Entry point of ``streamlit run app.py``: navigation, the sign-in gate, then the page.

    A page runs only after :func:`signin.gate` let the session in; the gate's mark lasts this run
    only. An exception in a page shows a short error with a reference id, never a traceback.
    """
    import streamlit as st

    # tracebacks go to the log, never to a page (uncaught errors in widget callbacks included);
    # `mlportfolio up` and the shipped .streamlit/config.toml set it too
    st.set_option("client.showErrorDetails", "none")
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
    if cfg is not None and cfg.auth.enabled:
        _limit_sign_in_cookie(cfg.auth.session_hours)
    try:
        st.session_state["user"] = signin.gate(cfg)
        current.run()
    except Exception as exc:  # st.stop / st.rerun are BaseExceptions and pass through
        _show_error(exc)
    finally:
        st.session_state.pop(signin.PASSED, None)

"""Issue 15: the dashboard reads the facts once per data version and keeps them until the data changes.

Pages run headlessly with Streamlit's AppTest on a private copy of the demo database (SQLite or
PostgreSQL, as the pass). What is counted is real work: how often :func:`portfolio.facts.load_facts`
reads the database and how often the quarterly review is rendered.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from portfolio import facts, records, review, storage
from portfolio.dashboard import cache
from tests.dashboard.test_pages import _use, assert_clean, open_page

Calls = dict[str, int]


@pytest.fixture
def own_demo_url(_clean_environment: None, demo_copy_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A private copy of the demo database (SQLite or PostgreSQL, as the pass), wired in."""
    _use(monkeypatch, demo_copy_url)
    return demo_copy_url


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> Calls:
    calls = {"load_facts": 0, "render": 0}
    load, render = facts.load_facts, review.render

    def counting_load(*args: Any, **kwargs: Any) -> facts.Facts:
        calls["load_facts"] += 1
        return load(*args, **kwargs)

    def counting_render(*args: Any, **kwargs: Any) -> str:
        calls["render"] += 1
        return render(*args, **kwargs)

    monkeypatch.setattr(facts, "load_facts", counting_load)
    monkeypatch.setattr(review, "render", counting_render)
    return calls


def test_facts_read_once_and_kept_until_the_data_changes(own_demo_url: str, counted: Calls) -> None:
    assert_clean(open_page("portfolio"))
    assert counted["load_facts"] == 1
    for page in ("maintenance", "retirement", "portfolio"):  # other pages, other sessions: the same facts
        assert_clean(open_page(page))
    assert counted["load_facts"] == 1
    # a decision recorded elsewhere (another process) changes the data version: the next run reads afresh
    storage.add(
        storage.make_engine(own_demo_url),
        records.Decision(
            id="t-1", app_id="promo-uplift", decided_at=datetime.now(UTC), decision="keep", decided_by="t@example.com",
            rationale="test",
        ),
    )  # fmt: skip
    assert_clean(open_page("portfolio"))
    assert counted["load_facts"] == 2


def test_the_quarterly_review_is_rendered_on_demand(own_demo_url: str, counted: Calls) -> None:
    at = open_page("portfolio")
    assert_clean(at)
    labels = [b.proto.label for b in at.get("download_button")]
    assert "Download (Markdown)" in labels and "Download (HTML)" in labels
    assert counted["render"] == 0  # not on every load of the page


def test_the_upload_page_reads_no_facts(own_demo_url: str, counted: Calls) -> None:
    assert_clean(open_page("ledger"))
    assert counted["load_facts"] == 0


def test_data_version_moves_with_a_sync_run(own_demo_url: str) -> None:
    src = cache.resolve_source()
    before = cache.data_version(src)
    assert cache.data_version(src) == before
    storage.add(storage.make_engine(own_demo_url), records.SyncRun(connector="demo", connector_type="demo", started=datetime.now(UTC)))
    assert cache.data_version(src) != before
    assert not cache.is_empty(src._replace(version=before))

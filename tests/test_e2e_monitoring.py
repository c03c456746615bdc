"""End to end in headless Chromium: the monitoring page of a server whose audit log holds records.

Starts ``streamlit run streamlit_app.py`` (as tests/test_e2e_browser.py does) with
``PNEUMONIA_AUDIT_DB`` pointing to a small log written here, opens ``/monitoring`` by its
URL, and checks the headline figures, a drawn Plotly chart and the chain check.

The app's root is opened first: on a freshly started server, a first visit straight to a
page's URL runs that file through Streamlit's legacy ``pages/`` folder navigation (without
``streamlit_app.py``'s shared sidebar) until the entry point has run once.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from test_e2e_browser import (  # noqa: F401 - browser and page are fixtures, run against this module's server
    CHROMIUM,
    browser,
    free_port,
    metric_value,
    page,
    shot,
    start_server,
    stop_server,
    wait_healthy,
    wait_idle,
)
from test_monitoring import VALIDATION_CSV, hand_made, needs_model, scores_at, write

pytestmark = [pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
              needs_model]


@pytest.fixture(scope="module")
def audit_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two hand-made weeks in 2025 (11 records: 4 scored, 1 refused, 1 unreadable, 5 reviews) and this
    week's scores, the validation scores themselves (so drift reads stable)."""
    import pandas as pd

    path = tmp_path_factory.mktemp("audit") / "audit.sqlite3"
    events, _ = hand_made()
    recent = pd.read_csv(VALIDATION_CSV)["probability"]
    write(path, events + scores_at(recent, datetime.now(UTC) - timedelta(days=2)))
    return path


@pytest.fixture(scope="module")
def server(audit_db: Path) -> Iterator[str]:
    port = free_port()
    with pytest.MonkeyPatch.context() as patch:  # start_server passes os.environ on to the server
        patch.setenv("PNEUMONIA_AUDIT_DB", str(audit_db))
        process = start_server(port)
    try:
        wait_healthy(port, process)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_server(process)


def test_monitoring_page_by_url_shows_figures_and_verifies(page, server: str, audit_db: Path) -> None:  # noqa: F811
    import pandas as pd

    recent = len(pd.read_csv(VALIDATION_CSV))
    # The page fixture opened "/" first and checks at teardown that nothing was fetched from outside.
    page.goto(f"{server}/monitoring")
    wait_idle(page)
    page.get_by_role("heading", name="Monitoring").wait_for()
    sidebar = page.get_by_test_id("stSidebar")
    # The app's shared sidebar (run through st.Page); it can arrive after the page's heading.
    sidebar.get_by_text("Threshold in force").first.wait_for()
    assert sidebar.get_by_test_id("stSidebarNav").get_by_text("Monitoring", exact=True).count() == 1

    assert metric_value(page, "Images scored") == f"{4 + recent:,}"
    assert metric_value(page, "Refused by the gate") == f"{1 / (6 + recent):.1%}"
    assert metric_value(page, "Reviewer agreement") == "50%"
    assert "95% CI" in page.get_by_test_id("stMetric").filter(has_text="Reviewer agreement").inner_text()
    main = page.get_by_test_id("stMain")
    assert "Scores are stable" in main.inner_text()
    # Plotly.js has drawn the charts: each holds an SVG with its title.
    charts = page.get_by_test_id("stPlotlyChart")
    charts.first.locator("svg.main-svg").first.wait_for()
    assert charts.count() == 5
    assert "Images per week" in charts.first.inner_text()
    shot(page, "6_monitoring")

    page.get_by_role("button", name="Verify the chain").click()
    wait_idle(page)
    main.get_by_text("Chain intact").wait_for()
    assert f"{11 + recent} records, chain intact" in main.inner_text()
    assert os.path.getsize(audit_db) > 0

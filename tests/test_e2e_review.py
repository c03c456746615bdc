"""Six reviewers at once in real browsers: every decision reaches the audit log, and the chain holds.

Each of six browser sessions uploads 20 X-rays to the batch worklist and reviews every
case; the server's audit log must then hold 120 score and 120 review records, 20 per
reviewer, with an intact hash chain.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_e2e_browser import CHROMIUM, CHROMIUM_ARGS, free_port, start_server, stop_server, wait_healthy

from core.audit import AuditLog
from helpers import real_xray_bytes

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium")
async_api = pytest.importorskip("playwright.async_api")

SESSIONS, CASES = 6, 20
TIMEOUT_MS = 240_000


@pytest.fixture(scope="module")
def served_log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    path = tmp_path_factory.mktemp("audit") / "audit.sqlite3"
    before = os.environ.get("PNEUMONIA_AUDIT_DB")
    os.environ["PNEUMONIA_AUDIT_DB"] = str(path)  # inherited by the server process
    port = free_port()
    process = start_server(port)
    try:
        wait_healthy(port, process)
        yield f"http://127.0.0.1:{port}", path
    finally:
        stop_server(process)
        if before is None:
            os.environ.pop("PNEUMONIA_AUDIT_DB", None)
        else:
            os.environ["PNEUMONIA_AUDIT_DB"] = before


async def _idle(page) -> None:
    await page.get_by_test_id("stApp").wait_for()
    await page.wait_for_function(
        "() => { const a = document.querySelector('[data-testid=\"stApp\"]');"
        " return a && a.getAttribute('data-test-script-state') !== 'running'; }", timeout=TIMEOUT_MS)


async def _review_everything(browser, url: str, session: int) -> None:
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    # Enter through the app's front page, as users do: it sets up navigation and the sidebar.
    await page.goto(url)
    await _idle(page)
    await page.get_by_test_id("stSidebarNav").get_by_text("Batch worklist", exact=True).click()
    await page.get_by_role("heading", name="Batch worklist").wait_for()
    await _idle(page)
    files = [{"name": f"s{session}_{case:02d}.jpeg", "mimeType": "image/jpeg",
              "buffer": real_xray_bytes(1000 * session + case, 300, 260, "JPEG")} for case in range(CASES)]
    await page.get_by_test_id("stFileUploaderDropzoneInput").first.set_input_files(files)
    await page.get_by_text("Your decision").wait_for()
    initials = page.get_by_label(re.compile("Your initials"))
    await initials.fill(f"R{session}")
    await initials.press("Enter")
    await page.get_by_text(f"Reviewing as R{session}").wait_for()
    reviewed = page.get_by_test_id("stMetric").filter(has_text="Reviewed").get_by_test_id("stMetricValue")
    for done in range(1, CASES + 1):
        await _idle(page)
        agree = page.get_by_role("button", name="Agree with the model")
        await (agree if await agree.count() else page.get_by_role("button", name="Cannot assess")).click()
        await async_api.expect(reviewed).to_have_text(str(done), timeout=TIMEOUT_MS)
    await context.close()


async def _all_sessions(url: str) -> None:
    async with async_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            await asyncio.gather(*(_review_everything(browser, url, s) for s in range(SESSIONS)))
        finally:
            await browser.close()


def test_six_concurrent_reviewers_lose_nothing(served_log: tuple[str, Path]) -> None:
    url, path = served_log
    asyncio.run(_all_sessions(url))
    log = AuditLog(path)
    events = log.events()
    assert len(events) == SESSIONS * CASES * 2
    reviews = events[events["kind"] == "review"]
    assert len(reviews) == SESSIONS * CASES and reviews["case_event_id"].is_unique
    assert sorted(reviews["reviewer"].value_counts().to_list()) == [CASES] * SESSIONS
    assert set(reviews["case_event_id"]) <= set(events.loc[events["kind"] == "score", "event_id"])
    assert log.verify().ok

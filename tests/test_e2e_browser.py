"""End to end in a real headless Chromium: the dashboard as a clinician uses it.

Starts ``streamlit run streamlit_app.py`` on a free port, opens every page, uploads
images, and moves the threshold slider. Set ``DASHBOARD_SCREENSHOTS=/some/dir`` to save
a full-page screenshot of each step there.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import FULL_RES_SAMPLES, REPO, real_xray_bytes

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
SHOTS = os.environ.get("DASHBOARD_SCREENSHOTS")
TIMEOUT_MS = 90_000

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium")
playwright_api = pytest.importorskip("playwright.sync_api")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(port: int) -> subprocess.Popen:
    """``streamlit run`` in the background; output goes to a pipe nobody reads, so keep it quiet."""
    command = [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.headless", "true",
               "--server.port", str(port), "--server.address", "127.0.0.1", "--logger.level", "error"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_healthy(port: int, process: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited early with status {process.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as response:
                if response.read().strip() == b"ok":
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("streamlit did not become healthy in time")


def stop_server(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=15)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    port = free_port()
    process = start_server(port)
    try:
        wait_healthy(port, process)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_server(process)


@pytest.fixture(scope="module")
def browser() -> Iterator:
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser, server):
    """A fresh browser tab on the app; fails the test if the page fetched anything from outside the server."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    outside: list[str] = []
    page.on("request", lambda request: None if request.url.startswith((server, "data:", "blob:"))
            else outside.append(request.url))
    page.goto(server)
    wait_idle(page)
    yield page
    context.close()
    assert outside == [], f"the dashboard made requests outside the server: {outside[:3]}"


def wait_idle(page) -> None:
    """Wait until the app has rendered and no script run is in progress."""
    page.get_by_test_id("stApp").wait_for()
    page.wait_for_function(
        "() => { const a = document.querySelector('[data-testid=\"stApp\"]');"
        " return a && a.getAttribute('data-test-script-state') !== 'running'; }",
        timeout=TIMEOUT_MS,
    )
    page.wait_for_timeout(300)


def shot(page, name: str) -> None:
    """Save the whole page: Streamlit scrolls inside its own container, so grow the viewport to fit it."""
    if not SHOTS:
        return
    Path(SHOTS).mkdir(parents=True, exist_ok=True)
    wait_idle(page)
    page.wait_for_function("() => Array.from(document.images).every(i => i.complete)")
    size = page.viewport_size
    height = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": size["width"], "height": min(max(height + 40, size["height"]), 8000)})
    page.wait_for_timeout(500)
    page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)
    page.set_viewport_size(size)


def go(page, title: str) -> None:
    page.get_by_test_id("stSidebarNav").get_by_text(title, exact=True).click()
    wait_idle(page)


def metric_value(page, label: str) -> str:
    metric = page.get_by_test_id("stMetric").filter(has_text=label).first
    return metric.get_by_test_id("stMetricValue").inner_text()


def upload(page, files) -> None:
    page.get_by_test_id("stFileUploaderDropzoneInput").first.set_input_files(files)
    wait_idle(page)


def test_every_page_renders_and_threshold_moves_figures(page) -> None:
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_text("Threshold in force").wait_for()
    assert "never replaces" in sidebar.inner_text()
    page.get_by_role("heading", name="Single X-ray triage").wait_for()
    shot(page, "1_single_empty")

    go(page, "Threshold explorer")
    page.get_by_role("heading", name="Threshold explorer").wait_for()
    page.get_by_test_id("stPlotlyChart").first.wait_for()
    before = (metric_value(page, "Images referred"), metric_value(page, "Specificity"))
    threshold_before = re.search(r"Threshold in force:\s*([0-9.]+)", sidebar.inner_text()).group(1)
    shot(page, "3_threshold_explorer")

    thumb = page.get_by_test_id("stSlider").get_by_role("slider")
    thumb.focus()
    for _ in range(3):
        thumb.press("End")  # the highest threshold
    wait_idle(page)
    page.wait_for_function(
        "(t) => !document.querySelector('[data-testid=\"stSidebar\"]').innerText.includes('in force: ' + t)",
        arg=threshold_before)
    after = (metric_value(page, "Images referred"), metric_value(page, "Specificity"))
    assert after != before
    # The highest threshold refers fewer images (only those scored exactly 1.0 remain).
    assert float(after[0].rstrip("%")) < float(before[0].rstrip("%"))
    assert "in force: 1.000" in sidebar.inner_text()
    shot(page, "3_threshold_explorer_moved")

    go(page, "Model card")
    page.get_by_role("heading", name="Limitations").wait_for()
    shot(page, "5_model_card")

    go(page, "Activation maps")
    page.get_by_role("heading", name="Activation maps").wait_for()
    page.get_by_test_id("stImage").nth(1).wait_for()
    shot(page, "4_activation_maps")


@pytest.mark.skipif(not FULL_RES_SAMPLES.is_dir(), reason="full-resolution samples in ../shared are not available")
def test_full_resolution_upload_single_and_batch(page, tmp_path: Path) -> None:
    xray = sorted((FULL_RES_SAMPLES / "PNEUMONIA").glob("*.jpeg"))[0]
    upload(page, str(xray))
    page.get_by_text("Time for this result").wait_for()
    probability = float(metric_value(page, "Probability of pneumonia").lstrip("<> "))
    assert 0.0 <= probability <= 1.0
    page.get_by_test_id("stImage").nth(1).wait_for()
    assert page.get_by_test_id("stImage").count() == 2
    banner = page.get_by_test_id("stMain").get_by_test_id("stAlert").first.inner_text()
    assert "Flag for clinician review" in banner or "No pneumonia detected at this threshold" in banner
    shot(page, "1_single_result")

    go(page, "Batch worklist")
    broken = tmp_path / "broken.jpeg"
    broken.write_bytes(b"this is not an image")
    archive = tmp_path / "day.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("a/second.png", real_xray_bytes(1, 300, 260, "PNG"))
        zf.writestr("a/notes.txt", "not an image")
    normal = sorted((FULL_RES_SAMPLES / "NORMAL").glob("*.jpeg"))[0]
    upload(page, [str(xray), str(normal), str(broken), str(archive)])
    page.get_by_text("Review a case").wait_for()
    assert metric_value(page, "Files") == "5"
    assert metric_value(page, "Could not be scored") == "2"
    page.get_by_test_id("stImage").nth(1).wait_for()
    shot(page, "2_batch_worklist")

    go(page, "Activation maps")
    page.get_by_text("Upload an image").click()
    wait_idle(page)
    upload(page, str(xray))
    page.get_by_test_id("stImage").nth(1).wait_for()
    shot(page, "4_activation_maps_upload")


def test_site_profile_sets_the_operating_point_for_triage(page, tmp_path: Path) -> None:
    """Load a saved site profile on the site page; the sidebar names it and triage uses its threshold."""
    import numpy as np

    from core.calibration import build_profile
    from core.model import DEFAULT_MODEL_PATH, load_metadata

    profile, _ = build_profile("Browser Clinic", load_metadata(DEFAULT_MODEL_PATH).sha256, np.array([0, 0, 1, 1]),
                               np.array([0.1, 0.2, 0.7, 0.9]), rule="manual", value=0.123, n_boot=0)
    saved = profile.write(tmp_path / profile.file_name)
    go(page, "Site calibration")
    page.get_by_role("heading", name="Site calibration").wait_for()
    page.get_by_role("tab", name="Load a saved profile").click()
    page.get_by_test_id("stFileUploaderDropzoneInput").nth(1).set_input_files(str(saved))
    wait_idle(page)
    page.get_by_text("Browser Clinic").first.wait_for()
    page.get_by_role("button", name="Use for this session").click()
    wait_idle(page)
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_text("Browser Clinic").wait_for()
    assert "Threshold in force: 0.123" in sidebar.inner_text()
    assert profile.profile_id in sidebar.inner_text()
    shot(page, "6_site_profile")

    go(page, "Single X-ray")
    xray = tmp_path / "child.jpeg"
    xray.write_bytes(real_xray_bytes(0, 420, 360))
    upload(page, str(xray))
    page.get_by_text("Time for this result").wait_for()
    assert metric_value(page, "Threshold in force") == "0.123"
    banner = page.get_by_test_id("stMain").get_by_test_id("stAlert").first.inner_text()
    assert "threshold 0.123" in banner
    assert "Site profile: Browser Clinic" in sidebar.inner_text()


def test_a_page_opened_by_its_address_first_after_a_start_runs_inside_the_app(browser) -> None:
    """The first visit after a server start comes by a page's own address (a bookmark, or a tab
    reconnecting after a restart): it must still get the app's navigation and shared sidebar,
    not the page alone."""
    port = free_port()
    process = start_server(port)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        wait_healthy(port, process)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(f"http://127.0.0.1:{port}/batch_worklist")
        wait_idle(page)
        page.get_by_role("heading", name="Batch worklist").wait_for()
        sidebar = page.get_by_test_id("stSidebar")
        sidebar.get_by_text("Threshold in force").wait_for()
        assert "never replaces" in sidebar.inner_text()
        nav = page.get_by_test_id("stSidebarNav")
        assert nav.get_by_text("Single X-ray", exact=True).count() == 1
        assert nav.get_by_text("streamlit app", exact=True).count() == 0
    finally:
        context.close()
        stop_server(process)

"""Dashboard latency benchmark.

    python bench/bench_dashboard.py [--repeats 20] [--no-browser]

Measures, with the model the app would load (``$PNEUMONIA_MODEL`` or models/):

1. time to first render: ``streamlit run`` started → the first page's heading drawn in
   headless Chromium (skipped without /usr/bin/chromium), and the first AppTest run
   (which also waits for the model to load);
2. one full-resolution X-ray scored with its Grad-CAM once the model is warm;
3. a threshold-slider move: the core computation (metrics and four figures, serialised
   as Streamlit does) and a whole AppTest rerun of the threshold page.

Targets: first render ≤ 6 s, single image with Grad-CAM ≤ 300 ms, slider update ≤ 100 ms.
"""

from __future__ import annotations

import argparse
import io
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
from PIL import Image

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = Path(__file__).resolve().parent.parent


SAMPLES = REPO.parent / "shared" / "data" / "samples" / "full_resolution"
CHROMIUM = Path("/usr/bin/chromium")
TARGETS = {"first render": 6.0, "single image + Grad-CAM": 0.300, "slider update": 0.100}


def full_resolution_xray() -> tuple[str, bytes]:
    """A real full-resolution sample if present, else a synthetic 2000 × 1600 JPEG."""
    found = sorted(SAMPLES.glob("*/*.jpeg")) if SAMPLES.is_dir() else []
    if found:
        return found[0].name, found[0].read_bytes()
    rng = np.random.default_rng(0)
    gray = np.clip(rng.normal(120, 40, (2000, 1600)), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(gray, mode="L").save(buffer, format="JPEG", quality=90)
    return "synthetic 2000x1600 JPEG", buffer.getvalue()


def summary(samples: list[float]) -> tuple[float, float]:
    """Median and 95th percentile."""
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def browser_first_render() -> float | None:
    """Seconds from launching ``streamlit run`` to the first page's heading in Chromium."""
    if not CHROMIUM.exists():
        return None
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync"])
        page = browser.new_page()
        port = free_port()
        start = time.perf_counter()
        server = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.headless", "true",
             "--server.port", str(port), "--server.address", "127.0.0.1"],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{port}"
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as response:
                        if response.read().strip() == b"ok":
                            break
                except OSError:
                    if time.perf_counter() - start > 60:
                        raise RuntimeError("server did not start") from None
                    time.sleep(0.05)
            page.goto(url)
            page.get_by_role("heading", name="Single X-ray triage").wait_for(timeout=60_000)
            page.get_by_test_id("stFileUploaderDropzoneInput").wait_for(state="attached", timeout=60_000)
            return time.perf_counter() - start
        finally:
            server.terminate()
            server.wait(timeout=30)
            browser.close()


def apptest_first_run() -> float:
    from streamlit.testing.v1 import AppTest

    start = time.perf_counter()
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=300)
    at.run()
    if at.exception:
        raise RuntimeError(at.exception[0].value)
    return time.perf_counter() - start


def single_image(repeats: int) -> tuple[list[float], str]:
    from core.apps.dashboard import load_dashboard_model, triage_image

    name, data = full_resolution_xray()
    model = load_dashboard_model()
    triage_image(model, data)  # warm
    times = []
    for _ in range(repeats):
        times.append(triage_image(model, data).seconds)
    return times, name


def slider_core(repeats: int) -> list[float]:
    import plotly.io as pio
    import plotly.tools

    from core.evaluation.explorer import explorer_data, metrics_at
    from core.evaluation.predictions import load_test_predictions
    from core.model import DEFAULT_MODEL_PATH, sibling_path
    from ui.threshold_explorer import confusion_figure, pr_figure, roc_figure, sweep_figure

    data = explorer_data(load_test_predictions(sibling_path(DEFAULT_MODEL_PATH, "_test_predictions.csv")))
    times = []
    for threshold in np.linspace(0.05, 0.95, repeats):
        start = time.perf_counter()
        m = metrics_at(data, float(threshold))
        for fig in (confusion_figure(m), sweep_figure(data, m), roc_figure(data, m), pr_figure(data, m)):
            # What st.plotly_chart does with a figure before sending it.
            pio.to_json(plotly.tools.return_figure_from_figure_or_data(fig, validate_figure=True), validate=False)
        times.append(time.perf_counter() - start)
    return times


def slider_apptest(repeats: int) -> list[float]:
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.testing.v1 import AppTest, app_test

    class NavigationPages(PagesManager):  # see tests/test_app_pages.py: the server's behaviour after run one
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            PagesManager.uses_pages_directory = False

    app_test.PagesManager = NavigationPages
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=300)
    at.run()
    at.switch_page("pages/threshold_explorer.py").run()
    at.slider(key="explorer_slider").set_value(0.5).run()
    times = []
    for threshold in np.linspace(0.05, 0.95, repeats):
        start = time.perf_counter()
        at.slider(key="explorer_slider").set_value(round(float(threshold), 3)).run()
        times.append(time.perf_counter() - start)
        if at.exception:
            raise RuntimeError(at.exception[0].value)
    return times


def report(name: str, seconds: float, target: float, detail: str = "") -> None:
    verdict = "ok" if seconds <= target else "MISSED"
    print(f"{name:<44} {seconds * 1000:>9.0f} ms   target {target * 1000:>6.0f} ms   {verdict}  {detail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--no-browser", action="store_true", help="skip the Chromium first-render measurement")
    args = parser.parse_args(argv)

    from core.model import DEFAULT_MODEL_PATH

    print(f"model: {DEFAULT_MODEL_PATH}; cpus: {os.cpu_count()}")
    first = None if args.no_browser else browser_first_render()
    if first is None:
        print("first render in Chromium: skipped (no /usr/bin/chromium or --no-browser)")
    else:
        report("first render (server start → page in Chromium)", first, TARGETS["first render"])
    report("first AppTest run (includes model load)", apptest_first_run(), TARGETS["first render"])

    times, name = single_image(args.repeats)
    median, p95 = summary(times)
    report("single image + Grad-CAM (median)", median, TARGETS["single image + Grad-CAM"],
           f"p95 {p95 * 1000:.0f} ms; {name}")

    median, p95 = summary(slider_core(args.repeats))
    report("slider update: core metrics + 4 figures", median, TARGETS["slider update"], f"p95 {p95 * 1000:.0f} ms")
    median, p95 = summary(slider_apptest(args.repeats))
    report("slider update: AppTest rerun of the page", median, TARGETS["slider update"], f"p95 {p95 * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())

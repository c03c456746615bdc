"""Monitoring from the audit log: the figures of core.audit.monitoring and the monitoring page.

The page is run on its own with AppTest (``pages/monitoring.py``; the sidebar belongs to
``streamlit_app.py``), each test with its own log in ``tmp_path`` through
``PNEUMONIA_AUDIT_DB``. Logs are written with the real ``AuditLog``, so their chains are
valid unless a test breaks one on purpose.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest

from core.audit import AuditLog, Context, Event, review_event, score_event
from core.audit.monitoring import (
    MIN_SCORES_FOR_DRIFT,
    PSI_MAJOR,
    PSI_MODERATE,
    drift,
    load_events,
    psi,
    recent_scores,
    totals,
    weekly,
    wilson,
)
from core.model import DEFAULT_MODEL_PATH, metadata_path, sibling_path
from core.scoring.outcome import refused, scored, unreadable
from helpers import REPO
from ui import monitoring as view

PAGE = str(REPO / "pages" / "monitoring.py")
CTX = Context(model_sha256="a" * 64, app_version="test", threshold=0.5)
VALIDATION_CSV = sibling_path(DEFAULT_MODEL_PATH, "_val_predictions.csv")
needs_model = pytest.mark.skipif(not metadata_path(DEFAULT_MODEL_PATH).is_file() or not VALIDATION_CSV.is_file(),
                                 reason="the shipped model's metadata and validation predictions are not present")


# --- building logs --------------------------------------------------------------------------------------------------

def at(event: Event, when: str | datetime) -> Event:
    """``event`` as if recorded at ``when``."""
    if isinstance(when, datetime):
        when = when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return dataclasses.replace(event, time_utc=when)


def score(probability: float, when: str | datetime, context: Context = CTX) -> Event:
    return at(score_event(scored("case", probability), context), when)


def scores_at(probabilities, when: datetime, context: Context = CTX) -> list[Event]:
    """One score record per probability, a minute apart from ``when``."""
    return [score(float(p), when + timedelta(minutes=i), context) for i, p in enumerate(probabilities)]


def write(path: Path, events: list[Event]) -> AuditLog:
    log = AuditLog(path)
    log.append(events)
    return log


def hand_made() -> tuple[list[Event], dict]:
    """Two weeks of records at threshold 0.5, with what each week should count."""
    s1 = score(0.9, "2025-03-03T08:00:00.000000Z")  # Monday of week 1: referred
    s2 = score(0.2, "2025-03-04T08:00:00.000000Z")  # not referred
    s3 = score(0.7, "2025-03-05T08:00:00.000000Z")  # referred
    r1 = at(score_event(refused("case", "not_xray", "not a chest X-ray"), CTX), "2025-03-06T08:00:00.000000Z")
    u1 = at(score_event(unreadable("case", "broken file"), CTX), "2025-03-09T23:59:59.999999Z")  # Sunday, week 1
    s4 = score(0.4, "2025-03-10T00:00:00.000000Z")  # Monday of week 2, at midnight
    reviews = [
        at(review_event(s1, CTX, "AK", "agree"), "2025-03-06T09:00:00.000000Z"),  # agrees
        at(review_event(s3, CTX, "AK", "normal"), "2025-03-07T09:00:00.000000Z"),  # overrides: disagrees
        at(review_event(s2, CTX, "AK", "normal"), "2025-03-07T10:00:00.000000Z"),  # same call as the model: agrees
        at(review_event(r1, CTX, "AK", "cannot_assess"), "2025-03-08T09:00:00.000000Z"),  # no call: left out
        at(review_event(s4, CTX, "AK", "pneumonia"), "2025-03-11T09:00:00.000000Z"),  # overrides: disagrees
    ]
    events = sorted([s1, s2, s3, r1, u1, s4, *reviews], key=lambda e: e.time_utc)
    expected = {
        pd.Timestamp("2025-03-03"): {"images": 5, "scored": 3, "referred": 2, "refused": 1, "reviews": 3,
                                     "agreements": 2},
        pd.Timestamp("2025-03-10"): {"images": 1, "scored": 1, "referred": 0, "refused": 0, "reviews": 1,
                                     "agreements": 0},
    }
    return events, expected


def validation_frame() -> pd.DataFrame:
    return pd.read_csv(VALIDATION_CSV)


# --- core.audit.monitoring ------------------------------------------------------------------------------------------

GRID = np.linspace(0.0005, 0.9995, 1000)  # validation scores spread evenly over [0, 1]


def shifted(share_low: float, n: int = 2000) -> np.ndarray:
    """Scores like GRID, with ``share_low`` of them moved into [0, 0.25)."""
    low = int(n * share_low)
    return np.r_[np.linspace(0.0005, 0.9995, n - low), np.linspace(0.0005, 0.2495, low)]


def test_psi_is_zero_for_the_same_distribution_and_large_for_a_shifted_one() -> None:
    assert psi(GRID, GRID) == pytest.approx(0.0, abs=1e-12)
    assert psi(np.linspace(0.0005, 0.9995, 400), GRID) < 0.01  # same shape, other sample size
    assert psi(shifted(0.4), GRID) > PSI_MAJOR
    assert psi(np.full(500, 0.99), GRID) > 1.0


def test_psi_ignores_differences_beyond_the_third_decimal() -> None:
    # A confident model: half the validation scores just below 1. Scores moved in the fifth decimal
    # are shown the same on every page and must not read as drift.
    validation = np.r_[GRID[:500], 1 - np.linspace(1e-4, 1e-6, 500)]
    nudged = np.r_[GRID[:500], np.full(500, 1 - 1e-7)]
    assert psi(nudged, validation) < 0.01


def test_drift_levels_and_words() -> None:
    few = drift(GRID[:MIN_SCORES_FOR_DRIFT - 1], GRID)
    assert (few.level, few.psi) == ("too few", None)
    stable = drift(GRID, GRID)
    assert stable.level == "stable" and stable.psi < PSI_MODERATE
    moved = drift(shifted(0.2), GRID)
    assert moved.level == "moved" and PSI_MODERATE <= moved.psi < PSI_MAJOR
    a_lot = drift(shifted(0.4), GRID)
    assert a_lot.level == "moved a lot" and a_lot.psi >= PSI_MAJOR
    assert "validation images" in moved.message and "site calibration" in a_lot.message


@pytest.mark.parametrize(("successes", "trials"), [(0, 1), (0, 20), (3, 4), (45, 50), (50, 50), (512, 1000)])
def test_wilson_contains_the_estimate_and_matches_scipy(successes: int, trials: int) -> None:
    from scipy.stats import binomtest

    low, high = wilson(successes, trials)
    assert 0.0 <= low <= successes / trials <= high <= 1.0
    reference = binomtest(successes, trials).proportion_ci(0.95, method="wilson")
    assert (low, high) == pytest.approx((reference.low, reference.high), abs=1e-9)


def test_wilson_without_trials_is_undefined() -> None:
    assert all(math.isnan(v) for v in wilson(0, 0))


def test_weekly_counts_a_hand_made_log(tmp_path: Path) -> None:
    events, expected = hand_made()
    log = write(tmp_path / "audit.sqlite3", events)
    frame = load_events(log)
    assert len(frame) == len(events)
    table = weekly(frame, None).set_index("week")
    assert list(table.index) == list(expected)
    for week, counts in expected.items():
        assert table.loc[week, list(counts)].to_dict() == counts
    first = table.loc[pd.Timestamp("2025-03-03")]
    assert first["referred_share"] == pytest.approx(2 / 3)
    assert first["refused_share"] == pytest.approx(1 / 5)
    assert first["agreement"] == pytest.approx(2 / 3)
    assert first["agreement_low"] <= first["agreement"] <= first["agreement_high"]
    assert table["psi"].isna().all()  # no validation scores given
    with_validation = weekly(frame, GRID)
    assert with_validation["psi"].isna().all()  # too few scores in either week


def test_weekly_drift_per_week_and_totals(tmp_path: Path) -> None:
    monday = datetime(2025, 6, 2, 8, tzinfo=UTC)
    log = write(tmp_path / "audit.sqlite3", scores_at(GRID[::4], monday)
                + scores_at(shifted(0.4, 250), monday + timedelta(weeks=1)))
    table = weekly(load_events(log), GRID)
    assert list(table["scored"]) == [250, 250]
    assert table["psi"].iloc[0] < PSI_MODERATE < PSI_MAJOR < table["psi"].iloc[1]
    t = totals(table)
    assert (t.images, t.scored, t.reviews) == (500, 500, 0)
    assert t.referred_share == pytest.approx(table["referred"].sum() / 500)
    assert math.isnan(t.agreement) and math.isnan(t.agreement_low)


def test_totals_and_recent_scores(tmp_path: Path) -> None:
    events, _ = hand_made()
    frame = load_events(write(tmp_path / "audit.sqlite3", events))
    t = totals(weekly(frame, None))
    assert (t.images, t.scored, t.referred, t.refused, t.reviews, t.agreements) == (6, 4, 2, 1, 4, 2)
    assert t.agreement == 0.5 and t.agreement_low < 0.5 < t.agreement_high
    recent, first = recent_scores(frame, weeks=1)
    assert first == pd.Timestamp("2025-03-10") and list(recent) == [0.4]
    recent, first = recent_scores(frame, weeks=4)
    assert sorted(recent) == [0.2, 0.4, 0.7, 0.9]
    assert load_events(write(tmp_path / "other.sqlite3", []), "2025-01-01").empty


def test_load_events_from_a_start_time(tmp_path: Path) -> None:
    events, _ = hand_made()
    log = write(tmp_path / "audit.sqlite3", events)
    frame = load_events(log, "2025-03-10")
    assert len(frame) == 2 and set(frame["week"]) == {pd.Timestamp("2025-03-10")}


# --- ui.monitoring --------------------------------------------------------------------------------------------------

def test_events_are_read_again_only_from_the_last_record_read(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from core.audit import monitoring as core_monitoring

    reads: list[tuple[int, int | None]] = []
    original = core_monitoring.load_events

    def counting(log, start=None, after_seq=0, upto_seq=None):
        reads.append((after_seq, upto_seq))
        return original(log, start, after_seq, upto_seq)

    monkeypatch.setattr(view, "load_events", counting)
    events, _ = hand_made()
    log = write(tmp_path / "audit.sqlite3", events[:6])
    first = view.events(log, log.stamp())
    assert len(first) == 6 and reads == [(0, 6)]
    assert view.events(log, log.stamp()) is first and len(reads) == 1  # unchanged: nothing read

    stamp = log.stamp()
    log.append(events[6:])
    log.append([score(0.3, "2025-03-12T08:00:00.000000Z")])  # after the stamp below: not read yet
    grown = view.events(log, (stamp[0] + 5, stamp[1] + 5))
    assert reads[-1] == (6, 11) and len(grown) == len(events) and len(first) == 6
    everything = weekly(grown, None)
    pd.testing.assert_frame_equal(everything, weekly(load_events(log, upto_seq=11), None))

    log.purge(183, now=datetime(2025, 9, 20, tzinfo=UTC))  # drops the March records: read everything again
    after = view.events(log, log.stamp())
    assert reads[-1] == (0, log.stamp()[1]) and set(after["kind"]) == {"purge"}


def test_weeks_without_records_are_gaps_not_bridges(tmp_path: Path) -> None:
    log = write(tmp_path / "audit.sqlite3", scores_at([0.9, 0.1], datetime(2025, 3, 4, tzinfo=UTC))
                + scores_at([0.8], datetime(2025, 3, 25, tzinfo=UTC)))
    summary = view.summarise(load_events(log), GRID)
    assert list(summary.table["week"]) == list(pd.date_range("2025-03-03", "2025-03-24", freq="7D"))
    assert list(summary.table["images"]) == [2, 0, 0, 1]
    assert summary.totals.images == 3
    shares = view.shares_figure(summary.table).data[0].y
    assert list(shares) == [0.5, None, None, 1.0]


def test_period_start_is_a_monday_weeks_back() -> None:
    wednesday = datetime(2025, 3, 12, 15, tzinfo=UTC)
    assert view.period_start(0, wednesday) is None
    assert view.period_start(1, wednesday) == pd.Timestamp("2025-03-10")
    assert view.period_start(4, wednesday) == pd.Timestamp("2025-02-17")


def test_figures_hold_the_weekly_figures(tmp_path: Path) -> None:
    events, _ = hand_made()
    summary = view.summarise(load_events(write(tmp_path / "audit.sqlite3", events)), GRID)
    volume = view.volume_figure(summary.table)
    assert [t.name for t in volume.data] == ["scored", "refused by the gate", "unreadable"]
    assert [list(t.y) for t in volume.data] == [[3, 1], [1, 0], [1, 0]]
    assert volume.layout.barmode == "stack"
    shares = view.shares_figure(summary.table)
    assert list(shares.data[0].y) == pytest.approx([2 / 3, 0.0])
    agreement = view.agreement_figure(summary.table)
    assert list(agreement.data[2].y) == pytest.approx([2 / 3, 0.0]) and agreement.data[1].fill == "tonexty"
    assert all(low <= mid <= high for low, mid, high in zip(*(t.y for t in (agreement.data[1], agreement.data[2],
                                                                          agreement.data[0])), strict=True))
    drift_lines = sorted(shape.y0 for shape in view.psi_figure(summary.table).layout.shapes)
    assert drift_lines == [PSI_MODERATE, PSI_MAJOR]
    histogram = view.histogram_figure(summary.recent, GRID)
    assert sum(histogram.data[1].y) == pytest.approx(1.0) and len(histogram.data[1].y) == 20


# --- the page -------------------------------------------------------------------------------------------------------

@pytest.fixture
def log_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "audit.sqlite3"
    monkeypatch.setenv("PNEUMONIA_AUDIT_DB", str(path))
    return path


def run_page() -> AppTest:
    page = AppTest.from_file(PAGE, default_timeout=120)
    page.run()
    assert not page.exception, [e.value for e in page.exception]
    return page


def metric_values(page: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in page.metric}


CHARTS = ("monitoring_volume", "monitoring_shares", "monitoring_agreement", "monitoring_psi", "monitoring_histogram")


def chart_keys(page: AppTest) -> set[str]:
    """The keys of the plotly charts on the page (an element's id ends with its key)."""
    return {key for key in CHARTS for chart in page.get("plotly_chart") if chart.proto.id.endswith(key)}


def drift_banner(page: AppTest) -> tuple[str, str]:
    for kind in ("warning", "success", "info"):
        for element in page.get(kind):
            if "Scores" in element.value or "drift" in element.value:
                return kind, element.value
    raise AssertionError("no drift banner")


@needs_model
def test_page_with_an_empty_log_says_nothing_is_recorded(log_path: Path) -> None:
    page = run_page()
    assert page.title[0].value == "Monitoring"
    assert any("Nothing recorded yet" in i.value for i in page.info)
    assert not page.get("plotly_chart") and not page.metric and not page.get("download_button")
    assert log_path.is_file()  # the page opened (and so created) the configured log


@needs_model
def test_page_shows_the_hand_made_figures(log_path: Path) -> None:
    from scipy.stats import binomtest

    events, _ = hand_made()
    write(log_path, events)
    page = run_page()
    interval = binomtest(2, 4).proportion_ci(0.95, method="wilson")
    assert metric_values(page) == {"Images scored": "4", "Referred": "50.0%", "Refused by the gate": "16.7%",
                                   "Reviewer agreement": "50%"}
    agreement = next(m for m in page.metric if m.label == "Reviewer agreement")
    assert agreement.delta == f"95% CI {interval.low:.0%}–{interval.high:.0%}"
    kind, text = drift_banner(page)
    assert kind == "info" and "Too few scores" in text
    assert chart_keys(page) == set(CHARTS)
    volume = next(c for c in page.get("plotly_chart") if c.proto.id.endswith("monitoring_volume"))
    volume = json.loads(volume.proto.spec)
    assert [trace["y"] for trace in volume["data"]] == [[3, 1], [1, 0], [1, 0]]
    assert any("approximate" in c.value for c in page.caption)  # the recalibration note


@needs_model
def test_page_warns_when_recent_scores_moved(log_path: Path) -> None:
    validation = validation_frame()
    normal = validation.loc[validation["label"] == "NORMAL", "probability"]
    this_week = datetime.now(UTC) - timedelta(hours=1)
    write(log_path, scores_at(validation["probability"], this_week - timedelta(weeks=8))
          + scores_at(np.resize(normal.to_numpy(), 300), this_week - timedelta(days=3)))
    page = run_page()
    kind, text = drift_banner(page)
    assert kind == "warning" and "moved a lot" in text and "PSI" in text
    assert "300 scored images" in text  # the last four weeks only: the validation-like scores are older
    assert {"monitoring_psi", "monitoring_histogram"} <= chart_keys(page)


@needs_model
def test_page_says_stable_when_scores_match_validation(log_path: Path) -> None:
    scores = validation_frame()["probability"]
    write(log_path, scores_at(scores, datetime.now(UTC) - timedelta(days=6)))
    page = run_page()
    kind, text = drift_banner(page)
    assert kind == "success" and "stable" in text and "PSI 0.00" in text
    assert metric_values(page)["Images scored"] == f"{len(scores):,}"


@needs_model
def test_page_period_filter_counts_recent_weeks_only(log_path: Path) -> None:
    now = datetime.now(UTC)
    write(log_path, scores_at([0.9] * 5, now - timedelta(weeks=20)) + scores_at([0.1] * 3, now - timedelta(minutes=30)))
    page = run_page()
    assert metric_values(page)["Images scored"] == "8"
    page.selectbox(key="monitoring_period").set_value(4).run()
    assert not page.exception
    assert metric_values(page)["Images scored"] == "3" and metric_values(page)["Referred"] == "0.0%"
    assert metric_values(page)["Reviewer agreement"] == "—"
    assert any("No reviews" in c.value for c in page.caption)


@needs_model
def test_page_notes_records_made_under_a_site_profile(log_path: Path) -> None:
    site = dataclasses.replace(CTX, site_profile_id="site-0001")
    write(log_path, scores_at([0.3, 0.8], datetime(2025, 5, 5, tzinfo=UTC), site)
          + scores_at([0.6, 0.2], datetime(2025, 5, 6, tzinfo=UTC)))
    page = run_page()
    note = next(i.value for i in page.info if "site profile" in i.value)
    assert note.startswith("50%") and "approximate" in note


@needs_model
def test_page_without_validation_scores_skips_drift(log_path: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(view, "sibling_path", lambda path, suffix: tmp_path / f"absent{suffix}")
    events, _ = hand_made()
    write(log_path, events)
    page = run_page()
    assert any("cannot be measured" in c.value for c in page.caption)
    assert "monitoring_psi" not in chart_keys(page) and "monitoring_volume" in chart_keys(page)
    assert "validation scores are missing" in drift_banner(page)[1]


@needs_model
def test_page_downloads_csv_and_fhir_for_the_date_range(log_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    made: dict[str, object] = {}
    original = MediaFileManager.add_deferred

    def record(self, data_callable, mimetype, coordinates, file_name=None, **kwargs):
        made[file_name] = data_callable
        return original(self, data_callable, mimetype, coordinates, file_name, **kwargs)

    monkeypatch.setattr(MediaFileManager, "add_deferred", record)
    events, _ = hand_made()
    write(log_path, events)
    page = run_page()
    assert {key for key in ("monitoring_csv", "monitoring_fhir")
            for button in page.get("download_button") if button.proto.id.endswith(key)} == {"monitoring_csv",
                                                                                           "monitoring_fhir"}
    start, end = page.date_input(key="monitoring_export_range").value
    assert start == datetime(2025, 3, 3).date() and end == datetime.now(UTC).date()
    rows = list(csv.DictReader(io.StringIO(made[f"audit_{start}_{end}.csv"]().decode("utf-8"))))
    assert len(rows) == len(events) and {"hash", "prev_hash"} <= rows[0].keys()
    bundle = json.loads(made[f"reviews_{start}_{end}.json"]())
    assert bundle["resourceType"] == "Bundle" and len(bundle["entry"]) == 2 * 5  # a report and an observation each

    page.date_input(key="monitoring_export_range").set_value((datetime(2025, 3, 10).date(),
                                                              datetime(2025, 3, 16).date())).run()
    rows = list(csv.DictReader(io.StringIO(made["audit_2025-03-10_2025-03-16.csv"]().decode("utf-8"))))
    assert len(rows) == 2  # the second week: one score and one review


@needs_model
def test_verify_button_reports_intact_then_broken_after_tampering(log_path: Path) -> None:
    events, _ = hand_made()
    write(log_path, events)
    page = run_page()
    page.button(key="monitoring_verify").click().run()
    assert any("Chain intact" in s.value and f"{len(events)} records" in s.value for s in page.success)

    with sqlite3.connect(log_path) as conn:  # what someone editing the file behind the app's back would do
        conn.execute("DROP TRIGGER events_no_update")
        conn.execute("UPDATE events SET probability = 0.01 WHERE seq = 3")
    conn.close()
    page.button(key="monitoring_verify").click().run()
    assert not page.exception
    errors = [e.value for e in page.error]
    assert any("chain is broken" in e and "record 3" in e for e in errors), errors
    assert not any("Chain intact" in s.value for s in page.success)


def test_a_case_reviewed_twice_counts_once_with_its_latest_decision() -> None:
    week = pd.Timestamp("2026-01-05")
    frame = pd.DataFrame({
        "kind": ["score", "review", "review", "score", "review"], "week": [week] * 5,
        "gate_outcome": ["scored"] * 5, "decision": ["PNEUMONIA"] * 5, "probability": [0.9] * 5,
        "review_decision": ["", "agree", "normal", "", "agree"], "case_event_id": ["", "a", "a", "", "b"]})
    row = weekly(frame, None).iloc[0]
    assert (row["reviews"], row["agreements"]) == (2, 1)

"""Reviewer decisions on the triage pages, recorded in the audit log, through Streamlit's AppTest."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest
from test_app_pages import assert_clean, jpeg, start

from core.audit import AuditLog
from helpers.dicom import SECRETS, dicom_bytes


@pytest.fixture
def log_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "audit.sqlite3"
    monkeypatch.setenv("PNEUMONIA_AUDIT_DB", str(path))
    return path


def sign_in(at: AppTest, key: str, initials: str = "AK") -> None:
    at.text_input(key=f"{key}_initials_input").input(initials).run()
    assert_clean(at)


def test_single_page_records_the_score_and_the_review(log_path: Path) -> None:
    at = start()
    at.file_uploader(key="single_upload").set_value(("child.jpeg", jpeg(seed=4), "image/jpeg")).run()
    assert_clean(at)
    events = AuditLog(log_path).events()
    assert list(events["kind"]) == ["score"] and events["gate_outcome"][0] == "scored"

    sign_in(at, "single_review")
    buttons = {b.label for b in at.button}
    assert "Agree with the model" in buttons and "Cannot assess" in buttons
    at.text_input(key="single_review_reason").input("hazy left base").run()
    at.button(key="single_review_agree").click().run()
    assert_clean(at)
    assert any("Recorded: agreed" in s.value for s in at.success)
    at.run()  # a rerun records nothing more
    events = AuditLog(log_path).events()
    assert list(events["kind"]) == ["score", "review"]
    review = events.iloc[1]
    assert (review["reviewer"], review["review_decision"], review["review_reason"]) == ("AK", "agree", "hazy left base")
    assert review["case_event_id"] == events["event_id"][0]
    assert review["pixel_sha256"] == events["pixel_sha256"][0] != ""
    assert AuditLog(log_path).verify().ok


def test_worklist_review_advances_filters_and_downloads(log_path: Path) -> None:
    at = start("pages/batch_worklist.py")
    at.file_uploader(key="batch_upload").set_value([
        ("a.jpeg", jpeg(seed=11), "image/jpeg"),
        ("b.jpeg", jpeg(seed=12), "image/jpeg"),
        ("broken.jpeg", b"not an image", "image/jpeg"),
    ]).run()
    assert_clean(at)
    assert list(AuditLog(log_path).events()["gate_outcome"]) .count("unreadable") == 1
    assert at.selectbox(key="batch_case").value == 1
    sign_in(at, "batch_review")
    at.button(key="batch_review_agree").click().run()
    assert_clean(at)
    assert at.selectbox(key="batch_case").value == 2  # moved on to the next case to review
    override = next(b for b in at.button if b.label.startswith("Override"))
    override.click().run()
    assert at.selectbox(key="batch_case").value == 3
    # The unreadable file can only be called by the reviewer.
    assert {b.label for b in at.button if b.key and b.key.startswith("batch_review_")} == {
        "Override: pneumonia", "Override: no pneumonia", "Cannot assess"}
    at.button(key="batch_review_cannot_assess").click().run()
    assert_clean(at)

    table = at.dataframe(key="batch_table").value
    assert table["review"].tolist()[0].startswith("agreed (AK)")
    assert table["review"].tolist()[1].startswith("overridden")
    assert table["review"].tolist()[2] == "cannot assess (AK)"
    at.segmented_control(key="batch_review_filter").set_value("Overridden").run()
    assert len(at.dataframe(key="batch_table").value) == 2
    at.segmented_control(key="batch_review_filter").set_value("To review").run()
    assert_clean(at)
    assert any("No case matches" in i.value for i in at.info)

    events = AuditLog(log_path).events()
    assert (events["kind"] == "review").sum() == 3 and AuditLog(log_path).verify().ok


def test_nothing_identifying_reaches_the_log(log_path: Path) -> None:
    """A DICOM whose tags name the patient, in files named after the patient: none of it is stored."""
    rng = np.random.default_rng(3)
    pixels = (np.clip(rng.normal(2000, 600, (300, 260)), 0, 4095)).astype(np.uint16)
    data = dicom_bytes(pixels, bits_stored=12)
    file_name = "Doe_Jane_MRN-4711-0815.dcm"
    at = start()
    at.file_uploader(key="single_upload").set_value((file_name, data, "application/dicom")).run()
    assert_clean(at)
    sign_in(at, "single_review")
    next(b for b in at.button if b.key and b.key.startswith("single_review_")).click().run()
    at.switch_page("pages/batch_worklist.py").run()
    archive = io.BytesIO()
    import zipfile

    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(f"Doe Jane/{file_name}", data)
    at.file_uploader(key="batch_upload").set_value([(file_name, data, "application/dicom"),
                                                    ("Jane Doe 2019.zip", archive.getvalue(), "application/zip")]).run()
    assert_clean(at)
    events = AuditLog(log_path).events()
    assert (events["kind"] == "score").sum() == 3 and (events["kind"] == "review").sum() >= 1
    raw = b"".join(p.read_bytes() for p in log_path.parent.glob(log_path.name + "*"))
    # Short all-digit pieces (4711, 0815) are left out: they turn up by chance in hexadecimal hashes.
    identifying = [s for s in SECRETS if not (s.isdigit() and len(s) < 8)]
    for secret in (*identifying, "MRN-4711-0815", "Doe_Jane", "Jane Doe", ".dcm", ".zip"):
        assert secret.encode() not in raw, secret
    assert raw.count(pixel_marker(events)) >= 1  # the records are there, as hashes


def pixel_marker(events) -> bytes:
    return events["pixel_sha256"].dropna().iloc[0].encode()

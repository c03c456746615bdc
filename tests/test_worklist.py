"""Batch worklist (core.worklist): every file becomes a case, ranked, exported, in bounded memory."""

from __future__ import annotations

import base64
import csv
import io
import tracemalloc
import zipfile

import numpy as np
import pytest
from PIL import Image

from core.errors import ImageError
from core.inputs.sources import iter_upload_sources as expand_uploads
from core.scoring import Status, predict_one
from core.scoring.outcome import refused, scored, unreadable
from helpers import image_bytes, xray_like
from ui.wording import CLEAR_TEXT, FAILED_TEXT, FLAG_TEXT, REFUSED_TEXT, decision_text
from ui.worklist import (
    CSV_COLUMNS,
    MISSING_THUMBNAIL,
    THUMB_SIDE,
    Entry,
    rank_entries,
    score_entries,
    score_worklist,
    thumbnail_uri,
    worklist_counts,
    worklist_csv,
    worklist_frame,
)


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def decode_uri(uri: str) -> Image.Image:
    prefix = "data:image/png;base64,"
    assert uri.startswith(prefix)
    return Image.open(io.BytesIO(base64.b64decode(uri[len(prefix):])))


def test_expand_uploads_opens_archives_and_keeps_failures() -> None:
    good = image_bytes(seed=1)
    archive = zip_bytes({"day/a.jpeg": good, "day/notes.txt": b"hello", "__MACOSX/._a.jpeg": b"x"})
    items = list(expand_uploads([("one.jpeg", good), ("day.zip", archive), ("bad.zip", b"PK\x03\x04broken")]))
    names = [name for name, _ in items]
    assert names == ["one.jpeg", "day.zip/day/a.jpeg", "day.zip/day/notes.txt", "bad.zip"]
    assert items[0][1] is good  # plain uploads are not copied
    assert isinstance(items[3][1], ImageError)


def test_an_empty_archive_is_listed_not_dropped() -> None:
    [(name, error)] = list(expand_uploads([("empty.zip", zip_bytes({"folder/": b"", "__MACOSX/._x": b"x"}))]))
    assert name == "empty.zip" and isinstance(error, ImageError) and "no files" in str(error)


def test_expand_uploads_cleans_display_names() -> None:
    [(name, _)] = list(expand_uploads([("../../etc/\x1bpasswd.jpeg", b"x")]))
    assert ".." not in name and "\x1b" not in name


def test_score_cases_keeps_order_and_reports_every_failure(tiny_bundle) -> None:
    good = [image_bytes(120, 100, seed=s) for s in range(3)]
    items = [("a.jpeg", good[0]), ("broken.jpeg", b"not an image"), ("b.png", image_bytes(90, 90, "PNG", seed=7)),
             ("refused", ImageError("nested archives are not opened")), ("c.jpeg", good[2])]
    entries = list(score_entries(tiny_bundle, items, batch_size=2))
    cases = [e.outcome for e in entries]
    assert [c.name for c in cases] == ["a.jpeg", "broken.jpeg", "b.png", "refused", "c.jpeg"]
    assert [c.ok for c in cases] == [True, False, True, False, True]
    assert [c.status for c in cases][1] is Status.UNREADABLE and cases[1].code == "unreadable"
    assert "not a supported image" in cases[1].error
    assert cases[3].error == "nested archives are not opened"
    assert entries[1].thumbnail is None and cases[1].data is None
    assert all(c.gray is None for c in cases)  # decoded pixels are not kept
    # The probability is the one every other path (CLI, single-image page) gives.
    assert cases[0].probability == pytest.approx(predict_one(tiny_bundle, good[0]), abs=1e-6)
    assert cases[4].probability == pytest.approx(predict_one(tiny_bundle, good[2]), abs=1e-6)
    assert cases[0].data is good[0]


def test_thumbnails_are_small_pngs_with_the_aspect_ratio(tiny_bundle) -> None:
    [case] = list(score_entries(tiny_bundle, [("wide.jpeg", image_bytes(300, 600, seed=2))]))
    thumb = decode_uri(case.thumbnail)
    assert thumb.size == (THUMB_SIDE, THUMB_SIDE // 2)
    assert decode_uri(MISSING_THUMBNAIL).size == (THUMB_SIDE, THUMB_SIDE)
    with pytest.raises(ValueError):
        thumbnail_uri(np.zeros((4, 4, 3), np.uint8))


def test_score_worklist_reports_progress(tiny_bundle) -> None:
    calls: list[tuple[int, int]] = []
    items = [(f"{i}.jpeg", image_bytes(seed=i)) for i in range(5)]
    cases = score_worklist(tiny_bundle, items, progress=lambda d, t: calls.append((d, t)), batch_size=2)
    assert len(cases) == 5
    assert calls == [(i, 5) for i in range(1, 6)]


def test_score_entries_refuses_bad_batch_size(tiny_bundle) -> None:
    with pytest.raises(ValueError):
        list(score_entries(tiny_bundle, [], batch_size=0))


def sample_cases() -> list[Entry]:
    return [
        Entry(scored("low.jpeg", 0.10), thumbnail="data:,"),
        Entry(unreadable("broken.jpeg", "corrupt image data (OSError)")),
        Entry(scored("high.jpeg", 0.90), thumbnail="data:,"),
        Entry(scored("mid-b.jpeg", 0.50), thumbnail="data:,"),
        Entry(scored("mid-a.jpeg", 0.50), thumbnail="data:,"),
    ]


def test_rank_entries_highest_first_then_failures() -> None:
    ranked = rank_entries(sample_cases())
    assert [c.outcome.name for c in ranked] == ["high.jpeg", "mid-a.jpeg", "mid-b.jpeg", "low.jpeg", "broken.jpeg"]


def test_worklist_frame_decisions_follow_the_threshold() -> None:
    frame = worklist_frame(sample_cases(), threshold=0.5)
    assert list(frame["rank"]) == [1, 2, 3, 4, 5]
    assert list(frame["decision"]) == [FLAG_TEXT, FLAG_TEXT, FLAG_TEXT, CLEAR_TEXT, FAILED_TEXT]
    assert frame.loc[4, "error"] == "corrupt image data (OSError)"
    assert np.isnan(frame.loc[4, "probability"])
    assert frame.loc[4, "thumbnail"] == MISSING_THUMBNAIL
    assert list(frame["status"]) == ["scored"] * 4 + ["unreadable"]
    assert worklist_counts(frame) == {"total": 5, "flagged": 3, "clear": 1, "refused": 0, "unreadable": 1,
                                      "failed": 1}
    stricter = worklist_frame(sample_cases(), threshold=0.6)
    assert worklist_counts(stricter) == {"total": 5, "flagged": 1, "clear": 3, "refused": 0, "unreadable": 1,
                                         "failed": 1}
    with pytest.raises(ValueError):
        worklist_frame(sample_cases(), threshold=1.5)


def test_worklist_frame_and_counts_when_empty() -> None:
    frame = worklist_frame([], threshold=0.5)
    assert frame.empty
    assert worklist_counts(frame) == {"total": 0, "flagged": 0, "clear": 0, "refused": 0, "unreadable": 0,
                                      "failed": 0}


def test_refusals_are_counted_by_status_not_by_wording() -> None:
    entries = [*sample_cases(), Entry(refused("cat.jpeg", "colour", "colour image; chest X-rays are grayscale"))]
    frame = worklist_frame(entries, threshold=0.5)
    row = frame[frame["file"] == "cat.jpeg"].iloc[0]
    assert row["status"] == "refused" and row["reason_code"] == "colour" and row["decision"] == REFUSED_TEXT
    assert row["error"].startswith("cannot assess: colour image")
    counts = worklist_counts(frame)
    assert counts["refused"] == 1 and counts["unreadable"] == 1 and counts["failed"] == 2


def test_decision_text() -> None:
    assert decision_text("PNEUMONIA") == FLAG_TEXT
    assert decision_text("NORMAL") == CLEAR_TEXT
    assert decision_text(None) == FAILED_TEXT


def test_worklist_csv_lists_every_case_safely() -> None:
    cases = [*sample_cases(), Entry(scored("=HYPERLINK(1).jpeg", 0.7)), Entry(unreadable("-x.png", "bad\nline"))]
    frame = worklist_frame(cases, threshold=0.5)
    rows = list(csv.reader(io.StringIO(worklist_csv(frame, 0.5).decode("utf-8"))))
    assert tuple(rows[0]) == CSV_COLUMNS
    body = rows[1:]
    assert len(body) == 7
    assert body[0][1:5] == ["high.jpeg", "0.900000", FLAG_TEXT, "0.500000"]
    injected = next(r for r in body if "HYPERLINK" in r[1])
    assert injected[1].startswith("'=")
    failed = next(r for r in body if "x.png" in r[1])
    assert failed[1] == "'-x.png" and failed[2] == "" and failed[5] == "bad line"
    assert failed[6] == "unreadable" and failed[7] == "unreadable"


def test_memory_stays_bounded_for_hundreds_of_full_resolution_images(tiny_bundle) -> None:
    """300 detector-sized JPEGs: peak Python memory stays far below holding their pixels."""
    gray = np.tile(xray_like(200, 160, seed=3), (10, 10))  # 2000 × 1600
    buffer = io.BytesIO()
    Image.fromarray(gray, mode="L").save(buffer, format="JPEG", quality=85)
    data = buffer.getvalue()
    count = 300
    items = ((f"{i}.jpeg", data) for i in range(count))
    tracemalloc.start()
    try:
        entries = list(score_entries(tiny_bundle, items, batch_size=16))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(entries) == count and all(e.outcome.ok for e in entries)
    decoded_size = count * gray.size  # what keeping the decoded images would cost
    assert peak < decoded_size / 10, f"peak {peak / 2**20:.0f} MB"
    assert all(e.outcome.data is data for e in entries)  # bytes shared, not copied
    assert max(len(e.thumbnail) for e in entries) < 20_000


def test_reviews_show_filter_and_download() -> None:
    from core.audit import Context, review_event, score_event
    from ui.worklist import filter_by_review

    ctx = Context(model_sha256="ab" * 32, app_version="test", threshold=0.5)
    entries = [Entry(c.outcome, c.thumbnail, score_event(c.outcome, ctx)) for c in sample_cases()]
    by_name = {e.outcome.name: e.event for e in entries}
    reviews = {by_name["high.jpeg"].event_id: review_event(by_name["high.jpeg"], ctx, "AK", "agree"),
               by_name["low.jpeg"].event_id: review_event(by_name["low.jpeg"], ctx, "AK", "pneumonia", "=cmd|x")}
    frame = worklist_frame(entries, 0.5, reviews)
    assert frame.set_index("file")["review"].to_dict() == {
        "high.jpeg": "agreed (AK)", "mid-a.jpeg": "", "mid-b.jpeg": "", "low.jpeg": "overridden → pneumonia (AK)",
        "broken.jpeg": ""}
    assert len(filter_by_review(frame, "To review")) == 3
    assert list(filter_by_review(frame, "Overridden")["file"]) == ["low.jpeg"]
    assert len(filter_by_review(frame, "Reviewed")) == 2
    with pytest.raises(ValueError):
        filter_by_review(frame, "Someday")
    rows = list(csv.DictReader(io.StringIO(worklist_csv(frame, 0.5).decode())))
    low = next(r for r in rows if r["file"] == "low.jpeg")
    assert (low["review"], low["reviewer"], low["review_reason"]) == ("pneumonia", "AK", "'=cmd|x")

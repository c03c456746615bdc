"""The batch worklist's rows: thumbnails, plain-language decisions and the CSV download.

Memory stays bounded for hundreds of full-resolution images: each image is decoded once
(at reduced JPEG scale) by the scoring loop, turned into a small thumbnail here, and the
decoded pixels are dropped. An entry keeps its outcome (with the original bytes, to show
the image on request) and the thumbnail.
"""

from __future__ import annotations

import base64
import csv
import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
from PIL import Image

from core.audit import Event
from core.calibration import Calibration
from core.errors import ImageError
from core.model import ModelBundle
from core.scoring import PNEUMONIA, Outcome, Status, decide, iter_outcomes, rank
from ui.review import status_text
from ui.wording import outcome_text

THUMB_SIDE = 96
CSV_COLUMNS = ("rank", "file", "probability", "decision", "threshold", "error", "status", "reason_code", "note",
               "review", "reviewer", "review_reason")
REVIEW_FILTERS = ("All", "To review", "Reviewed", "Overridden")


@dataclass(frozen=True)
class Entry:
    """One worklist row: the scoring outcome (pixels dropped) and its thumbnail."""

    outcome: Outcome
    thumbnail: str | None = None  # PNG data URI
    event: Event | None = None  # its record in the audit log (None when the log is unavailable)


def _placeholder_uri(side: int = THUMB_SIDE) -> str:
    """A light grey tile with a cross: shown instead of a thumbnail for a file that could not be read."""
    tile = np.full((side, side), 235, dtype=np.uint8)
    idx = np.arange(side)
    for offset in (-1, 0, 1):
        tile[idx, np.clip(idx + offset, 0, side - 1)] = 170
        tile[idx, np.clip(side - 1 - idx + offset, 0, side - 1)] = 170
    buffer = io.BytesIO()
    Image.fromarray(tile, mode="L").save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def thumbnail_uri(gray: np.ndarray, side: int = THUMB_SIDE) -> str:
    """A PNG data URI of a grayscale image shrunk to fit ``side`` pixels (aspect ratio kept)."""
    if gray.ndim != 2 or gray.dtype != np.uint8:
        raise ValueError("expected a 2-D uint8 grayscale image")
    image = Image.fromarray(gray, mode="L")
    image.thumbnail((side, side), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


MISSING_THUMBNAIL = _placeholder_uri()


def score_entries(
    bundle: ModelBundle,
    items: Iterable[tuple[str, bytes | ImageError]],
    batch_size: int = 16,
    workers: int = 2,
    calibration: Calibration | None = None,
) -> Iterator[Entry]:
    """Score ``(name, bytes or ImageError)`` items in order, one :class:`Entry` each.

    Only one batch of decoded inputs exists at a time; images the "cannot assess" gate
    refuses are listed with their reason and thumbnail, never as NORMAL. ``calibration``
    is a site profile's (``None``: the model's shipped one).
    """
    for outcome in iter_outcomes(bundle, items, batch_size, workers, calibration=calibration):
        thumbnail = thumbnail_uri(outcome.gray) if outcome.gray is not None else None
        yield Entry(outcome.without_pixels(), thumbnail)


def score_worklist(
    bundle: ModelBundle,
    items: list[tuple[str, bytes | ImageError]],
    progress: Callable[[int, int], None] | None = None,
    batch_size: int = 16,
) -> list[Entry]:
    """Score every item, calling ``progress(done, total)`` after each entry."""
    entries: list[Entry] = []
    for entry in score_entries(bundle, items, batch_size=batch_size):
        entries.append(entry)
        if progress is not None:
            progress(len(entries), len(items))
    return entries


def rank_entries(entries: Iterable[Entry]) -> list[Entry]:
    """Entries in worklist order: scored by probability, highest first; the rest after them."""
    entries = list(entries)
    by_id = {id(e.outcome): e for e in entries}
    return [by_id[id(o)] for o in rank(e.outcome for e in entries)]


def worklist_frame(entries: Iterable[Entry], threshold: float, reviews: dict[str, Event] | None = None
                   ) -> pd.DataFrame:
    """The worklist table: every entry, ranked, with its decision at ``threshold`` and its review.

    ``reviews`` maps a score record's event id to the latest review of it.
    """
    decide(0.0, threshold)  # validates the threshold
    reviews = reviews or {}
    rows = []
    for position, entry in enumerate(rank_entries(entries), 1):
        outcome = entry.outcome
        prediction = outcome.decision(threshold)
        review = reviews.get(entry.event.event_id) if entry.event is not None else None
        rows.append({
            "rank": position,
            "thumbnail": entry.thumbnail or MISSING_THUMBNAIL,
            "file": outcome.name,
            "probability": outcome.probability if outcome.ok else np.nan,
            "decision": outcome_text(outcome, threshold),
            "flagged": prediction == PNEUMONIA,
            "status": outcome.status.value,
            "reason_code": outcome.code,
            "error": outcome.error or "",
            "note": outcome.note,
            "quality_warning": bool(outcome.quality),
            "review": status_text(review),
            "review_decision": review.review_decision if review is not None else "",
            "reviewer": review.reviewer if review is not None else "",
            "review_reason": review.review_reason if review is not None else "",
        })
    columns = ["rank", "thumbnail", "file", "probability", "decision", "flagged", "status", "reason_code", "error",
               "note", "quality_warning", "review", "review_decision", "reviewer", "review_reason"]
    return pd.DataFrame(rows, columns=columns)


def worklist_counts(frame: pd.DataFrame) -> dict[str, int]:
    """How many rows are flagged, not flagged, refused by the gate and unreadable."""
    if not len(frame):
        return {"total": 0, "flagged": 0, "clear": 0, "refused": 0, "unreadable": 0, "failed": 0}
    status = frame["status"]
    flagged = int(frame["flagged"].sum())
    refused = int((status == Status.REFUSED.value).sum())
    unreadable = int((status == Status.UNREADABLE.value).sum())
    return {"total": len(frame), "flagged": flagged, "clear": int((status == Status.SCORED.value).sum()) - flagged,
            "refused": refused, "unreadable": unreadable, "failed": refused + unreadable}


def filter_by_review(frame: pd.DataFrame, choice: str) -> pd.DataFrame:
    """Rows whose review status matches ``choice`` (one of ``REVIEW_FILTERS``)."""
    if choice not in REVIEW_FILTERS:
        raise ValueError(f"unknown review filter {choice!r}; choose from {REVIEW_FILTERS}")
    decision = frame["review_decision"]
    keep = {"All": pd.Series(True, index=frame.index), "To review": decision == "", "Reviewed": decision != "",
            "Overridden": decision.isin(["pneumonia", "normal", "cannot_assess"])}[choice]
    return frame[keep].reset_index(drop=True)


def _spreadsheet_safe(text: str) -> str:
    """Stop a spreadsheet from running a file name as a formula (CSV injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def worklist_csv(frame: pd.DataFrame, threshold: float) -> bytes:
    """The worklist as UTF-8 CSV: rank, file, probability, decision, threshold, error, status, reason code."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for row in frame.itertuples(index=False):
        probability = "" if pd.isna(row.probability) else f"{row.probability:.6f}"
        writer.writerow([row.rank, _spreadsheet_safe(str(row.file)), probability, row.decision,
                         f"{threshold:.6f}", _spreadsheet_safe(" ".join(str(row.error).split())), row.status,
                         row.reason_code, row.note, row.review_decision, _spreadsheet_safe(row.reviewer),
                         _spreadsheet_safe(row.review_reason)])
    return buffer.getvalue().encode("utf-8")

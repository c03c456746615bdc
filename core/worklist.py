"""Batch triage: score many uploads into a worklist ranked by probability.

Memory stays bounded for hundreds of full-resolution images: each image is decoded once
(at reduced JPEG scale), turned into the model input and a small thumbnail, and the
decoded pixels are dropped. A case keeps only its original bytes (for review on
demand) and the thumbnail. Every input becomes a case, scored or failed with a reason.
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

from core.archive import clean_name, is_zip, iter_zip_images
from core.errors import ImageError
from core.inference import NORMAL, PNEUMONIA, decide, iter_scored
from core.model import ModelBundle

THUMB_SIDE = 96
FLAG_TEXT = "Flag for clinician review"
CLEAR_TEXT = "No pneumonia detected at this threshold"
FAILED_TEXT = "Not scored: review the image yourself"
CSV_COLUMNS = ("rank", "file", "probability", "decision", "threshold", "error")


@dataclass(frozen=True)
class Case:
    """One worklist entry: a scored image, or a file that could not be scored and why."""

    name: str
    probability: float | None = None
    error: str | None = None
    thumbnail: str | None = None  # PNG data URI
    data: bytes | None = None     # original file bytes, kept to show the image on request

    @property
    def ok(self) -> bool:
        """True when the case was scored."""
        return self.error is None and self.probability is not None


def decision_text(prediction: str | None) -> str:
    """Plain words for a decision (``PNEUMONIA``/``NORMAL``, or ``None`` when not scored)."""
    return {PNEUMONIA: FLAG_TEXT, NORMAL: CLEAR_TEXT}.get(prediction or "", FAILED_TEXT)


def expand_uploads(files: Iterable[tuple[str, bytes]]) -> Iterator[tuple[str, bytes | ImageError]]:
    """Yield ``(name, bytes or ImageError)`` per image: plain files as they are, ZIP archives opened.

    An archive that cannot be opened, or holds no files, becomes one failed entry under
    its own name, so it is never silently missing from the worklist.
    """
    for name, data in files:
        name = clean_name(name)
        if not is_zip(data):
            yield name, data
            continue
        members = 0
        try:
            for member in iter_zip_images(data, name):
                members += 1
                yield member
        except ImageError as exc:
            yield name, exc
            continue
        if not members:
            yield name, ImageError("the archive holds no files")


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


def score_cases(
    bundle: ModelBundle,
    items: Iterable[tuple[str, bytes | ImageError]],
    batch_size: int = 16,
    workers: int = 2,
) -> Iterator[Case]:
    """Score ``(name, bytes or ImageError)`` items in order, one :class:`Case` each.

    Only one batch of decoded inputs exists at a time; images the "cannot assess" gate
    refuses are listed as failed with their reason and thumbnail, never as NORMAL.
    """
    for scored in iter_scored(bundle, items, batch_size, workers):
        thumbnail = thumbnail_uri(scored.gray) if scored.gray is not None else None
        if scored.error is not None:
            yield Case(name=scored.name, error=scored.error, thumbnail=thumbnail)
        else:
            yield Case(name=scored.name, probability=scored.probability, thumbnail=thumbnail, data=scored.data)


def score_worklist(
    bundle: ModelBundle,
    items: list[tuple[str, bytes | ImageError]],
    progress: Callable[[int, int], None] | None = None,
    batch_size: int = 16,
) -> list[Case]:
    """Score every item, calling ``progress(done, total)`` after each case."""
    cases: list[Case] = []
    for case in score_cases(bundle, items, batch_size=batch_size):
        cases.append(case)
        if progress is not None:
            progress(len(cases), len(items))
    return cases


def rank_cases(cases: Iterable[Case]) -> list[Case]:
    """Scored cases by probability, highest first (ties by name); failed cases after them."""
    cases = list(cases)
    scored = sorted((c for c in cases if c.ok), key=lambda c: (-float(c.probability or 0.0), c.name))
    return scored + [c for c in cases if not c.ok]


def worklist_frame(cases: Iterable[Case], threshold: float) -> pd.DataFrame:
    """The worklist table: every case, ranked, with its decision at ``threshold``."""
    decide(0.0, threshold)  # validates the threshold
    rows = []
    for rank, case in enumerate(rank_cases(cases), 1):
        prediction = decide(case.probability, threshold) if case.ok else None
        rows.append({
            "rank": rank,
            "thumbnail": case.thumbnail or MISSING_THUMBNAIL,
            "file": case.name,
            "probability": case.probability if case.ok else np.nan,
            "decision": decision_text(prediction),
            "flagged": prediction == PNEUMONIA,
            "error": case.error or "",
        })
    columns = ["rank", "thumbnail", "file", "probability", "decision", "flagged", "error"]
    return pd.DataFrame(rows, columns=columns)


def worklist_counts(frame: pd.DataFrame) -> dict[str, int]:
    """How many cases are flagged, not flagged and not scored."""
    failed = int((frame["error"] != "").sum()) if len(frame) else 0
    flagged = int(frame["flagged"].sum()) if len(frame) else 0
    return {"total": len(frame), "flagged": flagged, "clear": len(frame) - flagged - failed, "failed": failed}


def _spreadsheet_safe(text: str) -> str:
    """Stop a spreadsheet from running a file name as a formula (CSV injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def worklist_csv(frame: pd.DataFrame, threshold: float) -> bytes:
    """The worklist as UTF-8 CSV: rank, file, probability, decision, threshold, error."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for row in frame.itertuples(index=False):
        probability = "" if pd.isna(row.probability) else f"{row.probability:.6f}"
        writer.writerow([row.rank, _spreadsheet_safe(str(row.file)), probability, row.decision,
                         f"{threshold:.6f}", _spreadsheet_safe(" ".join(str(row.error).split()))])
    return buffer.getvalue().encode("utf-8")

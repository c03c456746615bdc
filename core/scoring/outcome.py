"""The one outcome of scoring an image: scored, refused by the gate, or unreadable.

Every consumer (CLI, worklist, single triage, evaluation, audit, archive scoring) gets
the same :class:`Outcome`, so counts by status and reason code never parse sentences.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

NORMAL, PNEUMONIA = "NORMAL", "PNEUMONIA"
REFUSED_PREFIX = "cannot assess: "  # how a refusal reads in one line (CSV error column, messages)


class Status(StrEnum):
    """What happened to an input."""

    SCORED = "scored"
    REFUSED = "refused"  # read fine, but the "cannot assess" gate refused it
    UNREADABLE = "unreadable"  # could not be read or decoded at all


UNREADABLE_CODE = "unreadable"


@dataclass(frozen=True)
class Outcome:
    """One input after read → decode → gate → score.

    ``probability`` is set only when ``status`` is SCORED; ``code`` and ``reason`` only
    when it is not (a stable code for counting, a sentence for people). ``data`` and
    ``gray`` are kept for callers that show the image later (the bytes read, and the
    upright grayscale decoded at reduced scale).
    """

    name: str
    status: Status
    probability: float | None = None
    code: str = ""
    reason: str = ""
    data: bytes | None = None
    gray: np.ndarray | None = None
    note: str = ""  # what capture did and any quality warning, e.g. "photo of a film: tint removed"
    quality: tuple[str, ...] = ()  # codes of core.gate.quality for a degraded but accepted image
    pixel_sha256: str = ""  # SHA-256 of the decoded pixels (see pixel_hash); empty when unreadable

    @property
    def ok(self) -> bool:
        """True when the image was scored."""
        return self.status is Status.SCORED

    @property
    def error(self) -> str | None:
        """The one-line reason it was not scored (refusals read "cannot assess: ..."), or ``None``."""
        if self.status is Status.SCORED:
            return None
        return f"{REFUSED_PREFIX}{self.reason}" if self.status is Status.REFUSED else self.reason

    def decision(self, threshold: float) -> str | None:
        """``PNEUMONIA`` / ``NORMAL`` at ``threshold``, or ``None`` when not scored."""
        return decide(self.probability, threshold) if self.ok else None

    def without_pixels(self) -> Outcome:
        """The same outcome without the decoded image (to keep many in memory)."""
        return dataclasses.replace(self, gray=None)


def pixel_hash(gray: np.ndarray) -> str:
    """SHA-256 of a decoded image (shape, dtype and pixels): identifies an image without keeping it.

    It is what audit records and archive outputs hold instead of file names or pixels; the
    same film gives the same hash whatever it was called or however it was wrapped.
    """
    array = np.ascontiguousarray(gray)
    digest = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode("ascii"))
    digest.update(array.data)
    return digest.hexdigest()


def scored(name: str, probability: float, data: bytes | None = None, gray: np.ndarray | None = None,
           note: str = "", quality: tuple[str, ...] = ()) -> Outcome:
    """An outcome with a probability."""
    return Outcome(name, Status.SCORED, float(probability), data=data, gray=gray, note=note, quality=quality,
                   pixel_sha256=pixel_hash(gray) if gray is not None else "")


def refused(name: str, code: str, reason: str, gray: np.ndarray | None = None, note: str = "") -> Outcome:
    """An outcome the gate refused, with its code and sentence."""
    return Outcome(name, Status.REFUSED, code=code, reason=reason, gray=gray, note=note,
                   pixel_sha256=pixel_hash(gray) if gray is not None else "")


def unreadable(name: str, reason: str, code: str = UNREADABLE_CODE) -> Outcome:
    """An outcome for an input that could not be read or decoded."""
    return Outcome(name, Status.UNREADABLE, code=code, reason=reason)


def decide(probability: float, threshold: float) -> str:
    """``PNEUMONIA`` when ``probability`` reaches ``threshold``, else ``NORMAL``."""
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be within [0, 1], got {threshold}")
    return PNEUMONIA if probability >= threshold else NORMAL


def rank(outcomes: Iterable[Outcome]) -> list[Outcome]:
    """Scored outcomes by probability, highest first (ties by name); the others after them, in order."""
    outcomes = list(outcomes)
    ranked = sorted((o for o in outcomes if o.ok), key=lambda o: (-float(o.probability or 0.0), o.name))
    return ranked + [o for o in outcomes if not o.ok]

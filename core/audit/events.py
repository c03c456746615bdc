"""What an audit record holds: one scored image, one reviewer decision, or one purge.

Records hold hashes and figures only. The image is identified by the SHA-256 of its
decoded pixels (:func:`core.scoring.pixel_hash`); file names, DICOM tags and pixels never
reach a record, and the few free-text fields are length-limited and stripped of control
characters.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from enum import StrEnum

from core.scoring.outcome import Outcome, Status

GENESIS = "0" * 64  # the "previous hash" of the first record in a log
MAX_REASON = 200
MAX_REVIEWER = 64
_SHA256 = re.compile(r"[0-9a-f]{64}")


class Kind(StrEnum):
    """What a record is about."""

    SCORE = "score"  # an image went through the scoring loop (scored, refused or unreadable)
    REVIEW = "review"  # a reviewer agreed with the model or overrode it
    PURGE = "purge"  # records past the retention period were deleted (logged in the chain itself)


class ReviewDecision(StrEnum):
    """A reviewer's call on a case."""

    AGREE = "agree"  # the model's decision stands
    PNEUMONIA = "pneumonia"  # override: refer
    NORMAL = "normal"  # override: do not refer
    CANNOT_ASSESS = "cannot_assess"  # the film cannot be read (positioning, exposure, not a chest film)


class AuditError(ValueError):
    """A record or a log that cannot be written or trusted, with the reason."""


def now_utc() -> str:
    """The current UTC time as ISO 8601 with microseconds and a ``Z``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def clean_text(value: str | None, limit: int, what: str) -> str:
    """``value`` on one line without control characters; raises ``AuditError`` if longer than ``limit``."""
    text = " ".join("".join(ch if ch.isprintable() else " " for ch in str(value or "")).split())
    if len(text) > limit:
        raise AuditError(f"the {what} is longer than {limit} characters")
    return text


def check_reviewer(reviewer: str | None) -> str:
    """The reviewer identity as recorded (initials or a sign-in identity); raises ``AuditError`` if empty."""
    text = clean_text(reviewer, MAX_REVIEWER, "reviewer identity")
    if not text:
        raise AuditError("a review needs a reviewer: sign in, or type your initials")
    return text


@dataclass(frozen=True)
class Context:
    """What was in force when a record was made: the same for every image of a session's run."""

    model_sha256: str
    app_version: str
    threshold: float
    site_profile_id: str = ""  # the SiteProfile's id, or empty for the shipped operating point

    def __post_init__(self) -> None:
        if not _SHA256.fullmatch(str(self.model_sha256)):
            raise AuditError("model_sha256 must be 64 lowercase hexadecimal characters")
        if not (isinstance(self.threshold, int | float) and 0.0 <= float(self.threshold) <= 1.0):
            raise AuditError(f"threshold must be within [0, 1], got {self.threshold!r}")


@dataclass(frozen=True)
class Event:
    """One audit record before it is chained (``seq``, ``prev_hash`` and ``hash`` come from the log)."""

    kind: str
    event_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    time_utc: str = field(default_factory=now_utc)
    site_profile_id: str = ""
    app_version: str = ""
    model_sha256: str = ""
    threshold: float | None = None
    probability: float | None = None  # calibrated P(pneumonia), when the image was scored
    decision: str = ""  # the model's decision at ``threshold``: PNEUMONIA / NORMAL, or empty
    gate_outcome: str = ""  # scored / refused / unreadable
    gate_code: str = ""  # the refusal's reason code
    pixel_sha256: str = ""
    case_event_id: str = ""  # for a review: the score record it reviews
    reviewer: str = ""
    review_decision: str = ""
    review_reason: str = ""
    details: str = ""  # JSON, for purge records only

    def payload(self) -> dict:
        """The fields covered by the hash chain, as stored."""
        return asdict(self)

    @classmethod
    def columns(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


def _probability(outcome: Outcome) -> float | None:
    if not outcome.ok:
        return None
    value = float(outcome.probability)
    if not math.isfinite(value):
        raise AuditError("a scored image must have a finite probability")
    return value


def score_event(outcome: Outcome, context: Context) -> Event:
    """The record of one image through the scoring loop (never its name or pixels)."""
    return Event(
        kind=Kind.SCORE, site_profile_id=context.site_profile_id, app_version=context.app_version,
        model_sha256=context.model_sha256, threshold=float(context.threshold), probability=_probability(outcome),
        decision=outcome.decision(context.threshold) or "", gate_outcome=outcome.status.value,
        gate_code=outcome.code, pixel_sha256=outcome.pixel_sha256,
    )


def review_event(case: Event, context: Context, reviewer: str, decision: ReviewDecision | str,
                 reason: str = "") -> Event:
    """A reviewer's decision on the scored image ``case`` (a score record), with the context now in force.

    The record repeats the case's probability and pixel hash and the decision at today's
    threshold, so each review stands on its own when exported.
    """
    if case.kind != Kind.SCORE:
        raise AuditError("only a score record can be reviewed")
    try:
        decision = ReviewDecision(decision)
    except ValueError:
        raise AuditError(f"unknown review decision {decision!r}; choose from "
                         f"{', '.join(d.value for d in ReviewDecision)}") from None
    if decision is ReviewDecision.AGREE and case.gate_outcome != Status.SCORED:
        raise AuditError("there is no model decision to agree with: the image was not scored")
    model_decision = ""
    if case.probability is not None:
        model_decision = "PNEUMONIA" if case.probability >= context.threshold else "NORMAL"
    return Event(
        kind=Kind.REVIEW, site_profile_id=context.site_profile_id, app_version=context.app_version,
        model_sha256=context.model_sha256, threshold=float(context.threshold), probability=case.probability,
        decision=model_decision, gate_outcome=case.gate_outcome, gate_code=case.gate_code,
        pixel_sha256=case.pixel_sha256, case_event_id=case.event_id, reviewer=check_reviewer(reviewer),
        review_decision=decision.value, review_reason=clean_text(reason, MAX_REASON, "reason"),
    )


def purge_event(cutoff_utc: str, deleted: int, anchor: str, retention_days: int) -> Event:
    """The record that a purge deleted ``deleted`` records older than ``cutoff_utc``."""
    details = json.dumps({"cutoff_utc": cutoff_utc, "deleted": int(deleted), "anchor": anchor,
                          "retention_days": int(retention_days)}, sort_keys=True)
    return Event(kind=Kind.PURGE, details=details)


def final_call(review_decision: str, model_decision: str) -> str:
    """The reviewer's call as PNEUMONIA / NORMAL / CANNOT_ASSESS ("agree" takes the model's)."""
    if review_decision == ReviewDecision.AGREE:
        return model_decision
    return {"pneumonia": "PNEUMONIA", "normal": "NORMAL"}.get(review_decision, "CANNOT_ASSESS")

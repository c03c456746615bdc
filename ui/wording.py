"""Words the pages share: decisions and outcomes in plain language."""

from __future__ import annotations

from core.scoring import NORMAL, PNEUMONIA, Outcome, Status

FLAG_TEXT = "Flag for clinician review"
CLEAR_TEXT = "No pneumonia detected at this threshold"
FAILED_TEXT = "Not scored: review the image yourself"
REFUSED_TEXT = "Cannot assess: review the image yourself"


def decision_text(prediction: str | None) -> str:
    """Plain words for a decision (``PNEUMONIA``/``NORMAL``, or ``None`` when not scored)."""
    return {PNEUMONIA: FLAG_TEXT, NORMAL: CLEAR_TEXT}.get(prediction or "", FAILED_TEXT)


def outcome_text(outcome: Outcome, threshold: float) -> str:
    """Plain words for an outcome at ``threshold``."""
    if outcome.status is Status.REFUSED:
        return REFUSED_TEXT
    return decision_text(outcome.decision(threshold))

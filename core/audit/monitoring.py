"""Monitoring after deployment, from the audit log: volumes, referrals, refusals, agreement, drift.

Per ISO week (weeks start on Monday, UTC): images scored, the share referred and the share
the gate refused; reviewer agreement with the model with a Wilson 95% interval; and the
population stability index (PSI) of the week's calibrated scores against the validation
scores shipped with the model. PSI is the usual score-drift statistic in deployed models:
below 0.10 the distribution is stable, 0.10-0.25 it has moved, above 0.25 it has moved a lot.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.audit.events import Kind, ReviewDecision
from core.audit.store import AuditLog

COLUMNS = ("kind", "time_utc", "probability", "decision", "gate_outcome", "review_decision")
PSI_MODERATE, PSI_MAJOR = 0.10, 0.25
MIN_SCORES_FOR_DRIFT = 50  # fewer scores in a week give a PSI that is mostly noise
PSI_BINS = 10
_EPS = 1e-4


@dataclass(frozen=True)
class Drift:
    """How far recent scores have moved from validation, in words and in figures."""

    psi: float | None
    level: str  # "stable", "moved", "moved a lot", or "too few" images to judge
    message: str


def load_events(log: AuditLog, start: str | None = None) -> pd.DataFrame:
    """The columns monitoring needs, with a ``week`` (Monday) column."""
    frame = log.events(start, None, columns=COLUMNS)
    frame["week"] = (pd.to_datetime(frame["time_utc"], utc=True, format="ISO8601").dt.tz_localize(None)
                     .dt.to_period("W-SUN").dt.start_time)
    return frame


def _edges(validation: np.ndarray) -> np.ndarray:
    validation = np.asarray(validation, dtype=float)
    if validation.size < PSI_BINS or not np.isfinite(validation).all():
        raise ValueError(f"need at least {PSI_BINS} finite validation scores")
    edges = np.unique(np.quantile(validation, np.linspace(0, 1, PSI_BINS + 1)))
    edges[0], edges[-1] = -np.inf, np.inf
    return edges


def psi(scores: np.ndarray, validation: np.ndarray) -> float:
    """Population stability index of ``scores`` against ``validation`` (deciles of validation)."""
    scores = np.asarray(scores, dtype=float)
    if scores.size == 0:
        raise ValueError("no scores to compare")
    edges = _edges(validation)
    expected = np.histogram(validation, edges)[0] / len(validation)
    actual = np.histogram(scores, edges)[0] / len(scores)
    expected, actual = np.clip(expected, _EPS, None), np.clip(actual, _EPS, None)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def drift(scores: np.ndarray, validation: np.ndarray) -> Drift:
    """The PSI of ``scores`` with a plain-language reading of it."""
    scores = np.asarray(scores, dtype=float)
    if scores.size < MIN_SCORES_FOR_DRIFT:
        return Drift(None, "too few", f"Fewer than {MIN_SCORES_FOR_DRIFT} scored images: too few to judge drift.")
    value = psi(scores, validation)
    if value < PSI_MODERATE:
        return Drift(value, "stable", "Scores look like those on the validation images.")
    if value < PSI_MAJOR:
        return Drift(value, "moved", "Scores have moved away from those on the validation images: check whether "
                                     "the case mix or the way films are taken has changed.")
    return Drift(value, "moved a lot", "Scores have moved a lot from those on the validation images: the model "
                                       "may be seeing a different population or different films. Check a sample "
                                       "of recent cases and consider a new site calibration.")


def wilson(successes: int, trials: int) -> tuple[float, float]:
    """The Wilson score 95% interval of a proportion (NaNs when there are no trials)."""
    if trials == 0:
        return float("nan"), float("nan")
    from scipy.stats import binomtest

    interval = binomtest(int(successes), int(trials)).proportion_ci(0.95, method="wilson")
    return float(interval.low), float(interval.high)


def weekly(frame: pd.DataFrame, validation: np.ndarray) -> pd.DataFrame:
    """One row per week: volumes, shares referred and refused, agreement (with CI) and drift."""
    is_score = (frame["kind"] == Kind.SCORE).to_numpy()
    is_scored = is_score & (frame["gate_outcome"] == "scored").to_numpy()
    is_review = ((frame["kind"] == Kind.REVIEW) & frame["review_decision"].isin(
        [ReviewDecision.AGREE, ReviewDecision.PNEUMONIA, ReviewDecision.NORMAL])).to_numpy()
    # A review agrees when the reviewer accepted the model's decision, or "overrode" it to the same call.
    agrees = is_review & ((frame["review_decision"] == ReviewDecision.AGREE)
                          | (frame["review_decision"].str.upper() == frame["decision"])).to_numpy()
    flags = pd.DataFrame({
        "week": frame["week"].to_numpy(),
        "images": is_score,
        "scored": is_scored,
        "referred": is_scored & (frame["decision"] == "PNEUMONIA").to_numpy(),
        "refused": is_score & (frame["gate_outcome"] == "refused").to_numpy(),
        "reviews": is_review,
        "agreements": agrees,
    })
    out = flags.groupby("week").sum().astype(int)
    out = out[(out["images"] > 0) | (out["reviews"] > 0)]
    scored = frame.loc[is_scored, ["week", "probability"]]
    out["referred_share"] = out["referred"] / out["scored"].where(out["scored"] > 0)
    out["refused_share"] = out["refused"] / out["images"].where(out["images"] > 0)
    out["agreement"] = out["agreements"] / out["reviews"].where(out["reviews"] > 0)
    bounds = [wilson(a, n) for a, n in zip(out["agreements"], out["reviews"], strict=True)]
    out["agreement_low"] = [b[0] for b in bounds]
    out["agreement_high"] = [b[1] for b in bounds]
    by_week = {week: drift(group.to_numpy(), validation).psi for week, group in scored.groupby("week")["probability"]}
    out["psi"] = [by_week.get(week) for week in out.index]
    return out.rename_axis("week").reset_index()


def score_shares(scores: np.ndarray, validation: np.ndarray, bins: int = 20) -> pd.DataFrame:
    """Share of ``scores`` and of validation scores in each of ``bins`` equal bins of [0, 1]."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    recent = np.histogram(np.clip(scores, 0, 1), edges)[0]
    reference = np.histogram(np.clip(validation, 0, 1), edges)[0]
    return pd.DataFrame({"bin_start": edges[:-1], "bin_end": edges[1:],
                         "recent": recent / max(1, recent.sum()), "validation": reference / max(1, reference.sum())})

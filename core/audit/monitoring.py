"""Monitoring after deployment, from the audit log: volumes, referrals, refusals, agreement, drift.

Per ISO week (weeks start on Monday, UTC): images scored, the share referred and the share
the gate refused; reviewer agreement with the model with a Wilson 95% interval; and the
population stability index (PSI) of the week's calibrated scores against the validation
scores shipped with the model. PSI is the usual score-drift statistic in deployed models:
below 0.10 the distribution is stable, 0.10-0.25 it has moved, above 0.25 it has moved a lot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.audit.events import Kind, ReviewDecision
from core.audit.store import AuditLog

COLUMNS = ("kind", "time_utc", "probability", "decision", "gate_outcome", "review_decision", "site_profile_id",
           "case_event_id")
PSI_MODERATE, PSI_MAJOR = 0.10, 0.25
MIN_SCORES_FOR_DRIFT = 50  # fewer scores in a week give a PSI that is mostly noise
PSI_BINS = 20  # quantile bins of the validation scores, before rounding merges some
PSI_DECIMALS = 3  # edges at the precision the app reports probabilities (0.001)
_EPS = 1e-4
_Z95 = 1.959963984540054  # the standard normal quantile at 0.975


@dataclass(frozen=True)
class Drift:
    """How far recent scores have moved from validation, in words and in figures."""

    psi: float | None
    level: str  # "stable", "moved", "moved a lot", or "too few" images to judge
    message: str


def load_events(log: AuditLog, start: str | None = None, after_seq: int = 0,
                upto_seq: int | None = None) -> pd.DataFrame:
    """The columns monitoring needs, in order, with a ``week`` (Monday) column.

    Records with ``time_utc >= start`` and ``after_seq < seq <= upto_seq`` (either bound may be
    left out), as in :meth:`AuditLog.events`.
    """
    frame = log.events(start, None, COLUMNS, after_seq=after_seq, upto_seq=upto_seq).drop(columns="seq")
    frame["probability"] = pd.to_numeric(frame["probability"], errors="coerce").astype(float)
    frame["week"] = (pd.to_datetime(frame["time_utc"], utc=True, format="ISO8601").dt.tz_localize(None)
                     .dt.to_period("W-SUN").dt.start_time)
    return frame


def _edges(validation: np.ndarray) -> np.ndarray:
    """Bin edges: the validation scores' ventiles rounded to ``PSI_DECIMALS`` decimals, outer edges open.

    Rounding matters for a confident model: half of the shipped model's validation scores
    lie above 0.9997, so raw quantile edges would separate 0.99997 from 0.999999 and a
    change in the fifth decimal, invisible on any page, would read as a large drift.
    """
    validation = np.asarray(validation, dtype=float)
    if validation.size < PSI_BINS or not np.isfinite(validation).all():
        raise ValueError(f"need at least {PSI_BINS} finite validation scores")
    edges = np.unique(np.round(np.quantile(validation, np.linspace(0, 1, PSI_BINS + 1)), PSI_DECIMALS))
    if edges.size < 2:  # every validation score the same at this resolution: one bin
        return np.array([-np.inf, np.inf])
    edges[0], edges[-1] = -np.inf, np.inf
    return edges


def psi(scores: np.ndarray, validation: np.ndarray) -> float:
    """Population stability index of ``scores`` against ``validation`` (bins: see :func:`_edges`)."""
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
    """The Wilson score 95% interval of a proportion (NaNs when there are no trials).

    In closed form (the same bounds as SciPy's ``binomtest(...).proportion_ci(method="wilson")``):
    importing ``scipy.stats`` takes over a second, too much for a page that must draw in two.
    """
    if trials == 0:
        return float("nan"), float("nan")
    n, p = float(trials), successes / trials
    z2 = _Z95 * _Z95
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = _Z95 / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def weekly(frame: pd.DataFrame, validation: np.ndarray | None) -> pd.DataFrame:
    """One row per week: volumes, shares referred and refused, agreement (with CI) and drift.

    ``psi`` is missing for weeks with too few scores, and for every week without ``validation``.
    """
    is_score = (frame["kind"] == Kind.SCORE).to_numpy()
    is_scored = is_score & (frame["gate_outcome"] == "scored").to_numpy()
    is_review = (frame["kind"] == Kind.REVIEW).to_numpy()
    if "case_event_id" in frame:
        # A case reviewed twice (a decision changed) counts once, with its latest decision.
        is_review = is_review & ~frame["case_event_id"].duplicated(keep="last").to_numpy()
    is_review = is_review & frame["review_decision"].isin(
        [ReviewDecision.AGREE, ReviewDecision.PNEUMONIA, ReviewDecision.NORMAL]).to_numpy()
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
    by_week = {} if validation is None else {week: drift(group.to_numpy(dtype=float), validation).psi
                                              for week, group in scored.groupby("week")["probability"]}
    out["psi"] = np.array([by_week.get(week) for week in out.index], dtype=float)  # None -> NaN
    return out.rename_axis("week").reset_index()


@dataclass(frozen=True)
class Totals:
    """A period's figures, summed over the weeks of :func:`weekly`."""

    images: int
    scored: int
    referred: int
    refused: int
    reviews: int
    agreements: int
    referred_share: float  # of the scored images; NaN when none were scored
    refused_share: float  # of all images; NaN when there were none
    agreement: float  # of the reviews with a call (cannot-assess left out); NaN without reviews
    agreement_low: float
    agreement_high: float


def totals(table: pd.DataFrame) -> Totals:
    """The period's volumes, shares and agreement (with its Wilson 95% interval) from a weekly table."""
    counts = {c: int(table[c].sum()) for c in ("images", "scored", "referred", "refused", "reviews", "agreements")}
    low, high = wilson(counts["agreements"], counts["reviews"])

    def share(part: int, whole: int) -> float:
        return part / whole if whole else float("nan")

    return Totals(**counts, referred_share=share(counts["referred"], counts["scored"]),
                  refused_share=share(counts["refused"], counts["images"]),
                  agreement=share(counts["agreements"], counts["reviews"]), agreement_low=low, agreement_high=high)


def recent_scores(frame: pd.DataFrame, weeks: int = 4) -> tuple[np.ndarray, pd.Timestamp | None]:
    """The calibrated scores of the last ``weeks`` weeks that hold a record, and the first of those weeks.

    "Recent" counts back from the newest week in ``frame``, not from today, so a log that
    stopped weeks ago still has a recent distribution to compare.
    """
    if frame.empty:
        return np.array([], dtype=float), None
    first = frame["week"].max() - pd.Timedelta(weeks=weeks - 1)
    chosen = (frame["kind"] == Kind.SCORE) & (frame["gate_outcome"] == "scored") & (frame["week"] >= first)
    return frame.loc[chosen, "probability"].to_numpy(dtype=float), first


def score_shares(scores: np.ndarray, validation: np.ndarray, bins: int = 20) -> pd.DataFrame:
    """Share of ``scores`` and of validation scores in each of ``bins`` equal bins of [0, 1]."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    recent = np.histogram(np.clip(scores, 0, 1), edges)[0]
    reference = np.histogram(np.clip(validation, 0, 1), edges)[0]
    return pd.DataFrame({"bin_start": edges[:-1], "bin_end": edges[1:],
                         "recent": recent / max(1, recent.sum()), "validation": reference / max(1, reference.sum())})

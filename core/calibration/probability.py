"""Probability calibration of the model's output: temperature scaling, Platt scaling, reliability.

The model's sigmoid output ranks images well but may be over- or under-confident on a
given site's images. Both calibrations here are monotone maps of the logit, so they change
what a probability *means*, never which image ranks above which.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from core.evaluation.scores import validate_scores

# scikit-learn is imported inside the functions that fit or measure: applying a calibration
# needs numpy only, and the dashboard's first page must not wait ~2 s for scikit-learn.

EPS = 1e-7
METHODS = ("none", "temperature", "platt")


def _probabilities(probabilities: Any) -> np.ndarray:
    p = np.asarray(probabilities, dtype=np.float64)
    if not np.isfinite(p).all() or (p < 0).any() or (p > 1).any():
        raise ValueError("probabilities must be finite and within [0, 1]")
    return p


def logit(p: Any) -> np.ndarray:
    """log(p / (1 - p)), with p clipped to [1e-7, 1 - 1e-7] so saturated outputs stay finite."""
    q = np.clip(np.asarray(p, dtype=np.float64), EPS, 1 - EPS)
    return np.log(q) - np.log1p(-q)


def sigmoid(z: Any) -> np.ndarray:
    """1 / (1 + exp(-z)), without overflow warnings for large |z|."""
    z = np.asarray(z, dtype=np.float64)
    # exp of a non-positive number never overflows: use the form that keeps the exponent <= 0.
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def _both_classes(y: np.ndarray, what: str) -> None:
    if y.min() == y.max():
        raise ValueError(f"{what} needs both NORMAL and PNEUMONIA cases")


def _logistic_fit(y: np.ndarray, p: np.ndarray, intercept: bool) -> tuple[float, float] | None:
    """Unpenalised maximum-likelihood logistic regression of y on logit(p): (slope, intercept).

    None when the optimum does not exist (classes perfectly separated: the slope runs off to infinity).
    """
    z = logit(p)
    pos, neg = z[y == 1], z[y == 0]
    # (Quasi-)separated classes: the likelihood keeps improving as the slope grows, and the
    # optimiser stops at an arbitrary large value instead of failing, so check beforehand.
    if (neg.max() <= pos.min()) if intercept else (neg.max() <= 0 <= pos.min()):
        return None
    # C=inf is "no penalty" (penalty=None is deprecated from scikit-learn 1.8). A penalty would
    # shrink the slope towards 0, i.e. bias the temperature upwards, so none is used.
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=np.inf, fit_intercept=intercept, max_iter=1000)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        try:
            model.fit(z[:, None], y)
        except ConvergenceWarning:
            return None
    slope = float(model.coef_[0, 0])
    offset = float(model.intercept_[0]) if intercept else 0.0
    if not (math.isfinite(slope) and math.isfinite(offset)):
        return None
    return slope, offset


def _fit_or_raise(y: np.ndarray, p: np.ndarray, intercept: bool, what: str) -> tuple[float, float]:
    _both_classes(y, what)
    fitted = _logistic_fit(y, p, intercept)
    if fitted is None:
        raise ValueError(f"{what} did not converge: the scores separate the classes perfectly")
    if fitted[0] <= 0:
        # A non-positive slope would flip (or erase) the ranking: the scores carry no usable signal here.
        raise ValueError(f"the scores are not positively associated with the labels; cannot fit {what}")
    return fitted


def fit_temperature(labels: Any, probabilities: Any) -> float:
    """The temperature T minimising the log loss of sigmoid(logit(p) / T) on a labelled set.

    Fitted as an intercept-free, unpenalised logistic regression on the single feature
    logit(p): its coefficient is 1/T and its objective is exactly the temperature-scaling
    log loss. scikit-learn's ``CalibratedClassifierCV(method="temperature")`` fits the same
    thing, but on precomputed scores it needs a stub classifier wrapped in ``FrozenEstimator``,
    a halved logit (it expands a binary score x into the logits (-x, x)) and reading T from a
    private attribute; the regression gives the same optimum through public API only (the
    tests hold the two equal).
    """
    y, p = validate_scores(labels, probabilities)
    inverse_t, _ = _fit_or_raise(y, p, intercept=False, what="temperature scaling")
    return 1.0 / inverse_t


def fit_platt(labels: Any, probabilities: Any) -> tuple[float, float]:
    """Platt scaling on the logit: (slope a, intercept b) with calibrated = sigmoid(a * logit(p) + b)."""
    y, p = validate_scores(labels, probabilities)
    return _fit_or_raise(y, p, intercept=True, what="Platt scaling")


def _finite(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"calibration {name} must be a number, got {type(value).__name__}")
    if not math.isfinite(float(value)):
        raise ValueError(f"calibration {name} must be finite, got {value}")
    return float(value)


@dataclass(frozen=True)
class Calibration:
    """A fitted probability calibration; ``apply`` maps raw model probabilities to calibrated ones."""

    method: str
    temperature: float = 1.0
    slope: float = 1.0
    intercept: float = 0.0
    fitted_on: str = ""  # a short label of the data (e.g. a site name), never a file path
    cases: int = 0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"calibration method must be one of {', '.join(METHODS)}, got {self.method!r}")
        t = _finite(self.temperature, "temperature")
        if t <= 0:
            raise ValueError(f"calibration temperature must be > 0, got {t}")
        if _finite(self.slope, "slope") <= 0:
            # Calibration must keep the ranking (and hence every threshold's sensitivity/specificity).
            raise ValueError(f"calibration slope must be > 0, got {self.slope}")
        _finite(self.intercept, "intercept")
        if not isinstance(self.fitted_on, str) or len(self.fitted_on) > 200:
            raise ValueError("calibration fitted_on must be a short text")
        if isinstance(self.cases, bool) or not isinstance(self.cases, (int, np.integer)) or self.cases < 0:
            raise ValueError(f"calibration cases must be a non-negative integer, got {self.cases!r}")

    def apply(self, probabilities: Any) -> np.ndarray:
        """Calibrated probabilities, same shape as the input; unchanged for method "none"."""
        p = _probabilities(probabilities)
        if self.method == "none":
            return p.copy()
        if self.method == "temperature":
            return sigmoid(logit(p) / self.temperature)
        return sigmoid(self.slope * logit(p) + self.intercept)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready fields."""
        out = asdict(self)
        for key in ("temperature", "slope", "intercept"):
            out[key] = float(out[key])
        out["cases"] = int(out["cases"])
        return out

    @classmethod
    def from_dict(cls, data: Any) -> Calibration:
        """Rebuild from ``to_dict`` output, or ValueError naming what is wrong."""
        if not isinstance(data, dict):
            raise ValueError("calibration must be a JSON object")
        if "method" not in data:
            raise ValueError("calibration is missing 'method'")
        unknown = set(data) - {"method", "temperature", "slope", "intercept", "fitted_on", "cases"}
        if unknown:
            raise ValueError(f"calibration has unknown keys: {', '.join(sorted(unknown))}")
        return cls(**data)

    @classmethod
    def fit(cls, labels: Any, probabilities: Any, method: str = "temperature", fitted_on: str = "") -> Calibration:
        """Fit ``method`` ("none", "temperature" or "platt") on a labelled set."""
        y, p = validate_scores(labels, probabilities)
        if method == "none":
            return cls("none", fitted_on=fitted_on, cases=len(y))
        if method == "temperature":
            return cls("temperature", temperature=fit_temperature(y, p), fitted_on=fitted_on, cases=len(y))
        if method == "platt":
            a, b = fit_platt(y, p)
            return cls("platt", slope=a, intercept=b, fitted_on=fitted_on, cases=len(y))
        raise ValueError(f"calibration method must be one of {', '.join(METHODS)}, got {method!r}")


def bin_edges(bins: int) -> np.ndarray:
    """The equal-width edges ``calibration_curve(strategy="uniform")`` uses."""
    return np.linspace(0.0, 1.0, bins + 1)


def bin_index(probabilities: Any, bins: int) -> np.ndarray:
    """Bin of each probability, assigned exactly as ``calibration_curve`` does.

    Its bins are closed on the right ((0.1, 0.2]) while ``np.histogram``'s are closed on the
    left, so a score lying on an edge (0.5 is common) would be counted in a different bin and
    the counts would no longer line up with the curve's points: hence the same searchsorted.
    """
    return np.searchsorted(bin_edges(bins)[1:-1], np.asarray(probabilities, dtype=np.float64))


def reliability(labels: Any, probabilities: Any, bins: int = 10) -> dict[str, Any]:
    """Reliability-diagram points and calibration summaries.

    Returns ``mean_predicted``, ``fraction_positive`` and ``count`` (one entry per non-empty
    bin, in order), ``edges``, ``ece`` (count-weighted mean |fraction_positive - mean_predicted|),
    ``brier``, and the calibration ``slope``/``intercept`` (unpenalised logistic regression of
    the labels on logit(p); 1 and 0 when calibrated; NaN when it has no optimum: one class
    only, or classes perfectly separated).
    """
    y, p = validate_scores(labels, probabilities)
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins!r}")
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import brier_score_loss

    fraction_positive, mean_predicted = calibration_curve(y, p, n_bins=int(bins), strategy="uniform")
    counts = np.bincount(bin_index(p, bins), minlength=bins)
    counts = counts[counts > 0]  # calibration_curve reports non-empty bins only
    ece = float(np.sum(counts * np.abs(fraction_positive - mean_predicted)) / len(y))
    fitted = _logistic_fit(y, p, intercept=True) if y.min() != y.max() else None
    slope, intercept = fitted if fitted is not None else (float("nan"), float("nan"))
    return {
        "mean_predicted": mean_predicted,
        "fraction_positive": fraction_positive,
        "count": counts,
        "edges": bin_edges(bins),
        "ece": ece,
        "brier": float(brier_score_loss(y, p, labels=[0, 1])),
        "slope": slope,
        "intercept": intercept,
        "cases": len(y),
    }

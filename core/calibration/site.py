"""Local calibration of the referral threshold at one site, after the WHO/TDR CAD calibration toolkit.

From a labelled local set (the site's own images, read by its own clinicians) this module
tabulates what every candidate threshold would mean locally, with bootstrap intervals,
chooses an operating point by an explicit rule, and says when the set is too small to trust.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core.calibration.probability import validate_scores

RULES = ("sensitivity", "max_referred", "manual")
REFIT_METHODS = ("none", "temperature", "platt", "isotonic")
TABLE_METRICS = ("sensitivity", "specificity", "ppv", "npv", "referred", "accuracy", "nnt", "missed_per_1000")
MIN_PER_CLASS = 100  # below this a class's rate has a 95% interval wider than about ±0.1 near 0.5
MIN_ISOTONIC = 1000  # isotonic regression overfits smaller sets (scikit-learn's guidance)
GRID_POINTS = 101
# Bound the (resamples x images) work arrays to about this many entries per chunk (~16 MB of int64).
_CHUNK_ENTRIES = 2_000_000


def default_thresholds(probabilities: Any) -> np.ndarray:
    """Every distinct score plus 101 evenly spaced points in [0, 1], sorted and deduplicated.

    The distinct scores are where the metrics change, so the exact operating points are all
    present; the grid gives round numbers and covers stretches with no scores.
    """
    p = np.asarray(probabilities, dtype=np.float64).ravel()
    return np.unique(np.concatenate([np.linspace(0.0, 1.0, GRID_POINTS), p]))


def _thresholds(thresholds: Any, p: np.ndarray) -> np.ndarray:
    if thresholds is None:
        return default_thresholds(p)
    t = np.asarray(thresholds, dtype=np.float64).ravel()
    if len(t) == 0 or not np.isfinite(t).all() or (t < 0).any() or (t > 1).any():
        raise ValueError("thresholds must be a non-empty list of numbers within [0, 1]")
    return np.unique(t)


def _groups(groups: Any, n: int) -> np.ndarray:
    """Group index (0..G-1) of each image; every image its own group when ``groups`` is None."""
    if groups is None:
        return np.arange(n)
    g = np.asarray(groups)
    if g.ndim != 1 or len(g) != n:
        raise ValueError("groups must have one patient id per image")
    try:
        return np.unique(g, return_inverse=True)[1].ravel()
    except TypeError as exc:  # mixed id types that cannot be ordered
        raise ValueError("patient ids must all be of one type (all numbers or all text)") from exc


def _check_prevalence(prevalence: float | None) -> float | None:
    if prevalence is None:
        return None
    if not (isinstance(prevalence, (int, float, np.floating)) and 0 < float(prevalence) < 1):
        raise ValueError(f"prevalence must be a number strictly between 0 and 1, got {prevalence!r}")
    return float(prevalence)


def _metrics(below_pos: np.ndarray, below_neg: np.ndarray, prevalence: float | None) -> dict[str, np.ndarray]:
    """All table metrics from cumulative counts, for many resamples and thresholds at once.

    ``below_pos[b, j]`` / ``below_neg[b, j]``: weight of PNEUMONIA / NORMAL images scoring below
    threshold j in resample b (images at or above a threshold are referred); the last column
    holds the totals. Zero denominators give NaN, as in ``core.evaluation.metrics``.
    """
    pos, neg = below_pos[:, -1:], below_neg[:, -1:]
    tp, fp = pos - below_pos[:, :-1], neg - below_neg[:, :-1]
    fn, tn = pos - tp, neg - fp
    n = pos + neg
    with np.errstate(divide="ignore", invalid="ignore"):
        sens, spec = tp / pos, tn / neg
        if prevalence is None:
            # The local set's own prevalence: everything straight from the counts.
            return {
                "sensitivity": sens, "specificity": spec,
                "ppv": tp / (tp + fp), "npv": tn / (tn + fn),
                "referred": (tp + fp) / n, "accuracy": (tp + tn) / n,
                "nnt": np.where(tp > 0, n / np.where(tp > 0, tp, 1), np.nan),
                "missed_per_1000": 1000.0 * fn / n,
            }
        # Another prevalence (e.g. the clinic's, when the local set was enriched with cases):
        # sensitivity and specificity do not depend on prevalence, everything else is rebuilt from them.
        found, false_alarms = sens * prevalence, (1 - spec) * (1 - prevalence)
        cleared, missed = spec * (1 - prevalence), (1 - sens) * prevalence
        return {
            "sensitivity": sens, "specificity": spec,
            "ppv": found / (found + false_alarms), "npv": cleared / (cleared + missed),
            "referred": found + false_alarms, "accuracy": found + cleared,
            "nnt": np.where(found > 0, 1 / np.where(found > 0, found, 1), np.nan),
            "missed_per_1000": 1000.0 * missed,
        }


def _cumulative_below(weights: np.ndarray, positive: np.ndarray, cut: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weights of positive and negative images among the ``cut[j]`` lowest scores, plus the totals.

    ``weights`` is (resamples, images) in ascending score order. One cumulative sum per row
    replaces a pass over the images for every threshold.
    """
    zero = np.zeros((weights.shape[0], 1), dtype=weights.dtype)
    cum_pos = np.concatenate([zero, np.cumsum(weights * positive, axis=1)], axis=1)
    cum_neg = np.concatenate([zero, np.cumsum(weights * ~positive, axis=1)], axis=1)
    take = np.append(cut, weights.shape[1])  # last column: the resample's totals
    return cum_pos[:, take], cum_neg[:, take]


def _nan_percentiles(values: np.ndarray, qs: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Per-column percentiles (linear interpolation) ignoring NaN, as ``np.nanquantile`` but vectorised.

    ``np.nanquantile`` over an axis loops in Python over the columns, which dominates the
    run time with ~1,000 thresholds x 8 metrics.
    """
    ordered = np.sort(values, axis=0)  # NaN sort last
    valid = np.sum(~np.isnan(values), axis=0)
    out = []
    cols = np.arange(values.shape[1])
    for q in qs:
        pos = q * np.maximum(valid - 1, 0)
        lo = np.floor(pos).astype(int)
        hi = np.minimum(lo + 1, np.maximum(valid - 1, 0))
        frac = pos - lo
        a, b = ordered[lo, cols], ordered[hi, cols]
        out.append(np.where(valid > 0, a + frac * (b - a), np.nan))
    return out[0], out[1]


def threshold_table(
    labels: Any,
    probabilities: Any,
    groups: Any = None,
    thresholds: Any = None,
    n_boot: int = 1000,
    seed: int = 0,
    prevalence: float | None = None,
    level: float = 0.95,
) -> pd.DataFrame:
    """What each candidate threshold would mean locally, with bootstrap percentile intervals.

    One row per threshold (default: ``default_thresholds``; given thresholds are sorted and
    deduplicated); an image is referred when its score is >= the threshold. Columns:
    ``threshold`` and, each followed by ``_lo``/``_hi`` (the ``level`` interval):

    - ``sensitivity``, ``specificity``, ``ppv``, ``npv``, ``accuracy``;
    - ``referred``: share of images referred;
    - ``nnt``: images scored per pneumonia case found, n / TP (= 1 / (sensitivity x prevalence));
      NaN when no case is found;
    - ``missed_per_1000``: pneumonia cases missed per 1,000 children screened, 1000 x FN / n.

    With ``prevalence`` every prevalence-dependent column (ppv, npv, referred, accuracy, nnt,
    missed_per_1000) is recomputed from sensitivity, specificity and that prevalence instead
    of the local set's. With ``groups`` (patient ids) the bootstrap resamples whole patients,
    since one child's images are not independent; otherwise it resamples images. ``n_boot=0``
    gives point estimates only (NaN intervals). Rates with a zero denominator are NaN and
    resamples where a rate is undefined are left out of its interval.
    """
    y, p = validate_scores(labels, probabilities)
    t = _thresholds(thresholds, p)
    prevalence = _check_prevalence(prevalence)
    group = _groups(groups, len(y))
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or (n_boot != 0 and n_boot < 100):
        raise ValueError(f"n_boot must be 0 (no intervals) or at least 100, got {n_boot!r}")
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level}")

    # Sort once; then the images referred at threshold t are exactly those from index cut(t) on.
    order = np.argsort(p, kind="stable")
    p_sorted, positive, group = p[order], y[order].astype(bool), group[order]
    cut = np.searchsorted(p_sorted, t, side="left")

    point = _metrics(*_cumulative_below(np.ones((1, len(y)), dtype=np.int64), positive, cut), prevalence)
    table = {"threshold": t}
    if n_boot == 0:
        for name in TABLE_METRICS:
            table.update({name: point[name][0], f"{name}_lo": np.nan, f"{name}_hi": np.nan})
        return pd.DataFrame(table)

    # Each resample is a vector of how often every patient was drawn; an image's weight is its
    # patient's count. Drawing in chunks bounds memory; the draws depend only on seed and data.
    rng = np.random.default_rng(seed)
    n_groups = int(group.max()) + 1
    chunk = max(1, _CHUNK_ENTRIES // max(len(y), n_groups))
    samples = {name: np.empty((n_boot, len(t))) for name in TABLE_METRICS}
    for start in range(0, n_boot, chunk):
        size = min(chunk, n_boot - start)
        draws = rng.integers(0, n_groups, size=(size, n_groups))
        flat = (draws + (np.arange(size) * n_groups)[:, None]).ravel()
        counts = np.bincount(flat, minlength=size * n_groups).reshape(size, n_groups)
        resampled = _metrics(*_cumulative_below(counts[:, group], positive, cut), prevalence)
        for name in TABLE_METRICS:
            samples[name][start:start + size] = resampled[name]
    alpha = (1 - level) / 2
    for name in TABLE_METRICS:
        lo, hi = _nan_percentiles(samples[name], (alpha, 1 - alpha))
        table.update({name: point[name][0], f"{name}_lo": lo, f"{name}_hi": hi})
    return pd.DataFrame(table)


@dataclass(frozen=True)
class Choice:
    """A chosen operating threshold and the rule that produced it, in words."""

    threshold: float
    rule: str
    target: float | None  # None for a threshold set by hand
    description: str


def _fraction(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not (math.isfinite(float(value)) and 0 <= float(value) <= 1):
        raise ValueError(f"{name} must be within [0, 1], got {value}")
    return float(value)


def choose_threshold(
    table_or_labels: Any,
    probabilities: Any = None,
    *,
    rule: str = "sensitivity",
    value: float | None = None,
) -> Choice:
    """Pick the operating threshold from a ``threshold_table`` (or from labels and probabilities).

    Rules (on the point estimates):

    - ``"sensitivity"``: the highest threshold whose local sensitivity is >= ``value``
      (default 0.95); among those keeping the sensitivity, it refers the fewest children.
    - ``"max_referred"``: the lowest threshold referring at most a share ``value`` of the
      images; among those within the referral capacity, it misses the fewest cases.
    - ``"manual"``: ``value`` itself.

    Raises ValueError when the target cannot be met by any threshold in the table.
    """
    if rule not in RULES:
        raise ValueError(f"rule must be one of {', '.join(RULES)}, got {rule!r}")
    if rule == "sensitivity" and value is None:
        value = 0.95
    if value is None:
        raise ValueError(f"rule {rule!r} needs a value")
    value = _fraction(value, "the rule's value")
    if rule == "manual":
        return Choice(value, rule, None, f"threshold set by hand at {value:g}")

    if isinstance(table_or_labels, pd.DataFrame):
        if probabilities is not None:
            raise ValueError("give either a threshold table or labels and probabilities, not both")
        table = table_or_labels
        missing = {"threshold", "sensitivity", "referred"} - set(table.columns)
        if missing:
            raise ValueError(f"threshold table is missing columns: {', '.join(sorted(missing))}")
    else:
        if probabilities is None:
            raise ValueError("give a threshold table, or labels and probabilities")
        table = threshold_table(table_or_labels, probabilities, n_boot=0)
    table = table.sort_values("threshold")
    thresholds = table["threshold"].to_numpy(dtype=np.float64)
    # A small tolerance so 19/20 counts as reaching 0.95 despite floating point.
    if rule == "sensitivity":
        if value <= 0:
            raise ValueError("a sensitivity target must be above 0")
        sensitivity = table["sensitivity"].to_numpy(dtype=np.float64)
        if np.isnan(sensitivity).all():
            raise ValueError("sensitivity is undefined: the local set has no PNEUMONIA cases")
        ok = np.flatnonzero(sensitivity >= value - 1e-12)
        if len(ok) == 0:
            raise ValueError(
                f"no threshold reaches a local sensitivity of {value:g} "
                f"(the best in the table is {np.nanmax(sensitivity):.3f})"
            )
        description = f"highest threshold keeping local sensitivity ≥ {value:g}"
        return Choice(float(thresholds[ok[-1]]), rule, value, description)

    referred = table["referred"].to_numpy(dtype=np.float64)
    ok = np.flatnonzero(referred <= value + 1e-12)
    if len(ok) == 0:
        raise ValueError(
            f"no threshold refers at most {100 * value:g}% of images "
            f"(even the highest threshold refers {100 * np.nanmin(referred):.1f}%)"
        )
    return Choice(
        float(thresholds[ok[0]]), rule, value, f"lowest threshold referring at most {100 * value:g}% of images"
    )


def _class_counts(labels: Any) -> tuple[int, int]:
    y = np.asarray(labels)
    if y.ndim != 1 or len(y) == 0:
        raise ValueError("labels must be a non-empty 1-D array")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0 (NORMAL) or 1 (PNEUMONIA)")
    n_pos = int(np.sum(y == 1))
    return len(y) - n_pos, n_pos


def can_refit(labels: Any, method: str) -> tuple[bool, str]:
    """Whether the local set is large enough to refit ``method`` on it, and why (one sentence).

    Temperature and Platt scaling need at least 100 cases of each class; isotonic
    regression, which has a free step at every score, also needs at least 1,000 cases.
    """
    if method not in REFIT_METHODS:
        raise ValueError(f"method must be one of {', '.join(REFIT_METHODS)}, got {method!r}")
    normal, pneumonia = _class_counts(labels)
    total = normal + pneumonia
    if method == "none":
        return True, "no calibration is fitted"
    name = {"temperature": "temperature scaling", "platt": "Platt scaling", "isotonic": "isotonic calibration"}[method]
    if method == "isotonic" and total < MIN_ISOTONIC:
        return False, (
            f"isotonic calibration needs at least {MIN_ISOTONIC:,} cases (it overfits smaller sets) and the "
            f"local set has {total:,}: use temperature scaling instead"
        )
    if min(normal, pneumonia) < MIN_PER_CLASS:
        return False, (
            f"refitting {name} needs at least {MIN_PER_CLASS} NORMAL and {MIN_PER_CLASS} PNEUMONIA cases and the "
            f"local set has {normal} and {pneumonia}: keep the shipped calibration"
        )
    return True, f"enough cases to refit {name} ({normal} NORMAL, {pneumonia} PNEUMONIA)"


def check_local_set(labels: Any, method: str = "temperature") -> list[str]:
    """Plain-sentence warnings about a local set's size; empty when it is adequate.

    ``method`` is the calibration the site intends to refit ("none" to skip that check).
    """
    normal, pneumonia = _class_counts(labels)
    warnings = []
    for name, count, rate in (("NORMAL", normal, "specificity"), ("PNEUMONIA", pneumonia, "sensitivity")):
        if count == 0:
            warnings.append(f"The local set has no {name} cases, so local {rate} cannot be measured.")
        elif count < MIN_PER_CLASS:
            warnings.append(
                f"The local set has only {count} {name} cases (fewer than {MIN_PER_CLASS}), so local {rate} "
                f"and its interval are too imprecise to set a threshold on: add more {name} cases."
            )
    ok, reason = can_refit(labels, method)
    if not ok:
        warnings.append(reason[0].upper() + reason[1:] + ".")
    return warnings

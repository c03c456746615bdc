"""Classification metrics, operating-threshold rules and bootstrap confidence intervals.

All figures come from scikit-learn; this module only validates inputs, picks
thresholds and arranges the numbers for the evaluation report and the dashboard.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)

from core.evaluation.scores import validate_scores


def _check_threshold(threshold: float) -> float:
    if not 0.0 <= float(threshold) <= 1.0:
        raise ValueError(f"threshold must be within [0, 1], got {threshold}")
    return float(threshold)


def predict_labels(probabilities: np.ndarray, threshold: float) -> np.ndarray:
    """1 (PNEUMONIA) where the probability reaches ``threshold``, else 0."""
    return (np.asarray(probabilities) >= _check_threshold(threshold)).astype(int)


def threshold_metrics(labels: np.ndarray, probabilities: np.ndarray, threshold: float) -> dict[str, float]:
    """Confusion counts and the clinical rates at one threshold.

    Rates whose denominator is zero (e.g. precision when nobody is referred) are NaN.
    """
    y, p = validate_scores(labels, probabilities)
    pred = predict_labels(p, threshold)
    tn, fp, fn, tp = (int(v) for v in confusion_matrix(y, pred, labels=[0, 1]).ravel())

    def ratio(num: int, den: int) -> float:
        return num / den if den else float("nan")

    return {
        "threshold": float(threshold),
        "tn": tn, "fp": fp, "fn": fn, "tp": tp,
        "recall": float(recall_score(y, pred, zero_division=np.nan)),
        "specificity": ratio(tn, tn + fp),
        "accuracy": float(accuracy_score(y, pred)),
        "precision": float(precision_score(y, pred, zero_division=np.nan)),
        "npv": ratio(tn, tn + fn),
        "f1": float(f1_score(y, pred, zero_division=np.nan)),
        "referred_fraction": (tp + fp) / len(y),
        "missed": fn,
    }


def classification_summary(labels: np.ndarray, probabilities: np.ndarray, threshold: float) -> dict[str, float]:
    """Threshold metrics plus the threshold-free AUC and log loss."""
    y, p = validate_scores(labels, probabilities)
    out = threshold_metrics(y, p, threshold)
    out["auc"] = float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else float("nan")
    out["loss"] = float(log_loss(y, np.clip(p, 1e-7, 1 - 1e-7), labels=[0, 1]))
    return out


def threshold_for_recall(labels: np.ndarray, probabilities: np.ndarray, min_recall: float) -> float:
    """The highest threshold whose recall is at least ``min_recall``.

    Higher thresholds refer fewer healthy children, so among those that keep the
    required sensitivity the highest one is chosen.
    """
    y, p = validate_scores(labels, probabilities)
    if not 0 < min_recall <= 1:
        raise ValueError("min_recall must be in (0, 1]")
    positives = np.sort(p[y == 1])[::-1]
    if len(positives) == 0:
        raise ValueError("need at least one PNEUMONIA case to set a recall target")
    needed = int(np.ceil(min_recall * len(positives) - 1e-9))
    return float(positives[max(needed, 1) - 1])


def threshold_for_max_accuracy(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """The threshold (among observed probabilities) with the highest accuracy; the lowest on ties."""
    y, p = validate_scores(labels, probabilities)
    candidates = np.unique(np.concatenate([p, [1.0]]))
    scores = [accuracy_score(y, p >= t) for t in candidates]
    return float(candidates[int(np.argmax(scores))])


def threshold_sweep(labels: np.ndarray, probabilities: np.ndarray, points: int = 201) -> dict[str, np.ndarray]:
    """Recall, specificity and accuracy on an evenly spaced grid of thresholds."""
    y, p = validate_scores(labels, probabilities)
    grid = np.linspace(0.0, 1.0, points)
    pred = p[None, :] >= grid[:, None]
    pos, neg = y == 1, y == 0
    tp = (pred & pos).sum(axis=1)
    tn = (~pred & neg).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "threshold": grid,
            "recall": tp / pos.sum() if pos.any() else np.full(points, np.nan),
            "specificity": tn / neg.sum() if neg.any() else np.full(points, np.nan),
            "accuracy": (tp + tn) / len(y),
        }


def curves(labels: np.ndarray, probabilities: np.ndarray) -> dict[str, np.ndarray]:
    """ROC and precision-recall curves with the thresholds at each point."""
    y, p = validate_scores(labels, probabilities)
    if len(np.unique(y)) < 2:
        raise ValueError("curves need both NORMAL and PNEUMONIA cases")
    fpr, tpr, roc_thresholds = roc_curve(y, p)
    precision, recall, pr_thresholds = precision_recall_curve(y, p)
    return {
        "fpr": fpr, "tpr": tpr, "roc_thresholds": roc_thresholds,
        "precision": precision, "recall": recall, "pr_thresholds": pr_thresholds,
    }


def misordered_pairs(labels: np.ndarray, probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per normal film and per pneumonia film, how many of its (normal, pneumonia) pairs are ranked wrongly.

    A pair is wrong when the normal film scores above the pneumonia film; a tie counts half.
    Each array sums to (1 - AUC) x normals x pneumonia films, so they show which films carry
    the AUC's shortfall. Raises ``ValueError`` unless both classes are present.
    """
    y, p = validate_scores(labels, probabilities)
    p_normal, p_pneumonia = p[y == 0], p[y == 1]
    if len(p_normal) == 0 or len(p_pneumonia) == 0:
        raise ValueError("misordered pairs need films of both classes")
    normal, pneumonia = np.sort(p_normal), np.sort(p_pneumonia)
    below = np.searchsorted(pneumonia, p_normal, side="left")
    per_normal = below + 0.5 * (np.searchsorted(pneumonia, p_normal, side="right") - below)
    not_above = np.searchsorted(normal, p_pneumonia, side="right")
    per_pneumonia = len(normal) - not_above + 0.5 * (not_above - np.searchsorted(normal, p_pneumonia, side="left"))
    return per_normal, per_pneumonia


def films_carrying(counts: np.ndarray, share: float = 0.5) -> int:
    """The fewest films whose wrong pairs (``misordered_pairs``) make up ``share`` of them all; 0 if none are wrong."""
    if not 0.0 < share <= 1.0:
        raise ValueError(f"share must be within (0, 1], got {share}")
    counts = np.sort(np.asarray(counts, dtype=np.float64))[::-1]
    total = counts.sum()
    if total == 0:
        return 0
    # A small tolerance so that a share reached exactly is not missed to rounding.
    return int(np.searchsorted(np.cumsum(counts), share * total - 1e-9 * total) + 1)


CI_METRICS = ("auc", "accuracy", "recall", "specificity", "precision", "f1")


def _resamples(n: int, groups: np.ndarray | None, n_resamples: int, seed: int):
    """Index arrays of ``n_resamples`` bootstrap draws of ``n`` predictions, whole groups at a time.

    Without ``groups`` every prediction is its own group.
    """
    if n_resamples < 10:
        raise ValueError("n_resamples must be at least 10")
    rng = np.random.default_rng(seed)
    groups = np.arange(n) if groups is None else np.asarray(groups)
    if len(groups) != n:
        raise ValueError("groups must have one entry per prediction")
    unique, inverse = np.unique(groups, return_inverse=True)
    members = [np.flatnonzero(inverse == g) for g in range(len(unique))]
    for _ in range(n_resamples):
        yield np.concatenate([members[g] for g in rng.integers(0, len(unique), len(unique))])


def bootstrap_ci(
    labels: np.ndarray,
    probabilities: np.ndarray,
    threshold: float,
    groups: np.ndarray | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap confidence intervals for the headline metrics.

    With ``groups`` (patient ids) whole patients are resampled, since images of one
    child are not independent.
    """
    y, p = validate_scores(labels, probabilities)
    samples: dict[str, list[float]] = {m: [] for m in CI_METRICS}
    for idx in _resamples(len(y), groups, n_resamples, seed):
        ys, ps = y[idx], p[idx]
        if len(np.unique(ys)) < 2:
            continue
        stats = classification_summary(ys, ps, threshold)
        for m in CI_METRICS:
            samples[m].append(stats[m])
    alpha = (1 - level) / 2
    return {
        m: (float(np.nanquantile(v, alpha)), float(np.nanquantile(v, 1 - alpha))) if v else (np.nan, np.nan)
        for m, v in samples.items()
    }


def auc_gain_ci(
    labels: np.ndarray,
    reference: np.ndarray,
    candidate: np.ndarray,
    groups: np.ndarray | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float, float]:
    """The candidate's AUC minus the reference's on the same images, with a paired bootstrap interval.

    Both score sets are resampled together, by whole ``groups`` (patients) when given, so the
    interval shows whether a gain measured on one small split is more than its noise.
    """
    y, ref = validate_scores(labels, reference)
    _, cand = validate_scores(labels, candidate)
    gains = []
    for idx in _resamples(len(y), groups, n_resamples, seed):
        if len(np.unique(y[idx])) == 2:
            gains.append(roc_auc_score(y[idx], cand[idx]) - roc_auc_score(y[idx], ref[idx]))
    gain = float(roc_auc_score(y, cand) - roc_auc_score(y, ref))
    if not gains:  # every resample held one class only: no interval to give
        return gain, float("nan"), float("nan")
    alpha = (1 - level) / 2
    return gain, float(np.quantile(gains, alpha)), float(np.quantile(gains, 1 - alpha))

"""The threshold explorer's numbers, fast enough to follow a slider.

The threshold-free parts (sweep, ROC and PR curves, presets) are computed once per
prediction file in :func:`explorer_data`; moving the threshold then only recomputes one
confusion matrix (:func:`metrics_at`, held equal to ``core.evaluation.metrics`` by a test).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from core.evaluation.metrics import curves, threshold_for_max_accuracy, threshold_for_recall, threshold_sweep

RECALL_TARGETS = (0.95, 0.98, 0.99)


@dataclass(frozen=True)
class ExplorerData:
    """Labels, probabilities and the threshold-free curves and presets of one prediction file."""

    y: np.ndarray
    p: np.ndarray
    sweep: dict[str, np.ndarray]
    curves: dict[str, np.ndarray] | None
    auc: float
    patients: int | None
    presets: dict[str, float]
    positive_p: np.ndarray  # sorted probabilities of the PNEUMONIA cases
    negative_p: np.ndarray  # sorted probabilities of the NORMAL cases

    @property
    def positives(self) -> int:
        return int(self.y.sum())

    @property
    def negatives(self) -> int:
        return int(len(self.y) - self.y.sum())


def explorer_data(frame: pd.DataFrame) -> ExplorerData:
    """Precompute everything that does not depend on the threshold; needs ``y`` and ``probability``."""
    y = frame["y"].to_numpy(dtype=int)
    p = frame["probability"].to_numpy(dtype=float)
    both = len(np.unique(y)) == 2
    patients = int(frame["patient"].nunique()) if "patient" in frame.columns else None
    # Searching all observed probabilities for the best accuracy takes a while on a big
    # test split: done once here, not on every slider move.
    found = {"Best accuracy": threshold_for_max_accuracy(y, p)}
    if y.any():
        for target in RECALL_TARGETS:
            found[f"Recall ≥ {target:.0%}"] = threshold_for_recall(y, p, target)
    return ExplorerData(y=y, p=p, sweep=threshold_sweep(y, p), curves=curves(y, p) if both else None,
                        auc=float(roc_auc_score(y, p)) if both else float("nan"), patients=patients,
                        presets=found, positive_p=np.sort(p[y == 1]), negative_p=np.sort(p[y == 0]))


def presets(data: ExplorerData, shipped: float) -> dict[str, float]:
    """Named thresholds: the shipped operating point, maximum accuracy and recall targets.

    A recall target that the predictions cannot support is left out.
    """
    return {f"Shipped ({shipped:.3f})": float(shipped), **data.presets}


def predictive_values(sensitivity: float, specificity: float, prevalence: float) -> tuple[float, float]:
    """PPV and NPV at another ``prevalence`` (Bayes' rule), from the split's sensitivity and specificity.

    The test split is enriched with pneumonia; where the tool is used the share is usually lower,
    and PPV falls with it while sensitivity and specificity do not change. NaN when undefined
    (nobody flagged, or nobody cleared).
    """
    if not 0.0 < float(prevalence) < 1.0:
        raise ValueError(f"prevalence must be strictly between 0 and 1, got {prevalence}")
    found, false_alarms = sensitivity * prevalence, (1 - specificity) * (1 - prevalence)
    cleared, missed = specificity * (1 - prevalence), (1 - sensitivity) * prevalence
    ppv = found / (found + false_alarms) if found + false_alarms > 0 else float("nan")
    npv = cleared / (cleared + missed) if cleared + missed > 0 else float("nan")
    return float(ppv), float(npv)


def metrics_at(data: ExplorerData, threshold: float) -> dict[str, float]:
    """Confusion counts and rates at ``threshold``; the same numbers as ``core.evaluation.metrics.threshold_metrics``.

    Counting with a binary search in the sorted probabilities takes microseconds, where the
    general scikit-learn path takes several milliseconds per call; the unit tests check
    that both agree.
    """
    if not 0.0 <= float(threshold) <= 1.0:
        raise ValueError(f"threshold must be within [0, 1], got {threshold}")
    positives, negatives = len(data.positive_p), len(data.negative_p)
    fn = int(np.searchsorted(data.positive_p, threshold, side="left"))
    tn = int(np.searchsorted(data.negative_p, threshold, side="left"))
    tp, fp = positives - fn, negatives - tn

    def ratio(num: int, den: int) -> float:
        return num / den if den else float("nan")

    return {
        "threshold": float(threshold),
        "tn": tn, "fp": fp, "fn": fn, "tp": tp,
        "recall": ratio(tp, tp + fn),
        "specificity": ratio(tn, tn + fp),
        "accuracy": (tp + tn) / (positives + negatives),
        "precision": ratio(tp, tp + fp),
        "npv": ratio(tn, tn + fn),
        "f1": ratio(2 * tp, 2 * tp + fp + fn),
        "referred_fraction": (tp + fp) / (positives + negatives),
        "missed": fn,
    }

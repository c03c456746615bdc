"""Checking labelled scores: the one validation shared by metrics and calibration (numpy only).

Kept apart from ``metrics`` so that applying a calibration never imports scikit-learn.
"""

from __future__ import annotations

import numpy as np


def validate_scores(labels: np.ndarray, probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Labels as 0/1 ints and probabilities as float64, both 1-D and of equal length, or ValueError."""
    y = np.asarray(labels)
    p = np.asarray(probabilities, dtype=np.float64)
    if y.ndim != 1 or p.ndim != 1 or len(y) != len(p):
        raise ValueError("labels and probabilities must be 1-D arrays of the same length")
    if len(y) == 0:
        raise ValueError("need at least one prediction")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0 (NORMAL) or 1 (PNEUMONIA)")
    if not np.isfinite(p).all() or (p < 0).any() or (p > 1).any():
        raise ValueError("probabilities must be finite and within [0, 1]")
    return y.astype(int), p

"""Out-of-distribution score on the model's own penultimate features.

The Mahalanobis distance to the nearest class mean under a shared, Ledoit-Wolf shrunk
covariance (Lee et al., 2018): grayscale pictures that are not radiographs land far
from every training X-ray in the space the classifier actually uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class OodModel:
    """Class means and a shared precision matrix over penultimate-layer features."""

    means: np.ndarray  # (classes, features)
    precision: np.ndarray  # (features, features)

    def distance(self, features: np.ndarray) -> np.ndarray:
        """Mahalanobis distance of each row of ``features`` to the nearest class mean."""
        features = np.atleast_2d(np.asarray(features, dtype=np.float64))
        if features.shape[1] != self.means.shape[1]:
            raise ValueError(f"expected {self.means.shape[1]} features, got {features.shape[1]}")
        diffs = features[:, None, :] - self.means[None, :, :]
        squared = np.einsum("ncf,fg,ncg->nc", diffs, self.precision, diffs)
        return np.sqrt(np.maximum(squared.min(axis=1), 0.0))

    def save(self, path: str | Path) -> None:
        """Write the parameters as a compressed ``.npz``."""
        np.savez_compressed(path, means=self.means.astype(np.float32), precision=self.precision.astype(np.float32))

    @classmethod
    def load(cls, path: str | Path) -> OodModel:
        """Read parameters written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as data:
            return cls(means=data["means"].astype(np.float64), precision=data["precision"].astype(np.float64))


def fit_ood(features: np.ndarray, labels: np.ndarray) -> OodModel:
    """Fit class means and a Ledoit-Wolf shrunk shared covariance on in-distribution features."""
    from sklearn.covariance import LedoitWolf

    features = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels)
    if features.ndim != 2 or len(features) != len(labels) or len(features) < 10:
        raise ValueError("need a (N, D) feature matrix with one label per row and N >= 10")
    classes = np.unique(labels)
    means = np.stack([features[labels == c].mean(axis=0) for c in classes])
    centred = features - means[np.searchsorted(classes, labels)]
    covariance = LedoitWolf().fit(centred).covariance_
    return OodModel(means=means, precision=np.linalg.pinv(covariance))

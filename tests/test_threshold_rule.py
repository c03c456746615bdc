"""The operating threshold's rule: chosen on validation films clean and under the shift benchmark."""

from __future__ import annotations

import numpy as np
import pytest

from core.calibration import Calibration
from core.evaluation.corruptions import FRAMING, PARAMS
from core.evaluation.metrics import threshold_for_recall
from helpers import brightness_model
from training.evaluate import shifted_validation


def films(size: int = 32) -> tuple[list[np.ndarray], np.ndarray]:
    rng = np.random.default_rng(0)
    levels = np.r_[rng.uniform(70, 110, 20), rng.uniform(140, 190, 20)]  # normals darker
    images = [np.clip(rng.normal(level, 4, (size, size)), 0, 255).astype(np.uint8) for level in levels]
    return images, np.r_[np.zeros(20, int), np.ones(20, int)]


def test_every_condition_is_scored_once_per_film() -> None:
    images, labels = films()
    scores, pooled_labels = shifted_validation(brightness_model(32), Calibration("none"), images, labels)
    conditions = len(PARAMS) + sum(len(levels) for levels in FRAMING.values())
    assert scores.shape == (conditions * len(images),)
    assert np.array_equal(pooled_labels, np.tile(labels, conditions))
    assert np.all((scores >= 0) & (scores <= 1))


def test_a_threshold_that_holds_under_shift_is_lower_when_darkening_hides_disease() -> None:
    images, labels = films()
    model = brightness_model(32)
    calibration = Calibration("none")
    clean = calibration.apply(model.predict(np.stack(images)[..., None], verbose=0).reshape(-1))
    shifted, pooled_labels = shifted_validation(model, calibration, images, labels)
    clean_only = threshold_for_recall(labels, clean, 0.98)
    pooled = threshold_for_recall(np.r_[labels, pooled_labels], np.r_[clean, shifted], 0.98)
    # Darkening and lowered contrast pull the brighter (pneumonia) films down: a threshold fitted on
    # clean films misses them, the pooled one keeps recall over every condition together.
    assert pooled < clean_only
    assert (shifted[pooled_labels == 1] >= clean_only).mean() < 0.98
    assert (np.r_[clean, shifted][np.r_[labels, pooled_labels] == 1] >= pooled).mean() >= 0.98


def test_no_films_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no validation images"):
        shifted_validation(brightness_model(32), Calibration("none"), [], np.zeros(0, int))

"""The error analysis: image statistics that need no lungs, map shares, and the table's sections."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import xray_like
from training.error_analysis import COLUMNS, analyse, cam_shares, image_statistics


def _blur(image: np.ndarray) -> np.ndarray:
    x = np.pad(image.astype(np.float64), 2, mode="edge")
    out = sum(x[i:i + image.shape[0], j:j + image.shape[1]] for i in range(5) for j in range(5)) / 25.0
    return out.round().astype(np.uint8)


def test_statistics_see_softness_and_the_outer_band() -> None:
    rng = np.random.default_rng(0)
    sharp = np.clip(xray_like(64, 64, seed=1) + rng.normal(0, 15, (64, 64)), 0, 255).astype(np.uint8)
    soft = image_statistics(_blur(sharp))
    crisp = image_statistics(sharp)
    assert soft["fine_detail"] < 0.5 * crisp["fine_detail"]
    assert soft["sharpness_outer_band"] < crisp["sharpness_outer_band"]
    framed = np.full((64, 64), 200, np.uint8)
    framed[8:56, 8:56] = 40  # a bright frame around a dark centre
    stats = image_statistics(framed)
    assert stats["outer_band_mean"] > 0.7 and stats["centre_mean"] < 0.2 and stats["centre_minus_band"] < -0.5
    with pytest.raises(ValueError):
        image_statistics(np.zeros((10, 20), np.uint8))


def test_cam_shares_of_a_uniform_map_are_the_areas() -> None:
    shares = cam_shares(np.ones((64, 64)))
    assert shares["cam_outer_band_share"] == pytest.approx(1 - (48 / 64) ** 2)
    assert shares["cam_corner_share"] == pytest.approx(4 * 13 * 13 / 64 ** 2)
    centre = np.zeros((64, 64))
    centre[24:40, 24:40] = 1
    assert cam_shares(centre) == {"cam_outer_band_share": 0.0, "cam_corner_share": 0.0}
    assert np.isnan(cam_shares(np.zeros((64, 64)))["cam_outer_band_share"])


def test_analysis_finds_a_planted_cue() -> None:
    """Pneumonia films and the highest-scored normals are softer: the table must say so."""
    rng = np.random.default_rng(1)

    def film(seed: int, soft: bool) -> np.ndarray:
        image = np.clip(xray_like(64, 64, seed=seed) + rng.normal(0, 15, (64, 64)), 0, 255).astype(np.uint8)
        return _blur(image) if soft else image

    train = [film(s, soft=s % 2 == 1) for s in range(40)]
    train_labels = np.array([s % 2 for s in range(40)])
    val = [film(100 + s, soft=s < 5) for s in range(20)] + [film(200 + s, soft=True) for s in range(6)]
    val_labels = np.array([0] * 20 + [1] * 6)
    scores = np.array([0.9 - 0.01 * s if s < 5 else 0.1 + 0.01 * s for s in range(20)] + [0.95] * 6)

    def corner_map(image: np.ndarray) -> np.ndarray:  # looks at the corners of soft films
        cam = np.ones(image.shape)
        if image_statistics(image)["fine_detail"] < 0.02:
            cam[:12, :12] = 50
        return cam

    table = analyse({"train": train, "val": val}, {"train": train_labels, "val": val_labels}, scores, corner_map,
                    cam_images=5)
    assert list(table.columns) == COLUMNS
    assert table["section"].nunique() == 3
    row = table.set_index(["section", "statistic"])
    assert row.loc[("cues in the training split", "fine_detail"), "auc"] < 0.1
    over = row.loc[("over-called validation normals", "fine_detail")]
    assert over["auc"] < 0.1 and over["spearman_with_score"] < -0.3 and over["n_group"] == 5
    looks = row.loc[("where the model looks on validation normals", "cam_corner_share")]
    assert looks["mean_group"] > looks["mean_reference"] and looks["auc"] == 1.0
    with pytest.raises(ValueError, match="one validation score"):
        analyse({"train": train, "val": val}, {"train": train_labels, "val": val_labels}, scores[:3], corner_map)

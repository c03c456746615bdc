"""Tint versus colour: a photographed film carries one global colour cast, a scene does not.

A grayscale radiograph photographed under a warm bulb, against a blue sky or through a
phone's white balance comes out tinted, but its colour is still a function of brightness
alone: every pixel of a given luminance has (nearly) the same chroma. A photograph of a
scene has chroma that varies independently of luminance (a red and a green object of the
same brightness). So the test is how much chroma is left after removing, per channel, the
best function of luminance, estimated by binning luminance. The function is free-form, so
clipping of the cast's strong channel and camera tone curves do not count against a tint.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# Mean chroma (Euclidean distance of RGB from its luminance, gray levels) below which the
# image counts as gray: JPEG-compressed grayscale saved as RGB stays around 1.
CAST_MIN = 3.0
# Chroma not explained by luminance (75th percentile, gray levels) above which the image is
# a colour scene. Synthetic film photos (warm or blue cast, glare, vignetting, JPEG 40-80)
# stay below 4 on the film and below 6 over a busy frame; natural colour photographs, even
# muted or single-hued ones (a cat, coffee, a retina), score 11 and more.
SCENE_MIN = 8.0
_LUMA_BINS = 32
_SATURATED = 250  # channels at or above this have lost the cast's ratio to clipping
_ANALYSIS_SIDE = 160


@dataclass(frozen=True)
class TintAnalysis:
    """Colour statistics of an RGB image, in gray levels."""

    cast: float  # mean chroma: how far the pixels are from gray at all
    unexplained: float  # 75th percentile of chroma not predicted by luminance
    has_cast: bool  # a measurable colour cast that removing would change
    is_colour_scene: bool  # colour that varies independently of brightness: not a tinted grayscale


def luminance(rgb: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma of an ``(H, W, 3)`` uint8 RGB image; exact for images with R = G = B.

    A row/column slice of a larger image is read in place (OpenCV follows the row stride).
    """
    if rgb.strides[-1] != 1 or rgb.strides[-2] != 3:
        rgb = np.ascontiguousarray(rgb)
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def analyse_tint(rgb: np.ndarray) -> TintAnalysis:
    """Decide whether ``rgb`` (uint8, ideally already small) is a tinted grayscale or a colour scene."""
    h, w = rgb.shape[:2]
    if max(h, w) > _ANALYSIS_SIDE:
        k = _ANALYSIS_SIDE / max(h, w)
        rgb = cv2.resize(rgb, (max(1, round(w * k)), max(1, round(h * k))), interpolation=cv2.INTER_AREA)
    pixels = rgb.reshape(-1, 3).astype(np.float32)
    luma = pixels @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    chroma = pixels - luma[:, None]
    cast = float(np.sqrt((chroma * chroma).sum(axis=1)).mean()) if len(pixels) else 0.0
    if cast < CAST_MIN:
        return TintAnalysis(cast, 0.0, False, False)

    # Clipped pixels keep only part of the cast, and near-black ones carry none to measure.
    valid = (pixels.max(axis=1) < _SATURATED) & (luma > 4)
    if valid.sum() < 64:
        valid = np.ones(len(pixels), dtype=bool)
    luma, chroma = luma[valid], chroma[valid]
    bins = np.minimum((luma * (_LUMA_BINS / 256.0)).astype(np.intp), _LUMA_BINS - 1)
    counts = np.bincount(bins, minlength=_LUMA_BINS).astype(np.float32)
    counts[counts == 0] = 1.0
    predicted = np.stack(
        [np.bincount(bins, weights=chroma[:, c], minlength=_LUMA_BINS) / counts for c in range(3)], axis=1
    ).astype(np.float32)
    diff = chroma - predicted[bins]
    residual = np.sqrt((diff * diff).sum(axis=1))
    k = (3 * len(residual)) // 4
    unexplained = float(np.partition(residual, k)[k])  # 75th percentile without a full sort
    is_scene = unexplained > SCENE_MIN
    return TintAnalysis(cast, unexplained, not is_scene, is_scene)

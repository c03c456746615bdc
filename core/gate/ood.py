"""Out-of-distribution score on the model's own penultimate features.

The Mahalanobis distance to the nearest class mean under a shared, Ledoit-Wolf shrunk
covariance (Lee et al., 2018): grayscale pictures that are not radiographs land far
from every training X-ray in the space the classifier actually uses.

For an ensemble the features are the members' pooled features side by side. They can be
kept as separate blocks: each member's distance is measured in its own space and divided by
its own scale (its validation quantile), and the image's distance is the largest of these,
so one member that finds a picture far from every X-ray is enough to refuse it.

A last block can read the image itself rather than any member (``layout_side``): the mean
gray level of each cell of a coarse grid over the model input. A radiograph has a fixed
layout (dark lungs either side of a bright mediastinum) whatever network scores it, so this
block refuses photographs and drawings that a member trained on standardized images would not
tell apart from X-rays, and keeps doing so when the members change. A texture block after it
(``texture_side``) reads how much the gray level changes from pixel to pixel in each cell of
another grid: logos, pages and drawings are flat between sharp strokes, where a film has fine
grain everywhere, so they are refused even when their coarse layout passes for a radiograph's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class OodModel:
    """Class means and a shared precision matrix over penultimate-layer features."""

    means: np.ndarray  # (classes, features)
    precision: np.ndarray  # (features, features); block-diagonal when there are blocks
    blocks: tuple[int, ...] = ()  # widths of independent feature blocks (one per member); () is one block
    scales: tuple[float, ...] = ()  # each block's distance is divided by its scale; () is all 1
    layout_side: int = 0  # > 0: a block of the image's layout on a side x side grid (see join)
    texture_side: int = 0  # > 0: the last block is the image's texture on a side x side grid (see join)

    def __post_init__(self) -> None:
        width = self.means.shape[1]
        if self.blocks and (sum(self.blocks) != width or min(self.blocks) < 1):
            raise ValueError(f"block widths {self.blocks} do not add up to {width} features")
        if self.scales and (len(self.scales) != len(self.widths) or min(self.scales) <= 0):
            raise ValueError("need one positive scale per block")
        image_blocks = [side ** 2 for side in (self.layout_side, self.texture_side) if side]
        if image_blocks and list(self.widths[-len(image_blocks):]) != image_blocks:
            raise ValueError(f"the last blocks must be the image's own features, {image_blocks} wide "
                             "(layout, then texture)")

    def join(self, features: np.ndarray, images: np.ndarray) -> np.ndarray:
        """The rows :meth:`distance` reads: the members' ``features``, then the layout and texture of
        ``images`` when those blocks are used."""
        return join_image_blocks(features, images, self.layout_side, self.texture_side)

    @property
    def widths(self) -> tuple[int, ...]:
        """The feature blocks' widths (one block covering every feature when none were given)."""
        return self.blocks or (int(self.means.shape[1]),)

    def block_distances(self, features: np.ndarray) -> np.ndarray:
        """``(N, blocks)`` unscaled Mahalanobis distances to the nearest class mean, per block."""
        features = np.atleast_2d(np.asarray(features, dtype=np.float64))
        if features.shape[1] != self.means.shape[1]:
            raise ValueError(f"expected {self.means.shape[1]} features, got {features.shape[1]}")
        out, start = [], 0
        for width in self.widths:
            part = slice(start, start + width)
            diffs = features[:, None, part] - self.means[None, :, part]
            # (d P) . d through BLAS: the three-operand einsum ran as one unoptimised loop,
            # about 0.5 ms an image on the thread that feeds the model.
            squared = ((diffs @ self.precision[part, part]) * diffs).sum(axis=2)
            out.append(np.sqrt(np.maximum(squared.min(axis=1), 0.0)))
            start += width
        return np.stack(out, axis=1)

    def distance(self, features: np.ndarray) -> np.ndarray:
        """Distance of each row of ``features``: the largest scaled block distance."""
        scales = np.asarray(self.scales or (1.0,) * len(self.widths))
        return (self.block_distances(features) / scales).max(axis=1)

    def with_scales(self, features: np.ndarray, quantile: float) -> OodModel:
        """The same model with each block scaled by its ``quantile`` distance on ``features``."""
        scales = np.quantile(self.block_distances(features), quantile, axis=0)
        return OodModel(self.means, self.precision, self.blocks, tuple(float(s) for s in np.maximum(scales, 1e-9)),
                        self.layout_side, self.texture_side)

    def save(self, path: str | Path) -> None:
        """Write the parameters as a compressed ``.npz``."""
        np.savez_compressed(path, means=self.means.astype(np.float32), precision=self.precision.astype(np.float32),
                            blocks=np.asarray(self.blocks, dtype=np.int64),
                            scales=np.asarray(self.scales, dtype=np.float64),
                            layout_side=np.asarray(self.layout_side, dtype=np.int64),
                            texture_side=np.asarray(self.texture_side, dtype=np.int64))

    @classmethod
    def load(cls, path: str | Path) -> OodModel:
        """Read parameters written by :meth:`save` (older files: one block, no layout or texture)."""
        with np.load(path, allow_pickle=False) as data:
            blocks = tuple(int(b) for b in data["blocks"]) if "blocks" in data else ()
            scales = tuple(float(s) for s in data["scales"]) if "scales" in data else ()
            layout_side = int(data["layout_side"]) if "layout_side" in data else 0
            texture_side = int(data["texture_side"]) if "texture_side" in data else 0
            return cls(means=data["means"].astype(np.float64), precision=data["precision"].astype(np.float64),
                       blocks=blocks, scales=scales, layout_side=layout_side, texture_side=texture_side)


def join_image_blocks(features: np.ndarray, images: np.ndarray, layout_side: int, texture_side: int) -> np.ndarray:
    """``features`` followed by the :func:`layout_features` and :func:`texture_features` of ``images``
    (each only when its side is set): the rows a feature-space model is fitted on and measures."""
    if not layout_side and not texture_side:
        return features
    features = np.atleast_2d(features)
    parts = [features]
    if layout_side:
        parts.append(layout_features(images, layout_side))
    if texture_side:
        parts.append(texture_features(images, texture_side))
    if any(len(part) != len(features) for part in parts):
        raise ValueError(f"{len(features)} rows of features for {len(parts[-1])} images")
    return np.hstack(parts)


def layout_features(images: np.ndarray, side: int) -> np.ndarray:
    """Mean gray level (0-1) of each cell of a ``side x side`` grid: ``(N, side * side)`` for ``(N, S, S)`` uint8."""
    return _cell_means(_checked(images, side), side) / 255.0


def texture_features(images: np.ndarray, side: int) -> np.ndarray:
    """``log(1 + g)`` for ``g`` the mean absolute gray-level step between neighbouring pixels in each cell
    of a ``side x side`` grid: ``(N, side * side)`` for ``(N, S, S)`` uint8 images.

    Each pixel carries the step to its right-hand and lower neighbours, so a cell's value is its
    grain plus its edges. The log keeps a page's few very sharp strokes from swamping the scale.
    """
    gray = _checked(images, side).astype(np.int16)
    steps = np.zeros(gray.shape, dtype=np.float32)
    steps[:, :, :-1] += np.abs(np.diff(gray, axis=2))
    steps[:, :-1, :] += np.abs(np.diff(gray, axis=1))
    return np.log1p(_cell_means(steps, side))


def _checked(images: np.ndarray, side: int) -> np.ndarray:
    """``images`` as an array, when they are ``(N, S, S)`` uint8 at least ``side`` pixels a side."""
    images = np.asarray(images)
    if images.ndim != 3 or images.dtype != np.uint8 or side < 1 or min(images.shape[1:]) < side:
        raise ValueError(f"expected (N, S, S) uint8 images at least {side} px a side")
    return images


def _cell_means(values: np.ndarray, side: int) -> np.ndarray:
    """Mean of ``(N, S, S)`` ``values`` over each cell of a ``side x side`` grid: ``(N, side * side)``."""
    n, height, width = values.shape
    if height % side == 0 and width % side == 0:
        # Whole pixel blocks (the shipped 224-px input on a 16 or 8 grid): a reshape, several times
        # faster than the weighted sums below and equal to them (tests/test_gate.py).
        cells = values.reshape(n, side, height // side, side, width // side).mean(axis=(2, 4), dtype=np.float64)
    else:
        cells = _cell_weights(height, side) @ values.astype(np.float64) @ _cell_weights(width, side).T
    return cells.reshape(n, side * side)


def _cell_weights(size: int, side: int) -> np.ndarray:
    """``(side, size)``: the share of each of ``size`` pixels in each of ``side`` equal cells, rows summing to 1.

    A pixel on a cell boundary counts in both cells by the part it covers, so a grid that does not
    divide the side still averages each cell by area.
    """
    edges = np.linspace(0.0, size, side + 1)
    pixels = np.arange(size)
    overlap = np.minimum(edges[1:, None], pixels + 1) - np.maximum(edges[:-1, None], pixels)
    return np.clip(overlap, 0.0, None) / (size / side)


def fit_ood(features: np.ndarray, labels: np.ndarray, blocks: tuple[int, ...] = (), layout_side: int = 0,
            texture_side: int = 0) -> OodModel:
    """Fit class means and a Ledoit-Wolf shrunk shared covariance on in-distribution features.

    With ``blocks`` (feature widths, e.g. one per ensemble member) each block gets its own
    covariance and nothing is shared between blocks. With ``layout_side`` and ``texture_side`` the
    rows end with :func:`layout_features` and then :func:`texture_features` (see
    :meth:`OodModel.join`), which must be the last blocks.
    """
    from sklearn.covariance import LedoitWolf

    features = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels)
    if features.ndim != 2 or len(features) != len(labels) or len(features) < 10:
        raise ValueError("need a (N, D) feature matrix with one label per row and N >= 10")
    classes = np.unique(labels)
    means = np.stack([features[labels == c].mean(axis=0) for c in classes])
    centred = features - means[np.searchsorted(classes, labels)]
    model = OodModel(means=means, precision=np.zeros((features.shape[1],) * 2), blocks=tuple(blocks),
                     layout_side=layout_side, texture_side=texture_side)
    precision, start = model.precision, 0
    for width in model.widths:
        part = slice(start, start + width)
        precision[part, part] = np.linalg.pinv(LedoitWolf().fit(centred[:, part]).covariance_)
        start += width
    return model

"""Turning maps into pictures: colour maps, overlays on the X-ray, feature-map grids."""

from __future__ import annotations

import numpy as np
from PIL import Image

# A map whose strongest value is below this (in logit units per unit activation) holds
# no evidence worth drawing; normalising it would blow noise up to full colour.
FLAT_CAM = 1e-7

# Anchor colours of the "turbo" and "viridis" colour maps, interpolated linearly; enough
# for display and avoids a plotting-library dependency.
_TURBO = np.array([
    (48, 18, 59), (70, 107, 227), (40, 187, 236), (49, 242, 153), (162, 252, 60),
    (237, 208, 58), (251, 128, 34), (209, 49, 5), (122, 4, 3),
], dtype=np.float32)
_VIRIDIS = np.array([
    (68, 1, 84), (72, 40, 120), (62, 74, 137), (49, 104, 142), (38, 130, 142),
    (31, 158, 137), (53, 183, 121), (109, 205, 89), (180, 222, 44), (253, 231, 37),
], dtype=np.float32)


def colormap(values: np.ndarray, name: str = "turbo") -> np.ndarray:
    """Map values in [0, 1] to RGB uint8 with the ``turbo`` or ``viridis`` colour map."""
    anchors = {"turbo": _TURBO, "viridis": _VIRIDIS}.get(name)
    if anchors is None:
        raise ValueError(f"unknown colour map {name!r}; choose 'turbo' or 'viridis'")
    v = np.clip(np.nan_to_num(np.asarray(values, dtype=np.float32)), 0.0, 1.0)
    grid = np.linspace(0.0, 1.0, len(anchors))
    channels = [np.interp(v, grid, anchors[:, c]) for c in range(3)]
    return np.stack(channels, axis=-1).round().astype(np.uint8)


def normalise_map(cam: np.ndarray) -> np.ndarray:
    """Scale a non-negative map to [0, 1]; a map with no positive evidence becomes all zeros."""
    cam = np.nan_to_num(np.asarray(cam, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    cam = np.maximum(cam, 0.0)
    peak = float(cam.max()) if cam.size else 0.0
    if peak <= FLAT_CAM:
        return np.zeros_like(cam)
    return cam / peak


def resize_map(cam: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a float map to ``size`` = (width, height)."""
    if cam.ndim != 2:
        raise ValueError("expected a 2-D map")
    image = Image.fromarray(np.asarray(cam, dtype=np.float32), mode="F")
    return np.asarray(image.resize(size, Image.Resampling.BILINEAR), dtype=np.float32)


def overlay_heatmap(gray: np.ndarray, cam: np.ndarray, opacity: float = 0.5) -> np.ndarray:
    """Blend a [0, 1] attention map over a grayscale image; returns RGB uint8 of the image's size.

    The map was computed on the squashed square model input, so stretching it back to the
    image's own width and height puts every cell over the pixels it came from. Each
    pixel's colour weight grows with the attention there, so low-attention areas keep the
    plain radiograph instead of a uniform tint.
    """
    if gray.ndim != 2 or gray.dtype != np.uint8:
        raise ValueError("expected a 2-D uint8 grayscale image")
    if not 0.0 <= opacity <= 1.0:
        raise ValueError("opacity must be within [0, 1]")
    height, width = gray.shape
    heat = np.clip(resize_map(cam, (width, height)), 0.0, 1.0)
    colour = colormap(heat).astype(np.float32)
    base = np.repeat(gray[..., None], 3, axis=-1).astype(np.float32)
    alpha = (opacity * heat)[..., None]
    return (base * (1.0 - alpha) + colour * alpha).round().astype(np.uint8)


def feature_grid(maps: np.ndarray, columns: int = 8, tile: int = 96, gap: int = 2) -> np.ndarray:
    """Tile ``(k, h, w)`` feature maps into one RGB image, each scaled to its own range.

    Every tile is normalised on its own so weak channels stay visible; cells are enlarged
    with nearest-neighbour so the coarse grid of deep layers is not blurred into shapes
    the network never saw.
    """
    if maps.ndim != 3 or len(maps) == 0:
        raise ValueError("expected a non-empty (k, h, w) stack of feature maps")
    if columns < 1 or tile < 4 or gap < 0:
        raise ValueError("columns must be ≥ 1, tile ≥ 4 and gap ≥ 0")
    count = len(maps)
    columns = min(columns, count)
    rows = -(-count // columns)
    canvas = np.full((rows * tile + (rows - 1) * gap, columns * tile + (columns - 1) * gap, 3), 255, np.uint8)
    for index, fmap in enumerate(np.asarray(maps, dtype=np.float32)):
        lo, hi = float(fmap.min()), float(fmap.max())
        scaled = (fmap - lo) / (hi - lo) if hi > lo else np.zeros_like(fmap)
        cell = Image.fromarray(colormap(scaled, "viridis")).resize((tile, tile), Image.Resampling.NEAREST)
        r, c = divmod(index, columns)
        y, x = r * (tile + gap), c * (tile + gap)
        canvas[y:y + tile, x:x + tile] = np.asarray(cell)
    return canvas

"""From a decoded grayscale image to the model's input, and to a copy for display.

Every image that reaches the model goes through :func:`prepare_image`: decode, then
squash-resize (aspect ratio not kept) to the model's square input. Training decodes
through the same function, so the two cannot drift apart.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from core.inputs.raster import decode_gray
from core.inputs.read import Source


def resize_square(gray: np.ndarray, size: int) -> np.ndarray:
    """Squash-resize a 2-D uint8 array to ``size``×``size`` (bilinear, antialiased)."""
    if gray.ndim != 2 or gray.dtype != np.uint8:
        raise ValueError("expected a 2-D uint8 grayscale array")
    if size < 8:
        raise ValueError("size must be at least 8")
    if gray.shape == (size, size):
        return gray
    image = Image.fromarray(gray, mode="L").resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.uint8)


def prepare_image(source: Source, size: int) -> np.ndarray:
    """Decode and preprocess one image into the model's ``(size, size)`` uint8 input."""
    return resize_square(decode_gray(source, min_size=(size, size)), size)


def display_image(source: Source, max_side: int = 768) -> np.ndarray:
    """Decode an upright grayscale copy for display, aspect ratio kept, longest side ≤ ``max_side``."""
    if max_side < 16:
        raise ValueError("max_side must be at least 16")
    gray = decode_gray(source, min_size=(max_side, max_side))
    height, width = gray.shape
    scale = max_side / max(height, width)
    if scale >= 1:
        return gray
    new = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(gray, mode="L").resize(new, Image.Resampling.BILINEAR), dtype=np.uint8)

"""From a decoded image to the model's input, and to a copy for display.

Every image that reaches the model goes through :func:`prepare`: decode (colour kept),
the capture step (a phone photo of a film becomes the film, in gray; an ordinary X-ray
passes untouched), then squash-resize (aspect ratio not kept) to the model's square input.
Training decodes through the same function, so the two cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from core.capture import Capture, capture, radiograph
from core.inputs.raster import decode_gray, decode_pixels
from core.inputs.read import Source, read_bytes

# Colour photos are decoded at twice the model's side: the film may fill only part of the frame.
PHOTO_DETAIL = 2


@dataclass(frozen=True)
class Prepared:
    """One decoded upload: the radiograph after capture, the model input and what capture did."""

    gray: np.ndarray  # (H, W) uint8, upright; the film when a photo was cropped
    image: np.ndarray  # (S, S) uint8 model input
    capture: Capture


def prepare(source: Source, size: int, detail: int | None = None) -> Prepared:
    """Decode, capture and resize one image; ``detail`` is the least side kept in ``gray`` (default ``size``).

    Raises ``ImageError`` for anything that cannot be read.
    """
    data = read_bytes(source)
    side = max(size, detail or size)
    photo_side = max(side, PHOTO_DETAIL * size)
    pixels = decode_pixels(data, min_size=(side, side), colour_min_size=(photo_side, photo_side))
    # Phone cameras save colour: a grayscale file is an export of the radiograph itself, so the
    # film search (about 8 ms an image) runs on colour uploads only; an export loses only a uniform
    # border it may carry (padding, shutters).
    captured = capture(pixels) if pixels.ndim == 3 else radiograph(pixels)
    return Prepared(captured.gray, resize_square(captured.gray, size), captured)


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
    """Decode, capture and preprocess one image into the model's ``(size, size)`` uint8 input."""
    return prepare(source, size).image


def display_image(source: Source, max_side: int = 768) -> np.ndarray:
    """Decode an upright grayscale copy for display, aspect ratio kept, longest side ≤ ``max_side``."""
    if max_side < 16:
        raise ValueError("max_side must be at least 16")
    return shrink_for_display(decode_gray(source, min_size=(max_side, max_side)), max_side)


def shrink_for_display(gray: np.ndarray, max_side: int = 768) -> np.ndarray:
    """``gray`` with its longest side at most ``max_side`` (aspect ratio kept)."""
    height, width = gray.shape
    scale = max_side / max(height, width)
    if scale >= 1:
        return gray
    new = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(gray, mode="L").resize(new, Image.Resampling.BILINEAR), dtype=np.uint8)

"""Size limits every input is checked against before any pixel is decoded."""

from __future__ import annotations

from core.errors import ImageError

MAX_FILE_BYTES = 100 * 1024 * 1024
MAX_PIXELS = 60_000_000  # a 7,000 × 8,500 detector image; anything larger is refused.
MAX_SIDE = 20_000
MIN_SIDE = 32


def check_dimensions(width: int, height: int) -> None:
    """Raise ``ImageError`` unless a ``width``×``height`` image is within the size limits."""
    if width <= 0 or height <= 0 or width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
        raise ImageError(f"image dimensions {width}×{height} are outside the supported range")
    if min(width, height) < MIN_SIDE:
        raise ImageError(f"image is too small ({width}×{height} px); at least {MIN_SIDE} px per side is needed")

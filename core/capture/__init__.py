"""Capture step: turn a phone photograph of an X-ray film into the grayscale radiograph to assess.

Runs after decoding and before the "cannot assess" gate. ``capture(image)`` returns a
``Capture``: the radiograph (cropped to the film, perspective-corrected and with its colour
cast removed, as needed), machine codes and a human note for what was done, the skew that
was corrected, and whether the image is a genuinely colourful scene for the gate to refuse.
No Streamlit, no TensorFlow: NumPy and OpenCV only.
"""

from __future__ import annotations

from core.capture.film import FilmQuad, extract_film, find_film
from core.capture.pipeline import (
    BORDER_NOTE,
    CROPPED_PHOTO_HINT,
    PHOTO_HINT,
    Capture,
    capture,
    radiograph,
    refusal_note,
)
from core.capture.tint import TintAnalysis, analyse_tint, luminance

__all__ = [
    "BORDER_NOTE",
    "CROPPED_PHOTO_HINT",
    "PHOTO_HINT",
    "Capture",
    "FilmQuad",
    "TintAnalysis",
    "analyse_tint",
    "capture",
    "extract_film",
    "find_film",
    "luminance",
    "radiograph",
    "refusal_note",
]

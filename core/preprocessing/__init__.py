"""Preprocessing: decode, capture, and the model's square input (and a display copy)."""

from core.preprocessing.resize import (
    Prepared,
    display_image,
    prepare,
    prepare_image,
    resize_square,
    shrink_for_display,
)

__all__ = ["Prepared", "display_image", "prepare", "prepare_image", "resize_square", "shrink_for_display"]

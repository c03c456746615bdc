"""Preprocessing: the decoded image becomes the model input (and a display copy)."""

from core.preprocessing.resize import display_image, prepare_image, resize_square

__all__ = ["display_image", "prepare_image", "resize_square"]

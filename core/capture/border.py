"""Uniform borders around a grayscale radiograph: padding, shutters, a viewer's black surround.

An export padded to a square, or a film framed by a flat black or gray margin, puts a long
straight edge and a frame of constant gray into the picture. Neither is anatomy: the gate reads
the edge as text or a screenshot and the frame as a layout no radiograph has, and refuses the
film. Rows and columns at an edge whose gray levels hardly vary are cut off first, when there
are enough of them to be a border rather than a dark line of the film itself.
"""

from __future__ import annotations

import numpy as np

BORDER_LEVELS = 4  # a border line spans at most this many gray levels (a film's edge line spans more)
BORDER_MIN_SHARE = 0.03  # top + bottom (or left + right) must make at least this share of the side
BORDER_MAX_SHARE = 0.25  # at most this much is cut from one edge: a mostly uniform picture is the gate's to judge


def uniform_border(gray: np.ndarray) -> tuple[int, int, int, int]:
    """Rows at the top and bottom, columns at the left and right, to trim from a ``(H, W)`` uint8 image.

    ``(0, 0, 0, 0)`` when there is no border worth trimming (see the module's constants).
    """
    if gray.ndim != 2 or gray.dtype != np.uint8:
        raise ValueError("expected a 2-D uint8 grayscale array")
    height, width = gray.shape
    if min(height, width) < 8:
        return 0, 0, 0, 0
    # The common case costs four line checks: no edge line is flat, so there is no border.
    edges = (gray[0], gray[-1], gray[:, 0], gray[:, -1])
    if not any(_flat(line[None, :])[0] for line in edges):
        return 0, 0, 0, 0
    if int(gray.max()) - int(gray.min()) <= BORDER_LEVELS:
        return 0, 0, 0, 0  # a blank picture has no film inside a border: the gate refuses it as it is
    top = _run(gray[: int(height * BORDER_MAX_SHARE)])
    bottom = _run(gray[::-1][: int(height * BORDER_MAX_SHARE)])
    left = _run(gray.T[: int(width * BORDER_MAX_SHARE)])
    right = _run(gray.T[::-1][: int(width * BORDER_MAX_SHARE)])
    if top + bottom < BORDER_MIN_SHARE * height:
        top = bottom = 0
    if left + right < BORDER_MIN_SHARE * width:
        left = right = 0
    return top, bottom, left, right


def trim_border(gray: np.ndarray) -> np.ndarray:
    """``gray`` without its uniform border; ``gray`` itself when it has none."""
    top, bottom, left, right = uniform_border(gray)
    if not any((top, bottom, left, right)):
        return gray
    return gray[top: gray.shape[0] - bottom, left: gray.shape[1] - right]


def _flat(lines: np.ndarray) -> np.ndarray:
    """Per line (row of ``lines``): whether its gray levels span at most :data:`BORDER_LEVELS`."""
    return (lines.max(axis=1).astype(np.int16) - lines.min(axis=1)) <= BORDER_LEVELS


def _run(lines: np.ndarray) -> int:
    """How many of ``lines``, from the first, are flat."""
    # Most edges are film: one line says so, without reading a quarter of the image.
    if len(lines) == 0 or not _flat(lines[:1])[0]:
        return 0
    flat = _flat(lines)
    return len(flat) if flat.all() else int(np.argmin(flat))

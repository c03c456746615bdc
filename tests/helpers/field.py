"""Synthetic films and photos of films, for the capture tests and the pipeline tests."""

from __future__ import annotations

import math

import cv2
import numpy as np

LUMA = np.array([0.299, 0.587, 0.114])


def radiograph(height: int = 260, width: int = 220, seed: int = 0) -> np.ndarray:
    """A film-like image: smooth body gradient, darker lungs, bright curved rib stripes, dark air at the sides."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    u, v = (xx - width / 2) / (width / 2), (yy - height / 2) / (height / 2)
    body = 185 - 95 * u**2 - 20 * v
    lungs = 55 * np.exp(-(((np.abs(u) - 0.45) / 0.22) ** 2 + (v / 0.55) ** 2))
    ribs = 28 * np.clip(np.sin(2 * math.pi * (yy + 10 * u**2 * height / 8) / (height / 9)), 0, 1) ** 3
    ribs *= np.exp(-(((np.abs(u) - 0.45) / 0.35) ** 2))
    air = 120 * np.clip((np.abs(u) - 0.82) / 0.18, 0, 1)
    image = body - lungs + ribs - air + rng.normal(0, 3, (height, width))
    return np.clip(image, 0, 255).astype(np.uint8)


def small_corr(a: np.ndarray, b: np.ndarray, size: int = 64) -> float:
    """Pearson correlation of two images after resizing both to ``size``×``size``."""
    ra = cv2.resize(a, (size, size), interpolation=cv2.INTER_AREA).astype(np.float64).ravel()
    rb = cv2.resize(b, (size, size), interpolation=cv2.INTER_AREA).astype(np.float64).ravel()
    return float(np.corrcoef(ra, rb)[0, 1])


def tinted(gray: np.ndarray, gains: tuple[float, float, float]) -> np.ndarray:
    """``gray`` under a colour cast that changes hue but not luminance."""
    cast = np.array(gains) / (np.array(gains) @ LUMA)
    return np.clip(np.rint(gray[..., None] * cast), 0, 255).astype(np.uint8)


def on_background(film: np.ndarray, corners: np.ndarray, size: tuple[int, int], seed: int = 0) -> np.ndarray:
    """``film`` as a backlit transparency warped onto ``corners`` of a dark, slightly noisy ``(h, w)`` canvas."""
    h, w = size
    rng = np.random.default_rng(seed)
    fh, fw = film.shape
    src = np.array([[0, 0], [fw - 1, 0], [fw - 1, fh - 1], [0, fh - 1]], np.float32)
    matrix = cv2.getPerspectiveTransform(src, corners.astype(np.float32))
    light = cv2.warpPerspective(45 + 0.8 * film.astype(np.float32), matrix, (w, h), flags=cv2.INTER_LINEAR)
    cover = cv2.warpPerspective(np.ones_like(film, np.float32), matrix, (w, h), flags=cv2.INTER_LINEAR)
    canvas = cover * light + (1 - cover) * (12 + rng.normal(0, 2, (h, w)))
    return np.clip(np.rint(canvas), 0, 255).astype(np.uint8)


def rotated_rect(cx: float, cy: float, w: float, h: float, degrees: float) -> np.ndarray:
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    rect = np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]])
    return rect @ np.array([[c, s], [-s, c]]) + [cx, cy]

"""Uniform borders around grayscale uploads: trimmed when wide enough, never the film itself."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from core.capture import BORDER_NOTE, capture, radiograph
from core.capture.border import BORDER_MAX_SHARE, trim_border, uniform_border
from core.preprocessing import prepare
from helpers import encode, xray_like


def _padded(film: np.ndarray, top: int, bottom: int, left: int, right: int, value: int = 0) -> np.ndarray:
    h, w = film.shape
    out = np.full((h + top + bottom, w + left + right), value, np.uint8)
    out[top: top + h, left: left + w] = film
    return out


def test_a_padded_film_is_cut_back_to_the_film() -> None:
    film = xray_like(200, 180, seed=1)
    for value in (0, 128, 255):
        padded = _padded(film, 20, 20, 18, 18, value)
        result = radiograph(padded)
        np.testing.assert_array_equal(result.gray, film)
        assert result.steps == ("border_trimmed",) and result.note == BORDER_NOTE
    # A letterbox: columns only.
    assert uniform_border(_padded(film, 0, 0, 30, 30)) == (0, 0, 30, 30)


def test_films_without_a_wide_border_pass_untouched() -> None:
    film = xray_like(200, 180, seed=2)
    for image in (film, _padded(film, 2, 0, 0, 0)):  # a 1% line is no border
        result = radiograph(image)
        assert result.gray is image and result.steps == () and result.note == ""
    # A dark margin with the film's own grain is film, not border.
    rng = np.random.default_rng(0)
    grainy = _padded(film, 20, 20, 0, 0)
    grainy[:20] = rng.integers(0, 12, (20, 180))
    grainy[-20:] = rng.integers(0, 12, (20, 180))
    assert uniform_border(grainy) == (0, 0, 0, 0)


def test_a_blank_picture_is_left_whole_and_a_wide_border_is_cut_by_a_quarter_at_most() -> None:
    blank = np.full((100, 120), 90, np.uint8)
    assert uniform_border(blank) == (0, 0, 0, 0) and trim_border(blank) is blank
    small = _padded(xray_like(40, 40, seed=5), 60, 60, 0, 0)  # a film in a third of a tall frame
    top, bottom, left, right = uniform_border(small)
    assert (top, bottom) == (int(160 * BORDER_MAX_SHARE),) * 2 and (left, right) == (0, 0)
    with pytest.raises(ValueError):
        uniform_border(np.zeros((10, 10, 3), np.uint8))


def test_prepare_trims_a_grayscale_upload_and_says_so() -> None:
    film = xray_like(300, 260, seed=3)
    plain = prepare(encode(Image.fromarray(film), "PNG"), 64)
    padded = prepare(encode(Image.fromarray(_padded(film, 30, 30, 26, 26)), "PNG"), 64)
    np.testing.assert_array_equal(padded.image, plain.image)
    assert padded.capture.note == BORDER_NOTE and plain.capture.steps == ()
    # The same film saved in colour channels (as many exports are), letterboxed, is trimmed the same way.
    rgb = prepare(encode(Image.fromarray(_padded(film, 0, 0, 26, 26)).convert("RGB"), "PNG"), 64)
    np.testing.assert_array_equal(rgb.image, plain.image)
    assert rgb.capture.steps == ("border_trimmed",)


def test_capture_trims_a_gray_picture_in_colour_channels() -> None:
    """No film found and no colour: the border goes. (A film on black all round is found and cropped as a film.)"""
    film = xray_like(240, 220, seed=4)
    for border in ((24, 24, 22, 22, 128), (0, 0, 30, 30, 0), (12, 12, 0, 0, 0)):
        result = capture(np.repeat(_padded(film, *border)[..., None], 3, axis=2))
        np.testing.assert_array_equal(result.gray, film)
        assert result.steps == ("border_trimmed",) and result.note == BORDER_NOTE

"""The capture step: turn a decoded upload into the grayscale radiograph to assess.

Runs after decoding and before the "cannot assess" gate. Ordinary radiographs (grayscale,
filling the frame) pass through untouched, less any uniform border around them (padding,
shutters: ``core.capture.border``); a phone photograph of a film is cropped to the
film, rectified and stripped of its colour cast; a colourful scene is flagged so the gate
can refuse it as colour. Detection runs on a copy with its longest side near 384 pixels and
only the final crop or warp touches the full-resolution pixels, which keeps a 12-megapixel
photo within a few tens of milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from core.capture.border import trim_border
from core.capture.film import BOWED_SLACKS, MIN_SUPPORT_GRAY, SKEW_MIN_DEGREES, FilmQuad, extract_film, find_film
from core.capture.tint import CAST_MIN, analyse_tint, luminance

ANALYSIS_SIDE = 384  # detection copy: at 512 the Hough search costs ~40% more and finds no more films
_TINT_SIDE = 128  # the film region is resampled to this for the tint statistics
_TINT_INSET = 0.04  # keep film-edge pixels (background bleeding in) out of the tint statistics
LEVELS_QUANTILES = (0.005, 0.995)  # the film's darkest and brightest grey levels, ignoring specks
LEVELS_MIN_GAIN = 1.08  # a film already spanning ~93% of the range is left as it is


@dataclass(frozen=True)
class Capture:
    """The radiograph to score and what was done to obtain it."""

    gray: np.ndarray  # (H, W) uint8; the input array itself when a 2-D input needed nothing
    steps: tuple[str, ...]  # "film_cropped", "perspective_corrected", "contrast_restored", "tint_removed"
    note: str  # one human sentence about the steps; "" when nothing was done
    skew_degrees: float  # perspective/rotation corrected, 0 when none
    is_colour_scene: bool  # genuinely colourful (a scene, not a tinted grayscale): gray is plain luminance


def _validate(image: object) -> np.ndarray:
    if not isinstance(image, np.ndarray):
        raise ValueError(f"capture expects a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"capture expects uint8 pixels, got dtype {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 1:
        return image[:, :, 0]
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3):
        return image
    raise ValueError(f"capture expects an (H, W) gray or (H, W, 3) RGB array, got shape {image.shape}")


def _small(image: np.ndarray) -> tuple[np.ndarray, float, float]:
    """A copy with its longest side at most ``ANALYSIS_SIDE``, and the x, y factors back to ``image``."""
    h, w = image.shape[:2]
    if max(h, w) <= ANALYSIS_SIDE:
        return np.ascontiguousarray(image), 1.0, 1.0
    k = ANALYSIS_SIDE / max(h, w)
    tw, th = max(1, round(w * k)), max(1, round(h * k))
    src = image
    # Nearest-neighbour to twice the target, then 2x2 averaging: an area resize straight from
    # 12 megapixels at a fractional ratio costs ~50 ms; this ~2 ms, and detection needs no more.
    if 2 * tw < w and 2 * th < h:
        src = cv2.resize(np.ascontiguousarray(image), (2 * tw, 2 * th), interpolation=cv2.INTER_NEAREST)
    small = cv2.resize(np.ascontiguousarray(src), (tw, th), interpolation=cv2.INTER_AREA)
    return small, w / tw, h / th


def _film_region(small_rgb: np.ndarray, quad: FilmQuad) -> np.ndarray:
    """The film's pixels in the small RGB copy, rectified and slightly inset."""
    c = quad.corners
    centre = c.mean(axis=0)
    inset = centre + (1.0 - 2 * _TINT_INSET) * (c - centre)
    dst = np.array([[0, 0], [_TINT_SIDE - 1, 0], [_TINT_SIDE - 1, _TINT_SIDE - 1], [0, _TINT_SIDE - 1]], np.float32)
    matrix = cv2.getPerspectiveTransform(inset.astype(np.float32), dst)
    return cv2.warpPerspective(small_rgb, matrix, (_TINT_SIDE, _TINT_SIDE), flags=cv2.INTER_LINEAR)


def restore_levels(gray: np.ndarray) -> np.ndarray | None:
    """Stretch a photographed film's grey levels to the full range; ``None`` if there is nothing to stretch.

    A film photographed against a window or light box is a backlit transparency: its densest
    parts still pass light and the phone picks its own exposure, so blacks come out grey and
    the range compressed. The network reads that haze as opacity: on photos of validation
    films it raised the pneumonia logit of normal films by 4.5 on average (specificity at the
    shipped threshold 0.70 against 0.99 for the same films clean). A radiograph export spans
    the full range, so the film's 0.5%-99.5% levels are mapped to 0-255 (one lookup table).
    """
    sample = gray[::4, ::4]  # every 16th pixel gives the same levels at a 16th of the cost
    counts = np.cumsum(np.bincount(sample.ravel(), minlength=256)) / max(1, sample.size)
    low, high = (int(np.searchsorted(counts, q)) for q in LEVELS_QUANTILES)
    if high - low < 16 or 255 / (high - low) < LEVELS_MIN_GAIN:
        return None  # nearly flat (the gate judges it) or already full range
    table = np.clip(np.rint((np.arange(256) - low) * (255.0 / (high - low))), 0, 255).astype(np.uint8)
    return cv2.LUT(np.ascontiguousarray(gray), table)


def _note(steps: tuple[str, ...], skew: float) -> str:
    if not steps:
        return ""
    parts = []
    if "perspective_corrected" in steps:
        parts.append(f"perspective corrected ({skew:.0f}°)")
    elif "film_cropped" in steps:
        parts.append("cropped to the film")
    if "contrast_restored" in steps:
        parts.append("contrast restored")
    if "tint_removed" in steps:
        parts.append("tint removed")
    subject = "photo of a film" if "film_cropped" in steps else "tinted image"
    return f"{subject}: {', '.join(parts)}"


def _luminance_only(image: np.ndarray, colour_scene: bool = False) -> Capture:
    gray = image if image.ndim == 2 else luminance(image)
    return Capture(gray, (), "", 0.0, colour_scene)


BORDER_NOTE = "uniform border trimmed"
# For a refused upload with a colour cast in which no film was found: most likely a phone photo
# whose film the search could not outline (a bowed edge, a thumb over it, too little margin).
PHOTO_HINT = ("if this is a photo of a film, photograph the film straight on against an even background, "
              "filling most of the frame, or crop the photo to the film")
# For a refused photo whose film was found and cropped: the crop may hold what is no film (a strip
# of the light box where a bowed edge misled the search, a thumb or a clip over the film), or the
# film may be no frontal chest film at all.
CROPPED_PHOTO_HINT = ("if the film is a frontal chest X-ray, photograph it again straight on, with nothing over "
                      "its edges (fingers, clips), or crop the photo to the film")


def refusal_note(result: Capture) -> str:
    """The note for an upload the gate refused: what capture did, and how to retake a photo of a film."""
    if "film_cropped" in result.steps:
        hint = CROPPED_PHOTO_HINT
    elif "tint_removed" in result.steps:
        hint = PHOTO_HINT
    else:
        return result.note
    return f"{result.note}; {hint}" if result.note else hint


def radiograph(gray: np.ndarray) -> Capture:
    """A grayscale export of the radiograph itself: only a uniform border around it is cut off.

    Padding to a square, shutters or a viewer's surround are no anatomy (see ``core.capture.border``).
    """
    trimmed = trim_border(gray)
    if trimmed is gray:
        return Capture(gray, (), "", 0.0, False)
    return Capture(trimmed, ("border_trimmed",), BORDER_NOTE, 0.0, False)


def capture(rgb: np.ndarray) -> Capture:
    """Turn a decoded upload, ``(H, W, 3)`` uint8 RGB or ``(H, W)`` uint8 gray, into the radiograph to assess.

    Raises ``ValueError`` for any other dtype or shape. Never raises otherwise: if anything
    in the analysis fails, the image is returned as its plain luminance with no steps.
    """
    image = _validate(rgb)
    if image.size == 0:
        return Capture(np.zeros(image.shape[:2], np.uint8), (), "", 0.0, False)
    try:
        return _capture(image)
    except Exception:  # noqa: BLE001 - capture is best-effort; the gate still judges the plain image
        if image.ndim == 2:
            return Capture(image, (), "", 0.0, False)
        luma = image.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        return Capture(np.clip(np.rint(luma), 0, 255).astype(np.uint8), (), "", 0.0, False)


def _capture(image: np.ndarray) -> Capture:
    small, sx, sy = _small(image)
    is_rgb = small.ndim == 3
    small_gray = luminance(small) if is_rgb else small
    frame = analyse_tint(small) if is_rgb else None
    # A tinted photo's film edges may be bowed by the lens: if no film is found, search again,
    # letting a crest lie two pixels off the line. Only as a second try, so no film the first
    # search finds is cropped differently; and only on a full-size detection copy: on a smaller
    # one the smoothing along edges is short and two pixels a larger share of the frame, so ribs
    # and the body's outline pass for film edges (tinted copies of the dataset's 224-px films:
    # 560 of 1,044 cropped inside the film; enlarged to 384 px or more, none of 522).
    second_try = (frame is not None and frame.has_cast and not frame.is_colour_scene
                  and max(small_gray.shape) >= ANALYSIS_SIDE)
    quad = find_film(small_gray, slacks=BOWED_SLACKS) if second_try else find_film(small_gray)
    tint = frame
    if frame is not None and quad is not None:
        tint = analyse_tint(_film_region(small, quad))
        if tint.is_colour_scene:
            quad, tint = None, frame  # a colourful rectangle (a poster, a screen showing a photo) is no film
    if quad is not None and quad.support < MIN_SUPPORT_GRAY and (frame is None or frame.cast < CAST_MIN):
        # A upload without any colour is most likely an ordinary radiograph: only a film
        # outlined beyond doubt is cut out of it. Colour anywhere in the frame (a cast, a
        # desk) says "photograph" and lets the ordinary bar apply.
        quad = None
    if quad is None:
        if tint is not None and tint.is_colour_scene:
            return _luminance_only(image, colour_scene=True)
        if tint is not None and tint.has_cast:
            return _tinted(image)
        # No film, no colour: a radiograph saved in colour channels (many exports are).
        return radiograph(image if image.ndim == 2 else luminance(image))

    full_quad = quad.scaled(sx, sy)
    skew = full_quad.skew_degrees
    corrected = skew > SKEW_MIN_DEGREES
    if corrected and is_rgb:
        # Warping one channel costs a third of warping three, so convert first, but only the
        # film's bounding box: on a 12-megapixel photo that halves the conversion.
        x0, y0, x1, y1 = _bounds(full_quad.corners, image.shape)
        box = FilmQuad(full_quad.corners - np.array([x0, y0], np.float32), full_quad.share)
        gray = extract_film(luminance(image[y0:y1, x0:x1]), box)
    else:
        film = extract_film(image, full_quad)
        gray = luminance(film) if film.ndim == 3 else film
    steps: tuple[str, ...] = ("film_cropped",)
    if corrected:
        steps += ("perspective_corrected",)
    restored = restore_levels(gray)
    if restored is not None:
        gray = restored
        steps += ("contrast_restored",)
    if tint is not None and tint.has_cast:
        steps += ("tint_removed",)
    skew_out = round(skew, 2) if corrected else 0.0
    return Capture(gray, steps, _note(steps, skew_out), skew_out, False)


def _bounds(corners: np.ndarray, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """Integer bounding box (x0, y0, x1, y1) of ``corners`` plus interpolation slack, clipped to the image."""
    h, w = shape[:2]
    x0, y0 = np.floor(corners.min(axis=0)).astype(int) - 2
    x1, y1 = np.ceil(corners.max(axis=0)).astype(int) + 3
    return max(0, int(x0)), max(0, int(y0)), min(w, int(x1)), min(h, int(y1))


def _tinted(image: np.ndarray) -> Capture:
    steps = ("tint_removed",)
    return Capture(luminance(image), steps, _note(steps, 0.0), 0.0, False)

"""A second phone-photo simulator, written apart from the training one, for checks only.

The members are trained on photos from ``training.field_capture`` (a film against a dark room
or a busy desk, a keystone tilt, a glare blob, vignetting, one JPEG), so photos from that same
simulator judge them generously. This one draws every effect differently, from how films are
read in a clinic without a radiologist: a film clipped to a light box whose lit panel shows
around it (a bright surround, so the camera's auto-exposure darkens the film), fluorescent-tube
banding, an independent shift of each corner and a lens's barrel distortion, a phone's tone
mapping and sharpening, hand shake or defocus, signal-dependent sensor noise, a white balance
drawn per channel, sometimes a thumb or a clip over the film's edge or the moire of a screen,
and the camera's JPEG followed, most of the time, by a messaging app's downscale and re-encode.
Nothing here is used in training.
"""

from __future__ import annotations

import io
import math

import cv2
import numpy as np
from PIL import Image

from training.field_capture import FIELD_UPSCALE, _check_gray, encode_array

CAMERA_LONG_SIDE = (1000, 2400)
MESSAGING_LONG_SIDE = (1280, 1600)
MESSAGING_SHARE = 0.6  # photos forwarded through a messaging app (downscaled and re-encoded)


def _corners(fw: float, fh: float, rng: np.random.Generator) -> np.ndarray:
    """Film corners (tl, tr, br, bl) around the origin: an in-plane turn, each corner moved on its own."""
    turn = math.radians(rng.uniform(-8, 8))
    rect = np.array([[-fw / 2, -fh / 2], [fw / 2, -fh / 2], [fw / 2, fh / 2], [-fw / 2, fh / 2]])
    c, s = math.cos(turn), math.sin(turn)
    rect = rect @ np.array([[c, s], [-s, c]])
    return rect + rng.normal(0, 0.025, (4, 2)) * [fw, fh]


def _panel(h: int, w: int, film_to_image: np.ndarray, fw: int, fh: int, rng: np.random.Generator) -> np.ndarray:
    """The scene's light before the film: a lit panel with tube banding around the film, a dim wall elsewhere.

    The panel lies in the film's plane (``film_to_image`` maps film pixels to the photo), turned
    by up to 2 degrees against the film as it was clipped on; each side reaches past the film by
    up to 15% of the film or beyond the frame.
    """
    reach = [3.0 if rng.random() < 0.4 else rng.uniform(0, 0.15) for _ in range(4)]  # left, top, right, bottom
    x0, y0, x1, y1 = -reach[0] * fw, -reach[1] * fh, fw - 1 + reach[2] * fw, fh - 1 + reach[3] * fh
    panel = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float64) - [(fw - 1) / 2, (fh - 1) / 2]
    turn = math.radians(rng.uniform(-2, 2))
    c, s = math.cos(turn), math.sin(turn)
    panel = panel @ np.array([[c, s], [-s, c]]) + [(fw - 1) / 2, (fh - 1) / 2]
    outline = cv2.perspectiveTransform(panel[None].astype(np.float32), film_to_image)[0]
    inside = np.zeros((h, w), np.uint8)
    cv2.fillConvexPoly(inside, np.rint(outline).astype(np.int32), 1)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    tilt = rng.uniform(-0.2, 0.2, 2)
    wall = rng.uniform(0.15, 0.45) * (1 + tilt[0] * (xx / w - 0.5) + tilt[1] * (yy / h - 0.5))
    period = rng.uniform(0.2, 0.5) * w
    banding = 1 + rng.uniform(0.03, 0.15) * np.cos(2 * math.pi * xx / period + rng.uniform(0, 2 * math.pi))
    return np.where(inside > 0, banding, wall).astype(np.float32)


def barrel(image: np.ndarray, k1: float) -> np.ndarray:
    """Radial lens distortion r -> r (1 + k1 r^2), r normalised to the half-diagonal."""
    h, w = image.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cx, cy, norm = (w - 1) / 2, (h - 1) / 2, math.hypot(w / 2, h / 2)
    dx, dy = (xx - cx) / norm, (yy - cy) / norm
    factor = 1 + k1 * (dx * dx + dy * dy)
    return cv2.remap(image, cx + dx * factor * norm, cy + dy * factor * norm, cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REFLECT)


def _shake(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Hand shake (a line kernel), defocus (a gaussian) or neither."""
    draw = rng.random()
    if draw < 0.35:
        length = int(rng.integers(3, 12))
        kernel = np.zeros((length, length), np.float32)
        kernel[length // 2, :] = 1.0
        rotation = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2), rng.uniform(0, 180), 1.0)
        kernel = cv2.warpAffine(kernel, rotation, (length, length))
        return cv2.filter2D(image, -1, kernel / max(kernel.sum(), 1e-6))
    if draw < 0.55:
        return cv2.GaussianBlur(image, (0, 0), rng.uniform(1.0, 2.5))
    return image


def _phone_processing(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A phone's own processing on [0, 1] RGB: local tone mapping on the luminance, then sharpening."""
    if rng.random() < 0.5:
        lab = cv2.cvtColor(np.clip(rgb * 255, 0, 255).astype(np.uint8), cv2.COLOR_RGB2LAB)
        clahe = cv2.createCLAHE(clipLimit=rng.uniform(1.2, 2.5), tileGridSize=(8, 8))
        lab[..., 0] = clahe.apply(lab[..., 0])
        rgb = cv2.cvtColor(lab, cv2.COLOR_LAB2RGB).astype(np.float32) / 255.0
    if rng.random() < 0.7:
        soft = cv2.GaussianBlur(rgb, (0, 0), rng.uniform(1.0, 2.5))
        rgb = rgb + rng.uniform(0.2, 0.8) * (rgb - soft)
    return rgb


def lightbox_photo(gray: np.ndarray, rng: np.random.Generator, upscale: int = FIELD_UPSCALE,
                   long_side: tuple[int, int] = CAMERA_LONG_SIDE) -> bytes:
    """The JPEG bytes of a simulated phone photo of the film ``gray`` (2-D uint8) on a light box.

    Everything that varies is drawn from ``rng``; the film is first enlarged ``upscale`` times
    (dataset films are 224 px, a phone photographs a full-size film) and the camera's picture
    has its long side in ``long_side``. Raises ``ValueError`` for anything but a 2-D uint8 film
    of at least 16 px.
    """
    _check_gray(gray)
    film = cv2.resize(gray, (gray.shape[1] * upscale, gray.shape[0] * upscale), interpolation=cv2.INTER_CUBIC)
    fh, fw = film.shape
    corners = _corners(fw, fh, rng)
    margins = rng.uniform(0.03, 0.25, 4) * [fw, fh, fw, fh]
    lo = corners.min(axis=0) - margins[:2]
    hi = corners.max(axis=0) + margins[2:]
    scale = int(rng.integers(*long_side)) / float(max(hi - lo))
    w, h = (int(math.ceil(v)) for v in (hi - lo) * scale)
    corners = ((corners - lo) * scale).astype(np.float32)

    # The film as a transparency in front of the panel: what passes is the panel's light times
    # the film's transmission (dense parts still pass a little, with the film's own gamma).
    floor = rng.uniform(0.05, 0.2)
    transmit = floor + (1 - floor) * (film.astype(np.float32) / 255.0) ** rng.uniform(0.8, 1.25)
    src = np.array([[0, 0], [fw - 1, 0], [fw - 1, fh - 1], [0, fh - 1]], np.float32)
    matrix = cv2.getPerspectiveTransform(src, corners)
    on_film = cv2.warpPerspective(np.ones_like(transmit), matrix, (w, h), flags=cv2.INTER_LINEAR)
    through = cv2.warpPerspective(transmit, matrix, (w, h), flags=cv2.INTER_LINEAR)
    scene = _panel(h, w, matrix, fw, fh, rng) * (on_film * through + (1 - on_film))

    if rng.random() < 0.3:  # a thumb or a clip over one edge of the film
        edge = int(rng.integers(4))
        a, b = corners[edge], corners[(edge + 1) % 4]
        centre = a + rng.uniform(0.2, 0.8) * (b - a)
        axes = (int(rng.uniform(0.04, 0.08) * w), int(rng.uniform(0.06, 0.12) * h))
        mask = np.zeros((h, w), np.float32)
        cv2.ellipse(mask, (int(centre[0]), int(centre[1])), axes, rng.uniform(0, 180), 0, 360, 1.0, -1)
        scene = scene * (1 - mask) + mask * rng.uniform(0.05, 0.3)
    if rng.random() < 0.15:  # the moire of a film shown on a screen
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        angle = rng.uniform(0, math.pi)
        scene *= 1 + rng.uniform(0.02, 0.05) * np.cos(
            2 * math.pi * (xx * math.cos(angle) + yy * math.sin(angle)) / rng.uniform(2.5, 6.0))

    scene = barrel(scene, rng.uniform(-0.06, 0.0))
    # Auto-exposure: the bright panel sets the exposure, so the film itself comes out darker.
    scene = scene * (rng.uniform(0.85, 1.0) / max(float(np.percentile(scene[::4, ::4], 99)), 1e-3))
    scene = _shake(scene, rng)
    gains = np.array([rng.uniform(0.85, 1.15), 1.0, rng.uniform(0.8, 1.2)], np.float32)
    gains /= gains @ np.array([0.299, 0.587, 0.114], np.float32)  # white balance moves hue, not brightness
    rgb = np.clip(scene[..., None] * gains, 0, 1)
    rgb = _phone_processing(rgb, rng)
    # Sensor noise grows with the signal (shot noise) over a small floor (read noise).
    spread = np.sqrt(rng.uniform(5e-4, 3e-3) * np.clip(rgb, 0, 1) + 2e-5)
    noise = rng.normal(0, 1, rgb.shape).astype(np.float32) * spread
    rgb = np.clip(np.rint((rgb + noise) * 255), 0, 255).astype(np.uint8)

    photo = encode_array(rgb, "JPEG", quality=int(rng.integers(88, 96)))
    if rng.random() < MESSAGING_SHARE:
        rgb = np.asarray(Image.open(io.BytesIO(photo)).convert("RGB"))
        k = int(rng.integers(*MESSAGING_LONG_SIDE)) / max(w, h)
        if k < 1:
            rgb = cv2.resize(rgb, (max(1, round(w * k)), max(1, round(h * k))), interpolation=cv2.INTER_AREA)
        photo = encode_array(rgb, "JPEG", quality=int(rng.integers(55, 76)))
    return photo

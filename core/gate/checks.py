"""The gate's decision: image statistics, and the one place a refusal's reason is worded.

Image statistics of the upload (colour, size and shape, contrast, edge density, flat
areas, how much of it one linear ramp explains) catch photographs, documents, screenshots,
gradients and blank images cheaply; the feature-space distance (:mod:`core.gate.ood`) catches
grayscale pictures that are not radiographs. Thresholds are fitted on the training data and
stored in the metadata.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

MIN_ASSESS_SIDE = 128
# Frontal radiographs of children come close to square; film and detector formats stay
# well within this range, while banners, receipts and panoramas do not.
ASPECT_RANGE = (0.45, 2.2)
EDGE_STEP = 40  # gray-level jump between neighbouring pixels that counts as a sharp edge
# Edges are counted after a light blur: sensor noise (σ ≈ 15 gray levels) makes many
# 40-level jumps between neighbours, text and screenshot edges survive the blur.
EDGE_BLUR = 1.0
# A plain gradient is one linear trend: on a 32-px copy a plane explains all of its variance
# whatever its direction. A film's lungs either side of a bright middle are no plane: training
# X-rays (one in six, each clean, degraded, strongly exposed and reframed) reach at most 0.62 of
# their variance on one, phone photos of test films 0.45, plain ramps 1.0. The limit sits between and is not fitted, so
# it does not move with the training set. It catches ramps the feature-space distance can miss,
# since their coarse layout is close to the mean radiograph's.
RAMP_SIDE = 32
MAX_RAMP_SHARE = 0.9
# The centred pixel coordinates of the small copy: the two directions a plane can slope in.
_RAMP_AXES = tuple(axis.ravel() - axis.mean() for axis in np.mgrid[0:RAMP_SIDE, 0:RAMP_SIDE].astype(np.float64))


@dataclass(frozen=True)
class SourceInfo:
    """What the upload says before preprocessing: original size and JPEG quality.

    ``colour_scene`` is the capture step's verdict: a genuinely colourful picture, as opposed
    to a grayscale film with a tint (a phone photo of a film), which has chroma too.
    """

    width: int | None
    height: int | None
    colour_scene: bool = False
    jpeg_quality: int | None = None  # estimated from the quantisation table; None when not a JPEG


def describe_source(data: bytes) -> SourceInfo:
    """Original dimensions and JPEG quality of an encoded image, from its header alone (no pixels decoded).

    Colour is the capture step's to judge, on pixels decoded once for the model: decoding
    here as well would cost a full-resolution colour upload about 4 ms more. Formats Pillow
    cannot open (e.g. DICOM) report no size; their own loader validates them.
    """
    try:
        image = Image.open(io.BytesIO(data))
        width, height = image.size
        return SourceInfo(width, height, jpeg_quality=_jpeg_quality(image))
    except Exception:  # noqa: BLE001 - not decodable by Pillow; the loader reports why
        return SourceInfo(None, None)


def _jpeg_quality(image: Image.Image) -> int | None:
    """The IJG quality (1-100) a JPEG's luminance quantisation table corresponds to, roughly."""
    tables = getattr(image, "quantization", None)
    if image.format != "JPEG" or not tables or 0 not in tables:
        return None
    # The IJG base table scaled by quality: mean 57.6 at quality 50; scale = 5000/q below 50, 200-2q above.
    scale = 100.0 * float(np.mean(tables[0])) / 57.625
    quality = 5000.0 / scale if scale > 100 else (200.0 - scale) / 2.0
    return int(np.clip(round(quality), 1, 100))


def image_statistics(model_input: np.ndarray) -> dict[str, float]:
    """Contrast, edge density (after a light blur), flatness, noise and ramp share of the ``(S, S)`` uint8
    model input."""
    if model_input.ndim != 2 or model_input.dtype != np.uint8:
        raise ValueError("expected the 2-D uint8 model input")
    hist = np.bincount(model_input.ravel(), minlength=256) / model_input.size
    smooth = np.asarray(Image.fromarray(model_input).filter(ImageFilter.GaussianBlur(EDGE_BLUR)), dtype=np.int16)
    edges = (np.abs(np.diff(smooth, axis=0)) > EDGE_STEP).mean() + (np.abs(np.diff(smooth, axis=1)) > EDGE_STEP).mean()
    gray = model_input.astype(np.int16)
    # Noise: the robust spread of what the blur removed (1.4826 x MAD estimates a gaussian sigma).
    residual = (gray - smooth).ravel()
    noise = 1.4826 * median_absolute_deviation(residual)
    return {
        "std": float(gray.std()),
        "edge_density": float(edges),
        "flat_fraction": float(np.sort(hist)[-3:].sum()),
        "noise": noise,
        "ramp_share": ramp_share(model_input),
    }


def ramp_share(model_input: np.ndarray) -> float:
    """Share of a small copy's variance that one plane (a linear ramp in any direction) explains: 1.0 for a ramp."""
    small = np.asarray(Image.fromarray(model_input).resize((RAMP_SIDE, RAMP_SIDE), Image.Resampling.BOX),
                       dtype=np.float64).ravel()
    centred = small - small.mean()
    total = float(centred @ centred)
    if total == 0:
        return 0.0
    # The pixel coordinates, centred, are orthogonal to the constant and to each other on a square grid,
    # so the plane's fit is two projections.
    explained = sum(float(centred @ axis) ** 2 / float(axis @ axis) for axis in _RAMP_AXES)
    return explained / total



def median_absolute_deviation(values: np.ndarray) -> float:
    """``median(|v - median(v)|)`` of an integer array, exactly as ``np.median`` gives it.

    Counted from one histogram instead of two partial sorts: the residual of a blurred 8-bit
    image takes at most 511 values, and the sorts were half the gate's statistics time on
    every image scored. Meant for small ranges (the histogram spans max - min + 1 bins).
    """
    values = np.asarray(values)
    if values.size == 0 or values.dtype.kind not in "iu":
        raise ValueError("expected a non-empty array of integers")
    low = int(values.min())
    counts = np.bincount((values.ravel() - low).astype(np.intp))
    levels = np.arange(low, low + len(counts), dtype=np.int64)
    # Doubled throughout, so a median halfway between two integers stays an integer.
    centre2 = _doubled_median(levels, counts)
    spread2 = np.abs(2 * levels - centre2)  # 2|v - m| for each level
    spread_counts = np.bincount(spread2, weights=counts).astype(np.int64)
    return _doubled_median(np.arange(len(spread_counts), dtype=np.int64), spread_counts) / 4.0


def _doubled_median(levels: np.ndarray, counts: np.ndarray) -> int:
    """Twice the median of the values ``levels`` (ascending) occurring ``counts`` times each."""
    cumulative = np.cumsum(counts)
    n = int(cumulative[-1])
    # np.median of an even count averages the values at ranks n/2 - 1 and n/2 (0-based).
    first = levels[int(np.searchsorted(cumulative, (n - 1) // 2 + 1))]
    second = levels[int(np.searchsorted(cumulative, n // 2 + 1))]
    return int(first + second)


@dataclass(frozen=True)
class Refusal:
    """Why the gate refused an image: a stable code for counting, a sentence for people."""

    code: str
    reason: str


def assess(info: SourceInfo, stats: dict[str, float], ood_distance: float | None,
           gate: dict[str, Any]) -> Refusal | None:
    """Return why the image cannot be assessed, or ``None`` if it can.

    ``gate`` holds the fitted thresholds (``metadata["gate"]["thresholds"]``). The codes are
    listed in :data:`REFUSAL_CODES`.
    """
    limits = gate
    if info.width is not None and info.height is not None:
        if min(info.width, info.height) < MIN_ASSESS_SIDE:
            return Refusal("too_small", f"image is too small to assess ({info.width}×{info.height} px); "
                                        f"upload the original X-ray (at least {MIN_ASSESS_SIDE} px per side)")
        aspect = info.width / info.height
        if not ASPECT_RANGE[0] <= aspect <= ASPECT_RANGE[1]:
            return Refusal("unusual_shape", f"unusual shape for a chest X-ray ({info.width}×{info.height} px)")
    if info.colour_scene:
        return Refusal("colour", "colour image; chest X-rays are grayscale (photograph or coloured picture?)")
    if stats["std"] < limits["min_std"]:
        return Refusal("blank", "blank or nearly uniform image")
    if stats["flat_fraction"] > limits["max_flat_fraction"]:
        return Refusal("flat_areas", "large flat areas, like a document, screenshot or drawing")
    if stats["edge_density"] > limits["max_edge_density"]:
        return Refusal("sharp_edges", "many sharp edges, like text, a document or a screenshot")
    # Gates fitted before this check have no limit for it: they keep deciding as they were measured.
    if "max_ramp_share" in limits and stats.get("ramp_share", 0.0) > limits["max_ramp_share"]:
        return Refusal("plain_gradient", "a plain gradient or shading, not an X-ray")
    if ood_distance is not None and ood_distance > limits["max_ood_distance"]:
        return Refusal("out_of_distribution",
                       "does not look like a frontal chest X-ray to the model (out-of-distribution)")
    return None


REFUSAL_CODES = ("too_small", "unusual_shape", "colour", "blank", "flat_areas", "sharp_edges", "plain_gradient",
                 "out_of_distribution")

"""Image corruptions for the distribution-shift benchmark (numpy + Pillow only).

The photometric set reproduces the PneumoniaMNIST entry of MedMNIST-C (Di Salvo, Doerrich & Ledig, 2024,
"MedMNIST-C: Comprehensive benchmark and improved classifier robustness by simulating realistic image
corruptions", arXiv:2406.17536). Severity parameters are taken from the authors' public code:
github.com/francescodisalvo05/medmnistc-api, ``medmnistc/corruptions/registry.py``,
``CORRUPTIONS_DS["pneumoniamnist"]`` (commit b6dee0e7). They are collected in :data:`PARAMS`.

Image size: MedMNIST-C was generated from the 224x224 MedMNIST+ images (``DatasetManager`` loads ``size=224``),
so on our 224-px inputs every parameter is used 1:1. Pixelate is a relative resize factor and so scales with
any input size; blur kernels and noise are in pixel units and are *not* rescaled for other sizes.

How the reference pipeline is mirrored, because it changes the effective strength:

* The reference turns each grey image into RGB, corrupts it, then converts back with Pillow's ``convert("L")``.
  Noise is drawn independently per RGB channel, so after the luma mix (0.299, 0.587, 0.114) Gaussian/speckle
  noise has ~0.67x the nominal std and impulse noise produces partial-intensity specks, not just 0/255.
  We draw three channels and mix them with Pillow for the same reason.
* Noisy float images are truncated (not rounded) to uint8 per channel, as in the reference.
* ``gaussian_blur`` follows ``torchvision.transforms.functional.gaussian_blur(kernel_size=k)`` on a PIL image:
  sigma = 0.15 * k + 0.35, reflect padding, rounding to uint8.
* ``gamma_up`` / ``gamma_down`` are the reference's ``gamma_corr_up`` / ``gamma_corr_down``: torchvision's
  ``adjust_gamma`` lookup table. Note that gamma *up* (exponent > 1) darkens the image.
* Brightness, contrast, pixelate (BOX down then BOX up) and JPEG use the same Pillow calls as the reference;
  on grey images the RGB round trip is lossless, so we run them directly in mode "L".

Known deviations: random streams differ (the reference seeds NumPy's global RNG once per dataset; we use
``np.random.default_rng(seed)`` per call, so pass a different seed per image), and our separable float32 blur
may differ from torch's 2-D convolution by 1 grey level on rare rounding ties.

Framing corruptions (not part of MedMNIST-C) are in :data:`FRAMING`: ``"zoom"`` at severities 1-3 crops the
central 1/f of each side and resizes it back (bilinear), simulating tighter collimation or a closer crop.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageEnhance

# Severity -> parameter for the MedMNIST-C PneumoniaMNIST set (source: see module docstring). Units:
#   pixelate          resize factor (BOX downsample to int(side * f), BOX upsample back)
#   jpeg_compression  Pillow JPEG quality
#   gaussian_noise    std of additive N(0, s) on the [0, 1] scale, per RGB channel
#   speckle_noise     std of multiplicative x + x * N(0, s), per RGB channel
#   impulse_noise     fraction of values set to 0 or 1 (50/50 salt vs pepper), per RGB channel
#   shot_noise        photons at full white: Poisson(x * s) / s, per RGB channel
#   gaussian_blur     odd kernel size k in pixels; sigma = 0.15 * k + 0.35 (0.8, 1.1, 1.4, 1.7, 2.0).
#                     The reference lists a sixth value (13) that its 5-level loop never reaches.
#   brightness_*      Pillow ImageEnhance.Brightness factor
#   contrast_*        Pillow ImageEnhance.Contrast factor
#   gamma_*           gamma exponent, out = floor(255.999 * (x / 255) ** g)
PARAMS: dict[str, tuple[float, ...]] = {
    "pixelate": (0.8, 0.7, 0.6, 0.5, 0.4),
    "jpeg_compression": (50, 30, 15, 10, 7),
    "gaussian_noise": (0.04, 0.05, 0.06, 0.07, 0.08),
    "speckle_noise": (0.05, 0.07, 0.10, 0.15, 0.20),
    "impulse_noise": (0.005, 0.01, 0.013, 0.017, 0.02),
    "shot_noise": (300, 200, 150, 100, 80),
    "gaussian_blur": (3, 5, 7, 9, 11),
    "brightness_up": (1.1, 1.2, 1.3, 1.4, 1.5),
    "brightness_down": (0.9, 0.8, 0.7, 0.6, 0.5),
    "contrast_up": (1.1, 1.2, 1.3, 1.4, 1.6),
    "contrast_down": (0.9, 0.8, 0.7, 0.6, 0.4),
    "gamma_up": (1.1, 1.2, 1.3, 1.4, 1.6),
    "gamma_down": (0.9, 0.8, 0.7, 0.6, 0.4),
}

CORRUPTIONS: tuple[str, ...] = tuple(PARAMS)
SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)

# Framing corruptions: name -> {severity: zoom factor}. A table per name leaves room for other framing
# shifts (e.g. off-centre crops) without changing the API.
FRAMING: dict[str, dict[int, float]] = {
    "zoom": {1: 1.15, 2: 1.3, 3: 1.5},
}

# Below this the largest blur kernel (11 px, reflect padding 5) and the strongest pixelate (0.4) degenerate.
MIN_SIDE = 16

# Outputs come from Pillow via np.array (a copy), not np.asarray, which would hand callers read-only arrays.


def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray):
        raise ValueError(f"image must be a numpy array, got {type(image).__name__}")
    if image.ndim != 2:
        raise ValueError(f"image must be 2-D grayscale (H, W), got shape {image.shape}")
    if image.dtype != np.uint8:
        raise ValueError(f"image must have dtype uint8, got {image.dtype}")
    if min(image.shape) < MIN_SIDE:
        raise ValueError(f"image sides must be at least {MIN_SIDE} px, got shape {image.shape}")


def _is_int(value: object) -> bool:
    # bool is an int subclass; severity=True would silently mean 1.
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


# --- noise: three channels, as the reference corrupts an RGB copy of the grey image -------------------------


def _rgb01(image: np.ndarray) -> np.ndarray:
    # float32 halves the memory traffic; v / 255 * 255 still truncates back to v exactly for every grey level.
    return np.repeat(image[:, :, None], 3, axis=2).astype(np.float32) / np.float32(255)


def _to_grey(rgb01: np.ndarray) -> np.ndarray:
    # Truncation then Pillow's luma conversion: exactly the reference's astype(uint8) + convert("L").
    rgb = (np.clip(rgb01, 0.0, 1.0) * 255).astype(np.uint8)
    return np.array(Image.fromarray(rgb).convert("L"))


def _gaussian_noise(image: np.ndarray, std: float, rng: np.random.Generator) -> np.ndarray:
    x = _rgb01(image)
    return _to_grey(x + np.float32(std) * rng.standard_normal(x.shape, dtype=np.float32))


def _speckle_noise(image: np.ndarray, std: float, rng: np.random.Generator) -> np.ndarray:
    x = _rgb01(image)
    return _to_grey(x + x * (np.float32(std) * rng.standard_normal(x.shape, dtype=np.float32)))


def _impulse_noise(image: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    x = _rgb01(image)
    # One uniform draw per value: u < amount/2 is pepper, amount/2 <= u < amount is salt. Same law as the
    # reference's two Bernoulli draws (flip with p=amount, then salt with p=0.5), at half the random numbers.
    u = rng.random(x.shape, dtype=np.float32)
    x[u < amount / 2] = 0.0
    x[(u >= amount / 2) & (u < amount)] = 1.0
    return _to_grey(x)


def _shot_noise(image: np.ndarray, photons: float, rng: np.random.Generator) -> np.ndarray:
    x = _rgb01(image)
    return _to_grey(rng.poisson(x * photons) / photons)


# --- deterministic corruptions: single channel is exact for grey images -------------------------------------


def _pixelate(image: np.ndarray, factor: float) -> np.ndarray:
    h, w = image.shape
    small = Image.fromarray(image).resize((int(w * factor), int(h * factor)), Image.Resampling.BOX)
    return np.array(small.resize((w, h), Image.Resampling.BOX))


def _jpeg(image: np.ndarray, quality: float) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=int(quality))
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return np.array(decoded.convert("L"))


def _gaussian_blur(image: np.ndarray, ksize: float) -> np.ndarray:
    k = int(ksize)
    sigma = 0.15 * k + 0.35  # torchvision's default sigma for a given kernel size
    half = (k - 1) / 2
    taps = np.exp(-0.5 * (np.linspace(-half, half, k) / sigma) ** 2)
    taps = (taps / taps.sum()).astype(np.float32)
    r = k // 2
    h, w = image.shape
    padded = np.pad(image.astype(np.float32), r, mode="reflect")
    # Separable: k shifted multiply-adds per axis instead of a k*k 2-D convolution.
    rows = sum(taps[i] * padded[:, i : i + w] for i in range(k))
    out = sum(taps[i] * rows[i : i + h, :] for i in range(k))
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _enhance(enhancer: type[ImageEnhance._Enhance]) -> Callable[[np.ndarray, float], np.ndarray]:
    def apply(image: np.ndarray, factor: float) -> np.ndarray:
        return np.array(enhancer(Image.fromarray(image)).enhance(factor))

    return apply


def _gamma(image: np.ndarray, gamma: float) -> np.ndarray:
    lut = np.floor((255 + 1 - 1e-3) * (np.arange(256) / 255.0) ** gamma).astype(np.uint8)
    return lut[image]


_NOISY: dict[str, Callable[[np.ndarray, float, np.random.Generator], np.ndarray]] = {
    "gaussian_noise": _gaussian_noise,
    "speckle_noise": _speckle_noise,
    "impulse_noise": _impulse_noise,
    "shot_noise": _shot_noise,
}

_DETERMINISTIC: dict[str, Callable[[np.ndarray, float], np.ndarray]] = {
    "pixelate": _pixelate,
    "jpeg_compression": _jpeg,
    "gaussian_blur": _gaussian_blur,
    "brightness_up": _enhance(ImageEnhance.Brightness),
    "brightness_down": _enhance(ImageEnhance.Brightness),
    "contrast_up": _enhance(ImageEnhance.Contrast),
    "contrast_down": _enhance(ImageEnhance.Contrast),
    "gamma_up": _gamma,
    "gamma_down": _gamma,
}


# --- public API ---------------------------------------------------------------------------------------------


def centre_zoom(image: np.ndarray, factor: float) -> np.ndarray:
    """Crop the central 1/factor of each side and resize it back to (H, W) with bilinear interpolation.

    The crop box is fractional (Pillow's ``box=``), so the zoom is exact rather than rounded to whole pixels.
    """
    _check_image(image)
    if isinstance(factor, bool) or not isinstance(factor, int | float | np.integer | np.floating):
        raise ValueError(f"factor must be a number, got {type(factor).__name__}")
    if not math.isfinite(factor) or factor < 1.0:
        raise ValueError(f"factor must be a finite number >= 1.0 (1.0 = no zoom), got {factor}")
    h, w = image.shape
    if factor == 1.0:
        return image.copy()
    ch, cw = h / factor, w / factor
    if min(ch, cw) < 2:
        raise ValueError(f"factor {factor} leaves a crop smaller than 2 px for an image of shape {image.shape}")
    box = ((w - cw) / 2, (h - ch) / 2, (w + cw) / 2, (h + ch) / 2)
    zoomed = Image.fromarray(image).resize((w, h), Image.Resampling.BILINEAR, box=box)
    return np.array(zoomed)


def corrupt(image: np.ndarray, name: str, severity: int, seed: int = 0) -> np.ndarray:
    """Apply corruption ``name`` at ``severity`` to a 2-D uint8 grey image; returns a new array of the same shape.

    ``name`` is one of :data:`CORRUPTIONS` (severity 1-5) or a key of :data:`FRAMING` (its own severities).
    Only the noise corruptions use ``seed``; give each image its own seed so noise fields are not repeated.
    """
    _check_image(image)
    if not isinstance(name, str) or (name not in PARAMS and name not in FRAMING):
        known = ", ".join((*CORRUPTIONS, *FRAMING))
        raise ValueError(f"unknown corruption {name!r}; expected one of: {known}")
    levels = tuple(FRAMING[name]) if name in FRAMING else SEVERITIES
    if not _is_int(severity) or severity not in levels:
        raise ValueError(f"severity for {name!r} must be an integer in {levels[0]}..{levels[-1]}, got {severity!r}")
    if not _is_int(seed) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")

    image = np.ascontiguousarray(image)  # Pillow needs a contiguous buffer
    if name in FRAMING:
        return centre_zoom(image, FRAMING[name][int(severity)])
    param = PARAMS[name][int(severity) - 1]
    if name in _NOISY:
        return _NOISY[name](image, param, np.random.default_rng(int(seed)))
    return _DETERMINISTIC[name](image, param)


def corrupt_all(images: list[np.ndarray], name: str, severity: int) -> list[np.ndarray]:
    """:func:`corrupt` applied to each image with its index as the seed (the same noise pattern on
    every film would be one sample), so every user of the benchmark corrupts a set identically."""
    return [corrupt(image, name, severity, seed=index) for index, image in enumerate(images)]


def suite(include_framing: bool = True) -> list[tuple[str, int]]:
    """Every (name, severity) condition of the benchmark: MedMNIST-C set first, then framing if requested."""
    conditions = [(name, s) for name in CORRUPTIONS for s in SEVERITIES]
    if include_framing:
        conditions += [(name, s) for name, levels in FRAMING.items() for s in levels]
    return conditions

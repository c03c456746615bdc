"""Decoding any accepted file into an upright 8-bit grayscale array.

JPEG, PNG, TIFF, BMP and WebP go through Pillow (EXIF orientation honoured, every mode
converted to 8-bit gray); DICOM goes to :mod:`core.inputs.dicom`. Sizes are checked from
the header before any pixel is decoded.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from core.errors import ImageError
from core.inputs.formats import FORMATS_SENTENCE, RASTER_FORMATS, is_dicom
from core.inputs.limits import MAX_PIXELS, check_dimensions
from core.inputs.read import Source, read_bytes

# Our own limit is checked before decoding; make Pillow's bomb guard agree with it so it
# refuses instead of warning.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS


def _open(data: bytes) -> Image.Image:
    """Open (header only) and validate an image before any pixel is decoded."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=RASTER_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"image has too many pixels (limit {MAX_PIXELS / 1e6:.0f} megapixels)") from None
    except UnidentifiedImageError:
        raise ImageError(f"not a supported image (expected {FORMATS_SENTENCE})") from None
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types for malformed headers
        raise ImageError(f"corrupt image header ({type(exc).__name__})") from None
    check_dimensions(*image.size)
    try:
        # Counting frames walks the file (TIFF IFD chains, APNG chunks) and can fail on damage.
        frames = getattr(image, "n_frames", 1)
    except Exception as exc:  # noqa: BLE001
        raise ImageError(f"corrupt image structure ({type(exc).__name__})") from None
    if frames > 1:
        raise ImageError("animated or multi-page images are not supported; upload a single frame")
    return image


def _to_gray8(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit grayscale ("L")."""
    if image.mode == "L":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        # 12/16-bit data rarely uses the full range: stretch what is there to 0-255.
        arr = np.asarray(image, dtype=np.float32)
        lo, hi = float(arr.min()), float(arr.max())
        scaled = (arr - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
        return Image.fromarray(np.clip(scaled + 0.5, 0, 255).astype(np.uint8), mode="L")
    if image.mode in ("1", "P", "LA", "PA", "RGBA", "La") or "transparency" in image.info:
        # Transparent pixels carry no radiograph: put them on black, like the film border.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert("RGB").convert("L")


def _decoding_error(exc: Exception) -> ImageError:
    """The one-line reason for a failure while decoding pixels."""
    if isinstance(exc, MemoryError):
        return ImageError("image is too large to decode in memory")
    reason = "truncated" if "truncated" in str(exc).lower() else "corrupt"
    return ImageError(f"{reason} image data ({type(exc).__name__})")


def decode_gray(source: Source, min_size: tuple[int, int] | None = None) -> np.ndarray:
    """Decode ``source`` (JPEG, PNG, TIFF, BMP, WebP or DICOM) into an upright 8-bit ``(H, W)`` array.

    With ``min_size`` set, JPEGs are decoded at a reduced DCT scale that still covers
    ``min_size``, which makes full-resolution originals several times faster to load and
    bounds memory. Raises ``ImageError`` with a one-line reason for anything unusable.
    """
    data = read_bytes(source)
    if is_dicom(data):
        from core.inputs.dicom import decode_dicom  # deferred: pydicom is only needed for DICOM input

        return decode_dicom(data)
    image = _open(data)
    try:
        if min_size is not None and image.format == "JPEG":
            image.draft("L", min_size)
        image.load()
        image = ImageOps.exif_transpose(image)
        gray = _to_gray8(image)
        return np.asarray(gray, dtype=np.uint8).copy()
    except ImageError:
        raise
    except Exception as exc:  # noqa: BLE001 - truncated/corrupt streams raise OSError, SyntaxError, ...
        raise _decoding_error(exc) from None


COLOUR_MODES = ("RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "LAB", "HSV", "P", "PA")


def decode_pixels(source: Source, min_size: tuple[int, int] | None = None,
                  colour_min_size: tuple[int, int] | None = None) -> np.ndarray:
    """Decode ``source`` keeping colour: an upright ``(H, W)`` gray or ``(H, W, 3)`` RGB uint8 array.

    The capture step needs the colour of a phone photo (a tint is not a colour scene), so
    colour images stay RGB here; grayscale files, 16-bit data and DICOM come back 2-D as
    from :func:`decode_gray`. Same checks, limits and reduced-scale JPEG decoding; colour
    JPEGs use ``colour_min_size`` when given (a film may fill only part of a photo).
    """
    data = read_bytes(source)
    if is_dicom(data):
        from core.inputs.dicom import decode_dicom

        return decode_dicom(data)
    image = _open(data)
    try:
        colour = image.mode in COLOUR_MODES
        target = (colour_min_size or min_size) if colour else min_size
        if target is not None and image.format == "JPEG":
            image.draft("RGB" if colour else "L", target)
        image.load()
        image = ImageOps.exif_transpose(image)
        if not colour:
            return np.asarray(_to_gray8(image), dtype=np.uint8).copy()
        if image.mode in ("RGBA", "PA", "P") or "transparency" in image.info:
            rgba = image.convert("RGBA")
            image = Image.alpha_composite(Image.new("RGBA", rgba.size, (0, 0, 0, 255)), rgba)
        return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()
    except ImageError:
        raise
    except Exception as exc:  # noqa: BLE001 - truncated/corrupt streams raise OSError, SyntaxError, ...
        raise _decoding_error(exc) from None

"""Image decoding and preprocessing shared by training, the dashboard and the CLI.

Every image that reaches the model goes through :func:`prepare_image`: decode, honour
EXIF orientation, convert to 8-bit grayscale and squash-resize (aspect ratio not kept)
to the model's square input. Training decodes through the same function, so the two
cannot drift apart.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from core.errors import ImageError

Source = str | Path | bytes | bytearray | memoryview

ALLOWED_FORMATS = ("JPEG", "PNG", "TIFF", "BMP", "WEBP")
MAX_FILE_BYTES = 100 * 1024 * 1024
MAX_PIXELS = 60_000_000  # a 7,000 × 8,500 detector image; anything larger is refused.
MAX_SIDE = 20_000
MIN_SIDE = 32
DICOM_PREFIX_OFFSET = 128  # DICOM files carry 'DICM' after a 128-byte preamble.

# Our own limit is checked before decoding; make Pillow's bomb guard agree with it so it
# refuses instead of warning.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS


def read_bytes(source: Source) -> bytes:
    """Return the raw bytes of a path or bytes-like ``source``.

    Raises ``ImageError`` for a missing, unreadable, empty or oversized file.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif isinstance(source, (str, Path)):
        path = Path(source)
        try:
            size = path.stat().st_size
            regular = path.is_file()
        except OSError as exc:
            raise ImageError(f"cannot read file: {exc.strerror or 'not found'}") from None
        except ValueError:  # e.g. a NUL character in the path
            raise ImageError("cannot read file: invalid path") from None
        if not regular:
            raise ImageError("not a regular file")
        if size > MAX_FILE_BYTES:
            raise ImageError(f"file is too large ({size / 2**20:.0f} MB; limit {MAX_FILE_BYTES // 2**20} MB)")
        try:
            with path.open("rb") as handle:
                # Bounded even if the file grows after stat().
                data = handle.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise ImageError(f"cannot read file: {exc.strerror or 'I/O error'}") from None
    else:
        raise ImageError(f"unsupported input type {type(source).__name__}")
    if not data:
        raise ImageError("file is empty")
    if len(data) > MAX_FILE_BYTES:
        raise ImageError(f"file is too large ({len(data) / 2**20:.0f} MB; limit {MAX_FILE_BYTES // 2**20} MB)")
    return data


def _open(data: bytes) -> Image.Image:
    """Open (header only) and validate an image before any pixel is decoded."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"image has too many pixels (limit {MAX_PIXELS / 1e6:.0f} megapixels)") from None
    except UnidentifiedImageError:
        raise ImageError("not a supported image (expected JPEG, PNG or DICOM)") from None
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


def check_dimensions(width: int, height: int) -> None:
    """Raise ``ImageError`` unless a ``width``×``height`` image is within the size limits."""
    if width <= 0 or height <= 0 or width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
        raise ImageError(f"image dimensions {width}×{height} are outside the supported range")
    if min(width, height) < MIN_SIDE:
        raise ImageError(f"image is too small ({width}×{height} px); at least {MIN_SIDE} px per side is needed")


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


def decode_gray(source: Source, min_size: tuple[int, int] | None = None) -> np.ndarray:
    """Decode ``source`` (JPEG, PNG, TIFF, BMP, WebP or DICOM) into an upright 8-bit ``(H, W)`` array.

    With ``min_size`` set, JPEGs are decoded at a reduced DCT scale that still covers
    ``min_size``, which makes full-resolution originals several times faster to load and
    bounds memory. Raises ``ImageError`` with a one-line reason for anything unusable.
    """
    data = read_bytes(source)
    if data[DICOM_PREFIX_OFFSET:DICOM_PREFIX_OFFSET + 4] == b"DICM":  # same test as core.dicom.is_dicom
        from core.dicom import decode_dicom  # deferred: pydicom is only needed for DICOM input

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
    except MemoryError:
        raise ImageError("image is too large to decode in memory") from None
    except Exception as exc:  # noqa: BLE001 - truncated/corrupt streams raise OSError, SyntaxError, ...
        reason = "truncated" if "truncated" in str(exc).lower() else "corrupt"
        raise ImageError(f"{reason} image data ({type(exc).__name__})") from None


def resize_square(gray: np.ndarray, size: int) -> np.ndarray:
    """Squash-resize a 2-D uint8 array to ``size``×``size`` (bilinear, antialiased)."""
    if gray.ndim != 2 or gray.dtype != np.uint8:
        raise ValueError("expected a 2-D uint8 grayscale array")
    if size < 8:
        raise ValueError("size must be at least 8")
    if gray.shape == (size, size):
        return gray
    image = Image.fromarray(gray, mode="L").resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.uint8)


def prepare_image(source: Source, size: int) -> np.ndarray:
    """Decode and preprocess one image into the model's ``(size, size)`` uint8 input."""
    return resize_square(decode_gray(source, min_size=(size, size)), size)


def display_image(source: Source, max_side: int = 768) -> np.ndarray:
    """Decode an upright grayscale copy for display, aspect ratio kept, longest side ≤ ``max_side``."""
    if max_side < 16:
        raise ValueError("max_side must be at least 16")
    gray = decode_gray(source, min_size=(max_side, max_side))
    height, width = gray.shape
    scale = max_side / max(height, width)
    if scale >= 1:
        return gray
    new = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(gray, mode="L").resize(new, Image.Resampling.BILINEAR), dtype=np.uint8)

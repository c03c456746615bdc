"""Decoding and preprocessing of every kind of file a user may upload, good or bad."""

from __future__ import annotations

import io
import os
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.errors import ImageError
from core.inputs import read as reading
from core.inputs.raster import decode_gray
from core.inputs.read import read_bytes
from core.preprocessing import display_image, prepare_image, resize_square
from helpers import encode, gray_to_16bit, image_bytes, xray_like

SIZE = 64


def reference(gray: np.ndarray, size: int = SIZE) -> np.ndarray:
    return resize_square(gray, size)


def mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.abs(a.astype(int) - b.astype(int))))


def stretch(values: np.ndarray) -> np.ndarray:
    lo, hi = float(values.min()), float(values.max())
    return np.clip((values.astype(np.float32) - lo) * 255 / (hi - lo) + 0.5, 0, 255).astype(np.uint8)


def png_with_header(width: int, height: int, bit_depth: int = 8, color_type: int = 0) -> bytes:
    """A tiny PNG whose IHDR claims ``width``×``height``; the pixel data is a few bytes only."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    pixels = chunk(b"IDAT", zlib.compress(b"\x00" * 16))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + pixels + chunk(b"IEND", b"")


def assert_one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert message and "\n" not in message and len(message) < 200
    return message


# --- formats and modes -------------------------------------------------------------------------

GRAY = xray_like(120, 100, seed=5)


def _encoded(fmt: str, mode: str) -> bytes:
    base = Image.fromarray(GRAY, mode="L")
    if mode == "I;16":
        image = Image.fromarray(gray_to_16bit(GRAY))
        assert image.mode == "I;16"
    elif mode == "CMYK":
        image = base.convert("RGB").convert("CMYK")
    elif mode in ("RGB", "RGBA", "P", "LA", "1"):
        image = base.convert(mode)
    else:
        image = base
    params = {"quality": 95} if fmt == "JPEG" else {}
    return encode(image, fmt, **params)


@pytest.mark.parametrize(
    ("fmt", "mode", "tolerance"),
    [
        ("JPEG", "L", 3), ("JPEG", "RGB", 3), ("JPEG", "CMYK", 4),
        ("PNG", "L", 0), ("PNG", "RGB", 0), ("PNG", "RGBA", 0), ("PNG", "P", 6), ("PNG", "LA", 0),
        ("PNG", "I;16", 1), ("TIFF", "I;16", 1), ("TIFF", "L", 0), ("BMP", "RGB", 0), ("WEBP", "L", 4),
    ],
)
def test_modes_and_formats_match_grayscale_reference(fmt: str, mode: str, tolerance: float) -> None:
    data = _encoded(fmt, mode)
    gray = decode_gray(data)
    assert gray.dtype == np.uint8 and gray.shape == GRAY.shape
    expected = stretch(gray_to_16bit(GRAY)) if mode == "I;16" else GRAY
    assert mean_abs_diff(gray, expected) <= tolerance
    prepared = prepare_image(data, SIZE)
    assert prepared.shape == (SIZE, SIZE) and prepared.dtype == np.uint8
    assert mean_abs_diff(prepared, reference(expected)) <= tolerance + 0.5


def test_sixteen_bit_uses_full_range() -> None:
    # 12-bit data in a 16-bit container would look black if simply divided by 256.
    raw = (xray_like(64, 64, seed=1).astype(np.uint16) * 8 + 1000).astype(np.uint16)
    gray = decode_gray(encode(Image.fromarray(raw), "PNG"))
    assert gray.min() == 0 and gray.max() == 255
    order = np.argsort(raw.ravel(), kind="stable")
    assert np.all(np.diff(gray.ravel()[order].astype(int)) >= 0), "stretch must keep the grey-level order"


def test_transparent_pixels_become_black() -> None:
    rgba = Image.fromarray(GRAY, mode="L").convert("RGBA")
    alpha = np.full(GRAY.shape, 255, np.uint8)
    alpha[:, :50] = 0
    rgba.putalpha(Image.fromarray(alpha, mode="L"))
    gray = decode_gray(encode(rgba, "PNG"))
    assert np.all(gray[:, :50] == 0)
    assert np.array_equal(gray[:, 50:], GRAY[:, 50:])


def test_palette_with_transparency() -> None:
    image = Image.fromarray(GRAY, mode="L").convert("P")
    image.info["transparency"] = int(np.asarray(image)[0, 0])
    gray = decode_gray(encode(image, "PNG", transparency=image.info["transparency"]))
    assert gray.shape == GRAY.shape and gray[0, 0] == 0


def test_exif_orientation_is_applied() -> None:
    # Stored landscape 120×60 with a bright block top-left; orientation 6 means "rotate 90° clockwise".
    # A fine checkerboard (8 levels) keeps the flat areas from reading as a uniform border to trim.
    grain = (np.indices((60, 120)).sum(axis=0) % 2 * 8).astype(np.uint8)
    stored = np.full((60, 120), 20, np.uint8) + grain
    stored[:30, :60] = 222 + grain[:30, :60]
    image = Image.fromarray(stored, mode="L")
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(image, "JPEG", quality=95, exif=exif.tobytes())
    assert Image.open(io.BytesIO(data)).size == (120, 60)
    gray = decode_gray(data)
    assert gray.shape == (120, 60), "height and width must be swapped"
    top_right, top_left = gray[:60, 30:].mean(), gray[:60, :30].mean()
    bottom = gray[60:, :].mean()
    assert top_right > 200 and top_left < 50 and bottom < 50
    upright = np.ascontiguousarray(np.rot90(stored, k=-1))
    assert mean_abs_diff(gray, upright) < 3
    # prepare_image sees the upright image too.
    assert mean_abs_diff(prepare_image(data, SIZE), resize_square(upright, SIZE)) < 3


def test_large_jpeg_is_decoded_at_reduced_scale() -> None:
    big = Image.fromarray(xray_like(3000, 4000, seed=2), mode="L")
    data = encode(big, "JPEG", quality=85)
    gray = decode_gray(data, min_size=(224, 224))
    assert min(gray.shape) >= 224 and max(gray.shape) <= 1000, gray.shape
    assert gray.shape[1] > gray.shape[0], "aspect ratio of the draft decode is kept"
    assert decode_gray(data).shape == (3000, 4000)
    start = time.perf_counter()
    prepared = prepare_image(data, 224)
    assert time.perf_counter() - start < 2.0
    assert prepared.shape == (224, 224)
    # The reduced decode still gives (nearly) the same model input as a full decode.
    assert mean_abs_diff(prepared, resize_square(decode_gray(data), 224)) < 4


def test_path_and_bytes_give_identical_input(make_image) -> None:
    path = make_image("scan.jpeg", 300, 240)
    data = path.read_bytes()
    expected = prepare_image(path, SIZE)
    for source in (str(path), data, bytearray(data), memoryview(data)):
        assert np.array_equal(prepare_image(source, SIZE), expected)


@pytest.mark.parametrize("name", ["upper.JPG", "upper.PNG", "png-named.jpg", "no_suffix"])
def test_format_is_detected_from_content_not_suffix(make_image, name: str) -> None:
    path = make_image(name, fmt="PNG" if name != "upper.JPG" else "JPEG")
    assert prepare_image(path, SIZE).shape == (SIZE, SIZE)


def test_non_square_is_squashed_not_cropped() -> None:
    # Dark and bright thirds with an 8-level checkerboard, so neither reads as a uniform border to trim.
    grain = (np.indices((100, 300)).sum(axis=0) % 2 * 8).astype(np.uint8)
    gray = grain.copy()
    gray[:, 200:] = 247 + grain[:, 200:]  # right third bright
    out = prepare_image(encode(Image.fromarray(gray, mode="L"), "PNG"), 60)
    assert out[:, :38].max() <= 8 and out[:, 42:].min() >= 247


# --- refusals ----------------------------------------------------------------------------------

def test_truncated_jpeg(make_image) -> None:
    data = make_image("t.jpeg", 400, 300).read_bytes()
    with pytest.raises(ImageError) as exc:
        decode_gray(data[: len(data) // 2])
    assert "truncated" in assert_one_line(exc)


def test_truncated_png() -> None:
    data = image_bytes(200, 200, "PNG")
    with pytest.raises(ImageError) as exc:
        decode_gray(data[: len(data) // 2])
    assert_one_line(exc)


def test_truncated_header() -> None:
    with pytest.raises(ImageError):
        decode_gray(image_bytes(200, 200, "JPEG")[:20])


def test_random_bytes() -> None:
    with pytest.raises(ImageError) as exc:
        decode_gray(os.urandom(5000))
    assert_one_line(exc)


def test_html_renamed_to_jpg(tmp_path: Path) -> None:
    path = tmp_path / "xray.jpg"
    secret = "<html><body>patient Jane Doe</body></html>"
    path.write_text(secret)
    with pytest.raises(ImageError) as exc:
        prepare_image(path, SIZE)
    message = assert_one_line(exc)
    assert "Jane" not in message and "html" not in message.lower()


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.jpeg"
    path.write_bytes(b"")
    for source in (path, b""):
        with pytest.raises(ImageError, match="empty"):
            prepare_image(source, SIZE)


def test_missing_file_directory_and_wrong_type(tmp_path: Path) -> None:
    with pytest.raises(ImageError):
        read_bytes(tmp_path / "absent.jpeg")
    with pytest.raises(ImageError):
        read_bytes(tmp_path)
    with pytest.raises(ImageError):
        read_bytes(12345)  # type: ignore[arg-type]


def test_oversized_file_refused_before_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reading, "MAX_FILE_BYTES", 1000)
    path = tmp_path / "big.png"
    path.write_bytes(image_bytes(200, 200, "PNG"))
    assert path.stat().st_size > 1000
    with pytest.raises(ImageError, match="too large"):
        read_bytes(path)
    with pytest.raises(ImageError, match="too large"):
        read_bytes(path.read_bytes())


@pytest.mark.parametrize(("width", "height"), [(100_000, 100_000), (8_000, 8_000), (30_000, 100), (65_535, 65_535)])
def test_decompression_bomb_header_refused_quickly(width: int, height: int) -> None:
    data = png_with_header(width, height)
    assert len(data) < 200
    start = time.perf_counter()
    with pytest.raises(ImageError) as exc:
        prepare_image(data, SIZE)
    assert time.perf_counter() - start < 0.5
    message = assert_one_line(exc)
    assert "pixels" in message or "dimensions" in message


def test_sixteen_bit_bomb_header_refused() -> None:
    with pytest.raises(ImageError):
        decode_gray(png_with_header(50_000, 50_000, bit_depth=16))


@pytest.mark.parametrize(("width", "height"), [(1, 1), (31, 200), (200, 16)])
def test_tiny_images_refused(width: int, height: int) -> None:
    data = encode(Image.new("L", (width, height), 128), "PNG")
    with pytest.raises(ImageError, match="too small"):
        prepare_image(data, SIZE)


def _frames(n: int = 3) -> list[Image.Image]:
    return [Image.fromarray(xray_like(64, 64, seed=s), mode="L") for s in range(n)]


def test_multipage_tiff_refused() -> None:
    frames = _frames()
    data = encode(frames[0], "TIFF", save_all=True, append_images=frames[1:])
    with pytest.raises(ImageError, match="multi-page|animated"):
        decode_gray(data)


def test_apng_refused() -> None:
    frames = _frames()
    data = encode(frames[0], "PNG", save_all=True, append_images=frames[1:], duration=100)
    with Image.open(io.BytesIO(data)) as check:
        assert check.n_frames == 3
    with pytest.raises(ImageError, match="multi-page|animated"):
        decode_gray(data)


@pytest.mark.parametrize("animated", [False, True])
def test_gif_refused(animated: bool) -> None:
    frames = _frames()
    params = {"save_all": True, "append_images": frames[1:]} if animated else {}
    with pytest.raises(ImageError, match="not a supported image"):
        decode_gray(encode(frames[0], "GIF", **params))


def test_image_error_is_value_error() -> None:
    with pytest.raises(ValueError):
        prepare_image(b"nonsense", SIZE)


# --- helpers -----------------------------------------------------------------------------------

def test_resize_square_validates_input() -> None:
    gray = xray_like(40, 50)
    assert resize_square(gray, 16).shape == (16, 16)
    same = xray_like(16, 16)
    assert resize_square(same, 16) is same
    with pytest.raises(ValueError):
        resize_square(gray.astype(np.float32), 16)
    with pytest.raises(ValueError):
        resize_square(np.stack([gray] * 3, axis=-1), 16)
    with pytest.raises(ValueError):
        resize_square(gray, 4)


def test_display_image_keeps_aspect_ratio() -> None:
    data = image_bytes(900, 600, "JPEG")
    shown = display_image(data, max_side=300)
    assert shown.shape == (300, 200)
    small = image_bytes(100, 80, "PNG")
    assert display_image(small, max_side=300).shape == (100, 80)
    with pytest.raises(ValueError):
        display_image(small, max_side=4)

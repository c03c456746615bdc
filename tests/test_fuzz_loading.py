"""Fuzzing the image-loading entry points with hypothesis.

Whatever bytes arrive, ``decode_gray`` and ``prepare_image`` either return a valid uint8
array of the right shape or raise ``ImageError``: no other exception type, ever.
"""

from __future__ import annotations

import os
import struct
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from pydicom import uid

from core.errors import ImageError
from core.inputs.limits import MAX_PIXELS, MAX_SIDE, MIN_SIDE
from core.inputs.raster import decode_gray
from core.preprocessing import prepare_image
from helpers import encode, xray_like
from helpers.dicom import dicom_bytes, encapsulated, jpeg_frame, make_dataset, marked, to_bytes

SIZE = 32
# FUZZ_SCALE=20 (environment) runs a longer search, e.g. before a release.
SCALE = max(1, int(os.environ.get("FUZZ_SCALE", "1")))
FUZZ = settings(max_examples=300 * SCALE, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


PLAIN_DICOM = dicom_bytes(marked(40, 36), bits_stored=12)


def _seeds() -> list[bytes]:
    gray = xray_like(48, 40, seed=1)
    image = Image.fromarray(gray, mode="L")
    seeds = [encode(image, fmt) for fmt in ("PNG", "JPEG", "TIFF", "BMP", "WEBP")]
    seeds += [encode(image.convert("RGBA"), "PNG"), encode(image.convert("P"), "PNG"),
              encode(Image.fromarray(gray.astype(np.uint16) * 200), "PNG"), encode(image, "JPEG", progressive=True)]
    seeds += [PLAIN_DICOM,
              dicom_bytes(marked(40, 36), photometric="MONOCHROME1", RescaleSlope=2, RescaleIntercept=-7,
                          WindowCenter=1000, WindowWidth=600)]
    rle = make_dataset(marked(40, 36), bits_stored=12)
    rle.compress(uid.RLELossless)
    seeds += [to_bytes(rle), encapsulated(make_dataset(gray), jpeg_frame(gray), uid.JPEGBaseline8Bit)]
    return seeds


SEEDS = _seeds()


def check(data: bytes) -> None:
    """The contract: a valid array or ImageError; anything else fails the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # decoders warn about damage; only exceptions matter here
        try:
            gray = decode_gray(data)
        except ImageError as exc:
            message = str(exc)
            assert message and "\n" not in message and all(ch.isprintable() for ch in message)
            return
        assert isinstance(gray, np.ndarray) and gray.dtype == np.uint8 and gray.ndim == 2
        height, width = gray.shape
        assert min(height, width) >= MIN_SIDE and max(height, width) <= MAX_SIDE and height * width <= MAX_PIXELS
        prepared = prepare_image(data, SIZE)
        assert prepared.dtype == np.uint8 and prepared.shape == (SIZE, SIZE)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid image with a few bytes overwritten, inserted or deleted, then possibly truncated."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 8))):
        position = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["set", "insert", "delete", "extreme"]))
        if action == "set":
            data[position] = draw(st.integers(0, 255))
        elif action == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=16))
        elif action == "delete":
            del data[position:position + draw(st.integers(1, 64))]
        else:  # lengths and sizes at their extremes
            data[position:position + 4] = draw(st.sampled_from([b"\xff\xff\xff\xff", b"\x00\x00\x00\x00",
                                                                b"\x7f\xff\xff\xff", struct.pack("<I", 65536)]))
        if not data:
            break
    if draw(st.booleans()):
        data = data[:draw(st.integers(0, len(data)))]
    return bytes(data)


@FUZZ
@given(st.binary(max_size=4096))
def test_random_bytes(data: bytes) -> None:
    check(data)


MAGIC = [b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"II*\x00", b"MM\x00*", b"BM", b"RIFF\x00\x00\x00\x00WEBP", b"GIF89a",
         b"PK\x03\x04", b"\x1f\x8b"]


@FUZZ
@given(st.sampled_from(MAGIC), st.binary(max_size=2048))
def test_magic_numbers_with_junk(magic: bytes, junk: bytes) -> None:
    check(magic + junk)


@settings(FUZZ, max_examples=1500 * SCALE)
@given(mutated())
def test_mutated_valid_images(data: bytes) -> None:
    check(data)


@FUZZ
@given(st.binary(max_size=128).map(lambda b: b.ljust(128, b"\0")[:128]), st.binary(max_size=4096))
def test_dicom_preamble_with_junk(preamble: bytes, junk: bytes) -> None:
    check(preamble + b"DICM" + junk)


DICOM_HEAD = PLAIN_DICOM[:144 + struct.unpack("<I", PLAIN_DICOM[140:144])[0]]  # preamble and file meta


@FUZZ
@given(st.binary(max_size=4096))
def test_valid_dicom_meta_with_junk_dataset(junk: bytes) -> None:
    check(DICOM_HEAD + junk)


def test_seeds_are_valid() -> None:
    # The mutation strategy is only meaningful if the unmutated inputs decode.
    for data in SEEDS:
        assert prepare_image(data, SIZE).shape == (SIZE, SIZE)


@pytest.mark.parametrize("cut", [0, 1, 100, 128, 131, 132, 140, 200, 300, 400])
def test_dicom_truncated_at_every_region(cut: int) -> None:
    check(PLAIN_DICOM[:cut])

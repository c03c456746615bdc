"""DICOM input: LUTs, windowing, inversion, bit depths, compression, view checks and refusals.

Every DICOM here is built in memory with pydicom; nothing depends on external files.
"""

from __future__ import annotations

import io
import logging
import struct
import time
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom import uid
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from core.errors import ImageError
from core.inputs import dicom
from core.inputs.formats import is_dicom
from core.inputs.raster import decode_gray
from core.preprocessing import display_image, prepare_image
from helpers import encode, xray_like
from helpers.dicom import (
    SECRETS,
    dicom_bytes,
    encapsulated,
    jpeg_frame,
    make_dataset,
    marked,
    stretch,
    to_bytes,
)

SIZE = 64


def refusal(data: bytes | Path) -> str:
    with pytest.raises(ImageError) as exc:
        decode_gray(data)
    message = str(exc.value)
    assert message and "\n" not in message and len(message) < 200
    assert not any(secret in message for secret in SECRETS)
    return message


# --- detection and dispatch ---------------------------------------------------------------------

def test_detection_by_content() -> None:
    data = dicom_bytes(marked())
    assert is_dicom(data)
    assert not is_dicom(encode(Image.new("L", (40, 40)), "PNG"))
    assert not is_dicom(b"DICM" * 10)


def test_file_without_extension_is_read_by_content(tmp_path: Path) -> None:
    path = tmp_path / "IM000001"
    path.write_bytes(dicom_bytes(marked()))
    gray = decode_gray(path)
    assert gray.shape == (80, 72) and gray.dtype == np.uint8
    assert prepare_image(path, SIZE).shape == (SIZE, SIZE)
    dcm = tmp_path / "scan.DCM"
    dcm.write_bytes(path.read_bytes())
    assert np.array_equal(decode_gray(dcm), gray)
    assert np.array_equal(decode_gray(path.read_bytes()), gray)


def test_implicit_vr_little_endian() -> None:
    explicit = decode_gray(dicom_bytes(marked()))
    assert np.array_equal(decode_gray(dicom_bytes(marked(), syntax=uid.ImplicitVRLittleEndian)), explicit)


def test_display_image_handles_dicom() -> None:
    shown = display_image(dicom_bytes(marked(400, 200)), max_side=100)
    assert shown.shape == (100, 50)


# --- grey levels --------------------------------------------------------------------------------

def test_monochrome2_keeps_orientation_and_uses_the_full_range() -> None:
    gray = decode_gray(dicom_bytes(marked()))
    assert gray[:20, :16].min() == 255, "bright block stays top-left and bright"
    assert gray[25:, :30].max() == 0
    assert 120 <= gray[60, 60] <= 135


def test_monochrome1_is_inverted() -> None:
    mono2 = decode_gray(dicom_bytes(marked()))
    mono1 = decode_gray(dicom_bytes(marked(), photometric="MONOCHROME1"))
    assert mono1[:20, :16].max() == 0, "a high stored value is dark in MONOCHROME1"
    assert mono1[25:, :30].min() == 255
    assert np.array_equal(mono1, 255 - mono2)


def test_presentation_lut_inverse_flips_again() -> None:
    mono1 = decode_gray(dicom_bytes(marked(), photometric="MONOCHROME1"))
    flipped = decode_gray(dicom_bytes(marked(), photometric="MONOCHROME1", PresentationLUTShape="INVERSE"))
    assert np.array_equal(flipped, 255 - mono1)


def test_eight_bit_is_shown_as_stored_like_a_png() -> None:
    gray8 = xray_like(90, 70, seed=3)
    from_dicom = decode_gray(dicom_bytes(gray8))
    assert np.array_equal(from_dicom, gray8)
    assert np.array_equal(from_dicom, decode_gray(encode(Image.fromarray(gray8, mode="L"), "PNG")))
    assert np.array_equal(decode_gray(dicom_bytes(gray8, photometric="MONOCHROME1")), 255 - gray8)


def test_sixteen_bit_full_range() -> None:
    pixels = (xray_like(64, 64, seed=4).astype(np.uint16) * 257).astype(np.uint16)
    gray = decode_gray(dicom_bytes(pixels))
    assert np.array_equal(gray, stretch(pixels))


def test_twelve_bit_stored_ignores_bits_above_high_bit() -> None:
    pixels = marked()
    # Stray bits above the 12 stored ones (e.g. embedded overlays) must not change the image.
    dirty = pixels | np.uint16(0xF000)
    dirty[::2] = pixels[::2] | np.uint16(0x5000)
    clean = decode_gray(dicom_bytes(pixels, bits_stored=12))
    assert np.array_equal(decode_gray(dicom_bytes(dirty, bits_stored=12)), clean)
    assert np.array_equal(clean, stretch(pixels))


def test_signed_pixels() -> None:
    pixels = marked().astype(np.int16) - 2048
    gray = decode_gray(dicom_bytes(pixels, bits_stored=12, signed=True))
    assert gray[:20, :16].min() == 255 and gray[25:, :30].max() == 0


def test_rescale_slope_intercept_applied_before_window() -> None:
    raw = np.full((64, 64), 500, np.uint16)
    raw[:, :20] = 400
    raw[:, 44:] = 600
    # Rescaled: 2 * raw - 1000 -> -200, 0, 200. A window 0 ± 100 maps those to black, grey, white.
    gray = decode_gray(dicom_bytes(raw, RescaleSlope=2, RescaleIntercept=-1000, WindowCenter=0, WindowWidth=200))
    assert gray[0, 0] == 0 and gray[0, 63] == 255 and 120 <= gray[0, 32] <= 135
    # The same window without the rescale puts every stored value above it: all white.
    unscaled = decode_gray(dicom_bytes(raw, WindowCenter=0, WindowWidth=200))
    assert unscaled.min() == 255


def test_negative_slope_inverts() -> None:
    gray = decode_gray(dicom_bytes(marked(), RescaleSlope=-1, RescaleIntercept=4095))
    assert gray[:20, :16].max() == 0 and gray[25:, :30].min() == 255


def test_window_keeps_its_brightness_instead_of_restretching() -> None:
    raw = np.full((64, 64), 1000, np.uint16)
    raw[:, :32] = 950
    raw[:, 32:] = 1050
    windowed = decode_gray(dicom_bytes(raw, WindowCenter=1000, WindowWidth=400))
    # 950 and 1050 sit a quarter of the way in from each side of the 800..1200 window.
    assert 88 <= windowed[0, 0] <= 100 and 155 <= windowed[0, 63] <= 167
    plain = decode_gray(dicom_bytes(raw))
    assert plain[0, 0] == 0 and plain[0, 63] == 255


def test_window_clips_outside_values() -> None:
    raw = np.full((64, 64), 1000, np.uint16)
    raw[:, :10], raw[:, 54:] = 100, 3000
    gray = decode_gray(dicom_bytes(raw, bits_stored=12, WindowCenter=1000, WindowWidth=400))
    assert gray[0, 0] == 0 and gray[0, 63] == 255 and 120 <= gray[0, 32] <= 135


def test_multi_valued_window_uses_the_first() -> None:
    raw = np.tile(np.linspace(0, 4095, 64).astype(np.uint16), (64, 1))
    gray = decode_gray(dicom_bytes(raw, bits_stored=12, WindowCenter=[1000, 3000], WindowWidth=[500, 500]))
    first_white = int(np.flatnonzero(gray[0] == 255).min())
    assert first_white == int(np.flatnonzero(raw[0] > 1250).min()), "window 1000±250, not 3000±250"


def test_invalid_window_falls_back_to_full_range() -> None:
    gray = decode_gray(dicom_bytes(marked(), WindowCenter=1000, WindowWidth=0))
    assert np.array_equal(gray, stretch(marked()))


def voi_lut_item(lut: np.ndarray, first_map: int = 0, bits: int = 16) -> Dataset:
    item = Dataset()
    item.LUTDescriptor = [len(lut), first_map, bits]
    item.add_new(0x00283006, "US", [int(v) for v in lut])  # LUT Data
    return item


def test_voi_lut_sequence_is_applied_and_preferred_over_window() -> None:
    raw = np.tile(np.arange(64, dtype=np.uint16) * 64, (64, 1))  # 0 .. 4032 left to right
    # A LUT that is black below 2048 and white from there: a step the window could never give.
    lut = np.where(np.arange(4096) < 2048, 0, 65535).astype(np.uint16)
    ds = make_dataset(raw, bits_stored=12, WindowCenter=2048, WindowWidth=4096)
    ds.VOILUTSequence = Sequence([voi_lut_item(lut)])
    gray = decode_gray(to_bytes(ds))
    assert np.all(gray[:, :32] == 0) and np.all(gray[:, 32:] == 255)
    only_window = decode_gray(dicom_bytes(raw, bits_stored=12, WindowCenter=2048, WindowWidth=4096))
    assert 0 < only_window[0, 20] < only_window[0, 40] < 255


def test_voi_lut_output_range_not_restretched() -> None:
    raw = np.tile(np.arange(64, dtype=np.uint16), (64, 1))
    lut = (np.arange(64) * 16 + 1024).astype(np.uint16)  # maps to 1024..2032 of a 12-bit output
    ds = make_dataset(raw)
    ds.VOILUTSequence = Sequence([voi_lut_item(lut, bits=12)])
    gray = decode_gray(to_bytes(ds))
    assert np.all(np.diff(gray[0].astype(int)) >= 0)
    assert gray[0, 0] == 0 and gray[0, 63] == 255  # the LUT's own span maps to black..white


def test_broken_voi_lut_falls_back() -> None:
    ds = make_dataset(marked())
    item = Dataset()
    item.LUTDescriptor = [4096, 0, 7]  # 7 bits per entry is not allowed
    item.add_new(0x00283006, "US", [0] * 16)
    ds.VOILUTSequence = Sequence([item])
    assert np.array_equal(decode_gray(to_bytes(ds)), stretch(marked()))


def test_large_images_are_converted_in_blocks_with_the_same_result(monkeypatch: pytest.MonkeyPatch) -> None:
    pixels = (xray_like(90, 70, seed=9).astype(np.uint16) * 13 + 300).astype(np.uint16)
    variants = [{}, {"WindowCenter": 1500, "WindowWidth": 1200}, {"RescaleSlope": -3, "RescaleIntercept": 9000}]
    whole = [decode_gray(dicom_bytes(pixels, bits_stored=12, **extra)) for extra in variants]
    monkeypatch.setattr(dicom, "BLOCK_PIXELS", 150)  # two rows per block; the range spans blocks
    for extra, expected in zip(variants, whole, strict=True):
        assert np.array_equal(decode_gray(dicom_bytes(pixels, bits_stored=12, **extra)), expected)
    assert np.array_equal(whole[0], stretch(pixels))


def test_rgb_dicom_becomes_luminance() -> None:
    rgb = np.stack([xray_like(64, 64, seed=s) for s in range(3)], axis=-1)
    gray = decode_gray(dicom_bytes(rgb))
    expected = np.asarray(Image.fromarray(rgb, mode="RGB").convert("L"))
    assert np.array_equal(gray, expected)


# --- compressed transfer syntaxes ---------------------------------------------------------------

def test_rle_lossless_matches_uncompressed() -> None:
    pixels = (xray_like(70, 66, seed=6).astype(np.uint16) * 16).astype(np.uint16)
    ds = make_dataset(pixels, bits_stored=12)
    native = decode_gray(to_bytes(ds))
    ds.compress(uid.RLELossless)
    data = to_bytes(ds)
    assert pydicom.dcmread(io.BytesIO(data)).file_meta.TransferSyntaxUID == uid.RLELossless
    assert np.array_equal(decode_gray(data), native)


def test_jpeg_baseline_encapsulated() -> None:
    gray8 = xray_like(96, 80, seed=7)
    gray8[:16, :16] = 255
    data = encapsulated(make_dataset(np.zeros_like(gray8)), jpeg_frame(gray8), uid.JPEGBaseline8Bit)
    out = decode_gray(data)
    assert out.shape == gray8.shape
    assert np.mean(np.abs(out.astype(int) - gray8.astype(int))) < 3
    assert out[:14, :14].min() > 240


@pytest.mark.skipif(not pydicom.pixels.encoders.JPEG2000LosslessEncoder.is_available,
                    reason="no JPEG 2000 encoder (pylibjpeg-openjpeg) installed")
def test_jpeg2000_lossless() -> None:
    pixels = marked()
    ds = make_dataset(pixels, bits_stored=12)
    ds.compress(uid.JPEG2000Lossless)
    assert np.array_equal(decode_gray(to_bytes(ds)), stretch(pixels))


def test_jpeg_whose_stream_is_larger_than_its_header_is_refused() -> None:
    gray8 = xray_like(64, 64, seed=8)
    frame = bytearray(jpeg_frame(gray8))
    sof = frame.index(b"\xff\xc0")
    frame[sof + 5:sof + 9] = struct.pack(">HH", 60000, 60000)  # 3.6 gigapixels in the stream
    start = time.perf_counter()
    message = refusal(encapsulated(make_dataset(np.zeros_like(gray8)), bytes(frame), uid.JPEGBaseline8Bit))
    assert "60000×60000" in message and time.perf_counter() - start < 1


def test_rle_bomb_is_refused_without_expanding() -> None:
    # Header plus a segment of repeat runs claiming 128 bytes each: ~64 MB from 1 MB.
    runs = b"\x81\x00" * 500_000
    frame = struct.pack("<16I", 1, 64, *([0] * 14)) + runs
    ds = make_dataset(np.zeros((64, 64), np.uint8))
    start = time.perf_counter()
    message = refusal(encapsulated(ds, frame, uid.RLELossless))
    assert "RLE" in message and time.perf_counter() - start < 2


def test_unsupported_compression_is_refused() -> None:
    ds = make_dataset(np.zeros((64, 64), np.uint8))
    message = refusal(encapsulated(ds, b"\x00\x00\x01\xb3" + b"\x00" * 100, uid.MPEG2MPML))
    assert "not supported" in message and "MPEG2" in message


def test_missing_decoder_is_a_clear_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    class Unavailable:
        is_available = False

    monkeypatch.setattr(dicom, "get_decoder", lambda syntax: Unavailable())
    gray8 = xray_like(64, 64)
    message = refusal(encapsulated(make_dataset(gray8), jpeg_frame(gray8), uid.JPEGBaseline8Bit))
    assert "no decoder" in message and "JPEG Baseline" in message


def test_damaged_jpeg_stream_is_refused() -> None:
    gray8 = xray_like(64, 64)
    frame = jpeg_frame(gray8)
    for damaged in (frame[:200] + bytes(300), frame[: len(frame) // 2], frame[:100]):
        assert "truncated" in refusal(encapsulated(make_dataset(gray8), damaged, uid.JPEGBaseline8Bit))
    assert "damaged" in refusal(encapsulated(make_dataset(gray8), b"\x00" * 50, uid.JPEGBaseline8Bit))


def test_deflated_syntax_is_refused_before_inflating() -> None:
    data = to_bytes(make_dataset(marked(), syntax=uid.DeflatedExplicitVRLittleEndian))
    assert "deflated" in refusal(data)


# --- study checks -------------------------------------------------------------------------------

@pytest.mark.parametrize("view", ["LL", "RL", "LATERAL", "lat", " Lateral "])
def test_lateral_views_refused(view: str) -> None:
    message = refusal(dicom_bytes(marked(), ViewPosition=view))
    assert "lateral" in message.lower()


@pytest.mark.parametrize("view", ["PA", "AP", ""])
def test_frontal_views_accepted(view: str) -> None:
    assert decode_gray(dicom_bytes(marked(), ViewPosition=view)).shape == (80, 72)


@pytest.mark.parametrize("part", ["KNEE", "abdomen", "SKULL", "HAND"])
def test_non_chest_body_parts_refused(part: str) -> None:
    message = refusal(dicom_bytes(marked(), BodyPartExamined=part))
    assert part.upper() in message and "chest" in message


@pytest.mark.parametrize("part", ["CHEST", "chest", "THORAX", "Lung", "CHEST_PA", ""])
def test_chest_body_parts_accepted(part: str) -> None:
    assert decode_gray(dicom_bytes(marked(), BodyPartExamined=part)).shape == (80, 72)


def test_hostile_text_in_attributes_is_not_echoed() -> None:
    ds = make_dataset(marked())
    ds.add_new(0x00180015, "CS", "<script>alert(1)</script>\x1b[2J")  # BodyPartExamined, invalid CS
    message = refusal(to_bytes(ds))
    assert all(ch.isprintable() for ch in message)
    assert not set("<>()/\x1b[") & set(message), message
    assert "not chest" in message


@pytest.mark.parametrize("modality", ["CT", "MR", "US"])
def test_non_radiograph_modalities_refused(modality: str) -> None:
    assert "radiograph" in refusal(dicom_bytes(marked(), Modality=modality))


# --- structural refusals ------------------------------------------------------------------------

def test_missing_pixel_data_refused() -> None:
    ds = make_dataset(marked())
    del ds.PixelData
    assert "no pixel data" in refusal(to_bytes(ds))


def test_multi_frame_refused() -> None:
    frames = np.stack([marked()] * 3)
    ds = make_dataset(marked(), NumberOfFrames=3)
    ds.PixelData = frames.tobytes()
    assert "multi-frame" in refusal(to_bytes(ds))


def test_enormous_dimensions_refused_before_decoding() -> None:
    ds = make_dataset(np.zeros((64, 64), np.uint16))
    ds.Rows, ds.Columns = 65535, 65535
    start = time.perf_counter()
    assert "outside the supported range" in refusal(to_bytes(ds))
    assert time.perf_counter() - start < 1


def test_one_pixel_dicom_refused() -> None:
    assert "too small" in refusal(dicom_bytes(np.full((1, 1), 7, np.uint16)))


def test_truncated_pixel_data_refused() -> None:
    data = dicom_bytes(marked())
    assert "truncated" in refusal(data[:-2000])


def test_palette_and_unknown_photometric_refused() -> None:
    assert "photometric" in refusal(dicom_bytes(marked(), photometric="PALETTE COLOR"))
    assert "photometric" in refusal(dicom_bytes(marked(), photometric="HSV"))


def test_preamble_with_junk_refused() -> None:
    refusal(bytes(128) + b"DICM" + bytes(range(256)) * 4)
    refusal(bytes(128) + b"DICM")


# --- privacy ------------------------------------------------------------------------------------

def test_patient_identifiers_never_reach_messages_warnings_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    ds = make_dataset(marked(), ViewPosition="LL")
    # Invalid values (over-long, bad characters) would make pydicom's validation quote them.
    ds.add_new(0x00100010, "PN", "Doe^Jane^" + "X" * 80 + "\x07")
    ds.add_new(0x00100020, "LO", "MRN-4711-0815" * 10)
    ds.add_new(0x00100030, "DA", "20190304-bad")
    good = make_dataset(marked())
    good.add_new(0x00100010, "PN", "Doe^Jane^" + "X" * 80)
    caplog.set_level(logging.DEBUG)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        refusal(to_bytes(ds))
        decode_gray(to_bytes(good))
    texts = [str(w.message) for w in caught] + [r.getMessage() for r in caplog.records]
    assert not [t for t in texts if any(secret in t for secret in SECRETS)]

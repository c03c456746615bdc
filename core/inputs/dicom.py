"""Reading DICOM radiographs into the same 8-bit grayscale arrays that JPEGs give.

A DICOM file is turned into what a radiologist's viewer would show: stored values go
through the Modality LUT (rescale slope/intercept), then the VOI LUT or window
centre/width the modality chose, MONOCHROME1 is inverted so bone is bright, and the
result is scaled to 0-255. Everything a hostile or unsuitable file could exploit is
checked from the header before a pixel is decoded: size, frame count, compression and
the compressed stream's own dimensions. Lateral views and non-chest studies are refused.

Patient-identifying attributes (name, ID, birth date, ...) are never read here, and no
reason text ever quotes a value from the file beyond a sanitised code such as a body part.
"""

from __future__ import annotations

import io
import re
import struct
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from itertools import pairwise

import numpy as np
import pydicom
import pydicom.config
from PIL import Image
from pydicom import uid
from pydicom.dataset import Dataset
from pydicom.encaps import get_frame
from pydicom.errors import InvalidDicomError
from pydicom.filereader import _read_file_meta_info, read_preamble
from pydicom.multival import MultiValue
from pydicom.pixels import apply_modality_lut, apply_voi, apply_windowing, get_decoder

from core.errors import ImageError
from core.inputs.limits import check_dimensions

LATERAL_VIEWS = frozenset({"LL", "RL", "LAT", "LATERAL", "LEFT LATERAL", "RIGHT LATERAL"})
# BodyPartExamined is free-ish text in practice ("CHEST", "THORAX", "CHEST_PA", "TORAX" ...):
# a value passes when it contains one of these stems.
CHEST_STEMS = ("CHEST", "THORA", "LUNG", "TORAX", "TORAC")
# Cross-sectional and other non-projection modalities: their images are not chest radiographs.
NON_RADIOGRAPH_MODALITIES = frozenset({"CT", "MR", "PT", "NM", "US", "MG", "OP", "OPT", "SM", "IVUS", "OCT"})
NATIVE_SYNTAXES = frozenset({uid.ExplicitVRLittleEndian, uid.ImplicitVRLittleEndian, uid.ExplicitVRBigEndian})
JPEG_SYNTAXES = frozenset(uid.JPEGTransferSyntaxes) | frozenset(uid.JPEGLSTransferSyntaxes)
J2K_SYNTAXES = frozenset(uid.JPEG2000TransferSyntaxes)
RLE_SYNTAXES = frozenset(uid.RLETransferSyntaxes)
BLOCK_PIXELS = 1 << 21  # pixels converted at a time

# Values we never display need no validation, and pydicom's validation warnings quote the
# offending value, which could be a patient's name: keep them out of warnings and logs.
pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence pydicom's warnings: they are not actionable for a user and may quote file contents."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with np.errstate(all="ignore"):
            yield


def _code(value: object, limit: int = 16) -> str:
    """A DICOM code string reduced to characters that are safe to show in a reason."""
    return re.sub(r"[^A-Z0-9 _-]", "", str(value).upper())[:limit].strip()


def _text(ds: Dataset, keyword: str) -> str:
    """First value of a text attribute, upper-cased and stripped; "" when absent or unreadable."""
    try:
        value = ds.get(keyword)
    except Exception:  # noqa: BLE001 - a malformed optional attribute counts as absent
        return ""
    if isinstance(value, (MultiValue, list, tuple)):
        value = value[0] if len(value) else ""
    return "" if value is None else str(value).strip().upper()


def _int(ds: Dataset, keyword: str, default: int | None = None) -> int:
    """An integer attribute; raises ``ImageError`` when it is missing or malformed."""
    try:
        value = ds.get(keyword, default)
        if isinstance(value, (MultiValue, list, tuple)):
            value = value[0]
        if value is None or value == "":
            raise ValueError
        return int(value)
    except Exception:  # noqa: BLE001 - malformed numbers raise many types
        raise ImageError(f"DICOM attribute {keyword} is missing or invalid") from None


def _read(data: bytes) -> Dataset:
    """Parse the file meta first (Deflated datasets are inflated without limit), then the dataset."""
    try:
        with _quiet():
            stream = io.BytesIO(data)
            read_preamble(stream, False)
            meta = _read_file_meta_info(stream)
            syntax = meta.get("TransferSyntaxUID")
            if syntax == uid.DeflatedExplicitVRLittleEndian:
                raise ImageError("deflated DICOM files are not supported; export the image uncompressed")
            return pydicom.dcmread(io.BytesIO(data), force=False)
    except ImageError:
        raise
    except MemoryError:
        raise ImageError("DICOM file is too large to read in memory") from None
    except InvalidDicomError:
        raise ImageError("not a valid DICOM file") from None
    except Exception as exc:  # noqa: BLE001 - malformed headers raise many types; never quote them
        raise ImageError(f"corrupt DICOM header ({type(exc).__name__})") from None


def _check_study(ds: Dataset) -> None:
    """Refuse lateral views, non-chest body parts and non-radiograph modalities."""
    view = _text(ds, "ViewPosition")
    if view in LATERAL_VIEWS:
        raise ImageError(f"lateral view ({_code(view)}) is not supported; the model reads frontal (PA/AP) chest films")
    body = _text(ds, "BodyPartExamined")
    if body and not any(stem in body for stem in CHEST_STEMS):
        shown = _code(body) or "not chest"
        raise ImageError(f"body part is {shown}, not chest; only chest radiographs can be scored")
    modality = _text(ds, "Modality")
    if modality in NON_RADIOGRAPH_MODALITIES:
        raise ImageError(f"modality {_code(modality)} is not a radiograph; only chest X-rays can be scored")


def _check_geometry(ds: Dataset) -> tuple[int, int, int]:
    """Check frames, size and sample layout from the header; returns (rows, columns, samples)."""
    if "PixelData" not in ds:
        raise ImageError("DICOM file holds no image (no pixel data); it may be a report or a series index")
    frames = _int(ds, "NumberOfFrames", 1)
    if frames != 1:
        raise ImageError(f"multi-frame DICOM ({frames} frames) is not supported; export a single image")
    rows, columns = _int(ds, "Rows"), _int(ds, "Columns")
    check_dimensions(columns, rows)
    samples = _int(ds, "SamplesPerPixel", 1)
    bits = _int(ds, "BitsAllocated")
    photometric = _text(ds, "PhotometricInterpretation")
    if samples == 1:
        if photometric not in ("MONOCHROME1", "MONOCHROME2"):
            shown = _code(photometric) or "missing"
            raise ImageError(f"unsupported DICOM photometric interpretation ({shown})")
    elif samples == 3:
        if bits != 8 or photometric == "PALETTE COLOR":
            raise ImageError("colour DICOM images are supported only with 8 bits per sample")
    else:
        raise ImageError(f"unsupported DICOM samples per pixel ({samples})")
    if bits not in (1, 8, 16, 32):
        raise ImageError(f"unsupported DICOM bits allocated ({bits})")
    return rows, columns, samples


def _syntax_name(syntax: uid.UID) -> str:
    """A printable transfer syntax name; an unknown UID is shown as its digits and dots only."""
    if syntax.is_transfer_syntax:
        return re.sub(r"[^A-Za-z0-9 .,()\[\]/-]", "", syntax.name)[:80]
    return re.sub(r"[^0-9.]", "", str(syntax))[:64] or "unknown"


def _jpeg_header(frame: bytes) -> tuple[int, int, int] | None:
    """(rows, columns, components) from a JPEG or JPEG-LS start-of-frame marker."""
    if frame[:2] != b"\xff\xd8":
        return None
    pos = 2
    while pos + 4 <= len(frame):
        if frame[pos] != 0xFF:
            return None
        marker = frame[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if (0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC)) or marker == 0xF7:
            if pos + 10 > len(frame):
                return None
            rows, columns = struct.unpack(">HH", frame[pos + 5:pos + 9])
            return rows, columns, frame[pos + 9]
        if 0xD0 <= marker <= 0xD9 or marker == 0x01:  # markers without a length
            pos += 2
            continue
        length = struct.unpack(">H", frame[pos + 2:pos + 4])[0]
        if length < 2:
            return None
        pos += 2 + length
    return None


def _j2k_header(frame: bytes) -> tuple[int, int, int] | None:
    """(rows, columns, components) from a JPEG 2000 SIZ marker (raw codestream or JP2 file)."""
    start = frame.find(b"\xff\x4f\xff\x51")
    siz = frame[start + 4:start + 42] if start >= 0 else b""
    if len(siz) < 38:
        return None
    xsiz, ysiz, x_offset, y_offset = struct.unpack(">IIII", siz[4:20])
    components = struct.unpack(">H", siz[36:38])[0]
    return ysiz - y_offset, xsiz - x_offset, components


def _rle_fits(frame: bytes, segment_bytes: int) -> bool:
    """True when every RLE segment expands to about ``segment_bytes``, checked without expanding it.

    A few bytes of RLE can claim gigabytes; walking the run headers costs one step per run.
    """
    if len(frame) < 64:
        return False
    header = struct.unpack("<16I", frame[:64])
    count = header[0]
    if not 1 <= count <= 15:
        return False
    offsets = [*header[1:count + 1], len(frame)]
    limit = segment_bytes + 128  # one run of tolerated padding
    for start, end in pairwise(offsets):
        if not 64 <= start <= end <= len(frame):
            return False
        produced, pos = 0, start
        while pos < end and produced <= limit:
            control = frame[pos]
            if control < 128:  # literal run of control + 1 bytes
                produced += control + 1
                pos += control + 2
            elif control > 128:  # one byte repeated 257 - control times
                produced += 257 - control
                pos += 2
            else:
                pos += 1
        if produced > limit:
            return False
    return True


def _check_compression(ds: Dataset, rows: int, columns: int, samples: int) -> None:
    """Refuse encodings that cannot be decoded here, and compressed streams bigger than the header says."""
    syntax = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    if syntax is None:
        raise ImageError("DICOM file does not state its transfer syntax")
    syntax = uid.UID(str(syntax))
    bits = _int(ds, "BitsAllocated")
    if syntax in NATIVE_SYNTAXES:
        expected = (rows * columns * samples * bits + 7) // 8
        if len(ds.PixelData) < expected:
            raise ImageError("DICOM pixel data is truncated")
        return
    if syntax not in JPEG_SYNTAXES | J2K_SYNTAXES | RLE_SYNTAXES:
        raise ImageError(f"DICOM compression '{_syntax_name(syntax)}' is not supported")
    try:
        available = get_decoder(syntax).is_available
    except NotImplementedError:
        available = False
    if not available:
        raise ImageError(f"no decoder is installed for DICOM compression '{_syntax_name(syntax)}'")
    try:
        frame = get_frame(ds.PixelData, 0, number_of_frames=1)
    except Exception:  # noqa: BLE001 - broken encapsulation raises many types
        raise ImageError("DICOM compressed pixel data is damaged") from None
    if syntax in RLE_SYNTAXES:
        if not _rle_fits(frame, rows * columns):
            raise ImageError("DICOM RLE data does not match the image size (damaged or a decompression bomb)")
        return
    header = _jpeg_header(frame) if syntax in JPEG_SYNTAXES else _j2k_header(frame)
    if header is None:
        raise ImageError("DICOM compressed pixel data is damaged")
    # JPEG and JPEG 2000 streams end with an FFD9 marker. Some decoders silently return a
    # partly black image for a cut-off stream, so a missing end marker is refused here.
    if b"\xff\xd9" not in frame.rstrip(b"\x00")[-16:]:
        raise ImageError("DICOM compressed pixel data is truncated")
    if header[:2] != (rows, columns) or header[2] != samples:
        raise ImageError(f"DICOM compressed image is {header[1]}×{header[0]}, but its header says {columns}×{rows}")


VoiFunction = Callable[[np.ndarray], np.ndarray]


def _voi(ds: Dataset) -> tuple[VoiFunction, float, float] | None:
    """The VOI LUT or window as a function with its output range; None if absent or unusable.

    The output range is what a viewer maps to black and white, so a window keeps its
    brightness instead of being re-stretched to the data. Each candidate is tried on a
    probe first, so a broken LUT or a zero window width falls back instead of failing.
    """
    if ds.get("VOILUTSequence"):
        try:
            entries, first_map = (int(v) for v in ds.VOILUTSequence[0].LUTDescriptor[:2])
            domain = np.arange(first_map, first_map + (entries or 65536), dtype=np.int64)
            lut = apply_voi(domain, ds)

            def through_lut(values: np.ndarray) -> np.ndarray:
                # Clamp to the LUT's domain first: pydicom's index arithmetic wraps values far outside it.
                return apply_voi(np.clip(np.rint(values), domain[0], domain[-1]).astype(np.int64), ds)

            return through_lut, float(lut.min()), float(lut.max())
        except Exception:  # noqa: BLE001 - a broken LUT falls back to the window or the plain range
            pass
    if "WindowCenter" in ds and "WindowWidth" in ds:
        try:
            limits = apply_windowing(np.array([-1e300, 1e300]), ds)
            return (lambda values: apply_windowing(values, ds)), float(limits.min()), float(limits.max())
        except Exception:  # noqa: BLE001 - e.g. a zero window width
            pass
    return None


def _row_blocks(pixels: np.ndarray) -> Iterator[slice]:
    """Row slices of about ``BLOCK_PIXELS`` pixels: LUTs work in float64, so whole-image temporaries
    of a large detector image would take gigabytes."""
    step = max(1, BLOCK_PIXELS // max(1, pixels.shape[1]))
    for start in range(0, pixels.shape[0], step):
        yield slice(start, start + step)


def _to_gray8(ds: Dataset, pixels: np.ndarray) -> np.ndarray:
    """Modality LUT, VOI, MONOCHROME1 inversion and scaling to 0-255."""
    if pixels.ndim == 3:  # colour: pydicom has converted YBR to RGB already
        return np.asarray(Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8), mode="RGB").convert("L"))
    voi = _voi(ds)
    if voi is not None:
        function, lo, hi = voi
    else:
        function = None
        if pixels.dtype == np.uint8 and _int(ds, "BitsStored", 8) <= 8:
            # 8-bit data is shown as stored, like a JPEG of the same film: map 0..255 through
            # the modality rescale rather than stretching this image's own range.
            lo, hi = sorted(float(v) for v in apply_modality_lut(np.array([0, 255], np.uint8), ds))
        else:
            # Detector data rarely fills its 12/16 bits: stretch what is there, as for 16-bit PNGs.
            ranges = [(float(np.nanmin(v)), float(np.nanmax(v)))
                      for v in (apply_modality_lut(pixels[rows], ds) for rows in _row_blocks(pixels))]
            lo, hi = min(r[0] for r in ranges), max(r[1] for r in ranges)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ImageError("DICOM rescale or window values are invalid")
    scale = 255.0 / (hi - lo) if hi > lo else 0.0
    gray = np.empty(pixels.shape, np.uint8)
    for rows in _row_blocks(pixels):
        values = apply_modality_lut(pixels[rows], ds)
        block = np.array(function(values) if function else values, dtype=np.float64)
        block -= lo
        block *= scale
        block += 0.5
        np.nan_to_num(block, copy=False, nan=0.0)
        np.clip(block, 0, 255, out=block)
        gray[rows] = block
    inverse = _text(ds, "PhotometricInterpretation") == "MONOCHROME1"
    if _text(ds, "PresentationLUTShape") == "INVERSE":
        inverse = not inverse
    return 255 - gray if inverse else gray


def decode_dicom(data: bytes) -> np.ndarray:
    """Decode a single-frame chest radiograph in DICOM into an ``(H, W)`` uint8 array.

    Raises ``ImageError`` with a one-line reason for anything unusable.
    """
    try:
        ds = _read(data)
        _check_study(ds)
        rows, columns, samples = _check_geometry(ds)
        _check_compression(ds, rows, columns, samples)
        with _quiet():
            pixels = ds.pixel_array
            if pixels.shape[:2] != (rows, columns):
                raise ImageError("DICOM pixel data does not match its stated size")
            return np.ascontiguousarray(_to_gray8(ds, pixels))
    except ImageError:
        raise
    except MemoryError:
        raise ImageError("DICOM image is too large to decode in memory") from None
    except Exception as exc:  # noqa: BLE001 - decoders raise many types; never quote their messages
        raise ImageError(f"corrupt DICOM pixel data ({type(exc).__name__})") from None

"""DICOM files built in memory with pydicom, for the input and hostile-file tests."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from pydicom import uid
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.encaps import encapsulate

from helpers import encode

PATIENT = {"PatientName": "Doe^Jane", "PatientID": "MRN-4711-0815", "PatientBirthDate": "20190304"}
SECRETS = ("Doe", "Jane", "4711", "0815", "20190304")



def make_dataset(pixels: np.ndarray, *, photometric: str | None = None, bits_stored: int | None = None,
                 signed: bool = False, syntax: str = uid.ExplicitVRLittleEndian, **attrs: object) -> FileDataset:
    """A single-frame DX-like dataset holding ``pixels`` (H, W) or (H, W, 3) uncompressed."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = uid.DigitalXRayImageStorageForPresentation
    meta.MediaStorageSOPInstanceUID = uid.generate_uid()
    meta.TransferSyntaxUID = syntax
    ds = FileDataset(None, Dataset(), file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "DX"
    for key, value in PATIENT.items():
        setattr(ds, key, value)
    ds.Rows, ds.Columns = pixels.shape[:2]
    color = pixels.ndim == 3
    ds.SamplesPerPixel = 3 if color else 1
    if color:
        ds.PlanarConfiguration = 0
    ds.PhotometricInterpretation = photometric or ("RGB" if color else "MONOCHROME2")
    ds.BitsAllocated = pixels.dtype.itemsize * 8
    ds.BitsStored = bits_stored or ds.BitsAllocated
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if signed else 0
    ds.PixelData = np.ascontiguousarray(pixels).tobytes()
    for key, value in attrs.items():
        setattr(ds, key, value)
    return ds


def to_bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def dicom_bytes(pixels: np.ndarray, **kwargs: object) -> bytes:
    return to_bytes(make_dataset(pixels, **kwargs))


def stretch(values: np.ndarray) -> np.ndarray:
    values = values.astype(np.float64)
    lo, hi = values.min(), values.max()
    return np.clip((values - lo) * 255 / (hi - lo) + 0.5, 0, 255).astype(np.uint8)


def marked(height: int = 80, width: int = 72, high: int = 4000, low: int = 100) -> np.ndarray:
    """12-bit data in 16 bits: dark field with a bright block at the top-left corner."""
    pixels = np.full((height, width), low, np.uint16)
    pixels[:20, :16] = high
    pixels[40:, 36:] = (low + high) // 2
    return pixels


def encapsulated(ds: FileDataset, frame: bytes, syntax: str) -> bytes:
    ds.PixelData = encapsulate([frame])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = syntax
    return to_bytes(ds)


def jpeg_frame(gray: np.ndarray, quality: int = 95) -> bytes:
    return encode(Image.fromarray(gray, mode="L"), "JPEG", quality=quality)

"""The one list of accepted formats, and sniffing a file's kind from its first bytes.

The CLI's folder search, the upload widgets, the decoders and the error messages all read
their lists from here, so they cannot disagree.
"""

from __future__ import annotations

# Pillow format names of the raster images we decode (DICOM has its own reader).
RASTER_FORMATS = ("JPEG", "PNG", "TIFF", "BMP", "WEBP")
# File extensions offered by the upload widgets and searched for in folders.
IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "tif", "tiff", "bmp", "webp", "dcm")
ARCHIVE_EXTENSIONS = ("zip",)
# Said to users when a file is not one of them.
FORMATS_SENTENCE = "JPEG, PNG, TIFF, BMP, WebP or DICOM"

DICOM_PREFIX_OFFSET = 128  # DICOM Part 10 files carry 'DICM' after a 128-byte preamble.
DICOM_PREFIX = b"DICM"
ZIP_MAGIC = b"PK\x03\x04"
# Archive formats we recognise in order to refuse them inside a ZIP (nested archives).
ARCHIVE_MAGIC = (ZIP_MAGIC, b"\x1f\x8b", b"7z\xbc\xaf", b"Rar!", b"BZh", b"\xfd7zXZ")
ARCHIVE_SUFFIXES = {".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar"}


def is_dicom(data: bytes) -> bool:
    """True when ``data`` is a DICOM Part 10 file ('DICM' after the 128-byte preamble).

    ``pydicom.dcmread(force=False)`` accepts exactly these files, so no other sniffing is
    needed; headerless datasets would need ``force=True``, which accepts any junk.
    """
    return bytes(data[DICOM_PREFIX_OFFSET:DICOM_PREFIX_OFFSET + 4]) == DICOM_PREFIX


def is_zip(data: bytes) -> bool:
    """True when ``data`` starts like a ZIP archive."""
    return bytes(data[:4]) == ZIP_MAGIC


def folder_suffixes() -> set[str]:
    """Suffixes (with the dot, lower case) worth opening when a folder is searched; '' = no extension."""
    return {f".{ext}" for ext in (*IMAGE_EXTENSIONS, *ARCHIVE_EXTENSIONS)} | {""}

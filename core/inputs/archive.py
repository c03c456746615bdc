"""Reading ZIP archives of images in memory, safely.

Nothing is extracted to disk. Members are read one at a time with a hard cap on each,
so a ZIP bomb or a lying header cannot exhaust memory; nested archives are not opened;
names are cleaned for display (no path traversal components).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import PurePosixPath

from core.errors import ImageError
from core.inputs.formats import ARCHIVE_MAGIC, ARCHIVE_SUFFIXES
from core.inputs.limits import MAX_FILE_BYTES

MAX_MEMBERS = 5000


def clean_name(name: str) -> str:
    """A display name for an archive member: no absolute path, no '..', no control characters."""
    parts = [p for p in PurePosixPath(name.replace("\\", "/")).parts if p not in ("/", "..", ".")]
    text = "/".join(parts) or "(unnamed)"
    return "".join(ch if ch.isprintable() else "?" for ch in text)[:255]


def is_clutter(name: str) -> bool:
    """Operating-system clutter that is not a case (macOS resource forks, thumbnails DBs)."""
    path = PurePosixPath(name)
    return (
        "__MACOSX" in path.parts
        or path.name.startswith("._")
        or path.name in (".DS_Store", "Thumbs.db", "desktop.ini")
    )


def iter_zip_images(
    data: bytes, archive_name: str | None = "archive.zip"
) -> Iterator[tuple[str, bytes | ImageError]]:
    """Yield ``(display name, bytes or ImageError)`` for each file in a ZIP archive.

    Names are ``<archive_name>/<member path>``, or the member path alone when
    ``archive_name`` is ``None``.

    Refused members come back as an ``ImageError`` carrying the reason, so a batch can
    list them as failed instead of dropping them. Raises ``ImageError`` if ``data`` is not
    a readable ZIP archive at all.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        raise ImageError("not a readable ZIP archive") from None
    prefix = f"{clean_name(archive_name)}/" if archive_name is not None else ""
    files = [i for i in infos if not i.is_dir() and not is_clutter(i.filename)]
    with archive:
        for count, info in enumerate(files):
            name = f"{prefix}{clean_name(info.filename)}"
            if count >= MAX_MEMBERS:
                yield (f"{prefix}…", ImageError(
                    f"archive holds {len(files)} files; only the first {MAX_MEMBERS} were opened"))
                return
            yield name, read_member(archive, info)


def read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes | ImageError:
    if info.flag_bits & 0x1:
        return ImageError("encrypted archive member; cannot be read")
    if PurePosixPath(info.filename).suffix.lower() in ARCHIVE_SUFFIXES:
        return ImageError("nested archives are not opened; unpack it and upload the images")
    if info.file_size > MAX_FILE_BYTES:
        return ImageError(f"archive member is too large ({info.file_size / 2**20:.0f} MB uncompressed)")
    try:
        with archive.open(info) as handle:
            # Read at most one byte past the limit: the header's size may lie.
            payload = handle.read(MAX_FILE_BYTES + 1)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, RuntimeError) as exc:
        return ImageError(f"damaged archive member ({type(exc).__name__})")
    if len(payload) > MAX_FILE_BYTES:
        return ImageError("archive member expands beyond the size limit (possible ZIP bomb)")
    if payload.startswith(ARCHIVE_MAGIC):
        return ImageError("nested archives are not opened; unpack it and upload the images")
    return payload

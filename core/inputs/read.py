"""Reading an input's bytes from a path or from memory, bounded in size."""

from __future__ import annotations

from pathlib import Path

from core.errors import ImageError
from core.inputs.limits import MAX_FILE_BYTES

Source = str | Path | bytes | bytearray | memoryview


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

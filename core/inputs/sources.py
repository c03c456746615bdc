"""One producer of ``(name, source)`` items for everything that scores many files.

The CLI (paths and folders), the batch worklist (uploads) and archive-scale scoring all
turn their inputs into the same stream: one item per image, a ZIP archive opened in
memory into one item per member, and anything that cannot even be listed as an
``ImageError`` item so it gets its own row instead of vanishing.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from core.errors import ImageError
from core.inputs.archive import clean_name, iter_zip_images
from core.inputs.formats import folder_suffixes, is_zip
from core.inputs.read import Source, read_bytes

Item = tuple[str, Source | ImageError]


def collect_files(paths: Iterable[str]) -> list[str]:
    """Expand command-line paths into the files to score, in a stable order.

    Files named explicitly are always kept (a bad one gets an error row). Folders are
    searched recursively for image-like files; hidden files are skipped. A path that
    does not exist is kept too, so it is reported rather than silently dropped.
    """
    suffixes = folder_suffixes()
    files: list[str] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for root, dirs, names in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(names):
                    if not name.startswith(".") and Path(name).suffix.lower() in suffixes:
                        files.append(str(Path(root) / name))
        else:
            files.append(raw)
    return files


def iter_path_sources(files: Iterable[str]) -> Iterator[Item]:
    """``(path, path)`` per file; a ZIP archive becomes ``(path/member, bytes)`` per member."""
    for path in files:
        if not path.lower().endswith(".zip"):
            yield path, path
            continue
        try:
            data = read_bytes(path)
            if not is_zip(data):
                raise ImageError("not a readable ZIP archive")
            for name, member in iter_zip_images(data, archive_name=None):
                yield f"{path}/{name}", member
        except ImageError as exc:
            yield path, exc


def iter_upload_sources(files: Iterable[tuple[str, bytes]]) -> Iterator[Item]:
    """``(name, bytes or ImageError)`` per uploaded image: plain files as they are, ZIP archives opened.

    An archive that cannot be opened, or holds no files, becomes one failed item under
    its own name, so it is never silently missing from a worklist.
    """
    for name, data in files:
        name = clean_name(name)
        if not is_zip(data):
            yield name, data
            continue
        members = 0
        try:
            for member in iter_zip_images(data, name):
                members += 1
                yield member
        except ImageError as exc:
            yield name, exc
            continue
        if not members:
            yield name, ImageError("the archive holds no files")

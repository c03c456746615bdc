"""Reading a site's labelled local set: each image with its label and, when known, its patient.

Two layouts are understood, in folders, ZIP archives or uploads:

- the dataset's own: images below ``NORMAL/`` and ``PNEUMONIA/`` folders at any depth (the
  label is the nearest such folder in the image's path, in any letter case);
- images plus a ``labels.csv`` with the columns ``file,label[,patient]``, the file matched by
  its path (relative to any folder above it) or its base name.

An image with no label is listed as skipped with the reason, never silently dropped. Patient
ids come from the ``patient`` column, else from the dataset's file-naming rule when every image
follows it (``person12_bacteria_3.jpeg``, ``IM-0115-0001.jpeg``), else they are unknown and each
image counts as its own patient.

Reading only: scoring the images is :mod:`core.apps.site_calibration` (``core.scoring`` imports
this package, so importing it back here would make a cycle).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import NamedTuple

from core.errors import ImageError
from core.inputs.archive import clean_name, iter_zip_images
from core.inputs.formats import is_zip
from core.inputs.read import Source, read_bytes
from core.inputs.sources import collect_files

LABELS = ("NORMAL", "PNEUMONIA")  # index = the label's number (0 NORMAL, 1 PNEUMONIA)
LABELS_FILE = "labels.csv"
MAX_LABELS_BYTES = 20 * 2**20
NO_LABEL = "no label: not below a NORMAL/ or PNEUMONIA/ folder and not listed in labels.csv"
# The dataset's file names: the same rule as training.data.parse_filename (core cannot import training).
_PERSON = re.compile(r"^person(\d+)_(bacteria|virus)_", re.IGNORECASE)
_NORMAL = re.compile(r"^(?:(NORMAL\d*)-)?IM-(\d+)-", re.IGNORECASE)
_LABEL_WORDS = {"normal": 0, "0": 0, "pneumonia": 1, "1": 1}


class LabelledItem(NamedTuple):
    """One labelled image: display name, source (path, bytes, or the error that stopped reading it)."""

    name: str
    source: Source | ImageError
    label: int  # 0 NORMAL, 1 PNEUMONIA
    patient: str | None


class Skipped(NamedTuple):
    """An input left out, by name, with the reason in one line."""

    name: str
    reason: str


@dataclass(frozen=True)
class LabelledSet:
    """The labelled images, those skipped for want of a label, and labels.csv rows that matched nothing."""

    items: tuple[LabelledItem, ...]
    skipped: tuple[Skipped, ...]
    unmatched_labels: int = 0
    patients_from: str = "unknown"  # "labels.csv", "file names" or "unknown"

    def count(self, label: int) -> int:
        """How many items carry ``label``."""
        return sum(item.label == label for item in self.items)


class _Row(NamedTuple):
    label: int | None  # None: the csv gives a label that is neither NORMAL nor PNEUMONIA
    text: str
    patient: str | None


def _key(path: str) -> str:
    """A labels.csv path or an image name, normalised for matching (slashes, case, ./ and leading /)."""
    parts = [p for p in PurePosixPath(path.strip().replace("\\", "/")).parts if p not in ("/", ".")]
    return "/".join(parts).lower()


def parse_labels(data: bytes, source: str = LABELS_FILE) -> dict[str, _Row]:
    """``labels.csv`` rows by normalised file path; ValueError (naming ``source``) when unusable."""
    if len(data) > MAX_LABELS_BYTES:
        raise ValueError(f"{source} is too large ({len(data) / 2**20:.0f} MB)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError(f"{source} is not UTF-8 text") from None
    reader = csv.reader(io.StringIO(text))
    header = [h.strip().lower() for h in next(reader, [])]
    if "file" not in header or "label" not in header:
        raise ValueError(f"{source} needs a header with the columns file,label (and optionally patient)")
    col_file, col_label = header.index("file"), header.index("label")
    col_patient = header.index("patient") if "patient" in header else None
    rows: dict[str, _Row] = {}
    for line, record in enumerate(reader, start=2):
        if not any(cell.strip() for cell in record):
            continue
        if len(record) <= max(col_file, col_label):
            raise ValueError(f"{source} line {line}: expected the columns {', '.join(header)}")
        key, label_text = _key(record[col_file]), record[col_label].strip()
        if not key:
            raise ValueError(f"{source} line {line}: empty file name")
        patient = record[col_patient].strip() if col_patient is not None and len(record) > col_patient else ""
        row = _Row(_LABEL_WORDS.get(label_text.lower()), label_text, patient or None)
        if key in rows and rows[key][:2] != row[:2]:
            raise ValueError(f"{source} line {line}: {record[col_file].strip()} is listed twice with different labels")
        rows[key] = row
    return rows


def folder_label(name: str) -> int | None:
    """The label given by the nearest ``NORMAL``/``PNEUMONIA`` folder in ``name``'s path, if any."""
    for part in reversed(PurePosixPath(name.replace("\\", "/")).parts[:-1]):
        label = {"normal": 0, "pneumonia": 1}.get(part.lower())
        if label is not None:
            return label
    return None


def dataset_patient(name: str) -> str | None:
    """The patient id the dataset's naming rule gives a file name, or None when it does not follow it."""
    stem = PurePosixPath(name.replace("\\", "/")).stem
    person = _PERSON.match(stem)
    if person:
        return f"person{int(person.group(1))}"
    normal = _NORMAL.match(stem)
    if normal:
        prefix = f"{normal.group(1).upper()}-" if normal.group(1) else ""
        return f"{prefix}IM-{int(normal.group(2)):04d}"
    return None


def _match(rows: dict[str, _Row], name: str) -> _Row | None:
    """The row for ``name``: its longest trailing sub-path listed (so a base name matches too)."""
    parts = _key(name).split("/")
    for start in range(len(parts)):
        row = rows.get("/".join(parts[start:]))
        if row is not None:
            return row
    return None


def _is_labels_file(name: str) -> bool:
    return PurePosixPath(name.replace("\\", "/")).name.lower() == LABELS_FILE


def _merge(tables: list[tuple[str, dict[str, _Row]]]) -> dict[str, _Row]:
    merged: dict[str, _Row] = {}
    for source, rows in tables:
        for key, row in rows.items():
            if key in merged and merged[key][:2] != row[:2]:
                raise ValueError(f"{source} gives {key} a different label than another labels file")
            merged[key] = row
    return merged


def label_entries(
    entries: Iterable[tuple[str, Source | ImageError]],
    tables: list[tuple[str, dict[str, _Row]]] | None = None,
) -> LabelledSet:
    """Attach labels (and patients) to ``(name, source)`` entries from folders and ``labels.csv`` tables.

    A labels.csv entry wins over the folder only when they agree; a disagreement skips the image
    (a mislabelled case would bias the site's figures silently).
    """
    rows = _merge(tables or [])
    used: set[int] = set()
    labelled: list[tuple[str, Source | ImageError, int, str | None]] = []
    skipped: list[Skipped] = []
    for name, source in entries:
        row = _match(rows, name) if rows else None
        folder = folder_label(name)
        if row is not None:
            used.add(id(row))
            if row.label is None:
                skipped.append(Skipped(name, f"labels.csv gives the label {row.text!r}, not NORMAL or PNEUMONIA"))
                continue
            if folder is not None and folder != row.label:
                skipped.append(Skipped(name, f"labels.csv says {LABELS[row.label]} but the image is in a "
                                             f"{LABELS[folder]} folder"))
                continue
            labelled.append((name, source, row.label, row.patient))
        elif folder is not None:
            labelled.append((name, source, folder, None))
        else:
            skipped.append(Skipped(name, NO_LABEL))

    patients_from = "labels.csv" if any(p is not None for *_, p in labelled) else "unknown"
    if patients_from == "unknown" and labelled:
        # The dataset's naming rule, only when every image follows it: a few matching names in a
        # site's own export would otherwise merge unrelated children into one "patient".
        parsed = [dataset_patient(name) for name, *_ in labelled]
        if all(parsed):
            labelled = [(n, s, y, p) for (n, s, y, _), p in zip(labelled, parsed, strict=True)]
            patients_from = "file names"
    unmatched = sum(id(row) not in used for row in rows.values())
    return LabelledSet(tuple(LabelledItem(*item) for item in labelled), tuple(skipped), unmatched, patients_from)


def _expand_archive(name: str, data: bytes, entries: list, tables: list) -> None:
    """Members of a ZIP held in memory, named ``name/member``; labels.csv members become tables."""
    try:
        for member, content in iter_zip_images(data, archive_name=None):
            full = f"{name}/{member}"
            if _is_labels_file(member) and not isinstance(content, ImageError):
                tables.append((full, parse_labels(content, full)))
            else:
                entries.append((full, content))
    except ImageError as exc:
        entries.append((name, exc))


def read_labelled(paths: Iterable[str], labels_file: str | None = None) -> LabelledSet:
    """A labelled set from command-line paths: folders (searched recursively), ZIP archives, images.

    A ``labels.csv`` inside a folder or archive is used automatically; ``labels_file`` adds
    another. Raises ValueError for an unusable labels file.
    """
    entries: list[tuple[str, Source | ImageError]] = []
    tables: list[tuple[str, dict[str, _Row]]] = []
    for raw in paths:
        root = Path(raw)
        if root.is_dir():
            for found in sorted(root.rglob("*")):
                hidden = any(part.startswith(".") for part in found.relative_to(root).parts)
                if not hidden and found.is_file() and _is_labels_file(found.name):
                    tables.append((str(found), parse_labels(_read_labels_file(found), str(found))))
        files = collect_files([raw])
        for path in files:
            if path.lower().endswith(".zip"):
                try:
                    data = read_bytes(path)
                    if not is_zip(data):
                        raise ImageError("not a readable ZIP archive")
                except ImageError as exc:
                    entries.append((path, exc))
                    continue
                _expand_archive(path, data, entries, tables)
            elif _is_labels_file(path):
                tables.append((path, parse_labels(_read_labels_file(Path(path)), path)))
            else:
                entries.append((path, path))
    if labels_file is not None:
        tables.append((labels_file, parse_labels(_read_labels_file(Path(labels_file)), labels_file)))
    return label_entries(entries, tables)


def _read_labels_file(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            return handle.read(MAX_LABELS_BYTES + 1)
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None


def read_labelled_upload(files: Iterable[tuple[str, bytes]]) -> LabelledSet:
    """A labelled set from uploads held in memory: ZIP archives (opened in memory), images, labels.csv."""
    entries: list[tuple[str, Source | ImageError]] = []
    tables: list[tuple[str, dict[str, _Row]]] = []
    for raw_name, data in files:
        name = clean_name(raw_name)
        if is_zip(data):
            _expand_archive(name, data, entries, tables)
        elif _is_labels_file(name):
            tables.append((name, parse_labels(data, name)))
        else:
            entries.append((name, data))
    return label_entries(entries, tables)

"""Dataset discovery, file-name parsing and patient-level splits.

The Kermany/Guangzhou pediatric chest X-ray dataset ships as
``<root>/{train,val,test}/{NORMAL,PNEUMONIA}/*.jpeg``. Several images can belong to
one child, so every split here is made by patient, never by image.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

LABELS = ("NORMAL", "PNEUMONIA")
IMAGE_SUFFIXES = {".jpeg", ".jpg", ".png"}
SPLITS = ("train", "val", "test")
MANIFEST_COLUMNS = ["file", "label", "subtype", "patient", "split"]

_PERSON = re.compile(r"^person(\d+)_(bacteria|virus)_", re.IGNORECASE)
_NORMAL = re.compile(r"^(?:(NORMAL\d*)-)?IM-(\d+)-", re.IGNORECASE)


@dataclass(frozen=True)
class ImageRecord:
    """One image of the dataset with what its path and name say about it."""

    file: str
    label: str
    subtype: str
    patient: str
    source_split: str


def parse_filename(name: str, label: str) -> tuple[str, str]:
    """Return ``(patient, subtype)`` parsed from a dataset file name.

    ``IM-0115-0001.jpeg`` is patient ``IM-0115``; ``NORMAL2-IM-0427-0001.jpeg`` is
    ``NORMAL2-IM-0427`` (a separate numbering); ``person1000_bacteria_2931.jpeg`` is
    ``person1000`` with subtype ``bacterial``. Names that follow no known pattern are
    their own patient, so they can never leak across splits with another image.
    """
    if label not in LABELS:
        raise ValueError(f"label must be one of {LABELS}, got {label!r}")
    stem = Path(name).stem
    person = _PERSON.match(stem)
    if person:
        kind = person.group(2).lower()
        return f"person{int(person.group(1))}", "bacterial" if kind == "bacteria" else "viral"
    normal = _NORMAL.match(stem)
    if normal:
        prefix = f"{normal.group(1).upper()}-" if normal.group(1) else ""
        patient = f"{prefix}IM-{int(normal.group(2)):04d}"
    else:
        patient = f"file:{stem}"
    subtype = "normal" if label == "NORMAL" else "unspecified"
    return patient, subtype


def discover(root: str | Path) -> list[ImageRecord]:
    """Find every labelled image under ``root/{train,val,test}/{NORMAL,PNEUMONIA}``.

    ``val`` and ``test`` are optional; suffixes are matched in any letter case.
    Raises ``ValueError`` when ``root`` holds no ``train`` images.
    """
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"dataset folder not found: {root}")
    records: list[ImageRecord] = []
    for split in SPLITS:
        for label in LABELS:
            folder = root / split / label
            if not folder.is_dir():
                continue
            for path in sorted(folder.iterdir()):
                if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
                    patient, subtype = parse_filename(path.name, label)
                    records.append(ImageRecord(str(path), label, subtype, patient, split))
    if not any(r.source_split == "train" for r in records):
        raise ValueError(f"no images found under {root}/train/{{NORMAL,PNEUMONIA}}")
    return records


def _carve(patients: pd.DataFrame, fractions: tuple[float, float], seed: int) -> dict[str, str]:
    """Assign each patient to train/val/test, stratified by (label, subtype)."""
    rng = np.random.default_rng(seed)
    assignment: dict[str, str] = {}
    for _, group in patients.groupby(["label", "subtype"], sort=True):
        ids = np.array(sorted(group["patient"]))
        rng.shuffle(ids)
        n_val = int(round(len(ids) * fractions[0]))
        n_test = int(round(len(ids) * fractions[1]))
        for i, pid in enumerate(ids):
            assignment[pid] = "val" if i < n_val else "test" if i < n_val + n_test else "train"
    return assignment


def make_splits(
    records: list[ImageRecord],
    seed: int = 1337,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
) -> pd.DataFrame:
    """Build the manifest (file, label, subtype, patient, split), split by patient.

    With an official ``test/`` folder it is kept as the test split and validation is
    carved from train by patient. Without it, validation and test are both carved from
    train (about 80/10/10 of patients). The official 16-image ``val/`` is too small to
    steer early stopping, so it is folded into training data. Patients that appear in
    more than one official folder are moved wholly to the most held-out one.
    """
    if not records:
        raise ValueError("no records to split")
    if not (0 < val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError("val_fraction and test_fraction must be in (0, 1) and sum below 1")
    frame = pd.DataFrame([r.__dict__ for r in records])
    has_test = (frame["source_split"] == "test").any()
    split = pd.Series("train", index=frame.index)
    if has_test:
        test_patients = set(frame.loc[frame["source_split"] == "test", "patient"])
        split[frame["patient"].isin(test_patients)] = "test"
    pool = frame[split == "train"]
    # A child's subtype can differ between images (bacterial and viral); stratify on the first.
    patients = pool.sort_values("file").groupby("patient", as_index=False).first()
    fractions = (val_fraction, 0.0 if has_test else test_fraction)
    assignment = _carve(patients, fractions, seed)
    carved = pool["patient"].map(assignment)
    split[carved.index] = carved
    frame["split"] = split
    frame = frame.sort_values(["split", "label", "file"]).reset_index(drop=True)
    return frame[MANIFEST_COLUMNS]


def check_no_patient_leak(manifest: pd.DataFrame) -> None:
    """Raise ``ValueError`` if any patient appears in more than one split."""
    per_patient = manifest.groupby("patient")["split"].nunique()
    leaked = per_patient[per_patient > 1]
    if not leaked.empty:
        raise ValueError(f"{len(leaked)} patients appear in more than one split, e.g. {leaked.index[0]}")


def summarise(manifest: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Images and patients per split and label, for metadata and the model card."""
    out: dict[str, dict[str, int]] = {}
    for split, group in manifest.groupby("split"):
        entry = {"images": int(len(group)), "patients": int(group["patient"].nunique())}
        for label in LABELS:
            sub = group[group["label"] == label]
            entry[f"images_{label.lower()}"] = int(len(sub))
            entry[f"patients_{label.lower()}"] = int(sub["patient"].nunique())
        out[str(split)] = entry
    return out


def subsample_patients(manifest: pd.DataFrame, fraction: float, seed: int = 0) -> pd.DataFrame:
    """Keep ``fraction`` of the training patients of each label (validation and test untouched)."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    rng = np.random.default_rng(seed)
    keep = []
    for _, group in manifest[manifest["split"] == "train"].groupby("label"):
        patients = np.array(sorted(group["patient"].unique()))
        chosen = rng.choice(patients, size=max(1, int(round(fraction * len(patients)))), replace=False)
        keep.append(group[group["patient"].isin(chosen)])
    return pd.concat([*keep, manifest[manifest["split"] != "train"]]).reset_index(drop=True)

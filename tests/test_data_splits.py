"""Dataset discovery, file-name parsing and patient-level splits."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from helpers import REAL_DATASET, REPO, synthetic_names
from training.data import (
    MANIFEST_COLUMNS,
    check_no_patient_leak,
    discover,
    make_splits,
    parse_filename,
    summarise,
)


@pytest.mark.parametrize(
    ("name", "label", "patient", "subtype"),
    [
        ("IM-0115-0001.jpeg", "NORMAL", "IM-0115", "normal"),
        ("NORMAL2-IM-0427-0001.jpeg", "NORMAL", "NORMAL2-IM-0427", "normal"),
        ("IM-0115-0001-0002.jpeg", "NORMAL", "IM-0115", "normal"),
        ("IM-0115-0001.JPG", "NORMAL", "IM-0115", "normal"),
        ("normal2-im-0427-0001.PNG", "NORMAL", "NORMAL2-IM-0427", "normal"),
        ("person1000_bacteria_2931.jpeg", "PNEUMONIA", "person1000", "bacterial"),
        ("person101_virus_187.jpeg", "PNEUMONIA", "person101", "viral"),
        ("person101_virus_187", "PNEUMONIA", "person101", "viral"),
        ("PERSON1000_BACTERIA_2931.JPG", "PNEUMONIA", "person1000", "bacterial"),
        ("person0101_virus_187.png", "PNEUMONIA", "person101", "viral"),
        ("train/PNEUMONIA/person7_bacteria_25.jpeg", "PNEUMONIA", "person7", "bacterial"),
    ],
)
def test_parse_filename(name: str, label: str, patient: str, subtype: str) -> None:
    assert parse_filename(name, label) == (patient, subtype)


def test_parse_unknown_names_are_their_own_patient() -> None:
    a, subtype = parse_filename("scan-a.jpeg", "PNEUMONIA")
    b, _ = parse_filename("scan-b.jpeg", "PNEUMONIA")
    assert a != b and subtype == "unspecified"
    assert parse_filename("IM-0115-0001.jpeg", "NORMAL")[0] != parse_filename("NORMAL2-IM-0115-0001.jpeg", "NORMAL")[0]


def test_parse_rejects_unknown_label() -> None:
    with pytest.raises(ValueError, match="label"):
        parse_filename("IM-0115-0001.jpeg", "COVID")


def test_discover_train_only(synthetic_dataset) -> None:
    root = synthetic_dataset(synthetic_names(3, 2, 1))
    (root / "train" / "NORMAL" / "notes.txt").write_text("not an image")
    (root / "train" / "NORMAL" / "IM-0900-0001.JPG").write_bytes(
        (root / "train" / "NORMAL" / "IM-0100-0001.jpeg").read_bytes())
    records = discover(root)
    assert len(records) == 3 * 2 + 3 * 2 + 1
    assert {r.source_split for r in records} == {"train"}
    assert not any(r.file.endswith(".txt") for r in records)
    assert any(r.file.endswith(".JPG") for r in records)
    by_name = {Path(r.file).name: r for r in records}
    assert by_name["person100_bacteria_1000.jpeg"].subtype == "bacterial"
    assert by_name["person102_virus_5000.jpeg"].label == "PNEUMONIA"
    assert by_name["IM-0101-0002.jpeg"].patient == "IM-0101"


def test_discover_all_official_splits(synthetic_dataset) -> None:
    names = synthetic_names(4, 2, 2)
    names["val/NORMAL"] = ["IM-0500-0001.jpeg"]
    names["val/PNEUMONIA"] = ["person500_bacteria_1.jpeg"]
    names["test/NORMAL"] = ["IM-0600-0001.jpeg", "IM-0600-0002.jpeg"]
    names["test/PNEUMONIA"] = ["person600_virus_1.jpeg"]
    records = discover(synthetic_dataset(names))
    assert {r.source_split for r in records} == {"train", "val", "test"}
    assert sum(r.source_split == "test" for r in records) == 3


def test_discover_without_train_raises(synthetic_dataset, tmp_path: Path) -> None:
    root = synthetic_dataset({"test/NORMAL": ["IM-0001-0001.jpeg"], "test/PNEUMONIA": ["person1_virus_1.jpeg"]})
    with pytest.raises(ValueError, match="train"):
        discover(root)
    with pytest.raises(ValueError):
        discover(tmp_path / "does-not-exist")


def test_official_test_kept_and_val_folded_into_train(synthetic_dataset) -> None:
    names = synthetic_names(20, 10, 10)
    names["val/NORMAL"] = ["IM-0500-0001.jpeg"]
    names["val/PNEUMONIA"] = ["person500_bacteria_1.jpeg"]
    # IM-0100 also has an image in the official test folder: the whole child must go to test.
    names["test/NORMAL"] = ["IM-0600-0001.jpeg", "IM-0100-0009.jpeg"]
    names["test/PNEUMONIA"] = ["person600_virus_1.jpeg"]
    manifest = make_splits(discover(synthetic_dataset(names)), seed=1)
    check_no_patient_leak(manifest)
    split_of = manifest.set_index(manifest["file"].map(lambda f: Path(f).name))["split"]
    assert split_of["IM-0600-0001.jpeg"] == "test"
    assert split_of["person600_virus_1.jpeg"] == "test"
    assert split_of["IM-0100-0001.jpeg"] == split_of["IM-0100-0002.jpeg"] == "test"
    # Official val images are ordinary training-pool data: they end up in train or our val.
    assert split_of["IM-0500-0001.jpeg"] in ("train", "val")
    # With an official test folder nothing else is carved into test.
    assert set(manifest.loc[manifest["split"] == "test", "patient"]) == {"IM-0600", "IM-0100", "person600"}
    assert (manifest["split"] == "val").any()


def test_no_patient_in_two_splits_synthetic(synthetic_dataset) -> None:
    names = synthetic_names(30, 15, 15, images_per_patient=3)
    # One child with both a bacterial and a viral image.
    names["train/PNEUMONIA"] += ["person777_bacteria_1.jpeg", "person777_virus_2.jpeg", "person777_virus_3.jpeg"]
    records = discover(synthetic_dataset(names))
    for seed in range(5):
        manifest = make_splits(records, seed=seed)
        check_no_patient_leak(manifest)
        assert manifest.groupby("patient")["split"].nunique().max() == 1
        mixed = manifest[manifest["patient"] == "person777"]
        assert len(mixed) == 3 and mixed["split"].nunique() == 1
        assert set(mixed["subtype"]) == {"bacterial", "viral"}


def test_check_no_patient_leak_detects_a_leak() -> None:
    manifest = pd.DataFrame({"file": ["a", "b"], "label": ["NORMAL"] * 2, "subtype": ["normal"] * 2,
                             "patient": ["IM-0001"] * 2, "split": ["train", "test"]})
    with pytest.raises(ValueError, match="more than one split"):
        check_no_patient_leak(manifest)


def _patient_counts(manifest: pd.DataFrame) -> pd.Series:
    return manifest.groupby("split")["patient"].nunique()


def test_proportions_and_stratification(synthetic_dataset) -> None:
    records = discover(synthetic_dataset(synthetic_names(100, 60, 40, images_per_patient=1), size=32))
    manifest = make_splits(records, seed=3)
    counts = _patient_counts(manifest)
    total = counts.sum()
    assert total == 200
    assert abs(counts["train"] / total - 0.8) <= 0.02
    assert abs(counts["val"] / total - 0.1) <= 0.02
    assert abs(counts["test"] / total - 0.1) <= 0.02
    # Every (label, subtype) stratum is represented in each split at about its share.
    first = manifest.sort_values("file").groupby("patient").first()
    for (_label, _subtype), group in first.groupby(["label", "subtype"]):
        n = len(group)
        for split, share in (("val", 0.1), ("test", 0.1)):
            assert abs((group["split"] == split).sum() - n * share) <= 1, (_subtype, split)


def test_splits_deterministic_under_seed(synthetic_dataset) -> None:
    records = discover(synthetic_dataset(synthetic_names(30, 15, 15), size=32))
    a = make_splits(records, seed=11)
    b = make_splits(list(reversed(records)), seed=11)
    pd.testing.assert_frame_equal(a, b)
    c = make_splits(records, seed=12)
    # Rows are sorted by split, so compare the file -> split assignment, not the column order.
    assert a.set_index("file")["split"].to_dict() != c.set_index("file")["split"].to_dict()


def test_manifest_columns_and_summary(synthetic_dataset) -> None:
    manifest = make_splits(discover(synthetic_dataset(synthetic_names(20, 10, 10), size=32)))
    assert list(manifest.columns) == MANIFEST_COLUMNS == ["file", "label", "subtype", "patient", "split"]
    assert set(manifest["split"]) == {"train", "val", "test"}
    assert set(manifest["label"]) == {"NORMAL", "PNEUMONIA"}
    summary = summarise(manifest)
    assert sum(s["images"] for s in summary.values()) == len(manifest)
    assert sum(s["patients"] for s in summary.values()) == manifest["patient"].nunique()
    for split, entry in summary.items():
        assert entry["images_normal"] + entry["images_pneumonia"] == entry["images"], split


@pytest.mark.parametrize(("val", "test"), [(0.0, 0.1), (1.0, 0.0), (0.5, 0.5), (0.1, -0.1)])
def test_make_splits_rejects_bad_fractions(synthetic_dataset, val: float, test: float) -> None:
    records = discover(synthetic_dataset(synthetic_names(2, 1, 1), size=32))
    with pytest.raises(ValueError):
        make_splits(records, val_fraction=val, test_fraction=test)
    with pytest.raises(ValueError):
        make_splits([])


@pytest.mark.skipif(not (REAL_DATASET / "train").is_dir(), reason="real dataset not available")
def test_real_dataset_split_has_no_leak() -> None:
    records = discover(REAL_DATASET)
    assert len(records) > 1000
    manifest = make_splits(records, seed=1337)
    check_no_patient_leak(manifest)
    counts = _patient_counts(manifest)
    assert abs(counts["train"] / counts.sum() - 0.8) <= 0.02
    assert abs(counts["test"] / counts.sum() - 0.1) <= 0.02
    # Children with both bacterial and viral images exist in the real data and stay together.
    subtypes = manifest[manifest["label"] == "PNEUMONIA"].groupby("patient")["subtype"].nunique()
    assert (subtypes > 1).any()


COMMITTED_MANIFEST = REPO / "models" / "split_manifest.csv"


@pytest.mark.skipif(not COMMITTED_MANIFEST.exists(), reason="no committed split manifest yet")
def test_committed_manifest_has_no_leak() -> None:
    manifest = pd.read_csv(COMMITTED_MANIFEST)
    assert list(manifest.columns) == MANIFEST_COLUMNS
    check_no_patient_leak(manifest)
    assert set(manifest["split"]) <= {"train", "val", "test"}
    assert not manifest["file"].str.startswith("/").any(), "manifest paths must be relative to the data root"
    # Patients re-derived from the file names must agree with the recorded ones.
    reparsed = [parse_filename(f, label)[0] for f, label in zip(manifest["file"], manifest["label"], strict=True)]
    assert reparsed == manifest["patient"].tolist()

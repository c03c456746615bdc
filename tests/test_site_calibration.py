"""Site calibration end to end: reading labelled sets, scoring them raw, ``calibrate`` and ``predict --profile``."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.apps.cli import main
from core.apps.site_calibration import LabelledScores, calibrate_scores, score_labelled, summary_lines
from core.calibration import Calibration, SiteProfile, build_profile
from core.calibration.labelled import (
    NO_LABEL,
    dataset_patient,
    folder_label,
    parse_labels,
    read_labelled,
    read_labelled_upload,
)
from core.gate import OodModel
from core.scoring import iter_outcomes
from core.scoring.predict import feature_model
from helpers import TINY_SIZE, encode, image_bytes, write_metadata

OPEN_GATE = {"min_std": 5.0, "max_flat_fraction": 0.3, "max_edge_density": 1.0,
             "max_ood_distance": 25.0}


def write_images(root: Path, names: list[str], seed: int = 0) -> list[Path]:
    paths = []
    for i, name in enumerate(names):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(image_bytes(150 + i % 7, 140 + i % 5, "PNG" if name.endswith(".png") else "JPEG",
                                     seed=seed + i))
        paths.append(path)
    return paths


def colour_photo() -> bytes:
    rng = np.random.default_rng(3)
    return encode(Image.fromarray(rng.integers(0, 256, (300, 280, 3), dtype=np.uint8)), "PNG")


def zip_bytes(members: dict[str, bytes | str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def labelled_tree(root: Path, normal: int = 6, pneumonia: int = 6) -> Path:
    write_images(root, [f"NORMAL/n{i}.jpeg" for i in range(normal)], seed=0)
    write_images(root, [f"PNEUMONIA/p{i}.jpeg" for i in range(pneumonia)], seed=100)
    return root


@pytest.fixture(scope="module")
def gated_model_path(tiny_model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model on disk with a "cannot assess" gate that accepts films and refuses colour photos."""
    from core.model import load_bundle, sha256_file

    folder = tmp_path_factory.mktemp("gated")
    path = folder / "gated.keras"
    shutil.copy(tiny_model_path, path)
    width = int(feature_model(load_bundle(tiny_model_path).model).outputs[0].shape[-1])
    ood = folder / "gated_ood.npz"
    OodModel(means=np.zeros((2, width)), precision=np.zeros((width, width))).save(ood)
    write_metadata(path, TINY_SIZE, threshold=0.5,
                   gate={"thresholds": OPEN_GATE, "ood_file": ood.name, "ood_sha256": sha256_file(ood)})
    return path


# --- reading labelled sets -----------------------------------------------------------------


def test_folder_labels_come_from_the_nearest_label_folder(tmp_path: Path) -> None:
    root = tmp_path / "site"
    write_images(root, ["NORMAL/a.jpeg", "pneumonia/deep/b.png", "NORMAL/PNEUMONIA/c.jpeg", "other/d.jpeg",
                        "normal.zip.d/e.jpeg"])
    labelled = read_labelled([str(root)])
    labels = {Path(item.name).name: item.label for item in labelled.items}
    assert labels == {"a.jpeg": 0, "b.png": 1, "c.jpeg": 1}
    assert {(Path(s.name).name, s.reason) for s in labelled.skipped} == {("d.jpeg", NO_LABEL), ("e.jpeg", NO_LABEL)}
    assert (labelled.count(0), labelled.count(1)) == (1, 2)
    assert folder_label("x/Normal/y.jpeg") == 0 and folder_label("NORMAL.jpeg") is None


def test_zip_on_disk_and_uploaded_zip_read_the_same(tmp_path: Path) -> None:
    data = zip_bytes({"export/NORMAL/x.png": image_bytes(fmt="PNG"), "export/PNEUMONIA/y.jpeg": image_bytes(seed=2),
                      "export/readme.txt": "notes", "__MACOSX/export/._y.jpeg": b"junk"})
    (tmp_path / "set.zip").write_bytes(data)
    from_disk = read_labelled([str(tmp_path / "set.zip")])
    uploaded = read_labelled_upload([("set.zip", data)])
    assert [(i.name, i.label) for i in uploaded.items] == [("set.zip/export/NORMAL/x.png", 0),
                                                           ("set.zip/export/PNEUMONIA/y.jpeg", 1)]
    assert [i.name for i in from_disk.items] == [f"{tmp_path / 'set.zip'}/export/NORMAL/x.png",
                                                 f"{tmp_path / 'set.zip'}/export/PNEUMONIA/y.jpeg"]
    assert all(isinstance(i.source, bytes) for i in uploaded.items)
    assert [s.name for s in uploaded.skipped] == ["set.zip/export/readme.txt"]


def test_labels_csv_by_relative_path_or_base_name_with_patients(tmp_path: Path) -> None:
    root = tmp_path / "cases"
    write_images(root, ["ward1/a.jpeg", "ward2/a.jpeg", "b.jpeg", "c.jpeg", "d.jpeg", "NORMAL/e.jpeg"])
    (root / "labels.csv").write_text(
        "File,Label,Patient\n"
        "ward1/a.jpeg,PNEUMONIA,p1\n"
        "./ward2/a.jpeg,normal,p2\n"
        "b.jpeg,1,p1\n"
        "c.jpeg,uncertain,p3\n"
        "e.jpeg,PNEUMONIA,p4\n"
        "missing.jpeg,NORMAL,p5\n"
        "\n"
    )
    labelled = read_labelled([str(root)])
    got = {Path(i.name).relative_to(root).as_posix(): (i.label, i.patient) for i in labelled.items}
    assert got == {"ward1/a.jpeg": (1, "p1"), "ward2/a.jpeg": (0, "p2"), "b.jpeg": (1, "p1")}
    reasons = {Path(s.name).name: s.reason for s in labelled.skipped}
    assert "not NORMAL or PNEUMONIA" in reasons["c.jpeg"]
    assert reasons["d.jpeg"] == NO_LABEL
    assert "NORMAL folder" in reasons["e.jpeg"]  # the folder and labels.csv disagree
    assert labelled.unmatched_labels == 1 and labelled.patients_from == "labels.csv"


def test_labels_file_option_and_bad_labels_files(tmp_path: Path) -> None:
    write_images(tmp_path / "imgs", ["x.jpeg", "y.jpeg"])
    labels = tmp_path / "site_labels.csv"
    labels.write_text("file,label\nx.jpeg,NORMAL\ny.jpeg,PNEUMONIA\n")
    labelled = read_labelled([str(tmp_path / "imgs")], str(labels))
    assert sorted(i.label for i in labelled.items) == [0, 1] and labelled.patients_from == "unknown"
    with pytest.raises(ValueError, match="file,label"):
        parse_labels(b"name,diagnosis\nx.jpeg,NORMAL\n")
    with pytest.raises(ValueError, match="listed twice"):
        parse_labels(b"file,label\nx.jpeg,NORMAL\nx.jpeg,PNEUMONIA\n")
    with pytest.raises(ValueError, match="cannot read"):
        read_labelled([str(tmp_path / "imgs")], str(tmp_path / "absent.csv"))


def test_patients_from_dataset_names_only_when_every_name_follows_them(tmp_path: Path) -> None:
    assert dataset_patient("person12_bacteria_45.jpeg") == "person12"
    assert dataset_patient("NORMAL2-IM-0427-0001.jpeg") == "NORMAL2-IM-0427"
    assert dataset_patient("scan_001.jpeg") is None
    write_images(tmp_path / "a", ["NORMAL/IM-0001-0001.jpeg", "PNEUMONIA/person3_virus_7.jpeg",
                                  "PNEUMONIA/person3_virus_8.jpeg"])
    labelled = read_labelled([str(tmp_path / "a")])
    assert [i.patient for i in labelled.items] == ["IM-0001", "person3", "person3"]
    write_images(tmp_path / "a", ["NORMAL/scan_001.jpeg"])
    assert {i.patient for i in read_labelled([str(tmp_path / "a")]).items} == {None}


# --- scoring --------------------------------------------------------------------------------


def test_score_labelled_keeps_raw_outputs_and_lists_what_was_left_out(gated_model_path: Path) -> None:
    from core.model import load_bundle

    bundle = load_bundle(gated_model_path)
    # A shipped calibration must not leak into the raw scores a profile is built on.
    shipped = dataclasses.replace(bundle, metadata=bundle.metadata.replace(
        calibration=Calibration("temperature", temperature=2.0).to_dict()))
    films = [image_bytes(200, 180, seed=seed) for seed in range(4)]
    files = [("NORMAL/a.jpeg", films[0]), ("NORMAL/photo.png", colour_photo()), ("PNEUMONIA/b.jpeg", films[1]),
             ("PNEUMONIA/broken.jpeg", b"not an image"), ("PNEUMONIA/c.jpeg", films[2]),
             ("unlabelled.jpeg", films[3])]
    labelled = read_labelled_upload(files)
    seen = []
    scores = score_labelled(shipped, labelled, batch_size=2, progress=lambda done, total: seen.append((done, total)))
    assert list(scores.names) == ["NORMAL/a.jpeg", "PNEUMONIA/b.jpeg", "PNEUMONIA/c.jpeg"]
    assert list(scores.labels) == [0, 1, 1] and (scores.normal, scores.pneumonia) == (1, 2)
    assert [s.name for s in scores.refused] == ["NORMAL/photo.png"]
    assert scores.refused[0].reason.startswith("cannot assess")
    assert [s.name for s in scores.unreadable] == ["PNEUMONIA/broken.jpeg"]
    assert [s.name for s in scores.skipped] == ["unlabelled.jpeg"]
    assert seen[-1] == (5, 5)
    raw = [o.probability for o in iter_outcomes(bundle, [(n, d) for n, d in files[:5]], calibration=None) if o.ok]
    np.testing.assert_allclose(scores.raw, raw)
    calibrated = [o.probability for o in iter_outcomes(shipped, [(n, d) for n, d in files[:5]]) if o.ok]
    assert not np.allclose(scores.raw, calibrated)
    assert scores.groups is None


def synthetic_scores(n: int = 150, seed: int = 0) -> LabelledScores:
    rng = np.random.default_rng(seed)
    labels = np.repeat([0, 1], n)
    raw = 1 / (1 + np.exp(-(rng.normal(0, 1, 2 * n) + 2.5 * (labels - 0.5) * 2)))
    return LabelledScores(labels=labels, raw=raw, patients=(None,) * (2 * n),
                          names=tuple(f"img{i}.jpeg" for i in range(2 * n)))


SHA = "ab" * 32


def test_calibrate_scores_keeps_the_shipped_calibration_unless_refitted() -> None:
    scores = synthetic_scores()
    shipped = Calibration("temperature", temperature=1.5, fitted_on="validation split", cases=500)
    kept = calibrate_scores(scores, site="Clinic", model_sha256=SHA, shipped=shipped, n_boot=0)
    assert Calibration.from_dict(kept.profile.calibration) == shipped and not kept.refitted
    np.testing.assert_allclose(kept.calibrated, shipped.apply(scores.raw))
    assert kept.reliability_refitted is None and kept.profile.metrics["sensitivity"]["value"] >= 0.95
    assert sum(kept.confusion.values()) == 300
    refit = calibrate_scores(scores, site="Clinic", model_sha256=SHA, shipped=shipped, refit="platt", n_boot=0)
    assert refit.profile.calibration["method"] == "platt" and refit.profile.calibration["fitted_on"] == "Clinic"
    assert refit.reliability_refitted is not None
    # Calibration is monotone: the local sensitivity at the chosen point is the same on either scale.
    assert refit.profile.metrics["sensitivity"]["value"] == pytest.approx(kept.profile.metrics["sensitivity"]["value"])
    text = "\n".join(summary_lines(refit))
    assert "Platt scaling" in text and "> " in text and "img0" not in text


@pytest.mark.parametrize(("change", "message"), [
    ({"refit": "temperature", "n": 40}, "at least 100"),
    ({"refit": "isotonic", "n": 40}, "1,000"),
    ({"refit": "isotonic", "n": 600}, "cannot be stored"),
    ({"rule": "max_referred", "value": 0.05, "saturated": True}, "no threshold refers"),
    ({"rule": "max_referred"}, "needs a value"),
    ({"one_class": True}, "both NORMAL and PNEUMONIA"),
])
def test_calibrate_scores_refuses_what_cannot_be_done(change: dict, message: str) -> None:
    scores = synthetic_scores(change.pop("n", 150))
    if change.pop("saturated", False):  # half the images score exactly 1: no threshold refers fewer
        scores = dataclasses.replace(scores, raw=np.where(scores.labels == 1, 1.0, scores.raw))
    if change.pop("one_class", False):
        scores = dataclasses.replace(scores, labels=np.zeros_like(scores.labels))
    with pytest.raises(ValueError, match=message):
        calibrate_scores(scores, site="Clinic", model_sha256=SHA, shipped=Calibration("none"), n_boot=0, **change)


# --- the command line -----------------------------------------------------------------------


def run(args: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_calibrate_writes_a_profile_without_file_names(tmp_path: Path, gated_model_path: Path, capsys) -> None:
    root = labelled_tree(tmp_path / "local")
    (root / "NORMAL" / "holiday_photo.png").write_bytes(colour_photo())
    (root / "PNEUMONIA" / "broken_scan.jpeg").write_bytes(b"truncated")
    out = tmp_path / "Mzuzu Central.json"
    code, stdout, stderr = run(["calibrate", str(root), "--output", str(out), "--model", str(gated_model_path),
                                "--bootstrap", "200", "--no-progress"], capsys)
    assert code == 0, stderr
    profile = SiteProfile.read(out)
    from core.model import sha256_file

    assert profile.site == "Mzuzu Central"  # the output's stem by default
    assert profile.model_sha256 == sha256_file(gated_model_path)
    assert profile.rule == "sensitivity" and profile.target == 0.95
    assert profile.cases == {"normal": 6, "pneumonia": 6, "patients": 12, "refused": 1, "unreadable": 1}
    assert profile.metrics["sensitivity"]["value"] >= 0.95
    assert profile.calibration["method"] == "none"  # the tiny model ships no calibration
    # Refused and unreadable images are named on the user's terminal, and nowhere in the profile.
    assert "holiday_photo.png" in stderr and "broken_scan.jpeg" in stderr
    text = out.read_text()
    for name in ("holiday_photo", "broken_scan", "n0", "p0", ".jpeg", str(tmp_path)):
        assert name not in text
    assert "Rule: highest threshold keeping local sensitivity ≥ 0.95" in stdout
    assert any(line.startswith(">") for line in stdout.splitlines())
    assert "warning: The local set has only 6 NORMAL cases" in stdout
    assert "refused" in stdout and f"wrote site profile {profile.profile_id}" in stdout


def test_cli_calibrate_rules_site_and_refit_options(tmp_path: Path, tiny_model_path: Path, capsys) -> None:
    root = labelled_tree(tmp_path / "local")
    out = tmp_path / "p.json"
    base = ["calibrate", str(root), "-o", str(out), "--model", str(tiny_model_path), "--bootstrap", "0"]
    assert run([*base, "--threshold", "0.3", "--site", "Ward 4"], capsys)[0] == 0
    profile = SiteProfile.read(out)
    assert (profile.rule, profile.threshold, profile.site) == ("manual", 0.3, "Ward 4")
    assert run([*base, "--max-referred", "0.5"], capsys)[0] == 0
    assert SiteProfile.read(out).rule == "max_referred"
    assert SiteProfile.read(out).metrics["referred"]["value"] <= 0.5
    code, _, err = run([*base, "--refit", "temperature"], capsys)
    assert code == 2 and "at least 100" in err


@pytest.mark.parametrize("extra", [
    ["--target-recall", "0"], ["--target-recall", "1.5"], ["--max-referred", "-0.1"], ["--threshold", "2"],
    ["--bootstrap", "50"], ["--batch-size", "0"], ["--site", "scans/ward.jpeg"],
])
def test_cli_calibrate_bad_options_exit_2(extra: list[str], tmp_path: Path, tiny_model_path: Path, capsys) -> None:
    root = labelled_tree(tmp_path / "local", 1, 1)
    out = tmp_path / "p.json"
    code, _, err = run(["calibrate", str(root), "-o", str(out), "--model", str(tiny_model_path), *extra], capsys)
    assert code == 2 and err.startswith("error:") and not out.exists()


def test_cli_calibrate_usage_errors(tmp_path: Path, tiny_model_path: Path, capsys) -> None:
    model = ["--model", str(tiny_model_path)]
    with pytest.raises(SystemExit) as excinfo:  # argparse: two rules at once
        main(["calibrate", str(tmp_path), "-o", str(tmp_path / "p.json"), "--threshold", "0.3",
              "--target-recall", "0.9"])
    assert excinfo.value.code == 2
    write_images(tmp_path / "unlabelled", ["a.jpeg"])
    code, _, err = run(["calibrate", str(tmp_path / "unlabelled"), "-o", str(tmp_path / "p.json"), *model], capsys)
    assert code == 2 and "no labelled images" in err and "a.jpeg" in err
    write_images(tmp_path / "only", ["NORMAL/a.jpeg", "NORMAL/b.jpeg"])
    code, _, err = run(["calibrate", str(tmp_path / "only"), "-o", str(tmp_path / "p.json"), *model], capsys)
    assert code == 2 and "both NORMAL and PNEUMONIA" in err
    root = labelled_tree(tmp_path / "local", 1, 1)
    code, _, err = run(["calibrate", str(root), "-o", str(tmp_path / "absent" / "p.json"), *model], capsys)
    assert code == 2 and "does not exist" in err
    (tmp_path / "labels.csv").write_text("no header here\n")
    code, _, err = run(["calibrate", str(root), "-o", str(tmp_path / "p.json"), "--labels",
                        str(tmp_path / "labels.csv"), *model], capsys)
    assert code == 2 and "file,label" in err
    assert not (tmp_path / "p.json").exists()


# --- predict --profile ----------------------------------------------------------------------


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames[:4] == ["file", "probability", "prediction", "error"]
        return list(reader)


@pytest.fixture
def cases(tmp_path: Path) -> Path:
    write_images(tmp_path / "cases", [f"c{i}.jpeg" for i in range(8)], seed=40)
    return tmp_path / "cases"


def write_profile(path: Path, sha: str, threshold: float, calibration: Calibration) -> SiteProfile:
    y = np.array([0, 0, 1, 1])
    profile, _ = build_profile("Lilongwe", sha, y, np.array([0.1, 0.4, 0.6, 0.9]), rule="manual", value=threshold,
                               calibration=calibration, n_boot=0)
    profile.write(path)
    return profile


def test_predict_with_profile_uses_its_threshold_and_calibration(cases: Path, tmp_path: Path,
                                                                 tiny_model_path: Path, capsys) -> None:
    from core.model import sha256_file

    base = ["predict", str(cases), "--model", str(tiny_model_path), "--no-progress"]
    out = tmp_path / "plain.csv"
    assert run([*base, "-o", str(out)], capsys)[0] == 0
    raw = np.array([float(r["probability"]) for r in read_csv(out)])
    calibration = Calibration("temperature", temperature=0.5, fitted_on="Lilongwe", cases=4)
    calibrated = calibration.apply(raw)
    # A threshold between two calibrated scores, far from both, and away from the shipped 0.5 decisions.
    ordered = np.sort(calibrated)
    cut = int(np.argmax(np.diff(ordered)))
    threshold = float((ordered[cut] + ordered[cut + 1]) / 2)
    profile_path = tmp_path / "lilongwe.json"
    write_profile(profile_path, sha256_file(tiny_model_path), threshold, calibration)

    code, _, err = run([*base, "-o", str(out), "--profile", str(profile_path)], capsys)
    assert code == 0, err
    rows = read_csv(out)
    np.testing.assert_allclose([float(r["probability"]) for r in rows], calibrated, atol=2e-6)
    assert [r["prediction"] for r in rows] == ["PNEUMONIA" if p >= threshold else "NORMAL" for p in calibrated]
    assert {r["prediction"] for r in rows} == {"NORMAL", "PNEUMONIA"}
    assert "Lilongwe" in err and f"{threshold:.4f}" in err


def test_predict_refuses_a_profile_for_another_model_or_with_threshold(cases: Path, tmp_path: Path,
                                                                       tiny_model_path: Path, capsys) -> None:
    profile_path = tmp_path / "other.json"
    write_profile(profile_path, "cd" * 32, 0.5, Calibration("none"))
    out = tmp_path / "out.csv"
    base = ["predict", str(cases), "-o", str(out), "--model", str(tiny_model_path), "--profile", str(profile_path)]
    code, _, err = run(base, capsys)
    assert code == 2 and "the model changed: re-calibrate" in err and not out.exists()
    code, _, err = run([*base, "--threshold", "0.3"], capsys)
    assert code == 2 and "--threshold and --profile" in err
    profile_path.write_text(json.dumps({"site": "x"}))
    code, _, err = run(base, capsys)
    assert code == 2 and "invalid site profile" in err


# --- the page's figures and wording -----------------------------------------------------------


def test_site_figures_show_bands_operating_point_and_both_reliability_curves() -> None:
    from ui import site_calibration as view

    scores = synthetic_scores()
    scores = dataclasses.replace(scores, refused=(("x.png", "cannot assess: colour"),))
    result = calibrate_scores(scores, site="Clinic", model_sha256=SHA, shipped=Calibration("none"),
                              refit="temperature", n_boot=200)
    sweep = view.threshold_figure(result)
    assert [t.name for t in sweep.data if t.name] == ["Sensitivity", "Specificity", "Referred"]
    assert sweep.layout.shapes[0].x0 == result.threshold
    assert [t.fill for t in sweep.data[:2]] == [None, "tonexty"]  # the 95% band under each line
    roc = view.roc_figure(result)
    point = roc.data[-1]
    assert point.name == "Operating point"
    assert point.y[0] == pytest.approx(result.profile.metrics["sensitivity"]["value"])
    names = [t.name for t in view.reliability_figure(result).data]
    assert names[1].startswith("Shipped calibration (ECE") and names[2].startswith("Refitted on this set (ECE")
    cells = view.confusion_figure(result).data[0].text
    assert cells[0][0].startswith(f"<b>{result.confusion['tp']}</b>")
    assert "refitted on this set: temperature scaling" in view.operating_point_text(result)
    assert "1 refused" in view.set_summary(scores)
    assert list(view.left_out_frame(scores)["file"]) == ["x.png"]
    caption = view.interval_caption(result.profile)
    assert caption.startswith("95% bootstrap intervals (resampling images): sensitivity ") and "–" in caption
    labels = [label for label, _, _ in view.metric_cards(result.profile)]
    assert labels == ["Sensitivity", "Specificity", "Referred", "PPV", "NPV", "Accuracy"]

"""Loading and single-image analysis for the dashboard (core.apps.dashboard), on the tiny model."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.apps.dashboard import load_dashboard_model, prepare_for_review, recompute_cam, triage_image
from core.errors import ImageError
from core.evaluation.predictions import load_test_predictions
from core.inputs.raster import decode_gray
from core.model import ModelError, load_metadata, sibling_path
from core.scoring import predict_one
from helpers import REPO, TINY_SIZE, image_bytes
from ui.examples import example_images


@pytest.fixture(scope="module")
def dashboard(tiny_model_path):
    return load_dashboard_model(tiny_model_path)


def test_reading_metadata_needs_no_tensorflow(tiny_model_path: Path) -> None:
    code = ("import sys; from core.model import load_metadata; "
            f"info = load_metadata({str(tiny_model_path)!r}); "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TensorFlow was imported'; "
            "print(info.name, info.threshold.value)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["tiny_cnn", "0.5"]


def test_load_metadata(tiny_model_path: Path) -> None:
    info = load_metadata(tiny_model_path)
    assert info.name == "tiny_cnn" and info.threshold.value == 0.5
    assert info.version.startswith("tiny_cnn · ") and len(info.version.split(" · ")[1]) == 8
    with pytest.raises(ModelError):
        load_metadata(tiny_model_path.with_name("absent.keras"))


def test_load_dashboard_model(dashboard, tiny_model_path: Path) -> None:
    assert dashboard.bundle.path == tiny_model_path
    assert dashboard.explainer.model is dashboard.bundle.model
    assert dashboard.explainer.member().default_layer == "last_conv"
    assert not dashboard.explainer.is_ensemble


def test_load_dashboard_model_refuses_damaged_file(tiny_model_path: Path, tmp_path: Path) -> None:
    copy = tmp_path / tiny_model_path.name
    shutil.copy(tiny_model_path, copy)
    shutil.copy(tiny_model_path.with_suffix(".json"), copy.with_suffix(".json"))
    with copy.open("ab") as handle:
        handle.write(b"x")
    with pytest.raises(ModelError, match="does not match"):
        load_dashboard_model(copy, warm_up=False)


def test_triage_image_matches_the_other_paths(dashboard) -> None:
    data = image_bytes(300, 240, seed=4)
    result = triage_image(dashboard, data)
    assert result.probability == pytest.approx(predict_one(dashboard.bundle, data), abs=1e-6)
    assert result.model_input.shape == (TINY_SIZE, TINY_SIZE)
    assert result.display.shape == decode_gray(data).shape  # small image: shown as is, aspect kept
    assert result.cam.shape == (TINY_SIZE, TINY_SIZE) and result.cam.min() >= 0 and result.cam.max() <= 1
    assert result.seconds > 0
    assert result.decision(0.0) == "PNEUMONIA"
    assert result.decision(1.0) == ("PNEUMONIA" if result.probability >= 1.0 else "NORMAL")


def test_triage_image_shrinks_large_images_for_display(dashboard) -> None:
    result = triage_image(dashboard, image_bytes(1200, 900, seed=2), display_side=400)
    assert result.display.shape == (400, 300)


def test_triage_image_refuses_bad_files(dashboard) -> None:
    with pytest.raises(ImageError):
        triage_image(dashboard, b"definitely not an image")
    with pytest.raises(ImageError):
        triage_image(dashboard, b"")


def test_prepare_for_review_scores_like_the_batch_path(dashboard) -> None:
    data = image_bytes(200, 180, seed=9)
    prepared = prepare_for_review(dashboard, data)
    assert prepared.probability == pytest.approx(predict_one(dashboard.bundle, data), abs=1e-6)
    with pytest.raises(ImageError):
        prepare_for_review(dashboard, b"not an image")


def test_recompute_cam_keeps_the_score(dashboard) -> None:
    result = triage_image(dashboard, image_bytes(seed=6), method="Grad-CAM")
    again = recompute_cam(dashboard, result, "LayerCAM", "normal")
    assert again.probability == result.probability and again.method == "LayerCAM" and again.target == "normal"
    assert again.model_input is result.model_input
    np.testing.assert_array_equal(again.cam, dashboard.explainer.cam(result.model_input, "LayerCAM", target="normal"))


def test_sibling_path() -> None:
    assert sibling_path("models/pneumonia_cnn.keras", "_history.csv") == Path("models/pneumonia_cnn_history.csv")


def test_load_test_predictions(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("file,patient,subtype,label,probability\na,1,normal,NORMAL,0.2\nb,2,viral,PNEUMONIA,0.9\n")
    frame = load_test_predictions(path)
    assert list(frame["y"]) == [0, 1] and list(frame["probability"]) == [0.2, 0.9]


@pytest.mark.parametrize(("text", "message"), [
    ("file,probability\na,0.2\n", "lack the column"),
    ("label,probability\nCAT,0.2\n", "labels other than"),
    ("label,probability\nNORMAL,1.2\n", "outside"),
    ("label,probability\nNORMAL,abc\n", "outside"),
    ("label,probability\n", "empty"),
    ("", "unreadable"),
])
def test_load_test_predictions_refuses_bad_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "p.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        load_test_predictions(path)


def test_load_test_predictions_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not found"):
        load_test_predictions(tmp_path / "absent.csv")


def test_bundled_examples_are_readable_xrays() -> None:
    examples = example_images()
    assert len(examples) >= 2
    assert "Normal · IM-0117-0001" in examples
    assert any(name.startswith("Pneumonia · ") for name in examples)
    for path in examples.values():
        assert min(decode_gray(path).shape) >= 200
    assert (REPO / "assets" / "examples" / "README.md").read_text().count("CC BY 4.0") >= 1


def test_example_images_of_missing_folder(tmp_path: Path) -> None:
    assert example_images(tmp_path / "none") == {}


def test_explain_subtype_scores_the_gated_input_with_the_second_model(dashboard) -> None:
    import dataclasses

    from core.apps.dashboard import explain_subtype, subtype_path
    from core.scoring import predict_arrays

    prepared = prepare_for_review(dashboard, image_bytes(200, 180, seed=4))
    # The tiny model stands in for the research model: same input side, a different head.
    view = explain_subtype(dashboard, prepared, method="Grad-CAM")
    expected = float(predict_arrays(dashboard.bundle.model, prepared.model_input[np.newaxis])[0])
    assert view.probability == pytest.approx(expected, abs=1e-6)
    assert view.cam.shape == prepared.model_input.shape and 0 <= view.cam.min() <= view.cam.max() <= 1
    smaller = dataclasses.replace(prepared, model_input=prepared.model_input[:-1, :-1])
    with pytest.raises(ValueError, match="px inputs"):
        explain_subtype(dashboard, smaller)
    assert subtype_path("/x/models/pneumonia_ensemble.keras") == Path("/x/models/pneumonia_subtype.keras")

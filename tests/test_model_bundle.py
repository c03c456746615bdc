"""Model loading with integrity checks, and the shipped model's metadata and artefacts."""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from core.errors import ImageError
from core.model import ModelError, ModelMetadata, load_bundle, load_metadata, metadata_path, sha256_file
from helpers import REPO, SHIPPED_MODEL, encode, write_metadata


@pytest.fixture
def model_copy(tiny_model_path: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny model and its metadata that a test may damage."""
    target = tmp_path / "copy.keras"
    shutil.copyfile(tiny_model_path, target)
    meta = json.loads(metadata_path(tiny_model_path).read_text())
    metadata_path(target).write_text(json.dumps(meta))
    return target


def edit_metadata(model_path: Path, **changes) -> None:
    path = metadata_path(model_path)
    meta = json.loads(path.read_text())
    for key, value in changes.items():
        if value is None:
            meta.pop(key, None)
        else:
            meta[key] = value
    path.write_text(json.dumps(meta))


def test_sha256_file_matches_hashlib(tmp_path: Path) -> None:
    path = tmp_path / "blob.bin"
    data = os.urandom(3 * (1 << 20) + 17)  # spans several read chunks
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()


def test_accepts_correct_bundle(model_copy: Path) -> None:
    bundle = load_bundle(model_copy)
    assert bundle.input_size == 64
    assert bundle.threshold == 0.5
    assert bundle.labels == ["NORMAL", "PNEUMONIA"]
    assert bundle.name == json.loads(metadata_path(model_copy).read_text())["name"] == "tiny_cnn"
    assert sha256_file(model_copy)[:8] in bundle.version
    assert bundle.model.input_shape == (None, 64, 64, 1)
    assert bundle.model.get_layer("last_conv") is not None


def test_name_defaults_to_file_stem(model_copy: Path) -> None:
    edit_metadata(model_copy, name=None)
    assert load_metadata(model_copy).name == ""
    assert load_bundle(model_copy).name == "copy"


def test_refuses_truncated_copy(model_copy: Path) -> None:
    data = model_copy.read_bytes()
    model_copy.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="does not match its metadata"):
        load_bundle(model_copy)


def test_refuses_one_changed_byte(model_copy: Path) -> None:
    data = bytearray(model_copy.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model_copy.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="sha256"):
        load_bundle(model_copy)


def test_refuses_missing_metadata(model_copy: Path) -> None:
    metadata_path(model_copy).unlink()
    with pytest.raises(ModelError, match="metadata not found"):
        load_bundle(model_copy)


@pytest.mark.parametrize("key", ["labels", "input_size", "threshold", "sha256"])
def test_refuses_metadata_lacking_keys(model_copy: Path, key: str) -> None:
    edit_metadata(model_copy, **{key: None})
    with pytest.raises(ModelError, match=key):
        load_bundle(model_copy)


def test_refuses_unreadable_metadata(model_copy: Path) -> None:
    metadata_path(model_copy).write_text("{not json")
    with pytest.raises(ModelError, match="unreadable"):
        load_bundle(model_copy)


@pytest.mark.parametrize("value", [-0.01, 1.01])
def test_refuses_threshold_outside_unit_interval(model_copy: Path, value: float) -> None:
    edit_metadata(model_copy, threshold={"value": value, "rule": "test"})
    with pytest.raises(ModelError, match="threshold"):
        load_metadata(model_copy)


def test_refuses_input_size_disagreement(model_copy: Path) -> None:
    edit_metadata(model_copy, input_size=128)
    with pytest.raises(ModelError, match="disagrees"):
        load_bundle(model_copy)


def test_refuses_wrong_suffix_and_missing_file(model_copy: Path, tmp_path: Path) -> None:
    renamed = tmp_path / "model.h5"
    shutil.copyfile(model_copy, renamed)
    with pytest.raises(ModelError, match=".keras"):
        load_bundle(renamed)
    with pytest.raises(ModelError, match="not found"):
        load_bundle(tmp_path / "absent.keras")


def test_refuses_unloadable_file_with_matching_hash(tmp_path: Path) -> None:
    path = tmp_path / "junk.keras"
    path.write_bytes(b"this is not a keras archive")
    write_metadata(path, 64)
    with pytest.raises(ModelError, match="could not be loaded"):
        load_bundle(path)


def test_safe_mode_refuses_lambda_layers(tmp_path: Path) -> None:
    import keras

    inputs = keras.Input((64, 64, 1))
    x = keras.layers.Lambda(lambda t: t * 2.0)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(x))
    path = tmp_path / "lambda.keras"
    model.save(path)
    write_metadata(path, 64)
    with pytest.raises(ModelError, match="could not be loaded"):
        load_bundle(path)


def test_default_model_path_honours_environment(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.keras"
    code = "from core.model import DEFAULT_MODEL_PATH; print(DEFAULT_MODEL_PATH)"
    env = {**os.environ, "PYTHONPATH": str(REPO), "PNEUMONIA_MODEL": str(target)}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == str(target)
    env.pop("PNEUMONIA_MODEL")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert Path(out.stdout.strip()) == SHIPPED_MODEL


# --- the shipped model -------------------------------------------------------------------------

def _shipped_candidates() -> list[Path]:
    """The shipped model, plus the one $PNEUMONIA_MODEL names (so a retrained model can be checked)."""
    paths = [SHIPPED_MODEL]
    env = os.environ.get("PNEUMONIA_MODEL")
    if env and Path(env).resolve() != SHIPPED_MODEL.resolve():
        paths.append(Path(env))
    return paths


shipped = pytest.mark.parametrize(
    "model_path",
    [pytest.param(p, id=p.parent.name,
                  marks=[pytest.mark.release,
                         pytest.mark.skipif(not (p.is_file() and metadata_path(p).is_file()),
                                            reason=f"{p} with its metadata not present")])
     for p in _shipped_candidates()],
)


def _meta(model_path: Path) -> dict:
    return json.loads(metadata_path(model_path).read_text())


@shipped
def test_shipped_metadata_contents(model_path: Path) -> None:
    meta = _meta(model_path)
    assert sha256_file(model_path) == meta["sha256"]
    assert 0.0 <= meta["threshold"]["value"] <= 1.0
    assert meta["threshold"]["rule"]
    assert meta["labels"] == ["NORMAL", "PNEUMONIA"]
    assert isinstance(meta["input_size"], int) and meta["input_size"] >= 32
    assert meta["preprocessing"]
    assert {"train", "val", "test"} <= set(meta["data"]["splits"])
    assert meta["metrics"]["test"]
    assert meta["versions"]["tensorflow"] and meta["versions"]["keras"]
    for name, (lo, hi) in meta["metrics"]["test_ci95"].items():
        point = meta["metrics"]["test"][name]
        if not any(math.isnan(v) for v in (lo, hi, point)):
            assert lo - 1e-3 <= point <= hi + 1e-3, name
    ModelMetadata.from_dict(meta)


@pytest.mark.release
def test_shipped_model_files_fit_the_size_budget() -> None:
    # Everything committed under models/ that the app or the model card reads; members are
    # training intermediates and are not shipped (see .gitignore).
    shipped_files = [f for f in (REPO / "models").iterdir() if f.is_file()]
    assert sum(f.stat().st_size for f in shipped_files) <= 10 * 2**20


@pytest.mark.release
@pytest.mark.skipif(not metadata_path(SHIPPED_MODEL).is_file(), reason="shipped metadata not present")
def test_shipped_metadata_is_strict_json() -> None:
    def refuse(constant: str) -> None:
        raise ValueError(f"non-standard JSON constant {constant}")

    # NaN/Infinity are not JSON: other tools (browsers, jq) cannot read the model card data.
    json.loads(metadata_path(SHIPPED_MODEL).read_text(), parse_constant=refuse)


@shipped
def test_shipped_test_predictions_match_metadata(model_path: Path) -> None:
    from core.evaluation.metrics import threshold_metrics

    path = model_path.with_name(f"{model_path.stem}_test_predictions.csv")
    predictions = pd.read_csv(path)
    assert list(predictions.columns)[:5] == ["file", "patient", "subtype", "label", "probability"]
    assert predictions["probability"].between(0, 1).all()
    assert set(predictions["label"]) <= {"NORMAL", "PNEUMONIA"}
    meta = _meta(model_path)
    assert len(predictions) == meta["data"]["splits"]["test"]["images"]
    labels = (predictions["label"] == "PNEUMONIA").astype(int).to_numpy()
    recomputed = threshold_metrics(labels, predictions["probability"].to_numpy(), meta["threshold"]["value"])
    for key in ("tp", "fp", "tn", "fn"):
        # Probabilities in the CSV are rounded to 6 decimals: allow a case right at the threshold.
        assert abs(recomputed[key] - meta["metrics"]["test"][key]) <= 1, key
    manifest_path = model_path.with_name("split_manifest.csv")
    if manifest_path.exists():
        manifest = pd.read_csv(manifest_path)
        split_of = dict(zip(manifest["file"], manifest["split"], strict=True))
        assert {split_of.get(f) for f in predictions["file"]} == {"test"}
        train_patients = set(manifest.loc[manifest["split"] == "train", "patient"])
        assert not train_patients & set(predictions["patient"])


@shipped
def test_shipped_history_columns(model_path: Path) -> None:
    path = model_path.with_name(f"{model_path.stem}_history.csv")
    if not path.exists():
        pytest.skip("no training history beside the model")
    history = pd.read_csv(path)
    for column in ("epoch", "accuracy", "auc", "loss", "recall", "learning_rate", "val_auc", "val_loss"):
        assert column in history.columns
    assert len(history) >= 1


@shipped
def test_shipped_model_loads_safely_and_scores(model_path: Path) -> None:
    from core.explain import ModelExplainer
    from core.scoring import predict_one

    bundle = load_bundle(model_path)
    explainer = ModelExplainer(bundle.model)
    assert all(member.default_layer == "last_conv" for member in explainer.members.values())
    examples = sorted((REPO / "assets" / "examples").glob("*.jpeg"))
    assert examples, "the dashboard's example X-rays are missing"
    for example in examples:
        assert 0.0 <= predict_one(bundle, example) <= 1.0
    if bundle.gate is not None:
        # A page of text is no radiograph: the shipped gate must refuse it, not call it NORMAL.
        page = np.full((400, 300), 245, np.uint8)
        for row in range(30, 380, 14):
            page[row:row + 6, 25:275] = 20
        with pytest.raises(ImageError, match="^cannot assess: "):
            predict_one(bundle, encode(Image.fromarray(page), "PNG"))

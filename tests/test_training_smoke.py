"""End-to-end training on a tiny synthetic dataset, and the model builders.

Kept to seconds: 64 px images, one epoch, a few dozen files.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from core.gate import REFUSAL_CODES
from core.model import ModelMetadata, load_bundle, load_metadata, sha256_file
from helpers import encode, synthetic_names, write_dataset
from training.augment import RECIPES
from training.data import check_no_patient_leak

NAME = "smoke_cnn"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, int]:
    """Run ``training.train.main`` once on a synthetic dataset: 12 patients per class, 2 images each."""
    from training import evaluate, fit_gate, train

    root = tmp_path_factory.mktemp("smoke")
    data = write_dataset(root / "chest_xray", synthetic_names(12, 6, 6, images_per_patient=2), size=64)
    out = root / "models"
    real_bootstrap = evaluate.bootstrap_ci

    def quick_bootstrap(*args, **kwargs):
        # The full 1000 resamples are slow on a busy CPU and add nothing to a plumbing test.
        return real_bootstrap(*args, **{**kwargs, "n_resamples": 50})

    def small_nonxray_set() -> list[tuple[str, bytes]]:
        # Two obvious non-X-rays instead of the full measurement set: same code path, seconds less.
        rng = np.random.default_rng(0)
        noise = Image.fromarray(rng.integers(0, 256, (80, 80, 3), dtype=np.uint8), mode="RGB")
        page = Image.new("L", (90, 120), 250)
        return [("synthetic:noise1", encode(noise, "PNG")), ("synthetic:page1", encode(page, "PNG"))]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(evaluate, "bootstrap_ci", quick_bootstrap)
        mp.setattr(fit_gate, "build_nonxray_set", small_nonxray_set)
        code = train.main(["--data", str(data), "--out", str(out), "--name", NAME, "--image-size", "64",
                           "--epochs", "1", "--batch-size", "8", "--seed", "5"])
    return data, out, code


def test_training_writes_consistent_artefacts(trained: tuple[Path, Path, int]) -> None:
    data, out, code = trained
    assert code == 0
    model_path = out / f"{NAME}.keras"
    meta = json.loads((out / f"{NAME}.json").read_text())
    ModelMetadata.from_dict(meta)  # what training wrote is what the readers accept
    assert meta["sha256"] == sha256_file(model_path)
    assert meta["input_size"] == 64 and meta["labels"] == ["NORMAL", "PNEUMONIA"]
    assert 0.0 <= meta["threshold"]["value"] <= 1.0
    # The shipped rule holds recall on validation films under the shift benchmark too.
    assert "shift benchmark" in meta["threshold"]["rule"]
    assert 0.0 <= meta["threshold"]["validation_shifted"]["recall"] <= 1.0
    assert meta["training"]["epochs_run"] == 1 and meta["training"]["image_size"] == 64

    manifest = pd.read_csv(out / "split_manifest.csv")
    assert list(manifest.columns) == ["file", "label", "subtype", "patient", "split"]
    check_no_patient_leak(manifest)
    assert len(manifest) == 48 and set(manifest["split"]) == {"train", "val", "test"}
    assert all((data / f).is_file() for f in manifest["file"]), "manifest paths are relative to the data root"
    for split, entry in meta["data"]["splits"].items():
        assert entry["images"] == int((manifest["split"] == split).sum())

    history = pd.read_csv(out / f"{NAME}_history.csv")
    assert len(history) == 1
    assert {"epoch", "loss", "auc", "val_auc", "val_loss"} <= set(history.columns)

    for split in ("val", "test"):
        predictions = pd.read_csv(out / f"{NAME}_{split}_predictions.csv")
        assert list(predictions.columns)[:5] == ["file", "patient", "subtype", "label", "probability"]
        expected = manifest[manifest["split"] == split]
        assert sorted(predictions["file"]) == sorted(expected["file"])
        assert predictions["probability"].between(0, 1).all()

    test = pd.read_csv(out / f"{NAME}_test_predictions.csv")
    labels = (test["label"] == "PNEUMONIA").sum()
    assert meta["metrics"]["test"]["tp"] + meta["metrics"]["test"]["fn"] == labels
    assert set(meta["metrics"]["test_ci95"]) >= {"auc", "recall", "specificity"}
    assert (out / f"{NAME}_training.json").is_file()
    # Evaluation always fits the gate, so the gate is always there.
    ood = out / meta["gate"]["ood_file"]
    assert ood.is_file() and sha256_file(ood) == meta["gate"]["ood_sha256"]
    assert set(meta["gate"]["measured"]["xray_refused_by_reason"]) <= set(REFUSAL_CODES)
    assert meta["training"]["augmentation"] == RECIPES["robust"].as_dict()


def test_model_card_reads_what_training_wrote(trained: tuple[Path, Path, int]) -> None:
    from ui.model_card import gate_table, metrics_table, split_table, subtype_table, training_table

    _, out, _ = trained
    meta = load_metadata(out / f"{NAME}.keras")
    assert len(split_table(meta)) == 3
    settings = dict(training_table(meta).values.tolist())
    assert settings["Architecture"] == "compact_cnn" and "crop min area" in settings["Augmentation"]
    assert "ROC AUC" in set(metrics_table(meta)["metric"])
    assert not subtype_table(meta).empty and len(gate_table(meta)) == 2


def test_trained_model_loads_and_matches_recorded_scores(trained: tuple[Path, Path, int]) -> None:
    from core.preprocessing import prepare_image
    from core.scoring import iter_outcomes, predict_arrays

    data, out, _ = trained
    bundle = load_bundle(out / f"{NAME}.keras")
    assert bundle.input_size == 64
    assert bundle.model.get_layer("last_conv") is not None
    test = pd.read_csv(out / f"{NAME}_test_predictions.csv")
    images = np.stack([prepare_image(data / f, 64) for f in test["file"]])
    np.testing.assert_allclose(predict_arrays(bundle.model, images), test["probability"], atol=2e-6)
    # Through the app's path every image is scored with the recorded probability, or (when the
    # model ships a "cannot assess" gate) refused with that reason, never silently dropped.
    results = list(iter_outcomes(bundle, [(f, data / f) for f in test["file"]]))
    assert [r.name for r in results] == test["file"].tolist()
    for result, recorded in zip(results, test["probability"], strict=True):
        if result.ok:
            assert abs(result.probability - recorded) <= 2e-6
        else:
            assert bundle.gate is not None and result.error.startswith("cannot assess:"), result.error


def test_train_main_reports_missing_data(tmp_path: Path, capsys) -> None:
    from training import train

    (tmp_path / "empty").mkdir()
    assert train.main(["--data", str(tmp_path / "empty"), "--out", str(tmp_path / "out")]) == 2
    assert "error:" in capsys.readouterr().err


@pytest.mark.parametrize("bad", [["--image-size", "16"], ["--epochs", "0"], ["--batch-size", "0"]])
def test_train_rejects_bad_arguments(tmp_path: Path, bad: list[str]) -> None:
    from training import train

    with pytest.raises(SystemExit) as exc:
        train.parse_args(["--data", str(tmp_path), *bad])
    assert exc.value.code == 2


def test_backbone_trains_one_step() -> None:
    import keras

    from training.models import backbone_model

    keras.utils.set_random_seed(0)
    model = backbone_model("mobilenetv2", 64, weights=None)
    assert model.input_shape == (None, 64, 64, 1) and model.output_shape == (None, 1)
    assert model.get_layer("last_conv") is not None
    # Eager: tracing the whole backbone into a graph costs far more than one small step.
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="binary_crossentropy", run_eagerly=True)
    x = np.random.default_rng(0).integers(0, 256, (4, 64, 64, 1)).astype(np.float32)
    y = np.array([0, 1, 0, 1], np.float32)
    before = [w.copy() for w in model.get_layer("pneumonia").get_weights()]
    loss = float(np.asarray(model.train_on_batch(x, y)))
    assert np.isfinite(loss)
    after = model.get_layer("pneumonia").get_weights()
    assert any(not np.array_equal(a, b) for a, b in zip(before, after, strict=True))
    probabilities = np.asarray(model(x, training=False))
    assert probabilities.shape == (4, 1) and np.all((probabilities >= 0) & (probabilities <= 1))


def test_builders() -> None:
    from training.models import build_model, compact_cnn

    for name in ("compact_cnn", "plain_cnn", "dense_baseline"):
        model = build_model(name, 32)
        assert model.input_shape == (None, 32, 32, 1) and model.output_shape == (None, 1), name
    assert compact_cnn(224).count_params() < 1_000_000
    with pytest.raises(ValueError):
        build_model("resnet9000", 64)
    with pytest.raises(ValueError):
        build_model("mobilenetv2", 64, weights="random")


def test_a_standardized_member_does_not_see_exposure() -> None:
    """Darker (x0.7) or flatter (contrast halved) copies of a film reach the network as the same input."""
    import keras

    from helpers import xray_like
    from training.models import build_model

    keras.utils.set_random_seed(3)
    films = np.stack([xray_like(64, 64, seed=s) for s in range(3)]).astype(np.float32)[..., np.newaxis]
    darker = np.round(films * 0.7)
    flatter = np.round(films.mean(axis=(1, 2, 3), keepdims=True) + 0.5 * (films - films.mean(axis=(1, 2, 3),
                                                                                             keepdims=True)))
    for architecture in ("compact_cnn", "resnet_slim"):
        plain = build_model(architecture, 64, inner_size=48, trim=0.06)
        standardized = build_model(architecture, 64, inner_size=48, trim=0.06, standardize=True)
        front = keras.Model(standardized.input, standardized.get_layer("standardize").output)
        reference = front.predict_on_batch(films)
        for changed in (darker, flatter):
            # Equal up to the rounding of the changed film to whole grey levels.
            difference = np.abs(front.predict_on_batch(changed) - reference)
            assert difference.mean() < 0.03 and difference.max() < 0.1
        # Against another film, which the network must still tell apart.
        assert np.abs(reference[0] - reference[1]).mean() > 0.3
        rescaled = keras.Model(plain.input, plain.get_layer("resize").output)
        assert np.abs(rescaled.predict_on_batch(darker) - rescaled.predict_on_batch(films)).max() > 0.1
    with pytest.raises(ValueError, match="standardize"):
        build_model("plain_cnn", 64, standardize=True)


def test_weight_averaged_training_keeps_the_averaged_weights_validation_judged(tmp_path: Path) -> None:
    """With ``ema`` the kept checkpoint is the one validation scored: the averaged weights.

    The saved checkpoint, scored on the validation films, gives the best validation AUC that
    training recorded; had the raw weights been saved beside the averaged weights' score, the two
    would differ (after a few steps the average still sits near the initial weights).
    """
    import keras

    from training.pipeline import make_dataset
    from training.train import _absolute, build_manifest, fit

    data = write_dataset(tmp_path / "chest_xray", synthetic_names(12, 6, 6, images_per_patient=2), size=64)
    manifest = build_manifest(data, seed=5)
    checkpoint, history = tmp_path / "ema.keras", tmp_path / "ema_history.csv"
    summary = fit("compact_cnn", manifest, data, checkpoint, size=64, epochs=2, batch_size=8, seed=5,
                  patience=2, recipe=RECIPES["baseline"], history_csv=history, ema=True)
    assert summary["ema_momentum"] == 0.99
    recorded = pd.read_csv(history)["val_auc"]
    model = keras.saving.load_model(checkpoint, compile=False, safe_mode=True)
    model.compile(loss="binary_crossentropy", metrics=[keras.metrics.AUC(name="auc")])
    val = make_dataset(_absolute(manifest[manifest["split"] == "val"], data), 64, 8, training=False, seed=5)
    scored = model.evaluate(val, return_dict=True, verbose=0)["auc"]
    assert scored == pytest.approx(recorded.max(), abs=1e-4)

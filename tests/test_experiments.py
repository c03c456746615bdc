"""The experiment commands (ablation, comparison, learning curve, subtype) and the comparison's
architectures, smoke-run on a few synthetic films: plumbing and honesty of the tables, not figures.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers import synthetic_names, write_dataset, xray_like


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 normal, 10 bacterial and 10 viral patients, two 64-px films each."""
    root = tmp_path_factory.mktemp("experiments")
    return write_dataset(root / "chest_xray", synthetic_names(12, 10, 10, images_per_patient=2), size=64)


def _manifest(data: Path) -> pd.DataFrame:
    from training.train import build_manifest

    return build_manifest(data, seed=1337)


def test_subsample_keeps_patients_whole_and_leaves_evaluation_alone(data: Path) -> None:
    from training.data import subsample_patients

    manifest = _manifest(data)
    half = subsample_patients(manifest, 0.5)
    train, kept = manifest[manifest["split"] == "train"], half[half["split"] == "train"]
    assert 0 < kept["patient"].nunique() < train["patient"].nunique()
    # Whole patients: every image of a kept patient is kept.
    assert len(kept) == int(train["patient"].isin(kept["patient"]).sum())
    assert set(kept["label"]) == {"NORMAL", "PNEUMONIA"}
    pd.testing.assert_frame_equal(half[half["split"] != "train"].reset_index(drop=True),
                                  manifest[manifest["split"] != "train"].reset_index(drop=True))
    assert subsample_patients(manifest, 0.5).equals(half)  # the same half for every run
    with pytest.raises(ValueError, match="fraction"):
        subsample_patients(manifest, 0.0)


def test_ablation_variants_switch_one_thing_each() -> None:
    from training.ablation import variants
    from training.augment import INGREDIENTS, RECIPES

    rows = variants((1, 2, 3))
    names = [v.name for v in rows]
    assert names.count("robust (all on)") == 3 and names.count("baseline recipe") == 2
    for ingredient in INGREDIENTS:
        (variant,) = [v for v in rows if v.name == f"no {ingredient}"]
        assert variant.recipe == RECIPES["robust"].without(ingredient)
    assert len({(v.name, v.seed) for v in rows}) == len(rows)


def test_ablation_writes_one_row_per_run_and_resumes(data: Path, tmp_path: Path) -> None:
    from training import ablation

    output = tmp_path / "ablation.csv"
    argv = ["--data", str(data), "--work", str(tmp_path / "work"), "--output", str(output), "--epochs", "1",
            "--image-size", "64", "--inner-size", "32", "--seeds", "4", "--only", "all on", "no noise"]
    assert ablation.main(argv) == 0
    table = pd.read_csv(output)
    assert list(table["variant"]) == ["robust (all on)", "no noise"]
    for column in ("test_auc", "shift3_mean_auc", "shift3_min_auc", "zoom1.3_normals_flagged_change",
                   "zoom1.5_normals_flagged_change", "threshold", "training_seconds"):
        assert table[column].notna().all(), column
    assert (table["shift3_min_auc"] <= table["shift3_mean_auc"] + 1e-9).all()
    assert not list((tmp_path / "work").glob("*.keras"))  # only figures are kept
    # A second call trains nothing: it reads the runs back.
    first = (tmp_path / "work" / "robust__all_on_s4.json").read_text()
    assert ablation.main(argv) == 0
    assert (tmp_path / "work" / "robust__all_on_s4.json").read_text() == first
    assert len(ablation.summary(pd.read_csv(output))) == 2


def test_comparison_rows_carry_every_figure(data: Path, tmp_path: Path) -> None:
    from training import comparison
    from training.comparison import Approach

    args = comparison.parse_args(["--data", str(data), "--work", str(tmp_path / "work"), "--output",
                                  str(tmp_path / "comparison.csv"), "--epochs", "1", "--batch-size", "8"])
    args.work.mkdir()
    approaches = (Approach("tiny_four_block", "four_block_cnn", 64, "baseline", 1.0, "a test row"),
                  Approach("tiny_dense_half", "dense_baseline", 64, "flip_rotate", 0.5, "another"))
    table = comparison.compare(args, approaches)
    assert list(table["model"]) == ["tiny_four_block", "tiny_dense_half"]
    for column in ("auc", "accuracy", "recall", "precision", "specificity", "f1", "loss", "parameters",
                   "file_mb", "training_seconds", "latency_ms", "shift3_mean_auc", "zoom1.5_normals_flagged_change",
                   "source", "fraction", "recipe"):
        assert table[column].notna().all(), column
    assert (table["parameters"] > 0).all() and (table["latency_ms"] > 0).all()
    # Weights only (4 bytes each plus the file's own overhead), not a checkpoint with Adam's moments.
    assert (table["file_mb"] < table["parameters"] * 4 / 1e6 * 1.2 + 0.05).all()
    assert pd.read_csv(tmp_path / "comparison.csv").shape[0] == 2
    # --only with no names trains nothing and rewrites the table from the rows on disk.
    (tmp_path / "comparison.csv").unlink()
    again = comparison.parse_args(["--data", str(data), "--work", str(tmp_path / "work"), "--output",
                                   str(tmp_path / "comparison.csv"), "--only"])
    assert again.only == []
    assert list(comparison.compare(again, approaches + (Approach("never_built", "plain_cnn", 64, "none"),))["model"]) \
        == ["tiny_four_block", "tiny_dense_half"]
    # A fresh checkout has no rows on disk: the published table keeps them, in the approaches' order.
    published = pd.read_csv(tmp_path / "comparison.csv")
    for row in (tmp_path / "work").glob("tiny_dense_half.json"):
        row.unlink()
    kept = comparison.compare(again, approaches)
    assert list(kept["model"]) == ["tiny_four_block", "tiny_dense_half"]
    pd.testing.assert_frame_equal(kept.iloc[[1]].reset_index(drop=True), published.iloc[[1]].reset_index(drop=True),
                                  check_dtype=False)
    assert pd.read_csv(tmp_path / "comparison.csv").shape[0] == 2


def test_learning_curve_grows_the_training_set(data: Path, tmp_path: Path) -> None:
    from training import comparison

    output = tmp_path / "curve.csv"
    argv = ["--data", str(data), "--work", str(tmp_path / "work"), "--curve-output", str(output),
            "--learning-curve", "--fractions", "0.5", "1.0", "--epochs", "1", "--image-size", "64",
            "--batch-size", "8"]
    assert comparison.main(argv) == 0
    curve = pd.read_csv(output)
    assert list(curve["fraction"]) == [0.5, 1.0]
    assert curve["training_images"].iloc[0] < curve["training_images"].iloc[1]
    assert curve[["val_auc", "test_auc", "val_recall", "test_recall"]].notna().all().all()


def test_subtype_model_learns_bacterial_on_pneumonia_films_only(data: Path, tmp_path: Path) -> None:
    from core.model import ModelMetadata, sha256_file
    from training import subtype

    out = tmp_path / "models"
    code = subtype.main(["--data", str(data), "--out", str(out), "--epochs", "1", "--image-size", "64",
                         "--batch-size", "8"])
    assert code == 0
    raw = json.loads((out / "pneumonia_subtype.json").read_text())
    meta = ModelMetadata.from_dict(raw)
    assert meta.labels == ("viral", "bacterial") and "research only" in meta.output
    assert meta.sha256 == sha256_file(out / "pneumonia_subtype.keras")
    # Weights only, not a training checkpoint with the optimizer's state beside them.
    assert (out / "pneumonia_subtype.keras").stat().st_size < meta.training["parameters"] * 4 * 1.3 + 50_000
    test = meta.metrics["test"]
    assert test["images"] == test["bacterial"] + test["viral"] and test["viral"] > 0
    for key in ("auc", "accuracy", "recall", "specificity"):
        low, high = test["ci95"][key]
        assert low <= test[key] <= high, key
    assert meta.metrics["anchor"]["auc"] == 0.940
    predictions = pd.read_csv(out / "pneumonia_subtype_test_predictions.csv")
    assert set(predictions["subtype"]) == {"bacterial", "viral"}  # no normal film was scored
    # Nothing else in the data but pneumonia films entered training.
    assert sum(meta.data["train"].values()) == int((_pneumonia_train(data)).sum())


def _pneumonia_train(data: Path) -> pd.Series:
    manifest = _manifest(data)
    return (manifest["split"] == "train") & (manifest["label"] == "PNEUMONIA")


def test_subtype_refuses_a_split_without_both_subtypes() -> None:
    from training.subtype import pneumonia_only

    manifest = pd.DataFrame({"file": ["a", "b", "c"], "label": ["PNEUMONIA"] * 3,
                             "subtype": ["bacterial", "bacterial", "viral"], "patient": ["1", "2", "3"],
                             "split": ["train", "train", "val"]})
    with pytest.raises(ValueError, match="both bacterial and viral"):
        pneumonia_only(manifest)


def test_balanced_threshold_separates_separable_scores() -> None:
    from training.subtype import balanced_threshold

    labels = np.array([0, 0, 0, 1, 1])
    threshold = balanced_threshold(labels, np.array([0.1, 0.2, 0.35, 0.6, 0.9]))
    assert 0.35 < threshold <= 0.6


@pytest.mark.parametrize(("name", "size"), [("xception", 71), ("inceptionresnetv2", 75)])
def test_published_backbones_train_one_step_at_their_smallest_input(name: str, size: int) -> None:
    import keras

    from training.models import build_model

    keras.utils.set_random_seed(0)
    model = build_model(name, size, weights=None)
    assert model.input_shape == (None, size, size, 1) and model.output_shape == (None, 1)
    assert model.get_layer("last_conv") is not None
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="binary_crossentropy", run_eagerly=True)
    x = np.stack([xray_like(size, size, seed=s) for s in range(2)])[..., None].astype(np.float32)
    loss = float(np.asarray(model.train_on_batch(x, np.array([0, 1], np.float32))))
    assert np.isfinite(loss)
    with pytest.raises(ValueError, match=f"at least {size} px"):
        build_model(name, size - 1, weights=None)


def test_four_block_cnn_is_the_published_shape() -> None:
    from keras import layers

    from training.models import build_model

    model = build_model("four_block_cnn", 150)
    convs = [layer.filters for layer in model.layers if isinstance(layer, layers.Conv2D)]
    dense = [layer.units for layer in model.layers if isinstance(layer, layers.Dense)]
    assert convs == [32, 64, 128, 128] and dense == [512, 1]


def test_published_recipes_flip_only_where_asked() -> None:
    import tensorflow as tf

    from training.augment import RECIPES, augmenter

    x = np.stack([xray_like(32, 32, seed=s) for s in range(16)])[..., None].astype(np.float32)
    x[:, :, :6] = 12.0  # a dark border, as beside a real film
    assert not RECIPES["robust"].flip and RECIPES["flip_rotate"].flip
    np.testing.assert_allclose(augmenter(RECIPES["none"], seed=1)(tf.constant(x)).numpy(), x, atol=1e-3)
    tf.random.set_seed(0)
    dark = augmenter(RECIPES["dark_only"], seed=1)(tf.constant(x)).numpy()
    changed = [not np.allclose(d, o) for d, o in zip(dark, x, strict=True)]
    assert any(changed)  # some films lost their dark pixels ...
    assert all((d[o >= 25] == o[o >= 25]).all() for d, o in zip(dark, x, strict=True))  # ... and only those


def test_subtype_figures_that_are_undefined_are_written_as_null() -> None:
    from training.evaluate import rounded

    # Precision when no film is called bacterial has no value: null in the JSON, not a crash.
    assert rounded(float("nan")) is None
    assert rounded(0.123456) == 0.1235
    assert json.dumps({"precision": rounded(float("nan"))}, allow_nan=False) == '{"precision": null}'

"""Train one network end to end (the ensemble trains its members through :func:`fit`).

Default model (about 30-45 min on a 2-core CPU)::

    python -m training.train --data ../shared/data/chest_xray --out models/

The comparison of published approaches is ``python -m training.comparison``; the
augmentation ablation ``python -m training.ablation``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from training.augment import INGREDIENTS, RECIPES, Recipe

DEFAULT_NAME = "pneumonia_cnn"
MANIFEST_NAME = "split_manifest.csv"
EMA_MOMENTUM = 0.99  # Keras's default: the average spans about a hundred steps, under one epoch


def _seed_everything(seed: int) -> None:
    import keras
    import tensorflow as tf

    os.environ["PYTHONHASHSEED"] = str(seed)
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def build_manifest(data: Path, seed: int, limit_per_class: int | None = None) -> pd.DataFrame:
    """Discover the dataset and split it by patient; paths in the manifest are relative to ``data``."""
    from training.data import check_no_patient_leak, discover, make_splits

    records = discover(data)
    manifest = make_splits(records, seed=seed)
    check_no_patient_leak(manifest)
    manifest["file"] = [os.path.relpath(f, data) for f in manifest["file"]]
    if limit_per_class:
        # Smoke runs: a few patients of each label in each split, still split by patient.
        keep = []
        for _, group in manifest.groupby(["split", "label"]):
            patients = sorted(group["patient"].unique())[:limit_per_class]
            keep.append(group[group["patient"].isin(patients)])
        manifest = pd.concat(keep).reset_index(drop=True)
    return manifest


def prepare_run(data: Path, out: Path, seed: int, limit_per_class: int | None) -> pd.DataFrame | None:
    """Split the dataset and write the manifest into ``out``; ``None`` (after saying why) if it cannot."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        manifest = build_manifest(data, seed, limit_per_class)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None
    out.mkdir(parents=True, exist_ok=True)
    manifest.to_csv(out / MANIFEST_NAME, index=False)
    return manifest


def _absolute(frame: pd.DataFrame, data: Path) -> pd.DataFrame:
    out = frame.copy()
    out["file"] = [str(data / f) for f in out["file"]]
    return out


def fit(
    architecture: str,
    manifest: pd.DataFrame,
    data: Path,
    checkpoint: Path,
    *,
    size: int,
    epochs: int,
    batch_size: int,
    seed: int,
    patience: int,
    weights: str | None = None,
    learning_rate: float = 1e-3,
    history_csv: Path | None = None,
    recipe: Recipe | None = None,
    inner_size: int | None = None,
    trim: float = 0.0,
    val_zooms: tuple[float, ...] = (),
    target=None,
    standardize: bool = False,
    ema: bool = False,
) -> dict:
    """Train one model, keep the checkpoint with the best validation AUC, return a summary.

    ``recipe`` is the training augmentation (the robust recipe by default). ``val_zooms`` adds
    centre-zoomed copies of the validation images, so the kept checkpoint is the one whose
    ranking holds across framings, not only at the framing the training films share.
    ``target`` maps manifest rows to 0/1 labels (``training.pipeline.is_pneumonia`` by default).
    With ``ema`` the optimiser keeps an exponential moving average of the weights (Polyak
    averaging, momentum 0.99) and validation, the checkpoint, early stopping and the learning-rate
    schedule all read the averaged weights: under a strong recipe the per-epoch weights are noisy,
    so a checkpoint picked from them on validation flatters validation.
    """
    import keras

    from training.models import build_model
    from training.pipeline import class_weights, is_pneumonia, make_dataset

    target = target or is_pneumonia
    _seed_everything(seed)
    train = _absolute(manifest[manifest["split"] == "train"], data)
    val = _absolute(manifest[manifest["split"] == "val"], data)
    recipe = recipe or RECIPES["robust"]
    train_ds = make_dataset(train, size, batch_size, training=True, seed=seed, recipe=recipe, target=target)
    val_ds = make_dataset(val, size, batch_size, training=False, seed=seed, target=target)
    if val_zooms:
        from training.pipeline import with_zoomed_copies

        val_ds = with_zoomed_copies(val_ds, val_zooms)

    model = build_model(architecture, size, weights=weights, inner_size=inner_size, trim=trim,
                        standardize=standardize)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate, use_ema=ema, ema_momentum=EMA_MOMENTUM),
        loss="binary_crossentropy",
        metrics=[keras.metrics.AUC(name="auc"), keras.metrics.BinaryAccuracy(name="accuracy"),
                 keras.metrics.Recall(name="recall")],
    )
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    # SwapEMAWeights first: at each epoch's end it puts the averaged weights in the model, so the
    # callbacks after it save, restore and judge those.
    callbacks: list = [keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if ema else []
    callbacks += [
        keras.callbacks.ModelCheckpoint(checkpoint, monitor="val_auc", mode="max", save_best_only=True),
        keras.callbacks.EarlyStopping(monitor="val_auc", mode="max", patience=patience, restore_best_weights=True),
        keras.callbacks.ReduceLROnPlateau(monitor="val_auc", mode="max", factor=0.3, patience=2, min_lr=1e-5),
    ]
    if history_csv is not None:
        callbacks.append(keras.callbacks.CSVLogger(str(history_csv)))
    start = time.perf_counter()
    history = model.fit(
        train_ds,
        validation_data=val_ds,
        epochs=epochs,
        class_weight=class_weights(train, target),
        callbacks=callbacks,
        verbose=2,
    )
    seconds = time.perf_counter() - start
    aucs = history.history["val_auc"]
    return {
        "architecture": architecture,
        "parameters": int(model.count_params()),
        "epochs_run": len(aucs),
        "best_epoch": int(np.argmax(aucs)) + 1,
        "best_val_auc": float(np.max(aucs)),
        "training_seconds": round(seconds, 1),
        "seconds_per_epoch": round(seconds / max(1, len(aucs)), 1),
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "seed": seed,
        "weights": weights,
        "inner_size": inner_size,
        "trim": trim,
        "val_zooms": list(val_zooms),
        "standardize": standardize,
        "ema_momentum": EMA_MOMENTUM if ema else None,
        "augmentation": recipe.as_dict(),
        "class_weights": {str(k): round(v, 4) for k, v in class_weights(train, target).items()},
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from training.models import ARCHITECTURES, BACKBONES

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="dataset root holding train/ (and val/, test/)")
    parser.add_argument("--out", type=Path, default=Path("models"), help="output folder (default: models/)")
    parser.add_argument("--name", default=DEFAULT_NAME, help="model name; files are <out>/<name>.*")
    parser.add_argument("--architecture", default="compact_cnn", choices=ARCHITECTURES)
    parser.add_argument("--backbone", choices=BACKBONES, help="train a Keras Applications backbone instead")
    parser.add_argument("--weights", choices=("none", "imagenet"), default="none",
                        help="backbone initialisation; 'imagenet' downloads weights once and needs internet")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--patience", type=int, default=7, help="early-stopping patience on validation AUC")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--recipe", choices=sorted(RECIPES), default="robust", help="training augmentation recipe")
    parser.add_argument("--augment-off", nargs="*", default=[], choices=INGREDIENTS, metavar="INGREDIENT",
                        help=f"switch recipe ingredients off (ablation): {', '.join(INGREDIENTS)}")
    parser.add_argument("--inner-size", type=int, default=None, help="resize inside the model to this side")
    parser.add_argument("--trim", type=float, default=0.0, help="border fraction trimmed inside the model")
    parser.add_argument("--seed", type=int, default=1337)
    parser.add_argument("--limit-per-class", type=int, default=None,
                        help="keep only this many patients per label and split (smoke runs)")
    parser.add_argument("--no-evaluate", action="store_true", help="skip writing metadata and test predictions")
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.batch_size < 1 or args.image_size < 32:
        parser.error("--epochs and --batch-size must be positive and --image-size at least 32")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    manifest = prepare_run(args.data, args.out, args.seed, args.limit_per_class)
    if manifest is None:
        return 2
    architecture = args.backbone or args.architecture
    weights = None if args.weights == "none" else args.weights
    model_path = args.out / f"{args.name}.keras"
    summary = fit(architecture, manifest, args.data, model_path, size=args.image_size, epochs=args.epochs,
                  batch_size=args.batch_size, seed=args.seed, patience=args.patience, weights=weights,
                  learning_rate=args.learning_rate, history_csv=args.out / f"{args.name}_history.csv",
                  recipe=RECIPES[args.recipe].without(*args.augment_off), inner_size=args.inner_size,
                  trim=args.trim)
    summary.update({"image_size": args.image_size, "data_root": str(args.data)})
    (args.out / f"{args.name}_training.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    if args.no_evaluate:
        return 0
    from training.evaluate import evaluate

    evaluate(model_path, args.data, args.out / MANIFEST_NAME)
    return 0


if __name__ == "__main__":
    sys.exit(main())

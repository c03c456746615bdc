"""The published approaches side by side, and the learning curve of our architecture.

    python -m training.comparison --data ../shared/data/chest_xray --work runs/comparison
    python -m training.comparison --data ../shared/data/chest_xray --work runs/comparison --learning-curve \
        --image-size 128 --epochs 6

Every approach is trained from scratch (no internet, so no ImageNet weights) on the shipped
patient-level split with the same budget (``--epochs``, early stopping on validation AUC)
and seed, then judged on our test split: AUC, accuracy, recall, precision, specificity, F1
and loss at threshold 0.5 (the operating point those projects report), parameters, file
size for inference (weights only), training time, single-image latency (median of 30 calls,
bytes already decoded), and the shift benchmark's headline figures
(``training.robustness.quick_shift``). Rows already on disk are kept, so the table can be
built over several sittings (``--only NAME...`` trains just those; ``--only`` alone rewrites
the table from the rows on disk). A row that is neither asked for nor on disk but already in
the table (trained in another checkout) keeps its published figures. Only figures are kept,
in ``models/model_comparison.csv``; the full architectures are not shipped.

The learning curve trains the compact CNN of the shipped ensemble on 10-100% of the
training patients (validation and test untouched) and writes ``models/learning_curve.csv``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

COMPARISON = Path("models/model_comparison.csv")
LEARNING_CURVE = Path("models/learning_curve.csv")
FRACTIONS = (0.1, 0.25, 0.5, 0.75, 1.0)


@dataclass(frozen=True)
class Approach:
    """One row of the comparison: a network, its input side, its augmentation and its data share."""

    name: str
    architecture: str
    size: int
    recipe: str
    fraction: float = 1.0
    source: str = ""  # one sentence: where the approach comes from and what its row shows


APPROACHES = (
    Approach("dense_25pct", "dense_baseline", 224, "baseline", 0.25,
             "The first step of a published iteration: a small fully connected network, trained on a quarter "
             "of the training patients; the floor any CNN must beat."),
    Approach("dense_75pct", "dense_baseline", 224, "baseline", 0.75,
             "The same network on three quarters of the patients: what more data buys a model that sees no "
             "shapes."),
    Approach("plain_cnn", "plain_cnn", 224, "baseline", 1.0,
             "A conventional Conv-Pool stack without batch norm or regularisation, the middle of that iteration."),
    Approach("four_block_cnn_150", "four_block_cnn", 150, "baseline", 1.0,
             "The 150-px four-block CNN (32-64-128-128 filters, dense 512) behind a popular upload web page."),
    Approach("xception_150_flip_rotate", "xception", 150, "flip_rotate", 1.0,
             "Xception with flips and ±20° rotation as published, from scratch here; a flipped film puts the "
             "heart on the right, which no real film does."),
    Approach("inceptionresnetv2_75", "inceptionresnetv2", 75, "none", 1.0,
             "InceptionResNetV2 retrained end to end at 75 px, its smallest input, without augmentation."),
    Approach("inceptionresnetv2_75_dark", "inceptionresnetv2", 75, "dark_only", 1.0,
             "The same with the \"dark pixel\" augmentation (pixels under 25 set to 0) on half the batches, "
             "which the published approach used to double its training set."),
    Approach("compact_cnn_robust", "compact_cnn", 224, "robust", 1.0,
             "Our compact CNN, one member of the shipped ensemble, with the acquisition-robust recipe."),
)


def single_image_latency(model, size: int, calls: int = 30) -> float:
    """Median milliseconds for one prepared image through the network in Keras (after a warm-up call).

    Keras, not the LiteRT copy scoring uses: the same runtime for every approach, so the column
    compares networks, and it stays comparable with the figures already stored.
    """
    image = np.full((1, size, size, 1), 128, dtype=np.float32)
    model.predict_on_batch(image)
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        model.predict_on_batch(image)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def judge(model, path: Path, test: pd.DataFrame, size: int, threshold: float = 0.5) -> dict:
    """Test figures at ``threshold``, cost figures and the shift benchmark for one trained network."""
    from core.evaluation.metrics import classification_summary
    from training.robustness import network_scores, quick_shift

    labels = (test["label"] == "PNEUMONIA").astype(int).to_numpy()
    probabilities = network_scores(model, list(test["image"]))
    metrics = classification_summary(labels, probabilities, threshold)
    clipped = np.clip(probabilities, 1e-7, 1 - 1e-7)
    loss = float(-np.mean(labels * np.log(clipped) + (1 - labels) * np.log(1 - clipped)))
    keep = ("auc", "accuracy", "recall", "precision", "specificity", "f1")
    return {**{k: float(metrics[k]) for k in keep}, "loss": loss, "threshold": threshold,
            "parameters": int(model.count_params()), "file_mb": round(path.stat().st_size / 1e6, 2),
            "latency_ms": round(single_image_latency(model, size), 1),
            **quick_shift(model, list(test["image"]), labels, threshold)}


def _train_and_judge(key: str, architecture: str, size: int, recipe: str, fraction: float,
                     args: argparse.Namespace, manifest: pd.DataFrame, tests: dict[int, pd.DataFrame],
                     inner_size: int | None = None) -> dict:
    import keras

    from training.augment import RECIPES
    from training.data import subsample_patients
    from training.robustness import load_split
    from training.train import MANIFEST_NAME, fit

    result_file = args.work / f"{key}.json"
    if result_file.exists():
        return json.loads(result_file.read_text())
    print(f"[comparison] {key}", file=sys.stderr, flush=True)
    checkpoint = args.work / f"{key}.keras"
    summary = fit(architecture, subsample_patients(manifest, fraction), args.data, checkpoint, size=size,
                  epochs=args.epochs, batch_size=args.batch_size, seed=args.seed, patience=args.patience,
                  recipe=RECIPES[recipe], inner_size=inner_size)
    if size not in tests:
        tests[size] = load_split(args.data, args.work / MANIFEST_NAME, "test", size)
    model = keras.saving.load_model(checkpoint, compile=False, safe_mode=True)
    # The file a user would download: weights only, without the checkpoint's optimizer state.
    model.save(checkpoint)
    row = {"training_seconds": summary["training_seconds"], "epochs": summary["epochs_run"],
           "best_epoch": summary["best_epoch"], "best_val_auc": summary["best_val_auc"],
           **judge(model, checkpoint, tests[size], size)}
    result_file.write_text(json.dumps(row, indent=2) + "\n")
    checkpoint.unlink()  # figures only: the full architectures are not kept
    return row


def compare(args: argparse.Namespace, approaches: tuple[Approach, ...] = APPROACHES) -> pd.DataFrame:
    """Train and judge every approach not yet on disk; write and return the table."""
    from training.train import prepare_run

    manifest = prepare_run(args.data, args.work, args.split_seed, args.limit_per_class)
    if manifest is None:
        raise ValueError("the dataset could not be split")
    tests: dict[int, pd.DataFrame] = {}
    published = _published_rows(args.output)
    rows = []
    for approach in approaches:
        on_disk = (args.work / f"{approach.name}.json").exists()
        if args.only is not None and approach.name not in args.only and not on_disk:
            if approach.name in published:  # built in an earlier checkout: keep its published figures
                rows.append(published[approach.name])
                pd.DataFrame(rows).to_csv(args.output, index=False, float_format="%.4f")
            continue  # not asked for now, and not built before
        figures = _train_and_judge(approach.name, approach.architecture, approach.size, approach.recipe,
                                   approach.fraction, args, manifest, tests)
        rows.append({"model": approach.name, **{k: v for k, v in asdict(approach).items() if k != "name"},
                     "seed": args.seed, "epoch_budget": args.epochs, **figures})
        pd.DataFrame(rows).to_csv(args.output, index=False, float_format="%.4f")
    return pd.DataFrame(rows)


def _published_rows(table: Path) -> dict[str, dict]:
    """The rows of an existing comparison table by model name (empty when there is none).

    Per-row results live in ``--work``, which a fresh checkout does not have; the shipped
    table is then the only record of rows trained in earlier sittings.
    """
    if not table.is_file():
        return {}
    return {str(row["model"]): row for row in pd.read_csv(table).to_dict("records")}


def learning_curve(args: argparse.Namespace) -> pd.DataFrame:
    """Validation and test figures of the compact CNN for each share of training patients."""
    from core.evaluation.metrics import classification_summary
    from training.robustness import load_split, network_scores
    from training.train import MANIFEST_NAME, prepare_run

    manifest = prepare_run(args.data, args.work, args.split_seed, args.limit_per_class)
    if manifest is None:
        raise ValueError("the dataset could not be split")
    size = args.image_size
    val = load_split(args.data, args.work / MANIFEST_NAME, "val", size)
    rows = []
    for fraction in args.fractions:
        key = f"curve_{size}px_{int(round(fraction * 100))}pct"
        result_file = args.work / f"{key}.json"
        if not result_file.exists():
            import keras

            from training.augment import RECIPES
            from training.data import subsample_patients
            from training.train import fit

            checkpoint = args.work / f"{key}.keras"
            reduced = subsample_patients(manifest, fraction)
            summary = fit("compact_cnn", reduced, args.data, checkpoint, size=size, epochs=args.epochs,
                          batch_size=args.batch_size, seed=args.seed, patience=args.patience,
                          recipe=RECIPES["robust"], inner_size=args.inner_size)
            model = keras.saving.load_model(checkpoint, compile=False, safe_mode=True)
            test = load_split(args.data, args.work / MANIFEST_NAME, "test", size)
            row = {"fraction": fraction,
                   "training_patients": int(reduced[reduced["split"] == "train"]["patient"].nunique()),
                   "training_images": int((reduced["split"] == "train").sum()),
                   "training_seconds": summary["training_seconds"]}
            for split, frame in (("val", val), ("test", test)):
                labels = (frame["label"] == "PNEUMONIA").astype(int).to_numpy()
                m = classification_summary(labels, network_scores(model, list(frame["image"])), 0.5)
                row.update({f"{split}_auc": float(m["auc"]), f"{split}_recall": float(m["recall"]),
                            f"{split}_specificity": float(m["specificity"])})
            result_file.write_text(json.dumps(row, indent=2) + "\n")
            checkpoint.unlink()
        rows.append({**json.loads(result_file.read_text()), "epoch_budget": args.epochs,
                     "image_size": size, "inner_size": args.inner_size or size, "seed": args.seed})
        pd.DataFrame(rows).to_csv(args.curve_output, index=False, float_format="%.4f")
    return pd.DataFrame(rows)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="dataset root holding train/")
    parser.add_argument("--work", type=Path, default=Path("runs/comparison"), help="per-row results (resumable)")
    parser.add_argument("--output", type=Path, default=COMPARISON)
    parser.add_argument("--curve-output", type=Path, default=LEARNING_CURVE)
    parser.add_argument("--learning-curve", action="store_true", help="build the learning curve instead")
    parser.add_argument("--fractions", type=float, nargs="+", default=list(FRACTIONS))
    parser.add_argument("--image-size", type=int, default=224, help="learning curve: the compact CNN's input side")
    parser.add_argument("--inner-size", type=int, default=None,
                        help="learning curve: the compact CNN computes at this side inside its input")
    parser.add_argument("--only", nargs="*", default=None,
                        help="train only these rows (rows built before are still written); "
                             "with no names, rewrite the table from the rows on disk")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--patience", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=1, help="training seed of every row")
    parser.add_argument("--split-seed", type=int, default=1337, help="seed of the patient-level split")
    parser.add_argument("--limit-per-class", type=int, default=None, help="smoke runs: patients per label and split")
    args = parser.parse_args(argv)
    if not all(0 < f <= 1 for f in args.fractions):
        parser.error("--fractions must be in (0, 1]")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    try:
        table = learning_curve(args) if args.learning_curve else compare(args)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(table.round(4).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())

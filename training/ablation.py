"""The augmentation ablation: each ingredient of the robust recipe switched off in turn.

    python -m training.ablation --data ../shared/data/chest_xray --work runs/ablation

Every run trains the compact CNN on the same patient-level split with one recipe variant and
is then judged on our test split clean and under the shift benchmark (the MedMNIST-C
corruptions at one severity, and centre zooms of 1.3x and 1.5x). Runs differ only in the
recipe (and, for the full recipe and the baseline, the seed, so the table carries its own
measure of seed-to-seed spread: a difference smaller than that spread is not a finding).

The budget is deliberately reduced so that the whole table fits in one sitting on 2 CPU
cores: half of the training patients (the same half for every run), 128-px images (the
augmentation, which costs more than the network on a CPU, and the corruptions act at that
side too) and four epochs. It ranks ingredients; it does not reproduce the shipped model's
figures. Runs already on disk are kept, so an interrupted table resumes.

Written to ``models/augmentation_ablation.csv`` (one row per run).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from training.augment import INGREDIENTS, RECIPES, Recipe

OUTPUT = Path("models/augmentation_ablation.csv")
SHIFT_SEVERITY = 3


@dataclass(frozen=True)
class Variant:
    """One row of the ablation: a recipe and the seed it is trained with."""

    name: str
    recipe: Recipe
    seed: int


def variants(seeds: tuple[int, ...] = (1, 2, 3)) -> list[Variant]:
    """The full recipe and the baseline over several seeds, then one run per change."""
    robust = RECIPES["robust"]
    out = [Variant("robust (all on)", robust, seed) for seed in seeds]
    out += [Variant("baseline recipe", RECIPES["baseline"], seed) for seed in seeds[:2]]
    out += [Variant(f"no {ingredient}", robust.without(ingredient), seeds[0]) for ingredient in INGREDIENTS]
    out += [Variant("plus dark pixels", RECIPES["robust_dark"], seeds[0]),
            Variant("crops to 30% (framing)", RECIPES["robust_framing"], seeds[0]),
            # What the published flip-and-rotate recipes cost: a mirrored film is anatomically wrong.
            Variant("plus horizontal flips", dataclasses.replace(robust, name="robust_flip", flip=True), seeds[0])]
    return out


def _slug(variant: Variant) -> str:
    return "".join(c if c.isalnum() else "_" for c in variant.name).strip("_") + f"_s{variant.seed}"


def judge(model, val: pd.DataFrame, test: pd.DataFrame, severity: int = SHIFT_SEVERITY) -> dict:
    """Clean and shifted figures for one trained model (network only: no gate, no calibration).

    The threshold follows the shipped rule on this model's own validation scores (the highest
    that keeps validation recall at 98%), so every run is compared at its own operating point.
    """
    from core.evaluation.metrics import classification_summary, threshold_for_recall
    from training.robustness import network_scores, quick_shift

    val_labels = (val["label"] == "PNEUMONIA").astype(int).to_numpy()
    labels = (test["label"] == "PNEUMONIA").astype(int).to_numpy()
    val_scores = network_scores(model, list(val["image"]))
    threshold = threshold_for_recall(val_labels, val_scores, 0.98)
    clean = classification_summary(labels, network_scores(model, list(test["image"])), threshold)
    return {"threshold": threshold, "val_auc": classification_summary(val_labels, val_scores, threshold)["auc"],
            "test_auc": clean["auc"], "test_accuracy": clean["accuracy"], "test_recall": clean["recall"],
            "test_specificity": clean["specificity"],
            **quick_shift(model, list(test["image"]), labels, threshold, severity)}


def run(args: argparse.Namespace) -> pd.DataFrame:
    """Train and judge every variant not yet on disk; return all rows."""
    import keras

    from training.data import subsample_patients
    from training.robustness import load_split
    from training.train import MANIFEST_NAME, fit, prepare_run

    manifest = prepare_run(args.data, args.work, args.seed, args.limit_per_class)
    if manifest is None:
        raise ValueError("the dataset could not be split")
    reduced = subsample_patients(manifest, args.train_fraction)  # the same patients for every run
    val = load_split(args.data, args.work / MANIFEST_NAME, "val", args.image_size)
    test = load_split(args.data, args.work / MANIFEST_NAME, "test", args.image_size)
    rows = []
    for variant in variants(tuple(args.seeds)):
        if args.only and not any(part in variant.name for part in args.only):
            continue
        slug = _slug(variant)
        result_file = args.work / f"{slug}.json"
        if result_file.exists():
            rows.append(json.loads(result_file.read_text()))
            continue
        print(f"[ablation] {variant.name} (seed {variant.seed})", file=sys.stderr, flush=True)
        checkpoint = args.work / f"{slug}.keras"
        summary = fit("compact_cnn", reduced, args.data, checkpoint, size=args.image_size, epochs=args.epochs,
                      batch_size=args.batch_size, seed=variant.seed, patience=args.epochs,
                      recipe=variant.recipe, inner_size=args.inner_size)
        start = time.perf_counter()
        model = keras.saving.load_model(checkpoint, compile=False, safe_mode=True)
        row = {"variant": variant.name, "seed": variant.seed, **judge(model, val, test),
               "best_epoch": summary["best_epoch"], "training_seconds": summary["training_seconds"],
               "judging_seconds": round(time.perf_counter() - start, 1),
               "budget": (f"compact_cnn at {args.inner_size or args.image_size} px, {args.image_size}-px input, "
                          f"{args.epochs} epochs, {args.train_fraction:.0%} of training patients")}
        result_file.write_text(json.dumps(row, indent=2) + "\n")
        checkpoint.unlink()  # only the figures are kept: 18 models are not worth the disk
        rows.append(row)
        pd.DataFrame(rows).to_csv(args.output, index=False, float_format="%.4f")
    table = pd.DataFrame(rows)
    table.to_csv(args.output, index=False, float_format="%.4f")
    return table


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Mean per variant (over its seeds), with the number of runs behind it."""
    numeric = table.select_dtypes("number").drop(columns=["seed"], errors="ignore")
    grouped = numeric.groupby(table["variant"], sort=False)
    return grouped.mean().assign(runs=grouped.size())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="dataset root holding train/")
    parser.add_argument("--work", type=Path, default=Path("runs/ablation"), help="per-run results (resumable)")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--inner-size", type=int, default=None, help="resize inside the model to this side")
    parser.add_argument("--train-fraction", type=float, default=0.5)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--seed", type=int, default=1337, help="seed of the patient-level split")
    parser.add_argument("--only", nargs="*", default=[], help="run only variants whose name contains one of these")
    parser.add_argument("--limit-per-class", type=int, default=None, help="smoke runs: patients per label and split")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        table = run(args)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(summary(table).round(4).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())

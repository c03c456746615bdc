"""Do the classes still differ in cues besides the lungs after a recipe's augmentation?

    python -m training.cue_check --data ../shared/data/chest_xray --recipe robust_framing_soft \
        [--set zoom_normals=0.5 --set zoom_normals_max=1.4] [--films 300]

For each statistic of :func:`training.error_analysis.image_statistics` (framing, exposure,
sharpness, fine detail; none of them needs the lungs), prints its AUC as a score for
pneumonia on training films as they are and after one draw of the recipe. A label-aware
ingredient (``soften_normals``, ``zoom_normals``) is set so that its cue's AUC moves towards
0.5 on the augmented films: what the network can then learn is less how the film was taken.
Reads training films only (the patient-level split manifest's ``train`` rows).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from training.error_analysis import image_statistics, separation_auc

SIZE = 224


def parse_override(text: str) -> tuple[str, float | int]:
    """``name=value`` for one numeric field of :class:`training.augment.Recipe`, typed as the field."""
    from training.augment import Recipe

    name, _, value = text.partition("=")
    fields = {f.name: f.type for f in dataclasses.fields(Recipe) if f.type in ("float", "int")}
    if name not in fields or not value:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE with NAME one of {sorted(fields)}")
    try:
        return name, int(value) if fields[name] == "int" else float(value)
    except ValueError as exc:
        kind = "an integer" if fields[name] == "int" else "a number"
        raise argparse.ArgumentTypeError(f"{value!r} is not {kind}") from exc


def cue_table(images: np.ndarray, labels: np.ndarray, augment, seed: int, batch_size: int = 64) -> pd.DataFrame:
    """Per statistic: its AUC for pneumonia on ``images`` as they are and after ``augment``."""
    import tensorflow as tf

    if images.ndim != 3 or len(images) != len(labels) or len(np.unique(labels)) != 2:
        raise ValueError("need (N, S, S) images of both labels, one label each")
    tf.random.set_seed(seed)
    augmented = []
    for start in range(0, len(images), batch_size):
        x = tf.constant(images[start:start + batch_size, ..., np.newaxis], tf.float32)
        y = tf.constant(labels[start:start + batch_size], tf.float32)
        augmented.append(augment(x, y).numpy()[..., 0].round().clip(0, 255).astype(np.uint8))
    before = pd.DataFrame([image_statistics(image) for image in images])
    after = pd.DataFrame([image_statistics(image) for image in np.concatenate(augmented)])
    sick = labels == 1
    rows = [{"statistic": column,
             "auc_as_is": separation_auc(before[column].to_numpy()[sick], before[column].to_numpy()[~sick]),
             "auc_augmented": separation_auc(after[column].to_numpy()[sick], after[column].to_numpy()[~sick])}
            for column in before.columns]
    table = pd.DataFrame(rows)
    # Distance from 0.5 either way: how much the statistic alone tells the classes apart.
    table["cue_as_is"] = (table["auc_as_is"] - 0.5).abs()
    table["cue_augmented"] = (table["auc_augmented"] - 0.5).abs()
    return table


def main(argv: list[str] | None = None) -> int:
    from training.augment import RECIPES, augmenter
    from training.robustness import load_split

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/chest_xray"))
    parser.add_argument("--manifest", type=Path, default=Path("models/split_manifest.csv"))
    parser.add_argument("--recipe", choices=sorted(RECIPES), default="robust_framing_soft")
    parser.add_argument("--set", dest="overrides", type=parse_override, action="append", default=[],
                        help="change one numeric field of the recipe, e.g. zoom_normals=0.5")
    parser.add_argument("--films", type=int, default=300, help="training films per label")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.films < 10:
        parser.error("--films must be at least 10")
    recipe = dataclasses.replace(RECIPES[args.recipe], **dict(args.overrides))
    try:
        frame = load_split(args.data, args.manifest, "train", SIZE, args.films)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    labels = (frame["label"] == "PNEUMONIA").to_numpy(dtype=int)
    table = cue_table(np.stack(frame["image"]), labels, augmenter(recipe, args.seed), args.seed)
    print(f"recipe {recipe.name} with {dict(args.overrides) or 'no changes'}; "
          f"{int(labels.sum())} pneumonia and {int((1 - labels).sum())} normal training films")
    print(table.round(3).to_string(index=False))
    print(f"mean cue (|AUC - 0.5|): as is {table['cue_as_is'].mean():.3f}, "
          f"augmented {table['cue_augmented'].mean():.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

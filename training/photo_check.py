"""How the model reads phone photos of films: each film of a split photographed with the field
simulator (``training.field_capture``: tint, margin, skew, glare, vignetting, JPEG), captured
by the app's own preprocessing and scored at the model's threshold, beside the films themselves.

    python -m training.photo_check --model models/pneumonia_ensemble.keras --data ../shared/data/chest_xray

Validation films by default: a figure to choose a model or a setting by. The build's
field-capture figures (``training/fit_gate.py``) photograph the test films and only report.
Every photo is scored, the gate off: this measures the model's reading, not what the gate refuses.
``--record`` writes the figures into the model's metadata (``metrics.phone_photos``), which the
model card shows beside the field-capture figures.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from core.calibration import Calibration
from core.evaluation.metrics import classification_summary
from core.inputs.read import Source, read_bytes
from core.preprocessing import prepare_image
from core.scoring import predict_arrays
from training.arguments import model_parser
from training.field_capture import FIELD_UPSCALE, photographed_input

SEED = 11


def photo_figures(model, calibration: Calibration, threshold: float, films: list[Source], labels: np.ndarray,
                  size: int, seed: int = SEED, long_side: tuple[int, int] = (1200, 2000)) -> dict[str, dict]:
    """Figures on ``films`` (files or bytes) and on one phone photo of each, photographed in order from ``seed``."""
    labels = np.asarray(labels)
    if len(films) == 0 or len(films) != len(labels) or len(np.unique(labels)) != 2:
        raise ValueError("photo_figures needs films of both classes, one label per film")
    films = [read_bytes(film) for film in films]  # each file read once, for the photo and the film
    rng = np.random.default_rng(seed)
    photos = [photographed_input(film, size, rng, upscale=FIELD_UPSCALE, long_side=long_side) for film in films]
    clean = [prepare_image(film, size) for film in films]
    out = {}
    for name, images in (("films", clean), ("photos", photos)):
        summary = classification_summary(labels, calibration.apply(predict_arrays(model, np.stack(images))), threshold)
        out[name] = {key: round(summary[key], 4) for key in ("auc", "specificity", "recall")}
    return out


def record(model: Path, figures: dict[str, dict], *, split: str, images: int, seed: int, threshold: float) -> None:
    """Write the photo figures into the metadata beside ``model``, with the threshold they were taken at."""
    from core.model import load_metadata

    meta = load_metadata(model)
    photos = {"split": split, "images": images, "seed": seed, "threshold": round(threshold, 6), **figures,
              "command": f"python -m training.photo_check --model {model} --split {split} --seed {seed} --record"}
    meta.replace(metrics={**meta.metrics, "phone_photos": photos}).write(model)


def check_split(model: Path, data: Path, manifest: pd.DataFrame, split: str = "val", seed: int = SEED,
                *, record_figures: bool = False) -> dict[str, dict]:
    """Photograph ``split``'s films and score films and photos with the model beside ``model``.

    Raises ``ValueError`` when the split lacks films of either class. With ``record_figures``
    the figures are written into the metadata (``record``).
    """
    from core.model import load_bundle

    frame = manifest[manifest["split"] == split]
    if frame.empty:
        raise ValueError(f"the manifest has no '{split}' films")
    bundle = load_bundle(model)
    films = [data / file for file in frame["file"]]
    labels = (frame["label"] == "PNEUMONIA").to_numpy().astype(int)
    figures = photo_figures(bundle.model, bundle.calibration, bundle.threshold, films, labels,
                            bundle.input_size, seed=seed)
    if record_figures:
        record(model, figures, split=split, images=len(films), seed=seed, threshold=bundle.threshold)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = model_parser(__doc__)
    parser.add_argument("--split", default="val", help="split of the manifest to photograph (default: val)")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--record", action="store_true", help="write the figures into the model's metadata")
    args = parser.parse_args(argv)
    from core.model import load_metadata, metadata_path

    manifest = pd.read_csv(args.manifest or args.model.parent / "split_manifest.csv")
    try:
        figures = check_split(args.model, args.data, manifest, args.split, args.seed, record_figures=args.record)
    except ValueError as exc:
        parser.error(str(exc))
    threshold = load_metadata(args.model).threshold.value
    print(f"{(manifest['split'] == args.split).sum()} {args.split} films, threshold {threshold:.4f}")
    for name, row in figures.items():
        print(f"{name:7} AUC {row['auc']:.4f}  specificity {row['specificity']:.1%}  recall {row['recall']:.1%}")
    if args.record:
        print(f"recorded in {metadata_path(args.model)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""How the model reads phone photos of films: each film of a split photographed with the field
simulator (``training.field_capture``: tint, margin, skew, glare, vignetting, JPEG), captured
by the app's own preprocessing and scored at the model's threshold, beside the films themselves.

    python -m training.photo_check --model models/pneumonia_ensemble.keras --data ../shared/data/chest_xray

Validation films by default: a figure to choose a model or a setting by. The build's
field-capture figures (``training/fit_gate.py``) photograph the test films and only report.
Every photo is scored, the gate off: this measures the model's reading, not what the gate refuses.
``--record`` writes the figures into the model's metadata (``metrics.phone_photos``), which the
model card shows beside the field-capture figures.

``--simulator lightbox`` photographs the films with a second simulator that nothing is trained
on (``training.lightbox_photos``: a light box around the film, auto-exposure, tone mapping,
sharpening, shake, lens distortion, a messaging app's re-encode), so the figures are not judged by
the simulator the members learned from. It also reports the share of photos the gate accepts
and the figures on those (what a user gets); ``--record`` writes them to ``metrics.lightbox_photos``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from core.calibration import Calibration
from core.evaluation.metrics import classification_summary
from core.inputs.raster import decode_gray
from core.inputs.read import Source, read_bytes
from core.preprocessing import prepare_image
from core.scoring import predict_arrays
from training.arguments import model_parser
from training.field_capture import FIELD_UPSCALE, photograph_film
from training.lightbox_photos import CAMERA_LONG_SIDE, lightbox_photo

SEED = 11
SIMULATORS = ("field", "lightbox")
FIELD_LONG_SIDE = (1200, 2000)  # the field-capture figures' photo size (a phone's picture, forwarded)


def photographs(films: list[bytes], seed: int = SEED, simulator: str = "field",
                long_side: tuple[int, int] | None = None) -> list[bytes]:
    """One phone photo (JPEG bytes) of each encoded film, photographed in order from ``seed``.

    ``long_side`` bounds the photos' long side (each simulator's own range when None).
    """
    if simulator not in SIMULATORS:
        raise ValueError(f"unknown simulator {simulator!r}; expected one of {SIMULATORS}")
    rng = np.random.default_rng(seed)
    if simulator == "lightbox":
        return [lightbox_photo(decode_gray(film), rng, long_side=long_side or CAMERA_LONG_SIDE) for film in films]
    long_side = long_side or FIELD_LONG_SIDE
    return [photograph_film(decode_gray(film), rng, upscale=FIELD_UPSCALE, long_side=long_side)[1].jpeg
            for film in films]


def _figures(labels: np.ndarray, probabilities: np.ndarray, threshold: float) -> dict[str, float]:
    summary = classification_summary(labels, probabilities, threshold)
    return {key: round(summary[key], 4) for key in ("auc", "specificity", "recall")}


def photo_figures(model, calibration: Calibration, threshold: float, films: list[Source], labels: np.ndarray,
                  size: int, seed: int = SEED, long_side: tuple[int, int] | None = None, simulator: str = "field",
                  accepts: Callable[[list[bytes]], np.ndarray] | None = None) -> dict[str, dict]:
    """Figures on ``films`` (files or bytes) and on one phone photo of each, photographed in order from ``seed``.

    With ``accepts`` (photos -> a boolean mask of those the gate lets through) the figures also
    hold the accepted share and, under ``accepted_photos``, the figures on the accepted photos.
    """
    labels = np.asarray(labels)
    if len(films) == 0 or len(films) != len(labels) or len(np.unique(labels)) != 2:
        raise ValueError("photo_figures needs films of both classes, one label per film")
    films = [read_bytes(film) for film in films]  # each file read once, for the photo and the film
    photos = photographs(films, seed, simulator, long_side)
    out = {}
    for name, sources in (("films", films), ("photos", photos)):
        images = np.stack([prepare_image(source, size) for source in sources])
        probabilities = calibration.apply(predict_arrays(model, images))
        out[name] = _figures(labels, probabilities, threshold)
    if accepts is not None:
        kept = np.asarray(accepts(photos), bool)
        out["photos"]["accepted"] = round(float(kept.mean()), 4)
        if len(np.unique(labels[kept])) == 2:
            out["accepted_photos"] = _figures(labels[kept], probabilities[kept], threshold)
    return out


def gate_accepts(bundle) -> Callable[[list[bytes]], np.ndarray]:
    """The mask of photos that ``bundle``'s gate (and the reader) let through, as the app would."""
    from core.scoring import iter_outcomes

    def accepts(photos: list[bytes]) -> np.ndarray:
        return np.array([outcome.ok for outcome in iter_outcomes(bundle, list(enumerate(photos)))], bool)

    return accepts


def record(model: Path, figures: dict[str, dict], *, split: str, images: int, seed: int, threshold: float,
           simulator: str = "field") -> None:
    """Write the photo figures into the metadata beside ``model``, with the threshold they were taken at."""
    from core.model import load_metadata
    from core.model.metadata import PHOTO_METRICS

    meta = load_metadata(model)
    option = "" if simulator == "field" else f" --simulator {simulator}"
    photos = {"split": split, "images": images, "seed": seed, "threshold": round(threshold, 6), **figures,
              "command": f"python -m training.photo_check --model {model} --split {split} --seed {seed}"
                         f"{option} --record"}
    meta.replace(metrics={**meta.metrics, PHOTO_METRICS[simulator]: photos}).write(model)


def check_split(model: Path, data: Path, manifest: pd.DataFrame, split: str = "val", seed: int = SEED,
                *, record_figures: bool = False, simulator: str = "field") -> dict[str, dict]:
    """Photograph ``split``'s films and score films and photos with the model beside ``model``.

    Raises ``ValueError`` when the split lacks films of either class. With ``record_figures``
    the figures are written into the metadata (``record``). The light-box simulator's figures
    also say what the gate accepts (when the model has one).
    """
    from core.model import load_bundle

    frame = manifest[manifest["split"] == split]
    if frame.empty:
        raise ValueError(f"the manifest has no '{split}' films")
    bundle = load_bundle(model)
    films = [data / file for file in frame["file"]]
    labels = (frame["label"] == "PNEUMONIA").to_numpy().astype(int)
    accepts = gate_accepts(bundle) if simulator == "lightbox" and bundle.gate is not None else None
    figures = photo_figures(bundle.model, bundle.calibration, bundle.threshold, films, labels,
                            bundle.input_size, seed=seed, simulator=simulator, accepts=accepts)
    if record_figures:
        record(model, figures, split=split, images=len(films), seed=seed, threshold=bundle.threshold,
               simulator=simulator)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = model_parser(__doc__)
    parser.add_argument("--split", default="val", help="split of the manifest to photograph (default: val)")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--simulator", choices=SIMULATORS, default="field",
                        help="field: the training photos' simulator; lightbox: one nothing is trained on")
    parser.add_argument("--record", action="store_true", help="write the figures into the model's metadata")
    args = parser.parse_args(argv)
    from core.model import load_metadata, metadata_path

    manifest = pd.read_csv(args.manifest or args.model.parent / "split_manifest.csv")
    try:
        figures = check_split(args.model, args.data, manifest, args.split, args.seed, record_figures=args.record,
                              simulator=args.simulator)
    except ValueError as exc:
        parser.error(str(exc))
    threshold = load_metadata(args.model).threshold.value
    print(f"{(manifest['split'] == args.split).sum()} {args.split} films, threshold {threshold:.4f}")
    for name, row in figures.items():
        accepted = f"  gate accepts {row['accepted']:.1%}" if "accepted" in row else ""
        print(f"{name:15} AUC {row['auc']:.4f}  specificity {row['specificity']:.1%}  recall {row['recall']:.1%}"
              f"{accepted}")
    if args.record:
        print(f"recorded in {metadata_path(args.model)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Bacterial versus viral pneumonia: a research model trained on pneumonia films only.

    python -m training.subtype --data ../shared/data/chest_xray --out models/

The subtype is in the file names (``..._bacteria_...`` / ``..._virus_...``). The model sees
only PNEUMONIA films of the shipped patient-level split (the same patients in train, val and
test as the triage model), learns P(bacterial), and is judged on the test split with
patient-level bootstrap 95% intervals, against the published anchor: Kermany et al. (2018),
AUC 0.940 and accuracy 90.7% with an ImageNet-pretrained InceptionV3 on the official split.

It is research only. Antibiotics are the question behind it, and a wrong "viral" withholds
them; the dashboard shows it on the activation-maps page, labelled so, and nowhere else
unless it reaches AUC 0.90 on our test split, and then only behind an explicit option.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

DEFAULT_NAME = "pneumonia_subtype"
LABELS = ("viral", "bacterial")
ANCHOR = {"source": "Kermany et al., Cell 2018 (pretrained InceptionV3, official test split)",
          "auc": 0.940, "accuracy": 0.907}
SHOW_THRESHOLD_AUC = 0.90  # below this the subtype never leaves the research view


def is_bacterial(frame: pd.DataFrame) -> np.ndarray:
    """The subtype target: 1 for bacterial pneumonia, 0 for viral."""
    return (frame["subtype"] == "bacterial").astype("float32").to_numpy()


def pneumonia_only(manifest: pd.DataFrame) -> pd.DataFrame:
    """The PNEUMONIA rows with a known subtype, split unchanged (patients stay where they were)."""
    rows = manifest[(manifest["label"] == "PNEUMONIA") & manifest["subtype"].isin(["bacterial", "viral"])]
    if rows.empty or rows.groupby("split")["subtype"].nunique().min() < 2:
        raise ValueError("every split needs both bacterial and viral pneumonia films")
    return rows.reset_index(drop=True)


def balanced_threshold(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """The threshold with the highest balanced accuracy (mean of sensitivity and specificity)."""
    candidates = np.unique(probabilities)
    best, best_score = 0.5, -1.0
    for t in candidates:
        predicted = probabilities >= t
        sensitivity = predicted[labels == 1].mean()
        specificity = (~predicted[labels == 0]).mean()
        score = (sensitivity + specificity) / 2
        if score > best_score:
            best, best_score = float(t), score
    return best


def judge(model, frame: pd.DataFrame, data: Path, threshold: float, seed: int = 0) -> tuple[dict, np.ndarray]:
    """Test figures with patient-level bootstrap 95% intervals, and the probabilities behind them."""
    from core.evaluation.metrics import bootstrap_ci, classification_summary
    from training.evaluate import rounded, score_frame

    files = frame.assign(file=[str(data / f) for f in frame["file"]])
    probabilities = score_frame(model, files)
    labels = is_bacterial(frame).astype(int)
    metrics = classification_summary(labels, probabilities, threshold)
    ci = bootstrap_ci(labels, probabilities, threshold, groups=frame["patient"].to_numpy(), seed=seed)
    keep = ("auc", "accuracy", "recall", "specificity", "precision")
    # Undefined figures (precision when no film is called bacterial) are written as null.
    out = {k: rounded(metrics[k]) for k in keep}
    out["ci95"] = {k: [rounded(v[0]), rounded(v[1])] for k, v in ci.items() if k in keep}
    out["images"] = int(len(frame))
    out["bacterial"] = int(labels.sum())
    out["viral"] = int(len(labels) - labels.sum())
    return out, probabilities


def train_subtype(data: Path, out: Path, *, name: str = DEFAULT_NAME, epochs: int, patience: int, batch_size: int,
                  size: int, seed: int, inner_size: int | None, manifest_seed: int = 1337,
                  limit_per_class: int | None = None) -> dict:
    """Train, judge and record the subtype model; return its metadata as a dict."""
    import keras

    from core.evaluation.metrics import classification_summary
    from core.model import ModelMetadata, sha256_file
    from core.model.metadata import Threshold
    from training.augment import RECIPES
    from training.evaluate import _versions, rounded, score_frame
    from training.train import MANIFEST_NAME, build_manifest, fit

    manifest_path = out / MANIFEST_NAME
    if manifest_path.exists() and not limit_per_class:
        manifest = pd.read_csv(manifest_path)  # the shipped split: same patients as the triage model
    else:
        manifest = build_manifest(data, manifest_seed, limit_per_class)
    rows = pneumonia_only(manifest)
    model_path = out / f"{name}.keras"
    summary = fit("compact_cnn", rows, data, model_path, size=size, epochs=epochs, batch_size=batch_size,
                  seed=seed, patience=patience, recipe=RECIPES["robust"], inner_size=inner_size,
                  history_csv=out / f"{name}_history.csv", target=is_bacterial)
    model = keras.saving.load_model(model_path, compile=False, safe_mode=True)
    # Ship the weights only: the training checkpoint also holds Adam's moments (3x the size).
    model.save(model_path)
    val = rows[rows["split"] == "val"]
    val_probabilities = score_frame(model, val.assign(file=[str(data / f) for f in val["file"]]))
    threshold = balanced_threshold(is_bacterial(val).astype(int), val_probabilities)
    test = rows[rows["split"] == "test"]
    figures, probabilities = judge(model, test, data, threshold)
    val_figures = classification_summary(is_bacterial(val).astype(int), val_probabilities, threshold)
    test.assign(probability=probabilities)[["file", "patient", "subtype", "probability"]].to_csv(
        out / f"{name}_test_predictions.csv", index=False, float_format="%.6f")
    meta = ModelMetadata(
        name=name, labels=LABELS, input_size=size, sha256=sha256_file(model_path), weights_file=model_path.name,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        output="sigmoid probability of BACTERIAL (vs viral) pneumonia; research only, not for treatment decisions",
        preprocessing="as the triage model (grayscale, letterboxed to the input side, rescaled inside the model)",
        threshold=Threshold(value=round(threshold, 6), rule="highest balanced accuracy on the validation split",
                            chosen_on="val", validation={k: rounded(val_figures[k])
                                                         for k in ("auc", "recall", "specificity")}),
        training={**summary, "image_size": size,
                  "command": "python -m training.subtype --data <dataset root> --out models/"},
        data={split: {"bacterial": int((g["subtype"] == "bacterial").sum()),
                      "viral": int((g["subtype"] == "viral").sum())} for split, g in rows.groupby("split")},
        metrics={"test": figures, "anchor": ANCHOR,
                 "shown_beyond_research_view": bool((figures["auc"] or 0.0) >= SHOW_THRESHOLD_AUC),
                 "rule": f"shown outside the research view only if test AUC >= {SHOW_THRESHOLD_AUC}, "
                         "and then only behind an explicit option"},
        versions=_versions(),
    )
    meta.write(model_path)
    return meta.to_dict()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from training.arguments import run_parser

    parser = run_parser(__doc__, DEFAULT_NAME)
    parser.add_argument("--inner-size", type=int, default=None, help="resize inside the model to this side")
    parser.add_argument("--seed", type=int, default=5)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        meta = train_subtype(args.data, args.out, name=args.name, epochs=args.epochs, patience=args.patience,
                             batch_size=args.batch_size, size=args.image_size, seed=args.seed,
                             inner_size=args.inner_size, limit_per_class=args.limit_per_class)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"threshold": meta["threshold"], "test": meta["metrics"]["test"]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Fit the "cannot assess" gate on the training split and measure it.

    python -m training.fit_gate --model models/pneumonia_cnn.keras --data ../shared/data/chest_xray

Thresholds: each image statistic's limit is its 0.1% / 99.9% quantile on training
X-rays (chroma with a floor for JPEG colour noise); the out-of-distribution limit is the
99.9% quantile of Mahalanobis distances on the validation split. Then it measures the
share of real X-rays refused on our test split and the share of non-X-ray images
(``training.nonxray``) accepted, and stores thresholds and figures in the metadata.
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from core.gate import describe_source, fit_ood, image_statistics
from core.inputs.read import read_bytes
from core.model import ModelBundle, load_metadata, sha256_file
from core.model.metadata import GateMetadata
from core.preprocessing import prepare_image
from core.scoring import iter_outcomes, predict_with_features
from training.nonxray import build_nonxray_set

CHROMA_FLOOR = 10.0
STAT_QUANTILE = 0.001
OOD_QUANTILE = 0.999


def extract(model, sources: list, size: int, batch_size: int = 64) -> dict[str, np.ndarray]:
    """Penultimate features, image statistics and chroma for each source."""
    feats, stats, chroma = [], [], []

    def load(source):
        data = read_bytes(source)
        return prepare_image(data, size), describe_source(data).chroma

    with ThreadPoolExecutor(max_workers=2) as pool:
        for start in range(0, len(sources), batch_size):
            loaded = list(pool.map(load, sources[start:start + batch_size]))
            images = np.stack([image for image, _ in loaded])
            _, features = predict_with_features(model, images)
            feats.append(features)
            stats.extend(image_statistics(image) for image, _ in loaded)
            chroma.extend(c for _, c in loaded)
    table = pd.DataFrame(stats)
    return {"features": np.concatenate(feats), "chroma": np.array(chroma),
            **{k: table[k].to_numpy() for k in table.columns}}


def choose_thresholds(train: dict[str, np.ndarray], val_distances: np.ndarray) -> dict[str, float]:
    """Limits from the in-distribution data (see module docstring)."""
    return {
        "max_chroma": float(max(CHROMA_FLOOR, np.quantile(train["chroma"], 1 - STAT_QUANTILE))),
        "min_std": float(np.quantile(train["std"], STAT_QUANTILE)),
        "max_flat_fraction": float(np.quantile(train["flat_fraction"], 1 - STAT_QUANTILE)),
        "max_edge_density": float(np.quantile(train["edge_density"], 1 - STAT_QUANTILE)),
        "max_ood_distance": float(np.quantile(val_distances, OOD_QUANTILE)),
    }


def fit_gate(model_path: Path, data: Path, manifest_path: Path) -> GateMetadata:
    """Fit, measure and record the gate for the model at ``model_path``."""
    import keras

    model_path = Path(model_path)
    meta = load_metadata(model_path)
    model = keras.saving.load_model(model_path, compile=False, safe_mode=True)
    size = int(model.input_shape[1])
    manifest = pd.read_csv(manifest_path)
    frames = {s: manifest[manifest["split"] == s] for s in ("train", "val", "test")}
    paths = {s: [str(data / f) for f in frame["file"]] for s, frame in frames.items()}

    train = extract(model, paths["train"], size)
    ood = fit_ood(train["features"], (frames["train"]["label"] == "PNEUMONIA").to_numpy())
    val = extract(model, paths["val"], size)
    thresholds = choose_thresholds(train, ood.distance(val["features"]))

    ood_file = model_path.with_name(f"{model_path.stem}_ood.npz")
    ood.save(ood_file)
    gate_meta = GateMetadata(
        thresholds={k: round(v, 6) for k, v in thresholds.items()},
        ood_file=ood_file.name,
        ood_sha256=sha256_file(ood_file),
        method=("image statistics (chroma, contrast, flat areas, edge density) with limits at the "
                   f"{STAT_QUANTILE:.1%}/{1 - STAT_QUANTILE:.1%} quantiles of training X-rays; Mahalanobis "
                   "distance to the nearest class mean of penultimate-layer features (Ledoit-Wolf shared "
                   f"covariance fitted on the training split), limit at the {OOD_QUANTILE:.1%} quantile of "
                   "validation distances"),
    )
    gated = ModelBundle(model=model, metadata=meta.replace(gate=gate_meta), path=model_path, ood=ood)

    test_results = list(iter_outcomes(gated, zip(paths["test"], paths["test"], strict=True)))
    refused = [r for r in test_results if not r.ok]
    nonxray = build_nonxray_set()
    nonxray_results = list(iter_outcomes(gated, nonxray))
    accepted = [r for r in nonxray_results if r.ok]
    report = pd.DataFrame({
        "image": [r.name for r in nonxray_results],
        "category": [r.name.split(":")[0] if not r.name.startswith("synthetic") else
                     "synthetic:" + r.name.split(":")[1].rstrip("0123456789") for r in nonxray_results],
        "accepted": [r.ok for r in nonxray_results],
        "reason": [r.error or "" for r in nonxray_results],
    })
    report.to_csv(model_path.with_name(f"{model_path.stem}_gate_nonxray.csv"), index=False)
    gate_meta.measured.update({
        "xray_refused_test": round(len(refused) / len(test_results), 4),
        "xray_refused_test_count": f"{len(refused)} of {len(test_results)}",
        "nonxray_accepted": round(len(accepted) / len(nonxray_results), 4),
        "nonxray_accepted_count": f"{len(accepted)} of {len(nonxray_results)}",
        "nonxray_set": "sample images shipped with scikit-image and matplotlib (with crops and grayscale "
                       "copies), synthetic documents, screenshots, colour and gray noise, gradients, "
                       "near-uniform images; see training/nonxray.py",
        "nonxray_accepted_by_category": report.groupby("category")["accepted"].mean().round(3).to_dict(),
        "xray_refused_by_reason": pd.Series([r.code for r in refused], dtype=str).value_counts().to_dict(),
        "nonxray_refused_by_reason": pd.Series([r.code for r in nonxray_results if not r.ok],
                                               dtype=str).value_counts().to_dict(),
    })
    meta.replace(gate=gate_meta).write(model_path)
    return gate_meta


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=Path("models/pneumonia_cnn.keras"))
    parser.add_argument("--data", type=Path, default=Path("../shared/data/chest_xray"))
    parser.add_argument("--manifest", type=Path, default=None, help="default: split_manifest.csv beside the model")
    args = parser.parse_args(argv)
    try:
        gate = fit_gate(args.model, args.data, args.manifest or args.model.parent / "split_manifest.csv")
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"thresholds": gate.thresholds, **gate.measured}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

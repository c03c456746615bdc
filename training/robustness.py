"""The shift benchmark: the model on our test split under acquisition changes and framing.

    python -m training.robustness --model models/pneumonia_ensemble.keras --data ../shared/data/chest_xray

Every test image (224 px, as prepared for the model) is corrupted with each condition of
``core.evaluation.corruptions`` — the MedMNIST-C pneumonia set at severities 1-5 and
centre zooms of 1.15×, 1.3× and 1.5× — and scored through the gate at the model's
shipped threshold. Written to ``<model>_robustness.csv``: per condition the AUC (over all
images: the ranking the model would give), accuracy, recall and specificity at the
threshold, the share of normal images flagged, and the share the gate refuses.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from core.evaluation.corruptions import FRAMING, PARAMS, corrupt_all, suite
from core.evaluation.metrics import classification_summary
from core.gate import SourceInfo
from core.model import ModelBundle, load_bundle, sibling_path
from core.preprocessing import prepare_image
from core.scoring import score_prepared
from training.arguments import model_parser

COLUMNS = ["corruption", "severity", "parameter", "images", "auc", "accuracy", "recall", "specificity",
           "normals_flagged", "refused", "auc_change", "accuracy_change", "normals_flagged_change"]


def load_split(data: Path, manifest: Path, split: str, size: int, limit: int | None = None) -> pd.DataFrame:
    """The manifest rows of ``split`` with their prepared ``(size, size)`` images in column ``image``."""
    frame = pd.read_csv(manifest)
    frame = frame[frame["split"] == split].reset_index(drop=True)
    if frame.empty:
        raise ValueError(f"the manifest has no '{split}' images")
    if limit:
        # Keep both classes: the first ``limit`` of each label, in manifest order.
        frame = frame.groupby("label", group_keys=False).head(limit).reset_index(drop=True)
    frame["image"] = [prepare_image(data / f, size) for f in frame["file"]]
    return frame


def score_condition(bundle: ModelBundle, images: list[np.ndarray], batch_size: int = 64
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities and gate refusals (bool) for prepared images, as uploads of their own size."""
    probabilities, refused = [], []
    for start in range(0, len(images), batch_size):
        chunk = images[start:start + batch_size]
        infos = [SourceInfo(image.shape[1], image.shape[0]) for image in chunk]
        for probability, refusal in score_prepared(bundle, np.stack(chunk), infos):
            probabilities.append(probability)
            refused.append(refusal is not None)
    # Calibrated, as the app and the CLI report them: the shipped threshold is on that scale.
    return bundle.calibration.apply(np.asarray(probabilities)), np.asarray(refused)


def parameter(name: str, severity: int) -> float:
    """The documented parameter of a condition (0 for the clean images)."""
    if name == "none":
        return 0.0
    if name in FRAMING:
        return float(FRAMING[name][severity])
    return float(PARAMS[name][severity - 1])


def benchmark(bundle: ModelBundle, frame: pd.DataFrame, conditions: list[tuple[str, int]],
              threshold: float | None = None, progress: bool = True) -> pd.DataFrame:
    """One row per condition (the clean images first), with changes against the clean row."""
    threshold = bundle.threshold if threshold is None else threshold
    labels = (frame["label"] == "PNEUMONIA").astype(int).to_numpy()
    rows = []
    originals = list(frame["image"])
    for name, severity in [("none", 0), *conditions]:
        start = time.perf_counter()
        images = originals if name == "none" else corrupt_all(originals, name, severity)
        probabilities, refused = score_condition(bundle, images)
        m = classification_summary(labels, probabilities, threshold)
        rows.append({"corruption": name, "severity": severity, "parameter": parameter(name, severity),
                     "images": len(images), "auc": m["auc"], "accuracy": m["accuracy"], "recall": m["recall"],
                     "specificity": m["specificity"], "normals_flagged": 1.0 - m["specificity"],
                     "refused": float(refused.mean())})
        if progress:
            print(f"[robustness] {name} {severity}: AUC {m['auc']:.4f} accuracy {m['accuracy']:.3f} "
                  f"refused {refused.mean():.1%} ({time.perf_counter() - start:.1f} s)", file=sys.stderr, flush=True)
    table = pd.DataFrame(rows)
    clean = table.iloc[0]
    table["auc_change"] = table["auc"] - clean["auc"]
    table["accuracy_change"] = table["accuracy"] - clean["accuracy"]
    table["normals_flagged_change"] = table["normals_flagged"] - clean["normals_flagged"]
    return table[COLUMNS]


def summarise(table: pd.DataFrame, severity: int = 3) -> dict[str, float]:
    """The headline figures the targets are stated in: photometric corruptions at one severity, and framing."""
    photometric = table[(table["corruption"].isin(PARAMS)) & (table["severity"] == severity)]
    zoom = table[table["corruption"] == "zoom"].set_index("severity")
    out = {
        "clean_auc": float(table.iloc[0]["auc"]),
        "clean_accuracy": float(table.iloc[0]["accuracy"]),
        f"severity{severity}_mean_auc": float(photometric["auc"].mean()),
        f"severity{severity}_min_auc": float(photometric["auc"].min()),
        f"severity{severity}_worst": str(photometric.loc[photometric["auc"].idxmin(), "corruption"]),
        f"severity{severity}_max_accuracy_drop": float(-photometric["accuracy_change"].min()),
        f"severity{severity}_max_refused": float(photometric["refused"].max()),
    }
    for level, factor in FRAMING["zoom"].items():
        if level in zoom.index:
            out[f"zoom{factor:g}_normals_flagged_change"] = float(zoom.loc[level, "normals_flagged_change"])
    return out


def network_scores(model, images: list[np.ndarray], batch_size: int = 64) -> np.ndarray:
    """The network's own P(pneumonia) for prepared images (no gate, no calibration)."""
    from core.scoring import predict_arrays

    return np.concatenate([predict_arrays(model, np.stack(images[i:i + batch_size]))
                           for i in range(0, len(images), batch_size)])


def quick_shift(model, images: list[np.ndarray], labels: np.ndarray, threshold: float, severity: int = 3,
                zoom_levels: tuple[int, ...] = (2, 3), clean_scores: np.ndarray | None = None,
                flagged_under: tuple[str, ...] = ()) -> dict:
    """The benchmark's headline figures for a bare network, for tables of many models.

    Every photometric corruption at one ``severity`` (mean and worst AUC, largest accuracy
    drop at ``threshold``) and the change in normals flagged under centre zooms
    (``zoom_levels`` index ``FRAMING["zoom"]``: 2 is 1.3x, 3 is 1.5x). ``clean_scores`` saves
    scoring the clean images again; each corruption named in ``flagged_under`` also reports
    its change in normals flagged (``<name><severity>_normals_flagged_change``).
    """
    scores = network_scores(model, images) if clean_scores is None else clean_scores
    clean = classification_summary(labels, scores, threshold)
    aucs, drops, flagged = [], [], {}
    for name in PARAMS:
        shifted = corrupt_all(images, name, severity)
        m = classification_summary(labels, network_scores(model, shifted), threshold)
        aucs.append(m["auc"])
        drops.append(clean["accuracy"] - m["accuracy"])
        if name in flagged_under:
            flagged[f"{name}{severity}_normals_flagged_change"] = clean["specificity"] - m["specificity"]
    out = {f"shift{severity}_mean_auc": float(np.mean(aucs)), f"shift{severity}_min_auc": float(np.min(aucs)),
           f"shift{severity}_worst": list(PARAMS)[int(np.argmin(aucs))],
           f"shift{severity}_max_accuracy_drop": float(np.max(drops)), **flagged}
    for level in zoom_levels:
        factor = FRAMING["zoom"][level]
        m = classification_summary(labels, network_scores(model, corrupt_all(images, "zoom", level)),
                                   threshold)
        out[f"zoom{factor:g}_auc"] = m["auc"]
        out[f"zoom{factor:g}_normals_flagged_change"] = (1 - m["specificity"]) - (1 - clean["specificity"])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = model_parser(__doc__, model_required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--severities", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--limit", type=int, default=None, help="at most this many images per label (quick runs)")
    parser.add_argument("--output", type=Path, default=None, help="default: <model>_robustness.csv beside it")
    args = parser.parse_args(argv)
    try:
        bundle = load_bundle(args.model)
        frame = load_split(args.data, args.manifest or args.model.parent / "split_manifest.csv", args.split,
                           bundle.input_size, args.limit)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    conditions = [(n, s) for n, s in suite() if n in FRAMING or s in args.severities]
    table = benchmark(bundle, frame, conditions)
    output = args.output or sibling_path(args.model, "_robustness.csv")
    table.to_csv(output, index=False, float_format="%.4f")
    summary = summarise(table, severity=3 if 3 in args.severities else args.severities[0])
    print(pd.Series(summary).to_string())
    print(f"wrote {output}")
    if args.output is None:
        record(args.model, table, summary)
    return 0


def _condition(row: pd.Series) -> str:
    return f"{row['corruption']} severity {int(row['severity'])}"


def record(model: Path, table: pd.DataFrame, summary: dict) -> None:
    """Write the threshold's stability under the benchmark and the headline figures into the metadata."""
    from core.model import load_metadata

    meta = load_metadata(model)
    shifted = table[table["corruption"] != "none"]
    stability = {
        "benchmark": f"{model.stem}_robustness.csv (python -m training.robustness)",
        "recall_range": [round(float(shifted["recall"].min()), 4), round(float(shifted["recall"].max()), 4)],
        "specificity_range": [round(float(shifted["specificity"].min()), 4),
                              round(float(shifted["specificity"].max()), 4)],
        "worst_recall": _condition(shifted.loc[shifted["recall"].idxmin()]),
        "worst_specificity": _condition(shifted.loc[shifted["specificity"].idxmin()]),
    }
    rounded = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in summary.items()}
    meta.replace(threshold=dataclasses.replace(meta.threshold, stability=stability),
                 metrics={**meta.metrics, "robustness": rounded}).write(model)


if __name__ == "__main__":
    sys.exit(main())

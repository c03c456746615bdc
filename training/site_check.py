"""Site calibration checked on our own data: calibrate on one half of the test split, score the other.

    python -m training.site_check --model models/pneumonia_ensemble.keras --data ../shared/data/chest_xray

The test split's patients are halved (seeded, stratified by label). Half A goes through
``python -m core.cli calibrate`` (target recall 0.95 by default), half B through
``python -m core.cli predict`` with and without the resulting profile; the figures on half B
are printed side by side. Exactly the commands a site would run, on folders of links.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from core.apps.cli import main as cli
from core.evaluation.metrics import threshold_metrics


def halves(manifest: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Test-split rows of half A and half B, split by patient, each label halved."""
    test = manifest[manifest["split"] == "test"]
    rng = np.random.default_rng(seed)
    first = set()
    for _, group in test.groupby("label"):
        patients = sorted(group["patient"].unique())
        rng.shuffle(patients)
        first |= set(patients[: len(patients) // 2])
    in_a = test["patient"].isin(first)
    return test[in_a], test[~in_a]


def link_tree(rows: pd.DataFrame, data: Path, root: Path) -> Path:
    """``root/{NORMAL,PNEUMONIA}/`` holding links to the rows' images (the dataset's own layout)."""
    for file, label in zip(rows["file"], rows["label"], strict=True):
        target = root / label / Path(file).name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to((data / file).resolve())
    return root


def figures(csv_path: Path) -> dict[str, float]:
    """Recall, specificity and accuracy of a predict CSV whose paths hold the label folder."""
    with csv_path.open(newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["prediction"]]
    labels = np.array([int("/PNEUMONIA/" in r["file"]) for r in rows])
    predicted = np.array([float(r["prediction"] == "PNEUMONIA") for r in rows])
    m = threshold_metrics(labels, predicted, 0.5)
    return {"images": len(rows), "recall": m["recall"], "specificity": m["specificity"], "accuracy": m["accuracy"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/chest_xray"))
    parser.add_argument("--target-recall", type=float, default=0.95)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    manifest = pd.read_csv(args.model.parent / "split_manifest.csv")
    half_a, half_b = halves(manifest, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        a = link_tree(half_a, args.data, tmp / "A")
        b = link_tree(half_b, args.data, tmp / "B")
        profile = tmp / "site-half-a.json"
        if cli(["calibrate", str(a), "--output", str(profile), "--target-recall", str(args.target_recall),
                "--site", "half A of our test split", "--model", str(args.model), "--no-progress"]) != 0:
            return 2
        results = {}
        for name, extra in (("shipped threshold", []), ("site profile (half A)", ["--profile", str(profile)])):
            out = tmp / f"{len(results)}.csv"
            cli(["predict", str(b), "--output", str(out), "--model", str(args.model), *extra])
            results[name] = figures(out)
    table = pd.DataFrame(results).T
    print(f"half A: {len(half_a)} images of {half_a['patient'].nunique()} patients (calibration); "
          f"half B: {len(half_b)} images of {half_b['patient'].nunique()} patients (scored)")
    print(table.to_string(float_format=lambda v: f"{v:.4f}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())

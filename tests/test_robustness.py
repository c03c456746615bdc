"""The shift benchmark (training.robustness) and the half-split site check, on tiny inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import TINY_SIZE, synthetic_names, write_dataset, xray_like
from training.robustness import COLUMNS, benchmark, parameter, summarise
from training.site_check import halves


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rows = []
    for i in range(12):
        image = xray_like(TINY_SIZE, TINY_SIZE, seed=i)
        if i % 2:
            image = np.clip(image.astype(int) + 40, 0, 255).astype(np.uint8)
        rows.append({"file": f"{i}.png", "label": "PNEUMONIA" if i % 2 else "NORMAL", "image": image})
    return pd.DataFrame(rows)


def test_benchmark_rows_start_clean_and_measure_changes(tiny_bundle, frame) -> None:
    conditions = [("gaussian_noise", 3), ("brightness_up", 5), ("zoom", 2)]
    table = benchmark(tiny_bundle, frame, conditions, progress=False)
    assert list(table.columns) == COLUMNS
    assert list(zip(table["corruption"], table["severity"], strict=True)) == [("none", 0), *conditions]
    clean = table.iloc[0]
    assert clean["auc_change"] == 0 and clean["accuracy_change"] == 0
    np.testing.assert_allclose(table["auc_change"], table["auc"] - clean["auc"])
    np.testing.assert_allclose(table["normals_flagged"], 1 - table["specificity"])
    assert (table["images"] == len(frame)).all() and table["refused"].between(0, 1).all()
    assert parameter("zoom", 2) == 1.3 and parameter("gaussian_noise", 3) == 0.06


def test_summary_reports_the_targets_figures(tiny_bundle, frame) -> None:
    conditions = [("gaussian_noise", 3), ("contrast_down", 3), ("zoom", 1), ("zoom", 2), ("zoom", 3)]
    summary = summarise(benchmark(tiny_bundle, frame, conditions, progress=False))
    assert set(summary) >= {"clean_auc", "severity3_mean_auc", "severity3_min_auc", "severity3_worst",
                            "zoom1.3_normals_flagged_change", "zoom1.5_normals_flagged_change"}
    assert summary["severity3_worst"] in ("gaussian_noise", "contrast_down")


def test_site_check_halves_split_patients(tmp_path) -> None:
    from training.train import build_manifest

    data = write_dataset(tmp_path / "d", synthetic_names(20, 10, 10, images_per_patient=2))
    manifest = build_manifest(data, seed=1)
    half_a, half_b = halves(manifest, seed=0)
    assert not set(half_a["patient"]) & set(half_b["patient"])
    test = manifest[manifest["split"] == "test"]
    assert len(half_a) + len(half_b) == len(test)
    assert set(half_a["label"]) == set(half_b["label"]) == {"NORMAL", "PNEUMONIA"}

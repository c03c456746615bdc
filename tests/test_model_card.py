"""Model-card assembly (ui.model_card) from metadata typed like the evaluation step writes it."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import pytest

from core.model import ModelMetadata
from ui.model_card import (
    INTENDED_USE,
    LIMITATIONS,
    OUT_OF_SCOPE,
    calibration_caption,
    cues_view,
    fmt,
    history_figure,
    metrics_table,
    read_optional_csv,
    robustness_heatmap,
    shortfall_caption,
    split_table,
    subtype_table,
    threshold_caption,
    training_table,
)

# Parsed through the typed schema the evaluation step writes with, so a renamed or retyped
# field fails here too; tests/test_training_smoke.py also builds the card from real output.
METADATA = ModelMetadata.from_dict({
    "name": "pneumonia_cnn",
    "labels": ["NORMAL", "PNEUMONIA"],
    "sha256": "0" * 64,
    "input_size": 224,
    "preprocessing": "grayscale, squash-resize to 224x224",
    "threshold": {"value": 0.31, "rule": "highest threshold keeping validation recall >= 0.98"},
    "training": {
        "architecture": "compact_cnn", "parameters": 195417, "epochs_run": 24, "best_epoch": 17,
        "training_seconds": 1860.0, "batch_size": 32, "learning_rate": 0.001, "seed": 1337, "weights": None,
        "class_weights": {"0": 1.9, "1": 0.67},
        "augmentation": {"rotation_degrees": 10.8, "zoom": 0.12, "horizontal_flip": False},
    },
    "data": {
        "source": "Kermany et al.", "licence": "CC BY 4.0",
        "splits": {
            "train": {"images": 3650, "patients": 2000, "images_normal": 940, "images_pneumonia": 2710,
                      "patients_pneumonia": 1400},
            "val": {"images": 780, "patients": 430, "images_normal": 200, "images_pneumonia": 580,
                    "patients_pneumonia": 300},
            "test": {"images": 786, "patients": 431, "images_normal": 201, "images_pneumonia": 585,
                     "patients_pneumonia": 301},
        },
    },
    "metrics": {
        "test": {"threshold": 0.31, "tn": 150, "fp": 51, "fn": 9, "tp": 576, "recall": 0.9846,
                 "specificity": 0.7463, "accuracy": 0.9237, "precision": 0.9187, "npv": 0.9434, "f1": 0.9505,
                 "referred_fraction": 0.7977, "missed": 9, "auc": 0.975, "loss": 0.2},
        "test_ci95": {"auc": [0.96, 0.985], "recall": [0.975, 0.993], "specificity": [math.nan, 0.8]},
        "recall_by_subtype": {"viral": {"images": 200, "recall": 0.97}, "bacterial": {"images": 385, "recall": 0.99}},
    },
})

# What a model with nothing but the required entries shows.
EMPTY = ModelMetadata.from_dict({"labels": ["NORMAL", "PNEUMONIA"], "sha256": "0" * 64, "input_size": 224,
                                 "threshold": {"value": 0.5, "rule": "fixed"}})


def test_fixed_texts_state_scope_and_limits() -> None:
    text = " ".join(INTENDED_USE + OUT_OF_SCOPE + LIMITATIONS).lower()
    for phrase in ("one centre", "one to five", "frontal", "external validation", "threshold", "clinician"):
        assert phrase in text


def test_split_table() -> None:
    table = split_table(METADATA)
    assert list(table["split"]) == ["train", "validation", "test"]
    test = table.iloc[2]
    assert test["children"] == 431 and test["images"] == 786 and test["pneumonia images"] == 585
    assert test["pneumonia share"] == "74%"
    assert split_table(EMPTY).empty


def test_training_table() -> None:
    table = dict(training_table(METADATA).values.tolist())
    assert table["Architecture"] == "compact_cnn"
    assert table["Parameters"] == "195,417"
    assert table["Epochs run (best)"] == "24 (17)"
    assert table["Training time"] == "31.0 min"
    assert table["Initial weights"] == "none (trained from scratch)"
    assert "rotation degrees 10.80" in table["Augmentation"] and "horizontal flip no" in table["Augmentation"]
    empty = dict(training_table(EMPTY).values.tolist())
    assert empty["Architecture"] == "—" and empty["Training time"] == "—"


def test_metrics_table_with_confidence_intervals() -> None:
    table = metrics_table(METADATA).set_index("metric")
    assert table.loc["ROC AUC", "value"] == "0.975"
    assert table.loc["ROC AUC", "95% CI"] == "0.960 – 0.985"
    assert table.loc["Specificity", "95% CI"] == "—"  # a NaN bound is not shown as a number
    assert table.loc["NPV", "95% CI"] == "—"
    assert table.loc["Pneumonia cases missed", "value"] == "9 of 585"
    assert metrics_table(EMPTY).empty


def test_subtype_table() -> None:
    table = subtype_table(METADATA)
    assert list(table["pneumonia type"]) == ["bacterial", "viral"]
    assert list(table["recall"]) == ["0.990", "0.970"]
    assert subtype_table(EMPTY).empty


def test_calibration_caption_names_the_method_and_its_parameters() -> None:
    platt = METADATA.replace(calibration={"method": "platt", "temperature": 1.0, "slope": 1.71, "intercept": 3.06,
                                          "fitted_on": "validation split"})
    caption = calibration_caption(platt)
    assert caption.startswith("Platt scaling fitted on validation split") and "1.71" in caption and "3.06" in caption
    assert "Temperature" not in caption
    temperature = METADATA.replace(calibration={"method": "temperature", "temperature": 1.4})
    assert calibration_caption(temperature).startswith("Temperature scaling") and "T = 1.40" in \
        calibration_caption(temperature)
    assert calibration_caption(EMPTY).startswith("No calibration step")


def test_fmt() -> None:
    assert fmt(None) == "—" and fmt(math.nan) == "—"
    assert fmt(True) == "yes" and fmt(1234) == "1,234" and fmt(0.12345) == "0.123" and fmt("x") == "x"


def test_history_figure(tmp_path: Path) -> None:
    history = pd.DataFrame({"epoch": [0, 1, 2], "loss": [0.7, 0.5, 0.4], "val_loss": [0.8, 0.6, 0.55],
                            "auc": [0.7, 0.8, 0.9], "val_auc": [0.6, 0.7, 0.8], "learning_rate": [1e-3] * 3})
    fig = history_figure(history)
    go.Figure(fig.to_dict())  # valid for Plotly
    assert [t.name for t in fig.data] == ["training", "validation", "training", "validation"]
    assert list(fig.data[0].x) == [1, 2, 3]
    with pytest.raises(ValueError):
        history_figure(pd.DataFrame({"epoch": [0], "learning_rate": [0.1]}))


def test_read_optional_csv(tmp_path: Path) -> None:
    assert read_optional_csv(tmp_path / "missing.csv") is None
    (tmp_path / "empty.csv").write_text("")
    assert read_optional_csv(tmp_path / "empty.csv") is None
    (tmp_path / "header.csv").write_text("a,b\n")
    assert read_optional_csv(tmp_path / "header.csv") is None
    (tmp_path / "ok.csv").write_text("a,b\n1,2\n")
    assert read_optional_csv(tmp_path / "ok.csv").shape == (1, 2)


def test_metadata_is_not_modified() -> None:
    before = copy.deepcopy(METADATA)
    split_table(METADATA), training_table(METADATA), metrics_table(METADATA), subtype_table(METADATA)
    assert repr(METADATA) == repr(before)


def test_gate_table_reports_both_measured_rates() -> None:
    from core.model.metadata import GateMetadata
    from ui.model_card import gate_table

    gate = GateMetadata(thresholds={}, ood_file="x.npz", ood_sha256="0" * 64,
                        measured={"xray_refused_test": 0.0019, "xray_refused_test_count": "1 of 531",
                                  "nonxray_accepted": 0.02, "nonxray_accepted_count": "4 of 200"})
    table = gate_table(METADATA.replace(gate=gate))
    assert list(table["value"]) == ["0.2%", "2.0%"]
    assert list(table["count"]) == ["1 of 531", "4 of 200"]
    assert gate_table(METADATA).empty


def test_field_table_reports_acceptance_ranking_and_operating_point() -> None:
    from core.model.metadata import GateMetadata
    from ui.model_card import field_table

    field = {"images": 595, "accepted": 0.96, "auc_field": 0.981, "auc_clean": 0.985,
             "specificity_field": 0.9, "specificity_clean": 0.95, "recall_field": 0.97, "recall_clean": 0.96}
    gate = GateMetadata(thresholds={}, ood_file="x.npz", ood_sha256="0" * 64,
                        measured={"noisy_xray_refused_test": 0.002, "field": field})
    table = field_table(METADATA.replace(gate=gate)).set_index("measure")
    assert table.loc["Field-capture images accepted (595)", "value"] == "96.0%"
    assert table.loc["AUC on field captures (same films clean)", "value"] == "0.981 (0.985)"
    rows = [m for m in table.index if "shipped threshold" in m]
    assert [table.loc[m, "value"] for m in rows] == ["90.0% (95.0%)", "97.0% (96.0%)"]
    # Figures measured before the operating point was recorded: no empty rows.
    older = GateMetadata(thresholds={}, ood_file="x.npz", ood_sha256="0" * 64,
                         measured={"field": {"accepted": 0.9, "auc_field": 0.9, "auc_clean": 0.95}})
    assert not any("shipped threshold" in m for m in field_table(METADATA.replace(gate=older))["measure"])


def test_field_table_shows_validation_photos_only_at_the_threshold_they_were_taken_at() -> None:
    from ui.model_card import field_table

    photos = {"split": "val", "images": 496, "seed": 11, "threshold": METADATA.threshold.value,
              "films": {"auc": 0.996, "specificity": 0.978, "recall": 0.986},
              "photos": {"auc": 0.978, "specificity": 0.71, "recall": 0.983}}
    table = field_table(METADATA.replace(metrics={**METADATA.metrics, "phone_photos": photos})).set_index("measure")
    assert table.loc["AUC on phone photos of 496 validation films (the films themselves)", "value"] == "0.978 (0.996)"
    rows = [m for m in table.index if m.startswith(("Specificity on phone", "Recall on phone"))]
    assert [table.loc[m, "value"] for m in rows] == ["71.0% (97.8%)", "98.3% (98.6%)"]
    # Taken at another threshold: another operating point, not shown.
    stale = {**photos, "threshold": METADATA.threshold.value + 0.1}
    stale_table = field_table(METADATA.replace(metrics={**METADATA.metrics, "phone_photos": stale}))
    assert not any("phone photos" in m for m in stale_table["measure"])


def test_field_table_shows_light_box_photos_with_the_share_the_gate_accepts() -> None:
    from ui.model_card import field_table

    photos = {"split": "test", "images": 531, "seed": 11, "threshold": METADATA.threshold.value,
              "films": {"auc": 0.989, "specificity": 0.931, "recall": 0.973},
              "photos": {"auc": 0.89, "specificity": 0.63, "recall": 0.958, "accepted": 0.636},
              "accepted_photos": {"auc": 0.98, "specificity": 0.899, "recall": 0.95}}
    table = field_table(METADATA.replace(metrics={**METADATA.metrics, "lightbox_photos": photos})).set_index("measure")
    where = "light-box photos (a simulator nothing is trained on) of 531 test films"
    assert table.loc[f"Share of {where} the gate accepts", "value"] == "63.6%"
    assert table.loc[f"AUC on {where} (the films themselves)", "value"] == "0.890 (0.989)"
    assert table.loc[f"Specificity on {where} at the shipped threshold (the films themselves)", "value"] == \
        "63.0% (93.1%)"


def test_cues_view_ranks_each_question_by_separation() -> None:
    table = pd.DataFrame({
        "section": ["cues", "cues", "cues", "looks", "looks"],
        "statistic": ["fine_detail", "mean_intensity", "contrast_std", "cam_corner_share", "cam_corner_share (area)"],
        "group": ["pneumonia", "pneumonia", "pneumonia", "top", "a uniform map"],
        "reference": ["normal", "normal", "normal", "bottom", ""],
        "mean_group": [0.006, 0.48, 0.2, 0.26, 0.16], "mean_reference": [0.009, 0.48, 0.24, 0.5, math.nan],
        "auc": [0.12, 0.52, 0.70, 0.11, math.nan],
    })
    view = cues_view(table, per_section=2)
    assert list(view["question"]) == ["cues", "cues", "looks"]  # the uniform-map row is not a finding
    assert list(view["separation (AUC)"]) == ["0.880", "0.700", "0.890"]
    assert view["finding"].iloc[0].startswith("lower in pneumonia (0.006 vs 0.009 in normal)")
    assert view["statistic"].iloc[0] == "fine detail (grain, edge enhancement)"
    with pytest.raises(ValueError, match="lacks"):
        cues_view(table.drop(columns="auc"))


def test_threshold_caption_gives_the_rule_what_it_keeps_and_how_it_moves() -> None:
    bare = threshold_caption(METADATA)
    assert "0.310" in bare and "validation recall >= 0.98" in bare
    assert "shift benchmark" not in bare  # nothing recorded, nothing claimed
    raw = copy.deepcopy(METADATA.to_dict())
    raw["threshold"].update({
        "chosen_on": "validation split (clean and shifted)",
        "validation": {"recall": 0.995, "specificity": 0.97},
        "validation_shifted": {"recall": 0.979, "specificity": 0.93},
        "stability": {"recall_range": [0.87, 0.99], "specificity_range": [0.62, 0.98],
                      "worst_recall": "gaussian_blur severity 5", "worst_specificity": "gamma_down severity 5"},
    })
    caption = threshold_caption(ModelMetadata.from_dict(raw))
    assert "clean and shifted" in caption
    assert "recall 0.995 and specificity 0.970" in caption
    assert "pooled, 0.979 and 0.930" in caption
    assert "0.870–0.990 (lowest: gaussian_blur severity 5)" in caption
    assert "0.620–0.980 (lowest: gamma_down severity 5)" in caption


def test_shortfall_caption_names_how_few_films_carry_the_wrongly_ranked_pairs() -> None:
    # Ten normals, ten pneumonia films: one normal scored above every pneumonia film (10 wrong
    # pairs), one pneumonia film below it and two other normals (2 more); the rest in order.
    normal = [0.95] + [0.1 + 0.01 * i for i in range(9)]
    pneumonia = [0.165] + [0.6 + 0.01 * i for i in range(9)]
    frame = pd.DataFrame({"label": ["NORMAL"] * 10 + ["pneumonia"] * 10, "probability": normal + pneumonia})
    text = shortfall_caption(frame)
    assert "12 normal–pneumonia pairs (12.0% of all pairs)" in text
    assert "the 1 highest-scored of the 10 normal films" in text and "the 4 lowest-scored of the 10" in text
    assert "A few films move the AUC" in text
    in_order = frame.assign(probability=[0.1] * 10 + [0.9] * 10)
    assert "the AUC is 1" in shortfall_caption(in_order)
    # Spread over the normal films: each of the ten above one pneumonia film, so no claim of a few.
    spread = shortfall_caption(frame.assign(probability=[0.6] * 10 + [0.5] + [0.9] * 9))
    assert "the 5 highest-scored of the 10 normal films" in spread and "the 1 lowest-scored" in spread
    assert "A few films" not in spread
    # One tie and nothing else wrong: half a pair.
    tie = frame.assign(probability=[0.5] + [0.1] * 9 + [0.5] + [0.9] * 9)
    assert "0.5 normal–pneumonia pairs (0.5% of all pairs)" in shortfall_caption(tie)
    with pytest.raises(ValueError):
        shortfall_caption(frame.assign(label="NORMAL"))


def test_robustness_heatmap_leaves_missing_levels_empty_and_names_the_zooms() -> None:
    rows = [("none", 0, 0.0, 0.99)]
    rows += [("gaussian_blur", sev, float(sev), 0.99 - 0.01 * sev) for sev in range(1, 6)]
    rows += [("zoom", sev, factor, 0.98) for sev, factor in ((1, 1.15), (2, 1.3), (3, 1.5))]
    table = pd.DataFrame(rows, columns=["corruption", "severity", "parameter", "auc"])
    heatmap = robustness_heatmap(table).data[0]
    assert list(heatmap.y) == ["gaussian_blur", "centre zoom (1.15×, 1.3×, 1.5×)"]
    assert list(heatmap.text[0]) == ["0.980", "0.970", "0.960", "0.950", "0.940"]
    assert list(heatmap.text[1]) == ["0.980", "0.980", "0.980", "", ""]
    with pytest.raises(ValueError):
        robustness_heatmap(table.drop(columns="auc"))

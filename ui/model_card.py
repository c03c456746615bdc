"""The model card's tables, figures and wording: what the model is for, how it was made, how well it did.

Everything is read from the metadata written at evaluation time and the CSV files
beside the model; a missing optional file (training history, model comparison) leaves
its section out instead of failing.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.model import ModelMetadata
from core.model.metadata import PHOTO_METRICS

INTENDED_USE = (
    "Helps clinicians and health workers prioritise frontal chest X-rays of children for review when "
    "pneumonia is suspected: images the model flags are read first.",
    "Gives a probability, a decision at a stated threshold and a map of where the model looked, "
    "as a second opinion beside the clinician's own reading.",
)
OUT_OF_SCOPE = (
    "Diagnosing pneumonia, or ruling it out, without a clinician.",
    "Adults, lateral views, CT, or any image other than a frontal pediatric chest X-ray.",
    "Other findings (tuberculosis, effusion, foreign bodies, fractures, lines and tubes): the model "
    "was never taught them and will not report them.",
    "Telling bacterial from viral pneumonia.",
)
LIMITATIONS = (
    "Trained and tested on images from one centre (Guangzhou Women and Children's Medical Center); "
    "other hospitals' equipment and populations may behave differently.",
    "Children aged one to five years only.",
    "Frontal (anterior-posterior) views only.",
    "No external validation: all figures come from a held-out part of the same dataset.",
    "The attention maps show where the model looked, not where a lesion is; on some films it looks at "
    "the heart and mediastinum as much as the lungs.",
    "Re-check the threshold on local, labelled cases before relying on it: the right balance of "
    "missed cases and referrals depends on the setting.",
)
METRIC_NAMES = {
    "auc": "ROC AUC", "recall": "Recall (sensitivity)", "specificity": "Specificity", "accuracy": "Accuracy",
    "precision": "Precision (PPV)", "npv": "NPV", "f1": "F1", "referred_fraction": "Children referred",
}


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def fmt(value: Any, digits: int = 3) -> str:
    """A table-friendly string: numbers rounded, missing values as a dash."""
    if _missing(value):
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


_SPLIT_NAMES = {"val": "validation"}  # how the card names a split of the manifest


def split_table(metadata: ModelMetadata) -> pd.DataFrame:
    """Children and images per split, with the class balance."""
    splits = metadata.data.get("splits", {})
    rows = []
    for split in ("train", "val", "test"):
        s = splits.get(split)
        if not s:
            continue
        images = int(s.get("images", 0))
        pneumonia = int(s.get("images_pneumonia", 0))
        rows.append({
            "split": _SPLIT_NAMES.get(split, split),
            "children": s.get("patients"),
            "images": images,
            "normal images": s.get("images_normal"),
            "pneumonia images": pneumonia,
            "pneumonia share": f"{pneumonia / images:.0%}" if images else "—",
            "children with pneumonia": s.get("patients_pneumonia"),
        })
    return pd.DataFrame(rows)


def training_table(metadata: ModelMetadata) -> pd.DataFrame:
    """How the model was trained, one setting per row."""
    t = metadata.training or {}
    aug = t.get("augmentation") or {}
    augmentation = ", ".join(f"{k.replace('_', ' ')} {fmt(v, 2)}" for k, v in aug.items()) or "—"
    seconds = t.get("training_seconds")
    duration = "—" if _missing(seconds) else f"{float(seconds) / 60:.1f} min"
    weights = t.get("class_weights") or {}
    rows = [
        ("Architecture", fmt(t.get("architecture"))),
        ("Parameters", fmt(t.get("parameters"))),
        ("Input", f"{fmt(metadata.input_size)} × {fmt(metadata.input_size)} grayscale"),
        ("Initial weights", fmt(t.get("weights")) if t.get("weights") else "none (trained from scratch)"),
        ("Epochs run (best)", f"{fmt(t.get('epochs_run'))} ({fmt(t.get('best_epoch'))})"),
        ("Batch size", fmt(t.get("batch_size"))),
        ("Learning rate", fmt(t.get("learning_rate"), 5)),
        ("Class weights", ", ".join(f"{k}: {fmt(v, 2)}" for k, v in weights.items()) or "—"),
        ("Augmentation", augmentation),
        ("Training time", duration),
        ("Random seed", "—" if _missing(t.get("seed")) else str(t.get("seed"))),
        ("Preprocessing", fmt(metadata.preprocessing or None)),
    ]
    return pd.DataFrame(rows, columns=["setting", "value"])


def metrics_table(metadata: ModelMetadata) -> pd.DataFrame:
    """Test-split metrics at the shipped threshold with their 95% confidence intervals."""
    metrics = metadata.metrics
    test = metrics.get("test", {})
    ci = metrics.get("test_ci95", {})
    rows = []
    for key, name in METRIC_NAMES.items():
        if key not in test:
            continue
        interval = ci.get(key)
        usable = interval and not any(_missing(v) for v in interval)
        ci_text = f"{interval[0]:.3f} – {interval[1]:.3f}" if usable else "—"
        rows.append({"metric": name, "value": fmt(test[key]), "95% CI": ci_text})
    if {"tp", "fn", "fp", "tn"} <= test.keys():
        rows.append({"metric": "Pneumonia cases missed", "value": f"{test['fn']} of {test['tp'] + test['fn']}",
                     "95% CI": "—"})
    return pd.DataFrame(rows, columns=["metric", "value", "95% CI"])


def subtype_table(metadata: ModelMetadata) -> pd.DataFrame:
    """Recall for bacterial and viral pneumonia on the test split."""
    by_subtype = metadata.metrics.get("recall_by_subtype", {})
    rows = [{"pneumonia type": name, "test images": v.get("images"), "recall": fmt(v.get("recall"))}
            for name, v in sorted(by_subtype.items())]
    return pd.DataFrame(rows, columns=["pneumonia type", "test images", "recall"])


def gate_table(metadata: ModelMetadata) -> pd.DataFrame:
    """What the "cannot assess" gate refuses by mistake and lets through, as measured at evaluation."""
    measured = metadata.gate.measured if metadata.gate else {}
    rows = []
    if "xray_refused_test" in measured:
        rows.append({"measure": "Real X-rays refused (our test split)",
                     "value": f"{measured['xray_refused_test']:.1%}",
                     "count": measured.get("xray_refused_test_count", "—"), "target": "≤ 1%"})
    if "nonxray_accepted" in measured:
        rows.append({"measure": "Non-X-ray images accepted", "value": f"{measured['nonxray_accepted']:.1%}",
                     "count": measured.get("nonxray_accepted_count", "—"), "target": "≤ 5%"})
    return pd.DataFrame(rows, columns=["measure", "value", "count", "target"])


def read_optional_csv(path: str | Path) -> pd.DataFrame | None:
    """A CSV file as a table, or ``None`` when it is absent, empty or unreadable."""
    try:
        frame = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
        return None
    return None if frame.empty else frame


CUE_NAMES = {
    "mean_intensity": "brightness", "contrast_std": "contrast", "dark_background_share": "dark background",
    "outer_band_mean": "brightness of the outer band", "centre_mean": "brightness of the centre",
    "centre_minus_band": "centre brighter than the outer band", "top_band_mean": "brightness of the top band",
    "bottom_band_mean": "brightness of the bottom band", "sharpness_gradient": "sharpness",
    "sharpness_outer_band": "sharpness of the outer band (no lung there)",
    "sharpness_centre": "sharpness of the centre",
    "fine_detail": "fine detail (grain, edge enhancement)", "dark_row_share": "rows darker than the film's mean",
    "cam_outer_band_share": "map mass in the outer band", "cam_corner_share": "map mass in the corners",
}


def cues_view(table: pd.DataFrame, per_section: int = 5) -> pd.DataFrame:
    """The error analysis for reading: per question, the statistics that separate its two groups most.

    Separation is the statistic's AUC folded around 0.5 (0.5: none, 1: complete), with the
    direction in words; the uniform-map reference rows are left to the caption.
    """
    needed = {"section", "statistic", "group", "reference", "mean_group", "mean_reference", "auc"}
    if not needed <= set(table.columns):
        raise ValueError(f"the error analysis lacks {sorted(needed - set(table.columns))}")
    rows = table[table["auc"].notna()].copy()
    rows["separation"] = (rows["auc"] - 0.5).abs() + 0.5
    out = []
    for section, group in rows.groupby("section", sort=False):
        for _, row in group.sort_values("separation", ascending=False).head(per_section).iterrows():
            direction = "higher" if row["auc"] > 0.5 else "lower"
            out.append({"question": section, "statistic": CUE_NAMES.get(row["statistic"], row["statistic"]),
                        "finding": f"{direction} in {row['group']} ({fmt(row['mean_group'])} vs "
                                   f"{fmt(row['mean_reference'])} in {row['reference']})",
                        "separation (AUC)": fmt(row["separation"])})
    return pd.DataFrame(out, columns=["question", "statistic", "finding", "separation (AUC)"])


HISTORY_PANELS = (("loss", "Loss"), ("auc", "ROC AUC"), ("accuracy", "Accuracy"), ("recall", "Recall"))


def history_figure(history: pd.DataFrame) -> go.Figure:
    """Training and validation curves per epoch from a Keras CSVLogger file."""
    panels = [(k, title) for k, title in HISTORY_PANELS if k in history.columns]
    if not panels or "epoch" not in history.columns:
        raise ValueError("the training history has no epoch or metric columns")
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=[t for _, t in panels], horizontal_spacing=0.06)
    epochs = history["epoch"].to_numpy() + 1  # CSVLogger counts from 0
    for col, (key, _) in enumerate(panels, 1):
        fig.add_trace(go.Scatter(x=epochs, y=history[key], mode="lines+markers", name="training",
                                 line=dict(color="#2471a3"), legendgroup="train", showlegend=col == 1), 1, col)
        if f"val_{key}" in history.columns:
            fig.add_trace(go.Scatter(x=epochs, y=history[f"val_{key}"], mode="lines+markers", name="validation",
                                     line=dict(color="#c0392b"), legendgroup="val", showlegend=col == 1), 1, col)
        fig.update_xaxes(title_text="epoch", row=1, col=col)
    fig.update_layout(height=320, margin=dict(l=10, r=10, t=70, b=10), template="plotly_white",
                      legend=dict(orientation="h", yanchor="bottom", y=1.15, x=0))
    return fig


def members_table(metadata: ModelMetadata) -> pd.DataFrame:
    """Each ensemble member's own figures (validation and test AUC, test accuracy/recall/specificity)."""
    rows = []
    for member in metadata.members:
        test, val = member.get("test", {}), member.get("val", {})
        rows.append({
            "member": member.get("name", "—"),
            "architecture": member.get("architecture", "—"),
            "input": (f"{round(224 * float(member.get('scale', 1.0)))} px"
                      + (f", border trim {float(member['trim']):.0%}" if member.get("trim") else "")),
            "parameters": fmt(member.get("parameters")),
            "validation AUC": fmt(val.get("auc")),
            "test AUC": fmt(test.get("auc")),
            "test accuracy": fmt(test.get("accuracy")),
            "test recall": fmt(test.get("recall")),
            "test specificity": fmt(test.get("specificity")),
        })
    return pd.DataFrame(rows)


def threshold_caption(metadata: ModelMetadata) -> str:
    """How the shipped threshold was chosen, what it keeps on validation, and how it moves under shift."""
    t = metadata.threshold
    parts = [f"Operating threshold {fmt(t.value)}: the {t.rule}, chosen on the {t.chosen_on or 'validation split'}."]
    if t.validation:
        held = (f"On validation films it keeps recall {fmt(t.validation.get('recall'))} and specificity "
                f"{fmt(t.validation.get('specificity'))}")
        if t.validation_shifted:
            held += (f"; under the shift benchmark, pooled, {fmt(t.validation_shifted.get('recall'))} and "
                     f"{fmt(t.validation_shifted.get('specificity'))}")
        parts.append(held + ".")
    stability = t.stability
    if stability.get("recall_range") and stability.get("specificity_range"):
        (r_low, r_high), (s_low, s_high) = stability["recall_range"], stability["specificity_range"]
        parts.append(f"On the test split under every condition of the shift benchmark, recall stays within "
                     f"{fmt(r_low)}–{fmt(r_high)} (lowest: {stability.get('worst_recall', 'not recorded')}) and "
                     f"specificity within {fmt(s_low)}–{fmt(s_high)} "
                     f"(lowest: {stability.get('worst_specificity', 'not recorded')}).")
    return " ".join(parts)


def calibration_caption(metadata: ModelMetadata) -> str:
    """One sentence on how the shipped probabilities were calibrated, with the fitted parameters."""
    calibration = metadata.calibration or {}
    method = calibration.get("method", "none")
    fitted_on = calibration.get("fitted_on") or "the validation split"
    if method == "platt":
        how = (f"Platt scaling fitted on {fitted_on} (calibrated logit = {fmt(calibration.get('slope'), 2)} × "
               f"logit + {fmt(calibration.get('intercept'), 2)})")
    elif method == "temperature":
        how = f"Temperature scaling fitted on {fitted_on} (T = {fmt(calibration.get('temperature'), 2)})"
    else:
        how = "No calibration step"
    return (f"{how}; the app and the command line report calibrated probabilities. ECE: expected calibration "
            "error (0 is perfect). A site can refit it on its own cases (Site calibration).")


def calibration_table(metadata: ModelMetadata) -> pd.DataFrame:
    """ECE, Brier score and calibration slope/intercept before and after calibration, per split."""
    figures = metadata.metrics.get("calibration", {})
    rows = []
    for split, name in (("val", "validation"), ("test", "test")):
        for stage in ("before", "after"):
            f = figures.get(f"{split}_{stage}")
            if f:
                rows.append({"split": name, "probabilities": "raw" if stage == "before" else "calibrated",
                             "ECE": fmt(f.get("ece")), "Brier": fmt(f.get("brier")),
                             "slope": fmt(f.get("slope"), 2), "intercept": fmt(f.get("intercept"), 2)})
    return pd.DataFrame(rows, columns=["split", "probabilities", "ECE", "Brier", "slope", "intercept"])


def _pneumonia_labels(predictions: pd.DataFrame) -> np.ndarray:
    """A prediction file's labels as 0/1 (1: pneumonia), whatever their case."""
    return (predictions["label"].astype(str).str.upper() == "PNEUMONIA").astype(int).to_numpy()


def reliability_figure(predictions: pd.DataFrame, bins: int = 10) -> go.Figure:
    """Reliability diagram of a prediction file: raw and calibrated probabilities against the observed rate."""
    from core.calibration import reliability

    y = _pneumonia_labels(predictions)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfect", line=dict(color="#999", dash="dot")))
    for column, name, colour in (("probability_raw", "raw", "#c0392b"), ("probability", "calibrated", "#2471a3")):
        if column not in predictions.columns:
            continue
        r = reliability(y, predictions[column].to_numpy(dtype=float), bins=bins)
        fig.add_trace(go.Scatter(x=r["mean_predicted"], y=r["fraction_positive"], mode="lines+markers",
                                 name=f"{name} (ECE {r['ece']:.3f})", line=dict(color=colour)))
    fig.update_layout(height=340, template="plotly_white", margin=dict(l=10, r=10, t=40, b=10),
                      xaxis_title="predicted probability of pneumonia", yaxis_title="observed share with pneumonia",
                      title="Reliability on our test split", legend=dict(orientation="h", y=-0.25))
    return fig


def shortfall_caption(predictions: pd.DataFrame) -> str:
    """Which films carry the AUC's shortfall on a prediction file: a few over-called normals, or many films.

    Raises ``ValueError`` for a file without both classes or with unusable probabilities.
    """
    from core.evaluation.metrics import films_carrying, misordered_pairs

    y = _pneumonia_labels(predictions)
    per_normal, per_pneumonia = misordered_pairs(y, predictions["probability"].to_numpy(dtype=float))
    wrong = float(per_normal.sum())
    if wrong == 0:
        return "Every pneumonia film scores above every normal film: the AUC is 1."
    share = wrong / (len(per_normal) * len(per_pneumonia))
    few = films_carrying(per_normal)
    count = f"{wrong:,.1f}" if wrong % 1 else f"{wrong:,.0f}"  # a tie counts half a pair
    text = (f"Where the AUC falls short of 1: {count} normal–pneumonia pairs ({share:.1%} of all pairs) are "
            f"ranked the wrong way round. Half of them involve the {few} highest-scored of the {len(per_normal)} "
            f"normal films; counted by pneumonia film instead, half involve the {films_carrying(per_pneumonia)} "
            f"lowest-scored of the {len(per_pneumonia)}.")
    if few <= max(3, 0.05 * len(per_normal)):
        text += " A few films move the AUC: read its interval rather than its third decimal."
    return text


def _condition_label(name: str, shifted: pd.DataFrame) -> str:
    """A heatmap row's name; the centre zoom's levels are magnifications, so they are named."""
    if name != "zoom" or "parameter" not in shifted.columns:
        return name
    factors = shifted.loc[shifted["corruption"] == name].sort_values("severity")["parameter"]
    return "centre zoom (" + ", ".join(f"{float(f):g}×" for f in factors) + ")"


def robustness_heatmap(table: pd.DataFrame, value: str = "auc") -> go.Figure:
    """Corruption × severity heatmap of one column of the shift benchmark (AUC by default)."""
    if not {"corruption", "severity", value} <= set(table.columns):
        raise ValueError("the robustness table lacks corruption, severity or the value column")
    shifted = table[table["corruption"] != "none"]
    grid = shifted.pivot(index="corruption", columns="severity", values=value)
    order = list(dict.fromkeys(shifted["corruption"]))
    grid = grid.reindex(order)
    # Rows with fewer levels than five (the centre zooms have three) leave empty cells, not "NaN".
    text = [["" if np.isnan(v) else f"{v:.3f}" for v in row] for row in grid.to_numpy(dtype=float)]
    fig = go.Figure(go.Heatmap(z=grid.to_numpy(), x=[f"severity {c}" for c in grid.columns],
                               y=[_condition_label(name, shifted) for name in grid.index],
                               colorscale="RdYlGn", zmin=0.9 if value == "auc" else 0.0, zmax=1.0,
                               text=text, texttemplate="%{text}", hoverongaps=False,
                               colorbar=dict(title=value.upper() if value == "auc" else value)))
    clean = table[table["corruption"] == "none"]
    title = f"{value.upper() if value == 'auc' else value} under acquisition changes"
    if not clean.empty:
        title += f" (clean: {float(clean.iloc[0][value]):.3f})"
    fig.update_layout(height=40 + 26 * len(grid), template="plotly_white", margin=dict(l=10, r=10, t=40, b=10),
                      title=title, yaxis=dict(autorange="reversed"))
    return fig


def field_table(metadata: ModelMetadata) -> pd.DataFrame:
    """The gate on images as they arrive in the field: noisy X-rays and synthetic phone photos."""
    measured = metadata.gate.measured if metadata.gate else {}
    rows = []
    if "noisy_xray_refused_test" in measured:
        rows.append({"measure": "Noisy real X-rays refused (σ 0.06)",
                     "value": f"{measured['noisy_xray_refused_test']:.1%}", "target": "≤ 5%"})
    field = measured.get("field") or {}
    if "accepted" in field:
        rows.append({"measure": f"Field-capture images accepted ({field.get('images', '—')})",
                     "value": f"{field['accepted']:.1%}", "target": "≥ 95%"})
    if "auc_field" in field:
        rows.append({"measure": "AUC on field captures (same films clean)",
                     "value": _beside(field["auc_field"], field.get("auc_clean", float("nan")), ".3f"),
                     "target": "within 0.02"})
    for key, name in (("specificity", "Specificity"), ("recall", "Recall")):
        if f"{key}_field" in field:
            rows.append({"measure": f"{name} on field captures at the shipped threshold (same films clean)",
                         "value": _beside(field[f"{key}_field"], field.get(f"{key}_clean", float("nan")), ".1%"),
                         "target": "—"})
    rows.extend(_photo_rows(metadata))
    return pd.DataFrame(rows, columns=["measure", "value", "target"])


def _beside(value: float, reference: float, spec: str) -> str:
    """A figure with the one it is compared to in brackets, e.g. ``0.977 (0.986)``."""
    return f"{value:{spec}} ({reference:{spec}})"


# What the photos of each photo check in the metadata are (``PHOTO_METRICS``: where each is kept).
_PHOTO_KINDS = {"field": "phone photos", "lightbox": "light-box photos (a simulator nothing is trained on)"}


def _photo_rows(metadata: ModelMetadata) -> list[dict[str, str]]:
    """Rows for each photo check of one split's films in the metadata (``training.photo_check --record``),
    when taken at today's threshold."""
    rows = []
    for simulator, kind in _PHOTO_KINDS.items():
        photos = metadata.metrics.get(PHOTO_METRICS[simulator]) or {}
        if not photos or abs(float(photos.get("threshold", -1)) - metadata.threshold.value) > 1e-6:
            continue  # figures from an earlier threshold would describe another operating point
        films, shot = photos["films"], photos["photos"]
        where = f"{kind} of {photos['images']} {_SPLIT_NAMES.get(photos['split'], photos['split'])} films"
        if "accepted" in shot:
            rows.append({"measure": f"Share of {where} the gate accepts", "value": f"{shot['accepted']:.1%}",
                         "target": "—"})
        rows.append({"measure": f"AUC on {where} (the films themselves)",
                     "value": _beside(shot["auc"], films["auc"], ".3f"), "target": "—"})
        for metric, name in (("specificity", "Specificity"), ("recall", "Recall")):
            rows.append({"measure": f"{name} on {where} at the shipped threshold (the films themselves)",
                         "value": _beside(shot[metric], films[metric], ".1%"), "target": "—"})
    return rows

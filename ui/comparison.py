"""Figures and tables for the comparison of published approaches, the learning curve, the
augmentation ablation and the bacterial-vs-viral research model.

All of it is read from files written by ``training/`` beside the shipped model
(``model_comparison.csv``, ``learning_curve.csv``, ``augmentation_ablation.csv``,
``pneumonia_subtype.json``); a missing file leaves its section out.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core.model import ModelMetadata
from ui.model_card import fmt, read_optional_csv

TABLE_COLUMNS = {
    "model": "approach", "architecture": "network", "size": "input (px)", "recipe": "augmentation",
    "fraction": "training patients (%)", "auc": "ROC AUC", "accuracy": "accuracy", "recall": "recall",
    "precision": "precision", "specificity": "specificity", "f1": "F1", "loss": "loss",
    "parameters": "parameters", "file_mb": "file (MB)", "training_seconds": "training (s)",
    "latency_ms": "one image, Keras (ms)", "shift3_mean_auc": "shifted AUC (mean)",
    "shift3_min_auc": "shifted AUC (worst)",
    "zoom1.5_normals_flagged_change": "normals flagged at 1.5× zoom (change)",
}
ABLATION_COLUMNS = {
    "variant": "recipe", "runs": "runs", "test_auc": "test AUC", "test_specificity": "specificity",
    "shift3_mean_auc": "shifted AUC (mean)", "shift3_min_auc": "shifted AUC (worst)",
    "shift3_max_accuracy_drop": "largest accuracy drop", "zoom1.3_normals_flagged_change": "1.3× zoom: normals flagged",
    "zoom1.5_normals_flagged_change": "1.5× zoom: normals flagged",
}


def comparison_view(frame: pd.DataFrame) -> pd.DataFrame:
    """The comparison with readable column names, best AUC first (the page lets users re-sort)."""
    if "model" not in frame.columns or "auc" not in frame.columns:
        raise ValueError("the comparison table needs 'model' and 'auc' columns")
    out = frame[[c for c in TABLE_COLUMNS if c in frame.columns]].sort_values("auc", ascending=False, kind="stable")
    if "fraction" in out.columns:
        out = out.assign(fraction=(out["fraction"] * 100).round().astype(int))  # a number, so it sorts
    return out.rename(columns=TABLE_COLUMNS).reset_index(drop=True)


def approach_notes(frame: pd.DataFrame) -> list[tuple[str, str]]:
    """(approach, one sentence on where it comes from and what its row shows), in table order."""
    if "source" not in frame.columns:
        return []
    return [(str(row["model"]), str(row["source"])) for _, row in frame.iterrows() if isinstance(row["source"], str)]


def tradeoff_figure(frame: pd.DataFrame, x: str) -> go.Figure:
    """Test AUC against ``x`` (``parameters`` or ``latency_ms``), one labelled point per approach, log x axis."""
    titles = {"parameters": "parameters", "latency_ms": "single-image latency in Keras (ms)"}
    if x not in titles:
        raise ValueError(f"x must be one of {sorted(titles)}")
    if x not in frame.columns or "auc" not in frame.columns:
        raise ValueError(f"the comparison does not record {titles[x]}")
    data = frame.dropna(subset=[x, "auc"])
    fig = go.Figure(go.Scatter(
        x=data[x], y=data["auc"], mode="markers+text", text=data["model"], textposition="top center",
        marker={"size": 10}, cliponaxis=False,  # labels of the outermost points stay readable
        hovertemplate="%{text}<br>" + titles[x] + " %{x:,}<br>AUC %{y:.3f}<extra></extra>"))
    fig.update_layout(xaxis={"title": titles[x], "type": "log"}, yaxis={"title": "test ROC AUC"},
                      height=360, margin={"l": 60, "r": 70, "t": 30, "b": 10})
    return fig


def learning_curve_figure(curve: pd.DataFrame) -> go.Figure:
    """Validation and test AUC and recall against the share of training patients."""
    needed = {"fraction", "val_auc", "test_auc"}
    if needed - set(curve.columns):
        raise ValueError(f"the learning curve needs columns {sorted(needed)}")
    curve = curve.sort_values("fraction")
    share = curve["fraction"] * 100
    fig = go.Figure()
    for column, name, dash in (("val_auc", "validation AUC", "solid"), ("test_auc", "test AUC", "solid"),
                               ("val_recall", "validation recall", "dot"), ("test_recall", "test recall", "dot")):
        if column in curve.columns:
            fig.add_trace(go.Scatter(x=share, y=curve[column], mode="lines+markers", name=name,
                                     line={"dash": dash}))
    fig.update_layout(xaxis={"title": "training patients used (%)"}, yaxis={"title": "AUC; recall at threshold 0.5"},
                      height=340, margin={"l": 10, "r": 10, "t": 30, "b": 10})
    return fig


def learning_curve_section(folder: Path, key: str) -> None:
    """Render the learning curve beside the model, or say how to make it (shared by two pages)."""
    curve = read_optional_csv(folder / "learning_curve.csv")
    if curve is None:
        st.caption("No learning curve has been recorded (`python -m training.comparison --learning-curve`).")
        return
    try:
        figure = learning_curve_figure(curve)
    except ValueError as exc:
        st.caption(f"The learning curve is unreadable: {exc}.")
        return
    st.plotly_chart(figure, key=key, config={"displaylogo": False})
    budget = (f" ({int(curve['epoch_budget'].iloc[0])} epochs at {int(curve['image_size'].iloc[0])} px)"
              if {"epoch_budget", "image_size"} <= set(curve.columns) else "")
    st.caption(f"The compact CNN (robust recipe) trained on a growing share of the training patients{budget}, "
               "judged at threshold 0.5. A curve still rising at 100% says more cases, such as a site's own, "
               "would help.")


def ablation_view(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per recipe variant: means over its runs, with the number of runs."""
    if "variant" not in runs.columns:
        raise ValueError("the ablation table has no 'variant' column")
    numeric = [c for c in ABLATION_COLUMNS if c in runs.columns and c not in ("variant", "runs")]
    grouped = runs.groupby("variant", sort=False)
    out = grouped[numeric].mean().assign(runs=grouped.size()).reset_index()
    return out[[c for c in ABLATION_COLUMNS if c in out.columns]].rename(columns=ABLATION_COLUMNS)


def seed_spread(runs: pd.DataFrame, variant: str = "robust (all on)", column: str = "shift3_mean_auc") -> float | None:
    """Range (max - min) of ``column`` over the seeds of ``variant``: below it, differences are noise."""
    values = runs.loc[runs["variant"] == variant, column] if column in runs.columns else pd.Series(dtype=float)
    return float(values.max() - values.min()) if len(values) > 1 else None


def subtype_view(metadata: ModelMetadata) -> pd.DataFrame:
    """The bacterial-vs-viral model's test figures with 95% intervals, beside the published anchor."""
    test = metadata.metrics.get("test", {})
    anchor = metadata.metrics.get("anchor", {})
    names = {"auc": "ROC AUC", "accuracy": "accuracy", "recall": "sensitivity (bacterial)",
             "specificity": "specificity (viral)"}
    rows = []
    for key, name in names.items():
        low, high = test.get("ci95", {}).get(key, (None, None))
        rows.append({"measure": name, "our test split": fmt(test.get(key)),
                     "95% interval": f"{fmt(low)}–{fmt(high)}" if low is not None else "—",
                     "published anchor": fmt(anchor.get(key)) if key in anchor else "—"})
    return pd.DataFrame(rows)

"""Figures and wording for the site calibration page; the numbers come from ``core.apps.site_calibration``."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from core.apps.site_calibration import LabelledScores, SiteCalibration, calibration_sentence
from core.calibration import SiteProfile
from ui.threshold_explorer import confusion_figure as _confusion

RULE_LABELS = {"sensitivity": "Sensitivity target", "max_referred": "Maximum share referred", "manual": "By hand"}
REFIT_LABELS = {"none": "Keep the shipped calibration", "temperature": "Refit: temperature scaling",
                "platt": "Refit: Platt scaling"}
COLOURS = {"sensitivity": "#c0392b", "specificity": "#2471a3", "referred": "#7d3c98", "point": "#111111",
           "shipped": "#7f8c8d", "refitted": "#1f6f8b"}
BANDS = {"sensitivity": "rgba(192,57,43,0.15)", "specificity": "rgba(36,113,163,0.15)",
         "referred": "rgba(125,60,152,0.15)"}
CARDS = (
    ("sensitivity", "Sensitivity", "Share of this set's pneumonia images that are flagged."),
    ("specificity", "Specificity", "Share of this set's normal images that are not flagged."),
    ("referred", "Referred", "Share of all images in this set flagged for review."),
    ("ppv", "PPV", "Of the flagged images, the share with pneumonia (at this set's prevalence)."),
    ("npv", "NPV", "Of the images not flagged, the share without pneumonia (at this set's prevalence)."),
    ("accuracy", "Accuracy", "Share of all decisions that are right."),
)
INTRO = (
    "The shipped threshold was chosen on one hospital's images. Check it on your own: upload X-rays your "
    "clinicians have already labelled, choose a rule, and see what each threshold would mean here, with "
    "95% intervals. Images are held in memory for this session only; the profile you download holds figures, "
    "the model's fingerprint and the site name, never file names or images."
)
UPLOAD_HELP = ("A ZIP archive with NORMAL/ and PNEUMONIA/ folders inside (at any depth), or images plus a "
               "labels.csv with the columns file,label[,patient].")


def pct(value: Any) -> str:
    """A share as a percentage, or a dash when undefined."""
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{float(value):.1%}"


def ci_text(value: Any, lo: Any, hi: Any) -> str:
    """``95.2% (91.0–97.8%)``; the interval is left out when undefined."""
    if lo is None or hi is None or any(isinstance(v, float) and math.isnan(v) for v in (lo, hi)):
        return pct(value)
    return f"{pct(value)} ({float(lo):.1%}–{float(hi):.1%})"


def metric_cards(profile: SiteProfile) -> list[tuple[str, str, str]]:
    """(label, value with interval, explanation) at the profile's threshold."""
    return [(label, pct(profile.metrics[key]["value"]), f"{help_text} 95% interval: "
             f"{ci_text(profile.metrics[key]['value'], *profile.metrics[key]['ci'])}.")
            for key, label, help_text in CARDS]


def interval_caption(profile: SiteProfile) -> str:
    """The 95% intervals of the cards in one line (the cards show the point estimates)."""
    parts = [f"{label.lower()} {ci_text(profile.metrics[key]['value'], *profile.metrics[key]['ci'])}"
             for key, label, _ in CARDS]
    unit = "patients" if profile.cases["patients"] < profile.cases["normal"] + profile.cases["pneumonia"] else "images"
    return f"95% bootstrap intervals (resampling {unit}): " + "; ".join(parts) + "."


def set_summary(scores: LabelledScores) -> str:
    """One sentence about the local set: the classes, the patients, and what was left out."""
    patients = {"labels.csv": "patients from labels.csv", "file names": "patients from the file names"}
    grouped = patients.get(scores.patients_from, "patients unknown: each image counts as one child")
    left_out = [f"{len(scores.refused)} refused by the \"cannot assess\" gate" if scores.refused else "",
                f"{len(scores.unreadable)} unreadable" if scores.unreadable else "",
                f"{len(scores.skipped)} without a label" if scores.skipped else ""]
    left_out = [text for text in left_out if text]
    tail = f" Left out: {', '.join(left_out)}." if left_out else ""
    return (f"**{scores.normal} NORMAL** and **{scores.pneumonia} PNEUMONIA** images scored ({grouped}).{tail}")


def left_out_frame(scores: LabelledScores) -> pd.DataFrame:
    """The files that are not in the figures, by name, with the reason (shown to the user only)."""
    rows = [(name, "refused", reason) for name, reason in scores.refused]
    rows += [(name, "unreadable", reason) for name, reason in scores.unreadable]
    rows += [(name, "no label", reason) for name, reason in scores.skipped]
    return pd.DataFrame(rows, columns=["file", "status", "reason"])


def operating_point_text(result: SiteCalibration) -> str:
    """The chosen threshold, the rule behind it and the calibration, in two sentences."""
    profile = result.profile
    return f"**Threshold {profile.threshold:.3f}**: {profile.rule_description}. {calibration_sentence(result)}"


def profile_summary(profile: SiteProfile) -> str:
    """A saved profile in a few lines of Markdown (for the load tab)."""
    cases = profile.cases
    m = profile.metrics
    return "\n".join([
        f"**{profile.site}** · profile `{profile.profile_id}` · created {profile.created}",
        f"- Threshold **{profile.threshold:.3f}**: {profile.rule_description}",
        f"- Sensitivity {ci_text(m['sensitivity']['value'], *m['sensitivity']['ci'])}, "
        f"specificity {ci_text(m['specificity']['value'], *m['specificity']['ci'])}, "
        f"images referred {ci_text(m['referred']['value'], *m['referred']['ci'])}",
        f"- Local set: {cases['normal']} NORMAL, {cases['pneumonia']} PNEUMONIA, {cases['patients']} patients; "
        f"{cases['refused']} refused, {cases['unreadable']} unreadable",
    ])


def _layout(title: str, **extra: Any) -> dict:
    return {"title": {"text": title}, "height": 360, "margin": {"l": 10, "r": 10, "t": 40, "b": 10},
            "legend": {"orientation": "h", "yanchor": "top", "y": -0.2, "x": 0}, **extra}


def threshold_figure(result: SiteCalibration) -> go.Figure:
    """Sensitivity, specificity and share referred against the threshold, with 95% bands; the choice marked."""
    table, t = result.table, result.profile.threshold
    traces: list[dict] = []
    for key, label in (("sensitivity", "Sensitivity"), ("specificity", "Specificity"), ("referred", "Referred")):
        x = table["threshold"].tolist()
        # The band: the upper edge, then the lower one filled up to it.
        traces.append({"type": "scatter", "x": x, "y": table[f"{key}_hi"].tolist(), "mode": "lines",
                       "line": {"width": 0}, "hoverinfo": "skip", "showlegend": False, "legendgroup": key})
        traces.append({"type": "scatter", "x": x, "y": table[f"{key}_lo"].tolist(), "mode": "lines",
                       "line": {"width": 0}, "fill": "tonexty", "fillcolor": BANDS[key], "hoverinfo": "skip",
                       "showlegend": False, "legendgroup": key})
        traces.append({"type": "scatter", "x": x, "y": table[key].tolist(), "mode": "lines", "name": label,
                       "legendgroup": key, "line": {"color": COLOURS[key], "width": 2},
                       "hovertemplate": f"{label} %{{y:.1%}} at %{{x:.3f}}<extra></extra>"})
    layout = _layout("What each threshold means on this set",
                     xaxis={"title": {"text": "Threshold on P(pneumonia)"}, "range": [0, 1]},
                     yaxis={"title": {"text": "Rate (95% band)"}, "range": [0, 1.02], "tickformat": ".0%"},
                     shapes=[{"type": "line", "x0": t, "x1": t, "y0": 0, "y1": 1, "yref": "paper",
                              "line": {"color": COLOURS["point"], "dash": "dash", "width": 1}}])
    return go.Figure({"data": traces, "layout": layout})


def roc_figure(result: SiteCalibration) -> go.Figure:
    """The local ROC curve with the chosen operating point."""
    m = result.profile.metrics
    traces = [
        {"type": "scatter", "x": list(result.roc["fpr"]), "y": list(result.roc["tpr"]), "mode": "lines",
         "name": f"ROC on this set (AUC {result.roc['auc']:.3f})", "line": {"color": COLOURS["specificity"]}},
        {"type": "scatter", "x": [0, 1], "y": [0, 1], "mode": "lines", "name": "Chance",
         "line": {"color": "#999999", "dash": "dot", "width": 1}},
    ]
    sensitivity, specificity = m["sensitivity"]["value"], m["specificity"]["value"]
    if sensitivity is not None and specificity is not None:
        traces.append({"type": "scatter", "x": [1 - specificity], "y": [sensitivity], "mode": "markers",
                       "name": "Operating point", "marker": {"color": COLOURS["point"], "size": 12, "symbol": "x"}})
    layout = _layout("ROC curve",
                     xaxis={"title": {"text": "1 − specificity"}, "range": [0, 1]},
                     yaxis={"title": {"text": "Sensitivity"}, "range": [0, 1.02]})
    return go.Figure({"data": traces, "layout": layout})


def confusion_figure(result: SiteCalibration) -> go.Figure:
    """The 2×2 counts at the chosen threshold (the threshold explorer's figure, titled for this set)."""
    figure = _confusion({**result.confusion, "threshold": result.profile.threshold})
    figure.update_layout(title_text=f"This set at threshold {result.profile.threshold:.3f}")
    return figure


def reliability_figure(result: SiteCalibration) -> go.Figure:
    """Observed share with pneumonia against the predicted probability, per bin; before and after a refit."""
    series = [("shipped", "Shipped calibration", result.reliability_shipped)]
    if result.reliability_refitted is not None:
        series.append(("refitted", "Refitted on this set", result.reliability_refitted))
    traces: list[dict] = [{"type": "scatter", "x": [0, 1], "y": [0, 1], "mode": "lines", "name": "Perfect",
                           "line": {"color": "#999999", "dash": "dot", "width": 1}}]
    for key, label, rel in series:
        counts = [int(c) for c in rel["count"]]
        traces.append({
            "type": "scatter", "x": [float(v) for v in rel["mean_predicted"]],
            "y": [float(v) for v in rel["fraction_positive"]], "mode": "lines+markers",
            "name": f"{label} (ECE {rel['ece']:.3f})", "text": [f"{c} images" for c in counts],
            "hovertemplate": "predicted %{x:.2f}, observed %{y:.2f} (%{text})<extra></extra>",
            "line": {"color": COLOURS[key]}, "marker": {"color": COLOURS[key], "size": 8},
        })
    layout = _layout("Reliability: do the probabilities mean what they say here?",
                     xaxis={"title": {"text": "Predicted probability (bin mean)"}, "range": [0, 1]},
                     yaxis={"title": {"text": "Observed share with pneumonia"}, "range": [0, 1.02]})
    return go.Figure({"data": traces, "layout": layout})

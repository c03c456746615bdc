"""Figures and wording for the threshold explorer; the numbers come from ``core.evaluation.explorer``."""

from __future__ import annotations

import math

import plotly.graph_objects as go

from core.evaluation.explorer import ExplorerData

# ColorBrewer blues, spelled out: Plotly.js's own "Blues" runs the other way.
BLUES = [[0.0, "#f7fbff"], [0.25, "#c6dbef"], [0.5, "#6baed6"], [0.75, "#2171b5"], [1.0, "#08306b"]]
COLOURS = {"recall": "#c0392b", "specificity": "#2471a3", "accuracy": "#7d3c98", "point": "#111111"}


def _pct(value: float) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.1%}"


def metric_cards(m: dict[str, float]) -> list[tuple[str, str, str]]:
    """(label, value, explanation) for each figure shown beside the confusion matrix."""
    total = m["tn"] + m["fp"] + m["fn"] + m["tp"]
    return [
        ("Recall (sensitivity)", _pct(m["recall"]), "Share of the pneumonia images that are flagged."),
        ("Specificity", _pct(m["specificity"]), "Share of the normal images that are not flagged."),
        ("Accuracy", _pct(m["accuracy"]), "Share of all decisions that are right."),
        ("Precision (PPV)", _pct(m["precision"]), "Of the flagged images, the share with pneumonia (at the split's "
                                                   "prevalence)."),
        ("NPV", _pct(m["npv"]), "Of the images not flagged, the share without pneumonia (at the split's prevalence)."),
        ("F1", "—" if math.isnan(m["f1"]) else f"{m['f1']:.3f}", "Balance of precision and recall."),
        ("Images referred", _pct(m["referred_fraction"]), "Share of all images flagged for review."),
        ("Pneumonia cases missed", f"{m['missed']} of {m['tp'] + m['fn']}",
         f"Pneumonia images not flagged, out of {total} test images."),
    ]


def prevalence_cards(ppv: float, npv: float, prevalence: float) -> list[tuple[str, str, str]]:
    """(label, value, explanation) for PPV and NPV at a prevalence the user sets."""
    share = f"{prevalence:.1%}"
    return [
        (f"PPV at {share} prevalence", _pct(ppv),
         f"Of the flagged images, the share with pneumonia if {share} of the images you triage have it."),
        (f"NPV at {share} prevalence", _pct(npv),
         f"Of the images not flagged, the share without pneumonia if {share} of the images you triage have it."),
    ]


def plain_summary(m: dict[str, float]) -> str:
    """One sentence a clinician can read at a glance."""
    positives, negatives = m["tp"] + m["fn"], m["tn"] + m["fp"]
    bits = []
    if positives:
        bits.append(f"{m['tp']} of {positives} images with pneumonia are flagged ({m['fn']} missed)")
    if negatives:
        bits.append(f"{m['fp']} of {negatives} images without pneumonia are flagged unnecessarily")
    return f"At threshold {m['threshold']:.3f}, " + "; ".join(bits) + "."


def _figure(traces: list[dict], layout: dict) -> go.Figure:
    """A figure from plain trace and layout dicts, without Plotly's per-property validation.

    Validation costs ~15 ms per chart on every slider move; these dicts use only standard
    Plotly properties, and the unit tests rebuild every figure with validation switched on,
    so a typo still fails there.
    """
    return go.Figure({"data": traces, "layout": layout}, _validate=False)


def _layout(title: str, **extra: dict) -> dict:
    return {"title": {"text": title}, "height": 330, "margin": {"l": 10, "r": 10, "t": 40, "b": 10},
            "legend": {"orientation": "h", "yanchor": "top", "y": -0.25, "x": 0}, **extra}


def confusion_figure(m: dict[str, float]) -> go.Figure:
    """A 2×2 heatmap of counts, each cell also showing its share of the true class."""
    rows = [("pneumonia cases", m["tp"], m["fn"]), ("normal cases", m["fp"], m["tn"])]
    names = [("correctly flagged", "missed"), ("flagged unnecessarily", "correctly not flagged")]
    z, text = [], []
    for (label, flagged, cleared), (name_flag, name_clear) in zip(rows, names, strict=True):
        total = flagged + cleared
        rate_flag = flagged / total if total else float("nan")
        rate_clear = cleared / total if total else float("nan")
        z.append([rate_flag, rate_clear])
        text.append([f"<b>{flagged}</b> {name_flag}<br>{_pct(rate_flag)} of {label}",
                     f"<b>{cleared}</b> {name_clear}<br>{_pct(rate_clear)} of {label}"])
    heatmap = {
        "type": "heatmap", "z": z, "x": ["Flagged for review", "Not flagged"], "y": ["Has pneumonia", "No pneumonia"],
        "text": text, "texttemplate": "%{text}", "textfont": {"size": 13}, "colorscale": BLUES, "zmin": 0,
        "zmax": 1, "showscale": False, "hoverinfo": "skip", "xgap": 3, "ygap": 3,
    }
    layout = _layout(f"Test split at threshold {m['threshold']:.3f}",
                     yaxis={"autorange": "reversed", "title": {"text": "Truth"}},
                     xaxis={"title": {"text": "Tool's decision"}})
    return _figure([heatmap], layout)


def sweep_figure(data: ExplorerData, m: dict[str, float]) -> go.Figure:
    """Recall, specificity and accuracy against the threshold, with the current one marked."""
    keys = ("recall", "specificity", "accuracy")
    traces = [{"type": "scatter", "x": data.sweep["threshold"], "y": data.sweep[key], "mode": "lines",
               "name": key.capitalize(), "line": {"color": COLOURS[key], "width": 2}} for key in keys]
    traces.append({"type": "scatter", "x": [m["threshold"]] * 3, "y": [m[k] for k in keys], "mode": "markers",
                   "showlegend": False, "text": [k.capitalize() for k in keys],
                   "hovertemplate": "%{text}: %{y:.1%}<extra></extra>",
                   "marker": {"color": [COLOURS[k] for k in keys], "size": 10, "line": {"color": "white", "width": 1}}})
    layout = _layout("Across all thresholds",
                     xaxis={"title": {"text": "Threshold on P(pneumonia)"}, "range": [0, 1]},
                     yaxis={"title": {"text": "Rate"}, "range": [0, 1.02], "tickformat": ".0%"},
                     shapes=[{"type": "line", "x0": m["threshold"], "x1": m["threshold"], "y0": 0, "y1": 1,
                              "yref": "paper", "line": {"color": COLOURS["point"], "dash": "dash", "width": 1}}])
    return _figure(traces, layout)


def _point(x: float, y: float) -> list[dict]:
    if math.isnan(x) or math.isnan(y):
        return []
    return [{"type": "scatter", "x": [x], "y": [y], "mode": "markers", "name": "Operating point",
             "marker": {"color": COLOURS["point"], "size": 12, "symbol": "x"}}]


def roc_figure(data: ExplorerData, m: dict[str, float]) -> go.Figure:
    """The ROC curve with the operating point marked."""
    traces = []
    if data.curves is not None:
        traces.append({"type": "scatter", "x": data.curves["fpr"], "y": data.curves["tpr"], "mode": "lines",
                       "name": f"ROC (AUC {data.auc:.3f})", "line": {"color": COLOURS["specificity"], "width": 2}})
    traces.append({"type": "scatter", "x": [0, 1], "y": [0, 1], "mode": "lines", "name": "Chance",
                   "line": {"color": "#999999", "dash": "dot", "width": 1}})
    traces += _point(1 - m["specificity"], m["recall"])
    layout = _layout("ROC curve",
                     xaxis={"title": {"text": "1 − specificity (false-positive rate)"}, "range": [0, 1]},
                     yaxis={"title": {"text": "Recall (sensitivity)"}, "range": [0, 1.02]})
    return _figure(traces, layout)


def pr_figure(data: ExplorerData, m: dict[str, float]) -> go.Figure:
    """The precision-recall curve with the operating point marked."""
    traces = []
    if data.curves is not None:
        traces.append({"type": "scatter", "x": data.curves["recall"], "y": data.curves["precision"], "mode": "lines",
                       "name": "Precision-recall", "line": {"color": COLOURS["recall"], "width": 2}})
    prevalence = data.positives / len(data.y)
    traces.append({"type": "scatter", "x": [0, 1], "y": [prevalence, prevalence], "mode": "lines",
                   "name": f"Prevalence ({prevalence:.0%})", "line": {"color": "#999999", "dash": "dot", "width": 1}})
    traces += _point(m["recall"], m["precision"])
    layout = _layout("Precision-recall curve",
                     xaxis={"title": {"text": "Recall (sensitivity)"}, "range": [0, 1.02]},
                     yaxis={"title": {"text": "Precision (PPV)"}, "range": [0, 1.02]})
    return _figure(traces, layout)

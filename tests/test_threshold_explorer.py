"""Threshold explorer numbers (core.evaluation.explorer) and figures (ui.threshold_explorer)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from core.evaluation.explorer import explorer_data, metrics_at, predictive_values, presets
from core.evaluation.metrics import threshold_metrics
from ui.threshold_explorer import confusion_figure, metric_cards, plain_summary, pr_figure, roc_figure, sweep_figure


def predictions(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.65).astype(int)
    p = np.clip(rng.normal(0.35 + 0.35 * y, 0.18), 0, 1)
    return pd.DataFrame({"y": y, "probability": p, "patient": np.arange(n) // 2})


@pytest.fixture(scope="module")
def data():
    return explorer_data(predictions())


def validated(fig: go.Figure) -> go.Figure:
    """Rebuild with Plotly's full validation: the app skips it for speed, the tests must not."""
    return go.Figure(fig.to_dict())


def test_explorer_data_counts(data) -> None:
    frame = predictions()
    assert data.positives == int(frame["y"].sum())
    assert data.negatives == len(frame) - data.positives
    assert data.patients == 200
    assert 0.5 < data.auc <= 1.0
    assert len(data.sweep["threshold"]) == 201


def test_presets_meet_their_targets(data) -> None:
    values = presets(data, shipped=0.42)
    assert values["Shipped (0.420)"] == 0.42
    for target in (0.95, 0.98, 0.99):
        t = values[f"Recall ≥ {target:.0%}"]
        assert metrics_at(data, t)["recall"] >= target
        # The highest such threshold: a little higher loses the target.
        assert metrics_at(data, min(1.0, t + 1e-6))["recall"] < target
    best = metrics_at(data, values["Best accuracy"])["accuracy"]
    assert all(best >= metrics_at(data, t)["accuracy"] for t in np.linspace(0, 1, 101))


def test_presets_without_pneumonia_cases_leave_recall_targets_out() -> None:
    only_normal = explorer_data(pd.DataFrame({"y": [0, 0, 0], "probability": [0.1, 0.5, 0.9]}))
    assert set(presets(only_normal, 0.5)) == {"Shipped (0.500)", "Best accuracy"}
    assert only_normal.curves is None and math.isnan(only_normal.auc) and only_normal.patients is None


def test_moving_the_threshold_moves_the_counts(data) -> None:
    low, high = metrics_at(data, 0.2), metrics_at(data, 0.8)
    assert low["tp"] + low["fp"] > high["tp"] + high["fp"]
    assert low["missed"] < high["missed"]


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        (math.isnan(a[k]) and math.isnan(b[k])) or a[k] == pytest.approx(b[k], abs=1e-12) for k in a)


def test_fast_metrics_equal_the_reference_implementation(data) -> None:
    """The binary-search counts must give exactly core.metrics.threshold_metrics' numbers."""
    exact = sorted(set(data.p.tolist()))[::7]  # thresholds equal to observed probabilities: ties matter
    for t in [0.0, 1.0, 0.5, *np.linspace(0, 1, 57), *exact, *data.presets.values()]:
        assert same(metrics_at(data, float(t)), threshold_metrics(data.y, data.p, float(t))), t


@pytest.mark.parametrize("frame", [
    pd.DataFrame({"y": [0, 0, 0], "probability": [0.1, 0.5, 0.9]}),
    pd.DataFrame({"y": [1, 1], "probability": [0.3, 0.3]}),
    pd.DataFrame({"y": [1, 0, 1, 0], "probability": [1.0, 0.0, 0.5, 0.5]}),
])
def test_fast_metrics_edge_cases(frame: pd.DataFrame) -> None:
    small = explorer_data(frame)
    for t in (0.0, 0.3, 0.5, 0.9, 1.0):
        assert same(metrics_at(small, t), threshold_metrics(small.y, small.p, t)), t
    with pytest.raises(ValueError):
        metrics_at(small, 1.2)


def test_metric_cards_cover_every_required_figure(data) -> None:
    cards = metric_cards(metrics_at(data, 0.5))
    labels = [c[0] for c in cards]
    assert labels == ["Recall (sensitivity)", "Specificity", "Accuracy", "Precision (PPV)", "NPV", "F1",
                      "Images referred", "Pneumonia cases missed"]
    m = metrics_at(data, 0.5)
    assert cards[0][1] == f"{m['recall']:.1%}"
    assert cards[7][1] == f"{m['fn']} of {m['tp'] + m['fn']}"
    undefined = dict((c[0], c[1]) for c in metric_cards({**m, "precision": math.nan, "f1": math.nan}))
    assert undefined["Precision (PPV)"] == "—" and undefined["F1"] == "—"


def test_plain_summary_reads_the_counts(data) -> None:
    m = metrics_at(data, 0.5)
    text = plain_summary(m)
    assert text.startswith("At threshold 0.500")
    assert f"{m['tp']} of {m['tp'] + m['fn']} images with pneumonia" in text
    assert "children" not in text  # the split counts images; several can come from one child
    assert f"({m['fn']} missed)" in text


def test_confusion_figure_shows_counts_and_rates(data) -> None:
    m = metrics_at(data, 0.5)
    fig = validated(confusion_figure(m))
    heatmap = fig.data[0]
    positives, negatives = m["tp"] + m["fn"], m["tn"] + m["fp"]
    np.testing.assert_allclose(np.array(heatmap.z, dtype=float),
                               [[m["tp"] / positives, m["fn"] / positives], [m["fp"] / negatives, m["tn"] / negatives]])
    assert heatmap.text[0][1].startswith(f"<b>{m['fn']}</b> missed")
    assert heatmap.text[1][0].startswith(f"<b>{m['fp']}</b> flagged unnecessarily")


def test_sweep_figure_marks_the_threshold(data) -> None:
    m = metrics_at(data, 0.37)
    fig = validated(sweep_figure(data, m))
    assert [t.name for t in fig.data[:3]] == ["Recall", "Specificity", "Accuracy"]
    markers = fig.data[3]
    assert list(markers.x) == [0.37] * 3
    assert list(markers.y) == [m["recall"], m["specificity"], m["accuracy"]]
    assert fig.layout.shapes[0].x0 == 0.37


def test_roc_and_pr_figures_mark_the_operating_point(data) -> None:
    m = metrics_at(data, 0.5)
    roc = validated(roc_figure(data, m))
    point = roc.data[-1]
    assert point.name == "Operating point"
    assert point.x[0] == pytest.approx(1 - m["specificity"]) and point.y[0] == pytest.approx(m["recall"])
    assert "AUC" in roc.data[0].name
    pr = validated(pr_figure(data, m))
    assert pr.data[-1].x[0] == pytest.approx(m["recall"]) and pr.data[-1].y[0] == pytest.approx(m["precision"])


def test_figures_build_without_curves_or_defined_rates() -> None:
    only_normal = explorer_data(pd.DataFrame({"y": [0, 0, 0], "probability": [0.1, 0.5, 0.9]}))
    m = metrics_at(only_normal, 0.5)
    for fig in (confusion_figure(m), sweep_figure(only_normal, m), roc_figure(only_normal, m),
                pr_figure(only_normal, m)):
        validated(fig)
    assert all(t.name != "Operating point" for t in pr_figure(only_normal, m).data)


def test_predictive_values_at_the_split_prevalence_match_the_counts(data) -> None:
    m = metrics_at(data, 0.5)
    ppv, npv = predictive_values(m["recall"], m["specificity"], data.positives / len(data.y))
    assert ppv == pytest.approx(m["precision"]) and npv == pytest.approx(m["npv"])


def test_predictive_values_follow_prevalence() -> None:
    # 90% sensitive, 80% specific: at 10% prevalence 0.09 flagged correctly vs 0.18 falsely.
    assert predictive_values(0.9, 0.8, 0.1) == pytest.approx((0.09 / 0.27, 0.72 / 0.73))
    low, high = predictive_values(0.9, 0.8, 0.02), predictive_values(0.9, 0.8, 0.6)
    assert low[0] < high[0] and low[1] > high[1]
    assert math.isnan(predictive_values(0.0, 1.0, 0.3)[0])  # nobody flagged
    with pytest.raises(ValueError, match="prevalence"):
        predictive_values(0.9, 0.8, 0.0)

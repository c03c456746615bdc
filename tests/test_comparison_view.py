"""The comparison, learning-curve, ablation and subtype views (ui/comparison.py), without Streamlit."""

from __future__ import annotations

import pandas as pd
import pytest

from core.model import ModelMetadata
from core.model.metadata import Threshold
from ui.comparison import (
    ablation_view,
    approach_notes,
    comparison_view,
    learning_curve_figure,
    seed_spread,
    subtype_view,
    tradeoff_figure,
)

TABLE = pd.DataFrame({"model": ["dense_25pct", "compact_cnn_robust", "xception"], "auc": [0.8, 0.97, 0.9],
                      "accuracy": [0.7, 0.9, 0.85], "parameters": [100, 200_000, 20_000_000],
                      "latency_ms": [1.0, 8.0, 90.0], "tn": [1, 2, 3], "fraction": [0.25, 1.0, 1.0],
                      "source": ["a floor", "ours", float("nan")]})


def test_comparison_sorts_by_auc_renames_and_drops_raw_counts() -> None:
    view = comparison_view(TABLE)
    assert list(view["approach"]) == ["compact_cnn_robust", "xception", "dense_25pct"]
    assert "ROC AUC" in view.columns and "tn" not in view.columns and "source" not in view.columns
    assert list(view["training patients (%)"]) == [100, 100, 25]
    with pytest.raises(ValueError, match="'model' and 'auc'"):
        comparison_view(pd.DataFrame({"auc": [0.5]}))


def test_notes_skip_rows_without_a_sentence() -> None:
    assert approach_notes(TABLE) == [("dense_25pct", "a floor"), ("compact_cnn_robust", "ours")]
    assert approach_notes(TABLE.drop(columns="source")) == []


@pytest.mark.parametrize("x", ["parameters", "latency_ms"])
def test_tradeoff_plots_one_point_per_approach_on_a_log_axis(x: str) -> None:
    fig = tradeoff_figure(TABLE, x)
    assert list(fig.data[0].y) == [0.8, 0.97, 0.9] and list(fig.data[0].text) == list(TABLE["model"])
    assert fig.layout.xaxis.type == "log"
    with pytest.raises(ValueError):
        tradeoff_figure(TABLE, "auc")
    with pytest.raises(ValueError, match="does not record"):
        tradeoff_figure(TABLE.drop(columns=x), x)


def test_learning_curve_is_sorted_by_share_and_checks_columns() -> None:
    curve = pd.DataFrame({"fraction": [1.0, 0.1], "val_auc": [0.99, 0.9], "test_auc": [0.98, 0.88],
                          "val_recall": [0.97, 0.9]})
    fig = learning_curve_figure(curve)
    assert [t.name for t in fig.data] == ["validation AUC", "test AUC", "validation recall"]
    assert list(fig.data[0].x) == [10.0, 100.0] and list(fig.data[0].y) == [0.9, 0.99]
    with pytest.raises(ValueError, match="learning curve"):
        learning_curve_figure(curve.drop(columns="test_auc"))


def test_ablation_averages_seeds_and_reports_their_spread() -> None:
    runs = pd.DataFrame({"variant": ["robust (all on)", "robust (all on)", "no noise"], "seed": [1, 2, 1],
                         "test_auc": [0.98, 0.96, 0.95], "shift3_mean_auc": [0.97, 0.95, 0.90]})
    view = ablation_view(runs)
    assert list(view["recipe"]) == ["robust (all on)", "no noise"] and list(view["runs"]) == [2, 1]
    assert view["test AUC"].tolist() == pytest.approx([0.97, 0.95])
    assert seed_spread(runs) == pytest.approx(0.02)
    assert seed_spread(runs, variant="no noise") is None
    with pytest.raises(ValueError):
        ablation_view(runs.drop(columns="variant"))


def test_subtype_view_puts_intervals_beside_the_anchor() -> None:
    meta = ModelMetadata(name="pneumonia_subtype", labels=("viral", "bacterial"), input_size=224, sha256="0" * 64,
                         threshold=Threshold(0.5, "balanced"),
                         metrics={"test": {"auc": 0.81, "accuracy": 0.74, "recall": 0.8, "specificity": 0.6,
                                           "ci95": {"auc": [0.76, 0.86]}},
                                  "anchor": {"auc": 0.94, "accuracy": 0.907}})
    view = subtype_view(meta).set_index("measure")
    assert view.loc["ROC AUC", "our test split"] == "0.810" and view.loc["ROC AUC", "95% interval"] == "0.760–0.860"
    assert view.loc["ROC AUC", "published anchor"] == "0.940"
    assert view.loc["sensitivity (bacterial)", "95% interval"] == "—"

"""Metrics and threshold rules, checked by hand and against brute force and scikit-learn."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import confusion_matrix, roc_auc_score

from core.evaluation.metrics import (
    CI_METRICS,
    auc_gain_ci,
    bootstrap_ci,
    classification_summary,
    curves,
    predict_labels,
    threshold_for_max_accuracy,
    threshold_for_recall,
    threshold_metrics,
    threshold_sweep,
)

Y = np.array([0, 0, 0, 1, 1, 1, 1, 0])
P = np.array([0.1, 0.4, 0.35, 0.8, 0.65, 0.3, 0.9, 0.7])


def brute_force_recall_threshold(y: np.ndarray, p: np.ndarray, min_recall: float) -> float:
    """Try every observed probability; the highest one whose recall still reaches the target."""
    best = -1.0
    for t in np.unique(p):
        recall = np.mean(p[y == 1] >= t)
        if recall >= min_recall - 1e-12:
            best = max(best, float(t))
    return best


def test_threshold_for_recall_by_hand() -> None:
    # Positives sorted: 0.9, 0.8, 0.65, 0.3.
    assert threshold_for_recall(Y, P, 1.0) == 0.3
    assert threshold_for_recall(Y, P, 0.75) == 0.65
    assert threshold_for_recall(Y, P, 0.5) == 0.8
    assert threshold_for_recall(Y, P, 0.51) == 0.65
    assert threshold_for_recall(Y, P, 0.26) == 0.8
    assert threshold_for_recall(Y, P, 0.25) == 0.9
    assert threshold_for_recall(Y, P, 0.01) == 0.9


def test_threshold_for_recall_with_ties() -> None:
    y = np.array([1, 1, 1, 0])
    p = np.array([0.5, 0.5, 0.2, 0.5])
    assert threshold_for_recall(y, p, 0.5) == 0.5
    assert threshold_for_recall(y, p, 0.9) == 0.2


@settings(max_examples=200, deadline=None)
@given(
    data=st.lists(st.tuples(st.integers(0, 1), st.integers(0, 20)), min_size=1, max_size=30),
    min_recall=st.sampled_from([0.01, 0.25, 0.5, 0.8, 0.9, 0.95, 0.98, 1.0]),
)
def test_threshold_for_recall_matches_brute_force(data: list[tuple[int, int]], min_recall: float) -> None:
    y = np.array([d[0] for d in data])
    p = np.array([d[1] / 20 for d in data])  # coarse grid: plenty of ties
    if not y.any():
        with pytest.raises(ValueError):
            threshold_for_recall(y, p, min_recall)
        return
    threshold = threshold_for_recall(y, p, min_recall)
    assert threshold == brute_force_recall_threshold(y, p, min_recall)
    assert np.mean(p[y == 1] >= threshold) >= min_recall - 1e-12


def test_threshold_for_max_accuracy_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        y = rng.integers(0, 2, 25)
        p = np.round(rng.random(25), 2)
        candidates = np.unique(np.concatenate([p, [1.0]]))
        accuracies = [np.mean((p >= t) == y) for t in candidates]
        expected = candidates[int(np.argmax(accuracies))]
        assert threshold_for_max_accuracy(y, p) == expected


@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.35, 0.5, 0.7, 0.95, 1.0])
def test_threshold_metrics_match_sklearn(threshold: float) -> None:
    out = threshold_metrics(Y, P, threshold)
    tn, fp, fn, tp = confusion_matrix(Y, (threshold <= P).astype(int), labels=[0, 1]).ravel()
    assert (out["tn"], out["fp"], out["fn"], out["tp"]) == (tn, fp, fn, tp)
    assert out["missed"] == fn
    assert out["accuracy"] == pytest.approx((tp + tn) / len(Y))
    assert out["referred_fraction"] == pytest.approx((tp + fp) / len(Y))
    assert out["recall"] == pytest.approx(tp / (tp + fn))
    assert out["specificity"] == pytest.approx(tn / (tn + fp))

    def ratio_or_nan(a: int, b: int) -> float:
        return a / b if b else math.nan

    for key, expected in (("precision", ratio_or_nan(tp, tp + fp)), ("npv", ratio_or_nan(tn, tn + fn)),
                          ("f1", ratio_or_nan(2 * tp, 2 * tp + fp + fn))):
        if math.isnan(expected):
            assert math.isnan(out[key]), key
        else:
            assert out[key] == pytest.approx(expected), key


def test_hand_checked_counts() -> None:
    out = threshold_metrics(Y, P, 0.5)
    # Predicted positive: 0.8, 0.65, 0.9 (true) and 0.7 (false).
    assert (out["tp"], out["fp"], out["tn"], out["fn"]) == (3, 1, 3, 1)
    assert out["recall"] == 0.75 and out["specificity"] == 0.75


def test_zero_denominators_give_nan() -> None:
    out = threshold_metrics(np.array([0, 0, 1]), np.array([0.1, 0.2, 0.3]), 1.0)
    assert out["tp"] == out["fp"] == 0
    assert math.isnan(out["precision"])
    out = threshold_metrics(np.array([1, 1]), np.array([0.4, 0.6]), 0.5)
    assert math.isnan(out["specificity"])


def test_classification_summary_auc_and_loss() -> None:
    out = classification_summary(Y, P, 0.5)
    assert out["auc"] == pytest.approx(roc_auc_score(Y, P))
    expected_loss = -np.mean(Y * np.log(P) + (1 - Y) * np.log(1 - P))
    assert out["loss"] == pytest.approx(expected_loss)
    single = classification_summary(np.array([1, 1]), np.array([0.7, 0.8]), 0.5)
    assert math.isnan(single["auc"])


def test_threshold_sweep_matches_threshold_metrics() -> None:
    sweep = threshold_sweep(Y, P, points=11)
    assert sweep["threshold"].tolist() == pytest.approx(np.linspace(0, 1, 11).tolist())
    for i, t in enumerate(sweep["threshold"]):
        m = threshold_metrics(Y, P, float(t))
        assert sweep["recall"][i] == pytest.approx(m["recall"])
        assert sweep["specificity"][i] == pytest.approx(m["specificity"])
        assert sweep["accuracy"][i] == pytest.approx(m["accuracy"])


def test_curves() -> None:
    out = curves(Y, P)
    assert out["fpr"][0] == 0 and out["tpr"][-1] == 1
    assert np.trapezoid(out["tpr"], out["fpr"]) == pytest.approx(roc_auc_score(Y, P))
    with pytest.raises(ValueError, match="both"):
        curves(np.array([1, 1]), np.array([0.2, 0.4]))


def _ci_data(n: int = 120, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p = np.clip(0.3 * y + rng.normal(0.35, 0.2, n), 0, 1)
    return y, p


def test_bootstrap_ci_contains_point_estimate_and_is_deterministic() -> None:
    y, p = _ci_data()
    ci = bootstrap_ci(y, p, 0.5, n_resamples=60, seed=3)
    point = classification_summary(y, p, 0.5)
    assert set(ci) == set(CI_METRICS)
    for name, (lo, hi) in ci.items():
        assert lo <= point[name] <= hi, name
        assert hi - lo > 0, name
    assert bootstrap_ci(y, p, 0.5, n_resamples=60, seed=3) == ci
    assert bootstrap_ci(y, p, 0.5, n_resamples=60, seed=4) != ci


def test_bootstrap_by_patient_is_wider_for_correlated_images() -> None:
    # Each child contributes 5 identical images: treating them as independent overstates certainty.
    y, p = _ci_data(40, seed=2)
    y5, p5, groups = np.repeat(y, 5), np.repeat(p, 5), np.repeat(np.arange(40), 5)
    by_image = bootstrap_ci(y5, p5, 0.5, n_resamples=60, seed=0)
    by_patient = bootstrap_ci(y5, p5, 0.5, groups=groups, n_resamples=60, seed=0)
    width = lambda ci: ci["accuracy"][1] - ci["accuracy"][0]  # noqa: E731
    assert width(by_patient) > 1.5 * width(by_image)


def test_auc_gain_ci_is_paired_and_by_patient() -> None:
    y, p = _ci_data(200, seed=5)
    rng = np.random.default_rng(6)
    better = np.clip(p + 0.25 * (y - 0.5), 0, 1)  # the same scores, pushed towards the right class
    gain, low, high = auc_gain_ci(y, p, better, n_resamples=200)
    assert gain == pytest.approx(roc_auc_score(y, better) - roc_auc_score(y, p))
    assert 0 < low <= gain <= high
    assert auc_gain_ci(y, p, p, n_resamples=50) == (0.0, 0.0, 0.0)  # paired: no gain, no spread
    # A small change in ranking on a small split: its interval crosses zero.
    nudged = np.clip(p + rng.normal(0, 0.01, len(p)), 0, 1)
    _, low, high = auc_gain_ci(y, p, nudged, n_resamples=200)
    assert low < 0 < high
    # Five identical images per child: resampling children, not images, widens the interval.
    y5, p5, b5, groups = np.repeat(y, 5), np.repeat(p, 5), np.repeat(nudged, 5), np.repeat(np.arange(200), 5)
    by_image = auc_gain_ci(y5, p5, b5, n_resamples=200)
    by_child = auc_gain_ci(y5, p5, b5, groups=groups, n_resamples=200)
    assert by_child[2] - by_child[1] > 1.5 * (by_image[2] - by_image[1])
    # One child holding both classes: every resample is one class or that child again.
    gain, low, high = auc_gain_ci([0, 1], [0.2, 0.8], [0.8, 0.2], groups=["a", "a"], n_resamples=10)
    assert gain == -1.0 and low == high == -1.0

    class FirstChildOnly:  # a resampler that keeps drawing the first child, who is normal
        def integers(self, low, high, size):
            return np.zeros(size, dtype=int)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(np.random, "default_rng", lambda seed=None: FirstChildOnly())
        gain, low, high = auc_gain_ci([0, 1], [0.2, 0.8], [0.8, 0.2], groups=["a", "b"], n_resamples=10)
    assert gain == -1.0 and np.isnan(low) and np.isnan(high)
    with pytest.raises(ValueError):
        auc_gain_ci(y, p, better, groups=groups)
    with pytest.raises(ValueError):
        auc_gain_ci(y, p, better[:-1])


@pytest.mark.parametrize(
    ("labels", "probabilities"),
    [
        ([0, 1], [0.5]),
        ([], []),
        ([0, 2], [0.1, 0.2]),
        ([0, 1], [0.1, 1.2]),
        ([0, 1], [-0.1, 0.5]),
        ([0, 1], [np.nan, 0.5]),
        ([[0, 1]], [[0.1, 0.2]]),
    ],
)
def test_bad_inputs_raise_value_error(labels, probabilities) -> None:
    y, p = np.array(labels), np.array(probabilities, dtype=float)
    for call in (lambda: threshold_metrics(y, p, 0.5), lambda: classification_summary(y, p, 0.5),
                 lambda: threshold_for_recall(y, p, 0.9), lambda: threshold_for_max_accuracy(y, p),
                 lambda: threshold_sweep(y, p), lambda: bootstrap_ci(y, p, 0.5, n_resamples=10)):
        with pytest.raises(ValueError):
            call()


def test_bad_parameters_raise_value_error() -> None:
    with pytest.raises(ValueError):
        threshold_metrics(Y, P, 1.5)
    with pytest.raises(ValueError):
        predict_labels(P, -0.1)
    for bad in (0.0, 1.01, -1):
        with pytest.raises(ValueError):
            threshold_for_recall(Y, P, bad)
    with pytest.raises(ValueError, match="PNEUMONIA"):
        threshold_for_recall(np.zeros(3, int), np.array([0.1, 0.2, 0.3]), 0.9)
    with pytest.raises(ValueError):
        bootstrap_ci(Y, P, 0.5, n_resamples=5)
    with pytest.raises(ValueError, match="groups"):
        bootstrap_ci(Y, P, 0.5, groups=np.arange(3), n_resamples=10)


def test_misordered_pairs_add_up_to_the_auc_shortfall_and_count_ties_half() -> None:
    from sklearn.metrics import roc_auc_score

    from core.evaluation.metrics import films_carrying, misordered_pairs

    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 200)
    p = np.clip(0.3 * y + rng.normal(0.35, 0.2, 200), 0, 1).round(2)  # rounding makes ties
    per_normal, per_pneumonia = misordered_pairs(y, p)
    shortfall = (1 - roc_auc_score(y, p)) * (y == 0).sum() * (y == 1).sum()
    assert len(per_normal) == (y == 0).sum() and len(per_pneumonia) == (y == 1).sum()
    assert per_normal.sum() == pytest.approx(shortfall) and per_pneumonia.sum() == pytest.approx(shortfall)
    # One normal above every pneumonia film, one tie, the rest in order.
    per_normal, per_pneumonia = misordered_pairs(np.array([0, 0, 0, 1, 1, 1]), np.array([0.9, 0.5, 0.1, 0.5, 0.6, 0.7]))
    assert per_normal.tolist() == [3.0, 0.5, 0.0] and per_pneumonia.tolist() == [1.5, 1.0, 1.0]
    assert films_carrying(per_normal) == 1 and films_carrying(per_normal, 1.0) == 2
    assert films_carrying(per_pneumonia) == 2 and films_carrying([0, 0]) == 0
    with pytest.raises(ValueError, match="both classes"):
        misordered_pairs(np.array([1, 1]), np.array([0.2, 0.3]))
    with pytest.raises(ValueError, match="share"):
        films_carrying(per_normal, 0.0)

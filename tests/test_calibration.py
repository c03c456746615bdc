"""Site calibration: probability calibration, the threshold table, threshold rules and site profiles.

All data are synthetic, from seeded generators; the fast vectorised paths are held equal to
the reference implementations in the metrics module and to direct computations.
"""

from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV, calibration_curve
from sklearn.frozen import FrozenEstimator

from core.calibration import (
    Calibration,
    Choice,
    ProfileError,
    SiteProfile,
    build_profile,
    can_refit,
    check_local_set,
    check_model,
    choose_threshold,
    default_thresholds,
    fit_platt,
    fit_temperature,
    logit,
    reliability,
    sigmoid,
    threshold_table,
)
from core.calibration.site import _cumulative_below, _metrics

try:  # the metrics module is moving into core/evaluation/ during a restructuring
    from core.evaluation.metrics import threshold_for_recall, threshold_metrics
except ImportError:  # pragma: no cover - layout before the move
    from core.metrics import threshold_for_recall, threshold_metrics

SHA = "a" * 64
OTHER_SHA = "b" * 64


def scored_set(n: int, seed: int = 0, separation: float = 1.2, decimals: int | None = 4):
    """Labels and probabilities of a moderately good model; rounding creates tied scores."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.45).astype(int)
    p = sigmoid(rng.normal(0, 1.3, n) + separation * (2 * y - 1))
    return y, (np.round(p, decimals) if decimals is not None else p)


def overconfident_set(n: int, temperature: float, seed: int = 0):
    """Labels drawn from sigmoid(z); the 'model' reports sigmoid(z * T), i.e. logits z * T."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 1.5, n)
    y = (rng.random(n) < sigmoid(z)).astype(int)
    return y, sigmoid(z * temperature)


# --- probability calibration ---------------------------------------------------------------


def test_logit_and_sigmoid_are_inverse_and_clip() -> None:
    p = np.array([0.001, 0.2, 0.5, 0.9, 0.999])
    np.testing.assert_allclose(sigmoid(logit(p)), p, rtol=1e-12)
    assert logit(0.5) == 0
    assert np.isfinite(logit(np.array([0.0, 1.0]))).all()
    np.testing.assert_allclose(logit(np.array([0.0, 1.0])), [math.log(1e-7 / (1 - 1e-7)), -math.log(1e-7 / (1 - 1e-7))])
    with np.errstate(over="raise"):
        assert sigmoid(np.array([-1000.0, 1000.0])).tolist() == [0.0, 1.0]


@pytest.mark.parametrize("true_t", [0.5, 2.5])
def test_temperature_fit_recovers_known_temperature(true_t: float) -> None:
    y, p = overconfident_set(40_000, true_t, seed=1)
    assert fit_temperature(y, p) == pytest.approx(true_t, rel=0.05)


def test_temperature_fit_matches_scikit_learn_temperature_scaling() -> None:
    """The regression formulation gives the same T as CalibratedClassifierCV(method="temperature")."""
    y, p = overconfident_set(5_000, 2.0, seed=2)

    class Logits(ClassifierMixin, BaseEstimator):
        def fit(self, x, y):  # noqa: ARG002 - a stub: the scores are precomputed
            self.classes_ = np.array([0, 1])
            return self

        def decision_function(self, x):
            # scikit-learn turns a binary score s into the logits (-s, s), i.e. sigmoid(2s): halve it.
            return np.asarray(x)[:, 0] / 2

        def predict(self, x):
            return (np.asarray(x)[:, 0] >= 0).astype(int)

    x = logit(p)[:, None]
    reference = CalibratedClassifierCV(FrozenEstimator(Logits().fit(x, y)), method="temperature").fit(x, y)
    ours = Calibration("temperature", temperature=fit_temperature(y, p))
    np.testing.assert_allclose(ours.apply(p), reference.predict_proba(x)[:, 1], atol=1e-4)


def test_platt_recovers_slope_and_intercept() -> None:
    rng = np.random.default_rng(3)
    s = rng.normal(0, 2, 40_000)
    y = (rng.random(len(s)) < sigmoid(0.6 * s - 0.4)).astype(int)
    a, b = fit_platt(y, sigmoid(s))
    assert a == pytest.approx(0.6, abs=0.03)
    assert b == pytest.approx(-0.4, abs=0.05)


def test_calibration_lowers_ece_on_overconfident_scores() -> None:
    y, p = overconfident_set(8_000, 3.0, seed=4)
    fit_y, fit_p, test_y, test_p = y[:4000], p[:4000], y[4000:], p[4000:]
    before = reliability(test_y, test_p)["ece"]
    for method in ("temperature", "platt"):
        calibrated = Calibration.fit(fit_y, fit_p, method=method).apply(test_p)
        after = reliability(test_y, calibrated)
        assert before > 0.08
        assert after["ece"] < before / 3
        assert after["slope"] == pytest.approx(1.0, abs=0.15)


def test_reliability_ece_matches_direct_computation() -> None:
    y, p = scored_set(3_000, seed=5, decimals=None)
    result = reliability(y, p, bins=10)
    total = 0.0
    counts = []
    for k in range(10):
        lo, hi = k / 10, (k + 1) / 10
        in_bin = (p <= hi) & ((p > lo) if k else (p >= lo))
        if in_bin.any():
            counts.append(in_bin.sum())
            total += in_bin.sum() * abs(y[in_bin].mean() - p[in_bin].mean())
    assert result["ece"] == pytest.approx(total / len(y), rel=1e-12)
    assert result["count"].tolist() == counts
    assert result["brier"] == pytest.approx(np.mean((p - y) ** 2))
    assert result["cases"] == len(y)


def test_reliability_counts_line_up_with_the_curve_for_scores_on_bin_edges() -> None:
    # 0.5 and 0.25 lie exactly on edges: calibration_curve puts them in the lower bin, np.histogram in the upper.
    p = np.array([0.0, 0.25, 0.25, 0.5, 0.5, 0.5, 0.6, 1.0])
    y = np.array([0, 0, 1, 0, 1, 1, 1, 1])
    result = reliability(y, p, bins=4)
    frac, mean = calibration_curve(y, p, n_bins=4)
    np.testing.assert_allclose(result["mean_predicted"], mean)
    np.testing.assert_allclose(result["fraction_positive"], frac)
    assert result["count"].tolist() == [3, 3, 1, 1]
    assert np.histogram(p, bins=result["edges"])[0].tolist() == [1, 2, 4, 1]  # why np.histogram is not used


def test_reliability_slope_reveals_overconfidence_and_single_class_is_nan() -> None:
    y, p = overconfident_set(20_000, 2.0, seed=6)
    assert reliability(y, p)["slope"] == pytest.approx(0.5, abs=0.05)
    one_class = reliability(np.zeros(20, int), np.linspace(0, 0.5, 20))
    assert math.isnan(one_class["slope"]) and math.isnan(one_class["intercept"])
    assert one_class["brier"] == pytest.approx(np.mean(np.linspace(0, 0.5, 20) ** 2))


def test_calibration_apply_and_dict_round_trip() -> None:
    p = np.array([0.0, 0.1, 0.5, 0.97, 1.0])
    np.testing.assert_array_equal(Calibration("none").apply(p), p)
    cal = Calibration("temperature", temperature=2.0, fitted_on="Site A", cases=300)
    np.testing.assert_allclose(cal.apply(p), sigmoid(logit(p) / 2))
    assert cal.apply(np.array([0.5]))[0] == pytest.approx(0.5)
    platt = Calibration("platt", slope=0.5, intercept=1.0)
    np.testing.assert_allclose(platt.apply(p), sigmoid(0.5 * logit(p) + 1.0))
    for c in (cal, platt, Calibration("none")):
        assert Calibration.from_dict(json.loads(json.dumps(c.to_dict()))) == c


@pytest.mark.parametrize(
    "data",
    [
        {"method": "temperature", "temperature": 0.0},
        {"method": "temperature", "temperature": -1.0},
        {"method": "temperature", "temperature": float("inf")},
        {"method": "temperature", "temperature": float("nan")},
        {"method": "temperature", "temperature": "2"},
        {"method": "platt", "slope": -1.0},
        {"method": "isotonic"},
        {"temperature": 1.0},
        {"method": "none", "colour": "red"},
        {"method": "none", "cases": -3},
        "temperature",
    ],
)
def test_calibration_from_dict_refuses_bad_values(data) -> None:
    with pytest.raises(ValueError):
        Calibration.from_dict(data)


def test_fits_refuse_bad_input() -> None:
    with pytest.raises(ValueError, match="both"):
        fit_temperature(np.ones(10, int), np.linspace(0.1, 0.9, 10))
    with pytest.raises(ValueError, match="same length"):
        fit_platt(np.array([0, 1]), np.array([0.2, 0.4, 0.6]))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fit_temperature(np.array([0, 1]), np.array([0.2, 1.4]))
    with pytest.raises(ValueError, match="positively associated"):
        fit_temperature(np.array([1, 1, 0, 0, 1, 0] * 20), np.array([0.1, 0.2, 0.8, 0.9, 0.3, 0.6] * 20))
    with pytest.raises(ValueError, match="separate the classes"):
        fit_platt(np.array([0, 0, 0, 1, 1, 1]), np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9]))


# --- threshold table -----------------------------------------------------------------------


def test_default_thresholds_are_grid_plus_scores() -> None:
    p = np.array([0.123, 0.5, 0.5, 0.987])
    t = default_thresholds(p)
    assert np.all(np.diff(t) > 0)
    assert set(np.round(np.linspace(0, 1, 101), 12)) <= set(np.round(t, 12))
    assert {0.123, 0.987} <= set(t.tolist())
    assert len(t) == 103


def test_table_point_estimates_equal_reference_threshold_metrics() -> None:
    y, p = scored_set(400, seed=7)
    table = threshold_table(y, p, n_boot=0).set_index("threshold")
    assert len(table) == len(default_thresholds(p))
    picks = [0.0, 0.3, 0.5, 0.77, 1.0, *np.unique(p)[[5, 50, 200, -3]]]
    for t in picks:
        ref = threshold_metrics(y, p, t)
        row = table.loc[t]
        assert row["sensitivity"] == pytest.approx(ref["recall"], nan_ok=True)
        assert row["specificity"] == pytest.approx(ref["specificity"], nan_ok=True)
        assert row["ppv"] == pytest.approx(ref["precision"], nan_ok=True)
        assert row["npv"] == pytest.approx(ref["npv"], nan_ok=True)
        assert row["accuracy"] == pytest.approx(ref["accuracy"])
        assert row["referred"] == pytest.approx(ref["referred_fraction"])
        assert row["missed_per_1000"] == pytest.approx(1000 * ref["missed"] / len(y))
        expected_nnt = len(y) / ref["tp"] if ref["tp"] else float("nan")
        assert row["nnt"] == pytest.approx(expected_nnt, nan_ok=True)


def test_resampled_counts_equal_reference_on_expanded_data() -> None:
    """The weighted cumulative-sum path equals threshold_metrics on the explicitly resampled images."""
    y, p = scored_set(120, seed=8, decimals=2)
    rng = np.random.default_rng(9)
    weights = rng.multinomial(len(y), np.full(len(y), 1 / len(y)), size=5)
    order = np.argsort(p, kind="stable")
    t = np.array([0.2, 0.45, 0.5, 0.61, 0.9])
    cut = np.searchsorted(p[order], t, side="left")
    fast = _metrics(*_cumulative_below(weights[:, order], y[order].astype(bool), cut), None)
    for b in range(len(weights)):
        idx = np.repeat(np.arange(len(y)), weights[b])
        for j, threshold in enumerate(t):
            ref = threshold_metrics(y[idx], p[idx], threshold)
            assert fast["sensitivity"][b, j] == pytest.approx(ref["recall"], nan_ok=True)
            assert fast["specificity"][b, j] == pytest.approx(ref["specificity"], nan_ok=True)
            assert fast["ppv"][b, j] == pytest.approx(ref["precision"], nan_ok=True)
            assert fast["npv"][b, j] == pytest.approx(ref["npv"], nan_ok=True)
            assert fast["accuracy"][b, j] == pytest.approx(ref["accuracy"])
            assert fast["referred"][b, j] == pytest.approx(ref["referred_fraction"])
            assert fast["missed_per_1000"][b, j] == pytest.approx(1000 * ref["missed"] / len(idx))


def test_given_prevalence_rebuilds_prevalence_dependent_columns() -> None:
    y, p = scored_set(500, seed=10)
    sample = threshold_table(y, p, thresholds=[0.3, 0.5, 0.7], n_boot=0)
    same = threshold_table(y, p, thresholds=[0.3, 0.5, 0.7], n_boot=0, prevalence=y.mean())
    for col in ("ppv", "npv", "referred", "accuracy", "nnt", "missed_per_1000"):
        np.testing.assert_allclose(same[col], sample[col], rtol=1e-9)
    low = threshold_table(y, p, thresholds=[0.3, 0.5, 0.7], n_boot=0, prevalence=0.05)
    np.testing.assert_array_equal(low["sensitivity"], sample["sensitivity"])
    se, sp = low["sensitivity"], low["specificity"]
    np.testing.assert_allclose(low["ppv"], se * 0.05 / (se * 0.05 + (1 - sp) * 0.95))
    np.testing.assert_allclose(low["missed_per_1000"], 1000 * (1 - se) * 0.05)
    assert (low["ppv"] < sample["ppv"]).all()
    with pytest.raises(ValueError, match="prevalence"):
        threshold_table(y, p, prevalence=1.0)


def test_interval_contains_point_and_narrows_with_more_data() -> None:
    widths = []
    for n in (200, 5_000):
        y, p = scored_set(n, seed=11)
        table = threshold_table(y, p, thresholds=[0.3, 0.5, 0.7], n_boot=500, seed=1)
        for m in ("sensitivity", "specificity", "ppv", "npv", "referred", "missed_per_1000"):
            assert (table[f"{m}_lo"] <= table[m]).all() and (table[m] <= table[f"{m}_hi"]).all(), m
        widths.append((table["sensitivity_hi"] - table["sensitivity_lo"]).to_numpy())
    assert (widths[1] < 0.5 * widths[0]).all()


def test_patient_bootstrap_is_wider_on_clustered_data() -> None:
    rng = np.random.default_rng(12)
    patients, per_patient = 150, 6
    patient_label = (rng.random(patients) < 0.5).astype(int)
    patient_score = sigmoid(rng.normal(0, 1.5, patients) + 1.2 * (2 * patient_label - 1))
    y = np.repeat(patient_label, per_patient)
    p = np.clip(np.repeat(patient_score, per_patient) + rng.normal(0, 0.01, y.size), 0, 1)
    groups = np.repeat([f"patient-{i}" for i in range(patients)], per_patient)
    by_image = threshold_table(y, p, thresholds=[0.4, 0.5, 0.6], n_boot=1000)
    by_patient = threshold_table(y, p, groups=groups, thresholds=[0.4, 0.5, 0.6], n_boot=1000)
    for m in ("sensitivity", "specificity", "referred"):
        image_width = by_image[f"{m}_hi"] - by_image[f"{m}_lo"]
        patient_width = by_patient[f"{m}_hi"] - by_patient[f"{m}_lo"]
        assert (patient_width > 1.6 * image_width).all(), m
    np.testing.assert_array_equal(by_image["sensitivity"], by_patient["sensitivity"])


def test_table_is_reproducible_and_validates_input() -> None:
    y, p = scored_set(150, seed=13)
    a = threshold_table(y, p, n_boot=200, seed=3)
    pd.testing.assert_frame_equal(a, threshold_table(y, p, n_boot=200, seed=3))
    assert not a.equals(threshold_table(y, p, n_boot=200, seed=4))
    assert list(a.columns[:4]) == ["threshold", "sensitivity", "sensitivity_lo", "sensitivity_hi"]
    for bad in ({"n_boot": 5}, {"thresholds": [0.2, 1.2]}, {"thresholds": []}, {"groups": np.arange(3)}):
        with pytest.raises(ValueError):
            threshold_table(y, p, **bad)
    with pytest.raises(ValueError, match="labels"):
        threshold_table(np.full(len(p), 2), p)


def test_table_of_1000_images_with_1000_resamples_runs() -> None:
    y, p = scored_set(1_000, seed=14, decimals=None)
    groups = np.arange(1_000) // 2
    start = time.perf_counter()
    table = threshold_table(y, p, groups=groups, n_boot=1_000)
    elapsed = time.perf_counter() - start
    print(f"\nthreshold table: 1,000 images x {len(table):,} thresholds x 1,000 patient resamples in {elapsed:.2f} s")
    assert len(table) == len(default_thresholds(p)) > 1_000
    assert table.filter(like="_lo").notna().any(axis=None)


# --- choosing a threshold ------------------------------------------------------------------


def test_sensitivity_rule_picks_highest_threshold_reaching_target() -> None:
    y, p = scored_set(600, seed=15)
    table = threshold_table(y, p, n_boot=0)
    choice = choose_threshold(table, rule="sensitivity", value=0.9)
    assert choice == Choice(choice.threshold, "sensitivity", 0.9, "highest threshold keeping local sensitivity ≥ 0.9")
    assert choice.threshold == threshold_for_recall(y, p, 0.9)
    above = table[table["threshold"] > choice.threshold]
    assert (above["sensitivity"] < 0.9).all()
    assert threshold_metrics(y, p, choice.threshold)["recall"] >= 0.9
    default = choose_threshold(y, p)
    assert default.target == 0.95 and default.description.endswith("≥ 0.95")
    assert default.threshold == threshold_for_recall(y, p, 0.95)


def test_max_referred_rule_picks_lowest_threshold_within_capacity() -> None:
    y, p = scored_set(600, seed=16)
    table = threshold_table(y, p, n_boot=0)
    choice = choose_threshold(table, rule="max_referred", value=0.3)
    assert choice.rule == "max_referred" and choice.target == 0.3
    assert "at most 30% of images" in choice.description
    assert threshold_metrics(y, p, choice.threshold)["referred_fraction"] <= 0.3
    below = table[table["threshold"] < choice.threshold]
    assert (below["referred"] > 0.3).all()


def test_manual_rule_and_bad_rules() -> None:
    y, p = scored_set(100, seed=17)
    choice = choose_threshold(y, p, rule="manual", value=0.42)
    assert (choice.threshold, choice.rule, choice.target) == (0.42, "manual", None)
    assert "0.42" in choice.description
    with pytest.raises(ValueError, match="rule"):
        choose_threshold(y, p, rule="youden", value=0.5)
    with pytest.raises(ValueError, match="needs a value"):
        choose_threshold(y, p, rule="manual")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        choose_threshold(y, p, rule="manual", value=1.5)


def test_unreachable_targets_are_refused() -> None:
    y, p = scored_set(300, seed=18)
    coarse = threshold_table(y, p, thresholds=[0.6, 0.9], n_boot=0)
    with pytest.raises(ValueError, match="no threshold reaches a local sensitivity of 0.99"):
        choose_threshold(coarse, rule="sensitivity", value=0.99)
    saturated = np.where(np.arange(len(p)) % 4 == 0, 1.0, p)  # a quarter of outputs saturate at 1.0
    with pytest.raises(ValueError, match="no threshold refers at most 10%"):
        choose_threshold(y, saturated, rule="max_referred", value=0.1)
    with pytest.raises(ValueError, match="no PNEUMONIA"):
        choose_threshold(np.zeros(20, int), np.linspace(0, 1, 20), rule="sensitivity")


# --- local set checks ----------------------------------------------------------------------


def test_small_local_sets_are_warned_about() -> None:
    small = np.array([0] * 40 + [1] * 300)
    warnings = check_local_set(small, method="none")
    assert len(warnings) == 1
    assert "only 40 NORMAL cases (fewer than 100)" in warnings[0] and "specificity" in warnings[0]
    both = check_local_set(np.array([0] * 99 + [1] * 5))
    assert any("99 NORMAL" in w for w in both) and any("5 PNEUMONIA" in w for w in both)
    assert any("keep the shipped calibration" in w for w in both)
    assert check_local_set(np.array([0] * 100 + [1] * 100)) == []
    assert "no PNEUMONIA cases" in check_local_set(np.zeros(200, int), method="none")[0]


def test_refit_guards() -> None:
    ok, reason = can_refit(np.array([0] * 500 + [1] * 499), "isotonic")
    assert not ok and "1,000" in reason and "999" in reason
    assert can_refit(np.array([0] * 500 + [1] * 500), "isotonic")[0]
    ok, reason = can_refit(np.array([0] * 99 + [1] * 400), "temperature")
    assert not ok and "100 NORMAL" in reason
    assert can_refit(np.array([0] * 100 + [1] * 100), "platt")[0]
    warnings = check_local_set(np.array([0] * 300 + [1] * 300), method="isotonic")
    assert warnings[0].startswith("Isotonic calibration needs")
    with pytest.raises(ValueError, match="method"):
        can_refit(np.array([0, 1]), "beta")


# --- site profiles -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def profile_and_table() -> tuple[SiteProfile, pd.DataFrame]:
    y, p = scored_set(400, seed=19)
    groups = np.arange(400) // 2
    calibration = Calibration("temperature", temperature=1.3, fitted_on="Kisumu pilot", cases=400)
    return build_profile(
        "Kisumu District Hospital", SHA, y, p, groups=groups, calibration=calibration, refused=3, unreadable=1,
        n_boot=300,
    )


def test_build_profile_ties_table_choice_and_metrics(profile_and_table) -> None:
    profile, table = profile_and_table
    assert profile.rule == "sensitivity" and profile.target == 0.95
    assert profile.rule_description == "highest threshold keeping local sensitivity ≥ 0.95"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", profile.created)
    row = table.set_index("threshold").loc[profile.threshold]
    for m in ("sensitivity", "specificity", "ppv", "npv", "referred", "accuracy"):
        assert profile.metrics[m]["value"] == pytest.approx(row[m])
        assert profile.metrics[m]["ci"] == pytest.approx([row[f"{m}_lo"], row[f"{m}_hi"]])
    assert profile.metrics["sensitivity"]["value"] >= 0.95
    assert profile.cases == {"normal": 227, "pneumonia": 173, "patients": 200, "refused": 3, "unreadable": 1}
    assert profile.calibration["temperature"] == 1.3
    assert re.fullmatch(r"[0-9a-f]{12}", profile.profile_id)
    assert profile.file_name == "kisumu-district-hospital.json"


def test_profile_round_trip(profile_and_table, tmp_path: Path) -> None:
    profile, _ = profile_and_table
    path = profile.write(tmp_path / profile.file_name)
    again = SiteProfile.read(path)
    assert again == profile
    assert again.profile_id == profile.profile_id
    assert json.loads(path.read_text())["schema"] == 1
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_profile_for_another_model_is_refused(profile_and_table) -> None:
    profile, _ = profile_and_table
    check_model(profile, SHA.upper())
    expected = r"this profile was made for another model \(sha256 aaaaaaaaaaaa…\); the model changed: re-calibrate"
    with pytest.raises(ProfileError, match=expected):
        check_model(profile, OTHER_SHA)


def _mutated(profile: SiteProfile, change) -> dict:
    data = json.loads(json.dumps(profile.to_dict()))
    change(data)
    return data


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda d: d.pop("threshold"), "missing threshold"),
        (lambda d: d.update(threshold=1.5), "within"),
        (lambda d: d.update(threshold="0.5"), "must be a number"),
        (lambda d: d.update(threshold=True), "must be a number"),
        (lambda d: d["cases"].update(normal="227"), "non-negative integer"),
        (lambda d: d["metrics"]["sensitivity"].update(value="high"), "must be a number"),
        (lambda d: d["metrics"].pop("npv"), "missing npv"),
        (lambda d: d.update(site=""), "site"),
        (lambda d: d.update(site="x" * 81), "80"),
        (lambda d: d.update(site="Ward\n7"), "printable"),
        (lambda d: d.update(site="scan_0001.png"), "file name"),
        (lambda d: d["calibration"].update(fitted_on="/data/site/images"), "file name"),
        (lambda d: d["calibration"].update(temperature=0), "temperature"),
        (lambda d: d.update(model_sha256="abc"), "model_sha256"),
        (lambda d: d.update(created="yesterday"), "created"),
        (lambda d: d.update(rule="youden"), "rule"),
        (lambda d: d.update(schema=2), "schema"),
        (lambda d: d.update(images=["a"]), "unknown keys"),
    ],
)
def test_malformed_profiles_are_refused(profile_and_table, tmp_path: Path, change, reason) -> None:
    profile, _ = profile_and_table
    path = tmp_path / "site.json"
    path.write_text(json.dumps(_mutated(profile, change)))
    with pytest.raises(ProfileError, match=reason) as info:
        SiteProfile.read(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"{not json", "not valid JSON"),
        (b"", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"threshold": NaN}', "NaN is not a valid number"),
        (b"\xff\xfe\x00", "UTF-8"),
    ],
)
def test_unparseable_profile_files_are_refused(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "site.json"
    path.write_bytes(content)
    with pytest.raises(ProfileError, match=reason):
        SiteProfile.read(path)
    with pytest.raises(ProfileError, match="cannot read"):
        SiteProfile.read(tmp_path / "absent.json")
    assert issubclass(ProfileError, ValueError)


def test_profile_holds_no_file_names(profile_and_table) -> None:
    profile, _ = profile_and_table
    file_like = re.compile(r"[/\\]|\.[A-Za-z][A-Za-z0-9]{1,4}$")

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                yield key
                yield from walk(value)
        elif isinstance(node, list):
            for value in node:
                yield from walk(value)
        else:
            yield node

    strings = [s for s in walk(json.loads(json.dumps(profile.to_dict()))) if isinstance(s, str)]
    assert strings, "the walk found the profile's text"
    assert not [s for s in strings if file_like.search(s)]
    assert all(len(s) <= 80 or s == profile.rule_description for s in strings)


def test_build_profile_with_manual_threshold_and_refused_inputs() -> None:
    y, p = scored_set(200, seed=20)
    profile, _ = build_profile("Site B", SHA, y, p, rule="manual", value=0.5, n_boot=200)
    assert profile.threshold == 0.5 and profile.target is None
    assert profile.metrics["referred"]["value"] == pytest.approx(np.mean(p >= 0.5))
    assert profile.calibration["method"] == "none"
    with pytest.raises(ProfileError, match="site"):
        build_profile("   ", SHA, y, p, n_boot=0)
    with pytest.raises(ValueError, match="refused"):
        build_profile("Site B", SHA, y, p, refused=-1, n_boot=0)

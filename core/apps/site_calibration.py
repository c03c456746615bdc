"""Site calibration end to end, without any UI: score a labelled local set, then build the site profile.

Two computations, each one call, shared by ``python -m core.cli calibrate`` and the dashboard's
site page: :func:`score_labelled` (the slow part: every image through the one scoring loop, raw
network outputs kept) and :func:`calibrate_scores` (the profile, the threshold table, the
reliability diagrams, the ROC curve; fast enough to follow a widget). Nothing here writes to disk.

It lives in ``core.apps`` rather than ``core.calibration`` because it needs ``core.scoring``,
which itself imports ``core.calibration``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from core.calibration import Calibration, SiteProfile, build_profile, can_refit, check_local_set, reliability
from core.calibration.labelled import LabelledSet, Skipped, read_labelled_upload
from core.evaluation.metrics import curves
from core.model import ModelBundle
from core.scoring import Status, iter_outcomes

REFIT_CHOICES = ("none", "temperature", "platt", "isotonic")
RULE_DEFAULTS = {"sensitivity": 0.95}


@dataclass(frozen=True)
class LabelledScores:
    """Raw network outputs of a labelled set's scored images, and what could not be scored, by name.

    Names stay with the user (terminal, session); they never go into a profile.
    """

    labels: np.ndarray  # 0/1, one per scored image
    raw: np.ndarray  # raw P(pneumonia), before any calibration
    patients: tuple[str | None, ...]
    names: tuple[str, ...]
    refused: tuple[Skipped, ...] = ()
    unreadable: tuple[Skipped, ...] = ()
    skipped: tuple[Skipped, ...] = ()
    unmatched_labels: int = 0
    patients_from: str = "unknown"

    @property
    def normal(self) -> int:
        return int(np.sum(self.labels == 0))

    @property
    def pneumonia(self) -> int:
        return int(np.sum(self.labels == 1))

    @property
    def groups(self) -> np.ndarray | None:
        """One patient id per scored image for the bootstrap; None when no id is known (resample images)."""
        if all(p is None for p in self.patients):
            return None
        # An image without an id is its own patient; the prefix keeps it apart from real ids.
        return np.array([p if p is not None else f"\0image{i}" for i, p in enumerate(self.patients)])


def score_labelled(
    bundle: ModelBundle,
    labelled: LabelledSet,
    calibration: Calibration | None = None,
    batch_size: int = 32,
    workers: int = 2,
    progress: Callable[[int, int], None] | None = None,
) -> LabelledScores:
    """Score every labelled image through ``core.scoring.iter_outcomes``.

    ``calibration`` defaults to none, i.e. raw network outputs, which is what a site profile's
    calibration is applied to. Refused and unreadable images are listed with their reasons and
    left out of the labels and scores.
    """
    calibration = calibration if calibration is not None else Calibration("none")
    items = labelled.items
    labels, raw, patients, names = [], [], [], []
    refused, unreadable = [], []
    outcomes = iter_outcomes(bundle, ((item.name, item.source) for item in items), batch_size, workers,
                             calibration=calibration)
    for done, (item, outcome) in enumerate(zip(items, outcomes, strict=True), 1):
        if outcome.status is Status.SCORED:
            labels.append(item.label)
            raw.append(float(outcome.probability))
            patients.append(item.patient)
            names.append(item.name)
        elif outcome.status is Status.REFUSED:
            refused.append(Skipped(item.name, str(outcome.error)))
        else:
            unreadable.append(Skipped(item.name, str(outcome.error)))
        if progress is not None:
            progress(done, len(items))
    return LabelledScores(
        labels=np.asarray(labels, dtype=int), raw=np.asarray(raw, dtype=np.float64), patients=tuple(patients),
        names=tuple(names), refused=tuple(refused), unreadable=tuple(unreadable), skipped=labelled.skipped,
        unmatched_labels=labelled.unmatched_labels, patients_from=labelled.patients_from,
    )


def score_upload(bundle: ModelBundle, files: Iterable[tuple[str, bytes]],
                 progress: Callable[[int, int], None] | None = None) -> LabelledScores:
    """Read a labelled upload (ZIP archives with NORMAL/ and PNEUMONIA/, or images plus labels.csv) and score it.

    ValueError for an unusable labels.csv. Everything stays in memory.
    """
    return score_labelled(bundle, read_labelled_upload(files), progress=progress)


@dataclass(frozen=True)
class SiteCalibration:
    """A site's operating point and the local evidence behind it."""

    profile: SiteProfile
    table: pd.DataFrame  # threshold_table on the calibrated scale, with bootstrap intervals
    calibration: Calibration  # raw → calibrated: the profile's
    refitted: bool
    scores: LabelledScores = field(repr=False)
    calibrated: np.ndarray = field(repr=False)  # calibrated probability of each scored image
    confusion: dict[str, int] = field(default_factory=dict)  # tp, fp, fn, tn at the threshold
    roc: dict[str, Any] = field(default_factory=dict, repr=False)  # fpr, tpr, auc
    reliability_shipped: dict[str, Any] = field(default_factory=dict, repr=False)
    reliability_refitted: dict[str, Any] | None = field(default=None, repr=False)
    warnings: tuple[str, ...] = ()

    @property
    def threshold(self) -> float:
        return self.profile.threshold


def refit_calibration(scores: LabelledScores, method: str, shipped: Calibration, site: str) -> Calibration:
    """The raw → calibrated map the profile will hold: the shipped one, or one refitted on the local set.

    ValueError when the set is too small for ``method`` (see ``can_refit``) or the method cannot be stored.
    """
    if method not in REFIT_CHOICES:
        raise ValueError(f"refit must be one of {', '.join(REFIT_CHOICES)}, got {method!r}")
    if method == "none":
        return shipped
    ok, reason = can_refit(scores.labels, method)
    if not ok:
        raise ValueError(reason)
    if method == "isotonic":
        # A profile stores a monotone two-parameter map; an isotonic step function has no place in it.
        raise ValueError("isotonic calibration cannot be stored in a site profile: use temperature or platt")
    return Calibration.fit(scores.labels, scores.raw, method=method, fitted_on=site)


def calibrate_scores(
    scores: LabelledScores,
    *,
    site: str,
    model_sha256: str,
    shipped: Calibration,
    rule: str = "sensitivity",
    value: float | None = None,
    refit: str = "none",
    n_boot: int = 1000,
    seed: int = 0,
) -> SiteCalibration:
    """The site profile and everything shown beside it, from a scored labelled set.

    ``shipped`` is the model's own calibration (``bundle.calibration``): the profile keeps it
    unless ``refit`` names a method to fit on the local set. The threshold rule (``rule``,
    ``value``) is applied on the calibrated scale. Raises ValueError (one sentence, safe to
    show) when a class is missing, the set is too small to refit, or the target is unreachable;
    ``core.calibration.ProfileError`` for an unusable site name.
    """
    if scores.normal == 0 or scores.pneumonia == 0:
        raise ValueError(
            f"the local set needs both NORMAL and PNEUMONIA images that could be scored "
            f"(it has {scores.normal} NORMAL and {scores.pneumonia} PNEUMONIA)"
        )
    if value is None:
        if rule not in RULE_DEFAULTS:
            raise ValueError(f"the rule {rule!r} needs a value")
        value = RULE_DEFAULTS[rule]
    calibration = refit_calibration(scores, refit, shipped, site)
    profile, table = build_profile(
        site, model_sha256, scores.labels, scores.raw, groups=scores.groups, rule=rule, value=value,
        calibration=calibration, refused=len(scores.refused), unreadable=len(scores.unreadable),
        n_boot=n_boot, seed=seed,
    )
    calibrated = calibration.apply(scores.raw)
    flagged = calibrated >= profile.threshold
    positive = scores.labels == 1
    confusion = {"tp": int(np.sum(flagged & positive)), "fp": int(np.sum(flagged & ~positive)),
                 "fn": int(np.sum(~flagged & positive)), "tn": int(np.sum(~flagged & ~positive))}
    roc = curves(scores.labels, calibrated)
    auc = float(roc_auc_score(scores.labels, calibrated))
    refitted = refit != "none"
    return SiteCalibration(
        profile=profile, table=table, calibration=calibration, refitted=refitted, scores=scores,
        calibrated=calibrated, confusion=confusion, roc={"fpr": roc["fpr"], "tpr": roc["tpr"], "auc": auc},
        reliability_shipped=reliability(scores.labels, shipped.apply(scores.raw)),
        reliability_refitted=reliability(scores.labels, calibrated) if refitted else None,
        warnings=tuple(site_warnings(scores)),
    )


def site_warnings(scores: LabelledScores) -> list[str]:
    """Plain sentences about the local set: too few cases, images left out, labels that matched nothing."""
    warnings = check_local_set(scores.labels, "none") if len(scores.labels) else []
    left_out = len(scores.refused) + len(scores.unreadable)
    if left_out:
        warnings.append(
            f"{len(scores.refused)} image(s) were refused by the \"cannot assess\" gate and {len(scores.unreadable)} "
            "could not be read; they are left out of every figure (and counted in the profile)."
        )
    if scores.skipped:
        warnings.append(f"{len(scores.skipped)} file(s) had no usable label and were skipped.")
    if scores.unmatched_labels:
        warnings.append(f"labels.csv lists {scores.unmatched_labels} file(s) that were not found.")
    return warnings


def chosen_row(result: SiteCalibration) -> dict[str, Any]:
    """The profile's metrics at the chosen threshold as ``{metric: (value, lo, hi)}`` (None when undefined)."""
    return {name: (entry["value"], *entry["ci"]) for name, entry in result.profile.metrics.items()}


def nearby_rows(table: pd.DataFrame, threshold: float, steps: tuple[float, ...] = (0.1, 0.05, 0.02)) -> pd.DataFrame:
    """Rows of ``table`` at round thresholds around ``threshold`` (for a compact summary), in order."""
    wanted = sorted({round(min(1.0, max(0.0, threshold + sign * step)), 2) for step in steps for sign in (-1, 1)})
    grid = table["threshold"].to_numpy(dtype=np.float64)
    rows = [int(np.argmin(np.abs(grid - t))) for t in wanted]
    return table.iloc[sorted(set(rows))]


SUMMARY_METRICS = (("sensitivity", "sensitivity"), ("specificity", "specificity"), ("referred", "referred"),
                   ("ppv", "PPV"), ("npv", "NPV"))


def _cell(value: Any, lo: Any, hi: Any) -> str:
    def num(x: Any) -> str:
        return "  —  " if x is None or not np.isfinite(float(x)) else f"{float(x):.3f}"

    interval = "" if lo is None or hi is None or not (np.isfinite(float(lo)) and np.isfinite(float(hi))) \
        else f" ({num(lo)}–{num(hi)})"
    return f"{num(value)}{interval}"


def calibration_text(calibration: Calibration) -> str:
    """The calibration in a few words: method and parameter."""
    if calibration.method == "temperature":
        return f"temperature scaling, T = {calibration.temperature:.3f}"
    if calibration.method == "platt":
        return f"Platt scaling, a = {calibration.slope:.3f}, b = {calibration.intercept:.3f}"
    return "none (raw model output)"


def calibration_sentence(result: SiteCalibration) -> str:
    """Where the profile's probabilities come from, in one sentence."""
    if result.refitted:
        return f"Probabilities use a calibration refitted on this set: {calibration_text(result.calibration)}."
    if result.calibration.method == "none":
        return "Probabilities are the model's raw output (the model ships no calibration)."
    return f"Probabilities use the model's shipped calibration: {calibration_text(result.calibration)}."


def summary_lines(result: SiteCalibration) -> list[str]:
    """A compact plain-text summary for a terminal: the set, the calibration, the rule, a few thresholds.

    The rows are round thresholds around the chosen one plus the chosen one (marked ``>``), each
    metric with its bootstrap 95% interval.
    """
    scores, profile = result.scores, result.profile
    patients = profile.cases["patients"]
    grouped = "patients unknown: images resampled" if scores.groups is None \
        else f"{patients} patients, ids from {scores.patients_from}"
    lines = [
        f'Site "{profile.site}": {scores.normal} NORMAL and {scores.pneumonia} PNEUMONIA images scored '
        f"({grouped}); {len(scores.refused)} refused, {len(scores.unreadable)} unreadable, "
        f"{len(scores.skipped)} without a label (not counted).",
        calibration_sentence(result),
        f"Rule: {profile.rule_description} → threshold {profile.threshold:.4f} (AUC {result.roc['auc']:.3f}).",
        "",
        "  threshold  " + "".join(f"{label:<21}" for _, label in SUMMARY_METRICS).rstrip(),
    ]
    rows = [(float(row["threshold"]), {m: (row[m], row[f"{m}_lo"], row[f"{m}_hi"]) for m, _ in SUMMARY_METRICS})
            for _, row in nearby_rows(result.table, profile.threshold).iterrows()]
    rows = [r for r in rows if abs(r[0] - profile.threshold) > 1e-12]
    rows.append((profile.threshold, chosen_row(result)))
    for threshold, values in sorted(rows, key=lambda r: r[0]):
        mark = ">" if threshold == profile.threshold else " "
        cells = "".join(f"{_cell(*values[m]):<21}" for m, _ in SUMMARY_METRICS).rstrip()
        lines.append(f"{mark} {threshold:9.4f}  {cells}")
    lines.append("(95% bootstrap intervals; > marks the chosen threshold; referred = share of images flagged)")
    return lines

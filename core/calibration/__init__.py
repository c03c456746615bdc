"""Site calibration: make the shipped model's output mean the right thing at a new site.

Two separate steps, both fitted on a labelled local set of the site's own images:

- **Probability calibration** (``probability``): temperature or Platt scaling of the model's
  logit, so that "70 % pneumonia" is right about 70 % of the time on this site's images, with
  reliability diagrams, ECE, Brier score and calibration slope to judge it. Monotone, so it
  never reorders images.
- **Site operating points** (``site``, ``profile``): following the WHO/TDR toolkit for local
  calibration of CAD thresholds, a table of what each threshold means locally (sensitivity,
  specificity, PPV, NPV, share referred, number needed to test, cases missed per 1,000, with
  patient-level bootstrap intervals), an explicit rule for choosing the threshold, warnings
  when the local set is too small, and a site profile file tied to one model by its SHA-256.

Computation only: no Streamlit, plotting or TensorFlow here.
"""

from __future__ import annotations

from core.calibration.probability import (
    Calibration,
    fit_platt,
    fit_temperature,
    logit,
    reliability,
    sigmoid,
    validate_scores,
)
from core.calibration.profile import ProfileError, SiteProfile, build_profile, check_model
from core.calibration.site import (
    Choice,
    can_refit,
    check_local_set,
    choose_threshold,
    default_thresholds,
    threshold_table,
)

__all__ = [
    "Calibration",
    "Choice",
    "ProfileError",
    "SiteProfile",
    "build_profile",
    "can_refit",
    "check_local_set",
    "check_model",
    "choose_threshold",
    "default_thresholds",
    "fit_platt",
    "fit_temperature",
    "logit",
    "reliability",
    "sigmoid",
    "threshold_table",
    "validate_scores",
]

"""Cached resources and the session's operating point (threshold, and a site profile when one is loaded).

The model is loaded here and nowhere else in the app: one ``st.cache_resource`` around
:func:`core.apps.dashboard.load_dashboard_model`, shared by every session of the server.
Nothing cached here is ever modified after it is built.
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import streamlit as st

from core.apps.dashboard import DashboardModel, load_dashboard_model, subtype_path
from core.calibration import Calibration, ProfileError, SiteProfile, check_model
from core.evaluation.predictions import load_test_predictions
from core.model import DEFAULT_MODEL_PATH, ModelError, ModelMetadata, load_metadata, sibling_path

if TYPE_CHECKING:  # scikit-learn and Plotly take a second to import: not on the first page's path
    import pandas as pd

    from core.evaluation.explorer import ExplorerData

THRESHOLD_KEY = "operating_threshold"
PROFILE_KEY = "site_profile"  # the SiteProfile in force for this session, if any
PROFILE_NOTICE_KEY = "site_profile_notice"  # why the server's default profile was refused
DEFAULT_PROFILE_DONE_KEY = "site_profile_default_checked"
PROFILE_ENV = "PNEUMONIA_SITE_PROFILE"  # path of a server-wide default profile
PROFILE_SECRET = "site_profile"  # the same, as st.secrets["site_profile"]


@dataclass(frozen=True)
class ModelInfo:
    """The model file and its metadata, read without TensorFlow (for the sidebar and cards)."""

    path: Path
    metadata: ModelMetadata

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def version(self) -> str:
        return self.metadata.version

    @property
    def threshold(self) -> float:
        return float(self.metadata.threshold.value)


@st.cache_resource(show_spinner=False)
def _model_info(path: str) -> ModelInfo:
    meta = load_metadata(path)
    return ModelInfo(Path(path), meta if meta.name else meta.replace(name=Path(path).stem))


@st.cache_resource(show_spinner="Loading the model (first use on this server only)…")
def _dashboard_model(path: str) -> DashboardModel:
    model = load_dashboard_model(path)
    # TensorFlow and the model leave ~400,000 long-lived Python objects. Streamlit collects
    # garbage after every script run, and rescanning them cost ~0.2 s per click; frozen,
    # they are skipped (they live as long as the server anyway).
    gc.collect()
    gc.freeze()
    return model


@st.cache_data(show_spinner=False, max_entries=4)
def _explorer(path: str, modified: float) -> tuple[pd.DataFrame, ExplorerData]:
    from core.evaluation.explorer import explorer_data

    frame = load_test_predictions(path)
    return frame, explorer_data(frame)


def _or_stop(load):
    """``load(DEFAULT_MODEL_PATH)``, or an error on the page and the run stopped if the model is unusable."""
    try:
        return load(str(DEFAULT_MODEL_PATH))
    except ModelError as exc:
        st.error(f"The model cannot be used: {exc}")
        st.stop()
        raise  # unreachable: st.stop() ends the run


def model_info() -> ModelInfo:
    """Name, version and shipped threshold (metadata only; fast). Stops the page if unusable."""
    return _or_stop(_model_info)


def dashboard_model() -> DashboardModel:
    """The loaded model and its explainer, shared by all sessions. Stops the page if it cannot load."""
    return _or_stop(_dashboard_model)


@st.cache_resource(show_spinner="Loading the research model…")
def _subtype_model(path: str) -> DashboardModel:
    return load_dashboard_model(path)


def subtype_model() -> DashboardModel | None:
    """The research bacterial-vs-viral model, or ``None`` when none ships or it cannot load."""
    path = subtype_path(DEFAULT_MODEL_PATH)
    if not path.is_file():
        return None
    try:
        return _subtype_model(str(path))
    except ModelError:
        return None


def test_predictions(info: ModelInfo) -> tuple[pd.DataFrame, ExplorerData] | None:
    """The test-split predictions shipped with the model, or ``None`` (with a message) if unusable."""
    path = sibling_path(info.path, "_test_predictions.csv")
    try:
        return _explorer(str(path), path.stat().st_mtime)
    except FileNotFoundError:
        st.warning(f"No test predictions found ({path.name} should sit beside the model).")
    except ValueError as exc:
        st.warning(str(exc))
    return None


def _default_profile_path() -> str | None:
    """The server-wide default profile's path: the environment variable, else ``st.secrets``."""
    path = os.environ.get(PROFILE_ENV, "").strip()
    if path:
        return path
    try:
        value = st.secrets.get(PROFILE_SECRET)
    except Exception:  # noqa: BLE001 - without a secrets file (the usual case) Streamlit raises
        return None
    return str(value).strip() or None if value else None


def _load_default_profile(info: ModelInfo) -> None:
    """Once per session, put the server's default profile in force, or keep the reason it was refused."""
    if st.session_state.get(DEFAULT_PROFILE_DONE_KEY):
        return
    st.session_state[DEFAULT_PROFILE_DONE_KEY] = True
    path = _default_profile_path()
    if path is None:
        return
    try:
        use_profile(SiteProfile.read(path), info)
    except ProfileError as exc:
        st.session_state[PROFILE_NOTICE_KEY] = f"The server's default site profile was not used: {exc}"


def site_profile() -> SiteProfile | None:
    """The site profile in force for this session, or ``None`` (the shipped operating point)."""
    _load_default_profile(model_info())
    return st.session_state.get(PROFILE_KEY)


def profile_notice() -> str | None:
    """Why the server's default profile was refused (shown in the sidebar), or ``None``."""
    return st.session_state.get(PROFILE_NOTICE_KEY)


def use_profile(profile: SiteProfile, info: ModelInfo) -> None:
    """Make ``profile`` the session's operating point: its threshold and calibration.

    Raises ``ProfileError`` when it was made for another model.
    """
    check_model(profile, info.metadata.sha256)
    st.session_state[PROFILE_KEY] = profile
    st.session_state[THRESHOLD_KEY] = profile.threshold
    st.session_state.pop(PROFILE_NOTICE_KEY, None)


def clear_profile(info: ModelInfo) -> None:
    """Return to the shipped operating point: no profile, the shipped threshold and calibration."""
    st.session_state.pop(PROFILE_KEY, None)
    st.session_state[THRESHOLD_KEY] = info.threshold


def calibration() -> Calibration | None:
    """The profile's calibration (raw output → calibrated), or ``None`` for the model's shipped one."""
    profile = site_profile()
    return None if profile is None else Calibration.from_dict(profile.calibration)


def profile_recalibrates(info: ModelInfo) -> bool:
    """True when the profile in force maps probabilities differently from the model's shipped calibration."""
    current = calibration()
    if current is None:
        return False
    shipped = Calibration.from_dict(info.metadata.calibration) if info.metadata.calibration else Calibration("none")
    return (current.method, current.temperature, current.slope, current.intercept) != (
        shipped.method, shipped.temperature, shipped.slope, shipped.intercept)


def operating_threshold(info: ModelInfo) -> float:
    """The threshold of the operating point in force: the site profile's, else the shipped one."""
    profile = site_profile()
    return info.threshold if profile is None else profile.threshold


def threshold(info: ModelInfo) -> float:
    """The threshold in force for this session: the operating point's until the user moves it."""
    _load_default_profile(info)
    return float(st.session_state.setdefault(THRESHOLD_KEY, operating_threshold(info)))


def set_threshold(value: float) -> None:
    """Make ``value`` the session's operating threshold (used by both triage pages)."""
    st.session_state[THRESHOLD_KEY] = min(1.0, max(0.0, float(value)))


def reset_threshold(info: ModelInfo) -> None:
    """Return to the operating point's threshold (the site profile's, else the shipped one)."""
    st.session_state[THRESHOLD_KEY] = operating_threshold(info)


def is_custom_threshold(info: ModelInfo) -> bool:
    """True when the session uses a threshold other than the operating point's."""
    return abs(threshold(info) - operating_threshold(info)) > 1e-9

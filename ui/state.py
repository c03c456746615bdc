"""Cached resources and the session's operating threshold.

The model is loaded here and nowhere else in the app: one ``st.cache_resource`` around
:func:`core.apps.dashboard.load_dashboard_model`, shared by every session of the server.
Nothing cached here is ever modified after it is built.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import streamlit as st

from core.apps.dashboard import DashboardModel, load_dashboard_model
from core.evaluation.predictions import load_test_predictions
from core.model import DEFAULT_MODEL_PATH, ModelError, ModelMetadata, load_metadata, sibling_path

if TYPE_CHECKING:  # scikit-learn and Plotly take a second to import: not on the first page's path
    import pandas as pd

    from core.evaluation.explorer import ExplorerData

THRESHOLD_KEY = "operating_threshold"


@dataclass(frozen=True)
class ModelInfo:
    """The model file and its metadata, read without TensorFlow (for the sidebar and cards)."""

    path: Path
    metadata: ModelMetadata

    @property
    def name(self) -> str:
        return self.metadata.name or self.path.stem

    @property
    def version(self) -> str:
        return f"{self.name} · {self.metadata.sha256[:8]}"

    @property
    def threshold(self) -> float:
        return float(self.metadata.threshold.value)


@st.cache_resource(show_spinner=False)
def _model_info(path: str) -> ModelInfo:
    return ModelInfo(Path(path), load_metadata(path))


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


def model_info() -> ModelInfo:
    """Name, version and shipped threshold (metadata only; fast). Stops the page if unusable."""
    try:
        return _model_info(str(DEFAULT_MODEL_PATH))
    except ModelError as exc:
        st.error(f"The model cannot be used: {exc}")
        st.stop()
        raise  # unreachable: st.stop() ends the run


def dashboard_model() -> DashboardModel:
    """The loaded model and its explainer, shared by all sessions. Stops the page if it cannot load."""
    try:
        return _dashboard_model(str(DEFAULT_MODEL_PATH))
    except ModelError as exc:
        st.error(f"The model cannot be used: {exc}")
        st.stop()
        raise


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


def threshold(info: ModelInfo) -> float:
    """The operating threshold in force for this session (the shipped one until changed)."""
    return float(st.session_state.setdefault(THRESHOLD_KEY, info.threshold))


def set_threshold(value: float) -> None:
    """Make ``value`` the session's operating threshold (used by both triage pages)."""
    st.session_state[THRESHOLD_KEY] = min(1.0, max(0.0, float(value)))


def reset_threshold(info: ModelInfo) -> None:
    """Return to the shipped operating threshold."""
    st.session_state[THRESHOLD_KEY] = info.threshold


def is_custom_threshold(info: ModelInfo) -> bool:
    """True when the session uses a threshold other than the shipped one."""
    return abs(threshold(info) - info.threshold) > 1e-9

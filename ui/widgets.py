"""Small pieces of UI used on more than one page."""

from __future__ import annotations

import numpy as np
import streamlit as st

from core.explain import CAM_METHODS, TARGETS, overlay_heatmap
from core.inputs.formats import ARCHIVE_EXTENSIONS, FORMATS_SENTENCE, IMAGE_EXTENSIONS
from core.inputs.limits import MAX_FILE_BYTES
from core.scoring import PNEUMONIA, decide
from ui import state
from ui.state import ModelInfo
from ui.wording import CLEAR_TEXT, FLAG_TEXT

IMAGE_TYPES = list(IMAGE_EXTENSIONS)
BATCH_TYPES = [*IMAGE_EXTENSIONS, *ARCHIVE_EXTENSIONS]
MAX_IMAGE_MB = MAX_FILE_BYTES // 2**20  # one image; the batch page allows larger ZIP archives
# Phone photos of films are found and cropped in colour uploads only: a grayscale file is taken to
# be the radiograph itself (README, *What the tool accepts*).
UPLOAD_HELP = ("A phone photo of a film: upload the colour original. A photo saved in gray is not cropped "
               "to the film, and is often refused or read less reliably.")
BAD_FILE_HINT = f"Upload a chest X-ray image ({FORMATS_SENTENCE})."
ATTENTION_CAPTION = (
    "Colour shows where the model's attention was ({method}, evidence for {target}); it is not the "
    "location of a lesion. Red = strongest in this image, so weak evidence can look red too."
)
NOTICE = (
    "**Decision support only.** This tool helps prioritise chest X-rays of children. It never replaces "
    "a clinician: every diagnosis and treatment decision rests with the treating clinician."
)


def sidebar(info: ModelInfo) -> None:
    """Model identity, the threshold in force and the standing notice."""
    with st.sidebar:
        st.markdown(f"**Model:** {info.name}")
        st.caption(f"Version {info.version}")
        current = state.threshold(info)
        profile = state.site_profile()
        st.markdown(f"**Threshold in force:** {current:.3f}")
        if profile is not None:
            st.markdown(f"**Site profile:** {profile.site}")
            st.caption(f"Profile {profile.profile_id} · threshold {profile.threshold:.3f} "
                       f"({profile.rule_description}).")
        if state.is_custom_threshold(info):
            base = "the site profile's" if profile is not None else "shipped"
            st.caption(f"Set in the threshold explorer for this session; {base} value "
                       f"{state.operating_threshold(info):.3f}.")
            st.button("Reset to the site profile" if profile is not None else "Reset to shipped", key="sidebar_reset",
                      on_click=state.reset_threshold, args=(info,), icon=":material/restart_alt:")
        elif profile is None:
            st.caption("The shipped operating point.")
        if profile is not None:
            st.button("Return to the shipped operating point", key="sidebar_profile_clear",
                      on_click=state.clear_profile, args=(info,), icon=":material/undo:")
        notice = state.profile_notice()
        if notice:
            st.warning(notice, icon=":material/warning:")
        st.info(NOTICE, icon=":material/stethoscope:")


def probability_text(probability: float) -> str:
    """Three decimals, without claiming certainty: 0.99996 reads "> 0.999", not "1.000"."""
    if probability >= 0.9995:
        return "> 0.999"
    if probability < 0.0005:
        return "< 0.001"
    return f"{probability:.3f}"


def decision_banner(probability: float, threshold: float) -> None:
    """The decision at ``threshold`` in plain words and colour."""
    text = f"probability of pneumonia **{probability_text(probability)}**, threshold **{threshold:.3f}**"
    if decide(probability, threshold) == PNEUMONIA:
        st.error(f"### {FLAG_TEXT}\n{text} (at or above the threshold).", icon=":material/flag:")
    else:
        st.success(f"### {CLEAR_TEXT}\n{text} (below the threshold). Clinical judgement still applies.",
                   icon=":material/check_circle:")


def attention_controls(prefix: str) -> tuple[str, str, float]:
    """Method, target class and opacity pickers for an attention map."""
    left, middle, right = st.columns([1, 1, 1])
    method = left.selectbox("Attention method", CAM_METHODS, key=f"{prefix}_method",
                            help="Grad-CAM is the standard; Grad-CAM++ and LayerCAM spread attention differently.")
    target = middle.radio("Show evidence for", TARGETS, key=f"{prefix}_target", horizontal=True,
                          format_func=str.capitalize,
                          help="Pneumonia: what raised the score. Normal: what lowered it.")
    opacity = right.slider("Heatmap opacity", 0.0, 1.0, 0.5, 0.05, key=f"{prefix}_opacity")
    return method, target, opacity


def image_pair(display: np.ndarray, cam: np.ndarray, opacity: float, method: str, target: str) -> None:
    """The X-ray beside its attention overlay."""
    left, right = st.columns(2)
    left.image(display, caption="X-ray as uploaded (grayscale)", width="stretch")
    right.image(overlay_heatmap(display, cam, opacity), width="stretch",
                caption=ATTENTION_CAPTION.format(method=method, target=target))
    if not cam.any():
        right.caption(f"No region increased the {target} score: the map is empty.")

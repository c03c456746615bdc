"""Site calibration: this site's operating point from its own labelled X-rays, or from a saved profile."""

import streamlit as st

from core.apps.site_calibration import calibrate_scores, score_upload
from core.calibration import ProfileError, SiteProfile, can_refit, check_model
from core.calibration.profile import check_site_name
from ui import routing, state
from ui import site_calibration as view

routing.through_app()

CONFIG = {"displaylogo": False}

info = state.model_info()
st.title("Site calibration")
st.caption(view.INTRO)

in_force = state.site_profile()
if in_force is not None:
    st.success(f"In force for this session: **{in_force.site}** (profile `{in_force.profile_id}`, threshold "
               f"{in_force.threshold:.3f}).", icon=":material/check_circle:")

calibrate_tab, load_tab = st.tabs(["Calibrate on local images", "Load a saved profile"])


def _scores(upload):
    """The upload scored once (cached in the session by file), or None with the error shown."""
    cached = st.session_state.get("site_scores")
    if cached is not None and cached[0] == upload.file_id:
        return cached[1]
    model = state.dashboard_model()
    bar = st.progress(0.0, text="Scoring the labelled images…")

    def progress(done: int, total: int) -> None:
        if done == total or done % 16 == 0:
            bar.progress(done / total, text=f"Scoring {done} of {total} images…")

    try:
        scores = score_upload(model.bundle, [(upload.name, upload.getvalue())], progress=progress)
    except ValueError as exc:  # an unusable labels.csv
        bar.empty()
        st.error(f"The labels could not be read: {exc}", icon=":material/error:")
        return None
    bar.empty()
    st.session_state["site_scores"] = (upload.file_id, scores)
    return scores


def _rule() -> tuple[str, float]:
    rule = st.radio("Choose the threshold by", list(view.RULE_LABELS), format_func=view.RULE_LABELS.get,
                    key="site_rule", horizontal=True)
    if rule == "sensitivity":
        value = st.number_input("Local sensitivity to keep at least", 0.50, 1.00, 0.95, 0.01, format="%.2f",
                                key="site_target")
    elif rule == "max_referred":
        value = st.number_input("Largest share of images the clinic can review", 0.01, 1.00, 0.50, 0.01,
                                format="%.2f", key="site_max_referred")
    else:
        value = st.slider("Threshold on P(pneumonia)", 0.0, 1.0, float(round(info.threshold, 3)), 0.001,
                          format="%.3f", key="site_manual")
    return rule, float(value)


def _calibrate() -> None:
    upload = st.file_uploader("Labelled local set (ZIP)", type=["zip"], key="site_upload", help=view.UPLOAD_HELP)
    if upload is None:
        st.info(f"Upload the labelled set to begin. {view.UPLOAD_HELP} At least 100 images of each class are "
                "needed for figures precise enough to set a threshold on.", icon=":material/upload:")
        return
    site = st.text_input("Site name (stored in the profile)", value=upload.name.rsplit(".", 1)[0][:80],
                         key="site_name", max_chars=80)
    try:
        site = check_site_name(site)
    except ProfileError as exc:
        st.error(f"Choose another site name: {exc}", icon=":material/error:")
        return
    scores = _scores(upload)
    if scores is None:
        return
    st.markdown(view.set_summary(scores))
    left_out = view.left_out_frame(scores)
    if len(left_out):
        with st.expander(f"Files left out ({len(left_out)})"):
            st.dataframe(left_out, hide_index=True, key="site_left_out")

    rule, value = _rule()
    refit_ok, refit_reason = can_refit(scores.labels, "temperature") if len(scores.labels) else (False, "")
    refit = st.radio("Probability calibration", list(view.REFIT_LABELS), format_func=view.REFIT_LABELS.get,
                     key="site_refit", horizontal=True, disabled=not refit_ok,
                     help="Refitting changes what a probability means, never which image ranks above which.")
    if not refit_ok:
        refit = "none"
        if refit_reason:
            st.caption(refit_reason[0].upper() + refit_reason[1:] + ".")

    key = (upload.file_id, site, rule, value, refit)
    cached = st.session_state.get("site_result")
    if cached is None or cached[0] != key:
        model = state.dashboard_model()
        try:
            result = calibrate_scores(scores, site=site, model_sha256=model.bundle.metadata.sha256,
                                      shipped=model.bundle.calibration, rule=rule, value=value, refit=refit)
        except (ValueError, ProfileError) as exc:
            st.error(f"No profile can be made: {exc}.", icon=":material/error:")
            return
        cached = (key, result)
        st.session_state["site_result"] = cached
    result = cached[1]

    for warning in result.warnings:
        st.warning(warning, icon=":material/warning:")
    st.subheader("Operating point")
    st.markdown(view.operating_point_text(result))
    for column, (label, value_text, explanation) in zip(st.columns(6), view.metric_cards(result.profile),
                                                         strict=True):
        column.metric(label, value_text, help=explanation, border=True)
    st.caption(view.interval_caption(result.profile))

    left, right = st.columns(2)
    left.plotly_chart(view.threshold_figure(result), key="site_thresholds", config=CONFIG)
    right.plotly_chart(view.roc_figure(result), key="site_roc", config=CONFIG)
    left, right = st.columns(2)
    left.plotly_chart(view.confusion_figure(result), key="site_confusion", config=CONFIG)
    right.plotly_chart(view.reliability_figure(result), key="site_reliability", config=CONFIG)

    profile = result.profile
    left, right = st.columns(2)
    left.button("Use for this session", key="site_use", on_click=state.use_profile, args=(profile, info),
                type="primary", icon=":material/check:",
                help="The triage pages then use this threshold and calibration until you return to the shipped one.")
    right.download_button("Download the site profile (JSON)", profile.to_json().encode("utf-8"),
                          file_name=profile.file_name, mime="application/json", key="site_download",
                          icon=":material/download:")
    st.caption(f"Profile `{profile.profile_id}` for model {info.version}. It holds figures, the model's "
               "fingerprint and the site name only.")


def _load() -> None:
    upload = st.file_uploader("Saved site profile (JSON)", type=["json"], key="site_profile_upload")
    if upload is None:
        st.info("Load a profile made here or with `python -m core.cli calibrate`.", icon=":material/upload:")
        return
    try:
        profile = SiteProfile.loads(upload.getvalue())
        check_model(profile, info.metadata.sha256)
    except ProfileError as exc:
        st.error(f"This profile cannot be used: {exc}", icon=":material/error:")
        return
    st.markdown(view.profile_summary(profile))
    st.button("Use for this session", key="site_use_loaded", on_click=state.use_profile, args=(profile, info),
              type="primary", icon=":material/check:")


with calibrate_tab:
    _calibrate()
with load_tab:
    _load()

"""Single X-ray triage: probability, decision at the session threshold and the attention map."""

import streamlit as st

from core.apps.dashboard import as_outcome, failed_outcome, recompute_cam, triage_image
from core.errors import ImageError
from ui import audit, review, routing, state, widgets

routing.through_app()

info = state.model_info()
threshold = state.threshold(info)
calibration = state.calibration()  # a site profile's, or None for the model's shipped calibration

st.title("Single X-ray triage")
st.caption("One frontal chest X-ray of a child. The image is held in memory for this session only and never saved.")


def _forget_when_removed() -> None:
    # Removing the file forgets its result; leaving the page (which also empties the box) does not.
    if st.session_state.get("single_upload") is None:
        st.session_state.pop("single_result", None)


upload = st.file_uploader("Chest X-ray (JPEG, PNG, TIFF, BMP, WebP or DICOM)", type=widgets.IMAGE_TYPES,
                          key="single_upload", on_change=_forget_when_removed, help=widgets.UPLOAD_HELP,
                          max_upload_size=widgets.MAX_IMAGE_MB)
model = state.dashboard_model()  # after the uploader, so the page is visible while the model loads

cached = st.session_state.get("single_result")
if upload is None and cached is None:
    st.info("Upload an image to see the probability of pneumonia, the decision at the threshold in force and "
            "where the model looked.", icon=":material/upload:")
    st.stop()
if upload is None:
    st.caption("Showing the last X-ray analysed in this session. Upload another to replace it.")

summary = st.container()
method, target, opacity = widgets.attention_controls("single")

try:
    if upload is not None and (cached is None or cached["file_id"] != upload.file_id):
        result = triage_image(model, upload.getvalue(), method=method, target=target, calibration=calibration)
        cached = {"file_id": upload.file_id, "result": result, "cams": {(method, target): result.cam},
                  "seconds": result.seconds, "cam_seconds": None, "calibration": calibration,
                  "data": upload.getvalue()}
        [cached["event"]] = audit.record_scores([as_outcome(result)], threshold) or [None]
        st.session_state["single_result"] = cached
    elif cached.get("calibration") != calibration:
        # The operating point changed (a site profile loaded or dropped): the probability is on another scale.
        result = triage_image(model, cached["data"], method=method, target=target, calibration=calibration)
        cached.update(result=result, cams={(method, target): result.cam}, seconds=result.seconds, cam_seconds=None,
                      calibration=calibration)
        [cached["event"]] = audit.record_scores([as_outcome(result)], threshold) or [None]
    elif (method, target) not in cached["cams"]:
        redone = recompute_cam(model, cached["result"], method, target)
        cached["cams"][(method, target)] = redone.cam
        cached["cam_seconds"] = redone.seconds
except ImageError as exc:
    st.session_state.pop("single_result", None)
    failed = st.session_state.get("single_failed")
    if upload is not None and (failed is None or failed["file_id"] != upload.file_id):
        # Refused and unreadable images are recorded too (once per upload): the gate's share is monitored.
        [event] = audit.record_scores([failed_outcome(exc)], threshold) or [None]
        failed = {"file_id": upload.file_id, "event": event}
        st.session_state["single_failed"] = failed
    st.error(f"This file cannot be analysed: {exc}. {widgets.BAD_FILE_HINT}",
             icon=":material/error:")
    if exc.note:
        # What the capture step did, and for a photo of a film, how to take it again.
        st.info(exc.note[0].upper() + exc.note[1:] + ".", icon=":material/photo_camera:")
    st.subheader("Your decision")
    st.caption("The model gives no result for this file; record your own reading of it.")
    review.panel(failed["event"] if failed else None, threshold, key="single_review")
    st.stop()
except Exception as exc:  # noqa: BLE001 - show a message, never a traceback, whatever happens
    st.session_state.pop("single_result", None)
    st.error(f"The image could not be analysed because of an unexpected problem ({type(exc).__name__}).",
             icon=":material/error:")
    st.stop()

result = cached["result"]
with summary:
    widgets.decision_banner(result.probability, threshold)
    if result.note:
        # What the capture step did (a photo of a film) and any quality warning: read with care.
        st.warning(result.note[0].upper() + result.note[1:] + ".", icon=":material/photo_camera:")
    c1, c2, c3 = st.columns(3)
    c1.metric("Probability of pneumonia", widgets.probability_text(result.probability),
              help="The model's output for this image, between 0 and 1.")
    c2.metric("Threshold in force", f"{threshold:.3f}",
              help="Change it in the threshold explorer; the sidebar shows whether it is the shipped one.")
    timing = f"{cached['seconds']:.2f} s"
    c3.metric("Time for this result", timing, help="Reading the image, scoring it and the first attention map.")
    if cached["cam_seconds"] is not None:
        c3.caption(f"Last attention map recomputed in {cached['cam_seconds']:.2f} s.")

widgets.image_pair(result.display, cached["cams"][(method, target)], opacity, method, target)

st.subheader("Your decision")
review.panel(cached.get("event"), threshold, key="single_review")

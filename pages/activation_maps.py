"""Activation maps: the feature maps of any convolutional layer beside the class activation map."""

import streamlit as st

from core.apps.dashboard import explain_subtype, prepare_for_review
from core.errors import ImageError
from core.explain import CAM_METHODS, feature_grid, overlay_heatmap
from ui import routing, state, widgets
from ui.examples import example_images

routing.through_app()

info = state.model_info()
st.title("Activation maps")
st.caption("What the network computes inside: each tile is one channel of the chosen layer (bright = strong "
           "response), beside the class activation map for the same layer. For understanding the model, "
           "not for diagnosis.")

examples = example_images()
sources = ["Bundled example", "Upload an image"] if examples else ["Upload an image"]
choice = st.radio("Image", sources, horizontal=True, key="maps_source")
if choice == "Bundled example":
    name = st.selectbox("Example X-ray", list(examples), key="maps_example")
    data = examples[name].read_bytes()
else:
    upload = st.file_uploader("Chest X-ray", type=widgets.IMAGE_TYPES, key="maps_upload",
                              max_upload_size=widgets.MAX_IMAGE_MB)
    if upload is None:
        st.info("Upload an image, or choose a bundled example.", icon=":material/upload:")
        st.stop()
    data = upload.getvalue()

model = state.dashboard_model()
members = list(model.explainer.members)
c0, c1, c2, c3 = st.columns(4)
member = c0.selectbox("Network", members, key="maps_member", disabled=len(members) == 1,
                      help="The shipped model averages several networks; each can be inspected on its own.")
explainer = model.explainer.member(member)
layer = c1.selectbox("Layer", explainer.layers, index=explainer.layers.index(explainer.default_layer),
                     key="maps_layer", help="Early layers respond to edges and texture; late ones to larger patterns.")
method = c2.selectbox("Class activation method", CAM_METHODS, key="maps_method")
count = c3.select_slider("Channels shown", [8, 16, 32, 64], value=32, key="maps_count")

try:
    # The same gate as the triage pages: no probability for an image they would refuse.
    prepared = prepare_for_review(model, data, display_side=512)
except ImageError as exc:
    st.error(f"This file cannot be analysed: {exc}. {widgets.BAD_FILE_HINT}",
             icon=":material/error:")
    st.stop()

st.caption(f"Model output for this image: probability of pneumonia {widgets.probability_text(prepared.probability)}.")
maps, channels = explainer.feature_maps(prepared.model_input, layer, limit=count)
height, width, total = explainer.layer_shape(layer)
cam = model.explainer.cam(prepared.model_input, method=method, member=member, layer=layer)

left, right = st.columns([3, 2])
left.image(feature_grid(maps, columns=8), width="stretch",
           caption=f"The {len(channels)} most active of {total} channels of {layer} ({height}×{width} cells each), "
                   "strongest first, each scaled to its own range.")
right.image(overlay_heatmap(prepared.display, cam, 0.5), width="stretch",
            caption=f"{method} at layer {layer} of {member}: where this layer's features raised the pneumonia "
                    "score. Model attention, not lesion location; red = strongest in this image.")
if not cam.any():
    right.caption("No region of this layer increased the pneumonia score: the map is empty.")

subtype = state.subtype_model()
if subtype is not None:
    with st.expander("Research view: bacterial or viral?", icon=":material/science:"):
        st.warning("Research only — not for treatment decisions. A separate model trained on pneumonia films only; "
                   "its figures are on the model card.", icon=":material/science:")
        if prepared.decision(state.threshold(info)) != "PNEUMONIA":
            st.caption("Shown only for films the triage model flags as pneumonia at the current threshold: the "
                       "research model has never seen a film without pneumonia.")
        else:
            view = explain_subtype(subtype, prepared, method=method)
            st.markdown(f"Research model's score that this pneumonia is **bacterial**: "
                        f"{widgets.probability_text(view.probability)} (uncalibrated; it reads bacterial above "
                        f"{subtype.bundle.threshold:.2f}, its balanced operating point on validation films).")
            st.image(overlay_heatmap(prepared.display, view.cam, 0.5), width=420,
                     caption=f"{method}: where the research model's features raised the bacterial score.")

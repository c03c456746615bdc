"""Model card: intended use, data, training, test performance and limitations."""

import streamlit as st

from core.model import ModelError, load_metadata, sibling_path
from ui import routing, state
from ui.comparison import ablation_view, comparison_view, learning_curve_section, seed_spread, subtype_view
from ui.model_card import (
    INTENDED_USE,
    LIMITATIONS,
    OUT_OF_SCOPE,
    calibration_caption,
    calibration_table,
    cues_view,
    field_table,
    gate_table,
    history_figure,
    members_table,
    metrics_table,
    read_optional_csv,
    reliability_figure,
    robustness_heatmap,
    shortfall_caption,
    split_table,
    subtype_table,
    threshold_caption,
    training_table,
)

routing.through_app()

info = state.model_info()
meta = info.metadata
st.title("Model card")
st.caption(f"{info.version} · created {meta.created or 'unknown'}")


def bullets(lines: tuple[str, ...]) -> str:
    return "\n".join(f"- {line}" for line in lines)


def readable_view(path, build, what: str):
    """The table at ``path`` and ``build(table)``; None when it is absent or unreadable (said in a caption)."""
    table = read_optional_csv(path)
    if table is None:
        return None
    try:
        return table, build(table)
    except ValueError as exc:
        st.caption(f"The {what} is unreadable: {exc}.")
        return None


left, right = st.columns(2)
with left:
    st.subheader("Intended use")
    st.markdown(bullets(INTENDED_USE))
with right:
    st.subheader("Out of scope")
    st.markdown(bullets(OUT_OF_SCOPE))

st.subheader("Data")
data = meta.data
st.markdown(f"**Source:** {data.get('source', 'not recorded')}  \n**Licence:** {data.get('licence', 'not recorded')}"
            f"  \n**Split:** {data.get('split_rule', 'not recorded')}")
splits = split_table(meta)
if splits.empty:
    st.caption("Split sizes were not recorded.")
else:
    st.table(splits.set_index("split"))

st.subheader("Training")
st.table(training_table(meta).set_index("setting"))
preview = info.path.with_name(f"{info.path.stem}_augmentation.png")
if preview.is_file():
    st.image(str(preview), caption="Training augmentation: each row one training image, the original first, then "
                                   "random draws of the recipe (crops, exposure, gamma, blur/sharpening, noise, JPEG, "
                                   "resolution loss).")
if meta.members:
    st.markdown("**Ensemble members** (the shipped model averages their logits)")
    st.dataframe(members_table(meta), hide_index=True, width="stretch")
history = read_optional_csv(sibling_path(info.path, "_history.csv"))
if history is not None:
    try:
        st.plotly_chart(history_figure(history), key="history", config={"displaylogo": False})
    except ValueError as exc:
        st.caption(f"Training curves unavailable: {exc}.")
else:
    st.caption("No training history file beside the model.")

st.subheader("Performance on our test split")
metrics = meta.metrics
threshold = metrics.get("test", {}).get("threshold", info.threshold)
st.caption(f"{metrics.get('split', 'test split')} at the shipped threshold {float(threshold):.3f}; "
           f"95% confidence intervals by {metrics.get('ci_method', 'bootstrap')}.")
st.caption(threshold_caption(meta))
test_predictions = read_optional_csv(sibling_path(info.path, "_test_predictions.csv"))
left, right = st.columns([3, 2])
left.table(metrics_table(meta).set_index("metric"))
if test_predictions is not None and "label" in test_predictions.columns:
    try:
        left.caption(shortfall_caption(test_predictions))
    except (ValueError, KeyError) as exc:
        left.caption(f"The test predictions are unreadable: {exc}.")
with right:
    st.markdown("**Recall by type of pneumonia**")
    subtypes = subtype_table(meta)
    if subtypes.empty:
        st.caption("Not recorded.")
    else:
        st.table(subtypes.set_index("pneumonia type"))

st.subheader("Calibration: do the probabilities mean what they say?")
calibration = calibration_table(meta)
if calibration.empty:
    st.caption("This model's probabilities are not calibrated.")
else:
    st.caption(calibration_caption(meta))
    left, right = st.columns([2, 3])
    left.table(calibration.set_index(["split", "probabilities"]))
    if test_predictions is not None and "label" in test_predictions.columns:
        right.plotly_chart(reliability_figure(test_predictions), key="reliability", config={"displaylogo": False})

st.subheader("Robustness to acquisition changes")
robustness = read_optional_csv(sibling_path(info.path, "_robustness.csv"))
if robustness is None:
    st.caption("No shift benchmark has been recorded for this model (python -m training.robustness).")
else:
    try:
        st.caption("Our test split under the MedMNIST-C corruptions (severity 1-5) and centre zooms; AUC per "
                   "condition. Accuracy, recall, normals flagged and the share refused are in the table below.")
        st.plotly_chart(robustness_heatmap(robustness), key="robustness", config={"displaylogo": False})
        with st.expander("All figures of the shift benchmark"):
            st.dataframe(robustness, hide_index=True, width="stretch")
    except ValueError as exc:
        st.caption(f"The robustness table is unreadable: {exc}.")

cues = readable_view(sibling_path(info.path, "_error_analysis.csv"), cues_view, "error analysis")
if cues is not None:
    st.markdown("**What else could the model be reading?** Simple statistics of the films that need no lungs: "
                "how well each tells pneumonia from normal in the training split, what the normal films the "
                "model scores highest share, and where its Grad-CAM maps fall on them "
                "(python -m training.error_analysis; validation and training films only).")
    st.dataframe(cues[1], hide_index=True, width="stretch")
    st.caption("Pneumonia films in this dataset are softer than normal ones even outside the lungs, and the "
               "normal films the model over-calls are the softer and more tightly framed ones: blur, "
               "processing and framing are cues a film from another scanner can trip.")

ablation = readable_view(info.path.parent / "augmentation_ablation.csv", ablation_view, "ablation table")
if ablation is not None:
    runs, view = ablation
    st.markdown("**Which augmentation helps?** Each ingredient of the training recipe switched off in turn "
                "(a reduced training budget, the same for every row; python -m training.ablation).")
    st.dataframe(view, hide_index=True, width="stretch")
    spread = seed_spread(runs)
    if spread is not None:
        st.caption(f"The full recipe's shifted AUC varies by {spread:.3f} between seeds: smaller differences "
                   "between rows are not findings.")

st.subheader("Images the tool refuses to assess")
gate = meta.gate
if gate:
    st.markdown("Before scoring, each image is checked for being a frontal chest X-ray: colour, size and shape, "
                "contrast, flat areas, sharp edges and plain gradients, and how far the model's own features "
                "and the image's layout (a coarse grid of gray levels) and texture (the grain in each cell of "
                "a coarse grid) lie from those of the training X-rays. What fails is reported as *cannot "
                "assess* with the reason, never as normal.")
    st.table(gate_table(meta).set_index("measure"))
    field = field_table(meta)
    if not field.empty:
        st.markdown("**Images as they arrive in the field** (noisy films, phone photos of films)")
        st.table(field.set_index("measure"))
    st.caption(f"Non-X-ray set: {gate.measured.get('nonxray_set', 'not recorded')}.")
else:
    st.caption("This model has no cannot-assess check.")

st.subheader("Approaches compared")
comparison = read_optional_csv(info.path.parent / "model_comparison.csv")
if comparison is None:
    st.caption("No comparison of approaches has been recorded for this release.")
else:
    try:
        st.caption("Published approaches and ours trained from scratch on the same split and budget, scored on "
                   "the test split at threshold 0.5. Plots and notes: the Approaches compared page.")
        st.dataframe(comparison_view(comparison), hide_index=True, width="stretch")
    except ValueError as exc:
        st.caption(f"The comparison table is unreadable: {exc}.")
st.markdown("**Learning curve**")
learning_curve_section(info.path.parent, key="learning_curve")

subtype_model = info.path.parent / "pneumonia_subtype.keras"
if subtype_model.is_file():
    st.subheader("Bacterial or viral? (research only)")
    try:
        subtype_meta = load_metadata(subtype_model)
    except ModelError as exc:
        st.caption(f"The subtype model's metadata is unreadable: {exc}.")
    else:
        st.warning("Research only — not for treatment decisions. A separate model, trained on pneumonia films "
                   "only, estimates whether a pneumonia looks bacterial. It is shown on the Activation maps "
                   "page and nowhere in triage.", icon=":material/science:")
        st.table(subtype_view(subtype_meta).set_index("measure"))
        st.caption(f"Threshold {subtype_meta.threshold.value:.3f} ({subtype_meta.threshold.rule}); intervals by "
                   "patient-level bootstrap. Anchor: "
                   f"{subtype_meta.metrics.get('anchor', {}).get('source', 'not recorded')}.")

st.subheader("Limitations")
st.markdown(bullets(LIMITATIONS))
st.warning("This model supports clinicians and never replaces one. Re-check the threshold on local cases "
           "before use.", icon=":material/stethoscope:")

"""Model card: intended use, data, training, test performance and limitations."""

import streamlit as st

from core.model import sibling_path
from ui import state
from ui.model_card import (
    INTENDED_USE,
    LIMITATIONS,
    OUT_OF_SCOPE,
    comparison_table,
    gate_table,
    history_figure,
    metrics_table,
    read_optional_csv,
    split_table,
    subtype_table,
    training_table,
)

info = state.model_info()
meta = info.metadata
st.title("Model card")
st.caption(f"{info.version} · created {meta.created or 'unknown'}")


def bullets(lines: tuple[str, ...]) -> str:
    return "\n".join(f"- {line}" for line in lines)


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
left, right = st.columns([3, 2])
left.table(metrics_table(meta).set_index("metric"))
with right:
    st.markdown("**Recall by type of pneumonia**")
    subtypes = subtype_table(meta)
    if subtypes.empty:
        st.caption("Not recorded.")
    else:
        st.table(subtypes.set_index("pneumonia type"))

st.subheader("Images the tool refuses to assess")
gate = meta.gate
if gate:
    st.markdown("Before scoring, each image is checked for being a frontal chest X-ray: colour, size and shape, "
                "contrast, flat areas and sharp edges, and the distance of the model's own features from those "
                "of the training X-rays. What fails is reported as *cannot assess* with the reason, never as "
                "normal.")
    st.table(gate_table(meta).set_index("measure"))
    st.caption(f"Non-X-ray set: {gate.measured.get('nonxray_set', 'not recorded')}.")
else:
    st.caption("This model has no cannot-assess check.")

st.subheader("Model comparison")
comparison = read_optional_csv(info.path.parent / "model_comparison.csv")
if comparison is None:
    st.caption("No comparison of candidate models has been recorded for this release.")
else:
    try:
        st.caption("Candidates trained on the same split and budget, scored on the test split at threshold 0.5.")
        st.dataframe(comparison_table(comparison), hide_index=True, width="stretch")
    except ValueError as exc:
        st.caption(f"The comparison table is unreadable: {exc}.")

st.subheader("Limitations")
st.markdown(bullets(LIMITATIONS))
st.warning("This model supports clinicians and never replaces one. Re-check the threshold on local cases "
           "before use.", icon=":material/stethoscope:")

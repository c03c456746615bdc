"""Threshold explorer: what each threshold would have done on the held-out test split."""

import streamlit as st

from core.evaluation.explorer import metrics_at, predictive_values, presets
from ui import routing, state
from ui.threshold_explorer import (
    confusion_figure,
    metric_cards,
    plain_summary,
    pr_figure,
    prevalence_cards,
    roc_figure,
    sweep_figure,
)

routing.through_app()

SLIDER_KEY = "explorer_slider"

info = state.model_info()
st.title("Threshold explorer")
st.caption("A lower threshold misses fewer children with pneumonia but refers more healthy ones. The figures below "
           "replay the model's predictions on our held-out test split (children never seen in training). The "
           "threshold chosen here is used by the triage pages for the rest of this session.")

loaded = state.test_predictions(info)
if loaded is None:
    st.stop()
frame, data = loaded
patients = f" from {data.patients} children" if data.patients else ""
if state.profile_recalibrates(info):
    st.warning("The site profile in force recalibrates the probabilities: this page shows the test split on the "
               "shipped scale, so its thresholds do not match the triage pages' exactly. Use the site calibration "
               "page to see your own figures.", icon=":material/warning:")
st.caption(f"Test split: {len(data.y)} images{patients}; {data.positives} with pneumonia, {data.negatives} without.")


def _from_slider() -> None:
    state.set_threshold(st.session_state[SLIDER_KEY])


preset_values = presets(data, info.threshold)
st.markdown("**Presets**")
columns = st.columns(len(preset_values))
for index, (column, (label, value)) in enumerate(zip(columns, preset_values.items(), strict=True)):
    shown = label if label.startswith("Shipped") else f"{label} ({value:.3f})"
    column.button(shown, key=f"preset_{index}", on_click=state.set_threshold, args=(value,),
                  help=f"Threshold {value:.4f}", width="stretch", wrap=True)

current = state.threshold(info)
if st.session_state.get(SLIDER_KEY) != current:
    st.session_state[SLIDER_KEY] = current  # follow presets and the sidebar reset
st.slider("Threshold on the probability of pneumonia", min_value=0.0, max_value=1.0, step=0.001, format="%.3f",
          key=SLIDER_KEY, on_change=_from_slider)
if state.is_custom_threshold(info):
    origin = "site profile's" if state.site_profile() is not None else "shipped"
    st.button(f"Reset to the {origin} threshold ({state.operating_threshold(info):.3f})", key="explorer_reset",
              on_click=state.reset_threshold, args=(info,), icon=":material/restart_alt:")

m = metrics_at(data, current)
st.info(plain_summary(m), icon=":material/info:")

cards = metric_cards(m)
for row in (cards[:4], cards[4:]):
    for column, (label, value, explanation) in zip(st.columns(4), row, strict=True):
        column.metric(label, value, help=explanation, border=True)

# PPV and NPV depend on how common pneumonia is; the test split is enriched with it.
split_prevalence = min(99.9, max(0.1, round(100 * data.positives / len(data.y), 1)))
prevalence_column, *value_columns = st.columns([2, 1, 1])
prevalence = prevalence_column.number_input(
    "Share of images with pneumonia where you use the tool (%)", min_value=0.1, max_value=99.9,
    value=split_prevalence, step=0.5, format="%.1f", key="explorer_prevalence",
    help="PPV and NPV depend on it; sensitivity and specificity do not. Default: the test split's own share.")
ppv, npv = predictive_values(m["recall"], m["specificity"], prevalence / 100)
for column, (label, value, explanation) in zip(value_columns, prevalence_cards(ppv, npv, prevalence / 100),
                                               strict=True):
    column.metric(label, value, help=explanation, border=True)

left, right = st.columns(2)
left.plotly_chart(confusion_figure(m), key="confusion", config={"displaylogo": False})
right.plotly_chart(sweep_figure(data, m), key="sweep", config={"displaylogo": False})
left, right = st.columns(2)
left.plotly_chart(roc_figure(data, m), key="roc", config={"displaylogo": False})
right.plotly_chart(pr_figure(data, m), key="pr", config={"displaylogo": False})
st.caption("These figures describe one centre's images. Before relying on a threshold, check it on labelled "
           "cases from your own setting.")

"""Approaches compared: the published networks for this dataset beside ours, and the learning curve."""

import streamlit as st

from ui import routing, state
from ui.comparison import approach_notes, comparison_view, learning_curve_section, tradeoff_figure
from ui.model_card import read_optional_csv

routing.through_app()

info = state.model_info()
st.title("Approaches compared")
st.caption("Well-known approaches to this dataset, each trained from scratch on our patient-level split with the "
           "same epoch budget and seed, and judged on our test split at threshold 0.5 (the operating point "
           "those projects report). Without internet there are no ImageNet weights; pretrained versions of "
           "these networks may do better (not measured here). Only the figures are kept, not the networks.")

table = read_optional_csv(info.path.parent / "model_comparison.csv")
if table is None:
    st.info("No comparison has been recorded for this release (`python -m training.comparison`).",
            icon=":material/info:")
else:
    try:
        st.dataframe(comparison_view(table), hide_index=True, width="stretch")
    except ValueError as exc:
        st.caption(f"The comparison table is unreadable: {exc}.")
    else:
        st.caption("Click a column header to sort. \"Shifted AUC\": the test split under the MedMNIST-C "
                   "corruptions at severity 3; \"normals flagged at 1.5× zoom\": how many more healthy "
                   "children are flagged when the film is framed tighter.")
        for column, x in zip(st.columns(2), ("parameters", "latency_ms"), strict=True):
            try:
                column.plotly_chart(tradeoff_figure(table, x), key=f"tradeoff_{x}", config={"displaylogo": False})
            except ValueError as exc:
                column.caption(f"No plot: {exc}.")
        for name, sentence in approach_notes(table):
            st.markdown(f"- **{name}**: {sentence}")

st.subheader("Learning curve")
learning_curve_section(info.path.parent, key="curve")

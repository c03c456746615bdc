"""Pediatric pneumonia chest X-ray triage: entry point, navigation and the shared sidebar.

    streamlit run streamlit_app.py
"""

from pathlib import Path

import streamlit as st

from ui import state, widgets

# A local icon: Streamlit fetches emoji and Material favicons from the internet.
ICON = Path(__file__).parent / "assets" / "favicon.png"
st.set_page_config(page_title="Pediatric pneumonia triage", page_icon=str(ICON), layout="wide")

pages = {
    "Triage": [
        st.Page("pages/single_triage.py", title="Single X-ray", icon=":material/image_search:", default=True),
        st.Page("pages/batch_worklist.py", title="Batch worklist", icon=":material/checklist:"),
    ],
    "About the model": [
        st.Page("pages/threshold_explorer.py", title="Threshold explorer", icon=":material/tune:"),
        st.Page("pages/activation_maps.py", title="Activation maps", icon=":material/layers:"),
        st.Page("pages/model_card.py", title="Model card", icon=":material/description:"),
        st.Page("pages/comparison.py", title="Approaches compared", icon=":material/compare:"),
    ],
    "Site": [
        st.Page("pages/site_calibration.py", title="Site calibration", icon=":material/location_on:"),
        st.Page("pages/monitoring.py", title="Monitoring", icon=":material/monitoring:"),
    ],
}
page = st.navigation(pages)
widgets.sidebar(state.model_info())
page.run()

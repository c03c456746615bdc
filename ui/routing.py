"""Every page runs inside the app: its navigation, layout and shared sidebar.

Streamlit keeps its older multipage mode, which runs a script from ``pages/`` by itself, until
some session has run the entry script's ``st.navigation``. So the first visitor after a server
start who arrives at a page's own address (a bookmark, or a tab reconnecting after a restart)
would get that page alone: no decision-support notice, no threshold in force in the sidebar,
Streamlit's file-name navigation. ``through_app`` ends that mode and reruns, so the entry script
routes the same address as it does for everyone after.
"""

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager


def through_app() -> None:
    """Rerun through the entry script when Streamlit ran this page by itself (called first on each page)."""
    if PagesManager.uses_pages_directory:
        # The flag is what st.navigation itself clears; the rerun keeps the page's address, and
        # the entry script's navigation resolves it to the same page.
        PagesManager.uses_pages_directory = False
        st.rerun()

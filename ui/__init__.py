"""Streamlit-side helpers shared by the dashboard pages (cached resources, session state, widgets)."""

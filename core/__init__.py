"""Core library of the pediatric pneumonia triage tool.

Image loading, preprocessing, inference, explanations and metrics. Nothing here imports
Streamlit, so the same code serves the dashboard, the command-line tool and training.
"""

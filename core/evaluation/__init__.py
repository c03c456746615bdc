"""Evaluation: metrics and the distribution-shift corruption suite."""

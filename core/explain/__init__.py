"""Explanation: where the model looked (class activation maps) and how to draw it."""

from core.explain.maps import CAM_METHODS, TARGETS, Explainer, ModelExplainer
from core.explain.render import colormap, feature_grid, normalise_map, overlay_heatmap, resize_map

__all__ = ["CAM_METHODS", "TARGETS", "Explainer", "ModelExplainer", "colormap", "feature_grid", "normalise_map",
           "overlay_heatmap", "resize_map"]

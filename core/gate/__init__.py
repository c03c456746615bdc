"""The "cannot assess" gate: refuse what is not a frontal chest X-ray before scoring it.

``checks`` holds the image statistics and the decision (:func:`assess`, one
:class:`Refusal` with a code and a sentence); ``ood`` the feature-space distance.
"""

from core.gate.checks import REFUSAL_CODES, Refusal, SourceInfo, assess, describe_source, image_statistics
from core.gate.ood import OodModel, fit_ood
from core.gate.quality import quality_flags, quality_note, result_note

__all__ = ["REFUSAL_CODES", "OodModel", "Refusal", "SourceInfo", "assess", "describe_source", "fit_ood",
           "image_statistics", "quality_flags", "quality_note", "result_note"]

"""Quality feedback for images the gate accepts but that are degraded: read them with care.

An accepted image is scored; when it is very noisy, heavily compressed, of low resolution
or needed a strong perspective correction, the result says so instead of staying silent.
"""

from __future__ import annotations

from core.gate.checks import SourceInfo

NOISE_LIMIT = 8.0  # gray levels of estimated sensor noise on the model input (σ ≈ 0.03)
JPEG_QUALITY_LIMIT = 40  # below this, compression artefacts hide fine detail
LOW_RESOLUTION_SIDE = 320  # an original smaller than this on its short side is a thumbnail
SKEW_LIMIT_DEGREES = 10.0

QUALITY_TEXT = {
    "noisy": "very noisy",
    "compressed": "heavily compressed",
    "low_resolution": "low resolution",
    "strong_skew": "strong perspective corrected",
}


def quality_flags(info: SourceInfo, stats: dict[str, float], skew_degrees: float = 0.0) -> tuple[str, ...]:
    """Codes of what is degraded about an accepted image (empty when nothing is)."""
    flags = []
    if stats.get("noise", 0.0) > NOISE_LIMIT:
        flags.append("noisy")
    if info.jpeg_quality is not None and info.jpeg_quality < JPEG_QUALITY_LIMIT:
        flags.append("compressed")
    if info.width is not None and info.height is not None and min(info.width, info.height) < LOW_RESOLUTION_SIDE:
        flags.append("low_resolution")
    if skew_degrees > SKEW_LIMIT_DEGREES:
        flags.append("strong_skew")
    return tuple(flags)


def quality_note(flags: tuple[str, ...]) -> str:
    """One sentence for the flags, e.g. "image quality low (very noisy): read with care"; "" when none."""
    if not flags:
        return ""
    return f"image quality low ({', '.join(QUALITY_TEXT[f] for f in flags)}): read with care"


def result_note(capture_note: str, flags: tuple[str, ...]) -> str:
    """The note shown with a result: what capture did, then any quality warning ("" when neither)."""
    return "; ".join(part for part in (capture_note, quality_note(flags)) if part)

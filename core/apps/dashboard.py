"""The dashboard's computations, without any UI: load the model once, triage one image.

The app loads the model through :func:`load_dashboard_model` only (the UI caches that
single call per server). Metadata alone is read with ``core.model.load_metadata``,
without TensorFlow, so the sidebar and the first page render while the model loads.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.calibration.probability import Calibration
from core.capture import refusal_note
from core.errors import ImageError
from core.explain import ModelExplainer
from core.gate import describe_source, image_statistics, quality_flags, result_note
from core.inputs.read import Source, read_bytes
from core.model import DEFAULT_MODEL_PATH, ModelBundle, ModelError, load_bundle
from core.preprocessing import prepare, shrink_for_display
from core.scoring import decide, pixel_hash, predict_arrays, score_prepared
from core.scoring.outcome import REFUSED_PREFIX, Outcome, refused, scored, unreadable


@dataclass(frozen=True)
class DashboardModel:
    """The loaded model bundle with the explanation helpers built from it."""

    bundle: ModelBundle
    explainer: ModelExplainer


def load_dashboard_model(path: str | Path = DEFAULT_MODEL_PATH, warm_up: bool = True) -> DashboardModel:
    """Load the model (integrity-checked) and build its explainer; the dashboard's one loader.

    With ``warm_up`` the scoring and Grad-CAM graphs are traced once on a blank image (and
    scoring's LiteRT copy converted), so the first clinician's image is not the one that pays.
    """
    bundle = load_bundle(path)
    try:
        explainer = ModelExplainer(bundle.model)
    except ValueError as exc:
        raise ModelError(f"the model cannot be explained: {exc}") from None
    if warm_up:
        blank = np.zeros((1, bundle.input_size, bundle.input_size), dtype=np.uint8)
        score_prepared(bundle, blank, [None])  # the graph scoring runs: with the gate's features if gated
        explainer.warm_up()
    return DashboardModel(bundle=bundle, explainer=explainer)


@dataclass(frozen=True)
class Prepared:
    """One image read, gated and scored, ready to be explained."""

    probability: float
    model_input: np.ndarray  # (S, S) uint8, what the model saw
    display: np.ndarray      # (H, W) uint8, aspect ratio kept, for showing (the film, after capture)
    note: str                # what capture did and any quality warning ("" when none)
    pixel_sha256: str        # the decoded image's hash, as in the batch path's outcome (for the audit log)

    def decision(self, threshold: float) -> str:
        """``PNEUMONIA`` or ``NORMAL`` at ``threshold``."""
        return decide(self.probability, threshold)


@dataclass(frozen=True)
class TriageResult(Prepared):
    """One image scored and explained."""

    cam: np.ndarray  # (S, S) float32 in [0, 1]
    method: str
    target: str
    seconds: float


def prepare_for_review(model: DashboardModel, source: Source, display_side: int = 768,
                       calibration: Calibration | None = None) -> Prepared:
    """Read, gate and score one image; raises ``ImageError`` if unreadable or refused by the gate.

    The model input comes from :func:`core.preprocessing.prepare_image`, the same path as
    the batch worklist and the command line, so the probability matches theirs exactly.
    """
    data = read_bytes(source)
    # The model input is decoded exactly as in the batch path (same probability); the copy
    # for display is decoded again at display resolution, through the same capture step.
    prepared = prepare(data, model.bundle.input_size)
    display_gray = prepare(data, model.bundle.input_size, detail=display_side).gray
    info = dataclasses.replace(describe_source(data), colour_scene=prepared.capture.is_colour_scene)
    stats = image_statistics(prepared.image)
    [(probability, refusal)] = score_prepared(model.bundle, prepared.image[np.newaxis], [info], [stats])
    if refusal is not None:
        raise ImageError(f"{REFUSED_PREFIX}{refusal.reason}", code=refusal.code, note=refusal_note(prepared.capture))
    calibrated = float((calibration or model.bundle.calibration).apply([probability])[0])
    flags = quality_flags(info, stats, prepared.capture.skew_degrees)
    return Prepared(probability=calibrated, model_input=prepared.image,
                    display=shrink_for_display(display_gray, display_side),
                    note=result_note(prepared.capture.note, flags), pixel_sha256=pixel_hash(prepared.gray))


def subtype_path(model_path: str | Path = DEFAULT_MODEL_PATH) -> Path:
    """Where the research bacterial-vs-viral model sits: beside the triage model."""
    return Path(model_path).with_name("pneumonia_subtype.keras")


@dataclass(frozen=True)
class SubtypeView:
    """The research model's P(bacterial) for one image and where it looked (research only)."""

    probability: float
    cam: np.ndarray  # (S, S) in [0, 1], what raised the bacterial score


def explain_subtype(model: DashboardModel, prepared: Prepared, method: str = "Grad-CAM") -> SubtypeView:
    """P(bacterial) and its activation map for an image the triage gate has already accepted.

    Research only: the subtype model saw pneumonia films only, so its output means nothing for
    a film without pneumonia; callers show it only for films the triage model flags.
    """
    if prepared.model_input.shape != (model.bundle.input_size, model.bundle.input_size):
        raise ValueError(f"the subtype model takes {model.bundle.input_size}-px inputs, "
                         f"got {prepared.model_input.shape}")
    probability = float(predict_arrays(model.bundle.model, prepared.model_input[np.newaxis])[0])
    return SubtypeView(probability=probability, cam=model.explainer.cam(prepared.model_input, method=method))


def triage_image(model: DashboardModel, source: Source, method: str = "Grad-CAM", target: str = "pneumonia",
                 display_side: int = 768, calibration: Calibration | None = None) -> TriageResult:
    """Score one image through the gate and compute its attention map (members averaged).

    Raises ``ImageError`` for an unreadable image, or one the "cannot assess" gate refuses.
    """
    start = time.perf_counter()
    prepared = prepare_for_review(model, source, display_side, calibration)
    cam = model.explainer.cam(prepared.model_input, method=method, target=target)
    return TriageResult(**{f.name: getattr(prepared, f.name) for f in dataclasses.fields(Prepared)},
                        cam=cam, method=method, target=target, seconds=time.perf_counter() - start)


def as_outcome(result: Prepared) -> Outcome:
    """The scored :class:`Outcome` of a triaged image (no name, no pixels): what the audit log records."""
    return dataclasses.replace(scored("", result.probability, note=result.note), pixel_sha256=result.pixel_sha256)


def failed_outcome(error: ImageError) -> Outcome:
    """The outcome of an image the single-image path could not score: refused by the gate, or unreadable."""
    message = str(error)
    if error.code:  # only the gate's refusals carry a reason code
        return refused("", error.code, message.removeprefix(REFUSED_PREFIX), note=error.note)
    return unreadable("", message)


def recompute_cam(model: DashboardModel, result: TriageResult, method: str, target: str) -> TriageResult:
    """The same result with the attention map recomputed for another method or target."""
    start = time.perf_counter()
    cam = model.explainer.cam(result.model_input, method=method, target=target)
    return dataclasses.replace(result, cam=cam, method=method, target=target, seconds=time.perf_counter() - start)

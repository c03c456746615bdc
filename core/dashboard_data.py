"""What the dashboard needs from disk and from the model, gathered in one place.

The app loads the model through :func:`load_dashboard_model` only (the UI caches that
single call per server). :func:`read_model_info` reads the metadata alone, without
TensorFlow, so the sidebar and the first page can render while the model is loading.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.errors import ImageError
from core.explain import Explainer
from core.gate import describe_source
from core.imaging import Source, display_image, prepare_image, read_bytes
from core.inference import decide, predict_arrays, score_prepared
from core.model import DEFAULT_MODEL_PATH, ModelBundle, ModelError, load_bundle, load_metadata

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "assets" / "examples"
EXAMPLE_SUFFIXES = (".jpeg", ".jpg", ".png")
PREDICTION_COLUMNS = ("file", "patient", "subtype", "label", "probability")


@dataclass(frozen=True)
class ModelInfo:
    """Name, version and shipped threshold of a model, read from its metadata only."""

    name: str
    version: str
    threshold: float
    path: Path
    metadata: dict[str, Any]


def read_model_info(path: str | Path = DEFAULT_MODEL_PATH) -> ModelInfo:
    """Describe the model at ``path`` from its metadata file; raises ``ModelError`` if unusable."""
    path = Path(path)
    meta = load_metadata(path)
    name = str(meta.get("name", path.stem))
    return ModelInfo(name=name, version=f"{name} · {str(meta['sha256'])[:8]}",
                     threshold=float(meta["threshold"]["value"]), path=path, metadata=meta)


@dataclass(frozen=True)
class DashboardModel:
    """The loaded model bundle with the explanation helpers built from it."""

    bundle: ModelBundle
    explainer: Explainer


def load_dashboard_model(path: str | Path = DEFAULT_MODEL_PATH, warm_up: bool = True) -> DashboardModel:
    """Load the model (integrity-checked) and build its explainer; the dashboard's one loader.

    With ``warm_up`` the prediction and Grad-CAM graphs are traced once on a blank image,
    so the first clinician's image is not the one that pays for it.
    """
    bundle = load_bundle(path)
    try:
        explainer = Explainer(bundle.model)
    except ValueError as exc:
        raise ModelError(f"the model cannot be explained: {exc}") from None
    if warm_up:
        blank = np.zeros((1, bundle.input_size, bundle.input_size), dtype=np.uint8)
        predict_arrays(bundle.model, blank)
        explainer.warm_up()
    return DashboardModel(bundle=bundle, explainer=explainer)


def sibling_path(model_path: str | Path, suffix: str) -> Path:
    """A file stored beside the model: ``<name><suffix>``, e.g. ``_test_predictions.csv``."""
    model_path = Path(model_path)
    return model_path.with_name(f"{model_path.stem}{suffix}")


def load_test_predictions(path: str | Path) -> pd.DataFrame:
    """The test-split predictions with a 0/1 ``y`` column; raises ``ValueError`` if unusable."""
    path = Path(path)
    try:
        frame = pd.read_csv(path)
    except FileNotFoundError:
        raise ValueError(f"test predictions not found: {path.name} should sit beside the model") from None
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ValueError(f"test predictions {path.name} are unreadable ({type(exc).__name__})") from None
    missing = [c for c in ("label", "probability") if c not in frame.columns]
    if missing:
        raise ValueError(f"test predictions {path.name} lack the column(s) {', '.join(missing)}")
    labels = frame["label"].astype(str).str.upper()
    if not labels.isin(("NORMAL", "PNEUMONIA")).all():
        raise ValueError(f"test predictions {path.name} hold labels other than NORMAL and PNEUMONIA")
    probability = pd.to_numeric(frame["probability"], errors="coerce")
    if probability.isna().any() or (probability < 0).any() or (probability > 1).any():
        raise ValueError(f"test predictions {path.name} hold probabilities outside [0, 1]")
    if frame.empty:
        raise ValueError(f"test predictions {path.name} are empty")
    out = frame.copy()
    out["probability"] = probability.astype(float)
    out["y"] = (labels == "PNEUMONIA").astype(int)
    return out


def example_images(folder: Path = EXAMPLES_DIR) -> dict[str, Path]:
    """The bundled example X-rays by display name: ``normal_IM-0117-0001.jpeg`` → ``Normal · IM-0117-0001``."""
    if not folder.is_dir():
        return {}
    out = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in EXAMPLE_SUFFIXES:
            label, _, rest = path.stem.partition("_")
            out[f"{label.capitalize()} · {rest}" if rest else label] = path
    return out


@dataclass(frozen=True)
class TriageResult:
    """One image scored and explained."""

    probability: float
    model_input: np.ndarray  # (S, S) uint8, what the model saw
    display: np.ndarray      # (H, W) uint8, aspect ratio kept, for showing
    cam: np.ndarray          # (S, S) float32 in [0, 1]
    method: str
    target: str
    seconds: float

    def decision(self, threshold: float) -> str:
        """``PNEUMONIA`` or ``NORMAL`` at ``threshold``."""
        return decide(self.probability, threshold)


def triage_image(model: DashboardModel, source: Source, method: str = "Grad-CAM", target: str = "pneumonia",
                 display_side: int = 768) -> TriageResult:
    """Score one image and compute its attention map.

    Raises ``ImageError`` for an unreadable image, or one the "cannot assess" gate refuses.

    The model input comes from :func:`core.imaging.prepare_image`, the same path as the
    batch worklist and the command line, so the probability matches theirs exactly.
    """
    start = time.perf_counter()
    data = read_bytes(source)
    model_input = prepare_image(data, model.bundle.input_size)
    display = display_image(data, max_side=display_side)
    [(probability, refusal)] = score_prepared(model.bundle, model_input[np.newaxis], [describe_source(data)])
    if refusal is not None:
        raise ImageError(f"cannot assess: {refusal}")
    cam = model.explainer.cam(model_input, method=method, target=target)
    return TriageResult(probability=probability, model_input=model_input, display=display, cam=cam,
                        method=method, target=target, seconds=time.perf_counter() - start)


def recompute_cam(model: DashboardModel, result: TriageResult, method: str, target: str) -> TriageResult:
    """The same result with the attention map recomputed for another method or target."""
    start = time.perf_counter()
    cam = model.explainer.cam(result.model_input, method=method, target=target)
    return TriageResult(probability=result.probability, model_input=result.model_input, display=result.display,
                        cam=cam, method=method, target=target, seconds=time.perf_counter() - start)



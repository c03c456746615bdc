"""Loading the shipped model together with its metadata, with integrity checks.

This is the one place a model is loaded for scoring (the dashboard wraps it once in
``st.cache_resource``); the loaded model is never modified.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.calibration.probability import Calibration
from core.model.metadata import ModelError, ModelMetadata

MODELS_DIR = Path(__file__).resolve().parent.parent.parent / "models"
DEFAULT_MODEL_NAME = "pneumonia_ensemble"
# PNEUMONIA_MODEL points the app and the CLI at another model file (e.g. a retrained one).
DEFAULT_MODEL_PATH = Path(os.environ.get("PNEUMONIA_MODEL", MODELS_DIR / f"{DEFAULT_MODEL_NAME}.keras"))


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_metadata(model_path: str | Path) -> ModelMetadata:
    """Read and validate the metadata beside ``model_path`` (no TensorFlow needed)."""
    return ModelMetadata.read(model_path)


@dataclass(frozen=True)
class ModelBundle:
    """A loaded Keras model with the metadata that describes how to use it."""

    model: Any
    metadata: ModelMetadata
    path: Path
    ood: Any = field(default=None)  # core.gate.OodModel when the metadata defines a "cannot assess" gate

    @property
    def name(self) -> str:
        """The model's name from its metadata (the file stem when unnamed)."""
        return self.metadata.name or self.path.stem

    @property
    def gate(self) -> dict[str, float] | None:
        """Fitted limits of the "cannot assess" gate, or ``None`` when it is not enabled."""
        gate = self.metadata.gate
        return gate.thresholds if gate is not None and self.ood is not None else None

    @property
    def threshold(self) -> float:
        """The shipped operating threshold on P(pneumonia)."""
        return float(self.metadata.threshold.value)

    @property
    def input_size(self) -> int:
        """Side of the square model input in pixels."""
        return int(self.metadata.input_size)

    @property
    def labels(self) -> list[str]:
        """Class names, negative class first."""
        return list(self.metadata.labels)

    @property
    def version(self) -> str:
        """A short version string: the name plus the first characters of the weights' hash."""
        return self.metadata.version

    @property
    def calibration(self) -> Calibration:
        """The shipped probability calibration (identity when the metadata records none)."""
        if not self.metadata.calibration:
            return Calibration("none")
        return Calibration.from_dict(self.metadata.calibration)


def load_bundle(path: str | Path = DEFAULT_MODEL_PATH) -> ModelBundle:
    """Load a ``.keras`` model in safe mode after checking it against its metadata.

    Raises ``ModelError`` when the file is missing, when its SHA-256 differs from the
    one recorded in the metadata (a truncated or swapped file), or when Keras cannot
    load it.
    """
    path = Path(path)
    if path.suffix != ".keras":
        raise ModelError(f"expected a .keras model file, got {path.name}")
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    meta = load_metadata(path)
    actual = sha256_file(path)
    if actual != meta.sha256:
        raise ModelError(
            f"model file {path.name} does not match its metadata (sha256 {actual[:12]}… expected "
            f"{meta.sha256[:12]}…): the file is damaged, truncated or was replaced"
        )
    import keras  # deferred: importing TensorFlow takes seconds

    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # noqa: BLE001 - Keras raises many types for broken archives
        raise ModelError(f"model file {path.name} could not be loaded: {exc}") from None
    expected = (None, meta.input_size, meta.input_size, 1)
    if tuple(model.input_shape) != expected:
        raise ModelError(f"model input shape {model.input_shape} disagrees with metadata {expected}")
    if meta.name == "":
        meta = meta.replace(name=path.stem)
    if meta.calibration:
        try:
            Calibration.from_dict(meta.calibration)
        except ValueError as exc:
            raise ModelError(f"model metadata {path.with_suffix('.json').name} has a bad calibration: {exc}") from None
    return ModelBundle(model=model, metadata=meta, path=path, ood=_load_ood(path, meta))


def _load_ood(model_path: Path, meta: ModelMetadata) -> Any:
    """The gate's feature-space model, checked against the hash in the metadata."""
    gate = meta.gate
    if gate is None:
        return None
    from core.gate.ood import OodModel

    ood_path = model_path.parent / gate.ood_file
    if not ood_path.is_file():
        raise ModelError(f"gate parameters {ood_path.name} are missing beside the model")
    if sha256_file(ood_path) != gate.ood_sha256:
        raise ModelError(f"gate parameters {ood_path.name} do not match the metadata (damaged or replaced)")
    return OodModel.load(ood_path)

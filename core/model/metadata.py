"""The model's metadata, typed: what sits beside the weights in ``models/<name>.json``.

Training writes it (:mod:`training.evaluate`, :mod:`training.fit_gate`) and everything
that reads it (the bundle, the dashboard, the model card) goes through
:class:`ModelMetadata`, so the file has one schema, validated in one place.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ModelError(ValueError):
    """The model file or its metadata is missing, damaged or inconsistent."""


@dataclass(frozen=True)
class Threshold:
    """The shipped operating threshold on P(pneumonia) and the rule that chose it."""

    value: float
    rule: str
    chosen_on: str = ""
    min_recall: float | None = None
    validation: dict[str, Any] = field(default_factory=dict)  # metrics at the threshold on validation
    validation_shifted: dict[str, Any] = field(default_factory=dict)  # the same, validation under shift, pooled
    stability: dict[str, Any] = field(default_factory=dict)  # how it moves under the shift benchmark


@dataclass(frozen=True)
class GateMetadata:
    """The "cannot assess" gate: fitted limits, the OOD parameter file and measured error rates."""

    thresholds: dict[str, float]
    ood_file: str
    ood_sha256: str
    method: str = ""
    measured: dict[str, Any] = field(default_factory=dict)


# Colour is judged by the capture step (a tint is not a colour picture), not by a fitted limit.
GATE_LIMITS = ("min_std", "max_flat_fraction", "max_edge_density", "max_ood_distance")
# Limits added later: a gate fitted before one existed does not apply it (core.gate.checks.assess).
OPTIONAL_GATE_LIMITS = ("max_ramp_share",)
# Where ``metrics`` holds each photo check's figures (``training.photo_check --record``), by simulator.
PHOTO_METRICS = {"field": "phone_photos", "lightbox": "lightbox_photos"}


@dataclass(frozen=True)
class ModelMetadata:
    """Everything needed to use, check and describe a trained model."""

    name: str
    labels: tuple[str, ...]
    input_size: int
    threshold: Threshold
    sha256: str
    weights_file: str = ""
    created: str = ""
    output: str = "sigmoid probability of PNEUMONIA"
    preprocessing: str = ""
    calibration: dict[str, Any] = field(default_factory=dict)  # core.calibration.Calibration.to_dict()
    training: dict[str, Any] = field(default_factory=dict)
    members: list[dict[str, Any]] = field(default_factory=list)  # ensemble members' own figures
    data: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    gate: GateMetadata | None = None
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def version(self) -> str:
        """A short version string: the name plus the first characters of the weights' hash."""
        return f"{self.name} · {self.sha256[:8]}"

    @classmethod
    def from_dict(cls, raw: Any, source: str = "model metadata") -> ModelMetadata:
        """Validate and type a parsed metadata document; raises ``ModelError`` with a one-line reason."""
        if not isinstance(raw, dict):
            raise ModelError(f"{source} is not a JSON object")
        for key in ("labels", "input_size", "threshold", "sha256"):
            if key not in raw:
                raise ModelError(f"{source} lacks the '{key}' entry")
        try:
            threshold = Threshold(**raw["threshold"])
            gate = GateMetadata(**raw["gate"]) if raw.get("gate") else None
            known = {f.name for f in dataclasses.fields(cls)}
            values = {k: v for k, v in raw.items() if k in known}
            meta = cls(**{**values, "name": str(raw.get("name") or ""), "labels": tuple(raw["labels"]),
                          "input_size": int(raw["input_size"]), "threshold": threshold, "gate": gate})
        except (TypeError, ValueError) as exc:
            raise ModelError(f"{source} is malformed ({exc})") from None
        meta.validate(source)
        return meta

    def validate(self, source: str = "model metadata") -> None:
        """Raise ``ModelError`` unless the fields are consistent."""
        value = float(self.threshold.value)
        if not (math.isfinite(value) and 0.0 <= value <= 1.0):
            raise ModelError(f"{source} has an operating threshold outside [0, 1]")
        if len(self.labels) != 2:
            raise ModelError(f"{source} must name exactly two labels")
        if self.input_size < 8:
            raise ModelError(f"{source} has an implausible input size {self.input_size}")
        if len(self.sha256) != 64:
            raise ModelError(f"{source} has no valid SHA-256 of the weights")
        if self.gate is not None and set(GATE_LIMITS) - set(self.gate.thresholds):
            raise ModelError(f"{source} defines a gate without all of its limits {GATE_LIMITS}")

    def to_dict(self) -> dict[str, Any]:
        """The JSON document (strict JSON: no NaN)."""
        out = dataclasses.asdict(self)
        out["labels"] = list(self.labels)
        if self.gate is None:
            out.pop("gate")
        return out

    def write(self, model_path: str | Path) -> Path:
        """Write ``<name>.json`` beside ``model_path``; returns its path."""
        path = metadata_path(model_path)
        path.write_text(json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n")
        return path

    @classmethod
    def read(cls, model_path: str | Path) -> ModelMetadata:
        """Read and validate the metadata beside ``model_path``."""
        path = metadata_path(model_path)
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            raise ModelError(f"model metadata not found: {path.name} must sit beside the model") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelError(f"model metadata {path.name} is unreadable: {exc}") from None
        return cls.from_dict(raw, f"model metadata {path.name}")

    def replace(self, **changes: Any) -> ModelMetadata:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)


def metadata_path(model_path: str | Path) -> Path:
    """The metadata file that sits beside a model: ``<name>.json``."""
    return Path(model_path).with_suffix(".json")


def sibling_path(model_path: str | Path, suffix: str) -> Path:
    """A file stored beside the model: ``<name><suffix>``, e.g. ``_test_predictions.csv``."""
    model_path = Path(model_path)
    return model_path.with_name(f"{model_path.stem}{suffix}")

"""Shared fixtures: synthetic images, a synthetic dataset tree and a tiny model bundle.

The builders behind them live in ``tests/helpers``; nothing here depends on the shipped
model or on ../shared.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from helpers import TINY_SIZE, image_bytes, write_dataset, write_metadata, xray_like  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def _audit_log_outside_home(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Pages record to an audit log: during tests, to a scratch file, never the user's real log.

    Tests that look into the log set ``PNEUMONIA_AUDIT_DB`` to their own path.
    """
    os.environ["PNEUMONIA_AUDIT_DB"] = str(tmp_path_factory.mktemp("audit") / "audit.sqlite3")


@pytest.fixture
def make_image(tmp_path: Path) -> Callable[..., Path]:
    """Write a synthetic image under ``tmp_path`` and return its path."""

    def factory(name: str = "image.jpeg", height: int = 96, width: int = 80, fmt: str | None = None,
                mode: str = "L", seed: int = 0) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if fmt is None:
            fmt = "PNG" if path.suffix.lower() == ".png" else "JPEG"
        path.write_bytes(image_bytes(height, width, fmt, mode, seed))
        return path

    return factory


@pytest.fixture
def synthetic_dataset(tmp_path: Path) -> Callable[..., Path]:
    """Factory writing a synthetic dataset tree under ``tmp_path / name``."""

    def factory(patients: dict[str, list[str]], name: str = "chest_xray", size: int = 40) -> Path:
        return write_dataset(tmp_path / name, patients, size)

    return factory


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny compact CNN (64 px) saved with correct metadata; built once per test session.

    The weights are untrained, but the output layer is scaled up so probabilities spread
    over (0, 1) instead of all sitting at 0.500: threshold tests need cases on both sides.
    """
    import keras

    from training.models import compact_cnn

    keras.utils.set_random_seed(7)
    model = compact_cnn(TINY_SIZE)
    head = model.get_layer("pneumonia")
    kernel, bias = head.get_weights()
    probe = np.stack([xray_like(TINY_SIZE, TINY_SIZE, s) for s in range(16)])[..., None].astype(np.float32)
    features = keras.Model(model.input, head.input)(probe, training=False)
    logits = np.asarray(features) @ kernel
    spread = float(np.std(logits)) or 1.0
    head.set_weights([kernel * (1.5 / spread), np.array([-float(np.mean(logits)) * 1.5 / spread])])
    folder = tmp_path_factory.mktemp("tiny_model")
    path = folder / "tiny_cnn.keras"
    model.save(path)
    write_metadata(path, TINY_SIZE, threshold=0.5)
    return path


@pytest.fixture(scope="session")
def tiny_bundle(tiny_model_path: Path):
    """The tiny model loaded through ``core.model.load_bundle``."""
    from core.model import load_bundle

    return load_bundle(tiny_model_path)

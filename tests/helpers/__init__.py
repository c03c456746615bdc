"""Builders shared by the tests: tiny synthetic images, dataset trees, metadata and paths.

Nothing here depends on the shipped model or on ../shared; tests that use real data
skip themselves when it is absent.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
REAL_DATASET = SHARED_DATA / "chest_xray"
FULL_RES_SAMPLES = SHARED_DATA / "samples" / "full_resolution"
SHIPPED_MODEL = REPO / "models" / "pneumonia_ensemble.keras"
EXAMPLES = REPO / "assets" / "examples"
TINY_SIZE = 64


def xray_like(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth, film-like uint8 image: bright body, darker lungs, noise (compresses realistically)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    body = 170 - 60 * (((xx - width / 2) / (width / 2)) ** 2)
    lungs = 70 * np.exp(-(((xx - width * 0.32) / (width * 0.12)) ** 2 + ((yy - height * 0.5) / (height * 0.25)) ** 2))
    lungs += 70 * np.exp(-(((xx - width * 0.68) / (width * 0.12)) ** 2 + ((yy - height * 0.5) / (height * 0.25)) ** 2))
    noise = rng.normal(0, 12, (height, width))
    shift = rng.uniform(-40, 40)
    return np.clip(body - lungs + noise + shift, 0, 255).astype(np.uint8)


def encode(image: Image.Image, fmt: str, **params) -> bytes:
    """Encode a Pillow image in memory."""
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def image_bytes(height: int = 96, width: int = 80, fmt: str = "JPEG", mode: str = "L", seed: int = 0) -> bytes:
    """Bytes of a synthetic image in the given format and Pillow mode."""
    gray = Image.fromarray(xray_like(height, width, seed), mode="L")
    if mode == "I;16":
        image = Image.fromarray(gray_to_16bit(np.asarray(gray)))
    elif mode == "L":
        image = gray
    else:
        image = gray.convert(mode)
    params = {"quality": 92} if fmt == "JPEG" else {}
    return encode(image, fmt, **params)


def gray_to_16bit(gray: np.ndarray) -> np.ndarray:
    """12-bit detector-style data (0..4095) stored in 16 bits, as DICOM exports often are."""
    return (gray.astype(np.uint16) * 16 + 7).astype(np.uint16)


def write_dataset(root: Path, patients: dict[str, list[str]], size: int = 40) -> Path:
    """Write a Kermany-style tree: ``patients`` maps 'split/LABEL' to a list of file names."""
    seed = 0
    for folder, names in patients.items():
        target = root / folder
        target.mkdir(parents=True, exist_ok=True)
        for name in names:
            seed += 1
            gray = xray_like(size, size, seed)
            if "PNEUMONIA" in folder:
                # A visible class signal, so a one-epoch model has something to learn.
                gray = np.clip(gray.astype(int) + 50, 0, 255).astype(np.uint8)
            Image.fromarray(gray, mode="L").save(target / name, quality=90)
    return root


def synthetic_names(n_normal: int, n_bacterial: int, n_viral: int, images_per_patient: int = 2,
                    start: int = 100) -> dict[str, list[str]]:
    """File names for ``train/`` with several images per patient, in the dataset's naming scheme."""
    normal = [f"IM-{start + i:04d}-{k + 1:04d}.jpeg" for i in range(n_normal) for k in range(images_per_patient)]
    pneumonia = [f"person{start + i}_bacteria_{1000 + 10 * i + k}.jpeg"
                 for i in range(n_bacterial) for k in range(images_per_patient)]
    pneumonia += [f"person{start + n_bacterial + i}_virus_{5000 + 10 * i + k}.jpeg"
                  for i in range(n_viral) for k in range(images_per_patient)]
    return {"train/NORMAL": normal, "train/PNEUMONIA": pneumonia}


def write_metadata(model_path: Path, input_size: int, threshold: float = 0.5, **extra) -> Path:
    """Write the ``.json`` beside a model with its true SHA-256."""
    from core.model import metadata_path, sha256_file

    meta = {
        "name": model_path.stem,
        "labels": ["NORMAL", "PNEUMONIA"],
        "input_size": input_size,
        "threshold": {"value": threshold, "rule": "fixed for tests"},
        "sha256": sha256_file(model_path),
        **extra,
    }
    path = metadata_path(model_path)
    path.write_text(json.dumps(meta, indent=2))
    return path


def real_xray_bytes(seed: int = 0, height: int | None = None, width: int | None = None, fmt: str = "JPEG") -> bytes:
    """A real chest X-ray from the committed examples (CC BY 4.0), optionally resized and re-encoded.

    Synthetic films are refused by the shipped model's "cannot assess" gate, so tests that
    need a score from the shipped model use these.
    """
    paths = sorted(EXAMPLES.glob("*.jpeg"))
    image = Image.open(paths[seed % len(paths)]).convert("L")
    if height and width:
        image = image.resize((width, height), Image.Resampling.BICUBIC)
    return encode(image, fmt, **({"quality": 92} if fmt == "JPEG" else {}))


def bundle_for(model, threshold: float = 0.5, name: str = "test"):
    """An in-memory ModelBundle (no gate) around a Keras model, with typed metadata."""
    from core.model import ModelBundle, ModelMetadata
    from core.model.metadata import Threshold

    meta = ModelMetadata(name=name, labels=("NORMAL", "PNEUMONIA"), input_size=int(model.input_shape[1]),
                         threshold=Threshold(value=threshold, rule="fixed for tests"), sha256="0" * 64)
    return ModelBundle(model=model, metadata=meta, path=Path(f"{name}.keras"))


def trained_statistics(model, rng: np.random.Generator):
    """``model`` with non-trivial batch-norm scales, shifts and moving statistics, as after training.

    Untrained norms are the identity, which would hide a mistake in anything that rewrites them.
    """
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.moving_mean.shape[0]
            layer.set_weights([rng.uniform(0.5, 2.0, n), rng.normal(0, 0.5, n), rng.normal(0, 0.3, n),
                               rng.uniform(0.2, 3.0, n)])
    return model


def brightness_model(size: int):
    """A network whose P(pneumonia) rises with the film's mean gray level (brighter: pneumonia)."""
    import keras

    inputs = keras.Input((size, size, 1))
    pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1 / 255)(inputs))
    dense = keras.layers.Dense(1, activation="sigmoid")
    model = keras.Model(inputs, dense(pooled))
    dense.set_weights([np.array([[20.0]]), np.array([-10.0])])  # 0.5 at mean gray level 0.5
    return model

"""Scoring images with the model: batched, bounded in memory, never stopped by one bad file."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice

import numpy as np

from core.errors import ImageError
from core.imaging import Source, prepare_image
from core.model import ModelBundle

NORMAL, PNEUMONIA = "NORMAL", "PNEUMONIA"


@dataclass(frozen=True)
class Prediction:
    """The outcome for one input: a probability and decision, or the reason it failed."""

    name: str
    probability: float | None = None
    prediction: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when the image was scored."""
        return self.error is None


def decide(probability: float, threshold: float) -> str:
    """``PNEUMONIA`` when ``probability`` reaches ``threshold``, else ``NORMAL``."""
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be within [0, 1], got {threshold}")
    return PNEUMONIA if probability >= threshold else NORMAL


def predict_arrays(model, images: np.ndarray) -> np.ndarray:
    """P(pneumonia) for a stack of preprocessed ``(N, S, S)`` uint8 images."""
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError("expected a (N, size, size) uint8 array of preprocessed images")
    if len(images) == 0:
        return np.zeros(0, dtype=np.float32)
    batch = images[..., np.newaxis].astype(np.float32)
    # Calling the model directly avoids predict()'s per-call set-up, which dominates small batches.
    out = np.asarray(model(batch, training=False))
    return out.reshape(-1).astype(np.float32)


def _safe_prepare(source: Source, size: int) -> np.ndarray | str:
    """The model input, or a one-line reason it could not be made.

    A source that is already an ``ImageError`` (e.g. an archive member refused before
    reading) is reported with its own reason.
    """
    if isinstance(source, ImageError):
        return str(source)
    try:
        return prepare_image(source, size)
    except ImageError as exc:
        return str(exc)
    except Exception as exc:  # noqa: BLE001 - one odd file must never stop a batch
        return f"unexpected error while reading the image ({type(exc).__name__})"


def iter_predictions(
    bundle: ModelBundle,
    items: Iterable[tuple[str, Source]],
    threshold: float | None = None,
    batch_size: int = 32,
    workers: int = 2,
) -> Iterator[Prediction]:
    """Score ``(name, source)`` pairs in order, yielding one :class:`Prediction` each.

    Decoding runs on ``workers`` threads (Pillow releases the GIL), the model sees
    batches of ``batch_size``, and only one batch is held in memory at a time.
    """
    if batch_size < 1 or workers < 1:
        raise ValueError("batch_size and workers must be at least 1")
    threshold = bundle.threshold if threshold is None else float(threshold)
    decide(0.0, threshold)  # validates the threshold before any work
    size = bundle.input_size
    iterator = iter(items)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        while chunk := list(islice(iterator, batch_size)):
            prepared = list(pool.map(lambda item: _safe_prepare(item[1], size), chunk))
            good = [i for i, p in enumerate(prepared) if isinstance(p, np.ndarray)]
            probs = predict_arrays(bundle.model, np.stack([prepared[i] for i in good])) if good else []
            scored = dict(zip(good, (float(p) for p in probs), strict=True))
            for i, (name, _) in enumerate(chunk):
                if i in scored:
                    prob = scored[i]
                    yield Prediction(name, prob, decide(prob, threshold))
                else:
                    yield Prediction(name, error=str(prepared[i]))


def predict_many(
    bundle: ModelBundle,
    items: Sequence[tuple[str, Source]],
    threshold: float | None = None,
    batch_size: int = 32,
    progress: Callable[[int, int], None] | None = None,
) -> list[Prediction]:
    """Score every item, calling ``progress(done, total)`` after each one."""
    results: list[Prediction] = []
    for result in iter_predictions(bundle, items, threshold, batch_size):
        results.append(result)
        if progress is not None:
            progress(len(results), len(items))
    return results


def predict_one(bundle: ModelBundle, source: Source) -> float:
    """P(pneumonia) for one image; raises ``ImageError`` if it cannot be read."""
    image = prepare_image(source, bundle.input_size)
    return float(predict_arrays(bundle.model, image[np.newaxis])[0])

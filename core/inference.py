"""Scoring images with the model: batched, bounded in memory, never stopped by one bad file."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from itertools import islice

import numpy as np

from core.errors import ImageError
from core.gate import SourceInfo, assess, describe_source, image_statistics
from core.imaging import Source, decode_gray, read_bytes, resize_square
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
    # predict_on_batch runs a graph Keras compiles once and caches on the model: an eager
    # model(batch) call costs ~60 ms of per-layer overhead for one image, predict() adds
    # data-pipeline set-up to every call.
    out = np.asarray(model.predict_on_batch(batch))
    return out.reshape(-1).astype(np.float32)


@dataclass(frozen=True)
class _Prepared:
    data: bytes
    gray: np.ndarray  # upright grayscale, decoded at reduced JPEG scale
    image: np.ndarray  # the model input
    info: SourceInfo | None


def _safe_prepare(source: Source | ImageError, size: int, describe: bool) -> _Prepared | str:
    """The model input (plus what the gate needs), or a one-line reason it could not be made.

    A source that is already an ``ImageError`` (e.g. an archive member refused before
    reading) is reported with its own reason.
    """
    if isinstance(source, ImageError):
        return str(source)
    try:
        data = read_bytes(source)
        # The two steps of core.imaging.prepare_image, keeping the decoded image for callers
        # that show a thumbnail, so nothing is decoded twice.
        gray = decode_gray(data, min_size=(size, size))
        return _Prepared(data, gray, resize_square(gray, size), describe_source(data) if describe else None)
    except ImageError as exc:
        return str(exc)
    except Exception as exc:  # noqa: BLE001 - one odd file must never stop a batch
        return f"unexpected error while reading the image ({type(exc).__name__})"


@lru_cache(maxsize=4)
def feature_model(model):
    """A model sharing ``model``'s layers whose outputs are (penultimate features, probability).

    Built once per model and cached; the original model is left untouched.
    """
    import keras

    pooling = [layer for layer in model.layers if isinstance(layer, keras.layers.GlobalAveragePooling2D)]
    if not pooling:
        raise ValueError("model has no global-average-pooling layer to take features from")
    return keras.Model(model.input, [pooling[-1].output, model.output])


def predict_with_features(model, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """P(pneumonia) and penultimate-layer features for ``(N, S, S)`` uint8 images."""
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError("expected a (N, size, size) uint8 array of preprocessed images")
    features, probs = feature_model(model).predict_on_batch(images[..., np.newaxis].astype(np.float32))
    return np.asarray(probs).reshape(-1), np.asarray(features)


def score_prepared(
    bundle: ModelBundle, images: np.ndarray, infos: Sequence[SourceInfo | None]
) -> list[tuple[float, str | None]]:
    """P(pneumonia) and the gate's refusal reason (``None`` if assessable) for prepared images.

    ``images`` are ``(N, S, S)`` uint8 model inputs and ``infos`` what
    :func:`core.gate.describe_source` said about each upload. Without a gate in the
    bundle every image is assessable.
    """
    if len(images) != len(infos):
        raise ValueError("need one SourceInfo per image")
    gate = bundle.gate
    if gate is None:
        return [(float(p), None) for p in predict_arrays(bundle.model, images)]
    probs, features = predict_with_features(bundle.model, images)
    distances = bundle.ood.distance(features)
    out = []
    for image, info, prob, distance in zip(images, infos, probs, distances, strict=True):
        info = info if info is not None else SourceInfo(None, None, 0.0)
        out.append((float(prob), assess(info, image_statistics(image), float(distance), gate)))
    return out


@dataclass(frozen=True)
class ScoredImage:
    """One input after the shared read → decode → gate → score step."""

    name: str
    probability: float | None = None
    error: str | None = None  # why it was not scored; gate refusals start with "cannot assess:"
    data: bytes | None = None  # the bytes that were read, for callers that show the image later
    gray: np.ndarray | None = None  # upright grayscale at reduced scale, for thumbnails


def iter_scored(
    bundle: ModelBundle,
    items: Iterable[tuple[str, Source | ImageError]],
    batch_size: int = 32,
    workers: int = 2,
) -> Iterator[ScoredImage]:
    """Score ``(name, source)`` pairs in order, yielding one :class:`ScoredImage` each.

    Decoding runs on ``workers`` threads (Pillow releases the GIL), the model sees
    batches of ``batch_size``, and only one batch is held in memory at a time. When the
    model ships a "cannot assess" gate, images it refuses come back with an error, never
    with a probability.
    """
    if batch_size < 1 or workers < 1:
        raise ValueError("batch_size and workers must be at least 1")
    size, describe = bundle.input_size, bundle.gate is not None
    iterator = iter(items)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        while chunk := list(islice(iterator, batch_size)):
            prepared = list(pool.map(lambda item: _safe_prepare(item[1], size, describe), chunk))
            good = [p for p in prepared if isinstance(p, _Prepared)]
            scores = iter(score_prepared(bundle, np.stack([p.image for p in good]), [p.info for p in good])
                          if good else [])
            for (name, _), item in zip(chunk, prepared, strict=True):
                if not isinstance(item, _Prepared):
                    yield ScoredImage(name, error=item)
                    continue
                prob, refusal = next(scores)
                if refusal is not None:
                    yield ScoredImage(name, error=f"cannot assess: {refusal}", gray=item.gray)
                else:
                    yield ScoredImage(name, prob, data=item.data, gray=item.gray)


def iter_predictions(
    bundle: ModelBundle,
    items: Iterable[tuple[str, Source | ImageError]],
    threshold: float | None = None,
    batch_size: int = 32,
    workers: int = 2,
) -> Iterator[Prediction]:
    """Score ``(name, source)`` pairs in order, yielding one :class:`Prediction` each.

    See :func:`iter_scored`; images the gate refuses are errors starting with
    "cannot assess:", never NORMAL.
    """
    threshold = bundle.threshold if threshold is None else float(threshold)
    decide(0.0, threshold)  # validates the threshold before any work
    for scored in iter_scored(bundle, items, batch_size, workers):
        if scored.error is not None:
            yield Prediction(scored.name, error=scored.error)
        else:
            yield Prediction(scored.name, scored.probability, decide(scored.probability, threshold))


def predict_one(bundle: ModelBundle, source: Source) -> float:
    """P(pneumonia) for one image; raises ``ImageError`` if it cannot be read or assessed."""
    result = next(iter_predictions(bundle, [("image", source)], batch_size=1, workers=1))
    if not result.ok:
        raise ImageError(str(result.error))
    return float(result.probability)

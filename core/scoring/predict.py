"""Running the model on prepared images: probabilities, features for the gate, gated scores."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from core.gate import Refusal, SourceInfo, assess, image_statistics
from core.model import ModelBundle
from core.model.lite import lite_model


def _batch(images: np.ndarray) -> np.ndarray:
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError("expected a (N, size, size) uint8 array of preprocessed images")
    return images[..., np.newaxis].astype(np.float32)


def run_model(model, batch: np.ndarray) -> list[np.ndarray]:
    """Every output of ``model`` for a float32 batch: from its LiteRT copy when there is one.

    See :mod:`core.model.lite` for why; without a copy, Keras scores.
    """
    copy = lite_model(model)
    if copy is not None:
        return copy(batch)
    # predict_on_batch runs a graph Keras compiles once and caches on the model: an eager
    # model(batch) call costs ~60 ms of per-layer overhead for one image, predict() adds
    # data-pipeline set-up to every call.
    out = model.predict_on_batch(batch)
    return [np.asarray(o) for o in (out if isinstance(out, (list, tuple)) else [out])]


def predict_arrays(model, images: np.ndarray) -> np.ndarray:
    """P(pneumonia) for a stack of preprocessed ``(N, S, S)`` uint8 images."""
    batch = _batch(images)
    if len(batch) == 0:
        return np.zeros(0, dtype=np.float32)
    return run_model(model, batch)[0].reshape(-1).astype(np.float32)


@lru_cache(maxsize=4)
def feature_model(model):
    """A model sharing ``model``'s layers whose outputs are (penultimate features, probability).

    The features are the last global-average pooling, or for an ensemble its members'
    pooled features side by side. Built once per model and cached; the original model is
    left untouched (a new Concatenate reads the existing tensors).
    """
    import keras

    from core.model.ensemble import feature_tensors, is_ensemble

    if is_ensemble(model):
        joined = keras.layers.Concatenate(name="member_features")(feature_tensors(model))
        return keras.Model(model.input, [joined, model.output])
    pooling = [layer for layer in model.layers if isinstance(layer, keras.layers.GlobalAveragePooling2D)]
    if not pooling:
        raise ValueError("model has no global-average-pooling layer to take features from")
    return keras.Model(model.input, [pooling[-1].output, model.output])


def predict_with_features(model, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """P(pneumonia) and penultimate-layer features for ``(N, S, S)`` uint8 images."""
    features, probs = run_model(feature_model(model), _batch(images))
    return probs.reshape(-1), features


def score_prepared(
    bundle: ModelBundle, images: np.ndarray, infos: Sequence[SourceInfo | None],
    stats: Sequence[dict[str, float]] | None = None,
) -> list[tuple[float, Refusal | None]]:
    """Raw P(pneumonia) and the gate's refusal (``None`` if assessable) for prepared images.

    ``images`` are ``(N, S, S)`` uint8 model inputs and ``infos`` what
    :func:`core.gate.describe_source` said about each upload; ``stats`` their
    :func:`core.gate.image_statistics` when the caller already has them (computed here
    otherwise). Without a gate in the bundle every image is assessable.
    """
    if len(images) != len(infos) or (stats is not None and len(stats) != len(images)):
        raise ValueError("need one SourceInfo (and one set of statistics) per image")
    gate = bundle.gate
    if gate is None:
        return [(float(p), None) for p in predict_arrays(bundle.model, images)]
    probs, features = predict_with_features(bundle.model, images)
    distances = bundle.ood.distance(bundle.ood.join(features, images))
    stats = stats if stats is not None else [image_statistics(image) for image in images]
    out = []
    for info, image_stats, prob, distance in zip(infos, stats, probs, distances, strict=True):
        info = info if info is not None else SourceInfo(None, None)
        out.append((float(prob), assess(info, image_stats, float(distance), gate)))
    return out

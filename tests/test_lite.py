"""The LiteRT copy of a model: the same function as Keras, used by scoring, with a safe fallback."""

from __future__ import annotations

import importlib.util
import sys
import threading

import numpy as np
import pytest

from core.model import lite, load_bundle
from core.model.ensemble import build_ensemble
from core.scoring import iter_outcomes, predict_arrays, predict_with_features
from core.scoring.predict import feature_model
from helpers import FULL_RES_SAMPLES, SHIPPED_MODEL, TINY_SIZE, trained_statistics, xray_like

needs_litert = pytest.mark.skipif(importlib.util.find_spec("ai_edge_litert") is None,
                                  reason="LiteRT (ai-edge-litert) is not installed")


def _batch(count: int, seed: int = 0) -> np.ndarray:
    images = np.stack([xray_like(TINY_SIZE, TINY_SIZE, seed=seed + s) for s in range(count)])
    return images[..., None].astype(np.float32)


def _ensemble():
    """A tiny two-family ensemble with non-trivial batch-norm statistics (as after training)."""
    import keras

    from training.models import build_model

    keras.utils.set_random_seed(5)
    members = {"a": build_model("compact_cnn", TINY_SIZE),
               "b": build_model("resnet_slim", TINY_SIZE, inner_size=48, trim=0.125, standardize=True)}
    rng = np.random.default_rng(5)
    for member in members.values():
        trained_statistics(member, rng)
    return build_ensemble(members, name="tiny_lite_ensemble")


@pytest.fixture(scope="module")
def ensemble():
    return _ensemble()


@needs_litert
@pytest.mark.parametrize("count", [1, 7, 3])  # the copy resizes its input between calls
def test_the_copy_computes_what_keras_computes(ensemble, count: int) -> None:
    head = feature_model(ensemble)  # two outputs: pooled features, then the probability
    copy = lite.lite_model(head)
    assert copy is not None and copy.conversion_seconds > 0
    batch = _batch(count, seed=count)
    expected = head.predict_on_batch(batch)
    got = copy(batch)
    assert [g.shape for g in got] == [np.asarray(e).shape for e in expected]
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(g, np.asarray(e), atol=1e-5)
    assert np.ptp(got[0]) > 1e-3 and np.abs(got[1] - 0.5).max() > 1e-4  # real outputs, not constants


@needs_litert
def test_scoring_uses_one_copy_per_model(ensemble) -> None:
    images = _batch(5)[..., 0].astype(np.uint8)
    first = predict_arrays(ensemble, images)
    copy = lite.lite_model(ensemble)
    assert copy is not None and lite.lite_model(ensemble) is copy  # built once, then cached
    np.testing.assert_array_equal(first, copy(images[..., None].astype(np.float32))[0].reshape(-1))
    np.testing.assert_allclose(first, ensemble.predict_on_batch(images[..., None].astype(np.float32)).reshape(-1),
                               atol=1e-5)
    probs, features = predict_with_features(ensemble, images)
    np.testing.assert_array_equal(probs, first)
    assert features.shape[0] == 5


def test_disabled_or_failed_conversion_falls_back_to_keras(monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    images = _batch(4)[..., 0].astype(np.uint8)
    reference = _ensemble()
    expected = reference.predict_on_batch(images[..., None].astype(np.float32)).reshape(-1)

    monkeypatch.setenv(lite.DISABLE_ENV, "0")
    disabled = _ensemble()
    np.testing.assert_allclose(predict_arrays(disabled, images), expected, atol=1e-6)
    assert lite.lite_model(disabled) is None
    monkeypatch.delenv(lite.DISABLE_ENV)

    with monkeypatch.context() as patch:
        patch.setitem(sys.modules, "ai_edge_litert.interpreter", None)  # as if not installed
        missing = _ensemble()
        np.testing.assert_allclose(predict_arrays(missing, images), expected, atol=1e-6)
        assert lite.lite_model(missing) is None
    if importlib.util.find_spec("ai_edge_litert") is None:
        return  # the converter is only reached with LiteRT installed

    def broken(model):
        raise RuntimeError("converter failed")

    monkeypatch.setattr(lite, "convert", broken)
    failing = _ensemble()
    with caplog.at_level("WARNING", logger=lite.__name__):
        np.testing.assert_allclose(predict_arrays(failing, images), expected, atol=1e-6)
    assert lite.lite_model(failing) is None
    assert "could not be converted" in caplog.text and "RuntimeError" in caplog.text


@needs_litert
def test_threads_sharing_one_copy_each_get_their_own_answer(ensemble) -> None:
    copy = lite.lite_model(ensemble)
    batches = [_batch(2 + i % 3, seed=10 * i) for i in range(6)]
    expected = [copy(b)[0] for b in batches]
    results: dict[int, list[np.ndarray]] = {i: [] for i in range(len(batches))}

    def work(i: int) -> None:
        for _ in range(8):
            results[i].append(copy(batches[i])[0])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(batches))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for i, outputs in results.items():
        assert len(outputs) == 8
        for out in outputs:
            np.testing.assert_array_equal(out, expected[i])


@needs_litert
def test_the_copy_refuses_a_batch_of_the_wrong_type(ensemble) -> None:
    copy = lite.lite_model(ensemble)
    with pytest.raises(ValueError, match="float32"):
        copy(_batch(2).astype(np.float64))


@needs_litert
@pytest.mark.skipif(not (SHIPPED_MODEL.is_file() and FULL_RES_SAMPLES.is_dir()),
                    reason="needs the shipped model and the full-resolution samples")
def test_shipped_model_scores_the_same_through_its_copy() -> None:
    bundle = load_bundle(SHIPPED_MODEL)
    files = sorted(FULL_RES_SAMPLES.glob("*/*.jpeg"))
    scored = [o.probability for o in iter_outcomes(bundle, ((f.name, f) for f in files))]
    from core.preprocessing import prepare

    images = np.stack([prepare(f.read_bytes(), bundle.input_size).image for f in files])
    keras_probs = feature_model(bundle.model).predict_on_batch(images[..., None].astype(np.float32))[1].reshape(-1)
    assert lite.lite_model(feature_model(bundle.model)) is not None
    assert None not in scored
    np.testing.assert_allclose(np.array(scored), bundle.calibration.apply(keras_probs), atol=1e-5)

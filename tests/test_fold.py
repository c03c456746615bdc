"""Folding batch normalisation into convolutions: same function, fewer layers, names kept."""

from __future__ import annotations

import numpy as np
import pytest

from core.explain import ModelExplainer
from core.model.ensemble import build_ensemble
from core.model.layers import LAST_CONV_LAYER
from helpers import TINY_SIZE, trained_statistics, xray_like
from training.fold import fold_batch_norm


def _trained_looking(architecture: str, seed: int, **options):
    """A tiny member whose batch norms hold non-trivial statistics, as after training."""
    import keras

    from training.models import build_model

    keras.utils.set_random_seed(seed)
    return trained_statistics(build_model(architecture, TINY_SIZE, **options), np.random.default_rng(seed))


def _kinds(model) -> list[str]:
    return [type(layer).__name__ for layer in model.layers]


@pytest.mark.parametrize(("architecture", "options"), [
    ("resnet_slim", {"inner_size": 48, "trim": 0.125, "standardize": True}),
    ("compact_cnn", {}),
])
def test_folding_keeps_the_function_and_the_layer_names(architecture: str, options: dict) -> None:
    model = _trained_looking(architecture, 3, **options)
    folded = fold_batch_norm(model)
    batch = np.stack([xray_like(TINY_SIZE, TINY_SIZE, seed=s) for s in range(6)])[..., None].astype(np.float32)
    before, after = model.predict_on_batch(batch), folded.predict_on_batch(batch)
    logit = lambda p: np.log(p) - np.log1p(-p)  # noqa: E731 - compared as logits: probabilities saturate
    assert np.abs(logit(before) - logit(after)).max() < 1e-3
    assert np.abs(before - 0.5).max() > 1e-3  # a real output, not a constant
    # Every batch norm right after a plain convolution is gone, the rest of the graph is kept.
    names = {layer.name for layer in folded.layers}
    assert LAST_CONV_LAYER in names and names <= {layer.name for layer in model.layers}
    folded_kinds, kinds = _kinds(folded), _kinds(model)
    if architecture == "resnet_slim":
        assert "BatchNormalization" not in folded_kinds and kinds.count("BatchNormalization") == 14
    else:  # the separable blocks' norms stay: only a plain Conv2D takes one in
        assert 0 < folded_kinds.count("BatchNormalization") < kinds.count("BatchNormalization")
    assert folded_kinds.count("Conv2D") == kinds.count("Conv2D")
    # The member's own layers are untouched: it still computes what it did.
    assert np.array_equal(model.predict_on_batch(batch), before)


def test_a_folded_ensemble_scores_and_explains_like_the_unfolded_one() -> None:
    members = {"a": _trained_looking("resnet_slim", 5), "b": _trained_looking("resnet_slim", 6, inner_size=48)}
    plain = build_ensemble(members)
    folded = build_ensemble({name: fold_batch_norm(m) for name, m in members.items()})
    image = xray_like(TINY_SIZE, TINY_SIZE, seed=9)
    batch = image[None, ..., None].astype(np.float32)
    assert np.allclose(plain.predict_on_batch(batch), folded.predict_on_batch(batch), atol=1e-4)
    cams = [ModelExplainer(m).cam(image) for m in (plain, folded)]
    assert np.abs(cams[0] - cams[1]).max() < 0.02


def test_fold_refuses_a_model_it_cannot_walk() -> None:
    import keras

    class Custom(keras.Model):
        def call(self, x):
            return x

    with pytest.raises(ValueError):
        fold_batch_norm(Custom())

"""Attention maps, feature maps and their images (core.explain), on tiny models built here."""

from __future__ import annotations

import numpy as np
import pytest

from core.explain.maps import CAM_METHODS, Explainer, head_model, logit_model, spatial_layers
from core.explain.render import colormap, feature_grid, normalise_map, overlay_heatmap, resize_map
from helpers import TINY_SIZE, xray_like

SIZE = 32


def identity_model(weight: float = 1.0):
    """A model whose answer is known: logit = weight × mean(relu(image / 255)) + bias.

    Its ``last_conv`` map is the image itself, so Grad-CAM for pneumonia must peak where
    the image is brightest (weight > 0) and the normal map where it is darkest is empty.
    """
    import keras

    inputs = keras.Input((SIZE, SIZE, 1), name="image")
    x = keras.layers.Rescaling(1 / 255, name="rescale")(inputs)
    x = keras.layers.Conv2D(1, 1, use_bias=False, kernel_initializer="ones", name="conv")(x)
    x = keras.layers.Activation("relu", name="last_conv")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(1, activation="sigmoid", name="pneumonia")(x)
    model = keras.Model(inputs, outputs)
    model.get_layer("pneumonia").set_weights([np.array([[weight]], np.float32), np.array([-0.1], np.float32)])
    return model


def bright_square(corner: tuple[int, int] = (2, 20), side: int = 8) -> np.ndarray:
    image = np.full((SIZE, SIZE), 10, np.uint8)
    y, x = corner
    image[y:y + side, x:x + side] = 240
    return image


@pytest.fixture(scope="module")
def tiny_explainer(tiny_bundle):
    return Explainer(tiny_bundle.model)


def tiny_input(seed: int = 0) -> np.ndarray:
    return xray_like(TINY_SIZE, TINY_SIZE, seed)


def test_logit_model_gives_the_pre_sigmoid_score(tiny_bundle) -> None:
    model = tiny_bundle.model
    batch = np.stack([tiny_input(s) for s in range(4)])[..., None].astype(np.float32)
    probabilities = np.asarray(model(batch, training=False)).reshape(-1)
    logits = np.asarray(logit_model(model)(batch, training=False)).reshape(-1)
    np.testing.assert_allclose(1 / (1 + np.exp(-logits)), probabilities, rtol=1e-5, atol=1e-6)


def test_explaining_never_changes_the_model(tiny_bundle, tiny_explainer) -> None:
    model = tiny_bundle.model
    batch = tiny_input(3)[None, ..., None].astype(np.float32)
    before_out = np.asarray(model(batch, training=False))
    before_weights = [w.copy() for w in model.get_weights()]
    before_layers = [layer.name for layer in model.layers]
    for method in CAM_METHODS:
        for target in ("pneumonia", "normal"):
            tiny_explainer.cam(tiny_input(3), method=method, target=target)
    tiny_explainer.feature_maps(tiny_input(3), tiny_explainer.layers[0])
    assert model.get_layer("pneumonia").get_config()["activation"] == "sigmoid"
    assert [layer.name for layer in model.layers] == before_layers
    for before, after in zip(before_weights, model.get_weights(), strict=True):
        np.testing.assert_array_equal(before, after)
    np.testing.assert_array_equal(np.asarray(model(batch, training=False)), before_out)


@pytest.mark.parametrize("method", CAM_METHODS)
def test_cam_shape_range_and_default_layer(tiny_explainer, method: str) -> None:
    assert tiny_explainer.default_layer == "last_conv"
    cam = tiny_explainer.cam(tiny_input(1), method=method)
    assert cam.shape == (TINY_SIZE, TINY_SIZE)
    assert cam.dtype == np.float32
    assert np.isfinite(cam).all()
    assert cam.min() >= 0.0 and cam.max() <= 1.0


@pytest.mark.parametrize("method", CAM_METHODS)
def test_cam_peaks_where_the_evidence_is(method: str) -> None:
    explainer = Explainer(identity_model(weight=2.0), layer="last_conv")
    cam = explainer.cam(bright_square(corner=(2, 20)), method=method, target="pneumonia")
    y, x = np.unravel_index(int(np.argmax(cam)), cam.shape)
    assert 2 <= y < 10 and 20 <= x < 28
    assert cam[2:10, 20:28].mean() > 5 * cam[16:, :12].mean()
    moved = explainer.cam(bright_square(corner=(22, 3)), method=method, target="pneumonia")
    y, x = np.unravel_index(int(np.argmax(moved)), moved.shape)
    assert 22 <= y < 30 and 3 <= x < 11


def test_normal_target_is_the_opposite_evidence() -> None:
    explainer = Explainer(identity_model(weight=2.0))
    image = bright_square()
    # Brightness only ever raises this model's pneumonia score: nothing argues for normal.
    assert not explainer.cam(image, target="normal").any()
    flipped = Explainer(identity_model(weight=-2.0))
    assert flipped.cam(image, target="normal").max() == pytest.approx(1.0)
    assert not flipped.cam(image, target="pneumonia").any()


def test_grad_cam_targets_have_disjoint_support(tiny_explainer) -> None:
    image = tiny_input(5)
    pneumonia = tiny_explainer.cam(image, "Grad-CAM", target="pneumonia")
    normal = tiny_explainer.cam(image, "Grad-CAM", target="normal")
    assert pneumonia.any() or normal.any()
    assert float((pneumonia * normal).max()) < 0.05


@pytest.mark.parametrize("method", CAM_METHODS)
@pytest.mark.parametrize("target", ["pneumonia", "normal"])
def test_fast_head_gives_the_same_map_as_the_whole_network(tiny_bundle, tiny_explainer, method: str,
                                                            target: str) -> None:
    assert tiny_explainer._head is not None  # the compact CNN's head is a plain chain
    slow = Explainer(tiny_bundle.model, fast_head=False)
    for seed in (0, 7):
        image = tiny_input(seed)
        np.testing.assert_allclose(tiny_explainer.cam(image, method, target=target),
                                   slow.cam(image, method, target=target), atol=2e-4)


def test_head_model_reproduces_the_logit(tiny_bundle) -> None:
    import keras

    model = tiny_bundle.model
    head = head_model(model, "last_conv")
    batch = np.stack([tiny_input(s) for s in range(3)])[..., None].astype(np.float32)
    features = keras.Model(model.input, model.get_layer("last_conv").output)(batch, training=False)
    np.testing.assert_allclose(np.asarray(head(features, training=False)),
                               np.asarray(logit_model(model)(batch, training=False)), rtol=1e-5, atol=1e-5)
    first_conv = next(layer.name for layer in model.layers if type(layer).__name__ == "Conv2D")
    assert head_model(model, first_conv) is None  # residual branches cross that cut
    assert head_model(model, "nope") is None


def test_cam_at_an_earlier_layer(tiny_explainer) -> None:
    early = tiny_explainer.layers[2]
    cam = tiny_explainer.cam(tiny_input(2), layer=early)
    assert cam.shape == (TINY_SIZE, TINY_SIZE)


def test_cam_refuses_bad_arguments(tiny_explainer) -> None:
    with pytest.raises(ValueError, match="method"):
        tiny_explainer.cam(tiny_input(), method="Magic-CAM")
    with pytest.raises(ValueError, match="target"):
        tiny_explainer.cam(tiny_input(), target="both")
    with pytest.raises(ValueError, match="layer"):
        tiny_explainer.cam(tiny_input(), layer="nope")
    with pytest.raises(ValueError, match="preprocessed"):
        tiny_explainer.cam(np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError, match="preprocessed"):
        tiny_explainer.cam(tiny_input().astype(np.float32))


def test_logit_model_refuses_a_model_without_a_sigmoid_head() -> None:
    import keras

    inputs = keras.Input((SIZE, SIZE, 1))
    x = keras.layers.Conv2D(2, 3, name="last_conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax", name="pneumonia")(x))
    with pytest.raises(ValueError, match="sigmoid"):
        logit_model(model)


def test_spatial_layers_lists_feature_maps_only(tiny_bundle, tiny_explainer) -> None:
    names = spatial_layers(tiny_bundle.model)
    assert "last_conv" in names
    assert "rescale" not in names and "image" not in names
    assert names == tiny_explainer.layers
    assert all(len(tiny_bundle.model.get_layer(n).output.shape) == 4 for n in names)


def test_feature_maps_are_the_most_active_channels(tiny_bundle, tiny_explainer) -> None:
    import keras

    image = tiny_input(4)
    maps, channels = tiny_explainer.feature_maps(image, "last_conv", limit=8)
    full = np.asarray(keras.Model(tiny_bundle.model.input, tiny_bundle.model.get_layer("last_conv").output)(
        image[None, ..., None].astype(np.float32), training=False))[0]
    assert maps.shape == (8, full.shape[0], full.shape[1])
    means = full.mean(axis=(0, 1))
    assert channels == [int(c) for c in np.argsort(-means, kind="stable")[:8]]
    np.testing.assert_allclose(maps[0], full[..., channels[0]], rtol=1e-5)
    assert tiny_explainer.layer_shape("last_conv") == full.shape
    with pytest.raises(ValueError):
        tiny_explainer.feature_maps(image, "nope")
    with pytest.raises(ValueError):
        tiny_explainer.feature_maps(image, "last_conv", limit=0)


def test_normalise_map() -> None:
    np.testing.assert_allclose(normalise_map(np.array([[0.0, 2.0], [-1.0, 1.0]])), [[0, 1], [0, 0.5]])
    assert not normalise_map(np.zeros((3, 3))).any()
    assert not normalise_map(np.full((3, 3), -5.0)).any()
    assert not normalise_map(np.array([[np.nan, 1e-12]])).any()


def test_colormap_ends_and_shape() -> None:
    rgb = colormap(np.array([[0.0, 1.0], [0.5, 2.0]]))
    assert rgb.shape == (2, 2, 3) and rgb.dtype == np.uint8
    assert tuple(rgb[0, 0]) == (48, 18, 59) and tuple(rgb[0, 1]) == (122, 4, 3)
    assert tuple(rgb[1, 1]) == tuple(rgb[0, 1])  # clipped
    assert tuple(colormap(np.array([0.0]), "viridis")[0]) == (68, 1, 84)
    with pytest.raises(ValueError):
        colormap(np.zeros(2), "rainbow")


def test_overlay_keeps_image_size_and_blends_by_attention() -> None:
    gray = np.full((50, 80), 100, np.uint8)
    cam = np.zeros((8, 8), np.float32)
    cam[:4, :4] = 1.0
    out = overlay_heatmap(gray, cam, opacity=1.0)
    assert out.shape == (50, 80, 3) and out.dtype == np.uint8
    assert tuple(out[0, 0]) == (122, 4, 3)        # full attention: pure colour
    assert tuple(out[-1, -1]) == (100, 100, 100)  # none: the plain radiograph
    np.testing.assert_array_equal(overlay_heatmap(gray, cam, opacity=0.0), np.repeat(gray[..., None], 3, -1))
    with pytest.raises(ValueError):
        overlay_heatmap(gray, cam, opacity=1.5)
    with pytest.raises(ValueError):
        overlay_heatmap(gray.astype(np.float32), cam)


def test_resize_map() -> None:
    out = resize_map(np.eye(4, dtype=np.float32), (10, 6))
    assert out.shape == (6, 10)
    with pytest.raises(ValueError):
        resize_map(np.zeros((2, 2, 2)), (4, 4))


def test_feature_grid_layout() -> None:
    maps = np.random.default_rng(0).random((10, 5, 5)).astype(np.float32)
    maps[3] = 0.0  # a silent channel must not divide by zero
    grid = feature_grid(maps, columns=4, tile=20, gap=2)
    assert grid.shape == (3 * 20 + 2 * 2, 4 * 20 + 3 * 2, 3)
    assert (grid[-20:, -20:] == 255).all()  # the unused last cells stay blank
    assert (grid[:20, 20:22] == 255).all()  # the gap between tiles
    with pytest.raises(ValueError):
        feature_grid(np.zeros((0, 4, 4)))


def test_warm_up_runs(tiny_explainer) -> None:
    tiny_explainer.warm_up(CAM_METHODS)


def test_explainer_refuses_a_model_without_feature_maps() -> None:
    import keras

    inputs = keras.Input((8,))
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid", name="pneumonia")(inputs))
    with pytest.raises(ValueError, match="feature maps"):
        Explainer(model)

"""Class activation maps and feature maps of one network.

The maps come from tf-keras-vis (Grad-CAM, Grad-CAM++, LayerCAM). They show where the
model's attention was, which is not the same as where a lesion is: they are a check on
the model, not a finding.

The shipped model is never modified. :class:`Explainer` builds a second Keras model
that shares the trained layers and ends in the *pre-sigmoid* logit, and hands that to
tf-keras-vis with ``clone=False`` and no model modifier, so nothing is cloned,
replaced or re-activated in place. For the default layer it goes further and runs
tf-keras-vis on a copy of the small head after ``last_conv`` (see :func:`head_model`).

TensorFlow and tf-keras-vis are imported inside functions: importing them takes
seconds, and the dashboard's first page must render before that cost is paid.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from core.explain.render import normalise_map, resize_map
from core.model.layers import LAST_CONV_LAYER, OUTPUT_LAYER

CAM_METHODS: tuple[str, ...] = ("Grad-CAM", "Grad-CAM++", "LayerCAM")
TARGETS: tuple[str, ...] = ("pneumonia", "normal")
DEFAULT_LAYER = LAST_CONV_LAYER


def spatial_layers(model: Any) -> list[str]:
    """Names of the model's top-level layers whose output is an image-like (N, H, W, C) map.

    Input and rescaling layers are left out: they are the picture itself.
    """
    names = []
    for layer in model.layers:
        shape = getattr(layer, "output", None)
        shape = getattr(shape, "shape", None)
        if shape is None or len(shape) != 4:
            continue
        kind = type(layer).__name__
        if kind in ("InputLayer", "Rescaling", "Normalization", "Concatenate"):
            continue
        names.append(layer.name)
    return names


def logit_model(model: Any, output_layer: str = OUTPUT_LAYER) -> Any:
    """A new Keras model sharing ``model``'s layers whose output is the pre-sigmoid score.

    Why the logit: the sigmoid flattens out for confident predictions, so the gradient of
    the probability shrinks by p·(1−p) and drowns in float32 noise exactly when the model
    is most sure; the logit's gradient has the same direction without that squashing,
    and Grad-CAM++'s formulas assume a pre-activation score. The final Dense layer is
    copied with a linear activation and the trained weights; the original layer, and so
    the cached model, is untouched.
    """
    import keras

    try:
        head = model.get_layer(output_layer)
    except ValueError:
        head = model.layers[-1]
    config = head.get_config()
    if not isinstance(head, keras.layers.Dense) or config.get("activation") != "sigmoid":
        raise ValueError(f"expected the model to end in a Dense layer with a sigmoid, found {type(head).__name__}")
    config.update(activation="linear", name=f"{head.name}_logit")
    linear = keras.layers.Dense.from_config(config)
    logit = linear(head.input)
    linear.set_weights(head.get_weights())
    return keras.Model(model.input, logit, name=f"{model.name}_logit")


def _linear_copy(layer: Any) -> Any:
    """A new layer with ``layer``'s configuration and weights; a sigmoid Dense comes back linear."""
    import keras

    config = layer.get_config()
    if isinstance(layer, keras.layers.Dense) and config.get("activation") == "sigmoid":
        config["activation"] = "linear"
    config["name"] = f"{layer.name}_copy"
    return type(layer).from_config(config)


def head_model(model: Any, layer: str) -> Any | None:
    """A small model from ``layer``'s feature maps to the logit, or ``None`` if the graph does not allow it.

    When the layers after ``layer`` form a plain chain to the output (pooling, dropout,
    the Dense head), the gradient of the logit with respect to those feature maps only
    involves the chain. Running tf-keras-vis on this copy of the chain, fed with
    features computed without a gradient tape, gives the same map as running it on the
    whole network, several times faster. The chain's layers are fresh copies with the
    trained weights, so the shared model gains no new graph nodes.
    """
    import keras

    layers = model.layers
    names = [item.name for item in layers]
    if layer not in names:
        return None
    chain = layers[names.index(layer) + 1:]
    if not chain or chain[-1].output is not model.outputs[0]:
        return None
    previous = layers[names.index(layer)]
    for item in chain:
        try:
            if item.input is not previous.output:
                return None
        except (AttributeError, ValueError):  # a layer with several inputs or uses
            return None
        previous = item
    if chain[-1].get_config().get("activation") != "sigmoid":
        return None
    features = keras.Input(tuple(layers[names.index(layer)].output.shape[1:]), name="features")
    # An identity layer carrying the original name: tf-keras-vis takes the CAM at its output.
    x = keras.layers.Activation("linear", name=layer)(features)
    for item in chain:
        copy = _linear_copy(item)
        x = copy(x)
        copy.set_weights(item.get_weights())
    return keras.Model(features, x, name=f"{model.name}_head")


class Explainer:
    """Attention and feature maps for one loaded model, built once and reused.

    Safe to share between threads: the helper models are built under a lock, and calling
    a Keras model does not change it.
    """

    def __init__(self, model: Any, layer: str = DEFAULT_LAYER, fast_head: bool = True, trim_pixels: int = 0) -> None:
        self.model = model
        self.input_size = int(model.input_shape[1])
        if not 0 <= 2 * trim_pixels < self.input_size:
            raise ValueError("trim_pixels must leave part of the image")
        # A member that crops a border before looking maps only the inner square.
        self.trim_pixels = int(trim_pixels)
        names = spatial_layers(model)
        if not names:
            raise ValueError("the model has no convolutional feature maps to explain")
        self.layers = names
        self.default_layer = layer if layer in names else names[-1]
        self._logit_model = logit_model(model)
        # Maps at the default layer come from a copy of the network's head (see head_model);
        # other layers, or graphs where that is impossible, go through the whole network.
        self._head = head_model(model, self.default_layer) if fast_head else None
        self._visualisers: dict[tuple[str, bool], Any] = {}
        self._feature_models: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _visualiser(self, method: str, on_head: bool) -> Any:
        if method not in CAM_METHODS:
            raise ValueError(f"unknown method {method!r}; choose one of {', '.join(CAM_METHODS)}")
        with self._lock:
            if (method, on_head) not in self._visualisers:
                from tf_keras_vis.gradcam import Gradcam
                from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus
                from tf_keras_vis.layercam import Layercam

                cls = {"Grad-CAM": Gradcam, "Grad-CAM++": GradcamPlusPlus, "LayerCAM": Layercam}[method]
                target = self._head if on_head else self._logit_model
                # clone=False: both models are our own wrappers, nothing to protect.
                self._visualisers[(method, on_head)] = cls(target, model_modifier=None, clone=False)
            return self._visualisers[(method, on_head)]

    def _features(self, batch: np.ndarray, layer: str) -> np.ndarray:
        with self._lock:
            if layer not in self._feature_models:
                import keras

                self._feature_models[layer] = keras.Model(self.model.input, self.model.get_layer(layer).output)
            extractor = self._feature_models[layer]
        return np.asarray(extractor(batch, training=False), dtype=np.float32)

    def _check_image(self, image: np.ndarray) -> np.ndarray:
        size = self.input_size
        if image.shape != (size, size) or image.dtype != np.uint8:
            raise ValueError(f"expected a preprocessed ({size}, {size}) uint8 image")
        return image[np.newaxis, ..., np.newaxis].astype(np.float32)

    def cam(self, image: np.ndarray, method: str = "Grad-CAM", layer: str | None = None,
            target: str = "pneumonia") -> np.ndarray:
        """The class activation map of a preprocessed image, ``(S, S)`` float32 in [0, 1].

        ``target="pneumonia"`` shows what raised the pneumonia score, ``"normal"`` what
        lowered it. All zeros means no region pushed the score that way.
        """
        if target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}")
        layer = layer or self.default_layer
        if layer not in self.layers:
            raise ValueError(f"unknown layer {layer!r}")
        batch = self._check_image(image)
        sign = 1.0 if target == "pneumonia" else -1.0
        on_head = layer == self.default_layer and self._head is not None
        seed = self._features(batch, layer) if on_head else batch
        cam = self._visualiser(method, on_head)(
            lambda output: sign * output[:, 0],
            seed,
            penultimate_layer=layer,
            # The named layer is used as is: seeking would step back to a Conv layer
            # before the batch norm and ReLU that produce the features the head reads.
            seek_penultimate_conv_layer=False,
            expand_cam=False,
            normalize_cam=False,
        )
        cam = np.asarray(cam, dtype=np.float32)[0]
        inner = self.input_size - 2 * self.trim_pixels
        cam = resize_map(cam, (inner, inner))
        if self.trim_pixels:
            cam = np.pad(cam, self.trim_pixels)
        return normalise_map(cam)

    def logit(self, image: np.ndarray) -> float:
        """The pre-sigmoid score of a preprocessed image (positive leans to pneumonia)."""
        return float(np.asarray(self._logit_model(self._check_image(image), training=False)).reshape(-1)[0])

    def feature_maps(self, image: np.ndarray, layer: str, limit: int = 32) -> tuple[np.ndarray, list[int]]:
        """The ``limit`` most active channels of ``layer`` as ``(k, h, w)`` and their channel numbers.

        Channels are ranked by mean activation, strongest first, since most channels of
        a trained layer are near-silent for any one image.
        """
        if layer not in self.layers:
            raise ValueError(f"unknown layer {layer!r}")
        if limit < 1:
            raise ValueError("limit must be at least 1")
        out = self._features(self._check_image(image), layer)[0]
        strength = out.reshape(-1, out.shape[-1]).mean(axis=0)
        order = [int(i) for i in np.argsort(-strength, kind="stable")[:limit]]
        return np.moveaxis(out[..., order], -1, 0), order

    def layer_shape(self, layer: str) -> tuple[int, int, int]:
        """(height, width, channels) of a layer's output."""
        shape = self.model.get_layer(layer).output.shape
        return int(shape[1]), int(shape[2]), int(shape[3])

    def warm_up(self, methods: Sequence[str] = ("Grad-CAM",)) -> None:
        """Trace the gradient graphs once so the first real request is not the slow one."""
        blank = np.zeros((self.input_size, self.input_size), dtype=np.uint8)
        for method in methods:
            self.cam(blank, method)


class ModelExplainer:
    """Attention maps for a single network or an ensemble.

    An ensemble's map is the mean of its members' maps at their default layers, each
    normalised first so every member has the same say (the output is their mean logit).
    One member, and any of its layers, can be explained on its own.
    """

    def __init__(self, model: Any, fast_head: bool = True) -> None:
        from core.model.ensemble import member_views

        views = member_views(model)
        self.model = model
        self.input_size = int(model.input_shape[1])
        self.members: dict[str, Explainer] = {
            view.name: Explainer(view.model, fast_head=fast_head, trim_pixels=view.trim_pixels) for view in views
        }
        self.is_ensemble = len(views) > 1

    def member(self, name: str | None = None) -> Explainer:
        """One member's explainer (the first when ``name`` is None)."""
        if name is None:
            return next(iter(self.members.values()))
        if name not in self.members:
            raise ValueError(f"unknown member {name!r}; choose one of {', '.join(self.members)}")
        return self.members[name]

    def cam(self, image: np.ndarray, method: str = "Grad-CAM", target: str = "pneumonia",
            member: str | None = None, layer: str | None = None) -> np.ndarray:
        """The map of the whole model (members averaged) or of one member and layer, ``(S, S)`` in [0, 1]."""
        if member is not None or not self.is_ensemble:
            return self.member(member).cam(image, method=method, layer=layer, target=target)
        if layer is not None:
            raise ValueError("choose a member to explain a particular layer")
        maps = [explainer.cam(image, method=method, target=target) for explainer in self.members.values()]
        return normalise_map(np.mean(maps, axis=0))

    def warm_up(self, methods: Sequence[str] = ("Grad-CAM",)) -> None:
        """Trace every member's gradient graphs once."""
        for explainer in self.members.values():
            explainer.warm_up(methods)

"""Fold inference-mode batch normalisation into the convolution before it.

At inference a BatchNormalization layer is a fixed per-channel scale and shift, so after a
Conv2D it can live in that convolution's kernel and bias: ``k = gamma / sqrt(var + eps)``,
``W' = W k`` and ``b' = (b - mean) k + beta``. The function is unchanged up to float
rounding, and the folded model skips one full pass over each normalised feature map (compare
``python bench/bench_inference.py --model`` on a folded and an unfolded build). Built once,
when the ensemble is combined; the trained member files keep their layers.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _inbound(layer: Any) -> list[Any]:
    """The symbolic tensors ``layer`` was called on (every member layer is called once)."""
    tensors = layer.input
    return list(tensors) if isinstance(tensors, (list, tuple)) else [tensors]


def _foldable_pairs(model: Any) -> dict[str, str]:
    """``{conv name: batch-norm name}`` for each BatchNormalization fed only by a plain Conv2D."""
    import keras

    producers = {id(layer.output): layer for layer in model.layers}
    uses: dict[int, int] = {}
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        for tensor in _inbound(layer):
            uses[id(tensor)] = uses.get(id(tensor), 0) + 1
    pairs = {}
    for layer in model.layers:
        if type(layer) is not keras.layers.BatchNormalization:
            continue
        (source,) = _inbound(layer)
        conv = producers.get(id(source))
        axis = layer.get_config()["axis"]
        if (type(conv) is keras.layers.Conv2D and uses.get(id(source)) == 1
                and axis in (-1, 3, [-1], [3]) and conv.get_config()["data_format"] == "channels_last"):
            pairs[conv.name] = layer.name
    return pairs


def folded_weights(conv: Any, norm: Any) -> tuple[np.ndarray, np.ndarray]:
    """Kernel and bias of ``conv`` with the inference-mode ``norm`` after it folded in."""
    kernel = np.asarray(conv.kernel, dtype=np.float64)
    channels = kernel.shape[-1]
    bias = np.asarray(conv.bias, dtype=np.float64) if conv.use_bias else np.zeros(channels)
    gamma = np.asarray(norm.gamma, dtype=np.float64) if norm.scale else np.ones(channels)
    beta = np.asarray(norm.beta, dtype=np.float64) if norm.center else np.zeros(channels)
    mean = np.asarray(norm.moving_mean, dtype=np.float64)
    variance = np.asarray(norm.moving_variance, dtype=np.float64)
    scale = gamma / np.sqrt(variance + norm.epsilon)
    return (kernel * scale).astype(np.float32), ((bias - mean) * scale + beta).astype(np.float32)


def fold_batch_norm(model: Any) -> Any:
    """A new functional model computing ``model``'s inference function without the foldable batch norms.

    Every other layer is rebuilt from its config with its weights copied, and keeps its name
    (a folded convolution keeps the convolution's), so Grad-CAM's layer and the activation
    maps' layer names still resolve. Batch norms not fed by a plain Conv2D are kept as they are.
    Raises ``ValueError`` for a model that is not a single-input functional graph.

    The graph is walked here rather than through ``keras.models.clone_model``: that maps layers
    one to one and cannot drop one, and an Identity standing in for each norm would show on the
    activation-map page as a second copy of its convolution's maps.
    """
    import keras

    if not isinstance(model, keras.Model) or len(getattr(model, "inputs", None) or ()) != 1:
        raise ValueError("expected a single-input functional Keras model")
    pairs = _foldable_pairs(model)
    folded_norms = set(pairs.values())
    image = keras.Input(shape=model.input_shape[1:], name=model.inputs[0].name)
    tensors = {id(model.inputs[0]): image}
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        args = [tensors[id(t)] for t in _inbound(layer)]
        if layer.name in folded_norms:
            tensors[id(layer.output)] = args[0]  # its scale and shift now live in the convolution
            continue
        config = layer.get_config()
        if layer.name in pairs:
            config["use_bias"] = True
            weights = list(folded_weights(layer, model.get_layer(pairs[layer.name])))
        else:
            weights = layer.get_weights()
        clone = type(layer).from_config(config)
        tensors[id(layer.output)] = clone(args if len(args) > 1 else args[0])
        clone.set_weights(weights)
    return keras.Model(image, tensors[id(model.output)], name=model.name)

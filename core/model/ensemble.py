"""An ensemble of independently trained networks saved as one ordinary Keras model.

Each member becomes a branch from the shared input to its pooled features; a copy of
its Dense head gives its logit; the ensemble's output is the sigmoid of the members'
mean logit (averaging logits, not probabilities, keeps one over-confident member from
dominating and equals a geometric mean of the odds). Only stock Keras layers are used,
so the file loads in safe mode like any other model, and the CLI, the worklist, the gate
and the metadata need nothing new.

Layer names: branch ``<member>``, head ``<member>_logit``, ``logit`` (the mean) and
``pneumonia`` (the output). The gate reads the members' pooled features side by side
(:func:`feature_tensors`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.model.layers import OUTPUT_LAYER

LOGIT_LAYER = "logit"
LOGIT_SUFFIX = "_logit"


@dataclass(frozen=True)
class MemberView:
    """One member of a loaded ensemble as a standalone model (sharing the ensemble's layers)."""

    name: str
    model: Any  # input -> P(pneumonia) through this member only
    trim_pixels: int  # border cropped inside the member before it looks (its maps cover the rest)


def build_ensemble(members: dict[str, Any], name: str = "pneumonia_ensemble") -> Any:
    """Combine trained single-output models (same input shape) into one model.

    Each member must end in a sigmoid Dense layer named ``pneumonia`` fed by a global
    average pooling (dropout in between is dropped: it is the identity at inference).
    """
    import keras

    if len(members) < 2:
        raise ValueError("an ensemble needs at least two members")
    shapes = {tuple(m.input_shape) for m in members.values()}
    if len(shapes) != 1:
        raise ValueError(f"members disagree on the input shape: {sorted(shapes)}")
    inputs = keras.Input(shape=next(iter(shapes))[1:], name="image")
    logits = []
    for member_name, member in members.items():
        head = member.get_layer(OUTPUT_LAYER)
        pools = [layer for layer in member.layers if isinstance(layer, keras.layers.GlobalAveragePooling2D)]
        if not pools or head.get_config().get("activation") != "sigmoid":
            raise ValueError(f"member {member_name} must end in pooling and a sigmoid Dense '{OUTPUT_LAYER}'")
        branch = keras.Model(member.input, pools[-1].output, name=member_name)
        pooled = branch(inputs)
        config = head.get_config()
        config.update(activation="linear", name=f"{member_name}{LOGIT_SUFFIX}")
        dense = keras.layers.Dense.from_config(config)
        logits.append(dense(pooled))
        dense.set_weights(head.get_weights())
    mean_logit = keras.layers.Average(name=LOGIT_LAYER)(logits)
    output = keras.layers.Activation("sigmoid", name=OUTPUT_LAYER)(mean_logit)
    return keras.Model(inputs, output, name=name)


def is_ensemble(model: Any) -> bool:
    """True when ``model`` was built by :func:`build_ensemble`."""
    return any(layer.name == LOGIT_LAYER for layer in model.layers)


def branch_names(model: Any) -> list[str]:
    """The members' branch names of an ensemble, in order."""
    return [layer.name[: -len(LOGIT_SUFFIX)] for layer in model.layers
            if layer.name.endswith(LOGIT_SUFFIX) and layer.name != LOGIT_LAYER]


def feature_tensors(model: Any) -> list[Any]:
    """The symbolic pooled-feature outputs of each member inside an ensemble's graph.

    Read as the input of each member's head: a nested model's own ``.output`` belongs to
    its inner graph, while a plain layer's ``.input`` is the tensor it was called on here.
    """
    return [model.get_layer(f"{name}{LOGIT_SUFFIX}").input for name in branch_names(model)]


def member_views(model: Any) -> list[MemberView]:
    """Each member of an ensemble as a standalone model; a plain model is its own single member."""
    import keras

    if not is_ensemble(model):
        return [MemberView(model.name, model, _trim_pixels(model))]
    views = []
    for member_name in branch_names(model):
        layer = model.get_layer(f"{member_name}{LOGIT_SUFFIX}")
        branch = model.get_layer(member_name)
        config = layer.get_config()
        config.update(activation="sigmoid", name=OUTPUT_LAYER)
        head = keras.layers.Dense.from_config(config)
        output = head(branch.output)
        head.set_weights(layer.get_weights())
        views.append(MemberView(member_name, keras.Model(branch.input, output, name=member_name),
                                _trim_pixels(branch)))
    return views


def _trim_pixels(model: Any) -> int:
    """Pixels cropped from each side by a ``trim`` Cropping2D layer, 0 when there is none."""
    for layer in model.layers:
        if layer.name == "trim":
            cropping = layer.get_config()["cropping"]
            return int(cropping[0][0])
    return 0

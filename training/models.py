"""Model architectures: the compact default CNN, comparison baselines and Keras backbones.

Every model takes a single-channel uint8-range image of ``size``×``size`` and rescales
it itself, so the saved file carries its own preprocessing and the app cannot disagree
with training about it.
"""

from __future__ import annotations

import keras
from keras import layers

from core.model.layers import LAST_CONV_LAYER, OUTPUT_LAYER

ARCHITECTURES = ("compact_cnn", "resnet_slim", "plain_cnn", "four_block_cnn", "dense_baseline")
BACKBONES = ("mobilenetv2", "efficientnetb0", "densenet121", "xception", "inceptionresnetv2")
# Keras Applications refuse inputs below these sides (their stems reduce the image that far).
MIN_BACKBONE_SIZE = {"mobilenetv2": 32, "efficientnetb0": 32, "densenet121": 32, "xception": 71,
                     "inceptionresnetv2": 75}


def _input(size: int) -> keras.KerasTensor:
    return keras.Input(shape=(size, size, 1), name="image")


def _front(inputs: keras.KerasTensor, inner_size: int | None, trim: float,
           standardize: bool = False) -> keras.KerasTensor:
    """Rescale to 0-1, then optionally trim a border and resize, all inside the model.

    Border trimming (drop ``trim`` of each side, then resize) removes burned-in labels and
    collimator edges; a smaller ``inner_size`` makes an ensemble member see the film at
    another scale. Both live in the saved file, so every member takes the same input.
    ``standardize`` then gives each film zero mean and unit spread (a LayerNormalization over
    the whole image without learned scale or shift): a film exposed darker or with less
    contrast reaches the network as the same input, so its exposure cannot move the score.
    """
    x = layers.Rescaling(1.0 / 255, name="rescale")(inputs)
    size = inputs.shape[1]
    if trim:
        pixels = int(round(size * trim))
        x = layers.Cropping2D(pixels, name="trim")(x)
    if inner_size and (trim or inner_size != size):
        x = layers.Resizing(inner_size, inner_size, name="resize")(x)
    if standardize:
        x = layers.LayerNormalization(axis=(1, 2, 3), center=False, scale=False, epsilon=1e-4,
                                      name="standardize")(x)
    return x


def _head(inputs: keras.KerasTensor, x: keras.KerasTensor, bn: dict, reg, dropout: float, name: str) -> keras.Model:
    """Batch norm, ReLU named ``last_conv`` (Grad-CAM's layer), pooling, dropout, the sigmoid output."""
    x = layers.BatchNormalization(**bn)(x)
    x = layers.Activation("relu", name=LAST_CONV_LAYER)(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(1, activation="sigmoid", name=OUTPUT_LAYER, kernel_regularizer=reg)(x)
    return keras.Model(inputs, outputs, name=name)


def compact_cnn(size: int, dropout: float = 0.4, weight_decay: float = 1e-4,
                inner_size: int | None = None, trim: float = 0.0, standardize: bool = False) -> keras.Model:
    """The default model: a small separable-convolution network with batch norm.

    Depthwise-separable blocks with residual shortcuts (in the style of the Keras
    "image classification from scratch" example) keep it well under 1 M parameters, so
    it runs quickly on clinic CPUs, while L2 and dropout curb memorising one centre.
    """
    reg = keras.regularizers.L2(weight_decay)
    # About 130 steps per epoch: Keras' default momentum (0.99) leaves the moving statistics
    # far behind the weights for several epochs, and evaluation-mode outputs collapse.
    bn = {"momentum": 0.9}
    inputs = _input(size)
    x = _front(inputs, inner_size, trim, standardize)
    x = layers.Conv2D(24, 3, strides=2, padding="same", use_bias=False, kernel_regularizer=reg)(x)
    x = layers.BatchNormalization(**bn)(x)
    x = layers.Activation("relu")(x)
    x = layers.Conv2D(32, 3, padding="same", use_bias=False, kernel_regularizer=reg)(x)
    x = layers.BatchNormalization(**bn)(x)
    x = layers.Activation("relu")(x)
    # Pool early: full-resolution layers dominate the cost on a CPU.
    x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
    previous = x
    for filters in (64, 128, 192):
        x = layers.Activation("relu")(x) if filters != 64 else x
        x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False,
                                   depthwise_regularizer=reg, pointwise_regularizer=reg)(x)
        x = layers.BatchNormalization(**bn)(x)
        x = layers.Activation("relu")(x)
        x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False,
                                   depthwise_regularizer=reg, pointwise_regularizer=reg)(x)
        x = layers.BatchNormalization(**bn)(x)
        x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
        residual = layers.Conv2D(filters, 1, strides=2, padding="same", kernel_regularizer=reg)(previous)
        x = layers.add([x, residual])
        previous = x
    x = layers.SeparableConv2D(256, 3, padding="same", use_bias=False,
                               depthwise_regularizer=reg, pointwise_regularizer=reg)(x)
    return _head(inputs, x, bn, reg, dropout, "compact_cnn")


def resnet_slim(size: int, dropout: float = 0.3, weight_decay: float = 1e-4,
                inner_size: int | None = None, trim: float = 0.0, standardize: bool = False) -> keras.Model:
    """A slim ResNet-style network: plain 3x3 residual blocks, another family from the default.

    Full convolutions with identity shortcuts (He et al., 2016) instead of the separable
    blocks of ``compact_cnn``, so an ensemble of both makes less correlated mistakes.
    """
    reg = keras.regularizers.L2(weight_decay)
    bn = {"momentum": 0.9}

    def conv_bn(x, filters, strides=1, relu=True):
        x = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False, kernel_regularizer=reg)(x)
        x = layers.BatchNormalization(**bn)(x)
        return layers.Activation("relu")(x) if relu else x

    inputs = _input(size)
    x = _front(inputs, inner_size, trim, standardize)
    x = conv_bn(x, 24, strides=2)
    x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
    for i, filters in enumerate((32, 64, 96, 144)):
        strides = 1 if i == 0 else 2
        shortcut = x
        y = conv_bn(x, filters, strides=strides)
        y = conv_bn(y, filters, relu=False)
        if strides != 1 or shortcut.shape[-1] != filters:
            shortcut = layers.Conv2D(filters, 1, strides=strides, use_bias=False, kernel_regularizer=reg)(shortcut)
            shortcut = layers.BatchNormalization(**bn)(shortcut)
        x = layers.Activation("relu")(layers.add([y, shortcut]))
    x = layers.Conv2D(192, 1, use_bias=False, kernel_regularizer=reg)(x)
    return _head(inputs, x, bn, reg, dropout, "resnet_slim")


def plain_cnn(size: int) -> keras.Model:
    """A conventional Conv-Pool stack without batch norm, dropout or weight decay."""
    inputs = _input(size)
    x = layers.Rescaling(1.0 / 255, name="rescale")(inputs)
    for i, filters in enumerate((16, 32, 64, 96)):
        x = layers.Conv2D(filters, 3, strides=2 if i == 0 else 1, padding="same", activation="relu",
                          name=LAST_CONV_LAYER if i == 3 else None)(x)
        x = layers.MaxPooling2D(2)(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(64, activation="relu")(x)
    outputs = layers.Dense(1, activation="sigmoid", name=OUTPUT_LAYER)(x)
    return keras.Model(inputs, outputs, name="plain_cnn")


def four_block_cnn(size: int) -> keras.Model:
    """The popular 150-px tutorial network: four Conv-Pool blocks (32-64-128-128) and Dense(512).

    Written as that approach describes it (no batch norm, dropout before the dense layer),
    so the comparison row measures it rather than an improved version of it.
    """
    inputs = _input(size)
    x = layers.Rescaling(1.0 / 255, name="rescale")(inputs)
    for i, filters in enumerate((32, 64, 128, 128)):
        x = layers.Conv2D(filters, 3, activation="relu", name=LAST_CONV_LAYER if i == 3 else None)(x)
        x = layers.MaxPooling2D(2)(x)
    x = layers.Flatten()(x)
    x = layers.Dropout(0.5)(x)
    x = layers.Dense(512, activation="relu")(x)
    outputs = layers.Dense(1, activation="sigmoid", name=OUTPUT_LAYER)(x)
    return keras.Model(inputs, outputs, name="four_block_cnn")


def dense_baseline(size: int) -> keras.Model:
    """A fully connected baseline on a downsampled image: the floor a CNN must beat."""
    inputs = _input(size)
    x = layers.Rescaling(1.0 / 255, name="rescale")(inputs)
    x = layers.AveragePooling2D(4)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(128, activation="relu")(x)
    x = layers.Dropout(0.3)(x)
    outputs = layers.Dense(1, activation="sigmoid", name=OUTPUT_LAYER)(x)
    return keras.Model(inputs, outputs, name="dense_baseline")


def backbone_model(name: str, size: int, weights: str | None = None, dropout: float = 0.3) -> keras.Model:
    """A Keras Applications backbone with a binary head.

    ``weights="imagenet"`` needs internet the first time (Keras downloads the file);
    the default ``None`` trains from scratch and never touches the network. The gray
    channel is repeated to three and scaled the way each backbone expects, inside
    the model.
    """
    name = name.lower()
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of {BACKBONES}")
    if weights not in (None, "imagenet"):
        raise ValueError("weights must be None or 'imagenet'")
    if size < MIN_BACKBONE_SIZE[name]:
        raise ValueError(f"{name} needs an input of at least {MIN_BACKBONE_SIZE[name]} px, got {size}")
    inputs = _input(size)
    rgb = layers.Concatenate(name="gray_to_rgb")([inputs, inputs, inputs])
    if name == "mobilenetv2":
        x = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="rescale")(rgb)
        base = keras.applications.MobileNetV2(include_top=False, weights=weights, input_shape=(size, size, 3))
    elif name == "efficientnetb0":
        x = rgb  # EfficientNet rescales inside the network itself.
        base = keras.applications.EfficientNetB0(include_top=False, weights=weights, input_shape=(size, size, 3))
    elif name == "densenet121":
        x = layers.Rescaling(1.0 / 255, name="rescale")(rgb)
        x = layers.Normalization(mean=[0.485, 0.456, 0.406], variance=[0.229**2, 0.224**2, 0.225**2])(x)
        base = keras.applications.DenseNet121(include_top=False, weights=weights, input_shape=(size, size, 3))
    else:
        # Xception and InceptionResNetV2 both expect inputs scaled to [-1, 1].
        x = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="rescale")(rgb)
        application = (keras.applications.Xception if name == "xception"
                       else keras.applications.InceptionResNetV2)
        base = application(include_top=False, weights=weights, input_shape=(size, size, 3))
    features = base(x)
    x = layers.Activation("linear", name=LAST_CONV_LAYER)(features)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(1, activation="sigmoid", name=OUTPUT_LAYER)(x)
    return keras.Model(inputs, outputs, name=name)


def build_model(architecture: str, size: int, weights: str | None = None,
                inner_size: int | None = None, trim: float = 0.0, standardize: bool = False) -> keras.Model:
    """Build a model by name: one of ``ARCHITECTURES`` or ``BACKBONES``.

    ``inner_size``, ``trim`` (border trimming inside the model) and ``standardize`` (each film
    to zero mean, unit spread) apply to the two ensemble families, ``compact_cnn`` and ``resnet_slim``.
    """
    if (inner_size or trim or standardize) and architecture not in ("compact_cnn", "resnet_slim"):
        raise ValueError("inner_size, trim and standardize are supported by compact_cnn and resnet_slim only")
    if architecture == "compact_cnn":
        return compact_cnn(size, inner_size=inner_size, trim=trim, standardize=standardize)
    if architecture == "resnet_slim":
        return resnet_slim(size, inner_size=inner_size, trim=trim, standardize=standardize)
    if architecture == "plain_cnn":
        return plain_cnn(size)
    if architecture == "four_block_cnn":
        return four_block_cnn(size)
    if architecture == "dense_baseline":
        return dense_baseline(size)
    if architecture in BACKBONES:
        return backbone_model(architecture, size, weights)
    raise ValueError(f"unknown architecture {architecture!r}; choose one of {ARCHITECTURES + BACKBONES}")

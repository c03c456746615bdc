"""tf.data input pipelines for training and validation.

Images are decoded by :func:`core.imaging.prepare_image`, the very function the app and
the CLI use, so training sees exactly the preprocessing that inference applies.
"""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from keras import layers

from core.imaging import prepare_image


def _loader(size: int):
    def load(path: bytes) -> np.ndarray:
        return prepare_image(path.decode("utf-8"), size)[..., np.newaxis]

    return load


def augmenter(seed: int) -> keras.Sequential:
    """Random geometric and photometric changes that a real radiograph could show.

    No horizontal flips: chest X-rays have a fixed left-right anatomy (heart on the
    left, stomach bubble below it, side markers), and a mirrored film is not a plausible
    input, so flipping would teach the model to ignore real cues.
    """
    return keras.Sequential(
        [
            layers.RandomRotation(0.03, fill_mode="constant", seed=seed),  # about ±11°
            layers.RandomZoom(0.12, fill_mode="constant", seed=seed + 1),
            layers.RandomTranslation(0.06, 0.06, fill_mode="constant", seed=seed + 2),
            layers.RandomBrightness(0.15, value_range=(0, 255), seed=seed + 3),
            layers.RandomContrast(0.25, seed=seed + 4),
        ],
        name="augment",
    )


def make_dataset(
    frame: pd.DataFrame,
    size: int,
    batch_size: int,
    training: bool,
    seed: int,
) -> tf.data.Dataset:
    """Build a batched dataset of ``(image, label)`` from manifest rows.

    Decoded images are cached in memory after the first pass; augmentation runs on
    batches for training only.
    """
    if frame.empty:
        raise ValueError("cannot build a dataset from no images")
    paths = frame["file"].astype(str).to_numpy()
    labels = (frame["label"] == "PNEUMONIA").astype("float32").to_numpy()
    load = _loader(size)

    def decode(path: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        image = tf.numpy_function(load, [path], tf.uint8, stateful=False)
        image.set_shape((size, size, 1))
        return image, label

    ds = tf.data.Dataset.from_tensor_slices((paths, labels))
    ds = ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).cache()
    if training:
        ds = ds.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    ds = ds.map(lambda x, y: (tf.cast(x, tf.float32), y), num_parallel_calls=tf.data.AUTOTUNE)
    if training:
        augment = augmenter(seed)
        ds = ds.map(
            lambda x, y: (tf.clip_by_value(augment(x, training=True), 0.0, 255.0), y),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    return ds.prefetch(tf.data.AUTOTUNE)


def class_weights(frame: pd.DataFrame) -> dict[int, float]:
    """Inverse-frequency class weights so NORMAL and PNEUMONIA count equally in the loss."""
    positives = int((frame["label"] == "PNEUMONIA").sum())
    negatives = len(frame) - positives
    if positives == 0 or negatives == 0:
        raise ValueError("training data needs both NORMAL and PNEUMONIA images")
    total = positives + negatives
    return {0: total / (2.0 * negatives), 1: total / (2.0 * positives)}

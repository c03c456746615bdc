"""tf.data input pipelines for training and validation.

Images are decoded by :func:`core.preprocessing.prepare_image`, the very function the app and
the CLI use, so training sees exactly the preprocessing that inference applies.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import tensorflow as tf

from core.inputs.read import read_bytes
from core.preprocessing import prepare_image
from training.augment import RECIPES, Recipe, augmenter


def _loader(size: int):
    def load(path: bytes) -> np.ndarray:
        return prepare_image(path.decode("utf-8"), size)[..., np.newaxis]

    return load


def _loader_with_photo(size: int, seed: int):
    """Film and the input made of one phone photo of it, as two channels (see ``Recipe.photo_share``).

    Each film's photo is drawn from a generator seeded by ``seed`` and the file's name, so it
    does not depend on the order the films are decoded in.
    """
    from training.field_capture import photographed_input

    def load(path: bytes) -> np.ndarray:
        name = path.decode("utf-8")
        data = read_bytes(name)
        rng = np.random.default_rng([seed, zlib.crc32(Path(name).name.encode())])
        return np.stack([prepare_image(data, size), photographed_input(data, size, rng)], axis=-1)

    return load


def pick_photos(images: tf.Tensor, share: float) -> tf.Tensor:
    """From a ``(N, S, S, 2)`` batch of films and their photos, the photo with chance ``share``, else the film."""
    use_photo = tf.random.uniform((tf.shape(images)[0], 1, 1, 1)) < share
    return tf.where(use_photo, images[..., 1:2], images[..., 0:1])


def is_pneumonia(frame: pd.DataFrame) -> np.ndarray:
    """The triage target: 1 for PNEUMONIA, 0 for NORMAL."""
    return (frame["label"] == "PNEUMONIA").astype("float32").to_numpy()


def make_dataset(
    frame: pd.DataFrame,
    size: int,
    batch_size: int,
    training: bool,
    seed: int,
    recipe: Recipe | None = None,
    target: Callable[[pd.DataFrame], np.ndarray] = is_pneumonia,
) -> tf.data.Dataset:
    """Build a batched dataset of ``(image, target)`` from manifest rows.

    Decoded images are cached in memory after the first pass; augmentation (``recipe``,
    the robust one by default) runs on batches for training only. A recipe with a
    ``photo_share`` also caches one phone photo of each training film, taken through capture.
    ``target`` gives the 0/1 label of each row (pneumonia by default; the subtype model asks
    for bacterial).
    """
    if frame.empty:
        raise ValueError("cannot build a dataset from no images")
    paths = frame["file"].astype(str).to_numpy()
    labels = np.asarray(target(frame), dtype="float32")
    recipe = recipe or RECIPES["robust"]
    photos = training and recipe.photo_share > 0
    load = _loader_with_photo(size, seed) if photos else _loader(size)

    def decode(path: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        image = tf.numpy_function(load, [path], tf.uint8, stateful=False)
        image.set_shape((size, size, 2 if photos else 1))
        return image, label

    ds = tf.data.Dataset.from_tensor_slices((paths, labels))
    ds = ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).cache()
    if training:
        ds = ds.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    ds = ds.map(lambda x, y: (tf.cast(x, tf.float32), y), num_parallel_calls=tf.data.AUTOTUNE)
    if photos:
        ds = ds.map(lambda x, y: (pick_photos(x, recipe.photo_share), y), num_parallel_calls=tf.data.AUTOTUNE)
    if training:
        augment = augmenter(recipe, seed)
        ds = ds.map(lambda x, y: (augment(x, y), y), num_parallel_calls=tf.data.AUTOTUNE)
    options = tf.data.Options()
    # tf.data runs each map with one intra-op thread by default; the batch augmentation
    # (crops, rotation, blur, JPEG) then holds the training step back on a 2-core CPU.
    options.threading.max_intra_op_parallelism = 0
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)


def with_zoomed_copies(ds: tf.data.Dataset, zooms: tuple[float, ...]) -> tf.data.Dataset:
    """``ds`` followed by copies of it zoomed from the centre by each factor (> 1)."""
    if any(z <= 1.0 for z in zooms):
        raise ValueError(f"zoom factors must be above 1, got {zooms}")

    def zoom(factor: float):
        def apply(x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            size = tf.shape(x)[1:3]
            return tf.image.resize(tf.image.central_crop(x, 1.0 / factor), size), y
        return apply

    out = ds
    for factor in zooms:
        out = out.concatenate(ds.map(zoom(float(factor)), num_parallel_calls=tf.data.AUTOTUNE))
    return out


def class_weights(frame: pd.DataFrame, target: Callable[[pd.DataFrame], np.ndarray] = is_pneumonia
                  ) -> dict[int, float]:
    """Inverse-frequency class weights so both classes count equally in the loss."""
    positives = int(np.sum(target(frame)))
    negatives = len(frame) - positives
    if positives == 0 or negatives == 0:
        raise ValueError("training data needs images of both classes")
    total = positives + negatives
    return {0: total / (2.0 * negatives), 1: total / (2.0 * positives)}

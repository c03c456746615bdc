"""The training augmentation: one recipe record, applied as written, each ingredient switchable."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import xray_like
from training.augment import INGREDIENTS, RECIPES, Recipe, augmenter, preview, random_resized_crop


def batch(n: int = 4, size: int = 64) -> np.ndarray:
    return np.stack([xray_like(size, size, seed=s) for s in range(n)])[..., None].astype(np.float32)


def test_every_ingredient_can_be_switched_off_and_is_named() -> None:
    robust = RECIPES["robust"]
    for ingredient in INGREDIENTS:
        off = robust.without(ingredient)
        assert off != robust and off.name == f"robust-no-{ingredient}"
    bare = robust.without(*INGREDIENTS)
    assert bare.noise_sigma_max == 0 and bare.jpeg_quality_min == 0 and bare.crop_min_area == 1.0
    with pytest.raises(ValueError, match="unknown augmentation ingredient"):
        robust.without("flip")
    assert robust.as_dict()["name"] == "robust" and "noise_sigma_max" in robust.as_dict()


def test_augmenter_keeps_shape_and_range_and_changes_images() -> None:
    import tensorflow as tf

    tf.random.set_seed(0)
    x = batch()
    out = augmenter(RECIPES["robust"], seed=1)(tf.constant(x)).numpy()
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 255
    assert np.abs(out - x).mean() > 1.0


def test_a_recipe_with_everything_off_is_the_identity() -> None:
    import tensorflow as tf

    x = batch()
    bare = Recipe(name="none").without(*INGREDIENTS)
    np.testing.assert_allclose(augmenter(bare, seed=1)(tf.constant(x)).numpy(), x, atol=1e-3)


def test_random_resized_crop_zooms_in() -> None:
    import tensorflow as tf

    tf.random.set_seed(3)
    # A bright border around a dark centre: crops of at most half the area lose most of the border.
    image = np.full((1, 64, 64, 1), 200, np.float32)
    image[:, 8:56, 8:56] = 20
    cropped = random_resized_crop(tf.constant(np.repeat(image, 8, axis=0)), 0.3, 1.0).numpy()
    assert cropped.shape == (8, 64, 64, 1)
    assert cropped.mean() < image.mean()


def test_preview_grid_has_the_original_then_draws() -> None:
    images = [xray_like(32, 32, seed=s).astype(np.float32) for s in range(2)]
    grid = preview(images, RECIPES["robust"], copies=3)
    assert grid.shape == (64, 32 * 4) and grid.dtype == np.uint8
    np.testing.assert_array_equal(grid[:32, :32], images[0].astype(np.uint8))
    # With labels the label-aware ingredients act: a normal row is zoomed, a pneumonia row is not.
    zoom_only = Recipe(name="zoom", zoom_normals=1.0).without(*INGREDIENTS)
    labelled = preview(images, zoom_only, copies=2, labels=[0, 1])
    assert not np.array_equal(labelled[:32, 32:64], labelled[:32, :32])
    np.testing.assert_allclose(labelled[32:, 32:64], labelled[32:, :32], atol=1)
    with pytest.raises(ValueError, match="one label"):
        preview(images, zoom_only, labels=[0])


def test_preview_with_photos_shows_the_photo_and_draws_from_it_at_the_recipe_share() -> None:
    images = [xray_like(32, 32, seed=s).astype(np.float32) for s in range(2)]
    photos = [np.full((32, 32), 200.0, np.float32), np.full((32, 32), 40.0, np.float32)]
    always = Recipe(name="photos", photo_share=1.0).without(*INGREDIENTS)
    grid = preview(images, always, copies=2, photos=photos)
    assert grid.shape == (64, 32 * 4)
    np.testing.assert_array_equal(grid[:32, :32], images[0].astype(np.uint8))
    assert (grid[:32, 32:] == 200).all() and (grid[32:, 32:] == 40).all()  # the photo, then draws of it
    never = Recipe(name="films", photo_share=0.0).without(*INGREDIENTS)
    films = preview(images, never, copies=2, photos=photos)
    np.testing.assert_allclose(films[:32, 64:96], images[0], atol=1)
    with pytest.raises(ValueError, match="one photo"):
        preview(images, always, photos=photos[:1])


def test_soften_normals_touches_normal_films_only_and_removes_fine_detail() -> None:
    import tensorflow as tf

    from training.augment import soften_normals

    tf.random.set_seed(0)
    rng = np.random.default_rng(0)
    # Fine grain on top of a film: softening must take most of it away.
    x = np.clip(batch(8) + rng.normal(0, 20, (8, 64, 64, 1)), 0, 255).astype(np.float32)
    labels = np.array([0, 1] * 4, dtype=np.float32)
    out = soften_normals(tf.constant(x), tf.constant(labels), 1.0).numpy()
    np.testing.assert_array_equal(out[1::2], x[1::2])  # pneumonia films are never touched

    def grain(images: np.ndarray) -> float:
        return float(np.abs(np.diff(images, axis=2)).mean())

    assert grain(out[::2]) < 0.5 * grain(x[::2])
    assert np.array_equal(soften_normals(tf.constant(x), tf.constant(labels), 0.0).numpy(), x)
    # Through the augmenter only when labels are given; the recipe records the chance.
    recipe = Recipe(name="soft", soften_normals=1.0).without(*INGREDIENTS)
    np.testing.assert_allclose(augmenter(recipe, seed=1)(tf.constant(x)).numpy(), x, atol=1e-3)
    assert grain(augmenter(recipe, seed=1)(tf.constant(x), tf.constant(labels)).numpy()[::2]) < 0.5 * grain(x[::2])
    assert RECIPES["robust_framing_soft"].as_dict()["soften_normals"] == 0.5


def test_zoom_normals_magnifies_normal_films_only() -> None:
    import tensorflow as tf

    from training.augment import zoom_normals

    tf.random.set_seed(0)
    # A bright square in the middle of a dark film: a zoom in makes it cover more of the frame.
    x = np.zeros((8, 64, 64, 1), dtype=np.float32)
    x[:, 24:40, 24:40] = 200.0
    labels = np.array([0, 1] * 4, dtype=np.float32)
    out = zoom_normals(tf.constant(x), tf.constant(labels), 1.0, 1.5).numpy()
    np.testing.assert_array_equal(out[1::2], x[1::2])  # pneumonia films are never touched
    covered = (out[::2] > 100).mean(axis=(1, 2, 3))
    assert np.all(covered >= (x[0] > 100).mean()) and covered.max() > 1.2 * (x[0] > 100).mean()
    assert np.all(covered <= 1.5 ** 2 * (x[0] > 100).mean() + 0.02)  # never past the largest zoom
    np.testing.assert_array_equal(zoom_normals(tf.constant(x), tf.constant(labels), 0.0, 1.5).numpy(), x)
    recipe = Recipe(name="zoom", zoom_normals=1.0).without(*INGREDIENTS)
    np.testing.assert_allclose(augmenter(recipe, seed=1)(tf.constant(x)).numpy(), x, atol=1e-3)
    assert RECIPES["robust_framing_soft_zoom"].as_dict()["zoom_normals"] == 0.5


def test_cue_check_reports_a_cue_the_augmentation_removes() -> None:
    from training.cue_check import cue_table, parse_override

    rng = np.random.default_rng(0)
    # Pneumonia films here are grainy, normal ones smooth: fine detail alone tells them apart,
    # until the augmentation gives the normal films the same grain (as soften_normals and
    # zoom_normals act on normal films only).
    labels = np.array([0, 1] * 10)
    images = batch(20)[..., 0].copy()
    images[1::2] = np.clip(images[1::2] + rng.normal(0, 25, images[1::2].shape), 0, 255)
    images = images.astype(np.uint8)

    def same_grain(x, y):
        import tensorflow as tf

        normal = tf.reshape(tf.cast(y < 0.5, tf.float32), (-1, 1, 1, 1))
        return tf.clip_by_value(x + normal * tf.random.normal(tf.shape(x), stddev=25.0, seed=1), 0.0, 255.0)

    table = cue_table(images, labels, same_grain, seed=0).set_index("statistic")
    assert table.loc["fine_detail", "cue_as_is"] > 0.4
    assert table.loc["fine_detail", "cue_augmented"] < 0.3
    assert parse_override("zoom_normals=0.5") == ("zoom_normals", 0.5)
    assert parse_override("jpeg_quality_min=40") == ("jpeg_quality_min", 40)
    with pytest.raises(Exception, match="not an integer"):
        parse_override("jpeg_quality_min=40.5")
    with pytest.raises(Exception, match="NAME=VALUE"):
        parse_override("name=0.5")


def test_uneven_light_adds_a_smooth_bright_patch_to_both_classes() -> None:
    import tensorflow as tf

    from training.augment import uneven_light

    tf.random.set_seed(0)
    x = np.full((16, 64, 64, 1), 100.0, dtype=np.float32)
    out = uneven_light(tf.constant(x), 0.3, 0.2, 1.0).numpy()
    change = out - x
    # Every film changed, by no more than the blob's peak plus the fall-off at the corner.
    assert np.all(np.abs(change).max(axis=(1, 2, 3)) > 0.5)
    assert change.max() <= 0.3 * 255 + 0.2 / 0.71 * 0.71 * 100 + 1e-3
    assert change.min() >= -0.2 / 0.71 * 0.71 * 100 - 1e-3
    # Smooth: neighbouring pixels differ by a small fraction of the change across the film.
    steps = np.abs(np.diff(out, axis=1)).max()
    assert steps < 0.1 * (out.max(axis=(1, 2, 3)) - out.min(axis=(1, 2, 3))).max()
    # Brighter somewhere on most films (the glare), and off with chance 0.
    assert (change.max(axis=(1, 2, 3)) > 5).mean() > 0.5
    np.testing.assert_array_equal(uneven_light(tf.constant(x), 0.3, 0.2, 0.0).numpy(), x)
    recipe = RECIPES["robust_framing_soft_light"]
    assert recipe.glare_max == 0.3 and recipe.without("light").glare_max == 0.0
    bare = Recipe(name="light", glare_max=0.3, light_ramp_max=0.2).without(*INGREDIENTS)
    lit = augmenter(bare, seed=1)(tf.constant(x)).numpy()
    assert not np.allclose(lit, x) and np.allclose(augmenter(bare.without("light"), seed=1)(tf.constant(x)).numpy(), x)


def test_vignette_darkens_the_corners_more_than_the_centre_and_leaves_other_recipes_alone() -> None:
    import tensorflow as tf

    from training.augment import uneven_light

    x = np.full((16, 64, 64, 1), 100.0, dtype=np.float32)
    tf.random.set_seed(1)
    out = uneven_light(tf.constant(x), 0.0, 0.0, 1.0, vignette_max=0.4).numpy()
    corners = out[:, [0, 0, -1, -1], [0, -1, 0, -1], 0]
    centre = out[:, 32, 32, 0]
    # Never brighter; the darkest corner of each film darker than its centre, within the frame's reach.
    assert out.max() <= 100.0 + 1e-3 and np.all(corners.min(axis=1) < centre)
    assert np.all(centre > 90.0) and out.min() > 100.0 * (1 - 0.4 * 1.25)
    # A recipe without the vignette draws the same light as before it existed.
    tf.random.set_seed(2)
    before = uneven_light(tf.constant(x), 0.3, 0.2, 1.0).numpy()
    tf.random.set_seed(2)
    same = uneven_light(tf.constant(x), 0.3, 0.2, 1.0, spread_max=0.6, vignette_max=0.0).numpy()
    np.testing.assert_array_equal(before, same)
    recipe = RECIPES["robust_framing_soft_zoom_vignette"]
    assert recipe.vignette_max == 0.4 and recipe.without("light").vignette_max == 0.0


def test_photo_share_is_an_ingredient_that_can_be_switched_off() -> None:
    photo = RECIPES["robust_framing_soft_zoom_light_photo"]
    assert photo.photo_share > 0 and RECIPES["robust"].photo_share == 0
    assert photo.without("photo").photo_share == 0


def test_pick_photos_takes_the_second_channel_with_the_given_chance() -> None:
    import tensorflow as tf

    from training.pipeline import pick_photos

    films = np.zeros((64, 8, 8, 1), np.float32)
    both = tf.constant(np.concatenate([films, films + 255], axis=-1))
    assert float(tf.reduce_max(pick_photos(both, 0.0))) == 0.0
    assert float(tf.reduce_min(pick_photos(both, 1.0))) == 255.0
    tf.random.set_seed(3)
    picked = pick_photos(both, 0.25).numpy()
    assert picked.shape == (64, 8, 8, 1)
    assert 4 <= int((picked[:, 0, 0, 0] == 255).sum()) <= 28  # about a quarter of 64


def test_training_set_with_photos_serves_the_capture_output_of_a_photo_of_each_film(tmp_path) -> None:
    import dataclasses

    import pandas as pd
    from PIL import Image

    from training.augment import NONE
    from training.pipeline import _loader_with_photo, make_dataset

    paths = []
    for i in range(2):
        path = tmp_path / f"person{i}_bacteria_{i}.png"
        Image.fromarray(xray_like(96, 112, seed=i)).save(path)
        paths.append(str(path))
    frame = pd.DataFrame({"file": paths, "label": ["NORMAL", "PNEUMONIA"]})
    load = _loader_with_photo(32, seed=5)
    first = [load(p.encode()) for p in paths]
    # One photo per film, the same every time it is made (seeded by the film's name, not the order).
    for path, pair in zip(paths, first, strict=True):
        assert pair.shape == (32, 32, 2) and pair.dtype == np.uint8
        np.testing.assert_array_equal(load(path.encode()), pair)
        assert np.abs(pair[..., 0].astype(int) - pair[..., 1]).mean() > 2  # the photo is not the film
    photos_only = dataclasses.replace(NONE, photo_share=1.0)
    served = np.concatenate([x.numpy() for x, _ in make_dataset(frame, 32, 2, True, seed=5, recipe=photos_only)])
    assert served.shape == (2, 32, 32, 1)
    expected = sorted(pair[..., 1].tobytes() for pair in first)
    assert sorted(image[..., 0].astype(np.uint8).tobytes() for image in served) == expected
    # Validation films are never photographed.
    val = np.concatenate([x.numpy() for x, _ in make_dataset(frame, 32, 2, False, seed=5, recipe=photos_only)])
    assert sorted(image[..., 0].astype(np.uint8).tobytes() for image in val) == sorted(
        pair[..., 0].tobytes() for pair in first)

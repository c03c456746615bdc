"""Tests for the MedMNIST-C style corruption suite (core.evaluation.corruptions).

Images are small synthetic arrays built here, so no dataset or model is needed.
"""

from __future__ import annotations

import numpy as np
import pytest

from core.evaluation.corruptions import (
    CORRUPTIONS,
    FRAMING,
    PARAMS,
    SEVERITIES,
    centre_zoom,
    corrupt,
    suite,
)

NOISE = ("gaussian_noise", "speckle_noise", "impulse_noise", "shot_noise")
DAMAGE_GROWS = (*NOISE, "gaussian_blur", "pixelate", "jpeg_compression")


def _xray(h: int = 96, w: int = 96, seed: int = 1) -> np.ndarray:
    """Textured grey image kept inside 40..200 so brightness/contrast/gamma effects are not hidden by clipping."""
    y, x = np.mgrid[0:h, 0:w]
    base = 120 + 40 * np.sin(x / 5.0) * np.cos(y / 7.0) + 0.3 * (x - w / 2)
    noise = np.random.default_rng(seed).normal(0, 6, (h, w))
    return np.clip(base + noise, 40, 200).astype(np.uint8)


def _mad(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


# --- tables and the condition list ---------------------------------------------------------------------------


def test_pneumonia_set_names_and_reference_parameters() -> None:
    assert CORRUPTIONS == (
        "pixelate",
        "jpeg_compression",
        "gaussian_noise",
        "speckle_noise",
        "impulse_noise",
        "shot_noise",
        "gaussian_blur",
        "brightness_up",
        "brightness_down",
        "contrast_up",
        "contrast_down",
        "gamma_up",
        "gamma_down",
    )
    assert all(len(PARAMS[name]) == len(SEVERITIES) == 5 for name in CORRUPTIONS)
    # Spot checks against medmnistc-api registry.py, CORRUPTIONS_DS["pneumoniamnist"].
    assert PARAMS["pixelate"] == (0.8, 0.7, 0.6, 0.5, 0.4)
    assert PARAMS["jpeg_compression"] == (50, 30, 15, 10, 7)
    assert PARAMS["shot_noise"] == (300, 200, 150, 100, 80)
    assert PARAMS["gaussian_blur"] == (3, 5, 7, 9, 11)
    assert PARAMS["gamma_down"] == (0.9, 0.8, 0.7, 0.6, 0.4)
    assert FRAMING == {"zoom": {1: 1.15, 2: 1.3, 3: 1.5}}


def test_suite_lists_every_condition_once() -> None:
    full = suite()
    assert len(full) == len(set(full)) == 13 * 5 + 3
    assert full[:65] == suite(include_framing=False)
    assert full[-3:] == [("zoom", 1), ("zoom", 2), ("zoom", 3)]
    assert ("zoom", 1) not in suite(include_framing=False)


# --- contract: shape, dtype, no aliasing, determinism --------------------------------------------------------


@pytest.mark.parametrize(("name", "severity"), suite())
def test_shape_dtype_preserved_and_input_untouched(name: str, severity: int) -> None:
    image = _xray(40, 56)  # non-square and not 224 to catch H/W swaps and size assumptions
    before = image.copy()
    out = corrupt(image, name, severity, seed=3)
    assert out.shape == image.shape
    assert out.dtype == np.uint8
    assert out.flags.writeable
    assert not np.shares_memory(out, image)
    np.testing.assert_array_equal(image, before)


@pytest.mark.parametrize("name", NOISE)
def test_noise_is_deterministic_per_seed(name: str) -> None:
    image = _xray(48, 48)
    np.testing.assert_array_equal(corrupt(image, name, 3, seed=7), corrupt(image, name, 3, seed=7))
    assert not np.array_equal(corrupt(image, name, 3, seed=7), corrupt(image, name, 3, seed=8))


@pytest.mark.parametrize("name", [n for n in CORRUPTIONS if n not in NOISE])
def test_deterministic_corruptions_ignore_seed(name: str) -> None:
    image = _xray(48, 48)
    np.testing.assert_array_equal(corrupt(image, name, 2, seed=0), corrupt(image, name, 2, seed=99))


# --- severity behaves like severity ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", DAMAGE_GROWS)
def test_damage_grows_with_severity(name: str) -> None:
    image = _xray()
    mads = [_mad(corrupt(image, name, s, seed=0), image) for s in SEVERITIES]
    assert mads[0] > 0, f"{name} at severity 1 left the image unchanged"
    assert all(a < b for a, b in zip(mads, mads[1:], strict=False)), f"{name}: {mads}"


def test_brightness_moves_the_mean() -> None:
    image = _xray()
    up = [corrupt(image, "brightness_up", s).mean() for s in SEVERITIES]
    down = [corrupt(image, "brightness_down", s).mean() for s in SEVERITIES]
    assert image.mean() < up[0] and all(a < b for a, b in zip(up, up[1:], strict=False))
    assert image.mean() > down[0] and all(a > b for a, b in zip(down, down[1:], strict=False))


def test_contrast_moves_the_spread_not_the_mean() -> None:
    image = _xray()
    up = [corrupt(image, "contrast_up", s) for s in SEVERITIES]
    down = [corrupt(image, "contrast_down", s) for s in SEVERITIES]
    up_std, down_std = [o.std() for o in up], [o.std() for o in down]
    assert image.std() < up_std[0] and all(a < b for a, b in zip(up_std, up_std[1:], strict=False))
    assert image.std() > down_std[0] and all(a > b for a, b in zip(down_std, down_std[1:], strict=False))
    # Pillow blends towards the rounded mean grey, so the mean barely moves.
    assert all(abs(o.mean() - image.mean()) < 1.5 for o in up + down)


def test_gamma_up_darkens_and_gamma_down_brightens() -> None:
    image = _xray()
    up = [corrupt(image, "gamma_up", s).mean() for s in SEVERITIES]
    down = [corrupt(image, "gamma_down", s).mean() for s in SEVERITIES]
    assert image.mean() > up[0] and all(a > b for a, b in zip(up, up[1:], strict=False))
    assert image.mean() < down[0] and all(a < b for a, b in zip(down, down[1:], strict=False))


# --- fidelity to the reference pipeline -------------------------------------------------------------------------


def test_gamma_uses_torchvision_lookup_table() -> None:
    ramp = np.tile(np.arange(256, dtype=np.uint8), (16, 1))
    out = corrupt(ramp, "gamma_up", 5)[0]
    expected = [int((255 + 1 - 1e-3) * pow(v / 255.0, 1.6)) for v in range(256)]
    assert out.tolist() == expected


def test_gaussian_noise_is_per_rgb_channel_then_luma_mixed() -> None:
    # The reference adds noise to an RGB copy and converts back to L, so the grey-level std is
    # sqrt(0.299^2 + 0.587^2 + 0.114^2) ~ 0.669 of the nominal one; single-channel noise would be 1.5x larger.
    flat = np.full((128, 128), 128, np.uint8)
    out = corrupt(flat, "gaussian_noise", 5, seed=0)
    expected = 0.08 * 255 * np.sqrt(0.299**2 + 0.587**2 + 0.114**2)
    assert abs(out.std() - expected) / expected < 0.05


def test_impulse_noise_hits_single_channels() -> None:
    flat = np.full((128, 128), 128, np.uint8)
    out = corrupt(flat, "impulse_noise", 5, seed=0)
    values = set(np.unique(out).tolist())
    # Salt or pepper in the green channel alone gives 128 +/- 0.587 * 127/128 grey levels.
    assert {53, 203} <= values
    changed = (out != 128).mean()
    assert 0.04 < changed < 0.08  # ~ 1 - (1 - 0.02)^3 = 0.059 of pixels touched in at least one channel


def test_blur_keeps_flat_image_flat_at_the_borders() -> None:
    # Reflect padding, not zero padding: a constant image must come back unchanged, edges included.
    flat = np.full((32, 32), 150, np.uint8)
    np.testing.assert_array_equal(corrupt(flat, "gaussian_blur", 5), flat)


# --- framing --------------------------------------------------------------------------------------------------


def test_centre_zoom_of_one_is_identity() -> None:
    image = _xray(48, 64)
    out = centre_zoom(image, 1.0)
    np.testing.assert_array_equal(out, image)
    assert not np.shares_memory(out, image)


def test_centre_zoom_of_two_maps_centre_quadrant_to_full_frame() -> None:
    image = np.zeros((64, 64), np.uint8)
    # Centre quadrant (rows/cols 16..47) split into four labelled blocks; everything outside is 0.
    image[16:32, 16:32], image[16:32, 32:48], image[32:48, 16:32], image[32:48, 32:48] = 10, 80, 160, 240
    out = centre_zoom(image, 2.0)
    # Bilinear blending touches a pixel or two at block seams and the frame edge; check the block interiors.
    m = 2
    assert (out[m : 32 - m, m : 32 - m] == 10).all()
    assert (out[m : 32 - m, 32 + m : 64 - m] == 80).all()
    assert (out[32 + m : 64 - m, m : 32 - m] == 160).all()
    assert (out[32 + m : 64 - m, 32 + m : 64 - m] == 240).all()
    assert abs(out.mean() - image[16:48, 16:48].mean()) < 3


def test_centre_zoom_stays_centred() -> None:
    y, x = np.mgrid[0:60, 0:80]
    radial = np.hypot(y - 29.5, x - 39.5).astype(np.uint8)  # symmetric about the true centre
    out = centre_zoom(radial, 1.5).astype(np.int16)
    assert np.abs(out - out[::-1, ::-1]).max() <= 1
    assert out.max() < radial.max()  # the corners were cropped away


@pytest.mark.parametrize("severity", sorted(FRAMING["zoom"]))
def test_zoom_condition_uses_framing_table(severity: int) -> None:
    image = _xray(48, 48)
    np.testing.assert_array_equal(corrupt(image, "zoom", severity), centre_zoom(image, FRAMING["zoom"][severity]))


# --- bad input ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "match"),
    [
        (np.zeros((32, 32, 3), np.uint8), "2-D"),
        (np.zeros((32, 32), np.float32), "uint8"),
        (np.zeros((8, 32), np.uint8), "at least"),
        ([[0] * 32] * 32, "numpy array"),
    ],
)
def test_bad_images_raise(image: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        corrupt(image, "pixelate", 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=match):
        centre_zoom(image, 1.3)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "severity", "seed", "match"),
    [
        ("motion_blur", 1, 0, "unknown corruption"),
        ("gamma_corr_up", 1, 0, "unknown corruption"),
        ("pixelate", 0, 0, "severity"),
        ("pixelate", 6, 0, "severity"),
        ("pixelate", 2.0, 0, "severity"),
        ("pixelate", True, 0, "severity"),
        ("zoom", 4, 0, "severity"),
        ("gaussian_noise", 1, -1, "seed"),
    ],
)
def test_bad_arguments_raise(name: str, severity: object, seed: int, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        corrupt(_xray(32, 32), name, severity, seed=seed)  # type: ignore[arg-type]


@pytest.mark.parametrize("factor", [0.5, float("nan"), float("inf"), 40.0, "2"])
def test_bad_zoom_factor_raises(factor: object) -> None:
    with pytest.raises(ValueError, match="factor"):
        centre_zoom(_xray(32, 32), factor)  # type: ignore[arg-type]

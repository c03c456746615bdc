"""Images as they arrive in the field, through the whole scoring path: capture, gate, note, quality.

A permissive gate on the tiny model (statistics limits wide, feature distance always 0) so
that what is tested is the capture step's effect and the wording, not the tiny model.
"""

from __future__ import annotations

import csv
import dataclasses

import numpy as np
import pytest
from PIL import Image

from core.gate import OodModel
from core.model.metadata import GateMetadata
from core.scoring import Status, iter_outcomes
from core.scoring.predict import feature_model
from helpers import encode
from helpers.field import on_background, radiograph, rotated_rect, tinted

LIMITS = {"min_std": 5.0, "max_flat_fraction": 0.6, "max_edge_density": 0.2, "max_ood_distance": 25.0}


@pytest.fixture(scope="module")
def gated(tiny_bundle):
    width = int(feature_model(tiny_bundle.model).outputs[0].shape[-1])
    ood = OodModel(means=np.zeros((2, width)), precision=np.zeros((width, width)))
    gate = GateMetadata(thresholds=dict(LIMITS), ood_file="x.npz", ood_sha256="0" * 64)
    return dataclasses.replace(tiny_bundle, metadata=tiny_bundle.metadata.replace(gate=gate), ood=ood)


def jpeg(array: np.ndarray, quality: int = 90) -> bytes:
    return encode(Image.fromarray(array), "JPEG", quality=quality)


def film(seed: int = 0) -> np.ndarray:
    return np.asarray(Image.fromarray(radiograph(seed=seed)).resize((440, 520), Image.Resampling.BICUBIC))


def score(bundle, data: bytes):
    [outcome] = iter_outcomes(bundle, [("upload", data)])
    return outcome


def test_ordinary_xray_is_scored_without_a_note(gated) -> None:
    outcome = score(gated, jpeg(film()))
    assert outcome.status is Status.SCORED and outcome.note == "" and outcome.quality == ()


def test_tinted_xray_is_scored_with_the_tint_removed(gated) -> None:
    outcome = score(gated, jpeg(tinted(film(1), (1.0, 0.86, 0.62))))
    assert outcome.status is Status.SCORED, outcome.error
    assert "tint removed" in outcome.note


def test_photo_of_a_skewed_film_is_cropped_corrected_and_scored(gated) -> None:
    x = film(2)
    fh, fw = x.shape
    photo = on_background(x, rotated_rect(380, 360, fw, fh, 9.0), (720, 760))
    outcome = score(gated, jpeg(tinted(photo, (0.7, 0.86, 1.0))))
    assert outcome.status is Status.SCORED, outcome.error
    assert outcome.note.startswith("photo of a film") and "perspective corrected" in outcome.note
    assert outcome.gray.shape[0] < 720 * 0.95  # the background margin was cropped away


def test_colour_scene_is_refused_as_colour(gated) -> None:
    rng = np.random.default_rng(0)
    blocks = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    scene = np.asarray(Image.fromarray(blocks).resize((400, 400), Image.Resampling.NEAREST))
    outcome = score(gated, jpeg(scene))
    assert outcome.status is Status.REFUSED and outcome.code == "colour"


def test_noisy_xray_is_scored_with_a_quality_warning(gated) -> None:
    # Noise is judged at the model's input resolution (64 px for the tiny model): what the model sees.
    rng = np.random.default_rng(1)
    small = np.asarray(Image.fromarray(film(3)).resize((64, 64), Image.Resampling.BILINEAR)).astype(float)
    noisy = np.clip(small + rng.normal(0, 0.08 * 255, small.shape), 0, 255).astype(np.uint8)
    # Uploaded at 128 px (the gate's least side), each pixel doubled so the noise survives the resize.
    noisy = np.kron(noisy, np.ones((2, 2), np.uint8))
    clean = score(gated, encode(Image.fromarray(np.kron(small.astype(np.uint8), np.ones((2, 2), np.uint8))), "PNG"))
    assert "noisy" not in clean.quality
    outcome = score(gated, encode(Image.fromarray(noisy), "PNG"))
    assert outcome.status is Status.SCORED, outcome.error
    assert "noisy" in outcome.quality and "read with care" in outcome.note


def test_heavily_compressed_and_tiny_uploads_are_flagged(gated) -> None:
    compressed = score(gated, jpeg(film(4), quality=15))
    assert compressed.ok and "compressed" in compressed.quality
    small = np.asarray(Image.fromarray(film(5)).resize((200, 236)))
    thumbnail = score(gated, jpeg(small))
    assert thumbnail.ok and "low_resolution" in thumbnail.quality


def test_cli_writes_the_note_in_its_last_column(tmp_path, tiny_model_path) -> None:
    from core.apps.cli import main

    x = film(6)
    fh, fw = x.shape
    (tmp_path / "photo.jpeg").write_bytes(jpeg(tinted(on_background(x, rotated_rect(380, 360, fw, fh, 9.0),
                                                                    (720, 760)), (1.0, 0.86, 0.62))))
    (tmp_path / "plain.jpeg").write_bytes(jpeg(film(7)))
    out = tmp_path / "out.csv"
    assert main(["predict", str(tmp_path / "photo.jpeg"), str(tmp_path / "plain.jpeg"), "--output", str(out),
                 "--model", str(tiny_model_path)]) == 0
    rows = {r["file"].rsplit("/", 1)[-1]: r for r in csv.DictReader(out.open())}
    assert list(next(iter(rows.values())))[:4] == ["file", "probability", "prediction", "error"]
    assert rows["photo.jpeg"]["note"].startswith("photo of a film") and rows["plain.jpeg"]["note"] == ""


def test_grayscale_files_skip_the_film_search(gated) -> None:
    # Phones save colour; a grayscale file is the radiograph's own export and is scored as it is.
    x = film(8)
    fh, fw = x.shape
    gray_photo = on_background(x, rotated_rect(380, 360, fw, fh, 9.0), (720, 760))
    outcome = score(gated, encode(Image.fromarray(gray_photo), "PNG"))
    assert outcome.note == "" and outcome.gray.shape == gray_photo.shape

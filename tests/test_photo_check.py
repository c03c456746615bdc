"""The photo check: films of a split photographed with the field simulator and scored beside the films."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.calibration import Calibration
from core.model import load_metadata
from helpers import brightness_model, encode, xray_like
from training.field_capture import photograph_film
from training.photo_check import photo_figures, record


def films() -> tuple[list[np.ndarray], np.ndarray]:
    images = [xray_like(48, 48, seed=s) for s in range(6)]
    # Pneumonia films brighter, so the brightness network ranks the films themselves perfectly.
    images = [np.clip(f.astype(int) + (40 if s >= 3 else -40), 0, 255).astype(np.uint8) for s, f in enumerate(images)]
    return images, np.array([0, 0, 0, 1, 1, 1])


def png(images: list[np.ndarray]) -> list[bytes]:
    return [encode(Image.fromarray(image), "PNG") for image in images]


def test_photos_are_drawn_in_order_from_the_seed_and_scored_beside_the_films() -> None:
    images, labels = films()
    model = brightness_model(32)
    figures = photo_figures(model, Calibration("none"), 0.5, png(images), labels, 32, long_side=(300, 400))
    again = photo_figures(model, Calibration("none"), 0.5, png(images), labels, 32, long_side=(300, 400))
    assert figures == again and set(figures) == {"films", "photos"}
    assert figures["films"]["auc"] == 1.0
    for row in figures.values():
        assert set(row) == {"auc", "specificity", "recall"} and all(0 <= v <= 1 for v in row.values())
    # The photo is of the film enlarged four times, its long side in the range asked for.
    big, photo = photograph_film(images[0], np.random.default_rng(0), long_side=(300, 400))
    assert big.shape == (192, 192) and 300 <= max(photo.rgb.shape[:2]) < 400


def test_one_class_is_a_clear_error() -> None:
    images, _ = films()
    with pytest.raises(ValueError, match="both classes"):
        photo_figures(brightness_model(32), Calibration("none"), 0.5, png(images), np.zeros(6, int), 32)


def test_record_writes_the_figures_and_their_threshold_beside_the_other_metrics(tiny_model_path: Path,
                                                                                tmp_path: Path) -> None:
    model = tmp_path / "m.keras"
    shutil.copy(tiny_model_path.with_suffix(".json"), model.with_suffix(".json"))
    before = load_metadata(model)
    figures = {"films": {"auc": 0.99, "specificity": 0.97, "recall": 0.98},
               "photos": {"auc": 0.97, "specificity": 0.7, "recall": 0.98}}
    record(model, figures, split="val", images=6, seed=11, threshold=0.5479)
    after = load_metadata(model)
    photos = after.metrics["phone_photos"]
    assert photos["photos"] == figures["photos"] and photos["films"] == figures["films"]
    assert (photos["split"], photos["images"], photos["seed"], photos["threshold"]) == ("val", 6, 11, 0.5479)
    assert "--record" in photos["command"]
    assert {k: v for k, v in after.metrics.items() if k != "phone_photos"} == before.metrics


def test_the_command_records_the_split_figures_and_refuses_a_missing_split(tiny_model_path: Path,
                                                                          tmp_path: Path) -> None:
    from helpers import write_dataset
    from training import photo_check

    data = write_dataset(tmp_path / "data", {"train/NORMAL": ["IM-0001-0001.jpeg", "IM-0002-0001.jpeg"],
                                             "train/PNEUMONIA": ["person1_virus_1.jpeg", "person2_virus_2.jpeg"]})
    files = sorted(str(p.relative_to(data)) for p in data.rglob("*.jpeg"))
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("file,label,split\n" + "".join(
        f"{f},{'PNEUMONIA' if 'PNEUMONIA' in f else 'NORMAL'},val\n" for f in files))
    model = tmp_path / "m.keras"
    shutil.copy(tiny_model_path, model)
    shutil.copy(tiny_model_path.with_suffix(".json"), model.with_suffix(".json"))
    argv = ["--model", str(model), "--data", str(data), "--manifest", str(manifest)]
    assert photo_check.main([*argv, "--record"]) == 0
    photos = load_metadata(model).metrics["phone_photos"]
    assert (photos["split"], photos["images"]) == ("val", 4)
    assert photos["threshold"] == round(load_metadata(model).threshold.value, 6)
    with pytest.raises(SystemExit) as exit_info:
        photo_check.main([*argv, "--split", "test"])
    assert exit_info.value.code == 2


def test_lightbox_photos_are_reproducible_jpegs_the_capture_step_crops_to_the_film() -> None:
    """The second simulator: same seed, same bytes; a photo, not the film (colour, bigger); cropped by capture."""
    from core.preprocessing import prepare
    from training.lightbox_photos import lightbox_photo

    film = xray_like(64, 64, seed=1)
    first = lightbox_photo(film, np.random.default_rng(3), long_side=(500, 600))
    assert first == lightbox_photo(film, np.random.default_rng(3), long_side=(500, 600))
    assert first != lightbox_photo(film, np.random.default_rng(4), long_side=(500, 600))
    photo = Image.open(io.BytesIO(first))
    assert photo.format == "JPEG" and photo.mode == "RGB" and max(photo.size) >= 400
    cropped = [prepare(lightbox_photo(xray_like(64, 64, seed=s), np.random.default_rng(s), long_side=(500, 600)), 32)
               for s in range(6)]
    assert sum("film_cropped" in p.capture.steps for p in cropped) >= 4
    with pytest.raises(ValueError):
        lightbox_photo(np.zeros((8, 8), np.uint8), np.random.default_rng(0))


def test_the_lightbox_check_reports_what_the_gate_accepts_and_the_figures_on_those() -> None:
    images, labels = films()
    model = brightness_model(32)
    accepted = np.array([True, False, True, True, False, True])  # one film of each class refused
    figures = photo_figures(model, Calibration("none"), 0.5, png(images), labels, 32, long_side=(300, 400),
                            simulator="lightbox", accepts=lambda photos: accepted[: len(photos)])
    assert set(figures) == {"films", "photos", "accepted_photos"}
    assert figures["photos"]["accepted"] == round(4 / 6, 4)
    assert figures["films"] == photo_figures(model, Calibration("none"), 0.5, png(images), labels, 32,
                                             long_side=(300, 400))["films"]
    with pytest.raises(ValueError, match="simulator"):
        photo_figures(model, Calibration("none"), 0.5, png(images), labels, 32, simulator="scanner")

"""Training and inference must feed the model exactly the same arrays for the same files."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from core.preprocessing import prepare_image
from core.scoring import iter_outcomes, predict_arrays, predict_one
from helpers import FULL_RES_SAMPLES, encode, gray_to_16bit, xray_like


@pytest.fixture
def mixed_files(tmp_path: Path) -> list[Path]:
    """Files of the kinds users upload: full-size non-square JPEG, 16-bit PNG, RGB, EXIF-rotated, small."""
    files = []

    def save(name: str, image: Image.Image, **params) -> None:
        path = tmp_path / name
        path.write_bytes(encode(image, "PNG" if name.endswith(".png") else "JPEG", **params))
        files.append(path)

    save("full_size.jpeg", Image.fromarray(xray_like(1100, 1500, seed=1), mode="L"), quality=90)
    save("detector_16bit.png", Image.fromarray(gray_to_16bit(xray_like(700, 600, seed=2))))
    save("colour.png", Image.fromarray(xray_like(300, 260, seed=3), mode="L").convert("RGB"))
    exif = Image.Exif()
    exif[0x0112] = 6
    save("rotated.jpeg", Image.fromarray(xray_like(500, 800, seed=4), mode="L"), quality=90, exif=exif.tobytes())
    save("small.jpeg", Image.fromarray(xray_like(48, 40, seed=5), mode="L"), quality=90)
    files.extend(sorted(FULL_RES_SAMPLES.glob("*/*.jpeg"))[:2])
    return files


def _pipeline_arrays(files: list[Path], size: int) -> tuple[np.ndarray, np.ndarray]:
    from training.pipeline import make_dataset

    frame = pd.DataFrame({"file": [str(f) for f in files],
                          "label": ["PNEUMONIA" if i % 2 else "NORMAL" for i in range(len(files))]})
    xs, ys = [], []
    for x, y in make_dataset(frame, size, batch_size=3, training=False, seed=0):
        xs.append(x.numpy())
        ys.append(y.numpy())
    return np.concatenate(xs), np.concatenate(ys)


@pytest.mark.parametrize("size", [64, 224])
def test_pipeline_yields_prepare_image_arrays(mixed_files: list[Path], size: int) -> None:
    x, y = _pipeline_arrays(mixed_files, size)
    expected = np.stack([prepare_image(f, size) for f in mixed_files])[..., np.newaxis].astype(np.float32)
    assert x.shape == expected.shape == (len(mixed_files), size, size, 1)
    assert x.dtype == np.float32
    assert np.array_equal(x, expected)
    assert y.tolist() == [float(i % 2) for i in range(len(mixed_files))]
    # Files really differ from each other, so equality above is not a constant-image accident.
    assert len({arr.tobytes() for arr in expected}) == len(mixed_files)


def test_inference_scores_equal_model_on_pipeline_arrays(mixed_files: list[Path], tiny_bundle) -> None:
    size = tiny_bundle.input_size
    x, _ = _pipeline_arrays(mixed_files, size)
    direct = np.asarray(tiny_bundle.model(x, training=False)).reshape(-1)

    results = list(iter_outcomes(tiny_bundle, [(f.name, f) for f in mixed_files], batch_size=4))
    assert [r.name for r in results] == [f.name for f in mixed_files]
    assert all(r.ok for r in results)
    scored = np.array([r.probability for r in results])
    np.testing.assert_allclose(scored, direct, rtol=0, atol=1e-5)
    assert np.ptp(scored) > 1e-3, "the test model must separate the images"

    batch = predict_arrays(tiny_bundle.model, x[..., 0].astype(np.uint8))
    np.testing.assert_allclose(batch, direct, rtol=0, atol=1e-5)
    singles = [predict_one(tiny_bundle, f.read_bytes()) for f in mixed_files]
    np.testing.assert_allclose(singles, direct, rtol=0, atol=1e-5)


def test_training_pipeline_keeps_shape_and_range(mixed_files: list[Path]) -> None:
    from training.pipeline import make_dataset

    frame = pd.DataFrame({"file": [str(f) for f in mixed_files], "label": "NORMAL"})
    for x, _ in make_dataset(frame, 64, batch_size=8, training=True, seed=1).take(1):
        arr = x.numpy()
        assert arr.shape[1:] == (64, 64, 1)
        assert arr.min() >= 0.0 and arr.max() <= 255.0


def test_stream_decodes_at_most_one_batch_ahead(tiny_bundle) -> None:
    """The next batch is decoded while the model scores this one, and no further: memory stays bounded."""
    jpeg = encode(Image.fromarray(xray_like(120, 100, seed=6), mode="L"), "JPEG", quality=90)
    pulled: list[int] = []

    def items():
        for i in range(30):
            pulled.append(i)
            yield f"x{i}", jpeg

    stream = iter_outcomes(tiny_bundle, items(), batch_size=4)
    first = next(stream)
    assert first.name == "x0" and first.ok
    assert len(pulled) == 8  # this batch and the one being decoded
    names = [first.name] + [outcome.name for outcome in stream]
    assert names == [f"x{i}" for i in range(30)]


def test_closing_the_stream_cancels_the_decodes_queued_ahead(tiny_bundle, monkeypatch) -> None:
    import core.scoring.stream as stream

    jpeg = encode(Image.fromarray(xray_like(120, 100, seed=7), mode="L"), "JPEG", quality=90)
    real, calls = stream._safe_prepare, []

    def slow_prepare(source, size, describe):
        calls.append(1)
        time.sleep(0.05)
        return real(source, size, describe)

    monkeypatch.setattr(stream, "_safe_prepare", slow_prepare)
    outcomes = iter_outcomes(tiny_bundle, ((f"x{i}", jpeg) for i in range(40)), batch_size=8, workers=1)
    assert next(outcomes).ok
    outcomes.close()
    assert 8 <= len(calls) < 16  # the first batch, then at most the decode already running

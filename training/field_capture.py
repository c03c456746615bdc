"""Synthetic field captures: phone photographs of films and degraded radiographs, from clean X-rays.

Users photograph a film held against a window or light box and forward it through a
messaging app. ``phone_photo`` imitates that (tint, background margin, perspective skew,
glare, vignetting, JPEG); ``degrade`` makes noisy and badly exposed radiographs. Both are
deterministic for a given ``numpy.random.Generator`` state. ``main`` writes a field-capture
set from the test split plus the full-resolution samples, with a CSV listing:

    python -m training.field_capture --data ../shared/data/chest_xray \\
        --split-manifest models/split_manifest.csv --out /tmp/field --limit 50

Generated images belong outside the repository (``--out`` refuses a path inside it).
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from core.capture.film import side_skew
from core.inputs.raster import decode_gray
from core.preprocessing import prepare_image

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SAMPLES = REPO.parent / "shared" / "data" / "samples" / "full_resolution"
DEGRADE_KINDS = ("noisy", "speckle", "underexposed", "overexposed")
TINTS = ("warm", "blue", "none")
BACKGROUNDS = ("dark", "busy")
FIELD_UPSCALE = 4  # dataset films are 224 px; a phone photographs a full-size film

# Light-source and white-balance casts as RGB gains of a gray surface: tungsten/sunset warm,
# overcast-sky/LED blue. Scaled per photo by a random strength.
_CASTS = {"warm": np.array([1.0, 0.86, 0.62]), "blue": np.array([0.70, 0.86, 1.0]), "none": np.ones(3)}


@dataclass(frozen=True)
class FieldPhoto:
    """A synthetic phone photo: the decoded image, its JPEG bytes and where the film is."""

    rgb: np.ndarray  # (H, W, 3) uint8, decoded from ``jpeg``
    jpeg: bytes
    corners: np.ndarray  # (4, 2) float32 film corners tl, tr, br, bl in ``rgb`` pixels
    params: dict[str, object] = field(default_factory=dict)


def encode_array(image: np.ndarray, fmt: str, **params: object) -> bytes:
    """The bytes of a uint8 gray or RGB array saved by Pillow in ``fmt`` (``params``: e.g. ``quality``)."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=fmt, **params)
    return buffer.getvalue()


def _check_gray(gray: np.ndarray) -> None:
    if not isinstance(gray, np.ndarray) or gray.ndim != 2 or gray.dtype != np.uint8:
        raise ValueError("expected a 2-D uint8 grayscale radiograph")
    if min(gray.shape) < 16:
        raise ValueError(f"radiograph too small: {gray.shape}")


def _background(h: int, w: int, kind: str, rng: np.random.Generator) -> np.ndarray:
    """An (h, w, 3) float32 background in [0, 1]: a dim room, or a busy desk/curtain texture."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    yy /= max(h, 1)
    xx /= max(w, 1)
    if kind == "dark":
        level = rng.uniform(0.02, 0.09)
        slope = rng.uniform(-0.05, 0.05, 2)
        base = level + slope[0] * (xx - 0.5) + slope[1] * (yy - 0.5)
        tint = rng.uniform(0.85, 1.15, 3)
        img = base[..., None] * tint
    else:
        # Several coloured gratings and blotches at different scales and orientations: busy,
        # colourful and without a single dominant straight edge, like a desk or a curtain.
        img = np.zeros((h, w, 3), np.float32)
        for _ in range(4):
            angle = rng.uniform(0, math.pi)
            freq = rng.uniform(3, 40)
            phase = rng.uniform(0, 2 * math.pi)
            wave = 0.5 + 0.5 * np.sin(2 * math.pi * freq * (xx * math.cos(angle) + yy * math.sin(angle)) + phase)
            img += wave[..., None] * rng.uniform(0.0, 1.0, 3).astype(np.float32)
        noise = rng.normal(0, 1, (max(2, h // 16), max(2, w // 16), 3)).astype(np.float32)
        img += 0.6 * cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC)
        img -= img.min()
        img /= img.max() + 1e-6
        img = rng.uniform(0.03, 0.08) + rng.uniform(0.12, 0.25) * img
    return np.clip(img, 0, 1).astype(np.float32)


def _film_quad(fw: float, fh: float, max_skew: float, rng: np.random.Generator) -> np.ndarray:
    """Film corners after a random rotation plus keystone, total side tilt within ``max_skew`` degrees."""
    budget = rng.uniform(0, max_skew)
    rotation = math.radians(rng.uniform(-1, 1) * budget * 0.6)
    rect = np.array([[-fw / 2, -fh / 2], [fw / 2, -fh / 2], [fw / 2, fh / 2], [-fw / 2, fh / 2]], np.float64)
    # Keystone: one pair of opposite sides converges, as when the phone is tilted towards an edge.
    keystone = math.tan(math.radians(budget * 0.4)) * rng.choice([-1, 1])
    if rng.random() < 0.5:
        rect[:2, 0] *= 1 - keystone * fh / fw  # top side shorter or longer: vertical sides tilt
    else:
        rect[[1, 2], 1] *= 1 - keystone * fw / fh  # right side shorter or longer: horizontal sides tilt
    c, s = math.cos(rotation), math.sin(rotation)
    return rect @ np.array([[c, s], [-s, c]])


def make_phone_photo(
    gray: np.ndarray,
    rng: np.random.Generator,
    *,
    tint: str | None = None,
    background: str | None = None,
    max_skew_degrees: float = 15.0,
    margin: tuple[float, float] = (0.06, 0.3),
    jpeg_quality: int | None = None,
    out_long_side: int | None = None,
) -> FieldPhoto:
    """A synthetic phone photo of the film ``gray``, with everything that varies drawn from ``rng``.

    ``tint`` is "warm", "blue" or "none" and ``background`` "dark" or "busy" (random when
    None); ``margin`` bounds each side's background margin as a share of the film's size;
    ``jpeg_quality`` defaults to a random 40–80. The film keeps roughly its resolution unless
    ``out_long_side`` asks for another photo size (area-resampled when shrinking, so no moiré).
    """
    _check_gray(gray)
    tint = tint if tint is not None else str(rng.choice(TINTS, p=[0.45, 0.4, 0.15]))
    background = background if background is not None else str(rng.choice(BACKGROUNDS))
    if tint not in _CASTS or background not in BACKGROUNDS:
        raise ValueError(f"unknown tint {tint!r} or background {background!r}")
    quality = int(jpeg_quality if jpeg_quality is not None else rng.integers(40, 81))
    fh, fw = gray.shape
    quad = _film_quad(fw, fh, max_skew_degrees, rng)
    margins = rng.uniform(*margin, 4) * np.array([fw, fh, fw, fh])  # left, top, right, bottom
    x0, y0 = quad.min(axis=0) - margins[:2]
    x1, y1 = quad.max(axis=0) + margins[2:]
    w, h = math.ceil(x1 - x0), math.ceil(y1 - y0)
    corners = (quad - [x0, y0]).astype(np.float32)

    # Film as a backlit transparency: even the densest parts let some light through, which is
    # what keeps the film's edge visible against the room where the film is black.
    floor = rng.uniform(0.15, 0.3)
    transmit = floor + (1 - floor) * (gray.astype(np.float32) / 255.0)
    src = np.array([[0, 0], [fw - 1, 0], [fw - 1, fh - 1], [0, fh - 1]], np.float32)
    matrix = cv2.getPerspectiveTransform(src, corners)
    film = cv2.warpPerspective(transmit, matrix, (w, h), flags=cv2.INTER_LINEAR)
    coverage = cv2.warpPerspective(np.ones((fh, fw), np.float32), matrix, (w, h), flags=cv2.INTER_LINEAR)

    light = rng.uniform(0.8, 1.0)
    strength = rng.uniform(0.5, 1.0)
    cast = 1 + strength * (_CASTS[tint] - 1)
    cast = cast / (cast @ np.array([0.299, 0.587, 0.114]))  # a cast shifts hue, not brightness
    scene = coverage[..., None] * (light * film)[..., None] + (1 - coverage[..., None]) * _background(
        h, w, background, rng
    )
    scene *= cast.astype(np.float32)

    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    # Glare: a reflection of a lamp or window, a broad near-white blob somewhere on the frame.
    gx, gy = rng.uniform(0, w), rng.uniform(0, h)
    spread = rng.uniform(0.2, 0.5) * max(w, h)
    glare = rng.uniform(0.0, 0.25) * np.exp(-((xx - gx) ** 2 + (yy - gy) ** 2) / (2 * spread**2))
    scene += glare[..., None] * np.array([1.0, 0.98, 0.95], np.float32)
    # Vignetting: phone lenses lose light towards the corners.
    r2 = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2
    scene *= (1 - rng.uniform(0.1, 0.4) * r2 / 2)[..., None]
    scene += rng.normal(0, 0.01, scene.shape).astype(np.float32)
    rgb = np.clip(np.rint(scene * 255), 0, 255).astype(np.uint8)

    if out_long_side is not None and out_long_side != max(w, h):
        k = out_long_side / max(w, h)
        size = (max(1, round(w * k)), max(1, round(h * k)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_CUBIC)
        corners = ((corners + 0.5) * [size[0] / w, size[1] / h] - 0.5).astype(np.float32)

    jpeg = encode_array(rgb, "JPEG", quality=quality)
    decoded = np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"))
    params: dict[str, object] = {
        "tint": tint,
        "background": background,
        "jpeg_quality": quality,
        "skew_degrees": round(side_skew(corners), 1),
    }
    return FieldPhoto(decoded, jpeg, corners, params)


def photograph_film(gray: np.ndarray, rng: np.random.Generator, upscale: int = FIELD_UPSCALE,
                    long_side: tuple[int, int] = (1200, 2000)) -> tuple[np.ndarray, FieldPhoto]:
    """A dataset film enlarged ``upscale`` times (the film a phone would photograph) and its photo.

    The photo's long side is drawn in ``long_side`` (a phone's picture, forwarded). Returns the
    enlarged film too, the clean counterpart of the photo.
    """
    _check_gray(gray)
    big = np.asarray(Image.fromarray(gray).resize((gray.shape[1] * upscale, gray.shape[0] * upscale),
                                                  Image.Resampling.BICUBIC))
    return big, make_phone_photo(big, rng, out_long_side=int(rng.integers(*long_side)))


def phone_photo(gray: np.ndarray, rng: np.random.Generator, **options: object) -> np.ndarray:
    """The decoded ``(H, W, 3)`` uint8 image of :func:`make_phone_photo` (same options)."""
    return make_phone_photo(gray, rng, **options).rgb  # type: ignore[arg-type]


# Photos of training films (``Recipe.photo_share``): one per film, made once per training run, so
# smaller than the checks' photos (about 70 ms each against 260 ms); capture rescales them alike.
TRAINING_UPSCALE = 2
TRAINING_LONG_SIDE = (600, 1000)


def photographed_input(film: bytes, size: int, rng: np.random.Generator, upscale: int = TRAINING_UPSCALE,
                       long_side: tuple[int, int] = TRAINING_LONG_SIDE) -> np.ndarray:
    """The ``(size, size)`` model input that scoring makes of one phone photo of ``film`` (an encoded image).

    ``upscale`` and ``long_side`` are :func:`photograph_film`'s; the defaults are the training photos'.
    """
    photo = photograph_film(decode_gray(film), rng, upscale=upscale, long_side=long_side)[1]
    return prepare_image(photo.jpeg, size)


def degrade(gray: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    """A degraded copy of ``gray`` (2-D uint8): "noisy", "speckle", "underexposed" or "overexposed"."""
    _check_gray(gray)
    x = gray.astype(np.float32) / 255.0
    if kind == "noisy":
        x = x + rng.normal(0, rng.uniform(0.01, 0.06), x.shape).astype(np.float32)
    elif kind == "speckle":
        x = x * (1 + rng.normal(0, rng.uniform(0.05, 0.25), x.shape).astype(np.float32))
    elif kind == "underexposed":
        x = rng.uniform(0.3, 0.6) * x ** rng.uniform(1.2, 2.0)
        x = x + rng.normal(0, 0.01, x.shape).astype(np.float32)
    elif kind == "overexposed":
        lift = rng.uniform(0.1, 0.3)
        x = lift + (1 - lift) * rng.uniform(1.1, 1.6) * x ** rng.uniform(0.5, 0.85)
    else:
        raise ValueError(f"unknown degradation {kind!r}; expected one of {DEGRADE_KINDS}")
    return np.clip(np.rint(x * 255), 0, 255).astype(np.uint8)


def _load_gray(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("L"), dtype=np.uint8)


def _sources(data: Path, manifest: Path, samples: Path, limit: int | None) -> list[tuple[Path, str, str]]:
    """(path, source name for the CSV, label) for the test split (first ``limit``) and the samples."""
    rows: list[tuple[Path, str, str]] = []
    with manifest.open(newline="") as handle:
        test = [r for r in csv.DictReader(handle) if r["split"] == "test"]
    for row in test[:limit] if limit is not None else test:
        rows.append((data / row["file"], row["file"], row["label"]))
    if samples.is_dir():
        for path in sorted(samples.glob("*/*")):
            if path.suffix.lower() in (".jpeg", ".jpg", ".png"):
                rows.append((path, f"samples/full_resolution/{path.parent.name}/{path.name}", path.parent.name))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="dataset root the manifest's paths are relative to")
    parser.add_argument("--split-manifest", type=Path, required=True, help="CSV: file,label,subtype,patient,split")
    parser.add_argument("--out", type=Path, required=True, help="output folder (outside the repository)")
    parser.add_argument("--samples", type=Path, default=DEFAULT_SAMPLES, help="full-resolution samples folder")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N test-split images")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    out = args.out.resolve()
    if out == REPO or REPO in out.parents:
        parser.error(f"--out {out} is inside the repository; generated images must stay out of it")
    out.mkdir(parents=True, exist_ok=True)
    sources = _sources(args.data, args.split_manifest, args.samples, args.limit)
    listing = out / "field_capture.csv"
    written = 0
    with listing.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "source", "label", "kind", "seed", "details"])
        for index, (path, name, label) in enumerate(sources):
            try:
                gray = _load_gray(path)
            except (OSError, ValueError) as exc:
                print(f"skipped {name}: {exc}", file=sys.stderr)
                continue
            stem = f"{index:05d}_{label}_{path.stem}"
            seed = args.seed * 1_000_003 + index
            rng = np.random.default_rng(seed)
            photo = make_phone_photo(gray, rng)
            (out / f"{stem}_phone.jpeg").write_bytes(photo.jpeg)
            details = ";".join(f"{k}={v}" for k, v in photo.params.items())
            writer.writerow([f"{stem}_phone.jpeg", name, label, "phone_photo", seed, details])
            written += 1
            for kind in DEGRADE_KINDS:
                Image.fromarray(degrade(gray, kind, rng)).save(out / f"{stem}_{kind}.png")
                writer.writerow([f"{stem}_{kind}.png", name, label, kind, seed, ""])
                written += 1
    print(f"wrote {written} images from {len(sources)} sources to {out} (listing: {listing.name})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

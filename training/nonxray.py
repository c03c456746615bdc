"""A set of images that are not chest X-rays, for measuring the "cannot assess" gate.

Built offline from sample images that ship inside installed packages (scikit-image,
matplotlib; either may be absent) plus synthetic documents, screenshots, noise,
gradients and near-uniform images. Every image is returned encoded, as a user would
upload it.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

WORDS = ("patient", "report", "clinic", "date", "result", "normal", "dose", "ward", "name", "total",
         "invoice", "meeting", "notes", "summary", "table", "value", "reference", "signature")


def _encode(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    if fmt == "JPEG" and image.mode not in ("L", "RGB"):
        image = image.convert("RGB")
    image.save(buffer, format=fmt, quality=90) if fmt == "JPEG" else image.save(buffer, format=fmt)
    return buffer.getvalue()


def _package_images() -> Iterator[tuple[str, Image.Image]]:
    folders: list[tuple[str, Path]] = []
    try:
        import skimage

        folders.append(("skimage", Path(skimage.__file__).parent / "data"))
    except ImportError:
        pass
    try:
        import matplotlib

        folders.append(("matplotlib", Path(matplotlib.__file__).parent / "mpl-data" / "sample_data"))
    except ImportError:
        pass
    for package, folder in folders:
        for path in sorted(folder.glob("*")):
            if path.suffix.lower() not in (".png", ".jpg", ".jpeg"):
                continue
            try:
                with Image.open(path) as image:
                    image.load()
                    yield f"{package}:{path.stem}", image.copy()
            except Exception:  # noqa: BLE001 - a sample file Pillow cannot read is skipped
                continue


def _variants(name: str, image: Image.Image, rng: np.random.Generator) -> Iterator[tuple[str, Image.Image]]:
    """The picture itself, grayscale and random crops, so each source counts several times."""
    image = image.convert("RGB") if image.mode not in ("L", "RGB") else image
    yield name, image
    if image.mode == "RGB":
        yield f"{name}:gray", image.convert("L")
    width, height = image.size
    for i in range(2):
        scale = rng.uniform(0.5, 0.85)
        w, h = max(8, int(width * scale)), max(8, int(height * scale))
        x, y = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
        crop = image.crop((x, y, x + w, y + h))
        if crop.size[0] < 300:
            crop = crop.resize((crop.size[0] * 2, crop.size[1] * 2), Image.Resampling.BICUBIC)
        yield f"{name}:crop{i}", crop.convert("L") if i else crop


def _document(rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    page = Image.new("L", size, 255)
    draw = ImageDraw.Draw(page)
    font = ImageFont.load_default(size=int(rng.integers(14, 28)))
    y = int(rng.integers(20, 60))
    while y < size[1] - 40:
        words = " ".join(rng.choice(WORDS, int(rng.integers(3, 10))))
        draw.text((int(rng.integers(20, 60)), y), words.capitalize(), fill=int(rng.integers(0, 60)), font=font)
        y += int(rng.integers(24, 44))
        if rng.random() < 0.1:
            draw.line((20, y, size[0] - 20, y), fill=0, width=2)
            y += 12
    return page


def _screenshot(rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    shot = Image.new("RGB", size, tuple(int(v) for v in rng.integers(220, 256, 3)))
    draw = ImageDraw.Draw(shot)
    font = ImageFont.load_default(size=16)
    draw.rectangle((0, 0, size[0], 40), fill=tuple(int(v) for v in rng.integers(30, 120, 3)))
    draw.text((12, 10), "Dashboard - Ward list", fill=(255, 255, 255), font=font)
    for _ in range(int(rng.integers(4, 10))):
        x0, y0 = int(rng.integers(0, size[0] - 120)), int(rng.integers(50, size[1] - 60))
        x1, y1 = x0 + int(rng.integers(80, 300)), y0 + int(rng.integers(30, 150))
        draw.rectangle((x0, y0, x1, y1), fill=tuple(int(v) for v in rng.integers(150, 256, 3)), outline=(90, 90, 90))
        draw.text((x0 + 6, y0 + 6), " ".join(rng.choice(WORDS, 2)), fill=(20, 20, 20), font=font)
    return shot if rng.random() < 0.5 else shot.convert("L")


def _synthetic(rng: np.random.Generator) -> Iterator[tuple[str, Image.Image]]:
    for i in range(20):
        size = (int(rng.integers(600, 1300)), int(rng.integers(800, 1600)))
        yield f"synthetic:document{i}", _document(rng, size)
    for i in range(20):
        yield f"synthetic:screenshot{i}", _screenshot(rng, (int(rng.integers(800, 1600)), int(rng.integers(600, 1000))))
    for i in range(10):
        yield f"synthetic:colour_noise{i}", Image.fromarray(rng.integers(0, 256, (400, 500, 3), dtype=np.uint8))
    for i in range(10):
        gray = rng.normal(128, rng.uniform(10, 70), (500, 450)).clip(0, 255).astype(np.uint8)
        yield f"synthetic:gray_noise{i}", Image.fromarray(gray)
    for i in range(10):
        ramp = np.linspace(rng.uniform(0, 100), rng.uniform(150, 255), 512)
        grad = np.tile(ramp, (512, 1)).T if i % 2 else np.tile(ramp, (512, 1))
        yield f"synthetic:gradient{i}", Image.fromarray(grad.astype(np.uint8))
    for i in range(10):
        flat = np.full((480, 480), int(rng.integers(0, 256)), dtype=np.int16) + rng.integers(-2, 3, (480, 480))
        yield f"synthetic:uniform{i}", Image.fromarray(flat.clip(0, 255).astype(np.uint8))


def build_nonxray_set(seed: int = 7) -> list[tuple[str, bytes]]:
    """``(name, encoded bytes)`` for every non-X-ray image in the measurement set."""
    rng = np.random.default_rng(seed)
    out: list[tuple[str, bytes]] = []
    for name, image in _package_images():
        for variant, picture in _variants(name, image, rng):
            out.append((variant, _encode(picture, "PNG" if len(out) % 2 else "JPEG")))
    for name, picture in _synthetic(rng):
        out.append((name, _encode(picture, "PNG" if len(out) % 2 else "JPEG")))
    return out

"""The bundled example X-rays offered on the pages (CC BY 4.0, from the training dataset)."""

from __future__ import annotations

from pathlib import Path

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "assets" / "examples"
EXAMPLE_SUFFIXES = (".jpeg", ".jpg", ".png")


def example_images(folder: Path = EXAMPLES_DIR) -> dict[str, Path]:
    """The bundled example X-rays by display name: ``normal_IM-0117-0001.jpeg`` → ``Normal · IM-0117-0001``."""
    if not folder.is_dir():
        return {}
    out = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in EXAMPLE_SUFFIXES:
            label, _, rest = path.stem.partition("_")
            out[f"{label.capitalize()} · {rest}" if rest else label] = path
    return out

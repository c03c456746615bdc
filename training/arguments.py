"""Command-line arguments shared by the training commands that work on a trained model."""

from __future__ import annotations

import argparse
from pathlib import Path

from core.model import DEFAULT_MODEL_PATH


def model_parser(doc: str | None, model_required: bool = False) -> argparse.ArgumentParser:
    """A parser with ``--model``, ``--data`` and ``--manifest`` (the split manifest beside the model by default)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    if model_required:
        parser.add_argument("--model", type=Path, required=True)
    else:
        parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_PATH)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/chest_xray"))
    parser.add_argument("--manifest", type=Path, default=None, help="default: split_manifest.csv beside the model")
    return parser

"""Command-line arguments shared by the training commands."""

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


def run_parser(doc: str | None, name: str, epochs: int = 10, patience: int = 4) -> argparse.ArgumentParser:
    """A parser for a command that trains into ``--out``: data, name and the training budget."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="dataset root holding train/ (and val/, test/)")
    parser.add_argument("--out", type=Path, default=Path("models"))
    parser.add_argument("--name", default=name)
    parser.add_argument("--epochs", type=int, default=epochs)
    parser.add_argument("--patience", type=int, default=patience)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--limit-per-class", type=int, default=None, help="smoke runs: patients per label and split")
    return parser

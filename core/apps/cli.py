"""Batch scoring from the command line.

    python -m core.cli predict PATH [PATH ...] --output results.csv [--threshold T]

PATH is a file or a folder (searched recursively); a ZIP archive is opened in memory and
each of its files gets its own row, named ``archive.zip/member``. The CSV has one row per input file
with the columns ``file,probability,prediction,error``. Exit status: 0 when every file
was scored, 1 when some were not (all rows are still written), 2 on usage errors.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from typing import TextIO

from core.inputs.sources import collect_files, iter_path_sources

CSV_COLUMNS = ("file", "probability", "prediction", "error")
EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2


class ProgressBar:
    """A one-line progress bar on a text stream; counts only, never file names."""

    def __init__(self, total: int, stream: TextIO, enabled: bool) -> None:
        self.total, self.stream, self.enabled = total, stream, enabled and total > 0

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        width = 30
        filled = int(width * done / self.total)
        self.stream.write(f"\rscoring [{'#' * filled}{'.' * (width - filled)}] {done}/{self.total}")
        if done == self.total:
            self.stream.write("\n")
        self.stream.flush()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core.cli", description="Pneumonia triage for chest X-rays.")
    sub = parser.add_subparsers(dest="command", required=True)
    predict = sub.add_parser("predict", help="score images and write a CSV")
    predict.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders")
    predict.add_argument("--output", "-o", required=True, help="CSV file to write")
    predict.add_argument("--threshold", type=float, default=None,
                         help="decision threshold on P(pneumonia); default: the model's operating threshold")
    predict.add_argument("--model", default=None, help="path to a .keras model with its .json metadata beside it")
    predict.add_argument("--batch-size", type=int, default=32)
    predict.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                         help="show a progress bar on stderr (default: when stderr is a terminal)")
    return parser


def predict_command(args: argparse.Namespace) -> int:
    """Run ``predict``: score every file and write all rows, whatever happens to some."""
    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        print("error: --threshold must be between 0 and 1", file=sys.stderr)
        return EXIT_USAGE
    if args.batch_size < 1:
        print("error: --batch-size must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    files = collect_files(args.paths)
    if not files:
        print("error: no image files found in the given paths", file=sys.stderr)
        return EXIT_USAGE

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from core.model import DEFAULT_MODEL_PATH, ModelError, load_bundle

    try:
        bundle = load_bundle(args.model or DEFAULT_MODEL_PATH)
    except ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE

    show = sys.stderr.isatty() if args.progress is None else args.progress
    bar = ProgressBar(len(files), sys.stderr, show)
    try:
        with open(args.output, "w", newline="", encoding="utf-8") as handle:
            failed = _write_rows(handle, bundle, files, args, bar)
    except OSError as exc:
        print(f"error: cannot write {args.output}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    scored = len(files) - failed
    print(f"scored {scored} of {len(files)} files; {failed} could not be scored", file=sys.stderr)
    return EXIT_SOME_FAILED if failed else EXIT_OK


def _write_rows(handle: TextIO, bundle, files: list[str], args: argparse.Namespace, bar: ProgressBar) -> int:
    """Score ``files`` and write one CSV row each; returns how many could not be scored."""
    from core.scoring import decide, iter_outcomes

    writer = csv.writer(handle)
    writer.writerow(CSV_COLUMNS)
    threshold = bundle.threshold if args.threshold is None else args.threshold
    failed = 0
    items = iter_path_sources(files)
    for done, result in enumerate(iter_outcomes(bundle, items, args.batch_size), 1):
        if result.ok:
            # Decide on the printed value so a row can never disagree with its own label.
            probability = round(float(result.probability), 6)
            writer.writerow([result.name, f"{probability:.6f}", decide(probability, threshold), ""])
        else:
            failed += 1
            writer.writerow([result.name, "", "", " ".join(str(result.error).split())])
        bar.update(done)
    return failed


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    args = _parser().parse_args(argv)
    if args.command == "predict":
        return predict_command(args)
    return EXIT_USAGE  # pragma: no cover - argparse enforces a known command


if __name__ == "__main__":
    sys.exit(main())

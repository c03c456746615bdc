"""Batch scoring from the command line.

    python -m core.cli predict PATH [PATH ...] --output results.csv [--threshold T | --profile site.json]
    python -m core.cli calibrate PATH [PATH ...] --output site.json [--target-recall R | --max-referred F
        | --threshold T] [--site NAME] [--labels labels.csv] [--refit none|temperature|platt|isotonic]

PATH is a file or a folder (searched recursively); a ZIP archive is opened in memory and
each of its files gets its own row, named ``archive.zip/member``. The CSV has one row per input file
with the columns ``file,probability,prediction,error``. Exit status: 0 when every file
was scored, 1 when some were not (all rows are still written), 2 on usage errors.
With ``--profile`` the site profile's threshold and calibration are used.

``calibrate`` reads a labelled local set (``NORMAL/`` and ``PNEUMONIA/`` folders, or a
``labels.csv``), scores it and writes a site profile: exit 0 when written, 2 otherwise.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from typing import TYPE_CHECKING, TextIO

from core.inputs.sources import collect_files, iter_path_sources

if TYPE_CHECKING:
    from core.scoring.outcome import Outcome

# The first four are the contract others rely on; new columns only ever go after them.
CSV_COLUMNS = ("file", "probability", "prediction", "error", "note")
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
    predict.add_argument("--profile", default=None,
                         help="site profile (JSON from 'calibrate'): use its threshold and calibration")
    predict.add_argument("--model", default=None, help="path to a .keras model with its .json metadata beside it")
    predict.add_argument("--batch-size", type=int, default=32)
    predict.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                         help="show a progress bar on stderr (default: when stderr is a terminal)")
    _calibrate_parser(sub)
    return parser


def _calibrate_parser(sub: argparse._SubParsersAction) -> None:
    calibrate = sub.add_parser("calibrate", help="choose a site's operating point on its own labelled images")
    calibrate.add_argument("paths", nargs="+", metavar="PATH",
                           help="folders or ZIPs with NORMAL/ and PNEUMONIA/ inside, or images with a labels.csv")
    calibrate.add_argument("--output", "-o", required=True, help="site profile (JSON) to write")
    rule = calibrate.add_mutually_exclusive_group()
    rule.add_argument("--target-recall", type=float, default=None,
                      help="highest threshold keeping local sensitivity >= R (default rule, R = 0.95)")
    rule.add_argument("--max-referred", type=float, default=None,
                      help="lowest threshold referring at most a share F of the images")
    rule.add_argument("--threshold", type=float, default=None, help="a threshold set by hand")
    calibrate.add_argument("--site", default=None, help="site name stored in the profile (default: the output's stem)")
    calibrate.add_argument("--labels", default=None, help="a labels.csv with the columns file,label[,patient]")
    calibrate.add_argument("--refit", default="none", choices=("none", "temperature", "platt", "isotonic"),
                           help="refit the probability calibration on the local set (default: keep the shipped one)")
    calibrate.add_argument("--bootstrap", type=int, default=1000,
                           help="bootstrap resamples for the intervals (0 for none, else at least 100)")
    calibrate.add_argument("--model", default=None, help="path to a .keras model with its .json metadata beside it")
    calibrate.add_argument("--batch-size", type=int, default=32)
    calibrate.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                           help="show a progress bar on stderr (default: when stderr is a terminal)")


def _load_model(path: str | None):
    """The model bundle (``None`` after printing why it cannot be used)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from core.model import DEFAULT_MODEL_PATH, ModelError, load_bundle

    try:
        return load_bundle(path or DEFAULT_MODEL_PATH)
    except ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None


def predict_command(args: argparse.Namespace) -> int:
    """Run ``predict``: score every file and write all rows, whatever happens to some."""
    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        print("error: --threshold must be between 0 and 1", file=sys.stderr)
        return EXIT_USAGE
    if args.batch_size < 1:
        print("error: --batch-size must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    if args.threshold is not None and args.profile is not None:
        print("error: --threshold and --profile cannot be combined (the profile sets the threshold)", file=sys.stderr)
        return EXIT_USAGE
    files = collect_files(args.paths)
    if not files:
        print("error: no image files found in the given paths", file=sys.stderr)
        return EXIT_USAGE
    profile = None
    if args.profile is not None:
        from core.calibration import ProfileError, SiteProfile, check_model

        try:
            profile = SiteProfile.read(args.profile)
        except ProfileError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USAGE

    bundle = _load_model(args.model)
    if bundle is None:
        return EXIT_USAGE
    if profile is not None:
        try:
            check_model(profile, bundle.metadata.sha256)
        except ProfileError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        print(f"site profile {profile.site!r} ({profile.profile_id}): threshold {profile.threshold:.4f}",
              file=sys.stderr)

    show = sys.stderr.isatty() if args.progress is None else args.progress
    bar = ProgressBar(len(files), sys.stderr, show)
    try:
        with open(args.output, "w", newline="", encoding="utf-8") as handle:
            failed = _write_rows(handle, bundle, files, args, bar, profile)
    except OSError as exc:
        print(f"error: cannot write {args.output}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    scored = len(files) - failed
    print(f"scored {scored} of {len(files)} files; {failed} could not be scored", file=sys.stderr)
    return EXIT_SOME_FAILED if failed else EXIT_OK


def _write_rows(handle: TextIO, bundle, files: list[str], args: argparse.Namespace, bar: ProgressBar,
                profile=None) -> int:
    """Score ``files`` and write one CSV row each; returns how many could not be scored.

    With a site ``profile`` its calibration maps the raw output and its threshold decides.
    """
    from core.calibration import Calibration
    from core.scoring import iter_outcomes

    writer = csv.writer(handle)
    writer.writerow(CSV_COLUMNS)
    threshold = bundle.threshold if args.threshold is None else args.threshold
    calibration = None
    if profile is not None:
        threshold, calibration = profile.threshold, Calibration.from_dict(profile.calibration)
    failed = 0
    items = iter_path_sources(files)
    for done, result in enumerate(iter_outcomes(bundle, items, args.batch_size, calibration=calibration), 1):
        writer.writerow(csv_row(result, threshold))
        failed += not result.ok
        bar.update(done)
    return failed


def csv_row(result: Outcome, threshold: float) -> list[str]:
    """The ``CSV_COLUMNS`` row for one ``core.scoring.Outcome`` (shared with ``core.distributed``).

    Scored: the probability to 6 decimals and the decision on that printed value, no error;
    otherwise empty probability and prediction and the one-line error. Text is on one line.
    """
    from core.scoring import decide

    note = " ".join(result.note.split())
    if result.ok:
        # Decide on the printed value so a row can never disagree with its own label.
        probability = round(float(result.probability), 6)
        return [result.name, f"{probability:.6f}", decide(probability, threshold), "", note]
    return [result.name, "", "", " ".join(str(result.error).split()), note]


def _calibrate_rule(args: argparse.Namespace) -> tuple[str, float]:
    """The threshold rule and its value from the mutually exclusive options; ValueError when out of range."""
    if args.max_referred is not None:
        rule, value, option = "max_referred", args.max_referred, "--max-referred"
    elif args.threshold is not None:
        rule, value, option = "manual", args.threshold, "--threshold"
    else:
        rule, option = "sensitivity", "--target-recall"
        value = 0.95 if args.target_recall is None else args.target_recall
    low_ok = rule == "manual"  # a threshold of 0 is a (silly) choice; a target of 0 is not
    if not (0.0 <= value <= 1.0) or (value == 0.0 and not low_ok):
        raise ValueError(f"{option} must be {'between 0 and 1' if low_ok else 'above 0 and at most 1'}")
    return rule, value


def _list_names(title: str, entries, stream: TextIO) -> None:
    """Names with reasons on the user's own terminal (never in the profile)."""
    if entries:
        print(f"{title} ({len(entries)}):", file=stream)
        for name, reason in entries:
            print(f"  {name}: {' '.join(str(reason).split())}", file=stream)


def calibrate_command(args: argparse.Namespace) -> int:
    """Run ``calibrate``: read the labelled set, score it, choose the threshold, write the site profile."""
    from pathlib import Path

    from core.apps.site_calibration import calibrate_scores, score_labelled, summary_lines
    from core.calibration import ProfileError
    from core.calibration.labelled import read_labelled
    from core.calibration.profile import check_site_name

    try:
        rule, value = _calibrate_rule(args)
        if args.bootstrap != 0 and args.bootstrap < 100:
            raise ValueError("--bootstrap must be 0 (no intervals) or at least 100")
        if args.batch_size < 1:
            raise ValueError("--batch-size must be at least 1")
        site = check_site_name(args.site if args.site is not None else Path(args.output).stem)
        if not Path(args.output).absolute().parent.is_dir():  # fail now, not after scoring every image
            raise ValueError(f"the folder to write {args.output} in does not exist")
        labelled = read_labelled(args.paths, args.labels)
    except (ValueError, ProfileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    _list_names("skipped, no usable label", labelled.skipped, sys.stderr)
    normal, pneumonia = labelled.count(0), labelled.count(1)
    if not labelled.items:
        print("error: no labelled images found (put them in NORMAL/ and PNEUMONIA/ folders, or list them in "
              "a labels.csv)", file=sys.stderr)
        return EXIT_USAGE
    if not (normal and pneumonia):
        print(f"error: the local set needs both NORMAL and PNEUMONIA images (found {normal} NORMAL, "
              f"{pneumonia} PNEUMONIA)", file=sys.stderr)
        return EXIT_USAGE

    bundle = _load_model(args.model)
    if bundle is None:
        return EXIT_USAGE
    show = sys.stderr.isatty() if args.progress is None else args.progress
    bar = ProgressBar(len(labelled.items), sys.stderr, show)
    scores = score_labelled(bundle, labelled, batch_size=args.batch_size, progress=lambda done, _: bar.update(done))
    _list_names('refused by the "cannot assess" gate, not counted', scores.refused, sys.stderr)
    _list_names("unreadable, not counted", scores.unreadable, sys.stderr)
    try:
        result = calibrate_scores(scores, site=site, model_sha256=bundle.metadata.sha256,
                                  shipped=bundle.calibration, rule=rule, value=value, refit=args.refit,
                                  n_boot=args.bootstrap)
    except (ValueError, ProfileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print("\n".join(summary_lines(result)))
    for warning in result.warnings:
        print(f"warning: {warning}")
    try:
        result.profile.write(args.output)
    except OSError as exc:
        print(f"error: cannot write {args.output}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    print(f"wrote site profile {result.profile.profile_id} to {args.output}")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    args = _parser().parse_args(argv)
    if args.command == "predict":
        return predict_command(args)
    if args.command == "calibrate":
        return calibrate_command(args)
    return EXIT_USAGE  # pragma: no cover - argparse enforces a known command


if __name__ == "__main__":
    sys.exit(main())

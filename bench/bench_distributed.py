"""Archive-scale throughput: the CLI against Ray Data with 1 and 2 workers, on the same images.

    python bench/bench_distributed.py [--images 10000] [--side 512] [--batch-size 32] [--model M]

Generates ``--images`` JPEGs in a temporary folder: variations (crop, brightness, size) of the
16 full-resolution samples in ../shared/data/samples, downscaled to about ``--side`` px, or
synthetic films without them, plus a few bad files (truncated, not an image, blank) so every
status appears. Synthetic test images, never patient data; the folder is deleted at the end.
Then runs, one after the other and each as its own process:

1. ``python -m core.cli predict`` (one process; TensorFlow uses every core),
2. ``python -m core.distributed score --workers 1`` (a local Ray; 1 CPU per worker),
3. ``python -m core.distributed score --workers 2``,

and prints images/s end to end (the command's wall time, start-up included) and for the
scoring phase alone (from the command's summary line: Ray Data from the first worker starting
to the last batch saved), the peak resident memory (the CLI process; each Ray worker as it
reports its own ``ru_maxrss``) and whether both Ray runs agree with the CLI (same rows, same
errors, probabilities within 1e-6). Last, what each added node should bring, from the measured
per-worker rate with all CPUs busy.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO.parent / "shared" / "data" / "samples" / "full_resolution"
SUMMARY = re.compile(r"this run: scored (\d+), refused (\d+), unreadable (\d+), skipped (\d+); (\d+) images in "
                     r"([\d.]+) s = ([\d.]+) images/s on (\d+) workers \(peak worker memory (\d+) MB\)")
MEMORY_LIMIT_MB = 1536


@dataclass
class Run:
    """One command's measurements."""

    label: str
    wall: float
    rows: int
    scoring_rate: float | None = None  # images/s of the scoring phase (Ray runs)
    scoring_seconds: float | None = None
    peak_mb: float = 0.0
    code: int = 0


def originals(side: int) -> tuple[list[Image.Image], str]:
    """Grayscale sources to vary: the 16 samples downscaled, or synthetic films without them."""
    files = sorted(SAMPLES.glob("*/*.jpeg")) if SAMPLES.is_dir() else []
    if files:
        images = []
        for path in files:
            image = Image.open(path).convert("L")
            image.thumbnail((side * 1.25, side * 1.25), Image.Resampling.LANCZOS)
            images.append(image)
        return images, f"variations of the {len(files)} full-resolution samples in {SAMPLES}"
    rng = np.random.default_rng(0)
    images = []
    for i in range(16):
        yy, xx = np.mgrid[0:side, 0:side].astype(np.float32)
        rows = ((yy - side / 2) / (side * 0.3)) ** 2
        base = 150 - 70 * np.exp(-(((xx - side * 0.33 - i) / (side * 0.15)) ** 2 + rows))
        base -= 70 * np.exp(-(((xx - side * 0.67 + i) / (side * 0.15)) ** 2 + rows))
        images.append(Image.fromarray(np.clip(base + rng.normal(0, 10, base.shape), 0, 255).astype(np.uint8), "L"))
    return images, "synthetic films (sample images not found; most may be refused by the gate)"


def generate(folder: Path, count: int, side: int) -> tuple[int, str]:
    """Write ``count`` inputs (a few of them bad) in 100-image sub-folders; returns the bad count."""
    sources, description = originals(side)
    rng = np.random.default_rng(13)
    bad = min(15, count // 100)
    for i in range(count - bad):
        source = sources[i % len(sources)]
        width, height = source.size
        crop = rng.uniform(0.85, 1.0)
        w, h = int(width * crop), int(height * crop)
        left, top = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
        image = source.crop((left, top, left + w, top + h))
        scale = side / max(w, h) * rng.uniform(0.9, 1.1)
        image = image.resize((max(64, int(w * scale)), max(64, int(h * scale))), Image.Resampling.BILINEAR)
        pixels = np.asarray(image, dtype=np.float32) * rng.uniform(0.9, 1.1) + rng.uniform(-12, 12)
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "L")
        target = folder / f"batch{i // 100:03d}" / f"case{i:05d}.jpeg"
        target.parent.mkdir(parents=True, exist_ok=True)
        image.save(target, format="JPEG", quality=int(rng.integers(85, 96)))
    bad_folder = folder / "bad"
    bad_folder.mkdir(exist_ok=True)
    good = next(folder.glob("batch000/*.jpeg")).read_bytes()
    for k in range(bad):
        kind = k % 3
        if kind == 0:
            (bad_folder / f"truncated{k}.jpeg").write_bytes(good[: len(good) // 3])
        elif kind == 1:
            (bad_folder / f"page{k}.jpg").write_text("<html>not an x-ray</html>")
        else:
            buffer = io.BytesIO()
            Image.new("L", (side, side), 120 + k).save(buffer, format="PNG")
            (bad_folder / f"blank{k}.png").write_bytes(buffer.getvalue())
    return bad, description


def run_command(label: str, command: list[str], log: Path) -> tuple[Run, str]:
    """Run one command, timing it; its stderr goes to ``log`` (Ray's own logs are long)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    start = time.perf_counter()
    with open(log, "w", encoding="utf-8") as stderr:
        code = subprocess.run(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=stderr).returncode
    wall = time.perf_counter() - start
    text = log.read_text(encoding="utf-8", errors="replace")
    if code not in (0, 1):
        sys.exit(f"error: {label} failed with exit status {code}:\n{text[-3000:]}")
    return Run(label, wall, 0, code=code), text


def read_cli(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return {row["file"]: row for row in csv.DictReader(handle)}


def compare(cli: dict[str, dict[str, str]], parquet: Path) -> tuple[int, float]:
    """Rows that differ from the CLI's (other files, errors or decisions) and the largest probability gap."""
    import pyarrow.parquet as pq

    rows = {r["file"]: r for r in pq.read_table(parquet).to_pylist()}
    mismatched = len(set(rows) ^ set(cli))
    gap = 0.0
    for name in set(rows) & set(cli):
        row, expected = rows[name], cli[name]
        if (row["error"] or "") != expected["error"] or (row["prediction"] or "") != expected["prediction"]:
            mismatched += 1
        elif expected["probability"]:
            difference = abs(row["probability"] - float(expected["probability"]))
            gap = max(gap, difference)
            mismatched += difference > 1e-6 + 1e-12
    return mismatched, gap


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--side", type=int, default=512, help="longest side of the generated images (px)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--model", default=None, help="a .keras model (default: the shipped one)")
    parser.add_argument("--node-cpus", type=int, default=16, help="CPUs of the node in the extrapolation")
    args = parser.parse_args()
    try:
        import ray  # noqa: F401
    except ImportError:
        print("error: needs Ray: pip install -r requirements-distributed.txt", file=sys.stderr)
        return 2

    work = Path(tempfile.mkdtemp(prefix="bench_distributed_"))
    try:
        images = work / "images"
        start = time.perf_counter()
        bad, description = generate(images, args.images, args.side)
        size = sum(p.stat().st_size for p in images.rglob("*") if p.is_file()) / 2**20
        print(f"inputs     {args.images} files ({size:.0f} MB), {description}; {bad} of them bad; "
              f"generated in {time.perf_counter() - start:.0f} s", flush=True)
        print(f"machine    {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
              f"load average {os.getloadavg()[0]:.1f} at the start", flush=True)
        model = ["--model", args.model] if args.model else []
        batch = ["--batch-size", str(args.batch_size)]

        cli_csv = work / "cli.csv"
        cli, _ = run_command("CLI (1 process, all cores)", [sys.executable, "-m", "core.cli", "predict", str(images),
                                                              "--output", str(cli_csv), "--no-progress", *batch,
                                                              *model], work / "cli.log")
        cli.peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # the only child so far
        cli_rows = read_cli(cli_csv)
        cli.rows = len(cli_rows)
        runs = [cli]
        print(f"done       {cli.label}: {cli.wall:.0f} s", flush=True)
        checks = []
        for workers in (1, 2):
            output = work / f"ray{workers}.parquet"
            label = f"Ray Data, {workers} worker{'s' if workers > 1 else ''} (1 CPU each)"
            run, text = run_command(label, [sys.executable, "-m", "core.distributed", "score", str(images),
                                            "--output", str(output), "--workers", str(workers), "--num-cpus", "2",
                                            "--no-progress", *batch, *model], work / f"ray{workers}.log")
            match = SUMMARY.search(text)
            if match is None:
                sys.exit(f"error: no summary line from {label}:\n{text[-3000:]}")
            run.rows = int(match.group(5))
            run.scoring_seconds, run.scoring_rate = float(match.group(6)), float(match.group(7))
            run.peak_mb = float(match.group(9))
            runs.append(run)
            checks.append((label, *compare(cli_rows, output), match.group(1), match.group(2), match.group(3)))
            print(f"done       {label}: {run.wall:.0f} s", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print()
    print(f"{'run':38} {'rows':>6} {'wall s':>7} {'images/s':>9} {'scoring s':>10} {'scoring img/s':>14} "
          f"{'peak RSS MB':>12}")
    for run in runs:
        scoring = f"{'-':>10} {'-':>14}"
        if run.scoring_rate:
            scoring = f"{run.scoring_seconds:10.0f} {run.scoring_rate:14.2f}"
        kind = "process" if run is cli else "per worker"
        print(f"{run.label:38} {run.rows:6d} {run.wall:7.0f} {run.rows / run.wall:9.2f} {scoring} "
              f"{run.peak_mb:6.0f} ({kind})")
    print()
    for label, mismatched, gap, scored, refused, unreadable in checks:
        verdict = "identical to the CLI" if mismatched == 0 else f"{mismatched} rows DIFFER from the CLI"
        print(f"{label}: {verdict} (largest probability gap {gap:.1e}; {scored} scored, {refused} refused, "
              f"{unreadable} unreadable)")
    one, two = runs[1], runs[2]
    efficiency = two.scoring_rate / (2 * one.scoring_rate)
    worst = max(one.peak_mb, two.peak_mb)
    print(f"peak worker memory {worst:.0f} MB: {'within' if worst <= MEMORY_LIMIT_MB else 'ABOVE'} the "
          f"{MEMORY_LIMIT_MB} MB target (a worker holds one batch, whatever the archive size)")
    print()
    full = two.scoring_rate / 2  # images/s per worker with every CPU of the machine busy
    print(f"1 worker: {one.scoring_rate:.2f} images/s; 2 workers: {two.scoring_rate:.2f} images/s = "
          f"{efficiency:.0%} of twice one worker ({full:.2f} images/s per worker with both CPUs busy; load "
          f"average {os.getloadavg()[0]:.1f} at the end)")
    node = args.node_cpus
    print(f"expected per added node: about {full:.2f} images/s per one-CPU worker, so a {node}-CPU node with "
          f"{node} workers adds about {node * full:.0f} images/s ({node} × {full:.2f}) and scores 10,000 images "
          f"in about {10_000 / (node * full) / 60:.1f} min, if storage keeps up (the per-CPU rate depends on the "
          "CPU, on image size and on other load; the driver only lists, merges and writes results)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Memory and time for a 500-image batch through the dashboard's worklist path.

    python bench/bench_worklist_memory.py [--images 500]

Uses the full-resolution originals in ../shared/data/samples (repeated), held in memory
as uploads are, and prints resident memory before and after scoring plus the peak.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

SAMPLES = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "samples" / "full_resolution"


def _status_mb(field: str) -> int:
    text = Path("/proc/self/status").read_text()
    return int(text.split(f"{field}:")[1].split()[0]) // 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=500)
    args = parser.parse_args()
    files = sorted(SAMPLES.glob("*/*.jpeg"))
    if not files:
        print(f"no sample images under {SAMPLES}", file=sys.stderr)
        return 2
    from core.apps.dashboard import load_dashboard_model
    from ui.worklist import score_worklist

    model = load_dashboard_model()
    items = [(f"case{i}.jpeg", files[i % len(files)].read_bytes()) for i in range(args.images)]
    before = _status_mb("VmRSS")
    start = time.perf_counter()
    entries = score_worklist(model.bundle, items)
    seconds = time.perf_counter() - start
    size = sum(len(data) for _, data in items) / 2**20
    print(f"images            {len(items)} full-resolution JPEGs ({size:.0f} MB of uploads in memory)")
    print(f"scored            {sum(e.outcome.ok for e in entries)}")
    print(f"time              {seconds:.1f} s ({len(items) / seconds:.0f} images/s)")
    print(f"resident memory   {before} MB before, {_status_mb('VmRSS')} MB after, peak {_status_mb('VmHWM')} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Archive-scale scoring on Ray: same rows as the CLI, resumable after a kill, clear without Ray.

Everything runs on one local Ray limited to 2 CPUs (the subprocess in the kill test joins
it with ``--address``), with the tiny test model and synthetic images made here.
"""

from __future__ import annotations

import csv
import io
import os
import re
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from core.apps import distributed
from core.apps.cli import main as cli_main
from helpers import REPO, image_bytes

FILLER = 40  # larger PNGs, so the kill lands half-way
SUMMARY = re.compile(r"this run: scored (\d+), refused (\d+), unreadable (\d+), skipped (\d+); (\d+) images in "
                     r"[\d.]+ s = [\d.]+ images/s on (\d+) workers \(peak worker memory (\d+) MB\)$")


def summary_of(err: str) -> dict[str, int]:
    """The counts from the final summary line (which must be the last line)."""
    match = SUMMARY.search(err.strip().splitlines()[-1])
    assert match, err[-2000:]
    keys = ("scored", "refused", "unreadable", "skipped", "images", "workers", "peak_mb")
    return dict(zip(keys, map(int, match.groups()), strict=True))


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def ray_local():
    """One local Ray with 2 CPUs for the whole module (the command reuses a running Ray)."""
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Good images in sub-folders, bad files of every kind, a ZIP; a second tree read as a file:// URI.

    Plus ``FILLER`` larger PNGs that take a while to decode, so a run can be killed half-way.
    """
    root = tmp_path_factory.mktemp("distributed")
    local = root / "cases"
    for i, rel in enumerate(["a.jpeg", "ward1/b.png", "ward1/deep/c.jpeg", "ward2/d.jpeg"]):
        path = local / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(image_bytes(120 + 8 * i, 100, "PNG" if rel.endswith(".png") else "JPEG", seed=i))
    for i in range(FILLER):
        folder = root / "filler" / f"day{i % 4}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"img{i:03d}.png").write_bytes(image_bytes(600, 500, "PNG", seed=100 + i))
    (local / "bad").mkdir()
    (local / "bad" / "truncated.jpeg").write_bytes(image_bytes(400, 300)[:2000])  # corrupt image
    (local / "bad" / "page.jpg").write_text("<html><body>not an x-ray</body></html>")  # not an image
    (local / "bad" / "empty.png").write_bytes(b"")
    (local / ".hidden.jpeg").write_bytes(image_bytes())  # skipped by both, like the CLI
    (local / "batch.zip").write_bytes(_zip_bytes({
        "p1/x.jpeg": image_bytes(110, 90, seed=11), "p1/y.png": image_bytes(100, 100, "PNG", seed=12),
        "broken.jpeg": b"\xff\xd8\xff not really", "inner.zip": _zip_bytes({"z.jpeg": image_bytes()}),
        "__MACOSX/._x.jpeg": b"clutter"}))
    (local / "not_a.zip").write_text("plain text with a .zip name")
    remote = root / "bucket"
    remote.mkdir()
    (remote / "r1.jpeg").write_bytes(image_bytes(130, 110, seed=21))
    (remote / "r2.jpeg").write_bytes(b"GIF89a nope")
    (remote / "remote.zip").write_bytes(_zip_bytes({"m.jpeg": image_bytes(100, 120, seed=22), "n.jpeg": b"\x00"}))
    return {"root": root, "filler": root / "filler", "local": local, "remote": remote,
            "missing": root / "missing.jpeg"}


def _zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _run_main(args: list[str]) -> tuple[int, str]:
    """``distributed.main`` with stderr captured (module fixtures cannot use capsys)."""
    buffer, saved = io.StringIO(), sys.stderr
    sys.stderr = buffer
    try:
        code = distributed.main(args)
    finally:
        sys.stderr = saved
    return code, buffer.getvalue()


def _local_name(name: str, inputs: dict[str, Path]) -> str:
    """The CLI's name for a row named by URI."""
    uri = inputs["remote"].as_uri()
    return str(inputs["remote"]) + name[len(uri):] if name.startswith(uri) else name


@pytest.fixture(scope="module")
def killed_then_resumed(ray_local, inputs: dict[str, Path], tiny_model_path: Path) -> dict:
    """Start the command as a subprocess, kill it once some parts are saved, change one saved image, rerun.

    The subprocess joins this module's Ray (``--address``); the rerun runs in this process.
    """
    import pyarrow.parquet as pq

    out = inputs["root"] / "results.parquet"
    parts = Path(f"{out}.parts")
    # The filler first, so the batches saved before the kill are plain local images.
    args = ["score", str(inputs["filler"]), str(inputs["local"]), inputs["remote"].as_uri(), str(inputs["missing"]),
            "--output", str(out), "--workers", "2", "--batch-size", "2", "--model", str(tiny_model_path),
            "--no-progress"]
    address = ray_local.get_runtime_context().gcs_address
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    log = inputs["root"] / "killed_run.log"
    with open(log, "wb") as stderr:
        process = subprocess.Popen([sys.executable, "-m", "core.distributed", *args, "--address", address],
                                   cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while not (parts.is_dir() and any(parts.glob("*.parquet"))):
            assert process.poll() is None, log.read_text()[-2000:]
            assert time.monotonic() < deadline, "no part was written"
            time.sleep(0.02)
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the whole run, at once, mid-way
        process.wait()
    killed_before_merge = not out.exists()
    saved = [row for p in sorted(parts.glob("*.parquet")) for row in pq.read_table(p).to_pylist()]
    # Same path, new content: must be scored again, not skipped.
    changed = next(r for r in saved if r["status"] == "scored" and not is_member(r["file"]))
    Path(changed["file"]).write_bytes(image_bytes(150, 120, seed=99))
    code, err = _run_main([*args, "--csv"])
    return {"code": code, "err": err, "out": out, "csv": out.with_suffix(".csv"), "args": args, "saved": saved,
            "changed": changed, "killed_before_merge": killed_before_merge, "parts": parts}


def is_member(name: str) -> bool:
    return ".zip/" in name or "://" in name


@pytest.fixture(scope="module")
def cli_rows(killed_then_resumed: dict, inputs: dict[str, Path], tiny_model_path: Path) -> dict[str, dict[str, str]]:
    """The CLI's rows for the same files as they are now (the URI tree read locally), by file name."""
    out = inputs["root"] / "cli.csv"
    sources = [str(inputs[key]) for key in ("filler", "local", "remote", "missing")]
    code = cli_main(["predict", *sources, "--output", str(out), "--model", str(tiny_model_path), "--batch-size", "3",
                     "--no-progress"])
    assert code == 1  # some inputs are bad
    return {row["file"]: row for row in read_csv(out)}


def test_missing_ray_explains_how_to_install(monkeypatch, capsys, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    monkeypatch.setitem(sys.modules, "ray.data", None)
    code = distributed.main(["score", str(tmp_path), "--output", str(tmp_path / "out.parquet")])
    err = capsys.readouterr().err
    assert code == 2
    assert "needs Ray" in err and "pip install -r requirements-distributed.txt" in err
    assert "Traceback" not in err
    assert not (tmp_path / "out.parquet").exists()


def test_requirements_keep_ray_optional() -> None:
    assert "ray" not in (REPO / "requirements.txt").read_text().lower()
    extra = (REPO / "requirements-distributed.txt").read_text()
    assert re.search(r"^ray\[data\]", extra, re.MULTILINE)
    assert "-r requirements-distributed.txt" in (REPO / ".ci" / "run").read_text()


def test_killed_run_resumes_without_duplicates(killed_then_resumed: dict, inputs: dict[str, Path]) -> None:
    import pyarrow.parquet as pq

    run = killed_then_resumed
    total = len(read_csv(run["csv"]))
    saved = run["saved"]
    assert run["killed_before_merge"], "the run finished before it was killed"
    assert 0 < len(saved) < total and len({r["file"] for r in saved}) == len(saved)
    summary = summary_of(run["err"])
    # Skipped: every saved input whose path and content are unchanged; inputs that could not even
    # be read (no content hash) are tried again, and so is the image whose content changed.
    expected_skips = sum(1 for r in saved if r["content_sha256"]) - 1
    assert summary["skipped"] == expected_skips > 0
    assert f"skipped {expected_skips} images already scored" in run["err"]
    assert summary["images"] == total - expected_skips  # the rest only
    assert summary["workers"] == 2
    files = pq.read_table(run["out"]).column("file").to_pylist()
    assert len(files) == len(set(files)) == total  # every input exactly once
    assert files == sorted(files)
    assert not run["parts"].exists()  # merged, then removed
    rows = {r["file"]: r for r in pq.read_table(run["out"]).to_pylist()}
    assert rows[run["changed"]["file"]]["content_sha256"] != run["changed"]["content_sha256"]


def test_same_rows_as_the_cli(killed_then_resumed: dict, cli_rows: dict, inputs: dict[str, Path]) -> None:
    assert killed_then_resumed["code"] == 1, killed_then_resumed["err"][-2000:]  # as the CLI: some not scored
    rows = {_local_name(r["file"], inputs): r for r in read_csv(killed_then_resumed["csv"])}
    assert set(rows) == set(cli_rows)
    assert {row["status"] for row in rows.values()} == {"scored", "unreadable"}  # the tiny model has no gate
    for name, expected in cli_rows.items():
        row = rows[name]
        assert row["error"] == expected["error"], name
        assert row["note"] == expected["note"], name
        assert row["prediction"] == expected["prediction"], name
        if expected["probability"]:
            assert abs(float(row["probability"]) - float(expected["probability"])) <= 1e-6 + 1e-12, name
            assert row["status"] == "scored" and len(row["pixel_sha256"]) == 64
        else:
            assert row["probability"] == "" and row["status"] == "unreadable" and not row["pixel_sha256"]
    # The bad inputs of every kind are there, each with its reason, and the run went on.
    errors = {Path(n).name: r["error"] for n, r in rows.items() if r["error"]}
    for bad in ("truncated.jpeg", "page.jpg", "empty.png", "missing.jpeg", "broken.jpeg", "inner.zip", "not_a.zip",
                "r2.jpeg", "n.jpeg"):
        assert errors.get(bad), bad
    assert "nested archives" in errors["inner.zip"] and errors["empty.png"] == "file is empty"
    assert len(errors) == 9 and len(rows) == 8 + FILLER + 9  # 8 small good images, the filler, 9 bad


def test_parquet_and_csv_outputs(killed_then_resumed: dict, cli_rows: dict) -> None:
    import pyarrow.parquet as pq

    table = pq.read_table(killed_then_resumed["out"])
    assert tuple(table.column_names) == distributed.OUTPUT_COLUMNS
    assert tuple(table.column_names[:5]) == ("file", "probability", "prediction", "error", "note")
    assert str(table.schema.field("probability").type) == "double"
    with open(killed_then_resumed["csv"], newline="", encoding="utf-8") as handle:
        csv_rows = list(csv.reader(handle))
    assert tuple(csv_rows[0]) == distributed.OUTPUT_COLUMNS
    assert [distributed.csv_cells(r) for r in table.to_pylist()] == csv_rows[1:]
    parquet = {r["file"]: r for r in table.to_pylist()}
    for row in csv_rows[1:]:
        if row[1]:  # the CSV prints exactly the Parquet value to 6 decimals
            assert f"{parquet[row[0]]['probability']:.6f}" == row[1]
    statuses = table.column("status").to_pylist()
    err = killed_then_resumed["err"]
    assert (f"wrote {table.num_rows} rows to {killed_then_resumed['out']} and {killed_then_resumed['csv']} "
            f"({statuses.count('scored')} scored, 0 refused, {statuses.count('unreadable')} unreadable)") in err
    assert 0 < summary_of(err)["peak_mb"] <= 1536  # each worker's peak RSS stays under 1.5 GB
    for line in err.splitlines():  # counts only: no file names in logs or progress
        assert "truncated.jpeg" not in line and "img0" not in line


def test_rerun_with_other_settings_is_refused(killed_then_resumed: dict, capsys) -> None:
    code = distributed.main([*killed_then_resumed["args"], "--threshold", "0.9"])
    err = capsys.readouterr().err
    assert code == 2 and "different threshold" in err


@pytest.mark.parametrize("extra, message", [(["--batch-size", "0"], "--batch-size must be at least 1"),
                                            (["--threshold", "1.5"], "--threshold must be between 0 and 1"),
                                            (["--workers", "0"], "--workers must be at least 1")])
def test_usage_errors(ray_local, tmp_path: Path, capsys, extra: list[str], message: str) -> None:
    (tmp_path / "x.jpeg").write_bytes(image_bytes())
    code = distributed.main(["score", str(tmp_path), "--output", str(tmp_path / "o.parquet"), *extra])
    assert code == 2 and message in capsys.readouterr().err


def test_no_files_and_foreign_output_are_usage_errors(ray_local, tmp_path: Path, capsys) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert distributed.main(["score", str(empty), "--output", str(tmp_path / "o.parquet")]) == 2
    assert "no image files found" in capsys.readouterr().err
    (empty / "x.jpeg").write_bytes(image_bytes())
    foreign = tmp_path / "notes.parquet"
    foreign.write_text("not parquet")
    assert distributed.main(["score", str(empty), "--output", str(foreign)]) == 2
    assert "not a Parquet results file" in capsys.readouterr().err


def test_store_keeps_the_latest_row_and_ignores_a_damaged_part(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    # A profile's calibration may hold tuples: after the JSON round trip in the file it must still match.
    settings = {"model_sha256": "a" * 64, "threshold": 0.5, "calibration": {"method": "platt", "ab": (1.0, -0.5)}}
    out = tmp_path / "o.parquet"

    def row(name: str, probability: float | None, sha: str | None) -> dict:
        status = "scored" if probability is not None else "unreadable"
        return {"file": name, "probability": probability, "prediction": "NORMAL" if probability is not None else None,
                "error": None if probability is not None else "cannot read file: not found", "note": "",
                "pixel_sha256": None, "status": status, "content_sha256": sha}

    first, schema = distributed.ResultStore(str(out), settings), distributed.output_schema()
    first.write_part(pa.Table.from_pylist([row("b", 0.1, "s1"), row("a", None, None)], schema=schema))
    first.write_part(pa.Table.from_pylist([row("b", 0.3, "s2")], schema=schema))
    (tmp_path / "o.parquet.parts" / "part-99999999999999999999-0000001.parquet").write_bytes(b"PAR1 cut short")
    second = distributed.ResultStore(str(out), settings)
    assert second.recorded() == {"b": "s2"}  # latest row wins; "a" could not be read, so it is tried again
    table = second.merge()
    assert table.column("file").to_pylist() == ["a", "b"] and table.column("probability").to_pylist() == [None, 0.3]
    assert len(second.ignored) == 1 and not (tmp_path / "o.parquet.parts").exists()
    with pytest.raises(distributed.UsageError, match="different calibration"):
        distributed.ResultStore(str(out), {**settings, "calibration": None}).recorded()

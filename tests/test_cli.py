"""The command-line contract: columns, one row per file, exit codes, thresholds, progress."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.apps import cli
from core.apps.cli import CSV_COLUMNS, collect_files, main
from helpers import REPO, image_bytes


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        # The contract: these four first and unchanged; new columns (note) only after them.
        assert tuple(reader.fieldnames or ())[:4] == ("file", "probability", "prediction", "error")
        assert tuple(reader.fieldnames or ()) == CSV_COLUMNS and CSV_COLUMNS[4] == "note"
        return list(reader)


def assert_row_contract(row: dict[str, str], threshold: float) -> None:
    if row["error"]:
        assert row["probability"] == "" and row["prediction"] == ""
        assert "\n" not in row["error"] and "Traceback" not in row["error"]
    else:
        probability = float(row["probability"])
        assert 0.0 <= probability <= 1.0
        assert row["prediction"] == ("PNEUMONIA" if probability >= threshold else "NORMAL"), row


@pytest.fixture
def image_tree(tmp_path: Path) -> Path:
    """A folder of cases with sub-folders, hidden files and non-image clutter."""
    root = tmp_path / "cases"
    for i, rel in enumerate(["a.jpeg", "ward1/b.JPG", "ward1/deep/c.png", "ward2/d.jpeg", "ward2/e.jpeg"]):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(image_bytes(120 + 10 * i, 100, "PNG" if rel.endswith(".png") else "JPEG", seed=i))
    (root / ".hidden.jpeg").write_bytes(image_bytes())
    (root / ".cache").mkdir()
    (root / ".cache" / "f.jpeg").write_bytes(image_bytes())
    (root / "notes.txt").write_text("report")
    return root


@pytest.fixture
def bad_files(tmp_path: Path) -> list[Path]:
    bad = tmp_path / "bad"
    bad.mkdir()
    truncated = bad / "truncated.jpeg"
    truncated.write_bytes(image_bytes(400, 300)[:2000])
    html = bad / "page.jpg"
    html.write_text("<html><body>not an x-ray</body></html>")
    empty = bad / "empty.png"
    empty.write_bytes(b"")
    return [truncated, html, empty, bad / "missing.jpeg"]


def run_main(args: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str]:
    code = main(args)
    return code, capsys.readouterr().err


def test_collect_files_recursive_and_stable(image_tree: Path, tmp_path: Path) -> None:
    files = collect_files([str(image_tree), str(tmp_path / "absent.jpeg"), str(image_tree / "notes.txt")])
    names = [Path(f).relative_to(image_tree).as_posix() if f.startswith(str(image_tree)) else f for f in files]
    assert names[:5] == ["a.jpeg", "ward1/b.JPG", "ward1/deep/c.png", "ward2/d.jpeg", "ward2/e.jpeg"]
    assert names[5:] == [str(tmp_path / "absent.jpeg"), "notes.txt"]


def test_scores_folder_recursively(image_tree: Path, tmp_path: Path, tiny_model_path: Path, capsys) -> None:
    out = tmp_path / "results.csv"
    code, err = run_main(["predict", str(image_tree), "--output", str(out), "--model", str(tiny_model_path),
                          "--no-progress"], capsys)
    assert code == 0, err
    rows = read_rows(out)
    assert len(rows) == 5
    assert {Path(r["file"]).name for r in rows} == {"a.jpeg", "b.JPG", "c.png", "d.jpeg", "e.jpeg"}
    for row in rows:
        assert row["error"] == ""
        assert_row_contract(row, 0.5)  # the tiny model's metadata threshold
    assert "scored 5 of 5" in err
    assert "Traceback" not in err


def test_bad_files_get_error_rows(image_tree: Path, bad_files: list[Path], tmp_path: Path,
                                  tiny_model_path: Path, capsys) -> None:
    out = tmp_path / "results.csv"
    good = image_tree / "a.jpeg"
    args = ["predict", str(bad_files[0]), str(good), *map(str, bad_files[1:]), "--output", str(out),
            "--model", str(tiny_model_path)]
    code, err = run_main(args, capsys)
    assert code == 1
    rows = read_rows(out)
    assert [r["file"] for r in rows] == [str(bad_files[0]), str(good), *map(str, bad_files[1:])]
    assert rows[1]["error"] == "" and rows[1]["probability"] != ""
    for row in rows[:1] + rows[2:]:
        assert row["error"], row
        assert_row_contract(row, 0.5)
    assert "not an x-ray" not in out.read_text()
    assert "Traceback" not in err
    assert "scored 1 of 5" in err


def test_threshold_changes_predictions_consistently(image_tree: Path, tmp_path: Path, tiny_model_path: Path,
                                                   capsys) -> None:
    base = ["predict", str(image_tree), "--model", str(tiny_model_path)]
    out = tmp_path / "t.csv"
    assert run_main([*base, "--output", str(out), "--threshold", "0"], capsys)[0] == 0
    low = read_rows(out)
    assert {r["prediction"] for r in low} == {"PNEUMONIA"}
    probabilities = sorted({float(r["probability"]) for r in low})
    assert len(probabilities) >= 2, "test images must get distinct probabilities"
    # Split at the widest gap, far from any printed (6-decimal) probability.
    gap, middle = max((b - a, (a + b) / 2) for a, b in zip(probabilities, probabilities[1:], strict=False))
    assert gap > 1e-5

    for threshold in (middle, 1.0):
        assert run_main([*base, "--output", str(out), "--threshold", str(threshold)], capsys)[0] == 0
        rows = read_rows(out)
        assert [r["probability"] for r in rows] == [r["probability"] for r in low], "threshold must not change scores"
        for row in rows:
            assert_row_contract(row, threshold)
    assert run_main([*base, "--output", str(out), "--threshold", str(middle)], capsys)[0] == 0
    assert {r["prediction"] for r in read_rows(out)} == {"NORMAL", "PNEUMONIA"}


def test_progress_bar_on_stderr(image_tree: Path, tmp_path: Path, tiny_model_path: Path, capsys) -> None:
    out = tmp_path / "p.csv"
    code, err = run_main(["predict", str(image_tree), "-o", str(out), "--model", str(tiny_model_path),
                          "--progress"], capsys)
    assert code == 0
    assert "scoring [" in err and "5/5" in err
    assert "a.jpeg" not in err, "progress output must not name files"
    code, err = run_main(["predict", str(image_tree), "-o", str(out), "--model", str(tiny_model_path),
                          "--no-progress"], capsys)
    assert code == 0 and "scoring [" not in err


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["predict"],
        ["predict", "x.jpeg"],  # no --output
        ["predict", "x.jpeg", "--output", "o.csv", "--threshold", "abc"],
        ["frobnicate", "x.jpeg"],
    ],
)
def test_argparse_usage_errors_exit_2(args: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    assert "usage" in capsys.readouterr().err.lower()


@pytest.mark.parametrize("extra", [["--threshold", "1.5"], ["--threshold", "-0.1"], ["--batch-size", "0"]])
def test_bad_option_values_exit_2(image_tree: Path, tmp_path: Path, extra: list[str], capsys) -> None:
    out = tmp_path / "o.csv"
    code, err = run_main(["predict", str(image_tree), "--output", str(out), *extra], capsys)
    assert code == 2 and err.startswith("error:")
    assert not out.exists()


def test_no_images_found_exit_2(tmp_path: Path, capsys) -> None:
    empty = tmp_path / "empty_folder"
    empty.mkdir()
    (empty / "readme.txt").write_text("nothing here")
    code, err = run_main(["predict", str(empty), "--output", str(tmp_path / "o.csv")], capsys)
    assert code == 2 and "no image files" in err


def test_bad_model_and_unwritable_output_exit_2(image_tree: Path, tmp_path: Path, tiny_model_path: Path,
                                                capsys) -> None:
    code, err = run_main(["predict", str(image_tree), "-o", str(tmp_path / "o.csv"),
                          "--model", str(tmp_path / "nope.keras")], capsys)
    assert code == 2 and "not found" in err and "Traceback" not in err
    code, err = run_main(["predict", str(image_tree), "-o", str(tmp_path), "--model", str(tiny_model_path)], capsys)
    assert code == 2 and "cannot write" in err


def test_progress_bar_counts_only() -> None:
    import io

    stream = io.StringIO()
    bar = cli.ProgressBar(4, stream, enabled=True)
    for done in range(1, 5):
        bar.update(done)
    text = stream.getvalue()
    assert text.endswith("4/4\n") and text.count("\r") == 4
    silent = io.StringIO()
    cli.ProgressBar(4, silent, enabled=False).update(1)
    assert silent.getvalue() == ""


# --- the real process --------------------------------------------------------------------------

def run_cli(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-m", "core.cli", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_subprocess_end_to_end(image_tree: Path, bad_files: list[Path], tmp_path: Path,
                               tiny_model_path: Path) -> None:
    out = tmp_path / "results.csv"
    proc = run_cli(["predict", str(image_tree), *map(str, bad_files), "--output", str(out), "--threshold", "0.5",
                    "--model", str(tiny_model_path), "--progress"])
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"{5 + len(bad_files)}/{5 + len(bad_files)}" in proc.stderr
    assert proc.stdout == ""
    rows = read_rows(out)
    assert len(rows) == 5 + len(bad_files)
    assert sum(1 for r in rows if r["error"]) == len(bad_files)
    for row in rows:
        assert_row_contract(row, 0.5)


@pytest.mark.parametrize(
    "args",
    [[], ["predict", "x.jpeg"], ["predict", "x.jpeg", "--output", "o.csv", "--threshold", "2"]],
)
def test_subprocess_usage_errors(args: list[str], tmp_path: Path) -> None:
    proc = run_cli([a.replace("o.csv", str(tmp_path / "o.csv")) for a in args], timeout=60)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip()


def test_zip_archive_gets_one_row_per_member(tmp_path: Path, tiny_model_path: Path, capsys) -> None:
    import zipfile

    archive = tmp_path / "batch.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("ward/a.jpeg", image_bytes(120, 100, seed=1))
        handle.writestr("../../escape.png", image_bytes(120, 100, "PNG", seed=2))
        handle.writestr("notes.txt", "not an image")
    out = tmp_path / "out.csv"
    code, err = run_main(["predict", str(archive), "--output", str(out), "--model", str(tiny_model_path)], capsys)
    rows = {row["file"]: row for row in read_rows(out)}
    assert set(rows) == {f"{archive}/ward/a.jpeg", f"{archive}/escape.png", f"{archive}/notes.txt"}
    assert rows[f"{archive}/ward/a.jpeg"]["error"] == "" and rows[f"{archive}/escape.png"]["error"] == ""
    assert "not a supported image" in rows[f"{archive}/notes.txt"]["error"]
    assert code == 1 and "Traceback" not in err


def test_broken_zip_is_one_error_row(tmp_path: Path, tiny_model_path: Path, capsys) -> None:
    archive = tmp_path / "broken.zip"
    archive.write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    out = tmp_path / "out.csv"
    code, _ = run_main(["predict", str(archive), "--output", str(out), "--model", str(tiny_model_path)], capsys)
    rows = read_rows(out)
    assert code == 1 and len(rows) == 1 and "ZIP" in rows[0]["error"]

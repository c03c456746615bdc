"""Hostile and broken files at every entry point: image decoding, ZIP archives, batches and the CLI.

Every bad input must end as a one-line ``ImageError`` reason (or an error row), never as
a crash, a hang or a large allocation; the rest of a batch must still be scored.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import struct
import subprocess
import sys
import time
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydicom import uid

from core.errors import ImageError
from core.inputs.archive import MAX_MEMBERS, clean_name, iter_zip_images
from core.inputs.limits import MAX_FILE_BYTES
from core.preprocessing import prepare_image
from helpers import REPO, bundle_for, encode, image_bytes, write_metadata, xray_like
from helpers.dicom import dicom_bytes, encapsulated, make_dataset, marked, to_bytes

SIZE = 64


def assert_reason(message: str) -> str:
    """A reason fit for a table cell: one printable line, short, non-empty."""
    assert message and len(message) < 200
    assert all(ch.isprintable() for ch in message), repr(message)
    return message


# --- crafted payloads ---------------------------------------------------------------------------

def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def png_header(width: int, height: int, idat: bytes | None = None) -> bytes:
    """A grayscale PNG whose IHDR claims ``width``×``height``; IDAT is a few bytes unless given."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    body = zlib.compress(b"\x00" * 16) if idat is None else idat
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", body) + _png_chunk(b"IEND", b"")


def png_zeros(width: int, height: int) -> bytes:
    """A complete, valid black PNG compressed ~1000:1, built without holding the raw image."""
    packer = zlib.compressobj(9)
    row = b"\x00" * (width + 1)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    return png_header(width, height, idat)


def jpeg_claiming(width: int, height: int) -> bytes:
    frame = bytearray(encode(Image.fromarray(xray_like(64, 64), mode="L"), "JPEG"))
    sof = frame.index(b"\xff\xc0")
    frame[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(frame)


def tiff_claiming(width: int, height: int) -> bytes:
    entries = [(256, 4, width), (257, 4, height), (258, 3, 8), (259, 3, 1), (262, 3, 1), (273, 4, 8 + 2 + 9 * 12 + 4),
               (277, 3, 1), (278, 4, height), (279, 4, min(width * height, 2**32 - 1))]
    ifd = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHII", tag, kind, 1, value)
                                                     for tag, kind, value in entries) + b"\0\0\0\0"
    return b"II*\x00" + struct.pack("<I", 8) + ifd + bytes(64)


def bmp_claiming(width: int, height: int) -> bytes:
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 54 + 64, 0, 0, 54) + info + bytes(64)


def webp_claiming(width: int, height: int) -> bytes:
    vp8x = b"VP8X" + struct.pack("<I", 10) + b"\x00\x00\x00\x00" + (width - 1).to_bytes(3, "little") + (
        height - 1).to_bytes(3, "little")
    return b"RIFF" + struct.pack("<I", 4 + len(vp8x)) + b"WEBP" + vp8x


def frames(n: int = 3) -> list[Image.Image]:
    return [Image.fromarray(xray_like(64, 64, seed=s), mode="L") for s in range(n)]


def animated(fmt: str) -> bytes:
    first, *rest = frames()
    return encode(first, fmt, save_all=True, append_images=rest, duration=100)


def _meta_end(data: bytes) -> int:
    """Offset just past the DICOM file meta group (its group length sits at offset 140)."""
    return 144 + struct.unpack("<I", data[140:144])[0]


def dicom_deflate_bomb(gigabytes: int = 3) -> bytes:
    """A Deflated-syntax DICOM whose dataset inflates to ``gigabytes`` GB of zeros (~3 MB on disk).

    After a full flush a deflate stream is byte-aligned and has no history, so one compressed
    megabyte of zeros can be repeated to build the stream without compressing gigabytes.
    """
    data = to_bytes(make_dataset(np.zeros((64, 64), np.uint8), syntax=uid.DeflatedExplicitVRLittleEndian))
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    megabyte = packer.compress(bytes(2**20)) + packer.flush(zlib.Z_FULL_FLUSH)
    return data[:_meta_end(data)] + megabyte * (gigabytes * 1024) + packer.flush()


def dicom_rle_bomb() -> bytes:
    frame = struct.pack("<16I", 1, 64, *([0] * 14)) + b"\x81\x00" * 500_000
    return encapsulated(make_dataset(np.zeros((64, 64), np.uint8)), frame, uid.RLELossless)


def dicom_deep_sequences(depth: int = 20_000) -> bytes:
    data = dicom_bytes(np.zeros((64, 64), np.uint8))
    # An undefined-length sequence holding an undefined-length item, repeated: a recursion bomb.
    level = struct.pack("<HH", 0x0008, 0x1115) + b"SQ\0\0" + struct.pack("<IHHI", 2**32 - 1, 0xFFFE, 0xE000, 2**32 - 1)
    return data[:_meta_end(data)] + level * depth + data[_meta_end(data):]


def dicom_with(rows: int = 64, columns: int = 64, **attrs: object) -> bytes:
    ds = make_dataset(np.zeros((64, 64), np.uint16), **attrs)
    ds.Rows, ds.Columns = rows, columns
    return to_bytes(ds)


def zip_of(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def zip_of_zeros(name: str, size: int) -> bytes:
    """A ZIP holding ``size`` bytes of zeros (~1000:1), written in chunks."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive, \
            archive.open(name, "w", force_zip64=True) as out:
        chunk = bytes(2**20)
        for _ in range(size // len(chunk)):
            out.write(chunk)
        out.write(bytes(size % len(chunk)))
    return buffer.getvalue()


def lying_zip(declared: int = 1000) -> bytes:
    """A ZIP bomb whose headers claim ``declared`` bytes for a member that inflates to 150 MB."""
    data = bytearray(zip_of_zeros("scan.jpeg", 150 * 2**20))
    # Rewrite the uncompressed size in the local header and the central directory.
    data[22:26] = struct.pack("<I", declared)
    central = data.rindex(b"PK\x01\x02")
    data[central + 24:central + 28] = struct.pack("<I", declared)
    return bytes(data)


def encrypted_zip() -> bytes:
    data = bytearray(zip_of({"scan.png": image_bytes(64, 64, "PNG")}))
    data[6] |= 0x1
    central = data.rindex(b"PK\x01\x02")
    data[central + 8] |= 0x1
    return bytes(data)


GOOD_JPEG = image_bytes(80, 72, "JPEG")
GOOD_PNG = image_bytes(72, 80, "PNG", seed=2)

# name -> (payload factory, words one of which the reason must contain)
HOSTILE: dict[str, tuple[Callable[[], bytes], tuple[str, ...]]] = {
    "empty": (lambda: b"", ("empty",)),
    "truncated jpeg": (lambda: GOOD_JPEG[: len(GOOD_JPEG) // 2], ("truncated",)),
    "truncated png": (lambda: GOOD_PNG[: len(GOOD_PNG) // 2], ("truncated", "corrupt")),
    "header only jpeg": (lambda: GOOD_JPEG[:40], ("truncated", "corrupt", "not a supported")),
    "random bytes": (lambda: np.random.default_rng(1).bytes(4096), ("not a supported",)),
    "text": (lambda: b"Chest X-ray of patient 12345, see attached.\n" * 50, ("not a supported",)),
    "html": (lambda: b"<!DOCTYPE html><html><body><script>alert('x')</script></body></html>", ("not a supported",)),
    "svg": (lambda: b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', ("not a supported",)),
    "pdf": (lambda: b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF", ("not a supported",)),
    "zip renamed as image": (lambda: zip_of({"a.png": GOOD_PNG}), ("not a supported",)),
    "gzip renamed as image": (lambda: gzip.compress(GOOD_PNG), ("not a supported",)),
    "png claiming 10 gigapixels": (lambda: png_header(100_000, 100_000), ("pixels", "dimensions")),
    "png claiming 4 gigapixels": (lambda: png_header(65_535, 65_535), ("pixels", "dimensions")),
    "png too wide": (lambda: png_header(30_000, 100), ("dimensions",)),
    "png under the limit with no data": (lambda: png_header(7_000, 8_500), ("truncated", "corrupt")),
    "jpeg claiming 4 gigapixels": (lambda: jpeg_claiming(65_500, 65_500), ("pixels", "dimensions")),
    "tiff claiming 10 gigapixels": (lambda: tiff_claiming(100_000, 100_000), ("pixels", "dimensions")),
    "bmp claiming 10 gigapixels": (lambda: bmp_claiming(100_000, 100_000), ("pixels", "dimensions", "corrupt")),
    "webp claiming 268 megapixels": (lambda: webp_claiming(16_384, 16_384), ("pixels", "dimensions", "corrupt")),
    "animated gif": (lambda: animated("GIF"), ("not a supported",)),
    "animated png": (lambda: animated("PNG"), ("animated",)),
    "animated webp": (lambda: animated("WEBP"), ("animated",)),
    "multi-page tiff": (lambda: animated("TIFF"), ("multi-page",)),
    "1x1 png": (lambda: encode(Image.new("L", (1, 1), 99), "PNG"), ("too small",)),
    "1x1 jpeg": (lambda: encode(Image.new("L", (1, 1), 99), "JPEG"), ("too small",)),
    "1x1 dicom": (lambda: dicom_bytes(np.full((1, 1), 5, np.uint16)), ("too small",)),
    "dicom claiming 4 gigapixels": (lambda: dicom_with(65_535, 65_535), ("dimensions",)),
    "dicom with 100000 frames": (lambda: dicom_with(NumberOfFrames=100_000), ("multi-frame",)),
    "dicom rle bomb": (dicom_rle_bomb, ("RLE",)),
    "dicom deflate bomb": (dicom_deflate_bomb, ("deflated",)),
    "dicom nested 20000 deep": (dicom_deep_sequences, ("corrupt",)),
    "dicom preamble and junk": (lambda: bytes(128) + b"DICM" + np.random.default_rng(2).bytes(3000), ("DICOM",)),
    "dicom lateral": (lambda: dicom_bytes(marked(), ViewPosition="LL"), ("lateral",)),
    "dicom knee": (lambda: dicom_bytes(marked(), BodyPartExamined="KNEE"), ("not chest",)),
    "dicom without pixels": (lambda: to_bytes(_without_pixels()), ("no pixel data",)),
}


def _without_pixels():
    ds = make_dataset(marked())
    del ds.PixelData
    return ds


# --- core.imaging -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_bytes_give_a_clear_reason(name: str) -> None:
    factory, words = HOSTILE[name]
    data = factory()
    start = time.perf_counter()
    with pytest.raises(ImageError) as exc:
        prepare_image(data, SIZE)
    elapsed = time.perf_counter() - start
    message = assert_reason(str(exc.value))
    assert any(word.lower() in message.lower() for word in words), message
    assert elapsed < 3, f"{name} took {elapsed:.1f} s"


@pytest.mark.parametrize("name", ["scan.jpeg", "<script>alert(1)<script>.jpg", "noext", "x.dcm", "evil\x1b[2J\n.png"])
def test_hostile_files_on_disk(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"<html><body onload=alert(1)>Jane Doe</body></html>")
    with pytest.raises(ImageError) as exc:
        prepare_image(path, SIZE)
    message = assert_reason(str(exc.value))
    assert "Jane" not in message and "<" not in message and name not in message


def test_special_paths_do_not_hang_or_crash(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    loop = tmp_path / "loop.jpg"
    os.symlink(loop, loop)
    dangling = tmp_path / "dangling.png"
    os.symlink(tmp_path / "absent.png", dangling)
    for source in (fifo, loop, dangling, tmp_path, str(tmp_path / "nul\0byte.jpg"), "/dev/zero"):
        with pytest.raises(ImageError) as exc:
            prepare_image(source, SIZE)
        assert_reason(str(exc.value))


# --- core.archive -------------------------------------------------------------------------------

def members(data: bytes) -> list[tuple[str, bytes | ImageError]]:
    return list(iter_zip_images(data, "upload.zip"))


def test_zip_bomb_refused_from_its_header() -> None:
    data = zip_of_zeros("scan.png", MAX_FILE_BYTES + 2**20)
    assert len(data) < 2**20
    [(name, result)] = members(data)
    assert isinstance(result, ImageError) and "too large" in str(result)


def test_zip_bomb_with_lying_header_is_bounded() -> None:
    [(name, result)] = members(lying_zip())
    # Either refused as damaged, or only the declared 1000 bytes were read.
    assert isinstance(result, ImageError) or len(result) <= 1000


def test_nested_archives_refused() -> None:
    inner = zip_of({"a.png": GOOD_PNG})
    data = zip_of({"inner.zip": inner, "disguised.png": gzip.compress(GOOD_PNG), "inner2.jpg": inner,
                   "scans.tar.gz": gzip.compress(b"x" * 100), "ok.png": GOOD_PNG})
    results = dict(members(data))
    for name in ("inner.zip", "disguised.png", "inner2.jpg", "scans.tar.gz"):
        assert "nested" in str(results[f"upload.zip/{name}"])
    assert results["upload.zip/ok.png"] == GOOD_PNG


def test_path_traversal_and_hostile_names_are_cleaned() -> None:
    names = ["../../etc/passwd.png", "/abs/scan.png", "..\\..\\windows\\scan.png", "a/./b/../c.png",
             "<script>alert(1)</script>.png", "<img src=x onerror=alert(1)>.jpg", "esc\x1b[31mred.png",
             "line\nbreak.png", "tab\there.png", "rtl\u202egnp.exe", "x" * 1000 + ".png"]
    data = zip_of({name: GOOD_PNG for name in names})
    result = members(data)
    assert len(result) == len(names)
    for shown, payload in result:
        assert payload == GOOD_PNG
        assert all(ch.isprintable() for ch in shown), repr(shown)
        parts = shown.split("/")
        assert ".." not in parts and not shown.startswith("/") and "\\" not in shown.replace("\\\\", "")
        assert len(shown) <= len("upload.zip/") + 255
    shown_names = [shown for shown, _ in result]
    assert "upload.zip/etc/passwd.png" in shown_names
    # Markup stays literal text: escaping it is the display layer's job, dropping it would hide the case.
    assert "upload.zip/<script>alert(1)</script>.png" in shown_names
    assert clean_name("\x00\x07evil\u200b") == "??evil?"


def test_encrypted_and_damaged_members() -> None:
    [(_, result)] = members(encrypted_zip())
    assert isinstance(result, ImageError) and "encrypted" in str(result)
    data = bytearray(zip_of({"scan.png": np.random.default_rng(3).bytes(5000)}))
    data[60:80] = bytes(20)  # damage the compressed stream
    [(_, result)] = members(bytes(data))
    assert isinstance(result, ImageError)
    assert_reason(str(result))


@pytest.mark.parametrize("data", [b"", b"PK\x03\x04", b"PK\x03\x04" + bytes(100), b"not a zip at all", GOOD_PNG])
def test_unreadable_archives(data: bytes) -> None:
    with pytest.raises(ImageError) as exc:
        members(data)
    assert_reason(str(exc.value))


def test_too_many_members_are_capped() -> None:
    data = zip_of({f"f{i}.png": b"x" for i in range(MAX_MEMBERS + 5)})
    result = members(data)
    assert len(result) == MAX_MEMBERS + 1
    assert isinstance(result[-1][1], ImageError) and "only the first" in str(result[-1][1])


# --- batches ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def plain_bundle():
    import keras

    from training.models import build_model

    keras.utils.set_random_seed(3)
    return bundle_for(build_model("plain_cnn", SIZE), name="plain")


def test_batch_survives_every_hostile_input(plain_bundle) -> None:
    from core.scoring import iter_outcomes

    good = {"good.jpeg": GOOD_JPEG, "good.png": GOOD_PNG, "good.dcm": dicom_bytes(marked())}
    items: list[tuple[str, object]] = []
    for i, (name, (factory, _)) in enumerate(HOSTILE.items()):
        items.append((name, factory()))
        if i % 6 == 0:
            items.extend(good.items())
    archive = zip_of({"../x.png": GOOD_PNG, "nested.zip": zip_of({"a.png": GOOD_PNG}), "<b>bold</b>.jpeg": b"<b>"})
    items.extend(iter_zip_images(archive, "upload.zip"))
    items.append(("refused before reading", ImageError("archive member is too large (200 MB uncompressed)")))
    results = list(iter_outcomes(plain_bundle, items, batch_size=5))
    assert [r.name for r in results] == [name for name, _ in items]
    for (name, _), result in zip(items, results, strict=True):
        if name in good or name in ("upload.zip/x.png",):
            assert result.ok and 0.0 <= result.probability <= 1.0, (name, result.error)
        else:
            assert not result.ok, name
            assert_reason(result.error)
    scored = [r for r in results if r.ok]
    assert len(scored) == 3 * (1 + (len(HOSTILE) - 1) // 6) + 1


# --- memory -------------------------------------------------------------------------------------

MEMORY_PROBE = r"""
import json, resource, sys, time
from pathlib import Path
from core.inputs.archive import iter_zip_images
from core.errors import ImageError
from core.preprocessing import prepare_image
import core.inputs.dicom  # imports are not counted as growth

def rss_mb():
    # Peak RSS of this process image. getrusage's ru_maxrss survives exec on Linux, so it would
    # report the parent's size; VmHWM belongs to the new address space.
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

folder = Path(sys.argv[1])
prepare_image(folder / "warm-up.dcm", 64)
base = rss_mb()
outcomes = {}
start = time.perf_counter()
for path in sorted(folder.iterdir()):
    before = time.perf_counter()
    try:
        if path.suffix == ".zip":
            data = path.read_bytes()
            outcome = []
            for name, member in iter_zip_images(data, path.name):
                outcome.append(str(member) if isinstance(member, ImageError) else f"{len(member)} bytes")
            del data, member
            outcome = "; ".join(outcome)
        else:
            outcome = "ok %s" % (prepare_image(path, 64).shape,)
    except ImageError as exc:
        outcome = "refused: %s" % exc
    outcomes[path.name] = [outcome, round(time.perf_counter() - before, 2)]
seconds = time.perf_counter() - start
print(json.dumps({"base_mb": base, "growth_mb": rss_mb() - base, "seconds": seconds, "outcomes": outcomes}))
"""


def test_bombs_stay_within_memory_budget(tmp_path: Path) -> None:
    folder = tmp_path / "bombs"
    folder.mkdir()
    payloads = {
        "warm-up.dcm": dicom_bytes(marked()),
        "png-10-gigapixels.png": png_header(100_000, 100_000),
        "png-59-megapixels-no-data.png": png_header(7_000, 8_500),
        "png-59-megapixels-black.png": png_zeros(7_000, 8_500),  # the largest image accepted
        "jpeg-4-gigapixels.jpg": jpeg_claiming(65_500, 65_500),
        "tiff-10-gigapixels.tif": tiff_claiming(100_000, 100_000),
        "bmp-10-gigapixels.bmp": bmp_claiming(100_000, 100_000),
        "dicom-4-gigapixels.dcm": dicom_with(65_535, 65_535),
        "dicom-rle-bomb.dcm": dicom_rle_bomb(),
        "dicom-deflate-bomb.dcm": dicom_deflate_bomb(),
        "zip-bomb.zip": zip_of_zeros("scan.png", 2 * MAX_FILE_BYTES),
        "zip-lying-header.zip": lying_zip(),
        "zip-just-under-limit.zip": zip_of_zeros("scan.png", MAX_FILE_BYTES - 2**20),
    }
    # The largest DICOM accepted: 7000×7000 at 16 bits, windowed (float64 LUT maths).
    big = np.zeros((7_000, 7_000), np.uint16)
    big[::7] = 4000
    payloads["dicom-49-megapixels.dcm"] = dicom_bytes(big, bits_stored=12, WindowCenter=2000, WindowWidth=3000)
    del big
    for name, data in payloads.items():
        (folder / name).write_bytes(data)
    payloads.clear()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    run = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(folder)], capture_output=True, text=True,
                         cwd=REPO, env=env, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    outcomes = {name: outcome for name, (outcome, _) in report["outcomes"].items()}
    print(json.dumps(report, indent=1))
    assert outcomes["png-59-megapixels-black.png"].startswith("ok")
    assert outcomes["dicom-49-megapixels.dcm"].startswith("ok")
    for name in ("png-10-gigapixels.png", "png-59-megapixels-no-data.png", "jpeg-4-gigapixels.jpg",
                 "tiff-10-gigapixels.tif", "bmp-10-gigapixels.bmp", "dicom-4-gigapixels.dcm", "dicom-rle-bomb.dcm",
                 "dicom-deflate-bomb.dcm"):
        assert outcomes[name].startswith("refused"), (name, outcomes[name])
    assert "too large" in outcomes["zip-bomb.zip"]
    assert report["growth_mb"] < 2048, report["growth_mb"]
    assert max(seconds for _, seconds in report["outcomes"].values()) < 20


# --- CLI ----------------------------------------------------------------------------------------

def test_cli_writes_a_row_for_every_hostile_file(tmp_path: Path, plain_bundle, capsys: pytest.CaptureFixture) -> None:
    from core.apps.cli import main

    model_path = tmp_path / "model" / "plain.keras"
    model_path.parent.mkdir()
    plain_bundle.model.save(model_path)
    write_metadata(model_path, SIZE)

    folder = tmp_path / "upload"
    folder.mkdir()
    files = {
        "good.jpeg": GOOD_JPEG, "good.png": GOOD_PNG, "IM0001": dicom_bytes(marked()),
        "empty.jpg": b"", "page.jpg": b"<html><script>alert(1)</script></html>",
        "bomb.png": png_header(100_000, 100_000),
        "cut.jpeg": GOOD_JPEG[:300], "lateral.dcm": dicom_bytes(marked(), ViewPosition="LATERAL"),
        "<img src=x onerror=alert(1)>.png": b"\x89PNG\r\n\x1a\n", "=HYPERLINK(1).png": b"junk",
        "new\nline.jpg": b"junk", "anim.png": animated("PNG"),
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    os.mkfifo(folder / "pipe.jpg")
    os.symlink(folder / "loop.jpg", folder / "loop.jpg")
    archive = tmp_path / "bundle.zip"
    archive.write_bytes(zip_of({"a.png": GOOD_PNG}))
    output = tmp_path / "out.csv"

    status = main(["predict", str(folder), str(archive), str(tmp_path / "missing.jpeg"), "--output", str(output),
                   "--model", str(model_path), "--no-progress"])
    assert status == 1
    with open(output, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    by_name = {Path(row["file"]).name: row for row in rows}
    # A ZIP archive is opened in memory and each member gets its own row.
    assert any(row["file"] == f"{archive}/a.png" for row in rows)
    expected = set(files) | {"pipe.jpg", "loop.jpg", "a.png", "missing.jpeg"}
    assert set(by_name) == expected
    for name, row in by_name.items():
        if name in ("good.jpeg", "good.png", "IM0001", "a.png"):
            assert row["prediction"] in ("NORMAL", "PNEUMONIA") and not row["error"], (name, row)
        else:
            assert not row["probability"] and row["error"], (name, row)
            assert_reason(row["error"])
    err = capsys.readouterr().err
    assert "scored 4 of" in err
    for name in files:
        assert name not in err, "file names must not be logged"

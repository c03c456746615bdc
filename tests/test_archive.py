"""ZIP uploads are read in memory, safely, member by member."""

from __future__ import annotations

import io
import struct
import zipfile

import numpy as np
import pytest

from core.errors import ImageError
from core.inputs import archive
from core.inputs.archive import clean_name, iter_zip_images
from core.inputs.formats import is_zip
from core.preprocessing import prepare_image
from helpers import image_bytes


def make_zip(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def as_dict(data: bytes, name: str = "upload.zip") -> dict[str, bytes | ImageError]:
    return dict(iter_zip_images(data, name))


def test_images_returned_in_order_with_their_bytes() -> None:
    a, b = image_bytes(100, 90, seed=1), image_bytes(120, 100, "PNG", seed=2)
    data = make_zip({"ward/a.jpeg": a, "b.png": b})
    assert is_zip(data)
    items = list(iter_zip_images(data, "cases.zip"))
    assert [name for name, _ in items] == ["cases.zip/ward/a.jpeg", "cases.zip/b.png"]
    assert items[0][1] == a and items[1][1] == b
    assert prepare_image(items[1][1], 32).shape == (32, 32)
    assert np.array_equal(prepare_image(items[0][1], 32), prepare_image(a, 32))


def test_stored_members_and_directories() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:
        zf.mkdir("folder") if hasattr(zf, "mkdir") else zf.writestr("folder/", b"")
        zf.writestr("folder/x.jpeg", image_bytes())
    items = as_dict(buffer.getvalue())
    assert list(items) == ["upload.zip/folder/x.jpeg"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("../../etc/passwd.png", "etc/passwd.png"),
        ("/abs/path/x.jpeg", "abs/path/x.jpeg"),
        ("a/../../b.jpeg", "a/b.jpeg"),
        ("..\\..\\windows\\x.png", "windows/x.png"),
        ("./x.jpeg", "x.jpeg"),
        ("bad\x07name\n.png", "bad?name?.png"),
        ("..", "(unnamed)"),
    ],
)
def test_clean_name(raw: str, expected: str) -> None:
    assert clean_name(raw) == expected


def test_path_traversal_names_cleaned_in_archive() -> None:
    data = make_zip({"../../evil.jpeg": image_bytes(), "/root/x.jpeg": image_bytes(seed=3)})
    names = list(as_dict(data, "../up.zip"))
    assert names == ["up.zip/evil.jpeg", "up.zip/root/x.jpeg"]
    for name in names:
        assert ".." not in name.split("/") and not name.startswith("/")


def test_nested_archives_refused() -> None:
    inner = make_zip({"x.jpeg": image_bytes()})
    gz = b"\x1f\x8b\x08\x00" + b"\x00" * 20
    data = make_zip({"inner.zip": inner, "disguised.jpeg": inner, "scan.tar.gz": gz, "ok.jpeg": image_bytes()})
    items = as_dict(data)
    for name in ("inner.zip", "disguised.jpeg", "scan.tar.gz"):
        result = items[f"upload.zip/{name}"]
        assert isinstance(result, ImageError) and "nested archive" in str(result), name
    assert isinstance(items["upload.zip/ok.jpeg"], bytes)


def test_zip_bomb_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(archive, "MAX_FILE_BYTES", 10_000)
    bomb = b"\x00" * 1_000_000
    data = make_zip({"bomb.png": bomb, "ok.jpeg": image_bytes(40, 40)})
    assert len(data) < 10_000, "the compressed archive itself is small"
    items = as_dict(data)
    assert isinstance(items["upload.zip/bomb.png"], ImageError)
    assert "too large" in str(items["upload.zip/bomb.png"])
    assert isinstance(items["upload.zip/ok.jpeg"], bytes)


def _lie_about_size(data: bytes, claimed: int) -> bytes:
    """Rewrite the uncompressed size in the local and central headers of a one-member ZIP."""
    buf = bytearray(data)
    local = buf.index(b"PK\x03\x04")
    struct.pack_into("<I", buf, local + 22, claimed)
    central = buf.index(b"PK\x01\x02")
    struct.pack_into("<I", buf, central + 24, claimed)
    return bytes(buf)


def test_zip_bomb_with_lying_header_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(archive, "MAX_FILE_BYTES", 10_000)
    data = _lie_about_size(make_zip({"bomb.png": b"\x00" * 1_000_000}), claimed=100)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.infolist()[0].file_size == 100
    result = as_dict(data)["upload.zip/bomb.png"]
    assert isinstance(result, ImageError)
    assert "\n" not in str(result)


def test_encrypted_member_flagged() -> None:
    data = bytearray(make_zip({"secret.jpeg": image_bytes()}))
    # Python cannot write encrypted ZIPs; set the "encrypted" bit in both headers instead.
    local = data.index(b"PK\x03\x04")
    central = data.index(b"PK\x01\x02")
    data[local + 6] |= 0x1
    data[central + 8] |= 0x1
    result = as_dict(bytes(data))["upload.zip/secret.jpeg"]
    assert isinstance(result, ImageError) and "encrypted" in str(result)


@pytest.mark.parametrize("data", [b"", b"PK\x03\x04 truncated", b"not a zip at all", image_bytes()])
def test_not_a_zip_raises(data: bytes) -> None:
    with pytest.raises(ImageError, match="ZIP"):
        list(iter_zip_images(data, "x.zip"))


def test_is_zip() -> None:
    assert is_zip(make_zip({"a.jpeg": b"x"}))
    assert not is_zip(image_bytes())
    assert not is_zip(b"")


def test_operating_system_clutter_skipped() -> None:
    data = make_zip({
        "__MACOSX/._scan.jpeg": b"\x00\x05\x16\x07",
        "__MACOSX/folder/scan.jpeg": b"junk",
        "folder/._scan.jpeg": b"junk",
        ".DS_Store": b"junk",
        "folder/Thumbs.db": b"junk",
        "folder/scan.jpeg": image_bytes(),
    })
    assert list(as_dict(data)) == ["upload.zip/folder/scan.jpeg"]


def test_member_count_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(archive, "MAX_MEMBERS", 3)
    data = make_zip({f"{i}.jpeg": b"x" for i in range(5)})
    items = list(iter_zip_images(data, "many.zip"))
    assert len(items) == 4
    assert isinstance(items[-1][1], ImageError) and "only the first 3" in str(items[-1][1])


def test_refused_members_flow_through_inference_as_errors(tiny_bundle) -> None:
    from core.scoring import iter_outcomes

    data = make_zip({"good.jpeg": image_bytes(), "inner.zip": make_zip({"x.jpeg": b"x"}), "bad.jpeg": b"junk"})
    results = list(iter_outcomes(tiny_bundle, iter_zip_images(data, "batch.zip")))
    assert [r.name for r in results] == ["batch.zip/good.jpeg", "batch.zip/inner.zip", "batch.zip/bad.jpeg"]
    assert results[0].ok and not results[1].ok and not results[2].ok
    assert "nested archive" in results[1].error

"""The guarded zip: each hostile archive is refused from its directory or its bytes, and leaves nothing."""
import io
import os
import stat
import zipfile

import pytest

from pipelines.errors import ArchiveError
from pipelines.io.archives import ArchiveLimits, GuardedZip


def make_zip(path, entries, compression=zipfile.ZIP_DEFLATED):
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in entries:  # a name, or a ZipInfo carrying attributes such as a symlink's mode
            archive.writestr(name, data)
    return path


def test_a_plain_archive_extracts_under_its_folder(tmp_path):
    source = make_zip(tmp_path / "ok.zip", [("cats/a.png", b"\x89PNG" + b"x" * 100), ("dogs/b.png", b"\x89PNGy")])
    seen = []
    with GuardedZip(source, "ok.zip") as archive:
        assert [i.filename for i in archive.files()] == ["cats/a.png", "dogs/b.png"]
        written = archive.extract_to(tmp_path / "out", on_file=lambda done, total: seen.append((done, total)))
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in written) == ["cats/a.png", "dogs/b.png"]
    assert (tmp_path / "out" / "cats" / "a.png").read_bytes().startswith(b"\x89PNG")
    assert seen == [(1, 2), (2, 2)]


@pytest.mark.parametrize("name, reason", [
    ("../evil.png", "'..'"),
    ("a/../../evil.png", "'..'"),
    ("/etc/evil.png", "absolute path"),
    ("C:/evil.png", "absolute path"),
    ("a\\..\\evil.png", "backslash"),
])
def test_names_that_leave_the_folder_are_refused(tmp_path, name, reason):
    source = make_zip(tmp_path / "bad.zip", [("ok/a.png", b"x"), (name, b"y")])
    with pytest.raises(ArchiveError, match=reason):
        GuardedZip(source, "bad.zip")
    assert not (tmp_path.parent / "evil.png").exists()


def test_a_symlink_is_refused(tmp_path):
    link = zipfile.ZipInfo("cats/link.png")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    source = make_zip(tmp_path / "link.zip", [("cats/a.png", b"x"), (link, b"/etc/passwd")])
    with pytest.raises(ArchiveError, match="symbolic link"):
        GuardedZip(source, "link.zip")


def test_a_nested_archive_is_refused_by_name_and_by_content(tmp_path):
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as archive:
        archive.writestr("x.png", b"x")
    by_name = make_zip(tmp_path / "n1.zip", [("cats/inner.zip", inner.getvalue())])
    with pytest.raises(ArchiveError, match="nested"):
        GuardedZip(by_name, "n1.zip")
    by_content = make_zip(tmp_path / "n2.zip", [("cats/a.png", b"x"), ("cats/b.png", inner.getvalue())])
    with GuardedZip(by_content, "n2.zip") as archive, pytest.raises(ArchiveError, match="nested"):
        archive.extract_to(tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_too_many_entries_and_too_many_bytes_are_refused(tmp_path):
    many = make_zip(tmp_path / "many.zip", [(f"c/{i}.png", b"x") for i in range(11)])
    with pytest.raises(ArchiveError, match="11 entries; at most 10"):
        GuardedZip(many, "many.zip", ArchiveLimits(max_entries=10))
    big = make_zip(tmp_path / "big.zip", [("c/a.png", os.urandom(4096))], zipfile.ZIP_STORED)
    with pytest.raises(ArchiveError, match="would unpack to"):
        GuardedZip(big, "big.zip", ArchiveLimits(max_total_bytes=1000))


def test_a_zip_bomb_is_refused_before_anything_is_inflated(tmp_path):
    bomb = make_zip(tmp_path / "bomb.zip", [("c/a.png", b"\0" * (64 * 1024**2))])
    assert bomb.stat().st_size < 1024**2
    with pytest.raises(ArchiveError, match="inflates"):
        GuardedZip(bomb, "bomb.zip")


def test_a_member_that_lies_about_its_size_is_cut_off(tmp_path):
    source = make_zip(tmp_path / "ok.zip", [("c/a.png", b"y" * 5000)], zipfile.ZIP_STORED)
    with GuardedZip(source, "ok.zip") as archive:
        with pytest.raises(ArchiveError, match="at most"):
            archive.read("c/a.png", max_bytes=100)
        assert archive.read("c/a.png", max_bytes=5000) == b"y" * 5000


def test_not_a_zip_and_a_damaged_zip_are_refused(tmp_path):
    (tmp_path / "h5.keras").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    with pytest.raises(ArchiveError, match="not a zip"):
        GuardedZip(tmp_path / "h5.keras", "h5.keras")
    (tmp_path / "cut.zip").write_bytes(b"PK\x03\x04" + b"\0" * 50)
    with pytest.raises(ArchiveError, match="not a readable zip"):
        GuardedZip(tmp_path / "cut.zip", "cut.zip")


def test_an_existing_destination_is_never_written_into(tmp_path):
    source = make_zip(tmp_path / "ok.zip", [("c/a.png", b"x")])
    (tmp_path / "out").mkdir()
    with GuardedZip(source, "ok.zip") as archive, pytest.raises(ArchiveError, match="already exists"):
        archive.extract_to(tmp_path / "out")


def test_limits_come_from_settings_and_bad_settings_are_named(monkeypatch):
    monkeypatch.setenv("LAYERLAB_ZIP_MAX_ENTRIES", "7")
    monkeypatch.setenv("LAYERLAB_ZIP_MAX_MB", "1.5")
    assert ArchiveLimits.from_env() == ArchiveLimits(max_entries=7, max_total_bytes=int(1.5 * 1024**2))
    monkeypatch.setenv("LAYERLAB_ZIP_MAX_RATIO", "lots")
    with pytest.raises(ArchiveError, match="LAYERLAB_ZIP_MAX_RATIO"):
        ArchiveLimits.from_env()

"""Adding a dataset from a zip or a folder: hostile uploads are refused with a reason and write nothing."""
import io
import stat
import zipfile

import pytest

from pipelines.data import added
from pipelines.data.folders import Settings
from pipelines.errors import ArchiveError, DatasetError, LayerlabError
from pipelines.io.dataset_import import add_dataset
from tests.data.photo_folders import copy_classes, tree


@pytest.fixture
def photos(shared_datasets, tmp_path):
    return copy_classes(shared_datasets, tmp_path / "photos", per_class=8)


@pytest.fixture
def home(tmp_path):
    yield tmp_path / "home"
    added.clear_cache()


def zip_of(folder, path, extra=()):
    """A zip of `folder` (under its own name, as a file manager makes it) plus `extra` entries."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                archive.write(file, f"{folder.name}/{file.relative_to(folder).as_posix()}")
        for name, data in extra:
            archive.writestr(name, data)
    return path


def symlink_entry(name, target):
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target


def test_a_zip_upload_is_added_and_its_unpacked_copy_removed(photos, tmp_path, home):
    upload = io.BytesIO(zip_of(photos, tmp_path / "up.zip", [("photos/hat/bad.png", b"\x89PNG broken")]).read_bytes())
    stages = set()
    manifest = add_dataset("clothes", upload, Settings(32), home=home, what="up.zip",
                           progress=lambda stage, done, total, seconds: stages.add(stage))
    assert manifest["classes"] == ["hat", "pants", "shoes"] and manifest["origin"] == "up.zip"
    assert manifest["unreadable"][0]["file"] == "hat/bad.png"
    assert stages == {"unpack", "decode"}
    assert tree(home / "datasets") == ["clothes", "clothes/arrays.npz", "clothes/manifest.json"]


def test_a_server_folder_is_added_in_place_without_copying_it(photos, home):
    manifest = add_dataset("from-folder", photos, Settings(16, "pad", "grayscale"), home=home)
    assert manifest["origin"] == str(photos.resolve()) and manifest["channels"] == 1
    assert sum(map(sum, manifest["counts"].values())) == 24


BOMB = b"\0" * (60 * 1024 * 1024)


@pytest.mark.parametrize("extra, env, reason", [
    ([("photos/../evil.jpg", b"x")], {}, "'..'"),
    ([("/etc/evil.jpg", b"x")], {}, "absolute path"),
    ([symlink_entry("photos/hat/link.jpg", "/etc/passwd")], {}, "symbolic link"),
    ([("photos/hat/inner.zip", b"PK\x03\x04rest")], {}, "nested archives are not allowed"),
    ([("photos/hat/inner.jpg", b"PK\x03\x04" + b"z" * 600)], {}, "nested archives are not allowed"),
    ([], {"LAYERLAB_ZIP_MAX_ENTRIES": "5"}, "at most 5 are allowed"),
    ([], {"LAYERLAB_ZIP_MAX_MB": "0.5"}, "would unpack to"),
    ([("photos/hat/bomb.jpg", BOMB)], {}, "inflates"),
])
def test_hostile_zips_are_refused_and_write_nothing(photos, tmp_path, home, monkeypatch, extra, env, reason):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    source = zip_of(photos, tmp_path / "hostile.zip", extra)
    with pytest.raises(ArchiveError, match=reason):
        add_dataset("hostile", source, Settings(16), home=home)
    assert tree(home / "datasets") == []


def test_a_single_class_or_no_images_is_refused_and_writes_nothing(shared_datasets, tmp_path, home):
    one = copy_classes(shared_datasets, tmp_path / "one", classes=("hat",), per_class=3)
    with pytest.raises(DatasetError, match="one class only"):
        add_dataset("one", zip_of(one, tmp_path / "one.zip"), Settings(16), home=home)
    empty = tmp_path / "empty"
    (empty / "a").mkdir(parents=True)
    (empty / "a" / "readme.md").write_text("no photos")
    with pytest.raises(DatasetError, match="No images found"):
        add_dataset("empty", zip_of(empty, tmp_path / "empty.zip"), Settings(16), home=home)
    assert tree(home / "datasets") == []


def test_a_refused_zip_is_named_as_uploaded_not_by_its_temporary_folder(shared_datasets, tmp_path, home):
    one = zip_of(copy_classes(shared_datasets, tmp_path / "one", classes=("hat",), per_class=3), tmp_path / "1.zip")
    with pytest.raises(DatasetError, match=r"^my hats\.zip holds images of one class only \('hat'\)"):
        add_dataset("one", io.BytesIO(one.read_bytes()), Settings(16), home=home, what="my hats.zip")
    (tmp_path / "empty" / "a").mkdir(parents=True)
    (tmp_path / "empty" / "a" / "readme.md").write_text("no photos")
    empty = zip_of(tmp_path / "empty", tmp_path / "empty.zip")
    with pytest.raises(DatasetError, match=r"^No images found in empty\.zip\. Expected one folder per class"):
        add_dataset("empty", io.BytesIO(empty.read_bytes()), Settings(16), home=home, what="empty.zip")
    with pytest.raises(DatasetError, match=r"^\S*1\.zip holds images of one class only"):  # a zip path as given
        add_dataset("one", one, Settings(16), home=home)
    assert tree(home / "datasets") == []


def test_a_zip_path_is_recorded_as_its_resolved_path(photos, tmp_path, home, monkeypatch):
    zip_of(photos, tmp_path / "up.zip")
    monkeypatch.chdir(tmp_path)
    manifest = add_dataset("clothes", "up.zip", Settings(16), home=home)
    assert manifest["origin"] == str((tmp_path / "up.zip").resolve())


def test_bad_names_and_sources_name_what_is_allowed(photos, tmp_path, home):
    with pytest.raises(DatasetError, match="lower-case letters, digits"):
        add_dataset("../up", photos, Settings(16), home=home)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DatasetError, match="is not a .zip archive"):
        add_dataset("notes", tmp_path / "notes.txt", Settings(16), home=home)
    with pytest.raises(LayerlabError, match="neither a folder nor a file"):
        add_dataset("gone", tmp_path / "missing", Settings(16), home=home)
    assert tree(home / "datasets") == []

"""The Data page's "Add a dataset" through AppTest: a server folder becomes a dataset the page shows,
with its split note, counts, unreadable files and gallery; a refusal is its reason and adds nothing."""
import zipfile

import pytest

from components import state
from pipelines.data import added
from pipelines.data.folders import Settings
from pipelines.io.dataset_import import add_dataset
from tests.dashboard.rendered import shown
from tests.dashboard.test_data_page import home, open_data  # noqa: F401 - the fixture is used by name
from tests.data.photo_folders import copy_classes, tree


def fill_in(at, path, name):
    at.radio(key=state.key("data", "add", "source")).set_value("A folder on this server").run()
    at.text_input(key=state.key("data", "add", "path")).input(str(path))
    at.text_input(key=state.key("data", "add", "name")).input(name)
    at.select_slider(key=state.key("data", "add", "size")).set_value(32)
    at.radio(key=state.key("data", "add", "fit")).set_value("crop").run()
    at.button(key=state.key("data", "add", "go")).click().run()
    assert not at.exception, at.exception
    return at


def test_a_server_folder_is_added_and_shown(home, shared_datasets, tmp_path):
    photos = copy_classes(shared_datasets, tmp_path / "photos", per_class=10)
    (photos / "pants" / "broken.jpg").write_bytes(b"\xff\xd8\xff broken")
    (photos / "hat" / "notes.txt").write_text("not a photo")
    at = fill_in(open_data(), photos, "my-clothes")
    assert [shown(s.value) for s in at.success] == ["Added my-clothes: 3 classes, 30 images."]
    assert at.button_group[0].value == "my-clothes"
    assert any("held out 20% of each class" in shown(i.value) for i in at.info)
    tables = [d.value for d in at.dataframe]
    splits = next(t for t in tables if "Training images" in t.columns)
    assert list(splits["Class"]) == ["hat", "pants", "shoes"]
    assert list(splits["Training images"] + splits["Test images"]) == [10, 10, 10]
    unreadable = next(t for t in tables if "Reason" in t.columns)
    assert list(unreadable["File"]) == ["pants/broken.jpg"]
    skipped = next(t for t in tables if "Reason" in t.columns and "hat/notes.txt" in list(t["File"]))
    assert skipped["Reason"][0].startswith("not an image file")
    assert any(e.label.startswith("1 file(s) or folder(s) were skipped") for e in at.expander)
    assert "0 · hat" in [shown(c.value) for c in at.caption]  # the gallery's rows
    assert (home / "datasets" / "my-clothes" / "arrays.npz").is_file()
    added.clear_cache()


def test_a_refused_folder_shows_its_reason_and_adds_nothing(home, shared_datasets, tmp_path):
    one = copy_classes(shared_datasets, tmp_path / "one", classes=("hat",), per_class=3)
    at = fill_in(open_data(), one, "one")
    (error,) = at.error
    assert "Not added" in shown(error.value) and "one class only" in shown(error.value)
    assert tree(home / "datasets") == []


def test_a_class_with_no_training_images_is_said_so_in_the_gallery(home, shared_datasets, tmp_path):
    # The audit's zip: train/{hat,shoes}, validation/{hat,pants}, so 'pants' has no training image.
    photos = tmp_path / "split"
    copy_classes(shared_datasets, photos / "train", classes=("hat", "shoes"), per_class=4)
    copy_classes(shared_datasets, photos / "validation", classes=("hat", "pants"), per_class=3, split="validation")
    upload = tmp_path / "split.zip"
    with zipfile.ZipFile(upload, "w") as archive:
        for file in sorted(photos.rglob("*.jpg")):
            archive.write(file, file.relative_to(photos).as_posix())
    add_dataset("no-pants", str(upload), Settings(32), home=home)
    at = open_data("no-pants")
    assert not at.exception and not at.error, at.error
    captions = [shown(c.value) for c in at.caption]
    assert "1 · pants" in captions and "No training images of this class." in [t.value for t in at.text]
    added.clear_cache()


def zip_upload(at, name, data):
    at.text_input(key=state.key("data", "add", "name")).input("zipped")
    at.select_slider(key=state.key("data", "add", "size")).set_value(32)
    at.file_uploader(key=state.key("data", "add", "zip")).set_value((name, data, "application/zip")).run()
    at.button(key=state.key("data", "add", "go")).click().run()
    assert not at.exception, at.exception
    return at


def test_the_zip_uploader_takes_the_server_cap_and_names_it(home, shared_datasets, tmp_path):
    from streamlit import config

    at = open_data()
    cap = config.get_option("server.maxUploadSize")
    assert cap >= 1024  # .streamlit/config.toml: a 101 MB zip of clothing photos fits
    (uploader,) = [u for u in at.get("file_uploader") if u.key == state.key("data", "add", "zip")]
    assert uploader.proto.max_upload_size_mb == cap and f"Up to {cap:,} MB" in uploader.help
    assert f"Zips up to {cap:,} MB." in [shown(c.value) for c in at.caption]
    photos = copy_classes(shared_datasets, tmp_path / "photos", per_class=4)
    data = _zip_bytes(photos) + bytes(2**20)  # padded past 1 MB
    config.set_option("server.maxUploadSize", 1)
    try:
        at = zip_upload(open_data(), "my-photos.zip", data)
    finally:
        config.set_option("server.maxUploadSize", cap)
    (error,) = at.error
    message = shown(error.value)
    assert message.startswith("Not added: my-photos.zip is 1.") and message.endswith(
        " MB; the largest dataset zip this server takes is 1 MB (setting server.maxUploadSize)")
    assert tree(home / "datasets") == []


def _zip_bytes(folder):
    import io
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for file in sorted(folder.rglob("*.jpg")):
            archive.write(file, file.relative_to(folder).as_posix())
    return out.getvalue()

"""The Data page through Streamlit's AppTest: where to start, what the offline MNIST is, classes named
once, and a missing dataset told in the right order."""
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from components import dataset_view, resources, state
from pipelines.data.catalog import CATALOG
from pipelines.data.locate import clear_cache
from pipelines.runs.sqlite_store import SQLiteRunStore
from tests.dashboard.rendered import shown

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")


@pytest.fixture
def home(tmp_path, monkeypatch, shared_datasets):
    monkeypatch.setenv("LAYERLAB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LAYERLAB_DATA_DIR", str(shared_datasets))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))  # no cached CIFAR-10 from elsewhere
    monkeypatch.setattr("pipelines.execution.scheduler.Scheduler.ensure_workers", lambda *a, **k: [])
    resources.store.clear()
    resources.dataset_overview.clear()
    clear_cache()
    yield tmp_path / "home"
    resources.store.clear()
    resources.dataset_overview.clear()
    clear_cache()


def open_data(dataset: str | None = None) -> AppTest:
    """The app as it opens (on Data), then `dataset` picked with the dataset buttons."""
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    if dataset:
        (picker,) = at.button_group
        picker.set_value(dataset).run()
        assert not at.exception, at.exception
    return at


def test_a_new_user_is_shown_where_to_start(home):
    at = open_data()
    assert at.title[0].value == "Data"
    assert "New here? Start with these four steps." in at.markdown[0].value
    links = [link.proto.label for link in at.get("page_link")]
    assert links == ["1 · Look at the data", "2 · Build a model", "3 · Train it", "4 · Test it"]


def test_once_a_run_exists_the_start_path_is_gone(home):
    SQLiteRunStore(home).create_run("x", "mnist", {})
    at = open_data()
    assert not at.get("page_link") and not any("New here" in m.value for m in at.markdown)


def test_the_offline_mnist_is_said_to_be_a_sample_and_digits_are_named_once(home):
    at = open_data("mnist")
    (note,) = [i.value for i in at.info]
    assert note.startswith("This copy of MNIST is a sample: 5,000 training images of the full 60,000")
    assert "about 92%" in note and "98%" in note
    (table,) = [d.value for d in at.dataframe]
    assert "Label" not in table.columns and list(table["Class"]) == [str(d) for d in range(10)]
    captions = [shown(c.value) for c in at.caption]
    assert "0" in captions and "0 · 0" not in captions


def test_fashion_mnist_is_complete_and_keeps_its_labels(home):
    at = open_data("fashion_mnist")
    assert not at.info
    (table,) = [d.value for d in at.dataframe]
    assert list(table["Label"])[:2] == [0, 1] and list(table["Class"])[:2] == ["T-shirt/top", "Trouser"]
    assert "3 · Dress" in [shown(c.value) for c in at.caption]


def test_a_missing_dataset_says_what_to_do_first_and_the_details_after(home):
    at = open_data("cifar10")
    (warning,) = at.warning
    assert warning.value.startswith("CIFAR-10 is not on this computer")
    assert "download=False" not in warning.value
    (details,) = [e for e in at.expander if e.label != "Add a dataset from your own photos"]
    assert details.label == "Where Layerlab looked, and the files it needs"
    assert "cifar-10-batches-py" in at.code[0].value
    assert at.button(key=state.key("data", "download", "cifar10")).label == "Download CIFAR-10 through Keras"


def test_a_sample_note_only_for_a_smaller_copy():
    info = CATALOG["fashion_mnist"]
    full = {"train_counts": [6000] * 10, "test_counts": [1000] * 10}
    assert dataset_view.sample_note(info, full) is None
    assert dataset_view.class_label(info, 3) == "3 · Dress"
    assert dataset_view.class_label(CATALOG["mnist"], 3) == "3"


def test_the_augmentation_preview_shows_augmented_samples_only_when_asked(home):
    from components import augmentation_view
    from pipelines.modelspec.spec import ModelSpec

    at = open_data("mnist")
    (preview,) = [e for e in at.expander if e.label == "Augmentation preview"]
    assert "RandomFlip, RandomRotation, from a default set" in shown(preview.caption[0].value)
    assert not preview.get("image")  # nothing computed (no TensorFlow) until the toggle
    at.toggle(key=state.key("data", "augment", "show")).set_value(True).run()
    assert not at.exception, at.exception
    at.selectbox(key=state.key("data", "augment", "class")).set_value(3).run()
    (preview,) = [e for e in at.expander if e.label == "Augmentation preview"]
    (images,) = preview.get("image")
    captions = [image.caption for image in images.proto.imgs]
    assert captions == ["original", *(f"copy {i}" for i in range(1, augmentation_view.SAMPLES + 1))]
    spec = ModelSpec.from_dict({"layers": [
        {"type": "RandomZoom", "name": "zoom"}, {"type": "RandomContrast", "name": "contrast"},
        {"type": "Flatten", "name": "flat"}, {"type": "RandomFlip", "name": "late"}]})
    assert [layer.type for layer in augmentation_view.leading_augmentation(spec)] == ["RandomZoom", "RandomContrast"]

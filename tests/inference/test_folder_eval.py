"""The clothing bridge: a Fashion-MNIST model on real clothing photos in labelled folders."""
import dataclasses
import os

import numpy as np
import pytest
from PIL import Image

from pipelines.errors import LayerlabError
from pipelines.inference.folder_eval import evaluate_folder, match_classes, photo_to_input
from pipelines.modelspec.presets import get_preset
from pipelines.runs.artifacts import MODEL_FILE, SPEC_FILE
from pipelines.runs.entities import RunStatus
from pipelines.runs.sqlite_store import SQLiteRunStore
from tests.data.photo_folders import copy_classes

FASHION = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


@pytest.fixture(scope="module")
def fashion_run(shared_datasets, tmp_path_factory):
    """An MLP after one epoch on 10,000 Fashion-MNIST images, saved as a COMPLETED run: (home, run)."""
    import keras

    from pipelines.data.inputs import scale_images
    from pipelines.data.locate import load
    from pipelines.modelspec.keras_build import build_model

    data = load("fashion_mnist", shared_datasets, download=False)
    keras.utils.set_random_seed(0)
    spec = dataclasses.replace(get_preset("mlp-128x2").spec.with_fit(epochs=1), input_shape=(28, 28, 1))
    model = build_model(spec)
    model.fit(scale_images(data.x_train[:10_000]), data.y_train[:10_000], batch_size=64, epochs=1, verbose=0)
    home = tmp_path_factory.mktemp("home")
    with SQLiteRunStore(home) as store:
        run = store.create_run("fashion mlp", "fashion_mnist", spec.to_dict())
        assert store.claim_next_run(os.getpid(), 10).id == run.id
        run_dir = store.ensure_run_dir(run.id)
        model.save(run_dir / MODEL_FILE)
        (run_dir / SPEC_FILE).write_text(spec.to_json())
        store.finish_run(run.id, RunStatus.COMPLETED, metrics={"test_accuracy": 0.8, "test_loss": 0.5})
        return home, store.get_run(run.id)


def test_clothing_folder_names_match_fashion_mnist_classes():
    matched = match_classes(["t-shirt", "pants", "shoes", "Dress", "hat", "outwear", "Bags"], FASHION)
    assert matched == {"t-shirt": (0,), "pants": (1,), "shoes": (5, 7, 9), "Dress": (3,), "outwear": (4,),
                       "Bags": (8,)}
    assert match_classes(["cat", "dog"], ["cat", "dog"]) == {"cat": (0,), "dog": (1,)}


def test_a_fashion_mnist_run_on_clothing_photos(fashion_run, shared_datasets, tmp_path):
    home, run = fashion_run
    folder = copy_classes(shared_datasets, tmp_path / "mine", classes=("pants", "shoes", "dress", "hat"),
                          per_class=8, split="validation")
    (folder / "pants" / "broken.jpg").write_bytes(b"\xff\xd8\xff broken")
    seen = []
    result = evaluate_folder(SQLiteRunStore(home).run_dir(run.id), "fashion_mnist", folder,
                             lambda done, total: seen.append((done, total)))
    assert result.n_images == 24 and seen[-1] == (25, 25)
    assert result.unmatched_classes == ["hat"] and [f for f, _ in result.unreadable] == ["pants/broken.jpg"]
    assert result.per_class["shoes"]["as"] == ["Sandal", "Sneaker", "Ankle boot"]
    assert sum(row["correct"] for row in result.per_class.values()) == round(result.accuracy * 24)
    file, photo, model_input, predicted = result.examples["pants"][0]
    assert photo.dtype == np.uint8 and max(photo.shape[:2]) == 96
    assert model_input.shape == (28, 28, 1) and predicted in FASHION
    assert 0.0 <= model_input.min() and model_input.max() <= 1.0


def test_a_photo_on_a_light_background_is_inverted_grey_and_28x28(tmp_path):
    pixels = np.full((300, 200, 3), 240, np.uint8)
    pixels[60:240, 50:150] = (90, 30, 30)  # a dark red garment on white
    Image.fromarray(pixels).save(tmp_path / "dress.jpg", quality=95)
    model_input, notes = photo_to_input(tmp_path / "dress.jpg", "fashion_mnist", (28, 28, 1))
    assert model_input.shape == (28, 28, 1)
    assert "inverted: the background was light, as with ink on paper" in notes
    assert model_input[0].max() < 0.1 and model_input[14, 14, 0] > 0.6  # dark around, light garment


def test_a_folder_without_a_matching_class_says_so(fashion_run, shared_datasets, tmp_path):
    home, run = fashion_run
    folder = copy_classes(shared_datasets, tmp_path / "hats", classes=("hat",), per_class=2)
    with pytest.raises(LayerlabError, match="None of the folder's classes \\(hat\\) matches a class of Fashion-MNIST"):
        evaluate_folder(SQLiteRunStore(home).run_dir(run.id), "fashion_mnist", folder)


def test_an_upload_for_an_added_dataset_is_fitted_as_its_photos_were(shared_datasets, tmp_path, monkeypatch):
    from pipelines.data import added
    from pipelines.data.folders import Settings, decode_image
    from pipelines.inference.folder_eval import prepare_picture
    from pipelines.io.dataset_import import add_dataset

    monkeypatch.setenv("LAYERLAB_HOME", str(tmp_path / "home"))
    folder = copy_classes(shared_datasets, tmp_path / "photos", per_class=3)
    settings = Settings(40, "crop", "grayscale")
    add_dataset("gray-crop", folder, settings)
    photo = sorted((folder / "shoes").iterdir())[0]
    with Image.open(photo) as image:
        prepared = prepare_picture(image, "gray-crop", (40, 40, 1))
    stored = decode_image(photo, settings).astype(np.float32) / 255
    assert prepared.array.shape == (40, 40, 1) and not prepared.inverted
    assert np.abs(prepared.array - stored).mean() < 0.03  # the same recipe (JPEG draft scale aside)
    with Image.open(photo) as image:  # a built-in dataset keeps the upload preprocessing
        assert prepare_picture(image, "fashion_mnist", (28, 28, 1)).array.shape == (28, 28, 1)
    added.clear_cache()


def test_a_refused_upload_is_named_as_the_user_named_it(tmp_path):
    """A zip is read from a temporary folder; the refusal names the zip, not that folder."""
    empty = tmp_path / ".unpacking-x" / "files"
    (empty / "hat").mkdir(parents=True)
    (empty / "hat" / "notes.txt").write_text("no photo here")
    with pytest.raises(LayerlabError, match="my photos.zip") as refused:
        evaluate_folder(tmp_path / "no-run", "fashion_mnist", empty, what="my photos.zip")
    assert ".unpacking" not in str(refused.value)

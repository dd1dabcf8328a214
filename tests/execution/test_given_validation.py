"""A folder's own validation/ split is the run's validation data (the tutorial's validation_data),
not a share of train/; with no test/ beside it, it is the test set too. Real photos, a few dozen."""
import threading

import keras
import numpy as np
import pytest

from pipelines.data import added
from pipelines.data.folders import Settings
from pipelines.data.inputs import make_inputs, scale_images
from pipelines.execution.feature_cache import CACHE_FOLDER
from pipelines.execution.training import execute_run
from pipelines.io.dataset_import import add_dataset
from pipelines.modelspec.spec import ModelSpec
from pipelines.runs.artifacts import MODEL_FILE
from pipelines.runs.entities import RunStatus
from pipelines.runs.sqlite_store import SQLiteRunStore
from tests.data.photo_folders import copy_classes


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("LAYERLAB_HOME", str(tmp_path / "home"))
    added.clear_cache()
    yield tmp_path / "home"
    added.clear_cache()


def _folder(shared, root, *, test: bool):
    copy_classes(shared, root / "train", per_class=8)
    copy_classes(shared, root / "validation", per_class=3, split="validation")
    if test:
        copy_classes(shared, root / "test", per_class=2, split="validation", start=3)
    return root


def test_a_given_validation_split_is_stored_loaded_and_fed_as_validation(shared_datasets, tmp_path, home):
    manifest = add_dataset("three", _folder(shared_datasets, tmp_path / "three", test=True), Settings(16))
    assert manifest["counts"] == {"train": [8] * 3, "validation": [3] * 3, "test": [2] * 3}
    assert any("validation/ is the validation data" in note and "test/ is the test set" in note
               for note in manifest["notes"])
    dataset = added.load("three")
    assert dataset.has_own_validation and (len(dataset.x_train), len(dataset.x_val), len(dataset.x_test)) == (24, 9, 6)
    inputs = make_inputs(dataset, batch_size=4, validation_split=0.3, shuffle=False)
    assert (inputs.n_train, inputs.n_val, inputs.n_test) == (24, 9, 6)  # validation_split is not used
    fed = np.concatenate([x for x, _ in inputs.val.as_numpy_iterator()])
    np.testing.assert_array_equal(fed, scale_images(dataset.x_val))


def test_validation_without_test_doubles_as_the_test_set_and_is_said_so(shared_datasets, tmp_path, home):
    manifest = add_dataset("two", _folder(shared_datasets, tmp_path / "two", test=False), Settings(16))
    assert manifest["counts"] == {"train": [8] * 3, "validation": [3] * 3}
    assert any("validation/ is also the test set" in note for note in manifest["notes"])
    dataset = added.load("two")
    np.testing.assert_array_equal(dataset.x_test, dataset.x_val)
    np.testing.assert_array_equal(dataset.y_test, dataset.y_val)


def _trained(home, dataset_name: str, spec: ModelSpec, dataset):
    """A run of `spec` on the dataset, trained in this process to COMPLETED: (store, run, outcome)."""
    store = SQLiteRunStore(home)
    store.create_run(dataset_name, dataset_name, spec.to_dict(), total_epochs=spec.fit.epochs)
    run = store.claim_next_run(1, 1)
    outcome = execute_run(store, run, threading.Event(), dataset=dataset)
    assert outcome.status is RunStatus.COMPLETED, outcome.error
    return store, run, outcome


@pytest.mark.slow
def test_training_validates_on_the_given_validation_images(shared_datasets, tmp_path, home):
    add_dataset("given", _folder(shared_datasets, tmp_path / "given", test=True), Settings(16))
    dataset = added.load("given")
    spec = ModelSpec.from_dict({
        "layers": [{"type": "Flatten", "name": "flat"},
                   {"type": "Dense", "name": "out", "params": {"units": 3, "activation": "softmax"}}],
        "fit": {"epochs": 2, "batch_size": 8, "validation_split": 0.25, "keep_best": False}})
    store, run, outcome = _trained(home, "given", spec, dataset)
    # The saved (last-epoch) model on the validation photos gives the run's final val figures.
    model = keras.models.load_model(store.ensure_run_dir(run.id) / MODEL_FILE)
    loss, accuracy = model.evaluate(scale_images(dataset.x_val), dataset.y_val, verbose=0)
    assert outcome.metrics["val_loss"] == pytest.approx(loss, abs=1e-5)
    assert outcome.metrics["val_accuracy"] == pytest.approx(accuracy, abs=1e-6)
    test_loss, _ = model.evaluate(scale_images(dataset.x_test), dataset.y_test, verbose=0)
    assert outcome.metrics["test_loss"] == pytest.approx(test_loss, abs=1e-5)
    assert outcome.metrics["val_loss"] != pytest.approx(test_loss, abs=1e-5)  # two different sets of photos


@pytest.mark.slow
def test_a_frozen_base_on_cached_features_validates_on_the_given_validation_images(shared_datasets, tmp_path, home):
    add_dataset("given32", _folder(shared_datasets, tmp_path / "given32", test=True), Settings(32))
    dataset = added.load("given32")
    spec = ModelSpec.from_dict({
        "layers": [{"type": "PretrainedBase", "name": "base",
                    "params": {"base": "MobileNetV2", "weights": "none", "unfreeze_last": 0}},
                   {"type": "GlobalAveragePooling2D", "name": "pool"},
                   {"type": "Dense", "name": "out", "params": {"units": 3, "activation": "softmax"}}],
        "fit": {"epochs": 1, "batch_size": 8, "validation_split": 0.25, "keep_best": False}})
    store, run, outcome = _trained(home, "given32", spec, dataset)
    (cache,) = (home / CACHE_FOLDER).iterdir()
    assert len(np.load(cache / "train.npy")) == 24 and len(np.load(cache / "test.npy")) == 9  # train/, validation/
    model = keras.models.load_model(store.ensure_run_dir(run.id) / MODEL_FILE)
    val_loss, _ = model.evaluate(scale_images(dataset.x_val), dataset.y_val, verbose=0)
    test_loss, _ = model.evaluate(scale_images(dataset.x_test), dataset.y_test, verbose=0)
    assert outcome.metrics["val_loss"] == pytest.approx(val_loss, abs=1e-4)
    assert outcome.metrics["test_loss"] == pytest.approx(test_loss, abs=1e-4)

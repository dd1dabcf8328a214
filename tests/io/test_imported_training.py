"""What an imported run records of its training: the steps its file's optimizer had taken (Keras
keeps no epoch count), or that the file does not say; never the epochs of Layerlab's default fit
settings. And the input shape a file declares, read before the import, picks the datasets it fits."""
from __future__ import annotations

import io

import keras
import numpy as np

from pipelines.data.inputs import scale_images
from pipelines.data.locate import load
from pipelines.io.keras_import import (IMPORTED_TAG, TRAINED_STEPS, fitting_datasets, import_model,
                                       imported_training, model_input_shape)
from tests.io.keras_files import assemble, parts, plain_keras_model, save


def test_a_model_trained_elsewhere_records_its_optimizer_steps_not_epochs(tmp_path, store):
    model = plain_keras_model(16)
    data = load("mnist")
    model.fit(scale_images(data.x_train[:320]), data.y_train[:320], epochs=3, batch_size=32, verbose=0)
    run = import_model(store, save(model, tmp_path / "trained.keras"), "mnist")
    assert run.metrics[TRAINED_STEPS] == 30  # 3 epochs of 10 batches
    assert run.epochs_done == 0 and IMPORTED_TAG in run.tags
    assert "trained elsewhere for 30 steps" in run.note and "no epochs or curves here" in run.note
    assert imported_training(run) == "imported: trained elsewhere for 30 steps, not here"


def test_a_file_saved_without_optimizer_state_says_it_does_not_tell(tmp_path, store):
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="softmax")])  # never compiled nor trained
    run = import_model(store, save(model, tmp_path / "untrained.keras"), "mnist")
    assert TRAINED_STEPS not in run.metrics
    assert "does not say how long it trained" in run.note
    assert imported_training(run) == "imported, not trained here"


def test_a_run_trained_here_is_not_called_imported(trained_run):
    _, run = trained_run
    assert imported_training(run) is None


def test_a_steps_counter_that_is_not_a_count_is_not_recorded(tmp_path, store):
    import h5py

    model = plain_keras_model(16)
    data = load("mnist")
    model.fit(scale_images(data.x_train[:64]), data.y_train[:64], epochs=1, batch_size=32, verbose=0)
    config, weights, metadata = parts(save(model, tmp_path / "m.keras"))
    buffer = io.BytesIO(weights)
    with h5py.File(buffer, "r+") as handle:
        del handle["optimizer/vars/0"]
        handle["optimizer/vars/0"] = np.float32(2.5)
    run = import_model(store, assemble(tmp_path / "odd.keras", config, buffer.getvalue(), metadata), "mnist")
    assert TRAINED_STEPS not in run.metrics and imported_training(run) == "imported, not trained here"


def test_the_input_shape_a_file_declares_picks_the_datasets_it_fits(tmp_path, monkeypatch):
    monkeypatch.setenv("LAYERLAB_HOME", str(tmp_path / "home"))  # no added datasets
    mnist_like = save(plain_keras_model(16), tmp_path / "gray.keras")
    assert model_input_shape(mnist_like, "gray.keras") == (28, 28, 1)
    assert fitting_datasets((28, 28, 1)) == ["mnist", "fashion_mnist"]
    colour = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(), keras.layers.Dense(10)])
    path = save(colour, tmp_path / "colour.keras")
    with open(path, "rb") as handle:  # an upload is a file object
        assert model_input_shape(handle, "colour.keras") == (32, 32, 3)
    assert fitting_datasets((32, 32, 3)) == ["cifar10"]
    assert fitting_datasets((7, 7, 2)) == []
    not_keras = tmp_path / "photo.keras"
    not_keras.write_bytes(b"\xff\xd8\xff not a zip")
    assert model_input_shape(not_keras, "photo.keras") is None

"""Models that import: one Layerlab trained and saved, and one a plain Keras script saved. Each
becomes a COMPLETED run whose model predicts what the original predicts."""
from __future__ import annotations

import functools
import os

import keras
import numpy as np
import pytest

from pipelines.data.inputs import scale_images
from pipelines.data.locate import load
from pipelines.errors import DatasetError, ModelImportError
from pipelines.inference.predict import load_run_model
from pipelines.io import keras_config_check as check
from pipelines.io.keras_import import IMPORTED_TAG, import_model
from pipelines.modelspec.keras_build import build_model
from pipelines.modelspec.presets import get_preset
from pipelines.runs.entities import RunStatus
from tests.io.keras_files import assemble, functional_keras_model, parts, plain_keras_model, save


def _largest_difference(store, run, original: keras.Model) -> float:
    images = scale_images(load("mnist").x_test[:100])
    imported = load_run_model(store.run_dir(run.id), "mnist").model
    return float(np.abs(imported.predict(images, verbose=0) - original.predict(images, verbose=0)).max())


def test_a_model_layerlab_trained_imports_and_predicts_the_same(tmp_path, store):
    spec = get_preset("mlp-512").spec
    model = build_model(spec, (28, 28, 1))
    data = load("mnist")
    model.fit(scale_images(data.x_train[:512]), data.y_train[:512], epochs=1, batch_size=64, verbose=0)
    path = save(model, tmp_path / "model.keras")

    run = import_model(store, path, "mnist", name="teammate's MLP")

    assert run.status is RunStatus.COMPLETED and run.name == "teammate's MLP" and IMPORTED_TAG in run.tags
    assert [layer.to_dict() for layer in run.model_spec.layers] == [layer.to_dict() for layer in spec.layers]
    assert run.model_spec.compile == spec.compile
    assert 0.0 <= run.metrics["test_accuracy"] <= 1.0 and run.metrics["test_loss"] > 0
    assert _largest_difference(store, run, model) <= 1e-6
    assert sorted(p.name for p in store.run_dir(run.id).iterdir()) == ["model.keras", "run.json", "spec.json"]
    assert not list((store.home / "imports").iterdir())


def test_a_plain_keras_model_saved_by_a_script_imports_and_predicts_the_same(tmp_path, store):
    model = plain_keras_model(16)
    run = import_model(store, save(model, tmp_path / "script.keras"), "mnist")
    assert run.name == "script (imported)"
    assert [layer.type for layer in run.model_spec.layers] == ["Conv2D", "MaxPooling2D", "Flatten", "Dropout",
                                                               "Dense", "Dense"]
    assert _largest_difference(store, run, model) <= 1e-6
    assert store.list_runs()[0].id == run.id


def test_a_model_for_another_dataset_or_an_unknown_dataset_is_refused(tmp_path, store):
    path = save(plain_keras_model(16), tmp_path / "mnist.keras")
    with pytest.raises(Exception, match="images are 32x32x3"):
        import_model(store, path, "cifar10")
    with pytest.raises(DatasetError):
        import_model(store, path, "no_such_dataset")
    assert store.list_runs() == []


def test_the_allow_lists_name_keras_own_objects():
    """Every name the checker allows exists in this Keras, so nothing allowed is invented."""
    assert all(hasattr(keras.activations, name) for name in check.KERAS_ACTIVATIONS)
    for module, classes in check.OBJECTS.values():
        for name in classes:
            owner = functools.reduce(getattr, module.split(".")[1:], keras)
            assert hasattr(owner, name), (module, name)
    assert all(hasattr(keras.layers, name) for name in check.LAYER_CLASSES)


def test_work_left_by_a_killed_import_is_removed_by_the_next(tmp_path, store):
    left = store.home / "imports" / ".tmp-left-behind"
    (left / "scratch").mkdir(parents=True)
    os.utime(left, (0, 0))
    fresh = store.home / "imports" / ".tmp-in-progress"
    fresh.mkdir()
    import_model(store, save(plain_keras_model(16), tmp_path / "m.keras"), "mnist")
    assert not left.exists() and fresh.exists()


def test_a_functional_model_that_is_one_chain_imports_and_predicts_the_same(tmp_path, store):
    model = functional_keras_model()
    run = import_model(store, save(model, tmp_path / "functional.keras"), "mnist")
    assert [layer.type for layer in run.model_spec.layers] == ["Conv2D", "MaxPooling2D", "Flatten", "Dropout", "Dense"]
    assert _largest_difference(store, run, model) <= 1e-6


def test_a_functional_model_with_a_skip_is_refused(tmp_path, store):
    inputs = keras.Input(shape=(28, 28, 1))
    flat = keras.layers.Flatten()(inputs)
    hidden = keras.layers.Dense(784, activation="relu")(flat)
    outputs = keras.layers.Dense(10, activation="softmax")(keras.layers.Add()([flat, hidden]))
    with pytest.raises(ModelImportError, match="Add|deep"):  # its two-input call nests deeper than a chain
        import_model(store, save(keras.Model(inputs, outputs), tmp_path / "skip.keras"), "mnist")
    skipped = functional_keras_model()
    config, weights, _ = parts(save(skipped, tmp_path / "chain.keras"))
    config["config"]["layers"][3]["inbound_nodes"][0]["args"][0]["config"]["keras_history"][0] = "input_layer"
    with pytest.raises(ModelImportError, match="one chain"):
        import_model(store, assemble(tmp_path / "rewired.keras", config, weights), "mnist")
    assert store.list_runs() == []


def test_regularizers_and_constraints_import_said_in_the_note(tmp_path, store):
    model = keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        keras.layers.Flatten(),
        keras.layers.Dense(16, activation="relu", kernel_regularizer=keras.regularizers.L2(0.01),
                           bias_constraint=keras.constraints.MaxNorm(2.0)),
        keras.layers.BatchNormalization(gamma_regularizer=keras.regularizers.L1(0.001)),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    run = import_model(store, save(model, tmp_path / "regularized.keras"), "mnist")
    assert "layer 2 (Dense): kernel_regularizer L2(l2=0.01) and bias_constraint MaxNorm(max_value=2, axis=0); " \
           "layer 3 (BatchNormalization): gamma_regularizer L1(l1=0.001)." in run.note, run.note
    assert "layer 1" not in run.note and "layer 4" not in run.note
    assert _largest_difference(store, run, model) <= 1e-6  # they change nothing a trained model computes

    deep = keras.Sequential([keras.Input(shape=(28, 28, 1)), keras.layers.Flatten(),
                             *(keras.layers.Dense(8, kernel_regularizer=keras.regularizers.L2(0.01)) for _ in range(12)),
                             keras.layers.Dense(10, activation="softmax")])
    deep.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    run = import_model(store, save(deep, tmp_path / "deep.keras"), "mnist")
    assert "layer 6 (Dense)" in run.note and "layer 7" not in run.note and "; and 7 more layers." in run.note
    assert len(run.note) < 1_000


def test_metric_objects_a_schedule_and_a_hostile_name_import_mapped_and_said(tmp_path, store):
    model = plain_keras_model(16)
    schedule = keras.optimizers.schedules.ExponentialDecay(0.002, decay_steps=100, decay_rate=0.9)
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss=keras.losses.SparseCategoricalCrossentropy(),
                  metrics=[keras.metrics.SparseCategoricalAccuracy()])
    config, weights, _ = parts(save(model, tmp_path / "saved.keras"))
    config["config"]["name"] = "../../evil <img src=x onerror=alert(1)> v1.2 os"
    run = import_model(store, assemble(tmp_path / "teammate.keras", config, weights), "mnist")
    assert run.model_spec.compile.metrics == ("accuracy",)
    assert run.model_spec.compile.learning_rate == pytest.approx(0.002)
    assert "learning-rate schedule (ExponentialDecay) was imported as its initial rate, 0.002" in run.note
    assert run.model_spec.name == "evil img src x onerror alert(1) v1.2 os"
    assert _largest_difference(store, run, model) <= 1e-6

"""The transfer-learning and augmentation parts of the pages: the palette, the clothing presets, the
pretrained block's weights note, the per-layer frozen count, and "what the model sees"."""
import dataclasses

import numpy as np
import pytest
from components.model_summary import summary_frame
from pipelines.data.catalog import DatasetInfo
from pipelines.modelspec.spec import LayerSpec, ModelSpec
from tests.dashboard.rendered import shown
from tests.dashboard.test_build_page import app  # noqa: F401  (the Build page in a temp home)


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))  # no ImageNet weights cached


def test_palette_offers_augmentation_and_transfer_blocks_with_their_help(keras_home, app):
    for name in ("RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation", "RandomContrast"):
        assert "only while training" in app.button(key=f"build_add_{name}").help
    assert "ImageNet" in app.button(key="build_add_PretrainedBase").help
    assert "finished Layerlab run" in app.button(key="build_add_RunBase").help
    captions = [shown(c.value) for c in app.caption]
    assert "Augmentation (training only)" in captions and "Transfer learning" in captions


def test_clothing_preset_loads_and_says_to_add_the_photos_and_where_weights_come_from(keras_home, app):
    assert app.button(key="build_preset_clothing-mobilenet").label == "clothing-mobilenet (needs its photos)"
    app.button(key="build_preset_clothing-mobilenet").click().run()
    assert not app.exception
    notices = " ".join(shown(w.value) for w in [*app.warning, *app.info, *app.toast])
    assert "Add the photos as dataset 'clothing'" in notices
    notes = [shown(c.value) for c in app.caption if "ImageNet weights for MobileNetV2" in c.value]
    assert notes and "not cached" in notes[0] and "weights 'none'" in notes[0]


def test_the_layer_table_counts_frozen_parameters_apart():
    from pipelines.modelspec.validation import validate

    spec = ModelSpec(layers=(LayerSpec("PretrainedBase", "base", {"base": "MobileNetV2", "weights": "none"}),
                             LayerSpec("GlobalAveragePooling2D", "pool", {}),
                             LayerSpec("Dense", "out", {"units": 3, "activation": "softmax"}))).normalized()
    frame = summary_frame(validate(spec, DatasetInfo("p", "p", ("a", "b", "c"), (64, 64, 3), "", "", "")))
    assert list(frame["Params"]) == ["2,257,984  \nall frozen", "0", f"{3 * 1280 + 3:,}"]
    assert list(frame["Output"]) == ["2×2×1280", "1280", "3"]


def test_what_the_model_sees_are_augmented_copies_and_nothing_without_augmentation():
    from pipelines.inference.augment import augmentation_layers, augmented_samples
    from pipelines.inference.predict import LoadedModel
    from pipelines.modelspec.keras_build import build_model

    layers = (LayerSpec("RandomFlip", "flip", {"mode": "horizontal"}), LayerSpec("RandomRotation", "turn", {}),
              LayerSpec("Flatten", "flat", {}), LayerSpec("Dense", "out", {"units": 2, "activation": "softmax"}))
    spec = ModelSpec(layers=layers, input_shape=(16, 16, 3)).normalized()
    loaded = LoadedModel(build_model(spec), spec, (16, 16, 3), False, ("a", "b"))
    image = np.zeros((16, 16, 3), np.float32)
    image[:, :4] = 1.0  # a bright left edge: any flip or turn moves it
    samples = augmented_samples(loaded, image, 6)
    assert [type(layer).__name__ for layer in augmentation_layers(loaded)] == ["RandomFlip", "RandomRotation"]
    assert samples.shape == (6, 16, 16, 3) and samples.min() >= 0 and samples.max() <= 1
    assert any(not np.allclose(sample, image, atol=1e-3) for sample in samples)

    plain_spec = dataclasses.replace(spec, layers=spec.layers[2:])
    plain = LoadedModel(build_model(plain_spec), plain_spec, (16, 16, 3), False, ("a", "b"))
    assert augmentation_layers(plain) == []
    np.testing.assert_array_equal(augmented_samples(plain, image, 6), image[None])


def test_a_run_base_is_picked_from_the_completed_runs_and_shows_the_cut_shape(app, tmp_path):
    import os

    import keras

    from pipelines.runs.artifacts import MODEL_FILE
    from pipelines.runs.entities import RunStatus
    from pipelines.runs.sqlite_store import SQLiteRunStore

    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(name="flat"),
                              keras.layers.Dense(8, name="hidden"), keras.layers.Dense(10, name="outputs")])
    with SQLiteRunStore(tmp_path / "home") as store:
        run = store.create_run("source", "fashion_mnist", {"layers": []})
        store.claim_next_run(os.getpid(), 10)
        model.save(store.ensure_run_dir(run.id) / MODEL_FILE)
        store.finish_run(run.id, RunStatus.COMPLETED)
    app.button(key="build_clear").click().run()
    app.button(key="build_add_RunBase").click().run()
    picker = next(s for s in app.selectbox if s.label == "run id")
    assert len(picker.options) == 2  # nothing picked yet, and the one completed run
    picker.set_value(run.id).run()
    assert not app.exception
    assert next(s for s in app.selectbox if s.label == "run id").value == run.id
    assert list(app.table[0].value["Output"]) == ["8"]  # cut after "hidden", all but the last
    assert list(app.table[0].value["Params"]) == [f"{784 * 8 + 8:,}  \nall frozen"]

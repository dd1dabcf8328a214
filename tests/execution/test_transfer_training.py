"""Transfer learning through the real training path: a frozen base's features cached and reused, the
full model saved, and a finished run as the base of a new model. Real clothing photos, few of them."""
import threading
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from pipelines.data.catalog import Dataset, DatasetInfo
from pipelines.data.inputs import scale_images
from pipelines.errors import SpecError
from pipelines.execution.feature_cache import CACHE_FOLDER, cached_prefix
from pipelines.execution.training import execute_run
from pipelines.modelspec.keras_build import spec_from_model
from pipelines.modelspec.spec import LayerSpec, ModelSpec
from pipelines.runs.artifacts import MODEL_FILE
from pipelines.runs.entities import RunStatus
from pipelines.runs.sqlite_store import SQLiteRunStore

pytestmark = pytest.mark.slow
CLASSES = ("pants", "shoes", "t-shirt")
SIDE = 64


def _photos(root: Path, split: str, per_class: int) -> tuple[np.ndarray, np.ndarray]:
    images, labels = [], []
    for label, name in enumerate(CLASSES):
        for path in sorted((root / split / name).iterdir())[:per_class]:
            with Image.open(path) as photo:
                images.append(np.asarray(photo.convert("RGB").resize((SIDE, SIDE), Image.BILINEAR)))
            labels.append(label)
    return np.stack(images).astype(np.uint8), np.asarray(labels, np.int64)


@pytest.fixture(scope="module")
def photos(shared_datasets) -> Dataset:
    """90 training and 30 test photos of three clothing classes at 64 px, decoded with Pillow."""
    root = shared_datasets / "clothing-small"
    x_train, y_train = _photos(root, "train", 30)
    x_test, y_test = _photos(root, "validation", 10)
    info = DatasetInfo("clothing3", "Clothing (3 classes)", CLASSES, (SIDE, SIDE, 3), "clothing-small", "", "")
    return Dataset(info, x_train, y_train, x_test, y_test, origin="clothing-small, 3 classes")


def _spec(first: LayerSpec, lr=0.001) -> ModelSpec:
    return ModelSpec.from_dict({
        "layers": [first.to_dict(), {"type": "GlobalAveragePooling2D", "name": "pool"},
                   {"type": "Dense", "name": "outputs", "params": {"units": 3, "activation": "linear"}}],
        "compile": {"learning_rate": lr}, "fit": {"epochs": 1, "batch_size": 16, "validation_split": 0.2}})


def _train(store, spec, dataset, name="t"):
    store.create_run(name, dataset.info.name, spec.to_dict(), total_epochs=spec.fit.epochs)
    run = store.claim_next_run(1, 1)
    outcome = execute_run(store, run, threading.Event(), dataset=dataset)
    store.finish_run(run.id, outcome.status, error=outcome.error, metrics=outcome.metrics)  # as the worker does
    return run, outcome


def test_frozen_base_trains_on_cached_features_and_saves_the_full_model(tmp_path, photos):
    store = SQLiteRunStore(tmp_path / "home")
    base = LayerSpec("PretrainedBase", "base", {"base": "MobileNetV2", "weights": "none", "unfreeze_last": 0})
    spec = _spec(base)
    assert cached_prefix(spec) == 2  # the base and its pooling
    assert cached_prefix(_spec(LayerSpec("PretrainedBase", "base", {"unfreeze_last": 2}))) is None
    augmented = ModelSpec(layers=(LayerSpec("RandomFlip", "flip", {}), *spec.layers))
    assert cached_prefix(augmented) is None

    run, outcome = _train(store, spec, photos)
    assert outcome.status is RunStatus.COMPLETED, outcome.error
    caches = list((tmp_path / "home" / CACHE_FOLDER).iterdir())
    assert len(caches) == 1
    features = np.load(caches[0] / "train.npy")
    assert features.shape == (len(photos.x_train), 1280)
    assert store.get_metrics(run.id, kind="batch") and store.get_metrics(run.id, kind="epoch")

    model = keras.models.load_model(store.run_dir(run.id) / MODEL_FILE)  # the full model, safe_mode on
    assert [layer.name for layer in model.layers] == ["base", "pool", "outputs"]
    full = model.predict(scale_images(photos.x_train), verbose=0)
    top = model.get_layer("outputs")(features)
    np.testing.assert_allclose(full, top, atol=1e-5)
    assert abs(model.evaluate(scale_images(photos.x_test), photos.y_test, verbose=0)[0]
               - outcome.metrics["test_loss"]) < 1e-4

    before = caches[0].stat().st_mtime_ns
    _, second = _train(store, _spec(base, lr=0.01), photos, name="sweep point")  # same base: features reused
    assert second.status is RunStatus.COMPLETED
    assert [p.stat().st_mtime_ns for p in (tmp_path / "home" / CACHE_FOLDER).iterdir()] == [before]


def test_a_finished_run_is_a_frozen_base_for_a_new_top(tmp_path, photos):
    store = SQLiteRunStore(tmp_path / "home")
    source_spec = ModelSpec.from_dict({
        "layers": [{"type": "Conv2D", "name": "conv", "params": {"filters": 8, "strides": 2}},
                   {"type": "MaxPooling2D", "name": "pool"}, {"type": "Flatten", "name": "flat"},
                   {"type": "Dense", "name": "features", "params": {"units": 16}},
                   {"type": "Dense", "name": "outputs", "params": {"units": 3, "activation": "softmax"}}],
        "fit": {"epochs": 2, "batch_size": 16}})
    source, outcome = _train(store, source_spec, photos, "source")
    assert outcome.status is RunStatus.COMPLETED, outcome.error

    spec = ModelSpec.from_dict({
        "layers": [{"type": "RunBase", "name": "base", "params": {"run_id": source.id, "cut_layer": "features"}},
                   {"type": "Dense", "name": "new_top", "params": {"units": 3, "activation": "softmax"}}],
        "fit": {"epochs": 2, "batch_size": 16}})
    run, outcome = _train(store, spec, photos, "on top")
    assert outcome.status is RunStatus.COMPLETED, outcome.error
    assert len(store.get_metrics(run.id, kind="epoch")) >= 2

    old = keras.models.load_model(store.run_dir(source.id) / MODEL_FILE)
    (store.run_dir(source.id) / MODEL_FILE).unlink()  # the new model carries its base: no need of the source
    new = keras.models.load_model(store.run_dir(run.id) / MODEL_FILE)
    for before, after in zip(old.get_layer("conv").get_weights(), new.get_layer("base").network.get_layer("conv")
                             .get_weights()):
        np.testing.assert_array_equal(before, after)  # frozen
    assert not new.get_layer("base").trainable_weights
    assert spec_from_model(new).layers == spec.layers  # the block reads back as the spec wrote it

    store.create_run("unfinished", photos.info.name, source_spec.to_dict(), total_epochs=1)
    queued = next(r for r in store.list_runs() if r.name == "unfinished")
    bad = ModelSpec.from_dict({**spec.to_dict(), "layers": [
        {"type": "RunBase", "name": "base", "params": {"run_id": queued.id}}, spec.layers[1].to_dict()]})
    store.create_run("bad", photos.info.name, bad.to_dict(), total_epochs=1)
    with pytest.raises(SpecError, match="only a completed run can be a base"):
        execute_run(store, next(r for r in store.list_runs() if r.name == "bad"), threading.Event(), dataset=photos)
    assert (tmp_path / "home" / CACHE_FOLDER).is_dir()  # the RunBase run's features were cached too


def test_a_stop_while_the_features_are_computed_ends_the_run_stopped_and_caches_nothing(tmp_path, photos):
    store = SQLiteRunStore(tmp_path / "home")
    spec = _spec(LayerSpec("PretrainedBase", "base", {"base": "MobileNetV2", "weights": "none"}))
    store.create_run("stopped", photos.info.name, spec.to_dict(), total_epochs=1)
    stop = threading.Event()
    stop.set()  # as if Stop was pressed before the first chunk of features
    outcome = execute_run(store, store.claim_next_run(1, 1), stop, dataset=photos)
    assert outcome.status is RunStatus.STOPPED
    assert not list((tmp_path / "home" / CACHE_FOLDER).glob("*"))

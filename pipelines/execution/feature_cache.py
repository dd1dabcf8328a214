"""Training a frozen base's top on the base's outputs, computed once and kept.

When a model starts with a frozen base (a PretrainedBase with nothing unfrozen, or a RunBase) and
no augmentation runs before it, the base maps each image to the same features every epoch. So
they are computed once per (dataset, base and its weights, image size), kept under
`<LAYERLAB_HOME>/feature-cache/<key>/`, and only the top is fitted, on the features: a sweep of
four learning rates pays for the base once instead of forty times. The top's layers are the full
model's own layer objects, so training the top trains the full model, which is what the run
saves (model.keras, checkpoints) and what export and the Test page use.

The key is a hash of the dataset's pixels and labels, the cached layers' configs and their weights:
whatever could change the features changes the key.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from pipelines import paths
from pipelines.data.catalog import Dataset, DatasetInfo
from pipelines.data.inputs import Inputs, make_inputs
from pipelines.errors import RunNotFoundError, SpecError
from pipelines.modelspec.spec import ModelSpec
from pipelines.runs.entities import RunStatus
from pipelines.runs.store import RunStore

CACHE_FOLDER = "feature-cache"
FEATURE_BATCH = 64
FEATURE_CHUNK = 512  # images between two looks at the Stop flag
# Layers without weights or randomness that may follow the base and be cached with it: average
# pooling shrinks 4x4x1280 maps to 1280 numbers, so the cache is 16 times smaller.
_PASS_THROUGH = ("GlobalAveragePooling2D", "Flatten")
_BASES = ("PretrainedBase", "RunBase")


@dataclass(frozen=True, eq=False)
class CachedTraining:
    """The model to fit (the top on features), its inputs, and whether the features were reused."""

    top: keras.Model
    inputs: Inputs
    reused: bool


def max_cache_bytes() -> int:
    """LAYERLAB_FEATURE_CACHE_MAX_MB (default 2048): larger features are not cached, the run trains
    the plain way."""
    return int(os.environ.get("LAYERLAB_FEATURE_CACHE_MAX_MB", "2048")) * 2**20


def cached_prefix(spec: ModelSpec) -> int | None:
    """How many leading layers can be cached: a frozen base first, then pooling; None if none can."""
    if not spec.layers or spec.layers[0].type not in _BASES:
        return None
    if spec.layers[0].type == "PretrainedBase" and int(spec.layers[0].params.get("unfreeze_last", 0)):
        return None
    count = 1
    while count < len(spec.layers) and spec.layers[count].type in _PASS_THROUGH:
        count += 1
    return count if count < len(spec.layers) else None


def cache_key(dataset: Dataset, prefix: keras.Model) -> str:
    digest = hashlib.blake2b(digest_size=16)
    for array in (dataset.x_train, dataset.y_train, dataset.x_test, dataset.y_test):
        digest.update(repr((array.shape, str(array.dtype))).encode())
        digest.update(np.ascontiguousarray(array).data)
    digest.update(json.dumps([layer.get_config() for layer in prefix.layers], sort_keys=True, default=str).encode())
    for weight in prefix.weights:
        digest.update(np.ascontiguousarray(weight.numpy()).data)
    return digest.hexdigest()


class _Stopped(Exception):
    """A Stop arrived while the features were being computed."""


def _features(prefix: keras.Model, images: np.ndarray, should_stop: Callable[[], bool]) -> np.ndarray:
    """The prefix's outputs on uint8 images, scaled to [0, 1] a batch at a time as training does; in
    chunks, so that a Stop is heeded within one chunk rather than after the whole set."""
    parts = []
    for start in range(0, len(images), FEATURE_CHUNK):
        if should_stop():
            raise _Stopped
        batches = tf.data.Dataset.from_tensor_slices(images[start:start + FEATURE_CHUNK]).batch(FEATURE_BATCH).map(
            lambda x: tf.cast(x, tf.float32) / 255.0)
        parts.append(prefix.predict(batches, verbose=0).astype(np.float32))
    return np.concatenate(parts)


def _load_or_compute(folder: Path, prefix: keras.Model, dataset: Dataset, should_stop: Callable[[], bool]
                     ) -> tuple[np.ndarray, np.ndarray, bool]:
    if (folder / "test.npy").is_file():
        try:
            return np.load(folder / "train.npy"), np.load(folder / "test.npy"), True
        except (OSError, ValueError):  # a damaged cache is computed again, never trusted
            shutil.rmtree(folder, ignore_errors=True)
    train, test = _features(prefix, dataset.x_train, should_stop), _features(prefix, dataset.x_test, should_stop)
    partial = folder.with_name(folder.name + f".partial-{os.getpid()}")
    partial.mkdir(parents=True, exist_ok=True)
    np.save(partial / "train.npy", train)
    np.save(partial / "test.npy", test)
    try:
        partial.rename(folder)  # whole or not at all: a reader never sees half a cache
    except OSError:  # another worker finished the same features first
        shutil.rmtree(partial, ignore_errors=True)
    return train, test, False


def cached_training(model: keras.Model, spec: ModelSpec, dataset: Dataset, home: str | Path | None = None,
                    should_stop: Callable[[], bool] = lambda: False) -> CachedTraining | None:
    """The top of `model` on cached features, with inputs split as `make_inputs` splits the images;
    None when the spec has no cacheable base, its features would be too big, or a Stop came while
    they were computed (the caller's plain `fit` then stops at its first batch)."""
    count = cached_prefix(spec)
    if count is None:
        return None
    boundary = model.layers[count - 1]
    feature_shape = tuple(int(d) for d in boundary.output.shape[1:])
    total = (len(dataset.x_train) + len(dataset.x_test)) * int(np.prod(feature_shape)) * 4
    if total > max_cache_bytes():
        return None
    prefix = keras.Model(model.inputs, boundary.output)
    folder = paths.home_dir(home) / CACHE_FOLDER / cache_key(dataset, prefix)
    try:
        train, test, reused = _load_or_compute(folder, prefix, dataset, should_stop)
    except _Stopped:
        return None

    features_in = keras.Input(shape=feature_shape)
    x = features_in
    for layer in model.layers[count:]:
        x = layer(x)
    top = keras.Model(features_in, x, name=f"{model.name}_top")
    top.compile(optimizer=model.optimizer, loss=model.loss, metrics=list(spec.compile.metrics))
    info = dataset.info
    features = Dataset(DatasetInfo(info.name, info.title, info.class_names, feature_shape, info.source,
                                   info.licence, info.local_files),
                       train, dataset.y_train, test, dataset.y_test, origin=f"{dataset.origin}, base features")
    inputs = make_inputs(features, batch_size=spec.fit.batch_size, validation_split=spec.fit.validation_split,
                         label_mode=spec.compile.label_mode, seed=spec.fit.seed, scale=False)
    return CachedTraining(top, inputs, reused)


def ensure_base_runs_finished(store: RunStore, spec: ModelSpec) -> None:
    """A RunBase must name a COMPLETED run: a stopped or failed one is no base to build on. (A Ray
    task's relay holds no runs: there the RunBase itself needs the run's saved model.)"""
    if not isinstance(store, RunStore):
        return
    for index, layer in enumerate(spec.layers):
        run_id = layer.params.get("run_id") if layer.type == "RunBase" else None
        if not run_id:
            continue
        try:
            status = store.get_run(run_id).status
        except RunNotFoundError:
            raise SpecError(f"Layer {index + 1} (RunBase): there is no run {run_id!r} in this store.") from None
        if status is not RunStatus.COMPLETED:
            raise SpecError(f"Layer {index + 1} (RunBase): run {run_id} is {status.value}; only a completed run "
                            "can be a base.")

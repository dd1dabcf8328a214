"""Real `.keras` files for the import tests: saved by Keras, then taken apart and put together again
with a hostile config or weights, as an attacker would."""
from __future__ import annotations

import copy
import json
import zipfile
from pathlib import Path

import keras
import numpy as np


def plain_keras_model(units: int = 16) -> keras.Model:
    """What a script using only registry layers saves (Keras' own default names, no Layerlab)."""
    model = keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        keras.layers.Conv2D(4, 3, activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(),
        keras.layers.Dropout(0.25),
        keras.layers.Dense(units, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(0, 0.2, w.shape).astype("float32") for w in model.get_weights()])
    return model


def save(model: keras.Model, path: Path) -> Path:
    model.save(path)
    return path


def parts(path: Path) -> tuple[dict, bytes, bytes]:
    """config.json as data, and the weights and metadata bytes of a `.keras` file."""
    with zipfile.ZipFile(path) as archive:
        return (json.loads(archive.read("config.json")), archive.read("model.weights.h5"),
                archive.read("metadata.json"))


def assemble(path: Path, config: dict | bytes, weights: bytes, metadata: bytes = b'{"keras_version": "3.15.1"}',
             extra: dict[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("metadata.json", metadata)
        archive.writestr("config.json", config if isinstance(config, bytes) else json.dumps(config))
        archive.writestr("model.weights.h5", weights)
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return path


def with_layer(config: dict, layer: dict, index: int = 1) -> dict:
    changed = copy.deepcopy(config)
    changed["config"]["layers"].insert(index, layer)
    return changed


def function_object(module: str, name: str) -> dict:
    """How Keras serializes a plain function: importing `module` and calling `name` on load."""
    return {"module": module, "class_name": "function", "config": name, "registered_name": "function"}


def functional_keras_model() -> keras.Model:
    """The same kind of model written with the Functional API, as many tutorials do."""
    inputs = keras.Input(shape=(28, 28, 1))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dropout(0.25)(x)
    outputs = keras.layers.Dense(10, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(1)
    model.set_weights([rng.normal(0, 0.2, w.shape).astype("float32") for w in model.get_weights()])
    return model

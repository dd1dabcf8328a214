"""Using a trained run's model: loading it, class probabilities, every layer's activations for one input.

The forward pass is a `tf.function` traced once per loaded model for any batch size: a single
image then takes well under a millisecond, where `model.predict` spends tens of milliseconds
setting up its data pipeline and an eager call several. That assumes Keras' TensorFlow
backend, the only one Layerlab installs.
"""
from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from pipelines.data.catalog import get_info
from pipelines.data.inputs import scale_images
from pipelines.errors import InferenceError, SpecError
from pipelines.modelspec import keras_blocks  # noqa: F401  (registers Layerlab's own layers for load_model)
from pipelines.modelspec.spec import ModelSpec, from_logits
from pipelines.runs.artifacts import MODEL_FILE, SPEC_FILE

PREDICT_BATCH_SIZE = 256


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """A run's model with what is needed to read its outputs. Treat it as read-only.

    `eq=False`: two loads of one run are different models, and caches hash this by identity.
    """

    model: keras.Model
    spec: ModelSpec
    input_shape: tuple[int, ...]
    from_logits: bool
    class_names: tuple[str, ...]

    def _traced(self, outputs_of: Callable[[Any], Any]) -> Callable[[np.ndarray], Any]:
        signature = [tf.TensorSpec((None, *self.input_shape), tf.float32)]
        return tf.function(outputs_of, input_signature=signature)

    @functools.cached_property
    def _outputs(self) -> Callable[[np.ndarray], Any]:
        """The model's output for a float32 batch."""
        return self._traced(lambda x: self.model(x, training=False))

    @functools.cached_property
    def _layer_outputs(self) -> Callable[[np.ndarray], Any]:
        """Every layer's output for a float32 batch, in layer order."""
        every_layer = keras.Model(inputs=self.model.inputs[0],
                                  outputs=[layer.output for layer in self.model.layers])
        return self._traced(lambda x: every_layer(x, training=False))


@dataclass(frozen=True, eq=False)
class Activation:
    """One layer's output for one input, without the batch axis."""

    index: int
    name: str
    type: str
    values: np.ndarray


def load_run_model(run_dir: str | os.PathLike, dataset: str) -> LoadedModel:
    """The model a run saved, read with the spec beside it; `dataset` (the run's) names the classes."""
    info = get_info(dataset)
    run_dir = Path(run_dir)
    model_path, spec_path = run_dir / MODEL_FILE, run_dir / SPEC_FILE
    for path in (model_path, spec_path):
        if not path.is_file():
            raise InferenceError(
                f"{path} does not exist: the run has no trained model to use "
                "(it has not finished, it failed, or its files were removed)"
            )
    try:
        spec = ModelSpec.from_json(spec_path.read_bytes())
    except (OSError, SpecError) as error:
        raise InferenceError(f"{spec_path} is not a readable model spec: {error}") from None
    try:
        model = keras.models.load_model(model_path, compile=False)
    # A damaged archive fails in many ways (zipfile, h5py, JSON, Keras' own ValueErrors).
    except Exception as error:
        raise InferenceError(f"{model_path} could not be loaded as a Keras model: {error}") from None

    units = int(model.output_shape[-1])
    classes = info.num_classes
    if units != classes and not (units == 1 and classes == 2):
        raise InferenceError(
            f"{model_path} gives {units} outputs, but {info.title} has {classes} classes: "
            "was this run trained on another dataset?"
        )
    return LoadedModel(
        model=model,
        spec=spec,
        input_shape=tuple(int(d) for d in model.input_shape[1:]),
        from_logits=from_logits(spec),
        class_names=info.class_names,
    )


def as_inputs(loaded: LoadedModel, batch: np.ndarray) -> np.ndarray:
    """A float32 batch in [0, 1] of the model's input shape; uint8 pixels are scaled."""
    x = np.asarray(batch)
    if x.ndim != len(loaded.input_shape) + 1 or x.shape[1:] != loaded.input_shape:
        raise InferenceError(
            f"The model takes a batch of shape (N, {', '.join(map(str, loaded.input_shape))}). "
            f"Received: shape={x.shape}"
        )
    if x.dtype == np.uint8:
        return scale_images(x)
    return x.astype(np.float32, copy=False)


def probabilities_from_outputs(outputs: np.ndarray, logits: bool) -> np.ndarray:
    """Model outputs (N, units) to class probabilities (N, classes) whose rows sum to 1."""
    outputs = np.asarray(outputs, dtype=np.float32)
    if outputs.shape[1] == 1:  # one sigmoid unit: the probability of class 1
        positive = np.exp(-np.logaddexp(0.0, -outputs)) if logits else np.clip(outputs, 0.0, 1.0)
        return np.concatenate([1.0 - positive, positive], axis=1)
    if logits:
        exps = np.exp(outputs - outputs.max(axis=1, keepdims=True))
        return exps / exps.sum(axis=1, keepdims=True)
    # Already probabilities; normalised as Keras' cross-entropy does, for outputs that need not
    # sum to 1 (several sigmoid units).
    scores = np.clip(outputs, 0.0, None)
    totals = scores.sum(axis=1, keepdims=True)
    return scores / np.where(totals > 0, totals, 1.0)


def predict_proba(loaded: LoadedModel, batch: np.ndarray) -> np.ndarray:
    """Class probabilities (N, classes) for a batch (N, *input_shape) of float32 in [0, 1] or
    uint8 pixels: softmax applied to raw scores, and two columns for one sigmoid unit."""
    x = as_inputs(loaded, batch)
    outputs = [np.asarray(loaded._outputs(x[start:start + PREDICT_BATCH_SIZE]))
               for start in range(0, len(x), PREDICT_BATCH_SIZE)]
    if not outputs:
        return np.zeros((0, len(loaded.class_names)), np.float32)
    return probabilities_from_outputs(np.concatenate(outputs), loaded.from_logits)


def layer_activations(loaded: LoadedModel, x: np.ndarray) -> list[Activation]:
    """Every layer's output for one input given with its batch axis, (1, *input_shape)."""
    inputs = as_inputs(loaded, x)
    if len(inputs) != 1:
        raise InferenceError(f"layer_activations takes one input (a batch of 1). Received: {len(inputs)}")
    outputs = loaded._layer_outputs(inputs)
    if not isinstance(outputs, (list, tuple)):
        outputs = [outputs]
    return [
        Activation(index=index, name=layer.name, type=type(layer).__name__, values=np.asarray(output)[0])
        for index, (layer, output) in enumerate(zip(loaded.model.layers, outputs))
    ]

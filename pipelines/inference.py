"""Using a trained run's model: class probabilities, every layer's activations for one input,
and an evaluation on a whole test set with its confusion matrix and worst mistakes.

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

from pipelines import datasets
from pipelines.errors import LayerlabError, SpecError
from pipelines.models import from_logits
from pipelines.spec import ModelSpec
from pipelines.artifacts import MODEL_FILE, SPEC_FILE

PREDICT_BATCH_SIZE = 256
LOSS_EPSILON = 1e-7  # Keras' own: probabilities are clipped to [eps, 1 - eps] before the log


class InferenceError(LayerlabError):
    """A run's model cannot be loaded, or an input does not fit it."""


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


@dataclass(frozen=True, eq=False)
class Evaluation:
    """A model's results on a labelled test set; arrays are indexed like the test set."""

    accuracy: float
    loss: float
    per_class: list[dict[str, Any]]
    confusion: np.ndarray  # [true class, predicted class] -> count
    labels: np.ndarray
    predicted: np.ndarray
    confidence: np.ndarray  # the probability of the predicted class
    probabilities: np.ndarray
    class_names: tuple[str, ...]


def load_run_model(run_dir: str | os.PathLike, dataset: str) -> LoadedModel:
    """The model a run saved, read with the spec beside it; `dataset` (the run's) names the classes."""
    info = datasets.get_info(dataset)
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


def _as_inputs(loaded: LoadedModel, batch: np.ndarray) -> np.ndarray:
    """A float32 batch in [0, 1] of the model's input shape; uint8 pixels are scaled."""
    x = np.asarray(batch)
    if x.ndim != len(loaded.input_shape) + 1 or x.shape[1:] != loaded.input_shape:
        raise InferenceError(
            f"The model takes a batch of shape (N, {', '.join(map(str, loaded.input_shape))}). "
            f"Received: shape={x.shape}"
        )
    if x.dtype == np.uint8:
        return datasets.scale_images(x)
    return x.astype(np.float32, copy=False)


def _probabilities(outputs: np.ndarray, logits: bool) -> np.ndarray:
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
    x = _as_inputs(loaded, batch)
    outputs = [np.asarray(loaded._outputs(x[start:start + PREDICT_BATCH_SIZE]))
               for start in range(0, len(x), PREDICT_BATCH_SIZE)]
    if not outputs:
        return np.zeros((0, len(loaded.class_names)), np.float32)
    return _probabilities(np.concatenate(outputs), loaded.from_logits)


def layer_activations(loaded: LoadedModel, x: np.ndarray) -> list[Activation]:
    """Every layer's output for one input given with its batch axis, (1, *input_shape)."""
    inputs = _as_inputs(loaded, x)
    if len(inputs) != 1:
        raise InferenceError(f"layer_activations takes one input (a batch of 1). Received: {len(inputs)}")
    outputs = loaded._layer_outputs(inputs)
    if not isinstance(outputs, (list, tuple)):
        outputs = [outputs]
    return [
        Activation(index=index, name=layer.name, type=type(layer).__name__, values=np.asarray(output)[0])
        for index, (layer, output) in enumerate(zip(loaded.model.layers, outputs))
    ]


def evaluate(
    loaded: LoadedModel, x_test_uint8: np.ndarray, y_test: np.ndarray, *, batch_size: int = PREDICT_BATCH_SIZE
) -> Evaluation:
    """Accuracy, cross-entropy, per-class results and the confusion matrix on a test set.

    Images stay uint8 and are scaled a batch at a time. The loss is sparse categorical
    cross-entropy computed from the probabilities, as Keras computes it for softmax outputs.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise InferenceError(f"`batch_size` must be a positive integer. Received: batch_size={batch_size!r}")
    images = np.asarray(x_test_uint8)
    labels = np.asarray(y_test).reshape(-1).astype(np.int64)
    classes = len(loaded.class_names)
    if len(images) == 0:
        raise InferenceError("evaluate needs at least one test image. Received: 0")
    if len(labels) != len(images):
        raise InferenceError(f"There are {len(images)} test images but {len(labels)} labels")
    if labels.min() < 0 or labels.max() >= classes:
        raise InferenceError(
            f"Test labels must lie in 0..{classes - 1}. Received: min={labels.min()}, max={labels.max()}"
        )
    _as_inputs(loaded, images[:1])  # the shape check, before any work

    outputs = [np.asarray(loaded._outputs(datasets.scale_images(images[start:start + batch_size])))
               for start in range(0, len(images), batch_size)]
    probabilities = _probabilities(np.concatenate(outputs), loaded.from_logits)
    rows = np.arange(len(labels))
    predicted = probabilities.argmax(axis=1)
    confidence = probabilities[rows, predicted]
    true_probability = np.clip(probabilities[rows, labels].astype(np.float64), LOSS_EPSILON, 1 - LOSS_EPSILON)
    confusion = np.bincount(labels * classes + predicted, minlength=classes * classes).reshape(classes, classes)
    counts, correct = confusion.sum(axis=1), np.diag(confusion)
    per_class = [
        {"class": index, "name": name, "count": int(counts[index]), "correct": int(correct[index]),
         "accuracy": float(correct[index] / counts[index]) if counts[index] else None}
        for index, name in enumerate(loaded.class_names)
    ]
    return Evaluation(
        accuracy=float(correct.sum() / len(labels)),
        loss=float(-np.log(true_probability).mean()),
        per_class=per_class,
        confusion=confusion,
        labels=labels,
        predicted=predicted,
        confidence=confidence,
        probabilities=probabilities,
        class_names=loaded.class_names,
    )


def worst_mistakes(evaluation: Evaluation, limit: int = 24) -> np.ndarray:
    """Test indices of misclassified images, the most confidently wrong first."""
    wrong = np.flatnonzero(evaluation.predicted != evaluation.labels)
    order = np.argsort(-evaluation.confidence[wrong], kind="stable")
    return wrong[order][:limit]


def cell_indices(evaluation: Evaluation, true_class: int, predicted_class: int) -> np.ndarray:
    """Test indices counted in one confusion-matrix cell, in test-set order."""
    classes = len(evaluation.class_names)
    for name, value in (("true_class", true_class), ("predicted_class", predicted_class)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < classes:
            raise InferenceError(f"`{name}` must be a class index from 0 to {classes - 1}. Received: {name}={value!r}")
    return np.flatnonzero((evaluation.labels == true_class) & (evaluation.predicted == predicted_class))

"""Evaluating a run's model on a whole labelled test set: accuracy, loss, per-class results, the
confusion matrix, and the mistakes worth looking at."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from pipelines.data.inputs import scale_images
from pipelines.errors import InferenceError
from pipelines.inference.predict import PREDICT_BATCH_SIZE, LoadedModel, as_inputs, probabilities_from_outputs

LOSS_EPSILON = 1e-7  # Keras' own: probabilities are clipped to [eps, 1 - eps] before the log


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
    as_inputs(loaded, images[:1])  # the shape check, before any work

    outputs = [np.asarray(loaded._outputs(scale_images(images[start:start + batch_size])))
               for start in range(0, len(images), batch_size)]
    probabilities = probabilities_from_outputs(np.concatenate(outputs), loaded.from_logits)
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


def flipped(right: Evaluation, wrong: Evaluation) -> np.ndarray:
    """Test indices that `right` classifies correctly and `wrong` does not (two runs on the same
    test set), the ones `wrong` was surest of first: the examples that tell two runs apart."""
    if len(right.labels) != len(wrong.labels) or not np.array_equal(right.labels, wrong.labels):
        raise InferenceError("The two runs were scored on different test sets (was their dataset replaced in "
                             "between?): compare two runs scored on the same one.")
    indices = np.flatnonzero((right.predicted == right.labels) & (wrong.predicted != wrong.labels))
    return indices[np.argsort(-wrong.confidence[indices], kind="stable")]


def cell_indices(evaluation: Evaluation, true_class: int, predicted_class: int) -> np.ndarray:
    """Test indices counted in one confusion-matrix cell, in test-set order."""
    classes = len(evaluation.class_names)
    for name, value in (("true_class", true_class), ("predicted_class", predicted_class)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < classes:
            raise InferenceError(f"`{name}` must be a class index from 0 to {classes - 1}. Received: {name}={value!r}")
    return np.flatnonzero((evaluation.labels == true_class) & (evaluation.predicted == predicted_class))

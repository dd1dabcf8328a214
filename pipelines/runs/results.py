"""The one results schema: the name and meaning of every final figure a run records, and the one
JSON shape of a run that the CLI prints, pages show and compare and export read.

Training writes its figures under these names; nothing else spells them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipelines.runs.entities import Run


@dataclass(frozen=True)
class ResultField:
    """One final figure of a run: its key in `Run.metrics`, a label, how to format it, what it means."""

    key: str
    title: str
    kind: str  # "loss", "accuracy", "seconds" or "rate": how a page formats the value
    group: str  # "train", "validation", "test" or "speed": figures shown together
    meaning: str


FINAL_METRICS: tuple[ResultField, ...] = (
    ResultField("train_accuracy", "Train accuracy", "accuracy", "train",
                "accuracy on the training batches of the last epoch, as Keras' `fit` reports it"),
    ResultField("train_loss", "Train loss", "loss", "train", "the training loss of the last epoch"),
    ResultField("val_accuracy", "Validation accuracy", "accuracy", "validation",
                "accuracy on the validation split after the last epoch"),
    ResultField("val_loss", "Validation loss", "loss", "validation", "the validation loss after the last epoch"),
    ResultField("test_accuracy", "Test accuracy", "accuracy", "test",
                "accuracy of the final model on the dataset's test set (completed runs only)"),
    ResultField("test_loss", "Test loss", "loss", "test", "the loss of the final model on the test set"),
    ResultField("wall_seconds", "Wall time", "seconds", "speed",
                "seconds from the worker claiming the run to its end, over every attempt"),
    ResultField("samples_per_second", "Samples/s", "rate", "speed",
                "training examples per second of `fit`, in the last attempt"),
    ResultField("fit_seconds", "Fit time", "seconds", "speed", "seconds spent in `fit`, in the last attempt"),
)
FIELDS = {field.key: field for field in FINAL_METRICS}
FINAL_KEYS = tuple(FIELDS)
GROUPS = ("train", "validation", "test", "speed")

# Every key of a run's JSON record, in order: `runs --json` and `show --json` print exactly these.
# `findings` is the training doctor's diagnosis (`pipelines.runs.doctor`, each `Finding.to_dict()`),
# None where the run's curves were not read (its run.json).
# `tags`, `note`, `sweep_id`, `sweep_settings`, `repeat_group` and `seed` place it among other runs (Compare).
RECORD_KEYS = ("id", "name", "status", "dataset", "error", "created_at", "started_at", "finished_at",
               "epochs_done", "total_epochs", "best_epoch", "resume_count", "queue_position",
               "metrics", "spec", "findings", "tags", "note", "sweep_id", "sweep_settings", "repeat_group", "seed",
               "executor")


def fit_results(history: dict[str, list[float]]) -> dict[str, float]:
    """The final train and validation figures from a Keras `History.history`.

    Keras names train metrics bare ("loss") and validation ones "val_"; the schema prefixes
    train ones with "train_" so that every figure says which data it was measured on.
    """
    final = {}
    for name, values in history.items():
        if values:
            final[name if name.startswith("val_") else f"train_{name}"] = float(values[-1])
    return final


def test_results(evaluation: dict[str, float]) -> dict[str, float]:
    """Test figures from `model.evaluate(..., return_dict=True)`."""
    return {f"test_{name}": float(value) for name, value in evaluation.items()}


def run_record(run: Run, queue_position: int | None = None,
               findings: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A run as plain JSON data with exactly RECORD_KEYS; every final figure of the schema is
    present in `metrics` (None when the run has not recorded it). `findings` are the doctor's, as
    plain data; None when the caller did not read the run's curves."""
    metrics = {key: run.metrics.get(key) for key in FINAL_KEYS}
    metrics.update({key: value for key, value in run.metrics.items() if key not in metrics})
    record = {
        "id": run.id, "name": run.name, "status": run.status.value, "dataset": run.dataset,
        "error": run.error, "created_at": run.created_at, "started_at": run.started_at,
        "finished_at": run.finished_at, "epochs_done": run.epochs_done,
        "total_epochs": run.progress.total_epochs, "best_epoch": run.best_epoch,
        "resume_count": run.resume_count, "queue_position": queue_position, "metrics": metrics,
        "spec": run.spec, "findings": findings, "tags": list(run.tags), "note": run.note,
        "sweep_id": run.sweep_id, "sweep_settings": dict(run.sweep_settings), "repeat_group": run.repeat_group,
        "seed": run.seed, "executor": run.executor,
    }
    return record


def summary(run: Run) -> dict[str, Any]:
    """The one JSON line `train` and `resume` end with: the run, how it ended, its final figures."""
    return {"run_id": run.id, "status": run.status.value, "error": run.error,
            **{key: run.metrics.get(key) for key in FINAL_KEYS if key != "fit_seconds"}}

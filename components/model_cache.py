"""Finished runs' models, loaded once per run and shared by every session, and their evaluations.

A model is cached under its run folder (which names the home and the run) and its file's
modification time, so a run trained again is loaded again; `max_entries` bounds how many stay in
memory. Keras models never go into session state. TensorFlow is imported by the first load, not
by importing this module: a page that lists runs stays quick to draw.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import streamlit as st

from pipelines.data.catalog import Dataset
from pipelines.data.locate import load, locate
from pipelines.errors import LayerlabError
from pipelines.runs.artifacts import MODEL_FILE
from pipelines.runs.entities import Run, RunStatus
from pipelines.runs.store import RunStore

if TYPE_CHECKING:
    from pipelines.inference.predict import Activation, LoadedModel
    from pipelines.inference.evaluate import Evaluation

MODELS_KEPT = 3
EVALUATIONS_KEPT = 3
USABLE_STATUSES = (RunStatus.COMPLETED, RunStatus.STOPPED)


def usable_runs(store: RunStore) -> list[Run]:
    """Runs that ended with a saved model (completed, or stopped early), newest first."""
    return [run for run in store.list_runs(USABLE_STATUSES) if model_path(store, run).is_file()]


def model_path(store: RunStore, run: Run) -> Path:
    return store.run_dir(run.id) / MODEL_FILE


def _mtime_ns(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0  # gone: the load reports it


def model(store: RunStore, run: Run) -> LoadedModel:
    """The run's model, ready to predict; raises InferenceError if it cannot be loaded."""
    path = model_path(store, run)
    return _load_model(str(path.parent), run.dataset, _mtime_ns(path))


@st.cache_resource(max_entries=MODELS_KEPT, show_spinner="Loading the model …")
def _load_model(run_dir: str, dataset: str, mtime_ns: int) -> LoadedModel:
    from pipelines.inference.predict import load_run_model, predict_proba

    loaded = load_run_model(run_dir, dataset)
    # Trace the forward pass now, so that the first drawing is answered as fast as the others.
    predict_proba(loaded, np.zeros((1, *loaded.input_shape), np.float32))
    return loaded


def _data_stamp(dataset: str) -> int:
    """When the dataset's files last changed (an added dataset can be replaced): 0 if not found."""
    try:
        found = locate(dataset)
    except LayerlabError:
        return 0
    return _mtime_ns(Path(found)) if found else 0


def evaluation(store: RunStore, run: Run) -> Evaluation:
    """The run's model on the whole test set of its dataset, computed once per model file and
    dataset files: two runs compared are always scored on the same test set."""
    path = model_path(store, run)
    return _evaluate(str(path.parent), run.dataset, _mtime_ns(path), _data_stamp(run.dataset))


@st.cache_resource(max_entries=EVALUATIONS_KEPT, show_spinner="Running the model on the test set …")
def _evaluate(run_dir: str, dataset: str, mtime_ns: int, data_stamp: int) -> Evaluation:
    from pipelines.inference.evaluate import evaluate  # TensorFlow: only once a model is used

    data = evaluation_data(dataset)
    return evaluate(_load_model(run_dir, dataset, mtime_ns), data.x_test, data.y_test)


def evaluation_data(dataset: str) -> Dataset:
    """The dataset the run trained on, from disk (this page never downloads)."""
    return load(dataset, download=False)


def predict(loaded: LoadedModel, batch: np.ndarray) -> np.ndarray:
    """Class probabilities (N, classes) for a float32 batch in [0, 1]."""
    from pipelines.inference.predict import predict_proba

    return predict_proba(loaded, batch)


def activations(loaded: LoadedModel, x: np.ndarray) -> list[Activation]:
    """Every layer's output for one input, given without its batch axis."""
    from pipelines.inference.predict import layer_activations

    return layer_activations(loaded, x[np.newaxis])

"""Fixtures for the io tests: a fresh store for imports, one real trained run for exports."""
import os
import threading

import pytest

from pipelines.modelspec.presets import get_preset
from pipelines.runs.entities import RunStatus
from pipelines.runs.sqlite_store import SQLiteRunStore


@pytest.fixture
def store(tmp_path, shared_datasets, monkeypatch):
    """A fresh run store, with the offline datasets for the imported models' test figures."""
    monkeypatch.setenv("LAYERLAB_DATA_DIR", str(shared_datasets))
    opened = SQLiteRunStore(tmp_path / "home")
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, shared_datasets):
    """(store, run) for a COMPLETED LeNet run of one epoch, trained in this process by the worker's
    own code; the run's name has characters that file names and Python code must not take as is."""
    from pipelines.execution import training

    store = SQLiteRunStore(tmp_path_factory.mktemp("export-home"))
    spec = get_preset("lenet").spec.with_fit(epochs=1, seed=3)
    store.create_run('digits "quoted"\nnext line', "mnist", spec.to_dict(), total_epochs=1)
    run = store.claim_next_run(os.getpid(), 1)
    outcome = training.execute_run(store, run, threading.Event(), str(shared_datasets / "mnist-sample"))
    assert outcome.status is RunStatus.COMPLETED, outcome.error
    store.finish_run(run.id, outcome.status, error=outcome.error, metrics=outcome.metrics)
    return store, store.get_run(run.id)

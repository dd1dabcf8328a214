"""One click on the doctor's fix lands on a run that learns: real runs that diverge (Adam at 1, SGD at
10, RMSprop at 1), diagnosed from what they recorded, then trained again with the fix applied.

mlp-128x2 on 3,000 MNIST digits for 3 epochs, trained in this process by the worker's own code:
about ten seconds a case on two cores.
"""
import dataclasses
import os
import threading

import pytest

from pipelines.data.locate import load
from pipelines.execution.training import execute_run
from pipelines.modelspec.presets import get_preset
from pipelines.runs.doctor import apply_remedy, diagnose_run
from pipelines.runs.entities import RunStatus
from pipelines.runs.sqlite_store import SQLiteRunStore

pytestmark = pytest.mark.slow
LEARNS = 0.8  # validation accuracy well above chance (0.1): mlp-128x2 gets about 0.92 here


@pytest.fixture(scope="module")
def digits(shared_datasets):
    """3,000 training and 1,000 test digits of the MNIST sample."""
    full = load("mnist", shared_datasets / "mnist-sample")
    return dataclasses.replace(full, x_train=full.x_train[:3000], y_train=full.y_train[:3000],
                               x_test=full.x_test[:1000], y_test=full.y_test[:1000])


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    with SQLiteRunStore(tmp_path_factory.mktemp("doctor-home")) as opened:
        yield opened


def trained(store, spec, dataset, name):
    """The run of `spec` once trained to its end and recorded, as the worker does."""
    store.create_run(name, "mnist", spec.to_dict(), total_epochs=spec.fit.epochs)
    run = store.claim_next_run(os.getpid(), 1)
    outcome = execute_run(store, run, threading.Event(), dataset=dataset)
    store.finish_run(run.id, outcome.status, error=outcome.error, metrics=outcome.metrics)
    return store.get_run(run.id)


@pytest.mark.parametrize("optimizer, rate, fixed_rate", [("adam", 1.0, 0.001), ("sgd", 10.0, 0.1),
                                                         ("rmsprop", 1.0, 0.001)])
def test_one_click_on_the_fix_of_a_diverged_run_gives_a_run_that_learns(store, digits, optimizer, rate, fixed_rate):
    spec = get_preset("mlp-128x2").spec.with_compile(optimizer=optimizer, learning_rate=rate).with_fit(epochs=3)
    run = trained(store, spec, digits, f"{optimizer} at {rate:g}")
    assert run.metrics["val_accuracy"] < 0.3, run.metrics  # it did not learn

    [finding] = diagnose_run(run, store.get_metrics(run.id))
    assert finding.kind == "diverged" and "lower the learning rate" in finding.message, finding.message
    assert finding.remedy.changes == (("learning_rate", fixed_rate),)

    fixed = trained(store, apply_remedy(run.model_spec, finding.remedy), digits, finding.remedy.label)
    assert fixed.status is RunStatus.COMPLETED and fixed.model_spec.compile.learning_rate == fixed_rate
    assert fixed.metrics["val_accuracy"] >= LEARNS, fixed.metrics
    assert not [f for f in diagnose_run(fixed, store.get_metrics(fixed.id)) if f.severity == "error"]

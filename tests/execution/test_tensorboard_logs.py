"""TensorBoard event logs: a real run writes them under its folder, one point per epoch per metric."""
import json
import os
import threading
from collections import defaultdict

import pytest

from pipelines.execution.tensorboard_logs import can_write_logs, tensorboard_dir
from pipelines.modelspec.presets import get_preset
from pipelines.runs.entities import RunStatus
from pipelines.runs.sqlite_store import SQLiteRunStore

pytestmark = pytest.mark.slow


@pytest.fixture
def tensorboard_package():
    if not can_write_logs():
        if os.environ.get("CI"):
            pytest.fail("the tensorboard package is missing: it is in requirements.txt")
        pytest.skip("the tensorboard package is not installed (pip install -r requirements.txt)")


def summaries(folder, plugin):
    """{tag: {step: value}} of one TensorBoard plugin's summaries in every event file in `folder`,
    read with TensorFlow's own reader."""
    import tensorflow as tf

    found = defaultdict(dict)
    for path in sorted(folder.glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == plugin:
                    found[value.tag][event.step] = tf.make_ndarray(value.tensor)
    return found


def scalars(folder):
    return {tag: {step: float(value) for step, value in steps.items()}
            for tag, steps in summaries(folder, "scalars").items()}


def test_a_run_writes_each_epochs_scalars_for_tensorboard(tmp_path, shared_datasets, tensorboard_package):
    from pipelines.execution import training

    store = SQLiteRunStore(tmp_path / "home")
    spec = get_preset("mlp-128x2").spec.with_fit(epochs=3, batch_size=128)
    store.create_run("tensorboard", "mnist", spec.to_dict(), total_epochs=3)
    run = store.claim_next_run(os.getpid(), 1)
    outcome = training.execute_run(store, run, threading.Event(), str(shared_datasets / "mnist-sample"))
    assert outcome.status is RunStatus.COMPLETED

    logs = tensorboard_dir(store.run_dir(run.id))
    train, validation = scalars(logs / "train"), scalars(logs / "validation")
    for tag in ("epoch_loss", "epoch_accuracy"):
        assert sorted(train[tag]) == [0, 1, 2], train.keys()
        assert sorted(validation[tag]) == [0, 1, 2], validation.keys()
    # The same numbers the store recorded for the epochs, not just some numbers.
    recorded = {(p.epoch, p.name): p.value for p in store.get_metrics(run.id, kind="epoch")}
    for epoch in range(3):
        assert train["epoch_loss"][epoch] == pytest.approx(recorded[(epoch, "loss")], rel=1e-5)
        assert validation["epoch_accuracy"][epoch] == pytest.approx(recorded[(epoch, "val_accuracy")], rel=1e-5)
    assert train["epoch_loss"][2] < train["epoch_loss"][0]
    # No per-batch points: the app has the batch curves, the logs stay small.
    assert not any(tag.startswith("batch_") for tag in train)
    # The model's graph, as TensorBoard's Graphs tab reads it: the Keras config of these layers.
    graph = json.loads(summaries(logs / "train", "graph_keras_model")["keras"][0].item())
    assert [layer["config"]["name"] for layer in graph["config"]["layers"][1:]] == [layer.name for layer in spec.layers]

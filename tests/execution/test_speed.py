"""Several batches per call into TensorFlow: how many, and that what the user sees stays right
(batch numbers of the points, the batch a NaN is named at, Stop)."""
import math
import os
import threading

import numpy as np
import pytest

from pipelines.errors import LayerlabError
from pipelines.execution.speed import (MAX_STEPS_PER_EXECUTION, MIN_CALLS_PER_EPOCH, SpeedSettings,
                                       choose_steps_per_execution, estimated_step_seconds, intra_op_threads)
from pipelines.modelspec.presets import get_preset
from pipelines.runs.sqlite_store import SQLiteRunStore
from tests.execution.waiting import busy_factor

MLP_128X2_FLOPS = 2 * (784 * 128 + 128 * 128 + 128 * 10)  # forward, per example


def test_small_models_get_many_batches_per_call_and_big_ones_one():
    assert choose_steps_per_execution(MLP_128X2_FLOPS, 32, 1687, cores=2) >= 16
    assert choose_steps_per_execution(1e9, 32, 1687, cores=2) == 1
    lenet = choose_steps_per_execution(830_000, 64, 70, cores=2)
    assert 1 < lenet <= 70 // MIN_CALLS_PER_EPOCH
    # LeNet on Fashion-MNIST (843 batches an epoch): 16 to 32 per call was measured fastest.
    assert choose_steps_per_execution(830_000, 64, 843, cores=2) >= 16


def test_a_call_stays_short_enough_for_stop_and_an_epoch_keeps_several_calls():
    for flops in (1e3, 1e5, MLP_128X2_FLOPS, 1e7):
        for batch_size, steps in ((32, 1687), (128, 35), (8, 5)):
            spe = choose_steps_per_execution(flops, batch_size, steps, cores=2)
            assert 1 <= spe <= MAX_STEPS_PER_EXECUTION
            # A Stop lands within one call plus the validation pass: 2 s in all, so a call stays well under it.
            assert spe == 1 or spe * estimated_step_seconds(flops, batch_size, cores=2) <= 0.5
            assert spe == 1 or steps // spe >= MIN_CALLS_PER_EPOCH


def test_the_setting_overrides_the_choice():
    assert choose_steps_per_execution(1e9, 32, 1687, fixed=16) == 16
    assert SpeedSettings.from_env({}) == SpeedSettings(None, None)
    assert SpeedSettings.from_env({"LAYERLAB_STEPS_PER_EXECUTION": "8", "LAYERLAB_JIT_COMPILE": "0"}) == \
        SpeedSettings(8, False)
    assert SpeedSettings(8, True).to_args() == ["--steps-per-execution", "8", "--jit-compile", "1"]
    with pytest.raises(LayerlabError, match="LAYERLAB_STEPS_PER_EXECUTION must be 'auto' or a positive"):
        SpeedSettings.from_env({"LAYERLAB_STEPS_PER_EXECUTION": "0"})
    with pytest.raises(LayerlabError, match="LAYERLAB_JIT_COMPILE must be"):
        SpeedSettings.from_env({"LAYERLAB_JIT_COMPILE": "maybe"})


def test_models_without_convolutions_get_one_thread_per_operation():
    assert intra_op_threads(get_preset("mlp-128x2").spec.to_dict(), SpeedSettings()) == 1
    assert intra_op_threads(get_preset("lenet").spec.to_dict(), SpeedSettings()) is None  # TensorFlow's default
    assert intra_op_threads(None, SpeedSettings()) is None
    assert intra_op_threads(get_preset("lenet").spec.to_dict(), SpeedSettings(intra_op_threads=2)) == 2
    assert SpeedSettings.from_env({"LAYERLAB_INTRA_OP_THREADS": "3"}).intra_op_threads == 3
    with pytest.raises(LayerlabError, match="LAYERLAB_INTRA_OP_THREADS must be 'auto' or a positive"):
        SpeedSettings.from_env({"LAYERLAB_INTRA_OP_THREADS": "-1"})


# -- with Keras --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keras_parts():
    """TensorFlow is slow to import: once for the tests below."""
    import keras

    from pipelines.execution import training
    return keras, training


def _fit(keras, training, tmp_path, x, y, *, steps_per_execution, stop_after=None):
    """Fit a small model on (x, y) in batches of 4 with the recorder and the probe, as a worker does."""
    store = SQLiteRunStore(tmp_path / "home")
    store.create_run("r", "mnist", {}, total_epochs=1)
    run = store.claim_next_run(1, 1)
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    model.steps_per_execution = steps_per_execution
    steps = len(x) // 4
    stop = threading.Event()
    with training.BatchProbe(model) as probe:
        recorder = training.StoreRecorder(store, run.id, steps_per_epoch=steps, epochs=1, stop_event=stop,
                                          probe=probe)
        callbacks = [recorder]
        if stop_after is not None:
            class StopAt(keras.callbacks.Callback):
                def on_train_batch_end(self, batch, logs=None):
                    if batch + 1 >= stop_after:
                        stop.set()
            callbacks.insert(0, StopAt())
        data = tf.data.Dataset.from_tensor_slices((x, y)).batch(4)
        model.fit(data, epochs=1, verbose=0, callbacks=callbacks, shuffle=False)
    recorder.flush()
    return recorder, store.get_metrics(run.id, kind="batch"), steps


@pytest.mark.parametrize("nan_batch, kept", [(13, [8, 12]), (3, [2]), (1, [])])
def test_nan_is_named_at_its_batch_not_at_the_end_of_the_call(keras_parts, tmp_path, nan_batch, kept):
    keras, training = keras_parts
    x = np.ones((4 * 40, 2), np.float32)
    y = np.ones((4 * 40, 1), np.float32)
    x[4 * (nan_batch - 1) + 1, 0] = np.nan  # calls cover batches 1..8, 9..16, ...
    recorder, points, _ = _fit(keras, training, tmp_path, x, y, steps_per_execution=8)
    assert recorder.failure.startswith(f"loss became NaN at epoch 1, batch {nan_batch}:"), recorder.failure
    assert all(math.isfinite(p.value) for p in points)
    assert [p.step for p in points] == kept  # the curve up to the batch before the NaN


def test_batch_points_carry_true_batch_numbers_within_the_epoch(keras_parts, tmp_path):
    keras, training = keras_parts
    x = np.random.default_rng(0).normal(size=(4 * 37, 2)).astype(np.float32)
    y = x[:, :1] * 2
    recorder, points, steps = _fit(keras, training, tmp_path, x, y, steps_per_execution=8)
    seen = [p.step for p in points if p.name == "loss"]
    assert seen == [8, 16, 24, 32, 37] and recorder.failure is None and recorder.epoch_complete()


def test_stop_lands_after_the_call_it_was_asked_in(keras_parts, tmp_path):
    keras, training = keras_parts
    x = np.zeros((4 * 40, 2), np.float32)
    y = np.zeros((4 * 40, 1), np.float32)
    recorder, points, steps = _fit(keras, training, tmp_path, x, y, steps_per_execution=8, stop_after=10)
    assert recorder.stopped and recorder.partial_steps() == 16 and not recorder.epoch_complete()


@pytest.mark.slow
def test_a_run_with_many_batches_per_call_stops_within_two_seconds(tmp_path, shared_datasets):
    """mlp-128x2 on Fashion-MNIST, the case the batching speeds up most: a stop request still ends
    the run STOPPED within 2 s (its current call, Keras' validation pass and the saving included),
    on a machine at rest; a busy one is allowed its busy factor (0.8-1.0 s with two busy loops)."""
    import time

    from pipelines.execution.scheduler import Scheduler, SchedulerSettings
    from pipelines.runs.entities import RunStatus

    store = SQLiteRunStore(tmp_path / "home")
    scheduler = Scheduler(store, SchedulerSettings(data_dir=shared_datasets))
    try:
        run = scheduler.submit(get_preset("mlp-128x2").spec.with_fit(epochs=3), "fashion_mnist")
        scheduler.ensure_workers()
        deadline = time.monotonic() + 180
        while store.get_run(run.id).progress.step < 300:
            assert time.monotonic() < deadline, "no progress"
            time.sleep(0.05)
        asked = time.monotonic()
        store.request_stop(run.id)
        while store.get_run(run.id).status is RunStatus.RUNNING and time.monotonic() - asked < 120:
            time.sleep(0.02)
        took = time.monotonic() - asked
        stopped = store.get_run(run.id)
        assert stopped.status is RunStatus.STOPPED and stopped.error is None
        assert took < 2.0 * busy_factor(), f"{took:.1f} s at load {os.getloadavg()[0]:.1f}"
        assert stopped.metrics["steps_per_execution"] >= 16
    finally:
        scheduler.end_workers()

"""Training one run inside a worker process: the data, the model, `fit` with Layerlab's callbacks
(execution/callbacks.py), and the run's artifacts.

Artifacts are written atomically (temp file, then `os.replace`) so a reader or a resume never sees
half a file. A NaN or infinite test loss ends the run FAILED, as the callbacks do for the others.
"""
from __future__ import annotations

import dataclasses
import functools
import logging
import math
import threading
import time
from pathlib import Path
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from pipelines.data.catalog import BUILTIN, CATALOG, Dataset
from pipelines.data.inputs import Inputs, make_inputs
from pipelines.data.locate import load, locate
from pipelines.modelspec.keras_blocks import set_runs_home
from pipelines.modelspec.keras_build import build_model
from pipelines.modelspec.presets import get_preset
from pipelines.modelspec.spec import ModelSpec
from pipelines.modelspec.validation import ensure_valid
from pipelines.execution.callbacks import (BatchProbe, EpochCheckpoint, FiniteEpochGuard, StoreRecorder,
                                           nonfinite)
from pipelines.execution.checkpoints import load_checkpoint
from pipelines.execution.feature_cache import cached_prefix, cached_training, ensure_base_runs_finished
from pipelines.execution.speed import SpeedSettings, choose_steps_per_execution
from pipelines.execution.tensorboard_logs import tensorboard_callbacks
from pipelines.io.export import parity_for
from pipelines.runs.artifacts import (BEST_FILE, HISTORY_FILE, MODEL_FILE, SPEC_FILE, atomic_copy,
                                      atomic_target, atomic_write_text)
from pipelines.runs.entities import Run, RunOutcome, RunStatus
from pipelines.runs.records import history_csv
from pipelines.runs.results import fit_results, test_results
from pipelines.runs.store import RunStore

log = logging.getLogger("layerlab.worker")  # the worker's log file

__all__ = ["BatchProbe", "EpochCheckpoint", "FiniteEpochGuard", "StoreRecorder", "atomic_save_model",
           "execute_run", "nonfinite", "throwaway_fit", "tune_speed", "warm_up_steps"]


WARM_UP_PRESET = "mlp-128x2"  # the dashboard's default model: the likeliest first run
WARM_UP_BATCH_SIZE = 32


def atomic_save_model(model: keras.Model, path: Path) -> None:
    """`model.save` to a temp file with the `.keras` suffix Keras insists on, then rename; a save
    that fails (a full disk) removes its temp file."""
    with atomic_target(path) as tmp:
        model.save(tmp)


def warm_up_steps(data_dir: str | None = None) -> list[Callable[[], object]]:
    """What a spare worker does before it waits for a run, so that the run's first batch comes sooner.

    First one throwaway fit of two batches: TensorFlow's first `fit` in a process pays for
    runtime set-up and tracing machinery that later models reuse (about half of the first
    step). Then every dataset already on disk is loaded into the per-process cache, so a run
    never waits for decompression. Each step takes a second or less, so the worker can look for
    a queued run between them.
    """
    # Built-in datasets only: added ones are plain arrays that load in a moment, and could be many.
    loads = [functools.partial(load, name, data_dir) for name in BUILTIN if locate(name, data_dir) is not None]
    return [throwaway_fit, *loads]


def throwaway_fit() -> None:
    """Two batches of the default preset on blank images, through the same input pipeline;
    then Keras' global state is cleared so the real run's names are as in a fresh process."""
    info = CATALOG[get_preset(WARM_UP_PRESET).dataset]
    images = np.zeros((2 * WARM_UP_BATCH_SIZE, *info.input_shape), np.uint8)
    labels = np.zeros(2 * WARM_UP_BATCH_SIZE, np.int64)
    blank = Dataset(info, images, labels, images, labels, origin="blank images for the warm-up")
    spec = get_preset(WARM_UP_PRESET).spec
    inputs = make_inputs(blank, batch_size=WARM_UP_BATCH_SIZE, validation_split=0.0,
                                  label_mode=spec.compile.label_mode)
    model = build_model(spec, info.input_shape)
    model.fit(inputs.train, epochs=1, verbose=0, shuffle=False)
    keras.backend.clear_session()


def write_history_csv(store: RunStore, run_id: str, path: Path) -> None:
    """Epoch-level history, one row per epoch, as the tutorials' `history.history` would give."""
    atomic_write_text(path, history_csv(store.get_metrics(run_id, kind="epoch")))


def forward_flops_per_sample(model: keras.Model) -> float:
    """Floating-point operations of one example's forward pass, roughly: 2 per weight of a Dense
    layer, 2 per weight and output position of a convolution, 1 per output value elsewhere."""
    total = 0.0
    try:
        for layer in model.layers:
            positions = math.prod(int(d) for d in layer.output.shape[1:-1])
            kernel = getattr(layer, "kernel", None)
            if kernel is not None:
                total += 2.0 * math.prod(kernel.shape) * (positions if len(kernel.shape) > 2 else 1)
            else:
                total += float(math.prod(int(d) for d in layer.output.shape[1:]))
    except (AttributeError, TypeError, ValueError):  # a layer without a static output shape
        return 2.0 * model.count_params()
    return total


def tune_speed(model: keras.Model, speed: SpeedSettings, batch_size: int, steps_per_epoch: int) -> int:
    """Set the model's batches per call and XLA use before `fit`; returns the batches per call."""
    spe = choose_steps_per_execution(forward_flops_per_sample(model), batch_size, steps_per_epoch,
                                     fixed=speed.steps_per_execution)
    model.steps_per_execution = spe
    if speed.jit_compile is not None:
        model.jit_compile = speed.jit_compile
    model.train_function = model.test_function = None
    return spe


def _starting_model(run: Run, spec: ModelSpec, input_shape: tuple, run_dir: Path) -> tuple[keras.Model, dict]:
    """A fresh model, or for a resumed run its newest usable checkpoint and where it was."""
    if run.resume_count:
        loaded = load_checkpoint(run_dir, keras.models.load_model)
        if loaded is not None:
            return loaded
    return build_model(spec, input_shape), {"epochs_done": 0, "best_value": None, "best_epoch": None}


def _image_inputs(spec: ModelSpec, dataset: Dataset) -> Inputs:
    return make_inputs(dataset, batch_size=spec.fit.batch_size, validation_split=spec.fit.validation_split,
                       label_mode=spec.compile.label_mode, seed=spec.fit.seed)


def _fit_target(model: keras.Model, spec: ModelSpec, dataset: Dataset, home: Path | None,
                should_stop: Callable[[], bool]) -> tuple[keras.Model, Inputs, keras.Model, Any]:
    """What `fit` trains, and on what: the top on a frozen base's cached features when the spec
    allows (feature_cache.py), else the model on the images; then the model and data the test
    figures come from. A dataset's own validation split (`Dataset.x_val`) validates either way."""
    if dataset.has_own_validation and cached_prefix(spec) is not None:
        found = _cached_on_own_validation(model, spec, dataset, home, should_stop)
        if found is not None:
            return found
    elif (cached := cached_training(model, spec, dataset, home, should_stop)) is not None:
        return cached.top, cached.inputs, cached.top, cached.inputs.test
    inputs = _image_inputs(spec, dataset)
    return model, inputs, model, inputs.test


def _cached_on_own_validation(model: keras.Model, spec: ModelSpec, dataset: Dataset, home: Path | None,
                              should_stop: Callable[[], bool]) -> tuple[keras.Model, Inputs, keras.Model, Any] | None:
    """The feature cache keeps features of a dataset's train and test arrays. Handed the validation
    images as its test set (and no validation share), it gives the top all of train/ and the
    validation features. The test figures are then the top's on those features when validation/ is
    the test set too, else the full model's on the test images (one pass through the base)."""
    as_test = dataclasses.replace(dataset, x_test=dataset.x_val, y_test=dataset.y_val, x_val=None, y_val=None)
    no_share = dataclasses.replace(spec, fit=dataclasses.replace(spec.fit, validation_split=0.0))
    cached = cached_training(model, no_share, as_test, home, should_stop)
    if cached is None:
        return None
    features = cached.inputs
    inputs = dataclasses.replace(features, val=features.test, n_val=features.n_test)
    if dataset.x_test.shape == dataset.x_val.shape and np.array_equal(dataset.x_test, dataset.x_val) \
            and np.array_equal(dataset.y_test, dataset.y_val):
        return cached.top, inputs, cached.top, features.test
    images = _image_inputs(spec, dataset)
    return cached.top, dataclasses.replace(inputs, test=images.test, n_test=images.n_test), model, images.test


def _check_export(run: Run, run_dir: Path) -> None:
    """Check the exported script against the model now, while TensorFlow is loaded (about 0.1 s),
    and keep the verdict in the run's folder, so the Train page shows "checked: same layers, same
    parameter count" without loading TensorFlow itself. A check that cannot run never fails the run:
    the page then offers the check as a button."""
    try:
        parity_for(run, run_dir)
    except Exception as exc:  # the run is trained and saved; only the badge waits for a click
        log.warning("run %s: the export check could not run: %s", run.id, exc)


def _speed(recorder: StoreRecorder, steps_per_epoch: int, examples_per_step: int, fit_seconds: float) -> dict:
    """fit_seconds, and samples/s over the batches this attempt actually trained."""
    metrics = {"fit_seconds": fit_seconds}
    samples = (recorder.completed_epochs * steps_per_epoch + recorder.partial_steps()) * examples_per_step
    if samples and fit_seconds > 0:
        metrics["samples_per_second"] = samples / fit_seconds
    return metrics


def _callbacks(store: RunStore, run: Run, spec: ModelSpec, steps_per_epoch: int, has_val: bool, run_dir: Path,
               state: dict, stop_event: threading.Event, probe: BatchProbe | None = None
               ) -> tuple[StoreRecorder, EpochCheckpoint, list]:
    monitor = "val_loss" if has_val else "loss"
    checkpoint = EpochCheckpoint(run_dir, monitor, spec.fit.keep_best, state["best_value"])
    checkpoint.best_epoch = state["best_epoch"]
    recorder = StoreRecorder(store, run.id, steps_per_epoch=steps_per_epoch, epochs=spec.fit.epochs,
                             stop_event=stop_event, checkpoint=checkpoint, probe=probe)
    checkpoint.epoch_complete = recorder.epoch_complete
    # The guard first: an epoch whose validation loss is not finite gets no checkpoint.
    callbacks: list[keras.callbacks.Callback] = [FiniteEpochGuard(recorder), checkpoint, recorder]
    if spec.fit.early_stopping_patience:
        callbacks.append(keras.callbacks.EarlyStopping(monitor=monitor, patience=spec.fit.early_stopping_patience))
    callbacks += tensorboard_callbacks(run_dir)
    return recorder, checkpoint, callbacks


def evaluate_test(model: keras.Model, test: Any) -> dict[str, float]:
    """The final model's test figures, by the results schema's names."""
    return test_results(model.evaluate(test, verbose=0, return_dict=True))


def _finite(metrics: dict[str, float]) -> dict[str, float]:
    return {name: value for name, value in metrics.items() if math.isfinite(value)}


def execute_run(store: RunStore, run: Run, stop_event: threading.Event, data_dir: str | None = None, *,
                dataset: Dataset | None = None, speed: SpeedSettings | None = None) -> RunOutcome:
    """Train a claimed run to its end and return how it ended; the worker records that (in the
    store, or in the run's folder when the store cannot be written). `dataset` is the run's data
    when the caller has it already (a Ray task gets it from the object store)."""
    started = time.perf_counter()
    keras.backend.clear_session()  # a worker that trains a sweep's runs one after another starts each afresh
    spec = ModelSpec.from_dict(run.spec)
    home = getattr(store, "home", None)  # None in a Ray task (its relay): the node's own Layerlab home
    set_runs_home(home)  # where a RunBase layer finds its run's model
    ensure_base_runs_finished(store, spec)
    ensure_valid(spec, dataset.info if dataset is not None else run.dataset)
    dataset = dataset if dataset is not None else load(run.dataset, data_dir)
    run_dir = store.ensure_run_dir(run.id)
    atomic_write_text(run_dir / SPEC_FILE, spec.to_json())

    keras.utils.set_random_seed(spec.fit.seed + run.resume_count)
    model, state = _starting_model(run, spec, dataset.info.input_shape, run_dir)
    fit_model, inputs, test_model, test_data = _fit_target(model, spec, dataset, home, stop_event.is_set)
    spe = tune_speed(fit_model, speed or SpeedSettings(), spec.fit.batch_size, inputs.steps_per_epoch)
    store.delete_metrics_from_epoch(run.id, state["epochs_done"])

    fit_start = time.perf_counter()
    with BatchProbe(fit_model) as probe:
        recorder, checkpoint, callbacks = _callbacks(store, run, spec, inputs.steps_per_epoch,
                                                     inputs.val is not None, run_dir, state, stop_event, probe)
        checkpoint.saved_model = model  # the full model, also when only its top is fitted
        history = fit_model.fit(inputs.train, validation_data=inputs.val, epochs=spec.fit.epochs,
                                initial_epoch=state["epochs_done"], verbose=0, callbacks=callbacks, shuffle=False)
    recorder.flush()
    # The figures of finished epochs only: a stop or a failure cuts the last one short (and its
    # validation pass), and its numbers would describe a fraction of the data.
    metrics = _finite(fit_results({name: values[:recorder.completed_epochs]
                                   for name, values in history.history.items()}))
    metrics.update(_speed(recorder, inputs.steps_per_epoch, min(spec.fit.batch_size, inputs.n_train),
                          time.perf_counter() - fit_start))
    metrics.update(parameters=float(model.count_params()), steps_per_execution=float(spe))

    status, failure = RunStatus.FAILED, recorder.failure
    if not failure:
        status = RunStatus.STOPPED if recorder.stopped else RunStatus.COMPLETED
    if status is RunStatus.COMPLETED:
        test = evaluate_test(test_model, test_data)
        metrics.update(_finite(test))
        if kind := nonfinite(test.get("test_loss")):
            status, failure = RunStatus.FAILED, (
                f"test loss became {kind} after the last epoch ({recorder.epoch + 1}), although the training "
                "loss was finite: the model's outputs are not finite on new data; check the layers' settings")
    if status is not RunStatus.FAILED:
        atomic_save_model(model, run_dir / MODEL_FILE)
        if checkpoint.best_is_final:
            atomic_copy(run_dir / MODEL_FILE, run_dir / BEST_FILE)
    if status is RunStatus.COMPLETED:
        _check_export(run, run_dir)
    write_history_csv(store, run.id, run_dir / HISTORY_FILE)
    earlier_attempts = run.metrics.get("wall_seconds", 0.0) if run.resume_count else 0.0
    metrics["wall_seconds"] = earlier_attempts + time.perf_counter() - started
    return RunOutcome(status, failure, metrics)

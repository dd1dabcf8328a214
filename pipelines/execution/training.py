"""Training one run inside a worker process: Keras callbacks that record, checkpoint and stop.

Everything a page shows about a run comes from what these callbacks write to the store; nothing
flows from here into Streamlit. Artifacts are written atomically (temp file, then `os.replace`)
so a reader or a resume never sees half a file. A NaN or infinite loss (a batch's, an epoch's
validation loss or the test loss) ends the run FAILED, naming which loss and when.

Keras runs several batches per call into TensorFlow (`steps_per_execution`, chosen in speed.py)
and then calls the batch callbacks once, with the last batch's number and logs. So that a NaN is
still named at the batch where it happened, `BatchProbe` notes that batch inside the compiled step.
"""
from __future__ import annotations

import functools
import math
import threading
import time
from pathlib import Path
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from pipelines.data.catalog import BUILTIN, CATALOG, Dataset
from pipelines.data.inputs import make_inputs
from pipelines.data.locate import load, locate
from pipelines.modelspec.keras_build import build_model
from pipelines.modelspec.presets import get_preset
from pipelines.modelspec.spec import ModelSpec
from pipelines.modelspec.validation import ensure_valid
from pipelines.execution.checkpoints import load_checkpoint, save_checkpoint
from pipelines.execution.speed import SpeedSettings, choose_steps_per_execution
from pipelines.runs.artifacts import (BEST_FILE, HISTORY_FILE, LAST_FILE, MODEL_FILE, SPEC_FILE, atomic_copy,
                                      atomic_target, atomic_write_text)
from pipelines.runs.entities import MetricPoint, Progress, Run, RunOutcome, RunStatus
from pipelines.runs.records import history_csv
from pipelines.runs.results import fit_results, test_results
from pipelines.runs.store import RunStore


FLUSH_SECONDS = 0.5
BATCH_POINTS_PER_EPOCH = 100
WARM_UP_PRESET = "mlp-128x2"  # the dashboard's default model: the likeliest first run
WARM_UP_BATCH_SIZE = 32


def atomic_save_model(model: keras.Model, path: Path) -> None:
    """`model.save` to a temp file with the `.keras` suffix Keras insists on, then rename; a save
    that fails (a full disk) removes its temp file."""
    with atomic_target(path) as tmp:
        model.save(tmp)


def nonfinite(value: Any) -> str | None:
    """"NaN" or "inf" for a number that is not finite, else None."""
    if value is None or math.isfinite(value):
        return None
    return "NaN" if math.isnan(value) else "inf"


class EpochCheckpoint(keras.callbacks.Callback):
    """Saves the last finished epoch (with optimizer state, for resume) and the best one.

    Keras' ModelCheckpoint writes in place; a worker killed mid-write would leave a broken file
    that resume then trips over, hence this atomic twin.
    """

    def __init__(self, run_dir: Path, monitor: str, keep_best: bool, best_value: float | None = None):
        super().__init__()
        self.run_dir = run_dir
        self.monitor = monitor
        self.keep_best = keep_best
        self.best_value = best_value
        self.best_epoch: int | None = None
        self.best_is_final = False
        self.epoch_complete: Callable[[], bool] = lambda: True

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if not self.epoch_complete():
            return  # a stop mid-epoch: resume must redo this epoch, so it is no checkpoint
        logs = logs or {}
        value = logs.get(self.monitor)
        improved = self.keep_best and value is not None and math.isfinite(value) and (
            self.best_value is None or value < self.best_value)
        if improved:
            self.best_value, self.best_epoch = float(value), epoch
        # Serialising the model is the one real cost here (tens of ms), so it happens at most once
        # an epoch: the best checkpoint is a copy of the last one. After the final epoch nothing is
        # written: the worker saves model.keras right after fit, and copies it if it is the best.
        final = epoch + 1 >= self.params.get("epochs", 0)
        if not final:
            save_checkpoint(self.model, self.run_dir,
                            {"epochs_done": epoch + 1, "best_value": self.best_value, "best_epoch": self.best_epoch})
            if improved:
                atomic_copy(self.run_dir / LAST_FILE, self.run_dir / BEST_FILE)
        self.best_is_final = final and improved  # the worker copies model.keras once it is saved


class BatchProbe:
    """Counts the batches of the current epoch inside the compiled train step and keeps the first
    whose running loss is not finite, and the last finite one. Keras' logged "loss" is the epoch's
    running mean, which stays NaN or infinite from the first such batch on: that batch is the one a
    per-batch check names, and the last finite loss is the curve's last point before it."""

    def __init__(self, model: keras.Model):
        self.model = model
        self.batches = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.first_nonfinite = tf.Variable(0, dtype=tf.int64, trainable=False)  # 0: none yet
        self.last_finite = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.last_finite_loss = tf.Variable(0.0, dtype=tf.float32, trainable=False)
        self._train_step = model.train_step

    def __enter__(self) -> BatchProbe:
        train_step, batches, first = self._train_step, self.batches, self.first_nonfinite
        last, last_loss = self.last_finite, self.last_finite_loss

        def probed_train_step(data):
            logs = train_step(data)
            count = batches.assign_add(1)
            loss = tf.cast(logs["loss"], tf.float32)
            finite = tf.math.is_finite(loss)
            first.assign(tf.where(tf.logical_and(tf.equal(first, 0), tf.logical_not(finite)), count, first))
            last.assign(tf.where(finite, count, last))
            last_loss.assign(tf.where(finite, loss, last_loss))
            return logs

        self.model.train_step = probed_train_step  # an instance attribute: Keras traces this one
        self.model.train_function = None
        return self

    def __exit__(self, *exc_info: object) -> None:
        del self.model.train_step
        self.model.train_function = None

    def new_epoch(self) -> None:
        for variable in (self.batches, self.first_nonfinite, self.last_finite):
            variable.assign(0)

    def nonfinite_batch(self) -> int | None:
        """The epoch's first batch (1-based) with a non-finite loss, if any."""
        return int(self.first_nonfinite.numpy()) or None

    def last_finite_loss_point(self) -> tuple[int, float] | None:
        """(batch, running loss) of the epoch's last batch whose loss was finite, if any."""
        batch = int(self.last_finite.numpy())
        return (batch, float(self.last_finite_loss.numpy())) if batch else None


class StoreRecorder(keras.callbacks.Callback):
    """Writes batch and epoch metrics to the store, stops on request, and fails on NaN/inf loss.

    `async_safe` lets Keras dispatch batch ends on its thread pool, so reading the logs (which
    waits for the step) never stalls the training loop; a lock keeps the buffer consistent.
    """

    async_safe = True

    def __init__(self, store: RunStore, run_id: str, *, steps_per_epoch: int, epochs: int,
                 stop_event: threading.Event, checkpoint: EpochCheckpoint | None = None,
                 probe: BatchProbe | None = None):
        super().__init__()
        self.checkpoint = checkpoint
        self.store = store
        self.run_id = run_id
        self.steps_per_epoch = steps_per_epoch
        self.epochs = epochs
        self.stop_event = stop_event
        self.probe = probe
        self.record_every = max(1, steps_per_epoch // BATCH_POINTS_PER_EPOCH)
        self.failure: str | None = None
        self.stopped = False
        self.completed_epochs = 0
        self.epoch = 0
        self._lock = threading.Lock()
        self._buffer: list[MetricPoint] = []
        self._last_flush = 0.0
        self._step = 0
        self._next_record = 1

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.epoch = epoch
        self._step = 0
        self._next_record = 1
        if self.probe is not None:
            self.probe.new_epoch()
        self.store.update_progress(self.run_id, Progress(epoch, self.epochs, 0, self.steps_per_epoch))

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        # With several batches per call, `batch` is the call's last one (counted past the epoch's
        # end when the last call is short).
        step = min(batch + 1, self.steps_per_epoch)
        loss = logs.get("loss")
        if self.stop_event.is_set() and not self.stopped:
            self.stopped = True
            self.model.stop_training = True
        if kind := nonfinite(loss):
            at = step
            if self.probe is not None:
                at = self.probe.nonfinite_batch() or step
                last = self.probe.last_finite_loss_point()
                with self._lock:
                    if last and last[0] > self._step:
                        # The call ran past the last recorded point: keep the curve up to the NaN.
                        self._buffer.append(MetricPoint("batch", self.epoch, last[0], "loss", last[1], time.time()))
            self.fail(f"loss became {kind} at epoch {self.epoch + 1}, batch {at}: try a lower learning rate")
            return
        now = time.time()
        with self._lock:
            self._step = max(self._step, step)
            # The first batch of each epoch too, so that a new run's curve starts at once; then
            # every record_every batches, or each call when calls are longer than that.
            if step >= self._next_record or step == self.steps_per_epoch:
                self._buffer.extend(MetricPoint("batch", self.epoch, step, name, float(value), now)
                                    for name, value in logs.items() if math.isfinite(value))
                self._next_record = (step // self.record_every + 1) * self.record_every
            due = now - self._last_flush >= FLUSH_SECONDS
        if due:
            self.flush()

    def partial_steps(self) -> int:
        """Batches trained in an epoch that a stop or failure cut short (0 otherwise)."""
        with self._lock:
            return 0 if self._step >= self.steps_per_epoch else self._step

    def fail(self, reason: str) -> None:
        """End the run FAILED with `reason` (the first one given) after the current batch."""
        with self._lock:
            if self.failure is None:
                self.failure = reason
        self.model.stop_training = True

    def epoch_complete(self) -> bool:
        """False after a stop before the epoch's last batch, or after a failure. Keras still ends
        such an epoch (validation, callbacks), but it must not count as finished."""
        with self._lock:
            return self.failure is None and self._step >= self.steps_per_epoch

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if not self.epoch_complete():
            self.flush()
            return
        self.completed_epochs += 1
        now = time.time()
        with self._lock:
            self._buffer.extend(MetricPoint("epoch", epoch, self.steps_per_epoch, name, float(value), now)
                                for name, value in (logs or {}).items() if math.isfinite(value))
        self.flush()
        best_epoch = self.checkpoint.best_epoch if self.checkpoint else None
        self.store.set_epochs_done(self.run_id, epoch + 1, best_epoch)

    def flush(self) -> None:
        with self._lock:
            points, self._buffer = sorted(self._buffer, key=lambda p: (p.epoch, p.kind == "epoch", p.step)), []
            self._last_flush = time.time()
            step = self._step
        if points:
            self.store.log_metrics(self.run_id, points)
        self.store.update_progress(self.run_id, Progress(self.epoch, self.epochs, step, self.steps_per_epoch))


class FiniteEpochGuard(keras.callbacks.Callback):
    """Fails the run when an epoch's validation loss is NaN or infinite. The batch losses can stay
    finite while the model's inference path is not (e.g. BatchNorm's moving statistics)."""

    def __init__(self, recorder: StoreRecorder):
        super().__init__()
        self.recorder = recorder

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        for name, value in (logs or {}).items():
            if name.endswith("loss") and (kind := nonfinite(value)):
                self.recorder.fail(f"{name} became {kind} at epoch {epoch + 1}: the model's outputs are not "
                                   "finite on the validation data; check the layers' settings or lower the "
                                   "learning rate")
                return


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
    ensure_valid(spec, run.dataset)
    dataset = dataset if dataset is not None else load(run.dataset, data_dir)
    inputs = make_inputs(dataset, batch_size=spec.fit.batch_size, validation_split=spec.fit.validation_split,
                         label_mode=spec.compile.label_mode, seed=spec.fit.seed)
    run_dir = store.ensure_run_dir(run.id)
    atomic_write_text(run_dir / SPEC_FILE, spec.to_json())

    keras.utils.set_random_seed(spec.fit.seed + run.resume_count)
    model, state = _starting_model(run, spec, dataset.info.input_shape, run_dir)
    spe = tune_speed(model, speed or SpeedSettings(), spec.fit.batch_size, inputs.steps_per_epoch)
    store.delete_metrics_from_epoch(run.id, state["epochs_done"])

    fit_start = time.perf_counter()
    with BatchProbe(model) as probe:
        recorder, checkpoint, callbacks = _callbacks(store, run, spec, inputs.steps_per_epoch,
                                                     inputs.val is not None, run_dir, state, stop_event, probe)
        history = model.fit(inputs.train, validation_data=inputs.val, epochs=spec.fit.epochs,
                            initial_epoch=state["epochs_done"], verbose=0, callbacks=callbacks, shuffle=False)
    recorder.flush()
    metrics = _finite(fit_results(history.history))
    metrics.update(_speed(recorder, inputs.steps_per_epoch, min(spec.fit.batch_size, inputs.n_train),
                          time.perf_counter() - fit_start))
    metrics.update(parameters=float(model.count_params()), steps_per_execution=float(spe))

    status, failure = RunStatus.FAILED, recorder.failure
    if not failure:
        status = RunStatus.STOPPED if recorder.stopped else RunStatus.COMPLETED
    if status is RunStatus.COMPLETED:
        test = evaluate_test(model, inputs.test)
        metrics.update(_finite(test))
        if kind := nonfinite(test.get("test_loss")):
            status, failure = RunStatus.FAILED, (
                f"test loss became {kind} after the last epoch ({recorder.epoch + 1}), although the training "
                "loss was finite: the model's outputs are not finite on new data; check the layers' settings")
    if status is not RunStatus.FAILED:
        atomic_save_model(model, run_dir / MODEL_FILE)
        if checkpoint.best_is_final:
            atomic_copy(run_dir / MODEL_FILE, run_dir / BEST_FILE)
    write_history_csv(store, run.id, run_dir / HISTORY_FILE)
    earlier_attempts = run.metrics.get("wall_seconds", 0.0) if run.resume_count else 0.0
    metrics["wall_seconds"] = earlier_attempts + time.perf_counter() - started
    return RunOutcome(status, failure, metrics)

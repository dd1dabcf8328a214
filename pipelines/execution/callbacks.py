"""The Keras callbacks a run trains with: they record to the store, checkpoint and stop.

Everything a page shows about a run comes from what these callbacks write to the store; nothing
flows from here into Streamlit. A NaN or infinite loss (a batch's, an epoch's validation loss)
ends the run FAILED, naming which loss and when.

Keras runs several batches per call into TensorFlow (`steps_per_execution`, chosen in speed.py)
and then calls the batch callbacks once, with the last batch's number and logs. So that a NaN is
still named at the batch where it happened, `BatchProbe` notes that batch inside the compiled step.
"""
from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from pipelines.execution.checkpoints import save_checkpoint
from pipelines.runs.artifacts import BEST_FILE, LAST_FILE, atomic_copy
from pipelines.runs.entities import MetricPoint, Progress
from pipelines.runs.store import RunStore

FLUSH_SECONDS = 0.5
BATCH_POINTS_PER_EPOCH = 100


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
        self.saved_model: keras.Model | None = None  # what to save when fit trains a part of it

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
            save_checkpoint(self.saved_model or self.model, self.run_dir,
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

    def on_test_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """After a stop or a failure Keras still scores the validation set, for an epoch that will
        not count: end that pass at its first batch, so Stop lands in a moment, not after a pass."""
        if self.stopped or self.failure is not None:
            self.model.stop_evaluating = True

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

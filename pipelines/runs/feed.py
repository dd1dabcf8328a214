"""Following a run as it trains: a feed that fetches only new metric points, what its batch points
mean, and the ETA.

Pure over the store (no UI), so a live chart, the doctor, the CLI or a compare view can share it.
"""
from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Sequence

from pipelines.runs.entities import MetricPoint, Run, RunStatus
from pipelines.runs.store import RunStore


class MetricFeed:
    """The points of one run fetched so far; `update` asks the store only for the newer ones.

    One feed per run is shared by every session (see `metric_feed`), hence the lock. A resume
    deletes the points of unfinished epochs, so a new `resume_count` starts the feed over. The
    feed also notes when the current attempt started, for the ETA: a fresh run's attempt starts at
    its `started_at`, a resumed one when the feed first saw it training again.
    """

    def __init__(self, run_id: str):
        self.run_id = run_id
        self._lock = threading.Lock()
        self._points: list[MetricPoint] = []
        self._after_id = 0
        self._resume_count: int | None = None
        self._attempt_start: float | None = None

    def update(self, store: RunStore, run: Run) -> list[MetricPoint]:
        """All the run's points, in store order, after fetching those logged since the last call."""
        with self._lock:
            if run.resume_count != self._resume_count:
                self._points, self._after_id, self._resume_count = [], 0, run.resume_count
                self._attempt_start = None
            if self._attempt_start is None and run.status is RunStatus.RUNNING:
                self._attempt_start = attempt_started_at(run, time.time())
            new, self._after_id = store.get_metrics_since(self.run_id, self._after_id)
            self._points.extend(new)
            return list(self._points)

    def eta_seconds(self, run: Run, now: float) -> float | None:
        """Seconds left for `run` (as just passed to `update`), at its current attempt's pace."""
        with self._lock:
            if self._attempt_start is None:
                return None
            return eta_seconds(self._points, run.progress.total_epochs, run.progress.steps_per_epoch,
                               since=self._attempt_start, now=now)


def attempt_started_at(run: Run, now: float) -> float:
    """When the run's current attempt started, as first seen training at `now`: a fresh run's
    `started_at`; for a resumed run `now` (the store keeps only the first attempt's start)."""
    if run.resume_count == 0 and run.started_at is not None:
        return run.started_at
    return now


def _fraction(point: MetricPoint, total_epochs: int, steps_per_epoch: int) -> float:
    return (point.epoch + point.step / steps_per_epoch) / total_epochs


def eta_seconds(points: Sequence[MetricPoint], total_epochs: int, steps_per_epoch: int, *, since: float,
                now: float) -> float | None:
    """Seconds left at the pace of the batches trained since `since`; None until two batch points
    of this attempt give a pace.

    The pace runs from the attempt's first batch point to its newest, not from the attempt's start:
    before its first batch a worker loads the data and builds and traces the model, a second or
    more that says nothing about the pace of training (timed from the start, a 3-second run's first
    ETA came out about 4x too long). The time since the newest point is taken off the estimate.
    """
    if total_epochs <= 0 or steps_per_epoch <= 0:
        return None
    marks = [(p.timestamp, _fraction(p, total_epochs, steps_per_epoch))
             for p in points if p.kind == "batch" and p.timestamp >= since]
    if len(marks) < 2:
        return None
    (first_time, first_fraction), (last_time, last_fraction) = marks[0], max(marks)
    if last_time <= first_time or last_fraction <= first_fraction:
        return None
    pace = (last_fraction - first_fraction) / (last_time - first_time)
    return max(0.0, (1.0 - last_fraction) / pace - max(0.0, now - last_time))


def _bounded(name: str, value: float) -> float:
    """Undoing a running mean loses a little precision: keep a loss >= 0 and an accuracy in [0, 1]."""
    if "accuracy" in name:
        return min(1.0, max(0.0, value))
    if "loss" in name:
        return max(0.0, value)
    return value


def batch_values(points: Sequence[MetricPoint]) -> list[MetricPoint]:
    """The batch points as the mean of the batches each one covers, not the running mean of the
    epoch so far that Keras logs (and the worker records).

    Keras restarts its running means at every epoch, so plotted as they are the batch curve jumps
    at each epoch boundary: from the mean of a whole epoch to the first batch of the next one. The
    worker records the step of each point, so the mean of batches (s0, s1] is
    (s1 * mean_s1 - s0 * mean_s0) / (s1 - s0). Exact while batches are the same size (Keras weighs
    the means by samples; only an epoch's last, smaller batch is weighed a little too much).
    Epoch points are left out; a batch point that does not follow its predecessor is kept as it is.
    """
    previous: dict[tuple[int, str], tuple[int, float]] = {}
    values = []
    for point in points:
        if point.kind != "batch":
            continue
        step_before, mean_before = previous.get((point.epoch, point.name), (0, 0.0))
        previous[(point.epoch, point.name)] = (point.step, point.value)
        if point.step <= step_before:
            values.append(point)
            continue
        value = (point.step * point.value - step_before * mean_before) / (point.step - step_before)
        values.append(dataclasses.replace(point, value=_bounded(point.name, value)))
    return values

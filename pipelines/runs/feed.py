"""Following a run as it trains: a feed that fetches only new metric points, and the ETA.

Pure over the store (no UI), so a live chart, the CLI or a compare view can share it.
"""
from __future__ import annotations

import threading
import time

from pipelines.runs.entities import MetricPoint, Run, RunStatus
from pipelines.runs.store import RunStore


class MetricFeed:
    """The points of one run fetched so far; `update` asks the store only for the newer ones.

    One feed per run is shared by every session (see `metric_feed`), hence the lock. A resume
    deletes the points of unfinished epochs, so a new `resume_count` starts the feed over. The
    feed also notes when it first saw the current attempt training, for the ETA of a resumed
    run (a fresh run's attempt starts at its `started_at`).
    """

    def __init__(self, run_id: str):
        self.run_id = run_id
        self._lock = threading.Lock()
        self._points: list[MetricPoint] = []
        self._after_id = 0
        self._resume_count: int | None = None
        self._attempt_start: tuple[float, float] | None = None

    def update(self, store: RunStore, run: Run) -> list[MetricPoint]:
        """All the run's points, in store order, after fetching those logged since the last call."""
        with self._lock:
            if run.resume_count != self._resume_count:
                self._points, self._after_id, self._resume_count = [], 0, run.resume_count
                self._attempt_start = None
            if self._attempt_start is None and run.status is RunStatus.RUNNING:
                self._attempt_start = attempt_start(run, time.time())
            new, self._after_id = store.get_metrics_since(self.run_id, self._after_id)
            self._points.extend(new)
            return list(self._points)

    @property
    def attempt_start(self) -> tuple[float, float] | None:
        """(time, fraction done) when the current attempt started training, once seen RUNNING."""
        return self._attempt_start


def attempt_start(run: Run, now: float) -> tuple[float, float]:
    """When and from what fraction the run's current attempt trains, as first seen at `now`.

    A fresh run trains from its `started_at` and from 0. A resumed one is timed from `now`: from
    its finished epochs while its progress still shows the attempt before (the new attempt has
    not begun an epoch yet), else from the progress it shows.
    """
    if run.resume_count == 0 and run.started_at is not None:
        return run.started_at, 0.0
    progress = run.progress
    if progress.epoch < run.epochs_done and progress.total_epochs > 0:
        return now, run.epochs_done / progress.total_epochs
    return now, progress.fraction


def eta_seconds(fraction: float, attempt_start: tuple[float, float] | None, now: float) -> float | None:
    """Seconds left at the pace since the attempt started; None until there is a pace to go by."""
    if attempt_start is None:
        return None
    started, start_fraction = attempt_start
    done, elapsed = fraction - start_fraction, now - started
    if done <= 0 or elapsed <= 0:
        return None
    return elapsed * (1.0 - fraction) / done

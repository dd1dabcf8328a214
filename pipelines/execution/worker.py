"""The worker process: imports TensorFlow once, warms up, waits for a queued run, trains it, exits.

A worker is started by `Scheduler.ensure_workers` as `python -m pipelines worker`. It may start
ahead of need (a warm spare), so that a click on Train meets a process that has already paid
TensorFlow's import, its first `fit` and the loading of the datasets on disk. It trains one run,
so every run gets a fresh process whose memory the OS reclaims; the one exception is a sweep,
whose runs are many small trainings of one model on one dataset: a worker that trained a run
of a sweep goes on with the sweep's next queued run when it is that run's turn (up to
MAX_SWEEP_RUNS_PER_WORKER), instead of paying TensorFlow's import and the data's loading again.
A heartbeat thread tells the store it is alive and relays stop requests.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import sqlite3
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path

from pipelines.errors import DiskFullError, LayerlabError, StoreUnavailableError
from pipelines.execution.registry import WorkerRegistry
from pipelines.execution.speed import SpeedSettings
from pipelines.runs.artifacts import (FAILURE_FILE, RECORD_FILE, disk_full_message, is_disk_full,
                                      remove_stale_temps, write_failure)
from pipelines.runs.entities import Run, RunOutcome, RunStatus
from pipelines.runs.records import write_run_record
from pipelines.runs.store import RunStore

HEARTBEAT_SECONDS = 0.5
POLL_SECONDS = 0.1
MAX_SWEEP_RUNS_PER_WORKER = 25  # then a fresh process, so that nothing a run leaves behind piles up

log = logging.getLogger("layerlab.worker")


class Heartbeat(threading.Thread):
    """Keeps the worker's and its run's heartbeats fresh and turns a stop request into an event."""

    def __init__(self, store: RunStore, registry: WorkerRegistry, pid: int):
        super().__init__(name="layerlab-heartbeat", daemon=True)
        self.store = store
        self.registry = registry
        self.pid = pid
        self._watched: tuple[str, threading.Event] | None = None  # the run now trained, and its stop event
        self._done = threading.Event()

    def watch(self, run_id: str) -> threading.Event:
        """Beat for `run_id` from now on; returns the event set when someone asks it to stop (a new
        one per run, so that a stop meant for the previous run never reaches the next)."""
        event = threading.Event()
        self._watched = (run_id, event)
        return event

    def unwatch(self) -> None:
        self._watched = None

    def run(self) -> None:
        last_problem = None
        while not self._done.wait(HEARTBEAT_SECONDS):
            try:
                self.registry.heartbeat(self.pid)
                watched = self._watched
                if watched:
                    run_id, stop_requested = watched
                    self.store.heartbeat(run_id)
                    if self.store.is_stop_requested(run_id):
                        stop_requested.set()
                last_problem = None
            except Exception as exc:  # a locked database for a moment must not kill the heartbeat
                problem = f"{type(exc).__name__}: {exc}"
                if problem != last_problem:  # once, not twice a second, while the store stays unusable
                    log.warning("heartbeat failed: %s", problem)
                last_problem = problem

    def close(self) -> None:
        self._done.set()


def warm_up(store: RunStore, pid: int, max_running: int, steps: Iterable[Callable[[], object]]) -> Run | None:
    """Do the warm-up steps while no run waits; returns a run claimed between two steps, if any.

    The worker stays "starting" meanwhile, so the pool does not count it as a warm spare yet.
    A step that fails only costs its speed-up: the run does that work itself, and reports it.
    """
    started = time.perf_counter()
    for step in steps:
        run = store.claim_next_run(pid, max_running)
        if run is not None:
            return run
        try:
            step()
        except Exception:
            log.exception("warm-up step %r failed", step)
    log.info("warm after %.1f s", time.perf_counter() - started)
    return None


def wait_for_run(store: RunStore, registry: WorkerRegistry, pid: int, max_running: int,
                 idle_seconds: float) -> Run | None:
    """Poll the queue every POLL_SECONDS as an idle spare; None once `idle_seconds` have passed."""
    registry.set_state(pid, "idle")
    deadline = time.monotonic() + idle_seconds
    while time.monotonic() < deadline:
        # A plain read first: claiming takes the database's write lock, ten times a second.
        if store.list_runs(statuses=[RunStatus.QUEUED], limit=1):
            run = store.claim_next_run(pid, max_running)
            if run is not None:
                return run
        time.sleep(POLL_SECONDS)
    return None


def failure_reason(error: BaseException, folder: Path) -> str:
    """What to tell the user about an attempt that raised `error`: a full disk says how much is free."""
    if isinstance(error, DiskFullError):
        return str(error)
    if is_disk_full(error):
        return disk_full_message(folder)
    if isinstance(error, LayerlabError):
        return str(error)
    return f"{type(error).__name__}: {error}".strip()


def outcome_of(error: BaseException, folder: Path) -> RunOutcome:
    """How an attempt that raised `error` ends: INTERRUPTED (resumable) if the store went away under
    it, FAILED otherwise."""
    if isinstance(error, StoreUnavailableError):
        return RunOutcome(RunStatus.INTERRUPTED, f"The run stopped because the run store could not be used: {error} "
                                                 "Then resume the run: it continues from its last finished epoch.")
    return RunOutcome(RunStatus.FAILED, failure_reason(error, folder))


def record_end(store: RunStore, run: Run, folder: Path, outcome: RunOutcome) -> None:
    """Record how the attempt ended in the store; if the store cannot be written, in the run's own
    folder instead (run.json, which a rebuild reads, and failure.txt, which the reaper reads)."""
    if outcome.error:
        write_failure(folder, outcome.error)  # first, in case the store write below fails or hangs
    try:
        store.finish_run(run.id, outcome.status, error=outcome.error, metrics=outcome.metrics)
    except (LayerlabError, sqlite3.Error, OSError) as exc:
        log.error("could not record run %s as %s in the store (%s); recording it in %s instead",
                  run.id, outcome.status.value, exc, folder)
        ended = dataclasses.replace(run, status=outcome.status, error=outcome.error, worker_pid=None,
                                    metrics={**run.metrics, **outcome.metrics}, finished_at=time.time())
        try:
            write_run_record(folder, ended)
        except OSError as write_error:
            log.error("could not write %s either: %s", folder / RECORD_FILE, write_error)
        return
    (folder / FAILURE_FILE).unlink(missing_ok=True)


def train_claimed(store: RunStore, run: Run, folder: Path, execute: Callable[[Run], RunOutcome],
                  before_record: Callable[[], object] | None = None) -> RunStatus:
    """Train a run this worker claimed with `execute` and record how it ended, whatever happens:
    the run must never stay RUNNING behind a crash, a full disk or a store that went away.
    `before_record` runs just before the end is recorded (and never stops it from being recorded)."""
    remove_stale_temps(folder)  # a killed earlier attempt's; no one else writes here now
    (folder / FAILURE_FILE).unlink(missing_ok=True)
    log.info("training run %s", run.id)

    def prepare() -> None:
        if before_record is not None:
            try:
                before_record()
            except Exception as exc:
                log.warning("could not prepare for the next run: %s", exc)

    try:
        outcome = execute(run)
    except BaseException as exc:
        outcome = outcome_of(exc, folder)
        if isinstance(exc, LayerlabError):
            log.error("run %s ended %s: %s", run.id, outcome.status.value, exc)
        else:
            log.error("run %s failed:\n%s", run.id, traceback.format_exc())
        record_end(store, run, folder, outcome)
        if not isinstance(exc, Exception):
            raise
        return outcome.status
    prepare()
    record_end(store, run, folder, outcome)
    log.info("run %s ended %s", run.id, outcome.status.value)
    return outcome.status


def next_of_sweep(store: RunStore, registry: WorkerRegistry, pid: int, run: Run, max_running: int) -> Run | None:
    """The next queued run of `run`'s sweep, claimed, if it is that run's turn in the queue."""
    if run.sweep_id is None or run.executor != "local":
        return None
    return store.claim_next_run(pid, max_running, sweep_id=run.sweep_id)


def serve(store: RunStore, registry: WorkerRegistry, *, max_running: int, idle_seconds: float,
          data_dir: str | None = None, speed: SpeedSettings | None = None) -> list[str]:
    """Warm up, wait for one queued run and train it (and, for a sweep, its next runs while it is
    their turn). Returns the ids of the runs trained; [] if none came."""
    pid = os.getpid()
    registry.register(pid, "starting")
    heartbeat = Heartbeat(store, registry, pid)
    heartbeat.start()
    trained: list[str] = []
    try:
        from pipelines.execution import training  # the expensive import: TensorFlow and Keras

        run = (warm_up(store, pid, max_running, training.warm_up_steps(data_dir))
               or wait_for_run(store, registry, pid, max_running, idle_seconds))
        while run is not None:
            registry.set_state(pid, "busy", run.id)
            stop_requested = heartbeat.watch(run.id)
            more = run.sweep_id is not None and len(trained) + 1 < MAX_SWEEP_RUNS_PER_WORKER

            def waiting_for_more(current: Run = run, more: bool = more) -> None:
                # Counted as waiting before its run ends, so that the scheduler starts no second
                # worker for the sweep's next run in the moment between this end and the next claim.
                if more and store.list_runs(statuses=[RunStatus.QUEUED], limit=1, sweep_id=current.sweep_id):
                    registry.set_state(pid, "idle")

            def execute(claimed: Run, stop: threading.Event = stop_requested) -> RunOutcome:
                return training.execute_run(store, claimed, stop, data_dir, speed=speed)

            train_claimed(store, run, store.ensure_run_dir(run.id), execute, before_record=waiting_for_more)
            heartbeat.unwatch()
            trained.append(run.id)
            run = next_of_sweep(store, registry, pid, run, max_running) if more else None
        return trained
    finally:
        heartbeat.close()
        try:
            registry.remove(pid)
        except (LayerlabError, sqlite3.Error) as exc:  # the scheduler forgets a dead worker anyway
            log.warning("could not leave the worker registry: %s", exc)

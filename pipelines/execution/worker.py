"""The worker process: imports TensorFlow once, warms up, waits for a queued run, trains it, exits.

A worker is started by `Scheduler.ensure_workers` as `python -m pipelines worker`. It may start
ahead of need (a warm spare), so that a click on Train meets a process that has already paid
TensorFlow's import, its first `fit` and the loading of the datasets on disk. It trains exactly
one run, so every run gets a fresh process whose memory the OS reclaims; a heartbeat thread
tells the store it is alive and relays stop requests.
"""
from __future__ import annotations

import logging
import os
import threading
import time
import traceback
from collections.abc import Callable, Iterable

from pipelines.errors import LayerlabError
from pipelines.execution.registry import WorkerRegistry
from pipelines.runs.entities import Run, RunStatus
from pipelines.runs.store import RunStore

HEARTBEAT_SECONDS = 0.5
POLL_SECONDS = 0.1

log = logging.getLogger("layerlab.worker")


class Heartbeat(threading.Thread):
    """Keeps the worker's and its run's heartbeats fresh and turns a stop request into an event."""

    def __init__(self, store: RunStore, registry: WorkerRegistry, pid: int):
        super().__init__(name="layerlab-heartbeat", daemon=True)
        self.store = store
        self.registry = registry
        self.pid = pid
        self.run_id: str | None = None
        self.stop_requested = threading.Event()
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(HEARTBEAT_SECONDS):
            try:
                self.registry.heartbeat(self.pid)
                run_id = self.run_id
                if run_id:
                    self.store.heartbeat(run_id)
                    if self.store.is_stop_requested(run_id):
                        self.stop_requested.set()
            except Exception:  # a locked database for a moment must not kill the heartbeat
                log.exception("heartbeat failed")

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


def serve(store: RunStore, registry: WorkerRegistry, *, max_running: int, idle_seconds: float,
          data_dir: str | None = None) -> str | None:
    """Warm up, wait for one queued run and train it. Returns the run id trained, or None if none came."""
    pid = os.getpid()
    registry.register(pid, "starting")
    heartbeat = Heartbeat(store, registry, pid)
    heartbeat.start()
    try:
        from pipelines.execution import training  # the expensive import: TensorFlow and Keras

        run = (warm_up(store, pid, max_running, training.warm_up_steps(data_dir))
               or wait_for_run(store, registry, pid, max_running, idle_seconds))
        if run is None:
            return None
        registry.set_state(pid, "busy", run.id)
        heartbeat.run_id = run.id
        log.info("training run %s", run.id)
        try:
            status = training.execute_run(store, run, heartbeat.stop_requested, data_dir)
            log.info("run %s ended %s", run.id, status.value)
        except LayerlabError as exc:
            store.finish_run(run.id, RunStatus.FAILED, error=str(exc))
        except BaseException as exc:  # the run must never stay RUNNING behind a crash
            log.error("run %s failed:\n%s", run.id, traceback.format_exc())
            store.finish_run(run.id, RunStatus.FAILED, error=f"{type(exc).__name__}: {exc}".strip())
            if not isinstance(exc, Exception):
                raise
        return run.id
    finally:
        heartbeat.close()
        registry.remove(pid)

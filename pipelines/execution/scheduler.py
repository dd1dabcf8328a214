"""Starting, watching and stopping runs: the one place that spawns and reaps worker processes.

There is no daemon. Whoever looks at the store (a page's live fragment, the CLI) calls
`Scheduler.ensure_workers`, which marks runs whose worker died as INTERRUPTED and starts workers
while queued runs wait for a free slot. Runs are OS processes of their own, so they survive the
browser closing and the Streamlit server restarting, and cannot take the server down. A
Scheduler is given its settings; nothing here reads the environment but `SchedulerSettings.from_env`.
"""
from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

from pipelines import paths
from pipelines.data.locate import load, locate
from pipelines.errors import RunStateError
from pipelines.execution import processes
from pipelines.execution.registry import WorkerRegistry
from pipelines.modelspec.spec import ModelSpec
from pipelines.modelspec.validation import ensure_valid
from pipelines.runs import artifacts
from pipelines.runs.entities import Run, RunStatus
from pipelines.runs.store import RunStore


@dataclasses.dataclass(frozen=True)
class SchedulerSettings:
    """How runs are executed on this machine. Times are in seconds."""

    max_running: int = 1  # runs that train at once; the rest wait in the queue
    data_dir: Path | None = None  # the local dataset folder workers read
    heartbeat_timeout: float = 3.0  # a RUNNING run's worker silent this long is taken for dead
    starting_grace: float = 120.0  # a starting worker may take this long to import TensorFlow
    idle_seconds: float = 600.0  # a warm spare exits after waiting this long for a run
    stop_grace: float = 5.0  # a stop request not honoured this long after is enforced with SIGKILL
    save_grace: float = 30.0  # ... except while the worker is writing a file: up to this much longer
    startup_seconds: float = 5.0  # a run this young counts as starting (no spare is spawned meanwhile)
    max_failed_starts: int = 3  # workers dying at start in a row before the queue is failed

    def __post_init__(self) -> None:
        if isinstance(self.max_running, bool) or not isinstance(self.max_running, int) or self.max_running < 1:
            raise RunStateError(f"`max_running` must be a positive integer. Received: max_running={self.max_running!r}")

    @classmethod
    def from_env(cls, *, data_dir: str | os.PathLike | None = None, **overrides) -> SchedulerSettings:
        """Settings from `LAYERLAB_MAX_RUNNING` and `LAYERLAB_DATA_DIR` (or `data_dir`)."""
        raw = os.environ.get("LAYERLAB_MAX_RUNNING", "1")
        try:
            max_running = int(raw)
        except ValueError:
            max_running = 0
        if max_running < 1:
            raise RunStateError(f"LAYERLAB_MAX_RUNNING must be a positive integer. Received: {raw!r}")
        chosen = paths.data_dir(data_dir)
        return cls(max_running=max_running, data_dir=chosen.resolve() if chosen else None, **overrides)


class Scheduler:
    """Queues runs in `store` and keeps worker processes going for them."""

    def __init__(self, store: RunStore, settings: SchedulerSettings | None = None,
                 registry: WorkerRegistry | None = None) -> None:
        self.store = store
        self.settings = settings or SchedulerSettings.from_env()
        self.registry = registry or WorkerRegistry(store.home)
        self._children: list[subprocess.Popen] = []
        self._failed_starts = 0  # workers of this scheduler that died before they were ready, in a row
        self._lock = threading.Lock()  # every open page calls ensure_workers each second
        self._remove_stale_temps()

    def _remove_stale_temps(self) -> None:
        """Delete temp files that killed writers left in the folders of runs no worker has now."""
        for run in self.store.list_runs():
            if not run.status.is_active:
                artifacts.remove_stale_temps(self.store.run_dir(run.id))

    @property
    def log_path(self) -> Path:
        return self.store.home / "logs" / "workers.log"

    def submit(self, spec: ModelSpec, dataset: str, *, name: str = "") -> Run:
        """Validate the spec and find the data, then queue a run. Bad input creates no run."""
        spec = spec.normalized()
        validation = ensure_valid(spec, dataset)
        if locate(dataset, self.settings.data_dir) is None:
            load(dataset, self.settings.data_dir, download=True)
        spec = dataclasses.replace(spec, input_shape=tuple(validation.input_shape))  # the dataset's input
        return self.store.create_run(name or spec.name, dataset, spec.to_dict(), total_epochs=spec.fit.epochs)

    def _reap_children(self) -> None:
        for child in list(self._children):
            if child.poll() is not None:
                self._children.remove(child)

    def reap(self, *, now: float | None = None) -> list[str]:
        """Settle runs whose worker cannot finish them, and forget dead workers.

        A worker that is gone, or alive but silent (a hung process: its heartbeat thread beats
        even while a batch runs), leaves its run INTERRUPTED; a silent one is killed first, so
        that a resume never shares the run with it. A stop request that a worker has not honoured
        within `stop_grace` seconds is enforced with SIGKILL: the run ends STOPPED.
        """
        self._reap_children()
        now = now or time.time()
        settings = self.settings
        settled = []
        for run in self.store.running_runs():
            stale = run.heartbeat_at is None or now - run.heartbeat_at > settings.heartbeat_timeout
            if stale or not processes.pid_alive(run.worker_pid):
                processes.kill(run.worker_pid)
                if self.store.mark_interrupted(run.id, self._interrupted_reason(run)):
                    settled.append(run.id)
            elif run.stop_requested_at and now - run.stop_requested_at > settings.stop_grace:
                overdue = now - run.stop_requested_at - settings.stop_grace
                if overdue < settings.save_grace and artifacts.write_in_progress(self.store.run_dir(run.id), now):
                    continue  # killed mid-write, it would leave a temp file: the write ends in a moment
                processes.kill(run.worker_pid)
                self.store.finish_run(run.id, RunStatus.STOPPED, error=(
                    f"It did not stop within {settings.stop_grace:g} s of the request, so its process "
                    "was killed. Resume continues from the last finished epoch."))
                settled.append(run.id)
        self._forget_dead_workers(now)
        if self._failed_starts >= settings.max_failed_starts:
            self._failed_starts = 0
            for run in self.store.list_runs(statuses=[RunStatus.QUEUED]):
                self.store.finish_run(run.id, RunStatus.FAILED, error=(
                    f"The training worker died {settings.max_failed_starts} times while starting, so the "
                    f"queue was cleared. Its log is {self.log_path}."))
                settled.append(run.id)
        return settled

    def _interrupted_reason(self, run: Run) -> str:
        """Why a run's worker ended without recording it: what it left in the run folder if it could
        not write the store (a full disk), else that it stopped."""
        after = f"after {run.epochs_done} finished epoch(s)"
        left = artifacts.read_failure(self.store.run_dir(run.id))
        if left:
            return (f"{left} (the worker, pid {run.worker_pid}, could not record this in the store and "
                    f"exited {after}). Resume to continue from there.")
        return (f"The worker process (pid {run.worker_pid}) stopped without finishing, {after}. "
                "Resume to continue from there.")

    def _forget_dead_workers(self, now: float) -> None:
        for worker in self.registry.list():
            grace = self.settings.starting_grace if worker.state == "starting" else self.settings.heartbeat_timeout
            alive = processes.pid_alive(worker.pid)
            if not alive or now - (worker.heartbeat_at or worker.started_at) > grace:
                self.registry.remove(worker.pid)
                if worker.state == "starting" and not alive:
                    self._failed_starts += 1
            elif worker.state != "starting":
                self._failed_starts = 0

    def spawn_worker(self) -> int:
        """Start one worker process, detached from this one, and register it at once."""
        settings = self.settings
        args = ["worker", "--home", str(self.store.home), "--max-running", str(settings.max_running),
                "--idle-seconds", str(settings.idle_seconds)]
        if settings.data_dir:
            args += ["--data-dir", str(settings.data_dir)]
        child = processes.spawn_detached(processes.pipelines_command(*args), self.log_path)
        self._children.append(child)
        self.registry.register(child.pid, "starting")
        return child.pid

    def _starting(self, run: Run, now: float) -> bool:
        """A RUNNING run without a finished batch yet, or started less than `startup_seconds` ago."""
        return (run.progress.step == 0 or run.started_at is None
                or now - run.started_at < self.settings.startup_seconds)

    def ensure_workers(self, *, spare: int = 0) -> list[int]:
        """Reap, then start as many workers as the queue can use now, plus `spare` warm ones.

        Spares are kept only while a slot is free (with every slot busy, a click on Train queues
        a run that no spare could start sooner), and they wait while a run is starting (queued
        for a free slot, running without a finished batch yet, or for less than startup_seconds):
        a new worker's TensorFlow import would take a core from that run, and from the browser
        drawing its first points, just when a user waits for them.
        """
        with self._lock:
            self.reap()
            running = self.store.running_runs()
            queued = len(self.store.list_runs(statuses=[RunStatus.QUEUED]))
            waiting = sum(1 for w in self.registry.list() if w.state in ("starting", "idle"))
            free = max(0, self.settings.max_running - len(running))
            claimable = min(queued, free)
            now = time.time()
            starting = claimable > 0 or any(self._starting(run, now) for run in running)
            wanted = claimable + (0 if starting or free == claimable else spare)
            return [self.spawn_worker() for _ in range(max(0, wanted - waiting))]

    def end_workers(self, *, wait: float = 0.0) -> int:
        """End every registered worker: give them `wait` seconds to exit on their own, then
        SIGTERM, then SIGKILL. For tests and benchmarks that must leave no process behind.
        Returns how many were still alive after the wait."""
        deadline = time.monotonic() + wait
        pids = {worker.pid for worker in self.registry.list()} | {child.pid for child in self._children}
        while any(processes.pid_alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
            self._reap_children()
        leftovers = [pid for pid in pids if processes.pid_alive(pid)]
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in leftovers:
                processes.kill(pid, sig)
            deadline = time.monotonic() + 5.0
            while any(processes.pid_alive(pid) for pid in leftovers) and time.monotonic() < deadline:
                time.sleep(0.1)
                self._reap_children()
        for pid in pids:
            self.registry.remove(pid)
        return len(leftovers)

    def stop(self, run_id: str, *, wait: float = 0.0) -> Run:
        """Ask a run to stop after its current batch. With `wait`, block until it has (`reap`
        enforces the stop with SIGKILL once stop_grace has passed)."""
        self.store.request_stop(run_id)
        deadline = time.monotonic() + wait
        run = self.store.get_run(run_id)
        while run.status == RunStatus.RUNNING and time.monotonic() < deadline:
            time.sleep(0.1)
            self.reap()
            run = self.store.get_run(run_id)
        return run

    def resume(self, run_id: str, *, spare: int = 0) -> Run:
        """Queue a STOPPED or INTERRUPTED run (or a FAILED one that kept a checkpoint) again; it
        continues from its last usable checkpoint."""
        run = self.store.request_resume(run_id)
        self.ensure_workers(spare=spare)
        return run

    def wait_for(self, run_id: str, *, timeout: float | None = None, poll: float = 1.0, on_poll=None) -> Run:
        """Block until the run ends, keeping workers started and reaped meanwhile."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self.ensure_workers()
            run = self.store.get_run(run_id)
            if on_poll:
                on_poll(run)
            if run.status.is_terminal:
                return run
            if deadline is not None and time.monotonic() > deadline:
                return run
            time.sleep(poll)

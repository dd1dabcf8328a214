"""Starting, watching and stopping runs: the one place that spawns and reaps worker processes.

There is no daemon. Whoever looks at the store (a page's live fragment, the CLI) calls
`Scheduler.ensure_workers`, which marks runs whose worker died as INTERRUPTED and starts workers
while queued runs wait for a free slot. Runs are OS processes of their own, so they survive the
browser closing and the Streamlit server restarting, and cannot take the server down. A
Scheduler is given its settings; nothing here reads the environment but `SchedulerSettings.from_env`.

A sweep queues all its runs at once through the same queue. With a Ray address configured, a
sweep's runs are queued for the "ray" executor instead, and this process drives them on the
cluster (ray_backend.py, imported only then); single runs stay local either way.
"""
from __future__ import annotations

import dataclasses
import signal
import subprocess
import threading
import time
from pathlib import Path

from collections.abc import Sequence

from pipelines.data.locate import load, locate
from pipelines.errors import LayerlabError
from pipelines.execution import processes
from pipelines.execution.registry import WorkerRegistry
from pipelines.execution.settings import SchedulerSettings
from pipelines.execution.speed import intra_op_threads
from pipelines.modelspec.spec import ModelSpec
from pipelines.modelspec.sweep import Axis
from pipelines.modelspec.validation import ensure_valid
from pipelines.runs import artifacts
from pipelines.runs.entities import Run, RunStatus, Sweep
from pipelines.runs.store import RunStore
from pipelines.runs.sweeps import STANDARD_TRAIN_SIZES, SweepEstimate, SweepProgress, estimate_sweep, plan_runs, \
    sweep_progress


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
        self._ray = None  # the Ray driver of this process, once a Ray sweep needs it
        self._remove_stale_temps()

    def _remove_stale_temps(self) -> None:
        """Delete temp files that killed writers left in the folders of runs no worker has now."""
        for run in self.store.list_runs():
            if not run.status.is_active:
                artifacts.remove_stale_temps(self.store.run_dir(run.id))

    @property
    def log_path(self) -> Path:
        return self.store.home / "logs" / "workers.log"

    def submit(self, spec: ModelSpec, dataset: str, *, name: str = "", repeat_group: str | None = None) -> Run:
        """Validate the spec and find the data, then queue a run. Bad input creates no run."""
        spec = self._checked(spec, dataset)
        self._find_data(dataset)
        return self.store.create_run(name or spec.name, dataset, spec.to_dict(), total_epochs=spec.fit.epochs,
                                     repeat_group=repeat_group)

    def _checked(self, spec: ModelSpec, dataset: str) -> ModelSpec:
        """The spec, normalized, validated for `dataset` and given the dataset's input shape."""
        spec = spec.normalized()
        validation = ensure_valid(spec, dataset)
        return dataclasses.replace(spec, input_shape=tuple(validation.input_shape))

    def _find_data(self, dataset: str) -> None:
        if locate(dataset, self.settings.data_dir) is None:
            load(dataset, self.settings.data_dir, download=True)

    # -- sweeps ---------------------------------------------------------------------------------

    @property
    def sweep_executor(self) -> str:
        """Where this scheduler runs sweeps: "ray" with a Ray address configured, else "local"."""
        return "ray" if self.settings.ray_address else "local"

    def submit_sweep(self, spec: ModelSpec, dataset: str, axes: Sequence[Axis], *, repeats: int = 1,
                     name: str = "") -> Sweep:
        """Queue one run per combination of the axes' values (and per seed with `repeats` > 1),
        grouped under one sweep, through the same queue as single runs. Every combination is
        validated first: bad input queues nothing. With a Ray address configured the runs go to
        the cluster (see ray_backend.py); call `ensure_workers` to start them, as after `submit`."""
        spec = spec.normalized()
        planned = plan_runs(spec, list(axes), repeats=repeats, name=spec.name)
        shapes: dict[str, tuple] = {}
        entries = []
        for entry, run_spec in planned:
            key = run_spec.with_fit(seed=0).to_json()  # repeats differ only by seed: validate once
            if key not in shapes:
                shapes[key] = tuple(self._checked(run_spec, dataset).input_shape)
            checked = dataclasses.replace(run_spec.normalized(), input_shape=shapes[key])
            entries.append(dataclasses.replace(entry, spec=checked.to_dict()))
        self._find_data(dataset)
        base = dataclasses.replace(spec, input_shape=next(iter(shapes.values())))
        label = name or f"{spec.name or 'model'}: " + " x ".join(axis.setting for axis in axes)
        return self.store.create_sweep(label, dataset, base.to_dict(), [(a.setting, a.values) for a in axes],
                                       entries, repeats=repeats, executor=self.sweep_executor)

    def sweep_runs(self, sweep_id: str) -> list[Run]:
        """The sweep's runs in the order they were queued."""
        return sorted(self.store.list_runs(sweep_id=sweep_id), key=lambda run: run.created_at)

    def sweep_progress(self, sweep_id: str) -> SweepProgress:
        """"k of n done" and an ETA for the sweep (see runs.sweeps.sweep_progress)."""
        sweep = self.store.get_sweep(sweep_id)
        parallel = self.settings.max_running if sweep.executor == "local" else None
        return sweep_progress(self.sweep_runs(sweep_id), parallel=parallel)

    def cancel_sweep(self, sweep_id: str, *, wait: float = 0.0) -> Sweep:
        """End the sweep: its queued runs end STOPPED at once and its running ones are asked to stop
        (a worker that does not stop within stop_grace is killed; a Ray task is cancelled). With
        `wait`, block until none of its runs is RUNNING."""
        sweep = self.store.cancel_sweep(sweep_id)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not self.store.list_runs(statuses=[RunStatus.RUNNING], sweep_id=sweep_id):
                break
            time.sleep(0.1)
            self.reap()
        return sweep

    def estimate_sweep(self, spec: ModelSpec, dataset: str, axes: Sequence[Axis], *, repeats: int = 1
                       ) -> SweepEstimate:
        """How many runs the sweep makes and how long they should take on this machine, before it
        starts: from the finished runs' samples/s on the same dataset (the same model if any), else
        a default rate. For the Build page; SpecError for bad axes."""
        planned = plan_runs(spec.normalized(), list(axes), repeats=repeats)
        n_train = None
        try:
            if locate(dataset, self.settings.data_dir) is not None:
                n_train = len(load(dataset, self.settings.data_dir, download=False).x_train)
        except LayerlabError:
            n_train = STANDARD_TRAIN_SIZES.get(dataset)
        parallel = self.settings.max_running if self.sweep_executor == "local" else self._ray_slots()
        return estimate_sweep([run_spec for _, run_spec in planned], dataset, n_train, self.store.list_runs(),
                              parallel=parallel)

    def repeat_run(self, run_id: str, count: int = 2) -> list[Run]:
        """Queue `count` more runs of the run's spec with the next unused seeds, all in the run's
        repeat group (the run itself joins one named after it if it has none), to see whether its
        result holds across seeds."""
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 20:
            raise LayerlabError(f"`count` must be an integer from 1 to 20. Received: count={count!r}")
        run = self.store.get_run(run_id)
        spec = run.model_spec
        group = run.repeat_group or run.id
        if run.repeat_group is None:
            self.store.set_repeat_group(run.id, group)
        used = {member.seed for member in self.store.list_runs(repeat_group=group)} | {spec.fit.seed}
        seeds, seed = [], spec.fit.seed
        while len(seeds) < count:
            seed += 1
            if seed not in used:
                seeds.append(seed)
        base = run.name.split(" · seed ")[0]
        return [self.submit(spec.with_fit(seed=seed), run.dataset, name=f"{base} · seed {seed}", repeat_group=group)
                for seed in seeds]

    # -- Ray ------------------------------------------------------------------------------------

    def _ray_backend(self):
        """This process's Ray driver for the configured address (imports Ray: only when configured)."""
        if self._ray is None:
            from pipelines.execution import ray_backend

            self._ray = ray_backend.driver_for(self.store, self.settings)
        return self._ray

    def _ray_slots(self) -> int:
        return self._ray_backend().slots() if self.settings.ray_address else 1

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
            if run.executor == "ray":
                # Its worker_pid is the driver's (a server or a CLI): never killed from here. The
                # driver cancels the task of a run asked to stop; a driver gone leaves it interrupted.
                if (stale or not processes.pid_alive(run.worker_pid)) and self.store.mark_interrupted(
                        run.id, f"The process driving it on the Ray cluster (pid {run.worker_pid}) ended or stopped "
                                f"answering after {run.epochs_done} finished epoch(s). Resume to continue from there."):
                    settled.append(run.id)
            elif stale or not processes.pid_alive(run.worker_pid):
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
                if run.executor != "local":
                    continue
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
        """Start one worker process, detached from this one, and register it at once. Its threads per
        TensorFlow operation suit the run it will likely train: the next queued one, else (a spare)
        the newest run, like which the next click likely is (see speed.intra_op_threads)."""
        settings = self.settings
        args = ["worker", "--home", str(self.store.home), "--max-running", str(settings.max_running),
                "--idle-seconds", str(settings.idle_seconds), *settings.speed.to_args()]
        if settings.data_dir:
            args += ["--data-dir", str(settings.data_dir)]
        queued = [run for run in reversed(self.store.list_runs(statuses=[RunStatus.QUEUED])) if run.executor == "local"]
        likely = queued[0] if queued else next(iter(self.store.list_runs(limit=1)), None)
        threads = intra_op_threads(likely.spec if likely else None, settings.speed)
        env = {"TF_NUM_INTRAOP_THREADS": str(threads)} if threads else None
        child = processes.spawn_detached(processes.pipelines_command(*args), self.log_path, env)
        self._children.append(child)
        self.registry.register(child.pid, "starting")
        return child.pid

    def _starting(self, run: Run, now: float) -> bool:
        """A RUNNING run without a finished batch yet, or started less than `startup_seconds` ago."""
        return (run.progress.step == 0 or run.started_at is None
                or now - run.started_at < self.settings.startup_seconds)

    def ensure_workers(self, *, spare: int = 0) -> list[int]:
        """Reap, then start as many workers as the queue can use now, plus `spare` warm ones.

        A spare is kept while every slot is busy too: it imports TensorFlow once and then waits
        without using a core, so the run that follows (a Resume after Stop, Train again, a
        sweep's next run) starts at once instead of after a cold start of several seconds. Spares
        wait while a run is starting (queued for a free slot, running without a finished batch
        yet, or for less than startup_seconds): a new worker's TensorFlow import would take a
        core from that run, and from the browser drawing its first points, just when a user
        waits for them.
        """
        with self._lock:
            self.reap()
            running = [run for run in self.store.running_runs() if run.executor == "local"]
            queued_runs = self.store.list_runs(statuses=[RunStatus.QUEUED])
            queued = sum(1 for run in queued_runs if run.executor == "local")
            if self.settings.ray_address and any(run.executor == "ray" for run in queued_runs):
                self._ray_backend().ensure_running()
            waiting = sum(1 for w in self.registry.list() if w.state in ("starting", "idle"))
            free = max(0, self.settings.max_running - len(running))
            claimable = min(queued, free)
            now = time.time()
            starting = claimable > 0 or any(self._starting(run, now) for run in running)
            wanted = claimable + (0 if starting else spare)
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

    def close(self) -> None:
        """Stop driving Ray runs from this process (they end INTERRUPTED unless they have ended)."""
        if self._ray is not None:
            self._ray.close()
            self._ray = None

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
        continues from its last usable checkpoint. A run of a Ray sweep resumes on the cluster if one
        is configured here, else locally."""
        executor = "ray" if self.settings.ray_address and self.store.get_run(run_id).executor == "ray" else "local"
        run = self.store.request_resume(run_id, executor=executor)
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

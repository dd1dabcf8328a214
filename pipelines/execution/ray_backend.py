"""Sweep runs as Ray tasks on a cluster, driven from this process; imported only when a Ray
address is configured (`LAYERLAB_RAY_ADDRESS` or `--ray`), so that without one Ray is never
imported, nor needed.

The process that queued the runs stays the driver and the only writer of the run store: a task on
another machine cannot write this machine's SQLite file (and should not, even where the disk is
shared: SQLite's locks do not hold over network filesystems). So a task trains into a temporary
folder on its node and sends everything back:

- metric points, progress and the end of each epoch go to a `Relay` actor as they happen (one per
  driver, placed on the driver's node, taking no CPU); the driver drains it several times a
  second and writes them to the store, so pages draw a Ray run live like a local one;
- each finished epoch's checkpoint files (last.keras and its state) travel with that epoch's end,
  so a task that dies leaves its run resumable from its last finished epoch;
- the task returns the trained model.keras, best.keras and the rest of its folder, which the
  driver writes into the run's folder; history.csv is written from the store's epoch points.

A stop request (or a cancelled sweep) reaches the task through the same actor and ends the run
STOPPED after its current batches, as a local worker would; a task that has not stopped
`stop_grace` seconds later is cancelled (`ray.cancel(force=True)`). A task that dies with its
worker or node ends its run INTERRUPTED. Ray does not retry a task (`max_retries=0`): a retry
would train the run again from scratch under the points already recorded.

The dataset is put into Ray's object store once per sweep (`ray.put`), not read by each trial:
a node holds one shared, read-only copy that every task on it maps without copying, the driver
reads and decodes the files once, and the cluster's nodes need no dataset folder of their own.

The driver's node must be part of the cluster (`ray start --head` there and `auto`, or the head's
address). Each task asks for `ray_cpus_per_run` CPUs; runs on the cluster at once are bounded by
its CPUs, apart from LAYERLAB_MAX_RUNNING, which counts local workers only. The cluster's
Python needs Layerlab's requirements (TensorFlow, Keras); the `pipelines` package itself is
shipped with each task (`runtime_env` `py_modules`).
"""
from __future__ import annotations

import dataclasses
import logging
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

from pipelines.data.locate import load
from pipelines.errors import LayerlabError
from pipelines.execution.processes import REPO_ROOT
from pipelines.execution.ray_tasks import CHECKPOINT_FILES, Relay, ray_module, read_files, train_task, write_files
from pipelines.runs import artifacts
from pipelines.runs.artifacts import HISTORY_FILE
from pipelines.runs.entities import Run, RunOutcome, RunStatus
from pipelines.runs.records import history_csv
from pipelines.runs.sqlite_store import SQLiteRunStore
from pipelines.runs.store import RunStore

log = logging.getLogger("layerlab.ray")

LOOP_SECONDS = 0.2
HEARTBEAT_SECONDS = 0.5
SLOTS_SECONDS = 5.0
CONNECT_SECONDS = 3.0
# The job's: the `pipelines` package is shipped to every node (Ray uploads it once, by content).
# A process that calls ray.init itself (a test, an app embedding Layerlab) passes this.
RUNTIME_ENV = {"py_modules": [str(REPO_ROOT / "pipelines")]}
# TensorFlow's start-up chatter stays out of the logs; a task splits an operation over the CPUs it has.
TASK_ENV = {"env_vars": {"TF_CPP_MIN_LOG_LEVEL": "2"}}

_drivers: dict[tuple[str, str], RayDriver] = {}
_drivers_lock = threading.Lock()


def _answers(address: str) -> None:
    """LayerlabError unless something accepts a connection at a `host:port` address (Ray itself
    would retry an unreachable one for minutes)."""
    host, _, port = address.rpartition(":")
    if address == "auto" or "://" in address or not host or not port.isdigit():
        return
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_SECONDS).close()
    except OSError as exc:
        raise LayerlabError(f"Cannot reach the Ray cluster at {address!r}: nothing answers there "
                            f"({exc.strerror or exc}). Start one with `ray start --head` and use 'auto', or give "
                            "the head's address (host:port).") from None


def connect(address: str) -> None:
    """Join the Ray cluster at `address` ("auto": the one `ray start` made on this machine), unless
    this process is connected to one already."""
    ray = ray_module()
    if ray.is_initialized():
        return
    _answers(address)
    try:
        # log_to_driver=False: the CLI's stdout carries JSON lines, never the workers' output.
        ray.init(address=address, namespace="layerlab", runtime_env=RUNTIME_ENV, log_to_driver=False,
                 logging_level=logging.WARNING)
    except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError ... for a bad address
        raise LayerlabError(f"Cannot reach the Ray cluster at {address!r}: {type(exc).__name__}: {exc}. "
                            "Start one with `ray start --head` and use 'auto', or give the head's "
                            "address (host:port).") from None


def driver_for(store: RunStore, settings) -> RayDriver:
    """This process's driver of the Ray runs of `store`'s home on `settings.ray_address`."""
    key = (str(store.home), settings.ray_address)
    with _drivers_lock:
        driver = _drivers.get(key)
        if driver is None or driver.closed:
            driver = _drivers[key] = RayDriver(store.home, settings)
        return driver


# -- in the task ---------------------------------------------------------------------------------




@dataclasses.dataclass
class _Task:
    run: Run
    ref: Any
    sweep_id: str | None
    started: dict | None = None  # what the task said when it began: its pid and node
    stop_sent_at: float | None = None
    cancel_reason: tuple[RunStatus, str] | None = None


class RayDriver:
    """Claims the queued "ray" runs of one home, runs them as Ray tasks and records what they send.

    A thread of this process does it (plus one that keeps the runs' heartbeats), started by
    `ensure_running` once Ray runs are queued, until `close`.
    """

    def __init__(self, home: Path, settings) -> None:
        self.home = Path(home)
        self.settings = settings
        self.closed = False
        self._tasks: dict[str, _Task] = {}
        self._datasets: dict[tuple[str | None, str], Any] = {}  # (sweep, dataset) -> object ref
        self._relay = None
        self._remote_task = None
        self._slots: tuple[int, float] | None = None  # (slots, when counted)
        self._lock = threading.Lock()
        self._tasks_lock = threading.Lock()  # the heartbeat thread reads the tasks the loop changes
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # public ------------------------------------------------------------------------------------

    def ensure_running(self) -> None:
        """Connect (raising LayerlabError if the cluster cannot be reached) and start the threads."""
        with self._lock:
            if self.closed:
                raise LayerlabError("This Ray driver was closed.")
            if self._threads and all(thread.is_alive() for thread in self._threads):
                return
            connect(self.settings.ray_address)
            if self._relay is None:
                self._relay = self._make_relay()
                self._remote_task = ray_module().remote(train_task)
            self._threads = [threading.Thread(target=self._loop, name="layerlab-ray-driver", daemon=True),
                             threading.Thread(target=self._beat, name="layerlab-ray-heartbeat", daemon=True)]
            for thread in self._threads:
                thread.start()

    def slots(self) -> int:
        """How many runs the cluster can train at once: its CPUs over the CPUs a run asks for (asked
        again every SLOTS_SECONDS: nodes join and leave)."""
        now = time.monotonic()
        if self._slots is None or now - self._slots[1] > SLOTS_SECONDS:
            ray = ray_module()
            connect(self.settings.ray_address)
            cpus = ray.cluster_resources().get("CPU", 0)
            self._slots = (max(1, int(cpus // self.settings.ray_cpus_per_run)), now)
        return self._slots[0]

    def task_info(self, run_id: str) -> dict | None:
        """Where the run's task trains (its pid and node), once it has begun; None otherwise."""
        task = self._tasks.get(run_id)
        return task.started if task else None

    def close(self) -> None:
        """Stop driving: cancel the tasks still running (their runs end INTERRUPTED, resumable)."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        if self._tasks:
            ray = ray_module()
            store = SQLiteRunStore(self.home)
            for run_id, task in list(self._tasks.items()):
                ray.cancel(task.ref, force=True)
                store.mark_interrupted(run_id, "The process driving it on the Ray cluster ended. Resume to "
                                               "continue from the last finished epoch.")
            self._tasks.clear()
        with _drivers_lock:
            for key, driver in list(_drivers.items()):
                if driver is self:
                    del _drivers[key]

    # threads -----------------------------------------------------------------------------------

    def _make_relay(self):
        ray = ray_module()
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        here = NodeAffinitySchedulingStrategy(node_id=ray.get_runtime_context().get_node_id(), soft=True)
        return ray.remote(Relay).options(num_cpus=0, scheduling_strategy=here).remote()

    def _beat(self) -> None:
        store = SQLiteRunStore(self.home)
        while not self._stop.wait(HEARTBEAT_SECONDS):
            with self._tasks_lock:
                run_ids = list(self._tasks)
            for run_id in run_ids:
                try:
                    store.heartbeat(run_id)
                except LayerlabError as exc:
                    log.warning("heartbeat of run %s failed: %s", run_id, exc)

    def _loop(self) -> None:
        store = SQLiteRunStore(self.home)
        while not self._stop.wait(LOOP_SECONDS):
            try:
                self._step(store)
            except Exception:  # one bad moment (a busy store, a Ray hiccup) must not end the driving
                log.exception("the Ray driver's loop failed; trying again")

    def _step(self, store: SQLiteRunStore) -> None:
        self._receive(store)
        self._relay_stops(store)
        self._settle_finished(store)
        self._claim(store)
        self._release_datasets(store)

    # the loop's parts --------------------------------------------------------------------------

    def _receive(self, store: SQLiteRunStore) -> None:
        ray = ray_module()
        for run_id, kind, payload in ray.get(self._relay.drain.remote()):
            task = self._tasks.get(run_id)
            if task is None:
                continue  # a run already settled (cancelled): what it still sent is dropped
            if kind == "started":
                task.started = payload
            elif kind == "points":
                store.log_metrics(run_id, payload)
            elif kind == "progress":
                store.update_progress(run_id, payload)
            elif kind == "delete_from_epoch":
                store.delete_metrics_from_epoch(run_id, payload)
            elif kind == "epochs_done":
                epochs_done, best_epoch, files = payload
                write_files(store.run_dir(run_id), files)
                store.set_epochs_done(run_id, epochs_done, best_epoch)

    def _relay_stops(self, store: SQLiteRunStore) -> None:
        ray = ray_module()
        now = time.time()
        for run_id, task in list(self._tasks.items()):
            run = store.get_run(run_id)
            if run.status is not RunStatus.RUNNING:  # settled elsewhere (a reaper, a rebuild): let it go
                ray.cancel(task.ref, force=True)
                self._forget(run_id)
                continue
            if not run.stop_requested_at:
                continue
            if task.stop_sent_at is None:
                task.stop_sent_at = now
                if task.started is None:  # not begun on the cluster yet: nothing to save, cancel it
                    task.cancel_reason = (RunStatus.STOPPED, None)
                    ray.cancel(task.ref)
                else:
                    self._relay.request_stop.remote(run_id)
            elif task.cancel_reason is None and now - run.stop_requested_at > self.settings.stop_grace:
                task.cancel_reason = (RunStatus.STOPPED, (
                    f"It did not stop within {self.settings.stop_grace:g} s of the request, so its Ray task was "
                    "cancelled. Resume continues from the last finished epoch."))
                ray.cancel(task.ref, force=True)

    def _settle_finished(self, store: SQLiteRunStore) -> None:
        ray = ray_module()
        if not self._tasks:
            return
        refs = [task.ref for task in self._tasks.values()]
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
        if not ready:
            return
        self._receive(store)  # what the tasks sent before they ended comes first
        ready = set(ready)
        for run_id, task in list(self._tasks.items()):
            if task.ref in ready:
                outcome, files = self._outcome(task)
                folder = store.run_dir(run_id)
                write_files(folder, files)
                artifacts.atomic_write_text(folder / HISTORY_FILE, history_csv(store.get_metrics(run_id, kind="epoch")))
                store.finish_run(run_id, outcome.status, error=outcome.error, metrics=outcome.metrics)
                log.info("run %s ended %s on the Ray cluster", run_id, outcome.status.value)
                self._forget(run_id)

    def _outcome(self, task: _Task) -> tuple[RunOutcome, dict[str, bytes]]:
        """How the task ended, and the files it brought back."""
        ray = ray_module()
        from ray import exceptions

        try:
            result = ray.get(task.ref)
        except exceptions.TaskCancelledError:
            status, error = task.cancel_reason or (RunStatus.INTERRUPTED, "Its Ray task was cancelled.")
            return RunOutcome(status, error), {}
        except exceptions.RuntimeEnvSetupError as exc:
            return RunOutcome(RunStatus.FAILED, f"The Ray cluster could not set up Layerlab's code for it: "
                                                f"{_gist(exc)}"), {}
        except exceptions.RayTaskError as exc:
            return RunOutcome(RunStatus.FAILED, f"Its Ray task failed: {_gist(exc)}"), {}
        except exceptions.RayError as exc:  # the worker or its node died, the result was lost ...
            where = f" on node {task.started['node'][:12]}" if task.started else ""
            return RunOutcome(RunStatus.INTERRUPTED, (
                f"Its Ray task ended without finishing{where} ({type(exc).__name__}: {_gist(exc)}). Resume to "
                "continue from the last finished epoch.")), {}
        if task.cancel_reason and task.cancel_reason[1]:
            status, error = task.cancel_reason
            return RunOutcome(status, error, result["metrics"]), result["files"]
        return RunOutcome(RunStatus(result["status"]), result["error"], result["metrics"]), result["files"]

    def _claim(self, store: SQLiteRunStore) -> None:
        if not store.list_runs(statuses=[RunStatus.QUEUED], limit=1):
            return
        slots = self.slots()
        while len(self._tasks) < slots:
            run = store.claim_next_run(os.getpid(), slots, executor="ray")
            if run is None:
                return
            try:
                self._submit(store, run)
            except Exception as exc:
                store.finish_run(run.id, RunStatus.FAILED, error=f"Could not start it on the Ray cluster: {exc}")

    def _submit(self, store: SQLiteRunStore, run: Run) -> None:
        ray = ray_module()
        key = (run.sweep_id, run.dataset)
        if key not in self._datasets:
            self._datasets[key] = ray.put(load(run.dataset, self.settings.data_dir))  # once per sweep
        files = read_files(store.run_dir(run.id), CHECKPOINT_FILES) if run.resume_count else {}
        threads = self.settings.speed.intra_op_threads or max(1, int(self.settings.ray_cpus_per_run))
        env = {"env_vars": {**TASK_ENV["env_vars"], "TF_NUM_INTRAOP_THREADS": str(threads)}}
        remote = self._remote_task.options(num_cpus=self.settings.ray_cpus_per_run, max_retries=0,
                                           runtime_env=env, name=f"layerlab-run-{run.id}")
        ref = remote.remote(run, self._datasets[key], files, self._relay, self.settings.speed)
        with self._tasks_lock:
            self._tasks[run.id] = _Task(run=run, ref=ref, sweep_id=run.sweep_id)
        log.info("run %s submitted to the Ray cluster", run.id)

    def _forget(self, run_id: str) -> None:
        with self._tasks_lock:
            self._tasks.pop(run_id, None)
        self._relay.forget.remote(run_id)

    def _release_datasets(self, store: SQLiteRunStore) -> None:
        """Drop a sweep's dataset from the object store once none of its runs waits or trains."""
        for sweep_id, dataset in list(self._datasets):
            training = any(task.sweep_id == sweep_id for task in self._tasks.values())
            waiting = any(run.executor == "ray" and run.sweep_id == sweep_id
                          for run in store.list_runs(statuses=[RunStatus.QUEUED]))
            if not training and not waiting:
                del self._datasets[(sweep_id, dataset)]


def _gist(error: BaseException) -> str:
    """The last line of a Ray error's message: the exception itself, without Ray's traceback."""
    return (str(error).strip().splitlines() or [type(error).__name__])[-1][:300]

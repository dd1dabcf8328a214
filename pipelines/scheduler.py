"""Starting, watching and stopping runs: the one place that spawns and reaps worker processes.

There is no daemon. Whoever looks at the store (a page's live fragment, the CLI) calls
`ensure_workers`, which marks runs whose worker died as INTERRUPTED and starts workers while
queued runs wait for a free slot. Runs are OS processes of their own, so they survive the
browser closing and the Streamlit server restarting, and cannot take the server down.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

from pipelines import datasets, paths
from pipelines.errors import RunStateError
from pipelines.run_store import Run, RunStatus, RunStore
from pipelines.spec import ModelSpec
from pipelines.validation import ensure_valid

HEARTBEAT_TIMEOUT = 3.0
STARTING_GRACE = 120.0
IDLE_SECONDS = 600.0
STOP_GRACE = 5.0
STARTUP_SECONDS = 5.0
REPO_ROOT = Path(__file__).resolve().parents[1]

MAX_FAILED_STARTS = 3

_children: list[subprocess.Popen] = []
_failed_starts = 0  # workers of this process that died before they were ready, in a row
_ensure_lock = threading.Lock()


def max_running() -> int:
    """How many runs may train at once: env `LAYERLAB_MAX_RUNNING`, default 1 on this 2-core box."""
    raw = os.environ.get("LAYERLAB_MAX_RUNNING", "1")
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise RunStateError(f"LAYERLAB_MAX_RUNNING must be a positive integer. Received: {raw!r}")
    return value


def submit_run(store: RunStore, spec: ModelSpec, dataset: str, *, name: str = "",
               data_dir: str | None = None) -> Run:
    """Validate the spec and find the data, then queue a run. Bad input creates no run."""
    spec = spec.normalized()
    validation = ensure_valid(spec, dataset)
    if datasets.locate(dataset, data_dir) is None:
        datasets.load(dataset, data_dir, download=True)
    spec = replace(spec, input_shape=tuple(validation.input_shape))  # the input is the dataset's
    return store.create_run(name or spec.name, dataset, spec.to_dict())


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie answers kill(0) but will never beat again
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (OSError, IndexError):
        return True


def _reap_children() -> None:
    for child in list(_children):
        if child.poll() is not None:
            _children.remove(child)


def _kill(pid: int | None) -> None:
    if pid and _pid_alive(pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def reap(store: RunStore, *, now: float | None = None) -> list[str]:
    """Settle runs whose worker cannot finish them, and forget dead workers.

    A worker that is gone, or alive but silent (a hung process: its heartbeat thread beats even
    while a batch runs), leaves its run INTERRUPTED; a silent one is killed first, so that a
    resume never shares the run with it. A stop request that a worker has not honoured within
    STOP_GRACE seconds is enforced with SIGKILL: the run ends STOPPED.
    """
    _reap_children()
    now = now or time.time()
    settled = []
    for run in store.running_runs():
        stale = run.heartbeat_at is None or now - run.heartbeat_at > HEARTBEAT_TIMEOUT
        if stale or not _pid_alive(run.worker_pid):
            _kill(run.worker_pid)
            reason = (f"The worker process (pid {run.worker_pid}) stopped without finishing, after "
                      f"{run.epochs_done} finished epoch(s). Resume to continue from there.")
            if store.mark_interrupted(run.id, reason):
                settled.append(run.id)
        elif run.stop_requested_at and now - run.stop_requested_at > STOP_GRACE:
            _kill(run.worker_pid)
            store.finish_run(run.id, RunStatus.STOPPED,
                             error=f"It did not stop within {STOP_GRACE:g} s of the request, so its process "
                                   "was killed. Resume continues from the last finished epoch.")
            settled.append(run.id)
    global _failed_starts
    for worker in store.list_workers():
        grace = STARTING_GRACE if worker.state == "starting" else HEARTBEAT_TIMEOUT
        alive = _pid_alive(worker.pid)
        if not alive or now - (worker.heartbeat_at or worker.started_at) > grace:
            store.remove_worker(worker.pid)
            if worker.state == "starting" and not alive:
                _failed_starts += 1
        elif worker.state != "starting":
            _failed_starts = 0
    if _failed_starts >= MAX_FAILED_STARTS:
        _failed_starts = 0
        for run in store.list_runs(statuses=[RunStatus.QUEUED]):
            store.finish_run(run.id, RunStatus.FAILED, error=(
                f"The training worker died {MAX_FAILED_STARTS} times while starting, so the queue was "
                f"cleared. Its log is {store.home / 'logs' / 'workers.log'}."))
            settled.append(run.id)
    return settled


def spawn_worker(store: RunStore, *, data_dir: str | None = None) -> int:
    """Start one worker process, detached from this one, and register it at once."""
    home = store.home
    log_dir = home / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pipelines", "worker", "--home", str(home),
               "--max-running", str(max_running()), "--idle-seconds", str(IDLE_SECONDS)]
    chosen = paths.data_dir(data_dir)
    if chosen:
        command += ["--data-dir", str(chosen)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    with open(log_dir / "workers.log", "ab") as log_file:
        child = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL,
                                 stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
    _children.append(child)
    store.register_worker(child.pid, "starting")
    return child.pid


def _starting(run: Run, now: float) -> bool:
    """A RUNNING run without a finished batch yet, or started less than STARTUP_SECONDS ago."""
    return run.progress.step == 0 or run.started_at is None or now - run.started_at < STARTUP_SECONDS


def ensure_workers(store: RunStore, *, spare: int = 0, data_dir: str | None = None) -> list[int]:
    """Reap, then start as many workers as the queue can use now, plus `spare` warm ones.

    Spares are kept only while a slot is free (with every slot busy, a click on Train queues a
    run that no spare could start sooner), and they wait while a run is starting (queued for a
    free slot, running without a finished batch yet, or for less than STARTUP_SECONDS): a new
    worker's TensorFlow import would take a core from that run, and from the browser drawing its
    first points, just when a user waits for them.
    """
    with _ensure_lock:  # every open page calls this each second, from threads of one server
        reap(store)
        running = store.running_runs()
        queued = len(store.list_runs(statuses=[RunStatus.QUEUED]))
        waiting = sum(1 for w in store.list_workers() if w.state in ("starting", "idle"))
        free = max(0, max_running() - len(running))
        claimable = min(queued, free)
        now = time.time()
        starting = claimable > 0 or any(_starting(run, now) for run in running)
        # A spare is only worth its memory and its import while a slot is free to train in.
        wanted = claimable + (0 if starting or free == claimable else spare)
        return [spawn_worker(store, data_dir=data_dir) for _ in range(max(0, wanted - waiting))]


def end_workers(store: RunStore, *, wait: float = 0.0) -> int:
    """End every worker registered in this store: give them `wait` seconds to exit on their own,
    then SIGTERM, then SIGKILL. For tests and benchmarks that must leave no process behind.
    Returns how many were still alive after the wait."""
    deadline = time.monotonic() + wait
    pids = {worker.pid for worker in store.list_workers()} | {child.pid for child in _children}
    while any(_pid_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
        _reap_children()
    leftovers = [pid for pid in pids if _pid_alive(pid)]
    for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        for pid in leftovers:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        while any(_pid_alive(pid) for pid in leftovers) and time.monotonic() < deadline:
            time.sleep(0.1)
            _reap_children()
    for pid in pids:
        store.remove_worker(pid)
    return len(leftovers)


def stop_run(store: RunStore, run_id: str, *, wait: float = 0.0) -> Run:
    """Ask a run to stop after its current batch. With `wait`, block until it has (`reap`
    enforces the stop with SIGKILL once STOP_GRACE has passed)."""
    store.request_stop(run_id)
    deadline = time.monotonic() + wait
    run = store.get_run(run_id)
    while run.status == RunStatus.RUNNING and time.monotonic() < deadline:
        time.sleep(0.1)
        reap(store)
        run = store.get_run(run_id)
    return run


def resume_run(store: RunStore, run_id: str, *, data_dir: str | None = None, spare: int = 0) -> Run:
    """Queue a STOPPED or INTERRUPTED run again; it continues from its last finished epoch."""
    run = store.request_resume(run_id)
    ensure_workers(store, spare=spare, data_dir=data_dir)
    return run


def wait_for(store: RunStore, run_id: str, *, timeout: float | None = None, poll: float = 1.0,
             data_dir: str | None = None, on_poll=None) -> Run:
    """Block until the run ends, keeping workers started and reaped meanwhile."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        ensure_workers(store, data_dir=data_dir)
        run = store.get_run(run_id)
        if on_poll:
            on_poll(run)
        if run.status.is_terminal:
            return run
        if deadline is not None and time.monotonic() > deadline:
            return run
        time.sleep(poll)


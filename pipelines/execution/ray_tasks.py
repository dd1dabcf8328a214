"""The task side of Ray sweeps: what runs on a cluster node, and the actor it reports through.

A task trains one run into a temporary folder with the same `training.execute_run` as a local
worker, but through a `RelayStore`: every write (points, progress, an epoch's end with its
checkpoint files) goes to the driver's `Relay` actor, because only the driver writes the run
store (see ray_backend.py). Imported by the driver only when a Ray address is configured.
"""
from __future__ import annotations

import logging
import os
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from pipelines.errors import LayerlabError
from pipelines.execution.speed import SpeedSettings
from pipelines.runs.artifacts import (BEST_FILE, LAST_FILE, LAST_STATE_FILE, MODEL_FILE, PREVIOUS_FILE,
                                      PREVIOUS_STATE_FILE, SPEC_FILE, atomic_target)
from pipelines.runs.entities import MetricPoint, Progress, Run

log = logging.getLogger("layerlab.ray")

STOP_POLL_SECONDS = 0.5
CHECKPOINT_FILES = (LAST_FILE, LAST_STATE_FILE, PREVIOUS_FILE, PREVIOUS_STATE_FILE, BEST_FILE)
RESULT_FILES = (MODEL_FILE, BEST_FILE, SPEC_FILE, LAST_FILE, LAST_STATE_FILE, PREVIOUS_FILE, PREVIOUS_STATE_FILE)
RAY_TOKEN_FILE = Path.home() / ".ray" / "auth_token"  # where `ray start` / ray.init leave the cluster's token


def ray_module():
    """The `ray` module, or a LayerlabError saying how to install it."""
    if "ray" not in sys.modules and "RAY_AUTH_MODE" not in os.environ and (
            os.environ.get("RAY_AUTH_TOKEN") or RAY_TOKEN_FILE.exists()):
        # Clusters of recent Ray authenticate with the token that `ray start` (or ray.init) left
        # here; Ray reads it when it joins `auto`, not an address given outright, unless told to
        # before its import. A cluster elsewhere: set RAY_AUTH_TOKEN (see Ray's token-auth docs).
        os.environ["RAY_AUTH_MODE"] = "token"
    if "ray" not in sys.modules:
        os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "error")  # Ray's own warnings would bury the CLI's one line
    try:
        import ray
    except ImportError:
        raise LayerlabError("A Ray address is set (LAYERLAB_RAY_ADDRESS or --ray), but Ray is not installed "
                            "here: pip install -r requirements-ray.txt") from None
    return ray



class Relay:
    """The actor between the tasks and the driver: messages up, stop requests down."""

    def __init__(self) -> None:
        self._messages: list[tuple[str, str, Any]] = []
        self._stops: set[str] = set()

    def put(self, run_id: str, kind: str, payload: Any) -> None:
        self._messages.append((run_id, kind, payload))

    def drain(self) -> list[tuple[str, str, Any]]:
        messages, self._messages = self._messages, []
        return messages

    def request_stop(self, run_id: str) -> None:
        self._stops.add(run_id)

    def stop_requested(self, run_id: str) -> bool:
        return run_id in self._stops

    def forget(self, run_id: str) -> None:
        self._stops.discard(run_id)

    def sync(self) -> bool:
        """Answered once every message a caller sent before it has been taken in."""
        return True


class RelayStore:
    """The part of the run store that training uses, for a task: writes go to the relay, reads are
    this attempt's own points. Not a RunStore: a task never queues, claims or finishes a run."""

    def __init__(self, run: Run, folder: Path, relay: Any) -> None:
        self.run_id, self.folder, self.relay = run.id, folder, relay
        self._points: list[MetricPoint] = []
        self._lock = threading.Lock()

    def _send(self, kind: str, payload: Any) -> None:
        self.relay.put.remote(self.run_id, kind, payload)

    def ensure_run_dir(self, run_id: str) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        return self.folder

    run_dir = ensure_run_dir

    def heartbeat(self, run_id: str) -> None:
        """The driver beats for its runs."""

    def update_progress(self, run_id: str, progress: Progress) -> None:
        self._send("progress", progress)

    def log_metrics(self, run_id: str, points) -> None:
        points = list(points)
        with self._lock:
            self._points.extend(points)
        self._send("points", points)

    def delete_metrics_from_epoch(self, run_id: str, epoch: int) -> int:
        with self._lock:
            self._points = [p for p in self._points if p.epoch < epoch]
        self._send("delete_from_epoch", epoch)
        return 0

    def set_epochs_done(self, run_id: str, epochs_done: int, best_epoch: int | None) -> None:
        """An epoch ended: its checkpoint (written just before, see EpochCheckpoint) goes with it."""
        self._send("epochs_done", (epochs_done, best_epoch, read_files(self.folder, CHECKPOINT_FILES)))

    def get_metrics(self, run_id: str, kind: str | None = None, after_id: int = 0) -> list[MetricPoint]:
        with self._lock:
            return [p for p in self._points if kind is None or p.kind == kind]


def read_files(folder: Path, names) -> dict[str, bytes]:
    found = {}
    for name in names:
        try:
            found[name] = (folder / name).read_bytes()
        except FileNotFoundError:
            continue
    return found


def write_files(folder: Path, files: dict[str, bytes]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        with atomic_target(folder / name) as tmp:
            tmp.write_bytes(content)


def _watch_stop(relay: Any, run_id: str, stop: threading.Event, done: threading.Event) -> None:
    ray = ray_module()
    while not done.wait(STOP_POLL_SECONDS):
        try:
            if ray.get(relay.stop_requested.remote(run_id), timeout=10):
                stop.set()
                return
        except Exception as exc:  # the relay busy for a moment must not end the watch
            log.warning("stop poll failed: %s", exc)


def train_task(run: Run, dataset: Any, files: dict[str, bytes], relay: Any, speed: SpeedSettings) -> dict:
    """One run, on whichever node Ray chose: train in a temporary folder, relay everything, and
    return how it ended with the files the run's folder keeps."""
    from pipelines.execution import training
    from pipelines.execution.worker import outcome_of

    ray = ray_module()
    relay.put.remote(run.id, "started", {"pid": os.getpid(), "node": ray.get_runtime_context().get_node_id()})
    with tempfile.TemporaryDirectory(prefix=f"layerlab-{run.id}-") as name:
        folder = Path(name)
        write_files(folder, files)
        sink = RelayStore(run, folder, relay)
        stop, done = threading.Event(), threading.Event()
        watcher = threading.Thread(target=_watch_stop, args=(relay, run.id, stop, done), daemon=True)
        watcher.start()
        try:
            outcome = training.execute_run(sink, run, stop, dataset=dataset, speed=speed)
        except Exception as exc:
            outcome = outcome_of(exc, folder)
        finally:
            done.set()
        ray.get(relay.sync.remote())  # every point sent is in the relay before the driver hears of the end
        return {"status": outcome.status.value, "error": outcome.error, "metrics": outcome.metrics,
                "files": read_files(folder, RESULT_FILES)}


# -- in the driver -------------------------------------------------------------------------------

"""The run store's contract: what every training run is, was and produced, shared by every process.

The dashboard, the CLI and the worker processes never talk to each other directly; they read
and write runs here. `RunStore` is the contract, `SQLiteRunStore` the one implementation, and
tests/runs/test_store_contract.py the suite any later implementation must pass.
"""
from __future__ import annotations

import abc
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pipelines.errors import RunNotFoundError
from pipelines.runs.artifacts import has_checkpoint
from pipelines.runs.entities import (RUN_ID_PREFIX_PATTERN, MetricPoint, PlannedRun, Progress, Run, RunStatus,
                                     Sweep, validate_run_id)


class RunStore(abc.ABC):
    """The contract every run store keeps; all methods are safe to call from many processes."""

    home: Path  # the Layerlab home the store belongs to (worker processes are started with it)

    @abc.abstractmethod
    def create_run(self, name: str, dataset: str, spec: dict, *, total_epochs: int = 0,
                   tags: Sequence[str] = (), note: str = "", repeat_group: str | None = None,
                   executor: str = "local") -> Run:
        """Queue a new run of `spec` (plain JSON data) planned for `total_epochs`; an empty name
        becomes "<dataset> <date time>". Its seed is the spec's fit seed. `executor` says who
        may claim it ("local" workers, or the "ray" driver)."""

    @abc.abstractmethod
    def add_finished_run(self, name: str, dataset: str, spec: dict, files: Path, *,
                         metrics: dict[str, float] | None = None, tags: Sequence[str] = (),
                         note: str = "") -> Run:
        """Record a run that no worker trains (an imported model): COMPLETED at once, with the
        artifacts already made in `files` (a folder on the home's disk) moved in as its folder,
        all or nothing. No worker ever sees it queued."""

    @abc.abstractmethod
    def get_run(self, run_id: str) -> Run:
        """The run, or RunNotFoundError naming the id."""

    @abc.abstractmethod
    def list_runs(
        self, statuses: Iterable[RunStatus] | None = None, limit: int | None = None, *,
        sweep_id: str | None = None, repeat_group: str | None = None,
    ) -> list[Run]:
        """Runs newest first, optionally only those with one of `statuses`, of one sweep, or of
        one repeat group."""

    @abc.abstractmethod
    def queue_position(self, run_id: str) -> int | None:
        """1-based place in its executor's queue (next to be claimed is 1); None if the run is not
        queued."""

    @abc.abstractmethod
    def claim_next_run(self, worker_pid: int, max_running: int, *, executor: str = "local",
                       sweep_id: str | None = None) -> Run | None:
        """Atomically move the oldest queued run of `executor` to RUNNING for this worker.

        None if that queue is empty or `max_running` runs of `executor` are already RUNNING; with
        `sweep_id`, also None unless the oldest queued run belongs to that sweep (a worker that
        trained one run of a sweep takes the next only if it is the sweep's turn). No two callers,
        in any processes, ever get the same run.
        """

    # -- for comparing runs ---------------------------------------------------------------------

    @abc.abstractmethod
    def rename_run(self, run_id: str, name: str) -> Run:
        """Give the run a new name (one line, stripped, not empty); any status."""

    @abc.abstractmethod
    def set_tags(self, run_id: str, tags: Sequence[str]) -> Run:
        """Replace the run's tags (stripped; empty ones dropped; duplicates, ignoring case, once)."""

    @abc.abstractmethod
    def set_note(self, run_id: str, note: str) -> Run:
        """Replace the run's note (free text; "" removes it)."""

    @abc.abstractmethod
    def set_repeat_group(self, run_id: str, group: str | None) -> Run:
        """Put the run in a repeat group (runs of one setting with different seeds), or out of one."""

    # -- sweeps ---------------------------------------------------------------------------------

    @abc.abstractmethod
    def create_sweep(self, name: str, dataset: str, spec: dict, axes: Sequence[tuple[str, Sequence[Any]]],
                     runs: Sequence[PlannedRun], *, repeats: int = 1, executor: str = "local") -> Sweep:
        """Record a sweep and queue all of its `runs` at once (all or none), in order, each with the
        sweep's id."""

    @abc.abstractmethod
    def get_sweep(self, sweep_id: str) -> Sweep:
        """The sweep, or RunNotFoundError naming the id."""

    @abc.abstractmethod
    def list_sweeps(self) -> list[Sweep]:
        """Sweeps newest first."""

    @abc.abstractmethod
    def cancel_sweep(self, sweep_id: str) -> Sweep:
        """Mark the sweep cancelled, end its queued runs STOPPED and ask its running ones to stop,
        in one transaction (no worker claims one of its runs meanwhile). Cancelling twice is fine."""

    @abc.abstractmethod
    def heartbeat(self, run_id: str) -> None:
        """Record that the run's worker is alive (the pool interrupts runs that go quiet)."""

    @abc.abstractmethod
    def update_progress(self, run_id: str, progress: Progress) -> None:
        """Save the run's progress; counts as a heartbeat."""

    @abc.abstractmethod
    def log_metrics(self, run_id: str, points: Sequence[MetricPoint]) -> None:
        """Append points in one write; cheap enough to call every few batches."""

    @abc.abstractmethod
    def get_metrics_since(
        self, run_id: str, after_id: int = 0, kind: str | None = None
    ) -> tuple[list[MetricPoint], int]:
        """Points logged after `after_id`, in insertion order, and the id to pass next time.

        For live charts: poll with the returned id to fetch only new points. After a resume the
        store deletes the points of unfinished epochs, so a poller should start over (from 0)
        when the run's `resume_count` changes.
        """

    def get_metrics(self, run_id: str, kind: str | None = None, after_id: int = 0) -> list[MetricPoint]:
        """The run's points in insertion order, optionally of one kind."""
        points, _ = self.get_metrics_since(run_id, after_id=after_id, kind=kind)
        return points

    @abc.abstractmethod
    def delete_metrics_from_epoch(self, run_id: str, epoch: int) -> int:
        """Drop points of epochs >= `epoch` (a resumed run redoes them); returns how many."""

    @abc.abstractmethod
    def set_epochs_done(self, run_id: str, epochs_done: int, best_epoch: int | None) -> None:
        """Record finished epochs and the best so far, where a resume will pick up."""

    @abc.abstractmethod
    def request_stop(self, run_id: str) -> Run:
        """Ask a RUNNING run's worker to stop after its current batch; a QUEUED run stops at once.

        RunStateError for a run that has already ended.
        """

    @abc.abstractmethod
    def is_stop_requested(self, run_id: str) -> bool:
        """Whether someone asked this run to stop; the worker polls it between batches."""

    @abc.abstractmethod
    def finish_run(
        self,
        run_id: str,
        status: RunStatus,
        *,
        error: str | None = None,
        metrics: dict[str, float] | None = None,
    ) -> Run:
        """End the run with a terminal status; `metrics` are merged into its final metrics."""

    @abc.abstractmethod
    def mark_interrupted(self, run_id: str, reason: str) -> bool:
        """RUNNING -> INTERRUPTED (its worker died); False if the run was no longer RUNNING."""

    @abc.abstractmethod
    def request_resume(self, run_id: str, *, executor: str | None = None) -> Run:
        """Queue a STOPPED or INTERRUPTED run again, at the back of the queue, dropping the metric
        points of its unfinished epoch (the resumed worker trains that epoch again). A FAILED run
        may resume too if it kept a checkpoint (`can_resume`); RunStateError for any other.
        `executor` hands it to another executor (a Ray run resumed where no cluster is configured)."""

    def can_resume(self, run: Run) -> bool:
        """Whether `run` may be resumed: STOPPED or INTERRUPTED, or FAILED with a checkpoint left
        in its folder (a full disk, a NaN after some good epochs); for the pages' Resume button."""
        if run.status.can_resume:
            return True
        return run.status is RunStatus.FAILED and has_checkpoint(self._run_folder(run.id))

    def _run_folder(self, run_id: str) -> Path:
        """The run's folder by name alone (no lookup): `<home>/runs/<id>`."""
        return self.home / "runs" / validate_run_id(run_id)

    @abc.abstractmethod
    def delete_run(self, run_id: str) -> None:
        """Remove the run, its metrics and its artifact folder; a RUNNING run must stop first."""

    @abc.abstractmethod
    def run_dir(self, run_id: str) -> Path:
        """Where the run's artifacts (checkpoints, saved model) are; a read: nothing is created."""

    def ensure_run_dir(self, run_id: str) -> Path:
        """The run's artifact folder, created if missing: for the one process that writes it."""
        path = self.run_dir(run_id)
        path.mkdir(parents=True, exist_ok=True)
        return path

    @abc.abstractmethod
    def close(self) -> None:
        """Release what the store holds open; the default holds nothing."""

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def running_runs(self) -> list[Run]:
        return self.list_runs([RunStatus.RUNNING])

    def resolve_run_id(self, prefix: str) -> str:
        """The full id of the one run whose id starts with `prefix` (>= 4 characters), for the CLI."""
        return _resolve(prefix, "run", [run.id for run in self.list_runs()])

    def resolve_sweep_id(self, prefix: str) -> str:
        """The full id of the one sweep whose id starts with `prefix` (>= 4 characters), for the CLI."""
        return _resolve(prefix, "sweep", [sweep.id for sweep in self.list_sweeps()])


def _resolve(prefix: str, what: str, ids: list[str]) -> str:
    candidate = prefix.strip().lower() if isinstance(prefix, str) else prefix
    if not isinstance(candidate, str) or not RUN_ID_PREFIX_PATTERN.fullmatch(candidate):
        raise RunNotFoundError(
            f"A {what} id prefix must be 4 to 10 hexadecimal characters. "
            f"Received: prefix={prefix!r}"
        )
    matches = [found for found in ids if found.startswith(candidate)]
    if not matches:
        raise RunNotFoundError(f"No {what} id starts with {candidate!r}.")
    if len(matches) > 1:
        raise RunNotFoundError(
            f"{what.capitalize()} id prefix {candidate!r} is ambiguous; it matches: {', '.join(sorted(matches))}. "
            "Type more characters."
        )
    return matches[0]

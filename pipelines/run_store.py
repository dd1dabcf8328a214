"""The run store: what every training run is, was and produced, shared by every process.

The dashboard, the CLI and the worker processes never talk to each other directly; they read
and write runs here. `RunStore` is the contract, `SQLiteRunStore` the one implementation, and
tests/test_run_store.py the suite any later implementation must pass.
"""
from __future__ import annotations

import abc
import contextlib
import dataclasses
import enum
import json
import os
import re
import shutil
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from pipelines import paths
from pipelines.errors import LayerlabError, RunNotFoundError, RunStateError

SCHEMA_VERSION = 1
METRIC_KINDS = ("batch", "epoch")
WORKER_STATES = ("starting", "idle", "busy")
_RUN_ID_PATTERN = re.compile(r"[0-9a-f]{10}")
_RUN_ID_PREFIX_PATTERN = re.compile(r"[0-9a-f]{4,10}")


class RunStatus(str, enum.Enum):
    """Where a run is in its life: queued, training, or one of four ways of having ended."""

    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    STOPPED = "STOPPED"
    FAILED = "FAILED"
    INTERRUPTED = "INTERRUPTED"

    def __str__(self) -> str:
        # A str-mixin Enum prints as "RunStatus.QUEUED" in f-strings since Python 3.11.
        return self.value

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL_STATUSES

    @property
    def is_active(self) -> bool:
        return self in (RunStatus.QUEUED, RunStatus.RUNNING)

    @property
    def can_resume(self) -> bool:
        """STOPPED and INTERRUPTED runs kept their checkpoints; the others have nothing to resume."""
        return self in (RunStatus.STOPPED, RunStatus.INTERRUPTED)


_TERMINAL_STATUSES = frozenset(
    {RunStatus.COMPLETED, RunStatus.STOPPED, RunStatus.FAILED, RunStatus.INTERRUPTED}
)


@dataclasses.dataclass(frozen=True)
class Progress:
    """How far a run has trained; 0 for anything not yet known."""

    epoch: int = 0
    total_epochs: int = 0
    step: int = 0
    steps_per_epoch: int = 0

    @property
    def fraction(self) -> float:
        """The share of all planned batches done, in [0, 1]; 0 while the plan is unknown."""
        if self.total_epochs <= 0:
            return 0.0
        within_epoch = self.step / self.steps_per_epoch if self.steps_per_epoch > 0 else 0.0
        return min(1.0, max(0.0, (self.epoch + within_epoch) / self.total_epochs))


@dataclasses.dataclass(frozen=True)
class Run:
    """One training run as the store last saw it: a snapshot, re-read it to see changes."""

    id: str
    name: str
    status: RunStatus
    dataset: str
    spec: dict
    created_at: float
    started_at: float | None
    finished_at: float | None
    heartbeat_at: float | None
    worker_pid: int | None
    error: str | None
    metrics: dict[str, float]
    progress: Progress
    epochs_done: int
    best_epoch: int | None
    stop_requested: bool
    resume_count: int
    stop_requested_at: float | None = None


@dataclasses.dataclass(frozen=True)
class MetricPoint:
    """One logged value. `step` is the batch index for batch points, steps_per_epoch (or 0) for
    epoch points; the store keeps insertion order, which is the order to plot them in."""

    kind: str
    epoch: int
    step: int
    name: str
    value: float
    timestamp: float

    def __post_init__(self) -> None:
        if self.kind not in METRIC_KINDS:
            raise LayerlabError(
                f"Metric point `kind` must be one of: {', '.join(METRIC_KINDS)}. "
                f"Received: kind={self.kind!r}"
            )


@dataclasses.dataclass(frozen=True)
class WorkerInfo:
    """A worker process as registered by the worker pool."""

    pid: int
    state: str
    run_id: str | None
    started_at: float
    heartbeat_at: float


def new_run_id() -> str:
    """10 hex characters: short enough to type, random enough not to collide in one home."""
    return uuid.uuid4().hex[:10]


def validate_run_id(run_id: Any) -> str:
    """Return `run_id` if it is well formed; ids become folder names, so nothing else may pass."""
    if not isinstance(run_id, str) or not _RUN_ID_PATTERN.fullmatch(run_id):
        raise RunNotFoundError(
            f"Run id must be 10 hexadecimal characters. Received: run_id={run_id!r}"
        )
    return run_id


def _validate_worker_state(state: str) -> str:
    if state not in WORKER_STATES:
        raise LayerlabError(
            f"Worker `state` must be one of: {', '.join(WORKER_STATES)}. Received: state={state!r}"
        )
    return state


def _epochs_from_spec(spec: dict) -> int:
    fit = spec.get("fit")
    epochs = fit.get("epochs") if isinstance(fit, dict) else None
    return epochs if isinstance(epochs, int) and not isinstance(epochs, bool) and epochs > 0 else 0


class RunStore(abc.ABC):
    """The contract every run store keeps; all methods are safe to call from many processes."""

    home: Path  # the Layerlab home the store belongs to (worker processes are started with it)

    @abc.abstractmethod
    def create_run(self, name: str, dataset: str, spec: dict) -> Run:
        """Queue a new run; an empty name becomes "<dataset> <date time>"."""

    @abc.abstractmethod
    def get_run(self, run_id: str) -> Run:
        """The run, or RunNotFoundError naming the id."""

    @abc.abstractmethod
    def list_runs(
        self, statuses: Iterable[RunStatus] | None = None, limit: int | None = None
    ) -> list[Run]:
        """Runs newest first, optionally only those with one of `statuses`."""

    @abc.abstractmethod
    def queue_position(self, run_id: str) -> int | None:
        """1-based place in the queue (next to be claimed is 1); None if the run is not queued."""

    @abc.abstractmethod
    def claim_next_run(self, worker_pid: int, max_running: int) -> Run | None:
        """Atomically move the oldest queued run to RUNNING for this worker.

        None if the queue is empty or `max_running` runs are already RUNNING. No two callers,
        in any processes, ever get the same run.
        """

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
    def request_resume(self, run_id: str) -> Run:
        """Queue a STOPPED or INTERRUPTED run again, at the back of the queue, dropping the metric
        points of its unfinished epoch (the resumed worker trains that epoch again)."""

    @abc.abstractmethod
    def delete_run(self, run_id: str) -> None:
        """Remove the run, its metrics and its artifact folder; a RUNNING run must stop first."""

    @abc.abstractmethod
    def run_dir(self, run_id: str) -> Path:
        """The run's artifact folder (checkpoints, saved model), created if missing."""

    @abc.abstractmethod
    def register_worker(self, pid: int, state: str = "starting") -> WorkerInfo:
        """Add (or, for a reused pid, replace) a worker in the registry."""

    @abc.abstractmethod
    def set_worker_state(self, pid: int, state: str, run_id: str | None = None) -> None:
        """Record what the worker is doing; counts as its heartbeat.

        Re-registers a worker the pool already forgot (e.g. one slow to import TensorFlow), so
        a live worker is never left out of the registry.
        """

    @abc.abstractmethod
    def worker_heartbeat(self, pid: int) -> bool:
        """Record that the worker is alive; False if it is not registered (nothing recorded)."""

    @abc.abstractmethod
    def list_workers(self) -> list[WorkerInfo]:
        """Registered workers, oldest first."""

    @abc.abstractmethod
    def remove_worker(self, pid: int) -> None:
        """Forget a worker; removing an unknown pid is not an error (it may have exited twice)."""

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
        candidate = prefix.strip().lower() if isinstance(prefix, str) else prefix
        if not isinstance(candidate, str) or not _RUN_ID_PREFIX_PATTERN.fullmatch(candidate):
            raise RunNotFoundError(
                "A run id prefix must be 4 to 10 hexadecimal characters. "
                f"Received: prefix={prefix!r}"
            )
        matches = [run.id for run in self.list_runs() if run.id.startswith(candidate)]
        if not matches:
            raise RunNotFoundError(f"No run id starts with {candidate!r}.")
        if len(matches) > 1:
            raise RunNotFoundError(
                f"Run id prefix {candidate!r} is ambiguous; it matches: {', '.join(sorted(matches))}. "
                "Type more characters."
            )
        return matches[0]


_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    dataset TEXT NOT NULL,
    spec TEXT NOT NULL,
    created_at REAL NOT NULL,
    queue_order INTEGER NOT NULL,
    started_at REAL,
    finished_at REAL,
    heartbeat_at REAL,
    worker_pid INTEGER,
    error TEXT,
    metrics TEXT NOT NULL DEFAULT '{}',
    epoch INTEGER NOT NULL DEFAULT 0,
    total_epochs INTEGER NOT NULL DEFAULT 0,
    step INTEGER NOT NULL DEFAULT 0,
    steps_per_epoch INTEGER NOT NULL DEFAULT 0,
    epochs_done INTEGER NOT NULL DEFAULT 0,
    best_epoch INTEGER,
    stop_requested REAL NOT NULL DEFAULT 0,  -- 0, or when the stop was asked for
    resume_count INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS runs_status_queue ON runs (status, queue_order);
CREATE INDEX IF NOT EXISTS runs_created ON runs (created_at);
CREATE TABLE IF NOT EXISTS metrics (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    step INTEGER NOT NULL,
    name TEXT NOT NULL,
    value REAL NOT NULL,
    timestamp REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS metrics_run ON metrics (run_id, id);
CREATE TABLE IF NOT EXISTS workers (
    pid INTEGER PRIMARY KEY,
    state TEXT NOT NULL,
    run_id TEXT,
    started_at REAL NOT NULL,
    heartbeat_at REAL NOT NULL
);
"""


class SQLiteRunStore(RunStore):
    """The run store in `<home>/runs.db` (WAL, so readers never wait for the training workers),
    with artifacts under `<home>/runs/<run_id>/`.

    Each thread of each process gets its own connection: sqlite3 connections must not be shared
    across threads or inherited across fork. Every read-then-write runs in a BEGIN IMMEDIATE
    transaction, which takes the database's write lock up front, so it is atomic across processes.
    """

    def __init__(self, home: str | os.PathLike | None = None) -> None:
        self.home = paths.home_dir(home)
        self.db_path = self.home / "runs.db"
        self._local = threading.local()
        try:
            self._init_schema()
        except BaseException:
            self.close()
            raise

    # -- connections and transactions ---------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        local = self._local
        if getattr(local, "pid", None) != os.getpid():
            # New thread, or a forked child holding its parent's connection: never reuse that one.
            local.connection = self._connect()
            local.pid = os.getpid()
        return local.connection

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.db_path, timeout=10.0, isolation_level=None)
        connection.row_factory = sqlite3.Row
        connection.execute("PRAGMA synchronous=NORMAL")
        return connection

    def close(self) -> None:
        """Close this thread's connection (other threads' close when their thread ends)."""
        connection = getattr(self._local, "connection", None)
        if connection is not None and self._local.pid == os.getpid():
            connection.close()
        self._local.__dict__.clear()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        connection = self._connection()
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield connection
        except BaseException:
            if connection.in_transaction:  # SQLite may already have rolled back on some errors.
                connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    def _init_schema(self) -> None:
        connection = self._connection()
        mode = connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise LayerlabError(
                f"The run store needs SQLite's WAL mode, which {self.db_path} does not support "
                f"(journal_mode={mode!r}). Put LAYERLAB_HOME on a local disk."
            )
        with self._write() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise LayerlabError(
                    f"{self.db_path} has schema version {version}, newer than this Layerlab "
                    f"understands ({SCHEMA_VERSION}). Upgrade Layerlab or use another home."
                )
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    # -- helpers ------------------------------------------------------------------------------

    def _run_path(self, run_id: str) -> Path:
        return self.home / "runs" / validate_run_id(run_id)

    def _fetch_row(self, db: sqlite3.Connection, run_id: str) -> sqlite3.Row:
        row = db.execute("SELECT * FROM runs WHERE id = ?", (validate_run_id(run_id),)).fetchone()
        if row is None:
            raise RunNotFoundError(f"No run with id {run_id!r} in {self.db_path}.")
        return row

    def _require_run(self, db: sqlite3.Connection, run_id: str) -> None:
        if db.execute("SELECT 1 FROM runs WHERE id = ?", (validate_run_id(run_id),)).fetchone() is None:
            raise RunNotFoundError(f"No run with id {run_id!r} in {self.db_path}.")

    def _update_existing(self, run_id: str, sql: str, params: tuple) -> None:
        """Run a single-row UPDATE keyed on the id (the last parameter); missing runs raise."""
        validate_run_id(run_id)
        if self._connection().execute(sql, params).rowcount == 0:
            raise RunNotFoundError(f"No run with id {run_id!r} in {self.db_path}.")

    @staticmethod
    def _next_queue_order(db: sqlite3.Connection) -> int:
        # A counter, not a timestamp: two runs queued in the same clock tick still keep order.
        return db.execute("SELECT COALESCE(MAX(queue_order), 0) + 1 FROM runs").fetchone()[0]

    @staticmethod
    def _to_run(row: sqlite3.Row) -> Run:
        return Run(
            id=row["id"],
            name=row["name"],
            status=RunStatus(row["status"]),
            dataset=row["dataset"],
            spec=json.loads(row["spec"]),
            created_at=row["created_at"],
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            heartbeat_at=row["heartbeat_at"],
            worker_pid=row["worker_pid"],
            error=row["error"],
            metrics=json.loads(row["metrics"]),
            progress=Progress(
                epoch=row["epoch"],
                total_epochs=row["total_epochs"],
                step=row["step"],
                steps_per_epoch=row["steps_per_epoch"],
            ),
            epochs_done=row["epochs_done"],
            best_epoch=row["best_epoch"],
            stop_requested=bool(row["stop_requested"]),
            resume_count=row["resume_count"],
            # The flag column holds the time of the request (1 in stores written before that).
            stop_requested_at=float(row["stop_requested"]) if row["stop_requested"] else None,
        )

    # -- runs ---------------------------------------------------------------------------------

    def create_run(self, name: str, dataset: str, spec: dict) -> Run:
        if not isinstance(spec, dict):
            raise LayerlabError(f"A run's `spec` must be a dict. Received: spec={spec!r}")
        try:
            spec_json = json.dumps(spec)
        except (TypeError, ValueError) as error:
            raise LayerlabError(f"A run's `spec` must be plain JSON data: {error}") from None
        now = time.time()
        name = (name or "").strip() or f"{dataset} {time.strftime('%b %d %H:%M:%S', time.localtime(now))}"
        with self._write() as db:
            while True:
                run_id = new_run_id()
                try:
                    db.execute(
                        "INSERT INTO runs (id, name, status, dataset, spec, created_at, queue_order,"
                        " total_epochs) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (run_id, name, RunStatus.QUEUED.value, dataset, spec_json, now,
                         self._next_queue_order(db), _epochs_from_spec(spec)),
                    )
                    break
                except sqlite3.IntegrityError:
                    continue  # 40 random bits collided with an existing id: draw again.
            return self._to_run(self._fetch_row(db, run_id))

    def get_run(self, run_id: str) -> Run:
        return self._to_run(self._fetch_row(self._connection(), run_id))

    def list_runs(
        self, statuses: Iterable[RunStatus] | None = None, limit: int | None = None
    ) -> list[Run]:
        sql, params = "SELECT * FROM runs", []
        if statuses is not None:
            wanted = [RunStatus(status).value for status in statuses]
            if not wanted:
                return []
            sql += f" WHERE status IN ({', '.join('?' * len(wanted))})"
            params += wanted
        sql += " ORDER BY created_at DESC, rowid DESC"
        if limit is not None:
            if not isinstance(limit, int) or limit < 0:
                raise LayerlabError(f"`limit` must be a non-negative integer. Received: limit={limit!r}")
            sql += " LIMIT ?"
            params.append(limit)
        return [self._to_run(row) for row in self._connection().execute(sql, params)]

    def queue_position(self, run_id: str) -> int | None:
        row = self._connection().execute(
            "SELECT r.status, (SELECT COUNT(*) FROM runs q WHERE q.status = ?"
            " AND q.queue_order <= r.queue_order) AS position FROM runs r WHERE r.id = ?",
            (RunStatus.QUEUED.value, validate_run_id(run_id)),
        ).fetchone()
        if row is None:
            raise RunNotFoundError(f"No run with id {run_id!r} in {self.db_path}.")
        return row["position"] if row["status"] == RunStatus.QUEUED.value else None

    def claim_next_run(self, worker_pid: int, max_running: int) -> Run | None:
        if not isinstance(max_running, int) or max_running < 0:
            raise LayerlabError(
                f"`max_running` must be a non-negative integer. Received: max_running={max_running!r}"
            )
        now = time.time()
        with self._write() as db:
            running = db.execute(
                "SELECT COUNT(*) FROM runs WHERE status = ?", (RunStatus.RUNNING.value,)
            ).fetchone()[0]
            if running >= max_running:
                return None
            row = db.execute(
                "SELECT id FROM runs WHERE status = ? ORDER BY queue_order LIMIT 1",
                (RunStatus.QUEUED.value,),
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE runs SET status = ?, worker_pid = ?, started_at = COALESCE(started_at, ?),"
                " heartbeat_at = ?, stop_requested = 0 WHERE id = ?",
                (RunStatus.RUNNING.value, worker_pid, now, now, row["id"]),
            )
            return self._to_run(self._fetch_row(db, row["id"]))

    def heartbeat(self, run_id: str) -> None:
        self._update_existing(run_id, "UPDATE runs SET heartbeat_at = ? WHERE id = ?", (time.time(), run_id))

    def update_progress(self, run_id: str, progress: Progress) -> None:
        self._update_existing(
            run_id,
            "UPDATE runs SET epoch = ?, total_epochs = ?, step = ?, steps_per_epoch = ?,"
            " heartbeat_at = ? WHERE id = ?",
            (progress.epoch, progress.total_epochs, progress.step, progress.steps_per_epoch,
             time.time(), run_id),
        )

    def set_epochs_done(self, run_id: str, epochs_done: int, best_epoch: int | None) -> None:
        self._update_existing(
            run_id, "UPDATE runs SET epochs_done = ?, best_epoch = ? WHERE id = ?",
            (epochs_done, best_epoch, run_id),
        )

    # -- metrics ------------------------------------------------------------------------------

    def log_metrics(self, run_id: str, points: Sequence[MetricPoint]) -> None:
        with self._write() as db:
            self._require_run(db, run_id)
            db.executemany(
                "INSERT INTO metrics (run_id, kind, epoch, step, name, value, timestamp)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(run_id, p.kind, p.epoch, p.step, p.name, float(p.value), p.timestamp) for p in points],
            )

    def get_metrics_since(
        self, run_id: str, after_id: int = 0, kind: str | None = None
    ) -> tuple[list[MetricPoint], int]:
        sql, params = "SELECT * FROM metrics WHERE run_id = ? AND id > ?", [run_id, after_id]
        if kind is not None:
            if kind not in METRIC_KINDS:
                raise LayerlabError(
                    f"Metric `kind` must be one of: {', '.join(METRIC_KINDS)}. Received: kind={kind!r}"
                )
            sql += " AND kind = ?"
            params.append(kind)
        db = self._connection()
        self._require_run(db, run_id)
        rows = db.execute(sql + " ORDER BY id", params).fetchall()
        points = [
            MetricPoint(kind=r["kind"], epoch=r["epoch"], step=r["step"], name=r["name"],
                        value=r["value"], timestamp=r["timestamp"])
            for r in rows
        ]
        return points, (rows[-1]["id"] if rows else after_id)

    def delete_metrics_from_epoch(self, run_id: str, epoch: int) -> int:
        with self._write() as db:
            self._require_run(db, run_id)
            return db.execute(
                "DELETE FROM metrics WHERE run_id = ? AND epoch >= ?", (run_id, epoch)
            ).rowcount

    # -- status changes -----------------------------------------------------------------------

    def request_stop(self, run_id: str) -> Run:
        with self._write() as db:
            status = RunStatus(self._fetch_row(db, run_id)["status"])
            if status is RunStatus.RUNNING:
                db.execute("UPDATE runs SET stop_requested = ? WHERE id = ? AND stop_requested = 0",
                           (time.time(), run_id))
            elif status is RunStatus.QUEUED:
                db.execute(
                    "UPDATE runs SET status = ?, finished_at = ?, stop_requested = ? WHERE id = ?",
                    (RunStatus.STOPPED.value, time.time(), time.time(), run_id),
                )
            else:
                raise RunStateError(
                    f"Run {run_id} is {status.value}; only QUEUED or RUNNING runs can be stopped"
                )
            return self._to_run(self._fetch_row(db, run_id))

    def is_stop_requested(self, run_id: str) -> bool:
        return bool(self._fetch_row(self._connection(), run_id)["stop_requested"])

    def finish_run(
        self,
        run_id: str,
        status: RunStatus,
        *,
        error: str | None = None,
        metrics: dict[str, float] | None = None,
    ) -> Run:
        received = status
        try:
            status = RunStatus(status)
        except ValueError:
            status = None
        if status is None or not status.is_terminal:
            raise RunStateError(
                "A run can only finish as one of: "
                f"{', '.join(s.value for s in RunStatus if s.is_terminal)}. "
                f"Received: status={str(received)!r}"
            )
        with self._write() as db:
            merged = json.loads(self._fetch_row(db, run_id)["metrics"])
            merged.update({name: float(value) for name, value in (metrics or {}).items()})
            db.execute(
                "UPDATE runs SET status = ?, finished_at = ?, error = ?, metrics = ?,"
                " worker_pid = NULL WHERE id = ?",
                (status.value, time.time(), error, json.dumps(merged), run_id),
            )
            return self._to_run(self._fetch_row(db, run_id))

    def mark_interrupted(self, run_id: str, reason: str) -> bool:
        with self._write() as db:
            self._require_run(db, run_id)
            return db.execute(
                "UPDATE runs SET status = ?, error = ?, finished_at = ?, worker_pid = NULL"
                " WHERE id = ? AND status = ?",
                (RunStatus.INTERRUPTED.value, reason, time.time(), run_id, RunStatus.RUNNING.value),
            ).rowcount == 1

    def request_resume(self, run_id: str) -> Run:
        with self._write() as db:
            status = RunStatus(self._fetch_row(db, run_id)["status"])
            if not status.can_resume:
                raise RunStateError(
                    f"Run {run_id} is {status.value}; only STOPPED or INTERRUPTED runs can be resumed"
                )
            db.execute("DELETE FROM metrics WHERE run_id = ? AND epoch >= ?",
                       (run_id, self._fetch_row(db, run_id)["epochs_done"]))
            db.execute(
                "UPDATE runs SET status = ?, error = NULL, finished_at = NULL, stop_requested = 0,"
                " worker_pid = NULL, resume_count = resume_count + 1, queue_order = ? WHERE id = ?",
                (RunStatus.QUEUED.value, self._next_queue_order(db), run_id),
            )
            return self._to_run(self._fetch_row(db, run_id))

    def delete_run(self, run_id: str) -> None:
        with self._write() as db:
            status = RunStatus(self._fetch_row(db, run_id)["status"])
            if status is RunStatus.RUNNING:
                raise RunStateError(
                    f"Run {run_id} is RUNNING; stop it and wait for it to end before deleting it"
                )
            db.execute("DELETE FROM metrics WHERE run_id = ?", (run_id,))
            db.execute("DELETE FROM runs WHERE id = ?", (run_id,))
        shutil.rmtree(self._run_path(run_id), ignore_errors=True)

    def run_dir(self, run_id: str) -> Path:
        path = self._run_path(run_id)
        self._require_run(self._connection(), run_id)
        path.mkdir(parents=True, exist_ok=True)
        return path

    # -- workers ------------------------------------------------------------------------------

    @staticmethod
    def _to_worker(row: sqlite3.Row) -> WorkerInfo:
        return WorkerInfo(pid=row["pid"], state=row["state"], run_id=row["run_id"],
                          started_at=row["started_at"], heartbeat_at=row["heartbeat_at"])

    def register_worker(self, pid: int, state: str = "starting") -> WorkerInfo:
        now = time.time()
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO workers (pid, state, run_id, started_at, heartbeat_at)"
                " VALUES (?, ?, NULL, ?, ?)",
                (pid, _validate_worker_state(state), now, now),
            )
            return self._to_worker(db.execute("SELECT * FROM workers WHERE pid = ?", (pid,)).fetchone())

    def set_worker_state(self, pid: int, state: str, run_id: str | None = None) -> None:
        _validate_worker_state(state)
        if run_id is not None:
            validate_run_id(run_id)
        now = time.time()
        self._connection().execute(
            "INSERT INTO workers (pid, state, run_id, started_at, heartbeat_at) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (pid) DO UPDATE SET state = excluded.state, run_id = excluded.run_id,"
            " heartbeat_at = excluded.heartbeat_at",
            (pid, state, run_id, now, now),
        )

    def worker_heartbeat(self, pid: int) -> bool:
        return self._connection().execute(
            "UPDATE workers SET heartbeat_at = ? WHERE pid = ?", (time.time(), pid)
        ).rowcount == 1

    def list_workers(self) -> list[WorkerInfo]:
        rows = self._connection().execute("SELECT * FROM workers ORDER BY started_at, pid")
        return [self._to_worker(row) for row in rows]

    def remove_worker(self, pid: int) -> None:
        self._connection().execute("DELETE FROM workers WHERE pid = ?", (pid,))

"""The worker registry: which worker processes exist and what each is doing, shared by every process.

Kept apart from the run store (a tracking store has no business knowing how workers are
registered) in a database of its own, `<home>/workers.db`; the scheduler reads both.
"""
from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

from pipelines import paths
from pipelines.errors import LayerlabError
from pipelines.runs.entities import validate_run_id
from pipelines.runs.sqlite_db import SQLiteDatabase

WORKER_STATES = ("starting", "idle", "busy")
SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS workers (
    pid INTEGER PRIMARY KEY,
    state TEXT NOT NULL,
    run_id TEXT,
    started_at REAL NOT NULL,
    heartbeat_at REAL NOT NULL
);
"""


@dataclasses.dataclass(frozen=True)
class WorkerInfo:
    """A worker process as the registry last saw it."""

    pid: int
    state: str
    run_id: str | None
    started_at: float
    heartbeat_at: float


def _validate_worker_state(state: str) -> str:
    if state not in WORKER_STATES:
        raise LayerlabError(
            f"Worker `state` must be one of: {', '.join(WORKER_STATES)}. Received: state={state!r}"
        )
    return state


class WorkerRegistry:
    """Registered workers of one Layerlab home; every method is safe from many processes."""

    def __init__(self, home: str | os.PathLike | None = None) -> None:
        self.home: Path = paths.home_dir(home)
        self._db = SQLiteDatabase(self.home / "workers.db", _SCHEMA, SCHEMA_VERSION, what="worker registry")

    def close(self) -> None:
        self._db.close()

    @staticmethod
    def _to_worker(row) -> WorkerInfo:
        return WorkerInfo(pid=row["pid"], state=row["state"], run_id=row["run_id"],
                          started_at=row["started_at"], heartbeat_at=row["heartbeat_at"])

    def register(self, pid: int, state: str = "starting") -> WorkerInfo:
        """Add (or, for a reused pid, replace) a worker."""
        now = time.time()
        with self._db.write() as db:
            db.execute(
                "INSERT OR REPLACE INTO workers (pid, state, run_id, started_at, heartbeat_at)"
                " VALUES (?, ?, NULL, ?, ?)",
                (pid, _validate_worker_state(state), now, now),
            )
            return self._to_worker(db.execute("SELECT * FROM workers WHERE pid = ?", (pid,)).fetchone())

    def set_state(self, pid: int, state: str, run_id: str | None = None) -> None:
        """Record what the worker is doing; counts as its heartbeat.

        Re-registers a worker the pool already forgot (e.g. one slow to import TensorFlow), so
        a live worker is never left out of the registry.
        """
        _validate_worker_state(state)
        if run_id is not None:
            validate_run_id(run_id)
        now = time.time()
        self._db.connection().execute(
            "INSERT INTO workers (pid, state, run_id, started_at, heartbeat_at) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (pid) DO UPDATE SET state = excluded.state, run_id = excluded.run_id,"
            " heartbeat_at = excluded.heartbeat_at",
            (pid, state, run_id, now, now),
        )

    def heartbeat(self, pid: int) -> bool:
        """Record that the worker is alive; False if it is not registered (nothing recorded)."""
        return self._db.connection().execute(
            "UPDATE workers SET heartbeat_at = ? WHERE pid = ?", (time.time(), pid)
        ).rowcount == 1

    def list(self) -> list[WorkerInfo]:
        """Registered workers, oldest first."""
        rows = self._db.connection().execute("SELECT * FROM workers ORDER BY started_at, pid")
        return [self._to_worker(row) for row in rows]

    def remove(self, pid: int) -> None:
        """Forget a worker; removing an unknown pid is not an error (it may have exited twice)."""
        self._db.connection().execute("DELETE FROM workers WHERE pid = ?", (pid,))

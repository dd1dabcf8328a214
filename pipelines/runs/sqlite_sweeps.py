"""The sweeps' part of the SQLite run store: a sweep's row and its runs, queued in one transaction,
and cancelling it. A mixin of SQLiteRunStore, which gives it the database and the run helpers.
"""
from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from typing import Any

from pipelines.errors import LayerlabError, RunNotFoundError
from pipelines.runs.entities import PlannedRun, RunStatus, Sweep, new_run_id, validate_executor, validate_sweep_id
from pipelines.runs.records import write_sweep_record
from pipelines.runs.sqlite_schema import insert_sweep, sweep_from_row


class SweepTables:
    """Sweeps in the `sweeps` table, each run of one in `runs` with its sweep id; every change is
    recorded in `<home>/sweeps/<id>.json` and the runs' run.json, as runs' changes are."""

    def _fetch_sweep(self, db: sqlite3.Connection, sweep_id: str) -> Sweep:
        row = db.execute("SELECT * FROM sweeps WHERE id = ?", (validate_sweep_id(sweep_id),)).fetchone()
        if row is None:
            raise RunNotFoundError(f"No sweep with id {sweep_id!r} in {self.db_path}.")
        return sweep_from_row(row)

    def _recorded_sweep(self, db: sqlite3.Connection, sweep_id: str) -> Sweep:
        """The sweep as it now is, after writing `<home>/sweeps/<id>.json` (inside the transaction)."""
        sweep = self._fetch_sweep(db, sweep_id)
        with self._record_errors(self.home / "sweeps"):
            write_sweep_record(self.home, sweep)
        return sweep

    def create_sweep(self, name: str, dataset: str, spec: dict, axes: Sequence[tuple[str, Sequence[Any]]],
                     runs: Sequence[PlannedRun], *, repeats: int = 1, executor: str = "local") -> Sweep:
        if not runs:
            raise LayerlabError("A sweep needs at least one run.")
        if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
            raise LayerlabError(f"`repeats` must be a positive integer. Received: repeats={repeats!r}")
        now = time.time()
        name = (name or "").strip() or f"sweep {time.strftime('%b %d %H:%M:%S', time.localtime(now))}"
        axes = tuple((str(setting), tuple(values)) for setting, values in axes)
        with self._write() as db:
            while True:
                sweep = Sweep(id=new_run_id(), name=name, dataset=dataset, spec=spec, axes=axes, repeats=repeats,
                              created_at=now, executor=validate_executor(executor))
                try:
                    insert_sweep(db, sweep)
                    break
                except sqlite3.IntegrityError:
                    continue
                except (TypeError, ValueError) as error:
                    raise LayerlabError(f"A sweep's spec and axes must be plain JSON data: {error}") from None
            # A microsecond apart: a rebuild, which knows no queue order, queues them by creation time.
            run_ids = [self._insert_run(db, planned.name, dataset, planned.spec, now=now + index * 1e-6,
                                        total_epochs=planned.total_epochs, sweep_id=sweep.id,
                                        sweep_settings=planned.sweep_settings, repeat_group=planned.repeat_group,
                                        seed=planned.seed, executor=executor)
                       for index, planned in enumerate(runs)]
            for run_id in run_ids:
                self._recorded(db, run_id)
            return self._recorded_sweep(db, sweep.id)

    def get_sweep(self, sweep_id: str) -> Sweep:
        return self._fetch_sweep(self._connection(), sweep_id)

    def list_sweeps(self) -> list[Sweep]:
        rows = self._connection().execute("SELECT * FROM sweeps ORDER BY created_at DESC, rowid DESC")
        return [sweep_from_row(row) for row in rows]

    def cancel_sweep(self, sweep_id: str) -> Sweep:
        now = time.time()
        with self._write() as db:
            self._fetch_sweep(db, sweep_id)
            db.execute("UPDATE sweeps SET cancelled_at = COALESCE(cancelled_at, ?) WHERE id = ?", (now, sweep_id))
            queued = [row["id"] for row in db.execute(
                "SELECT id FROM runs WHERE sweep_id = ? AND status = ?", (sweep_id, RunStatus.QUEUED.value))]
            db.execute(
                "UPDATE runs SET status = ?, finished_at = ?, stop_requested = ?, error = ?"
                " WHERE sweep_id = ? AND status = ?",
                (RunStatus.STOPPED.value, now, now, "Its sweep was cancelled before it started.", sweep_id,
                 RunStatus.QUEUED.value))
            db.execute("UPDATE runs SET stop_requested = ? WHERE sweep_id = ? AND status = ? AND stop_requested = 0",
                       (now, sweep_id, RunStatus.RUNNING.value))
            for run_id in queued:
                self._recorded(db, run_id)
            return self._recorded_sweep(db, sweep_id)

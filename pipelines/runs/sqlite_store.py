"""The run store in SQLite: `<home>/runs.db`, with each run's artifacts under `<home>/runs/<id>/`.

Every status change also rewrites the run's `run.json` (records.py) in the same transaction, so
that the run folders alone can rebuild the store (sqlite_recovery.py). The store is created only
in a home without run folders: over existing runs a missing store is an error, never an empty one.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pipelines import paths
from pipelines.errors import DiskFullError, LayerlabError, RunNotFoundError, RunStateError
from pipelines.runs.artifacts import disk_full_message, is_disk_full
from pipelines.runs.entities import (METRIC_KINDS, MetricPoint, Progress, Run, RunStatus, clean_name, clean_note,
                                     clean_tags, new_run_id, spec_seed, validate_executor, validate_run_id,
                                     validate_sweep_id)
from pipelines.runs.records import write_run_record
from pipelines.runs.sqlite_db import SQLiteDatabase
from pipelines.runs.sqlite_recovery import (REBUILD_HINT, check_store, missing_store_problem,
                                            rebuild_store)
from pipelines.runs.sqlite_schema import MIGRATIONS, SCHEMA, SCHEMA_VERSION, insert_points, run_from_row
from pipelines.runs.sqlite_sweeps import SweepTables
from pipelines.runs.store import RunStore

__all__ = ["SCHEMA_VERSION", "SQLiteRunStore", "check_store", "rebuild_store"]


class SQLiteRunStore(SweepTables, RunStore):
    """The run store in `<home>/runs.db` (see SQLiteDatabase for how processes share it), with
    artifacts under `<home>/runs/<run_id>/`; its sweeps' part is SweepTables."""

    def __init__(self, home: str | os.PathLike | None = None) -> None:
        self.home = paths.home_dir(home)
        self.db_path = self.home / "runs.db"
        self._db = SQLiteDatabase(self.db_path, SCHEMA, SCHEMA_VERSION, what="run store",
                                  refuse_create=lambda: missing_store_problem(self.home), recovery=REBUILD_HINT,
                                  migrations=MIGRATIONS)
        self._connection = self._db.connection
        self._write = self._db.write

    def close(self) -> None:
        """Close this thread's connection (other threads' close when their thread ends)."""
        self._db.close()

    # -- helpers ------------------------------------------------------------------------------

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

    def _recorded(self, db: sqlite3.Connection, run_id: str) -> Run:
        """The run as it now is, after writing it to its run.json (inside the caller's transaction,
        so a run.json that cannot be written rolls the change back)."""
        run = run_from_row(self._fetch_row(db, run_id))
        folder = self._run_folder(run_id)
        with self._record_errors(folder):
            write_run_record(folder, run)
        return run

    @contextlib.contextmanager
    def _record_errors(self, folder: Path):
        """A record file that cannot be written is a LayerlabError (DiskFullError on a full disk)."""
        try:
            yield
        except OSError as exc:
            if is_disk_full(exc):
                raise DiskFullError(disk_full_message(folder, "try again")) from exc
            raise LayerlabError(f"Cannot write the record in {folder}: {exc.strerror or exc}") from exc

    def _update_recorded(self, run_id: str, sql: str, params: tuple) -> Run:
        """A single-row UPDATE keyed on the id (the last parameter), recorded in run.json."""
        with self._write() as db:
            self._require_run(db, run_id)
            db.execute(sql, params)
            return self._recorded(db, run_id)

    @staticmethod
    def _next_queue_order(db: sqlite3.Connection) -> int:
        # A counter, not a timestamp: two runs queued in the same clock tick still keep order.
        return db.execute("SELECT COALESCE(MAX(queue_order), 0) + 1 FROM runs").fetchone()[0]

    # -- runs ---------------------------------------------------------------------------------

    @staticmethod
    def _spec_json(spec: Any) -> str:
        if not isinstance(spec, dict):
            raise LayerlabError(f"A run's `spec` must be a dict. Received: spec={spec!r}")
        try:
            return json.dumps(spec)
        except (TypeError, ValueError) as error:
            raise LayerlabError(f"A run's `spec` must be plain JSON data: {error}") from None

    def _insert_run(self, db: sqlite3.Connection, name: str, dataset: str, spec: dict, *, now: float,
                    total_epochs: int, tags: Sequence[str] = (), note: str = "", sweep_id: str | None = None,
                    sweep_settings: dict | None = None, repeat_group: str | None = None,
                    seed: int | None = None, executor: str = "local") -> str:
        """Insert a QUEUED run at the back of the queue; returns its id."""
        spec_json = self._spec_json(spec)
        try:
            settings_json = json.dumps(sweep_settings or {})
        except (TypeError, ValueError) as error:
            raise LayerlabError(f"A run's sweep settings must be plain JSON data: {error}") from None
        name = (name or "").strip() or f"{dataset} {time.strftime('%b %d %H:%M:%S', time.localtime(now))}"
        tags_json = json.dumps(list(clean_tags(tags)))
        note = clean_note(note)
        seed = spec_seed(spec) if seed is None else seed
        while True:
            run_id = new_run_id()
            try:
                db.execute(
                    "INSERT INTO runs (id, name, status, dataset, spec, created_at, queue_order, total_epochs,"
                    " tags, note, sweep_id, sweep_settings, repeat_group, seed, executor)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (run_id, name, RunStatus.QUEUED.value, dataset, spec_json, now, self._next_queue_order(db),
                     total_epochs, tags_json, note, sweep_id, settings_json, repeat_group, seed,
                     validate_executor(executor)),
                )
                return run_id
            except sqlite3.IntegrityError:
                continue  # 40 random bits collided with an existing id: draw again.

    def create_run(self, name: str, dataset: str, spec: dict, *, total_epochs: int = 0,
                   tags: Sequence[str] = (), note: str = "", repeat_group: str | None = None,
                   executor: str = "local") -> Run:
        with self._write() as db:
            run_id = self._insert_run(db, name, dataset, spec, now=time.time(), total_epochs=total_epochs,
                                      tags=tags, note=note, repeat_group=repeat_group, executor=executor)
            return self._recorded(db, run_id)

    def add_finished_run(self, name: str, dataset: str, spec: dict, files: Path, *,
                         metrics: dict[str, float] | None = None, tags: Sequence[str] = (),
                         note: str = "") -> Run:
        now = time.time()
        metrics_json = json.dumps({key: float(value) for key, value in (metrics or {}).items()})
        with self._write() as db:
            run_id = self._insert_run(db, name, dataset, spec, now=now, total_epochs=0, tags=tags, note=note)
            db.execute("UPDATE runs SET status = ?, started_at = ?, finished_at = ?, metrics = ? WHERE id = ?",
                       (RunStatus.COMPLETED.value, now, now, metrics_json, run_id))
            folder = self._run_folder(run_id)
            try:
                with self._record_errors(folder):
                    folder.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(files, folder)
                return self._recorded(db, run_id)
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)  # the row is rolled back: no run, no folder
                raise

    def get_run(self, run_id: str) -> Run:
        return run_from_row(self._fetch_row(self._connection(), run_id))

    def list_runs(
        self, statuses: Iterable[RunStatus] | None = None, limit: int | None = None, *,
        sweep_id: str | None = None, repeat_group: str | None = None,
    ) -> list[Run]:
        conditions, params = [], []
        if statuses is not None:
            wanted = [RunStatus(status).value for status in statuses]
            if not wanted:
                return []
            conditions.append(f"status IN ({', '.join('?' * len(wanted))})")
            params += wanted
        if sweep_id is not None:
            conditions.append("sweep_id = ?")
            params.append(validate_sweep_id(sweep_id))
        if repeat_group is not None:
            conditions.append("repeat_group = ?")
            params.append(str(repeat_group))
        sql = "SELECT * FROM runs" + (f" WHERE {' AND '.join(conditions)}" if conditions else "")
        sql += " ORDER BY created_at DESC, rowid DESC"
        if limit is not None:
            if not isinstance(limit, int) or limit < 0:
                raise LayerlabError(f"`limit` must be a non-negative integer. Received: limit={limit!r}")
            sql += " LIMIT ?"
            params.append(limit)
        return [run_from_row(row) for row in self._connection().execute(sql, params)]

    def queue_position(self, run_id: str) -> int | None:
        row = self._connection().execute(
            "SELECT r.status, (SELECT COUNT(*) FROM runs q WHERE q.status = ? AND q.executor = r.executor"
            " AND q.queue_order <= r.queue_order) AS position FROM runs r WHERE r.id = ?",
            (RunStatus.QUEUED.value, validate_run_id(run_id)),
        ).fetchone()
        if row is None:
            raise RunNotFoundError(f"No run with id {run_id!r} in {self.db_path}.")
        return row["position"] if row["status"] == RunStatus.QUEUED.value else None

    def claim_next_run(self, worker_pid: int, max_running: int, *, executor: str = "local",
                       sweep_id: str | None = None) -> Run | None:
        if not isinstance(max_running, int) or max_running < 0:
            raise LayerlabError(
                f"`max_running` must be a non-negative integer. Received: max_running={max_running!r}"
            )
        validate_executor(executor)
        if sweep_id is not None:
            validate_sweep_id(sweep_id)
        now = time.time()
        with self._write() as db:
            running = db.execute(
                "SELECT COUNT(*) FROM runs WHERE status = ? AND executor = ?", (RunStatus.RUNNING.value, executor)
            ).fetchone()[0]
            if running >= max_running:
                return None
            row = db.execute(
                "SELECT id, sweep_id FROM runs WHERE status = ? AND executor = ? ORDER BY queue_order LIMIT 1",
                (RunStatus.QUEUED.value, executor),
            ).fetchone()
            if row is None or (sweep_id is not None and row["sweep_id"] != sweep_id):
                return None
            db.execute(
                "UPDATE runs SET status = ?, worker_pid = ?, started_at = COALESCE(started_at, ?),"
                " heartbeat_at = ?, stop_requested = 0 WHERE id = ?",
                (RunStatus.RUNNING.value, worker_pid, now, now, row["id"]),
            )
            return self._recorded(db, row["id"])

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
            insert_points(db, run_id, list(points))

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
            return self._recorded(db, run_id) if status is RunStatus.QUEUED else run_from_row(
                self._fetch_row(db, run_id))

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
            return self._recorded(db, run_id)

    def mark_interrupted(self, run_id: str, reason: str) -> bool:
        with self._write() as db:
            self._require_run(db, run_id)
            changed = db.execute(
                "UPDATE runs SET status = ?, error = ?, finished_at = ?, worker_pid = NULL"
                " WHERE id = ? AND status = ?",
                (RunStatus.INTERRUPTED.value, reason, time.time(), run_id, RunStatus.RUNNING.value),
            ).rowcount == 1
            if changed:
                self._recorded(db, run_id)
            return changed

    def request_resume(self, run_id: str, *, executor: str | None = None) -> Run:
        if executor is not None:
            validate_executor(executor)
        with self._write() as db:
            run = run_from_row(self._fetch_row(db, run_id))
            if not self.can_resume(run):
                extra = " (this one has none)" if run.status is RunStatus.FAILED else ""
                raise RunStateError(
                    f"Run {run_id} is {run.status.value}; only STOPPED or INTERRUPTED runs can be resumed, "
                    f"or a FAILED one that kept a checkpoint{extra}"
                )
            db.execute("DELETE FROM metrics WHERE run_id = ? AND epoch >= ?", (run_id, run.epochs_done))
            db.execute(
                "UPDATE runs SET status = ?, error = NULL, finished_at = NULL, stop_requested = 0,"
                " worker_pid = NULL, resume_count = resume_count + 1, queue_order = ?,"
                " executor = COALESCE(?, executor) WHERE id = ?",
                (RunStatus.QUEUED.value, self._next_queue_order(db), executor, run_id),
            )
            return self._recorded(db, run_id)

    # -- for comparing runs -------------------------------------------------------------------

    def rename_run(self, run_id: str, name: str) -> Run:
        return self._update_recorded(run_id, "UPDATE runs SET name = ? WHERE id = ?", (clean_name(name), run_id))

    def set_tags(self, run_id: str, tags: Sequence[str]) -> Run:
        return self._update_recorded(run_id, "UPDATE runs SET tags = ? WHERE id = ?",
                                     (json.dumps(list(clean_tags(tags))), run_id))

    def set_note(self, run_id: str, note: str) -> Run:
        return self._update_recorded(run_id, "UPDATE runs SET note = ? WHERE id = ?", (clean_note(note), run_id))

    def set_repeat_group(self, run_id: str, group: str | None) -> Run:
        if group is not None and (not isinstance(group, str) or not group.strip() or len(group) > 64):
            raise LayerlabError(f"A repeat group is a short text (at most 64 characters). Received: group={group!r}")
        return self._update_recorded(run_id, "UPDATE runs SET repeat_group = ? WHERE id = ?", (group, run_id))

    def delete_run(self, run_id: str) -> None:
        with self._write() as db:
            status = RunStatus(self._fetch_row(db, run_id)["status"])
            if status is RunStatus.RUNNING:
                raise RunStateError(
                    f"Run {run_id} is RUNNING; stop it and wait for it to end before deleting it"
                )
            db.execute("DELETE FROM metrics WHERE run_id = ?", (run_id,))
            db.execute("DELETE FROM runs WHERE id = ?", (run_id,))
        shutil.rmtree(self._run_folder(run_id), ignore_errors=True)

    def run_dir(self, run_id: str) -> Path:
        self._require_run(self._connection(), run_id)
        return self._run_folder(run_id)

"""Checking the run store, and rebuilding it from the run folders when it is lost or damaged.

`check_store(home)` says in words what is wrong (None if nothing is); `rebuild_store(home)` writes a
fresh `runs.db` from each folder's run.json (and the sweeps from `<home>/sweeps/*.json`, or from
their runs when that record is lost), keeping everything the old file still holds when it can be
read (rows, batch-level points) and moving the old file aside as `runs.db.corrupt-<time>`, never
deleting it. The CLI's `store check` / `store rebuild` and the dashboard call these.
"""
from __future__ import annotations

import dataclasses
import os
import sqlite3
import time
from pathlib import Path

from pipelines import paths
from pipelines.errors import LayerlabError
from pipelines.runs.artifacts import RECORD_FILE
from pipelines.runs.entities import MetricPoint, Run, Sweep
from pipelines.runs.records import (history_points, read_run_record, read_sweep_records, recovered, run_folders,
                                    sweep_from_runs)
from pipelines.runs.sqlite_db import SQLiteDatabase
from pipelines.runs.sqlite_schema import (MIGRATIONS, SCHEMA, SCHEMA_VERSION, insert_points, insert_run,
                                          insert_sweep, run_from_row, sweep_from_row)

DB_NAME = "runs.db"
REBUILD_HINT = ("Rebuild it from the run folders with `python -m pipelines store rebuild` "
                "(the old file is kept beside it, never deleted).")
_OldPoint = tuple  # (id, kind, epoch, step, name, value, timestamp) as the old database held it


@dataclasses.dataclass(frozen=True)
class RebuildReport:
    """What a rebuild did: the runs it wrote, the folders it could not read, where the old file went."""

    runs: list[Run]
    skipped: list[str]
    moved_aside: Path | None
    sweeps: list[Sweep] = dataclasses.field(default_factory=list)


def missing_store_problem(home: Path) -> str | None:
    """Why `<home>/runs.db` may not be created now (it would hide existing runs), or None."""
    folders = run_folders(home)
    if not folders:
        return None
    path = home / DB_NAME
    state = "is empty (0 bytes)" if path.exists() else "is missing"
    return (f"The run store {path} {state}, but {home / 'runs'} holds {len(folders)} run folder(s); "
            "Layerlab does not create an empty store over existing runs.")


def _open(home: Path) -> SQLiteDatabase:
    return SQLiteDatabase(home / DB_NAME, SCHEMA, SCHEMA_VERSION, what="run store",
                          refuse_create=lambda: missing_store_problem(home), recovery=REBUILD_HINT,
                          migrations=MIGRATIONS)


def check_store(home: str | os.PathLike | None = None) -> str | None:
    """What is wrong with the run store of `home`, in words for a user, or None if it opens, passes
    SQLite's integrity_check and lists every run folder. Creates nothing."""
    home = paths.home_dir(home)
    path = home / DB_NAME
    if not path.exists() or path.stat().st_size == 0:
        problem = missing_store_problem(home)
        return problem and f"{problem} {REBUILD_HINT}"
    try:
        db = _open(home)
        try:
            problem = db.integrity_problem()
            if problem:
                return f"The run store {path} is damaged (integrity_check: {problem}). {REBUILD_HINT}"
            listed = {row[0] for row in db.connection().execute("SELECT id FROM runs")}
        finally:
            db.close()
    except (LayerlabError, sqlite3.Error) as exc:
        return str(exc)
    unlisted = [folder.name for folder in run_folders(home) if folder.name not in listed]
    if not unlisted:
        return None
    rebuildable = [name for name in unlisted if (home / "runs" / name / RECORD_FILE).exists()]
    shown = ", ".join(unlisted[:8]) + (" ..." if len(unlisted) > 8 else "")
    return (f"{len(unlisted)} run folder(s) in {home / 'runs'} are not in the run store {path}: {shown}; "
            f"{len(rebuildable)} of them hold a run.json to rebuild from. {REBUILD_HINT}")


def _read_old(path: Path) -> tuple[dict[str, Run], dict[str, list[_OldPoint]], dict[str, Sweep]]:
    """Rows, points and sweeps of the old database if it is still sound; nothing if it is not."""
    if not path.exists() or path.stat().st_size == 0:
        return {}, {}, {}
    try:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=10.0)
    except sqlite3.Error:
        return {}, {}, {}
    try:
        connection.row_factory = sqlite3.Row
        if connection.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            return {}, {}, {}
        runs = {row["id"]: run_from_row(row) for row in connection.execute("SELECT * FROM runs")}
        points: dict[str, list[_OldPoint]] = {}
        for row in connection.execute("SELECT * FROM metrics ORDER BY id"):
            points.setdefault(row["run_id"], []).append(
                (row["id"], row["kind"], row["epoch"], row["step"], row["name"], row["value"], row["timestamp"]))
        has_sweeps = connection.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sweeps'").fetchone()
        sweeps = {row["id"]: sweep_from_row(row)
                  for row in connection.execute("SELECT * FROM sweeps")} if has_sweeps else {}
        return runs, points, sweeps
    except (sqlite3.Error, ValueError, KeyError, TypeError):
        return {}, {}, {}
    finally:
        connection.close()


def _write_fresh(path: Path, runs: list[Run], old_points: dict[str, list[_OldPoint]],
                 new_points: dict[str, list[MetricPoint]], sweeps: list[Sweep]) -> None:
    """A complete database at `path` (rollback journal, so it is one file until first opened)."""
    path.unlink(missing_ok=True)
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.executescript(SCHEMA)
        connection.execute("BEGIN")
        for order, run in enumerate(sorted(runs, key=lambda r: r.created_at), start=1):
            insert_run(connection, run, order)
        for sweep in sweeps:
            insert_sweep(connection, sweep)
        connection.executemany(
            "INSERT INTO metrics (id, run_id, kind, epoch, step, name, value, timestamp)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(point[0], run_id, *point[1:]) for run_id, points in old_points.items() for point in points])
        for run_id, points in new_points.items():
            insert_points(connection, run_id, points)
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        connection.execute("COMMIT")
    finally:
        connection.close()


def _move_aside(path: Path) -> Path | None:
    """Rename `path` (and its -wal and -shm) to `<path>.corrupt-<time>`; None if there was no file."""
    if not path.exists():
        for suffix in ("-wal", "-shm"):  # a stale log must not meet the new database
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return None
    target = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
    if target.exists():
        target = target.with_name(f"{target.name}-{os.getpid()}")
    for suffix in ("", "-wal", "-shm"):
        source = Path(f"{path}{suffix}")
        if source.exists():
            os.replace(source, Path(f"{target}{suffix}"))
    return target


def _newer(listed: Run | None, record: Run | None) -> Run:
    """The old database's row, unless the run's own record says it ended and the row does not
    (a worker that finished while the store could not be written records the end in run.json)."""
    if listed is None or record is None:
        return listed or record
    if record.status.is_terminal and not listed.status.is_terminal:
        return dataclasses.replace(listed, status=record.status, error=record.error, metrics=record.metrics,
                                   finished_at=record.finished_at, epochs_done=max(listed.epochs_done,
                                                                                   record.epochs_done))
    return listed


def rebuild(home: str | os.PathLike | None = None) -> RebuildReport:
    """Write a fresh run store from the run folders; see the module docstring."""
    home = paths.home_dir(home)
    path = home / DB_NAME
    old_runs, old_points, old_sweeps = _read_old(path)
    now = time.time()
    runs: dict[str, Run] = {}
    new_points: dict[str, list[MetricPoint]] = {}
    skipped = []
    for folder in run_folders(home):
        try:
            record = read_run_record(folder)
        except LayerlabError as exc:
            record = None
            if folder.name not in old_runs:
                skipped.append(str(exc))
                continue
        run = _newer(old_runs.get(folder.name), record)
        if run.id not in old_points:
            new_points[run.id] = history_points(folder, run.finished_at or now)
        runs[run.id] = recovered(run, folder, now)
    for run_id, run in old_runs.items():  # listed but without a folder: queued by an older Layerlab
        runs.setdefault(run_id, recovered(run, home / "runs" / run_id, now))
    kept_points = {run_id: points for run_id, points in old_points.items() if run_id in runs}
    sweeps = _sweeps(home, runs, old_sweeps, skipped)
    fresh = home / f"{DB_NAME}.rebuilding-{os.getpid()}"
    try:
        _write_fresh(fresh, list(runs.values()), kept_points, new_points, list(sweeps.values()))
        moved = _move_aside(path)
        os.replace(fresh, path)
    finally:
        fresh.unlink(missing_ok=True)
    _open(home).close()  # WAL mode, and proof that it opens
    return RebuildReport(runs=sorted(runs.values(), key=lambda r: r.created_at), skipped=skipped,
                         moved_aside=moved, sweeps=sorted(sweeps.values(), key=lambda s: s.created_at))


def _sweeps(home: Path, runs: dict[str, Run], old_sweeps: dict[str, Sweep], skipped: list[str]) -> dict[str, Sweep]:
    """The sweeps their records (or the old database) name, and one pieced together from its runs
    for every sweep id a run names that neither knows."""
    recorded, problems = read_sweep_records(home)
    skipped.extend(problems)
    sweeps = {**old_sweeps, **{sweep.id: sweep for sweep in recorded}}
    members: dict[str, list[Run]] = {}
    for run in runs.values():
        if run.sweep_id:
            members.setdefault(run.sweep_id, []).append(run)
    for sweep_id, sweep_runs in members.items():
        if sweep_id not in sweeps:
            sweeps[sweep_id] = sweep_from_runs(sweep_id, sweep_runs)
    return sweeps


def rebuild_store(home: str | os.PathLike | None = None) -> int:
    """Rebuild the run store of `home` from its run folders; returns how many runs it holds now."""
    return len(rebuild(home).runs)

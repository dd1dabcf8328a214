"""The run store's SQLite layout: its tables, and how a row becomes a Run and a Run a row.

Shared by the store and by the rebuild that writes a fresh database from the run folders.
"""
from __future__ import annotations

import json
import sqlite3

from pipelines.runs.entities import MetricPoint, Progress, Run, RunStatus, Sweep

SCHEMA_VERSION = 2

# The whole layout, for a new file. A file written by an older Layerlab is brought up to date by
# MIGRATIONS instead; tests/runs/test_store_migration.py checks that both end in the same tables.
SCHEMA = """
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
    resume_count INTEGER NOT NULL DEFAULT 0,
    tags TEXT NOT NULL DEFAULT '[]',
    note TEXT NOT NULL DEFAULT '',
    sweep_id TEXT,
    sweep_settings TEXT NOT NULL DEFAULT '{}',
    repeat_group TEXT,
    seed INTEGER,
    executor TEXT NOT NULL DEFAULT 'local'
);
CREATE INDEX IF NOT EXISTS runs_status_queue ON runs (status, queue_order);
CREATE INDEX IF NOT EXISTS runs_created ON runs (created_at);
CREATE INDEX IF NOT EXISTS runs_sweep ON runs (sweep_id);
CREATE TABLE IF NOT EXISTS sweeps (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    dataset TEXT NOT NULL,
    spec TEXT NOT NULL,
    axes TEXT NOT NULL,  -- [[setting, [values...]], ...]
    repeats INTEGER NOT NULL DEFAULT 1,
    created_at REAL NOT NULL,
    executor TEXT NOT NULL DEFAULT 'local',
    cancelled_at REAL
);
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
"""

# Version N's statements take a file from version N - 1 to N, inside one transaction.
MIGRATIONS = {
    2: """
ALTER TABLE runs ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';
ALTER TABLE runs ADD COLUMN note TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN sweep_id TEXT;
ALTER TABLE runs ADD COLUMN sweep_settings TEXT NOT NULL DEFAULT '{}';
ALTER TABLE runs ADD COLUMN repeat_group TEXT;
ALTER TABLE runs ADD COLUMN seed INTEGER;
ALTER TABLE runs ADD COLUMN executor TEXT NOT NULL DEFAULT 'local';
UPDATE runs SET seed = json_extract(spec, '$.fit.seed')
    WHERE json_valid(spec) AND json_type(spec, '$.fit.seed') = 'integer';
CREATE INDEX IF NOT EXISTS runs_sweep ON runs (sweep_id);
CREATE TABLE IF NOT EXISTS sweeps (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    dataset TEXT NOT NULL,
    spec TEXT NOT NULL,
    axes TEXT NOT NULL,
    repeats INTEGER NOT NULL DEFAULT 1,
    created_at REAL NOT NULL,
    executor TEXT NOT NULL DEFAULT 'local',
    cancelled_at REAL
);
""",
}

_NEW_IN_2 = {"tags": "[]", "note": "", "sweep_id": None, "sweep_settings": "{}", "repeat_group": None, "seed": None,
             "executor": "local"}


def run_from_row(row: sqlite3.Row) -> Run:
    """The Run a row holds; a row of a version-1 file (read where it cannot be migrated: a full
    disk, or the old file a rebuild reads) gets the defaults of the columns it lacks."""
    if "tags" not in row.keys():
        row = {**{key: row[key] for key in row.keys()}, **_NEW_IN_2}
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
        tags=tuple(json.loads(row["tags"])),
        note=row["note"],
        sweep_id=row["sweep_id"],
        sweep_settings=json.loads(row["sweep_settings"]),
        repeat_group=row["repeat_group"],
        seed=row["seed"],
        executor=row["executor"],
    )


def sweep_from_row(row: sqlite3.Row) -> Sweep:
    return Sweep(id=row["id"], name=row["name"], dataset=row["dataset"], spec=json.loads(row["spec"]),
                 axes=axes_from_json(json.loads(row["axes"])), repeats=row["repeats"],
                 created_at=row["created_at"], executor=row["executor"], cancelled_at=row["cancelled_at"])


def axes_from_json(data: list) -> tuple[tuple[str, tuple], ...]:
    return tuple((str(setting), tuple(values)) for setting, values in data)


def axes_to_json(axes: tuple[tuple[str, tuple], ...]) -> list:
    return [[setting, list(values)] for setting, values in axes]


def insert_sweep(db: sqlite3.Connection, sweep: Sweep) -> None:
    db.execute(
        "INSERT INTO sweeps (id, name, dataset, spec, axes, repeats, created_at, executor, cancelled_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (sweep.id, sweep.name, sweep.dataset, json.dumps(sweep.spec), json.dumps(axes_to_json(sweep.axes)),
         sweep.repeats, sweep.created_at, sweep.executor, sweep.cancelled_at),
    )


def insert_run(db: sqlite3.Connection, run: Run, queue_order: int) -> None:
    """Write a whole run as a new row (for a rebuild; new runs go through `create_run`)."""
    db.execute(
        "INSERT INTO runs (id, name, status, dataset, spec, created_at, queue_order, started_at, finished_at,"
        " heartbeat_at, worker_pid, error, metrics, epoch, total_epochs, step, steps_per_epoch, epochs_done,"
        " best_epoch, stop_requested, resume_count, tags, note, sweep_id, sweep_settings, repeat_group, seed,"
        " executor) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (run.id, run.name, run.status.value, run.dataset, json.dumps(run.spec), run.created_at, queue_order,
         run.started_at, run.finished_at, run.heartbeat_at, run.worker_pid, run.error, json.dumps(run.metrics),
         run.progress.epoch, run.progress.total_epochs, run.progress.step, run.progress.steps_per_epoch,
         run.epochs_done, run.best_epoch, run.stop_requested_at or 0, run.resume_count, json.dumps(list(run.tags)),
         run.note, run.sweep_id, json.dumps(run.sweep_settings), run.repeat_group, run.seed, run.executor),
    )


def insert_points(db: sqlite3.Connection, run_id: str, points: list[MetricPoint]) -> None:
    db.executemany(
        "INSERT INTO metrics (run_id, kind, epoch, step, name, value, timestamp) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(run_id, p.kind, p.epoch, p.step, p.name, float(p.value), p.timestamp) for p in points],
    )

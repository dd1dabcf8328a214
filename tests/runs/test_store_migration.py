"""A run store written by the previous Layerlab (schema version 1) opens and is migrated in place."""
from __future__ import annotations

import json
import sqlite3

from pipelines.runs.entities import PlannedRun, RunStatus
from pipelines.runs.sqlite_schema import SCHEMA_VERSION, run_from_row
from pipelines.runs.sqlite_store import SQLiteRunStore

# runs.db as version 1 wrote it (pipelines/runs/sqlite_schema.py before issue 10), verbatim.
SCHEMA_V1 = """
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
    stop_requested REAL NOT NULL DEFAULT 0,
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
"""
SPEC = {"layers": [{"type": "Dense", "units": 10}], "fit": {"epochs": 2, "seed": 3}}


def write_v1_store(home):
    """A version-1 runs.db (WAL, as version 1 left it) with a COMPLETED run and a QUEUED one."""
    home.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(home / "runs.db", isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.executescript(SCHEMA_V1)
    insert = ("INSERT INTO runs (id, name, status, dataset, spec, created_at, queue_order, total_epochs, metrics,"
              " epochs_done) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
    connection.execute(insert, ("0123456789", "old done", "COMPLETED", "mnist", json.dumps(SPEC), 1.0, 1, 2,
                                '{"test_accuracy": 0.9}', 2))
    connection.execute(insert, ("abcdefabcd", "old queued", "QUEUED", "mnist", json.dumps({"layers": []}), 2.0, 2, 2,
                                "{}", 0))
    connection.execute("INSERT INTO metrics (run_id, kind, epoch, step, name, value, timestamp)"
                       " VALUES ('0123456789', 'epoch', 0, 10, 'loss', 0.5, 1.5)")
    connection.execute("PRAGMA user_version = 1")
    connection.close()


def layout(path):
    """Each table's columns (name, type, not null, default) and the index names, to compare files."""
    connection = sqlite3.connect(path)
    try:
        tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'"
                                                       " AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        columns = {table: sorted(tuple(row[1:5]) for row in connection.execute(f"PRAGMA table_info({table})"))
                   for table in tables}
        indexes = sorted(row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'index'"
                                                              " AND name NOT LIKE 'sqlite_%'"))
        return columns, indexes
    finally:
        connection.close()


def test_a_version_1_store_opens_migrated_with_its_runs_and_points(tmp_path):
    home = tmp_path / "home"
    write_v1_store(home)
    with SQLiteRunStore(home) as store:
        done, queued = store.get_run("0123456789"), store.get_run("abcdefabcd")
        assert (done.name, done.status, done.metrics, done.epochs_done) == (
            "old done", RunStatus.COMPLETED, {"test_accuracy": 0.9}, 2)
        assert (done.tags, done.note, done.sweep_id, done.sweep_settings, done.repeat_group, done.executor) == (
            (), "", None, {}, None, "local")
        assert done.seed == 3 and queued.seed is None  # filled in from the spec where it names one
        assert [(p.name, p.value) for p in store.get_metrics(done.id)] == [("loss", 0.5)]
        assert store.queue_position(queued.id) == 1
        assert store.set_tags(done.id, ["old"]).tags == ("old",)
        sweep = store.create_sweep("s", "mnist", SPEC, [("lr", [0.1])], [PlannedRun("new", SPEC, 2, {"lr": 0.1})])
        assert [run.name for run in store.list_runs(sweep_id=sweep.id)] == ["new"]
        assert store.claim_next_run(1, 1).id == queued.id  # the old queue keeps its order
    connection = sqlite3.connect(home / "runs.db")
    try:
        assert connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    finally:
        connection.close()


def test_a_migrated_store_has_the_layout_of_a_new_one(tmp_path):
    write_v1_store(tmp_path / "old")
    SQLiteRunStore(tmp_path / "old").close()
    SQLiteRunStore(tmp_path / "new").close()
    assert layout(tmp_path / "old" / "runs.db") == layout(tmp_path / "new" / "runs.db")


def test_a_version_1_row_reads_as_a_run_where_the_file_cannot_be_migrated(tmp_path):
    """A full disk opens the file read-only as it is: its rows must still read."""
    write_v1_store(tmp_path)
    connection = sqlite3.connect(tmp_path / "runs.db")
    connection.row_factory = sqlite3.Row
    try:
        run = run_from_row(connection.execute("SELECT * FROM runs WHERE id = '0123456789'").fetchone())
    finally:
        connection.close()
    assert (run.name, run.tags, run.executor, run.sweep_settings) == ("old done", (), "local", {})


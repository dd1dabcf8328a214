"""The run store under faults: deleted or damaged while in use, created over existing runs, a full
disk; and the rebuild from the run folders. Each test injects its fault."""
from __future__ import annotations

import errno
import json
import os
import sqlite3
import subprocess
import sys
import time

import pytest

from pipelines.errors import DiskFullError, RunStateError, StoreUnavailableError
from pipelines.runs import artifacts, sqlite_db
from pipelines.runs.entities import MetricPoint, PlannedRun, RunStatus
from pipelines.runs.records import read_run_record
from pipelines.runs.sqlite_schema import SCHEMA, SCHEMA_VERSION
from pipelines.runs.sqlite_store import SQLiteRunStore, check_store, rebuild_store

SPEC = {"layers": [], "fit": {"epochs": 4}}


@pytest.fixture
def home(tmp_path):
    return tmp_path / "home"


@pytest.fixture
def new_process(monkeypatch):
    """Call it to forget which stores this process has checked, as a new process would."""
    monkeypatch.setattr(sqlite_db, "_checked", set())
    return sqlite_db._checked.clear


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def home_with_runs(home):
    """A COMPLETED run with history.csv, a RUNNING one whose worker died, a QUEUED, a STOPPED and a
    FAILED one. Returns the store and the runs by status."""
    store = SQLiteRunStore(home)
    runs = {}
    for status in ("COMPLETED", "RUNNING", "STOPPED", "FAILED"):
        run = store.create_run(status.lower(), "mnist", SPEC, total_epochs=4)
        store.claim_next_run(dead_pid(), max_running=10)
        store.set_epochs_done(run.id, 2, 1)
        if status != "RUNNING":
            store.finish_run(run.id, status, error="boom" if status == "FAILED" else None,
                             metrics={"test_accuracy": 0.91} if status == "COMPLETED" else None)
        runs[status] = run
    runs["QUEUED"] = store.create_run("queued", "fashion_mnist", SPEC, total_epochs=4)
    completed_dir = store.run_dir(runs["COMPLETED"].id)
    (completed_dir / artifacts.HISTORY_FILE).write_text("epoch,loss,val_loss\n1,0.9,0.8\n2,0.5,0.6\n")
    store.log_metrics(runs["COMPLETED"].id, [MetricPoint("batch", 0, 1, "loss", 2.0, time.time())])
    return store, runs


# -- deleted while in use --------------------------------------------------------------------------


def test_store_deleted_while_open_is_an_error_naming_the_file_and_nothing_is_created(home):
    store, runs = home_with_runs(home)
    os.remove(store.db_path)  # the fault: `rm runs.db` while a page and a worker have it open
    for read_or_write in (lambda: store.get_run(runs["QUEUED"].id), store.list_runs,
                          lambda: store.finish_run(runs["RUNNING"].id, RunStatus.COMPLETED)):
        with pytest.raises(StoreUnavailableError, match=f"{store.db_path}.* is missing, but .* 5 run folder"):
            read_or_write()
    with pytest.raises(StoreUnavailableError, match="store rebuild"):
        SQLiteRunStore(home)
    assert not store.db_path.exists()  # no empty store appeared over the five runs


def test_a_zero_byte_store_over_existing_runs_is_refused(home):
    store, _ = home_with_runs(home)
    store.close()
    for suffix in ("", "-wal", "-shm"):
        (home / f"runs.db{suffix}").unlink(missing_ok=True)
    (home / "runs.db").write_bytes(b"")
    with pytest.raises(StoreUnavailableError, match=r"is empty \(0 bytes\), but .* 5 run folder"):
        SQLiteRunStore(home)
    assert (home / "runs.db").stat().st_size == 0


def test_a_new_store_is_created_in_a_home_without_run_folders(home):
    (home / "runs").mkdir(parents=True)
    (home / "runs" / "not-a-run").mkdir()
    with SQLiteRunStore(home) as store:
        assert store.list_runs() == []
    os.remove(home / "runs.db")  # deleted in a home that holds no runs: nothing to lose
    with SQLiteRunStore(home) as store:
        assert store.list_runs() == []


def test_garbage_over_the_store_is_a_clear_error_not_a_traceback(home, new_process):
    store, _ = home_with_runs(home)
    store.close()
    (home / "runs.db").write_bytes(os.urandom(20000))  # the fault
    for suffix in ("-wal", "-shm"):
        (home / f"runs.db{suffix}").unlink(missing_ok=True)
    with pytest.raises(StoreUnavailableError, match=r"runs.db is damaged \(file is not a database\).*store rebuild"):
        SQLiteRunStore(home)
    assert "is damaged" in check_store(home)


def test_damage_inside_the_file_is_found_by_the_first_open_in_a_process(home, new_process):
    store, _ = home_with_runs(home)
    store.log_metrics(store.list_runs()[0].id, [MetricPoint("batch", 0, i, "loss", 1.0, 0.0) for i in range(3000)])
    store.close()
    checkpoint = sqlite3.connect(home / "runs.db")
    checkpoint.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    checkpoint.close()
    with open(home / "runs.db", "r+b") as handle:  # the fault: a few pages of the metrics table overwritten
        handle.seek(4096 * 6)
        handle.write(os.urandom(4096 * 3))
    new_process()
    with pytest.raises(StoreUnavailableError, match="is damaged"):
        SQLiteRunStore(home)


# -- rebuild -------------------------------------------------------------------------------------


def test_rebuild_recovers_every_run_and_its_status_from_the_folders(home, new_process):
    store, runs = home_with_runs(home)
    artifacts.write_failure(store.run_dir(runs["RUNNING"].id), "disk full: 0.2 MB free in /x")
    (store.run_dir(runs["RUNNING"].id) / artifacts.LAST_STATE_FILE).write_text('{"epochs_done": 2}')
    store.close()
    (home / "runs.db").write_bytes(b"garbage" * 1000)  # the fault
    assert rebuild_store(home) == 5
    moved = list(home.glob("runs.db.corrupt-*"))
    assert len(moved) == 1 and moved[0].read_bytes() == b"garbage" * 1000  # kept, never deleted
    assert check_store(home) is None
    store = SQLiteRunStore(home)
    got = {run.name: run for run in store.list_runs()}
    assert {name: run.status for name, run in got.items()} == {
        "completed": RunStatus.COMPLETED, "running": RunStatus.INTERRUPTED, "stopped": RunStatus.STOPPED,
        "failed": RunStatus.FAILED, "queued": RunStatus.QUEUED}
    assert got["completed"].metrics == {"test_accuracy": 0.91} and got["failed"].error == "boom"
    assert got["running"].error.startswith("disk full: 0.2 MB free in /x") and got["running"].epochs_done == 2
    assert got["queued"].dataset == "fashion_mnist" and store.queue_position(got["queued"].id) == 1
    points = store.get_metrics(got["completed"].id)
    assert [(p.kind, p.epoch, p.name, p.value) for p in points] == [
        ("epoch", 0, "loss", 0.9), ("epoch", 0, "val_loss", 0.8), ("epoch", 1, "loss", 0.5),
        ("epoch", 1, "val_loss", 0.6)]
    assert store.request_resume(got["running"].id).status is RunStatus.QUEUED  # resumable


def test_rebuild_merges_a_readable_store_that_lost_runs(home, new_process):
    store, runs = home_with_runs(home)
    store.close()
    os.remove(home / "runs.db")
    connection = sqlite3.connect(home / "runs.db")  # the fault: an older Layerlab made an empty store here
    connection.executescript(SCHEMA)
    connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    connection.close()
    assert "5 run folder(s)" in check_store(home) and "not in the run store" in check_store(home)
    assert rebuild_store(home) == 5
    with SQLiteRunStore(home) as rebuilt:
        assert {run.id for run in rebuilt.list_runs()} == {run.id for run in runs.values()}


def test_rebuild_of_a_sound_store_keeps_its_batch_points(home, new_process):
    store, runs = home_with_runs(home)
    store.close()
    assert rebuild_store(home) == 5
    with SQLiteRunStore(home) as rebuilt:
        assert [(p.kind, p.value) for p in rebuilt.get_metrics(runs["COMPLETED"].id)] == [("batch", 2.0)]


def test_rebuild_leaves_out_unreadable_records_and_says_so(home, new_process):
    store, runs = home_with_runs(home)
    store.close()
    os.remove(home / "runs.db")
    (home / "runs" / runs["STOPPED"].id / artifacts.RECORD_FILE).write_text("{not json")
    from pipelines.runs.sqlite_recovery import rebuild

    report = rebuild(home)
    assert len(report.runs) == 4 and len(report.skipped) == 1 and runs["STOPPED"].id in report.skipped[0]


def test_open_stores_follow_a_rebuilt_file(home, new_process):
    store, runs = home_with_runs(home)
    assert rebuild_store(home) == 5  # another process rebuilds while this one has the store open
    assert store.get_run(runs["RUNNING"].id).status is RunStatus.INTERRUPTED
    store.finish_run(runs["RUNNING"].id, RunStatus.FAILED, error="x")
    assert read_run_record(store.run_dir(runs["RUNNING"].id)).status is RunStatus.FAILED


def test_run_json_follows_every_status_change(home):
    store = SQLiteRunStore(home)
    run = store.create_run("r", "mnist", SPEC)
    record = lambda: json.loads((store.run_dir(run.id) / artifacts.RECORD_FILE).read_text())  # noqa: E731
    assert record()["status"] == "QUEUED" and record()["spec"] == SPEC
    store.claim_next_run(4242, 1)
    assert record()["status"] == "RUNNING" and record()["worker_pid"] == 4242
    store.mark_interrupted(run.id, "gone")
    assert (record()["status"], record()["error"]) == ("INTERRUPTED", "gone")
    store.request_resume(run.id)
    assert (record()["status"], record()["resume_count"]) == ("QUEUED", 1)
    store.request_stop(run.id)
    assert record()["status"] == "STOPPED"


def test_rebuild_keeps_names_tags_notes_sweeps_and_repeat_groups(home, new_process):
    store = SQLiteRunStore(home)
    sweep = store.create_sweep("lr sweep", "mnist", SPEC, [("lr", (0.01, 0.1))], [
        PlannedRun("a", {**SPEC, "fit": {"epochs": 4, "seed": 0}}, 4, {"lr": 0.01}, "g1", 0),
        PlannedRun("b", {**SPEC, "fit": {"epochs": 4, "seed": 1}}, 4, {"lr": 0.01}, "g1", 1),
        PlannedRun("c", {**SPEC, "fit": {"epochs": 4, "seed": 0}}, 4, {"lr": 0.1}, "g2", 0)], repeats=2)
    a, b, c = sorted(store.list_runs(sweep_id=sweep.id), key=lambda run: run.name)
    store.rename_run(a.id, "renamed")
    store.set_tags(a.id, ["baseline", "lr"])
    store.set_note(b.id, "the noisy one")
    store.cancel_sweep(sweep.id)
    before = {run.id: run for run in store.list_runs()}
    store.close()
    (home / "runs.db").write_bytes(b"garbage" * 1000)  # the fault
    from pipelines.runs.sqlite_recovery import rebuild

    report = rebuild(home)
    assert [found.id for found in report.sweeps] == [sweep.id]
    with SQLiteRunStore(home) as rebuilt:
        for run in rebuilt.list_runs():
            was = before[run.id]
            assert (run.name, run.tags, run.note, run.sweep_id, run.sweep_settings, run.repeat_group, run.seed) == (
                was.name, was.tags, was.note, was.sweep_id, was.sweep_settings, was.repeat_group, was.seed)
        assert rebuilt.get_run(a.id).name == "renamed" and rebuilt.get_run(a.id).tags == ("baseline", "lr")
        again = rebuilt.get_sweep(sweep.id)
        assert (again.name, again.axes, again.repeats, again.cancelled) == ("lr sweep", (("lr", (0.01, 0.1)),), 2, True)
        assert {run.id for run in rebuilt.list_runs(sweep_id=sweep.id)} == {a.id, b.id, c.id}


def test_a_sweep_whose_record_is_lost_is_pieced_together_from_its_runs(home, new_process):
    store = SQLiteRunStore(home)
    sweep = store.create_sweep("s", "mnist", SPEC, [("units@2", (64, 128))], [
        PlannedRun("a", SPEC, 4, {"units@2": 64}), PlannedRun("b", SPEC, 4, {"units@2": 128})])
    store.close()
    os.remove(home / "runs.db")
    os.remove(home / "sweeps" / f"{sweep.id}.json")
    assert rebuild_store(home) == 2
    with SQLiteRunStore(home) as rebuilt:
        again = rebuilt.get_sweep(sweep.id)
        assert again.axes == (("units@2", (64, 128)),) and again.dataset == "mnist"


# -- full disk -----------------------------------------------------------------------------------


def test_a_full_database_is_a_disk_full_error_and_reads_still_work(home):
    store = SQLiteRunStore(home)
    run = store.create_run("r", "mnist", SPEC)
    store.claim_next_run(1, 1)
    connection = store._connection()
    pages = connection.execute("PRAGMA page_count").fetchone()[0]
    connection.execute(f"PRAGMA max_page_count = {pages + 1}")  # the fault: SQLite's own SQLITE_FULL
    with pytest.raises(DiskFullError, match=r"disk full: .* MB free in .*runs.db cannot be written until there"):
        store.log_metrics(run.id, [MetricPoint("batch", 0, i, "loss", 1.0, 0.0) for i in range(5000)])
    assert store.get_run(run.id).status is RunStatus.RUNNING


def test_a_run_json_that_cannot_be_written_rolls_the_change_back(home, monkeypatch):
    store = SQLiteRunStore(home)
    run = store.create_run("r", "mnist", SPEC)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("pipelines.runs.sqlite_store.write_run_record", full)  # the fault
    with pytest.raises(DiskFullError, match="disk full: .* MB free in"):
        store.claim_next_run(1, 1)
    assert store.get_run(run.id).status is RunStatus.QUEUED


def test_opening_writes_nothing_so_it_works_on_a_full_disk(home, new_process):
    SQLiteRunStore(home).close()
    checkpoint = sqlite3.connect(home / "runs.db")
    checkpoint.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    checkpoint.close()
    wal = home / "runs.db-wal"
    with SQLiteRunStore(home) as store:
        assert store.list_runs() == []
        assert not wal.exists() or wal.stat().st_size == 0  # a write would have appended a frame


# -- resuming a FAILED run ---------------------------------------------------------------------


def test_a_failed_run_with_a_checkpoint_can_resume(home):
    store = SQLiteRunStore(home)
    run = store.create_run("r", "mnist", SPEC)
    store.claim_next_run(1, 1)
    store.finish_run(run.id, RunStatus.FAILED, error="disk full: 0.1 MB free in /x")
    assert not store.can_resume(store.get_run(run.id))
    with pytest.raises(RunStateError, match="or a FAILED one that kept a checkpoint .this one has none"):
        store.request_resume(run.id)
    folder = store.run_dir(run.id)
    (folder / artifacts.LAST_FILE).write_bytes(b"model")
    (folder / artifacts.LAST_STATE_FILE).write_text('{"epochs_done": 1}')
    assert store.can_resume(store.get_run(run.id))
    resumed = store.request_resume(run.id)
    assert resumed.status is RunStatus.QUEUED and resumed.error is None and resumed.resume_count == 1


def test_rebuild_keeps_a_run_whose_worker_still_trains(home, new_process):
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "pipelines", "worker"])
    try:
        store = SQLiteRunStore(home)
        run = store.create_run("live", "mnist", SPEC)
        store.claim_next_run(worker.pid, 1)
        store.close()
        os.remove(home / "runs.db")  # the fault, while this stand-in worker still runs
        before = time.time()
        assert rebuild_store(home) == 1
        live = SQLiteRunStore(home).get_run(run.id)
        assert live.status is RunStatus.RUNNING and live.worker_pid == worker.pid and live.heartbeat_at >= before
    finally:
        worker.kill()
        worker.wait()

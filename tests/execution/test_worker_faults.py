"""A worker under faults, with a stand-in for training (no TensorFlow): a full disk while saving,
a store that cannot be written or is deleted while the run trains. Each test injects its fault; the
run's end must always be recorded somewhere a user (or a rebuild, or the reaper) finds it."""
from __future__ import annotations

import errno
import os
import subprocess

import pytest

from pipelines.errors import DiskFullError, StoreUnavailableError
from pipelines.execution.scheduler import Scheduler, SchedulerSettings
from pipelines.execution.worker import train_claimed
from pipelines.runs import artifacts
from pipelines.runs.entities import Progress, RunOutcome, RunStatus
from pipelines.runs.records import read_run_record
from pipelines.runs.sqlite_store import SQLiteRunStore, rebuild_store


@pytest.fixture
def store(tmp_path):
    return SQLiteRunStore(tmp_path / "home")


def claimed(store, pid=None):
    """A run claimed by `pid` (by default one of a process that has already exited)."""
    if pid is None:
        process = subprocess.Popen(["true"])
        process.wait()
        pid = process.pid
    store.create_run("r", "mnist", {"fit": {"epochs": 3}}, total_epochs=3)
    run = store.claim_next_run(pid, 1)
    return run, store.ensure_run_dir(run.id)


def disk_full_while_saving(run):
    try:
        raise OSError(errno.ENOSPC, "No space left on device")  # the fault, as shutil.copyfile raises it
    except OSError as exc:
        raise ValueError("Keras could not save best.keras") from exc


def test_a_full_disk_ends_the_run_failed_saying_how_much_is_free(store):
    run, folder = claimed(store)
    assert train_claimed(store, run, folder, disk_full_while_saving) is RunStatus.FAILED
    failed = store.get_run(run.id)
    assert failed.status is RunStatus.FAILED
    assert failed.error.startswith("disk full: ") and f"MB free in {folder}" in failed.error
    assert not (folder / artifacts.FAILURE_FILE).exists()  # recorded in the store: nothing left for the reaper
    assert store.can_resume(failed) is False  # no checkpoint yet; with one it could resume


def test_when_the_store_cannot_be_written_the_reaper_reads_the_workers_reason(store, monkeypatch):
    run, folder = claimed(store)

    def store_full(*args, **kwargs):
        raise DiskFullError("disk full: 0.0 MB free in /home (the run store /home/runs.db could not be written)")

    monkeypatch.setattr(store, "finish_run", store_full)  # the fault: the store is full too
    assert train_claimed(store, run, folder, disk_full_while_saving) is RunStatus.FAILED  # no exception
    monkeypatch.undo()
    assert store.get_run(run.id).status is RunStatus.RUNNING
    assert read_run_record(folder).status is RunStatus.FAILED
    assert Scheduler(store, SchedulerSettings()).reap() == [run.id]  # its worker is gone
    reaped = store.get_run(run.id)
    assert reaped.status is RunStatus.INTERRUPTED
    assert reaped.error.startswith("disk full: ") and "could not record this in the store" in reaped.error


def test_a_run_that_finishes_while_the_store_is_gone_is_recovered_by_a_rebuild(store):
    run, folder = claimed(store)

    def train_then_lose_the_store(claimed_run):
        os.remove(store.db_path)  # the fault: `rm runs.db` while the run trains
        return RunOutcome(RunStatus.COMPLETED, None, {"test_accuracy": 0.93, "wall_seconds": 12.0})

    assert train_claimed(store, run, folder, train_then_lose_the_store) is RunStatus.COMPLETED
    assert read_run_record(folder).status is RunStatus.COMPLETED
    with pytest.raises(StoreUnavailableError, match="runs.db is missing"):
        store.get_run(run.id)
    assert not store.db_path.exists()
    assert rebuild_store(store.home) == 1
    recovered = SQLiteRunStore(store.home).get_run(run.id)
    assert recovered.status is RunStatus.COMPLETED and recovered.metrics["test_accuracy"] == 0.93


def test_a_store_lost_mid_training_leaves_the_run_interrupted_and_resumable(store):
    run, folder = claimed(store)

    def lose_the_store_then_record_progress(claimed_run):
        os.remove(store.db_path)  # the fault
        store.update_progress(claimed_run.id, Progress(1, 3, 5, 10))  # what the recorder does next
        raise AssertionError("not reached")

    assert train_claimed(store, run, folder, lose_the_store_then_record_progress) is RunStatus.INTERRUPTED
    record = read_run_record(folder)
    assert record.status is RunStatus.INTERRUPTED and "run store could not be used" in record.error
    rebuild_store(store.home)
    rebuilt = SQLiteRunStore(store.home)
    assert rebuilt.request_resume(run.id).status is RunStatus.QUEUED


def test_a_worker_starting_on_a_run_removes_what_a_killed_attempt_left(store):
    run, folder = claimed(store)
    artifacts.temp_path(folder / "last.keras").write_bytes(b"half")
    artifacts.write_failure(folder, "an older attempt's reason")
    seen = []

    def look(claimed_run):
        seen.append(sorted(os.listdir(folder)))
        return RunOutcome(RunStatus.STOPPED)

    train_claimed(store, run, folder, look)
    assert seen == [[artifacts.RECORD_FILE]]
    assert store.get_run(run.id).status is RunStatus.STOPPED


def test_an_unexpected_error_fails_the_run_with_its_type(store):
    run, folder = claimed(store)
    assert train_claimed(store, run, folder, lambda r: [][1]) is RunStatus.FAILED
    assert store.get_run(run.id).error == "IndexError: list index out of range"

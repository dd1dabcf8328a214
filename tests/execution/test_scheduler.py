"""The scheduler's reaping rules, with a stand-in worker process (no TensorFlow needed)."""
import subprocess
import time

import pytest

from pipelines.execution.scheduler import Scheduler, SchedulerSettings
from pipelines.runs import artifacts
from pipelines.runs.entities import MetricPoint, RunStatus
from pipelines.runs.sqlite_store import SQLiteRunStore


@pytest.fixture
def store(tmp_path):
    return SQLiteRunStore(tmp_path / "home")


@pytest.fixture
def scheduler(store):
    return Scheduler(store, SchedulerSettings())


@pytest.fixture
def stand_in():
    """A live process to play a worker that no longer answers."""
    process = subprocess.Popen(["sleep", "60"])
    yield process
    process.kill()
    process.wait()


def running(store, pid):
    store.create_run("r", "mnist", {"fit": {"epochs": 3}})
    run = store.claim_next_run(pid, max_running=1)
    assert run is not None
    return run


def test_a_silent_live_worker_is_killed_and_its_run_interrupted(store, scheduler, stand_in):
    run = running(store, stand_in.pid)
    assert scheduler.reap() == []  # fresh heartbeat: left alone
    later = time.time() + scheduler.settings.heartbeat_timeout + 1
    assert scheduler.reap(now=later) == [run.id]
    assert stand_in.wait(timeout=5) == -9
    reaped = store.get_run(run.id)
    assert reaped.status == RunStatus.INTERRUPTED and "stopped without finishing" in reaped.error


def test_a_dead_worker_leaves_its_run_interrupted_at_once(store, scheduler):
    process = subprocess.Popen(["true"])
    process.wait()
    run = running(store, process.pid)
    assert scheduler.reap() == [run.id]
    assert store.get_run(run.id).status == RunStatus.INTERRUPTED


def test_an_unanswered_stop_is_enforced_after_the_grace_period(store, stand_in):
    scheduler = Scheduler(store, SchedulerSettings(stop_grace=0.3))
    run = running(store, stand_in.pid)
    store.request_stop(run.id)
    assert scheduler.reap() == []  # within the grace period: the worker may still stop
    assert store.get_run(run.id).status == RunStatus.RUNNING
    time.sleep(0.4)
    store.heartbeat(run.id)  # alive and beating, but not stopping
    assert scheduler.reap() == [run.id]
    assert stand_in.wait(timeout=5) == -9
    stopped = store.get_run(run.id)
    assert stopped.status == RunStatus.STOPPED and "did not stop within" in stopped.error


def test_resume_drops_the_unfinished_epochs_points(store, stand_in):
    run = running(store, stand_in.pid)
    store.log_metrics(run.id, [MetricPoint("epoch", 0, 10, "loss", 1.0, time.time()),
                               MetricPoint("batch", 1, 5, "loss", 0.9, time.time())])
    store.set_epochs_done(run.id, 1, 0)
    store.request_stop(run.id)
    store.finish_run(run.id, RunStatus.STOPPED)
    store.request_resume(run.id)
    assert [(p.kind, p.epoch) for p in store.get_metrics(run.id)] == [("epoch", 0)]


def test_a_spare_waits_beside_a_busy_slot_once_its_run_has_started(store, scheduler, stand_in, monkeypatch):
    spawned = []
    monkeypatch.setattr(scheduler, "spawn_worker", lambda: spawned.append(1) or 1)
    scheduler.ensure_workers(spare=1)
    assert len(spawned) == 1  # idle pool: one warm spare
    spawned.clear()
    run = running(store, stand_in.pid)
    store.update_progress(run.id, store.get_run(run.id).progress)
    for worker in scheduler.registry.list():
        scheduler.registry.remove(worker.pid)
    monkeypatch.setattr(scheduler, "_starting", lambda *a: True)
    scheduler.ensure_workers(spare=1)
    assert spawned == []  # the run is starting: a TensorFlow import now would slow its first points
    monkeypatch.setattr(scheduler, "_starting", lambda *a: False)
    scheduler.ensure_workers(spare=1)
    assert len(spawned) == 1  # started: a spare waits, so the run after it (a Resume, say) starts at once


def test_workers_that_die_while_starting_fail_the_queue_instead_of_looping(store, scheduler):
    run = store.create_run("r", "mnist", {"fit": {"epochs": 1}})
    for _ in range(scheduler.settings.max_failed_starts):
        process = subprocess.Popen(["true"])
        process.wait()
        scheduler.registry.register(process.pid, "starting")
        scheduler.reap()
    failed = store.get_run(run.id)
    assert failed.status == RunStatus.FAILED and "died 3 times while starting" in failed.error
    assert "workers.log" in failed.error


def test_end_workers_leaves_no_registered_process_behind(scheduler):
    process = subprocess.Popen(["sleep", "60"])
    scheduler.registry.register(process.pid, "idle")
    assert scheduler.end_workers(wait=0.2) == 1
    assert process.wait(timeout=5) in (-15, -9)
    assert scheduler.registry.list() == []


def test_the_grace_kill_waits_while_the_worker_writes_a_file(store, stand_in):
    scheduler = Scheduler(store, SchedulerSettings(stop_grace=0.3, save_grace=30.0))
    run = running(store, stand_in.pid)
    store.request_stop(run.id)
    time.sleep(0.4)
    store.heartbeat(run.id)
    saving = artifacts.temp_path(store.run_dir(run.id) / artifacts.MODEL_FILE)
    saving.write_bytes(b"half a model")  # the fault's setting: the grace period ends mid-save
    assert scheduler.reap() == []
    assert stand_in.poll() is None and store.get_run(run.id).status == RunStatus.RUNNING
    saving.unlink()  # the save is done
    assert scheduler.reap() == [run.id]
    assert stand_in.wait(timeout=5) == -9


def test_a_write_that_never_ends_does_not_hold_off_the_kill_forever(store, stand_in):
    scheduler = Scheduler(store, SchedulerSettings(stop_grace=0.1, save_grace=0.2))
    run = running(store, stand_in.pid)
    artifacts.temp_path(store.run_dir(run.id) / artifacts.MODEL_FILE).write_bytes(b"stuck")
    store.request_stop(run.id)
    time.sleep(0.4)
    store.heartbeat(run.id)
    assert scheduler.reap() == [run.id]
    assert stand_in.wait(timeout=5) == -9


def test_a_scheduler_starting_removes_temps_that_killed_writers_left(store, stand_in):
    ended = store.create_run("ended", "mnist", {})
    store.request_stop(ended.id)
    live = running(store, stand_in.pid)
    left = artifacts.temp_path(store.run_dir(ended.id) / artifacts.MODEL_FILE)
    left.write_bytes(b"half")
    writing = artifacts.temp_path(store.run_dir(live.id) / artifacts.LAST_FILE)
    writing.write_bytes(b"being written")
    Scheduler(store, SchedulerSettings())
    assert not left.exists() and writing.exists()  # the live run's worker may be writing it right now

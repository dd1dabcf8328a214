"""Contract tests for the run store: every RunStore implementation must pass the `store` tests.

Add an implementation to IMPLEMENTATIONS and the whole suite runs against it too.
"""
from __future__ import annotations

import multiprocessing
import os
import sqlite3
import threading
import time

import pytest

from pipelines.errors import LayerlabError, RunNotFoundError, RunStateError
from pipelines.runs.entities import MetricPoint, PlannedRun, Progress, RunStatus, validate_run_id
from pipelines.runs.sqlite_schema import SCHEMA_VERSION
from pipelines.runs.sqlite_store import SQLiteRunStore

IMPLEMENTATIONS = [SQLiteRunStore]
SPEC = {"layers": [{"type": "Dense", "units": 10}], "fit": {"epochs": 5, "batch_size": 32}}
MALFORMED_IDS = ["", "abc", "../etc", "../../etc/passwd", "0123456789a", "ABCDEF0123",
                 "zzzzzzzzzz", "0123456789\n", None, 1234567890]


@pytest.fixture(params=IMPLEMENTATIONS, ids=lambda cls: cls.__name__)
def open_store(request, tmp_path):
    """Open a store of the implementation under test on a home (tmp_path by default)."""
    opened = []

    def open_(home=tmp_path):
        store = request.param(home)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()


@pytest.fixture
def store(open_store):
    return open_store()


def _point(epoch, step, name="loss", value=1.0, kind="batch"):
    return MetricPoint(kind=kind, epoch=epoch, step=step, name=name, value=value, timestamp=time.time())


def _running(store):
    run = store.create_run("r", "mnist", SPEC)
    claimed = store.claim_next_run(worker_pid=os.getpid(), max_running=100)
    assert claimed.id == run.id
    return claimed


# -- entities ----------------------------------------------------------------------------------


def test_run_status_properties():
    assert {s for s in RunStatus if s.is_terminal} == {
        RunStatus.COMPLETED, RunStatus.STOPPED, RunStatus.FAILED, RunStatus.INTERRUPTED}
    assert {s for s in RunStatus if s.is_active} == {RunStatus.QUEUED, RunStatus.RUNNING}
    assert {s for s in RunStatus if s.can_resume} == {RunStatus.STOPPED, RunStatus.INTERRUPTED}
    assert RunStatus("RUNNING") is RunStatus.RUNNING
    assert f"{RunStatus.QUEUED}" == "QUEUED"


@pytest.mark.parametrize(
    "progress, expected",
    [
        (Progress(), 0.0),
        (Progress(epoch=0, total_epochs=4, step=5, steps_per_epoch=10), 0.125),
        (Progress(epoch=2, total_epochs=4, step=0, steps_per_epoch=0), 0.5),
        (Progress(epoch=4, total_epochs=4, step=3, steps_per_epoch=10), 1.0),
    ],
)
def test_progress_fraction(progress, expected):
    assert progress.fraction == pytest.approx(expected)


def test_metric_point_rejects_unknown_kind():
    with pytest.raises(LayerlabError, match="must be one of: batch, epoch"):
        MetricPoint(kind="step", epoch=0, step=0, name="loss", value=1.0, timestamp=0.0)


@pytest.mark.parametrize("bad", MALFORMED_IDS)
def test_validate_run_id_rejects_malformed(bad):
    with pytest.raises(RunNotFoundError, match="must be 10 hexadecimal characters"):
        validate_run_id(bad)


# -- create, get, list -------------------------------------------------------------------------


def test_create_and_get_round_trip(store):
    before = time.time()
    run = store.create_run("first", "mnist", SPEC, total_epochs=5)
    assert len(run.id) == 10 and validate_run_id(run.id) == run.id
    assert run.name == "first" and run.dataset == "mnist" and run.spec == SPEC
    assert run.status is RunStatus.QUEUED
    assert before <= run.created_at <= time.time()
    assert run.started_at is None and run.finished_at is None and run.heartbeat_at is None
    assert run.worker_pid is None and run.error is None and run.metrics == {}
    assert run.progress == Progress(total_epochs=5)
    assert (run.epochs_done, run.best_epoch, run.stop_requested, run.resume_count) == (0, None, False, 0)
    assert (run.tags, run.note, run.sweep_id, run.sweep_settings, run.repeat_group) == ((), "", None, {}, None)
    assert run.executor == "local" and run.seed is None  # SPEC names no seed
    assert store.get_run(run.id) == run
    seeded = store.create_run("seeded", "mnist", {**SPEC, "fit": {"epochs": 1, "seed": 7}}, tags=[" a ", "b"],
                              note="first try", repeat_group="g")
    assert (seeded.seed, seeded.tags, seeded.note, seeded.repeat_group) == (7, ("a", "b"), "first try", "g")
    assert store.get_run(seeded.id) == seeded


def test_create_run_defaults_name_and_plans_no_epochs_unless_told(store):
    run = store.create_run("", "fashion_mnist", {"layers": []})
    assert run.name.startswith("fashion_mnist ")
    assert run.progress.total_epochs == 0


def test_create_run_rejects_non_json_spec(store):
    with pytest.raises(LayerlabError, match="plain JSON"):
        store.create_run("x", "mnist", {"fit": {"epochs": object()}})


def test_create_run_redraws_colliding_id(store, monkeypatch):
    ids = iter(["aaaaaaaaaa", "aaaaaaaaaa", "bbbbbbbbbb"])
    monkeypatch.setattr("pipelines.runs.sqlite_store.new_run_id", lambda: next(ids))
    assert store.create_run("a", "mnist", SPEC).id == "aaaaaaaaaa"
    assert store.create_run("b", "mnist", SPEC).id == "bbbbbbbbbb"


def test_list_runs_newest_first_filtered_and_limited(store):
    runs = [store.create_run(f"run {i}", "mnist", SPEC) for i in range(4)]
    assert [r.id for r in store.list_runs()] == [r.id for r in reversed(runs)]
    store.claim_next_run(worker_pid=1, max_running=5)
    assert [r.id for r in store.list_runs([RunStatus.RUNNING])] == [runs[0].id]
    assert [r.id for r in store.running_runs()] == [runs[0].id]
    assert [r.id for r in store.list_runs(["QUEUED"], limit=2)] == [runs[3].id, runs[2].id]
    assert store.list_runs([]) == []
    assert [r.id for r in store.list_runs(limit=1)] == [runs[3].id]


def test_get_unknown_run_names_the_id(store):
    with pytest.raises(RunNotFoundError, match="No run with id 'abcdef0123'"):
        store.get_run("abcdef0123")


@pytest.mark.parametrize("bad", MALFORMED_IDS)
@pytest.mark.parametrize(
    "call",
    [
        lambda s, i: s.get_run(i),
        lambda s, i: s.run_dir(i),
        lambda s, i: s.delete_run(i),
        lambda s, i: s.request_stop(i),
        lambda s, i: s.finish_run(i, RunStatus.FAILED),
        lambda s, i: s.log_metrics(i, []),
        lambda s, i: s.get_metrics(i),
        lambda s, i: s.queue_position(i),
        lambda s, i: s.heartbeat(i),
        lambda s, i: s.rename_run(i, "x"),
        lambda s, i: s.set_tags(i, ["x"]),
        lambda s, i: s.set_note(i, "x"),
    ],
    ids=["get_run", "run_dir", "delete_run", "request_stop", "finish_run", "log_metrics",
         "get_metrics", "queue_position", "heartbeat", "rename_run", "set_tags", "set_note"],
)
def test_malformed_ids_rejected_everywhere(store, call, bad):
    with pytest.raises(RunNotFoundError, match="must be 10 hexadecimal characters"):
        call(store, bad)


def test_path_traversal_id_touches_no_path(store, tmp_path):
    with pytest.raises(RunNotFoundError, match=r"Received: run_id='\.\./etc'"):
        store.run_dir("../etc")
    assert not (tmp_path / "etc").exists()
    assert not (tmp_path / "runs").exists()


def test_resolve_run_id(store, monkeypatch):
    ids = iter(["abcd000001", "abcd000002", "ffff123456"])
    monkeypatch.setattr("pipelines.runs.sqlite_store.new_run_id", lambda: next(ids))
    for name in "abc":
        store.create_run(name, "mnist", SPEC)
    assert store.resolve_run_id("ffff") == "ffff123456"
    assert store.resolve_run_id(" ABCD000001 ") == "abcd000001"
    with pytest.raises(RunNotFoundError, match="ambiguous; it matches: abcd000001, abcd000002"):
        store.resolve_run_id("abcd")
    with pytest.raises(RunNotFoundError, match="No run id starts with '1234'"):
        store.resolve_run_id("1234")
    with pytest.raises(RunNotFoundError, match="4 to 10 hexadecimal"):
        store.resolve_run_id("ab")
    with pytest.raises(RunNotFoundError, match="4 to 10 hexadecimal"):
        store.resolve_run_id("../etc")


# -- queue and claiming ------------------------------------------------------------------------


def test_queue_position(store):
    a, b, c = (store.create_run(n, "mnist", SPEC) for n in "abc")
    assert [store.queue_position(r.id) for r in (a, b, c)] == [1, 2, 3]
    store.claim_next_run(worker_pid=1, max_running=5)
    assert [store.queue_position(r.id) for r in (a, b, c)] == [None, 1, 2]
    store.request_stop(b.id)
    assert store.queue_position(c.id) == 1
    with pytest.raises(RunNotFoundError, match="No run with id"):
        store.queue_position("0000000000")


def test_claim_is_fifo_and_respects_max_running(store):
    a, b, c = (store.create_run(n, "mnist", SPEC) for n in "abc")
    before = time.time()
    first = store.claim_next_run(worker_pid=111, max_running=2)
    assert first.id == a.id and first.status is RunStatus.RUNNING
    assert first.worker_pid == 111 and before <= first.started_at == first.heartbeat_at
    assert store.claim_next_run(worker_pid=222, max_running=2).id == b.id
    assert store.claim_next_run(worker_pid=333, max_running=2) is None
    assert store.get_run(c.id).status is RunStatus.QUEUED
    store.finish_run(a.id, RunStatus.COMPLETED)
    assert store.claim_next_run(worker_pid=333, max_running=2).id == c.id
    assert store.claim_next_run(worker_pid=444, max_running=10) is None
    with pytest.raises(LayerlabError, match="max_running=-1"):
        store.claim_next_run(worker_pid=1, max_running=-1)


def _claim_until_empty(store_cls, home, max_running, barrier, results):
    """One racing worker process: claim runs until the store says no."""
    store = store_cls(home)
    barrier.wait()
    claimed = []
    while (run := store.claim_next_run(worker_pid=os.getpid(), max_running=max_running)) is not None:
        claimed.append(run.id)
    results.put(claimed)
    store.close()


@pytest.mark.parametrize("max_running, expected_claims", [(10, 3), (1, 1), (2, 2)])
def test_claim_race_across_processes(open_store, tmp_path, max_running, expected_claims):
    store = open_store()
    queued = [store.create_run(n, "mnist", SPEC).id for n in "abc"]
    # fork is several times faster to start than spawn; each child still opens its own store.
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    barrier, results = context.Barrier(4), context.Queue()
    processes = [
        context.Process(target=_claim_until_empty,
                        args=(type(store), tmp_path, max_running, barrier, results))
        for _ in range(4)
    ]
    for process in processes:
        process.start()
    claims = [run_id for _ in processes for run_id in results.get(timeout=30)]
    for process in processes:
        process.join(timeout=30)
        assert process.exitcode == 0
    assert len(claims) == len(set(claims)) == expected_claims
    assert claims and set(claims) <= set(queued)
    assert sorted(r.id for r in store.running_runs()) == sorted(claims)
    assert {r.worker_pid for r in store.running_runs()} <= {p.pid for p in processes}


# -- progress, heartbeats, metrics -------------------------------------------------------------


def test_heartbeat_and_progress(store):
    run = _running(store)
    time.sleep(0.01)
    store.heartbeat(run.id)
    beat = store.get_run(run.id).heartbeat_at
    assert beat > run.heartbeat_at
    progress = Progress(epoch=2, total_epochs=5, step=7, steps_per_epoch=10)
    store.update_progress(run.id, progress)
    after = store.get_run(run.id)
    assert after.progress == progress and after.heartbeat_at >= beat
    store.set_epochs_done(run.id, 2, best_epoch=1)
    assert (store.get_run(run.id).epochs_done, store.get_run(run.id).best_epoch) == (2, 1)
    with pytest.raises(RunNotFoundError, match="0000000000"):
        store.update_progress("0000000000", progress)
    with pytest.raises(RunNotFoundError, match="0000000000"):
        store.set_epochs_done("0000000000", 1, None)


def test_metrics_round_trip_and_kind_filter(store):
    run = _running(store)
    points = [_point(0, s, value=1.0 / (s + 1)) for s in range(3)]
    points.append(_point(0, 3, "val_accuracy", 0.9, kind="epoch"))
    store.log_metrics(run.id, points)
    assert store.get_metrics(run.id) == points
    assert store.get_metrics(run.id, kind="epoch") == points[3:]
    assert store.get_metrics(run.id, kind="batch") == points[:3]
    with pytest.raises(LayerlabError, match="Received: kind='steps'"):
        store.get_metrics(run.id, kind="steps")
    with pytest.raises(RunNotFoundError, match="No run with id"):
        store.log_metrics("0000000000", points)


def test_metrics_since_id_polling(store):
    run, other = _running(store), store.create_run("other", "mnist", SPEC)
    first = [_point(0, s) for s in range(3)]
    store.log_metrics(run.id, first)
    store.log_metrics(other.id, [_point(0, 0, "noise")])
    seen, last_id = store.get_metrics_since(run.id, 0)
    assert seen == first
    assert store.get_metrics_since(run.id, last_id) == ([], last_id)
    second = [_point(0, s) for s in range(3, 5)]
    store.log_metrics(run.id, second)
    new, newer_id = store.get_metrics_since(run.id, last_id)
    assert new == second and newer_id > last_id
    assert store.get_metrics(run.id, after_id=last_id) == second


def test_log_metrics_takes_a_thousand_points_in_one_call(store):
    """How fast: bench/latency.py. Here only that a large batch lands whole and in order."""
    run = _running(store)
    points = [_point(i // 100, i % 100, value=float(i)) for i in range(1000)]
    for _ in range(3):
        store.log_metrics(run.id, points)
    stored = store.get_metrics(run.id)
    assert len(stored) == 3000 and [p.value for p in stored[:1000]] == [float(i) for i in range(1000)]


def test_delete_metrics_from_epoch_keeps_ids_growing(store):
    run = _running(store)
    store.log_metrics(run.id, [_point(e, s) for e in range(3) for s in range(2)])
    _, last_id = store.get_metrics_since(run.id)
    assert store.delete_metrics_from_epoch(run.id, 1) == 4
    assert [p.epoch for p in store.get_metrics(run.id)] == [0, 0]
    store.log_metrics(run.id, [_point(1, 0)])
    new, _ = store.get_metrics_since(run.id, last_id)
    assert [(p.epoch, p.step) for p in new] == [(1, 0)]


def test_writes_from_many_threads(store):
    run = _running(store)
    errors = []

    def work():
        try:
            for i in range(20):
                store.log_metrics(run.id, [_point(0, i)])
                store.heartbeat(run.id)
        except Exception as error:  # surfaced by the assert below
            errors.append(error)
        finally:
            store.close()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(store.get_metrics(run.id)) == 80


# -- stopping, finishing, interrupting, resuming ------------------------------------------------


def test_stop_queued_run_stops_it_at_once(store):
    run = store.create_run("q", "mnist", SPEC)
    stopped = store.request_stop(run.id)
    assert stopped.status is RunStatus.STOPPED and stopped.finished_at is not None
    assert store.claim_next_run(worker_pid=1, max_running=5) is None


def test_stop_running_run_sets_the_flag(store):
    run = _running(store)
    assert not store.is_stop_requested(run.id)
    assert store.request_stop(run.id).status is RunStatus.RUNNING
    assert store.is_stop_requested(run.id)
    assert store.get_run(run.id).stop_requested


@pytest.mark.parametrize("status", [s for s in RunStatus if s.is_terminal])
def test_stop_terminal_run_is_refused(store, status):
    run = _running(store)
    store.finish_run(run.id, status)
    with pytest.raises(RunStateError, match=f"Run {run.id} is {status.value}"):
        store.request_stop(run.id)


def test_finish_run_rules(store):
    run = _running(store)
    for bad in (RunStatus.RUNNING, RunStatus.QUEUED, "DONE"):
        with pytest.raises(RunStateError, match="can only finish as one of: COMPLETED"):
            store.finish_run(run.id, bad)
    store.finish_run(run.id, RunStatus.STOPPED, metrics={"train_loss": 0.5, "val_accuracy": 0.8})
    finished = store.finish_run(run.id, RunStatus.COMPLETED, metrics={"test_accuracy": 0.9})
    assert finished.status is RunStatus.COMPLETED and finished.worker_pid is None
    assert finished.finished_at is not None and finished.error is None
    assert finished.metrics == {"train_loss": 0.5, "val_accuracy": 0.8, "test_accuracy": 0.9}
    failed = store.finish_run(store.create_run("f", "mnist", SPEC).id, "FAILED", error="boom")
    assert (failed.status, failed.error) == (RunStatus.FAILED, "boom")
    with pytest.raises(RunNotFoundError, match="0000000000"):
        store.finish_run("0000000000", RunStatus.FAILED)


def test_mark_interrupted_only_changes_running_runs(store):
    run = _running(store)
    assert store.mark_interrupted(run.id, "worker 123 stopped sending heartbeats")
    interrupted = store.get_run(run.id)
    assert interrupted.status is RunStatus.INTERRUPTED
    assert interrupted.error == "worker 123 stopped sending heartbeats"
    assert interrupted.finished_at is not None and interrupted.worker_pid is None
    assert not store.mark_interrupted(run.id, "again")
    queued = store.create_run("q", "mnist", SPEC)
    assert not store.mark_interrupted(queued.id, "not running")
    assert store.get_run(queued.id).status is RunStatus.QUEUED
    with pytest.raises(RunNotFoundError, match="0000000000"):
        store.mark_interrupted("0000000000", "x")


def test_resume_requeues_at_the_back_and_keeps_first_start(store):
    run = _running(store)
    waiting = store.create_run("waiting", "mnist", SPEC)
    store.request_stop(run.id)
    store.finish_run(run.id, RunStatus.STOPPED, error="stopped by user")
    resumed = store.request_resume(run.id)
    assert resumed.status is RunStatus.QUEUED and resumed.resume_count == 1
    assert resumed.error is None and resumed.finished_at is None and not resumed.stop_requested
    assert resumed.started_at == run.started_at
    assert store.queue_position(waiting.id) == 1 and store.queue_position(run.id) == 2
    assert store.claim_next_run(worker_pid=1, max_running=5).id == waiting.id
    again = store.claim_next_run(worker_pid=2, max_running=5)
    assert again.id == run.id and again.started_at == run.started_at and again.worker_pid == 2
    store.mark_interrupted(run.id, "worker died")
    assert store.request_resume(run.id).resume_count == 2


@pytest.mark.parametrize("status", ["QUEUED", "RUNNING", "COMPLETED", "FAILED"])
def test_resume_refused_unless_stopped_or_interrupted(store, status):
    run = store.create_run("r", "mnist", SPEC)
    if status != "QUEUED":
        store.claim_next_run(worker_pid=1, max_running=5)
    if status in ("COMPLETED", "FAILED"):
        store.finish_run(run.id, status)
    with pytest.raises(
        RunStateError, match=f"Run {run.id} is {status}; only STOPPED or INTERRUPTED runs can be resumed"
    ):
        store.request_resume(run.id)


# -- names, tags, notes, repeat groups ----------------------------------------------------------


def test_rename_tag_and_note_any_run_and_record_them(store):
    run = _running(store)
    renamed = store.rename_run(run.id, "  lr 1e-3, the good one  ")
    assert renamed.name == "lr 1e-3, the good one" and renamed.status is RunStatus.RUNNING
    assert store.set_tags(run.id, ["best", " lr ", "BEST", ""]).tags == ("best", "lr")
    assert store.set_note(run.id, "kept its lead over 3 seeds\n").note == "kept its lead over 3 seeds"
    store.finish_run(run.id, RunStatus.COMPLETED)
    after = store.get_run(run.id)
    assert (after.name, after.tags, after.note) == ("lr 1e-3, the good one", ("best", "lr"), "kept its lead over 3 seeds")
    assert store.set_tags(run.id, []).tags == () and store.set_note(run.id, "").note == ""


@pytest.mark.parametrize("call, message", [
    (lambda s, i: s.rename_run(i, "   "), "non-empty"),
    (lambda s, i: s.rename_run(i, "two\nlines"), "one line"),
    (lambda s, i: s.rename_run(i, "x" * 201), "at most 200"),
    (lambda s, i: s.set_tags(i, "best"), "list of texts"),
    (lambda s, i: s.set_tags(i, ["a,b"]), "without commas"),
    (lambda s, i: s.set_tags(i, [f"t{n}" for n in range(21)]), "at most 20 tags"),
    (lambda s, i: s.set_note(i, None), "must be a text"),
    (lambda s, i: s.set_note(i, "x" * 10_001), "at most 10,000"),
])
def test_bad_names_tags_and_notes_are_refused_and_change_nothing(store, call, message):
    run = store.create_run("r", "mnist", SPEC, tags=["keep"])
    with pytest.raises(LayerlabError, match=message):
        call(store, run.id)
    assert store.get_run(run.id) == run


def test_repeat_groups_list_together(store):
    first = store.create_run("seed 0", "mnist", SPEC)
    store.set_repeat_group(first.id, first.id)
    second = store.create_run("seed 1", "mnist", SPEC, repeat_group=first.id)
    store.create_run("other", "mnist", SPEC)
    assert {r.id for r in store.list_runs(repeat_group=first.id)} == {first.id, second.id}


# -- sweeps ------------------------------------------------------------------------------------


def _plan(lrs, repeats=1):
    return [PlannedRun(f"lr {lr} seed {seed}", {**SPEC, "fit": {"epochs": 5, "seed": seed}}, 5, {"lr": lr},
                       f"group-{lr}" if repeats > 1 else None, seed)
            for lr in lrs for seed in range(repeats)]


def test_create_sweep_queues_its_runs_in_order_grouped(store):
    single = store.create_run("single", "mnist", SPEC)
    sweep = store.create_sweep("lr", "mnist", SPEC, [("lr", [1e-3, 1e-2])], _plan([1e-3, 1e-2], repeats=2), repeats=2)
    assert (sweep.name, sweep.dataset, sweep.axes, sweep.repeats, sweep.cancelled) == (
        "lr", "mnist", (("lr", (1e-3, 1e-2)),), 2, False)
    assert store.get_sweep(sweep.id) == sweep and store.list_sweeps() == [sweep]
    runs = store.list_runs(sweep_id=sweep.id)
    assert [r.name for r in reversed(runs)] == ["lr 0.001 seed 0", "lr 0.001 seed 1", "lr 0.01 seed 0", "lr 0.01 seed 1"]
    assert all(r.sweep_id == sweep.id and r.status is RunStatus.QUEUED for r in runs)
    assert [(r.sweep_settings, r.seed, r.repeat_group) for r in reversed(runs)][1] == ({"lr": 1e-3}, 1, "group-0.001")
    assert [store.queue_position(r.id) for r in reversed(runs)] == [2, 3, 4, 5]
    assert store.list_runs(sweep_id=sweep.id, statuses=[RunStatus.RUNNING]) == []
    assert single.id not in {r.id for r in runs}
    with pytest.raises(RunNotFoundError, match="No sweep with id 'abcdef0123'"):
        store.get_sweep("abcdef0123")
    with pytest.raises(RunNotFoundError, match="Sweep id must be 10 hexadecimal"):
        store.list_runs(sweep_id="../x")


def test_a_sweep_that_cannot_be_stored_queues_nothing(store):
    bad = [PlannedRun("ok", SPEC, 5), PlannedRun("bad", {"fit": {"epochs": object()}}, 5)]
    with pytest.raises(LayerlabError, match="plain JSON"):
        store.create_sweep("s", "mnist", SPEC, [("lr", [1])], bad)
    assert store.list_runs() == [] and store.list_sweeps() == []


def test_cancel_sweep_stops_queued_runs_and_asks_running_ones(store):
    sweep = store.create_sweep("lr", "mnist", SPEC, [("lr", [1, 2, 3])], _plan([1, 2, 3]))
    other = store.create_run("not in the sweep", "mnist", SPEC)
    running = store.claim_next_run(worker_pid=os.getpid(), max_running=1)
    cancelled = store.cancel_sweep(sweep.id)
    assert cancelled.cancelled and store.get_sweep(sweep.id).cancelled_at == cancelled.cancelled_at
    statuses = {r.id: r.status for r in store.list_runs(sweep_id=sweep.id)}
    assert statuses[running.id] is RunStatus.RUNNING and store.is_stop_requested(running.id)
    assert sorted(s.value for s in statuses.values()) == ["RUNNING", "STOPPED", "STOPPED"]
    assert store.get_run(other.id).status is RunStatus.QUEUED
    assert store.cancel_sweep(sweep.id).cancelled_at == cancelled.cancelled_at  # twice is fine


def test_claims_keep_executors_apart_and_follow_a_sweep_only_in_its_turn(store):
    ray_run = store.create_run("ray", "mnist", SPEC, executor="ray")
    sweep = store.create_sweep("s", "mnist", SPEC, [("lr", [1, 2])], _plan([1, 2]))
    later = store.create_run("later", "mnist", SPEC)
    first, second = reversed(store.list_runs(sweep_id=sweep.id))
    assert store.queue_position(ray_run.id) == 1 and store.queue_position(first.id) == 1
    assert store.claim_next_run(1, 1, executor="ray").id == ray_run.id
    assert store.claim_next_run(2, 1).id == first.id  # a running Ray run takes no local slot
    store.finish_run(first.id, RunStatus.COMPLETED)
    assert store.claim_next_run(2, 1, sweep_id=sweep.id).id == second.id
    store.finish_run(second.id, RunStatus.COMPLETED)
    assert store.claim_next_run(2, 1, sweep_id=sweep.id) is None  # next is not the sweep's
    assert store.claim_next_run(3, 1).id == later.id
    with pytest.raises(LayerlabError, match="executor='gpu'"):
        store.claim_next_run(1, 1, executor="gpu")


def test_resume_can_hand_a_run_to_another_executor(store):
    store.create_run("r", "mnist", SPEC, executor="ray")
    run = store.claim_next_run(1, 1, executor="ray")
    store.mark_interrupted(run.id, "node died")
    assert store.request_resume(run.id, executor="local").executor == "local"


# -- artifacts and deletion --------------------------------------------------------------------


def test_run_dir_and_delete_run(store, tmp_path):
    run = store.create_run("r", "mnist", SPEC)
    folder = store.run_dir(run.id)
    assert folder == tmp_path / "runs" / run.id
    assert [p.name for p in folder.iterdir()] == ["run.json"]  # the run's record; reading creates nothing more
    assert store.ensure_run_dir(run.id) == folder and folder.is_dir()
    (folder / "checkpoint.keras").write_text("weights")
    store.log_metrics(run.id, [_point(0, 0)])
    keep = store.create_run("keep", "mnist", SPEC)
    store.log_metrics(keep.id, [_point(0, 0)])
    store.delete_run(run.id)
    assert not folder.exists()
    with pytest.raises(RunNotFoundError, match=run.id):
        store.get_run(run.id)
    with pytest.raises(RunNotFoundError, match=run.id):
        store.run_dir(run.id)
    assert len(store.get_metrics(keep.id)) == 1
    with pytest.raises(RunNotFoundError, match=run.id):
        store.delete_run(run.id)


def test_delete_running_run_is_refused(store):
    run = _running(store)
    with pytest.raises(RunStateError, match="is RUNNING; stop it"):
        store.delete_run(run.id)


# -- persistence -------------------------------------------------------------------------------


def test_reopened_store_sees_the_same_data(open_store, tmp_path):
    first = open_store(tmp_path)
    run = first.create_run("persist", "mnist", SPEC)
    first.log_metrics(run.id, [_point(0, 0)])
    first.close()
    second = open_store(tmp_path)
    assert second.get_run(run.id) == run
    assert len(second.get_metrics(run.id)) == 1


# -- SQLite specifics --------------------------------------------------------------------------


def test_sqlite_uses_wal_and_schema_version(tmp_path):
    with SQLiteRunStore(tmp_path) as store:
        store.create_run("r", "mnist", SPEC)
    connection = sqlite3.connect(tmp_path / "runs.db")
    try:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    finally:
        connection.close()


def test_sqlite_refuses_newer_schema(tmp_path):
    SQLiteRunStore(tmp_path).close()
    connection = sqlite3.connect(tmp_path / "runs.db")
    connection.execute("PRAGMA user_version = 99")
    connection.close()
    with pytest.raises(LayerlabError, match="schema version 99"):
        SQLiteRunStore(tmp_path)


def test_sqlite_home_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("LAYERLAB_HOME", str(tmp_path / "env_home"))
    with SQLiteRunStore() as store:
        assert store.db_path == tmp_path / "env_home" / "runs.db"
        assert store.db_path.exists()


# -- runs no worker trains (imported models) ---------------------------------------------------


def test_a_finished_run_is_completed_at_once_with_its_files_as_its_folder(store):
    files = store.home / "incoming"
    files.mkdir()
    (files / "model.keras").write_bytes(b"model")
    run = store.add_finished_run("imported", "mnist", SPEC, files, metrics={"test_accuracy": 0.5},
                                 tags=("imported",), note="from a.keras")
    assert run.status is RunStatus.COMPLETED and run.finished_at is not None
    assert run.metrics == {"test_accuracy": 0.5} and run.tags == ("imported",) and run.note == "from a.keras"
    assert (store.run_dir(run.id) / "model.keras").read_bytes() == b"model" and not files.exists()
    assert (store.run_dir(run.id) / "run.json").is_file()
    assert store.claim_next_run(worker_pid=os.getpid(), max_running=100) is None
    assert store.get_run(run.id) == run


def test_a_finished_run_whose_files_cannot_be_moved_stores_nothing(store):
    with pytest.raises(LayerlabError, match="Cannot write"):
        store.add_finished_run("imported", "mnist", SPEC, store.home / "missing")
    assert store.list_runs() == []
    assert not list((store.home / "runs").glob("*"))

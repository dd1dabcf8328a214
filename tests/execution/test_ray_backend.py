"""Sweeps on a Ray cluster (a local one, started once per session by the `ray_cluster` fixture):
the runs land in the same store with curves and models, a dead task leaves its run INTERRUPTED and
resumable, and cancelling a sweep cancels its tasks."""
import os
import signal

import pytest

from pipelines.execution.scheduler import Scheduler, SchedulerSettings
from pipelines.modelspec.presets import get_preset
from pipelines.modelspec.sweep import parse_axis
from pipelines.runs.artifacts import BEST_FILE, HISTORY_FILE, MODEL_FILE
from pipelines.runs.entities import RunStatus
from pipelines.runs.sqlite_store import SQLiteRunStore
from tests.execution.waiting import wait_until

pytestmark = pytest.mark.slow
MLP_512 = get_preset("mlp-512").spec
SLOW = MLP_512.with_fit(epochs=6, batch_size=8, validation_split=0.1)  # about a second an epoch
# Minutes of training at rest, more under load: a cancel always reaches its runs mid-run.
CANCELLABLE = MLP_512.with_fit(epochs=200, batch_size=8, validation_split=0.1)


@pytest.fixture
def scheduler(tmp_path, shared_datasets, ray_cluster):
    """A scheduler driving Ray runs from this process. Its heartbeat timeout is a minute, not 3 s:
    with the cores pinned, this process's heartbeat thread can miss 3 s beside the test's polling
    and the driver's loop, and the reaper then interrupts healthy runs (seen under load). A dead
    task, which one test is about, is seen by the driver through Ray, not through a heartbeat."""
    store = SQLiteRunStore(tmp_path / "home")
    scheduler = Scheduler(store, SchedulerSettings(data_dir=shared_datasets / "mnist-sample", ray_address=ray_cluster,
                                                   heartbeat_timeout=60))
    yield scheduler
    scheduler.close()
    scheduler.end_workers()


def _finished(scheduler, sweep_id):
    def check():
        scheduler.ensure_workers()
        return scheduler.sweep_progress(sweep_id).finished
    return check


def test_a_sweep_of_three_learning_rates_on_ray_ends_with_three_runs_with_curves_and_models(scheduler):
    store = scheduler.store
    sweep = scheduler.submit_sweep(MLP_512.with_fit(epochs=1), "mnist", [parse_axis("lr=1e-4,1e-3,1e-2")])
    assert sweep.executor == "ray"
    wait_until(_finished(scheduler, sweep.id), timeout=600)
    runs = scheduler.sweep_runs(sweep.id)
    assert [r.status for r in runs] == [RunStatus.COMPLETED] * 3, [r.error for r in runs]
    assert [r.sweep_settings["lr"] for r in runs] == [1e-4, 1e-3, 1e-2]
    for run in runs:
        assert run.executor == "ray" and run.metrics["test_accuracy"] > 0.5
        assert {"loss", "accuracy"} <= {p.name for p in store.get_metrics(run.id, kind="epoch")}
        assert store.get_metrics(run.id, kind="batch"), "the batch curve came back live"
        folder = store.run_dir(run.id)
        for name in (MODEL_FILE, BEST_FILE, HISTORY_FILE, "spec.json"):
            assert (folder / name).stat().st_size > 0, name
        assert (folder / HISTORY_FILE).read_text().count("\n") == 2
    assert not store.list_runs(statuses=[RunStatus.RUNNING])
    assert scheduler.registry.list() == []  # no local worker was started for them


def test_a_dead_ray_task_leaves_its_run_interrupted_and_it_resumes_on_the_cluster(scheduler):
    store = scheduler.store
    sweep = scheduler.submit_sweep(SLOW, "mnist", [parse_axis("lr=1e-3")])
    run = scheduler.sweep_runs(sweep.id)[0]

    def trained_an_epoch():
        scheduler.ensure_workers()
        return store.get_run(run.id).epochs_done >= 1

    wait_until(trained_an_epoch, timeout=300)
    driver = scheduler._ray_backend()
    os.kill(wait_until(lambda: driver.task_info(run.id), timeout=10)["pid"], signal.SIGKILL)  # the node's worker dies
    interrupted = wait_until(lambda: (r := store.get_run(run.id)).status is RunStatus.INTERRUPTED and r, timeout=60)
    assert "Ray task ended without finishing" in interrupted.error and interrupted.epochs_done >= 1
    assert (store.run_dir(run.id) / "last.keras").exists()  # the checkpoint came back with its epoch
    done = interrupted.epochs_done
    scheduler.resume(run.id)
    wait_until(_finished(scheduler, sweep.id), timeout=300)
    resumed = store.get_run(run.id)
    assert resumed.status is RunStatus.COMPLETED and resumed.resume_count == 1 and resumed.executor == "ray"
    epochs = sorted({p.epoch for p in store.get_metrics(run.id, kind="epoch")})
    assert epochs == list(range(6)) and done >= 1


def test_cancelling_a_ray_sweep_cancels_its_tasks(scheduler, ray_cluster):
    import ray

    store = scheduler.store
    sweep = scheduler.submit_sweep(CANCELLABLE, "mnist", [parse_axis("lr=1e-4,1e-3,1e-2")])
    driver = scheduler._ray_backend()
    slots = driver.slots()
    assert slots < 3, "one run of the three waits in the queue when the sweep is cancelled"

    def training():
        """Every slot's run has trained a batch on the cluster: cancel then meets running tasks."""
        scheduler.ensure_workers()
        running = store.list_runs(statuses=[RunStatus.RUNNING], sweep_id=sweep.id)
        return len(running) == slots and all(r.progress.step > 0 for r in running) and running

    running = wait_until(training, timeout=600, seen=lambda: [(r.status.value, r.progress, r.error)
                                                              for r in scheduler.sweep_runs(sweep.id)])
    refs = [task.ref for task in driver._tasks.values()]
    assert len(refs) == slots
    scheduler.cancel_sweep(sweep.id, wait=120)

    # What cancelling promises: no run of the sweep trains on or waits, the queued one never
    # started, and the running ones were stopped mid-run (minutes of epochs were left).
    runs = {r.id: r for r in scheduler.sweep_runs(sweep.id)}
    assert {r.status for r in runs.values()} == {RunStatus.STOPPED}, {r.id: (r.status, r.error) for r in runs.values()}
    assert store.get_sweep(sweep.id).cancelled
    stopped_running = [runs[r.id] for r in running]
    assert all(r.epochs_done < CANCELLABLE.fit.epochs for r in stopped_running)
    [never_started] = [r for r in runs.values() if r.id not in {s.id for s in running}]
    assert never_started.error == "Its sweep was cancelled before it started.", never_started.error
    ready, _ = ray.wait(refs, num_returns=len(refs), timeout=120)
    assert len(ready) == len(refs)  # no task of the sweep is left on the cluster
    wait_until(lambda: not driver._tasks, timeout=60)


def test_the_cli_runs_a_sweep_on_the_cluster_given_by_ray(tmp_path, shared_datasets, ray_cluster):
    import json
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    home = tmp_path / "home"
    result = subprocess.run(
        [sys.executable, "-m", "pipelines", "sweep", "--preset", "mlp-512", "--dataset", "mnist", "--vary",
         "lr=1e-3,1e-2", "--epochs", "1", "--ray", ray_cluster, "--home", str(home), "--data-dir",
         str(shared_datasets / "mnist-sample")],
        cwd=repo, capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(repo)})
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [json.loads(line) for line in result.stdout.strip().splitlines()]  # only JSON: no worker output
    assert [line["status"] for line in lines[:-1]] == ["COMPLETED"] * 2
    assert lines[-1]["executor"] == "ray" and lines[-1]["completed"] == 2 and lines[-1]["best_run_id"]
    store = SQLiteRunStore(home)
    assert all((store.run_dir(line["run_id"]) / MODEL_FILE).exists() for line in lines[:-1])

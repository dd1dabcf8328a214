"""Sweeps through the scheduler: expansion into the store with grouping, progress and estimates,
and real sweeps on the MNIST sample (a finished one, a cancelled one)."""
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.errors import SpecError
from pipelines.execution.processes import pid_alive
from pipelines.execution.scheduler import Scheduler, SchedulerSettings
from pipelines.modelspec.presets import get_preset
from pipelines.modelspec.sweep import Axis, parse_axis
from pipelines.runs.artifacts import HISTORY_FILE, MODEL_FILE
from pipelines.runs.entities import Progress, RunStatus
from pipelines.runs.sqlite_store import SQLiteRunStore
from pipelines.runs.sweeps import best_run, estimate_sweep, plan_runs, sweep_progress
from tests.execution.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
MLP_512 = get_preset("mlp-512").spec


@pytest.fixture
def scheduler(tmp_path, shared_datasets):
    store = SQLiteRunStore(tmp_path / "home")
    scheduler = Scheduler(store, SchedulerSettings(data_dir=shared_datasets / "mnist-sample"))
    yield scheduler
    scheduler.end_workers()  # never leave a worker behind


@pytest.fixture
def patient_scheduler(tmp_path, shared_datasets):
    """A scheduler whose stop grace a loaded machine cannot outlast, so that a stop is honoured by
    the worker itself (the kill after the grace is test_scheduler.py's)."""
    store = SQLiteRunStore(tmp_path / "home")
    scheduler = Scheduler(store, SchedulerSettings(data_dir=shared_datasets / "mnist-sample", stop_grace=120))
    yield scheduler
    scheduler.end_workers()


# -- expansion, progress, estimates (no training) -----------------------------------------------


def test_a_sweep_queues_every_combination_and_seed_grouped(scheduler):
    store = scheduler.store
    sweep = scheduler.submit_sweep(MLP_512.with_fit(seed=5), "mnist",
                                   [parse_axis("lr=1e-3,1e-2"), parse_axis("units@2=64,128")], repeats=2)
    runs = scheduler.sweep_runs(sweep.id)
    assert len(runs) == 8 and sweep.repeats == 2 and sweep.executor == "local"
    assert sweep.axes == (("lr", (1e-3, 1e-2)), ("units@2", (64, 128)))
    assert [r.sweep_settings for r in runs[::2]] == [{"lr": 1e-3, "units@2": 64}, {"lr": 1e-3, "units@2": 128},
                                                    {"lr": 1e-2, "units@2": 64}, {"lr": 1e-2, "units@2": 128}]
    assert [r.seed for r in runs] == [5, 6] * 4
    groups = [r.repeat_group for r in runs]
    assert all(groups) and len(set(groups)) == 4 and groups[0] == groups[1] != groups[2]
    assert runs[1].name == "mlp-512 · lr=0.001, units@2=64 · seed 6"
    assert runs[3].spec["compile"]["learning_rate"] == 1e-3 and runs[3].spec["layers"][1]["params"]["units"] == 128
    assert runs[0].spec["input_shape"] == [28, 28, 1]  # the dataset's input, as a single run gets it
    assert [store.queue_position(r.id) for r in runs] == list(range(1, 9))
    assert all(r.status is RunStatus.QUEUED and r.sweep_id == sweep.id for r in runs)
    assert store.list_sweeps() == [sweep]


@pytest.mark.parametrize("axes, repeats, message", [
    (["lr=1e-3,-1"], 1, "learning_rate"),
    (["units@1=64"], 1, "layer 1 must be a Dense"),
    (["seed=1,2"], 2, "cannot also repeat"),
    (["lr=1e-3"], 0, "repeats"),
])
def test_bad_sweeps_queue_nothing(scheduler, axes, repeats, message):
    with pytest.raises(SpecError, match=message):
        scheduler.submit_sweep(MLP_512, "mnist", [parse_axis(a) for a in axes], repeats=repeats)
    assert scheduler.store.list_runs() == [] and scheduler.store.list_sweeps() == []


def test_progress_counts_and_eta_from_finished_runs(tmp_path):
    store = SQLiteRunStore(tmp_path)
    planned = [entry for entry, _ in plan_runs(MLP_512, [Axis("lr", (0.1, 0.2, 0.3, 0.4))])]
    sweep = store.create_sweep("s", "mnist", {}, [("lr", [0.1, 0.2, 0.3, 0.4])], planned)
    runs = lambda: sorted(store.list_runs(sweep_id=sweep.id), key=lambda r: r.created_at)  # noqa: E731
    assert sweep_progress(runs()).text() == "0 of 4 done" and sweep_progress(runs()).eta_seconds is None
    first = store.claim_next_run(1, 1)
    store.finish_run(first.id, RunStatus.COMPLETED, metrics={"wall_seconds": 10.0})
    second = store.claim_next_run(1, 1)
    store.update_progress(second.id, Progress(epoch=1, total_epochs=2, step=0, steps_per_epoch=10))
    progress = sweep_progress(runs())
    assert (progress.done, progress.running, progress.queued, progress.total) == (1, 1, 2, 4)
    assert progress.eta_seconds == pytest.approx(10.0 * 2.5) and progress.fraction == pytest.approx(1.5 / 4)
    assert progress.text() == "1 of 4 done, 1 running, about 25 s left"
    assert sweep_progress(runs(), parallel=2).eta_seconds == pytest.approx(12.5)


def test_the_estimate_uses_this_machines_finished_runs_on_the_dataset(tmp_path):
    store = SQLiteRunStore(tmp_path)
    specs = [MLP_512.with_fit(epochs=2)] * 3
    default = estimate_sweep(specs, "mnist", 5000, store.list_runs())
    assert default.measured_runs == 0 and "default rate" in default.basis
    run = store.create_run("measured", "mnist", MLP_512.to_dict())
    store.claim_next_run(1, 1)
    store.finish_run(run.id, RunStatus.COMPLETED, metrics={"samples_per_second": 2000.0, "wall_seconds": 9.0,
                                                           "fit_seconds": 5.0})
    measured = estimate_sweep(specs, "mnist", 5000, store.list_runs())
    assert measured.measured_runs == 1 and measured.samples_per_second == 2000.0
    assert measured.seconds == pytest.approx(3 * (2 * 5000 / 2000 + 4.0))
    assert estimate_sweep(specs, "mnist", 5000, store.list_runs(), parallel=3).seconds == pytest.approx(9.0)
    assert estimate_sweep(specs, "fashion_mnist", None, store.list_runs()).measured_runs == 0


def test_the_scheduler_estimates_a_sweep_before_it_starts(scheduler):
    estimate = scheduler.estimate_sweep(MLP_512, "mnist", [parse_axis("lr=1e-4,1e-3,1e-2,1e-1")], repeats=2)
    assert estimate.runs == 8 and estimate.seconds > 0
    assert scheduler.store.list_runs() == []  # nothing queued


def test_a_queued_sweep_cancelled_ends_every_run_stopped(scheduler):
    sweep = scheduler.submit_sweep(MLP_512, "mnist", [parse_axis("lr=1e-3,1e-2")])
    cancelled = scheduler.cancel_sweep(sweep.id, wait=1)
    assert cancelled.cancelled
    assert {r.status for r in scheduler.sweep_runs(sweep.id)} == {RunStatus.STOPPED}
    assert scheduler.sweep_progress(sweep.id).finished


def test_a_run_repeated_with_more_seeds_forms_a_repeat_group(scheduler):
    store = scheduler.store
    first = scheduler.submit(MLP_512.with_fit(seed=3), "mnist", name="lr 1e-3")
    more = scheduler.repeat_run(first.id, 2)
    assert [run.seed for run in more] == [4, 5] and [run.name for run in more] == ["lr 1e-3 · seed 4",
                                                                                  "lr 1e-3 · seed 5"]
    group = store.get_run(first.id).repeat_group
    assert group == first.id and {run.id for run in store.list_runs(repeat_group=group)} == {first.id, *(r.id for r in more)}
    assert [run.seed for run in scheduler.repeat_run(more[0].id, 1)] == [6]  # the group's next unused seed
    assert all(run.spec["compile"] == first.spec["compile"] for run in store.list_runs())


def test_without_a_ray_address_ray_is_never_imported(tmp_path, shared_datasets):
    code = ("import sys\nfrom pipelines.cli.main import build_parser\n"
            "from pipelines.execution.scheduler import Scheduler, SchedulerSettings\n"
            "from pipelines.runs.sqlite_store import SQLiteRunStore\n"
            "from pipelines.modelspec.presets import get_preset\nfrom pipelines.modelspec.sweep import parse_axis\n"
            f"s = Scheduler(SQLiteRunStore({str(tmp_path / 'home')!r}), SchedulerSettings(data_dir={str(shared_datasets)!r}))\n"
            "s.submit_sweep(get_preset('mlp-512').spec, 'mnist', [parse_axis('lr=0.1,0.2')])\n"
            "s.estimate_sweep(get_preset('mlp-512').spec, 'mnist', [parse_axis('lr=0.1,0.2')])\n"
            "print('ray' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False"


# -- real sweeps ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_sweep_of_three_learning_rates_ends_with_three_grouped_runs(scheduler):
    store = scheduler.store
    sweep = scheduler.submit_sweep(MLP_512.with_fit(epochs=1), "mnist", [parse_axis("lr=1e-4,1e-3,1e-2")])
    workers = set()

    def done():
        scheduler.ensure_workers()
        for run in scheduler.sweep_runs(sweep.id):
            if run.worker_pid:
                workers.add(run.worker_pid)
        return scheduler.sweep_progress(sweep.id).finished

    wait_until(done, timeout=900)
    runs = scheduler.sweep_runs(sweep.id)
    assert [r.status for r in runs] == [RunStatus.COMPLETED] * 3
    assert [r.sweep_settings["lr"] for r in runs] == [1e-4, 1e-3, 1e-2]
    assert {r.sweep_id for r in runs} == {sweep.id}
    points = {}
    for run in runs:
        points[run.id] = store.get_metrics(run.id, kind="epoch")
        assert {"loss", "accuracy"} <= {p.name for p in points[run.id]}
        assert store.get_metrics(run.id, kind="batch")
        assert (store.run_dir(run.id) / MODEL_FILE).stat().st_size > 0
        assert (store.run_dir(run.id) / HISTORY_FILE).read_text().count("\n") == 2
        assert run.metrics["test_accuracy"] > 0.5
    assert best_run(runs, points).sweep_settings["lr"] in (1e-3, 1e-2)
    assert len(workers) == 1  # one worker trained the sweep's runs one after another
    assert scheduler.sweep_progress(sweep.id).text() == "3 of 3 done"


@pytest.mark.slow
def test_a_cancelled_sweep_leaves_no_run_running_and_no_worker_alive(patient_scheduler):
    scheduler = patient_scheduler
    store = scheduler.store
    # Minutes of work (about a second an epoch at rest): the cancel always meets the first run mid-run.
    long = MLP_512.with_fit(epochs=200, batch_size=8, validation_split=0.1)
    sweep = scheduler.submit_sweep(long, "mnist", [parse_axis("lr=1e-4,1e-3,1e-2")])

    def training():
        scheduler.ensure_workers()
        running = store.list_runs(statuses=[RunStatus.RUNNING], sweep_id=sweep.id)
        return running and running[0].progress.step > 0 and running[0]

    running = wait_until(training, timeout=600)
    workers = {worker.pid for worker in scheduler.registry.list()} | {running.worker_pid}
    scheduler.cancel_sweep(sweep.id, wait=120)
    runs = scheduler.sweep_runs(sweep.id)
    assert not [r for r in runs if r.status is RunStatus.RUNNING]
    assert [r.status for r in runs] == [RunStatus.STOPPED] * 3, [(r.status, r.error) for r in runs]
    assert runs[0].error is None and runs[0].epochs_done < long.fit.epochs  # stopped by its worker, mid-run
    assert "cancelled before it started" in runs[2].error
    assert store.get_sweep(sweep.id).cancelled
    wait_until(lambda: not any(pid_alive(pid) for pid in workers), timeout=60, poll=0.05)
    scheduler.ensure_workers()  # nothing queued: no worker is started again
    assert scheduler.registry.list() == []

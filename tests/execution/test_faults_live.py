"""Faults injected into real runs and real worker processes: the store deleted while a run trains,
a real 3 MB filesystem filling up, a NaN test loss. Slow: each trains a real model."""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pipelines.execution import processes
from pipelines.execution.registry import WorkerRegistry
from pipelines.execution.scheduler import Scheduler, SchedulerSettings
from pipelines.modelspec.presets import get_preset
from pipelines.runs import artifacts
from pipelines.runs.entities import RunStatus
from pipelines.runs.records import read_run_record
from pipelines.runs.sqlite_store import SQLiteRunStore

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def end_workers(home: Path) -> None:
    """Kill every worker of `home` through the registry alone: the store may be the broken part."""
    with contextlib.suppress(Exception):
        for worker in WorkerRegistry(home).list():
            processes.kill(worker.pid)


@pytest.fixture
def home(tmp_path, shared_datasets, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("LAYERLAB_HOME", str(home))
    monkeypatch.setenv("LAYERLAB_DATA_DIR", str(shared_datasets))
    monkeypatch.setenv("LAYERLAB_MAX_RUNNING", "1")
    yield home
    end_workers(home)


def cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines", *args, "--home", str(home)], cwd=REPO,
                          capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(REPO)})


def wait(predicate, timeout: float, poll: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(poll)
    raise AssertionError(f"not within {timeout} s")


def test_store_deleted_while_a_worker_trains_then_rebuilt_and_resumed(home, shared_datasets):
    data_dir = str(shared_datasets / "mnist-sample")
    store = SQLiteRunStore(home)
    scheduler = Scheduler(store, SchedulerSettings(data_dir=data_dir))
    run = scheduler.submit(get_preset("mlp-512").spec.with_fit(epochs=6, batch_size=8, validation_split=0.1), "mnist")
    scheduler.ensure_workers()
    pid = wait(lambda: (r := store.get_run(run.id)).epochs_done >= 1 and r.worker_pid, timeout=120)
    os.remove(home / "runs.db")  # the fault: `rm runs.db` mid-run, as a user did

    wait(lambda: not processes.pid_alive(pid), timeout=30)  # the worker ends, it does not train on blind
    record = read_run_record(home / "runs" / run.id)
    assert record.status is RunStatus.INTERRUPTED and "run store could not be used" in record.error
    assert "Traceback" not in (home / "logs" / "workers.log").read_text()
    listed = cli(home, "runs")
    assert listed.returncode == 1 and "Traceback" not in listed.stderr
    assert f"{home / 'runs.db'} is missing" in listed.stderr and "store rebuild" in listed.stderr
    assert not (home / "runs.db").exists()  # no empty store appeared over the run
    assert cli(home, "store", "check").returncode == 1

    rebuilt = cli(home, "store", "rebuild")
    assert rebuilt.returncode == 0 and "recovered 1 run(s)" in rebuilt.stdout and "1 INTERRUPTED" in rebuilt.stdout
    resumed = cli(home, "resume", run.id, "--data-dir", data_dir)
    assert resumed.returncode == 0, resumed.stderr
    done = json.loads(cli(home, "show", run.id, "--json").stdout)
    assert done["status"] == "COMPLETED" and done["epochs_done"] == 6


@pytest.fixture
def tiny_disk(tmp_path):
    """A real 3 MB filesystem (tmpfs), or skip where mounting is not allowed."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)],
                                           capture_output=True).returncode != 0:
        pytest.skip("needs root and permission to mount a tmpfs")
    yield mount
    end_workers(mount / "home")
    time.sleep(0.5)
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_real_full_disk_fails_the_run_saying_so_and_reads_still_work(tiny_disk, shared_datasets, monkeypatch):
    home = tiny_disk / "home"
    monkeypatch.setenv("LAYERLAB_DATA_DIR", str(shared_datasets))
    data_dir = str(shared_datasets / "mnist-sample")
    # mlp-512's checkpoint (weights and Adam's two moments) is about 5 MB: it cannot fit.
    trained = cli(home, "train", "--dataset", "mnist", "--preset", "mlp-512", "--epochs", "2", "--data-dir", data_dir)
    assert trained.returncode == 1, trained.stderr
    summary = json.loads(trained.stdout.strip().splitlines()[-1])
    assert summary["status"] == "FAILED" and summary["error"].startswith("disk full: ")
    assert f"MB free in {home / 'runs' / summary['run_id']}" in summary["error"]
    assert not list((home / "runs" / summary["run_id"]).glob(".tmp-*"))  # no half-written file fills the disk
    filler = tiny_disk / "filler"
    with contextlib.suppress(OSError), open(filler, "wb") as handle:
        while True:  # the fault, made worse: nothing at all is left
            handle.write(b"\0" * 65536)
    for read in (("runs",), ("show", summary["run_id"])):
        result = cli(home, *read)
        assert result.returncode == 0 and summary["run_id"][:6] in result.stdout and "Traceback" not in result.stderr


def test_a_nan_test_loss_fails_the_run_naming_it(tmp_path, shared_datasets, monkeypatch):
    from pipelines.execution import training

    store = SQLiteRunStore(tmp_path / "home")
    spec = get_preset("mlp-512").spec.with_fit(epochs=1)
    store.create_run("nan test", "mnist", spec.to_dict(), total_epochs=1)
    run = store.claim_next_run(os.getpid(), 1)
    real = training.evaluate_test
    monkeypatch.setattr(training, "evaluate_test",  # the fault: the final model scores NaN on the test set
                        lambda model, test: {**real(model, test), "test_loss": float("nan")})
    outcome = training.execute_run(store, run, threading.Event(), str(shared_datasets / "mnist-sample"))
    assert outcome.status is RunStatus.FAILED
    assert outcome.error.startswith("test loss became NaN after the last epoch (1)")
    assert "test_loss" not in outcome.metrics and not (store.run_dir(run.id) / artifacts.MODEL_FILE).exists()

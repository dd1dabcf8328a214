"""`python -m pipelines sweep` and `runs --sweep`: one JSON line per finished run, a last line with
the best run, and one error line (exit 1) for bad input."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.execution.scheduler import Scheduler, SchedulerSettings
from pipelines.runs.entities import RunStatus
from pipelines.runs.sqlite_store import SQLiteRunStore

REPO = Path(__file__).resolve().parents[2]


def cli(*args: str, home: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines", *args, "--home", str(home)], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": str(REPO)})


@pytest.mark.parametrize("args, message", [
    (["--vary", "lrr=1,2"], "Unknown sweep setting 'lrr'"),
    (["--vary", "lr"], "--vary takes SETTING=V1,V2"),
    (["--vary", "lr=abc"], "learning_rate"),
    (["--vary", "units@1=64"], "layer 1 must be a Dense layer"),
    (["--vary", "lr=0.1", "--repeats", "0"], "--repeats must be a positive integer"),
    (["--vary", "lr=0.1", "--vary", "lr=0.2"], "appears twice"),
    (["--vary", "lr=0.1", "--spec", "/nonexistent.json"], "Cannot read the spec file"),
])
def test_bad_input_is_one_error_line_and_queues_nothing(tmp_path, shared_datasets, args, message):
    home = tmp_path / "home"
    source = [] if "--spec" in args else ["--preset", "mlp-512"]
    result = cli("sweep", *source, "--data-dir", str(shared_datasets), *args, home=home)
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    if (home / "runs.db").exists():
        assert SQLiteRunStore(home).list_runs() == []


@pytest.mark.slow
def test_a_sweep_prints_a_line_per_run_and_the_best_and_runs_lists_it(tmp_path, shared_datasets):
    home = tmp_path / "home"
    try:
        result = cli("sweep", "--preset", "mlp-512", "--dataset", "mnist", "--vary", "lr=1e-3,1e-2", "--repeats", "2",
                     "--epochs", "1", "--data-dir", str(shared_datasets / "mnist-sample"), home=home, timeout=600)
    finally:
        Scheduler(SQLiteRunStore(home), SchedulerSettings()).end_workers()
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.strip().splitlines()]
    runs, final = lines[:-1], lines[-1]
    assert len(runs) == 4 and {line["status"] for line in runs} == {"COMPLETED"}
    assert sorted((line["settings"]["lr"], line["seed"]) for line in runs) == [(1e-3, 0), (1e-3, 1), (1e-2, 0), (1e-2, 1)]
    # mlp-512 keeps no validation split: its runs are ranked by training accuracy, and say so.
    assert all(line["best_by"] == "accuracy" and line["best_val_accuracy"] is None for line in runs)
    assert all(line["best_accuracy"] > 0.5 and line["best_epoch"] == 1 and line["test_accuracy"] for line in runs)
    best = max(runs, key=lambda line: line["best_accuracy"])
    assert final["runs"] == final["completed"] == 4 and not final["cancelled"] and final["executor"] == "local"
    assert (final["best_run_id"], final["best_accuracy"]) == (best["run_id"], best["best_accuracy"])
    assert (final["best_by"], final["best_val_accuracy"]) == ("accuracy", None)
    assert final["best_settings"] == best["settings"] and final["wall_seconds"] > 0
    assert "sweep " in result.stderr and "4 of 4 done" in result.stderr

    listed = cli("runs", "--sweep", final["sweep_id"][:6], "--json", home=home)
    assert listed.returncode == 0, listed.stderr
    assert {record["id"] for record in json.loads(listed.stdout)} == {line["run_id"] for line in runs}
    table = cli("runs", "--sweep", final["sweep_id"], home=home)
    assert table.stdout.count("COMPLETED") == 4
    store = SQLiteRunStore(home)
    groups = {store.get_run(line["run_id"]).repeat_group for line in runs}
    assert len(groups) == 2 and all(run.status is RunStatus.COMPLETED for run in store.list_runs())
    assert "No sweep id starts with" in cli("runs", "--sweep", "ffffff", home=home).stderr


def test_an_unreachable_ray_address_is_one_error_line_at_once(tmp_path, shared_datasets):
    pytest.importorskip("ray", reason="Ray is not installed: pip install -r requirements-ray.txt")
    home = tmp_path / "home"
    result = cli("sweep", "--preset", "mlp-512", "--vary", "lr=0.1", "--data-dir", str(shared_datasets),
                 "--ray", "127.0.0.1:1", home=home, timeout=60)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Cannot reach the Ray cluster at '127.0.0.1:1': nothing answers" in errors[0]
    if (home / "runs.db").exists():
        assert SQLiteRunStore(home).list_runs() == []


def test_runs_that_end_just_before_the_sweep_is_seen_finished_are_still_printed(tmp_path, monkeypatch, capsys):
    """Both runs end between the loop's reading of the sweep's progress and of its runs: each still
    gets its line (read in the other order, the loop saw the sweep finished and printed neither)."""
    from pipelines.cli import sweep_commands
    from pipelines.cli.main import main

    class EndingBetweenReads(Scheduler):
        reads = 0

        def ensure_workers(self, *args, **kwargs):
            return []

        def sweep_runs(self, sweep_id):
            EndingBetweenReads.reads += 1
            if EndingBetweenReads.reads == 2:  # the loop's second read: both runs end just before it
                for _ in range(2):
                    run = self.store.claim_next_run(1, 2)
                    self.store.finish_run(run.id, RunStatus.COMPLETED, metrics={})
            return super().sweep_runs(sweep_id)

    monkeypatch.setattr(sweep_commands, "Scheduler", EndingBetweenReads)
    monkeypatch.setattr(sweep_commands, "POLL_SECONDS", 0.01)
    status = main(["sweep", "--preset", "mlp-128x2", "--dataset", "mnist", "--vary", "lr=1e-3,1e-2",
                   "--home", str(tmp_path / "home")])
    lines = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert status == 0 and [line["status"] for line in lines[:-1]] == ["COMPLETED"] * 2
    assert lines[-1]["completed"] == 2 and lines[-1]["best_by"] is None  # no epoch recorded: nothing ranked

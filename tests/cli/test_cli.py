"""The CLI's read commands print one schema for a run, whichever command prints it."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.runs.entities import RunStatus
from pipelines.runs.results import FINAL_KEYS, RECORD_KEYS
from pipelines.runs.sqlite_store import SQLiteRunStore

REPO = Path(__file__).resolve().parents[2]


def cli(*args: str, home: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines", *args, "--home", str(home)], cwd=REPO,
                          capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})


@pytest.fixture
def home_with_runs(tmp_path):
    home = tmp_path / "home"
    with SQLiteRunStore(home) as store:
        done = store.create_run("done", "mnist", {"fit": {"epochs": 2}}, total_epochs=2)
        store.claim_next_run(1, 1)
        store.finish_run(done.id, RunStatus.COMPLETED, metrics={"test_accuracy": 0.9, "val_loss": 0.3})
        queued = store.create_run("queued", "fashion_mnist", {}, total_epochs=3)
    return home, done.id, queued.id


def test_runs_json_and_show_json_print_the_same_keys(home_with_runs):
    home, done_id, queued_id = home_with_runs
    listed = cli("runs", "--json", home=home)
    assert listed.returncode == 0, listed.stderr
    records = {record["id"]: record for record in json.loads(listed.stdout)}
    for run_id in (done_id, queued_id):
        shown = cli("show", run_id, "--json", home=home)
        assert shown.returncode == 0, shown.stderr
        record = json.loads(shown.stdout)
        assert tuple(record) == tuple(records[run_id]) == RECORD_KEYS
        assert record == records[run_id]
        assert set(FINAL_KEYS) <= set(record["metrics"])
    assert records[done_id]["metrics"]["test_accuracy"] == 0.9
    assert records[done_id]["metrics"]["train_loss"] is None  # in the schema, not recorded
    assert records[queued_id]["queue_position"] == 1 and records[queued_id]["total_epochs"] == 3


def test_show_without_json_prints_the_record_as_lines(home_with_runs):
    home, done_id, _ = home_with_runs
    shown = cli("show", done_id[:6], home=home)
    assert shown.returncode == 0, shown.stderr
    assert f"id                   {done_id}" in shown.stdout
    assert "test_accuracy        0.9000" in shown.stdout
    assert "COMPLETED" in shown.stdout


def test_a_bad_run_id_is_one_line_and_exit_1(home_with_runs):
    home, _, _ = home_with_runs
    shown = cli("show", "../../etc", home=home)
    assert shown.returncode == 1 and "Traceback" not in shown.stderr
    assert shown.stderr.startswith("error: ") and len(shown.stderr.strip().splitlines()) == 1

"""The CLI: its read commands print one schema for a run, whichever command prints it; they read on
a full disk; `store check` / `store rebuild`; and the last guard that keeps tracebacks from users."""
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.cli.main import main
from pipelines.execution.scheduler import Scheduler
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
        store.set_tags(done.id, ["baseline"])
        store.set_note(done.id, "the tutorial's settings")
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
    assert records[done_id]["findings"] == [] and records[queued_id]["findings"] == []
    assert records[done_id]["tags"] == ["baseline"] and records[done_id]["note"] == "the tutorial's settings"
    assert records[queued_id]["sweep_id"] is None and records[queued_id]["executor"] == "local"


@pytest.fixture
def home_with_a_diverged_run(tmp_path):
    """A COMPLETED run whose batch losses jumped from 2.3 to 5e4 (Keras' running means, as recorded)."""
    from pipelines.modelspec.presets import get_preset
    from pipelines.runs.entities import MetricPoint, Progress

    home = tmp_path / "home"
    spec = get_preset("mlp-128x2").spec.with_compile(learning_rate=1.0).with_fit(epochs=1)
    with SQLiteRunStore(home) as store:
        run = store.create_run("lr 1", "mnist", spec.to_dict(), total_epochs=1)
        store.claim_next_run(1, 1)
        store.update_progress(run.id, Progress(0, 1, 4, 4))
        store.log_metrics(run.id, [MetricPoint("batch", 0, step, "loss", mean, 0.0)
                                   for step, mean in ((1, 2.3), (2, 25001.15), (3, 16667.4), (4, 12500.6))])
        store.finish_run(run.id, RunStatus.COMPLETED, metrics={"test_accuracy": 0.1})
    return home, run.id


def test_show_prints_the_doctors_findings_and_json_lists_them(home_with_a_diverged_run):
    home, run_id = home_with_a_diverged_run
    shown = cli("show", run_id, home=home)
    assert shown.returncode == 0, shown.stderr
    assert "finding              Diverged in epoch 1: the loss jumped from 2.3 to 5e+04" in shown.stdout
    assert "fix: Lower the learning rate to 0.001" in shown.stdout
    record = json.loads(cli("show", run_id, "--json", home=home).stdout)
    [finding] = record["findings"]
    assert finding["kind"] == "diverged" and finding["start"] == 0.5 and finding["end"] == 1.0
    assert finding["remedy"] == {"label": "Lower the learning rate to 0.001", "changes": {"learning_rate": 0.001}}
    [listed] = json.loads(cli("runs", "--json", home=home).stdout)
    assert listed == record


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


def test_store_check_and_rebuild_after_the_store_was_deleted(home_with_runs):
    home, done_id, queued_id = home_with_runs
    assert cli("store", "check", home=home).stdout.startswith("OK: ")
    os.remove(home / "runs.db")  # the fault
    listed = cli("runs", home=home)
    assert listed.returncode == 1 and listed.stderr.startswith(f"error: The run store {home / 'runs.db'} is missing")
    assert "Traceback" not in listed.stderr and not (home / "runs.db").exists()
    check = cli("store", "check", home=home)
    assert check.returncode == 1 and "store rebuild" in check.stdout
    rebuilt = cli("store", "rebuild", home=home)
    assert rebuilt.returncode == 0 and "recovered 2 run(s)" in rebuilt.stdout, rebuilt.stderr
    records = {record["id"]: record for record in json.loads(cli("runs", "--json", home=home).stdout)}
    assert records[done_id]["status"] == "COMPLETED" and records[done_id]["metrics"]["test_accuracy"] == 0.9
    assert records[queued_id]["status"] == "QUEUED" and records[queued_id]["queue_position"] == 1


def test_store_rebuild_keeps_a_damaged_file(home_with_runs):
    home, _, _ = home_with_runs
    (home / "runs.db").write_bytes(b"\xff" * 8192)  # the fault
    assert cli("store", "check", home=home).stdout.startswith(f"The run store {home / 'runs.db'} is damaged")
    rebuilt = cli("store", "rebuild", home=home)
    assert "the previous file is kept as" in rebuilt.stdout
    assert [p.read_bytes() for p in home.glob("runs.db.corrupt-*")] == [b"\xff" * 8192]


def test_read_commands_work_when_settling_runs_cannot_write(home_with_runs, monkeypatch, capsys):
    home, done_id, _ = home_with_runs

    def full(self, **kwargs):
        raise sqlite3.OperationalError("database or disk is full")  # the fault, as a full disk raises it

    monkeypatch.setattr(Scheduler, "reap", full)
    for command in (["runs"], ["show", done_id], ["runs", "--json"]):
        assert main([*command, "--home", str(home)]) == 0
        out, err = capsys.readouterr()
        assert done_id in out and err.startswith("warning: runs whose worker ended could not be updated")
        assert "Traceback" not in err


@pytest.mark.parametrize("fault", [RecursionError, MemoryError, KeyError])
def test_an_unexpected_error_is_one_line_and_the_traceback_goes_to_cli_log(home_with_runs, monkeypatch, capsys,
                                                                           fault):
    home, _, _ = home_with_runs

    def recurse(args, depth=0):
        return recurse(args, depth + 1)

    def broken(args):
        if fault is RecursionError:
            return recurse(args)  # a real one
        raise fault("the injected fault")

    monkeypatch.setattr(sys.modules["pipelines.cli.main"], "cmd_runs", broken)
    assert main(["runs", "--home", str(home)]) == 1
    _, err = capsys.readouterr()
    assert len(err.strip().splitlines()) == 1 and err.startswith(f"error: unexpected {fault.__name__}")
    assert f"(the details are in {home / 'logs' / 'cli.log'})" in err and "Traceback" not in err
    log = (home / "logs" / "cli.log").read_text()
    assert "Traceback" in log and fault.__name__ in log and "python -m pipelines runs" in log


def test_help_lists_the_commands_people_use_and_every_preset(capsys):
    from pipelines.modelspec.presets import PRESETS

    with pytest.raises(SystemExit):
        main(["--help"])
    top = capsys.readouterr().out
    assert "SUPPRESS" not in top and "worker" not in top and "sweep" in top
    for command in ("train", "sweep"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert all(name in text for name in PRESETS), text


def test_train_takes_a_seed_and_a_bad_one_is_one_line(capsys, tmp_path):
    from pipelines.cli.commands import _apply_overrides, _load_spec
    from pipelines.cli.main import build_parser

    args = build_parser().parse_args(["train", "--preset", "lenet", "--seed", "7"])
    assert _apply_overrides(_load_spec(args), args).fit.seed == 7
    args = build_parser().parse_args(["train", "--preset", "lenet"])
    assert _apply_overrides(_load_spec(args), args).fit.seed == 0
    assert main(["train", "--preset", "lenet", "--seed", "-3", "--home", str(tmp_path)]) != 0
    err = capsys.readouterr().err
    assert "`seed` must be an integer from 0 to 2147483647. Received: seed=-3" in err and "Traceback" not in err
